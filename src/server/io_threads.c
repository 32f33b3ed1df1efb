/* SPDX-License-Identifier: MIT */
/* Threads model: one thread per TCP connection (the notebook's Exercise 2). Each thread
 * drives its connection engine with poll(), watching a shared eventfd that signals shutdown;
 * while its connection wants only to read, it waits in recv(2) itself instead (one system
 * call to wait and read, not two: a thread blocked in recv costs what a blocking Python
 * server's does), on a blocking socket with SO_RCVTIMEO for the engine's deadline, and the
 * shutdown wake interrupts it with WAKE_SIG.
 * Threads are reused: one whose connection ended waits for the next (the most recently idle
 * is handed the next connection, so few stay warm) and ends after IDLE_EXIT_MS without one.
 * UDP has no connections, so over UDP this model serves from one event-loop worker. */
#include "io.h"
#include "io_worker.h"

#include "crypto.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Connection threads run on small stacks (what the engine, the protocols and OpenSSL's
 * handshakes use is a few tens of KiB); under the sanitizers, whose frames are much larger,
 * on 1 MiB. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SECHO_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SECHO_SANITIZED 1
#endif
#endif
#ifdef SECHO_SANITIZED
#define THREAD_STACK (1024 * 1024)
#else
#define THREAD_STACK (256 * 1024)
#endif
/* The longest a thread sleeps without looking at the shutdown flag. */
#define MAX_WAIT_MS 1000
/* An idle thread beyond IDLE_KEEP ends once it has waited this long for a connection. */
#define IDLE_EXIT_MS 2000
#define IDLE_KEEP    2
/* A thread idle this long gives back the pages of its log ring (log_thread_idle); under
 * churn the next connection comes sooner, and the ring's pages are simply reused. */
#define IDLE_RELEASE_MS 100
/* A connection thread's pool of freed buffer storage: the 64 KiB read room it takes and
 * gives back per read, and as much again for the output storage an echo takes and gives
 * back (with the read room alone, each echo's output went to malloc and back: 3% more server
 * CPU per echo, bench/ab.sh). The old storage of a growing output buffer beyond that is
 * freed, since no other connection could take it (and the pool is drained when a connection
 * ends). */
#define THREAD_POOL_BYTES (2 * SERVER_READ_CHUNK)
/* Interrupts a connection thread's recv(2) at shutdown (its handler does nothing; the
 * system call returns EINTR). Sent again every STOP_NUDGE_MS to the threads that have not
 * seen the stop yet, since one sent just before a thread entered recv is lost. */
#define WAKE_SIG      SIGRTMIN
#define STOP_NUDGE_MS 20

struct tworker;

struct tmodel {
    struct server *srv;
    int wakefd;
    pthread_attr_t attr;
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* signalled when `threads` drops to 0 */
    long threads;         /* started and neither ended nor parked */
    struct tworker *idle; /* the idle threads, most recently idle first (LIFO) */
    long nidle;
    struct tworker *busy; /* the threads serving a connection (for WAKE_SIG) */
    uint64_t ended;       /* threads that ended (for the acceptor's trim) */
    bool quit;            /* shutdown: idle threads park instead of waiting */
};

/* One connection thread; it serves one connection after another. */
struct tworker {
    struct tmodel *m;
    pthread_cond_t cv;           /* signalled when a connection is handed over, or at shutdown */
    struct tworker *prev, *next; /* in m->idle while idle, in m->busy while serving */
    pthread_t self;
    atomic_bool stop_seen; /* its connection has begun its shutdown: no more WAKE_SIG */
    bool has_job;
    int fd;
    struct net_addr peer;
    struct server_conn sc;
    struct stats_slot stats; /* this thread's counters, in worker 0's */
};

static void on_wake_sig(int sig)
{
    (void)sig;
}

/* With m->mu held: interrupts the recv of every serving thread that has not seen the stop. */
static void nudge_busy(struct tmodel *m)
{
    for (struct tworker *w = m->busy; w; w = w->next)
        if (!atomic_load(&w->stop_seen))
            pthread_kill(w->self, WAKE_SIG);
}

static void wake_threads(struct server *srv)
{
    struct tmodel *m = srv->model;
    uint64_t one = 1;
    ssize_t r = write(m->wakefd, &one, sizeof(one));
    (void)r;
    pthread_mutex_lock(&m->mu);
    nudge_busy(m);
    pthread_mutex_unlock(&m->mu);
}

/* How long poll may sleep: until the engine's deadline, at most MAX_WAIT_MS. */
static int wait_ms(const struct conn *c, uint64_t now)
{
    uint64_t due = conn_deadline(c);
    if (due <= now)
        return 0;
    return due - now < MAX_WAIT_MS ? (int)(due - now) : MAX_WAIT_MS;
}

/*
 * A thread that is idle or whose connection ended during shutdown does not exit: the process
 * is about to, and ending 15,000 threads one by one (each unmapping its stack, with a TLB
 * shootdown across the cores, under the address-space lock every other exiting thread wants)
 * took longer than the connections themselves, past SPEC's 2 s. Parked, the threads are
 * ended all at once by the process's exit. A parked thread holds nothing (its connection is
 * closed and freed, its crypto state released) and runs no code; signals are blocked in
 * every connection thread, so pause() never returns.
 */
static _Noreturn void park_until_exit(void)
{
    for (;;)
        pause();
}

/* With m->mu held: w goes first on the list at *head (m->idle or m->busy). */
static void list_push(struct tworker **head, struct tworker *w)
{
    w->prev = NULL;
    w->next = *head;
    if (*head)
        (*head)->prev = w;
    *head = w;
}

/* With m->mu held: w leaves the list at *head. */
static void list_remove(struct tworker **head, struct tworker *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        *head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void idle_push(struct tmodel *m, struct tworker *w)
{
    list_push(&m->idle, w);
    m->nidle++;
}

static void idle_remove(struct tmodel *m, struct tworker *w)
{
    list_remove(&m->idle, w);
    m->nidle--;
}

/* SO_RCVTIMEO of fd, in ms (0: none), set only when it changes: with an idle timeout the
 * wait is MAX_WAIT_MS again and again, and costs no system call. */
static bool set_rcvtimeo(int fd, int *cur_ms, int ms)
{
    if (ms == *cur_ms)
        return true;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        return false;
    *cur_ms = ms;
    return true;
}

/* Serves w's connection until it is closed, then closes and frees everything it held. */
static void serve(struct tworker *w)
{
    struct conn *c = &w->sc.c;
    struct server *srv = w->m->srv;
    struct tmodel *m = w->m;
    int fd = w->fd;
    uint64_t now = loop_clock_ms();
    bool stop_seen = false;
    /* A blocking socket, for recv to wait in; the other receives and sends say
     * MSG_DONTWAIT. If that fails, the thread only polls. */
    bool can_wait = net_set_nonblock(fd, false) == 0;
    int rcvtimeo_ms = 0;

    memset(&w->sc, 0, sizeof(w->sc));
    if (server_conn_init(&w->sc, srv, &w->peer, now) == 0) {
        model_conn_send(c, fd, now);
        while (!conn_closed(c)) {
            if (!stop_seen && atomic_load(&srv->stopping)) {
                stop_seen = true;
                atomic_store(&w->stop_seen, true);
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
            int timeout = wait_ms(c, now);
            if (can_wait && !stop_seen && want == CONN_WANT_READ && timeout > 0) {
                if (set_rcvtimeo(fd, &rcvtimeo_ms, timeout)) {
                    model_conn_recv_wait(c, fd, now);
                    model_conn_send(c, fd, loop_clock_ms());
                    continue;
                }
                can_wait = false;
            }
            struct pollfd p[2] = {
                {.fd = fd,
                 .events = (short)((want & CONN_WANT_READ ? POLLIN : 0) |
                                   (want & CONN_WANT_WRITE ? POLLOUT : 0))},
                {.fd = stop_seen ? -1 : m->wakefd, .events = POLLIN},
            };
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
    buf_pool_drain();
    /* The last one open gives back at once what the connections freed (unless a trim ran
     * less than MODEL_TRIM_MS ago: then the acceptor does, on its next round). */
    if (model_release(srv) == 0)
        model_idle_trim(loop_clock_ms());
}

/* The deadline of an idle wait of ms, on the clock the condition variables use. */
static struct timespec idle_deadline(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void *worker_main(void *arg)
{
    struct tworker *w = arg;
    struct tmodel *m = w->m;
    struct server *srv = m->srv;
    stats_enter(&srv->stats, 0, &w->stats);
    buf_pool_set_limit(THREAD_POOL_BYTES);

    w->self = pthread_self();
    /* Connection threads take WAKE_SIG (the process blocks the signals its signal thread
     * waits for, and this is not one of them). */
    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, WAKE_SIG);
    pthread_sigmask(SIG_UNBLOCK, &wake, NULL);

    pthread_mutex_lock(&m->mu);
    while (w->has_job) {
        w->has_job = false;
        atomic_store(&w->stop_seen, false);
        list_push(&m->busy, w);
        pthread_mutex_unlock(&m->mu);
        serve(w);
        pthread_mutex_lock(&m->mu);
        list_remove(&m->busy, w);
        if (m->quit)
            break;
        idle_push(m, w);
        bool released = false;
        struct timespec until = idle_deadline(IDLE_RELEASE_MS);
        while (!w->has_job && !m->quit) {
            int e = pthread_cond_timedwait(&w->cv, &m->mu, &until);
            if (e != ETIMEDOUT || w->has_job)
                continue;
            if (!released) {
                released = true;
                pthread_mutex_unlock(&m->mu);
                log_thread_idle();
                pthread_mutex_lock(&m->mu);
                until = idle_deadline(IDLE_EXIT_MS - IDLE_RELEASE_MS);
            } else if (m->nidle > IDLE_KEEP) {
                break;
            } else {
                until = idle_deadline(IDLE_EXIT_MS);
            }
        }
        if (!w->has_job)
            idle_remove(m, w); /* timed out, or shutdown */
    }
    bool park = m->quit;
    pthread_mutex_unlock(&m->mu);

    stats_leave();
    /* OpenSSL's thread-exit cleanup takes one of its global locks; done from the key
     * destructor after `threads` drops, it would race with the library's own cleanup at
     * process exit (the main thread does not join detached threads). */
    crypto_thread_stop();
    pthread_cond_destroy(&w->cv);
    free(w);
    pthread_mutex_lock(&m->mu);
    m->ended++;
    /* Only the last one wakes the acceptor thread, which waits for none but the last. */
    if (--m->threads == 0)
        pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    if (park)
        park_until_exit();
    return NULL;
}

/* Hands an accepted, admitted connection to the most recently idle thread, or to a new one;
 * on failure it is closed. */
static void hand_off(struct tmodel *m, int fd, const struct net_addr *peer)
{
    struct server *srv = m->srv;
    pthread_mutex_lock(&m->mu);
    struct tworker *w = m->idle;
    if (w) {
        idle_remove(m, w);
        w->fd = fd;
        w->peer = *peer;
        w->has_job = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&m->mu);
        return;
    }
    m->threads++;
    pthread_mutex_unlock(&m->mu);

    int e = ENOMEM;
    w = calloc(1, sizeof(*w));
    if (w) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        e = pthread_cond_init(&w->cv, &ca);
        pthread_condattr_destroy(&ca);
        if (e == 0) {
            w->m = m;
            w->fd = fd;
            w->peer = *peer;
            w->has_job = true;
            pthread_t th;
            e = pthread_create(&th, &m->attr, worker_main, w);
            if (e == 0)
                return;
            pthread_cond_destroy(&w->cv);
        }
        free(w);
    }
    char text[NET_ADDRSTRLEN];
    net_format_addr((const struct sockaddr *)&peer->ss, text, sizeof(text));
    char er[128], v[LOG_VALUE_MAX(NET_ADDRSTRLEN)], ev[LOG_VALUE_MAX(128)];
    snprintf(er, sizeof(er), "cannot start a thread: %s", strerror(e));
    log_event(LOG_ERROR, "error", "peer=%s error=%s", log_value(v, sizeof(v), text),
              log_value(ev, sizeof(ev), er));
    pthread_mutex_lock(&m->mu);
    m->threads--;
    pthread_mutex_unlock(&m->mu);
    close(fd);
    model_release(srv);
}

static void serve_tcp(struct server *srv, struct tmodel *m, struct model_acceptor *acc, int nacc)
{
    stats_enter(&srv->stats, 0, NULL); /* the acceptor counts what it refuses */
    /* What had happened (connections accepted, threads ended) at the last trim. */
    uint64_t accepted = 0, trimmed_at = 0;

    while (!atomic_load(&srv->stopping)) {
        uint64_t now = loop_clock_ms();
        /* Nothing open: give back what the connections' threads freed (once a second at
         * most, and only when something happened since the last time). */
        if (atomic_load(&srv->nconns) == 0) {
            pthread_mutex_lock(&m->mu);
            uint64_t seen = accepted + m->ended;
            pthread_mutex_unlock(&m->mu);
            if (seen != trimmed_at && model_idle_trim(now))
                trimmed_at = seen;
        }
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
            if (fd >= 0) {
                accepted++;
                hand_off(m, fd, &peer);
            }
        }
    }
    for (int i = 0; i < nacc; i++)
        model_acceptor_close(&acc[i]);
    stats_leave();

    /* Idle threads park; every busy one delivers what it owes and closes by stop_at, then
     * parks: wait for them. */
    pthread_mutex_lock(&m->mu);
    m->quit = true;
    for (struct tworker *w = m->idle; w; w = w->next)
        pthread_cond_signal(&w->cv);
    while (m->threads > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until); /* m->cv's clock */
        until.tv_nsec += STOP_NUDGE_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        if (pthread_cond_timedwait(&m->cv, &m->mu, &until) == ETIMEDOUT)
            nudge_busy(m);
    }
    pthread_mutex_unlock(&m->mu);
}

int io_threads_run(struct server *srv)
{
    if (srv->conf.udp)
        return io_epoll_run(srv);
    struct model_listeners ls;
    if (model_listen(srv, 1, &ls) < 0)
        return 1;
    struct tmodel m = {.srv = srv};
    m.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m.wakefd < 0) {
        fprintf(stderr, "secho: cannot start: %s\n", strerror(errno));
        model_listeners_close(&ls);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_wake_sig}; /* no SA_RESTART: recv gets EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(WAKE_SIG, &sa, NULL);
    pthread_mutex_init(&m.mu, NULL);
    pthread_cond_init(&m.cv, NULL);
    pthread_attr_init(&m.attr);
    pthread_attr_setdetachstate(&m.attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&m.attr, THREAD_STACK);
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
    pthread_attr_destroy(&m.attr);
    return 0;
}
