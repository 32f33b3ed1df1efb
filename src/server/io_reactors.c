/* SPDX-License-Identifier: MIT */
/* Reactors model: one event-loop worker per core, each with its own socket in an SO_REUSEPORT
 * group per address (one this server founded: see net_listen_group), so the kernel spreads
 * connections (and UDP peers, by address hash) across cores and no lock is shared on the
 * hot path. */
#include "io.h"
#include "io_worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct reactors {
    struct io_worker *workers;
    int n;
};

static void wake_all(struct server *srv)
{
    struct reactors *r = srv->model;
    for (int i = 0; i < r->n; i++)
        io__worker_wake(&r->workers[i]);
}

static void *worker_main(void *arg)
{
    io__worker_run(arg);
    return NULL;
}

int io_reactors_run(struct server *srv)
{
    int n = srv->conf.threads > 0 ? srv->conf.threads : 1;
    struct reactors r = {.workers = calloc((size_t)n, sizeof(struct io_worker)), .n = 0};
    int status = 1;
    if (!r.workers) {
        fprintf(stderr, "secho: out of memory\n");
        return 1;
    }
    /* One socket per worker on each address, in a group only this server founded. */
    struct model_listeners ls;
    if (model_listen(srv, n, &ls) < 0) {
        free(r.workers);
        return 1;
    }
    n = ls.nsock; /* inherited UDP sockets: no more workers than sockets */
    stats_set_workers(&srv->stats, n);
    for (int i = 0; i < n; i++) {
        int fds[MODEL_MAX_ADDRS];
        int nfds = model_listeners_take(&ls, i, fds);
        int e = io__worker_init(&r.workers[i], srv, fds, nfds);
        r.workers[i].stats_worker = i;
        r.n = i + 1;
        if (e < 0) {
            fprintf(stderr, "secho: cannot start: %s\n", strerror(-e));
            goto out;
        }
    }
    server_set_wake(srv, wake_all, &r);
    if (n == 1) {
        /* One reactor is the epoll model: it runs on this thread as -m epoll's worker does,
         * so the two are one path (no thread to start and join beside it). */
        server_ready(srv, ls.addrs, ls.naddrs);
        model_listeners_close(&ls);
        io__worker_run(&r.workers[0]);
        server_set_wake(srv, NULL, NULL);
        io__worker_free(&r.workers[0]);
        free(r.workers);
        return 0;
    }
    int started = 0;
    for (; started < n; started++) {
        if (pthread_create(&r.workers[started].thread, NULL, worker_main, &r.workers[started]) !=
            0) {
            fprintf(stderr, "secho: cannot start thread %d: %s\n", started, strerror(errno));
            server_request_shutdown(srv);
            break;
        }
    }
    if (started == n)
        server_ready(srv, ls.addrs, ls.naddrs);
    for (int i = 0; i < started; i++)
        pthread_join(r.workers[i].thread, NULL);
    status = started == n ? 0 : 1;
    server_set_wake(srv, NULL, NULL);
out:
    model_listeners_close(&ls);
    for (int i = 0; i < r.n; i++)
        io__worker_free(&r.workers[i]);
    free(r.workers);
    return status;
}
