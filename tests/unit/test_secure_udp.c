/* SPDX-License-Identifier: MIT */
/* secure over UDP without sockets: a client conn and a server conn exchange datagrams through
 * buffers, as udp_peers.c and the client do (dgram_new, conn_init, dgram_read, dgram_write,
 * dgram_retransmit), for all four suites; with lost, duplicated, reordered, replayed,
 * tampered and forged datagrams, forged cookies, the counter limit, trust and admins. */
#include "check.h"
#include "crypto.h"
#include "keys.h"
#include "proto.h"
#include "secure.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>

static char tmp[256], server_key[300], client_key[300], admins[300];
static char server_b64[KEYS_B64LEN + 1];

static const char *const suites[] = {
    "Noise_XX_25519_AESGCM_SHA256",
    "Noise_XX_25519_AESGCM_BLAKE2b",
    "Noise_XX_25519_ChaChaPoly_SHA256",
    "Noise_XX_25519_ChaChaPoly_BLAKE2b",
};

static const struct proto_vt *vt = &proto_secure;

static void *make_ctx(enum proto_role role, const char *name, const char *pin, const char *adm)
{
    struct proto_opts o = {.max_msg = 1 << 20, .dgram = true};
    void *ctx = NULL;
    char err[PROTO_ERRLEN] = "";
    o.key_file = role == PROTO_SERVER ? server_key : client_key;
    o.noise_name = name;
    o.server_key = pin;
    o.admins_file = adm;
    int r = vt->ctx_new(&o, role, &ctx, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "ctx_new: %s\n", err);
    CHECK_INT(r, 0);
    return ctx;
}

static struct sockaddr_in addr_of(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* One datagram in flight. */
struct dg {
    uint8_t b[70000];
    size_t n;
};

static void take(struct dg *d, struct buf *b)
{
    CHECK(buf_len(b) <= sizeof(d->b));
    d->n = buf_len(b);
    memcpy(d->b, buf_head(b), d->n);
    buf_reset(b);
}

struct pair {
    void *sctx, *cctx;
    void *s, *c;
    struct sockaddr_in peer;
    struct buf sout, cout;
};

static void pair_open(struct pair *p, void *sctx, void *cctx, uint16_t port)
{
    memset(p, 0, sizeof(*p));
    p->sctx = sctx;
    p->cctx = cctx;
    p->s = calloc(1, vt->conn_size);
    p->c = calloc(1, vt->conn_size);
    p->peer = addr_of(port);
    buf_init(&p->sout, 1 << 17);
    buf_init(&p->cout, 1 << 17);
}

static void pair_close(struct pair *p)
{
    vt->conn_free(p->s);
    vt->conn_free(p->c);
    free(p->s);
    free(p->c);
    buf_free(&p->sout);
    buf_free(&p->cout);
}

/* What udp_peers.c does with a datagram: dgram_new for a new session, then dgram_read. */
static int server_in(struct pair *p, bool *has_session, const struct dg *d, struct proto_msg *m)
{
    if (!*has_session) {
        int r = vt->dgram_new(p->sctx, (const struct sockaddr *)&p->peer, sizeof(p->peer), d->b,
                              d->n, &p->sout);
        if (r != 1)
            return r;
        CHECK_INT(vt->conn_init(p->s, p->sctx, PROTO_SERVER, &p->sout), 0);
        CHECK(buf_empty(&p->sout));
        *has_session = true;
    }
    return vt->dgram_read(p->s, d->b, d->n, &p->sout, m);
}

/* Full handshake with the cookie round trip. Checks every step. */
static void handshake(struct pair *p, bool *has_session)
{
    struct dg init, cookie, init2, resp, fin;
    struct proto_msg m;
    CHECK_INT(vt->conn_init(p->c, p->cctx, PROTO_CLIENT, &p->cout), 0);
    take(&init, &p->cout);
    CHECK_INT(init.n, 56);
    CHECK_INT(init.b[0], 1);
    /* No cookie: a stateless cookie reply, no session. */
    CHECK_INT(server_in(p, has_session, &init, &m), PROTO_DROP);
    CHECK(!*has_session);
    take(&cookie, &p->sout);
    CHECK_INT(cookie.n, 24);
    CHECK_INT(vt->dgram_read(p->c, cookie.b, cookie.n, &p->cout, &m), PROTO_NEED_MORE);
    take(&init2, &p->cout);
    CHECK_INT(init2.n, 56);
    CHECK_MEM(init2.b + 24, init.b + 24, 32); /* the same ephemeral key */
    CHECK_INT(server_in(p, has_session, &init2, &m), PROTO_NEED_MORE);
    CHECK(*has_session);
    take(&resp, &p->sout);
    CHECK_INT(resp.n, 108);
    CHECK(!vt->conn_ready(p->s));
    CHECK_INT(vt->dgram_read(p->c, resp.b, resp.n, &p->cout, &m), PROTO_HANDSHAKE);
    take(&fin, &p->cout);
    CHECK_INT(fin.n, 72);
    CHECK(vt->conn_ready(p->c));
    CHECK_INT(server_in(p, has_session, &fin, &m), PROTO_HANDSHAKE);
    CHECK(vt->conn_ready(p->s));
}

/* Sends msg from `from` and expects `to` to receive it; returns the datagram. */
static void send_expect(void *from, void *to, const char *msg, struct dg *d)
{
    struct buf b;
    struct proto_msg m;
    buf_init(&b, 1 << 17);
    CHECK_INT(vt->dgram_write(from, (const uint8_t *)msg, strlen(msg), &b), 0);
    take(d, &b);
    CHECK_INT(d->n, 32 + strlen(msg));
    CHECK(!memmem(d->b, d->n, msg, strlen(msg)) || strlen(msg) < 4);
    CHECK_INT(vt->dgram_read(to, d->b, d->n, &b, &m), PROTO_MSG);
    CHECK_INT(m.len, strlen(msg));
    CHECK_MEM(m.data, msg, m.len);
    CHECK(buf_empty(&b));
    buf_free(&b);
}

static void test_suites(void)
{
    for (size_t i = 0; i < 4; i++) {
        void *sctx = make_ctx(PROTO_SERVER, NULL, NULL, admins);
        void *cctx = make_ctx(PROTO_CLIENT, suites[i], server_b64, NULL);
        struct pair p;
        bool has = false;
        struct dg d;
        pair_open(&p, sctx, cctx, 4000);
        handshake(&p, &has);
        CHECK_INT(vt->conn_admin(p.s), 1); /* client_key is listed in admins */
        char id[128];
        CHECK(vt->conn_peer_id(p.s, id, sizeof(id)));
        for (int k = 0; k < 20; k++) {
            send_expect(p.c, p.s, "hello over udp", &d);
            send_expect(p.s, p.c, "hello over udp", &d);
        }
        /* The largest message, and one byte more. */
        static char big[SECURE_UDP_MAX_PLAIN + 2];
        memset(big, 'b', SECURE_UDP_MAX_PLAIN);
        big[SECURE_UDP_MAX_PLAIN] = '\0';
        send_expect(p.c, p.s, big, &d);
        CHECK_INT(d.n, 65507);
        struct buf b;
        buf_init(&b, 1 << 17);
        CHECK_INT(vt->dgram_write(p.c, (const uint8_t *)big, SECURE_UDP_MAX_PLAIN + 1, &b),
                  PROTO_E_TOOBIG);
        /* Nothing more to retransmit once the server was heard from. */
        CHECK_INT(vt->dgram_retransmit(p.c, &b), 0);
        CHECK(buf_empty(&b));
        buf_free(&b);
        pair_close(&p);
        vt->ctx_free(sctx);
        vt->ctx_free(cctx);
    }
}

static void test_loss(void)
{
    void *sctx = make_ctx(PROTO_SERVER, NULL, NULL, NULL);
    void *cctx = make_ctx(PROTO_CLIENT, NULL, server_b64, NULL);
    struct pair p;
    bool has = false;
    struct dg init, cookie, d, resp, resp2, fin, data1, data2, echo;
    struct proto_msg m;
    pair_open(&p, sctx, cctx, 4001);

    /* Initiation lost: the client sends the same one again. */
    CHECK_INT(vt->conn_init(p.c, cctx, PROTO_CLIENT, &p.cout), 0);
    take(&init, &p.cout);
    CHECK_INT(vt->dgram_retransmit(p.c, &p.cout), 0);
    take(&d, &p.cout);
    CHECK_INT(d.n, init.n);
    CHECK_MEM(d.b, init.b, d.n);
    /* Cookie reply lost, then delivered twice. */
    CHECK_INT(server_in(&p, &has, &d, &m), PROTO_DROP);
    take(&cookie, &p.sout);
    CHECK_INT(vt->dgram_read(p.c, cookie.b, cookie.n, &p.cout, &m), PROTO_NEED_MORE);
    take(&d, &p.cout);
    CHECK_INT(vt->dgram_read(p.c, cookie.b, cookie.n, &p.cout, &m), PROTO_NEED_MORE);
    buf_reset(&p.cout);
    /* Response lost: the retransmitted initiation gets the very same response. */
    CHECK_INT(server_in(&p, &has, &d, &m), PROTO_NEED_MORE);
    take(&resp, &p.sout);
    CHECK_INT(vt->dgram_retransmit(p.c, &p.cout), 0);
    take(&d, &p.cout);
    CHECK_INT(server_in(&p, &has, &d, &m), PROTO_NEED_MORE);
    take(&resp2, &p.sout);
    CHECK_INT(resp2.n, resp.n);
    CHECK_MEM(resp2.b, resp.b, resp.n);
    CHECK_INT(vt->dgram_read(p.c, resp.b, resp.n, &p.cout, &m), PROTO_HANDSHAKE);
    take(&fin, &p.cout);
    /* A duplicate response afterwards is dropped. */
    CHECK_INT(vt->dgram_read(p.c, resp2.b, resp2.n, &p.cout, &m), PROTO_DROP);

    /* Finish lost: data arrives first and is dropped; the client retransmits finish then
     * the message under a fresh counter. */
    CHECK_INT(vt->dgram_write(p.c, (const uint8_t *)"one", 3, &p.cout), 0);
    take(&data1, &p.cout);
    CHECK_INT(server_in(&p, &has, &data1, &m), PROTO_DROP);
    CHECK_INT(vt->dgram_retransmit(p.c, &p.cout), 0);
    take(&d, &p.cout);
    CHECK_INT(d.n, fin.n);
    CHECK_MEM(d.b, fin.b, fin.n);
    CHECK_INT(server_in(&p, &has, &d, &m), PROTO_HANDSHAKE);
    CHECK_INT(server_in(&p, &has, &d, &m), PROTO_DROP); /* repeated finish */
    CHECK_INT(vt->dgram_write(p.c, (const uint8_t *)"one", 3, &p.cout), 0);
    take(&data2, &p.cout);
    CHECK(memcmp(data2.b + 8, data1.b + 8, 8) != 0); /* a fresh counter */
    CHECK_INT(server_in(&p, &has, &data2, &m), PROTO_MSG);
    /* The first copy, late: its counter is unused and the server accepts it too (the
     * client de-duplicates echoes). */
    CHECK_INT(server_in(&p, &has, &data1, &m), PROTO_MSG);
    CHECK_INT(vt->dgram_write(p.s, (const uint8_t *)"one", 3, &p.sout), 0);
    take(&echo, &p.sout);
    CHECK_INT(vt->dgram_read(p.c, echo.b, echo.n, &p.cout, &m), PROTO_MSG);
    /* Heard from the server: the finish is no longer retransmitted. */
    CHECK_INT(vt->dgram_retransmit(p.c, &p.cout), 0);
    CHECK(buf_empty(&p.cout));
    pair_close(&p);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

static void test_replay_reorder(void)
{
    void *sctx = make_ctx(PROTO_SERVER, NULL, NULL, NULL);
    void *cctx = make_ctx(PROTO_CLIENT, NULL, server_b64, NULL);
    struct pair p;
    bool has = false;
    static struct dg d[3000];
    struct proto_msg m;
    pair_open(&p, sctx, cctx, 4002);
    handshake(&p, &has);
    for (int i = 0; i < 3000; i++) {
        CHECK_INT(vt->dgram_write(p.c, (const uint8_t *)"m", 1, &p.cout), 0);
        take(&d[i], &p.cout);
    }
    static const int order[] = {2, 0, 1, 0, 4, 3, 2, 4};
    static const int want[] = {PROTO_MSG, PROTO_MSG, PROTO_MSG,    PROTO_E_AUTH,
                               PROTO_MSG, PROTO_MSG, PROTO_E_AUTH, PROTO_E_AUTH};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        CHECK_INT(server_in(&p, &has, &d[order[i]], &m), want[i]);
    CHECK(strstr(vt->conn_error(p.s), "replayed") != NULL);
    /* Far ahead, then something too old for the window. */
    CHECK_INT(server_in(&p, &has, &d[2999], &m), PROTO_MSG);
    CHECK_INT(server_in(&p, &has, &d[10], &m), PROTO_E_AUTH);
    CHECK_INT(server_in(&p, &has, &d[2000], &m), PROTO_MSG); /* within the window */
    /* The session still works. */
    struct dg e;
    send_expect(p.c, p.s, "after replays", &e);
    pair_close(&p);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

/* Every single-bit flip of every handshake datagram and of a data datagram is dropped, and
 * the genuine datagram still works afterwards. */
static void test_tamper(void)
{
    void *sctx = make_ctx(PROTO_SERVER, NULL, NULL, NULL);
    void *cctx = make_ctx(PROTO_CLIENT, NULL, server_b64, NULL);
    struct pair p;
    bool has = false;
    struct dg init, cookie, resp, fin, d, bad;
    struct proto_msg m;
    pair_open(&p, sctx, cctx, 4003);
    CHECK_INT(vt->conn_init(p.c, cctx, PROTO_CLIENT, &p.cout), 0);
    take(&init, &p.cout);
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_DROP);
    take(&cookie, &p.sout);
    CHECK_INT(vt->dgram_read(p.c, cookie.b, cookie.n, &p.cout, &m), PROTO_NEED_MORE);
    take(&init, &p.cout);
    /* A tampered type, reserved byte or cookie in the initiation creates no session. (The
     * cookie binds the address only, as WireGuard's: a changed index or key gets a session
     * whose handshake then fails or is restarted by the real client.) */
    for (size_t bit = 0; bit < 24 * 8; bit++) {
        if (bit / 8 == 1 || (bit / 8 >= 4 && bit / 8 < 8))
            continue;
        bad = init;
        bad.b[bit / 8] ^= (uint8_t)(1 << (bit % 8));
        int r = server_in(&p, &has, &bad, &m);
        CHECK(!has);
        CHECK(r == PROTO_E_AUTH || r == PROTO_E_PARSE || r == PROTO_DROP);
        buf_reset(&p.sout);
    }
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_NEED_MORE);
    take(&resp, &p.sout);
    for (size_t bit = 0; bit < resp.n * 8; bit++) {
        if (bit / 8 >= 4 && bit / 8 < 8)
            continue; /* the server's index is not authenticated (see docs/PROTOCOL.md) */
        bad = resp;
        bad.b[bit / 8] ^= (uint8_t)(1 << (bit % 8));
        int r = vt->dgram_read(p.c, bad.b, bad.n, &p.cout, &m);
        CHECK(r == PROTO_E_AUTH || r == PROTO_E_PARSE || r == PROTO_DROP);
        CHECK(!vt->conn_ready(p.c));
        CHECK(buf_empty(&p.cout));
    }
    CHECK_INT(vt->dgram_read(p.c, resp.b, resp.n, &p.cout, &m), PROTO_HANDSHAKE);
    take(&fin, &p.cout);
    for (size_t bit = 0; bit < fin.n * 8; bit++) {
        bad = fin;
        bad.b[bit / 8] ^= (uint8_t)(1 << (bit % 8));
        int r = server_in(&p, &has, &bad, &m);
        CHECK(r == PROTO_E_AUTH || r == PROTO_E_PARSE || r == PROTO_DROP);
        CHECK(!vt->conn_ready(p.s));
    }
    CHECK_INT(server_in(&p, &has, &fin, &m), PROTO_HANDSHAKE);
    CHECK_INT(vt->dgram_write(p.c, (const uint8_t *)"tamper me", 9, &p.cout), 0);
    take(&d, &p.cout);
    for (size_t bit = 0; bit < d.n * 8; bit++) {
        bad = d;
        bad.b[bit / 8] ^= (uint8_t)(1 << (bit % 8));
        int r = server_in(&p, &has, &bad, &m);
        CHECK(r == PROTO_E_AUTH || r == PROTO_E_PARSE || r == PROTO_DROP);
    }
    CHECK_INT(server_in(&p, &has, &d, &m), PROTO_MSG);
    /* Truncated and extended datagrams. */
    for (size_t n = 0; n < d.n; n++) {
        bad = d;
        bad.n = n;
        int r = server_in(&p, &has, &bad, &m);
        CHECK(r == PROTO_E_AUTH || r == PROTO_E_PARSE || r == PROTO_DROP);
    }
    pair_close(&p);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

static void test_cookies_and_malformed(void)
{
    void *sctx = make_ctx(PROTO_SERVER, NULL, NULL, NULL);
    void *cctx = make_ctx(PROTO_CLIENT, NULL, server_b64, NULL);
    struct pair p, q;
    bool has = false, hasq = false;
    struct dg init, cookie, d;
    struct proto_msg m;
    pair_open(&p, sctx, cctx, 5000);
    pair_open(&q, sctx, cctx, 5001);
    CHECK_INT(vt->conn_init(p.c, cctx, PROTO_CLIENT, &p.cout), 0);
    take(&init, &p.cout);
    /* A forged (random) cookie: answered with a real one, logged, no state. */
    d = init;
    CHECK_INT(crypto_random(d.b + 8, 16), 0);
    CHECK_INT(server_in(&p, &has, &d, &m), PROTO_E_AUTH);
    CHECK(!has);
    take(&cookie, &p.sout);
    CHECK_INT(cookie.n, 24);
    CHECK_MEM(cookie.b + 4, init.b + 4, 4);
    /* The cookie of port 5000 is worthless from port 5001. */
    d = init;
    memcpy(d.b + 8, cookie.b + 8, 16);
    CHECK_INT(server_in(&q, &hasq, &d, &m), PROTO_E_AUTH);
    CHECK(!hasq);
    buf_reset(&q.sout);
    CHECK_INT(server_in(&p, &has, &d, &m), PROTO_NEED_MORE);
    CHECK(has);
    buf_reset(&p.sout);
    /* Malformed datagrams: unknown type, bad reserved bytes, bad suite, bad lengths. */
    static const uint8_t junk[][4] = {{0, 0, 0, 0}, {6, 0, 0, 0}, {5, 1, 0, 0}, {1, 4, 0, 0},
                                      {2, 0, 0, 0}, {3, 0, 1, 0}, {4, 0, 0, 0}, {5, 0, 0, 0}};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        memset(d.b, 0, 200);
        memcpy(d.b, junk[i], 4);
        d.n = 31;
        CHECK_INT(vt->dgram_new(sctx, (const struct sockaddr *)&q.peer, sizeof(q.peer), d.b, d.n,
                                &q.sout),
                  PROTO_E_PARSE);
    }
    /* Well-formed datagrams of other types from an unknown address: dropped quietly. */
    memset(d.b, 0, 200);
    d.b[0] = 5;
    d.n = 40;
    CHECK_INT(
        vt->dgram_new(sctx, (const struct sockaddr *)&q.peer, sizeof(q.peer), d.b, d.n, &q.sout),
        PROTO_DROP);
    CHECK(buf_empty(&q.sout));
    /* Server-bound datagrams in the wrong direction. */
    d.b[0] = 2;
    d.n = 108;
    CHECK_INT(vt->dgram_read(p.s, d.b, d.n, &p.sout, &m), PROTO_E_PARSE);
    pair_close(&p);
    pair_close(&q);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

static void test_restart_limit_trust(void)
{
    void *sctx = make_ctx(PROTO_SERVER, NULL, NULL, NULL);
    void *cctx = make_ctx(PROTO_CLIENT, NULL, server_b64, NULL);
    struct pair p;
    bool has = false;
    struct dg d;
    struct proto_msg m;
    pair_open(&p, sctx, cctx, 6000);
    handshake(&p, &has);
    send_expect(p.c, p.s, "first life", &d);
    /* The client restarts on the same address: the session starts over. */
    vt->conn_free(p.c);
    memset(p.c, 0, vt->conn_size);
    struct dg init, cookie, resp, fin;
    CHECK_INT(vt->conn_init(p.c, cctx, PROTO_CLIENT, &p.cout), 0);
    take(&init, &p.cout);
    /* No cookie on an existing session: it must carry the session's cookie. */
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_E_AUTH);
    /* (udp_peers.c would have answered a session-less address with a cookie; emulate that.) */
    CHECK_INT(vt->dgram_new(sctx, (const struct sockaddr *)&p.peer, sizeof(p.peer), init.b, init.n,
                            &p.sout),
              PROTO_DROP);
    take(&cookie, &p.sout);
    CHECK_INT(vt->dgram_read(p.c, cookie.b, cookie.n, &p.cout, &m), PROTO_NEED_MORE);
    take(&init, &p.cout);
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_NEED_MORE);
    take(&resp, &p.sout);
    CHECK_INT(vt->dgram_read(p.c, resp.b, resp.n, &p.cout, &m), PROTO_HANDSHAKE);
    take(&fin, &p.cout);
    CHECK_INT(server_in(&p, &has, &fin, &m), PROTO_HANDSHAKE);
    send_expect(p.c, p.s, "second life", &d);

    /* Counter limit: 2^64 - 2 is the last counter; then the session ends. */
    proto_secure_udp_set_counter(p.c, UINT64_MAX - 1);
    send_expect(p.c, p.s, "last", &d);
    struct buf b;
    buf_init(&b, 1 << 16);
    CHECK_INT(vt->dgram_write(p.c, (const uint8_t *)"x", 1, &b), PROTO_E_LIMIT);
    CHECK_INT(vt->dgram_write(p.c, (const uint8_t *)"x", 1, &b), PROTO_E_LIMIT);
    /* A datagram claiming counter 2^64 - 1 is refused. */
    d.b[8] = d.b[9] = d.b[10] = d.b[11] = d.b[12] = d.b[13] = d.b[14] = d.b[15] = 0xff;
    CHECK_INT(vt->dgram_read(p.s, d.b, d.n, &b, &m), PROTO_E_AUTH);
    buf_free(&b);
    pair_close(&p);

    /* A wrong pin: the response is refused and the client conn is dead. */
    uint8_t other[32];
    char other_b64[KEYS_B64LEN + 1];
    memset(other, 0x42, sizeof(other));
    keys_b64_encode(other, other_b64);
    void *bad = make_ctx(PROTO_CLIENT, NULL, other_b64, NULL);
    has = false;
    pair_open(&p, sctx, bad, 6001);
    CHECK_INT(vt->conn_init(p.c, bad, PROTO_CLIENT, &p.cout), 0);
    take(&init, &p.cout);
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_DROP);
    take(&cookie, &p.sout);
    CHECK_INT(vt->dgram_read(p.c, cookie.b, cookie.n, &p.cout, &m), PROTO_NEED_MORE);
    take(&init, &p.cout);
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_NEED_MORE);
    take(&resp, &p.sout);
    CHECK_INT(vt->dgram_read(p.c, resp.b, resp.n, &p.cout, &m), PROTO_E_TRUST);
    CHECK(buf_empty(&p.cout)); /* no finish sent */
    CHECK(strstr(vt->conn_error(p.c), "mismatch") != NULL);
    CHECK(vt->dgram_retransmit(p.c, &p.cout) < 0);
    pair_close(&p);
    vt->ctx_free(bad);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

/* A repeated initiation is one with the same sender index and the same whole ephemeral key:
 * only that gets the stored response again; a change anywhere in the key is a restart. */
static void test_repeated_initiation(void)
{
    void *sctx = make_ctx(PROTO_SERVER, NULL, NULL, NULL);
    void *cctx = make_ctx(PROTO_CLIENT, NULL, server_b64, NULL);
    struct pair p;
    bool has = false;
    struct dg init, cookie, resp, again, other;
    struct proto_msg m;
    pair_open(&p, sctx, cctx, 4005);
    CHECK_INT(vt->conn_init(p.c, cctx, PROTO_CLIENT, &p.cout), 0);
    take(&init, &p.cout);
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_DROP);
    take(&cookie, &p.sout);
    CHECK_INT(vt->dgram_read(p.c, cookie.b, cookie.n, &p.cout, &m), PROTO_NEED_MORE);
    take(&init, &p.cout);
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_NEED_MORE);
    take(&resp, &p.sout);
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_NEED_MORE);
    take(&again, &p.sout);
    CHECK_INT(again.n, resp.n);
    CHECK_MEM(again.b, resp.b, resp.n);
    /* The last byte of the ephemeral key changed: a new handshake, a new server ephemeral. */
    init.b[55] ^= 1;
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_NEED_MORE);
    take(&other, &p.sout);
    CHECK_INT(other.n, 108);
    CHECK(memcmp(other.b + 12, resp.b + 12, 32) != 0);
    pair_close(&p);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

/* Issue #10: an initiation with a valid cookie whose ephemeral key cannot be used (all
 * zeros: the DH result is zero) is refused as auth_fail and leaves the session as it was, on
 * a fresh session (the address's next, correct initiation then works on it), mid-handshake
 * and after it (the transport goes on). */
static void test_invalid_ephemeral_key(void)
{
    void *sctx = make_ctx(PROTO_SERVER, NULL, NULL, NULL);
    void *cctx = make_ctx(PROTO_CLIENT, NULL, server_b64, NULL);
    struct pair p;
    bool has = false;
    struct dg init, cookie, zero, resp, fin, d;
    struct proto_msg m;
    pair_open(&p, sctx, cctx, 4006);
    CHECK_INT(vt->conn_init(p.c, cctx, PROTO_CLIENT, &p.cout), 0);
    take(&init, &p.cout);
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_DROP);
    take(&cookie, &p.sout);
    CHECK_INT(vt->dgram_read(p.c, cookie.b, cookie.n, &p.cout, &m), PROTO_NEED_MORE);
    take(&init, &p.cout);
    zero = init;
    memset(zero.b + 24, 0, 32);
    /* On the session its valid cookie made: refused, nothing answered, nothing changed. */
    CHECK_INT(server_in(&p, &has, &zero, &m), PROTO_E_AUTH);
    CHECK(has);
    CHECK(buf_empty(&p.sout));
    CHECK(!vt->conn_ready(p.s));
    /* The correct initiation on the same session is answered. */
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_NEED_MORE);
    take(&resp, &p.sout);
    CHECK_INT(resp.n, 108);
    /* Mid-handshake: refused, and a copy of the initiation still gets the same response. */
    CHECK_INT(server_in(&p, &has, &zero, &m), PROTO_E_AUTH);
    CHECK(buf_empty(&p.sout));
    CHECK_INT(server_in(&p, &has, &init, &m), PROTO_NEED_MORE);
    take(&d, &p.sout);
    CHECK_INT(d.n, resp.n);
    CHECK_MEM(d.b, resp.b, resp.n);
    CHECK_INT(vt->dgram_read(p.c, resp.b, resp.n, &p.cout, &m), PROTO_HANDSHAKE);
    take(&fin, &p.cout);
    CHECK_INT(server_in(&p, &has, &fin, &m), PROTO_HANDSHAKE);
    CHECK(vt->conn_ready(p.s));
    /* In transport: refused, the session goes on. */
    CHECK_INT(server_in(&p, &has, &zero, &m), PROTO_E_AUTH);
    CHECK(buf_empty(&p.sout));
    CHECK(vt->conn_ready(p.s));
    send_expect(p.c, p.s, "still here", &d);
    send_expect(p.s, p.c, "still here", &d);
    pair_close(&p);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

int main(void)
{
    uint8_t priv[32], pub[32];
    char err[256];
    bool created;
    snprintf(tmp, sizeof(tmp), "/tmp/secho-test-sudp-XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(server_key, sizeof(server_key), "%s/server.key", tmp);
    snprintf(client_key, sizeof(client_key), "%s/client.key", tmp);
    snprintf(admins, sizeof(admins), "%s/admins", tmp);
    CHECK_INT(keys_load_or_create(server_key, priv, pub, &created, err, sizeof(err)), 0);
    keys_b64_encode(pub, server_b64);
    CHECK_INT(keys_load_or_create(client_key, priv, pub, &created, err, sizeof(err)), 0);
    char client_b64[KEYS_B64LEN + 1];
    keys_b64_encode(pub, client_b64);
    FILE *f = fopen(admins, "w");
    fprintf(f, "%s\n", client_b64);
    fclose(f);
    crypto_wipe(priv, sizeof(priv));

    test_suites();
    test_loss();
    test_replay_reorder();
    test_tamper();
    test_cookies_and_malformed();
    test_restart_limit_trust();
    test_repeated_initiation();
    test_invalid_ephemeral_key();

    unlink(server_key);
    unlink(client_key);
    unlink(admins);
    rmdir(tmp);
    return CHECK_DONE();
}
