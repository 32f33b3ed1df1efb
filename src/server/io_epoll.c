/* SPDX-License-Identifier: MIT */
/* The event-loop worker, and the epoll model: one worker on the main thread. */
#include "io.h"
#include "io_worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Housekeeping (shutdown, accept pause, UDP expiry); connections have their own timers. */
#define TICK_MS      250
#define ACCEPT_BATCH 64
/* While shutting down, how often the worker checks whether it is done. */
#define STOP_TICK_MS 20

struct worker_conn {
    struct server_conn sc;
    int fd;
    struct io_worker *w;
    struct loop_timer timer; /* due at conn_deadline(&c) */
    struct worker_conn *prev, *next;
};

static void list_add(struct io_worker *w, struct worker_conn *wc)
{
    wc->prev = NULL;
    wc->next = w->conns;
    if (w->conns)
        w->conns->prev = wc;
    w->conns = wc;
    w->nconns++;
}

static void list_del(struct io_worker *w, struct worker_conn *wc)
{
    if (wc->prev)
        wc->prev->next = wc->next;
    else
        w->conns = wc->next;
    if (wc->next)
        wc->next->prev = wc->prev;
    if (--w->nconns == 0)
        w->trim_owed = true;
}

static void maybe_finish(struct io_worker *w)
{
    if (w->stop_seen && w->nconns == 0 && w->nlis == 0 && w->nudp == 0)
        loop_stop(w->loop);
}

/* Logs the disconnect, closes the socket and forgets the connection. */
static void drop(struct io_worker *w, struct worker_conn *wc)
{
    loop_timer_disarm(w->loop, &wc->timer);
    loop_del(w->loop, wc->fd);
    list_del(w, wc);
    conn_free(&wc->sc.c);
    close(wc->fd);
    model_release(w->srv);
    free(wc);
}

/* After the engine ran: watch what it wants, wake it at its deadline, or free it once it is
 * closed. */
static void update(struct io_worker *w, struct worker_conn *wc)
{
    unsigned want = conn_wants(&wc->sc.c);
    if (want & CONN_WANT_CLOSE) {
        drop(w, wc);
        maybe_finish(w);
        return;
    }
    unsigned mask =
        (want & CONN_WANT_READ ? LOOP_READ : 0) | (want & CONN_WANT_WRITE ? LOOP_WRITE : 0);
    if (loop_set(w->loop, wc->fd, mask) < 0) {
        drop(w, wc);
        return;
    }
    uint64_t due = conn_deadline(&wc->sc.c);
    if (due == CONN_NO_DEADLINE)
        loop_timer_disarm(w->loop, &wc->timer);
    else if (loop_timer_arm(w->loop, &wc->timer, due) < 0)
        drop(w, wc);
}

static void on_conn(struct loop *l, int fd, unsigned events, void *arg)
{
    struct worker_conn *wc = arg;
    uint64_t now = loop_now(l);
    if (events & LOOP_READ)
        model_conn_recv(&wc->sc.c, fd, now);
    if ((events & LOOP_HUP) && !conn_closed(&wc->sc.c) && !(events & LOOP_READ))
        model_conn_hangup(&wc->sc.c, fd);
    model_conn_send(&wc->sc.c, fd, now);
    update(wc->w, wc);
}

static void on_conn_timer(struct loop *l, void *arg)
{
    struct worker_conn *wc = arg;
    uint64_t now = loop_now(l);
    conn_on_time(&wc->sc.c, now);
    model_conn_send(&wc->sc.c, wc->fd, now);
    update(wc->w, wc);
}

static void on_accept(struct loop *l, int lfd, unsigned events, void *arg)
{
    (void)events;
    struct io_listener *li = arg;
    struct io_worker *w = li->w;
    struct server *srv = w->srv;
    uint64_t now = loop_now(l);
    /* A listener shared by every reactor (inherited) takes one connection per wake-up, so
     * that the next wakes another idle reactor instead of queueing behind this one. */
    int batch = model_listener_shared(srv) ? 1 : ACCEPT_BATCH;
    for (int i = 0; i < batch && li->acc.lfd >= 0; i++) {
        struct net_addr peer;
        int fd = model_accept(&li->acc, &peer, now);
        if (fd < 0) {
            if (fd == -EAGAIN)
                return;
            if (model_accept_paused(&li->acc, now)) {
                li->paused = true;
                loop_set(l, lfd, 0);
                loop_tick_soon(l, MODEL_EMFILE_PAUSE_MS);
                return;
            }
            continue;
        }
        struct worker_conn *wc = malloc(sizeof(*wc));
        if (!wc) {
            close(fd);
            model_release(srv);
            continue;
        }
        wc->fd = fd;
        wc->w = w;
        loop_timer_init(&wc->timer, on_conn_timer, wc);
        if (server_conn_init(&wc->sc, srv, &peer, now) < 0 || loop_add(l, fd, 0, on_conn, wc) < 0) {
            conn_free(&wc->sc.c);
            close(fd);
            model_release(srv);
            free(wc);
            continue;
        }
        list_add(w, wc);
        model_conn_send(&wc->sc.c, fd, now); /* a greeting goes out at once */
        update(w, wc);
    }
}

static void on_udp(struct loop *l, int fd, unsigned events, void *arg)
{
    (void)fd;
    (void)events;
    struct io_udp *u = arg;
    udp_on_readable(&u->u, loop_now(l));
}

/* Stops listening: closes every listener and UDP socket (UDP sessions end with it). */
static void close_sockets(struct io_worker *w)
{
    for (int i = 0; i < w->nlis; i++) {
        if (w->loop && w->lis[i].acc.lfd >= 0)
            loop_del(w->loop, w->lis[i].acc.lfd);
        model_acceptor_close(&w->lis[i].acc);
    }
    w->nlis = 0;
    for (int i = 0; i < w->nudp; i++) {
        if (w->loop && w->udp[i].open)
            loop_del(w->loop, w->udp[i].u.fd);
        if (w->udp[i].open)
            udp_close(&w->udp[i].u);
        w->udp[i].open = false;
    }
    w->nudp = 0;
}

static void begin_stop(struct io_worker *w)
{
    uint64_t now = loop_now(w->loop);
    w->stop_seen = true;
    close_sockets(w);
    for (struct worker_conn *wc = w->conns, *next; wc; wc = next) {
        next = wc->next;
        conn_begin_shutdown(&wc->sc.c, now, atomic_load(&w->srv->stop_at));
        model_conn_send(&wc->sc.c, wc->fd, now);
        update(w, wc);
    }
    loop_tick_soon(w->loop, STOP_TICK_MS);
    maybe_finish(w);
}

static void on_wake(struct loop *l, void *arg)
{
    (void)l;
    struct io_worker *w = arg;
    if (atomic_load(&w->srv->stopping) && !w->stop_seen)
        begin_stop(w);
}

static void on_tick(struct loop *l, void *arg)
{
    struct io_worker *w = arg;
    uint64_t now = loop_now(l);
    if (atomic_load(&w->srv->stopping) && !w->stop_seen)
        begin_stop(w);
    for (int i = 0; i < w->nlis; i++) {
        struct io_listener *li = &w->lis[i];
        if (li->paused && !model_accept_paused(&li->acc, now) && li->acc.lfd >= 0) {
            li->paused = false;
            loop_set(l, li->acc.lfd, LOOP_READ);
        }
    }
    for (int i = 0; i < w->nudp; i++)
        udp_on_timer(&w->udp[i].u, now, TICK_MS);
    if (w->trim_owed && w->nconns == 0 && model_idle_trim(now))
        w->trim_owed = false;
    if (w->stop_seen) {
        /* Each connection closes itself by stop_at (its drain deadline); this is the
         * backstop for any still open past it (logged as shutdown). */
        if (now >= atomic_load(&w->srv->stop_at)) {
            for (struct worker_conn *wc = w->conns, *nx; wc; wc = nx) {
                nx = wc->next;
                conn_abort(&wc->sc.c);
                update(w, wc);
            }
        }
        maybe_finish(w);
        loop_tick_soon(l, STOP_TICK_MS);
    }
}

int io__worker_init(struct io_worker *w, struct server *srv, const int *fds, int n)
{
    memset(w, 0, sizeof(*w));
    w->srv = srv;
    int taken = 0, r = 0;
    w->loop = loop_new();
    if (!w->loop) {
        r = -errno;
        goto fail;
    }
    loop_set_tick(w->loop, TICK_MS, on_tick, w);
    loop_set_wake(w->loop, on_wake, w);
    for (; taken < n; taken++) {
        if (srv->conf.udp) {
            struct io_udp *u = &w->udp[w->nudp];
            u->w = w;
            if ((r = udp_init(&u->u, srv, fds[taken])) < 0)
                goto fail;
            u->open = true;
            w->nudp++;
            if ((r = loop_add(w->loop, u->u.fd, LOOP_READ, on_udp, u)) < 0)
                goto fail_next;
        } else {
            struct io_listener *li = &w->lis[w->nlis++];
            li->w = w;
            model_acceptor_init(&li->acc, srv, fds[taken]);
            /* Exclusive: an inherited listener is shared by every reactor. */
            if ((r = loop_add(w->loop, li->acc.lfd, LOOP_READ | LOOP_EXCLUSIVE, on_accept, li)) < 0)
                goto fail_next;
        }
    }
    return 0;
fail_next:
    taken++; /* that one is the worker's now, closed with the rest */
fail:
    for (int i = taken; i < n; i++)
        close(fds[i]);
    return r;
}

void io__worker_run(struct io_worker *w)
{
    stats_enter(&w->srv->stats, w->stats_worker, NULL);
    /* Shutdown may have been requested before this loop ran. */
    if (atomic_load(&w->srv->stopping))
        begin_stop(w);
    if (!w->stop_seen || w->nconns > 0)
        loop_run(w->loop);
    stats_leave();
}

void io__worker_wake(struct io_worker *w)
{
    loop_wake(w->loop);
}

void io__worker_free(struct io_worker *w)
{
    stats_enter(&w->srv->stats, w->stats_worker, NULL); /* its thread is done */
    for (struct worker_conn *wc = w->conns, *next; wc; wc = next) {
        next = wc->next;
        conn_abort(&wc->sc.c);
        drop(w, wc);
    }
    close_sockets(w);
    loop_free(w->loop);
    w->loop = NULL;
    stats_leave();
}

static void wake_one(struct server *srv)
{
    io__worker_wake(srv->model);
}

int io_epoll_run(struct server *srv)
{
    struct model_listeners ls;
    if (model_listen(srv, 1, &ls) < 0)
        return 1;
    int fds[MODEL_MAX_ADDRS];
    int n = model_listeners_take(&ls, 0, fds);
    struct io_worker *w = calloc(1, sizeof(*w));
    int r = w ? io__worker_init(w, srv, fds, n) : -ENOMEM;
    if (r < 0) {
        fprintf(stderr, "secho: cannot start: %s\n", strerror(-r));
        if (w)
            io__worker_free(w);
        else
            for (int i = 0; i < n; i++)
                close(fds[i]);
        free(w);
        model_listeners_close(&ls);
        return 1;
    }
    server_set_wake(srv, wake_one, w);
    server_ready(srv, ls.addrs, ls.naddrs);
    model_listeners_close(&ls);
    io__worker_run(w);
    server_set_wake(srv, NULL, NULL);
    io__worker_free(w);
    free(w);
    return 0;
}
