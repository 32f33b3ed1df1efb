/* SPDX-License-Identifier: MIT */
/* lab-dh: the notebook's Exercise 3 / Lab 8 protocol (finite-field DH, HKDF-SHA256,
 * AES-256-CFB128), byte for byte. Unauthenticated: it resists only a passive eavesdropper. */
#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto_lab.h"

/*
 * Wire format (no framing, as in the notebook):
 *   server -> client  DH parameters, PEM PKCS#3 ("-----BEGIN DH PARAMETERS-----")  [pause]
 *   server -> client  server public key, PEM SubjectPublicKeyInfo                  [pause]
 *   client -> server  client public key, PEM SubjectPublicKeyInfo                  [pause]
 *   both: key = HKDF-SHA256(shared secret padded to |p|, salt none, info "handshake data", 32)
 *   each message, both ways: 16-byte IV [pause], AES-256-CFB128(key, IV, message) [pause]
 *
 * Delimiting what we read. A PEM ends with its "-----END ...-----" line and newline, so the
 * handshake may arrive split or merged anywhere. A record has no length: the IV is the next
 * 16 bytes; the ciphertext is then everything else in the same read batch (the bytes handed
 * to conn_read in one call), or, if the batch ended right after the IV, the whole next batch.
 * This matches the notebook, which reads the IV and the ciphertext with one recv(1024) each,
 * and relies on the I/O layer calling conn_read once per read() (see the report / PROTOCOL).
 */

#define LABDH_IV_LEN  16
#define LABDH_KEY_LEN 32
/* The notebook reads each ciphertext with recv(1024); CFB adds no bytes. */
#define LABDH_MAX_MSG 1024
#define LABDH_INFO    "handshake data"

static const char end_params[] = "-----END DH PARAMETERS-----";
static const char end_x942[] = "-----END X9.42 DH PARAMETERS-----";
static const char end_pubkey[] = "-----END PUBLIC KEY-----";

struct labdh_ctx {
    struct crypto_lab_dh_group group; /* server only */
    size_t max_msg;
};

enum labdh_state { ST_PARAMS, ST_PEER_PUB, ST_READY, ST_FAILED };

struct labdh_conn {
    const struct labdh_ctx *ctx;
    enum proto_role role;
    enum labdh_state st;
    struct buf hs;                         /* handshake PEM text being received */
    size_t pem_len;                        /* hs bytes up to the END line, once complete */
    struct crypto_lab_dh_group peer_group; /* client: the server's group */
    struct crypto_lab_dh_key key;          /* freed as soon as the secret is derived */
    uint8_t key32[LABDH_KEY_LEN];
    uint8_t iv[LABDH_IV_LEN];
    size_t iv_len;
    uint8_t pt[LABDH_MAX_MSG];
};

static size_t msg_limit(const struct labdh_ctx *ctx)
{
    return ctx->max_msg && ctx->max_msg < LABDH_MAX_MSG ? ctx->max_msg : LABDH_MAX_MSG;
}

/* Reads a whole small file (the --dh-params PEM). */
static int read_file(const char *path, char *out, size_t cap, size_t *len)
{
    int ret = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t n = fread(out, 1, cap, f);
    if (ferror(f))
        ret = -EIO;
    else if (n == cap)
        ret = -EFBIG;
    fclose(f);
    *len = n;
    return ret;
}

static int labdh_ctx_new(const struct proto_opts *o, enum proto_role role, void **ctxp, char *err,
                         size_t errlen)
{
    int ret;
    char *pem = NULL;
    size_t len = 0;
    struct labdh_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return -ENOMEM;
    ctx->max_msg = o->max_msg;
    if (role == PROTO_SERVER) {
        unsigned flags = 0;
        if (o->dh_params_file) {
            pem = malloc(CRYPTO_LAB_PEM_MAX + 1);
            if (!pem) {
                ret = -ENOMEM;
                goto fail;
            }
            ret = read_file(o->dh_params_file, pem, CRYPTO_LAB_PEM_MAX + 1, &len);
            if (ret < 0) {
                snprintf(err, errlen, "cannot read DH parameters %s: %s", o->dh_params_file,
                         ret == -EFBIG ? "file too large" : proto_strerror(ret));
                goto fail;
            }
            /* A file is ours to trust once: pay for the primality check at start-up. */
            flags = CRYPTO_LAB_DH_FULL_CHECK;
        }
        ret = crypto_lab_dh_group_init(&ctx->group, pem, len, flags);
        if (ret < 0) {
            snprintf(err, errlen, "%s: %s", o->dh_params_file ? o->dh_params_file : "ffdhe2048",
                     ret == -EBADMSG        ? "not PKCS#3 DH parameters (-----BEGIN DH PARAMETERS)"
                     : ret == -ERANGE       ? "DH prime must have 2048 to 8192 bits"
                     : ret == -EKEYREJECTED ? "DH parameters failed validation"
                                            : proto_strerror(ret));
            goto fail;
        }
    }
    free(pem);
    *ctxp = ctx;
    return 0;
fail:
    free(pem);
    crypto_lab_dh_group_free(&ctx->group);
    free(ctx);
    return ret;
}

static void labdh_ctx_free(void *ctxp)
{
    struct labdh_ctx *ctx = ctxp;
    if (!ctx)
        return;
    crypto_lab_dh_group_free(&ctx->group);
    free(ctx);
}

/* Appends our public key PEM followed by a pause mark. */
static int put_pub(struct labdh_conn *c, struct buf *out)
{
    char pem[CRYPTO_LAB_PEM_MAX];
    size_t n = 0;
    int ret = buf_marks_room(out, 1);
    if (ret < 0)
        return ret;
    ret = crypto_lab_dh_pub_pem(&c->key, pem, sizeof(pem), &n);
    if (ret < 0)
        return PROTO_E_CRYPTO;
    ret = buf_append(out, pem, n);
    if (ret < 0)
        return ret;
    (void)buf_mark_pause(out); /* room checked above */
    return 0;
}

static int labdh_conn_init(void *connp, void *ctxp, enum proto_role role, struct buf *out)
{
    struct labdh_conn *c = connp;
    const struct labdh_ctx *ctx = ctxp;
    c->ctx = ctx;
    c->role = role;
    c->st = role == PROTO_SERVER ? ST_PEER_PUB : ST_PARAMS;
    buf_init(&c->hs, CRYPTO_LAB_PEM_MAX);
    if (role == PROTO_CLIENT)
        return 0;
    /* A fresh key pair per connection (the notebook reuses one; we give forward secrecy). */
    if (crypto_lab_dh_keygen(&c->key, &ctx->group) < 0)
        return PROTO_E_CRYPTO;
    /* Both parts end at a pause: output that cannot be paced fails before any is written. */
    int ret = buf_marks_room(out, 2);
    if (ret < 0)
        return ret;
    ret = buf_append(out, ctx->group.pem, ctx->group.pem_len);
    if (ret < 0)
        return ret;
    (void)buf_mark_pause(out); /* room checked above */
    return put_pub(c, out);
}

/*
 * Appends input to the handshake buffer until a PEM END line (marker, then "\n" or "\r\n") is
 * complete. Returns the number of input bytes that belong to this PEM (the rest is left for
 * the next phase) with *done set, or all of them with *done clear, or <0.
 */
static long take_pem(struct labdh_conn *c, const uint8_t *in, size_t n, const char *m1,
                     const char *m2, bool *done)
{
    size_t old = buf_len(&c->hs);
    size_t room = c->hs.limit - old;
    size_t take = n < room ? n : room;
    *done = false;
    if (take && buf_append(&c->hs, in, take) < 0)
        return -ENOMEM;
    const char *text = (const char *)buf_head(&c->hs);
    size_t len = buf_len(&c->hs);
    /* Only look where a new match can be: the marker may straddle the old end. */
    size_t from = old > 40 ? old - 40 : 0;
    for (int i = 0; i < 2; i++) {
        const char *m = i ? m2 : m1;
        if (!m)
            continue;
        const char *p = memmem(text + from, len - from, m, strlen(m));
        if (!p)
            continue;
        size_t end = (size_t)(p - text) + strlen(m);
        if (end < len && text[end] == '\r')
            end++;
        if (end >= len)
            return (long)take; /* the newline has not arrived yet */
        if (text[end] != '\n')
            return PROTO_E_PARSE;
        end++;
        c->pem_len = end;
        *done = true;
        return (long)(end - old);
    }
    if (len == c->hs.limit)
        return PROTO_E_PARSE; /* no END line within CRYPTO_LAB_PEM_MAX */
    return (long)take;
}

static int map_crypto(int r)
{
    switch (r) {
    case -EBADMSG:
    case -EMSGSIZE:
        return PROTO_E_PARSE;
    case -ERANGE:
    case -EKEYREJECTED:
        return PROTO_E_AUTH;
    default:
        return PROTO_E_CRYPTO;
    }
}

/* Shared secret -> HKDF -> session key, then drops the private key (forward secrecy). */
static int derive(struct labdh_conn *c)
{
    uint8_t secret[CRYPTO_LAB_DH_SECRET_MAX];
    size_t n = 0;
    int ret = crypto_lab_dh_derive(&c->key, (const char *)buf_head(&c->hs), c->pem_len, secret,
                                   sizeof(secret), &n);
    if (ret < 0) {
        ret = map_crypto(ret);
        goto out;
    }
    ret = crypto_lab_hkdf_sha256(secret, n, NULL, 0, (const uint8_t *)LABDH_INFO,
                                 strlen(LABDH_INFO), c->key32, sizeof(c->key32));
    if (ret < 0) {
        ret = PROTO_E_CRYPTO;
        goto out;
    }
    crypto_lab_dh_key_free(&c->key);
    crypto_lab_dh_group_free(&c->peer_group);
    buf_free_nowipe(&c->hs);
    c->st = ST_READY;
    ret = 0;
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    return ret;
}

static int handshake_read(struct labdh_conn *c, const uint8_t *in, size_t *inlen, struct buf *out)
{
    size_t n = *inlen, used = 0;
    bool done = false;
    int ret;

    if (c->st == ST_PARAMS) {
        long r = take_pem(c, in, n, end_params, end_x942, &done);
        if (r < 0)
            return (int)r;
        used = (size_t)r;
        if (!done) {
            *inlen = used;
            return PROTO_NEED_MORE;
        }
        /* The server picks the group; we refuse small or malformed ones (no primality test:
         * it would cost ~0.2 s per connection). Python writes X9.42 for a group with q. */
        ret = crypto_lab_dh_group_init(&c->peer_group, (const char *)buf_head(&c->hs), c->pem_len,
                                       CRYPTO_LAB_DH_ALLOW_X942);
        if (ret < 0)
            return map_crypto(ret);
        buf_reset(&c->hs);
        c->st = ST_PEER_PUB;
    }
    long r = take_pem(c, in + used, n - used, end_pubkey, NULL, &done);
    if (r < 0)
        return (int)r;
    used += (size_t)r;
    *inlen = used;
    if (!done)
        return PROTO_NEED_MORE;
    if (c->role == PROTO_CLIENT) {
        if (crypto_lab_dh_keygen(&c->key, &c->peer_group) < 0)
            return PROTO_E_CRYPTO;
        ret = put_pub(c, out);
        if (ret < 0)
            return ret;
    }
    ret = derive(c);
    buf_clear(&c->hs); /* the handshake text is done with: an idle conn keeps no buffer */
    return ret < 0 ? ret : PROTO_HANDSHAKE;
}

static int labdh_conn_read(void *connp, const uint8_t *in, size_t *inlen, struct buf *out,
                           struct proto_msg *msg)
{
    struct labdh_conn *c = connp;
    size_t n = *inlen;
    int ret;

    if (c->st == ST_FAILED)
        return PROTO_E_STATE;
    if (c->st != ST_READY) {
        ret = handshake_read(c, in, inlen, out);
        if (ret < 0)
            c->st = ST_FAILED;
        return ret;
    }
    if (n == 0)
        return PROTO_NEED_MORE;
    size_t used = 0;
    if (c->iv_len < LABDH_IV_LEN) {
        size_t want = LABDH_IV_LEN - c->iv_len;
        used = n < want ? n : want;
        memcpy(c->iv + c->iv_len, in, used);
        c->iv_len += used;
        if (used == n) {
            *inlen = n;
            return PROTO_NEED_MORE; /* the ciphertext is the next batch */
        }
    }
    /* Everything else in this batch is the ciphertext. */
    size_t ct = n - used;
    if (ct > msg_limit(c->ctx)) {
        c->st = ST_FAILED;
        return PROTO_E_TOOBIG;
    }
    if (crypto_lab_aes256_cfb(false, c->key32, c->iv, in + used, ct, c->pt) < 0) {
        c->st = ST_FAILED;
        return PROTO_E_CRYPTO;
    }
    c->iv_len = 0;
    msg->data = c->pt;
    msg->len = ct;
    msg->first = msg->last = true;
    *inlen = n;
    return PROTO_MSG;
}

static int labdh_conn_write(void *connp, const uint8_t *msg, size_t len, struct buf *out)
{
    struct labdh_conn *c = connp;
    uint8_t iv[LABDH_IV_LEN];

    if (c->st != ST_READY)
        return PROTO_E_STATE;
    if (len > msg_limit(c->ctx))
        return PROTO_E_TOOBIG;
    /* An empty ciphertext would send nothing, and the peer would take the next IV for it. */
    if (len == 0)
        return -EINVAL;
    int ret = buf_marks_room(out, 2);
    if (ret < 0)
        return ret;
    ret = buf_reserve(out, LABDH_IV_LEN + len);
    if (ret < 0)
        return ret;
    if (crypto_lab_random(iv, sizeof(iv)) < 0)
        return PROTO_E_CRYPTO;
    /* Encrypt into the reserved space first, so a failure leaves out untouched. */
    uint8_t *dst = buf_tail(out);
    if (crypto_lab_aes256_cfb(true, c->key32, iv, msg, len, dst + LABDH_IV_LEN) < 0)
        return PROTO_E_CRYPTO;
    memcpy(dst, iv, sizeof(iv));
    buf_commit(out, sizeof(iv));
    (void)buf_mark_pause(out); /* room was checked above */
    buf_commit(out, len);
    (void)buf_mark_pause(out);
    return 0;
}

static bool labdh_conn_ready(const void *connp)
{
    const struct labdh_conn *c = connp;
    return c->st == ST_READY;
}

static void labdh_conn_free(void *connp)
{
    struct labdh_conn *c = connp;
    crypto_lab_dh_key_free(&c->key);
    crypto_lab_dh_group_free(&c->peer_group);
    buf_free_nowipe(&c->hs);
}

const struct proto_vt proto_lab_dh = {
    .name = "lab-dh",
    .summary = "the course's DH + AES-256-CFB protocol (unauthenticated, TCP only)",
    .flags = PROTO_F_PACED | PROTO_F_UNAUTHENTICATED | PROTO_F_DH_PARAMS,
    .conn_size = sizeof(struct labdh_conn),
    .stream_max = LABDH_MAX_MSG,
    .dgram_max = 0,
    .warning = "lab-dh is unauthenticated: anyone on the path can read and change the messages.",
    .ctx_new = labdh_ctx_new,
    .ctx_free = labdh_ctx_free,
    .conn_init = labdh_conn_init,
    .conn_read = labdh_conn_read,
    .conn_write = labdh_conn_write,
    .conn_ready = labdh_conn_ready,
    .conn_free = labdh_conn_free,
};
