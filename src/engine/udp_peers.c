/* SPDX-License-Identifier: MIT */
/* UDP peer table. Memory is bounded: at most --max-conns peer sessions, each expiring when
 * idle; a datagram from a new address is first vetted by the protocol's dgram_new (which may
 * answer statelessly, e.g. with a cookie) before any state is kept for it. No socket here:
 * the caller feeds datagrams in and sends what the emit callback hands it.
 *
 * A full table never locks new peers out. UDP has no connection a peer must close, so
 * a session that is never spoken to again would hold its slot until the idle timeout; a
 * second of datagrams from as many source ports as --max-conns would then deny everyone
 * else for minutes. Instead, when --max-conns is reached, the new peer takes the slot of
 * one this table holds (logged `disconnect reason=evicted`, not `timeout`: the operator
 * should see that the table was full):
 *   - a peer that has not yet proven itself ("unproven": a plain peer that sent a single
 *     datagram, a secure handshake not finished or finished without data, a lab-fernet peer
 *     that took its key and sent no token), the oldest first, as long as such peers hold at
 *     least half of the table;
 *   - otherwise the least recently active peer (the head of by_last).
 * So a flood of strangers that never prove they can talk (forged addresses, key requests,
 * half handshakes) churns through its own half of the table and displaces at most half of
 * the sessions that did, the least recently active first, while a new peer always gets a
 * session; a peer loses its session only when more new peers than the table holds arrived
 * since it last spoke. For plain that costs the peer nothing (its next datagram opens a new
 * session; plain keeps no state but the log's conn id); a lab-fernet or secure peer must ask
 * for a key or handshake again. A table that holds no peer while the others (-m reactors:
 * one table per thread, one shared count) hold the whole limit admits one all the same, so
 * the peers held never exceed --max-conns by more than the number of tables minus one, and
 * no new peer is ever denied for want of room.
 * Eviction lines are rate-limited so a flood cannot flood the log: they go through the log's
 * limit of repeated events (log_event_limited, shared by every table and every rate-limited
 * kind), and the left-out ones are counted in `disconnect reason=evicted suppressed=N`
 * lines.
 *
 * A peer proves itself with a valid message on a session that it already had before the
 * datagram: plain with its second datagram (the first one's source address may be forged,
 * and an answer to it need not reach anyone), lab-fernet with its first valid token (which
 * needs the key the server sent to the address), secure with its first data message. Until
 * then its lines (connect, message, denied, handshake, disconnect) go through the
 * server's limit for unproven peers (service.h: server_unproven_limit, keyed by the host
 * without the port), so a flood of new source ports writes a bounded number of lines and
 * counts the rest in suppressed=N fields. A proven peer's lines are written as they come,
 * without taking that limit's lock.
 *
 * A session created for a datagram that its protocol then refuses before any handshake is
 * done (a secure initiation with a valid cookie but an invalid key) is forgotten at once, so
 * the address's next, correct attempt starts afresh instead of meeting a dead session. */
#include "udp_peers.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "stats.h"

#define UDP_MAX_DGRAM 65536
/* Sessions of peers that never said `exit` are forgotten after this much silence when no
 * --idle-timeout is given. */
#define UDP_DEFAULT_IDLE_MS (180 * 1000)
/* Evictions: a peer's disconnect line within the log's rate limit (see log.h). */
static const struct log_kind kind_evicted = {"disconnect", LOG_INFO, "reason=evicted"};
/* An unproven peer's lines, within server_unproven_limit (see the top of this file); its
 * disconnect lines one kind per reason, so that a summary says which. */
static const struct log_kind kind_connect = {"connect", LOG_INFO, NULL};
static const struct log_kind kind_handshake = {"handshake", LOG_INFO, NULL};
static const struct log_kind kind_gone[] = {
    {"disconnect", LOG_INFO, "reason=timeout"},
    {"disconnect", LOG_INFO, "reason=error"},
    {"disconnect", LOG_INFO, "reason=exit"},
    {"disconnect", LOG_INFO, "reason=shutdown"},
};
static const struct log_kind kind_gone_other = {"disconnect", LOG_INFO, NULL};

/* The three orders a peer is kept in besides its hash bucket. */
enum { BY_LAST, BY_CREATED, UNPROVEN, NLISTS };

struct peer_link {
    struct udp_peer *prev, *next;
};

struct udp_peer {
    struct udp_peer *next; /* hash chain */
    struct peer_link link[NLISTS];
    bool waiting; /* on by_created: its handshake is not done */
    bool proven;  /* it proved itself (see the top of this file); else on the unproven list */
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

/* Links p into l right after `after` (NULL: at the head). */
static void list_insert(struct udp_peer_list *l, struct udp_peer *after, struct udp_peer *p, int k)
{
    struct udp_peer *next = after ? after->link[k].next : l->head;
    p->link[k].prev = after;
    p->link[k].next = next;
    if (after)
        after->link[k].next = p;
    else
        l->head = p;
    if (next)
        next->link[k].prev = p;
    else
        l->tail = p;
}

static void list_remove(struct udp_peer_list *l, struct udp_peer *p, int k)
{
    struct peer_link *lk = &p->link[k];
    if (lk->prev)
        lk->prev->link[k].next = lk->next;
    else
        l->head = lk->next;
    if (lk->next)
        lk->next->link[k].prev = lk->prev;
    else
        l->tail = lk->prev;
    lk->prev = lk->next = NULL;
}

int udp_peers_init(struct udp_peers *t, struct server *srv, udp_peers_emit_fn emit, void *emit_arg)
{
    memset(t, 0, sizeof(*t));
    t->srv = srv;
    t->emit = emit;
    t->emit_arg = emit_arg;
    pthread_once(&seed_once, seed_init);
    t->nbuckets = 1024;
    t->table = calloc(t->nbuckets, sizeof(struct udp_peer *));
    if (!t->table)
        return -ENOMEM;
    buf_init(&t->reply, UDP_MAX_DGRAM);
    buf_init(&t->out, UDP_MAX_DGRAM + 256);
    return 0;
}

static struct udp_peer **find_slot(struct udp_peers *t, const struct sockaddr *sa)
{
    struct udp_peer **pp = &t->table[addr_hash(sa) & (t->nbuckets - 1)];
    while (*pp && !net_addr_equal((const struct sockaddr *)&(*pp)->addr.ss, sa))
        pp = &(*pp)->next;
    return pp;
}

/* The key of p's lines in server_unproven_limit: its address without the port ("[::1]" of
 * "[::1]:5000"), in out. */
static const char *peer_host(const struct udp_peer *p, char out[NET_ADDRSTRLEN])
{
    const char *colon = strrchr(p->text, ':');
    size_t n = colon ? (size_t)(colon - p->text) : strlen(p->text);
    memcpy(out, p->text, n);
    out[n] = '\0';
    return out;
}

static const struct log_kind *gone_kind(const char *reason)
{
    for (size_t i = 0; i < sizeof(kind_gone) / sizeof(kind_gone[0]); i++)
        if (strcmp(kind_gone[i].fields + strlen("reason="), reason) == 0)
            return &kind_gone[i];
    return &kind_gone_other;
}

/* Logs the disconnect (unless reason is NULL: the caller logged it or left it out) and
 * releases a peer that is in no bucket and no list. */
static void peer_free(struct udp_peers *t, struct udp_peer *p, const char *reason)
{
    const struct proto_vt *vt = t->srv->conf.proto;
    char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)], host[NET_ADDRSTRLEN];
    if (reason && p->proven)
        log_event(LOG_INFO, "disconnect", "peer=%s conn=%llu reason=%s",
                  log_value(pv, sizeof(pv), p->text), (unsigned long long)p->id, reason);
    else if (reason)
        log_event_limited_in(&server_unproven_limit, gone_kind(reason), peer_host(p, host),
                             "peer=%s conn=%llu reason=%s", log_value(pv, sizeof(pv), p->text),
                             (unsigned long long)p->id, reason);
    stats_end(reason ? reason : "evicted"); /* only an eviction goes unlogged */
    proto_conn_free(vt, p->pconn);
    free(p);
    t->npeers--;
    atomic_fetch_sub(&t->srv->nconns, 1);
}

/* Unlinks a peer from its bucket and both orders, then frees it. */
static void peer_forget(struct udp_peers *t, struct udp_peer *p, const char *reason)
{
    struct udp_peer **pp = find_slot(t, (const struct sockaddr *)&p->addr.ss);
    if (*pp == p)
        *pp = p->next;
    list_remove(&t->by_last, p, BY_LAST);
    if (p->waiting)
        list_remove(&t->by_created, p, BY_CREATED);
    if (!p->proven) {
        list_remove(&t->unproven, p, UNPROVEN);
        t->nunproven--;
    }
    peer_free(t, p, reason);
}

/* The peer proved itself (see the top of this file): it leaves the unproven list. */
static void mark_proven(struct udp_peers *t, struct udp_peer *p)
{
    if (p->proven)
        return;
    list_remove(&t->unproven, p, UNPROVEN);
    t->nunproven--;
    p->proven = true;
}

/* Which peer makes room for a new one (see the top of this file); NULL if none is held. */
static struct udp_peer *evict_victim(const struct udp_peers *t)
{
    if (t->nunproven > 0 && t->nunproven * 2 >= t->npeers)
        return t->unproven.head;
    return t->by_last.head;
}

/* Forgets p to make room, logging it within the rate limit. */
static void peer_evict(struct udp_peers *t, struct udp_peer *p)
{
    char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)];
    log_event_limited(&kind_evicted, p->text, "peer=%s conn=%llu reason=evicted",
                      log_value(pv, sizeof(pv), p->text), (unsigned long long)p->id);
    peer_forget(t, p, NULL);
}

/* Keeps by_created holding exactly the peers whose handshake is not done. A session is
 * normally ready once and stays so; one that dies after it (a counter or crypto failure)
 * is not ready again and rejoins in creation order, so the handshake timeout still ends
 * it as the sweep over every peer used to. That rare case walks from the tail. */
static void track_ready(struct udp_peers *t, struct udp_peer *p)
{
    bool ready = t->srv->conf.proto->conn_ready(p->pconn);
    if (ready && p->waiting) {
        list_remove(&t->by_created, p, BY_CREATED);
        p->waiting = false;
    } else if (!ready && !p->waiting) {
        struct udp_peer *after = t->by_created.tail;
        while (after && after->created > p->created)
            after = after->link[BY_CREATED].prev;
        list_insert(&t->by_created, after, p, BY_CREATED);
        p->waiting = true;
    }
}

static const char *peer_error(const struct udp_peers *t, const struct udp_peer *p)
{
    const struct proto_vt *vt = t->srv->conf.proto;
    return vt->conn_error ? vt->conn_error(p->pconn) : NULL;
}

/* Emits b as one datagram. An empty reply means "nothing to say"; an empty echo (of an
 * empty datagram, RFC 862) is still a datagram, so callers say which it is. */
static void emit_buf(struct udp_peers *t, struct buf *b, const struct net_addr *to, bool even_empty)
{
    if (buf_empty(b) && !even_empty)
        return;
    t->emit(t->emit_arg, to, buf_head(b), buf_len(b));
    buf_reset(b);
}

static struct udp_peer *peer_new(struct udp_peers *t, const struct net_addr *from,
                                 const uint8_t *data, size_t n, uint64_t now)
{
    struct server *srv = t->srv;
    const struct proto_vt *vt = srv->conf.proto;
    char text[NET_ADDRSTRLEN];
    net_format_addr((const struct sockaddr *)&from->ss, text, sizeof(text));
    buf_reset(&t->reply);
    int r =
        vt->dgram_new(srv->pctx, (const struct sockaddr *)&from->ss, from->len, data, n, &t->reply);
    if (r != 1) {
        if (r < 0 && r != PROTO_DROP)
            server_log_proto_error(srv, 0, text, r, NULL);
        emit_buf(t, &t->reply, from, false);
        return NULL;
    }
    /* The limit counts the peers of every table of the server (one per thread with -m
     * reactors). One that holds none still admits one, which passes the limit by at most
     * the number of other tables, rather than be locked out by them. */
    if (atomic_load(&srv->nconns) >= srv->conf.max_conns) {
        struct udp_peer *victim = evict_victim(t);
        if (victim)
            peer_evict(t, victim);
    }
    struct udp_peer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->addr = *from;
    p->id = atomic_fetch_add(&srv->next_id, 1);
    p->created = p->last = now;
    memcpy(p->text, text, sizeof(text));
    atomic_fetch_add(&srv->nconns, 1);
    t->npeers++;
    stats_add(STATS_CONNS, 1);
    char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)], host[NET_ADDRSTRLEN];
    log_event_limited_in(&server_unproven_limit, &kind_connect, peer_host(p, host),
                         "peer=%s conn=%llu", log_value(pv, sizeof(pv), p->text),
                         (unsigned long long)p->id);
    if ((r = proto_conn_new(vt, srv->pctx, PROTO_SERVER, &t->reply, &p->pconn)) < 0) {
        server_log_proto_error(srv, p->id, p->text, r, NULL);
        peer_free(t, p, "error");
        return NULL;
    }
    /* A greeting from conn_init (none for the built-in protocols) goes out as one datagram. */
    emit_buf(t, &t->reply, from, false);
    struct udp_peer **slot = find_slot(t, (const struct sockaddr *)&from->ss);
    *slot = p;
    list_insert(&t->by_last, t->by_last.tail, p, BY_LAST);
    list_insert(&t->unproven, t->unproven.tail, p, UNPROVEN);
    t->nunproven++;
    track_ready(t, p);
    return p;
}

void udp_peers_on_datagram(struct udp_peers *t, const struct net_addr *from, const uint8_t *data,
                           size_t n, uint64_t now)
{
    struct server *srv = t->srv;
    const struct proto_vt *vt = srv->conf.proto;
    struct udp_peer *p = *find_slot(t, (const struct sockaddr *)&from->ss);
    bool fresh = !p;
    if (!p) {
        if (atomic_load(&srv->stopping))
            return;
        p = peer_new(t, from, data, n, now);
        if (!p)
            return;
    }
    p->last = now;
    if (p != t->by_last.tail) {
        list_remove(&t->by_last, p, BY_LAST);
        list_insert(&t->by_last, t->by_last.tail, p, BY_LAST);
    }
    buf_reset(&t->reply);
    struct proto_msg m = {0};
    int r = vt->dgram_read(p->pconn, data, n, &t->reply, &m);
    track_ready(t, p);
    emit_buf(t, &t->reply, from, false);
    if (r == PROTO_HANDSHAKE) {
        stats_add(STATS_HANDSHAKES, 1);
        char id[128] = "", host[NET_ADDRSTRLEN];
        char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)], kv[LOG_VALUE_MAX(sizeof(id))];
        if (!vt->conn_peer_id || !vt->conn_peer_id(p->pconn, id, sizeof(id)))
            return;
        if (p->proven)
            log_event(LOG_INFO, "handshake", "peer=%s conn=%llu peer_key=%s",
                      log_value(pv, sizeof(pv), p->text), (unsigned long long)p->id,
                      log_value(kv, sizeof(kv), id));
        else
            log_event_limited_in(&server_unproven_limit, &kind_handshake, peer_host(p, host),
                                 "peer=%s conn=%llu peer_key=%s",
                                 log_value(pv, sizeof(pv), p->text), (unsigned long long)p->id,
                                 log_value(kv, sizeof(kv), id));
        return;
    }
    if (r < 0) {
        if (r != PROTO_DROP)
            server_log_proto_error(srv, p->id, p->text, r, peer_error(t, p));
        /* A session made for this very datagram, refused before its handshake is done,
         * holds nothing worth keeping; kept, it would stand between the address and its
         * next (correct) attempt until --handshake-timeout. */
        if (r == PROTO_E_LIMIT || (fresh && r != PROTO_DROP && !vt->conn_ready(p->pconn)))
            peer_forget(t, p, "error");
        return;
    }
    if (r != PROTO_MSG)
        return;
    if (!fresh)
        mark_proven(t, p);
    struct server_msg msg;
    char host[NET_ADDRSTRLEN];
    server_msg_reset(&msg);
    if (!p->proven)
        msg.limit_key = peer_host(p, host);
    server_msg_add(&msg, m.data, m.len);
    if (vt->flags & PROTO_F_STREAM_ECHO)
        server_msg_trim_eol(&msg);
    int admin = vt->conn_admin ? vt->conn_admin(p->pconn) : -1;
    enum server_action act =
        server_on_message(srv, p->id, p->text, (const struct sockaddr *)&from->ss, admin, &msg);
    buf_reset(&t->out);
    if (act == ACT_DENIED)
        r = vt->dgram_write(p->pconn, (const uint8_t *)SERVER_DENIED_TEXT,
                            sizeof(SERVER_DENIED_TEXT) - 1, &t->out);
    else
        r = vt->dgram_write(p->pconn, m.data, m.len, &t->out);
    if (r < 0)
        server_log_proto_error(srv, p->id, p->text, r, peer_error(t, p));
    /* After `exit` the session is gone before its echo leaves, so a peer that sees the echo
     * can count on the freed slot (--max-conns). The echo is already encoded in t->out. */
    if (act == ACT_EXIT)
        peer_forget(t, p, "exit");
    else
        track_ready(t, p);
    if (r >= 0)
        emit_buf(t, &t->out, from, true);
    if (act == ACT_SHUTDOWN)
        server_request_shutdown(srv);
}

static uint64_t idle_ms(const struct udp_peers *t)
{
    int v = t->srv->conf.idle_timeout_ms;
    return v > 0 ? (uint64_t)v : UDP_DEFAULT_IDLE_MS;
}

/* 0 when there is no handshake timeout. */
static uint64_t handshake_ms(const struct udp_peers *t)
{
    int v = t->srv->conf.handshake_timeout_ms;
    return v > 0 ? (uint64_t)v : 0;
}

void udp_peers_expire(struct udp_peers *t, uint64_t now)
{
    uint64_t idle = idle_ms(t), hs = handshake_ms(t);
    struct udp_peer *p;
    while ((p = t->by_last.head) && now - p->last >= idle)
        peer_forget(t, p, "timeout");
    /* A session whose handshake is not done in time is forgotten like a stalled TCP
     * handshake, so admitted-but-silent peers cannot hold --max-conns slots. */
    while (hs && (p = t->by_created.head) && now - p->created >= hs)
        peer_forget(t, p, "timeout");
}

uint64_t udp_peers_next_deadline(const struct udp_peers *t)
{
    uint64_t at = UINT64_MAX, hs = handshake_ms(t);
    if (t->by_last.head)
        at = t->by_last.head->last + idle_ms(t);
    if (hs && t->by_created.head && t->by_created.head->created + hs < at)
        at = t->by_created.head->created + hs;
    return at;
}

long udp_peers_count(const struct udp_peers *t)
{
    return t->npeers;
}

void udp_peers_close(struct udp_peers *t)
{
    if (t->table) {
        for (struct udp_peer *p = t->by_last.head, *next; p; p = next) {
            next = p->link[BY_LAST].next;
            peer_forget(t, p, "shutdown");
        }
        free(t->table);
        t->table = NULL;
    }
    buf_free(&t->reply);
    buf_free(&t->out);
}
