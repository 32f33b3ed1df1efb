/* SPDX-License-Identifier: MIT */
/* Reactors model: one event-loop worker per core, each with its own SO_REUSEPORT socket, so
 * the kernel spreads connections (and UDP peers, by address hash) across cores and no lock
 * is shared on the hot path. */
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
    struct net_addr bound = srv->addr;
    int status = 1;
    if (!r.workers) {
        fprintf(stderr, "secho: out of memory\n");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        /* The first socket may pick the port (-p 0); the others join it. */
        int fd = model_listen(srv, &bound, true);
        if (fd < 0)
            goto out;
        if (i == 0)
            net_local_addr(fd, &bound);
        int e =
            io__worker_init(&r.workers[i], srv, srv->conf.udp ? -1 : fd, srv->conf.udp ? fd : -1);
        r.n = i + 1;
        if (e < 0) {
            fprintf(stderr, "secho: cannot start: %s\n", strerror(-e));
            goto out;
        }
    }
    server_set_wake(srv, wake_all, &r);
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
        server_ready(srv, &bound);
    for (int i = 0; i < started; i++)
        pthread_join(r.workers[i].thread, NULL);
    status = started == n ? 0 : 1;
    server_set_wake(srv, NULL, NULL);
out:
    for (int i = 0; i < r.n; i++)
        io__worker_free(&r.workers[i]);
    free(r.workers);
    return status;
}
