/* SPDX-License-Identifier: MIT */
/* proto_secure without sockets: a client conn and a server conn talk through buffers, for
 * all four suites (delivery whole, byte by byte and cut at every offset is in
 * test_conformance.c); plus tampering, truncation, oversized frames, bad preambles and every
 * trust rule. */
#include "check.h"
#include "crypto.h"
#include "keys.h"
#include "proto.h"
#include "secure.h"
#include "secure_int.h" /* white-box: what a conn holds when idle */

#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[256], server_key[300], client_key[300], admin_key[300], admins[300], kh[300];
static char server_b64[KEYS_B64LEN + 1], client_b64[KEYS_B64LEN + 1];

static const char *const suites[] = {
    "Noise_XX_25519_AESGCM_SHA256",
    "Noise_XX_25519_AESGCM_BLAKE2b",
    "Noise_XX_25519_ChaChaPoly_SHA256",
    "Noise_XX_25519_ChaChaPoly_BLAKE2b",
};

struct peer {
    void *ctx;
    void *conn;
    struct buf out;
    int handshakes;
    bool echo;      /* server: echo every message back, as the real server does */
    int nmsgs;      /* messages received */
    struct buf got; /* their bytes, concatenated */
};

static void peer_open(struct peer *p, void *ctx, enum proto_role role)
{
    memset(p, 0, sizeof(*p));
    p->ctx = ctx;
    p->conn = calloc(1, proto_secure.conn_size);
    buf_init(&p->out, 1 << 20);
    buf_init(&p->got, 1 << 20);
    p->echo = role == PROTO_SERVER;
    CHECK_INT(proto_secure.conn_init(p->conn, ctx, role, &p->out), 0);
}

static void peer_close(struct peer *p)
{
    proto_secure.conn_free(p->conn);
    free(p->conn);
    buf_free(&p->out);
    buf_free(&p->got);
}

/* Feeds one chunk; loops until PROTO_NEED_MORE like an I/O model. Returns 0 or the error. */
static int feed_chunk(struct peer *p, const uint8_t *data, size_t len)
{
    size_t off = 0;
    for (;;) {
        struct proto_msg m;
        size_t n = len - off;
        int r = proto_secure.conn_read(p->conn, data + off, &n, &p->out, &m);
        CHECK(n <= len - off);
        off += n;
        if (r < 0)
            return r;
        if (r == PROTO_NEED_MORE) {
            CHECK_INT(off, len);
            return 0;
        }
        if (r == PROTO_HANDSHAKE) {
            p->handshakes++;
            CHECK(proto_secure.conn_ready(p->conn));
        } else {
            CHECK_INT(r, PROTO_MSG);
            CHECK(m.first && m.last);
            p->nmsgs++;
            CHECK_INT(buf_append(&p->got, m.data, m.len), 0);
            if (p->echo)
                CHECK_INT(proto_secure.conn_write(p->conn, m.data, m.len, &p->out), 0);
        }
    }
}

/* mode 0: whole; 1: byte by byte; k >= 2: split at offset k - 2 (clamped). */
static int feed(struct peer *p, const uint8_t *data, size_t len, size_t mode)
{
    if (mode == 0)
        return feed_chunk(p, data, len);
    if (mode == 1) {
        for (size_t i = 0; i < len; i++) {
            int r = feed_chunk(p, data + i, 1);
            if (r)
                return r;
        }
        return 0;
    }
    size_t k = mode - 2 < len ? mode - 2 : len;
    int r = feed_chunk(p, data, k);
    return r ? r : feed_chunk(p, data + k, len - k);
}

/* Moves everything `from` has queued into `to`; `tamper` may change it in flight. */
static int transfer(struct peer *from, struct peer *to, size_t mode,
                    void (*tamper)(uint8_t *, size_t *, void *), void *arg)
{
    size_t len = buf_len(&from->out);
    uint8_t *copy = malloc(len + 1);
    memcpy(copy, buf_head(&from->out), len);
    buf_consume(&from->out, len);
    if (tamper)
        tamper(copy, &len, arg);
    int r = feed(to, copy, len, mode);
    free(copy);
    return r;
}

static struct proto_opts server_opts(void)
{
    struct proto_opts o = {0};
    o.key_file = server_key;
    o.admins_file = admins;
    return o;
}

static struct proto_opts client_opts(const char *suite)
{
    struct proto_opts o = {0};
    o.key_file = client_key;
    o.noise_name = suite;
    o.known_hosts = kh;
    o.host_id = "127.0.0.1:9090";
    o.accept_new = true;
    return o;
}

static void *make_ctx(const struct proto_opts *o, enum proto_role role)
{
    void *ctx = NULL;
    char err[PROTO_ERRLEN] = "";
    int r = proto_secure.ctx_new(o, role, &ctx, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "ctx_new: %s\n", err);
    CHECK_INT(r, 0);
    return ctx;
}

/* A full session: handshake, then the client sends msgs (coalesced with its last handshake
 * message) and checks the echoes. Every transfer uses `mode`. */
static void session(void *sctx, void *cctx, size_t mode, const uint8_t *const *msgs,
                    const size_t *lens, int nmsgs)
{
    struct peer s, c;
    peer_open(&s, sctx, PROTO_SERVER);
    peer_open(&c, cctx, PROTO_CLIENT);
    CHECK(!proto_secure.conn_ready(c.conn));
    CHECK_INT(proto_secure.conn_write(c.conn, (const uint8_t *)"x", 1, &c.out), PROTO_E_STATE);
    CHECK_INT(transfer(&c, &s, mode, NULL, NULL), 0); /* preamble + msg 1 */
    CHECK(!proto_secure.conn_ready(s.conn));
    CHECK_INT(transfer(&s, &c, mode, NULL, NULL), 0); /* msg 2 */
    CHECK_INT(c.handshakes, 1);
    size_t expect = 0;
    for (int i = 0; i < nmsgs; i++) {
        CHECK_INT(proto_secure.conn_write(c.conn, msgs[i], lens[i], &c.out), 0);
        CHECK_INT(buf_append(&c.got, msgs[i], lens[i]), 0); /* expected echo bytes */
        expect += lens[i];
    }
    CHECK_INT(transfer(&c, &s, mode, NULL, NULL), 0); /* msg 3 + records */
    CHECK_INT(s.handshakes, 1);
    CHECK_INT(s.nmsgs, nmsgs);
    CHECK_INT(buf_len(&s.got), expect);
    CHECK_MEM(buf_head(&s.got), buf_head(&c.got), expect);
    CHECK_INT(transfer(&s, &c, mode, NULL, NULL), 0); /* echoes */
    CHECK_INT(c.nmsgs, nmsgs);
    CHECK_INT(buf_len(&c.got), 2 * expect);
    CHECK_MEM(buf_head(&c.got) + expect, buf_head(&c.got), expect);

    /* Identities and admin status. */
    char id[64];
    CHECK(proto_secure.conn_peer_id(s.conn, id, sizeof(id)));
    CHECK_STR(id, client_b64);
    CHECK(proto_secure.conn_peer_id(c.conn, id, sizeof(id)));
    CHECK_STR(id, server_b64);
    CHECK_INT(proto_secure.conn_admin(s.conn), 1);
    peer_close(&s);
    peer_close(&c);
}

static void test_sessions(void)
{
    static uint8_t big[SECURE_MAX_PLAIN];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 31 + 7);
    const uint8_t *small[] = {(const uint8_t *)"hello", (const uint8_t *)"",
                              (const uint8_t *)"exit"};
    const size_t small_len[] = {5, 0, 4};
    const uint8_t *large[] = {big, (const uint8_t *)"x"};
    const size_t large_len[] = {sizeof(big), 1};
    struct proto_opts so = server_opts();
    void *sctx = make_ctx(&so, PROTO_SERVER);
    for (size_t i = 0; i < 4; i++) {
        struct proto_opts co = client_opts(suites[i]);
        void *cctx = make_ctx(&co, PROTO_CLIENT);
        /* Each suite once, whole; the framing is the same for all, and test_conformance.c
         * delivers it byte by byte and cut at every offset. */
        session(sctx, cctx, 0, small, small_len, 3);
        session(sctx, cctx, 0, large, large_len, 2);
        proto_secure.ctx_free(cctx);
    }
    proto_secure.ctx_free(sctx);
}

/* After its handshake a conn keeps the transport's keys and nothing of the handshake: the
 * state is freed at the split (and wiped: noise_handshake_free), no library context is
 * kept per conn, and after a message the plaintext and frame buffers hold no storage. */
static void test_idle_state(void)
{
    struct proto_opts so = server_opts();
    void *sctx = make_ctx(&so, PROTO_SERVER);
    struct proto_opts co = client_opts(suites[0]);
    void *cctx = make_ctx(&co, PROTO_CLIENT);
    struct peer s, c;
    peer_open(&s, sctx, PROTO_SERVER);
    peer_open(&c, cctx, PROTO_CLIENT);
    struct secure_conn *sc = s.conn, *cc = c.conn;
    CHECK(sc->hs == NULL); /* nothing before the client speaks */
    CHECK(cc->hs != NULL);
    CHECK_INT(transfer(&c, &s, 0, NULL, NULL), 0);
    CHECK(sc->hs != NULL);         /* while the handshake runs */
    CHECK(buf_cap(&s.out) < 1024); /* message 2 reserved its size, not a whole frame */
    CHECK_INT(transfer(&s, &c, 0, NULL, NULL), 0);
    CHECK(cc->hs == NULL);
    CHECK_INT(proto_secure.conn_write(c.conn, (const uint8_t *)"quiet", 5, &c.out), 0);
    CHECK_INT(transfer(&c, &s, 1, NULL, NULL), 0); /* byte by byte: frames gathered in rx */
    CHECK_INT(transfer(&s, &c, 1, NULL, NULL), 0);
    CHECK_INT(s.nmsgs, 1);
    CHECK_INT(c.nmsgs, 1);
    struct secure_conn *both[2] = {sc, cc};
    for (int i = 0; i < 2; i++) {
        struct secure_conn *x = both[i];
        CHECK(x->hs == NULL);
        CHECK_INT(x->state, ST_TRANSPORT);
        CHECK(x->has_rs);
        CHECK(x->send.has_key && x->recv.has_key);
        CHECK(x->send.aead.id != 0 && x->recv.aead.id != x->send.aead.id);
        CHECK_INT(buf_cap(&x->rx), 0);
        CHECK(x->udp == NULL); /* a TCP conn has no UDP state */
        CHECK(x->err == NULL); /* nothing went wrong: no error text allocated */
    }
    /* The last plaintext is held only until the next read, which wipes it and gives back
     * its storage. */
    CHECK_INT(buf_cap(&sc->pt), 0);
    CHECK_INT(proto_secure.conn_write(c.conn, (const uint8_t *)"again", 5, &c.out), 0);
    struct proto_msg m;
    size_t n = buf_len(&c.out);
    CHECK_INT(proto_secure.conn_read(s.conn, buf_head(&c.out), &n, &s.out, &m), PROTO_MSG);
    CHECK_INT(n, buf_len(&c.out));
    buf_consume(&c.out, n);
    CHECK_INT(m.len, 5);
    CHECK_MEM(m.data, "again", 5);
    CHECK(buf_cap(&sc->pt) > 0);
    size_t zero = 0;
    uint8_t none[1];
    CHECK_INT(proto_secure.conn_read(s.conn, none, &zero, &s.out, &m), PROTO_NEED_MORE);
    CHECK_INT(buf_cap(&sc->pt), 0);
    /* What an idle secure conn costs, the contexts aside (they are the thread's). */
    CHECK(proto_secure.conn_size <= 512);
    CHECK(crypto_aead_cache_size() <= 2 * CRYPTO_AEAD_CACHE);
    /* A failure allocates the error text. */
    uint8_t junk[2 + 20] = {0, 20};
    CHECK(feed(&s, junk, sizeof(junk), 0) < 0);
    CHECK(sc->err != NULL);
    CHECK(proto_secure.conn_error(s.conn)[0] != '\0');
    peer_close(&s);
    peer_close(&c);
    proto_secure.ctx_free(cctx);
    proto_secure.ctx_free(sctx);
}

/* ---- negative tests ---- */

struct flip {
    size_t at; /* byte offset in the transfer */
    unsigned bit;
};

static void flip_bit(uint8_t *p, size_t *len, void *arg)
{
    struct flip *f = arg;
    if (f->at < *len)
        p[f->at] ^= (uint8_t)(1u << f->bit);
}

/* Runs a handshake where transfer `which` (0: preamble+msg1, 1: msg2, 2: msg3+record,
 * 3: the echo record) gets one bit flipped at `at`. Returns the first error any side saw. */
static int tampered(void *sctx, void *cctx, int which, size_t at, unsigned bit)
{
    struct peer s, c;
    struct flip f = {at, bit};
    int r;
    peer_open(&s, sctx, PROTO_SERVER);
    peer_open(&c, cctx, PROTO_CLIENT);
    struct peer *order[4][2] = {{&c, &s}, {&s, &c}, {&c, &s}, {&s, &c}};
    for (int i = 0; i < 4; i++) {
        if (i == 2)
            CHECK_INT(proto_secure.conn_write(c.conn, (const uint8_t *)"ping", 4, &c.out), 0);
        r = transfer(order[i][0], order[i][1], 0, i == which ? flip_bit : NULL, &f);
        if (r != 0)
            break;
    }
    if (r == 0)
        CHECK_INT(c.nmsgs, 1);
    else /* whoever failed says why */
        CHECK(proto_secure_last_error(c.conn)[0] || proto_secure_last_error(s.conn)[0]);
    peer_close(&s);
    peer_close(&c);
    return r;
}

static void test_tamper(void)
{
    struct proto_opts so = server_opts();
    void *sctx = make_ctx(&so, PROTO_SERVER);
    for (size_t i = 0; i < 4; i++) {
        struct proto_opts co = client_opts(suites[i]);
        void *cctx = make_ctx(&co, PROTO_CLIENT);
        size_t pre = 2 + strlen(suites[i]);
        CHECK_INT(tampered(sctx, cctx, -1, 0, 0), 0);
        /* Every bit of every Noise message body and of a transport record in both
         * directions: each fails authentication (a change to message 1, sent in clear, is
         * caught by the client reading message 2). Suite 0 tries every bit, the others one
         * bit per byte. */
        struct {
            int which;
            size_t from, len;
        } spans[] = {
            {0, pre + 2, 32}, {1, 2, 96}, {2, 2, 64}, {2, 2 + 64 + 2, 20}, {3, 2, 20},
        };
        for (size_t sp = 0; sp < sizeof(spans) / sizeof(spans[0]); sp++) {
            int bad = 0;
            for (size_t b = 0; b < spans[sp].len * 8; b += i == 0 ? 1 : 8) {
                int r = tampered(sctx, cctx, spans[sp].which, spans[sp].from + b / 8,
                                 (unsigned)(b % 8));
                if (r != PROTO_E_AUTH) {
                    fprintf(stderr, "%s: transfer %d byte %zu bit %zu: %d\n", suites[i],
                            spans[sp].which, spans[sp].from + b / 8, b % 8, r);
                    bad++;
                }
            }
            CHECK_INT(bad, 0);
        }
        /* Bit flips in any length prefix are parse errors (lengths are fixed during the
         * handshake) or, for a record, an auth/parse failure once the frame completes. */
        CHECK_INT(tampered(sctx, cctx, 0, 1, 2), PROTO_E_PARSE);       /* preamble length */
        CHECK_INT(tampered(sctx, cctx, 0, pre + 1, 0), PROTO_E_PARSE); /* msg 1 length */
        CHECK_INT(tampered(sctx, cctx, 1, 1, 0), PROTO_E_PARSE);       /* msg 2 length */
        CHECK_INT(tampered(sctx, cctx, 2, 1, 0), PROTO_E_PARSE);       /* msg 3 length */
        proto_secure.ctx_free(cctx);
    }
    proto_secure.ctx_free(sctx);
}

/* Server-side input checks with hand-made byte strings. */
static int server_feed(void *sctx, const uint8_t *data, size_t len, size_t *consumed)
{
    struct peer s;
    peer_open(&s, sctx, PROTO_SERVER);
    struct proto_msg m;
    size_t n = len;
    int r = proto_secure.conn_read(s.conn, data, &n, &s.out, &m);
    if (consumed)
        *consumed = n;
    if (r < 0) {
        CHECK(proto_secure_last_error(s.conn)[0] != '\0');
        /* A dead conn stays dead. */
        size_t z = 0;
        CHECK_INT(proto_secure.conn_read(s.conn, data, &z, &s.out, &m), r);
    }
    CHECK_INT(buf_len(&s.out), 0); /* nothing is ever answered to bad input */
    peer_close(&s);
    return r;
}

static void test_bad_input(void)
{
    struct proto_opts so = server_opts();
    so.max_msg = 1000;
    void *sctx = make_ctx(&so, PROTO_SERVER);
    uint8_t b[200];
    size_t n;

    /* Garbage instead of a preamble: an HTTP request, a zero length, a huge length. */
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_INT(server_feed(sctx, (const uint8_t *)http, strlen(http), &n), PROTO_E_PARSE);
    CHECK(n <= 2); /* refused on the length alone */
    CHECK_INT(server_feed(sctx, (const uint8_t *)"\0\0", 2, NULL), PROTO_E_PARSE);
    CHECK_INT(server_feed(sctx, (const uint8_t *)"\xff\xff", 2, NULL), PROTO_E_PARSE);
    CHECK_INT(server_feed(sctx, (const uint8_t *)"\x00", 1, &n), PROTO_NEED_MORE);
    CHECK_INT(n, 1);

    /* Unknown protocol names. */
    const char *names[] = {"Noise_XX_25519_AESGCM_SHA512",   "Noise_NN_25519_AESGCM_SHA256",
                           "Noise_XX_448_AESGCM_SHA256",     "Noise_XXpsk3_25519_AESGCM_SHA256",
                           "Noise_XX_25519_AESGCM_SHA256\n", "noise_xx_25519_aesgcm_sha256"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t len = strlen(names[i]);
        b[0] = 0;
        b[1] = (uint8_t)len;
        memcpy(b + 2, names[i], len);
        memset(b + 2 + len, 0, 34);
        b[2 + len] = 0;
        b[3 + len] = 32;
        CHECK_INT(server_feed(sctx, b, 2 + len + 34, NULL), PROTO_E_PARSE);
    }

    /* A good preamble then a handshake message of the wrong length (oversized or
     * truncated): refused as soon as the length is read. */
    size_t len = strlen(suites[0]);
    b[0] = 0;
    b[1] = (uint8_t)len;
    memcpy(b + 2, suites[0], len);
    const uint16_t bad_len[] = {0, 31, 33, 0xffff};
    for (size_t i = 0; i < 4; i++) {
        b[2 + len] = (uint8_t)(bad_len[i] >> 8);
        b[3 + len] = (uint8_t)bad_len[i];
        CHECK_INT(server_feed(sctx, b, 4 + len, &n), PROTO_E_PARSE);
    }
    /* The right length with the body still missing just waits. */
    b[2 + len] = 0;
    b[3 + len] = 32;
    CHECK_INT(server_feed(sctx, b, 4 + len + 31, &n), PROTO_NEED_MORE);
    CHECK_INT(n, 4 + len + 31);

    /* After a handshake: oversized, undersized and truncated records. */
    struct proto_opts co = client_opts(suites[0]);
    void *cctx = make_ctx(&co, PROTO_CLIENT);
    struct peer s, c;
    peer_open(&s, sctx, PROTO_SERVER);
    peer_open(&c, cctx, PROTO_CLIENT);
    CHECK_INT(transfer(&c, &s, 0, NULL, NULL), 0);
    CHECK_INT(transfer(&s, &c, 0, NULL, NULL), 0);
    CHECK_INT(transfer(&c, &s, 0, NULL, NULL), 0);
    CHECK_INT(s.handshakes, 1);
    static uint8_t big[2000];
    CHECK_INT(proto_secure.conn_write(s.conn, big, 1001, &s.out), PROTO_E_TOOBIG);
    CHECK_INT(proto_secure.conn_write(s.conn, big, 1000, &s.out), 0);
    buf_reset(&s.out);
    /* Client may send up to its own max (65519); the server's --max-msg 1000 refuses the
     * record on its length prefix, before buffering it. */
    struct proto_msg m;
    uint8_t hdr[2] = {(uint8_t)((1001 + 16) >> 8), (uint8_t)(1001 + 16)};
    n = 2;
    CHECK_INT(proto_secure.conn_read(s.conn, hdr, &n, &s.out, &m), PROTO_E_TOOBIG);
    peer_close(&s);

    /* Shorter than a tag. */
    peer_open(&s, sctx, PROTO_SERVER);
    peer_close(&c);
    peer_open(&c, cctx, PROTO_CLIENT);
    CHECK_INT(transfer(&c, &s, 0, NULL, NULL), 0);
    CHECK_INT(transfer(&s, &c, 0, NULL, NULL), 0);
    CHECK_INT(transfer(&c, &s, 0, NULL, NULL), 0);
    uint8_t tiny[2 + 15] = {0, 15};
    n = sizeof(tiny);
    CHECK_INT(proto_secure.conn_read(s.conn, tiny, &n, &s.out, &m), PROTO_E_PARSE);
    peer_close(&s);

    /* A record whose prefix claims one byte less than its real length: the tag is cut. */
    peer_open(&s, sctx, PROTO_SERVER);
    peer_close(&c);
    peer_open(&c, cctx, PROTO_CLIENT);
    CHECK_INT(transfer(&c, &s, 0, NULL, NULL), 0);
    CHECK_INT(transfer(&s, &c, 0, NULL, NULL), 0);
    CHECK_INT(transfer(&c, &s, 0, NULL, NULL), 0);
    CHECK_INT(proto_secure.conn_write(c.conn, (const uint8_t *)"hello", 5, &c.out), 0);
    uint8_t rec[64];
    size_t rl = buf_len(&c.out);
    memcpy(rec, buf_head(&c.out), rl);
    rec[1]--;
    n = rl - 1;
    CHECK_INT(proto_secure.conn_read(s.conn, rec, &n, &s.out, &m), PROTO_E_AUTH);
    CHECK_STR(proto_secure_last_error(s.conn), "record: authentication failed");
    peer_close(&s);
    peer_close(&c);
    proto_secure.ctx_free(cctx);
    proto_secure.ctx_free(sctx);
}

/* ---- trust rules ---- */

static int answers;
static bool answer_yes(void *arg, const char *q)
{
    (void)q;
    answers++;
    return *(bool *)arg;
}

/* Runs a handshake up to the client's decision. Returns the client's error or 0; *sent is
 * set to the bytes the client queued after reading message 2. */
static int connect_with(void *sctx, const struct proto_opts *co, size_t *sent, char *why,
                        size_t whylen)
{
    void *cctx = make_ctx(co, PROTO_CLIENT);
    struct peer s, c;
    peer_open(&s, sctx, PROTO_SERVER);
    peer_open(&c, cctx, PROTO_CLIENT);
    CHECK_INT(transfer(&c, &s, 0, NULL, NULL), 0);
    int r = transfer(&s, &c, 0, NULL, NULL);
    *sent = buf_len(&c.out);
    snprintf(why, whylen, "%s", proto_secure_last_error(c.conn));
    peer_close(&s);
    peer_close(&c);
    proto_secure.ctx_free(cctx);
    return r;
}

static void test_trust(void)
{
    struct proto_opts so = server_opts();
    void *sctx = make_ctx(&so, PROTO_SERVER);
    char why[PROTO_ERRLEN * 2], khline[200];
    size_t sent;
    uint8_t other[32];
    char other_b64[KEYS_B64LEN + 1];
    uint8_t spub[32];
    CHECK(keys_b64_decode(server_b64, KEYS_B64LEN, spub));
    memset(other, 0x42, sizeof(other));
    keys_b64_encode(other, other_b64);
    unlink(kh);

    /* Unknown key, no --accept-new, no terminal: refused before anything is sent. */
    struct proto_opts co = client_opts(suites[0]);
    co.accept_new = false;
    CHECK_INT(connect_with(sctx, &co, &sent, why, sizeof(why)), PROTO_E_TRUST);
    CHECK_INT(sent, 0);
    CHECK(strstr(why, server_b64) != NULL);
    CHECK(access(kh, F_OK) != 0);

    /* Asked on a terminal: no refuses, yes accepts and records. */
    bool no = false, yes = true;
    co.confirm = answer_yes;
    co.confirm_arg = &no;
    CHECK_INT(connect_with(sctx, &co, &sent, why, sizeof(why)), PROTO_E_TRUST);
    CHECK_INT(answers, 1);
    CHECK(access(kh, F_OK) != 0);
    co.confirm_arg = &yes;
    CHECK_INT(connect_with(sctx, &co, &sent, why, sizeof(why)), 0);
    CHECK_INT(answers, 2);
    CHECK(sent > 0);
    CHECK_INT(keys_known_hosts_check(kh, "127.0.0.1:9090", NULL, spub, NULL, NULL, 0),
              KEYS_HOST_MATCH);

    /* Known now: accepted without asking. */
    CHECK_INT(connect_with(sctx, &co, &sent, why, sizeof(why)), 0);
    CHECK_INT(answers, 2);

    /* --accept-new records an unknown key (other port = other entry). */
    unlink(kh);
    co = client_opts(suites[1]);
    CHECK_INT(connect_with(sctx, &co, &sent, why, sizeof(why)), 0);
    CHECK_INT(keys_known_hosts_check(kh, "127.0.0.1:9090", NULL, spub, NULL, NULL, 0),
              KEYS_HOST_MATCH);
    co.host_id = "localhost:9090";
    CHECK_INT(connect_with(sctx, &co, &sent, why, sizeof(why)), 0);
    CHECK_INT(keys_known_hosts_check(kh, "localhost:9090", NULL, spub, NULL, NULL, 0),
              KEYS_HOST_MATCH);

    /* A changed key is refused loudly, even with --accept-new. */
    FILE *f = fopen(kh, "w");
    snprintf(khline, sizeof(khline), "127.0.0.1:9090 %s\n", other_b64);
    fputs(khline, f);
    fclose(f);
    co = client_opts(suites[2]);
    CHECK_INT(connect_with(sctx, &co, &sent, why, sizeof(why)), PROTO_E_TRUST);
    CHECK_INT(sent, 0);
    CHECK(strstr(why, "CHANGED") != NULL);
    CHECK(strstr(why, other_b64) != NULL && strstr(why, server_b64) != NULL);
    co.confirm = answer_yes;
    co.confirm_arg = &yes;
    CHECK_INT(connect_with(sctx, &co, &sent, why, sizeof(why)), PROTO_E_TRUST);
    CHECK_INT(answers, 2); /* never asked */

    /* The pin wins: a right pin beats the changed known_hosts line; a wrong pin is refused
     * even with --accept-new and an empty known_hosts. */
    co = client_opts(suites[3]);
    co.server_key = server_b64;
    CHECK_INT(connect_with(sctx, &co, &sent, why, sizeof(why)), 0);
    unlink(kh);
    co.server_key = other_b64;
    CHECK_INT(connect_with(sctx, &co, &sent, why, sizeof(why)), PROTO_E_TRUST);
    CHECK_INT(sent, 0);
    CHECK(strstr(why, "mismatch") != NULL);
    CHECK(access(kh, F_OK) != 0);

    /* A bad pin or suite name is a ctx_new error. */
    void *ctx = NULL;
    char err[PROTO_ERRLEN];
    co.server_key = "not-a-key";
    CHECK_INT(proto_secure.ctx_new(&co, PROTO_CLIENT, &ctx, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "not-a-key") != NULL);
    co = client_opts("Noise_NN_25519_AESGCM_SHA256");
    CHECK_INT(proto_secure.ctx_new(&co, PROTO_CLIENT, &ctx, err, sizeof(err)), -EINVAL);

    /* A client whose key is not in --admins is not an admin; no --admins at all: nobody. */
    struct proto_opts so2 = server_opts();
    so2.admins_file = NULL;
    void *sctx2 = make_ctx(&so2, PROTO_SERVER);
    co = client_opts(suites[0]);
    void *cctx = make_ctx(&co, PROTO_CLIENT);
    struct peer s, c;
    peer_open(&s, sctx2, PROTO_SERVER);
    peer_open(&c, cctx, PROTO_CLIENT);
    CHECK_INT(proto_secure.conn_admin(s.conn), -1);
    CHECK_INT(transfer(&c, &s, 0, NULL, NULL), 0);
    CHECK_INT(transfer(&s, &c, 0, NULL, NULL), 0);
    CHECK_INT(transfer(&c, &s, 0, NULL, NULL), 0);
    CHECK_INT(proto_secure.conn_admin(s.conn), 0);
    peer_close(&s);
    peer_close(&c);
    proto_secure.ctx_free(cctx);
    proto_secure.ctx_free(sctx2);
    /* An admins file that lists someone else. */
    co.key_file = admin_key;
    cctx = make_ctx(&co, PROTO_CLIENT);
    peer_open(&s, sctx, PROTO_SERVER);
    peer_open(&c, cctx, PROTO_CLIENT);
    CHECK_INT(transfer(&c, &s, 0, NULL, NULL), 0);
    CHECK_INT(transfer(&s, &c, 0, NULL, NULL), 0);
    CHECK_INT(transfer(&c, &s, 0, NULL, NULL), 0);
    CHECK_INT(s.handshakes, 1);
    CHECK_INT(proto_secure.conn_admin(s.conn), 0);
    peer_close(&s);
    peer_close(&c);
    proto_secure.ctx_free(cctx);

    CHECK(proto_secure.ctx_banner(sctx) && strstr(proto_secure.ctx_banner(sctx), server_b64));
    proto_secure.ctx_free(sctx);
}

int main(void)
{
    uint8_t priv[32], pub[32];
    char err[256];
    bool created;
    snprintf(tmp, sizeof(tmp), "/tmp/secho-psec-XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(server_key, sizeof(server_key), "%s/server.key", tmp);
    snprintf(client_key, sizeof(client_key), "%s/id.key", tmp);
    snprintf(admin_key, sizeof(admin_key), "%s/other.key", tmp);
    snprintf(admins, sizeof(admins), "%s/admins", tmp);
    snprintf(kh, sizeof(kh), "%s/known_hosts", tmp);
    CHECK_INT(keys_load_or_create(server_key, priv, pub, &created, err, sizeof(err)), 0);
    keys_b64_encode(pub, server_b64);
    CHECK_INT(keys_load_or_create(client_key, priv, pub, &created, err, sizeof(err)), 0);
    keys_b64_encode(pub, client_b64);
    FILE *f = fopen(admins, "w");
    fprintf(f, "# admins\n%s\n", client_b64);
    fclose(f);
    CHECK_INT(keys_load_or_create(admin_key, priv, pub, &created, err, sizeof(err)), 0);

    test_sessions();
    test_idle_state();
    test_tamper();
    test_bad_input();
    test_trust();

    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    CHECK_INT(system(cmd), 0);
    return CHECK_DONE();
}
