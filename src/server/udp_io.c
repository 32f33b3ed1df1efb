/* SPDX-License-Identifier: MIT */
/* UDP socket pump: recvfrom a bounded batch into the peer table, sendto what it emits. The
 * server never blocks on one peer: a datagram that does not fit the socket buffer is dropped. */
#include "udp_io.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stats.h"

#define UDP_IO_MAX_DGRAM 65536
#define UDP_IO_BATCH     64

static void send_dgram(void *arg, const struct net_addr *to, const uint8_t *data, size_t len)
{
    struct udp_service *u = arg;
    /* A full socket buffer drops the datagram, as the network might have: UDP promises
     * nothing more, and the server must never block on one peer. */
    ssize_t r;
    do
        r = sendto(u->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)&to->ss,
                   to->len);
    while (r < 0 && errno == EINTR);
    if (r > 0)
        stats_add(STATS_BYTES_OUT, (uint64_t)r);
}

int udp_init(struct udp_service *u, struct server *srv, int fd)
{
    u->fd = -1;
    int r = udp_peers_init(&u->peers, srv, send_dgram, u);
    if (r < 0) {
        udp_peers_close(&u->peers);
        return r;
    }
    u->fd = fd;
    return 0;
}

void udp_on_readable(struct udp_service *u, uint64_t now)
{
    static _Thread_local uint8_t data[UDP_IO_MAX_DGRAM];
    for (int i = 0; i < UDP_IO_BATCH && u->fd >= 0; i++) {
        struct net_addr from;
        from.len = sizeof(from.ss);
        ssize_t n = recvfrom(u->fd, data, sizeof(data), MSG_DONTWAIT, (struct sockaddr *)&from.ss,
                             &from.len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* EAGAIN: drained. ECONNREFUSED and friends: an ICMP error about an earlier
             * reply; nothing to do for a connectionless server. */
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            continue;
        }
        stats_add(STATS_BYTES_IN, (uint64_t)n);
        udp_peers_on_datagram(&u->peers, &from, data, (size_t)n, now);
    }
}

int udp_on_timer(struct udp_service *u, uint64_t now, int max_ms)
{
    udp_peers_expire(&u->peers, now);
    uint64_t at = udp_peers_next_deadline(&u->peers);
    if (at <= now)
        return 0;
    return at - now < (uint64_t)max_ms ? (int)(at - now) : max_ms;
}

void udp_close(struct udp_service *u)
{
    udp_peers_close(&u->peers);
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
}
