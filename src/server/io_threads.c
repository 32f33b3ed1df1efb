/* SPDX-License-Identifier: MIT */
/* Threads model: one thread per TCP connection (the notebook's Exercise 2). Each thread
 * drives its connection engine with poll(), watching a shared eventfd that signals shutdown. UDP
 * has no connections, so over UDP this model serves from one event-loop worker. */
#include "io.h"
#include "io_worker.h"

#include "crypto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define THREAD_STACK (1024 * 1024) /* room for OpenSSL (DH, Noise) under sanitizers */
/* The longest a thread sleeps without looking at the shutdown flag. */
#define MAX_WAIT_MS 1000

struct tmodel {
    int wakefd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long live;
};

struct tconn {
    struct server_conn sc;
    struct tmodel *m;
    struct server *srv;
    int fd;
    struct net_addr peer;
    struct stats_slot stats; /* this thread's counters, in worker 0's */
};

static void wake_threads(struct server *srv)
{
    struct tmodel *m = srv->model;
    uint64_t one = 1;
    ssize_t r = write(m->wakefd, &one, sizeof(one));
    (void)r;
}

/* How long poll may sleep: until the engine's deadline, at most MAX_WAIT_MS. */
static int wait_ms(const struct conn *c, uint64_t now)
{
    uint64_t due = conn_deadline(c);
    if (due <= now)
        return 0;
    return due - now < MAX_WAIT_MS ? (int)(due - now) : MAX_WAIT_MS;
}

static void *conn_main(void *arg)
{
    struct tconn *t = arg;
    struct conn *c = &t->sc.c;
    struct server *srv = t->srv;
    struct tmodel *m = t->m;
    int fd = t->fd;
    uint64_t now = loop_clock_ms();
    bool stop_seen = false;
    stats_enter(&srv->stats, 0, &t->stats);

    if (server_conn_init(&t->sc, srv, &t->peer, now) == 0) {
        model_conn_send(c, fd, now);
        while (!conn_closed(c)) {
            if (!stop_seen && atomic_load(&srv->stopping)) {
                stop_seen = true;
                now = loop_clock_ms();
                conn_begin_shutdown(c, now, atomic_load(&srv->stop_at));
                model_conn_send(c, fd, now);
                continue;
            }
            now = loop_clock_ms();
            conn_on_time(c, now);
            model_conn_send(c, fd, now);
            if (conn_closed(c))
                break;
            unsigned want = conn_wants(c);
            struct pollfd p[2] = {
                {.fd = fd,
                 .events = (short)((want & CONN_WANT_READ ? POLLIN : 0) |
                                   (want & CONN_WANT_WRITE ? POLLOUT : 0))},
                {.fd = stop_seen ? -1 : m->wakefd, .events = POLLIN},
            };
            int timeout = wait_ms(c, now);
            if (stop_seen) {
                uint64_t stop_at = atomic_load(&srv->stop_at);
                if (now >= stop_at) {
                    conn_abort(c);
                    break;
                }
                if (stop_at - now < (uint64_t)timeout)
                    timeout = (int)(stop_at - now);
            }
            int r = poll(p, 2, timeout);
            if (r < 0 && errno != EINTR)
                break;
            now = loop_clock_ms();
            if (r <= 0)
                continue;
            if (p[0].revents & POLLIN)
                model_conn_recv(c, fd, now);
            if ((p[0].revents & (POLLHUP | POLLERR)) && !(p[0].revents & POLLIN))
                model_conn_hangup(c, fd);
            model_conn_send(c, fd, now);
        }
    }
    conn_free(c);
    close(fd);
    model_release(srv);
    stats_leave();
    free(t);
    /* OpenSSL's thread-exit cleanup takes one of its global locks; done from the key
     * destructor after `live` drops, it would race with the library's own cleanup at
     * process exit (the main thread does not join detached threads). */
    crypto_thread_stop();
    pthread_mutex_lock(&m->mu);
    m->live--;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* Starts the thread of an accepted, admitted connection; on failure it is closed. */
static void spawn(struct server *srv, struct tmodel *m, pthread_attr_t *attr, int fd,
                  const struct net_addr *peer)
{
    struct tconn *t = calloc(1, sizeof(*t));
    if (!t) {
        close(fd);
        model_release(srv);
        return;
    }
    t->m = m;
    t->srv = srv;
    t->fd = fd;
    t->peer = *peer;
    pthread_mutex_lock(&m->mu);
    m->live++;
    pthread_mutex_unlock(&m->mu);
    pthread_t th;
    int e = pthread_create(&th, attr, conn_main, t);
    if (e != 0) {
        char text[NET_ADDRSTRLEN];
        net_format_addr((const struct sockaddr *)&peer->ss, text, sizeof(text));
        char er[128], v[LOG_VALUE_MAX(NET_ADDRSTRLEN)], ev[LOG_VALUE_MAX(128)];
        snprintf(er, sizeof(er), "cannot start a thread: %s", strerror(e));
        log_event(LOG_ERROR, "error", "peer=%s error=%s", log_value(v, sizeof(v), text),
                  log_value(ev, sizeof(ev), er));
        pthread_mutex_lock(&m->mu);
        m->live--;
        pthread_mutex_unlock(&m->mu);
        close(fd);
        model_release(srv);
        free(t);
    }
}

static void serve_tcp(struct server *srv, struct tmodel *m, struct model_acceptor *acc, int nacc)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    stats_enter(&srv->stats, 0, NULL); /* the acceptor counts what it refuses */

    while (!atomic_load(&srv->stopping)) {
        uint64_t now = loop_clock_ms();
        struct pollfd p[MODEL_MAX_ADDRS + 1];
        int timeout = MAX_WAIT_MS;
        for (int i = 0; i < nacc; i++) {
            bool paused = model_accept_paused(&acc[i], now);
            p[i] = (struct pollfd){.fd = paused ? -1 : acc[i].lfd, .events = POLLIN};
            if (paused && (int)(acc[i].resume_at - now) < timeout)
                timeout = (int)(acc[i].resume_at - now);
        }
        p[nacc] = (struct pollfd){.fd = m->wakefd, .events = POLLIN};
        int r = poll(p, (nfds_t)nacc + 1, timeout);
        if (r <= 0)
            continue;
        for (int i = 0; i < nacc; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            struct net_addr peer;
            int fd = model_accept(&acc[i], &peer, loop_clock_ms());
            if (fd >= 0)
                spawn(srv, m, &attr, fd, &peer);
        }
    }
    for (int i = 0; i < nacc; i++)
        model_acceptor_close(&acc[i]);
    pthread_attr_destroy(&attr);
    stats_leave();

    /* Every thread delivers what it owes and closes by stop_at; wait for them. */
    pthread_mutex_lock(&m->mu);
    while (m->live > 0)
        pthread_cond_wait(&m->cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
}

int io_threads_run(struct server *srv)
{
    if (srv->conf.udp)
        return io_epoll_run(srv);
    struct model_listeners ls;
    if (model_listen(srv, 1, &ls) < 0)
        return 1;
    struct tmodel m = {.live = 0};
    m.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m.wakefd < 0) {
        fprintf(stderr, "secho: cannot start: %s\n", strerror(errno));
        model_listeners_close(&ls);
        return 1;
    }
    pthread_mutex_init(&m.mu, NULL);
    pthread_cond_init(&m.cv, NULL);
    server_set_wake(srv, wake_threads, &m);
    /* Everything the server holds open is opened before it says it is ready. */
    int fds[MODEL_MAX_ADDRS];
    int nacc = model_listeners_take(&ls, 0, fds);
    struct model_acceptor acc[MODEL_MAX_ADDRS];
    for (int i = 0; i < nacc; i++)
        model_acceptor_init(&acc[i], srv, fds[i]);
    server_ready(srv, ls.addrs, ls.naddrs);
    model_listeners_close(&ls);
    serve_tcp(srv, &m, acc, nacc);
    server_set_wake(srv, NULL, NULL);
    close(m.wakefd);
    pthread_mutex_destroy(&m.mu);
    pthread_cond_destroy(&m.cv);
    return 0;
}
