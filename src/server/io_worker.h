/* SPDX-License-Identifier: MIT */
/* Shared-internal: one event-loop worker (its TCP listeners or UDP sockets, one per address,
 * and the connections it accepted). The epoll model runs one; the reactors model runs one per core.
 */
#ifndef SECHO_IO_WORKER_H
#define SECHO_IO_WORKER_H

#include <pthread.h>
#include <stdbool.h>

#include "loop.h"
#include "model.h"
#include "server.h"
#include "udp_io.h"

struct worker_conn;
struct io_worker;

/* One TCP listener of a worker. */
struct io_listener {
    struct io_worker *w;
    struct model_acceptor acc; /* acc.lfd is -1 once closed */
    bool paused;               /* out of descriptors: not watched until acc.resume_at */
};

/* One UDP socket of a worker. */
struct io_udp {
    struct io_worker *w;
    struct udp_service u;
    bool open;
};

struct io_worker {
    struct server *srv;
    struct loop *loop;
    /* One socket per address the server listens on (TCP listeners or UDP sockets). */
    struct io_listener lis[MODEL_MAX_ADDRS];
    int nlis;
    struct io_udp udp[MODEL_MAX_ADDRS];
    int nudp;
    struct worker_conn *conns; /* intrusive list, for shutdown */
    long nconns;
    bool trim_owed; /* nconns fell to 0: the next tick gives memory back (model_idle_trim) */
    bool stop_seen;
    pthread_t thread;
    int stats_worker; /* which worker of srv->stats it counts for (set after io__worker_init) */
};

/* Sets up a worker around n (1..MODEL_MAX_ADDRS) already bound sockets: TCP listeners or UDP
 * sockets, per srv->conf.udp. Takes ownership of every fd, also on failure. Returns 0 or
 * -errno; io__worker_free is owed either way. */
int io__worker_init(struct io_worker *w, struct server *srv, const int *fds, int n);
/* Serves until shutdown completes; then everything the worker owned is closed. */
void io__worker_run(struct io_worker *w);
/* Thread-safe: wakes the worker's loop. */
void io__worker_wake(struct io_worker *w);
/* Frees what io__worker_init made (after run, or after a failed start). */
void io__worker_free(struct io_worker *w);

#endif
