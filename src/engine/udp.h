/* SPDX-License-Identifier: MIT */
/* UDP echo service: one socket, a bounded table of peer sessions, any protocol's dgram form. */
#ifndef SECHO_UDP_H
#define SECHO_UDP_H

#include <stdint.h>

#include "service.h"

struct udp_peer;

struct udp_service {
    struct server *srv;
    int fd;
    struct udp_peer **table; /* open hashing by peer address */
    size_t nbuckets;
    long npeers;
    struct buf reply, out;
};

/* Takes ownership of a bound, non-blocking UDP socket. Returns 0 or -errno. */
int udp_init(struct udp_service *u, struct server *srv, int fd);
/* Receives and answers what is queued on the socket (a bounded batch). */
void udp_on_readable(struct udp_service *u, uint64_t now);
/* Expires idle sessions. Returns ms until the next expiry check is useful (<= max_ms). */
int udp_on_timer(struct udp_service *u, uint64_t now, int max_ms);
/* Forgets every session (logging `disconnect reason=shutdown`), closes the socket. */
void udp_close(struct udp_service *u);

#endif
