/* SPDX-License-Identifier: MIT */
/* Threads model: one thread per TCP connection (the notebook's Exercise 2). Each thread
 * pumps its session with poll(), watching a shared eventfd that signals shutdown. UDP has
 * no connections, so over UDP this model serves from one event-loop worker. */
#include "io.h"
#include "io_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define THREAD_STACK    (1024 * 1024) /* room for OpenSSL (DH, Noise) under sanitizers */
#define EMFILE_PAUSE_MS 100

struct tmodel {
    int wakefd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long live;
};

struct tconn {
    struct session s;
    struct tmodel *m;
    int fd;
    struct net_addr peer;
};

static void wake_threads(struct server *srv)
{
    struct tmodel *m = srv->model;
    uint64_t one = 1;
    ssize_t r = write(m->wakefd, &one, sizeof(one));
    (void)r;
}

static void *conn_main(void *arg)
{
    struct tconn *c = arg;
    struct session *s = &c->s;
    struct server *srv = s->srv;
    struct tmodel *m = c->m;
    uint64_t now = loop_clock_ms();
    bool stop_seen = false;

    if (session_init(s, srv, c->fd, &c->peer, now) == 0) {
        session_on_writable(s, now);
        while (!session_closed(s)) {
            if (!stop_seen && atomic_load(&srv->stopping)) {
                stop_seen = true;
                session_begin_shutdown(s, loop_clock_ms());
                continue;
            }
            unsigned want = session_wants(s);
            struct pollfd p[2] = {
                {.fd = s->fd,
                 .events =
                     (short)((want & LOOP_READ ? POLLIN : 0) | (want & LOOP_WRITE ? POLLOUT : 0))},
                {.fd = stop_seen ? -1 : m->wakefd, .events = POLLIN},
            };
            int timeout = session_on_timer(s, loop_clock_ms(), 1000);
            if (session_closed(s))
                break;
            if (stop_seen) {
                uint64_t t = loop_clock_ms(), stop_at = atomic_load(&srv->stop_at);
                if (t >= stop_at) {
                    s->state = SESSION_CLOSED;
                    break;
                }
                if (stop_at - t < (uint64_t)timeout)
                    timeout = (int)(stop_at - t);
            }
            int r = poll(p, 2, timeout);
            if (r < 0 && errno != EINTR)
                break;
            now = loop_clock_ms();
            if (r <= 0)
                continue;
            if (p[0].revents & POLLIN)
                session_on_readable(s, now);
            if (p[0].revents & POLLOUT)
                session_on_writable(s, now);
            if ((p[0].revents & (POLLHUP | POLLERR)) && !(p[0].revents & POLLIN))
                session_on_hangup(s);
        }
    }
    session_free(s);
    free(c);
    pthread_mutex_lock(&m->mu);
    m->live--;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static void spawn(struct server *srv, struct tmodel *m, pthread_attr_t *attr, int fd,
                  const struct net_addr *peer)
{
    char text[NET_ADDRSTRLEN];
    if (atomic_fetch_add(&srv->nconns, 1) >= srv->conf.max_conns) {
        atomic_fetch_sub(&srv->nconns, 1);
        net_format_addr((const struct sockaddr *)&peer->ss, text, sizeof(text));
        log_event(LOG_WARN, "denied", "peer=%s reason=max_conns limit=%ld", text,
                  srv->conf.max_conns);
        close(fd);
        return;
    }
    struct tconn *c = calloc(1, sizeof(*c));
    if (!c) {
        atomic_fetch_sub(&srv->nconns, 1);
        close(fd);
        return;
    }
    c->m = m;
    c->fd = fd;
    c->peer = *peer;
    c->s.srv = srv;
    pthread_mutex_lock(&m->mu);
    m->live++;
    pthread_mutex_unlock(&m->mu);
    pthread_t t;
    if (pthread_create(&t, attr, conn_main, c) != 0) {
        net_format_addr((const struct sockaddr *)&peer->ss, text, sizeof(text));
        log_event(LOG_ERROR, "error", "peer=%s error=\"cannot start a thread: %s\"", text,
                  strerror(errno));
        pthread_mutex_lock(&m->mu);
        m->live--;
        pthread_mutex_unlock(&m->mu);
        atomic_fetch_sub(&srv->nconns, 1);
        close(fd);
        free(c);
    }
}

static void serve_tcp(struct server *srv, struct tmodel *m, int lfd, int spare)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    uint64_t resume = 0;

    while (!atomic_load(&srv->stopping)) {
        uint64_t now = loop_clock_ms();
        bool paused = now < resume;
        struct pollfd p[2] = {{.fd = paused ? -1 : lfd, .events = POLLIN},
                              {.fd = m->wakefd, .events = POLLIN}};
        int r = poll(p, 2, paused ? (int)(resume - now) : 1000);
        if (r <= 0 || !(p[0].revents & POLLIN))
            continue;
        struct net_addr peer;
        int fd = net_accept(lfd, &peer);
        if (fd >= 0) {
            spawn(srv, m, &attr, fd, &peer);
        } else if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            /* Refuse one pending client with the spare descriptor, then pause instead of
             * spinning on a listener that stays readable. */
            if (spare >= 0) {
                close(spare);
                int f = net_accept(lfd, &peer);
                if (f >= 0)
                    close(f);
                spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            log_event(LOG_ERROR, "error", "error=\"accept: %s\" action=pause_accept_ms:%d",
                      strerror(-fd), EMFILE_PAUSE_MS);
            resume = loop_clock_ms() + EMFILE_PAUSE_MS;
        }
    }
    close(lfd);
    if (spare >= 0)
        close(spare);
    pthread_attr_destroy(&attr);

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
    int fd = io__bind(srv, &srv->addr, false);
    if (fd < 0) {
        char addr[NET_ADDRSTRLEN];
        net_format_addr((const struct sockaddr *)&srv->addr.ss, addr, sizeof(addr));
        fprintf(stderr, "secho: cannot listen on %s: %s\n", addr, strerror(-fd));
        return 1;
    }
    struct tmodel m = {.live = 0};
    m.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m.wakefd < 0) {
        fprintf(stderr, "secho: cannot start: %s\n", strerror(errno));
        close(fd);
        return 1;
    }
    pthread_mutex_init(&m.mu, NULL);
    pthread_cond_init(&m.cv, NULL);
    server_set_wake(srv, wake_threads, &m);
    struct net_addr bound;
    net_local_addr(fd, &bound);
    /* Everything the server holds open is opened before it says it is ready. */
    int spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    server_ready(srv, &bound);
    serve_tcp(srv, &m, fd, spare);
    server_set_wake(srv, NULL, NULL);
    close(m.wakefd);
    pthread_mutex_destroy(&m.mu);
    pthread_cond_destroy(&m.cv);
    return 0;
}
