/* SPDX-License-Identifier: MIT */
/* The event-loop worker, and the epoll model: one worker on the main thread. */
#include "io.h"
#include "io_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICK_MS      250
#define ACCEPT_BATCH 64
/* Out of descriptors: stop accepting for this long instead of spinning. */
#define EMFILE_PAUSE_MS 100

struct worker_conn {
    struct session s;
    struct io_worker *w;
};

static struct worker_conn *conn_of(struct session *s)
{
    return (struct worker_conn *)((char *)s - offsetof(struct worker_conn, s));
}

static void list_add(struct io_worker *w, struct session *s)
{
    s->prev = NULL;
    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    w->nsessions++;
}

static void list_del(struct io_worker *w, struct session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    w->nsessions--;
}

static void maybe_finish(struct io_worker *w)
{
    if (w->stop_seen && w->nsessions == 0 && w->lfd < 0 && !w->has_udp)
        loop_stop(w->loop);
}

/* Re-arms a session after it ran, or frees it if it closed. */
static void update(struct io_worker *w, struct session *s)
{
    if (session_closed(s)) {
        loop_del(w->loop, s->fd);
        list_del(w, s);
        session_free(s);
        free(conn_of(s));
        maybe_finish(w);
        return;
    }
    if (loop_set(w->loop, s->fd, session_wants(s)) < 0) {
        loop_del(w->loop, s->fd);
        list_del(w, s);
        session_free(s);
        free(conn_of(s));
        return;
    }
    if (s->paused)
        loop_tick_soon(
            w->loop,
            (int)(s->pause_until > loop_now(w->loop) ? s->pause_until - loop_now(w->loop) : 0));
}

static void on_conn(struct loop *l, int fd, unsigned events, void *arg)
{
    (void)fd;
    struct session *s = arg;
    uint64_t now = loop_now(l);
    if (events & LOOP_READ)
        session_on_readable(s, now);
    if (events & LOOP_WRITE)
        session_on_writable(s, now);
    if ((events & LOOP_HUP) && !session_closed(s) && !(events & LOOP_READ))
        session_on_hangup(s);
}

static void pause_accept(struct io_worker *w, uint64_t now)
{
    w->accept_paused = true;
    w->accept_resume = now + EMFILE_PAUSE_MS;
    loop_set(w->loop, w->lfd, 0);
    loop_tick_soon(w->loop, EMFILE_PAUSE_MS);
}

static void out_of_fds(struct io_worker *w, int err, uint64_t now)
{
    /* Accept and close one pending connection with the spare descriptor, so a client is
     * told "no" at once instead of hanging in the backlog, then pause accepting. */
    if (w->spare_fd >= 0) {
        close(w->spare_fd);
        w->spare_fd = -1;
        struct net_addr peer;
        int fd = net_accept(w->lfd, &peer);
        if (fd >= 0) {
            char text[NET_ADDRSTRLEN];
            net_format_addr((const struct sockaddr *)&peer.ss, text, sizeof(text));
            log_event(LOG_WARN, "denied", "peer=%s reason=no_fds", text);
            close(fd);
        }
        w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    log_event(LOG_ERROR, "error", "error=\"accept: %s\" action=pause_accept_ms:%d", strerror(-err),
              EMFILE_PAUSE_MS);
    pause_accept(w, now);
}

static void on_conn_cb(struct loop *l, int fd, unsigned events, void *arg)
{
    struct worker_conn *c = arg;
    on_conn(l, fd, events, &c->s);
    update(c->w, &c->s);
}

static void on_accept(struct loop *l, int lfd, unsigned events, void *arg)
{
    (void)events;
    struct io_worker *w = arg;
    struct server *srv = w->srv;
    uint64_t now = loop_now(l);
    for (int i = 0; i < ACCEPT_BATCH && w->lfd >= 0; i++) {
        struct net_addr peer;
        int fd = net_accept(lfd, &peer);
        if (fd < 0) {
            if (fd == -EAGAIN)
                return;
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                out_of_fds(w, fd, now);
                return;
            }
            continue; /* ECONNABORTED, EPROTO...: that one connection died in the queue */
        }
        if (atomic_fetch_add(&srv->nconns, 1) >= srv->conf.max_conns) {
            atomic_fetch_sub(&srv->nconns, 1);
            char text[NET_ADDRSTRLEN];
            net_format_addr((const struct sockaddr *)&peer.ss, text, sizeof(text));
            log_event(LOG_WARN, "denied", "peer=%s reason=max_conns limit=%ld", text,
                      srv->conf.max_conns);
            close(fd);
            continue;
        }
        struct worker_conn *c = malloc(sizeof(*c));
        if (!c) {
            atomic_fetch_sub(&srv->nconns, 1);
            close(fd);
            continue;
        }
        c->w = w;
        if (session_init(&c->s, srv, fd, &peer, now) < 0) {
            session_free(&c->s);
            free(c);
            continue;
        }
        if (loop_add(l, fd, 0, on_conn_cb, c) < 0) {
            session_free(&c->s);
            free(c);
            continue;
        }
        list_add(w, &c->s);
        session_on_writable(&c->s, now); /* a greeting goes out at once */
        update(w, &c->s);
    }
}

static void on_udp(struct loop *l, int fd, unsigned events, void *arg)
{
    (void)fd;
    (void)events;
    struct io_worker *w = arg;
    udp_on_readable(&w->udp, loop_now(l));
}

static void begin_stop(struct io_worker *w)
{
    uint64_t now = loop_now(w->loop);
    w->stop_seen = true;
    if (w->lfd >= 0) {
        loop_del(w->loop, w->lfd);
        close(w->lfd);
        w->lfd = -1;
    }
    if (w->has_udp) {
        loop_del(w->loop, w->udp.fd);
        udp_close(&w->udp);
        w->has_udp = false;
    }
    for (struct session *s = w->sessions, *next; s; s = next) {
        next = s->next;
        session_begin_shutdown(s, now);
        update(w, s);
    }
    loop_tick_soon(w->loop, 20);
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
    int next = TICK_MS;
    if (atomic_load(&w->srv->stopping) && !w->stop_seen)
        begin_stop(w);
    if (w->accept_paused && now >= w->accept_resume && w->lfd >= 0) {
        w->accept_paused = false;
        loop_set(l, w->lfd, LOOP_READ);
    }
    for (struct session *s = w->sessions, *nx; s; s = nx) {
        nx = s->next;
        int ms = session_on_timer(s, now, TICK_MS);
        if (ms < next)
            next = ms;
        update(w, s);
    }
    if (w->has_udp)
        udp_on_timer(&w->udp, now, TICK_MS);
    if (w->stop_seen) {
        /* Past the drain deadline, the rest is cut (logged as shutdown). */
        if (now >= atomic_load(&w->srv->stop_at)) {
            for (struct session *s = w->sessions, *nx; s; s = nx) {
                nx = s->next;
                s->state = SESSION_CLOSED;
                update(w, s);
            }
        }
        next = next > 20 ? 20 : next;
        maybe_finish(w);
    }
    loop_tick_soon(l, next);
}

int io__worker_init(struct io_worker *w, struct server *srv, int lfd, int ufd)
{
    memset(w, 0, sizeof(*w));
    w->srv = srv;
    w->lfd = -1;
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->loop = loop_new();
    int r = 0;
    if (!w->loop) {
        r = -errno;
        goto fail;
    }
    loop_set_tick(w->loop, TICK_MS, on_tick, w);
    loop_set_wake(w->loop, on_wake, w);
    if (lfd >= 0) {
        w->lfd = lfd;
        lfd = -1;
        if ((r = loop_add(w->loop, w->lfd, LOOP_READ, on_accept, w)) < 0)
            goto fail;
    }
    if (ufd >= 0) {
        if ((r = udp_init(&w->udp, srv, ufd)) < 0)
            goto fail;
        w->has_udp = true;
        ufd = -1;
        if ((r = loop_add(w->loop, w->udp.fd, LOOP_READ, on_udp, w)) < 0)
            goto fail;
    }
    return 0;
fail:
    if (lfd >= 0)
        close(lfd);
    if (ufd >= 0)
        close(ufd);
    return r;
}

void io__worker_run(struct io_worker *w)
{
    /* Shutdown may have been requested before this loop ran. */
    if (atomic_load(&w->srv->stopping))
        begin_stop(w);
    if (!w->stop_seen || w->nsessions > 0)
        loop_run(w->loop);
}

void io__worker_wake(struct io_worker *w)
{
    loop_wake(w->loop);
}

void io__worker_free(struct io_worker *w)
{
    while (w->sessions) {
        struct session *s = w->sessions;
        s->state = SESSION_CLOSED;
        update(w, s);
    }
    if (w->lfd >= 0) {
        close(w->lfd);
        w->lfd = -1;
    }
    if (w->has_udp) {
        udp_close(&w->udp);
        w->has_udp = false;
    }
    if (w->spare_fd >= 0)
        close(w->spare_fd);
    w->spare_fd = -1;
    loop_free(w->loop);
    w->loop = NULL;
}

int io__bind(struct server *srv, const struct net_addr *addr, bool reuseport)
{
    return srv->conf.udp ? net_bind_udp(addr, reuseport) : net_listen_tcp(addr, reuseport, 1024);
}

static void wake_one(struct server *srv)
{
    io__worker_wake(srv->model);
}

int io_epoll_run(struct server *srv)
{
    int fd = io__bind(srv, &srv->addr, false);
    char addr[NET_ADDRSTRLEN];
    if (fd < 0) {
        net_format_addr((const struct sockaddr *)&srv->addr.ss, addr, sizeof(addr));
        fprintf(stderr, "secho: cannot listen on %s: %s\n", addr, strerror(-fd));
        return 1;
    }
    struct net_addr bound;
    net_local_addr(fd, &bound);
    struct io_worker *w = calloc(1, sizeof(*w));
    int r = w ? io__worker_init(w, srv, srv->conf.udp ? -1 : fd, srv->conf.udp ? fd : -1) : -ENOMEM;
    if (r < 0) {
        fprintf(stderr, "secho: cannot start: %s\n", strerror(-r));
        if (w)
            io__worker_free(w);
        else
            close(fd);
        free(w);
        return 1;
    }
    server_set_wake(srv, wake_one, w);
    server_ready(srv, &bound);
    io__worker_run(w);
    server_set_wake(srv, NULL, NULL);
    io__worker_free(w);
    free(w);
    return 0;
}
