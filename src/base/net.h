/* SPDX-License-Identifier: MIT */
/* Socket helpers: resolve, listen, accept, connect, address text. Each returns an fd or -errno. */
#ifndef SECHO_NET_H
#define SECHO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest text net_format_addr writes: "[" IPv6 "]:" port. */
#define NET_ADDRSTRLEN 64

struct net_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Parses a decimal port 0..65535 (no sign, no junk). */
bool net_parse_port(const char *s, uint16_t *port);

/* Resolves host (IPv4/IPv6 literal or name) and port for SOCK_STREAM or SOCK_DGRAM.
 * Returns 0, or -1 with a reason in err (gai_strerror text). Blocks on DNS. */
int net_resolve(const char *host, uint16_t port, int socktype, struct net_addr *out, char *err,
                size_t errlen);

/* Up to max distinct addresses that host (IPv4/IPv6 literal or name) resolves to for
 * SOCK_STREAM or SOCK_DGRAM, with port, in the resolver's order. Returns how many (>= 1),
 * or -1 with a reason in err (gai_strerror text). Blocks on DNS. */
int net_resolve_all(const char *host, uint16_t port, int socktype, struct net_addr *out, int max,
                    char *err, size_t errlen);

/* How a listening socket is set up (net_listen_tcp, net_bind_udp). */
enum net_listen_flags {
    NET_REUSEPORT = 1U << 0, /* SO_REUSEPORT before bind: join the port's group (see below) */
    NET_V6ONLY = 1U << 1,    /* IPv6: IPV6_V6ONLY, so the IPv4 side can be bound apart */
};

/* A non-blocking, close-on-exec listening TCP socket bound to addr (SO_REUSEADDR, so a
 * restart is not refused for connections in TIME_WAIT; a port another socket listens on
 * is still refused with -EADDRINUSE unless both use SO_REUSEPORT). Returns the fd or -errno. */
int net_listen_tcp(const struct net_addr *addr, unsigned flags, int backlog);
/* A non-blocking, close-on-exec UDP socket bound to addr. Never SO_REUSEADDR: over UDP it
 * would let a second socket share a port already bound. Returns the fd or -errno. */
int net_bind_udp(const struct net_addr *addr, unsigned flags);

/*
 * n (>= 1) sockets of socktype on addr that only this call owns: the first is bound (and,
 * TCP, listening) without SO_REUSEPORT, so the kernel refuses with -EADDRINUSE a port that
 * anyone holds, SO_REUSEPORT group or not; only then does it turn on SO_REUSEPORT, and the
 * other n-1 sockets join its group (the kernel spreads connections, and UDP peers by address
 * hash, across the n). With n == 1 there is no group at all. flags may hold NET_V6ONLY.
 * On success fds[0..n-1] are set, *bound is the address as bound (the real port when addr
 * asks for port 0) and 0 is returned; on failure nothing is left open and -errno is returned.
 *
 * The window that remains: once the group exists, a socket of the same user that sets
 * SO_REUSEPORT before it binds may still join it (the kernel has no way to close a group).
 * No secho does that (each binds its first socket exclusively, as here, and is refused);
 * only a program of the same user that asks to share the port on purpose can.
 */
int net_listen_group(const struct net_addr *addr, int socktype, int n, unsigned flags, int *fds,
                     struct net_addr *bound);
/* Accepts one connection as a non-blocking, close-on-exec fd with TCP_NODELAY. Retries
 * EINTR. Returns the fd, or -errno (-EAGAIN when none is pending, -EMFILE/-ENFILE when
 * out of descriptors, -ECONNABORTED and friends for a connection that died in the queue). */
int net_accept(int lfd, struct net_addr *peer);
/* Connects a blocking TCP socket, giving up after timeout_ms. Returns the fd or -errno. */
int net_connect_tcp(const struct net_addr *addr, int timeout_ms);
/* A connected (blocking) UDP socket. Returns the fd or -errno. */
int net_connect_udp(const struct net_addr *addr);
/* The address a socket is bound to. Returns 0 or -errno. */
int net_local_addr(int fd, struct net_addr *out);

int net_set_nonblock(int fd, bool on);

/* "127.0.0.1:9090" or "[::1]:9090"; IPv4-mapped IPv6 shows as IPv4. */
void net_format_addr(const struct sockaddr *sa, char *out, size_t outlen);
/* "HOST:PORT" with IPv6 literals in brackets, for messages and known_hosts. */
void net_format_hostport(const char *host, uint16_t port, char *out, size_t outlen);
bool net_is_loopback(const struct sockaddr *sa);

/* An IPv4 or IPv6 network (--trusted-proxy). */
struct net_cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network byte order, the bits past `prefix` zero */
    uint8_t prefix;   /* 0..32 (IPv4) or 0..128 (IPv6) */
};
/* Parses "ADDR" or "ADDR/PREFIX" (an IPv4 or IPv6 literal, IPv6 optionally in brackets; a
 * bare address is a /32 or /128). Host bits past the prefix are cleared, as routing tables
 * read "10.1.2.3/8". Returns false (with *out unspecified) for anything else. Pure. */
bool net_cidr_parse(const char *text, struct net_cidr *out);
/* True if sa (AF_INET or AF_INET6) lies in c. An IPv4-mapped IPv6 address (a dual-stack
 * socket's IPv4 peer) is in an IPv4 network if its IPv4 address is. */
bool net_cidr_match(const struct net_cidr *c, const struct sockaddr *sa);
/* "10.0.0.0/8" or "2001:db8::/32" into out (room for NET_ADDRSTRLEN). */
void net_cidr_format(const struct net_cidr *c, char *out, size_t outlen);
bool net_addr_equal(const struct sockaddr *a, const struct sockaddr *b);

#endif
