/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the connection engine's byte pump (conn.c) in the server role, under the
 * server's own policy (service.c), driven as the I/O models drive it, with fuzz-chosen bytes,
 * read sizes, partial sends, clock steps, EOF and socket events; plain, lab-fernet and
 * secure.
 *
 * data[0]: bits 0-1 the protocol (plain, lab-fernet, secure), bit 2 --allow-shutdown any
 * (else none), bit 3 an idle timeout (5 s), bit 4 a handshake timeout (3 s), bit 5 a record
 * timeout (2 s), bits 6-7 the high-water mark and read size (scaled down from the server's
 * so that back-pressure is reached by small inputs). data[1]: bits 0-1 the PROXY stage
 * (--proxy-protocol): 1 the peer is a trusted proxy and its stream opens with one of six
 * valid headers (bits 2-4: v1 TCP4, TCP6, UNKNOWN; v2 IPv4 with TLVs, IPv6, LOCAL), 2 the
 * peer is not trusted (its bytes are the ops' alone), else off. Then ops, each an op byte (low 3
 * bits the kind, high 5 bits its argument a): 0 the peer sends a message: u8 length + bytes (plain:
 * the bytes 8^(a&3) times; a record protocol: the peer's own client conn seals it, once its
 * handshake is done); 1 the driver feeds the engine up to 1 + a*a*8 bytes (conn_feed); 2 the driver
 * reads up to 1 + a*a*8 bytes (conn_read_buf, conn_read_commit); 3 the driver sends up to a*a*4
 * bytes (0: all it may) of what the engine owes; 4 the clock moves a*a*8 ms (a = 31: 400 s), then
 * conn_on_time; 5 the peer half-closes (delivered as a driver sees it: once every byte it sent was
 * read); 6 u8 length + raw bytes the peer sends as they are (for a record protocol: forged); 7 a
 * socket event: a receive error, a send error, a hang-up, shutdown, or abort. Afterwards the
 * connection is run to its end as a driver would: everything sent and read, EOF, time to each
 * deadline. The peer's client conn reads everything the server sends. Properties:
 *   - bounded: output within the server's cap, input within its cap, at every step;
 *   - no spin: after conn_on_time(now) the deadline lies ahead; a connection that wants to
 *     write has bytes to send or is pausing; one that wants to read takes bytes or stops
 *     wanting to; every connection closes;
 *   - plain: what was sent is always a prefix of the echo the rules give for the bytes the
 *     engine took (every byte at once, `exit` ends it, a refused `shutdown` adds the refusal
 *     line); record protocols: the peer's client decodes every byte the server sent, and the
 *     messages are a prefix of the echoes the rules give (the refusal instead of `shutdown`,
 *     nothing after `exit`);
 *   - and exactly that echo, all of it, when the connection ended by EOF or `exit` without
 *     faults, forged bytes, timeouts, socket events or an accepted shutdown;
 *   - behind a trusted proxy: the header's bytes are never echoed nor seen by the protocol
 *     (the echo is the rules' for the bytes after it), and a connection that ended cleanly
 *     logged the client the header names as its peer (the proxy itself for LOCAL and
 *     UNKNOWN). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>

#include "fuzz_proto.h"
#include "fuzz_util.h"
#include "proto.h"
#include "proxy_hdr.h"
#include "service.h"

#define MAX_TX   (1 << 20)
#define MAX_WIRE (MAX_TX + (1 << 18))
#define MAX_MSGS 4096
#define T0       1000000u

static const struct proto_vt *const vts[3] = {&proto_plain, &proto_lab_fernet, &proto_secure};
static void *sctx[3], *cctx[3];
static const size_t highs[4] = {64, 1024, 16384, SERVER_OUT_HIGH};
static const size_t chunks[4] = {7, 512, 4096, SERVER_READ_CHUNK};

static struct {
    struct server srv;
    struct server_conn sc;
    int pi;
    const struct proto_vt *vt;
    uint64_t now;
    /* peer -> server: every byte the peer sent; txoff: how many the engine took */
    uint8_t tx[MAX_TX];
    size_t txlen, txoff;
    /* server -> peer */
    uint8_t wire[MAX_WIRE];
    size_t wirelen, client_fed;
    /* plain: the echo the rules give for the bytes taken so far */
    uint8_t want[MAX_WIRE];
    size_t wantlen;
    uint8_t line[16];
    size_t linelen;
    bool stopped;
    /* record protocols: the peer's client and the messages it sealed, in order */
    void *client;
    struct buf cout;
    struct buf_marks cmarks;
    uint8_t msgbuf[MAX_TX];
    size_t msgoff[MAX_MSGS + 1], msgend[MAX_MSGS]; /* in msgbuf; where each ends in tx */
    size_t nmsgs, nsealed, ngot;
    bool eof, forged, event, begun;
    /* The PROXY stage: bytes of the header at the front of tx not yet taken, and the peer
     * its header names. */
    size_t hdr_left;
    const char *hdr_peer;
} R;

/* Valid headers a trusted proxy may open with, and the peer each names. */
static const struct {
    const char *bytes;
    size_t len;
    const char *peer;
} headers[6] = {
    {"PROXY TCP4 203.0.113.9 192.0.2.1 5555 9090\r\n", 44, "203.0.113.9:5555"},
    {"PROXY TCP6 2001:db8::7 2001:db8::1 49153 80\r\n", 45, "[2001:db8::7]:49153"},
    {"PROXY UNKNOWN\r\n", 15, "127.0.0.1:40000"},
    {"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x14\xc6\x33\x64\x05\xc0\x00\x02\x01\x04\xd2"
     "\x00\x50\x01\x00\x02h2\x04\x00\x00",
     36, "198.51.100.5:1234"},
    {"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x09"
     "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01\x30\x39\x00\x50",
     52, "[2001:db8::9]:12345"},
    {"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16, "127.0.0.1:40000"},
};

/* SECHO_FUZZ_TRACE=1: each op's effect on stderr, to read a failing input. */
static bool trace;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    trace = getenv("SECHO_FUZZ_TRACE") != NULL;
    fuzz_proto_pairs(vts, 3, sctx, cctx);
    return 0;
}

/* ---- the rules ---- */

/* What the policy does with a whole message m (records) or line (plain, with its '\n'). */
static enum server_action rule(const uint8_t *m, size_t n)
{
    if (R.pi == 0) {
        if (n > 0 && m[n - 1] == '\n')
            n--;
        if (n > 0 && m[n - 1] == '\r')
            n--;
    }
    if (n == 4 && memcmp(m, "exit", 4) == 0)
        return ACT_EXIT;
    if (n != 8 || memcmp(m, "shutdown", 8) != 0)
        return ACT_ECHO;
    /* secure: no --admins list, so nobody may; plain and lab: --allow-shutdown. */
    return R.pi != 2 && R.srv.conf.allow_shutdown == ALLOW_ANY ? ACT_SHUTDOWN : ACT_DENIED;
}

/* plain: the engine took tx[txoff..txoff+n); extends the echo the rules give. */
static void plain_took(size_t n)
{
    static const char denied[] = SERVER_DENIED_TEXT "\n";
    for (size_t i = 0; i < n && !R.stopped; i++) {
        uint8_t b = R.tx[R.txoff + i];
        R.want[R.wantlen++] = b;
        /* Only lines of up to 10 bytes can be commands; longer ones are kept short. */
        if (R.linelen < sizeof(R.line))
            R.line[R.linelen] = b;
        R.linelen++;
        if (b != '\n')
            continue;
        enum server_action act = R.linelen <= sizeof(R.line) ? rule(R.line, R.linelen) : ACT_ECHO;
        R.linelen = 0;
        if (act == ACT_EXIT)
            R.stopped = true;
        else if (act == ACT_DENIED) {
            memcpy(R.want + R.wantlen, denied, sizeof(denied) - 1);
            R.wantlen += sizeof(denied) - 1;
        } else if (act == ACT_SHUTDOWN)
            R.event = true; /* the model stops the connection: where depends on timing */
    }
}

static void took(size_t n)
{
    FUZZ_CHECK(n <= R.txlen - R.txoff);
    /* A trusted proxy's header: consumed, never echoed. */
    size_t h = R.hdr_left < n ? R.hdr_left : n;
    R.hdr_left -= h;
    R.txoff += h;
    n -= h;
    if (R.pi == 0)
        plain_took(n);
    R.txoff += n;
}

/* Records: message k's echo by the rules; false past an `exit`. */
static bool echo_of(size_t k, const uint8_t **p, size_t *n)
{
    for (size_t i = 0; i <= k; i++) {
        const uint8_t *m = R.msgbuf + R.msgoff[i];
        size_t len = R.msgoff[i + 1] - R.msgoff[i];
        enum server_action act = rule(m, len);
        if (i == k) {
            if (act == ACT_DENIED) {
                *p = (const uint8_t *)SERVER_DENIED_TEXT;
                *n = sizeof(SERVER_DENIED_TEXT) - 1;
            } else {
                *p = m;
                *n = len;
            }
            return true;
        }
        if (act == ACT_EXIT)
            return false;
    }
    return false;
}

/* ---- the peer ---- */

static void tx_add(const uint8_t *p, size_t n)
{
    if (n > MAX_TX - R.txlen)
        n = MAX_TX - R.txlen;
    memcpy(R.tx + R.txlen, p, n);
    R.txlen += n;
}

/* Moves what the client wrote (handshake, records) onto the peer's side of the wire. */
static void client_flush(void)
{
    if (!buf_empty(&R.cout))
        tx_add(buf_head(&R.cout), buf_len(&R.cout));
    buf_reset(&R.cout);
}

/* The client seals messages queued before its handshake finished. */
static void client_seal(void)
{
    while (R.nsealed < R.nmsgs && R.vt->conn_ready(R.client) && !R.eof) {
        size_t k = R.nsealed;
        int r = R.vt->conn_write(R.client, R.msgbuf + R.msgoff[k], R.msgoff[k + 1] - R.msgoff[k],
                                 &R.cout);
        FUZZ_CHECK(r == 0);
        client_flush();
        R.msgend[k] = R.txlen;
        R.nsealed++;
    }
}

static void peer_message(const uint8_t *p, size_t n, unsigned a)
{
    if (R.eof)
        return;
    if (R.pi == 0) {
        for (unsigned i = 0, reps = 1U << (3 * (a & 3)); i < reps; i++)
            tx_add(p, n);
        return;
    }
    if (R.nmsgs == MAX_MSGS)
        return;
    size_t len = n * ((a & 3) + 1);
    if (len > proto_max_msg(R.vt, false) || R.msgoff[R.nmsgs] + len > MAX_TX)
        return;
    for (unsigned i = 0; i <= (a & 3); i++)
        memcpy(R.msgbuf + R.msgoff[R.nmsgs] + i * n, p, n);
    R.msgoff[R.nmsgs + 1] = R.msgoff[R.nmsgs] + len;
    R.nmsgs++;
    client_seal();
}

/* The client reads what reached it. A lab-fernet client is given whole tokens (what arrived
 * up to a pause mark: the notebook's recv(1024) per token); the others any split. */
static void client_read(bool boundary)
{
    if (R.pi == 0)
        return;
    /* Called until it needs more, even with nothing new: it may hold whole tokens. */
    for (;;) {
        if (R.pi == 1 && !boundary && R.vt->conn_ready(R.client))
            break; /* the rest waits for the end of its token */
        struct proto_msg m;
        size_t n = R.wirelen - R.client_fed;
        int r = R.vt->conn_read(R.client, R.wire + R.client_fed, &n, &R.cout, &m);
        FUZZ_CHECK(r >= 0); /* the server sends nothing its peer cannot read */
        FUZZ_CHECK(n <= R.wirelen - R.client_fed);
        R.client_fed += n;
        client_flush();
        if (r == PROTO_HANDSHAKE)
            client_seal();
        if (r == PROTO_MSG) {
            const uint8_t *e;
            size_t en;
            FUZZ_CHECK(m.first && m.last);
            FUZZ_CHECK(echo_of(R.ngot, &e, &en));
            FUZZ_CHECK(m.len == en && (en == 0 || memcmp(m.data, e, en) == 0));
            R.ngot++;
        }
        if (r == PROTO_NEED_MORE)
            break;
    }
}

/* ---- the driver ---- */

static struct conn *C(void)
{
    return &R.sc.c;
}

static void check_bounds(void)
{
    FUZZ_CHECK(buf_len(&C()->out) <= SERVER_OUT_LIMIT);
    FUZZ_CHECK(buf_len(&C()->in) <= SERVER_IN_LIMIT);
    if (conn_closed(C()))
        FUZZ_CHECK(conn_wants(C()) == CONN_WANT_CLOSE);
    if (R.pi == 0) {
        FUZZ_CHECK(R.wirelen <= R.wantlen && memcmp(R.wire, R.want, R.wirelen) == 0);
    }
}

/* The model's reaction to a shutdown the policy accepted. */
static void model_step(void)
{
    if (atomic_load(&R.srv.stopping) && !R.begun) {
        R.begun = true;
        R.event = true;
        conn_begin_shutdown(C(), R.now, R.now + SERVER_DRAIN_MS);
    }
    if (conn_wants(C()) & CONN_WANT_SHUT_WR)
        conn_shut_done(C());
}

static void do_feed(size_t max)
{
    size_t avail = R.txlen - R.txoff;
    if (avail == 0 || R.eof)
        return;
    bool wanted = conn_wants(C()) & CONN_WANT_READ;
    size_t n = conn_feed(C(), R.tx + R.txoff, max < avail ? max : avail, R.now);
    took(n);
    if (wanted && n == 0 && (conn_wants(C()) & CONN_WANT_READ)) {
        /* Else a driver would spin: asked to read, taking nothing. */
        n = conn_feed(C(), R.tx + R.txoff, max < avail ? max : avail, R.now);
        FUZZ_CHECK(n > 0);
        took(n);
    }
}

static void do_read(size_t max)
{
    size_t avail = R.txlen - R.txoff;
    if (avail == 0 || R.eof)
        return;
    uint8_t *p;
    size_t room = conn_read_buf(C(), R.now, &p);
    if (room == 0) {
        /* Else a driver would spin: asked to read, offered no room. (It may have just
         * failed: then the room is for input it discards.) */
        FUZZ_CHECK(!(conn_wants(C()) & CONN_WANT_READ) || conn_read_buf(C(), R.now, &p) > 0);
        return;
    }
    size_t n = room < max ? room : max;
    if (n > avail)
        n = avail;
    memcpy(p, R.tx + R.txoff, n);
    took(n);
    conn_read_commit(C(), n, R.now);
}

static void do_send(size_t max)
{
    size_t total = 0;
    const uint8_t *p;
    size_t n;
    bool wanted = conn_wants(C()) & CONN_WANT_WRITE;
    bool boundary = false, any = false;
    while (total < max && (n = conn_out_peek(C(), R.now, &p)) > 0) {
        size_t k = n < max - total ? n : max - total;
        FUZZ_CHECK(R.wirelen + k <= MAX_WIRE);
        memcpy(R.wire + R.wirelen, p, k);
        R.wirelen += k;
        total += k;
        boundary = k == n;
        any = true;
        conn_out_sent(C(), k, R.now);
    }
    if (wanted && !any)
        FUZZ_CHECK(conn_deadline(C()) > R.now); /* nothing to send: a pause runs */
    if (any)
        client_read(boundary);
}

static void do_time(uint64_t step)
{
    R.now += step;
    conn_on_time(C(), R.now);
    FUZZ_CHECK(conn_deadline(C()) > R.now);
}

/* The peer half-closes: a driver learns it from a read once every byte before it is in. */
static void do_eof(void)
{
    uint8_t *p;
    if (R.eof || R.txoff < R.txlen || conn_read_buf(C(), R.now, &p) == 0)
        return;
    R.eof = true;
    conn_on_eof(C(), R.now);
}

static void do_event(unsigned a)
{
    uint8_t *p;
    R.event |= a % 6 < 5;
    switch (a % 6) {
    case 0:
        if (conn_read_buf(C(), R.now, &p) > 0)
            conn_on_recv_error(C(), a & 8 ? ECONNRESET : EIO);
        break;
    case 1:
        conn_on_send_error(C(), a & 8 ? EPIPE : EIO);
        break;
    case 2:
        conn_on_hangup(C(), a & 8 ? ECONNRESET : 0);
        break;
    case 3:
        conn_begin_shutdown(C(), R.now, R.now + (a & 8 ? 0 : SERVER_DRAIN_MS));
        break;
    case 4:
        conn_abort(C());
        break;
    default: /* nothing happens */
        break;
    }
}

/* Runs the connection to its end as a driver would. Returns false if it never closes. */
static bool finish(void)
{
    for (int i = 0; i < 100000; i++) {
        model_step();
        check_bounds();
        if (conn_closed(C()))
            return true;
        unsigned want = conn_wants(C());
        if (trace)
            fprintf(
                stderr,
                "finish: want %u state %d tx %zu/%zu in %zu out %zu wire %zu got %zu now %llu\n",
                want, C()->state, R.txoff, R.txlen, buf_len(&C()->in), buf_len(&C()->out),
                R.wirelen, R.ngot, (unsigned long long)R.now);
        if (want & CONN_WANT_WRITE) {
            do_send(SIZE_MAX);
            continue;
        }
        if ((want & CONN_WANT_READ) && R.txoff < R.txlen && !R.eof) {
            size_t before = R.txoff;
            do_read(SIZE_MAX);
            if (R.txoff != before)
                continue;
        }
        /* Everything sent that could be, everything read: the peer half-closes when it has
         * nothing more to say (its client flushed) and nothing is owed to it. */
        if ((want & CONN_WANT_READ) && R.txoff == R.txlen && !R.eof && buf_empty(&C()->out)) {
            do_eof();
            if (R.eof)
                continue;
        }
        uint64_t due = conn_deadline(C());
        if (due == CONN_NO_DEADLINE)
            return false; /* waits for nothing that will come */
        do_time(due > R.now ? due - R.now : 0);
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct fuzz_in in = {data, size};
    uint8_t hdr = fuzz_u8(&in);
    uint8_t pmode = fuzz_u8(&in);
    R.pi = (hdr & 3) % 3;
    R.vt = vts[R.pi];
    R.txlen = R.txoff = R.wirelen = R.client_fed = R.wantlen = R.linelen = 0;
    R.nmsgs = R.nsealed = R.ngot = 0;
    R.msgoff[0] = 0;
    R.stopped = R.eof = R.forged = R.event = R.begun = false;
    R.now = T0;
    R.hdr_left = 0;
    R.hdr_peer = NULL;

    struct server *srv = &R.srv;
    memset(srv, 0, sizeof(*srv));
    srv->conf.proto = R.vt;
    srv->conf.max_conns = 10;
    srv->conf.allow_shutdown = hdr & 4 ? ALLOW_ANY : ALLOW_NONE;
    srv->conf.idle_timeout_ms = hdr & 8 ? 5000 : 0;
    srv->conf.handshake_timeout_ms = hdr & 16 ? 3000 : 0;
    srv->conf.record_timeout_ms = hdr & 32 ? 2000 : 0;
    srv->conf.popts.max_msg = 65535;
    static struct net_cidr trusted;
    if ((pmode & 3) == 1 || (pmode & 3) == 2) {
        FUZZ_CHECK(net_cidr_parse((pmode & 3) == 1 ? "127.0.0.0/8" : "10.0.0.0/8", &trusted));
        srv->conf.proxy_protocol = true;
        srv->conf.trusted = &trusted;
        srv->conf.ntrusted = 1;
    }
    if ((pmode & 3) == 1) {
        unsigned k = ((unsigned)pmode >> 2 & 7) % 6;
        tx_add((const uint8_t *)headers[k].bytes, headers[k].len);
        R.hdr_left = headers[k].len;
        R.hdr_peer = headers[k].peer;
    }
    srv->pctx = sctx[R.pi];
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->next_id, 1);
    atomic_init(&srv->nconns, 0);
    pthread_mutex_init(&srv->wake_mu, NULL);
    struct net_addr peer = {.len = sizeof(struct sockaddr_in)};
    struct sockaddr_in *sin = (struct sockaddr_in *)&peer.ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(40000);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_CHECK(server_conn_init(&R.sc, srv, &peer, R.now) == 0);
    /* Scaled-down limits (the engine reads them at every step). */
    C()->conf.out_high = highs[hdr >> 6];
    C()->conf.read_chunk = chunks[hdr >> 6];

    buf_init(&R.cout, 1 << 17);
    R.client = NULL;
    if (R.pi != 0) {
        if (R.vt->flags & PROTO_F_PACED)
            buf_attach_marks(&R.cout, &R.cmarks); /* its records carry pause marks too */
        FUZZ_CHECK(proto_conn_new(R.vt, cctx[R.pi], PROTO_CLIENT, &R.cout, &R.client) == 0);
        client_flush();
    }

    while (fuzz_more(&in)) {
        uint8_t op = fuzz_u8(&in);
        unsigned a = op >> 3;
        size_t n;
        const uint8_t *p;
        switch (op & 7) {
        case 0:
            p = fuzz_bytes(&in, fuzz_u8(&in), &n);
            peer_message(p, n, a);
            break;
        case 1:
            do_feed(1 + (size_t)a * a * 8);
            break;
        case 2:
            do_read(1 + (size_t)a * a * 8);
            break;
        case 3:
            do_send(a ? (size_t)a * a * 4 : SIZE_MAX);
            break;
        case 4: {
            /* A timeout that cuts the connection short (idle, record, handshake, a drain
             * that ran out) is a fault of the run, not of the rules. */
            enum conn_state st = C()->state;
            bool failed = C()->failed;
            do_time(a == 31 ? 400000 : (uint64_t)a * a * 8);
            R.event |= C()->state != st || C()->failed != failed;
            break;
        }
        case 5:
            do_eof();
            break;
        case 6:
            p = fuzz_bytes(&in, fuzz_u8(&in), &n);
            if (!R.eof) {
                tx_add(p, n);
                R.forged |= R.pi != 0;
            }
            break;
        default:
            do_event(a);
            break;
        }
        model_step();
        check_bounds();
        if (trace)
            fprintf(stderr,
                    "op %u a=%u: state %d reason %d failed %d tx %zu/%zu in %zu out %zu (%u marks) "
                    "owed %d wire %zu got %zu\n",
                    op & 7, a, C()->state, C()->reason, C()->failed, R.txoff, R.txlen,
                    buf_len(&C()->in), buf_len(&C()->out), buf_pauses(&C()->out), C()->proto_owed,
                    R.wirelen, R.ngot);
    }
    FUZZ_CHECK(finish());
    if (trace)
        fprintf(
            stderr,
            "end: state %d reason %d failed %d tx %zu/%zu wire %zu/%zu got %zu sealed %zu of %zu\n",
            C()->state, C()->reason, C()->failed, R.txoff, R.txlen, R.wirelen, R.client_fed, R.ngot,
            R.nsealed, R.nmsgs);

    enum conn_reason why = conn_reason(C());
    bool clean = (why == CONN_REASON_EOF || why == CONN_REASON_EXIT) && !C()->failed && !R.forged &&
                 !R.event;
    if (clean && R.hdr_peer)
        FUZZ_CHECK(R.sc.connected && strcmp(R.sc.peer_text, R.hdr_peer) == 0);
    if (clean && R.pi == 0) {
        FUZZ_CHECK(R.wirelen == R.wantlen);
    } else if (clean) {
        /* Every message that reached the server whole came back, up to an `exit`. */
        client_read(true);
        size_t want = 0;
        const uint8_t *e;
        size_t en;
        while (want < R.nsealed && R.msgend[want] <= R.txoff && echo_of(want, &e, &en))
            want++;
        FUZZ_CHECK(R.ngot == want);
    }
    conn_free(C());
    proto_conn_free(R.vt, R.client);
    buf_free(&R.cout);
    pthread_mutex_destroy(&srv->wake_mu);
    return 0;
}
