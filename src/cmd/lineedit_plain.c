/* SPDX-License-Identifier: MIT */
/* Line editing where the build has none: the client reads standard input as it is. */
#include <errno.h>

#include "lineedit.h"

const char *lineedit_name(void)
{
    return "none";
}

int lineedit_open(struct buf *lines, const char *history_path)
{
    (void)lines;
    (void)history_path;
    return -ENOTSUP;
}

void lineedit_prompt(const char *prompt)
{
    (void)prompt;
}

int lineedit_feed(void)
{
    return 1;
}

void lineedit_notice(void)
{
}

void lineedit_close(void)
{
}
