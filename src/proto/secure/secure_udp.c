/* SPDX-License-Identifier: MIT */
/* secure (secho/1) over UDP, WireGuard-style, byte for byte as docs/PROTOCOL.md "secure over
 * UDP" fixes it: Noise XX in datagrams with sender/receiver indices; a stateless cookie round
 * trip before the server keeps any state (forged source addresses cost no memory); explicit
 * 64-bit counters used as the Noise nonce, with an RFC 6479 replay window; and handshake
 * states that survive forged datagrams, because each handshake message is tried on a copy.
 * Sans-IO: the only outside input besides the datagrams is the cookie state's clock. */
#include "secure_udp.h"

#include <string.h>

#include "crypto.h"
#include "secure.h"
#include "secure_common.h"
#include "secure_cookie.h"
#include "secure_wire.h"

#define DATA_MAX (WIRE_DATA_OVERHEAD + SECURE_UDP_MAX_PLAIN)

_Static_assert(WIRE_COOKIE_BYTES == SECURE_COOKIE_LEN, "the cookie field holds one cookie");

/* Returns the datagram's type if its length and reserved bytes are right, else -1. */
static int parse_type(const uint8_t *in, size_t len)
{
    if (len < WIRE_HDR_LEN || !wire_reserved_zero(in))
        return -1;
    if (wire_type(in) == WIRE_INIT)
        return len == WIRE_INIT_LEN && wire_suite(in) < SECURE_NSUITES ? WIRE_INIT : -1;
    if (wire_suite(in) != 0)
        return -1;
    switch (wire_type(in)) {
    case WIRE_RESP:
        return len == WIRE_RESP_LEN ? WIRE_RESP : -1;
    case WIRE_COOKIE:
        return len == WIRE_COOKIE_LEN ? WIRE_COOKIE : -1;
    case WIRE_FINISH:
        return len == WIRE_FINISH_LEN ? WIRE_FINISH : -1;
    case WIRE_DATA:
        return len >= WIRE_DATA_OVERHEAD && len <= DATA_MAX ? WIRE_DATA : -1;
    default:
        return -1;
    }
}

/* ---- a session-less address (server, stateless) ---- */

int secure__dgram_new(void *ctx, const struct sockaddr *peer, socklen_t peerlen, const uint8_t *in,
                      size_t len, struct buf *reply)
{
    const struct secure_ctx *x = ctx;
    enum secure_cookie_result res;
    uint8_t out[WIRE_COOKIE_LEN];
    (void)peerlen;
    int t = parse_type(in, len);
    if (t < 0)
        return PROTO_E_PARSE;
    if (t != WIRE_INIT)
        return PROTO_DROP; /* for a session this server no longer (or never) had */
    int r = secure_cookie_check(&x->cookie, peer, wire_init_cookie(in), &res);
    if (r != 0)
        return r;
    if (res == SECURE_COOKIE_VALID)
        return 1;
    /* No (valid) cookie: answer with one, keep nothing. The reply is smaller than the
     * initiation, so a forged source address cannot turn us into an amplifier. */
    wire_put_hdr(out, WIRE_COOKIE, 0);
    wire_put_u32(out + WIRE_COOKIE_RECEIVER, wire_init_sender(in));
    r = secure_cookie_make(&x->cookie, peer, out + WIRE_COOKIE_COOKIE);
    if (r == 0)
        r = buf_append(reply, out, sizeof(out));
    crypto_wipe(out, sizeof(out));
    if (r != 0)
        return r;
    return res == SECURE_COOKIE_NONE ? PROTO_DROP : PROTO_E_AUTH;
}

/* ---- shared ---- */

static int new_index(struct secure_conn *c)
{
    if (crypto_random(&c->udp->local_idx, sizeof(c->udp->local_idx)) != 0)
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
    unsigned n = (unsigned)c->hs->msg + 1;
    int r = secure__noise(noise_handshake_copy(&tmp, c->hs));
    if (r == 0)
        r = secure__noise(noise_handshake_read(&tmp, msg, len, payload, 0, &plen));
    if (r != 0) {
        noise_handshake_free(&tmp);
        crypto_wipe(&tmp, sizeof(tmp));
        if (r == PROTO_E_CRYPTO)
            return secure__fail(c, r, "handshake message %u: %s", n, proto_strerror(r));
        return secure__drop(c, r, "handshake message %u: %s", n, proto_strerror(r));
    }
    noise_handshake_free(c->hs);
    memcpy(c->hs, &tmp, sizeof(tmp));
    crypto_wipe(&tmp, sizeof(tmp));
    return 0;
}

static int start_transport(struct secure_conn *c)
{
    int r = secure__split(c);
    if (r != 0)
        return r;
    replay_init(&c->udp->replay);
    c->udp->send_ctr = 0;
    secure__set_admin(c);
    c->state = ST_TRANSPORT;
    return PROTO_HANDSHAKE;
}

static int data_read(struct secure_conn *c, const uint8_t *in, size_t len, struct proto_msg *msg)
{
    if (c->state != ST_TRANSPORT)
        return PROTO_DROP; /* data before the finish arrived: the client sends both again */
    if (wire_data_receiver(in) != c->udp->local_idx)
        return PROTO_DROP; /* another (older) session's */
    uint64_t ctr = wire_data_counter(in);
    size_t n = len - WIRE_DATA_OVERHEAD;
    /* RFC 6479: reject replays before spending a decryption on them. */
    if (!replay_check(&c->udp->replay, ctr))
        return secure__drop(c, PROTO_E_AUTH, "replayed or too old counter %llu",
                            (unsigned long long)ctr);
    if (n > c->ctx->max_msg)
        return secure__drop(c, PROTO_E_TOOBIG, "message of %zu bytes exceeds the limit", n);
    buf_reset(&c->pt);
    int r = buf_reserve(&c->pt, n ? n : 1);
    if (r != 0)
        return secure__drop(c, r, "message buffer: %s", strerror(-r));
    noise_cipher_set_nonce(&c->recv, ctr);
    /* The header (type, receiver, counter) is the associated data. */
    r = secure__noise(noise_cipher_decrypt(&c->recv, in, WIRE_DATA_HDR_LEN,
                                           wire_data_ciphertext(in), len - WIRE_DATA_HDR_LEN,
                                           buf_tail(&c->pt)));
    if (r != 0)
        return secure__drop(c, r, "data counter %llu: %s", (unsigned long long)ctr,
                            proto_strerror(r));
    replay_update(&c->udp->replay, ctr); /* only now: forgeries never move the window */
    buf_commit(&c->pt, n);
    c->udp->confirmed = true;
    msg->data = buf_head(&c->pt);
    msg->len = n;
    msg->first = msg->last = true;
    return PROTO_MSG;
}

/* ---- server ---- */

/* Resets the Noise states of a session whose client started over. */
static void reset_handshake(struct secure_conn *c)
{
    secure__hs_end(c);
    noise_cipher_free(&c->send);
    noise_cipher_free(&c->recv);
    crypto_wipe(c->rs, sizeof(c->rs));
    c->has_rs = false;
    c->admin = -1;
    c->state = ST_PREAMBLE;
}

/* What identifies one initiation: its sender index and its ephemeral key (the cookie may
 * change between copies of the same initiation; the server checks it separately). */
static void initiation_id(const uint8_t *in, uint8_t id[static WIRE_IDX_LEN + NOISE_DHLEN])
{
    memcpy(id, in + WIRE_INIT_SENDER, WIRE_IDX_LEN);
    memcpy(id + WIRE_IDX_LEN, wire_init_noise(in), NOISE_DHLEN);
}

static int server_initiation(struct secure_conn *c, const uint8_t *in, struct buf *reply)
{
    uint8_t prologue[SECURE_PROLOGUE_MAX], payload[1], id[sizeof(c->udp->init_id)];
    uint8_t resp[WIRE_RESP_LEN];
    struct noise_handshake hs;
    size_t plen = 0, n = 0;
    int r;
    if (c->state != ST_PREAMBLE) {
        /* udp_peers.c admitted this session (by address) with a checked cookie; later
         * initiations on it must carry that same cookie. */
        if (!crypto_equal(wire_init_cookie(in), c->udp->cookie, SECURE_COOKIE_LEN))
            return secure__drop(c, PROTO_E_AUTH, "initiation with another cookie");
        initiation_id(in, id);
        if (memcmp(id, c->udp->init_id, sizeof(id)) == 0) {
            if (c->state != ST_HANDSHAKE)
                return PROTO_DROP; /* a late copy */
            /* Our response was lost: the same one again, never a new ephemeral key. */
            r = buf_append(reply, c->udp->hs_dgram, c->udp->hs_len);
            return r ? r : PROTO_NEED_MORE;
        }
    }
    /* The new initiation is answered on a state of its own, which replaces the session's
     * only once it succeeded: one that fails (an invalid ephemeral key) is dropped and
     * leaves the session as it was, so it can neither end a handshake in progress nor stand
     * in the way of the client's next, correct initiation. */
    memset(&hs, 0, sizeof(hs));
    unsigned suite = wire_suite(in); /* parse_type checked it */
    size_t k = secure__prologue(prologue, SECURE_FORM_UDP, suite);
    r = secure__noise(
        noise_handshake_init(&hs, secure__suites[suite], false, prologue, k, &c->ctx->s, NULL));
    if (r == 0)
        r = secure__noise(
            noise_handshake_read(&hs, wire_init_noise(in), WIRE_NOISE1_LEN, payload, 0, &plen));
    if (r == 0)
        r = secure__noise(
            noise_handshake_write(&hs, NULL, 0, resp + WIRE_RESP_NOISE, WIRE_NOISE2_LEN, &n));
    if (r == 0 && n != WIRE_NOISE2_LEN)
        r = PROTO_E_STATE;
    if (r != 0) {
        noise_handshake_free(&hs);
        crypto_wipe(&hs, sizeof(hs));
        crypto_wipe(resp, sizeof(resp));
        if (r == PROTO_E_CRYPTO || r == PROTO_E_STATE)
            return secure__fail(c, r, "handshake: %s", proto_strerror(r));
        return secure__drop(c, r, "handshake message 1: %s", proto_strerror(r));
    }
    if (c->state != ST_PREAMBLE)
        reset_handshake(c); /* the client restarted */
    if ((r = secure__hs_begin(c)) != 0) {
        noise_handshake_free(&hs);
        crypto_wipe(&hs, sizeof(hs));
        crypto_wipe(resp, sizeof(resp));
        return r;
    }
    memcpy(c->hs, &hs, sizeof(hs));
    crypto_wipe(&hs, sizeof(hs));
    if ((r = new_index(c)) != 0) {
        crypto_wipe(resp, sizeof(resp));
        return r;
    }
    c->udp->remote_idx = wire_init_sender(in);
    memcpy(c->udp->cookie, wire_init_cookie(in), SECURE_COOKIE_LEN);
    initiation_id(in, c->udp->init_id);
    wire_put_hdr(resp, WIRE_RESP, 0);
    wire_put_u32(resp + WIRE_RESP_SENDER, c->udp->local_idx);
    wire_put_u32(resp + WIRE_RESP_RECEIVER, c->udp->remote_idx);
    memcpy(c->udp->hs_dgram, resp, sizeof(resp));
    crypto_wipe(resp, sizeof(resp));
    c->udp->hs_len = WIRE_RESP_LEN;
    c->state = ST_HANDSHAKE;
    r = buf_append(reply, c->udp->hs_dgram, c->udp->hs_len);
    return r ? r : PROTO_NEED_MORE;
}

static int server_finish(struct secure_conn *c, const uint8_t *in)
{
    if (c->state == ST_TRANSPORT)
        return PROTO_DROP; /* a repeated finish */
    if (c->state != ST_HANDSHAKE)
        return secure__drop(c, PROTO_E_PARSE, "finish without an initiation");
    if (wire_finish_receiver(in) != c->udp->local_idx)
        return PROTO_DROP;
    int r = try_handshake_read(c, wire_finish_noise(in), WIRE_NOISE3_LEN);
    return r ? r : start_transport(c);
}

/* ---- client ---- */

int secure__udp_client_init(struct secure_conn *c, struct buf *out)
{
    const struct secure_ctx *x = c->ctx;
    uint8_t prologue[SECURE_PROLOGUE_MAX];
    uint8_t *init = c->udp->hs_dgram;
    size_t n = 0;
    size_t k = secure__prologue(prologue, SECURE_FORM_UDP, x->suite);
    int r = secure__hs_begin(c);
    if (r != 0)
        return r;
    r = secure__noise(noise_handshake_init(c->hs, x->noise_name, true, prologue, k, &x->s, NULL));
    if (r == 0)
        r = secure__noise(
            noise_handshake_write(c->hs, NULL, 0, init + WIRE_INIT_NOISE, WIRE_NOISE1_LEN, &n));
    if (r != 0)
        return secure__fail(c, r, "handshake: %s", proto_strerror(r));
    if ((r = new_index(c)) != 0)
        return r;
    wire_put_hdr(init, WIRE_INIT, (uint8_t)x->suite);
    wire_put_u32(init + WIRE_INIT_SENDER, c->udp->local_idx);
    memset(init + WIRE_INIT_COOKIE, 0, WIRE_COOKIE_BYTES); /* no cookie yet */
    c->udp->hs_len = WIRE_INIT_LEN;
    c->state = ST_HANDSHAKE;
    if ((r = buf_append(out, c->udp->hs_dgram, c->udp->hs_len)) != 0)
        return secure__fail(c, r, "output buffer full");
    return 0;
}

static int client_response(struct secure_conn *c, const uint8_t *in, struct buf *reply)
{
    uint8_t *fin = c->udp->hs_dgram;
    size_t n = 0;
    if (c->state != ST_HANDSHAKE || wire_resp_receiver(in) != c->udp->local_idx)
        return PROTO_DROP; /* a repeated response, or not for us */
    int r = try_handshake_read(c, wire_resp_noise(in), WIRE_NOISE2_LEN);
    if (r != 0)
        return r;
    /* Message 2 revealed the server's static key: decide before sending anything. */
    const uint8_t *rs = noise_handshake_remote_static(c->hs);
    if (!rs)
        return secure__fail(c, PROTO_E_STATE, "no server key after message 2");
    if ((r = secure__trust_server(c, rs)) != 0)
        return r;
    c->udp->remote_idx = wire_resp_sender(in);
    r = secure__noise(
        noise_handshake_write(c->hs, NULL, 0, fin + WIRE_FINISH_NOISE, WIRE_NOISE3_LEN, &n));
    if (r != 0)
        return secure__fail(c, r, "handshake message 3: %s", proto_strerror(r));
    wire_put_hdr(fin, WIRE_FINISH, 0);
    wire_put_u32(fin + WIRE_FINISH_RECEIVER, c->udp->remote_idx);
    c->udp->hs_len = WIRE_FINISH_LEN;
    c->udp->confirmed = false;
    if ((r = buf_append(reply, c->udp->hs_dgram, c->udp->hs_len)) != 0)
        return secure__fail(c, r, "output buffer full");
    return start_transport(c);
}

static int client_cookie(struct secure_conn *c, const uint8_t *in, struct buf *reply)
{
    if (c->state != ST_HANDSHAKE || wire_cookie_receiver(in) != c->udp->local_idx)
        return PROTO_DROP;
    /* The same initiation (same ephemeral key) again, now with the cookie. */
    memcpy(c->udp->hs_dgram + WIRE_INIT_COOKIE, wire_cookie_cookie(in), WIRE_COOKIE_BYTES);
    int r = buf_append(reply, c->udp->hs_dgram, c->udp->hs_len);
    return r ? r : PROTO_NEED_MORE;
}

/* ---- the vt entries ---- */

int secure__dgram_read(void *conn, const uint8_t *in, size_t len, struct buf *reply,
                       struct proto_msg *msg)
{
    struct secure_conn *c = conn;
    /* The last message's plaintext is the caller's no longer (see secure__tcp_read). */
    buf_clear(&c->pt);
    if (c->state == ST_DEAD)
        return c->dead_err ? c->dead_err : PROTO_E_STATE;
    if (!c->udp)
        return secure__fail(c, PROTO_E_STATE, "not a datagram session");
    int t = parse_type(in, len);
    if (t < 0)
        return secure__drop(c, PROTO_E_PARSE, "malformed datagram of %zu bytes", len);
    if (t == WIRE_DATA)
        return data_read(c, in, len, msg);
    if (c->role == PROTO_SERVER) {
        if (t == WIRE_INIT)
            return server_initiation(c, in, reply);
        if (t == WIRE_FINISH)
            return server_finish(c, in);
    } else {
        if (t == WIRE_RESP)
            return client_response(c, in, reply);
        if (t == WIRE_COOKIE)
            return client_cookie(c, in, reply);
    }
    return secure__drop(c, PROTO_E_PARSE, "datagram type %d in the wrong direction", t);
}

int secure__dgram_write(void *conn, const uint8_t *msg, size_t len, struct buf *out)
{
    struct secure_conn *c = conn;
    if (c->state != ST_TRANSPORT || !c->udp)
        return c->state == ST_DEAD && c->dead_err ? c->dead_err : PROTO_E_STATE;
    size_t max = c->ctx->max_msg < SECURE_UDP_MAX_PLAIN ? c->ctx->max_msg : SECURE_UDP_MAX_PLAIN;
    if (len > max)
        return PROTO_E_TOOBIG;
    uint64_t ctr = c->udp->send_ctr;
    if (ctr > REPLAY_COUNTER_MAX) /* nonces never repeat: the session ends */
        return secure__fail(c, PROTO_E_LIMIT, "send counter exhausted");
    int r = buf_reserve(out, WIRE_DATA_OVERHEAD + len);
    if (r != 0)
        return r;
    uint8_t *p = buf_tail(out);
    wire_put_hdr(p, WIRE_DATA, 0);
    wire_put_u32(p + WIRE_DATA_RECEIVER, c->udp->remote_idx);
    wire_put_u64(p + WIRE_DATA_COUNTER, ctr);
    noise_cipher_set_nonce(&c->send, ctr);
    r = secure__noise(
        noise_cipher_encrypt(&c->send, p, WIRE_DATA_HDR_LEN, msg, len, p + WIRE_DATA_HDR_LEN));
    if (r != 0)
        return secure__fail(c, r, "encrypt: %s", proto_strerror(r));
    c->udp->send_ctr = ctr + 1;
    buf_commit(out, WIRE_DATA_OVERHEAD + len);
    return 0;
}

int secure__dgram_retransmit(void *conn, struct buf *out)
{
    struct secure_conn *c = conn;
    if (c->state == ST_DEAD)
        return c->dead_err ? c->dead_err : PROTO_E_STATE;
    if (c->role != PROTO_CLIENT || !c->udp || c->udp->hs_len == 0)
        return 0;
    /* The initiation until answered; the finish until the server is heard from. */
    if (c->state == ST_HANDSHAKE || (c->state == ST_TRANSPORT && !c->udp->confirmed))
        return buf_append(out, c->udp->hs_dgram, c->udp->hs_len);
    return 0;
}

/* Test hook (unit tests, fuzzers): the send counter, to exercise the limit. */
void proto_secure_udp_set_counter(void *conn, uint64_t ctr)
{
    ((struct secure_conn *)conn)->udp->send_ctr = ctr;
}
