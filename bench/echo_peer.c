/* SPDX-License-Identifier: MIT */
/*
 * The baseline for bench/run.sh: the smallest honest echo server one would write in C.
 * One thread, one epoll, level-triggered; TCP: read up to 64 KiB and write it straight
 * back (what did not fit waits, and reading pauses, until the socket drains); UDP: each
 * datagram sent back. No logging, no protocol, no limits: a lower bound on the work any
 * echo server does per message, so secho's figures are read as ratios against it.
 *
 * Usage: echo_peer tcp|udp   (binds 127.0.0.1, a free port; prints "listening on
 * 127.0.0.1:PORT" like secho server). Built by bench/run.sh; not part of secho.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK 65536

struct conn {
    int fd;
    int waiting;     /* watching EPOLLOUT instead of EPOLLIN */
    size_t off, len; /* unsent bytes in data[off .. len) */
    char data[CHUNK];
};

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void drop(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Writes what is pending; returns -1 when the connection is gone. */
static int flush(int ep, struct conn *c)
{
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            if (!c->waiting) {
                struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->waiting = 1;
            }
            return 0;
        }
        c->off += (size_t)n;
    }
    c->off = c->len = 0;
    if (c->waiting) { /* only a change of interest costs a syscall */
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->waiting = 0;
    }
    return 0;
}

static void serve_udp(int fd)
{
    static char buf[CHUNK];
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("recvfrom");
        }
        (void)sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, len);
    }
}

int main(int argc, char **argv)
{
    int udp = argc > 1 && strcmp(argv[1], "udp") == 0;
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || (!udp && listen(lfd, 1024) < 0) ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
        die("bind");
    printf("listening on 127.0.0.1:%u\n", ntohs(a.sin_port));
    fflush(stdout);
    if (udp)
        serve_udp(lfd);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll");
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0)
                    continue;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                c = malloc(sizeof(*c));
                if (!c) {
                    close(fd);
                    continue;
                }
                c->fd = fd;
                c->off = c->len = 0;
                c->waiting = 0;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                continue;
            }
            if (c->len > c->off) {
                if (flush(ep, c) < 0)
                    drop(ep, c);
                continue;
            }
            ssize_t r = recv(c->fd, c->data, CHUNK, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                drop(ep, c);
                continue;
            }
            if (r < 0)
                continue;
            c->off = 0;
            c->len = (size_t)r;
            if (flush(ep, c) < 0)
                drop(ep, c);
        }
    }
}
