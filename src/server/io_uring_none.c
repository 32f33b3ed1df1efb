/* SPDX-License-Identifier: MIT */
/* The io_uring model's stand-in when liburing was not found at build time. */
#include "io.h"

#include <stdio.h>

bool io_uring_built(void)
{
    return false;
}

const char *io_uring_version(void)
{
    return "not built in";
}

int io_uring_run(struct server *srv)
{
    (void)srv;
    fprintf(stderr, "secho server: model 'uring' is not built in (liburing was not found when "
                    "secho was built)\n");
    return 2;
}
