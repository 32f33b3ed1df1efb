/* SPDX-License-Identifier: MIT */
/* Shared-internal: one event-loop worker (a TCP listener and/or a UDP socket and the
 * connections it accepted). The epoll model runs one; the reactors model runs one per core. */
#ifndef SECHO_IO_WORKER_H
#define SECHO_IO_WORKER_H

#include <pthread.h>
#include <stdbool.h>

#include "loop.h"
#include "model.h"
#include "server.h"
#include "udp_io.h"

struct worker_conn;

struct io_worker {
    struct server *srv;
    struct loop *loop;
    struct model_acceptor acc; /* acc.lfd is the TCP listener, or -1 */
    struct udp_service udp;
    bool has_udp;
    struct worker_conn *conns; /* intrusive list, for shutdown */
    long nconns;
    bool accept_paused;
    bool stop_seen;
    pthread_t thread;
};

/* Sets up a worker around an already bound TCP listener (lfd) or UDP socket (ufd); the
 * other is -1. Takes ownership of the fd. Returns 0 or -errno. */
int io__worker_init(struct io_worker *w, struct server *srv, int lfd, int ufd);
/* Serves until shutdown completes; then everything the worker owned is closed. */
void io__worker_run(struct io_worker *w);
/* Thread-safe: wakes the worker's loop. */
void io__worker_wake(struct io_worker *w);
/* Frees what io__worker_init made (after run, or after a failed start). */
void io__worker_free(struct io_worker *w);

#endif
