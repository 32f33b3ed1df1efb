/* SPDX-License-Identifier: MIT */
/* UDP echo service. Memory is bounded: at most --max-conns peer sessions, each expiring
 * when idle; a datagram from a new address is first vetted by the protocol's dgram_new
 * (which may answer statelessly, e.g. with a cookie) before any state is kept for it. */
#include "udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define UDP_MAX_DGRAM 65536
#define UDP_BATCH     64
/* Sessions of peers that never said `exit` are forgotten after this much silence when no
 * --idle-timeout is given. */
#define UDP_DEFAULT_IDLE_MS (180 * 1000)

struct udp_peer {
    struct udp_peer *next;
    struct net_addr addr;
    uint64_t id;
    uint64_t created, last;
    char text[NET_ADDRSTRLEN];
    void *pconn;
};

static uint64_t hash_seed;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
    if (RAND_bytes((unsigned char *)&hash_seed, sizeof(hash_seed)) != 1)
        hash_seed = (uint64_t)(uintptr_t)&hash_seed ^ 0x9e3779b97f4a7c15ULL;
}

static uint64_t addr_hash(const struct sockaddr *sa)
{
    /* FNV-1a over the address, keyed with a random seed so that nobody can aim many
     * addresses at one bucket. */
    const uint8_t *p;
    size_t n;
    uint16_t port;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)sa;
        p = a->sin6_addr.s6_addr;
        n = 16;
        port = a->sin6_port;
    } else {
        const struct sockaddr_in *a = (const void *)sa;
        p = (const uint8_t *)&a->sin_addr.s_addr;
        n = 4;
        port = a->sin_port;
    }
    uint64_t h = 0xcbf29ce484222325ULL ^ hash_seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    h = (h ^ (port & 0xff)) * 0x100000001b3ULL;
    h = (h ^ (port >> 8)) * 0x100000001b3ULL;
    return h;
}

int udp_init(struct udp_service *u, struct server *srv, int fd)
{
    memset(u, 0, sizeof(*u));
    u->srv = srv;
    u->fd = fd;
    pthread_once(&seed_once, seed_init);
    u->nbuckets = 1024;
    u->table = calloc(u->nbuckets, sizeof(*u->table));
    if (!u->table)
        return -ENOMEM;
    buf_init(&u->reply, UDP_MAX_DGRAM);
    buf_init(&u->out, UDP_MAX_DGRAM + 256);
    return 0;
}

static struct udp_peer **find_slot(struct udp_service *u, const struct sockaddr *sa)
{
    struct udp_peer **pp = &u->table[addr_hash(sa) & (u->nbuckets - 1)];
    while (*pp && !net_addr_equal((const struct sockaddr *)&(*pp)->addr.ss, sa))
        pp = &(*pp)->next;
    return pp;
}

static void peer_free(struct udp_service *u, struct udp_peer *p, const char *reason)
{
    const struct proto_vt *vt = u->srv->conf.proto;
    log_event(LOG_INFO, "disconnect", "peer=%s conn=%llu reason=%s", p->text,
              (unsigned long long)p->id, reason);
    proto_conn_free(vt, p->pconn);
    free(p);
    u->npeers--;
    atomic_fetch_sub(&u->srv->nconns, 1);
}

static const char *peer_error(const struct udp_service *u, const struct udp_peer *p)
{
    const struct proto_vt *vt = u->srv->conf.proto;
    return vt->conn_error ? vt->conn_error(p->pconn) : NULL;
}

/* Sends b as one datagram. An empty reply means "nothing to say"; an empty echo (of an
 * empty datagram, RFC 862) is still a datagram, so callers say which it is. */
static void send_dgram(struct udp_service *u, struct buf *b, const struct net_addr *to,
                       bool even_empty)
{
    if (buf_empty(b) && !even_empty)
        return;
    /* A full socket buffer drops the datagram, as the network might have: UDP promises
     * nothing more, and the server must never block on one peer. */
    ssize_t r;
    do
        r = sendto(u->fd, buf_head(b), buf_len(b), MSG_DONTWAIT | MSG_NOSIGNAL,
                   (const struct sockaddr *)&to->ss, to->len);
    while (r < 0 && errno == EINTR);
    buf_reset(b);
}

static struct udp_peer *peer_new(struct udp_service *u, const struct net_addr *from,
                                 const uint8_t *data, size_t n, uint64_t now)
{
    struct server *srv = u->srv;
    const struct proto_vt *vt = srv->conf.proto;
    char text[NET_ADDRSTRLEN];
    net_format_addr((const struct sockaddr *)&from->ss, text, sizeof(text));
    buf_reset(&u->reply);
    int r =
        vt->dgram_new(srv->pctx, (const struct sockaddr *)&from->ss, from->len, data, n, &u->reply);
    if (r != 1) {
        if (r < 0 && r != PROTO_DROP)
            server_log_proto_error(srv, 0, text, r, NULL);
        send_dgram(u, &u->reply, from, false);
        return NULL;
    }
    if (atomic_load(&srv->nconns) >= srv->conf.max_conns) {
        log_event(LOG_WARN, "denied", "peer=%s reason=max_conns", text);
        return NULL;
    }
    struct udp_peer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->addr = *from;
    p->id = atomic_fetch_add(&srv->next_id, 1);
    p->created = p->last = now;
    memcpy(p->text, text, sizeof(text));
    atomic_fetch_add(&srv->nconns, 1);
    u->npeers++;
    log_event(LOG_INFO, "connect", "peer=%s conn=%llu", p->text, (unsigned long long)p->id);
    if ((r = proto_conn_new(vt, srv->pctx, PROTO_SERVER, &u->reply, &p->pconn)) < 0) {
        server_log_proto_error(srv, p->id, p->text, r, NULL);
        peer_free(u, p, "error");
        return NULL;
    }
    /* A greeting from conn_init (none for the built-in protocols) goes out as one datagram. */
    send_dgram(u, &u->reply, from, false);
    struct udp_peer **slot = find_slot(u, (const struct sockaddr *)&from->ss);
    *slot = p;
    return p;
}

static void unlink_peer(struct udp_service *u, struct udp_peer *p)
{
    struct udp_peer **pp = find_slot(u, (const struct sockaddr *)&p->addr.ss);
    if (*pp == p)
        *pp = p->next;
}

static void handle(struct udp_service *u, const struct net_addr *from, const uint8_t *data,
                   size_t n, uint64_t now)
{
    struct server *srv = u->srv;
    const struct proto_vt *vt = srv->conf.proto;
    struct udp_peer *p = *find_slot(u, (const struct sockaddr *)&from->ss);
    if (!p) {
        if (atomic_load(&srv->stopping))
            return;
        p = peer_new(u, from, data, n, now);
        if (!p)
            return;
    }
    p->last = now;
    buf_reset(&u->reply);
    struct proto_msg m = {0};
    int r = vt->dgram_read(p->pconn, data, n, &u->reply, &m);
    send_dgram(u, &u->reply, from, false);
    if (r == PROTO_HANDSHAKE) {
        char id[128] = "";
        if (vt->conn_peer_id && vt->conn_peer_id(p->pconn, id, sizeof(id)))
            log_event(LOG_INFO, "handshake", "conn=%llu peer=%s peer_key=%s",
                      (unsigned long long)p->id, p->text, id);
        return;
    }
    if (r < 0) {
        if (r != PROTO_DROP)
            server_log_proto_error(srv, p->id, p->text, r, peer_error(u, p));
        if (r == PROTO_E_LIMIT) {
            unlink_peer(u, p);
            peer_free(u, p, "error");
        }
        return;
    }
    if (r != PROTO_MSG)
        return;
    struct server_msg msg;
    server_msg_reset(&msg);
    server_msg_add(&msg, m.data, m.len);
    if (vt->flags & PROTO_F_STREAM_ECHO)
        server_msg_trim_eol(&msg);
    int admin = vt->conn_admin ? vt->conn_admin(p->pconn) : -1;
    enum server_action act =
        server_on_message(srv, p->id, p->text, (const struct sockaddr *)&from->ss, admin, &msg);
    buf_reset(&u->out);
    if (act == ACT_DENIED)
        r = vt->dgram_write(p->pconn, (const uint8_t *)SERVER_DENIED_TEXT,
                            sizeof(SERVER_DENIED_TEXT) - 1, &u->out);
    else
        r = vt->dgram_write(p->pconn, m.data, m.len, &u->out);
    if (r < 0)
        server_log_proto_error(srv, p->id, p->text, r, peer_error(u, p));
    /* After `exit` the session is gone before its echo leaves, so a peer that sees the echo
     * can count on the freed slot (--max-conns). The echo is already encoded in u->out. */
    if (act == ACT_EXIT) {
        unlink_peer(u, p);
        peer_free(u, p, "exit");
    }
    if (r >= 0)
        send_dgram(u, &u->out, from, true);
    if (act == ACT_SHUTDOWN)
        server_request_shutdown(srv);
}

void udp_on_readable(struct udp_service *u, uint64_t now)
{
    static _Thread_local uint8_t data[UDP_MAX_DGRAM];
    for (int i = 0; i < UDP_BATCH; i++) {
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
        handle(u, &from, data, (size_t)n, now);
    }
}

int udp_on_timer(struct udp_service *u, uint64_t now, int max_ms)
{
    const struct proto_vt *vt = u->srv->conf.proto;
    uint64_t idle = u->srv->conf.idle_timeout_ms > 0 ? (uint64_t)u->srv->conf.idle_timeout_ms
                                                     : UDP_DEFAULT_IDLE_MS;
    uint64_t hs = u->srv->conf.handshake_timeout_ms > 0
                      ? (uint64_t)u->srv->conf.handshake_timeout_ms
                      : UINT64_MAX;
    for (size_t i = 0; i < u->nbuckets && u->npeers > 0; i++) {
        struct udp_peer **pp = &u->table[i];
        while (*pp) {
            struct udp_peer *p = *pp;
            /* A session whose handshake is not done in time is forgotten like a stalled TCP
             * handshake, so admitted-but-silent peers cannot hold --max-conns slots. */
            bool stalled = now - p->created >= hs && !vt->conn_ready(p->pconn);
            if (stalled || now - p->last >= idle) {
                *pp = p->next;
                peer_free(u, p, "timeout");
            } else {
                pp = &p->next;
            }
        }
    }
    return max_ms;
}

void udp_close(struct udp_service *u)
{
    if (u->table) {
        for (size_t i = 0; i < u->nbuckets; i++) {
            while (u->table[i]) {
                struct udp_peer *p = u->table[i];
                u->table[i] = p->next;
                peer_free(u, p, "shutdown");
            }
        }
        free(u->table);
        u->table = NULL;
    }
    buf_free_secret(&u->reply);
    buf_free_secret(&u->out);
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
}
