/* SPDX-License-Identifier: MIT */
/* What every I/O model shares: the readiness line, listening, accept admission and the
 * out-of-descriptors path, and the readiness-style byte moves between a socket and the engine. */
#include "io.h"
#include "model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

void server_ready(struct server *srv, const struct net_addr *bound)
{
    char addr[NET_ADDRSTRLEN];
    net_format_addr((const struct sockaddr *)&bound->ss, addr, sizeof(addr));
    log_event(LOG_INFO, "listening", "addr=%s transport=%s proto=%s model=%s", addr,
              srv->conf.udp ? "udp" : "tcp", srv->conf.proto->name,
              srv->conf.model == SERVER_THREADS ? "threads"
              : srv->conf.model == SERVER_EPOLL ? "epoll"
                                                : "reactors");
    printf("listening on %s\n", addr);
    fflush(stdout);
}

int model_listen(struct server *srv, const struct net_addr *addr, bool reuseport)
{
    int fd = srv->conf.udp ? net_bind_udp(addr, reuseport) : net_listen_tcp(addr, reuseport, 1024);
    if (fd < 0) {
        char text[NET_ADDRSTRLEN];
        net_format_addr((const struct sockaddr *)&addr->ss, text, sizeof(text));
        fprintf(stderr, "secho: cannot listen on %s: %s\n", text, strerror(-fd));
        return -1;
    }
    return fd;
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
            log_event(LOG_WARN, "denied", "peer=%s reason=no_fds", text);
            close(fd);
        }
        a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    log_event(LOG_ERROR, "error", "error=\"accept: %s\" action=pause_accept_ms:%d", strerror(-err),
              MODEL_EMFILE_PAUSE_MS);
    a->resume_at = now + MODEL_EMFILE_PAUSE_MS;
}

int model_accept(struct model_acceptor *a, struct net_addr *peer, uint64_t now)
{
    struct server *srv = a->srv;
    int fd = net_accept(a->lfd, peer);
    if (fd < 0) {
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM)
            out_of_fds(a, fd, now);
        return fd; /* -EAGAIN, or ECONNABORTED, EPROTO...: that one died in the queue */
    }
    if (atomic_fetch_add(&srv->nconns, 1) >= srv->conf.max_conns) {
        atomic_fetch_sub(&srv->nconns, 1);
        char text[NET_ADDRSTRLEN];
        net_format_addr((const struct sockaddr *)&peer->ss, text, sizeof(text));
        log_event(LOG_WARN, "denied", "peer=%s reason=max_conns limit=%ld", text,
                  srv->conf.max_conns);
        close(fd);
        return -ECONNREFUSED;
    }
    return fd;
}

void model_release(struct server *srv)
{
    atomic_fetch_sub(&srv->nconns, 1);
}

void model_conn_recv(struct conn *c, int fd, uint64_t now)
{
    uint8_t *p;
    size_t room = conn_read_buf(c, now, &p);
    if (room == 0)
        return;
    ssize_t n = recv(fd, p, room, 0);
    if (n > 0)
        conn_read_commit(c, (size_t)n, now);
    else if (n == 0)
        conn_on_eof(c, now);
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        conn_on_recv_error(c, errno);
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
