/* SPDX-License-Identifier: MIT */
/* secho entry point: dispatches to a subcommand. */
#include <stdio.h>

int main(void)
{
    puts("secho " SECHO_VERSION);
    return 0;
}
