/* SPDX-License-Identifier: MIT */
/* secure (secho/1) over TCP: Noise_XX_25519_{AESGCM,ChaChaPoly}_{SHA256,BLAKE2b}. Byte layout
 * (SPEC "Wire protocols"): the client sends a preamble, u16be length + ASCII protocol name;
 * prologue = "secho/1" || preamble; then every Noise message, handshake and transport, is
 * u16be length + message. Handshake payloads are empty; one transport message = one echo
 * message. Peers are bounded at every step: a frame's length is checked before any of its
 * body is buffered, so a conn never holds more than one record. */
#include "secure.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "keys.h"
#include "noise.h"
#include "secure_int.h"

#define FRAME_HDR 2
#define FRAME_MAX (FRAME_HDR + NOISE_MAX_MSG)
#define ERRLEN    SECURE_ERRLEN

/* Sizes of the three XX messages with empty payloads: e; e, ee, s, es; s, se. */
static const size_t xx_msg_len[3] = {
    NOISE_DHLEN,
    NOISE_DHLEN + NOISE_DHLEN + NOISE_TAGLEN + NOISE_TAGLEN,
    NOISE_DHLEN + NOISE_TAGLEN + NOISE_TAGLEN,
};

const char *const secure__suites[SECURE_NSUITES] = {
    "Noise_XX_25519_AESGCM_SHA256",
    "Noise_XX_25519_AESGCM_BLAKE2b",
    "Noise_XX_25519_ChaChaPoly_SHA256",
    "Noise_XX_25519_ChaChaPoly_BLAKE2b",
};

#define conn_fail secure__fail

int secure__fail(struct secure_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    c->state = ST_DEAD;
    c->dead_err = code;
    return code;
}

int secure__drop(struct secure_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return code;
}

static bool supported_suite(const char *name, size_t len)
{
    for (size_t i = 0; i < SECURE_NSUITES; i++)
        if (strlen(secure__suites[i]) == len && memcmp(secure__suites[i], name, len) == 0)
            return true;
    return false;
}

/* ---- context ---- */

static void secure_ctx_free(void *ctx)
{
    struct secure_ctx *x = ctx;
    if (!x)
        return;
    keys_set_free(&x->admins);
    crypto_wipe(x, sizeof(*x));
    free(x);
}

static int secure_ctx_new(const struct proto_opts *o, enum proto_role role, void **ctx, char *err,
                          size_t errlen)
{
    struct secure_ctx *x = calloc(1, sizeof(*x));
    char b64[KEYS_B64LEN + 1];
    bool created = false;
    int r;
    if (!x)
        return -ENOMEM;
    x->role = role;
    x->datagram = o->dgram;
    x->max_msg = o->max_msg && o->max_msg < SECURE_MAX_PLAIN ? o->max_msg : SECURE_MAX_PLAIN;
    if (o->key_file) {
        r = keys_load_or_create(o->key_file, x->s.priv, x->s.pub, &created, err, errlen);
        if (r != 0)
            goto fail;
    } else if (role == PROTO_CLIENT) {
        /* No identity file: a one-time identity (the server then sees an anonymous key). */
        if (crypto_x25519_keygen(x->s.priv, x->s.pub) != 0) {
            r = PROTO_E_CRYPTO;
            snprintf(err, errlen, "cannot generate a key pair");
            goto fail;
        }
    } else {
        r = -EINVAL;
        snprintf(err, errlen, "secure: the server needs a key file (--key)");
        goto fail;
    }
    keys_b64_encode(x->s.pub, b64);
    if (role == PROTO_SERVER) {
        if (crypto_random(x->cookie_secret, sizeof(x->cookie_secret)) != 0) {
            r = PROTO_E_CRYPTO;
            snprintf(err, errlen, "cannot generate the cookie secret");
            goto fail;
        }
        if (o->admins_file) {
            r = keys_set_load(o->admins_file, &x->admins, err, errlen);
            if (r != 0)
                goto fail;
        }
        snprintf(x->banner, sizeof(x->banner), "server public key %s%s", b64,
                 created ? " (new key created)" : "");
    } else {
        x->noise_name = o->noise_name ? o->noise_name : SECURE_DEFAULT_NAME;
        if (!supported_suite(x->noise_name, strlen(x->noise_name))) {
            r = -EINVAL;
            snprintf(err, errlen,
                     "unsupported protocol name %s (use Noise_XX_25519_{AESGCM,ChaChaPoly}_"
                     "{SHA256,BLAKE2b})",
                     x->noise_name);
            goto fail;
        }
        if (o->server_key) {
            if (!keys_b64_decode(o->server_key, strlen(o->server_key), x->pin)) {
                r = -EINVAL;
                snprintf(err, errlen, "--server-key %s: not a public key (44 characters of base64)",
                         o->server_key);
                goto fail;
            }
            x->has_pin = true;
        }
        x->known_hosts = o->known_hosts;
        x->host_id = o->host_id;
        x->accept_new = o->accept_new;
        x->confirm = o->confirm;
        x->confirm_arg = o->confirm_arg;
        snprintf(x->banner, sizeof(x->banner), "client public key %s%s", b64,
                 created ? " (new key created)" : "");
    }
    *ctx = x;
    return 0;
fail:
    secure_ctx_free(x);
    return r;
}

static const char *secure_ctx_banner(void *ctx)
{
    return ((struct secure_ctx *)ctx)->banner;
}

/* ---- framing ---- */

/* Appends one frame holding the next handshake message (empty payload) to out. */
static int emit_handshake(struct secure_conn *c, struct buf *out)
{
    size_t n = 0;
    int r = buf_reserve(out, FRAME_MAX);
    if (r != 0)
        return conn_fail(c, r, "output buffer full");
    uint8_t *p = buf_tail(out);
    r = secure__noise(noise_handshake_write(&c->hs, NULL, 0, p + FRAME_HDR, NOISE_MAX_MSG, &n));
    if (r != 0)
        return conn_fail(c, r, "handshake: %s", proto_strerror(r));
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
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
            return conn_fail(c, PROTO_E_PARSE, "not a secho/1 client (preamble length %zu)", n);
        return 0;
    case ST_HANDSHAKE:
        if (n != xx_msg_len[c->hs.msg])
            return conn_fail(c, PROTO_E_PARSE, "handshake message %u has length %zu, expected %zu",
                             (unsigned)c->hs.msg + 1, n, xx_msg_len[c->hs.msg]);
        return 0;
    case ST_TRANSPORT:
        if (n < NOISE_TAGLEN)
            return conn_fail(c, PROTO_E_PARSE, "record of %zu bytes is shorter than a tag", n);
        if (n - NOISE_TAGLEN > c->ctx->max_msg)
            return conn_fail(c, PROTO_E_TOOBIG, "record of %zu bytes exceeds the limit", n);
        return 0;
    default:
        return conn_fail(c, PROTO_E_STATE, "connection is closed");
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
            return conn_fail(c, r, "input buffer: %s", strerror(-r));
        *used += take;
        if (have < FRAME_HDR && have + take >= FRAME_HDR) {
            if ((r = check_len(c, buf_get_u16be(buf_head(&c->rx)))) != 0)
                return r;
        }
    }
}

/* ---- trust (client) ---- */

int secure__trust_server(struct secure_conn *c, const uint8_t rs[static NOISE_DHLEN])
{
    const struct secure_ctx *x = c->ctx;
    const char *host = x->host_id ? x->host_id : "the server";
    char b64[KEYS_B64LEN + 1], oldb64[KEYS_B64LEN + 1], kerr[256] = "";
    uint8_t old[NOISE_DHLEN];
    keys_b64_encode(rs, b64);

    /* SPEC: a pin always wins, even over --accept-new. */
    if (x->has_pin) {
        if (crypto_equal(rs, x->pin, NOISE_DHLEN))
            return 0;
        keys_b64_encode(x->pin, oldb64);
        return conn_fail(c, PROTO_E_TRUST,
                         "server key mismatch for %s: it presented %s but --server-key is %s", host,
                         b64, oldb64);
    }
    int known = KEYS_HOST_UNKNOWN;
    if (x->known_hosts && x->host_id) {
        known = keys_known_hosts_check(x->known_hosts, x->host_id, rs, old, kerr, sizeof(kerr));
        if (known < 0)
            return conn_fail(c, PROTO_E_TRUST, "cannot check the server key: %s", kerr);
    }
    if (known == KEYS_HOST_MATCH)
        return 0;
    if (known == KEYS_HOST_CHANGED) {
        /* Like ssh: a changed key may be an attack; never accepted automatically. */
        keys_b64_encode(old, oldb64);
        return conn_fail(c, PROTO_E_TRUST,
                         "WARNING: THE SERVER KEY FOR %s HAS CHANGED!\n"
                         "Someone could be intercepting the connection, or the server key was "
                         "replaced.\n"
                         "%s lists %s,\nthe server presented %s.\n"
                         "If the change is expected, remove the line for %s from %s.",
                         host, x->known_hosts, oldb64, b64, host, x->known_hosts);
    }
    bool yes = x->accept_new;
    if (!yes && x->confirm) {
        char q[ERRLEN];
        snprintf(q, sizeof(q),
                 "The authenticity of %s can't be established.\nIts public key is %s.\n"
                 "Trust it%s?",
                 host, b64, x->known_hosts && x->host_id ? " and remember it" : "");
        yes = x->confirm(x->confirm_arg, q);
        if (!yes)
            return conn_fail(c, PROTO_E_TRUST, "server key %s for %s not accepted", b64, host);
    }
    if (!yes)
        return conn_fail(c, PROTO_E_TRUST,
                         "unknown server key %s for %s; check it, then connect with "
                         "--server-key %s or --accept-new",
                         b64, host, b64);
    if (x->known_hosts && x->host_id &&
        keys_known_hosts_add(x->known_hosts, x->host_id, rs, kerr, sizeof(kerr)) != 0)
        snprintf(c->err, sizeof(c->err), "warning: key accepted but not recorded: %s", kerr);
    return 0;
}

/* ---- handshake ---- */

static int secure_conn_init(void *conn, void *ctx, enum proto_role role, struct buf *out)
{
    struct secure_conn *c = conn;
    const struct secure_ctx *x = ctx;
    uint8_t prologue[sizeof(SECURE_PROLOGUE) - 1 + FRAME_HDR + SECURE_NAME_MAX];
    memset(c, 0, sizeof(*c));
    c->ctx = x;
    c->role = role;
    c->admin = -1;
    buf_init(&c->rx, FRAME_MAX);
    buf_init(&c->pt, NOISE_MAX_MSG);
    if (!x || x->role != role)
        return conn_fail(c, PROTO_E_STATE, "context made for the other role");
    if (role == PROTO_SERVER) {
        c->state = ST_PREAMBLE;
        return 0;
    }
    if (x->datagram)
        return secure__udp_client_init(c, out);
    size_t nlen = strlen(x->noise_name);
    size_t plen = sizeof(SECURE_PROLOGUE) - 1;
    memcpy(prologue, SECURE_PROLOGUE, plen);
    prologue[plen] = (uint8_t)(nlen >> 8);
    prologue[plen + 1] = (uint8_t)nlen;
    memcpy(prologue + plen + FRAME_HDR, x->noise_name, nlen);
    int r = buf_append(out, prologue + plen, FRAME_HDR + nlen);
    if (r != 0)
        return conn_fail(c, r, "output buffer full");
    r = secure__noise(noise_handshake_init(&c->hs, x->noise_name, true, prologue,
                                           plen + FRAME_HDR + nlen, &x->s, NULL));
    if (r != 0)
        return conn_fail(c, r, "handshake init: %s", proto_strerror(r));
    c->state = ST_HANDSHAKE;
    return emit_handshake(c, out);
}

/* The server reads the preamble frame (already length-checked) and starts its handshake. */
static int on_preamble(struct secure_conn *c, const uint8_t *name, size_t len)
{
    uint8_t prologue[sizeof(SECURE_PROLOGUE) - 1 + FRAME_HDR + SECURE_NAME_MAX];
    char cname[SECURE_NAME_MAX + 1];
    size_t plen = sizeof(SECURE_PROLOGUE) - 1;
    if (!supported_suite((const char *)name, len)) {
        size_t i;
        for (i = 0; i < len; i++) /* printable for the log */
            cname[i] = name[i] >= 0x20 && name[i] < 0x7f ? (char)name[i] : '?';
        cname[i] = '\0';
        return conn_fail(c, PROTO_E_PARSE, "unsupported protocol name \"%s\"", cname);
    }
    memcpy(cname, name, len);
    cname[len] = '\0';
    memcpy(prologue, SECURE_PROLOGUE, plen);
    prologue[plen] = (uint8_t)(len >> 8);
    prologue[plen + 1] = (uint8_t)len;
    memcpy(prologue + plen + FRAME_HDR, name, len);
    int r = secure__noise(noise_handshake_init(&c->hs, cname, false, prologue,
                                               plen + FRAME_HDR + len, &c->ctx->s, NULL));
    if (r != 0)
        return conn_fail(c, r, "handshake init: %s", proto_strerror(r));
    c->state = ST_HANDSHAKE;
    return 0;
}

/* One handshake message in; maybe one out. Returns 0, PROTO_HANDSHAKE or <0. */
static int on_handshake(struct secure_conn *c, const uint8_t *msg, size_t len, struct buf *out)
{
    uint8_t payload[1];
    size_t plen = 0;
    int r = secure__noise(noise_handshake_read(&c->hs, msg, len, payload, 0, &plen));
    if (r != 0)
        return conn_fail(c, r, "handshake message %u: %s", (unsigned)c->hs.msg + 1,
                         proto_strerror(r));
    if (c->role == PROTO_CLIENT) {
        /* Message 2 revealed the server's static key: decide before sending anything. */
        const uint8_t *rs = noise_handshake_remote_static(&c->hs);
        if (!rs)
            return conn_fail(c, PROTO_E_STATE, "no server key after message 2");
        if ((r = secure__trust_server(c, rs)) != 0)
            return r;
    }
    if (noise_handshake_action(&c->hs) == NOISE_ACTION_WRITE && (r = emit_handshake(c, out)))
        return r;
    if (noise_handshake_action(&c->hs) != NOISE_ACTION_SPLIT)
        return 0;
    if ((r = secure__noise(noise_handshake_split(&c->hs, &c->send, &c->recv))) != 0)
        return conn_fail(c, r, "split: %s", proto_strerror(r));
    secure__set_admin(c);
    c->state = ST_TRANSPORT;
    return PROTO_HANDSHAKE;
}

void secure__set_admin(struct secure_conn *c)
{
    if (c->role == PROTO_SERVER)
        c->admin = keys_set_contains(&c->ctx->admins, noise_handshake_remote_static(&c->hs));
}

/* ---- stream interface ---- */

static int on_record(struct secure_conn *c, const uint8_t *rec, size_t len, struct proto_msg *msg)
{
    size_t n = len - NOISE_TAGLEN; /* check_len guaranteed len >= tag */
    buf_reset(&c->pt);
    int r = buf_reserve(&c->pt, n ? n : 1);
    if (r != 0)
        return conn_fail(c, r, "message buffer: %s", strerror(-r));
    r = secure__noise(noise_cipher_decrypt(&c->recv, NULL, 0, rec, len, buf_tail(&c->pt)));
    if (r != 0)
        return conn_fail(c, r, "record: %s", proto_strerror(r));
    buf_commit(&c->pt, n);
    msg->data = buf_head(&c->pt);
    msg->len = n;
    msg->first = msg->last = true;
    return PROTO_MSG;
}

static int secure_conn_read(void *conn, const uint8_t *in, size_t *inlen, struct buf *out,
                            struct proto_msg *msg)
{
    struct secure_conn *c = conn;
    size_t total = *inlen, pos = 0;
    int r = PROTO_NEED_MORE;

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
        buf_reset(&c->rx);
    }
    *inlen = pos;
    return r;
}

static int secure_conn_write(void *conn, const uint8_t *msg, size_t len, struct buf *out)
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
        return conn_fail(c, r, "encrypt: %s", proto_strerror(r));
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    buf_commit(out, FRAME_HDR + n);
    return 0;
}

static bool secure_conn_ready(const void *conn)
{
    return ((const struct secure_conn *)conn)->state == ST_TRANSPORT;
}

static int secure_conn_admin(const void *conn)
{
    const struct secure_conn *c = conn;
    return c->role == PROTO_SERVER && c->state == ST_TRANSPORT ? c->admin : -1;
}

static bool secure_conn_peer_id(const void *conn, char *out, size_t outlen)
{
    const struct secure_conn *c = conn;
    const uint8_t *rs = noise_handshake_remote_static(&c->hs);
    char b64[KEYS_B64LEN + 1];
    if (!rs || c->state != ST_TRANSPORT || outlen <= KEYS_B64LEN)
        return false;
    keys_b64_encode(rs, b64);
    memcpy(out, b64, sizeof(b64));
    return true;
}

static void secure_conn_free(void *conn)
{
    struct secure_conn *c = conn;
    noise_handshake_free(&c->hs);
    noise_cipher_free(&c->send);
    noise_cipher_free(&c->recv);
    buf_free_secret(&c->rx);
    buf_free_secret(&c->pt);
    c->state = ST_DEAD;
}

const char *proto_secure_last_error(const void *conn)
{
    return ((const struct secure_conn *)conn)->err;
}

/* The UDP form (WireGuard-style, docs/PROTOCOL.md) lives in secure_udp.c and shares the
 * conn, the trust rules and the Noise states; only the framing differs. */
const struct proto_vt proto_secure = {
    .name = "secure",
    .summary = "Noise XX channel: encrypted, peers authenticated by static keys",
    .flags = PROTO_F_KEY_FILES | PROTO_F_PEER_ADMINS,
    .conn_size = sizeof(struct secure_conn),
    .stream_max = SECURE_MAX_PLAIN,
    .dgram_max = SECURE_UDP_MAX_PLAIN,
    .suites = secure__suites,
    .nsuites = SECURE_NSUITES,
    .ctx_new = secure_ctx_new,
    .ctx_free = secure_ctx_free,
    .ctx_banner = secure_ctx_banner,
    .conn_init = secure_conn_init,
    .conn_read = secure_conn_read,
    .conn_write = secure_conn_write,
    .conn_ready = secure_conn_ready,
    .conn_admin = secure_conn_admin,
    .conn_peer_id = secure_conn_peer_id,
    .conn_error = proto_secure_last_error,
    .conn_free = secure_conn_free,
    .dgram_new = secure__dgram_new,
    .dgram_read = secure__dgram_read,
    .dgram_write = secure__dgram_write,
    .dgram_retransmit = secure__dgram_retransmit,
};
