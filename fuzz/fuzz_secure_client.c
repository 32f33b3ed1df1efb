/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the client role of secure over TCP: the bytes a (malicious) server, or
 * someone on the path, sends the client.
 *
 * data[0]: bits 0-1 the Noise suite the client offers; bits 2-3 the mode:
 *   0 a genuine server (its key pinned with --server-key),
 *   1 an impostor (another key than the pinned one),
 *   2 a genuine server met for the first time (--known-hosts FILE --accept-new),
 *   3 no server at all: data[1] is a read size (0: one read), the rest the bytes the client
 *     reads.
 * In modes 0-2 a real server conn answers the client (the client's bytes reach it
 * unchanged), and the rest of the input is ops on what travels server -> client, each an op
 * byte (low 3 bits the kind, high 5 bits its argument a):
 *   0 deliver the next a*a bytes (a = 0: all) of what the server sent
 *   1 flip bit a&7 of the pending byte at u16 % pending      5 deliver again u8 bytes already
 *   2 deliver u8 length + raw bytes first                       delivered, from u16
 *   3 the server sends a message of u8 length + bytes,        6 the server sends a message of
 *     repeated (a&3)+1 times                                    (a+1)*2048 bytes
 *   4 drop the next a+1 pending bytes                         7 the client sends u8 bytes; the
 *                                                               server echoes what it gets
 * Then everything pending is delivered. Properties:
 *   - the client hands out only what the server sent, in order, never twice: its messages
 *     are always a prefix of the server's, whatever was flipped, dropped, injected or
 *     replayed (and no message at all without the genuine server: impostor, mode 3);
 *   - the handshake completes at most once, never with an impostor, whose intact key is
 *     refused as untrusted; a client that failed stays failed;
 *   - nothing tampered: the handshake completes and every message arrives;
 *   - first contact: the key is added to known_hosts as exactly one line "h:1 KEY", and the
 *     client says so. */
#include <errno.h>

#include "fuzz_util.h"
#include "keys.h"
#include "proto.h"

#define MAX_STREAM (1 << 20)
#define MAX_MSGS   512
#define HOST_ID    "h:1"

static const struct proto_vt *const vt = &proto_secure;
static void *sctx, *ictx, *cpin[4], *ckh;
static char dir[64], khpath[128];

static struct {
    void *client, *server;
    struct buf cout, sout;
    /* server -> client: what the server sent and the client has not been given yet */
    uint8_t pend[MAX_STREAM];
    size_t pendlen;
    /* what the client was given, for replays */
    uint8_t hist[MAX_STREAM];
    size_t histlen;
    /* the server's messages, in order */
    uint8_t msgs[MAX_STREAM];
    size_t msgoff[MAX_MSGS + 1], nmsgs, ngot;
    bool tampered, ready, dead, impostor;
    int first_err;
    char note[512]; /* what the client had to say when its handshake completed */
} R;

static void *make_ctx(enum proto_role role, const struct proto_opts *o)
{
    void *ctx = NULL;
    char err[PROTO_ERRLEN] = "";
    if (vt->ctx_new(o, role, &ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "ctx_new: %s\n", err);
        abort();
    }
    return ctx;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char skey[128], ikey[128];
    fuzz_tmpdir(dir, sizeof(dir));
    snprintf(skey, sizeof(skey), "%s/server.key", dir);
    snprintf(ikey, sizeof(ikey), "%s/impostor.key", dir);
    snprintf(khpath, sizeof(khpath), "%s/known_hosts", dir);
    struct proto_opts so = {.key_file = skey}, io = {.key_file = ikey};
    sctx = make_ctx(PROTO_SERVER, &so);
    ictx = make_ctx(PROTO_SERVER, &io);
    for (int i = 0; i < 4; i++) {
        struct proto_opts co = {.server_key = vt->ctx_identity(sctx), .noise_name = vt->suites[i]};
        cpin[i] = make_ctx(PROTO_CLIENT, &co);
    }
    struct proto_opts ko = {.known_hosts = khpath, .host_id = HOST_ID, .accept_new = true};
    ckh = make_ctx(PROTO_CLIENT, &ko);
    return 0;
}

/* ---- the server side ---- */

static void pend_add(const uint8_t *p, size_t n)
{
    FUZZ_CHECK(R.pendlen + n <= MAX_STREAM);
    memcpy(R.pend + R.pendlen, p, n);
    R.pendlen += n;
}

/* The server sends one message (once its handshake is done). */
static void server_send(const uint8_t *p, size_t n)
{
    if (!vt->conn_ready(R.server) || R.nmsgs == MAX_MSGS ||
        R.msgoff[R.nmsgs] + n > MAX_STREAM / 2 || R.pendlen + n + 64 > MAX_STREAM)
        return;
    FUZZ_CHECK(vt->conn_write(R.server, p, n, &R.sout) == 0);
    pend_add(buf_head(&R.sout), buf_len(&R.sout));
    buf_reset(&R.sout);
    memcpy(R.msgs + R.msgoff[R.nmsgs], p, n);
    R.msgoff[R.nmsgs + 1] = R.msgoff[R.nmsgs] + n;
    R.nmsgs++;
}

/* What the client sent reaches the server unchanged; what it answers is pending. */
static void to_server(void)
{
    size_t n = buf_len(&R.cout), off = 0;
    if (n == 0)
        return;
    for (;;) {
        struct proto_msg m;
        size_t used = n - off;
        int r = vt->conn_read(R.server, buf_head(&R.cout) + off, &used, &R.sout, &m);
        FUZZ_CHECK(r >= 0); /* the client sends only what a server can read */
        off += used;
        if (!buf_empty(&R.sout)) {
            pend_add(buf_head(&R.sout), buf_len(&R.sout));
            buf_reset(&R.sout);
        }
        if (r == PROTO_MSG) {
            uint8_t copy[65536];
            memcpy(copy, m.data, m.len);
            server_send(copy, m.len); /* the echo */
        }
        if (r == PROTO_NEED_MORE)
            break;
    }
    buf_reset(&R.cout);
}

/* ---- the client side ---- */

static void deliver(const uint8_t *p, size_t n)
{
    if (n > 0 && R.histlen + n <= MAX_STREAM) {
        memcpy(R.hist + R.histlen, p, n);
        R.histlen += n;
    }
    size_t off = 0;
    for (;;) {
        struct proto_msg m;
        size_t used = n - off;
        int r = vt->conn_read(R.client, p + off, &used, &R.cout, &m);
        FUZZ_CHECK(used <= n - off);
        off += used;
        if (R.dead)
            FUZZ_CHECK(r < 0); /* a failed client stays failed */
        if (r < 0) {
            if (!R.dead)
                R.first_err = r;
            R.dead = true;
            break;
        }
        if (r == PROTO_HANDSHAKE) {
            FUZZ_CHECK(!R.ready && !R.impostor && vt->conn_ready(R.client));
            R.ready = true;
            const char *note = vt->conn_error(R.client);
            snprintf(R.note, sizeof(R.note), "%s", note ? note : "");
        } else if (r == PROTO_MSG) {
            /* Only the server's own messages, in order. */
            FUZZ_CHECK(R.ready && m.first && m.last && R.ngot < R.nmsgs);
            size_t len = R.msgoff[R.ngot + 1] - R.msgoff[R.ngot];
            FUZZ_CHECK(m.len == len &&
                       (len == 0 || memcmp(m.data, R.msgs + R.msgoff[R.ngot], len) == 0));
            R.ngot++;
        } else {
            FUZZ_CHECK(off == n); /* NEED_MORE takes everything */
            break;
        }
    }
    if (!R.dead)
        to_server();
    buf_reset(&R.cout);
}

static void deliver_pending(size_t n)
{
    if (n > R.pendlen)
        n = R.pendlen;
    static uint8_t chunk[MAX_STREAM];
    memcpy(chunk, R.pend, n);
    memmove(R.pend, R.pend + n, R.pendlen - n);
    R.pendlen -= n;
    deliver(chunk, n);
}

/* ---- modes ---- */

static void fuzz_raw(struct fuzz_in *in, void *cctx)
{
    size_t chunk = fuzz_u8(in);
    FUZZ_CHECK(proto_conn_new(vt, cctx, PROTO_CLIENT, &R.cout, &R.client) == 0);
    buf_reset(&R.cout);
    R.impostor = true; /* nobody holds the pinned key here */
    while (fuzz_more(in)) {
        size_t n;
        const uint8_t *p = fuzz_bytes(in, chunk ? chunk : in->n, &n);
        size_t off = 0;
        while (!R.dead) {
            struct proto_msg m;
            size_t used = n - off;
            int r = vt->conn_read(R.client, p + off, &used, &R.cout, &m);
            FUZZ_CHECK(used <= n - off && r != PROTO_MSG && r != PROTO_HANDSHAKE);
            off += used;
            if (r < 0)
                R.dead = true;
            else if (off == n)
                break;
        }
        if (R.dead) {
            struct proto_msg m;
            size_t used = n;
            FUZZ_CHECK(vt->conn_read(R.client, p, &used, &R.cout, &m) < 0);
        }
        buf_reset(&R.cout);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct fuzz_in in = {data, size};
    uint8_t hdr = fuzz_u8(&in);
    int mode = (hdr >> 2) & 3;
    R.pendlen = R.histlen = R.nmsgs = R.ngot = 0;
    R.msgoff[0] = 0;
    R.tampered = R.ready = R.dead = false;
    R.impostor = mode == 1;
    R.first_err = 0;
    R.client = R.server = NULL;
    buf_init(&R.cout, 1 << 17);
    buf_init(&R.sout, 1 << 17);
    void *cctx = mode == 2 ? ckh : cpin[hdr & 3];

    if (mode == 3) {
        fuzz_raw(&in, cctx);
        goto out;
    }
    if (mode == 2)
        unlink(khpath); /* first contact */
    FUZZ_CHECK(proto_conn_new(vt, mode == 1 ? ictx : sctx, PROTO_SERVER, &R.sout, &R.server) == 0);
    FUZZ_CHECK(proto_conn_new(vt, cctx, PROTO_CLIENT, &R.cout, &R.client) == 0);
    to_server();

    while (fuzz_more(&in)) {
        uint8_t op = fuzz_u8(&in);
        unsigned a = op >> 3;
        size_t n, at;
        const uint8_t *p;
        uint8_t big[65536];
        switch (op & 7) {
        case 0:
            deliver_pending(a ? (size_t)a * a : R.pendlen);
            break;
        case 1:
            at = fuzz_u16(&in);
            if (R.pendlen) {
                R.pend[at % R.pendlen] ^= (uint8_t)(1U << (a & 7));
                R.tampered = true;
            }
            break;
        case 2:
            p = fuzz_bytes(&in, fuzz_u8(&in), &n);
            R.tampered = true;
            deliver(p, n);
            break;
        case 3:
            p = fuzz_bytes(&in, fuzz_u8(&in), &n);
            for (unsigned i = 0; i <= (a & 3); i++)
                memcpy(big + i * n, p, n);
            server_send(big, n * ((a & 3) + 1));
            break;
        case 4:
            n = a + 1 < R.pendlen ? a + 1 : R.pendlen;
            memmove(R.pend, R.pend + n, R.pendlen - n);
            R.pendlen -= n;
            R.tampered |= n > 0;
            break;
        case 5:
            at = fuzz_u16(&in);
            n = fuzz_u8(&in);
            if (R.histlen) {
                at %= R.histlen;
                if (n > R.histlen - at)
                    n = R.histlen - at;
                static uint8_t again[256];
                memcpy(again, R.hist + at, n);
                R.tampered |= n > 0;
                deliver(again, n);
            }
            break;
        case 6:
            n = ((size_t)a + 1) * 2048;
            if (n > vt->stream_max)
                n = vt->stream_max;
            for (size_t i = 0; i < n; i++)
                big[i] = (uint8_t)(i * 7 + a);
            server_send(big, n);
            break;
        default:
            p = fuzz_bytes(&in, fuzz_u8(&in), &n);
            if (R.ready && !R.dead) {
                FUZZ_CHECK(vt->conn_write(R.client, p, n, &R.cout) == 0);
                to_server();
            }
            break;
        }
    }
    deliver_pending(R.pendlen);

    if (R.impostor) {
        FUZZ_CHECK(!R.ready && R.ngot == 0);
        if (!R.tampered)
            FUZZ_CHECK(R.dead && R.first_err == PROTO_E_TRUST);
    } else if (!R.tampered) {
        FUZZ_CHECK(R.ready && !R.dead && R.ngot == R.nmsgs);
    }
    if (mode == 2 && R.ready) {
        /* First contact with --accept-new: one line for the host, and the client says so. */
        char want[128], got[256], b64[KEYS_B64LEN + 1];
        uint8_t key[KEYS_LEN];
        FUZZ_CHECK(keys_b64_decode(vt->ctx_identity(sctx), KEYS_B64LEN, key));
        keys_b64_encode(key, b64);
        int wn = snprintf(want, sizeof(want), "%s %s\n", HOST_ID, b64);
        FUZZ_CHECK(fuzz_read_file(khpath, got, sizeof(got)) == wn && memcmp(got, want, wn) == 0);
        FUZZ_CHECK(strstr(R.note, "Permanently added") != NULL);
    }
out:
    proto_conn_free(vt, R.client);
    proto_conn_free(vt, R.server);
    buf_free(&R.cout);
    buf_free(&R.sout);
    return 0;
}
