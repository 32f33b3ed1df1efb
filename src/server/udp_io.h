/* SPDX-License-Identifier: MIT */
/* Shared-internal: the UDP socket of one event-loop worker, pumping datagrams between the
 * socket and the engine's peer table (udp_peers.h). */
#ifndef SECHO_UDP_IO_H
#define SECHO_UDP_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "service.h"
#include "udp_peers.h"

/* Datagrams one udp_on_readable takes at most (one recvmmsg), and replies one sendmmsg
 * carries at most. */
#define UDP_IO_BATCH 64

struct udp_batch;

struct udp_service {
    int fd;
    struct udp_peers peers;
    /* The batch buffers (recvmmsg in, sendmmsg out), or NULL for the one-datagram-per-call
     * path (SECHO_UDP_SINGLE=1 in the environment, kept for measuring the batch). */
    struct udp_batch *batch;
    /* The one-datagram path's receive room (batch NULL). On the heap, not thread-local:
     * static TLS is zeroed in every thread the process starts (a connection thread of
     * -m threads too), 64 KiB of RSS per thread for a path that most never run. */
    uint8_t *single;
};

/* Takes ownership of a bound, non-blocking UDP socket on success; the table's replies are
 * sent through u, so u must stay at its address until udp_close. Returns 0, or -errno (then
 * the fd is still the caller's and nothing else is owed). */
int udp_init(struct udp_service *u, struct server *srv, int fd);
/* Receives what is queued on the socket (one bounded batch: UDP_IO_BATCH datagrams), hands
 * each datagram to the peer table and sends what it answers before returning (a reply that
 * does not fit the socket buffer is dropped, as the network might have). Returns true when
 * the batch was full, so more may be queued: a driver whose readiness is edge-triggered
 * calls again; a level-triggered one may wait. */
bool udp_on_readable(struct udp_service *u, uint64_t now);
/* Expires idle and stalled sessions. Returns ms until the next expiry is due (<= max_ms). */
int udp_on_timer(struct udp_service *u, uint64_t now, int max_ms);
/* Forgets every session (logging `disconnect reason=shutdown`), closes the socket. */
void udp_close(struct udp_service *u);

#endif
