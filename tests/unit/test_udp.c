/* SPDX-License-Identifier: MIT */
/* Unit tests for the UDP peer table without sockets: scripted datagrams from fake addresses
 * and a fake clock, for plain, lab-fernet and secure (its cookie round trip); asserts on the
 * datagrams the table emits, its size, the shared connection count and the log lines. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"
#include "crypto.h"
#include "keys.h"
#include "proto.h"
#include "udp_peers.h"

#define MAXSENT 8

/* One emitted datagram, and what the table held when it was emitted. */
struct sent {
    struct net_addr to;
    uint8_t data[70000];
    size_t len;
    long peers, nconns;
};

struct fx {
    struct server srv;
    struct udp_peers t;
    const struct proto_vt *vt;
    int nsent;
    struct sent sent[MAXSENT];
};

static struct fx fx; /* large (the datagrams): one at a time, static */

static char tmp[256], server_key[300], client_key[300], logpath[300];
static char server_b64[KEYS_B64LEN + 1];
static char logtext[1 << 20];

static void on_emit(void *arg, const struct net_addr *to, const uint8_t *data, size_t len)
{
    struct fx *f = arg;
    CHECK(f->nsent < MAXSENT);
    CHECK(len <= sizeof(f->sent[0].data));
    if (f->nsent >= MAXSENT || len > sizeof(f->sent[0].data))
        return;
    struct sent *s = &f->sent[f->nsent++];
    s->to = *to;
    memcpy(s->data, data, len);
    s->len = len;
    s->peers = udp_peers_count(&f->t);
    s->nconns = atomic_load(&f->srv.nconns);
}

static void *ctx_for(const struct proto_vt *vt, enum proto_role role)
{
    struct proto_opts o = {.max_msg = 65507, .dgram = true};
    if (vt == &proto_secure) {
        o.key_file = role == PROTO_SERVER ? server_key : client_key;
        o.server_key = role == PROTO_CLIENT ? server_b64 : NULL;
    }
    void *ctx = NULL;
    char err[PROTO_ERRLEN] = "";
    int r = vt->ctx_new(&o, role, &ctx, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "ctx_new: %s\n", err);
    CHECK_INT(r, 0);
    return ctx;
}

/* A table for vt with the given limits; the log goes to a fresh file. */
static void fx_open(const struct proto_vt *vt, long max_conns, int idle_ms, int hs_ms)
{
    memset(&fx, 0, sizeof(fx));
    fx.vt = vt;
    struct server *srv = &fx.srv;
    srv->conf.proto = vt;
    srv->conf.max_conns = max_conns;
    srv->conf.idle_timeout_ms = idle_ms;
    srv->conf.handshake_timeout_ms = hs_ms;
    srv->conf.allow_shutdown = ALLOW_LOOPBACK;
    srv->conf.log_messages = true;
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->next_id, 1);
    atomic_init(&srv->nconns, 0);
    pthread_mutex_init(&srv->wake_mu, NULL);
    srv->pctx = ctx_for(vt, PROTO_SERVER);
    unlink(logpath);
    CHECK_INT(log_open(logpath), 0);
    CHECK_INT(udp_peers_init(&fx.t, srv, on_emit, &fx), 0);
}

/* Closes the table and the log, and reads the log into logtext. */
static void fx_close(void)
{
    udp_peers_close(&fx.t);
    CHECK_INT(udp_peers_count(&fx.t), 0);
    CHECK_INT(atomic_load(&fx.srv.nconns), 0);
    if (fx.vt->ctx_free)
        fx.vt->ctx_free(fx.srv.pctx);
    pthread_mutex_destroy(&fx.srv.wake_mu);
    log_close();
    logtext[0] = '\0';
    FILE *f = fopen(logpath, "r");
    CHECK(f != NULL);
    if (f) {
        size_t n = fread(logtext, 1, sizeof(logtext) - 1, f);
        logtext[n] = '\0';
        fclose(f);
        if (getenv("SHOW_LOG"))
            fputs(logtext, stderr);
    }
}

/* How many log lines contain s. */
static int logged(const char *s)
{
    int n = 0;
    for (const char *p = logtext; (p = strstr(p, s)) != NULL; p += strlen(s))
        n++;
    return n;
}

static struct net_addr addr4(uint16_t port)
{
    struct net_addr a = {.len = sizeof(struct sockaddr_in)};
    struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static struct net_addr addr6(uint16_t port)
{
    struct net_addr a = {.len = sizeof(struct sockaddr_in6)};
    struct sockaddr_in6 *in = (struct sockaddr_in6 *)&a.ss;
    in->sin6_family = AF_INET6;
    in->sin6_port = htons(port);
    in->sin6_addr = in6addr_loopback;
    return a;
}

static struct net_addr addr4_at(const char *ip, uint16_t port)
{
    struct net_addr a = addr4(port);
    CHECK_INT(inet_pton(AF_INET, ip, &((struct sockaddr_in *)&a.ss)->sin_addr), 1);
    return a;
}

static uint16_t port_of(const struct net_addr *a)
{
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

/* The log's rate limit runs on the table's fake clock: each datagram sets it. */
static atomic_uint_least64_t fake_ms;

static uint64_t fake_clock(void)
{
    return atomic_load(&fake_ms);
}

/* The sum of the suppressed= counts of the log lines that contain s. */
static long suppressed_sum(const char *s)
{
    long sum = 0;
    for (const char *line = logtext; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[4096];
        if (len < sizeof(buf)) {
            memcpy(buf, line, len);
            buf[len] = '\0';
            const char *q = strstr(buf, " suppressed=");
            if (strstr(buf, s) && q)
                sum += strtol(q + 12, NULL, 10);
        }
        line += len + (end ? 1 : 0);
    }
    return sum;
}

/* The events of the log lines that contain s: each line of an event's own (it has conn=;
 * a summary has not) plus every suppressed= count. */
static long events(const char *s)
{
    long n = suppressed_sum(s);
    for (const char *p = logtext; (p = strstr(p, s)) != NULL; p += strlen(s)) {
        const char *bol = p, *eol = strchr(p, '\n');
        while (bol > logtext && bol[-1] != '\n')
            bol--;
        for (const char *q = bol; q && q < (eol ? eol : p + strlen(p)); q++)
            if (strncmp(q, " conn=", 6) == 0) {
                n++;
                break;
            }
    }
    return n;
}

/* Delivers one datagram; returns how many the table emitted (in fx.sent). */
static int feed(const struct net_addr *from, const void *data, size_t len, uint64_t now)
{
    atomic_store(&fake_ms, now);
    fx.nsent = 0;
    udp_peers_on_datagram(&fx.t, from, data, len, now);
    return fx.nsent;
}

static int feed_str(uint16_t port, const char *s, uint64_t now)
{
    struct net_addr a = addr4(port);
    return feed(&a, s, strlen(s), now);
}

/* The i-th emitted datagram went to port and holds s. */
static void check_sent(int i, uint16_t port, const char *s)
{
    CHECK(i < fx.nsent);
    if (i >= fx.nsent)
        return;
    CHECK_INT(port_of(&fx.sent[i].to), port);
    CHECK_INT(fx.sent[i].len, strlen(s));
    if (fx.sent[i].len == strlen(s))
        CHECK_MEM(fx.sent[i].data, s, strlen(s));
}

static void test_plain_echo(void)
{
    fx_open(&proto_plain, 100, 0, 10000);
    CHECK_INT(feed_str(5001, "hello", 0), 1);
    check_sent(0, 5001, "hello");
    CHECK_INT(udp_peers_count(&fx.t), 1);
    CHECK_INT(feed_str(5002, "hi\n", 1), 1);
    check_sent(0, 5002, "hi\n"); /* the datagram comes back as it came */
    CHECK_INT(feed_str(5001, "again", 2), 1);
    check_sent(0, 5001, "again");
    CHECK_INT(udp_peers_count(&fx.t), 2);
    CHECK_INT(atomic_load(&fx.srv.nconns), 2);
    /* An empty datagram is echoed as an empty datagram. */
    CHECK_INT(feed_str(5002, "", 3), 1);
    check_sent(0, 5002, "");
    /* The same port over IPv6 is another peer. */
    struct net_addr a6 = addr6(5001);
    CHECK_INT(feed(&a6, "six", 3, 4), 1);
    CHECK(net_addr_equal((const struct sockaddr *)&fx.sent[0].to.ss,
                         (const struct sockaddr *)&a6.ss));
    CHECK_INT(udp_peers_count(&fx.t), 3);
    fx_close();
    CHECK_INT(logged("event=connect peer=127.0.0.1:5001 conn=1\n"), 1);
    CHECK_INT(logged("event=connect peer=127.0.0.1:5002 conn=2\n"), 1);
    CHECK_INT(logged("event=connect peer=[::1]:5001 conn=3\n"), 1);
    CHECK_INT(logged("event=message peer=127.0.0.1:5001 conn=1 bytes=5 text=\"again\"\n"), 1);
    CHECK_INT(logged("event=message peer=127.0.0.1:5002 conn=2 bytes=2 text=\"hi\"\n"), 1);
    CHECK_INT(logged("event=message peer=127.0.0.1:5002 conn=2 bytes=0 text=\"\"\n"), 1);
    CHECK_INT(logged("event=disconnect"), 3);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:5002 conn=2 reason=shutdown\n"), 1);
}

/* `exit` forgets the peer, and its slot is free before the echo goes out (7381aef). */
static void test_plain_exit_frees_slot_first(void)
{
    fx_open(&proto_plain, 1, 0, 10000);
    CHECK_INT(feed_str(5001, "one", 0), 1);
    CHECK_INT(feed_str(5001, "exit\n", 1), 1);
    check_sent(0, 5001, "exit\n");
    CHECK_INT(fx.sent[0].peers, 0);
    CHECK_INT(fx.sent[0].nconns, 0);
    CHECK_INT(udp_peers_count(&fx.t), 0);
    CHECK_INT(udp_peers_next_deadline(&fx.t), UINT64_MAX);
    /* Another peer takes the slot; the same address again is a new session. */
    CHECK_INT(feed_str(5002, "mine", 2), 1);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    CHECK_INT(feed_str(5002, "exit", 3), 1);
    CHECK_INT(feed_str(5001, "back", 4), 1);
    check_sent(0, 5001, "back");
    fx_close();
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:5001 conn=1 reason=exit\n"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:5002 conn=2 reason=exit\n"), 1);
    CHECK_INT(logged("event=connect peer=127.0.0.1:5001 conn=3\n"), 1);
    CHECK_INT(logged("event=denied"), 0);
}

/* A full table makes room for a new peer: a peer that has not proven itself (plain: sent
 * one datagram) while such peers hold half the table, else the least recently active. */
static void test_plain_max_conns(void)
{
    fx_open(&proto_plain, 2, 0, 10000);
    CHECK_INT(feed_str(5001, "a", 0), 1);
    CHECK_INT(feed_str(5002, "b", 0), 1);
    /* A third peer is served; the peer heard from least recently made room. */
    CHECK_INT(feed_str(5003, "c", 0), 1);
    check_sent(0, 5003, "c");
    CHECK_INT(fx.sent[0].peers, 2);
    CHECK_INT(udp_peers_count(&fx.t), 2);
    CHECK_INT(atomic_load(&fx.srv.nconns), 2);
    /* b speaks again (proven); a comes back as a new session and takes the place of c. */
    CHECK_INT(feed_str(5002, "b2", 1), 1);
    check_sent(0, 5002, "b2");
    CHECK_INT(feed_str(5001, "a2", 2), 1);
    check_sent(0, 5001, "a2");
    CHECK_INT(udp_peers_count(&fx.t), 2);
    /* The peers of other tables (-m reactors) count against the same limit: with one, a new
     * peer still takes the place of one of ours (a's new session, unproven, before b). */
    atomic_fetch_add(&fx.srv.nconns, 1);
    CHECK_INT(feed_str(5004, "d", 3), 1);
    check_sent(0, 5004, "d");
    CHECK_INT(udp_peers_count(&fx.t), 2);
    CHECK_INT(feed_str(5004, "exit", 4), 1);
    CHECK_INT(feed_str(5002, "exit", 4), 1);
    CHECK_INT(udp_peers_count(&fx.t), 0);
    /* When the others hold the whole limit, a table that holds no one still admits one
     * (passing the limit by one), then makes room within itself. */
    atomic_fetch_add(&fx.srv.nconns, 1);
    CHECK_INT(feed_str(5005, "e", 5), 1);
    check_sent(0, 5005, "e");
    CHECK_INT(atomic_load(&fx.srv.nconns), 3);
    CHECK_INT(feed_str(5006, "f", 6), 1);
    check_sent(0, 5006, "f");
    CHECK_INT(udp_peers_count(&fx.t), 1);
    CHECK_INT(atomic_load(&fx.srv.nconns), 3);
    atomic_fetch_sub(&fx.srv.nconns, 2);
    fx_close();
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:5001 conn=1 reason=evicted\n"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:5003 conn=3 reason=evicted\n"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:5001 conn=4 reason=evicted\n"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:5002 conn=2 reason=exit\n"), 1);
    CHECK_INT(logged("event=connect peer=127.0.0.1:5001 conn=4\n"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:5005 conn=6 reason=evicted\n"), 1);
    CHECK_INT(logged("reason=evicted"), 4);
    CHECK_INT(logged("event=denied"), 0);
}

/* Issue #10: one-byte datagrams from more source ports than --max-conns within a second
 * used to fill the table, and every new client was denied until the idle timeout. Now a
 * new client is served during and after such a flood, a client that keeps talking keeps
 * its session, the table never exceeds the limit, and the eviction lines are rate-limited
 * (the log's overall limit for repeated events: LOG_LIMIT_BURST at once, then one per
 * LOG_LIMIT_INTERVAL_MS), every one left out counted in a suppressed= line. */
static void test_plain_flood_no_lockout(void)
{
    enum { MAX = 500, FLOOD = 5000 };
    fx_open(&proto_plain, MAX, 300000, 10000);
    fx.srv.conf.log_messages = false; /* the log stays within what fx_close reads back */
    /* A client that talks every 100 datagrams of the flood. */
    CHECK_INT(feed_str(4000, "first", 0), 1);
    int client_echoes = 0;
    for (int i = 0; i < FLOOD; i++) {
        uint64_t now = (uint64_t)i * 999 / FLOOD; /* all within the first second */
        CHECK_INT(feed_str((uint16_t)(20000 + i % 40000), "x", now), 1);
        if (i % 100 == 0) {
            CHECK_INT(feed_str(4000, "still here", now), 1);
            client_echoes += fx.nsent == 1 && fx.sent[0].len == 10;
        }
        if (udp_peers_count(&fx.t) > MAX || atomic_load(&fx.srv.nconns) > MAX)
            CHECK(!"the table outgrew --max-conns");
    }
    CHECK_INT(client_echoes, FLOOD / 100);
    CHECK_INT(udp_peers_count(&fx.t), MAX);
    /* The flood is over; a new client is served at once, not after the idle timeout. */
    udp_peers_expire(&fx.t, 1000);
    CHECK(udp_peers_next_deadline(&fx.t) >= 300000);
    CHECK_INT(feed_str(4001, "new client", 1500), 1);
    check_sent(0, 4001, "new client");
    CHECK_INT(udp_peers_count(&fx.t), MAX);
    fx_close();
    CHECK_INT(logged("event=connect peer=127.0.0.1:4000 conn=1\n"), 1);
    CHECK_INT(logged("event=denied"), 0);
    /* 4,501 peers made room in the first second, one more at 1.5 s: each eviction is a line
     * of its own or counted in the one summary written at log_close. On the fake clock that
     * is exact: the evictions begin once the table is full (datagram 500, at 99 ms), the
     * overall limit lets its burst of 50 through then, one more each 100 ms until 999 ms
     * (8), and the one at 1.5 s. */
    int one_by_one = logged("reason=evicted\n");
    CHECK_INT(one_by_one + suppressed_sum("reason=evicted"), 4502);
    CHECK_INT(one_by_one, LOG_LIMIT_BURST + 8 + 1);
    CHECK_INT(logged("level=info event=disconnect reason=evicted suppressed="), 1);
    CHECK_INT(logged("reason=timeout") + logged("reason=error"), 0);
}

static void test_plain_idle_expiry(void)
{
    fx_open(&proto_plain, 100, 1000, 10000);
    CHECK_INT(udp_peers_next_deadline(&fx.t), UINT64_MAX);
    feed_str(5001, "a", 0);
    feed_str(5002, "b", 600);
    CHECK_INT(udp_peers_next_deadline(&fx.t), 1000);
    udp_peers_expire(&fx.t, 999);
    CHECK_INT(udp_peers_count(&fx.t), 2);
    /* Any datagram counts as activity and moves its peer to the back. */
    feed_str(5001, "a", 900);
    CHECK_INT(udp_peers_next_deadline(&fx.t), 1600);
    udp_peers_expire(&fx.t, 1599);
    CHECK_INT(udp_peers_count(&fx.t), 2);
    udp_peers_expire(&fx.t, 1600);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    CHECK_INT(atomic_load(&fx.srv.nconns), 1);
    CHECK_INT(udp_peers_next_deadline(&fx.t), 1900);
    udp_peers_expire(&fx.t, 5000);
    CHECK_INT(udp_peers_count(&fx.t), 0);
    CHECK_INT(udp_peers_next_deadline(&fx.t), UINT64_MAX);
    /* An expired peer that comes back is a new session. */
    CHECK_INT(feed_str(5002, "b", 5001), 1);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    fx_close();
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:5002 conn=2 reason=timeout\n"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:5001 conn=1 reason=timeout\n"), 1);
    CHECK_INT(logged("event=connect peer=127.0.0.1:5002 conn=3\n"), 1);
}

/* Without --idle-timeout, a silent peer is still forgotten, after 180 s. */
static void test_plain_default_idle(void)
{
    fx_open(&proto_plain, 100, 0, 0);
    feed_str(5001, "a", 1000);
    CHECK_INT(udp_peers_next_deadline(&fx.t), 181000);
    udp_peers_expire(&fx.t, 180999);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    udp_peers_expire(&fx.t, 181000);
    CHECK_INT(udp_peers_count(&fx.t), 0);
    fx_close();
}

/* Many peers (longer than the hash has buckets), expiring in the order they were last heard. */
static void test_plain_many_peers(void)
{
    enum { N = 3000 };
    fx_open(&proto_plain, N, 10000, 10000);
    for (int i = 0; i < N; i++)
        CHECK_INT(feed_str((uint16_t)(10000 + i), "x", (uint64_t)i), 1);
    CHECK_INT(udp_peers_count(&fx.t), N);
    /* Every even peer speaks again later. */
    for (int i = 0; i < N; i += 2)
        CHECK_INT(feed_str((uint16_t)(10000 + i), "y", (uint64_t)(N + i)), 1);
    CHECK_INT(udp_peers_count(&fx.t), N);
    udp_peers_expire(&fx.t, 10000 + N - 1); /* every odd one is silent since < N */
    CHECK_INT(udp_peers_count(&fx.t), N / 2);
    CHECK_INT(udp_peers_next_deadline(&fx.t), 10000 + N);
    /* The survivors are the even ones, still in their sessions; an odd one is new. */
    long want = N / 2;
    for (int i = 0; i < N; i += 499) {
        CHECK_INT(feed_str((uint16_t)(10000 + i), "z", 10000 + N), 1);
        want += i % 2;
        CHECK_INT(udp_peers_count(&fx.t), want);
    }
    CHECK(want > N / 2);
    fx_close();
    /* Peers that sent one datagram are unproven: their lines are limited by host (all are
     * 127.0.0.1), and every one left out is counted. */
    CHECK_INT(events("reason=timeout"), N / 2);
    CHECK_INT(events("reason=shutdown"), want);
    CHECK_INT(events("event=connect"), N + want - N / 2);
    CHECK(logged("event=connect") < N / 4);
    /* Each even peer proved itself with its second datagram: that line and its shutdown
     * line are written as they come (both in one datagram's time, beyond the limit's). */
    CHECK_INT(logged("text=\"y\"\n"), N / 2);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:10000 conn=1 reason=shutdown\n"), 1);
}

static void test_plain_shutdown(void)
{
    fx_open(&proto_plain, 100, 0, 10000);
    fx.srv.conf.allow_shutdown = ALLOW_NONE;
    CHECK_INT(feed_str(5001, "shutdown", 0), 1);
    check_sent(0, 5001, SERVER_DENIED_TEXT);
    CHECK(!atomic_load(&fx.srv.stopping));
    fx.srv.conf.allow_shutdown = ALLOW_LOOPBACK;
    CHECK_INT(feed_str(5001, "shutdown\n", 1), 1);
    check_sent(0, 5001, "shutdown\n");
    CHECK(atomic_load(&fx.srv.stopping));
    /* Once shutdown began, known peers are served and new ones are not admitted. */
    CHECK_INT(feed_str(5001, "still", 2), 1);
    CHECK_INT(feed_str(5002, "new", 2), 0);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    fx_close();
    CHECK_INT(logged("level=warn event=denied peer=127.0.0.1:5001 conn=1 command=shutdown\n"), 1);
    CHECK_INT(logged("event=shutdown peer=127.0.0.1:5001 conn=1\n"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:5001 conn=1 reason=shutdown\n"), 1);
}

/* A protocol client beside the table: its conn and its output. */
struct client {
    const struct proto_vt *vt;
    void *ctx, *conn;
    struct buf out;
    struct net_addr addr;
};

static void client_open(struct client *c, const struct proto_vt *vt, uint16_t port)
{
    memset(c, 0, sizeof(*c));
    c->vt = vt;
    c->ctx = ctx_for(vt, PROTO_CLIENT);
    c->addr = addr4(port);
    buf_init(&c->out, 1 << 17);
    CHECK_INT(proto_conn_new(vt, c->ctx, PROTO_CLIENT, &c->out, &c->conn), 0);
}

static void client_close(struct client *c)
{
    proto_conn_free(c->vt, c->conn);
    if (c->vt->ctx_free)
        c->vt->ctx_free(c->ctx);
    buf_free(&c->out);
}

/* Sends what the client has queued (one datagram); returns how many the table emitted. */
static int client_send(struct client *c, uint64_t now)
{
    int n = feed(&c->addr, buf_head(&c->out), buf_len(&c->out), now);
    buf_reset(&c->out);
    for (int i = 0; i < n; i++)
        CHECK(net_addr_equal((const struct sockaddr *)&fx.sent[i].to.ss,
                             (const struct sockaddr *)&c->addr.ss));
    return n;
}

/* The client reads emitted datagram i; returns the protocol's result. */
static int client_recv(struct client *c, int i, struct proto_msg *m)
{
    memset(m, 0, sizeof(*m));
    return c->vt->dgram_read(c->conn, fx.sent[i].data, fx.sent[i].len, &c->out, m);
}

/* The client encrypts s, the table answers with one datagram that decrypts to s. */
static void client_echo(struct client *c, const char *s, uint64_t now)
{
    struct proto_msg m;
    CHECK_INT(c->vt->dgram_write(c->conn, (const uint8_t *)s, strlen(s), &c->out), 0);
    CHECK_INT(client_send(c, now), 1);
    CHECK_INT(client_recv(c, 0, &m), PROTO_MSG);
    CHECK_INT(m.len, strlen(s));
    if (m.len == strlen(s))
        CHECK_MEM(m.data, s, m.len);
}

static void test_lab_fernet(void)
{
    struct client a, b;
    struct proto_msg m;
    fx_open(&proto_lab_fernet, 100, 5000, 100);
    client_open(&a, &proto_lab_fernet, 6001);
    /* The key request makes a session, answered with the key. */
    CHECK_INT(buf_len(&a.out), 3);
    CHECK_INT(client_send(&a, 0), 1);
    CHECK_INT(fx.sent[0].len, 44);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    CHECK_INT(client_recv(&a, 0, &m), PROTO_HANDSHAKE);
    client_echo(&a, "hello fernet", 10);
    /* Having sent the key, the session is past its handshake: only idleness ends it. */
    udp_peers_expire(&fx.t, 1000);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    CHECK_INT(udp_peers_next_deadline(&fx.t), 5010);
    /* Each peer gets its own key: b's tokens mean nothing to a's session. */
    client_open(&b, &proto_lab_fernet, 6002);
    CHECK_INT(client_send(&b, 20), 1);
    CHECK_INT(client_recv(&b, 0, &m), PROTO_HANDSHAKE);
    CHECK_INT(udp_peers_count(&fx.t), 2);
    CHECK_INT(b.vt->dgram_write(b.conn, (const uint8_t *)"x", 1, &b.out), 0);
    CHECK_INT(feed(&a.addr, buf_head(&b.out), buf_len(&b.out), 30), 0);
    buf_reset(&b.out);
    client_echo(&b, "from b", 40);
    /* exit: forgotten, and the encrypted echo still goes out. */
    client_echo(&a, "exit", 50);
    CHECK_INT(fx.sent[0].peers, 1);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    udp_peers_expire(&fx.t, 5040);
    CHECK_INT(udp_peers_count(&fx.t), 0);
    client_close(&a);
    client_close(&b);
    fx_close();
    CHECK_INT(logged("event=auth_fail peer=127.0.0.1:6001 conn=1"), 1);
    CHECK_INT(logged("event=message peer=127.0.0.1:6001 conn=1 bytes=12 text=\"hello fernet\"\n"),
              1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:6001 conn=1 reason=exit\n"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:6002 conn=2 reason=timeout\n"), 1);
}

static void test_lab_fernet_max_conns(void)
{
    struct client a, b;
    struct proto_msg m;
    fx_open(&proto_lab_fernet, 1, 5000, 100);
    client_open(&a, &proto_lab_fernet, 6001);
    client_open(&b, &proto_lab_fernet, 6002);
    CHECK_INT(client_send(&a, 0), 1);
    CHECK_INT(client_recv(&a, 0, &m), PROTO_HANDSHAKE);
    client_echo(&a, "a", 1);
    /* b's key request takes the only slot: b gets its key, a's session is gone. */
    CHECK_INT(client_send(&b, 2), 1);
    CHECK_INT(fx.sent[0].peers, 1);
    CHECK_INT(client_recv(&b, 0, &m), PROTO_HANDSHAKE);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    client_echo(&b, "in", 4);
    client_close(&a);
    client_close(&b);
    fx_close();
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:6001 conn=1 reason=evicted\n"), 1);
    CHECK_INT(logged("event=denied"), 0);
}

/* Issue #10: lab-fernet needs a key per peer, so a table full of peers that took a key and
 * never spoke again must not keep a new peer out. Those that never sent a valid token go
 * first (oldest first) while they hold half the table, so peers that did talk keep their
 * keys through a flood of key requests. */
static void test_lab_fernet_silent_evicted(void)
{
    struct client a, b, s;
    struct proto_msg m;
    fx_open(&proto_lab_fernet, 4, 60000, 100);
    client_open(&a, &proto_lab_fernet, 6001);
    CHECK_INT(client_send(&a, 0), 1);
    CHECK_INT(client_recv(&a, 0, &m), PROTO_HANDSHAKE);
    client_echo(&a, "a talks", 1);
    /* Three peers ask for a key and are never heard from again: the table is full. */
    for (uint16_t port = 6101; port <= 6103; port++) {
        CHECK_INT(feed_str(port, "key", 2), 1);
        CHECK_INT(fx.sent[0].len, 44);
    }
    CHECK_INT(udp_peers_count(&fx.t), 4);
    /* A new peer gets its key at once, in the place of the oldest silent one. */
    client_open(&b, &proto_lab_fernet, 6002);
    CHECK_INT(client_send(&b, 3), 1);
    CHECK_INT(client_recv(&b, 0, &m), PROTO_HANDSHAKE);
    client_echo(&b, "b talks", 4);
    CHECK_INT(udp_peers_count(&fx.t), 4);
    /* A flood of key requests churns through the silent half only. */
    for (uint16_t port = 7000; port < 7100; port++)
        CHECK_INT(feed_str(port, "key", 5), 1);
    CHECK_INT(udp_peers_count(&fx.t), 4);
    client_echo(&a, "a still", 6);
    client_echo(&b, "b still", 6);
    /* A newcomer during the flood gets a key, and proves itself in time. */
    client_open(&s, &proto_lab_fernet, 6003);
    CHECK_INT(client_send(&s, 7), 1);
    CHECK_INT(client_recv(&s, 0, &m), PROTO_HANDSHAKE);
    CHECK_INT(feed_str(7200, "key", 7), 1);
    client_echo(&s, "s talks", 8);
    CHECK_INT(udp_peers_count(&fx.t), 4);
    client_close(&a);
    client_close(&b);
    client_close(&s);
    fx_close();
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:6101 conn=2 reason=evicted\n"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:6001"), 1); /* at shutdown only */
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:6002"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:6003"), 1);
    CHECK_INT(logged("event=message"), 5);
    CHECK_INT(logged("event=denied"), 0);
}

/* Issue #10: a peer's lines are limited until it proves itself (plain: its second datagram),
 * within server_unproven_limit, keyed by the host without the port: a flood of new source
 * ports of one host writes that host's burst of each kind and counts the rest; another
 * host has a burst of its own; a client that proves itself is logged again at once. */
static void test_plain_unproven_limit(void)
{
    fx_open(&proto_plain, 100000, 0, 10000);
    fx.srv.conf.allow_shutdown = ALLOW_NONE;
    for (int i = 0; i < 1000; i++)
        CHECK_INT(feed_str((uint16_t)(20000 + i), "x", 0), 1);
    for (int i = 0; i < 50; i++) {
        struct net_addr a = addr4_at("10.0.0.2", (uint16_t)(20000 + i));
        CHECK_INT(feed(&a, "y", 1, 0), 1);
    }
    /* The client's first datagram is one more of the flood's; its second proves it. */
    CHECK_INT(feed_str(4000, "one", 0), 1);
    CHECK_INT(feed_str(4000, "two", 0), 1);
    check_sent(0, 4000, "two");
    /* Refused shutdowns of unproven peers are limited too (the overall limit: 256 at once,
     * of which 228 are spent). */
    for (int i = 0; i < 40; i++) {
        CHECK_INT(feed_str((uint16_t)(30000 + i), "shutdown", 0), 1);
        check_sent(0, (uint16_t)(30000 + i), SERVER_DENIED_TEXT);
    }
    /* Later, over IPv6: "[::1]" is the key. */
    for (int i = 0; i < 70; i++) {
        struct net_addr a = addr6((uint16_t)(20000 + i));
        CHECK_INT(feed(&a, "six", 3, 100000), 1);
    }
    CHECK_INT(feed_str(4000, "three", 100000), 1);
    long peers = udp_peers_count(&fx.t);
    CHECK_INT(peers, 1000 + 50 + 1 + 40 + 70);
    fx_close();
    CHECK_INT(logged("event=connect peer=127.0.0.1:"), SERVER_UNPROVEN_HOST_BURST);
    CHECK_INT(logged("event=connect peer=10.0.0.2:"), 50);
    CHECK_INT(logged("event=message peer=10.0.0.2:"), 50);
    CHECK_INT(logged("event=connect peer=[::1]:"), SERVER_UNPROVEN_HOST_BURST); /* of 70 */
    CHECK_INT(logged("text=\"one\""), 0);
    CHECK_INT(logged("text=\"two\"\n"), 1);
    CHECK_INT(logged("text=\"three\"\n"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:4000 conn=1051 reason=shutdown\n"), 1);
    /* At time 0: the overall burst, and the proven client's line beyond it. */
    CHECK_INT(logged("event=denied peer="), SERVER_UNPROVEN_BURST - 228);
    /* Every event is a line or counted in a suppressed= field. */
    CHECK_INT(events("event=connect"), peers);
    CHECK_INT(events("event=message"), 1000 + 50 + 3 + 40 + 70);
    CHECK_INT(events("event=denied"), 40);
    CHECK_INT(events("reason=shutdown"), peers);
    CHECK_INT(logged("event=shutdown"), 0);
}

/* secure: a peer is unproven until its first data message, so its handshake line is within
 * the limit; the message that proves it is written as it comes. */
static void test_secure_unproven_handshakes(void)
{
    enum { N = SERVER_UNPROVEN_HOST_BURST + 2 };
    fx_open(&proto_secure, 1000, 60000, 10000);
    for (int i = 0; i < N; i++) {
        struct client c;
        struct proto_msg m;
        client_open(&c, &proto_secure, (uint16_t)(8000 + i));
        CHECK_INT(client_send(&c, 0), 1); /* answered with a cookie */
        CHECK_INT(client_recv(&c, 0, &m), PROTO_NEED_MORE);
        CHECK_INT(client_send(&c, 0), 1);
        CHECK_INT(client_recv(&c, 0, &m), PROTO_HANDSHAKE);
        CHECK_INT(client_send(&c, 0), 0); /* the finish */
        client_echo(&c, "proven", 0);
        client_close(&c);
    }
    fx_close();
    CHECK_INT(logged("event=handshake peer=127.0.0.1:"), SERVER_UNPROVEN_HOST_BURST);
    CHECK_INT(events("event=handshake"), N);
    CHECK_INT(logged("event=connect peer=127.0.0.1:"), SERVER_UNPROVEN_HOST_BURST);
    CHECK_INT(events("event=connect"), N);
    CHECK_INT(logged("text=\"proven\"\n"), N);
    CHECK_INT(logged("reason=shutdown\n"), N);
}

/* secure: the first initiation gets a stateless cookie and no session; the one carrying the
 * cookie makes the session, whose handshake must then finish within --handshake-timeout. */
static void test_secure(void)
{
    struct client a, b;
    struct proto_msg m;
    fx_open(&proto_secure, 100, 60000, 1000);
    client_open(&a, &proto_secure, 7001);
    CHECK_INT(buf_len(&a.out), 56);
    CHECK_INT(client_send(&a, 0), 1);
    CHECK_INT(fx.sent[0].len, 24);
    CHECK_INT(udp_peers_count(&fx.t), 0);
    CHECK_INT(atomic_load(&fx.srv.nconns), 0);
    CHECK_INT(client_recv(&a, 0, &m), PROTO_NEED_MORE);
    CHECK_INT(client_send(&a, 100), 1); /* the initiation again, with the cookie */
    CHECK_INT(fx.sent[0].len, 108);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    /* The handshake deadline is nearer than the idle one. */
    CHECK_INT(udp_peers_next_deadline(&fx.t), 1100);
    CHECK_INT(client_recv(&a, 0, &m), PROTO_HANDSHAKE);
    CHECK_INT(client_send(&a, 200), 0); /* the finish */
    CHECK_INT(udp_peers_next_deadline(&fx.t), 60200);
    client_echo(&a, "hello secure", 300);

    /* b stops after its cookie initiation: forgotten at the handshake timeout. */
    client_open(&b, &proto_secure, 7002);
    CHECK_INT(client_send(&b, 400), 1);
    CHECK_INT(client_recv(&b, 0, &m), PROTO_NEED_MORE);
    CHECK_INT(client_send(&b, 500), 1);
    CHECK_INT(udp_peers_count(&fx.t), 2);
    CHECK_INT(udp_peers_next_deadline(&fx.t), 1500);
    /* Its retransmitted initiation is activity, but no progress on the handshake. */
    CHECK_INT(b.vt->dgram_retransmit(b.conn, &b.out), 0);
    CHECK_INT(client_send(&b, 1400), 1);
    udp_peers_expire(&fx.t, 1499);
    CHECK_INT(udp_peers_count(&fx.t), 2);
    udp_peers_expire(&fx.t, 1500);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    CHECK_INT(atomic_load(&fx.srv.nconns), 1);
    /* a's finished handshake is not subject to it. */
    udp_peers_expire(&fx.t, 50000);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    client_echo(&a, "exit", 50001);
    CHECK_INT(fx.sent[0].peers, 0);
    CHECK_INT(udp_peers_count(&fx.t), 0);
    client_close(&a);
    client_close(&b);
    fx_close();
    CHECK_INT(logged("event=connect peer=127.0.0.1:7001 conn=1\n"), 1);
    CHECK_INT(logged("event=handshake peer=127.0.0.1:7001 conn=1 peer_key=\""), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:7002 conn=2 reason=timeout\n"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:7001 conn=1 reason=exit\n"), 1);
    CHECK_INT(logged("event=handshake"), 1);
}

/* The client's initiation, now carrying its cookie, with an all-zero ephemeral key: the
 * cookie is valid for the client's address, the key makes the server's DH fail. */
static void zero_key_initiation(const struct client *c, uint8_t out[56])
{
    CHECK_INT(buf_len(&c->out), 56);
    memcpy(out, buf_head(&c->out), 56);
    memset(out + 24, 0, 32);
}

/* Issue #10: an initiation with a valid cookie but an all-zero ephemeral key used to leave
 * a dead session behind that ignored every later datagram from the address, the client's
 * correct initiation included, until --handshake-timeout. */
static void test_secure_zero_key_initiation(void)
{
    struct client a;
    struct proto_msg m;
    uint8_t zero[56];
    fx_open(&proto_secure, 100, 60000, 10000);
    client_open(&a, &proto_secure, 7001);
    CHECK_INT(client_send(&a, 0), 1);
    CHECK_INT(client_recv(&a, 0, &m), PROTO_NEED_MORE); /* a.out: the initiation + cookie */
    zero_key_initiation(&a, zero);
    CHECK_INT(feed(&a.addr, zero, sizeof(zero), 10), 0);
    CHECK_INT(udp_peers_count(&fx.t), 0);
    CHECK_INT(atomic_load(&fx.srv.nconns), 0);
    /* The correct initiation from the same address is answered at once. */
    CHECK_INT(client_send(&a, 20), 1);
    CHECK_INT(fx.sent[0].len, 108);
    CHECK_INT(client_recv(&a, 0, &m), PROTO_HANDSHAKE);
    CHECK_INT(client_send(&a, 30), 0); /* the finish */
    client_echo(&a, "after a zero key", 40);
    client_close(&a);
    fx_close();
    CHECK_INT(logged("level=warn event=auth_fail peer=127.0.0.1:7001 conn=1"), 1);
    CHECK_INT(logged("event=disconnect peer=127.0.0.1:7001 conn=1 reason=error\n"), 1);
    CHECK_INT(logged("event=handshake peer=127.0.0.1:7001 conn=2 peer_key=\""), 1);
    CHECK_INT(logged("event=message peer=127.0.0.1:7001 conn=2 bytes=16"), 1);
}

/* The same zero-key initiation (with the right cookie) on a session whose handshake is
 * under way is dropped and leaves the handshake as it was: the client's finish completes. */
static void test_secure_zero_key_half_open(void)
{
    struct client a;
    struct proto_msg m;
    uint8_t zero[56];
    fx_open(&proto_secure, 100, 60000, 10000);
    client_open(&a, &proto_secure, 7001);
    CHECK_INT(client_send(&a, 0), 1);
    CHECK_INT(client_recv(&a, 0, &m), PROTO_NEED_MORE);
    zero_key_initiation(&a, zero);
    CHECK_INT(client_send(&a, 10), 1);
    CHECK_INT(fx.sent[0].len, 108);
    struct sent resp = fx.sent[0];
    CHECK_INT(feed(&a.addr, zero, sizeof(zero), 20), 0);
    CHECK_INT(udp_peers_count(&fx.t), 1);
    /* A copy of the real initiation still gets the same response. */
    CHECK_INT(a.vt->dgram_retransmit(a.conn, &a.out), 0);
    CHECK_INT(client_send(&a, 25), 1);
    CHECK_INT(fx.sent[0].len, 108);
    CHECK_MEM(fx.sent[0].data, resp.data, 108);
    CHECK_INT(client_recv(&a, 0, &m), PROTO_HANDSHAKE);
    CHECK_INT(client_send(&a, 30), 0);
    client_echo(&a, "handshake survived", 40);
    client_close(&a);
    fx_close();
    CHECK_INT(logged("level=warn event=auth_fail peer=127.0.0.1:7001 conn=1"), 1);
    CHECK_INT(logged("event=handshake peer=127.0.0.1:7001 conn=1 peer_key=\""), 1);
    CHECK_INT(logged("event=disconnect"), 1);
}

int main(void)
{
    uint8_t priv[32], pub[32];
    char err[256];
    bool created;
    log_limit_clock(fake_clock);
    snprintf(tmp, sizeof(tmp), "/tmp/secho-test-udp-XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(server_key, sizeof(server_key), "%s/server.key", tmp);
    snprintf(client_key, sizeof(client_key), "%s/client.key", tmp);
    snprintf(logpath, sizeof(logpath), "%s/log", tmp);
    CHECK_INT(keys_load_or_create(server_key, priv, pub, &created, err, sizeof(err)), 0);
    keys_b64_encode(pub, server_b64);
    CHECK_INT(keys_load_or_create(client_key, priv, pub, &created, err, sizeof(err)), 0);
    crypto_wipe(priv, sizeof(priv));

    test_plain_echo();
    test_plain_exit_frees_slot_first();
    test_plain_max_conns();
    test_plain_idle_expiry();
    test_plain_default_idle();
    test_plain_many_peers();
    test_plain_shutdown();
    test_lab_fernet();
    test_plain_flood_no_lockout();
    test_lab_fernet_max_conns();
    test_lab_fernet_silent_evicted();
    test_secure();
    test_secure_zero_key_initiation();
    test_secure_zero_key_half_open();
    test_plain_unproven_limit();
    test_secure_unproven_handshakes();

    unlink(server_key);
    unlink(client_key);
    unlink(logpath);
    rmdir(tmp);
    return CHECK_DONE();
}
