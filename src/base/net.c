/* SPDX-License-Identifier: MIT */
/* Socket helpers. EINTR is retried here, at the syscall site. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool net_parse_port(const char *s, uint16_t *port)
{
    if (!s || !*s)
        return false;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535)
            return false;
    }
    *port = (uint16_t)v;
    return true;
}

int net_resolve(const char *host, uint16_t port, int socktype, struct net_addr *out, char *err,
                size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = socktype};
    struct addrinfo *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    hints.ai_flags = AI_NUMERICSERV;
    int r = getaddrinfo(host, portstr, &hints, &res);
    if (r != 0) {
        snprintf(err, errlen, "%s", r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
        return -1;
    }
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int net_resolve_all(const char *host, uint16_t port, int socktype, struct net_addr *out, int max,
                    char *err, size_t errlen)
{
    /* No AI_ADDRCONFIG: it would drop ::1 on a host whose only IPv6 address is loopback. */
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = socktype, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    int r = getaddrinfo(host, portstr, &hints, &res);
    if (r != 0) {
        snprintf(err, errlen, "%s", r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
        return -1;
    }
    int n = 0;
    for (const struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(out[n].ss))
            continue;
        bool seen = false;
        for (int i = 0; i < n && !seen; i++)
            seen = net_addr_equal((const struct sockaddr *)&out[i].ss, ai->ai_addr);
        if (seen)
            continue;
        memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
        out[n].len = ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(res);
    if (n == 0) {
        snprintf(err, errlen, "%s", gai_strerror(EAI_NONAME));
        return -1;
    }
    return n;
}

int net_set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

static int bound_socket(const struct net_addr *addr, int type, unsigned flags)
{
    int fd = socket(addr->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    /* TCP only: over UDP, SO_REUSEADDR lets two sockets bind one port at once. */
    if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    if ((flags & NET_REUSEPORT) && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    if ((flags & NET_V6ONLY) && addr->ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

int net_listen_tcp(const struct net_addr *addr, unsigned flags, int backlog)
{
    int fd = bound_socket(addr, SOCK_STREAM, flags);
    if (fd < 0)
        return fd;
    if (listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int net_bind_udp(const struct net_addr *addr, unsigned flags)
{
    return bound_socket(addr, SOCK_DGRAM, flags);
}

/* The listen backlog of every socket net_listen_group opens. */
#define NET_BACKLOG 1024

static int open_one(const struct net_addr *addr, int socktype, unsigned flags)
{
    return socktype == SOCK_STREAM ? net_listen_tcp(addr, flags, NET_BACKLOG)
                                   : net_bind_udp(addr, flags);
}

int net_listen_group(const struct net_addr *addr, int socktype, int n, unsigned flags, int *fds,
                     struct net_addr *bound)
{
    flags &= ~(unsigned)NET_REUSEPORT;
    /* Exclusive first: bound (TCP: listening) without SO_REUSEPORT, this socket is refused
     * by any holder of the port, and once it holds the port any other exclusive socket is
     * refused in turn. Two such founders may both bind a TCP port (SO_REUSEADDR allows it
     * while neither listens) but only the first to listen wins: listen checks again. */
    int fd0 = open_one(addr, socktype, flags);
    if (fd0 < 0)
        return fd0;
    int r = net_local_addr(fd0, bound);
    if (r < 0)
        goto fail0;
    int one = 1;
    /* The kernel looks at the flag as it is when the next socket binds (TCP: listens), so
     * setting it now makes fd0 the founder of a group whose other members come next. */
    if (n > 1 && setsockopt(fd0, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        r = -errno;
        goto fail0;
    }
    fds[0] = fd0;
    for (int i = 1; i < n; i++) {
        int fd = open_one(bound, socktype, flags | NET_REUSEPORT);
        if (fd < 0) {
            while (i-- > 0)
                close(fds[i]);
            return fd;
        }
        fds[i] = fd;
    }
    return 0;
fail0:
    close(fd0);
    return r;
}

int net_accept(int lfd, struct net_addr *peer)
{
    for (;;) {
        peer->len = sizeof(peer->ss);
        int fd =
            accept4(lfd, (struct sockaddr *)&peer->ss, &peer->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            int one = 1;
            if (peer->ss.ss_family != AF_UNIX)
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

int net_connect_tcp(const struct net_addr *addr, int timeout_ms)
{
    int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int e = 0;
    if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0) {
        if (errno != EINPROGRESS) {
            e = errno;
            goto fail;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int r;
        do
            r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r == 0) {
            e = ETIMEDOUT;
            goto fail;
        }
        socklen_t sl = sizeof(e);
        if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
            e = errno;
        if (e)
            goto fail;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    net_set_nonblock(fd, false);
    return fd;
fail:
    close(fd);
    return -e;
}

int net_connect_udp(const struct net_addr *addr)
{
    int fd = socket(addr->ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int net_local_addr(int fd, struct net_addr *out)
{
    out->len = sizeof(out->ss);
    return getsockname(fd, (struct sockaddr *)&out->ss, &out->len) < 0 ? -errno : 0;
}

void net_format_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof(host));
            snprintf(out, outlen, "%s:%u", host, ntohs(in6->sin6_port));
        } else {
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
            snprintf(out, outlen, "[%s]:%u", host, ntohs(in6->sin6_port));
        }
    } else {
        snprintf(out, outlen, "unknown");
    }
}

void net_format_hostport(const char *host, uint16_t port, char *out, size_t outlen)
{
    if (strchr(host, ':'))
        snprintf(out, outlen, "[%s]:%u", host, port);
    else
        snprintf(out, outlen, "%s:%u", host, port);
}

bool net_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

bool net_cidr_parse(const char *text, struct net_cidr *out)
{
    char addr[INET6_ADDRSTRLEN + 2];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    if (alen == 0 || alen >= sizeof(addr))
        return false;
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    char *a = addr;
    if (a[0] == '[') {
        if (alen < 3 || a[alen - 1] != ']')
            return false;
        a[alen - 1] = '\0';
        a++;
    }
    memset(out, 0, sizeof(*out));
    unsigned max;
    if (a == addr && inet_pton(AF_INET, a, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, a, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return false;
    }
    unsigned prefix = max;
    if (slash) {
        const char *d = slash + 1;
        size_t nd = strlen(d);
        if (nd == 0 || nd > 3 || (nd > 1 && d[0] == '0'))
            return false;
        prefix = 0;
        for (size_t i = 0; i < nd; i++) {
            if (d[i] < '0' || d[i] > '9')
                return false;
            prefix = prefix * 10 + (unsigned)(d[i] - '0');
        }
        if (prefix > max)
            return false;
    }
    out->prefix = (uint8_t)prefix;
    for (unsigned bit = prefix; bit < max; bit++)
        out->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    return true;
}

/* The first `bits` bits of a and b are equal. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool net_cidr_match(const struct net_cidr *c, const struct sockaddr *sa)
{
    const uint8_t *a;
    if (sa->sa_family == AF_INET) {
        if (c->family != AF_INET)
            return false;
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (c->family == AF_INET6)
            return prefix_equal(in6->s6_addr, c->addr, c->prefix);
        if (!IN6_IS_ADDR_V4MAPPED(in6))
            return false;
        a = in6->s6_addr + 12;
    } else {
        return false;
    }
    return prefix_equal(a, c->addr, c->prefix);
}

void net_cidr_format(const struct net_cidr *c, char *out, size_t outlen)
{
    char a[INET6_ADDRSTRLEN] = "?";
    inet_ntop(c->family, c->addr, a, sizeof(a));
    snprintf(out, outlen, "%s/%u", a, c->prefix);
}

bool net_addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}
