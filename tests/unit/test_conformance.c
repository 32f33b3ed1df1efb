/* SPDX-License-Identifier: MIT */
/* One conformance harness for every registered protocol: it drives each one through struct
 * proto_vt alone (TCP and UDP forms), so a new protocol gets these tests by registering. */
#include "check.h"
#include "proto.h"

/*
 * For each protocol of proto_at(), with a server and a client conn from proto_conn_new:
 *   TCP: a handshake plus messages of 0 (if the protocol sends empty messages), 1 and 100
 *        bytes echoed back, every transfer delivered whole, byte by byte and cut at every
 *        offset (so every truncated prefix must give PROTO_NEED_MORE, never an error or an
 *        early message); the largest message whole and byte by byte; conn_ready false until
 *        the one PROTO_HANDSHAKE (none for a conn ready from conn_init), writes refused
 *        before it; pause marks only from PROTO_F_PACED protocols, at the end of each record,
 *        never changing the bytes; every bit of a record flipped, both ways, refused by an
 *        authenticated protocol.
 *   UDP (dgram_* set): dgram_new/conn_init/dgram_read/dgram_write as udp.c calls them, round
 *        trips up to the largest message (whose datagram must fit UDP), datagrams reordered
 *        and duplicated (copies refused where replay-protected), and for authenticated
 *        protocols every bit flip and truncation of a datagram refused without ending the
 *        session.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <unistd.h>

/*
 * What a protocol promises beyond the interface. This is the one table keyed by name: the
 * interface has no flag for it yet. A protocol without a row is held to the strictest rules.
 */
struct traits {
    const char *name;
    bool authenticated;    /* a flipped bit in a record or datagram gives a negative result */
    bool replay_protected; /* UDP: a datagram delivered twice is refused the second time */
};

static const struct traits traits_table[] = {
    {"plain", false, false},     /* RFC 862 echo: bytes in clear, no integrity at all */
    {"secure", true, true},      /* Noise AEAD records; UDP keeps a replay window */
    {"lab-dh", false, false},    /* AES-CFB without a MAC, the notebook's design (lab_dh.c) */
    {"lab-fernet", true, false}, /* HMAC per token, no counter: a copy verifies again */
    {"tls", true, true},         /* TLS 1.3 AEAD records (no UDP form) */
};

/*
 * Cases a protocol is known to fail, each reported to the lead rather than fixed here (the
 * harness owns no protocol code). A listed case must still fail: if it passes, that is an
 * error, so the row is removed once the protocol is fixed.
 */
struct xfail {
    const char *name;  /* protocol */
    const char *check; /* case, as named in the calls to case_begin */
    const char *why;
};

static const struct xfail expected_failure[] = {
    {NULL, NULL, NULL},
};

/* Largest message a probe tries: a TCP stream has no natural bound, a UDP datagram does
 * (the largest IPv4 UDP payload). */
#define CONF_TCP_CAP   65536
#define CONF_DGRAM_CAP 65507

/* Sessions the cut-at-every-offset loop may run per protocol. A longer transcript (lab-dh's
 * PEM handshake, where each session costs two 2048-bit DH key pairs) is cut at every offset
 * below CONF_CUT_EVERY (short handshake messages such as lab-fernet's key) and at spread
 * offsets of rotating residues beyond; test_proto_lab.c still cuts lab-dh's handshake at
 * every offset. */
#define CONF_CUT_SESSIONS 240
#define CONF_CUT_EVERY    80

#define MAXMSGS  16
#define MAXSPANS 64

static char tmpdir[128], srv_key[200], cli_key[200], known_hosts[200];

/* ---- cases that may be listed in expected_failure ---- */

struct xcase {
    const struct proto_vt *vt;
    const char *check;
    const char *why;
    int before;
};

static void case_begin(struct xcase *x, const struct proto_vt *vt, const char *check)
{
    x->vt = vt;
    x->check = check;
    x->why = NULL;
    x->before = check_failures;
    for (size_t i = 0; expected_failure[i].name; i++)
        if (strcmp(expected_failure[i].name, vt->name) == 0 &&
            strcmp(expected_failure[i].check, check) == 0)
            x->why = expected_failure[i].why;
}

static void case_end(struct xcase *x)
{
    if (!x->why)
        return;
    if (check_failures == x->before) {
        fprintf(stderr, "%s: %s: listed in expected_failure but passed: remove the row\n",
                x->vt->name, x->check);
        check_failures++;
    } else {
        fprintf(stderr, "%s: %s: the failures above are expected (%s)\n", x->vt->name, x->check,
                x->why);
        check_failures = x->before;
    }
}

/* ---- environment ---- */

struct env {
    const struct proto_vt *vt;
    struct traits tr;
    void *sctx, *cctx;
};

/* Options every protocol can take: fields a protocol does not use are ignored. The secure
 * client trusts a new server key into a temporary known_hosts (the tls client its
 * certificate's fingerprint); lab-dh uses its built-in group; the tls server, given no
 * files, an ephemeral self-signed certificate. */
static struct proto_opts opts_for(const struct proto_vt *vt, enum proto_role role, bool dgram)
{
    struct proto_opts o = {.max_msg = 1 << 20, .dgram = dgram};
    if (role == PROTO_SERVER) {
        if (!(vt->flags & PROTO_F_CERTS))
            o.key_file = srv_key;
    } else {
        o.key_file = cli_key;
        o.known_hosts = known_hosts;
        o.host_id = "127.0.0.1:7";
        o.accept_new = true;
    }
    return o;
}

static void *ctx_make(const struct proto_vt *vt, enum proto_role role, bool dgram)
{
    void *ctx = NULL;
    char err[PROTO_ERRLEN] = "";
    struct proto_opts o = opts_for(vt, role, dgram);
    if (!vt->ctx_new)
        return NULL;
    int r = vt->ctx_new(&o, role, &ctx, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "%s: ctx_new: %s\n", vt->name, err);
    CHECK_INT(r, 0);
    return ctx;
}

static void env_open(struct env *e, const struct proto_vt *vt, bool dgram)
{
    memset(e, 0, sizeof(*e));
    e->vt = vt;
    e->tr = (struct traits){vt->name, true, true};
    for (size_t i = 0; i < sizeof(traits_table) / sizeof(traits_table[0]); i++)
        if (strcmp(traits_table[i].name, vt->name) == 0)
            e->tr = traits_table[i];
    e->sctx = ctx_make(vt, PROTO_SERVER, dgram);
    e->cctx = ctx_make(vt, PROTO_CLIENT, dgram);
}

static void env_close(struct env *e)
{
    if (e->vt->ctx_free) {
        e->vt->ctx_free(e->sctx);
        e->vt->ctx_free(e->cctx);
    }
}

/* Deterministic message bytes: message `seed` of `len` bytes. */
static uint8_t *msg_bytes(size_t len, unsigned seed)
{
    uint8_t *m = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        m[i] = (uint8_t)(i * 131 + 7 + seed * 17);
    return m;
}

/* ---- one end of a connection ---- */

struct end {
    const struct proto_vt *vt;
    enum proto_role role;
    void *conn;
    struct buf out;
    struct buf_marks marks; /* out takes pause marks, whether the protocol paces or not */
    bool ready_at_init;
    bool was_ready;
    bool silent_ready; /* conn_ready turned true without PROTO_HANDSHAKE */
    int handshakes;
    int err; /* the first negative result of a read */
    /* Stream offsets [from, to) of out that conn_write produced: the records. */
    uint64_t span_from[MAXSPANS], span_to[MAXSPANS];
    size_t nspans;
    /* Decoded bytes in order; for message protocols also each message's length. */
    struct buf got;
    size_t nmsg, lens[MAXMSGS];
    bool in_msg;
    size_t msg_start; /* offset in got where the current message began */
    /* What this end sent with conn_write (successful writes only). */
    struct buf sent;
    size_t nsent, sent_lens[MAXMSGS];
};

static bool stream_echo(const struct proto_vt *vt)
{
    return vt->flags & PROTO_F_STREAM_ECHO;
}

static bool paced(const struct proto_vt *vt)
{
    return vt->flags & PROTO_F_PACED;
}

static void end_init(struct end *x, const struct proto_vt *vt, enum proto_role role)
{
    memset(x, 0, sizeof(*x));
    x->vt = vt;
    x->role = role;
    buf_init(&x->out, 1 << 20);
    buf_attach_marks(&x->out, &x->marks);
    buf_init(&x->got, 1 << 20);
    buf_init(&x->sent, 1 << 20);
}

static int end_open(struct end *x, void *ctx)
{
    int r = proto_conn_new(x->vt, ctx, x->role, &x->out, &x->conn);
    CHECK_INT(r, 0);
    if (r == 0)
        x->ready_at_init = x->was_ready = x->vt->conn_ready(x->conn);
    return r;
}

static void end_close(struct end *x)
{
    proto_conn_free(x->vt, x->conn);
    buf_free(&x->out);
    buf_free(&x->got);
    buf_free(&x->sent);
}

/* conn_write (or dgram_write) with the checks every write owes: on failure out is unchanged;
 * on success a paced protocol ends the record at a pause mark and no other protocol marks
 * pauses at all (pauses say where a writer waits, never what it sends). */
static int end_write(struct end *x, const uint8_t *m, size_t len, bool dgram)
{
    uint64_t before = x->out.consumed + buf_len(&x->out);
    unsigned np = buf_pauses(&x->out);
    int r = dgram ? x->vt->dgram_write(x->conn, m, len, &x->out)
                  : x->vt->conn_write(x->conn, m, len, &x->out);
    uint64_t after = x->out.consumed + buf_len(&x->out);
    if (r < 0) {
        CHECK_INT(after, before);
        CHECK_INT(buf_pauses(&x->out), np);
        return r;
    }
    CHECK_INT(r, 0);
    if (dgram || !paced(x->vt)) {
        CHECK_INT(buf_pauses(&x->out), 0);
    } else {
        CHECK(buf_pauses(&x->out) > np);
        CHECK(buf_pauses(&x->out) > 0 && x->marks.at[buf_pauses(&x->out) - 1] == after);
    }
    if (!dgram && paced(x->vt)) {
        /* Only a paced protocol's delivery needs them; spans already sent are dropped. */
        size_t k = 0;
        for (size_t i = 0; i < x->nspans; i++)
            if (x->span_to[i] > x->out.consumed) {
                x->span_from[k] = x->span_from[i];
                x->span_to[k++] = x->span_to[i];
            }
        x->nspans = k;
        CHECK(x->nspans < MAXSPANS);
        if (x->nspans < MAXSPANS) {
            x->span_from[x->nspans] = before;
            x->span_to[x->nspans++] = after;
        }
    }
    CHECK_INT(buf_append(&x->sent, m, len), 0);
    if (x->nsent < MAXMSGS)
        x->sent_lens[x->nsent++] = len;
    return 0;
}

/* Records a decoded TCP message or fragment; the server echoes, as the real server does (a
 * stream-echo protocol each fragment at once, others each whole message). */
static void end_got(struct end *x, const struct proto_msg *m)
{
    CHECK(m->first == !x->in_msg);
    if (m->first)
        x->msg_start = buf_len(&x->got);
    CHECK_INT(buf_append(&x->got, m->data, m->len), 0);
    x->in_msg = !m->last;
    if (m->last && x->nmsg < MAXMSGS)
        x->lens[x->nmsg] = buf_len(&x->got) - x->msg_start;
    if (m->last)
        x->nmsg++;
    if (x->role != PROTO_SERVER)
        return;
    size_t from = stream_echo(x->vt) ? buf_len(&x->got) - m->len : x->msg_start;
    if (stream_echo(x->vt) || m->last) {
        size_t n = buf_len(&x->got) - from;
        uint8_t *copy = malloc(n + 1);
        if (n)
            memcpy(copy, buf_head(&x->got) + from, n);
        CHECK_INT(end_write(x, copy, n, false), 0);
        free(copy);
    }
}

/* Counts a reported handshake and checks that conn_ready turns true exactly then: never
 * without PROTO_HANDSHAKE, and PROTO_HANDSHAKE at most once. */
static void end_ready_step(struct end *x, int r)
{
    bool ready = x->vt->conn_ready(x->conn);
    if (r == PROTO_HANDSHAKE) {
        x->handshakes++;
        CHECK(ready);
        CHECK(!x->was_ready);
    } else if (ready && !x->was_ready) {
        fprintf(stderr, "%s %s: ready without PROTO_HANDSHAKE (result %d)\n", x->vt->name,
                x->role == PROTO_SERVER ? "server" : "client", r);
        x->silent_ready = true;
    }
    CHECK(!x->was_ready || ready); /* once ready, ready for good */
    x->was_ready = ready;
}

/* ---- TCP form ---- */

/* One read batch, looping as an I/O model does until PROTO_NEED_MORE. Everything offered
 * must be consumed by then. Each call must make progress: consume a byte, or report the
 * handshake or a message. A message may come without input (a protocol that decodes a
 * record of several lines hands them over one call at a time: conn_pending), but never
 * an empty one without input, and never more bytes of messages than were ever fed. */
static void feed(struct end *x, const uint8_t *p, size_t n)
{
    size_t stuck = 0;
    for (size_t guard = 0; stuck < 8 && guard < 4 * n + (1u << 17) && !x->err; guard++) {
        size_t used = n;
        struct proto_msg m = {0};
        int r = x->vt->conn_read(x->conn, p, &used, &x->out, &m);
        if (used == 0 && r != PROTO_HANDSHAKE && (r != PROTO_MSG || m.len == 0))
            stuck++;
        CHECK(used <= n);
        if (used > n)
            used = n;
        p += used;
        n -= used;
        if (r < 0) {
            x->err = r;
            return;
        }
        end_ready_step(x, r);
        if (r == PROTO_NEED_MORE) {
            CHECK_INT(n, 0);
            return;
        }
        if (r == PROTO_MSG)
            end_got(x, &m);
        else
            CHECK_INT(r, PROTO_HANDSHAKE);
    }
    if (!x->err)
        CHECK(!"conn_read did not settle");
}

/* Delivery modes: 0 whole, 1 byte by byte, k + 2: cut at offset k. */
#define MODE_WHOLE  0
#define MODE_BYTES  1
#define MODE_CUT(k) ((k) + 2)

static void feed_mode(struct end *x, const uint8_t *p, size_t a, size_t b, size_t mode)
{
    if (mode == MODE_BYTES) {
        for (size_t i = a; i < b && !x->err; i++)
            feed(x, p + i, 1);
    } else if (mode >= 2 && mode - 2 > a && mode - 2 < b) {
        feed(x, p + a, mode - 2 - a);
        if (!x->err)
            feed(x, p + mode - 2, b - (mode - 2));
    } else {
        feed(x, p + a, b - a);
    }
}

/*
 * Moves everything `from` has queued to `to` in `mode`, with bit `flip` (if not SIZE_MAX) of
 * the transfer inverted in flight. Walking the pause-delimited parts must give back exactly
 * the queued bytes. A paced protocol may rely on each part a writer sends between pauses
 * reaching the peer as one read (the notebook's recv(1024) peers), so there no two parts are
 * merged, records (parts holding conn_write bytes) go as one batch each, and only handshake
 * parts are cut as `mode` says. Any other protocol gets the whole transfer cut as `mode`
 * says. Returns the transfer's length.
 */
static size_t transfer(struct end *from, struct end *to, size_t mode, size_t flip)
{
    size_t n = buf_len(&from->out);
    if (n == 0)
        return 0;
    uint64_t base = from->out.consumed;
    uint8_t *copy = malloc(n);
    size_t *ends = malloc((n + 1) * sizeof(*ends));
    size_t nparts = 0, walked = 0;
    memcpy(copy, buf_head(&from->out), n);
    while (!buf_empty(&from->out)) {
        size_t s = buf_sendable(&from->out);
        if (s == 0) {
            CHECK(buf_pause_reached(&from->out));
            continue;
        }
        CHECK_MEM(buf_head(&from->out), copy + walked, s);
        buf_consume(&from->out, s);
        walked += s;
        ends[nparts++] = walked;
        if (!buf_pause_reached(&from->out))
            CHECK(buf_empty(&from->out));
    }
    CHECK_INT(walked, n);
    CHECK_INT(buf_pauses(&from->out), 0);
    if (!paced(from->vt))
        CHECK_INT(nparts, 1);
    if (flip != SIZE_MAX && flip / 8 < n)
        copy[flip / 8] ^= (uint8_t)(1u << (flip % 8));
    for (size_t i = 0, at = 0; i < nparts && !to->err; at = ends[i++]) {
        bool record = false;
        for (size_t k = 0; k < from->nspans; k++)
            if (from->span_from[k] < base + ends[i] && from->span_to[k] > base + at)
                record = true;
        if (!paced(from->vt))
            feed_mode(to, copy, at, ends[i], mode);
        else
            feed_mode(to, copy, at, ends[i], record ? MODE_WHOLE : mode);
    }
    free(ends);
    free(copy);
    return n;
}

struct msgset {
    size_t n;
    size_t lens[MAXMSGS];
};

struct pair {
    struct end s, c;
    size_t longest; /* longest transfer seen */
};

/* Opens a server and a client conn; neither may write before it is ready. */
static void pair_open(struct pair *p, const struct env *e)
{
    memset(p, 0, sizeof(*p));
    end_init(&p->s, e->vt, PROTO_SERVER);
    end_init(&p->c, e->vt, PROTO_CLIENT);
    if (end_open(&p->s, e->sctx) || end_open(&p->c, e->cctx))
        return;
    struct end *both[2] = {&p->s, &p->c};
    for (int i = 0; i < 2; i++)
        if (!both[i]->ready_at_init) {
            CHECK(end_write(both[i], (const uint8_t *)"x", 1, false) < 0);
            both[i]->nsent = 0; /* in case it was wrongly taken: keep later checks exact */
            buf_reset(&both[i]->sent);
        }
}

static void pair_close(struct pair *p)
{
    end_close(&p->s);
    end_close(&p->c);
}

/* Handshake, then the client's messages, queued as soon as it is ready (so they travel
 * with its last handshake bytes) and echoed by the server; every transfer in `mode`. */
static void pair_run(struct pair *p, const struct msgset *ms, size_t mode)
{
    bool queued = false;
    for (int round = 0; round < 8 && !p->s.err && !p->c.err; round++) {
        if (!queued && p->c.conn && p->c.vt->conn_ready(p->c.conn)) {
            for (size_t i = 0; i < ms->n; i++) {
                uint8_t *m = msg_bytes(ms->lens[i], (unsigned)i);
                int r = end_write(&p->c, m, ms->lens[i], false);
                /* An empty message may be refused (lab-dh cannot send one), never with
                 * anything but an error. */
                if (ms->lens[i] > 0)
                    CHECK_INT(r, 0);
                free(m);
            }
            queued = true;
        }
        size_t a = transfer(&p->c, &p->s, mode, SIZE_MAX);
        size_t b = transfer(&p->s, &p->c, mode, SIZE_MAX);
        p->longest = a > p->longest ? a : p->longest;
        p->longest = b > p->longest ? b : p->longest;
        if (queued && a == 0 && b == 0 && buf_empty(&p->c.out))
            break;
    }
}

/* The session's results: no errors, both ready after one handshake each (none if ready
 * from the start), and the server got and the client got back exactly what was sent. */
static void pair_check(struct pair *p)
{
    CHECK_INT(p->s.err, 0);
    CHECK_INT(p->c.err, 0);
    if (p->s.err || p->c.err)
        fprintf(stderr, "%s: server %s, client %s\n", p->s.vt->name, proto_strerror(p->s.err),
                proto_strerror(p->c.err));
    if (!p->s.conn || !p->c.conn)
        return;
    CHECK(p->s.vt->conn_ready(p->s.conn));
    CHECK(p->c.vt->conn_ready(p->c.conn));
    CHECK_INT(p->s.handshakes, p->s.ready_at_init ? 0 : 1);
    CHECK_INT(p->c.handshakes, p->c.ready_at_init ? 0 : 1);
    CHECK(!p->s.silent_ready && !p->c.silent_ready);
    struct end *recv[2] = {&p->s, &p->c};
    for (int i = 0; i < 2; i++) {
        struct end *x = recv[i];
        CHECK_INT(buf_len(&x->got), buf_len(&p->c.sent));
        if (buf_len(&x->got) == buf_len(&p->c.sent) && buf_len(&x->got) > 0)
            CHECK_MEM(buf_head(&x->got), buf_head(&p->c.sent), buf_len(&x->got));
        if (stream_echo(x->vt))
            continue; /* lines, not messages: only the bytes are the contract */
        CHECK_INT(x->nmsg, p->c.nsent);
        for (size_t k = 0; k < x->nmsg && k < p->c.nsent && k < MAXMSGS; k++)
            CHECK_INT(x->lens[k], p->c.sent_lens[k]);
        CHECK(!x->in_msg);
    }
}

/* A whole session in `mode`; returns its longest transfer. */
static size_t session(const struct env *e, const struct msgset *ms, size_t mode)
{
    struct pair p;
    pair_open(&p, e);
    pair_run(&p, ms, mode);
    pair_check(&p);
    size_t longest = p.longest;
    pair_close(&p);
    return longest;
}

/* The largest message the protocol encodes, as it states it (test_registry checks that the
 * statement is exact), capped at what a probe tries. */
static size_t largest_msg(struct end *c, bool dgram, size_t cap)
{
    size_t n = proto_max_msg(c->vt, dgram);
    return n < cap ? n : cap;
}

static size_t tcp_largest(const struct env *e)
{
    struct pair p;
    struct msgset none = {0};
    pair_open(&p, e);
    pair_run(&p, &none, MODE_WHOLE);
    pair_check(&p);
    size_t n = largest_msg(&p.c, false, CONF_TCP_CAP);
    pair_close(&p);
    return n;
}

/* What went wrong over all flipped records. */
struct flips {
    int accepted; /* not refused, or a message delivered */
    int unsaid;   /* refused, but conn_error (where the protocol has it) says nothing */
    int revived;  /* a refused conn read more input without an error */
};

/*
 * A record with one bit flipped, from client to server (to_server) or back. An authenticated
 * protocol must refuse it: at once, or (when the flip made a length longer) once more genuine
 * records have filled that length; it must never deliver a message from it, must say why
 * (conn_error), and the conn stays dead.
 */
static void tcp_flip(const struct env *e, bool to_server, size_t bit, size_t largest,
                     struct flips *f)
{
    struct pair p;
    struct msgset none = {0};
    pair_open(&p, e);
    pair_run(&p, &none, MODE_WHOLE);
    struct end *w = to_server ? &p.c : &p.s, *r = to_server ? &p.s : &p.c;
    uint8_t *big = msg_bytes(largest, 9);
    CHECK_INT(end_write(w, (const uint8_t *)"F", 1, false), 0);
    size_t n = transfer(w, r, MODE_WHOLE, bit);
    for (int i = 0; i < 3 && !r->err && r->nmsg == 0 && bit / 8 < n; i++) {
        CHECK_INT(end_write(w, big, largest, false), 0);
        transfer(w, r, MODE_WHOLE, SIZE_MAX);
    }
    if (bit / 8 < n && (r->err == 0 || r->nmsg != 0 || buf_len(&r->got) != 0)) {
        if (f->accepted < 5)
            fprintf(stderr, "%s: %s record, bit %zu flipped: result %d, %zu message(s)\n",
                    e->vt->name, to_server ? "client" : "server", bit, r->err, r->nmsg);
        f->accepted++;
    }
    if (r->err < 0) {
        const char *why = e->vt->conn_error ? e->vt->conn_error(r->conn) : "-";
        if (!why || !why[0])
            f->unsaid++;
        size_t one = 1;
        struct proto_msg m;
        if (e->vt->conn_read(r->conn, (const uint8_t *)"F", &one, &r->out, &m) >= 0)
            f->revived++;
    }
    free(big);
    pair_close(&p);
}

static void test_tcp(const struct proto_vt *vt)
{
    struct env e;
    struct xcase x;
    env_open(&e, vt, false);
    size_t largest = tcp_largest(&e);
    fprintf(stderr, "%s: TCP, largest message %zu\n", vt->name, largest);

    /* A small transcript: whole, byte by byte, and cut at every offset of every transfer. */
    struct msgset small = {3, {0, 1, 100}};
    case_begin(&x, vt, "tcp-whole");
    size_t longest = session(&e, &small, MODE_WHOLE);
    case_end(&x);
    case_begin(&x, vt, "tcp-bytes");
    session(&e, &small, MODE_BYTES);
    case_end(&x);
    case_begin(&x, vt, "tcp-cut");
    size_t cuts = longest > 1 ? longest - 1 : 0, every = cuts, stride = 1;
    if (cuts > CONF_CUT_SESSIONS) {
        every = CONF_CUT_EVERY;
        stride = (cuts - every + CONF_CUT_SESSIONS - every - 1) / (CONF_CUT_SESSIONS - every);
        fprintf(stderr, "%s: transfers up to %zu bytes: cut at offsets 1..%zu, then one in %zu\n",
                vt->name, longest, every, stride);
    }
    for (size_t k = 1; k <= every; k++)
        session(&e, &small, MODE_CUT(k));
    for (size_t i = 0; every + 1 + i * stride <= cuts; i++)
        session(&e, &small, MODE_CUT(every + 1 + i * stride + i % stride));
    case_end(&x);

    /* The largest message, then a one-byte one behind it, whole and byte by byte. */
    struct msgset big = {2, {largest, 1}};
    case_begin(&x, vt, "tcp-largest");
    session(&e, &big, MODE_WHOLE);
    session(&e, &big, MODE_BYTES);
    case_end(&x);

    /* Every bit of a one-byte message's record, both ways. */
    if (e.tr.authenticated) {
        case_begin(&x, vt, "tcp-flip");
        struct pair p;
        pair_open(&p, &e);
        struct msgset none = {0};
        pair_run(&p, &none, MODE_WHOLE);
        CHECK_INT(end_write(&p.c, (const uint8_t *)"F", 1, false), 0);
        size_t reclen = buf_len(&p.c.out);
        pair_close(&p);
        struct flips f = {0};
        for (size_t bit = 0; bit < reclen * 8; bit++) {
            tcp_flip(&e, true, bit, largest, &f);
            tcp_flip(&e, false, bit, largest, &f);
        }
        CHECK_INT(f.accepted, 0);
        CHECK_INT(f.unsaid, 0);
        CHECK_INT(f.revived, 0);
        case_end(&x);
    }
    env_close(&e);
}

/* ---- UDP form ---- */

struct dg {
    uint8_t *b;
    size_t n;
};

#define MAXDG 16

struct dgq {
    struct dg d[MAXDG];
    size_t n;
};

/* Whatever the last call put into b is one datagram; no pause marks over UDP. */
static void dg_take(struct buf *b, struct dgq *q)
{
    CHECK_INT(buf_pauses(b), 0);
    if (!buf_empty(b)) {
        CHECK(q->n < MAXDG);
        if (q->n < MAXDG) {
            q->d[q->n].n = buf_len(b);
            q->d[q->n].b = malloc(buf_len(b) + 1);
            memcpy(q->d[q->n++].b, buf_head(b), buf_len(b));
        }
    }
    buf_reset(b);
}

static struct dg dg_pop(struct dgq *q)
{
    struct dg d = q->d[0];
    memmove(q->d, q->d + 1, (q->n - 1) * sizeof(q->d[0]));
    q->n--;
    return d;
}

static void dgq_clear(struct dgq *q)
{
    while (q->n)
        free(dg_pop(q).b);
}

struct upair {
    const struct env *e;
    struct end s, c;
    bool session; /* the server made a conn for the client's address */
    struct sockaddr_in addr;
    struct dgq c2s, s2c;
};

/* One datagram into the server, as udp.c does: dgram_new for an address without a session
 * (1: conn_init, whose output is one datagram, then dgram_read with the same datagram). */
static int udp_server_in(struct upair *p, const uint8_t *d, size_t n, struct proto_msg *m)
{
    const struct proto_vt *vt = p->e->vt;
    if (!p->session) {
        int r = vt->dgram_new(p->e->sctx, (const struct sockaddr *)&p->addr, sizeof(p->addr), d, n,
                              &p->s.out);
        dg_take(&p->s.out, &p->s2c);
        if (r != 1) {
            CHECK(r < 0);
            return r;
        }
        if (end_open(&p->s, p->e->sctx))
            return PROTO_E_STATE;
        dg_take(&p->s.out, &p->s2c);
        p->session = true;
    }
    int r = vt->dgram_read(p->s.conn, d, n, &p->s.out, m);
    dg_take(&p->s.out, &p->s2c);
    end_ready_step(&p->s, r);
    return r;
}

static int udp_client_in(struct upair *p, const uint8_t *d, size_t n, struct proto_msg *m)
{
    int r = p->e->vt->dgram_read(p->c.conn, d, n, &p->c.out, m);
    dg_take(&p->c.out, &p->c2s);
    end_ready_step(&p->c, r);
    return r;
}

static int udp_in(struct upair *p, bool to_server, const struct dg *d, struct proto_msg *m)
{
    return to_server ? udp_server_in(p, d->b, d->n, m) : udp_client_in(p, d->b, d->n, m);
}

/* A client conn and a handshake: datagrams go back and forth until none is left. */
static void upair_open(struct upair *p, const struct env *e, uint16_t port)
{
    memset(p, 0, sizeof(*p));
    p->e = e;
    p->addr.sin_family = AF_INET;
    p->addr.sin_port = htons(port);
    p->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    end_init(&p->s, e->vt, PROTO_SERVER);
    end_init(&p->c, e->vt, PROTO_CLIENT);
    if (end_open(&p->c, e->cctx))
        return;
    dg_take(&p->c.out, &p->c2s);
    for (int round = 0; round < 8 && (p->c2s.n || p->s2c.n); round++) {
        struct proto_msg m;
        while (p->c2s.n) {
            struct dg d = dg_pop(&p->c2s);
            int r = udp_server_in(p, d.b, d.n, &m);
            CHECK(r == PROTO_NEED_MORE || r == PROTO_HANDSHAKE || r == PROTO_DROP);
            free(d.b);
        }
        while (p->s2c.n) {
            struct dg d = dg_pop(&p->s2c);
            int r = udp_client_in(p, d.b, d.n, &m);
            CHECK(r == PROTO_NEED_MORE || r == PROTO_HANDSHAKE || r == PROTO_DROP);
            free(d.b);
        }
    }
    CHECK_INT(p->c2s.n + p->s2c.n, 0);
    CHECK(e->vt->conn_ready(p->c.conn));
    CHECK_INT(p->c.handshakes, p->c.ready_at_init ? 0 : 1);
    if (p->session) {
        CHECK(e->vt->conn_ready(p->s.conn));
        CHECK(p->s.handshakes <= 1);
    }
}

static void upair_close(struct upair *p)
{
    dgq_clear(&p->c2s);
    dgq_clear(&p->s2c);
    end_close(&p->s); /* a server conn only if a session was made; NULL is fine */
    end_close(&p->c);
}

/* One datagram for msg from `from`; at most one datagram, and one that fits UDP. */
static struct dg udp_encode(struct end *from, const uint8_t *m, size_t len, int *r)
{
    struct dg d = {0};
    *r = end_write(from, m, len, true);
    CHECK_INT(buf_pauses(&from->out), 0);
    if (*r == 0) {
        /* Possibly empty: a zero-length datagram is still one. */
        d.n = buf_len(&from->out);
        d.b = malloc(d.n + 1);
        if (d.n)
            memcpy(d.b, buf_head(&from->out), d.n);
        CHECK(d.n <= CONF_DGRAM_CAP);
    }
    buf_reset(&from->out);
    return d;
}

/* Expects `d` to decode at the other end as exactly m[0..len). */
static void udp_expect(struct upair *p, bool to_server, const struct dg *d, const uint8_t *m,
                       size_t len)
{
    struct proto_msg pm = {0};
    int r = udp_in(p, to_server, d, &pm);
    CHECK_INT(r, PROTO_MSG);
    if (r != PROTO_MSG)
        return;
    CHECK(pm.first && pm.last);
    CHECK_INT(pm.len, len);
    if (pm.len == len && len > 0)
        CHECK_MEM(pm.data, m, len);
}

/* msg client -> server, then the server's echo of it back. */
static void udp_roundtrip(struct upair *p, const uint8_t *m, size_t len)
{
    int r;
    struct dg d = udp_encode(&p->c, m, len, &r);
    CHECK_INT(r, 0);
    if (r == 0) {
        udp_expect(p, true, &d, m, len);
        free(d.b);
    }
    if (!p->session)
        return;
    d = udp_encode(&p->s, m, len, &r);
    CHECK_INT(r, 0);
    if (r == 0) {
        udp_expect(p, false, &d, m, len);
        free(d.b);
    }
}

/* Datagrams reordered and duplicated: each decodes to its own message; a copy is refused if
 * the protocol is replay-protected, else decodes again; the session goes on either way. */
static void udp_reorder(struct upair *p, bool to_server)
{
    struct end *w = to_server ? &p->c : &p->s;
    const char *text[3] = {"dgram one", "dgram two", "dgram three"};
    struct dg d[3];
    int r;
    for (int i = 0; i < 3; i++) {
        d[i] = udp_encode(w, (const uint8_t *)text[i], strlen(text[i]), &r);
        CHECK_INT(r, 0);
    }
    static const int order[] = {1, 0, 0, 2, 1};
    static const bool copy[] = {false, false, true, false, true};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *t = text[order[i]];
        if (copy[i] && p->e->tr.replay_protected) {
            struct proto_msg m;
            CHECK(udp_in(p, to_server, &d[order[i]], &m) < 0);
        } else {
            udp_expect(p, to_server, &d[order[i]], (const uint8_t *)t, strlen(t));
        }
    }
    for (int i = 0; i < 3; i++)
        free(d[i].b);
    udp_roundtrip(p, (const uint8_t *)"after", 5);
}

/* Every bit flip and every truncation of a one-byte message's datagram is refused (never a
 * message, never silence; said by conn_error unless dropped quietly), and the genuine
 * datagram still decodes afterwards. */
static void udp_tamper(struct upair *p, bool to_server)
{
    int r, bad = 0;
    struct end *w = to_server ? &p->c : &p->s;
    struct dg d = udp_encode(w, (const uint8_t *)"F", 1, &r);
    CHECK_INT(r, 0);
    if (r)
        return;
    struct dg t = {malloc(d.n + 1), 0};
    for (size_t bit = 0; bit < d.n * 8 + d.n; bit++) {
        struct proto_msg m;
        memcpy(t.b, d.b, d.n);
        t.n = d.n;
        if (bit < d.n * 8)
            t.b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        else
            t.n = bit - d.n * 8; /* truncated to 0 .. n-1 bytes */
        r = udp_in(p, to_server, &t, &m);
        dgq_clear(to_server ? &p->s2c : &p->c2s);
        struct end *x = to_server ? &p->s : &p->c;
        const char *why = p->e->vt->conn_error ? p->e->vt->conn_error(x->conn) : "-";
        if (r < 0 && r != PROTO_DROP && (!why || !why[0])) {
            fprintf(stderr, "%s: refused %s datagram with no conn_error\n", p->e->vt->name,
                    to_server ? "client" : "server");
            bad++;
        }
        if (r >= 0) {
            if (bad < 5)
                fprintf(stderr, "%s: %s datagram, %s %zu: result %d\n", p->e->vt->name,
                        to_server ? "client" : "server", bit < d.n * 8 ? "bit" : "length",
                        bit < d.n * 8 ? bit : t.n, r);
            bad++;
        }
    }
    CHECK_INT(bad, 0);
    udp_expect(p, to_server, &d, (const uint8_t *)"F", 1);
    free(t.b);
    free(d.b);
}

static void test_udp(const struct proto_vt *vt)
{
    struct env e;
    struct upair p;
    struct xcase x;
    if (!vt->dgram_new || !vt->dgram_read || !vt->dgram_write)
        return;
    env_open(&e, vt, true);

    upair_open(&p, &e, 4000);
    case_begin(&x, vt, "udp-roundtrip");
    size_t largest = largest_msg(&p.c, true, CONF_DGRAM_CAP);
    fprintf(stderr, "%s: UDP, largest message %zu\n", vt->name, largest);
    size_t sizes[] = {1, 100, largest, 0};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *m = msg_bytes(sizes[i], (unsigned)i);
        if (sizes[i] > 0) {
            udp_roundtrip(&p, m, sizes[i]);
        } else {
            /* An empty message may be refused; if it is sent it arrives as one. */
            int r;
            struct dg d = udp_encode(&p.c, m, 0, &r);
            if (r == 0)
                udp_expect(&p, true, &d, m, 0);
            free(d.b);
        }
        free(m);
    }
    CHECK(p.session && vt->conn_ready(p.s.conn));
    CHECK(p.s.handshakes <= 1);
    case_end(&x);
    case_begin(&x, vt, "udp-ready-event");
    CHECK(!p.s.silent_ready && !p.c.silent_ready);
    case_end(&x);
    upair_close(&p);

    case_begin(&x, vt, "udp-reorder");
    upair_open(&p, &e, 4001);
    udp_roundtrip(&p, (const uint8_t *)"first", 5);
    udp_reorder(&p, true);
    udp_reorder(&p, false);
    upair_close(&p);
    case_end(&x);

    if (e.tr.authenticated) {
        case_begin(&x, vt, "udp-tamper");
        upair_open(&p, &e, 4002);
        udp_roundtrip(&p, (const uint8_t *)"first", 5);
        udp_tamper(&p, true);
        udp_tamper(&p, false);
        upair_close(&p);
        case_end(&x);
    }
    env_close(&e);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/secho-conform-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(srv_key, sizeof(srv_key), "%s/server.key", tmpdir);
    snprintf(cli_key, sizeof(cli_key), "%s/client.key", tmpdir);
    snprintf(known_hosts, sizeof(known_hosts), "%s/known_hosts", tmpdir);

    size_t n = 0;
    for (const struct proto_vt *vt; (vt = proto_at(n)); n++) {
        CHECK(proto_find(vt->name) == vt);
        CHECK(vt->conn_init && vt->conn_read && vt->conn_write && vt->conn_ready && vt->conn_free);
        /* The UDP form is all or nothing. */
        CHECK(!vt->dgram_new == !vt->dgram_read && !vt->dgram_read == !vt->dgram_write);
        test_tcp(vt);
        test_udp(vt);
    }
    CHECK(n >= 4);

    unlink(srv_key);
    unlink(cli_key);
    unlink(known_hosts);
    CHECK_INT(rmdir(tmpdir), 0);
    return CHECK_DONE();
}
