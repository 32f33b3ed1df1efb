/* SPDX-License-Identifier: MIT */
/* I/O models. Each binds, prints readiness, serves until shutdown, and only moves bytes. */
#ifndef SECHO_IO_H
#define SECHO_IO_H

#include <stdbool.h>

#include "service.h"

/* Each returns 0 after a clean shutdown, or 1 if the server could not start (the reason
 * is already printed on stderr as "secho: ..."). */
int io_threads_run(struct server *srv);  /* one thread per TCP connection */
int io_epoll_run(struct server *srv);    /* one event loop */
int io_reactors_run(struct server *srv); /* one event loop per core, SO_REUSEPORT */
/* One io_uring loop (io_uring.c; without liburing at build time io_uring_none.c, whose
 * io_uring_run prints that the model is not built in and returns 2). */
int io_uring_run(struct server *srv);
/* True when the io_uring model is built in. */
bool io_uring_built(void);
/* For --version: "liburing X.Y", or "not built in". */
const char *io_uring_version(void);

/* Called by a model once its sockets are bound: logs `listening` for each of the n addresses
 * and prints the readiness line, naming the first, on stdout. */
void server_ready(struct server *srv, const struct net_addr *addrs, int n);

#endif
