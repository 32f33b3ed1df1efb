/* SPDX-License-Identifier: MIT */
/* secure (secho/1) over TCP: Noise_XX_25519_{AESGCM,ChaChaPoly}_{SHA256,BLAKE2b}. Byte layout
 * (SPEC "Wire protocols"): the client sends a preamble, u16be length + ASCII protocol name;
 * prologue = "secho/1" || preamble; then every Noise message, handshake and transport, is
 * u16be length + message. Handshake payloads are empty; one transport message = one echo
 * message. Peers are bounded at every step: a frame's length is checked before any of its
 * body is buffered, so a conn never holds more than one record. */
#include "secure_tcp.h"

#include <string.h>

#include "secure_common.h"

#define FRAME_HDR SECURE_TCP_FRAME_HDR
#define FRAME_MAX SECURE_TCP_FRAME_MAX

/* Sizes of the three XX messages with empty payloads: e; e, ee, s, es; s, se. */
static const size_t xx_msg_len[3] = {
    NOISE_DHLEN,
    NOISE_DHLEN + NOISE_DHLEN + NOISE_TAGLEN + NOISE_TAGLEN,
    NOISE_DHLEN + NOISE_TAGLEN + NOISE_TAGLEN,
};

static void put_frame_len(uint8_t p[static FRAME_HDR], size_t n)
{
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
}

/* Appends one frame holding the next handshake message (empty payload) to out. Reserves
 * that message's size, not a whole frame's: the output buffer stays as small as it is. */
static int emit_handshake(struct secure_conn *c, struct buf *out)
{
    size_t n = 0, len = xx_msg_len[c->hs->msg];
    int r = buf_reserve(out, FRAME_HDR + len);
    if (r != 0)
        return secure__fail(c, r, "output buffer full");
    uint8_t *p = buf_tail(out);
    r = secure__noise(noise_handshake_write(c->hs, NULL, 0, p + FRAME_HDR, len, &n));
    if (r != 0)
        return secure__fail(c, r, "handshake: %s", proto_strerror(r));
    put_frame_len(p, n);
    buf_commit(out, FRAME_HDR + n);
    return 0;
}

/* Checks a frame length as soon as its header is known, so no oversized or misplaced frame
 * is ever buffered. Returns 0 or a fatal error. */
static int check_len(struct secure_conn *c, size_t n)
{
    switch (c->state) {
    case ST_PREAMBLE:
        if (n == 0 || n > SECURE_NAME_MAX)
            return secure__fail(c, PROTO_E_PARSE, "not a secho/1 client (preamble length %zu)", n);
        return 0;
    case ST_HANDSHAKE:
        if (n != xx_msg_len[c->hs->msg])
            return secure__fail(c, PROTO_E_PARSE,
                                "handshake message %u has length %zu, expected %zu",
                                (unsigned)c->hs->msg + 1, n, xx_msg_len[c->hs->msg]);
        return 0;
    case ST_TRANSPORT:
        if (n < NOISE_TAGLEN)
            return secure__fail(c, PROTO_E_PARSE, "record of %zu bytes is shorter than a tag", n);
        if (n - NOISE_TAGLEN > c->ctx->max_msg)
            return secure__fail(c, PROTO_E_TOOBIG, "record of %zu bytes exceeds the limit", n);
        return 0;
    default:
        return secure__fail(c, PROTO_E_STATE, "connection is closed");
    }
}

/*
 * Finds the next whole frame body. Zero-copy when the frame lies whole in `in` and nothing
 * is buffered; otherwise bytes are gathered in c->rx. Returns 1 with *frame, *flen set, 0
 * when more input is needed, or <0. *used is how much of in was consumed either way.
 */
static int next_frame(struct secure_conn *c, const uint8_t *in, size_t inlen, size_t *used,
                      const uint8_t **frame, size_t *flen)
{
    int r;
    *used = 0;
    if (buf_empty(&c->rx) && inlen >= FRAME_HDR) {
        size_t n = buf_get_u16be(in);
        if ((r = check_len(c, n)) != 0)
            return r;
        if (inlen - FRAME_HDR >= n) {
            *frame = in + FRAME_HDR;
            *flen = n;
            *used = FRAME_HDR + n;
            return 1;
        }
    }
    for (;;) {
        size_t have = buf_len(&c->rx);
        size_t want = FRAME_HDR;
        if (have >= FRAME_HDR)
            want += buf_get_u16be(buf_head(&c->rx));
        if (have == want) {
            *frame = buf_head(&c->rx) + FRAME_HDR;
            *flen = want - FRAME_HDR;
            return 1;
        }
        size_t take = want - have;
        if (take > inlen - *used)
            take = inlen - *used;
        if (take == 0)
            return 0;
        if ((r = buf_append(&c->rx, in + *used, take)) != 0)
            return secure__fail(c, r, "input buffer: %s", strerror(-r));
        *used += take;
        if (have < FRAME_HDR && have + take >= FRAME_HDR) {
            if ((r = check_len(c, buf_get_u16be(buf_head(&c->rx)))) != 0)
                return r;
        }
    }
}

/* ---- handshake ---- */

int secure__tcp_client_init(struct secure_conn *c, struct buf *out)
{
    const struct secure_ctx *x = c->ctx;
    uint8_t prologue[SECURE_PROLOGUE_MAX];
    size_t plen = secure__prologue(prologue, SECURE_FORM_TCP, x->suite);
    /* SPEC: the preamble is the prologue after its "secho/1" label. */
    int r = buf_append(out, prologue + SECURE_TCP_LABEL_LEN, plen - SECURE_TCP_LABEL_LEN);
    if (r != 0)
        return secure__fail(c, r, "output buffer full");
    if ((r = secure__hs_begin(c)) != 0)
        return r;
    r = secure__noise(
        noise_handshake_init(c->hs, x->noise_name, true, prologue, plen, &x->s, NULL));
    if (r != 0)
        return secure__fail(c, r, "handshake init: %s", proto_strerror(r));
    c->state = ST_HANDSHAKE;
    return emit_handshake(c, out);
}

/* The server reads the preamble frame (already length-checked) and starts its handshake. */
static int on_preamble(struct secure_conn *c, const uint8_t *name, size_t len)
{
    uint8_t prologue[SECURE_PROLOGUE_MAX];
    int suite = secure__suite_find((const char *)name, len);
    if (suite < 0) {
        char cname[SECURE_NAME_MAX + 1];
        size_t i;
        for (i = 0; i < len; i++) /* printable for the log */
            cname[i] = (char)(name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?');
        cname[i] = '\0';
        return secure__fail(c, PROTO_E_PARSE, "unsupported protocol name \"%s\"", cname);
    }
    size_t plen = secure__prologue(prologue, SECURE_FORM_TCP, (unsigned)suite);
    int r = secure__hs_begin(c);
    if (r != 0)
        return r;
    r = secure__noise(noise_handshake_init(c->hs, secure__suites[suite], false, prologue, plen,
                                           &c->ctx->s, NULL));
    if (r != 0)
        return secure__fail(c, r, "handshake init: %s", proto_strerror(r));
    c->state = ST_HANDSHAKE;
    return 0;
}

/* One handshake message in; maybe one out. Returns 0, PROTO_HANDSHAKE or <0. */
static int on_handshake(struct secure_conn *c, const uint8_t *msg, size_t len, struct buf *out)
{
    uint8_t payload[1];
    size_t plen = 0;
    int r = secure__noise(noise_handshake_read(c->hs, msg, len, payload, 0, &plen));
    if (r != 0)
        return secure__fail(c, r, "handshake message %u: %s", (unsigned)c->hs->msg + 1,
                            proto_strerror(r));
    if (c->role == PROTO_CLIENT) {
        /* Message 2 revealed the server's static key: decide before sending anything. */
        const uint8_t *rs = noise_handshake_remote_static(c->hs);
        if (!rs)
            return secure__fail(c, PROTO_E_STATE, "no server key after message 2");
        if ((r = secure__trust_server(c, rs)) != 0)
            return r;
    }
    if (noise_handshake_action(c->hs) == NOISE_ACTION_WRITE && (r = emit_handshake(c, out)))
        return r;
    if (noise_handshake_action(c->hs) != NOISE_ACTION_SPLIT)
        return 0;
    /* The handshake state is wiped and freed here: the transport keeps its keys alone. */
    if ((r = secure__split(c)) != 0)
        return r;
    secure__set_admin(c);
    c->state = ST_TRANSPORT;
    return PROTO_HANDSHAKE;
}

/* ---- stream interface ---- */

static int on_record(struct secure_conn *c, const uint8_t *rec, size_t len, struct proto_msg *msg)
{
    size_t n = len - NOISE_TAGLEN; /* check_len guaranteed len >= tag */
    buf_reset(&c->pt);
    int r = buf_reserve(&c->pt, n ? n : 1);
    if (r != 0)
        return secure__fail(c, r, "message buffer: %s", strerror(-r));
    r = secure__noise(noise_cipher_decrypt(&c->recv, NULL, 0, rec, len, buf_tail(&c->pt)));
    if (r != 0)
        return secure__fail(c, r, "record: %s", proto_strerror(r));
    buf_commit(&c->pt, n);
    msg->data = buf_head(&c->pt);
    msg->len = n;
    msg->first = msg->last = true;
    return PROTO_MSG;
}

int secure__tcp_read(void *conn, const uint8_t *in, size_t *inlen, struct buf *out,
                     struct proto_msg *msg)
{
    struct secure_conn *c = conn;
    size_t total = *inlen, pos = 0;
    int r = PROTO_NEED_MORE;

    /* The last message's plaintext is the caller's no longer: wiped, and its storage goes
     * back, so an idle conn keeps neither. */
    buf_clear(&c->pt);
    while (r == PROTO_NEED_MORE) {
        const uint8_t *frame = NULL;
        size_t flen = 0, used = 0;
        if (c->state == ST_DEAD) {
            r = c->dead_err ? c->dead_err : PROTO_E_STATE;
            break;
        }
        r = next_frame(c, in + pos, total - pos, &used, &frame, &flen);
        pos += used;
        if (r <= 0)
            break;
        switch (c->state) {
        case ST_PREAMBLE:
            r = on_preamble(c, frame, flen);
            break;
        case ST_HANDSHAKE:
            r = on_handshake(c, frame, flen, out);
            break;
        default:
            r = on_record(c, frame, flen, msg);
            break;
        }
        /* The frame is processed (plaintext, if any, now lives in c->pt). */
        buf_clear(&c->rx);
    }
    *inlen = pos;
    return r;
}

int secure__tcp_write(void *conn, const uint8_t *msg, size_t len, struct buf *out)
{
    struct secure_conn *c = conn;
    if (c->state != ST_TRANSPORT)
        return c->state == ST_DEAD && c->dead_err ? c->dead_err : PROTO_E_STATE;
    if (len > c->ctx->max_msg)
        return PROTO_E_TOOBIG;
    size_t n = len + NOISE_TAGLEN;
    int r = buf_reserve(out, FRAME_HDR + n);
    if (r != 0)
        return r;
    uint8_t *p = buf_tail(out);
    r = secure__noise(noise_cipher_encrypt(&c->send, NULL, 0, msg, len, p + FRAME_HDR));
    if (r != 0)
        return secure__fail(c, r, "encrypt: %s", proto_strerror(r));
    put_frame_len(p, n);
    buf_commit(out, FRAME_HDR + n);
    return 0;
}
