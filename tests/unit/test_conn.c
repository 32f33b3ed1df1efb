/* SPDX-License-Identifier: MIT */
/* Unit tests for the sans-IO connection engine, both roles: scripted input, a fake clock and a
 * fake socket (a byte sink with a chosen write size and peer window); plain, lab-dh, lab-fernet. */
#include "check.h"
#include "conn.h"
#include "crypto.h"
#include "service.h"
#include "log.h"
#include "proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#define T0 1000000u /* the fake clock's start, ms */

/* One engine under test, the server state it shares, and what a peer would have seen.
 */
struct rig {
    struct server srv;
    struct server_conn sc;
    uint64_t now;
    uint8_t *wire; /* every byte the engine let the "socket" send, in order */
    size_t wirelen, wirecap;
    size_t writes; /* send() calls that moved at least one byte */
    bool shut;     /* the engine asked for (and got) shutdown(SHUT_WR) */
    int init_rc;
};

/* The record timeout rig_start gives the server (0: none, as most tests want). */
static int rig_record_ms;
/* The server key file rig_start gives a secure server; client contexts accept a new key. */
static const char *rig_key_file;
static bool client_accept_new;
/* --proxy-protocol with these --trusted-proxy networks (rig_ntrusted 0: off). */
static struct net_cidr rig_trusted[2];
static int rig_ntrusted;

static void rig_start(struct rig *r, const struct proto_vt *vt, int idle_ms, int hs_ms)
{
    memset(r, 0, sizeof(*r));
    r->srv.conf.proto = vt;
    r->srv.conf.max_conns = 100;
    r->srv.conf.idle_timeout_ms = idle_ms;
    r->srv.conf.handshake_timeout_ms = hs_ms;
    r->srv.conf.record_timeout_ms = rig_record_ms;
    r->srv.conf.allow_shutdown = ALLOW_NONE;
    r->srv.conf.popts.max_msg = 65535;
    r->srv.conf.popts.key_file = rig_key_file;
    r->srv.conf.proxy_protocol = rig_ntrusted > 0;
    r->srv.conf.trusted = rig_trusted;
    r->srv.conf.ntrusted = rig_ntrusted;
    atomic_init(&r->srv.next_id, 1);
    pthread_mutex_init(&r->srv.wake_mu, NULL);
    if (vt->ctx_new) {
        char err[PROTO_ERRLEN] = "";
        CHECK_INT(vt->ctx_new(&r->srv.conf.popts, PROTO_SERVER, &r->srv.pctx, err, sizeof(err)), 0);
    }
    r->now = T0;
    struct net_addr peer = {.len = sizeof(struct sockaddr_in)};
    struct sockaddr_in *in = (struct sockaddr_in *)&peer.ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(40000);
    in->sin_addr.s_addr = htonl(0x7f000001);
    r->init_rc = server_conn_init(&r->sc, &r->srv, &peer, r->now);
}

static void rig_end(struct rig *r)
{
    conn_free(&r->sc.c);
    if (r->srv.conf.proto->ctx_free && r->srv.pctx)
        r->srv.conf.proto->ctx_free(r->srv.pctx);
    pthread_mutex_destroy(&r->srv.wake_mu);
    free(r->wire);
}

static void wire_add(struct rig *r, const uint8_t *p, size_t n)
{
    if (r->wirelen + n > r->wirecap) {
        size_t cap = r->wirecap ? r->wirecap : 4096;
        while (cap < r->wirelen + n)
            cap *= 2;
        r->wire = realloc(r->wire, cap);
        r->wirecap = cap;
    }
    memcpy(r->wire + r->wirelen, p, n);
    r->wirelen += n;
}

/* The model's send step: at most `chunk` bytes per send(), `window` bytes in all (what the
 * socket takes before it is full), then the half-close if asked. Returns the bytes sent. */
static size_t rig_send(struct rig *r, size_t chunk, size_t window)
{
    size_t total = 0;
    const uint8_t *p;
    size_t n;
    while (total < window && (n = conn_out_peek(&r->sc.c, r->now, &p)) > 0) {
        if (n > chunk)
            n = chunk;
        if (n > window - total)
            n = window - total;
        wire_add(r, p, n);
        r->writes++;
        total += n;
        conn_out_sent(&r->sc.c, n, r->now);
    }
    if (conn_wants(&r->sc.c) & CONN_WANT_SHUT_WR) {
        r->shut = true;
        conn_shut_done(&r->sc.c);
    }
    return total;
}

static size_t rig_send_all(struct rig *r)
{
    return rig_send(r, SIZE_MAX, SIZE_MAX);
}

/* The model's receive step (readiness style): offers `n` bytes in reads of at most
 * `slice`; returns how many the engine took before it stopped wanting input. */
static size_t rig_recv(struct rig *r, const void *data, size_t n, size_t slice)
{
    const uint8_t *p = data;
    size_t done = 0;
    while (done < n) {
        uint8_t *dst;
        size_t room = conn_read_buf(&r->sc.c, r->now, &dst);
        if (room == 0)
            break;
        size_t k = n - done;
        if (k > slice)
            k = slice;
        if (k > room)
            k = room;
        memcpy(dst, p + done, k);
        conn_read_commit(&r->sc.c, k, r->now);
        done += k;
    }
    return done;
}

/* Moves the fake clock to `t` and tells the engine. */
static void rig_at(struct rig *r, uint64_t t)
{
    r->now = t;
    conn_on_time(&r->sc.c, r->now);
}

static bool wants(const struct rig *r, unsigned bits)
{
    return (conn_wants(&r->sc.c) & bits) == bits;
}

static void *ctx_client(const struct proto_vt *vt)
{
    void *ctx = NULL;
    struct proto_opts o = {.max_msg = 65535, .accept_new = client_accept_new};
    char err[PROTO_ERRLEN] = "";
    CHECK_INT(vt->ctx_new(&o, PROTO_CLIENT, &ctx, err, sizeof(err)), 0);
    return ctx;
}

/* ---- plain ---- */

static void test_plain_split_reads(void)
{
    static const char text[] = "hello\nsecond line\r\nno newline yet";
    size_t n = sizeof(text) - 1;
    for (size_t k = 0; k <= n; k++) {
        struct rig r;
        rig_start(&r, &proto_plain, 0, 0);
        CHECK_INT(r.init_rc, 0);
        CHECK(wants(&r, CONN_WANT_READ));
        CHECK_INT(rig_recv(&r, text, k, SIZE_MAX), k);
        rig_send_all(&r);
        CHECK_INT(rig_recv(&r, text + k, n - k, SIZE_MAX), n - k);
        rig_send_all(&r);
        CHECK_INT(r.wirelen, n);
        CHECK_MEM(r.wire, text, n);
        CHECK(!conn_closed(&r.sc.c));
        rig_end(&r);
    }
}

static void test_plain_byte_writes_and_feed(void)
{
    static const char text[] = "one byte per send\n";
    size_t n = sizeof(text) - 1;
    struct rig r;
    rig_start(&r, &proto_plain, 0, 0);
    /* Completion style: bytes the model already holds, handed over in pieces. */
    size_t taken = 0;
    for (size_t i = 0; i < n; i += 5) {
        size_t k = n - i < 5 ? n - i : 5;
        taken += conn_feed(&r.sc.c, (const uint8_t *)text + i, k, r.now);
    }
    CHECK_INT(taken, n);
    CHECK(wants(&r, CONN_WANT_WRITE));
    /* The "socket" takes one byte per send: every byte is offered again until it went. */
    CHECK_INT(rig_send(&r, 1, SIZE_MAX), n);
    CHECK_INT(r.writes, n);
    CHECK_MEM(r.wire, text, n);
    CHECK(!wants(&r, CONN_WANT_WRITE));
    rig_end(&r);
}

static void test_plain_backpressure(void)
{
    struct rig r;
    rig_start(&r, &proto_plain, 0, 0);
    static uint8_t line[1024];
    memset(line, 'a', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\n';
    static uint8_t chunk[SERVER_READ_CHUNK];
    for (size_t i = 0; i < sizeof(chunk); i += sizeof(line))
        memcpy(chunk + i, line, sizeof(line));

    /* The peer sends and never reads: the engine stops wanting input at the high-water
     * mark instead of buffering without end. */
    size_t fed = 0;
    for (int i = 0; i < 64 && wants(&r, CONN_WANT_READ); i++)
        fed += rig_recv(&r, chunk, sizeof(chunk), sizeof(chunk));
    CHECK(!wants(&r, CONN_WANT_READ));
    CHECK(wants(&r, CONN_WANT_WRITE));
    CHECK(fed >= SERVER_OUT_HIGH);
    CHECK(fed < SERVER_OUT_HIGH + 2 * SERVER_READ_CHUNK);
    uint8_t *dst;
    CHECK_INT(conn_read_buf(&r.sc.c, r.now, &dst), 0);
    CHECK_INT(conn_feed(&r.sc.c, chunk, sizeof(chunk), r.now), 0);

    /* The peer reads down to the mark exactly: still no reading; one byte more, and the
     * engine wants input again. */
    CHECK_INT(rig_send(&r, SIZE_MAX, fed - SERVER_OUT_HIGH), fed - SERVER_OUT_HIGH);
    CHECK(!wants(&r, CONN_WANT_READ));
    CHECK_INT(rig_send(&r, SIZE_MAX, 1), 1);
    CHECK(wants(&r, CONN_WANT_READ));
    /* The peer reads everything: reading resumes, and every byte came back in order. */
    rig_send_all(&r);
    CHECK(wants(&r, CONN_WANT_READ));
    CHECK_INT(r.wirelen, fed);
    bool same = true;
    for (size_t i = 0; i < r.wirelen; i++)
        same = same && r.wire[i] == line[i % sizeof(line)];
    CHECK(same);
    CHECK(!conn_closed(&r.sc.c));
    rig_end(&r);
}

static void test_plain_peer_eof_delivers(void)
{
    struct rig r;
    rig_start(&r, &proto_plain, 0, 0);
    CHECK_INT(rig_recv(&r, "owed\n", 5, SIZE_MAX), 5);
    conn_on_eof(&r.sc.c, r.now); /* the peer half-closed before reading the echo */
    CHECK(!conn_closed(&r.sc.c));
    CHECK(wants(&r, CONN_WANT_WRITE));
    CHECK(!wants(&r, CONN_WANT_READ));
    CHECK_INT(conn_deadline(&r.sc.c), T0 + CONN_DRAIN_MS);
    rig_send(&r, 2, SIZE_MAX);
    CHECK_INT(r.wirelen, 5);
    CHECK_MEM(r.wire, "owed\n", 5);
    CHECK(conn_closed(&r.sc.c));
    CHECK(wants(&r, CONN_WANT_CLOSE));
    CHECK_STR(conn_reason_name(&r.sc.c), "eof");
    rig_end(&r);

    /* Nothing owed: EOF closes at once. */
    rig_start(&r, &proto_plain, 0, 0);
    conn_on_eof(&r.sc.c, r.now);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "eof");
    rig_end(&r);
}

static void test_plain_exit_half_close_linger(void)
{
    /* exit: echo delivered, then our side half-closes and waits for the peer's FIN. */
    struct rig r;
    rig_start(&r, &proto_plain, 0, 0);
    rig_recv(&r, "exit\n", 5, SIZE_MAX);
    CHECK(!r.shut);
    rig_send_all(&r);
    CHECK_MEM(r.wire, "exit\n", 5);
    CHECK(r.shut);
    CHECK(!conn_closed(&r.sc.c));
    CHECK(wants(&r, CONN_WANT_READ));
    CHECK(!wants(&r, CONN_WANT_SHUT_WR)); /* asked once */
    CHECK_INT(conn_deadline(&r.sc.c), T0 + SERVER_LINGER_MS);
    /* Input after the half-close is read and thrown away, in either style. */
    CHECK_INT(rig_recv(&r, "late\n", 5, SIZE_MAX), 5);
    static const uint8_t junk[3 * CONN_DISCARD_CHUNK];
    CHECK_INT(conn_feed(&r.sc.c, junk, sizeof(junk), r.now), CONN_DISCARD_CHUNK);
    rig_send_all(&r);
    CHECK_INT(r.wirelen, 5);
    conn_on_eof(&r.sc.c, r.now);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "exit");
    rig_end(&r);

    /* No FIN: closed at the linger deadline. */
    rig_start(&r, &proto_plain, 0, 0);
    rig_recv(&r, "exit\n", 5, SIZE_MAX);
    rig_send_all(&r);
    rig_at(&r, T0 + SERVER_LINGER_MS - 1);
    CHECK(!conn_closed(&r.sc.c));
    rig_at(&r, T0 + SERVER_LINGER_MS);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "exit");
    rig_end(&r);
}

static void test_plain_drain_deadline(void)
{
    /* exit from a peer that never reads: delivery is tried until the drain deadline. */
    struct rig r;
    rig_start(&r, &proto_plain, 0, 0);
    rig_recv(&r, "abc\nexit\n", 9, SIZE_MAX);
    CHECK(wants(&r, CONN_WANT_WRITE | CONN_WANT_READ));
    CHECK_INT(conn_deadline(&r.sc.c), T0 + CONN_DRAIN_MS);
    rig_at(&r, T0 + CONN_DRAIN_MS - 1);
    CHECK(!conn_closed(&r.sc.c));
    rig_send(&r, SIZE_MAX, 3); /* a little is read; the deadline does not move */
    CHECK_INT(conn_deadline(&r.sc.c), T0 + CONN_DRAIN_MS);
    rig_at(&r, T0 + CONN_DRAIN_MS);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "exit");
    CHECK_INT(conn_out_peek(&r.sc.c, r.now, &(const uint8_t *){NULL}), 0);
    rig_end(&r);
}

static void test_plain_reset_and_errors(void)
{
    struct rig r;
    rig_start(&r, &proto_plain, 0, 0);
    rig_recv(&r, "x\n", 2, SIZE_MAX);
    conn_on_recv_error(&r.sc.c, ECONNRESET);
    CHECK(conn_closed(&r.sc.c));
    CHECK_INT(conn_out_peek(&r.sc.c, r.now, &(const uint8_t *){NULL}), 0);
    CHECK_STR(conn_reason_name(&r.sc.c), "reset");
    rig_end(&r);

    rig_start(&r, &proto_plain, 0, 0);
    rig_recv(&r, "x\n", 2, SIZE_MAX);
    conn_on_send_error(&r.sc.c, EPIPE);
    CHECK_STR(conn_reason_name(&r.sc.c), "reset");
    rig_end(&r);

    rig_start(&r, &proto_plain, 0, 0);
    conn_on_recv_error(&r.sc.c, EIO);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "error");
    rig_end(&r);

    rig_start(&r, &proto_plain, 0, 0);
    conn_on_hangup(&r.sc.c, 0);
    CHECK_STR(conn_reason_name(&r.sc.c), "eof");
    rig_end(&r);

    rig_start(&r, &proto_plain, 0, 0);
    conn_on_hangup(&r.sc.c, ECONNRESET);
    CHECK_STR(conn_reason_name(&r.sc.c), "reset");
    rig_end(&r);
}

static void test_plain_idle_timeout(void)
{
    struct rig r;
    rig_start(&r, &proto_plain, 5000, 0);
    CHECK_INT(conn_deadline(&r.sc.c), T0 + 5000);
    rig_at(&r, T0 + 2000);
    rig_recv(&r, "hi\n", 3, SIZE_MAX); /* activity moves the idle deadline */
    CHECK_INT(conn_deadline(&r.sc.c), T0 + 7000);
    rig_at(&r, T0 + 3000);
    rig_send_all(&r);
    CHECK_INT(conn_deadline(&r.sc.c), T0 + 8000);
    rig_at(&r, T0 + 7999);
    CHECK(wants(&r, CONN_WANT_READ));
    rig_at(&r, T0 + 8000);
    /* Idle: nothing owed, so our side half-closes at once and lingers for the FIN. */
    rig_send_all(&r);
    CHECK(r.shut);
    CHECK(!conn_closed(&r.sc.c));
    CHECK_INT(conn_deadline(&r.sc.c), T0 + 8000 + SERVER_LINGER_MS);
    rig_at(&r, T0 + 8000 + SERVER_LINGER_MS);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "timeout");
    rig_end(&r);
}

static void test_plain_shutdown(void)
{
    /* Owing bytes when shutdown begins: they are delivered, then the connection closes. */
    struct rig r;
    rig_start(&r, &proto_plain, 0, 0);
    rig_recv(&r, "owed\n", 5, SIZE_MAX);
    atomic_store(&r.srv.stop_at, T0 + SERVER_DRAIN_MS);
    conn_begin_shutdown(&r.sc.c, r.now, atomic_load(&r.srv.stop_at));
    CHECK(wants(&r, CONN_WANT_WRITE));
    CHECK_INT(conn_deadline(&r.sc.c), T0 + SERVER_DRAIN_MS);
    CHECK_INT(rig_recv(&r, "more\n", 5, SIZE_MAX), 5); /* read, not echoed */
    rig_send_all(&r);
    CHECK_INT(r.wirelen, 5);
    CHECK_MEM(r.wire, "owed\n", 5);
    CHECK(r.shut);
    conn_on_eof(&r.sc.c, r.now);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "shutdown");
    rig_end(&r);

    /* A peer that does not read: closed by the engine's own deadline at stop_at. */
    rig_start(&r, &proto_plain, 0, 0);
    rig_recv(&r, "owed\n", 5, SIZE_MAX);
    atomic_store(&r.srv.stop_at, T0 + SERVER_DRAIN_MS);
    conn_begin_shutdown(&r.sc.c, r.now, atomic_load(&r.srv.stop_at));
    rig_at(&r, T0 + SERVER_DRAIN_MS - 1);
    CHECK(!conn_closed(&r.sc.c));
    rig_at(&r, T0 + SERVER_DRAIN_MS);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "shutdown");
    rig_end(&r);

    /* The model's abort past the deadline. */
    rig_start(&r, &proto_plain, 0, 0);
    rig_recv(&r, "owed\n", 5, SIZE_MAX);
    atomic_store(&r.srv.stop_at, T0 + SERVER_DRAIN_MS);
    conn_begin_shutdown(&r.sc.c, r.now, atomic_load(&r.srv.stop_at));
    conn_abort(&r.sc.c);
    CHECK(wants(&r, CONN_WANT_CLOSE));
    CHECK_STR(conn_reason_name(&r.sc.c), "shutdown");
    rig_end(&r);

    /* Abort of a connection shutdown has not reached yet; and of one already ending, which
     * keeps its own reason. */
    rig_start(&r, &proto_plain, 0, 0);
    conn_abort(&r.sc.c);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "shutdown");
    rig_end(&r);
    rig_start(&r, &proto_plain, 0, 0);
    rig_recv(&r, "owed\n", 5, SIZE_MAX);
    conn_on_eof(&r.sc.c, r.now);
    conn_abort(&r.sc.c);
    CHECK_STR(conn_reason_name(&r.sc.c), "eof");
    rig_end(&r);

    /* An idle connection at shutdown: half-closed at once, reason shutdown. */
    rig_start(&r, &proto_plain, 0, 0);
    atomic_store(&r.srv.stop_at, T0 + SERVER_DRAIN_MS);
    conn_begin_shutdown(&r.sc.c, r.now, atomic_load(&r.srv.stop_at));
    rig_send_all(&r);
    CHECK(r.shut);
    CHECK_INT(conn_deadline(&r.sc.c), T0 + SERVER_LINGER_MS);
    rig_at(&r, T0 + SERVER_LINGER_MS);
    CHECK_STR(conn_reason_name(&r.sc.c), "shutdown");
    rig_end(&r);
}

/* ---- lab-dh: paced greeting, handshake timeout, a paced echo ---- */

/* Sends what may go now, then checks that nothing more may until the pause has passed. */
static size_t paced_part(struct rig *r, size_t chunk)
{
    size_t n = rig_send(r, chunk, SIZE_MAX);
    if (n == 0)
        return 0;
    CHECK(!wants(r, CONN_WANT_WRITE));
    CHECK_INT(conn_deadline(&r->sc.c) <= r->now + SERVER_PACE_MS, 1);
    uint64_t pause_end = r->now + SERVER_PACE_MS;
    rig_at(r, pause_end - 1);
    CHECK_INT(rig_send_all(r), 0);
    rig_at(r, pause_end);
    return n;
}

static void test_labdh_greeting_paced_and_handshake_timeout(void)
{
    struct rig r;
    rig_start(&r, &proto_lab_dh, 0, 3000);
    CHECK_INT(r.init_rc, 0);
    /* The first part is the parameters alone, even one byte per send. */
    size_t params = paced_part(&r, 1);
    CHECK(params > 30);
    CHECK(memmem(r.wire, params, "-----END DH PARAMETERS-----", 27) != NULL);
    CHECK(memmem(r.wire, params, "PUBLIC KEY", 10) == NULL);
    size_t pub = paced_part(&r, SIZE_MAX);
    CHECK(memmem(r.wire + params, pub, "-----END PUBLIC KEY-----", 24) != NULL);
    CHECK_INT(rig_send_all(&r), 0);
    /* No handshake bytes ever arrive: closed at the handshake timeout. */
    CHECK_INT(conn_deadline(&r.sc.c), T0 + 3000);
    rig_at(&r, T0 + 2999);
    CHECK(!conn_closed(&r.sc.c));
    rig_at(&r, T0 + 3000);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "timeout");
    rig_end(&r);
}

/* Feeds a client conn everything in [p, p+n) as one batch: returns PROTO_MSG or an error as
 * soon as one comes, else PROTO_HANDSHAKE if the handshake completed, else PROTO_NEED_MORE. */
static int client_read(const struct proto_vt *vt, void *cc, const uint8_t *p, size_t n,
                       struct buf *out, struct proto_msg *m)
{
    bool handshake = false;
    for (int guard = 0; guard < 16; guard++) {
        size_t used = n;
        int ret = vt->conn_read(cc, p, &used, out, m);
        if (ret < 0 || ret == PROTO_MSG)
            return ret;
        p += used;
        n -= used;
        if (ret == PROTO_HANDSHAKE)
            handshake = true;
        else
            break;
    }
    return handshake ? PROTO_HANDSHAKE : PROTO_NEED_MORE;
}

static void test_labdh_paced_echo(void)
{
    const struct proto_vt *vt = &proto_lab_dh;
    struct rig r;
    rig_start(&r, vt, 0, 3000);
    size_t params = paced_part(&r, SIZE_MAX);
    size_t pub = paced_part(&r, SIZE_MAX);

    void *cctx = ctx_client(vt);
    void *cc = NULL;
    struct buf cout;
    struct buf_marks cmarks;
    buf_init(&cout, 1 << 16);
    buf_attach_marks(&cout, &cmarks);
    CHECK_INT(proto_conn_new(vt, cctx, PROTO_CLIENT, &cout, &cc), 0);
    struct proto_msg m = {0};
    CHECK_INT(client_read(vt, cc, r.wire, params, &cout, &m), PROTO_NEED_MORE);
    CHECK_INT(client_read(vt, cc, r.wire + params, pub, &cout, &m), PROTO_HANDSHAKE);
    /* The client's public key, split at an odd offset. */
    size_t half = buf_len(&cout) / 2 + 1;
    CHECK_INT(rig_recv(&r, buf_head(&cout), buf_len(&cout), half), buf_len(&cout));
    buf_reset(&cout);
    CHECK_INT(conn_deadline(&r.sc.c), CONN_NO_DEADLINE); /* no handshake timeout once done */

    /* A message: IV and ciphertext, each its own batch, as the notebook peer sends them. */
    CHECK_INT(vt->conn_write(cc, (const uint8_t *)"paced", 5, &cout), 0);
    size_t iv = buf_sendable(&cout);
    CHECK_INT(iv, 16);
    CHECK_INT(rig_recv(&r, buf_head(&cout), iv, SIZE_MAX), iv);
    CHECK_INT(rig_recv(&r, buf_head(&cout) + iv, buf_len(&cout) - iv, SIZE_MAX), 5);
    /* The echo: IV alone, a pause, the ciphertext alone. */
    size_t before = r.wirelen;
    CHECK_INT(paced_part(&r, SIZE_MAX), 16);
    CHECK_INT(paced_part(&r, SIZE_MAX), 5);
    CHECK_INT(client_read(vt, cc, r.wire + before, 16, &cout, &m), PROTO_NEED_MORE);
    CHECK_INT(client_read(vt, cc, r.wire + before + 16, 5, &cout, &m), PROTO_MSG);
    CHECK_INT(m.len, 5);
    CHECK_MEM(m.data, "paced", 5);

    proto_conn_free(vt, cc);
    vt->ctx_free(cctx);
    buf_free(&cout);
    rig_end(&r);
}

static void test_labdh_shutdown_waits_for_pause(void)
{
    /* Shutdown during the greeting: the paced parts still go out, each after its pause,
     * and only then does our side half-close. */
    struct rig r;
    rig_start(&r, &proto_lab_dh, 0, 0);
    atomic_store(&r.srv.stop_at, T0 + SERVER_DRAIN_MS);
    conn_begin_shutdown(&r.sc.c, r.now, atomic_load(&r.srv.stop_at));
    size_t params = paced_part(&r, SIZE_MAX);
    CHECK(!r.shut);
    size_t pub = rig_send_all(&r);
    CHECK(pub > 0);
    CHECK(!r.shut); /* the last part's pause is still running */
    rig_at(&r, r.now + SERVER_PACE_MS);
    rig_send_all(&r);
    CHECK(r.shut);
    CHECK(params + pub == r.wirelen);
    conn_on_eof(&r.sc.c, r.now);
    CHECK_STR(conn_reason_name(&r.sc.c), "shutdown");
    rig_end(&r);
}

/* ---- lab-fernet: a paced token echo with input split at every offset ---- */

static void test_fernet_split_every_offset(void)
{
    const struct proto_vt *vt = &proto_lab_fernet;
    void *cctx = ctx_client(vt);
    size_t toklen = 0;
    for (size_t k = 0;; k++) {
        struct rig r;
        rig_start(&r, vt, 0, 0);
        CHECK_INT(r.init_rc, 0);
        size_t key = paced_part(&r, k % 7 + 1); /* the key alone, in small sends */
        CHECK_INT(key, 44);

        void *cc = NULL;
        struct buf cout;
        struct buf_marks cmarks;
        buf_init(&cout, 1 << 16);
        buf_attach_marks(&cout, &cmarks);
        CHECK_INT(proto_conn_new(vt, cctx, PROTO_CLIENT, &cout, &cc), 0);
        struct proto_msg m = {0};
        CHECK_INT(client_read(vt, cc, r.wire, key, &cout, &m), PROTO_HANDSHAKE);
        CHECK_INT(vt->conn_write(cc, (const uint8_t *)"split me", 8, &cout), 0);
        toklen = buf_len(&cout);
        size_t cut = k < toklen ? k : toklen;
        CHECK_INT(rig_recv(&r, buf_head(&cout), cut, SIZE_MAX), cut);
        CHECK_INT(r.wirelen, key); /* no echo before the token is whole */
        CHECK_INT(rig_recv(&r, buf_head(&cout) + cut, toklen - cut, SIZE_MAX), toklen - cut);
        size_t echo = paced_part(&r, SIZE_MAX);
        CHECK(echo > 44);
        CHECK_INT(client_read(vt, cc, r.wire + key, echo, &cout, &m), PROTO_MSG);
        CHECK_INT(m.len, 8);
        CHECK_MEM(m.data, "split me", 8);
        CHECK(!conn_closed(&r.sc.c));
        proto_conn_free(vt, cc);
        buf_free(&cout);
        rig_end(&r);
        if (k >= toklen)
            break;
    }
    CHECK(toklen > 90);
    vt->ctx_free(cctx);
}

/* Tokens sent in one burst: lab-fernet takes up to 1024 characters per read call, so when
 * pause marks run short (back-pressure) whole tokens may already sit in the protocol while
 * the engine's input is empty. Each must still be echoed once the marks are free again,
 * with no more input (found by fuzz_conn). */
static void test_fernet_pipelined_under_backpressure(void)
{
    const struct proto_vt *vt = &proto_lab_fernet;
    void *cctx = ctx_client(vt);
    struct rig r;
    rig_start(&r, vt, 0, 0);
    size_t key = paced_part(&r, SIZE_MAX);
    CHECK_INT(key, 44);
    void *cc = NULL;
    struct buf cout;
    struct buf_marks cmarks;
    buf_init(&cout, 1 << 16);
    buf_attach_marks(&cout, &cmarks);
    CHECK_INT(proto_conn_new(vt, cctx, PROTO_CLIENT, &cout, &cc), 0);
    struct proto_msg m = {0};
    CHECK_INT(client_read(vt, cc, r.wire, key, &cout, &m), PROTO_HANDSHAKE);
    enum { N = 14 };
    for (int i = 0; i < N; i++) {
        char text[16];
        snprintf(text, sizeof(text), "m%02d", i);
        CHECK_INT(vt->conn_write(cc, (const uint8_t *)text, 3, &cout), 0);
    }
    size_t total = buf_len(&cout);
    CHECK_INT(rig_recv(&r, buf_head(&cout), total, SIZE_MAX), total); /* one read */
    buf_reset(&cout);
    for (int i = 0; i < 4 * N; i++) {
        rig_send_all(&r);
        rig_at(&r, r.now + SERVER_PACE_MS);
    }
    /* Every echo, in order (the client too holds tokens it took in one call: it is called
     * until it needs more), and nothing is left owed. */
    size_t off = key;
    int got = 0;
    while (got < N) {
        size_t used = r.wirelen - off;
        int ret = vt->conn_read(cc, r.wire + off, &used, &cout, &m);
        off += used;
        if (ret != PROTO_MSG)
            break;
        char text[16];
        snprintf(text, sizeof(text), "m%02d", got);
        CHECK(m.len == 3 && memcmp(m.data, text, 3) == 0);
        got++;
    }
    CHECK_INT(got, N);
    CHECK(buf_empty(&r.sc.c.out));
    CHECK(wants(&r, CONN_WANT_READ));
    proto_conn_free(vt, cc);
    buf_free(&cout);
    rig_end(&r);
    vt->ctx_free(cctx);
}

/* What is owed goes out, then the half-close of a protocol failure; the peer's FIN closes. */
static void check_error_close(struct rig *r)
{
    rig_send_all(r);
    CHECK(r->shut);
    CHECK_STR(conn_reason_name(&r->sc.c), "error");
    conn_on_eof(&r->sc.c, r->now);
    CHECK(conn_closed(&r->sc.c));
    rig_end(r);
}

static void test_fernet_bad_token_is_error(void)
{
    struct rig r;
    rig_start(&r, &proto_lab_fernet, 0, 0);
    rig_send_all(&r);
    rig_at(&r, r.now + SERVER_PACE_MS);
    rig_recv(&r, "not a token!", 12, SIZE_MAX);
    /* A protocol failure stops reading and closes after what is owed (nothing here). */
    check_error_close(&r);
}

/* A bad token while the key's pause runs, then the driver asks for output once the pause is
 * over, before it tells the engine the time (a thread that waited in recv does so): the
 * drain goes on from there, to the half-close, instead of waiting for its deadline. */
static void test_fernet_fault_in_pause_peek_goes_on(void)
{
    struct rig r;
    rig_start(&r, &proto_lab_fernet, 0, 0);
    CHECK(rig_send_all(&r) > 0); /* the key, then its pause */
    rig_recv(&r, "not a token!", 12, SIZE_MAX);
    CHECK_INT(rig_send_all(&r), 0);
    CHECK(!r.shut);
    r.now += SERVER_PACE_MS; /* no conn_on_time */
    check_error_close(&r);
}

/* Record timeout: a token that completes in time is echoed; the next one, trickled a byte
 * every 2 s (each byte refreshing the idle timer), is cut off record_ms after its first byte,
 * its clock started by that byte and not by the earlier record. */
static void test_fernet_record_timeout(void)
{
    const struct proto_vt *vt = &proto_lab_fernet;
    void *cctx = ctx_client(vt);
    struct rig r;
    rig_record_ms = 3000;
    rig_start(&r, vt, 5000, 0);
    rig_record_ms = 0;
    CHECK_INT(r.init_rc, 0);
    size_t key = paced_part(&r, SIZE_MAX);
    CHECK_INT(key, 44);
    void *cc = NULL;
    struct buf cout;
    struct buf_marks cmarks;
    buf_init(&cout, 1 << 16);
    buf_attach_marks(&cout, &cmarks);
    CHECK_INT(proto_conn_new(vt, cctx, PROTO_CLIENT, &cout, &cc), 0);
    struct proto_msg m = {0};
    CHECK_INT(client_read(vt, cc, r.wire, key, &cout, &m), PROTO_HANDSHAKE);
    CHECK(conn_deadline(&r.sc.c) > r.now + 4000); /* no record yet: only the idle timer */

    /* The first token, one byte per 20 ms: whole in under 3 s. */
    CHECK_INT(vt->conn_write(cc, (const uint8_t *)"in time", 7, &cout), 0);
    size_t toklen = buf_len(&cout);
    CHECK(toklen > 90 && toklen * 20 < 3000);
    uint64_t first = r.now;
    for (size_t i = 0; i < toklen; i++) {
        rig_at(&r, first + 20 * i);
        CHECK_INT(rig_recv(&r, buf_head(&cout) + i, 1, SIZE_MAX), 1);
        if (i + 1 < toklen)
            CHECK_INT(conn_deadline(&r.sc.c), first + 3000);
    }
    CHECK(!conn_closed(&r.sc.c));
    size_t echo = paced_part(&r, SIZE_MAX);
    CHECK(echo > 44);
    buf_consume(&cout, toklen);
    CHECK_INT(client_read(vt, cc, r.wire + key, echo, &cout, &m), PROTO_MSG);
    CHECK_MEM(m.data, "in time", 7);
    /* The record ended: its deadline is gone. */
    CHECK(conn_deadline(&r.sc.c) > r.now + 4000);

    /* Later (past the first record's deadline), a token trickled a byte every 2 s. */
    rig_at(&r, first + 4000);
    CHECK(!conn_closed(&r.sc.c));
    buf_reset(&cout);
    CHECK_INT(vt->conn_write(cc, (const uint8_t *)"too slow", 8, &cout), 0);
    uint64_t start = r.now;
    CHECK_INT(rig_recv(&r, buf_head(&cout), 1, SIZE_MAX), 1);
    CHECK_INT(conn_deadline(&r.sc.c), start + 3000);
    rig_at(&r, start + 2000);
    CHECK_INT(rig_recv(&r, buf_head(&cout) + 1, 1, SIZE_MAX), 1);
    CHECK_INT(conn_deadline(&r.sc.c), start + 3000); /* the idle timer moved, not this */
    rig_at(&r, start + 2999);
    CHECK(wants(&r, CONN_WANT_READ));
    CHECK_INT(r.sc.c.state, CONN_OPEN);
    rig_at(&r, start + 3000);
    CHECK(r.sc.c.state != CONN_OPEN);
    CHECK_STR(conn_reason_name(&r.sc.c), "timeout");
    rig_send_all(&r);
    CHECK(r.shut);
    conn_on_eof(&r.sc.c, r.now);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "timeout");
    proto_conn_free(vt, cc);
    buf_free(&cout);
    rig_end(&r);
    vt->ctx_free(cctx);
}

/* Plain has lines, not records: a line trickled without its newline is bounded by the record
 * timer from its first byte (each byte still echoed as it came, and refreshing the idle
 * timer); a newline ends the line and stops the clock. */
static void test_plain_line_record_timeout(void)
{
    struct rig r;
    rig_record_ms = 5000;
    rig_start(&r, &proto_plain, 3000, 0);
    rig_record_ms = 0;
    CHECK_INT(rig_recv(&r, "done\n", 5, SIZE_MAX), 5); /* a whole line: no clock */
    rig_send_all(&r);
    CHECK_INT(conn_deadline(&r.sc.c), r.now + 3000);
    for (int i = 0; i < 3; i++) {
        rig_at(&r, T0 + 2000 * (uint64_t)i);
        CHECK_INT(rig_recv(&r, "x", 1, SIZE_MAX), 1);
        rig_send_all(&r);
        /* the idle timer (3 s from this byte) comes before the line's (5 s from its first) */
        CHECK_INT(conn_deadline(&r.sc.c), i < 1 ? r.now + 3000 : T0 + 5000);
    }
    rig_at(&r, T0 + 5000);
    CHECK(r.sc.c.state != CONN_OPEN); /* drains with reason timeout */
    CHECK_STR(conn_reason_name(&r.sc.c), "timeout");
    CHECK_INT(r.wirelen, 8); /* every byte echoed as it came */
    rig_end(&r);
}

/* A plain stream without newlines that flows restarts the line's clock every
 * CONN_LINE_PROGRESS bytes: it is never cut. */
static void test_plain_stream_flows(void)
{
    static uint8_t chunk[CONN_LINE_PROGRESS];
    memset(chunk, 'y', sizeof(chunk));
    struct rig r;
    rig_record_ms = 1000;
    rig_start(&r, &proto_plain, 0, 0);
    rig_record_ms = 0;
    for (int i = 0; i < 10; i++) {
        rig_at(&r, T0 + 900 * (uint64_t)i);
        CHECK_INT(rig_recv(&r, chunk, sizeof(chunk), SIZE_MAX), sizeof(chunk));
        rig_send_all(&r);
        CHECK_INT(r.sc.c.state, CONN_OPEN);
    }
    CHECK_INT(r.wirelen, 10 * sizeof(chunk));
    rig_end(&r);
}

/* ---- the client role: a policy that counts echoes, driven like the client does ---- */

struct crig {
    struct conn c;
    uint64_t now;
    void *ctx;
    int owed;       /* messages (stream: bytes) still to be echoed */
    int msgs;       /* whole messages (stream: arrivals) received */
    int handshakes; /* on_handshake calls */
    int faults;
    enum conn_fault fault;
    bool closed_hook;
    uint8_t got[256];
    size_t gotlen;
    uint8_t *wire; /* what the client sent */
    size_t wirelen;
    bool shut;
};

static int crig_message(void *arg, struct conn *c, const struct proto_msg *m, uint64_t now)
{
    (void)c;
    (void)now;
    struct crig *r = arg;
    if (r->gotlen + m->len <= sizeof(r->got)) {
        memcpy(r->got + r->gotlen, m->data, m->len);
        r->gotlen += m->len;
    }
    bool stream = r->c.conf.vt->flags & PROTO_F_STREAM_ECHO;
    r->owed -= stream ? (int)m->len : m->last;
    r->msgs += stream || m->last;
    return 0;
}

static void crig_handshake(void *arg, struct conn *c, uint64_t now)
{
    (void)c;
    (void)now;
    ((struct crig *)arg)->handshakes++;
}

static void crig_fault(void *arg, struct conn *c, enum conn_fault what, int err)
{
    (void)c;
    (void)err;
    struct crig *r = arg;
    r->faults++;
    r->fault = what;
}

static bool crig_awaiting(void *arg, const struct conn *c)
{
    (void)c;
    return ((struct crig *)arg)->owed > 0;
}

static void crig_close(void *arg, struct conn *c)
{
    (void)c;
    ((struct crig *)arg)->closed_hook = true;
}

static const struct conn_ops crig_ops = {
    .on_message = crig_message,
    .on_handshake = crig_handshake,
    .on_fault = crig_fault,
    .awaiting = crig_awaiting,
    .on_close = crig_close,
};

static void crig_start(struct crig *r, const struct proto_vt *vt, size_t out_high, int hs_ms)
{
    memset(r, 0, sizeof(*r));
    r->now = T0;
    if (vt->ctx_new)
        r->ctx = ctx_client(vt);
    const struct conn_conf cf = {
        .vt = vt,
        .pctx = r->ctx,
        .role = PROTO_CLIENT,
        .in_limit = 1 << 20,
        .out_limit = 1 << 20,
        .out_high = out_high,
        .read_chunk = 65536,
        .handshake_ms = hs_ms,
        .linger_ms = SERVER_LINGER_MS,
    };
    CHECK_INT(conn_init(&r->c, &cf, &crig_ops, r, r->now), 0);
}

static void crig_end(struct crig *r)
{
    conn_free(&r->c);
    CHECK(r->closed_hook);
    if (r->ctx)
        r->c.conf.vt->ctx_free(r->ctx);
    free(r->wire);
}

/* The client's send step: everything that may go now, in one batch. */
static size_t crig_send(struct crig *r)
{
    size_t total = 0;
    const uint8_t *p;
    size_t n;
    while ((n = conn_out_peek(&r->c, r->now, &p)) > 0) {
        r->wire = realloc(r->wire, r->wirelen + n);
        memcpy(r->wire + r->wirelen, p, n);
        r->wirelen += n;
        total += n;
        conn_out_sent(&r->c, n, r->now);
    }
    if (conn_wants(&r->c) & CONN_WANT_SHUT_WR) {
        r->shut = true;
        conn_shut_done(&r->c);
    }
    return total;
}

static void crig_at(struct crig *r, uint64_t t)
{
    r->now = t;
    conn_on_time(&r->c, t);
}

static int crig_queue(struct crig *r, const char *text)
{
    size_t n = strlen(text);
    int e = conn_send_msg(&r->c, (const uint8_t *)text, n);
    if (e == 0)
        r->owed += r->c.conf.vt->flags & PROTO_F_STREAM_ECHO ? (int)n : 1;
    return e;
}

static void test_client_labdh_paced_key_and_echo(void)
{
    /* A lab-dh client against the server engine: its public key goes alone and is followed
     * by a pause, and so is each part of its messages; the echo comes back whole. */
    const struct proto_vt *vt = &proto_lab_dh;
    struct rig s;
    rig_start(&s, vt, 0, 3000);
    struct crig r;
    crig_start(&r, vt, 1 << 16, 3000);
    CHECK(!conn_ready(&r.c));
    CHECK_INT(crig_queue(&r, "early"), PROTO_E_STATE); /* before the handshake */
    CHECK(!conn_can_send(&r.c));
    CHECK_INT(crig_send(&r), 0); /* the client speaks second */

    size_t params = paced_part(&s, SIZE_MAX);
    size_t pub = paced_part(&s, SIZE_MAX);
    r.now = s.now;
    CHECK_INT(conn_feed(&r.c, s.wire, params, r.now), params);
    CHECK(!conn_ready(&r.c));
    CHECK_INT(conn_feed(&r.c, s.wire + params, pub, r.now), pub);
    CHECK(conn_ready(&r.c));
    CHECK_INT(r.handshakes, 1);
    CHECK_INT(conn_deadline(&r.c), CONN_NO_DEADLINE);

    /* Its key: one part, then a pause before anything else may go. */
    CHECK_INT(crig_queue(&r, "paced"), 0);
    size_t key = crig_send(&r);
    CHECK(memmem(r.wire, key, "-----END PUBLIC KEY-----", 24) != NULL);
    CHECK_INT(key, r.wirelen);
    CHECK(!(conn_wants(&r.c) & CONN_WANT_WRITE));
    CHECK_INT(conn_deadline(&r.c), r.now + SERVER_PACE_MS);
    crig_at(&r, r.now + SERVER_PACE_MS - 1);
    CHECK_INT(crig_send(&r), 0);
    crig_at(&r, r.now + 1);
    CHECK_INT(crig_send(&r), 16); /* the IV alone */
    crig_at(&r, r.now + SERVER_PACE_MS);
    CHECK_INT(crig_send(&r), 5); /* the ciphertext alone */

    s.now = r.now;
    CHECK_INT(rig_recv(&s, r.wire, key, SIZE_MAX), key);
    CHECK_INT(rig_recv(&s, r.wire + key, 16, SIZE_MAX), 16);
    CHECK_INT(rig_recv(&s, r.wire + key + 16, 5, SIZE_MAX), 5);
    size_t before = s.wirelen;
    paced_part(&s, SIZE_MAX);
    paced_part(&s, SIZE_MAX);
    r.now = s.now;
    CHECK_INT(conn_feed(&r.c, s.wire + before, s.wirelen - before, r.now), s.wirelen - before);
    CHECK_INT(r.msgs, 1);
    CHECK_INT(r.owed, 0);
    CHECK_INT(r.gotlen, 5);
    CHECK_MEM(r.got, "paced", 5);
    CHECK_INT(r.faults, 0);
    crig_end(&r);
    rig_end(&s);
}

static void test_client_backpressure(void)
{
    /* Queueing stops at out_high, but reading never does: echoes must still be taken while
     * the server does not read what we send. */
    struct crig r;
    crig_start(&r, &proto_plain, 4096, 0);
    CHECK(conn_ready(&r.c));
    static char line[1001];
    memset(line, 'q', sizeof(line) - 2);
    line[sizeof(line) - 2] = '\n';
    int queued = 0;
    while (conn_can_send(&r.c) && queued < 100) {
        CHECK_INT(crig_queue(&r, line), 0);
        queued++;
    }
    CHECK_INT(queued, 5); /* 4 * 1000 < 4096 <= 5 * 1000 */
    CHECK(conn_wants(&r.c) & CONN_WANT_READ);
    CHECK(conn_wants(&r.c) & CONN_WANT_WRITE);
    CHECK_INT(conn_feed(&r.c, (const uint8_t *)line, 1000, r.now), 1000);
    CHECK_INT(r.owed, 4000);
    CHECK_INT(r.msgs, 1); /* unframed: one arrival */
    /* The socket takes a little: still above the mark; then all of it. */
    const uint8_t *p;
    size_t n = conn_out_peek(&r.c, r.now, &p);
    CHECK_INT(n, 5000);
    conn_out_sent(&r.c, 500, r.now);
    CHECK(!conn_can_send(&r.c));
    conn_out_sent(&r.c, 1000, r.now);
    CHECK(conn_can_send(&r.c));
    CHECK_INT(crig_send(&r), 3500);
    CHECK(conn_wants(&r.c) & CONN_WANT_READ);
    CHECK(!(conn_wants(&r.c) & CONN_WANT_WRITE));
    crig_end(&r);
}

static void test_client_marks_backpressure(void)
{
    /* A paced protocol: queueing also stops while pause marks run short, so that a burst of
     * messages waits instead of failing with -ENOBUFS; each goes out after its pause. */
    const struct proto_vt *vt = &proto_lab_fernet;
    struct rig s;
    rig_start(&s, vt, 0, 0);
    size_t key = paced_part(&s, SIZE_MAX);
    struct crig r;
    crig_start(&r, vt, 1 << 16, 0);
    r.now = s.now;
    CHECK_INT(conn_feed(&r.c, s.wire, key, r.now), key);
    CHECK(conn_ready(&r.c));
    int queued = 0;
    while (conn_can_send(&r.c) && queued < 100) {
        CHECK_INT(crig_queue(&r, "burst"), 0);
        queued++;
    }
    CHECK_INT(queued, BUF_MAX_PAUSES - CONN_MARKS_RESERVE + 1);
    CHECK(conn_wants(&r.c) & CONN_WANT_READ);
    size_t first = crig_send(&r);
    CHECK(first > 0);
    CHECK(conn_can_send(&r.c)); /* one token gone, one mark free again */
    CHECK_INT(crig_queue(&r, "burst"), 0);
    int parts = 1;
    for (int i = 0; i < 100 && conn_deadline(&r.c) != CONN_NO_DEADLINE; i++) {
        crig_at(&r, conn_deadline(&r.c));
        parts += crig_send(&r) > 0;
    }
    CHECK_INT(parts, queued + 1);
    CHECK_INT(r.wirelen, (size_t)parts * first);
    crig_end(&r);
    rig_end(&s);
}

static void test_client_finish_sequence(void)
{
    /* The last message queued: it goes out, the echo is awaited, then our side half-closes
     * and waits for the peer's FIN. */
    struct crig r;
    crig_start(&r, &proto_plain, 1 << 16, 0);
    CHECK_INT(crig_queue(&r, "bye\n"), 0);
    conn_finish(&r.c, CONN_REASON_EXIT, 2000, r.now);
    CHECK_INT(crig_queue(&r, "late\n"), -EPIPE);
    CHECK(!conn_can_send(&r.c));
    CHECK_INT(conn_deadline(&r.c), CONN_NO_DEADLINE); /* no wait while we still owe */
    CHECK_INT(crig_send(&r), 4);
    CHECK(!r.shut); /* the echo is awaited */
    CHECK(conn_wants(&r.c) & CONN_WANT_READ);
    CHECK_INT(conn_deadline(&r.c), T0 + 2000);
    r.now += 100;
    CHECK_INT(conn_feed(&r.c, (const uint8_t *)"by", 2, r.now), 2);
    CHECK(!r.shut);
    CHECK_INT(conn_feed(&r.c, (const uint8_t *)"e\n", 2, r.now), 2);
    CHECK_INT(r.owed, 0);
    crig_send(&r);
    CHECK(r.shut);
    CHECK_INT(conn_deadline(&r.c), T0 + 100 + SERVER_LINGER_MS);
    CHECK(!conn_closed(&r.c));
    conn_on_eof(&r.c, r.now);
    CHECK(conn_closed(&r.c));
    CHECK_STR(conn_reason_name(&r.c), "exit");
    CHECK_INT(r.faults, 0);
    crig_end(&r);

    /* The peer had already half-closed when the last echo came: no linger. */
    crig_start(&r, &proto_plain, 1 << 16, 0);
    CHECK_INT(crig_queue(&r, "exit\n"), 0);
    conn_finish(&r.c, CONN_REASON_EXIT, 2000, r.now);
    crig_send(&r);
    CHECK_INT(conn_feed(&r.c, (const uint8_t *)"exit\n", 5, r.now), 5);
    crig_send(&r);
    CHECK(r.shut);
    conn_on_eof(&r.c, r.now);
    CHECK(conn_closed(&r.c));
    crig_end(&r);
}

static void test_client_peer_closes_first(void)
{
    /* The server closes after one of three echoes: the connection ends with eof and the
     * policy still counts what never came. */
    struct crig r;
    crig_start(&r, &proto_plain, 1 << 16, 0);
    CHECK_INT(crig_queue(&r, "a\n"), 0);
    CHECK_INT(crig_queue(&r, "b\n"), 0);
    CHECK_INT(crig_queue(&r, "c\n"), 0);
    crig_send(&r);
    CHECK_INT(conn_feed(&r.c, (const uint8_t *)"a\n", 2, r.now), 2);
    conn_on_eof(&r.c, r.now);
    CHECK(conn_peer_closed(&r.c));
    CHECK(conn_closed(&r.c));
    CHECK_STR(conn_reason_name(&r.c), "eof");
    CHECK_INT(r.owed, 4);
    crig_end(&r);

    /* While finishing, with output still owed: it stops at once all the same once the
     * output is gone, and nothing is read after the EOF. */
    crig_start(&r, &proto_plain, 1 << 16, 0);
    CHECK_INT(crig_queue(&r, "x\n"), 0);
    conn_finish(&r.c, CONN_REASON_EOF, 2000, r.now);
    conn_on_eof(&r.c, r.now);
    CHECK(!conn_closed(&r.c));
    CHECK(!(conn_wants(&r.c) & CONN_WANT_READ));
    crig_send(&r);
    CHECK(conn_closed(&r.c));
    CHECK(!r.shut);
    CHECK_INT(r.owed, 2);
    crig_end(&r);
}

static void test_client_timeouts(void)
{
    /* Echoes that never come: closed with reason timeout wait_ms after the last byte went. */
    struct crig r;
    crig_start(&r, &proto_plain, 1 << 16, 0);
    CHECK_INT(crig_queue(&r, "lost\n"), 0);
    conn_finish(&r.c, CONN_REASON_EOF, 500, r.now);
    crig_at(&r, T0 + 5000); /* the socket was full until now */
    CHECK(!conn_closed(&r.c));
    crig_send(&r);
    CHECK_INT(conn_deadline(&r.c), T0 + 5500);
    crig_at(&r, T0 + 5499);
    CHECK(!conn_closed(&r.c));
    crig_at(&r, T0 + 5500);
    CHECK(conn_closed(&r.c));
    CHECK_STR(conn_reason_name(&r.c), "timeout");
    CHECK(!r.shut);
    CHECK_INT(r.faults, 0);
    crig_end(&r);

    /* A handshake that never completes: a fault the client reports, then closed. */
    crig_start(&r, &proto_lab_dh, 1 << 16, 700);
    CHECK_INT(conn_deadline(&r.c), T0 + 700);
    crig_at(&r, T0 + 699);
    CHECK(!conn_closed(&r.c));
    crig_at(&r, T0 + 700);
    CHECK(conn_closed(&r.c));
    CHECK_INT(r.faults, 1);
    CHECK_INT(r.fault, CONN_FAULT_HANDSHAKE);
    CHECK_STR(conn_reason_name(&r.c), "timeout");
    crig_end(&r);

    /* Garbage from the "server": a protocol fault, and no more input is used. */
    crig_start(&r, &proto_lab_fernet, 1 << 16, 0);
    conn_feed(&r.c, (const uint8_t *)"this is not a fernet key at all, not even close!", 48, r.now);
    CHECK_INT(r.faults, 1);
    CHECK_INT(r.fault, CONN_FAULT_PROTO);
    CHECK(!(conn_wants(&r.c) & CONN_WANT_WRITE));
    crig_end(&r);
}

/* ---- the log a user reads ---- */

/* ---- memory: an idle connection holds no buffer ---- */

/* After a message is echoed and has gone out, a connection holds no buffer; the next
 * message takes storage again (from the thread's free-list, not malloc) and is echoed. */
static void test_idle_holds_no_buffer(void)
{
    struct rig r;
    rig_start(&r, &proto_plain, 0, 0);
    CHECK_INT(conn_buffer_bytes(&r.sc.c), 0); /* nothing yet: nothing held */
    CHECK_INT(rig_recv(&r, "hello\n", 6, SIZE_MAX), 6);
    CHECK(conn_buffer_bytes(&r.sc.c) > 0); /* the echo is owed */
    CHECK(r.sc.c.in.data == NULL);         /* the input, used up, already went back */
    CHECK_INT(rig_send_all(&r), 6);
    CHECK_INT(conn_buffer_bytes(&r.sc.c), 0);
    CHECK(r.sc.msg == NULL); /* no message head kept either */

    /* A readiness driver whose receive found nothing (EAGAIN) does not keep the room: the
     * next call into the connection gives it back. */
    uint8_t *dst;
    size_t room = conn_read_buf(&r.sc.c, r.now, &dst);
    CHECK(room > 0);
    CHECK(conn_buffer_bytes(&r.sc.c) >= room);
    const uint8_t *p;
    CHECK_INT(conn_out_peek(&r.sc.c, r.now, &p), 0);
    CHECK_INT(conn_buffer_bytes(&r.sc.c), 0);

    /* Many echoes later: each took storage and gave it back, and the storage came from the
     * thread's free-list (a bounded handful of blocks), not from malloc each time. */
    struct buf_pool_stats st0, st1;
    buf_pool_stats(&st0);
    for (int i = 0; i < 200; i++) {
        CHECK_INT(rig_recv(&r, "again\n", 6, SIZE_MAX), 6);
        CHECK_INT(rig_send_all(&r), 6);
        CHECK_INT(conn_buffer_bytes(&r.sc.c), 0);
    }
    buf_pool_stats(&st1);
    CHECK(st1.fresh - st0.fresh <= 2);
    CHECK(st1.reused - st0.reused >= 400); /* an input room and an output buffer each time */
    CHECK(st1.blocks <= 2 * BUF_POOL_PER_CLASS);
    CHECK_INT(r.wirelen, 6 + 200 * 6);
    CHECK_MEM(r.wire + r.wirelen - 6, "again\n", 6);

    /* A line that arrives in pieces is echoed as it comes (RFC 862); the head kept for the
     * log lives only until the line ends. */
    CHECK_INT(rig_recv(&r, "spl", 3, SIZE_MAX), 3);
    CHECK(r.sc.msg != NULL);
    CHECK_INT(rig_send_all(&r), 3);
    CHECK_INT(conn_buffer_bytes(&r.sc.c), 0);
    CHECK_INT(rig_recv(&r, "it\n", 3, SIZE_MAX), 3);
    CHECK(r.sc.msg == NULL);
    CHECK_INT(rig_send_all(&r), 3);
    CHECK_INT(conn_buffer_bytes(&r.sc.c), 0);
    rig_end(&r);
}

/* Partial writes keep exactly what is owed, and the buffer goes back with the last byte. */
static void test_partial_writes_then_idle(void)
{
    struct rig r;
    rig_start(&r, &proto_plain, 0, 0);
    static uint8_t line[3000];
    memset(line, 'p', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\n';
    CHECK_INT(rig_recv(&r, line, sizeof(line), SIZE_MAX), sizeof(line));
    size_t sent = 0;
    while (sent < sizeof(line) - 100) {
        CHECK_INT(rig_send(&r, 100, 100), 100);
        sent += 100;
        CHECK(conn_buffer_bytes(&r.sc.c) >= sizeof(line) - sent); /* what is owed stays */
        CHECK(wants(&r, CONN_WANT_WRITE));
    }
    CHECK_INT(rig_send_all(&r), 100);
    CHECK_INT(conn_buffer_bytes(&r.sc.c), 0);
    CHECK_INT(r.wirelen, sizeof(line));
    CHECK_MEM(r.wire, line, sizeof(line));
    CHECK(wants(&r, CONN_WANT_READ));
    rig_end(&r);
}

/* Back-pressure holds the input that waits, and once the peer has read everything the
 * connection holds nothing again. */
static void test_backpressure_then_idle(void)
{
    struct rig r;
    rig_start(&r, &proto_plain, 0, 0);
    static uint8_t chunk[SERVER_READ_CHUNK];
    memset(chunk, 'b', sizeof(chunk));
    for (size_t i = 1023; i < sizeof(chunk); i += 1024)
        chunk[i] = '\n';
    size_t fed = 0;
    for (int i = 0; i < 64 && wants(&r, CONN_WANT_READ); i++)
        fed += rig_recv(&r, chunk, sizeof(chunk), sizeof(chunk));
    CHECK(!wants(&r, CONN_WANT_READ));
    CHECK(conn_buffer_bytes(&r.sc.c) >= SERVER_OUT_HIGH);
    /* The peer reads a little at a time; the engine stays bounded and correct. */
    while (rig_send(&r, 5000, 5000) > 0) {
        CHECK(buf_len(&r.sc.c.out) <= SERVER_OUT_LIMIT);
        if (wants(&r, CONN_WANT_READ))
            break;
    }
    rig_send_all(&r);
    CHECK_INT(r.wirelen, fed);
    CHECK_INT(conn_buffer_bytes(&r.sc.c), 0);
    rig_end(&r);
}

/* Moves what each side of a secure pair sends to the other until nothing moves. cw and sw
 * count the bytes of each wire already delivered. */
static void pump(struct rig *s, struct crig *c, size_t *cw, size_t *sw)
{
    for (int round = 0; round < 8; round++) {
        crig_send(c);
        if (c->wirelen > *cw)
            *cw += rig_recv(s, c->wire + *cw, c->wirelen - *cw, SIZE_MAX);
        rig_send_all(s);
        while (s->wirelen > *sw) {
            uint8_t *dst;
            size_t room = conn_read_buf(&c->c, c->now, &dst);
            if (room == 0)
                break;
            size_t k = s->wirelen - *sw < room ? s->wirelen - *sw : room;
            memcpy(dst, s->wire + *sw, k);
            conn_read_commit(&c->c, k, c->now);
            *sw += k;
        }
    }
}

/* A secure connection after its handshake and an echo holds no buffer either, in both
 * roles, and the cipher contexts it ran on are the thread's bounded cache, not its own. */
static void test_secure_idle_after_handshake(void)
{
    char key[] = "/tmp/secho-test-conn-key-XXXXXX";
    int kfd = mkstemp(key);
    CHECK(kfd >= 0);
    close(kfd);
    unlink(key); /* created 0600 by the server's context */
    rig_key_file = key;
    client_accept_new = true;
    struct rig s;
    struct crig c;
    rig_start(&s, &proto_secure, 0, 10000);
    CHECK_INT(s.init_rc, 0);
    crig_start(&c, &proto_secure, 1 << 16, 10000);
    size_t cw = 0, sw = 0;
    pump(&s, &c, &cw, &sw);
    CHECK(conn_ready(&s.sc.c));
    CHECK(conn_ready(&c.c));
    CHECK_INT(c.handshakes, 1);
    CHECK_INT(conn_buffer_bytes(&s.sc.c), 0);
    CHECK_INT(conn_buffer_bytes(&c.c), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(crig_queue(&c, "secret text"), 0);
        pump(&s, &c, &cw, &sw);
        CHECK_INT(c.msgs, i + 1);
        CHECK_INT(c.owed, 0);
        CHECK_INT(conn_buffer_bytes(&s.sc.c), 0);
        CHECK_INT(conn_buffer_bytes(&c.c), 0);
    }
    CHECK_INT(c.gotlen, 3 * 11);
    CHECK_MEM(c.got + 22, "secret text", 11);
    CHECK(crypto_aead_cache_size() <= 2 * CRYPTO_AEAD_CACHE);
    rig_end(&s);
    crig_end(&c);
    unlink(key);
    rig_key_file = NULL;
    client_accept_new = false;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* ---- the PROXY protocol stage (--proxy-protocol) ---- */

static void rig_trust(const char *cidr)
{
    rig_ntrusted = 0;
    if (cidr) {
        CHECK(net_cidr_parse(cidr, &rig_trusted[0]));
        rig_ntrusted = 1;
    }
}

static const char proxy_v1[] = "PROXY TCP4 203.0.113.9 192.0.2.1 5555 9090\r\n";

/* A trusted proxy's header, then a line, split at every offset (and the header's end in the
 * same read as the line): the header is consumed, never echoed; the line is; the peer is
 * the client the header names. */
static void test_proxy_trusted_v1_every_split(void)
{
    rig_trust("127.0.0.0/8");
    char text[128];
    size_t hl = sizeof(proxy_v1) - 1;
    size_t n = (size_t)snprintf(text, sizeof(text), "%shello\n", proxy_v1);
    for (size_t k = 0; k <= n; k++) {
        for (int feed = 0; feed < 2; feed++) {
            struct rig r;
            rig_start(&r, &proto_plain, 0, 1000);
            CHECK_INT(r.init_rc, 0);
            CHECK(!conn_ready(&r.sc.c));
            CHECK(!r.sc.connected);
            if (feed) {
                CHECK_INT(conn_feed(&r.sc.c, (const uint8_t *)text, k, r.now), k);
                rig_send_all(&r);
                CHECK_INT(conn_feed(&r.sc.c, (const uint8_t *)text + k, n - k, r.now), n - k);
            } else {
                CHECK_INT(rig_recv(&r, text, k, SIZE_MAX), k);
                rig_send_all(&r);
                CHECK_INT(rig_recv(&r, text + k, n - k, SIZE_MAX), n - k);
            }
            rig_send_all(&r);
            CHECK_INT(r.wirelen, n - hl);
            CHECK_MEM(r.wire, "hello\n", r.wirelen < 6 ? r.wirelen : 6);
            CHECK(conn_ready(&r.sc.c));
            CHECK_STR(r.sc.peer_text, "203.0.113.9:5555");
            CHECK_STR(r.sc.proxy_text, "127.0.0.1:40000");
            CHECK(r.sc.connected);
            /* Past the handshake timeout: the header came in time, the line stays open. */
            rig_at(&r, T0 + 5000);
            CHECK(!conn_closed(&r.sc.c));
            rig_end(&r);
        }
    }
    rig_trust(NULL);
}

static size_t v2_header(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body,
                        size_t nbody)
{
    memcpy(out, PROXY_HDR_V2_SIG, PROXY_HDR_V2_SIG_LEN);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(nbody >> 8);
    out[15] = (uint8_t)nbody;
    if (nbody > 0)
        memcpy(out + 16, body, nbody);
    return 16 + nbody;
}

/* Version 2, IPv6 client with TLVs; LOCAL (a health check) leaves the proxy as the peer. */
static void test_proxy_trusted_v2(void)
{
    rig_trust("127.0.0.1");
    uint8_t h[128], body[64] = {0x20, 0x01, 0x0d, 0xb8};
    body[15] = 7;
    body[16] = 0x20;
    body[17] = 0x01;
    body[31] = 1;
    body[32] = 0xc0; /* port 49153 */
    body[33] = 0x01;
    body[35] = 80;
    memcpy(body + 36, "\x01\x00\x02h2\x04\x00\x00", 8);
    size_t n = v2_header(h, 0x21, 0x21, body, 44);
    memcpy(h + n, "hi\n", 3);
    struct rig r;
    rig_start(&r, &proto_plain, 0, 1000);
    CHECK_INT(rig_recv(&r, h, n + 3, 1), n + 3);
    rig_send_all(&r);
    CHECK_INT(r.wirelen, 3);
    CHECK_STR(r.sc.peer_text, "[2001:db8::7]:49153");
    rig_end(&r);

    n = v2_header(h, 0x20, 0x00, NULL, 0);
    rig_start(&r, &proto_plain, 0, 1000);
    CHECK_INT(rig_recv(&r, h, n, SIZE_MAX), n);
    CHECK(conn_ready(&r.sc.c));
    CHECK_STR(r.sc.peer_text, "127.0.0.1:40000");
    CHECK_STR(r.sc.proxy_text, "127.0.0.1:40000");
    CHECK_INT(rig_recv(&r, "x\n", 2, SIZE_MAX), 2);
    rig_send_all(&r);
    CHECK_INT(r.wirelen, 2);
    rig_end(&r);
    rig_trust(NULL);
}

/* A trusted peer without a valid header is refused at once, nothing sent; so is one whose
 * header does not come within the handshake timeout, or that closes inside it. */
static void test_proxy_trusted_refusals(void)
{
    rig_trust("127.0.0.0/8");
    struct rig r;
    rig_start(&r, &proto_plain, 0, 1000);
    CHECK_INT(rig_recv(&r, "hello\n", 6, SIZE_MAX), 6);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "error");
    CHECK_INT(rig_send_all(&r), 0);
    CHECK(!r.sc.connected);
    rig_end(&r);

    rig_start(&r, &proto_plain, 0, 1000);
    CHECK_INT(rig_recv(&r, "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\nx", 37, SIZE_MAX), 37);
    CHECK(conn_closed(&r.sc.c));
    CHECK_INT(r.wirelen, 0);
    rig_end(&r);

    /* Silent: refused at the handshake timeout, not before. */
    rig_start(&r, &proto_plain, 0, 1000);
    CHECK_INT(conn_deadline(&r.sc.c), T0 + 1000);
    rig_at(&r, T0 + 999);
    CHECK(!conn_closed(&r.sc.c));
    rig_at(&r, T0 + 1000);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "timeout");
    rig_end(&r);

    /* A header trickled a byte at a time still has to end within the timeout. */
    rig_start(&r, &proto_plain, 0, 1000);
    for (size_t i = 0; i < 20; i++) {
        rig_at(&r, T0 + 45 * i);
        CHECK_INT(rig_recv(&r, proxy_v1 + i, 1, SIZE_MAX), 1);
    }
    rig_at(&r, T0 + 1000);
    CHECK(conn_closed(&r.sc.c));
    rig_end(&r);

    /* Without a handshake timeout the idle timeout bounds the wait. */
    rig_start(&r, &proto_plain, 3000, 0);
    CHECK_INT(conn_deadline(&r.sc.c), T0 + 3000);
    rig_at(&r, T0 + 3000);
    CHECK(conn_closed(&r.sc.c));
    rig_end(&r);

    rig_start(&r, &proto_plain, 0, 1000);
    CHECK_INT(rig_recv(&r, proxy_v1, 10, SIZE_MAX), 10);
    conn_on_eof(&r.sc.c, r.now);
    CHECK(conn_closed(&r.sc.c));
    CHECK_STR(conn_reason_name(&r.sc.c), "eof");
    rig_end(&r);

    rig_start(&r, &proto_plain, 0, 1000);
    conn_on_recv_error(&r.sc.c, ECONNRESET);
    CHECK_STR(conn_reason_name(&r.sc.c), "reset");
    rig_end(&r);

    /* Shut down while waiting for a header: closes, no refusal. */
    rig_start(&r, &proto_plain, 0, 1000);
    conn_begin_shutdown(&r.sc.c, r.now, r.now + SERVER_DRAIN_MS);
    rig_send_all(&r);
    rig_at(&r, T0 + SERVER_LINGER_MS);
    CHECK(conn_closed(&r.sc.c));
    rig_end(&r);
    rig_trust(NULL);
}

/* A server that speaks first (lab-fernet sends its key) says nothing to a trusted proxy
 * until the header is in: the client the proxy relays must hear it, not the proxy. */
static void test_proxy_greeting_waits(void)
{
    rig_trust("127.0.0.0/8");
    struct rig r;
    rig_start(&r, &proto_lab_fernet, 0, 1000);
    CHECK_INT(r.init_rc, 0);
    CHECK_INT(rig_send_all(&r), 0);
    CHECK(!wants(&r, CONN_WANT_WRITE));
    CHECK_INT(rig_recv(&r, proxy_v1, sizeof(proxy_v1) - 1, SIZE_MAX), sizeof(proxy_v1) - 1);
    CHECK_INT(rig_send_all(&r), 44); /* the key */
    CHECK_STR(r.sc.peer_text, "203.0.113.9:5555");
    rig_end(&r);
    rig_trust(NULL);
}

/* A peer that is not a trusted proxy is served as it is, unless it opens with a PROXY
 * signature: then it is refused. Bytes that may still begin one wait for the next. */
static void test_proxy_untrusted(void)
{
    rig_trust("10.0.0.0/8");
    struct rig r;
    rig_start(&r, &proto_plain, 0, 1000);
    CHECK(r.sc.connected);
    CHECK_INT(rig_recv(&r, proxy_v1, sizeof(proxy_v1) - 1, 3), 6); /* refused at "PROXY " */
    CHECK(conn_closed(&r.sc.c));
    CHECK_INT(r.wirelen, 0);
    rig_end(&r);

    uint8_t h[64];
    size_t n = v2_header(h, 0x20, 0x00, NULL, 0);
    rig_start(&r, &proto_plain, 0, 1000);
    CHECK_INT(rig_recv(&r, h, n, SIZE_MAX), n);
    CHECK(conn_closed(&r.sc.c));
    rig_end(&r);

    rig_start(&r, &proto_plain, 0, 1000);
    CHECK_INT(rig_recv(&r, "PRO", 3, SIZE_MAX), 3);
    rig_send_all(&r);
    CHECK_INT(r.wirelen, 0); /* could still be "PROXY " */
    CHECK_INT(conn_feed(&r.sc.c, (const uint8_t *)"XIMA\n", 5, r.now), 5);
    rig_send_all(&r);
    CHECK_INT(r.wirelen, 8);
    CHECK_MEM(r.wire, "PROXIMA\n", 8);
    CHECK_INT(rig_recv(&r, "PROXY later is fine\n", 20, SIZE_MAX), 20);
    rig_send_all(&r);
    CHECK_INT(r.wirelen, 28);
    CHECK(!conn_closed(&r.sc.c));
    CHECK_STR(r.sc.peer_text, "127.0.0.1:40000");
    CHECK_STR(r.sc.proxy_text, "");
    rig_end(&r);

    /* Held bytes are not lost at EOF: they were no signature after all. */
    rig_start(&r, &proto_plain, 0, 1000);
    CHECK_INT(rig_recv(&r, "\r\n", 2, SIZE_MAX), 2);
    rig_send_all(&r);
    CHECK_INT(r.wirelen, 0);
    conn_on_eof(&r.sc.c, r.now);
    rig_send_all(&r);
    CHECK_INT(r.wirelen, 2);
    rig_end(&r);

    /* The first bytes decide; a plain line goes straight through. */
    rig_start(&r, &proto_plain, 0, 1000);
    CHECK_INT(rig_recv(&r, "hello\n", 6, 1), 6);
    rig_send_all(&r);
    CHECK_INT(r.wirelen, 6);
    rig_end(&r);
    rig_trust(NULL);
}

/* Behind a proxy on loopback, a client elsewhere is not local: `shutdown` is denied under
 * --allow-shutdown loopback; one the header says is on loopback may. */
static void test_proxy_shutdown_rule(void)
{
    rig_trust("127.0.0.0/8");
    struct rig r;
    rig_start(&r, &proto_plain, 0, 1000);
    r.srv.conf.allow_shutdown = ALLOW_LOOPBACK;
    const char *in = "PROXY TCP4 203.0.113.9 192.0.2.1 5555 9090\r\nshutdown\n";
    CHECK_INT(rig_recv(&r, in, strlen(in), SIZE_MAX), strlen(in));
    rig_send_all(&r);
    CHECK(!atomic_load(&r.srv.stopping));
    CHECK(r.wirelen > 9 && memmem(r.wire, r.wirelen, SERVER_DENIED_TEXT, 29) != NULL);
    rig_end(&r);

    rig_start(&r, &proto_plain, 0, 1000);
    r.srv.conf.allow_shutdown = ALLOW_LOOPBACK;
    in = "PROXY TCP4 127.0.0.1 127.0.0.1 5555 9090\r\nshutdown\n";
    CHECK_INT(rig_recv(&r, in, strlen(in), SIZE_MAX), strlen(in));
    CHECK(atomic_load(&r.srv.stopping));
    rig_end(&r);
    rig_trust(NULL);
}

static void test_cidr(void)
{
    struct net_cidr c;
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    CHECK(net_cidr_parse("10.1.2.3/8", &c));
    char t[NET_ADDRSTRLEN];
    net_cidr_format(&c, t, sizeof(t));
    CHECK_STR(t, "10.0.0.0/8");
    inet_pton(AF_INET, "10.255.0.1", &in.sin_addr);
    CHECK(net_cidr_match(&c, (struct sockaddr *)&in));
    inet_pton(AF_INET, "11.0.0.1", &in.sin_addr);
    CHECK(!net_cidr_match(&c, (struct sockaddr *)&in));
    inet_pton(AF_INET6, "::ffff:10.9.9.9", &in6.sin6_addr); /* a dual-stack socket's IPv4 peer */
    CHECK(net_cidr_match(&c, (struct sockaddr *)&in6));
    CHECK(net_cidr_parse("[2001:db8::]/33", &c));
    net_cidr_format(&c, t, sizeof(t));
    CHECK_STR(t, "2001:db8::/33");
    inet_pton(AF_INET6, "2001:db8:7fff::1", &in6.sin6_addr);
    CHECK(net_cidr_match(&c, (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "2001:db8:8000::1", &in6.sin6_addr);
    CHECK(!net_cidr_match(&c, (struct sockaddr *)&in6));
    CHECK(!net_cidr_match(&c, (struct sockaddr *)&in));
    CHECK(net_cidr_parse("::1", &c) && c.prefix == 128);
    CHECK(net_cidr_parse("0.0.0.0/0", &c));
    CHECK(net_cidr_match(&c, (struct sockaddr *)&in));
    CHECK(net_cidr_parse("127.0.0.1", &c) && c.prefix == 32);
    const char *bad[] = {"",           "/8",          "10.0.0.0/",    "10.0.0.0/33",
                         "::/129",     "10.0.0.0/08", "10.0.0.0/-1",  "10.0.0",
                         "[10.0.0.1]", "[::1",        "host.example", "10.0.0.0/8/8",
                         "1.2.3.4 ",   "::1/1x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (net_cidr_parse(bad[i], &c)) {
            fprintf(stderr, "accepted bad cidr '%s'\n", bad[i]);
            check_failures++;
        }
}

int main(void)
{
    char path[] = "/tmp/secho-test-conn-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_INT(log_open(path), 0);

    test_plain_split_reads();
    test_plain_byte_writes_and_feed();
    test_plain_backpressure();
    test_plain_peer_eof_delivers();
    test_plain_exit_half_close_linger();
    test_plain_drain_deadline();
    test_plain_reset_and_errors();
    test_plain_idle_timeout();
    test_plain_shutdown();
    test_labdh_greeting_paced_and_handshake_timeout();
    test_labdh_paced_echo();
    test_labdh_shutdown_waits_for_pause();
    test_fernet_split_every_offset();
    test_fernet_bad_token_is_error();
    test_fernet_fault_in_pause_peek_goes_on();
    test_fernet_pipelined_under_backpressure();
    test_fernet_record_timeout();
    test_plain_line_record_timeout();
    test_plain_stream_flows();
    test_client_labdh_paced_key_and_echo();
    test_client_backpressure();
    test_client_marks_backpressure();
    test_client_finish_sequence();
    test_client_peer_closes_first();
    test_client_timeouts();
    test_idle_holds_no_buffer();
    test_partial_writes_then_idle();
    test_backpressure_then_idle();
    test_secure_idle_after_handshake();
    test_proxy_trusted_v1_every_split();
    test_proxy_trusted_v2();
    test_proxy_trusted_refusals();
    test_proxy_greeting_waits();
    test_proxy_untrusted();
    test_proxy_shutdown_rule();
    test_cidr();

    log_close();
    static char text[1 << 20];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    CHECK(n > 0);
    text[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(path);
    /* Every connection logs connect and disconnect once, as the server's log always did. */
    size_t connects = count(text, "event=connect ");
    CHECK(connects > 50);
    CHECK_INT(count(text, "event=disconnect "), connects);
    /* Behind a trusted proxy: the client as the peer, the proxy beside it; refusals. */
    CHECK(strstr(text, "event=connect peer=203.0.113.9:5555 conn=1 proxy=127.0.0.1:40000\n"));
    CHECK(strstr(text, "event=connect peer=127.0.0.1:40000 conn=1 proxy=127.0.0.1:40000\n"));
    CHECK(strstr(text, "event=message peer=[2001:db8::7]:49153 conn=1 bytes=2\n"));
    CHECK(strstr(text, "event=denied peer=127.0.0.1:40000 conn=1 reason=proxy_header "
                       "error=\"not a PROXY protocol header\"\n"));
    CHECK(strstr(text, "reason=proxy_header error=\"bad port in PROXY v1 line\"\n"));
    CHECK(strstr(text, "reason=proxy_header error=\"no PROXY header within the handshake "
                       "timeout\"\n"));
    CHECK(strstr(text, "event=denied peer=127.0.0.1:40000 conn=1 reason=untrusted_proxy\n"));
    CHECK(strstr(text, "event=denied peer=203.0.113.9:5555 conn=1 command=shutdown\n"));
    CHECK(strstr(text, "event=connect peer=127.0.0.1:40000 conn=1\n") != NULL);
    CHECK(strstr(text, "event=timeout peer=") != NULL);
    CHECK(strstr(text, " what=handshake") != NULL);
    CHECK(strstr(text, " what=record\n") != NULL);
    CHECK(strstr(text, "event=disconnect peer=127.0.0.1:40000 conn=1 reason=") != NULL);
    CHECK(strstr(text, "reason=shutdown\n") != NULL);
    CHECK(strstr(text, "event=message peer=127.0.0.1:40000 conn=") != NULL);
    return CHECK_DONE();
}
