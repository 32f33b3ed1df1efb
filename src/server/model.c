/* SPDX-License-Identifier: MIT */
/* What every I/O model shares: the readiness line, listening, accept admission and the
 * out-of-descriptors path, and the readiness-style byte moves between a socket and the engine. */
#include "io.h"
#include "model.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "activation.h"
#include "buf.h"
#include "log.h"
#include "loop.h"
#include "stats.h"

const char *model_name(enum server_model m)
{
    switch (m) {
    case SERVER_THREADS:
        return "threads";
    case SERVER_EPOLL:
        return "epoll";
    case SERVER_URING:
        return "uring";
    default:
        return "reactors";
    }
}

void server_ready(struct server *srv, const struct net_addr *addrs, int n)
{
    char addr[NET_ADDRSTRLEN];
    const struct activation *inh = srv->inherited && srv->inherited->n > 0 ? srv->inherited : NULL;
    for (int i = 0; i < n; i++) {
        net_format_addr((const struct sockaddr *)&addrs[i].ss, addr, sizeof(addr));
        char v[LOG_VALUE_MAX(NET_ADDRSTRLEN)], nv[LOG_VALUE_MAX(64)];
        log_event(LOG_INFO, "listening", "addr=%s transport=%s proto=%s model=%s%s%s",
                  log_value(v, sizeof(v), addr), srv->conf.udp ? "udp" : "tcp",
                  srv->conf.proto->name, model_name(srv->conf.model),
                  inh && i < inh->n ? " fdname=" : "",
                  inh && i < inh->n ? log_value(nv, sizeof(nv), inh->socks[i].name) : "");
    }
    /* Written once listening (a pid file names a server that accepts traffic), before the
     * readiness line, so that whoever waits for that line finds it. */
    if (srv->pidfile_fd >= 0) {
        int r = pidfile_write(srv->pidfile_fd);
        if (r < 0) {
            char e[128], ev[LOG_VALUE_MAX(128)];
            snprintf(e, sizeof(e), "pid file: %s", strerror(-r));
            log_event(LOG_ERROR, "error", "error=%s", log_value(ev, sizeof(ev), e));
        }
    }
    net_format_addr((const struct sockaddr *)&addrs[0].ss, addr, sizeof(addr));
    printf("listening on %s\n", addr);
    fflush(stdout);
    char state[64 + NET_ADDRSTRLEN];
    snprintf(state, sizeof(state), "READY=1\nSTATUS=listening on %s", addr);
    activation_notify(state);
}

/* With -p 0, how many times the whole set is tried when the port the first address got is
 * held by someone else on another address. */
#define MODEL_PORT0_TRIES 8

static void set_port(struct net_addr *a, uint16_t port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
    else if (a->ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

static uint16_t get_port(const struct net_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return 0;
}

/* The machine cannot serve this address at all (no IPv6, or not one of its addresses),
 * as opposed to a port that is taken or a resource that ran out. */
static bool unavailable(int err)
{
    return err == -EAFNOSUPPORT || err == -EADDRNOTAVAIL || err == -EPROTONOSUPPORT;
}

static void close_opened(struct model_listeners *l)
{
    for (int i = 0; i < l->naddrs * l->nsock; i++) {
        if (l->fds[i] >= 0)
            close(l->fds[i]);
        l->fds[i] = -1;
    }
    l->naddrs = 0;
}

/*
 * One try at opening the whole set. Returns 0, or -errno with *failed the address that
 * failed (the first one, when every address was unavailable). skip_err[a] is set to the
 * error of each address skipped as unavailable, 0 for the others, for the caller to log
 * once it is done.
 */
static int open_set(struct server *srv, const struct net_addr *addrs, int n, unsigned flags,
                    struct model_listeners *out, struct net_addr *failed, int *skip_err)
{
    uint16_t port = srv->conf.port;
    int first_err = 0;
    for (int a = 0; a < n; a++) {
        struct net_addr want = addrs[a];
        set_port(&want, port);
        struct net_addr bound;
        int r = net_listen_group(&want, srv->conf.udp ? SOCK_DGRAM : SOCK_STREAM, out->nsock, flags,
                                 &out->fds[out->naddrs * out->nsock], &bound);
        if (r < 0 && unavailable(r)) {
            if (!first_err) {
                first_err = r;
                *failed = want;
            }
            skip_err[a] = r;
            continue;
        }
        if (r < 0) {
            *failed = want;
            close_opened(out);
            return r;
        }
        skip_err[a] = 0;
        port = get_port(&bound);
        out->addrs[out->naddrs++] = bound;
    }
    return out->naddrs > 0 ? 0 : first_err;
}

/*
 * The inherited sockets instead of binding. A TCP listener is shared by every worker (each
 * gets its own descriptor of it, watched with EPOLLEXCLUSIVE, so the kernel wakes one idle
 * worker per connection). A UDP socket is never shared, since a peer's datagrams must all
 * reach the one worker that holds its session: each goes to one worker, round robin, and
 * there are only as many workers as sockets (out->nsock says how many).
 */
static int listen_inherited(struct server *srv, int nsock, struct model_listeners *out)
{
    struct activation *a = srv->inherited;
    int k = srv->conf.udp && a->n < nsock ? a->n : nsock;
    out->naddrs = a->n;
    out->nsock = k;
    out->fds = malloc(sizeof(int) * (size_t)a->n * (size_t)k);
    if (!out->fds) {
        fprintf(stderr, "secho: out of memory\n");
        return -1;
    }
    for (int i = 0; i < a->n * k; i++)
        out->fds[i] = -1;
    for (int s = 0; s < a->n; s++) {
        out->addrs[s] = a->socks[s].addr;
        if (srv->conf.udp) {
            out->fds[s * k + s % k] = a->socks[s].fd;
            a->socks[s].fd = -1;
            continue;
        }
        for (int i = 1; i < k; i++) {
            out->fds[s * k + i] = fcntl(a->socks[s].fd, F_DUPFD_CLOEXEC, 3);
            if (out->fds[s * k + i] < 0) {
                fprintf(stderr, "secho: cannot share inherited socket %d: %s\n", a->socks[s].fd,
                        strerror(errno));
                close_opened(out);
                free(out->fds);
                out->fds = NULL;
                return -1;
            }
        }
        out->fds[s * k] = a->socks[s].fd;
        a->socks[s].fd = -1;
    }
    return 0;
}

int model_listen(struct server *srv, int nsock, struct model_listeners *out)
{
    memset(out, 0, sizeof(*out));
    if (srv->inherited && srv->inherited->n > 0 && nsock >= 1)
        return listen_inherited(srv, nsock, out);
    struct net_addr addrs[MODEL_MAX_ADDRS];
    char err[256];
    int n =
        net_resolve_all(srv->conf.host, srv->conf.port, srv->conf.udp ? SOCK_DGRAM : SOCK_STREAM,
                        addrs, MODEL_MAX_ADDRS, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "secho: cannot resolve %s: %s\n", srv->conf.host, err);
        return -1;
    }
    /* IPv4 first, each family in the resolver's order. */
    struct net_addr sorted[MODEL_MAX_ADDRS] = {0};
    int ns = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++)
            if ((addrs[i].ss.ss_family == AF_INET) == (pass == 0))
                sorted[ns++] = addrs[i];
    memcpy(addrs, sorted, sizeof(addrs[0]) * (size_t)n);
    bool v4 = false, v6 = false;
    for (int i = 0; i < n; i++) {
        v4 |= addrs[i].ss.ss_family == AF_INET;
        v6 |= addrs[i].ss.ss_family == AF_INET6;
    }
    /* Beside an IPv4 address an IPv6 socket must not take IPv4 too (a name for both
     * wildcards would collide with itself); alone it keeps the system's default. */
    unsigned flags = v4 && v6 ? NET_V6ONLY : 0;

    if (n < 1 || nsock < 1) {
        fprintf(stderr, "secho: cannot listen on %s: no address to bind\n", srv->conf.host);
        return -1;
    }
    out->nsock = nsock;
    out->fds = malloc(sizeof(int) * (size_t)n * (size_t)nsock);
    if (!out->fds) {
        fprintf(stderr, "secho: out of memory\n");
        return -1;
    }
    for (int i = 0; i < n * nsock; i++)
        out->fds[i] = -1;
    int skip_err[MODEL_MAX_ADDRS], r;
    struct net_addr failed = addrs[0];
    for (int tries = 0;; tries++) {
        r = open_set(srv, addrs, n, flags, out, &failed, skip_err);
        /* Only a port picked by the kernel for the first address can be worth another try:
         * a port given with -p is refused as it is. */
        if (r != -EADDRINUSE || srv->conf.port != 0 || tries + 1 >= MODEL_PORT0_TRIES ||
            get_port(&failed) == 0)
            break;
    }
    if (r < 0) {
        char text[NET_ADDRSTRLEN];
        net_format_addr((const struct sockaddr *)&failed.ss, text, sizeof(text));
        fprintf(stderr, "secho: cannot listen on %s: %s\n", text, strerror(-r));
        free(out->fds);
        out->fds = NULL;
        return -1;
    }
    for (int a = 0; a < n; a++) {
        if (!skip_err[a])
            continue;
        struct net_addr want = addrs[a];
        set_port(&want, get_port(&out->addrs[0]));
        char text[NET_ADDRSTRLEN];
        net_format_addr((const struct sockaddr *)&want.ss, text, sizeof(text));
        char e[128], v[LOG_VALUE_MAX(NET_ADDRSTRLEN)], ev[LOG_VALUE_MAX(128)];
        snprintf(e, sizeof(e), "listen: %s", strerror(-skip_err[a]));
        log_event(LOG_WARN, "error", "addr=%s error=%s action=skip_address",
                  log_value(v, sizeof(v), text), log_value(ev, sizeof(ev), e));
    }
    return 0;
}

bool model_listener_shared(const struct server *srv)
{
    return srv->inherited && srv->inherited->n > 0 && !srv->conf.udp &&
           srv->conf.model == SERVER_REACTORS && atomic_load(&srv->stats.used) > 1;
}

int model_listeners_take(struct model_listeners *l, int i, int *fds)
{
    int n = 0;
    for (int a = 0; a < l->naddrs; a++) {
        if (l->fds[a * l->nsock + i] >= 0)
            fds[n++] = l->fds[a * l->nsock + i];
        l->fds[a * l->nsock + i] = -1;
    }
    return n;
}

void model_listeners_close(struct model_listeners *l)
{
    if (l->fds)
        close_opened(l);
    free(l->fds);
    l->fds = NULL;
}

void model_acceptor_init(struct model_acceptor *a, struct server *srv, int lfd)
{
    a->srv = srv;
    a->lfd = lfd;
    a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    a->resume_at = 0;
}

void model_acceptor_close(struct model_acceptor *a)
{
    if (a->lfd >= 0)
        close(a->lfd);
    a->lfd = -1;
    if (a->spare_fd >= 0)
        close(a->spare_fd);
    a->spare_fd = -1;
}

bool model_accept_paused(const struct model_acceptor *a, uint64_t now)
{
    return now < a->resume_at;
}

static void out_of_fds(struct model_acceptor *a, int err, uint64_t now)
{
    if (a->spare_fd >= 0) {
        close(a->spare_fd);
        a->spare_fd = -1;
        struct net_addr peer;
        int fd = net_accept(a->lfd, &peer);
        if (fd >= 0) {
            char text[NET_ADDRSTRLEN];
            net_format_addr((const struct sockaddr *)&peer.ss, text, sizeof(text));
            char v[LOG_VALUE_MAX(NET_ADDRSTRLEN)];
            log_event(LOG_WARN, "denied", "peer=%s reason=no_fds", log_value(v, sizeof(v), text));
            stats_add(STATS_ERR_NO_FDS, 1);
            close(fd);
        }
        a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    char e[128], ev[LOG_VALUE_MAX(128)];
    snprintf(e, sizeof(e), "accept: %s", strerror(-err));
    log_event(LOG_ERROR, "error", "error=%s action=pause_accept_ms:%d",
              log_value(ev, sizeof(ev), e), MODEL_EMFILE_PAUSE_MS);
    a->resume_at = now + MODEL_EMFILE_PAUSE_MS;
}

void model_accept_failed(struct model_acceptor *a, int err, uint64_t now)
{
    if (err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM)
        out_of_fds(a, err, now);
}

int model_admit(struct model_acceptor *a, int fd, const struct net_addr *peer)
{
    struct server *srv = a->srv;
    if (atomic_fetch_add(&srv->nconns, 1) >= srv->conf.max_conns) {
        atomic_fetch_sub(&srv->nconns, 1);
        stats_add(STATS_ERR_MAX_CONNS, 1);
        char text[NET_ADDRSTRLEN];
        net_format_addr((const struct sockaddr *)&peer->ss, text, sizeof(text));
        char v[LOG_VALUE_MAX(NET_ADDRSTRLEN)];
        /* A client retrying at will: rate-limited per peer and overall, as log.h says. */
        static const struct log_kind kind = {"denied", LOG_WARN, "reason=max_conns"};
        log_event_limited(&kind, text, "peer=%s reason=max_conns limit=%ld",
                          log_value(v, sizeof(v), text), srv->conf.max_conns);
        close(fd);
        return -ECONNREFUSED;
    }
    return fd;
}

int model_accept(struct model_acceptor *a, struct net_addr *peer, uint64_t now)
{
    int fd = net_accept(a->lfd, peer);
    if (fd < 0) {
        model_accept_failed(a, fd, now);
        return fd; /* -EAGAIN, or ECONNABORTED, EPROTO...: that one died in the queue */
    }
    return model_admit(a, fd, peer);
}

long model_release(struct server *srv)
{
    return atomic_fetch_sub(&srv->nconns, 1) - 1;
}

bool model_idle_trim(uint64_t now)
{
    static _Atomic uint64_t last; /* when a trim last ran; 0: never */
    buf_pool_drain();
    log_thread_idle();
    uint64_t was = atomic_load(&last);
    if (was != 0 && now - was < MODEL_TRIM_MS)
        return false;
    if (!atomic_compare_exchange_strong(&last, &was, now))
        return false; /* another worker trims now */
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    return true;
}

/* Receives once into the engine; `wait`: recv(2) may block (a blocking socket), and the
 * bytes are stamped with the time they came, not the time the wait began. */
static void conn_recv(struct conn *c, int fd, uint64_t now, bool wait)
{
    uint8_t *p;
    size_t room = conn_read_buf(c, now, &p);
    if (room == 0)
        return;
    ssize_t n = recv(fd, p, room, wait ? 0 : MSG_DONTWAIT);
    if (wait)
        now = loop_clock_ms();
    if (n > 0)
        conn_read_commit(c, (size_t)n, now);
    else if (n == 0)
        conn_on_eof(c, now);
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        conn_on_recv_error(c, errno);
}

void model_conn_recv(struct conn *c, int fd, uint64_t now)
{
    conn_recv(c, fd, now, false);
}

void model_conn_recv_wait(struct conn *c, int fd, uint64_t now)
{
    conn_recv(c, fd, now, true);
}

void model_conn_send(struct conn *c, int fd, uint64_t now)
{
    const uint8_t *p;
    size_t n;
    while ((n = conn_out_peek(c, now, &p)) > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_on_send_error(c, errno);
            break;
        }
        conn_out_sent(c, (size_t)w, now);
    }
    if (conn_wants(c) & CONN_WANT_SHUT_WR) {
        (void)shutdown(fd, SHUT_WR);
        conn_shut_done(c);
    }
}

void model_conn_hangup(struct conn *c, int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    conn_on_hangup(c, err);
}
