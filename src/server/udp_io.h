/* SPDX-License-Identifier: MIT */
/* Shared-internal: the UDP socket of one event-loop worker, pumping datagrams between the
 * socket and the engine's peer table (udp_peers.h). */
#ifndef SECHO_UDP_IO_H
#define SECHO_UDP_IO_H

#include <stdint.h>

#include "service.h"
#include "udp_peers.h"

struct udp_service {
    int fd;
    struct udp_peers peers;
};

/* Takes ownership of a bound, non-blocking UDP socket on success; the table's replies are
 * sent through u, so u must stay at its address until udp_close. Returns 0, or -errno (then
 * the fd is still the caller's and nothing else is owed). */
int udp_init(struct udp_service *u, struct server *srv, int fd);
/* Receives what is queued on the socket (a bounded batch), hands each datagram to the peer
 * table and sends what it answers. */
void udp_on_readable(struct udp_service *u, uint64_t now);
/* Expires idle and stalled sessions. Returns ms until the next expiry is due (<= max_ms). */
int udp_on_timer(struct udp_service *u, uint64_t now, int max_ms);
/* Forgets every session (logging `disconnect reason=shutdown`), closes the socket. */
void udp_close(struct udp_service *u);

#endif
