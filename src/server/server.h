/* SPDX-License-Identifier: MIT */
/* Server start-up: resolve, open the log, build the protocol context, run the chosen I/O
 * model until shutdown. */
#ifndef SECHO_SERVER_H
#define SECHO_SERVER_H

#include "service.h"

/* Runs a server until shutdown. Returns the process exit status (0, or 1 when it cannot
 * start; the reason is printed on stderr). */
int server_run(const struct server_conf *conf);

#endif
