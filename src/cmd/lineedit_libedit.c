/* SPDX-License-Identifier: MIT */
/* Line editing and history with libedit's readline interface, driven from a poll loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "lineedit.h"

/* libedit's callback interface keeps one line editor per process, and so does this. */
static struct buf *le_lines;
static int le_history_fd = -1;
static bool le_open, le_shown, le_eof, le_full;

const char *lineedit_name(void)
{
    return "libedit";
}

/* Loads the history file, one plain line per entry (as lineedit_add writes them). */
static void history_load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        if (line[0])
            add_history(line);
    }
    free(line);
    fclose(f);
}

/* Called by libedit with each completed line (malloc'd, ours to free), NULL at the end. */
static void on_line(char *line)
{
    /* libedit leaves the terminal cooked after a line until told again: editing goes on
     * at once (raw, a fresh empty line), without a prompt until the client shows it (the
     * line's echo comes first). */
    rl_callback_handler_install("", on_line);
    le_shown = false;
    if (!line) {
        le_eof = true;
        return;
    }
    size_t n = strlen(line);
    if (buf_append(le_lines, line, n) < 0 || buf_append(le_lines, "\n", 1) < 0)
        le_full = true;
    if (n > 0) {
        add_history(line);
        /* One write per line with O_APPEND: concurrent clients do not interleave lines. */
        if (le_history_fd >= 0) {
            line[n] = '\n';
            (void)!write(le_history_fd, line, n + 1);
        }
    }
    free(line);
}

int lineedit_open(struct buf *lines, const char *history_path)
{
    le_lines = lines;
    le_eof = le_full = le_shown = false;
    using_history();
    if (history_path) {
        history_load(history_path);
        le_history_fd =
            open(history_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (le_history_fd >= 0)
            (void)fchmod(le_history_fd, 0600);
    }
    rl_instream = stdin;
    rl_outstream = stdout;
    rl_callback_handler_install("", on_line);
    le_open = true;
    return 0;
}

void lineedit_prompt(const char *prompt)
{
    if (!le_open)
        return;
    rl_set_prompt(prompt ? prompt : "");
    le_shown = prompt != NULL;
    rl_forced_update_display();
    fflush(stdout);
}

int lineedit_feed(void)
{
    /* Readable with nothing to read: the terminal hung up. libedit would not say so. */
    int avail = 0;
    if (ioctl(STDIN_FILENO, FIONREAD, &avail) < 0 || avail <= 0)
        return 1;
    rl_callback_read_char();
    fflush(stdout);
    if (le_full) {
        le_full = false;
        return -ENOSPC;
    }
    return le_eof ? 1 : 0;
}

void lineedit_notice(void)
{
    if (le_open && (le_shown || rl_end > 0)) {
        fputc('\n', stdout);
        fflush(stdout);
        le_shown = false;
    }
}

void lineedit_close(void)
{
    if (!le_open)
        return;
    rl_callback_handler_remove();
    le_open = false;
    if (le_history_fd >= 0) {
        close(le_history_fd);
        le_history_fd = -1;
    }
}
