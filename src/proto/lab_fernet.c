/* SPDX-License-Identifier: MIT */
/* lab-fernet: the notebook's Lab 8 Fernet protocol over TCP and UDP. The key travels in clear,
 * so this only shows the mechanics; every token is still authenticated before use. */
#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "fernet.h"

/* Tokens older than this (or more than a minute in the future) are refused, seconds. */
#define LF_TOKEN_TTL 300

/*
 * Wire format:
 *   TCP: server -> client: the 44-character key (base64url, as Fernet.generate_key()) [pause]
 *        then each message, both ways: one Fernet token (no delimiter) [pause]
 *   UDP: client -> server: any first datagram asks for a key (our client sends "key");
 *        server -> client: the key, one datagram; then one token per datagram.
 *
 * The notebook reads each token with one recv(1024)/recvfrom(1024), so a token is at most
 * 1024 characters: messages of at most 703 bytes (fernet_max_msg(1024)).
 *
 * Delimiting tokens on TCP: a token has no length field, but its length can only be
 * 4*ceil((57 + 16k) / 3) characters (k = ciphertext blocks), and only the right length
 * verifies. We try each such prefix of the received text against the HMAC, so tokens may
 * arrive split or merged anywhere. A bad token is recognised when it cannot be a prefix of a
 * longer one: it holds '=' padding, a character outside base64url, does not start with 'g'
 * (version 0x80), grew past 1024 characters, or ends exactly where the read batch ends at a
 * possible unpadded token length (the notebook sends each token with one sendall()). The last rule
 * means a valid unpadded token (k a multiple of 3) cut by the network exactly at a shorter
 * possible length is refused; a single send of <= 1024 bytes is not cut in practice.
 */

#define LF_TOKEN_MAX 1024
/* fernet_max_msg(LF_TOKEN_MAX) as a constant for the vtable: the most base64 characters'
 * worth of token bytes (768), less the fixed part, in whole AES blocks, less one byte for
 * the PKCS#7 padding that is always there: (768 - 57) / 16 = 44 blocks, 703 bytes. */
#define LF_MAX_MSG ((LF_TOKEN_MAX / 4 * 3 - FERNET_OVERHEAD) / 16 * 16 - 1)
#define LF_HELLO   "key"

struct lf_ctx {
    size_t max_msg;
    bool dgram;
};

struct lf_conn {
    const struct lf_ctx *ctx;
    enum proto_role role;
    struct fernet_key key;
    bool have_key;
    bool key_sent;   /* server */
    bool seen_token; /* UDP server: a valid token arrived, so the peer has the key */
    bool failed;
    struct buf acc; /* TCP: received text not yet part of a token */
    size_t tried;   /* candidate lengths (in blocks) already refused for the front of acc */
    uint8_t pt[LF_TOKEN_MAX];
};

static size_t msg_limit(const struct lf_ctx *ctx)
{
    size_t max = LF_MAX_MSG;
    return ctx->max_msg && ctx->max_msg < max ? ctx->max_msg : max;
}

/* Token length for k ciphertext blocks. */
static size_t cand_len(size_t k)
{
    return (FERNET_OVERHEAD + 16 * k + 2) / 3 * 4;
}

static int lf_ctx_new(const struct proto_opts *o, enum proto_role role, void **ctxp, char *err,
                      size_t errlen)
{
    (void)role;
    (void)err;
    (void)errlen;
    struct lf_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return -ENOMEM;
    ctx->max_msg = o->max_msg;
    ctx->dgram = o->dgram;
    *ctxp = ctx;
    return 0;
}

static void lf_ctx_free(void *ctx)
{
    free(ctx);
}

static int put_key(struct lf_conn *c, struct buf *out, bool pause)
{
    int ret = pause ? buf_marks_room(out, 1) : 0;
    if (ret < 0)
        return ret;
    char text[FERNET_KEY_TEXT_LEN + 1];
    fernet_key_encode(&c->key, text);
    ret = buf_append(out, text, FERNET_KEY_TEXT_LEN);
    OPENSSL_cleanse(text, sizeof(text));
    if (ret < 0)
        return ret;
    if (pause)
        (void)buf_mark_pause(out); /* room checked above */
    c->key_sent = true;
    return 0;
}

static int lf_conn_init(void *connp, void *ctxp, enum proto_role role, struct buf *out)
{
    struct lf_conn *c = connp;
    c->ctx = ctxp;
    c->role = role;
    buf_init(&c->acc, LF_TOKEN_MAX);
    if (role == PROTO_CLIENT)
        return c->ctx->dgram ? buf_append(out, LF_HELLO, strlen(LF_HELLO)) : 0;
    /* A fresh key per connection or UDP peer, as the notebook's selectors server does. */
    if (fernet_key_generate(&c->key) < 0)
        return PROTO_E_CRYPTO;
    c->have_key = true;
    return c->ctx->dgram ? 0 : put_key(c, out, true);
}

/* Decrypts one token into c->pt. */
static int open_token(struct lf_conn *c, const uint8_t *tok, size_t len, struct proto_msg *msg)
{
    size_t n = 0;
    /* The notebook decrypts without a ttl; a live peer's tokens are seconds old, so an old
     * (or future) one is a replay and is refused like a forgery. */
    int r = fernet_decrypt(&c->key, (const char *)tok, len, (uint64_t)time(NULL), LF_TOKEN_TTL,
                           c->pt, sizeof(c->pt), &n);
    if (r == -EIO)
        return PROTO_E_CRYPTO;
    if (r < 0)
        return r == -EACCES || r == -ETIME ? PROTO_E_AUTH : PROTO_E_PARSE;
    if (n > msg_limit(c->ctx)) {
        OPENSSL_cleanse(c->pt, n);
        return PROTO_E_TOOBIG;
    }
    msg->data = c->pt;
    msg->len = n;
    msg->first = msg->last = true;
    return PROTO_MSG;
}

static bool b64url_or_pad(uint8_t ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '=';
}

/* Finds a whole token at the front of acc (see the top comment). */
static int extract(struct lf_conn *c, bool batch_end, struct proto_msg *msg)
{
    const uint8_t *text = buf_head(&c->acc);
    size_t len = buf_len(&c->acc);

    if (len == 0)
        return PROTO_NEED_MORE;
    if (text[0] != 'g')
        return PROTO_E_PARSE;
    for (size_t k = c->tried + 1; cand_len(k) <= len && cand_len(k) <= LF_TOKEN_MAX; k++) {
        int r = open_token(c, text, cand_len(k), msg);
        if (r == PROTO_MSG || r == PROTO_E_TOOBIG || r == PROTO_E_CRYPTO) {
            if (r == PROTO_MSG) {
                buf_consume(&c->acc, cand_len(k));
                c->tried = 0;
            }
            return r;
        }
        c->tried = k;
    }
    size_t pad = len;
    for (size_t i = 0; i < len; i++) {
        if (!b64url_or_pad(text[i]))
            return PROTO_E_PARSE;
        if (text[i] == '=' && pad == len)
            pad = i;
    }
    /* Padding closes the token at the end of its 4-character group. */
    if (pad < len && (pad / 4 + 1) * 4 <= len)
        return PROTO_E_AUTH;
    if (cand_len(c->tried + 1) > LF_TOKEN_MAX)
        return PROTO_E_TOOBIG;
    /* Only an unpadded length (k a multiple of 3) can be a whole token without '='. */
    if (batch_end && c->tried > 0 && c->tried % 3 == 0 && cand_len(c->tried) == len)
        return PROTO_E_AUTH;
    return PROTO_NEED_MORE;
}

static int lf_conn_read(void *connp, const uint8_t *in, size_t *inlen, struct buf *out,
                        struct proto_msg *msg)
{
    (void)out;
    struct lf_conn *c = connp;
    size_t n = *inlen;
    int ret;

    if (c->failed)
        return PROTO_E_STATE;
    /* What an earlier call left empty goes back: an idle conn keeps no buffer. */
    buf_release(&c->acc);
    if (!c->have_key) {
        /* Client: the first 44 characters are the key. */
        size_t want = FERNET_KEY_TEXT_LEN - buf_len(&c->acc);
        size_t take = n < want ? n : want;
        if (buf_append(&c->acc, in, take) < 0)
            return -ENOMEM;
        *inlen = take;
        if (buf_len(&c->acc) < FERNET_KEY_TEXT_LEN)
            return PROTO_NEED_MORE;
        ret = fernet_key_decode(&c->key, (const char *)buf_head(&c->acc), FERNET_KEY_TEXT_LEN);
        buf_reset(&c->acc);
        if (ret < 0) {
            c->failed = true;
            return PROTO_E_PARSE;
        }
        c->have_key = true;
        return PROTO_HANDSHAKE;
    }
    size_t room = c->acc.limit - buf_len(&c->acc);
    size_t take = n < room ? n : room;
    if (buf_append(&c->acc, in, take) < 0)
        return -ENOMEM;
    *inlen = take;
    ret = extract(c, take == n, msg);
    if (ret < 0)
        c->failed = true;
    return ret;
}

/* Appends one token for msg to out. */
static int seal(struct lf_conn *c, const uint8_t *msg, size_t len, struct buf *out)
{
    if (!c->have_key || c->failed)
        return PROTO_E_STATE;
    if (len > msg_limit(c->ctx))
        return PROTO_E_TOOBIG;
    size_t tl = fernet_token_len(len), n = 0;
    int ret = buf_reserve(out, tl);
    if (ret < 0)
        return ret;
    if (fernet_encrypt(&c->key, msg, len, (char *)buf_tail(out), tl, &n) < 0)
        return PROTO_E_CRYPTO;
    buf_commit(out, n);
    return 0;
}

static int lf_conn_write(void *connp, const uint8_t *msg, size_t len, struct buf *out)
{
    int ret = buf_marks_room(out, 1);
    if (ret < 0)
        return ret;
    ret = seal(connp, msg, len, out);
    if (ret == 0)
        (void)buf_mark_pause(out); /* room checked above */
    return ret;
}

static bool lf_conn_ready(const void *connp)
{
    const struct lf_conn *c = connp;
    return c->have_key && (c->role == PROTO_CLIENT || c->key_sent);
}

static void lf_conn_free(void *connp)
{
    struct lf_conn *c = connp;
    buf_free(&c->acc);
}

static int lf_dgram_read(void *connp, const uint8_t *in, size_t len, struct buf *reply,
                         struct proto_msg *msg)
{
    struct lf_conn *c = connp;
    int ret;

    if (c->role == PROTO_CLIENT) {
        if (!c->have_key) {
            if (fernet_key_decode(&c->key, (const char *)in, len) < 0)
                return PROTO_E_PARSE;
            c->have_key = true;
            return PROTO_HANDSHAKE;
        }
        /* A repeated key (our request was answered twice) is no token. */
        if (len == FERNET_KEY_TEXT_LEN) {
            char text[FERNET_KEY_TEXT_LEN + 1];
            fernet_key_encode(&c->key, text);
            bool same = CRYPTO_memcmp(text, in, FERNET_KEY_TEXT_LEN) == 0;
            OPENSSL_cleanse(text, sizeof(text));
            if (same)
                return PROTO_DROP;
        }
        return len > LF_TOKEN_MAX ? PROTO_E_TOOBIG : open_token(c, in, len, msg);
    }
    if (!c->key_sent) {
        /* Answering the first request completes the handshake: the conn is ready now. */
        ret = put_key(c, reply, false);
        return ret < 0 ? ret : PROTO_HANDSHAKE;
    }
    if (len > LF_TOKEN_MAX)
        return PROTO_E_TOOBIG;
    ret = open_token(c, in, len, msg);
    /* Until a valid token proves the peer has the key, something that is not even shaped
     * like a token is a repeated key request (the first answer may have been lost). */
    if (ret == PROTO_E_PARSE && !c->seen_token) {
        ret = put_key(c, reply, false);
        return ret < 0 ? ret : PROTO_NEED_MORE;
    }
    if (ret == PROTO_MSG)
        c->seen_token = true;
    return ret;
}

static int lf_dgram_write(void *connp, const uint8_t *msg, size_t len, struct buf *out)
{
    return seal(connp, msg, len, out);
}

const struct proto_vt proto_lab_fernet = {
    .name = "lab-fernet",
    .summary = "the course's Fernet protocol, key sent in clear (unauthenticated)",
    .flags = PROTO_F_PACED | PROTO_F_UNAUTHENTICATED,
    .conn_size = sizeof(struct lf_conn),
    .stream_max = LF_MAX_MSG,
    .dgram_max = LF_MAX_MSG,
    .warning = "lab-fernet sends its key in clear and is unauthenticated: anyone on the path "
               "can read and forge messages.",
    .ctx_new = lf_ctx_new,
    .ctx_free = lf_ctx_free,
    .conn_init = lf_conn_init,
    .conn_read = lf_conn_read,
    .conn_write = lf_conn_write,
    .conn_ready = lf_conn_ready,
    .conn_free = lf_conn_free,
    /* Any datagram from an unknown address asks for a key (SPEC lab-fernet). */
    .dgram_new = proto_dgram_new_any,
    .dgram_read = lf_dgram_read,
    .dgram_write = lf_dgram_write,
};
