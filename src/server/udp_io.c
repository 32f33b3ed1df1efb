/* SPDX-License-Identifier: MIT */
/* UDP socket pump: one recvmmsg takes a batch of datagrams into the peer table, and the
 * replies the batch produced leave together in sendmmsg calls (two system calls per batch
 * instead of two per datagram). The server never blocks on one peer: a datagram that does
 * not fit the socket buffer is dropped. SECHO_UDP_SINGLE=1 keeps the recvfrom/sendto path,
 * one datagram per call, for measuring the difference. */
#include "udp_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stats.h"

#define UDP_IO_MAX_DGRAM 65536
/* Room for the replies of one batch before they must go: any one reply fits after a flush. */
#define UDP_IO_OUT_BYTES (2 * UDP_IO_MAX_DGRAM)

/*
 * Receive slots are whole datagrams (so none is ever truncated) in one allocation that is
 * only reserved: the kernel touches the pages a datagram fills, so small datagrams cost a
 * page per slot ever used, not 64 KiB. Replies are copied out of the table's buffers (which
 * hold them only during the emit callback) into one arena until the batch is done.
 */
struct udp_batch {
    uint8_t *in; /* UDP_IO_BATCH slots of UDP_IO_MAX_DGRAM */
    struct mmsghdr inmsg[UDP_IO_BATCH];
    struct iovec iniov[UDP_IO_BATCH];
    struct sockaddr_storage from[UDP_IO_BATCH];
    struct mmsghdr outmsg[UDP_IO_BATCH];
    struct iovec outiov[UDP_IO_BATCH];
    struct sockaddr_storage to[UDP_IO_BATCH];
    int nout;
    size_t outlen;
    uint8_t out[UDP_IO_OUT_BYTES];
};

static void send_one(struct udp_service *u, const struct net_addr *to, const uint8_t *data,
                     size_t len)
{
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

/* Sends the replies queued in the batch, in order. A partial sendmmsg goes on from the
 * first one not sent; EAGAIN (the socket buffer is full) drops the rest; another error
 * (a bad address, a datagram too big for the route) drops only the one it names. */
static void flush(struct udp_service *u)
{
    struct udp_batch *b = u->batch;
    int i = 0;
    while (i < b->nout) {
        int r =
            sendmmsg(u->fd, b->outmsg + i, (unsigned)(b->nout - i), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            i++;
            continue;
        }
        for (int k = i; k < i + r; k++)
            stats_add(STATS_BYTES_OUT, b->outmsg[k].msg_len);
        i += r;
    }
    b->nout = 0;
    b->outlen = 0;
}

static void emit(void *arg, const struct net_addr *to, const uint8_t *data, size_t len)
{
    struct udp_service *u = arg;
    struct udp_batch *b = u->batch;
    if (!b || len > UDP_IO_OUT_BYTES || to->len > sizeof(b->to[0])) {
        send_one(u, to, data, len);
        return;
    }
    if (b->nout == UDP_IO_BATCH || b->outlen + len > UDP_IO_OUT_BYTES)
        flush(u);
    int i = b->nout++;
    memcpy(b->out + b->outlen, data, len);
    memcpy(&b->to[i], &to->ss, to->len);
    b->outiov[i] = (struct iovec){.iov_base = b->out + b->outlen, .iov_len = len};
    b->outmsg[i].msg_hdr = (struct msghdr){
        .msg_name = &b->to[i], .msg_namelen = to->len, .msg_iov = &b->outiov[i], .msg_iovlen = 1};
    b->outlen += len;
}

static struct udp_batch *batch_new(void)
{
    const char *single = getenv("SECHO_UDP_SINGLE");
    if (single && strcmp(single, "1") == 0)
        return NULL;
    struct udp_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL; /* the one-datagram path still works */
    b->in = malloc((size_t)UDP_IO_BATCH * UDP_IO_MAX_DGRAM);
    if (!b->in) {
        free(b);
        return NULL;
    }
    return b;
}

static void batch_free(struct udp_batch *b)
{
    if (b)
        free(b->in);
    free(b);
}

int udp_init(struct udp_service *u, struct server *srv, int fd)
{
    u->fd = -1;
    u->batch = NULL;
    u->single = NULL;
    int r = udp_peers_init(&u->peers, srv, emit, u);
    if (r < 0) {
        udp_peers_close(&u->peers);
        return r;
    }
    u->batch = batch_new();
    if (!u->batch) {
        u->single = malloc(UDP_IO_MAX_DGRAM);
        if (!u->single) {
            udp_peers_close(&u->peers);
            return -ENOMEM;
        }
    }
    u->fd = fd;
    return 0;
}

/* The one-datagram-per-call path. */
static bool readable_single(struct udp_service *u, uint64_t now)
{
    uint8_t *data = u->single;
    for (int i = 0; i < UDP_IO_BATCH && u->fd >= 0; i++) {
        struct net_addr from;
        from.len = sizeof(from.ss);
        ssize_t n = recvfrom(u->fd, data, UDP_IO_MAX_DGRAM, MSG_DONTWAIT,
                             (struct sockaddr *)&from.ss, &from.len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* EAGAIN: drained. ECONNREFUSED and friends: an ICMP error about an earlier
             * reply; nothing to do for a connectionless server. */
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return false;
            continue;
        }
        stats_add(STATS_BYTES_IN, (uint64_t)n);
        udp_peers_on_datagram(&u->peers, &from, data, (size_t)n, now);
    }
    return true;
}

bool udp_on_readable(struct udp_service *u, uint64_t now)
{
    struct udp_batch *b = u->batch;
    if (!b)
        return readable_single(u, now);
    for (int i = 0; i < UDP_IO_BATCH; i++) {
        b->iniov[i] = (struct iovec){.iov_base = b->in + (size_t)i * UDP_IO_MAX_DGRAM,
                                     .iov_len = UDP_IO_MAX_DGRAM};
        b->inmsg[i].msg_hdr = (struct msghdr){.msg_name = &b->from[i],
                                              .msg_namelen = sizeof(b->from[i]),
                                              .msg_iov = &b->iniov[i],
                                              .msg_iovlen = 1};
    }
    int n;
    /* An ICMP error about an earlier reply (ECONNREFUSED and friends) is reported once and
     * means nothing to a connectionless server: try again, a bounded number of times. */
    for (int tries = 0;; tries++) {
        n = recvmmsg(u->fd, b->inmsg, UDP_IO_BATCH, MSG_DONTWAIT, NULL);
        if (n >= 0 || errno == EAGAIN || errno == EWOULDBLOCK || tries >= 4)
            break;
    }
    if (n <= 0)
        return false;
    for (int i = 0; i < n && u->fd >= 0; i++) {
        struct net_addr from;
        from.len = b->inmsg[i].msg_hdr.msg_namelen;
        memcpy(&from.ss, &b->from[i], from.len <= sizeof(from.ss) ? from.len : sizeof(from.ss));
        size_t len = b->inmsg[i].msg_len;
        stats_add(STATS_BYTES_IN, (uint64_t)len);
        udp_peers_on_datagram(&u->peers, &from, b->iniov[i].iov_base, len, now);
    }
    flush(u);
    return n == UDP_IO_BATCH;
}

int udp_on_timer(struct udp_service *u, uint64_t now, int max_ms)
{
    udp_peers_expire(&u->peers, now);
    if (u->batch)
        flush(u); /* nothing waits for the next batch */
    uint64_t at = udp_peers_next_deadline(&u->peers);
    if (at <= now)
        return 0;
    return at - now < (uint64_t)max_ms ? (int)(at - now) : max_ms;
}

void udp_close(struct udp_service *u)
{
    udp_peers_close(&u->peers);
    if (u->batch)
        flush(u); /* the goodbyes of sessions that end here, if any */
    batch_free(u->batch);
    u->batch = NULL;
    free(u->single);
    u->single = NULL;
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
}
