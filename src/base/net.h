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

/* A non-blocking, close-on-exec listening TCP socket bound to addr (SO_REUSEADDR; with
 * reuseport also SO_REUSEPORT). Returns the fd or -errno. */
int net_listen_tcp(const struct net_addr *addr, bool reuseport, int backlog);
/* A non-blocking, close-on-exec UDP socket bound to addr. Returns the fd or -errno. */
int net_bind_udp(const struct net_addr *addr, bool reuseport);
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
bool net_addr_equal(const struct sockaddr *a, const struct sockaddr *b);

#endif
