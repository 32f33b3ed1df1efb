/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the TCP client's reading of echoes (client_echo.c) behind its connection
 * engine (conn.c, client role), as client.c drives them: the lines queued, the echoes
 * accounted for, what is printed and where each printed line ends; plain (a byte stream),
 * lab-fernet and secure (records, long lines split).
 *
 * data[0]: bits 0-1 the protocol (plain, lab-fernet, secure; 3 is plain). Then ops, each an
 * op byte (low 3 bits the kind, high 5 bits its argument a):
 *   0 the client queues a line: a = 1 `exit`, 2 `shutdown`, 3 empty, 4 a line of u8*64 'x'
 *     bytes (several records), else u8 length + bytes (a '\n' in them ends the line there);
 *   1 what the client sent reaches the server, which echoes each message (or fragment) it
 *     decodes, as an echo server does;
 *   2 the client is given the next a*a bytes (a = 0: all) of what the server sent;
 *   3 the server sends a message nobody asked for: u8 length + bytes;
 *   4 the server sends the refusal of `shutdown` (as a line on plain, a record otherwise);
 *   5 u8 length + raw bytes reach the client as they are (forged);
 *   6 bit a&7 of the next pending byte flips;
 *   7 the server half-closes (delivered once everything it sent was given).
 * Afterwards everything is sent, echoed and given. Properties:
 *   - the account never goes negative, a line's records are never fewer than one (but for
 *     one queued in part, whose echoes may all be in), and the prompt is due only when
 *     nothing is owed;
 *   - a line longer than the engine takes at once is queued in parts, each at least a
 *     record, the rest going once the engine takes more;
 *   - the client never queues more than CLIENT_LINES_IN_FLIGHT lines;
 *   - with an honest echo server (no op 3-6), what the client printed (each echo, and a
 *     newline where the client ends a line) is always a prefix of the lines it sent, each
 *     ended by a newline; and at the end exactly those lines, with nothing owed. */
#include <errno.h>

#include "client_echo.h"
#include "fuzz_proto.h"
#include "fuzz_util.h"
#include "proto.h"
#include "service.h"

#define MAX_WIRE  (1 << 20)
#define MAX_PRINT (1 << 20)
#define T0        1000000u

static const struct proto_vt *const vts[3] = {&proto_plain, &proto_lab_fernet, &proto_secure};
static void *sctx[3], *cctx[3];
static bool trace; /* SECHO_FUZZ_TRACE=1: what happens, on stderr, to read a failing input */
#define TRACE(...)                                                                                 \
    do {                                                                                           \
        if (trace)                                                                                 \
            fprintf(stderr, __VA_ARGS__);                                                          \
    } while (0)

static struct {
    const struct proto_vt *vt;
    struct conn client;
    struct client_echo echo;
    void *server;           /* the server's protocol conn */
    struct buf sout;        /* what the server's protocol appends */
    struct buf_marks marks; /* its pause marks (lab-fernet paces its key); ignored here */
    uint8_t pend[MAX_WIRE]; /* server -> client, not given yet */
    size_t pendlen;
    bool server_eof;
    /* what the client should print with an honest server: every line and its '\n' */
    uint8_t want[MAX_PRINT];
    size_t wantlen;
    uint8_t got[MAX_PRINT];
    size_t gotlen;
    bool tampered;
    uint64_t now; /* the clock, ms: it moves only for the client's pacing (lab-fernet) */
} R;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    trace = getenv("SECHO_FUZZ_TRACE") != NULL;
    fuzz_proto_pairs(vts, 3, sctx, cctx);
    return 0;
}

/* ---- the client's policy, as client.c's ---- */

static void check_account(void)
{
    FUZZ_CHECK(R.echo.owed >= 0);
    FUZZ_CHECK(R.echo.parts_len <= CLIENT_LINES_IN_FLIGHT);
    /* every line is owed a record, but the one queued in part may have all its echoes */
    for (unsigned i = 0; i < R.echo.parts_len; i++)
        FUZZ_CHECK(R.echo.parts[(R.echo.parts_head + i) % CLIENT_LINES_IN_FLIGHT] >= 1 ||
                   (R.echo.mid_line && i == R.echo.parts_len - 1));
}

static void got_add(const uint8_t *p, size_t n)
{
    FUZZ_CHECK(R.gotlen + n <= MAX_PRINT);
    memcpy(R.got + R.gotlen, p, n);
    R.gotlen += n;
    if (!R.tampered)
        FUZZ_CHECK(R.gotlen <= R.wantlen && memcmp(R.got, R.want, R.gotlen) == 0);
}

static int on_message(void *arg, struct conn *c, const struct proto_msg *m, uint64_t now)
{
    (void)arg;
    (void)c;
    (void)now;
    bool newline;
    bool due = client_echo_on_message(&R.echo, m, &newline);
    TRACE("client: message of %zu bytes%s, owed %lld\n", m->len, m->last ? " (last)" : "",
          R.echo.owed);
    check_account();
    if (due)
        FUZZ_CHECK(R.echo.owed == 0);
    if (m->len > 0)
        got_add(m->data, m->len);
    if (newline)
        got_add((const uint8_t *)"\n", 1);
    return 0;
}

static bool awaiting(void *arg, const struct conn *c)
{
    (void)arg;
    (void)c;
    return R.echo.owed > 0;
}

static const struct conn_ops ops = {.on_message = on_message, .awaiting = awaiting};

/* ---- the server ---- */

static void pend_add(const uint8_t *p, size_t n)
{
    if (R.pendlen + n > MAX_WIRE)
        n = MAX_WIRE - R.pendlen;
    memcpy(R.pend + R.pendlen, p, n);
    R.pendlen += n;
}

static void server_flush(void)
{
    pend_add(buf_head(&R.sout), buf_len(&R.sout));
    buf_reset(&R.sout);
}

static void server_send(const uint8_t *p, size_t n)
{
    if (!R.vt->conn_ready(R.server) || R.server_eof)
        return;
    TRACE("server: sends %zu bytes\n", n);
    if (R.vt->conn_write(R.server, p, n, &R.sout) == 0)
        server_flush();
    else
        buf_reset(&R.sout);
}

/* What the client owes the wire reaches the server, which echoes what it decodes. */
static void to_server(void)
{
    const uint8_t *p;
    size_t n;
    for (int step = 0; step < 64; step++) {
        n = conn_out_peek(&R.client, R.now, &p);
        uint64_t d = conn_deadline(&R.client);
        if (n == 0 && d != CONN_NO_DEADLINE) {
            /* paused between two tokens: the pause passes */
            if (d > R.now)
                R.now = d;
            conn_on_time(&R.client, R.now);
            continue;
        }
        if (n == 0)
            break;
        size_t off = 0;
        for (;;) { /* until the protocol has taken all it can, held messages included */
            size_t k = n - off;
            struct proto_msg m = {0};
            int r = R.vt->conn_read(R.server, p + off, &k, &R.sout, &m);
            TRACE("server: read %zu of %zu bytes: %d\n", k, n - off, r);
            off += k;
            server_flush();
            if (r == PROTO_MSG && !R.server_eof)
                server_send(m.data, m.len);
            if (r == PROTO_MSG || r == PROTO_HANDSHAKE)
                continue;
            FUZZ_CHECK(r == PROTO_NEED_MORE || r == PROTO_CLOSED || R.tampered);
            break;
        }
        conn_out_sent(&R.client, n, R.now);
    }
    if (conn_wants(&R.client) & CONN_WANT_SHUT_WR)
        conn_shut_done(&R.client);
}

/* The client is given up to n pending bytes (as many as it takes). */
static void to_client(size_t n)
{
    if (n > R.pendlen)
        n = R.pendlen;
    size_t off = 0;
    while (off < n && !conn_closed(&R.client) && (conn_wants(&R.client) & CONN_WANT_READ)) {
        size_t k = conn_feed(&R.client, R.pend + off, n - off, R.now);
        TRACE("client: takes %zu of %zu bytes\n", k, n - off);
        if (k == 0)
            break;
        off += k;
        check_account();
    }
    memmove(R.pend, R.pend + off, R.pendlen - off);
    R.pendlen -= off;
    if (R.server_eof && R.pendlen == 0 && !conn_closed(&R.client) && !conn_peer_closed(&R.client))
        conn_on_eof(&R.client, R.now);
}

/* ---- the client's lines ---- */

static void queue_line(const uint8_t *p, size_t n)
{
    if (!conn_ready(&R.client) || R.echo.leaving || !client_echo_room(&R.echo) ||
        !conn_can_send(&R.client) || R.wantlen + n + 1 > MAX_PRINT)
        return;
    const uint8_t *nl = n ? memchr(p, '\n', n) : NULL;
    if (nl)
        n = (size_t)(nl - p);
    /* What the client should print for it, there before any echo of it can come. */
    size_t len = n > 0 && p[n - 1] == '\r' ? n - 1 : n;
    memcpy(R.want + R.wantlen, p, len);
    R.wantlen += len;
    R.want[R.wantlen++] = '\n';
    size_t off = 0, taken = 0;
    int r;
    for (int step = 0;; step++) {
        r = client_echo_send_line(&R.echo, &R.client, R.vt, p + off, n - off, &taken);
        TRACE("client: queues %zu of a line's %zu bytes: %d, owed %lld\n", taken, n - off, r,
              R.echo.owed);
        check_account();
        if (r != 0)
            break;
        FUZZ_CHECK(taken > 0 || n == off);
        off += taken;
        if (off == n)
            break;
        /* queued in part: the rest once the engine takes more */
        FUZZ_CHECK(R.echo.mid_line && step < 1000);
        to_server();
        to_client(SIZE_MAX);
        if (!conn_can_send(&R.client)) { /* only a fault stops it (a tampered stream) */
            FUZZ_CHECK(R.tampered || R.server_eof);
            return;
        }
    }
    if (r == CLIENT_ECHO_EMPTY) {
        R.wantlen -= len + 1; /* not sent, so never echoed */
        return;
    }
    FUZZ_CHECK(r == 0 && !R.echo.mid_line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t line[64 * 255];
    struct fuzz_in in = {data, size};
    int pi = fuzz_u8(&in) & 3;
    if (pi == 3)
        pi = 0;
    memset(&R, 0, sizeof(R));
    R.now = T0;
    R.vt = vts[pi];
    const struct conn_conf cf = {
        .vt = R.vt,
        .pctx = cctx[pi],
        .role = PROTO_CLIENT,
        .in_limit = 1 << 20,
        .out_limit = 1 << 20,
        .out_high = 1 << 18,
        .read_chunk = 65536,
    };
    client_echo_init(&R.echo, R.vt->flags & PROTO_F_STREAM_ECHO);
    buf_init(&R.sout, MAX_WIRE);
    buf_attach_marks(&R.sout, &R.marks);
    R.server = calloc(1, R.vt->conn_size);
    FUZZ_CHECK(R.server && R.vt->conn_init(R.server, sctx[pi], PROTO_SERVER, &R.sout) == 0);
    server_flush();
    FUZZ_CHECK(conn_init(&R.client, &cf, &ops, NULL, R.now) == 0);

    while (fuzz_more(&in) && !conn_closed(&R.client)) {
        uint8_t op = fuzz_u8(&in), a = op >> 3;
        size_t n;
        const uint8_t *p;
        switch (op & 7) {
        case 0:
            if (a == 1)
                queue_line((const uint8_t *)"exit", 4);
            else if (a == 2)
                queue_line((const uint8_t *)"shutdown", 8);
            else if (a == 3)
                queue_line((const uint8_t *)"", 0);
            else if (a == 4) {
                n = (size_t)fuzz_u8(&in) * 64;
                memset(line, 'x', n);
                queue_line(line, n);
            } else {
                p = fuzz_bytes(&in, fuzz_u8(&in), &n);
                queue_line(p, n);
            }
            break;
        case 1:
            to_server();
            break;
        case 2:
            to_client(a == 0 ? SIZE_MAX : (size_t)a * a);
            break;
        case 3:
            R.tampered = true;
            p = fuzz_bytes(&in, fuzz_u8(&in), &n);
            server_send(p, n);
            break;
        case 4:
            R.tampered = true;
            if (R.vt->flags & PROTO_F_STREAM_ECHO)
                server_send((const uint8_t *)SERVER_DENIED_TEXT "\n", sizeof(SERVER_DENIED_TEXT));
            else
                server_send((const uint8_t *)SERVER_DENIED_TEXT, sizeof(SERVER_DENIED_TEXT) - 1);
            break;
        case 5:
            R.tampered = true;
            p = fuzz_bytes(&in, fuzz_u8(&in), &n);
            pend_add(p, n);
            break;
        case 6:
            if (R.pendlen > 0) {
                R.tampered = true;
                R.pend[0] ^= (uint8_t)(1u << (a & 7));
            }
            break;
        case 7:
            R.server_eof = true;
            break;
        }
    }
    /* Everything sent, echoed and given. */
    for (int i = 0; i < 8 && !conn_closed(&R.client); i++) {
        to_server();
        to_client(SIZE_MAX);
    }
    if (!R.tampered && !R.server_eof && !conn_closed(&R.client)) {
        FUZZ_CHECK(R.echo.owed == 0 && R.echo.parts_len == 0);
        FUZZ_CHECK(R.gotlen == R.wantlen);
    }
    conn_free(&R.client);
    R.vt->conn_free(R.server);
    free(R.server);
    buf_free(&R.sout);
    return 0;
}
