/* SPDX-License-Identifier: MIT */
/* libFuzzer target: Fernet tokens, alone and through the lab-fernet server conns.
 *
 * data[0] % 3 picks the mode, data[1] (modes 1 and 2) how the stream is chunked:
 *   0  raw: the rest is a token for fernet_decrypt under a fixed key (with and without a TTL),
 *      and also key text for fernet_key_decode and base64url for fernet_b64_decode.
 *   1  TCP server conn: the rest is a list of ops, each [op][len][len bytes]: an even op
 *      appends the bytes raw, an odd op appends a valid token (under the key the conn sent)
 *      of the bytes repeated op/2+1 times (so messages reach past the 703-byte limit). The
 *      stream goes to conn_read in chunks of data[1] bytes (0 = one batch).
 *   2  UDP server conn: the same ops, each one datagram to dgram_read after the key request.
 * Oracle: whatever decrypts is a message we sealed (valid tokens are the only way in); and
 * with only valid tokens, in one batch (or one datagram each), every message comes out in
 * order, or the first one above 703 bytes is refused as too big. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "fernet.h"
#include "proto.h"

#define MAX_OPS    64
#define MAX_STREAM (96 * 1024)

static void *tcp_ctx, *udp_ctx;
static const struct fernet_key fixed_key = {
    .signing = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    .encryption = {16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31},
};

struct op {
    bool token;
    uint8_t msg[1024];
    size_t len;
};

static struct op ops[MAX_OPS];
static size_t nops;
static bool only_tokens;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[PROTO_ERRLEN];
    struct proto_opts o = {0};
    if (proto_lab_fernet.ctx_new(&o, PROTO_SERVER, &tcp_ctx, err, sizeof(err)) != 0)
        abort();
    o.dgram = true;
    if (proto_lab_fernet.ctx_new(&o, PROTO_SERVER, &udp_ctx, err, sizeof(err)) != 0)
        abort();
    return 0;
}

static void fuzz_raw(const uint8_t *data, size_t size)
{
    static uint8_t out[FERNET_TOKEN_MAX];
    size_t n = 0;
    int r = fernet_decrypt(&fixed_key, (const char *)data, size, 0, 0, out, sizeof(out), &n);
    if (r == 0 && n > size)
        abort();
    /* With a TTL: the time rules must not crash at the extremes either. */
    (void)fernet_decrypt(&fixed_key, (const char *)data, size, UINT64_MAX - 5, 60, out, sizeof(out),
                         &n);
    (void)fernet_decrypt(&fixed_key, (const char *)data, size, 1700000000, UINT64_MAX, out,
                         sizeof(out), &n);
    struct fernet_key k;
    if (fernet_key_decode(&k, (const char *)data, size) == 0) {
        char text[FERNET_KEY_TEXT_LEN + 1];
        fernet_key_encode(&k, text);
        if (size != FERNET_KEY_TEXT_LEN || memcmp(text, data, size) != 0)
            abort(); /* strict decoding: only the canonical text decodes */
    }
    long m = fernet_b64_decode((const char *)data, size, out, sizeof(out));
    if (m > 0) {
        static char back[FERNET_TOKEN_MAX * 2];
        if ((size_t)m > size || fernet_b64_encode(out, (size_t)m, back) != size ||
            memcmp(back, data, size) != 0)
            abort(); /* strict decoding round-trips */
    }
}

/* Parses data into ops[]. */
static void parse_ops(const uint8_t *data, size_t size)
{
    nops = 0;
    only_tokens = true;
    for (size_t i = 0; i + 2 <= size && nops < MAX_OPS;) {
        uint8_t op = data[i], len = data[i + 1];
        i += 2;
        size_t n = len < size - i ? len : size - i;
        struct op *o = &ops[nops++];
        o->token = op & 1;
        o->len = 0;
        if (o->token) {
            /* The bytes repeated, so a message can pass the limit. */
            size_t reps = (size_t)(op >> 1) % 8 + 1;
            for (size_t r = 0; r < reps && o->len + n <= sizeof(o->msg); r++) {
                memcpy(o->msg + o->len, data + i, n);
                o->len += n;
            }
        } else {
            only_tokens = false;
            memcpy(o->msg, data + i, n);
            o->len = n;
        }
        i += n;
    }
}

/* The bytes of op i on the wire: a token under k, or the raw bytes. */
static size_t wire(const struct fernet_key *k, size_t i, char *out, size_t cap)
{
    const struct op *o = &ops[i];
    if (!o->token) {
        memcpy(out, o->msg, o->len);
        return o->len;
    }
    size_t n = 0;
    if (fernet_token_len(o->len) > cap || fernet_encrypt(k, o->msg, o->len, out, cap, &n) < 0)
        abort();
    return n;
}

static size_t first_toobig(void)
{
    size_t i = 0;
    while (i < nops && ops[i].len <= fernet_max_msg(1024))
        i++;
    return i;
}

static void fuzz_tcp(size_t chunk)
{
    static _Alignas(max_align_t) uint8_t conn[8192];
    static char stream[MAX_STREAM];
    struct buf out;
    struct fernet_key k;
    size_t len = 0, got = 0;

    struct buf_marks marks; /* TCP lab-fernet output is paced */
    memset(conn, 0, proto_lab_fernet.conn_size);
    buf_init(&out, 1 << 16);
    buf_attach_marks(&out, &marks);
    if (proto_lab_fernet.conn_init(conn, tcp_ctx, PROTO_SERVER, &out) < 0 ||
        buf_len(&out) != FERNET_KEY_TEXT_LEN ||
        fernet_key_decode(&k, (const char *)buf_head(&out), FERNET_KEY_TEXT_LEN) < 0)
        abort();
    buf_reset(&out);
    size_t i = 0;
    for (; i < nops && len + 2048 <= sizeof(stream); i++)
        len += wire(&k, i, stream + len, sizeof(stream) - len);
    nops = i;
    if (chunk == 0)
        chunk = len;
    int r = 0;
    for (size_t off = 0; r >= 0 && off < len;) {
        size_t end = off + chunk < len ? off + chunk : len;
        while (r >= 0) {
            struct proto_msg m;
            size_t n = end - off;
            r = proto_lab_fernet.conn_read(conn, (const uint8_t *)stream + off, &n, &out, &m);
            if (n > end - off)
                abort();
            off += n;
            if (r == PROTO_NEED_MORE) {
                if (off != end)
                    abort();
                break;
            }
            if (r == PROTO_MSG) {
                /* Only our own tokens verify; with only tokens, they come out in order. */
                if (m.len > fernet_max_msg(1024))
                    abort();
                if (only_tokens && (got >= nops || m.len != ops[got].len ||
                                    memcmp(m.data, ops[got].msg, m.len) != 0))
                    abort();
                got++;
                if (proto_lab_fernet.conn_write(conn, m.data, m.len, &out) < 0)
                    abort();
                buf_reset(&out);
            }
        }
    }
    /* One batch of valid tokens: all out, up to the first one above the limit. */
    if (only_tokens && chunk == len) {
        size_t want = first_toobig();
        if (got != want || (want < nops && r != PROTO_E_TOOBIG) || (want == nops && r < 0))
            abort();
    }
    proto_lab_fernet.conn_free(conn);
    buf_free(&out);
}

static void fuzz_udp(void)
{
    static _Alignas(max_align_t) uint8_t conn[8192];
    static char dgram[4096];
    struct buf reply;
    struct fernet_key k;
    struct proto_msg m;
    char key_text[FERNET_KEY_TEXT_LEN];

    memset(conn, 0, proto_lab_fernet.conn_size);
    buf_init(&reply, 1 << 16);
    if (proto_lab_fernet.conn_init(conn, udp_ctx, PROTO_SERVER, &reply) < 0 || buf_len(&reply))
        abort();
    int r = proto_lab_fernet.dgram_read(conn, (const uint8_t *)"key", 3, &reply, &m);
    if (r != PROTO_HANDSHAKE || buf_len(&reply) != FERNET_KEY_TEXT_LEN ||
        fernet_key_decode(&k, (const char *)buf_head(&reply), FERNET_KEY_TEXT_LEN) < 0)
        abort();
    memcpy(key_text, buf_head(&reply), sizeof(key_text));
    for (size_t i = 0; i < nops; i++) {
        buf_reset(&reply);
        size_t n = wire(&k, i, dgram, sizeof(dgram));
        r = proto_lab_fernet.dgram_read(conn, (const uint8_t *)dgram, n, &reply, &m);
        if (r == PROTO_MSG) {
            if (!ops[i].token || m.len != ops[i].len || memcmp(m.data, ops[i].msg, m.len) != 0)
                abort();
            buf_reset(&reply);
            if (proto_lab_fernet.dgram_write(conn, m.data, m.len, &reply) < 0)
                abort();
        } else if (ops[i].token) {
            /* A valid token fails only for being too big. */
            if (ops[i].len <= fernet_max_msg(1024) || (r != PROTO_E_TOOBIG))
                abort();
        }
        /* Anything else: an error for this datagram, or the same key sent again. */
        if (r == PROTO_NEED_MORE && (buf_len(&reply) != FERNET_KEY_TEXT_LEN ||
                                     memcmp(buf_head(&reply), key_text, sizeof(key_text)) != 0))
            abort();
    }
    proto_lab_fernet.conn_free(conn);
    buf_free(&reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_raw(data + 1, size - 1);
        break;
    case 1:
        parse_ops(data + 2, size - 2);
        fuzz_tcp(data[1]);
        break;
    default:
        parse_ops(data + 2, size - 2);
        fuzz_udp();
        break;
    }
    return 0;
}
