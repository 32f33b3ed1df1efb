/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the client role of lab-fernet, TCP and UDP: what a (malicious) server
 * sends the client, built from valid and invalid pieces.
 *
 * data[0]: bit 0 UDP (else TCP); bits 1-7 the TCP read size (0: each piece is one read, as
 * the notebook's server sends each with one sendall). data[1..32]: the server's key K. Then
 * pieces, each an op byte (low 3 bits the kind, the rest its argument a) and what it needs:
 *   0 K's text (the key the server sends)            4 a token of K, 400 s old or 120 s ahead
 *   1 u8 length + raw bytes                          5 a token of K cut short (a*4 characters)
 *   2 u8 length + bytes: a token of K of them, the   6 a token of K with one character changed
 *     bytes (a&3)+1 times (past 703 bytes at times)  7 another key's text (UDP: a new key)
 *   3 a token of the same message under another key
 * Oracles:
 *   - the client never delivers a message that is not the plaintext of a valid token of K
 *     (ops 2): what it delivers is always a prefix of those plaintexts, in order; a forged,
 *     tampered, stale or future token, alone in its read or datagram, is an error (on TCP a
 *     token whose '=' was changed may instead wait for more: it can start a longer one); nothing
 *     is handed out before a handshake, and a failed TCP conn stays failed;
 *   - TCP, one piece per read, K's text first then only valid tokens: every token up to
 *     703 bytes comes out, in order, and the first longer one is refused as too big;
 *   - UDP: each datagram alone: K's text gives the handshake (again: dropped as a repeat),
 *     a valid token its message (or too big), anything else no message. */
#include <errno.h>
#include <time.h>

#include "fernet.h"
#include "fuzz_util.h"
#include "proto.h"

#define MAX_PIECES 256
#define LF_MAX_MSG 703

static void *tcp_ctx, *udp_ctx;
/* Another key: K with every bit of its signing half flipped, so that no token of one verifies
 * under the other. */
static struct fernet_key other;

struct piece {
    uint8_t kind;
    char bytes[4096];
    size_t len;
    uint8_t msg[1024]; /* kinds 2 and 3: the plaintext */
    size_t msglen;
    bool pad_changed; /* kind 6: the character changed was '=' padding */
};

static struct piece pieces[MAX_PIECES];
static uint8_t stream[MAX_PIECES * 4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[PROTO_ERRLEN];
    struct proto_opts o = {0};
    if (proto_lab_fernet.ctx_new(&o, PROTO_CLIENT, &tcp_ctx, err, sizeof(err)) != 0)
        abort();
    o.dgram = true;
    if (proto_lab_fernet.ctx_new(&o, PROTO_CLIENT, &udp_ctx, err, sizeof(err)) != 0)
        abort();
    return 0;
}

static void seal_at(const struct fernet_key *k, uint64_t t, const uint8_t *m, size_t n,
                    struct piece *p)
{
    uint8_t iv[16] = {(uint8_t)n, 1, 2, 3};
    FUZZ_CHECK(fernet_encrypt_at(k, t, iv, m, n, p->bytes, sizeof(p->bytes), &p->len) == 0);
}

/* Builds the pieces from the input. */
static size_t parse(struct fuzz_in *in, const struct fernet_key *k)
{
    size_t np = 0;
    uint64_t now = (uint64_t)time(NULL);
    while (fuzz_more(in) && np < MAX_PIECES) {
        uint8_t op = fuzz_u8(in);
        unsigned a = op >> 3;
        struct piece *p = &pieces[np++];
        p->kind = op & 7;
        p->len = p->msglen = 0;
        p->pad_changed = false;
        size_t n;
        const uint8_t *b;
        char text[FERNET_KEY_TEXT_LEN + 1];
        switch (p->kind) {
        case 0:
        case 7:
            fernet_key_encode(p->kind == 0 ? k : &other, text);
            memcpy(p->bytes, text, FERNET_KEY_TEXT_LEN);
            p->len = FERNET_KEY_TEXT_LEN;
            break;
        case 1:
            b = fuzz_bytes(in, fuzz_u8(in), &n);
            memcpy(p->bytes, b, n);
            p->len = n;
            break;
        case 2:
        case 3:
            b = fuzz_bytes(in, fuzz_u8(in), &n);
            for (unsigned i = 0; i <= (p->kind == 2 ? a & 3 : 0); i++) {
                memcpy(p->msg + p->msglen, b, n);
                p->msglen += n;
            }
            seal_at(p->kind == 2 ? k : &other, now, p->msg, p->msglen, p);
            break;
        case 4:
            b = fuzz_bytes(in, fuzz_u8(in), &n);
            seal_at(k, a & 1 ? now + 120 : now - 400, b, n, p);
            break;
        default: /* 5, 6 */
            b = fuzz_bytes(in, fuzz_u8(in), &n);
            seal_at(k, now, b, n, p);
            if (p->kind == 5) {
                p->len = (size_t)a * 4 % p->len; /* always short of the whole token */
            } else {
                size_t at = (size_t)a * 7 % p->len;
                p->pad_changed = p->bytes[at] == '=';
                p->bytes[at] = p->bytes[at] == 'A' ? 'B' : 'A';
            }
            break;
        }
    }
    return np;
}

/* Which pieces are valid tokens for a client that took `key` as the key: op 2 for K, op 3 for
 * the other key, none for any other. */
static int valid_kind(const char *key, const struct fernet_key *k)
{
    char text[FERNET_KEY_TEXT_LEN + 1];
    fernet_key_encode(k, text);
    if (memcmp(key, text, FERNET_KEY_TEXT_LEN) == 0)
        return 2;
    fernet_key_encode(&other, text);
    return memcmp(key, text, FERNET_KEY_TEXT_LEN) == 0 ? 3 : -1;
}

/* The plaintexts of the valid tokens, in order: what may come out. */
static bool may_deliver(size_t np, int valid, size_t k, const struct proto_msg *m)
{
    for (size_t i = 0, seen = 0; i < np; i++) {
        if (pieces[i].kind != valid)
            continue;
        if (seen++ == k)
            return m->len == pieces[i].msglen && memcmp(m->data, pieces[i].msg, m->len) == 0;
    }
    return false;
}

static void fuzz_tcp(size_t np, size_t chunk, const struct fernet_key *k)
{
    static _Alignas(max_align_t) uint8_t conn[8192];
    const struct proto_vt *vt = &proto_lab_fernet;
    struct buf out;
    buf_init(&out, 1 << 16);
    memset(conn, 0, vt->conn_size);
    FUZZ_CHECK(vt->conn_init(conn, tcp_ctx, PROTO_CLIENT, &out) == 0 && buf_empty(&out));

    /* The reads: each piece alone, or the whole stream in fixed chunks. */
    size_t len = 0, cuts[MAX_PIECES + 1], ncuts = 0;
    for (size_t i = 0; i < np; i++) {
        memcpy(stream + len, pieces[i].bytes, pieces[i].len);
        len += pieces[i].len;
        cuts[ncuts++] = len;
    }
    /* The client takes the first 44 characters as the key, whatever they are. */
    int valid = len >= FERNET_KEY_TEXT_LEN ? valid_kind((const char *)stream, k) : -1;
    /* One piece per read, the key alone first: each later piece starts a token. */
    bool aligned = chunk == 0 && np > 0 && pieces[0].len == FERNET_KEY_TEXT_LEN;
    size_t got = 0, off = 0;
    bool ready = false, dead = false;
    int first_err = 0;
    for (size_t c = 0; off < len || (chunk == 0 && c < ncuts); c++) {
        size_t end = chunk ? (off + chunk < len ? off + chunk : len) : cuts[c];
        for (;;) {
            struct proto_msg m;
            size_t n = end - off;
            int r = vt->conn_read(conn, stream + off, &n, &out, &m);
            FUZZ_CHECK(n <= end - off && buf_empty(&out));
            off += n;
            if (dead)
                FUZZ_CHECK(r < 0); /* a failed conn stays failed */
            if (r < 0) {
                if (!dead)
                    first_err = r;
                dead = true;
                off = end;
                break;
            }
            if (r == PROTO_HANDSHAKE) {
                FUZZ_CHECK(!ready && off == FERNET_KEY_TEXT_LEN);
                ready = true;
                continue;
            }
            if (r == PROTO_MSG) {
                FUZZ_CHECK(ready && m.first && m.last);
                FUZZ_CHECK(may_deliver(np, valid, got, &m));
                got++;
                continue;
            }
            FUZZ_CHECK(off == end); /* NEED_MORE takes everything */
            break;
        }
        if (aligned && c > 0 && c < np && valid == 2 && !dead) {
            /* A forged, stale, future or tampered token alone in its read is refused. Not
             * when the tampering turned its '=' padding into a base64 character: the text
             * is then a possible start of a longer token, which may come in the next read
             * (lab_fernet.c refuses at a read's end only texts of an unpadded token length). */
            uint8_t kind = pieces[c].kind;
            FUZZ_CHECK(kind != 3 && kind != 4 && (kind != 6 || pieces[c].pad_changed));
        }
        if (aligned && c > 0 && c < np && pieces[c].kind != valid)
            aligned = false; /* what follows may not start a token */
    }
    /* Exactly: K's text first, then only valid tokens, each its own read. */
    bool clean = chunk == 0 && np > 0 && pieces[0].kind == 0;
    for (size_t i = 1; i < np && clean; i++)
        clean = pieces[i].kind == 2;
    if (clean) {
        size_t want = 0;
        while (want + 1 < np && pieces[want + 1].msglen <= LF_MAX_MSG)
            want++;
        FUZZ_CHECK(ready && got == want);
        FUZZ_CHECK(want + 1 == np ? !dead : first_err == PROTO_E_TOOBIG);
    }
    vt->conn_free(conn);
    buf_free(&out);
}

static void fuzz_udp(size_t np, const struct fernet_key *k)
{
    static _Alignas(max_align_t) uint8_t conn[8192];
    const struct proto_vt *vt = &proto_lab_fernet;
    struct buf out;
    char have[FERNET_KEY_TEXT_LEN + 1] = "";
    int valid = -1;
    buf_init(&out, 1 << 16);
    memset(conn, 0, vt->conn_size);
    FUZZ_CHECK(vt->conn_init(conn, udp_ctx, PROTO_CLIENT, &out) == 0);
    FUZZ_CHECK(buf_len(&out) == 3 && memcmp(buf_head(&out), "key", 3) == 0);
    buf_reset(&out);
    for (size_t i = 0; i < np; i++) {
        const struct piece *p = &pieces[i];
        struct proto_msg m;
        int r = vt->dgram_read(conn, (const uint8_t *)p->bytes, p->len, &out, &m);
        FUZZ_CHECK(buf_empty(&out));
        if (!have[0]) {
            /* The first datagram that is a key's text is the key; nothing else counts. */
            FUZZ_CHECK(r == PROTO_HANDSHAKE || r == PROTO_E_PARSE);
            if (r == PROTO_HANDSHAKE) {
                struct fernet_key dk;
                FUZZ_CHECK(fernet_key_decode(&dk, p->bytes, p->len) == 0);
                memcpy(have, p->bytes, FERNET_KEY_TEXT_LEN);
                valid = valid_kind(have, k);
            }
            continue;
        }
        if (p->len == FERNET_KEY_TEXT_LEN && memcmp(p->bytes, have, p->len) == 0) {
            FUZZ_CHECK(r == PROTO_DROP); /* our request answered twice */
            continue;
        }
        if (p->kind == valid) {
            if (p->msglen > LF_MAX_MSG)
                FUZZ_CHECK(r == PROTO_E_TOOBIG);
            else
                FUZZ_CHECK(r == PROTO_MSG && m.len == p->msglen &&
                           memcmp(m.data, p->msg, m.len) == 0);
            continue;
        }
        FUZZ_CHECK(r != PROTO_MSG && r != PROTO_HANDSHAKE);
        if (valid == 2 && (p->kind == 3 || p->kind == 4 || p->kind == 6))
            FUZZ_CHECK(r < 0);
    }
    vt->conn_free(conn);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 + FERNET_KEY_LEN)
        return 0;
    struct fuzz_in in = {data, size};
    uint8_t hdr = fuzz_u8(&in);
    struct fernet_key k;
    size_t n;
    const uint8_t *raw = fuzz_bytes(&in, FERNET_KEY_LEN, &n);
    memcpy(k.signing, raw, 16);
    memcpy(k.encryption, raw + 16, 16);
    for (int i = 0; i < 16; i++) {
        other.signing[i] = (uint8_t)~k.signing[i];
        other.encryption[i] = k.encryption[i];
    }
    size_t np = parse(&in, &k);
    if (hdr & 1)
        fuzz_udp(np, &k);
    else
        fuzz_tcp(np, hdr >> 1, &k);
    return 0;
}
