/* SPDX-License-Identifier: MIT */
/* secure (secho/1) over UDP, WireGuard-style, byte for byte as docs/PROTOCOL.md "secure over
 * UDP" fixes it: Noise XX in datagrams with sender/receiver indices; a stateless cookie round
 * trip before the server keeps any state (forged source addresses cost no memory); explicit
 * 64-bit counters used as the Noise nonce, with an RFC 6479 replay window; and handshake
 * states that survive forged datagrams, because each handshake message is tried on a copy.
 * Sans-IO: the only outside input besides the datagrams is the clock for the cookie period. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "secure.h"
#include "secure_int.h"

enum { T_INIT = 1, T_RESP = 2, T_COOKIE = 3, T_FINISH = 4, T_DATA = 5 };

#define INIT_LEN     56
#define RESP_LEN     108
#define COOKIE_LEN   24
#define FINISH_LEN   72
#define DATA_HDR     16
#define DATA_MAX     (DATA_HDR + SECURE_UDP_MAX_PLAIN + NOISE_TAGLEN)
#define COOKIE_BYTES 16
#define COOKIE_S     120 /* cookie secret period, seconds */
#define UDP_PROLOGUE "secho/1-udp"
#define PROLOGUE_MAX (sizeof(UDP_PROLOGUE) - 1 + 2 + SECURE_NAME_MAX)

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* Returns the datagram's type if its length and reserved bytes are right, else -1. */
static int parse_type(const uint8_t *in, size_t len)
{
    if (len < 4 || in[2] != 0 || in[3] != 0)
        return -1;
    if (in[0] == T_INIT)
        return len == INIT_LEN && in[1] < SECURE_NSUITES ? T_INIT : -1;
    if (in[1] != 0)
        return -1;
    switch (in[0]) {
    case T_RESP:
        return len == RESP_LEN ? T_RESP : -1;
    case T_COOKIE:
        return len == COOKIE_LEN ? T_COOKIE : -1;
    case T_FINISH:
        return len == FINISH_LEN ? T_FINISH : -1;
    case T_DATA:
        return len >= DATA_HDR + NOISE_TAGLEN && len <= DATA_MAX ? T_DATA : -1;
    default:
        return -1;
    }
}

/* prologue = "secho/1-udp" || u16be(len(name)) || name: binds the suite byte. */
static size_t make_prologue(uint8_t p[static PROLOGUE_MAX], const char *name)
{
    size_t n = strlen(name), k = sizeof(UDP_PROLOGUE) - 1;
    memcpy(p, UDP_PROLOGUE, k);
    p[k] = (uint8_t)(n >> 8);
    p[k + 1] = (uint8_t)n;
    memcpy(p + k + 2, name, n);
    return k + 2 + n;
}

/* ---- cookies (server, stateless) ---- */

static uint64_t cookie_period(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec / COOKIE_S;
}

/* cookie = HMAC-SHA256(K_t, A)[0..15], K_t = HMAC-SHA256(secret, "secho/1 cookie" || t). */
static int make_cookie(const struct secure_ctx *x, const struct sockaddr *sa, uint64_t period,
                       uint8_t out[static COOKIE_BYTES])
{
    static const char label[] = "secho/1 cookie";
    uint8_t a[1 + 16 + 2], t[sizeof(label) - 1 + 8], k[CRYPTO_HASHMAX], mac[CRYPTO_HASHMAX];
    size_t n;
    int r = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const void *)sa;
        a[0] = 4;
        memcpy(a + 1, &s4->sin_addr, 4);
        memcpy(a + 5, &s4->sin_port, 2);
        n = 7;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        a[0] = 6;
        memcpy(a + 1, &s6->sin6_addr, 16);
        memcpy(a + 17, &s6->sin6_port, 2);
        n = 19;
    } else {
        return -EAFNOSUPPORT;
    }
    memcpy(t, label, sizeof(label) - 1);
    put_u64(t + sizeof(label) - 1, period);
    if (crypto_hmac(CRYPTO_SHA256, x->cookie_secret, sizeof(x->cookie_secret), t, sizeof(t), NULL,
                    0, k) != 0 ||
        crypto_hmac(CRYPTO_SHA256, k, 32, a, n, NULL, 0, mac) != 0)
        r = PROTO_E_CRYPTO;
    else
        memcpy(out, mac, COOKIE_BYTES);
    crypto_wipe(k, sizeof(k));
    crypto_wipe(mac, sizeof(mac));
    return r;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

int secure__dgram_new(void *ctx, const struct sockaddr *peer, socklen_t peerlen, const uint8_t *in,
                      size_t len, struct buf *reply)
{
    const struct secure_ctx *x = ctx;
    uint8_t want[COOKIE_BYTES], out[COOKIE_LEN];
    (void)peerlen;
    int t = parse_type(in, len);
    if (t < 0)
        return PROTO_E_PARSE;
    if (t != T_INIT)
        return PROTO_DROP; /* for a session this server no longer (or never) had */
    uint64_t now = cookie_period();
    for (uint64_t i = 0; i < 2; i++) {
        int r = make_cookie(x, peer, now - i, want);
        if (r != 0)
            return r;
        if (crypto_equal(want, in + 8, COOKIE_BYTES)) {
            crypto_wipe(want, sizeof(want));
            return 1;
        }
    }
    /* No (valid) cookie: answer with one, keep nothing. The reply is smaller than the
     * initiation, so a forged source address cannot turn us into an amplifier. */
    int r = make_cookie(x, peer, now, want);
    if (r != 0)
        return r;
    memset(out, 0, 4);
    out[0] = T_COOKIE;
    memcpy(out + 4, in + 4, 4);
    memcpy(out + 8, want, COOKIE_BYTES);
    crypto_wipe(want, sizeof(want));
    if ((r = buf_append(reply, out, sizeof(out))) != 0)
        return r;
    return all_zero(in + 8, COOKIE_BYTES) ? PROTO_DROP : PROTO_E_AUTH;
}

/* ---- shared ---- */

static int new_index(struct secure_conn *c)
{
    if (crypto_random(&c->udp.local_idx, sizeof(c->udp.local_idx)) != 0)
        return secure__fail(c, PROTO_E_CRYPTO, "no randomness");
    return 0;
}

/* Tries handshake message `msg` on a copy of the state, so a forged or damaged datagram
 * leaves the real state as it was. Returns 0 or the (non-fatal) error. */
static int try_handshake_read(struct secure_conn *c, const uint8_t *msg, size_t len)
{
    struct noise_handshake tmp;
    uint8_t payload[1];
    size_t plen = 0;
    unsigned n = (unsigned)c->hs.msg + 1;
    int r = secure__noise(noise_handshake_copy(&tmp, &c->hs));
    if (r == 0)
        r = secure__noise(noise_handshake_read(&tmp, msg, len, payload, 0, &plen));
    if (r != 0) {
        noise_handshake_free(&tmp);
        crypto_wipe(&tmp, sizeof(tmp));
        if (r == PROTO_E_CRYPTO)
            return secure__fail(c, r, "handshake message %u: %s", n, proto_strerror(r));
        return secure__drop(c, r, "handshake message %u: %s", n, proto_strerror(r));
    }
    noise_handshake_free(&c->hs);
    memcpy(&c->hs, &tmp, sizeof(tmp));
    crypto_wipe(&tmp, sizeof(tmp));
    return 0;
}

static int start_transport(struct secure_conn *c)
{
    int r = secure__noise(noise_handshake_split(&c->hs, &c->send, &c->recv));
    if (r != 0)
        return secure__fail(c, r, "split: %s", proto_strerror(r));
    replay_init(&c->udp.replay);
    c->udp.send_ctr = 0;
    secure__set_admin(c);
    c->state = ST_TRANSPORT;
    return PROTO_HANDSHAKE;
}

static int data_read(struct secure_conn *c, const uint8_t *in, size_t len, struct proto_msg *msg)
{
    if (c->state != ST_TRANSPORT)
        return PROTO_DROP; /* data before the finish arrived: the client sends both again */
    if (get_u32(in + 4) != c->udp.local_idx)
        return PROTO_DROP; /* another (older) session's */
    uint64_t ctr = get_u64(in + 8);
    size_t n = len - DATA_HDR - NOISE_TAGLEN;
    /* RFC 6479: reject replays before spending a decryption on them. */
    if (!replay_check(&c->udp.replay, ctr))
        return secure__drop(c, PROTO_E_AUTH, "replayed or too old counter %llu",
                            (unsigned long long)ctr);
    if (n > c->ctx->max_msg)
        return secure__drop(c, PROTO_E_TOOBIG, "message of %zu bytes exceeds the limit", n);
    buf_reset(&c->pt);
    int r = buf_reserve(&c->pt, n ? n : 1);
    if (r != 0)
        return secure__drop(c, r, "message buffer: %s", strerror(-r));
    noise_cipher_set_nonce(&c->recv, ctr);
    r = secure__noise(noise_cipher_decrypt(&c->recv, in, DATA_HDR, in + DATA_HDR, len - DATA_HDR,
                                           buf_tail(&c->pt)));
    if (r != 0)
        return secure__drop(c, r, "data counter %llu: %s", (unsigned long long)ctr,
                            proto_strerror(r));
    replay_update(&c->udp.replay, ctr); /* only now: forgeries never move the window */
    buf_commit(&c->pt, n);
    c->udp.confirmed = true;
    msg->data = buf_head(&c->pt);
    msg->len = n;
    msg->first = msg->last = true;
    return PROTO_MSG;
}

/* ---- server ---- */

/* Resets the Noise states of a session whose client started over. */
static void reset_handshake(struct secure_conn *c)
{
    noise_handshake_free(&c->hs);
    noise_cipher_free(&c->send);
    noise_cipher_free(&c->recv);
    memset(&c->hs, 0, sizeof(c->hs));
    c->admin = -1;
    c->state = ST_PREAMBLE;
}

static int server_initiation(struct secure_conn *c, const uint8_t *in, struct buf *reply)
{
    uint8_t prologue[PROLOGUE_MAX], payload[1];
    size_t plen = 0, n = 0;
    int r;
    if (c->state != ST_PREAMBLE) {
        /* udp.c admitted this session (by address) with a checked cookie; later
         * initiations on it must carry that same cookie. */
        if (!crypto_equal(in + 8, c->udp.cookie, COOKIE_BYTES))
            return secure__drop(c, PROTO_E_AUTH, "initiation with another cookie");
        if (memcmp(in + 4, c->udp.init_id, sizeof(c->udp.init_id)) == 0) {
            if (c->state != ST_HANDSHAKE)
                return PROTO_DROP; /* a late copy */
            /* Our response was lost: the same one again, never a new ephemeral key. */
            r = buf_append(reply, c->udp.hs_dgram, c->udp.hs_len);
            return r ? r : PROTO_NEED_MORE;
        }
        reset_handshake(c); /* the client restarted */
    }
    const char *name = secure__suites[in[1]];
    size_t k = make_prologue(prologue, name);
    r = secure__noise(noise_handshake_init(&c->hs, name, false, prologue, k, &c->ctx->s, NULL));
    if (r == 0)
        r = secure__noise(noise_handshake_read(&c->hs, in + 24, NOISE_DHLEN, payload, 0, &plen));
    if (r == 0)
        r = secure__noise(
            noise_handshake_write(&c->hs, NULL, 0, c->udp.hs_dgram + 12, RESP_LEN - 12, &n));
    if (r != 0)
        return secure__fail(c, r, "handshake: %s", proto_strerror(r));
    if (n != RESP_LEN - 12)
        return secure__fail(c, PROTO_E_STATE, "response of %zu bytes", n);
    if ((r = new_index(c)) != 0)
        return r;
    c->udp.remote_idx = get_u32(in + 4);
    memcpy(c->udp.cookie, in + 8, COOKIE_BYTES);
    memcpy(c->udp.init_id, in + 4, sizeof(c->udp.init_id));
    memset(c->udp.hs_dgram, 0, 4);
    c->udp.hs_dgram[0] = T_RESP;
    put_u32(c->udp.hs_dgram + 4, c->udp.local_idx);
    put_u32(c->udp.hs_dgram + 8, c->udp.remote_idx);
    c->udp.hs_len = RESP_LEN;
    c->state = ST_HANDSHAKE;
    r = buf_append(reply, c->udp.hs_dgram, c->udp.hs_len);
    return r ? r : PROTO_NEED_MORE;
}

static int server_finish(struct secure_conn *c, const uint8_t *in)
{
    if (c->state == ST_TRANSPORT)
        return PROTO_DROP; /* a repeated finish */
    if (c->state != ST_HANDSHAKE)
        return secure__drop(c, PROTO_E_PARSE, "finish without an initiation");
    if (get_u32(in + 4) != c->udp.local_idx)
        return PROTO_DROP;
    int r = try_handshake_read(c, in + 8, FINISH_LEN - 8);
    return r ? r : start_transport(c);
}

/* ---- client ---- */

int secure__udp_client_init(struct secure_conn *c, struct buf *out)
{
    const char *name = c->ctx->noise_name;
    uint8_t prologue[PROLOGUE_MAX];
    size_t n = 0;
    unsigned suite = 0;
    while (suite < SECURE_NSUITES && strcmp(secure__suites[suite], name) != 0)
        suite++;
    if (suite == SECURE_NSUITES)
        return secure__fail(c, PROTO_E_PARSE, "unsupported protocol name %s", name);
    size_t k = make_prologue(prologue, name);
    int r = secure__noise(noise_handshake_init(&c->hs, name, true, prologue, k, &c->ctx->s, NULL));
    if (r == 0)
        r = secure__noise(
            noise_handshake_write(&c->hs, NULL, 0, c->udp.hs_dgram + 24, INIT_LEN - 24, &n));
    if (r != 0)
        return secure__fail(c, r, "handshake: %s", proto_strerror(r));
    if ((r = new_index(c)) != 0)
        return r;
    memset(c->udp.hs_dgram, 0, 24); /* no cookie yet */
    c->udp.hs_dgram[0] = T_INIT;
    c->udp.hs_dgram[1] = (uint8_t)suite;
    put_u32(c->udp.hs_dgram + 4, c->udp.local_idx);
    c->udp.hs_len = INIT_LEN;
    c->state = ST_HANDSHAKE;
    if ((r = buf_append(out, c->udp.hs_dgram, c->udp.hs_len)) != 0)
        return secure__fail(c, r, "output buffer full");
    return 0;
}

static int client_response(struct secure_conn *c, const uint8_t *in, struct buf *reply)
{
    size_t n = 0;
    if (c->state != ST_HANDSHAKE || get_u32(in + 8) != c->udp.local_idx)
        return PROTO_DROP; /* a repeated response, or not for us */
    int r = try_handshake_read(c, in + 12, RESP_LEN - 12);
    if (r != 0)
        return r;
    /* Message 2 revealed the server's static key: decide before sending anything. */
    const uint8_t *rs = noise_handshake_remote_static(&c->hs);
    if (!rs)
        return secure__fail(c, PROTO_E_STATE, "no server key after message 2");
    if ((r = secure__trust_server(c, rs)) != 0)
        return r;
    c->udp.remote_idx = get_u32(in + 4);
    r = secure__noise(
        noise_handshake_write(&c->hs, NULL, 0, c->udp.hs_dgram + 8, FINISH_LEN - 8, &n));
    if (r != 0)
        return secure__fail(c, r, "handshake message 3: %s", proto_strerror(r));
    memset(c->udp.hs_dgram, 0, 4);
    c->udp.hs_dgram[0] = T_FINISH;
    put_u32(c->udp.hs_dgram + 4, c->udp.remote_idx);
    c->udp.hs_len = FINISH_LEN;
    c->udp.confirmed = false;
    if ((r = buf_append(reply, c->udp.hs_dgram, c->udp.hs_len)) != 0)
        return secure__fail(c, r, "output buffer full");
    return start_transport(c);
}

static int client_cookie(struct secure_conn *c, const uint8_t *in, struct buf *reply)
{
    if (c->state != ST_HANDSHAKE || get_u32(in + 4) != c->udp.local_idx)
        return PROTO_DROP;
    /* The same initiation (same ephemeral key) again, now with the cookie. */
    memcpy(c->udp.hs_dgram + 8, in + 8, COOKIE_BYTES);
    int r = buf_append(reply, c->udp.hs_dgram, c->udp.hs_len);
    return r ? r : PROTO_NEED_MORE;
}

/* ---- the vt entries ---- */

int secure__dgram_read(void *conn, const uint8_t *in, size_t len, struct buf *reply,
                       struct proto_msg *msg)
{
    struct secure_conn *c = conn;
    if (c->state == ST_DEAD)
        return c->dead_err ? c->dead_err : PROTO_E_STATE;
    int t = parse_type(in, len);
    if (t < 0)
        return secure__drop(c, PROTO_E_PARSE, "malformed datagram of %zu bytes", len);
    if (t == T_DATA)
        return data_read(c, in, len, msg);
    if (c->role == PROTO_SERVER) {
        if (t == T_INIT)
            return server_initiation(c, in, reply);
        if (t == T_FINISH)
            return server_finish(c, in);
    } else {
        if (t == T_RESP)
            return client_response(c, in, reply);
        if (t == T_COOKIE)
            return client_cookie(c, in, reply);
    }
    return secure__drop(c, PROTO_E_PARSE, "datagram type %d in the wrong direction", t);
}

int secure__dgram_write(void *conn, const uint8_t *msg, size_t len, struct buf *out)
{
    struct secure_conn *c = conn;
    if (c->state != ST_TRANSPORT)
        return c->state == ST_DEAD && c->dead_err ? c->dead_err : PROTO_E_STATE;
    size_t max = c->ctx->max_msg < SECURE_UDP_MAX_PLAIN ? c->ctx->max_msg : SECURE_UDP_MAX_PLAIN;
    if (len > max)
        return PROTO_E_TOOBIG;
    uint64_t ctr = c->udp.send_ctr;
    if (ctr > REPLAY_COUNTER_MAX) /* nonces never repeat: the session ends */
        return secure__fail(c, PROTO_E_LIMIT, "send counter exhausted");
    int r = buf_reserve(out, DATA_HDR + len + NOISE_TAGLEN);
    if (r != 0)
        return r;
    uint8_t *p = buf_tail(out);
    memset(p, 0, 4);
    p[0] = T_DATA;
    put_u32(p + 4, c->udp.remote_idx);
    put_u64(p + 8, ctr);
    noise_cipher_set_nonce(&c->send, ctr);
    r = secure__noise(noise_cipher_encrypt(&c->send, p, DATA_HDR, msg, len, p + DATA_HDR));
    if (r != 0)
        return secure__fail(c, r, "encrypt: %s", proto_strerror(r));
    c->udp.send_ctr = ctr + 1;
    buf_commit(out, DATA_HDR + len + NOISE_TAGLEN);
    return 0;
}

int secure__dgram_retransmit(void *conn, struct buf *out)
{
    struct secure_conn *c = conn;
    if (c->state == ST_DEAD)
        return c->dead_err ? c->dead_err : PROTO_E_STATE;
    if (c->role != PROTO_CLIENT || c->udp.hs_len == 0)
        return 0;
    /* The initiation until answered; the finish until the server is heard from. */
    if (c->state == ST_HANDSHAKE || (c->state == ST_TRANSPORT && !c->udp.confirmed))
        return buf_append(out, c->udp.hs_dgram, c->udp.hs_len);
    return 0;
}

/* Test hook (unit tests, fuzzers): the send counter, to exercise the limit. */
void proto_secure_udp_set_counter(void *conn, uint64_t ctr)
{
    ((struct secure_conn *)conn)->udp.send_ctr = ctr;
}
