/* SPDX-License-Identifier: MIT */
/* Line editing and history for the interactive client, where the build has them (libedit). */
#ifndef SECHO_LINEEDIT_H
#define SECHO_LINEEDIT_H

#include <stdbool.h>

#include "buf.h"

/* What the build edits lines with, for `secho --version`: "libedit" or "none". */
const char *lineedit_name(void);

/*
 * Starts editing the terminal on standard input, non-blocking: each completed line is
 * appended to *lines with a '\n' (the buffer stays the caller's). history_path, if not
 * NULL, is loaded now and every completed non-empty line is appended to it (created 0600;
 * its directory must exist). The prompt starts hidden (lineedit_prompt shows it).
 * Returns 0, -ENOTSUP when the build has no line editing (the caller reads stdin itself),
 * or -errno. A history file that cannot be read or written is not an error.
 */
int lineedit_open(struct buf *lines, const char *history_path);

/* Shows prompt (e.g. "secho> ") in front of what is being typed; NULL hides it. */
void lineedit_prompt(const char *prompt);

/*
 * Call when standard input is readable: takes what the terminal sent, edits, and appends
 * each line completed to the buffer given to lineedit_open. Returns 0, 1 at the end of the
 * input (Ctrl-D on an empty line, or the terminal hung up), or -ENOSPC when the buffer is
 * full (the line is lost).
 */
int lineedit_feed(void);

/* Before writing to the terminal: moves to a fresh line if the edited line is shown. */
void lineedit_notice(void);

/* Restores the terminal. Safe when lineedit_open failed or was not called. */
void lineedit_close(void);

#endif
