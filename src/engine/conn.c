/* SPDX-License-Identifier: MIT */
/* TCP connection engine, both roles: the protocol, pacing, back-pressure, closing and timeouts
 * of one connection, driven by events from a driver that owns the socket; what each message
 * means is left to a policy (struct conn_ops). */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "stats.h"

const char *conn_reason_name(const struct conn *c)
{
    switch (c->reason) {
    case CONN_REASON_EXIT:
        return "exit";
    case CONN_REASON_EOF:
        return "eof";
    case CONN_REASON_RESET:
        return "reset";
    case CONN_REASON_TIMEOUT:
        return "timeout";
    case CONN_REASON_SHUTDOWN:
        return "shutdown";
    default:
        return "error";
    }
}

static bool is_server(const struct conn *c)
{
    return c->conf.role == PROTO_SERVER;
}

/* Owes enough that more work would only pile up output: the byte high-water mark, or pause
 * marks nearly used up (a paced record takes up to CONN_MARKS_RESERVE). */
static bool out_busy(const struct conn *c)
{
    return buf_len(&c->out) >= c->conf.out_high ||
           (c->out.marks && buf_pauses(&c->out) + CONN_MARKS_RESERVE > BUF_MAX_PAUSES);
}

/* Whether input is still used: always while open; a closing client connection still
 * receives what it awaits; never after a failure. */
static bool uses_input(const struct conn *c)
{
    if (c->failed)
        return false;
    return c->state == CONN_OPEN || (c->state == CONN_DRAIN && !is_server(c));
}

static void close_now(struct conn *c, enum conn_reason r)
{
    if (c->reason == CONN_REASON_NONE)
        c->reason = r;
    c->state = CONN_CLOSED;
    c->shut_owed = false;
}

/* Gives back the storage of every buffer that is empty now: an idle connection holds none.
 * Cheap when there is none (the usual case after an echo went out at once). Not wiped: in
 * and out hold wire bytes only, which the network saw or will see (struct proto_vt's
 * contract); wiping them was a tenth of the server's CPU time at 16 KiB. */
static void trim(struct conn *c)
{
    buf_release_nowipe(&c->in);
    buf_release_nowipe(&c->out);
}

void conn_drain(struct conn *c, enum conn_reason r, uint64_t deadline)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->reason == CONN_REASON_NONE)
        c->reason = r;
    if (c->state == CONN_OPEN) {
        c->state = CONN_DRAIN;
        c->deadline = deadline;
    } else if (deadline < c->deadline) {
        c->deadline = deadline;
    }
}

const char *conn_error_text(const struct conn *c)
{
    const struct proto_vt *vt = c->conf.vt;
    return c->pconn && vt->conn_error ? vt->conn_error(c->pconn) : NULL;
}

int conn_admin(const struct conn *c)
{
    const struct proto_vt *vt = c->conf.vt;
    return c->pconn && vt->conn_admin ? vt->conn_admin(c->pconn) : -1;
}

bool conn_peer_id(const struct conn *c, char *out, size_t outlen)
{
    const struct proto_vt *vt = c->conf.vt;
    return c->pconn && vt->conn_peer_id && vt->conn_peer_id(c->pconn, out, outlen);
}

static void fault(struct conn *c, enum conn_fault what, int err)
{
    c->failed = true;
    if (c->ops->on_fault)
        c->ops->on_fault(c->arg, c, what, err);
}

/* Creates the protocol state and runs its greeting. Returns 0, or <0 after on_fault (the
 * connection is then CLOSED with reason error). */
static int start_proto(struct conn *c)
{
    int r = proto_conn_new(c->conf.vt, c->conf.pctx, c->conf.role, &c->out, &c->pconn);
    if (r < 0) {
        fault(c, CONN_FAULT_PROTO, r);
        close_now(c, CONN_REASON_ERROR);
        return r;
    }
    c->ready = c->conf.vt->conn_ready(c->pconn);
    return 0;
}

static void proxy_done(struct conn *c)
{
    c->proxy_stage = CONN_PROXY_OFF;
    free(c->phdr);
    c->phdr = NULL;
}

/* The PROXY stage refuses the connection: it closes at once (nothing is owed to a peer that
 * is not let in; an untrusted one may have a greeting queued, which is dropped). */
static void proxy_refuse(struct conn *c, enum proxy_hdr_error err, enum conn_reason r)
{
    proxy_done(c);
    fault(c, CONN_FAULT_PROXY, (int)err);
    close_now(c, r);
}

/*
 * The PROXY stage over the input p[0..n). Returns the bytes it consumed (a header's), and
 * sets *hold when the protocol must not see the rest now: the stage goes on, or it ended
 * the connection.
 */
static size_t proxy_input(struct conn *c, const uint8_t *p, size_t n, uint64_t now, bool *hold)
{
    *hold = true;
    if (c->proxy_stage == CONN_PROXY_REFUSE) {
        switch (proxy_hdr_sniff(p, n)) {
        case PROXY_SNIFF_NO:
            c->proxy_stage = CONN_PROXY_OFF;
            *hold = false;
            return 0;
        case PROXY_SNIFF_MAYBE:
            return 0; /* the next bytes tell; they stay in the input meanwhile */
        case PROXY_SNIFF_YES:
        default:
            /* Only --trusted-proxy addresses may say whose connection this is. */
            proxy_refuse(c, PROXY_HDR_E_UNTRUSTED, CONN_REASON_ERROR);
            return n;
        }
    }
    size_t used = 0;
    enum proxy_hdr_status st = proxy_hdr_feed(c->phdr, p, n, &used);
    if (st == PROXY_HDR_NEED_MORE)
        return used;
    if (st == PROXY_HDR_ERROR) {
        proxy_refuse(c, c->phdr->err, CONN_REASON_ERROR);
        return used;
    }
    struct proxy_hdr_result res = c->phdr->res;
    proxy_done(c);
    if (c->ops->on_proxy && c->ops->on_proxy(c->arg, c, &res, now) < 0) {
        c->failed = true;
        close_now(c, CONN_REASON_ERROR);
        return used;
    }
    /* The protocol's own handshake gets its whole timeout from here. */
    c->started = now;
    if (start_proto(c) < 0)
        return used;
    *hold = false;
    return used;
}

int conn_init(struct conn *c, const struct conn_conf *cf, const struct conn_ops *ops, void *arg,
              uint64_t now)
{
    memset(c, 0, sizeof(*c));
    c->conf = *cf;
    c->ops = ops;
    c->arg = arg;
    c->wait_ms = -1;
    c->started = c->last_active = now;
    buf_init(&c->in, cf->in_limit);
    buf_init(&c->out, cf->out_limit);
    /* Only a paced protocol's output carries pause marks (and pays for them). */
    if (cf->vt->flags & PROTO_F_PACED) {
        c->marks = malloc(sizeof(*c->marks));
        if (!c->marks) {
            fault(c, CONN_FAULT_PROTO, -ENOMEM);
            close_now(c, CONN_REASON_ERROR);
            return -ENOMEM;
        }
        buf_attach_marks(&c->out, c->marks);
    }
    c->proxy_stage = cf->proxy;
    if (cf->proxy != CONN_PROXY_OFF && cf->role != PROTO_SERVER) {
        fault(c, CONN_FAULT_PROTO, -EINVAL);
        close_now(c, CONN_REASON_ERROR);
        return -EINVAL;
    }
    if (cf->proxy == CONN_PROXY_REQUIRE) {
        /* The protocol, and any greeting, waits for the header (proxy-protocol.txt section
         * 2: "MUST NOT start processing the connection before it receives a complete and
         * valid PROXY protocol header", which matters most where the server speaks first). */
        c->phdr = malloc(sizeof(*c->phdr));
        if (!c->phdr) {
            fault(c, CONN_FAULT_PROTO, -ENOMEM);
            close_now(c, CONN_REASON_ERROR);
            return -ENOMEM;
        }
        proxy_hdr_init(c->phdr);
        return 0;
    }
    return start_proto(c);
}

static void fail(struct conn *c, int err, uint64_t now)
{
    fault(c, CONN_FAULT_PROTO, err);
    conn_drain(c, CONN_REASON_ERROR, now + CONN_DRAIN_MS);
}

/* Whether the record deadline applies: a limit set, the handshake done (before it,
 * handshake_ms bounds the peer). */
static bool record_timed(const struct conn *c)
{
    return c->conf.record_ms > 0 && c->ready;
}

/* After one conn_read call that took `used` bytes and returned r: a whole message (or the
 * handshake) ends the record in progress, and so does any fragment of a framed stream-echo
 * protocol (tls: its lines may be of any length, a fragment is what one record carried);
 * other bytes taken start one (its clock runs from the first of them). An unframed stream
 * (plain) has lines, not records: a line in progress is held to the same bound, but every
 * CONN_LINE_PROGRESS bytes of it restart its clock, so a stream without newlines flows at
 * any real rate while one trickled a byte at a time does not hold the connection forever. */
static void track_record(struct conn *c, int r, const struct proto_msg *m, size_t used,
                         uint64_t now)
{
    unsigned flags = c->conf.vt->flags;
    bool framed_stream = (flags & PROTO_F_STREAM_ECHO) && !(flags & PROTO_F_UNFRAMED);
    if (r == PROTO_HANDSHAKE || r == PROTO_CLOSED ||
        (r == PROTO_MSG && (m->last || framed_stream))) {
        c->in_record = false;
    } else if (used > 0 && !c->in_record && c->ready) {
        c->in_record = true;
        c->record_start = now;
        c->record_bytes = used;
    } else if (used > 0 && c->in_record && (flags & PROTO_F_UNFRAMED)) {
        c->record_bytes += used;
        if (c->record_bytes >= CONN_LINE_PROGRESS) {
            c->record_start = now;
            c->record_bytes = 0;
        }
    }
}

/* Runs the protocol over p[0..n) until it needs more, input stops being used, or (server)
 * the output reaches its high-water mark (back-pressure: the rest waits, and so does what
 * the protocol already took: proto_owed). Returns the bytes consumed. */
static size_t run_input(struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    const struct proto_vt *vt = c->conf.vt;
    bool server = is_server(c);
    size_t done = 0;
    if (c->proxy_stage != CONN_PROXY_OFF) {
        if (!uses_input(c))
            return 0;
        bool hold;
        done = proxy_input(c, p, n, now, &hold);
        if (hold || done == n)
            return done;
    }
    if (!server && (vt->flags & PROTO_F_UNFRAMED)) {
        /* The client's side of an unframed stream: bytes as they come. */
        if (n == 0 || !uses_input(c))
            return 0;
        struct proto_msg m = {.data = p, .len = n};
        int r = c->ops->on_message(c->arg, c, &m, now);
        if (r < 0)
            fail(c, r, now);
        return n;
    }
    c->proto_owed = false;
    for (;;) {
        if (!uses_input(c))
            break;
        if (server && out_busy(c)) {
            c->proto_owed = true;
            break;
        }
        size_t used = n - done;
        struct proto_msg m = {0};
        int r = vt->conn_read(c->pconn, p + done, &used, &c->out, &m);
        if (r == PROTO_HANDSHAKE) {
            c->ready = true;
            if (c->ops->on_handshake)
                c->ops->on_handshake(c->arg, c, now);
        } else if (r == PROTO_MSG) {
            int e = c->ops->on_message(c->arg, c, &m, now);
            if (e < 0)
                r = e;
        }
        done += used;
        track_record(c, r, &m, used, now);
        if (r < 0) {
            fail(c, r, now);
            break;
        }
        if (r == PROTO_CLOSED) {
            /* As conn_on_eof, less the settling that the caller of process does. */
            c->peer_eof = true;
            conn_drain(c, CONN_REASON_EOF, now + CONN_DRAIN_MS);
            break;
        }
        if (r == PROTO_NEED_MORE)
            break;
    }
    return done;
}

/* The protocol holds decoded input it has not handed over yet (proto_vt.conn_pending). */
static bool pending(const struct conn *c)
{
    const struct proto_vt *vt = c->conf.vt;
    return vt->conn_pending && c->pconn && vt->conn_pending(c->pconn);
}

/* A closing connection's last words from the protocol (proto_vt.conn_goodbye), once, when
 * nothing else is owed. Returns true if they are now owed (settle waits for them). */
static bool goodbye(struct conn *c)
{
    const struct proto_vt *vt = c->conf.vt;
    if (c->said_bye || c->failed || !c->ready || !vt->conn_goodbye)
        return false;
    c->said_bye = true;
    if (vt->conn_goodbye(c->pconn, &c->out) < 0)
        return false;
    return !buf_empty(&c->out);
}

/* Runs the protocol over the buffered input, or over none when only proto_owed calls. */
static void process(struct conn *c, uint64_t now)
{
    static const uint8_t none[1];
    const uint8_t *p = buf_empty(&c->in) ? none : buf_head(&c->in);
    buf_consume(&c->in, run_input(c, p, buf_len(&c->in), now));
}

/* Server: input or protocol state that waited for back-pressure to lift. */
static bool input_waits(const struct conn *c)
{
    return !buf_empty(&c->in) || c->proto_owed || pending(c);
}

static bool awaiting(const struct conn *c)
{
    return !is_server(c) && c->ops->awaiting && c->ops->awaiting(c->arg, c);
}

/*
 * Everything that follows from the output state, after any event: a pause that ended,
 * the half-close once a closing connection owes nothing and awaits nothing (then LINGER),
 * and input that waited for back-pressure to lift once everything owed went out.
 */
static void settle(struct conn *c, uint64_t now)
{
    for (;;) {
        if (c->state == CONN_CLOSED || c->state == CONN_LINGER)
            return;
        if (c->paused) {
            if (now < c->pause_until)
                return;
            c->paused = false;
        }
        if (!buf_empty(&c->out))
            return; /* the driver sends it; this runs again when it reports what went */
        if (c->state == CONN_DRAIN) {
            if ((c->peer_eof || !awaiting(c)) && goodbye(c))
                return; /* sent, then this runs again */
            if (c->peer_eof) {
                close_now(c, CONN_REASON_EOF);
                return;
            }
            if (!c->failed && awaiting(c)) {
                /* All went out: from now on the peer has wait_ms to answer. */
                if (c->wait_ms >= 0) {
                    uint64_t until = now + (uint64_t)c->wait_ms;
                    if (until < c->deadline)
                        c->deadline = until;
                    c->wait_ms = -1;
                    c->waiting = true;
                }
                return;
            }
            /* Half-close, then wait for the peer's FIN: closing with unread input would
             * send a reset that can destroy the echo still in flight. */
            c->shut_owed = true;
            c->waiting = false;
            c->state = CONN_LINGER;
            uint64_t linger = now + (uint64_t)c->conf.linger_ms;
            if (linger < c->deadline)
                c->deadline = linger;
            return;
        }
        if (!is_server(c) || !input_waits(c))
            return;
        /* Back-pressure lifted: run the input (and what the protocol took) that waited. */
        size_t before = buf_len(&c->in);
        process(c, now);
        if (buf_len(&c->in) == before && buf_empty(&c->out))
            return;
    }
}

static void start_pause(struct conn *c, uint64_t now)
{
    /* The peer reads each part with its own recv(); let this part arrive alone. */
    c->paused = true;
    c->pause_until = now + CONN_PACE_MS;
}

size_t conn_read_buf(struct conn *c, uint64_t now, uint8_t **p)
{
    if (c->state == CONN_CLOSED || c->peer_eof)
        return 0;
    if (!uses_input(c)) {
        /* Nothing more is used once the connection is closing: the room is scratch. */
        buf_reset(&c->in);
        if (buf_reserve(&c->in, CONN_DISCARD_CHUNK) < 0) {
            close_now(c, CONN_REASON_ERROR);
            return 0;
        }
        *p = buf_tail(&c->in);
        return CONN_DISCARD_CHUNK;
    }
    if (is_server(c)) {
        /* Input left over from back-pressure goes first; read more only once it is used
         * up, so that a peer that does not read cannot make us buffer what it sends. */
        if (input_waits(c))
            process(c, now);
        if (out_busy(c) || !uses_input(c)) {
            settle(c, now);
            return 0;
        }
    }
    int e = buf_reserve(&c->in, c->conf.read_chunk);
    if (e < 0) {
        fail(c, e, now);
        settle(c, now);
        return 0;
    }
    *p = buf_tail(&c->in);
    return c->conf.read_chunk;
}

void conn_read_commit(struct conn *c, size_t n, uint64_t now)
{
    stats_add(STATS_BYTES_IN, n);
    if (!uses_input(c) || n == 0) {
        /* Closing: discarded (the scratch room goes back). */
        if (!uses_input(c))
            buf_reset(&c->in);
        trim(c);
        return;
    }
    buf_commit(&c->in, n);
    c->last_active = now;
    process(c, now);
    settle(c, now);
    trim(c);
}

size_t conn_feed(struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    if (n > 0 && uses_input(c) && !c->peer_eof && buf_empty(&c->in) &&
        !(is_server(c) && out_busy(c))) {
        /* Nothing buffered: the protocol reads the driver's bytes where they are, and only
         * what it leaves (a partial record, or what back-pressure holds) is copied. */
        size_t take = n < c->conf.read_chunk ? n : c->conf.read_chunk;
        stats_add(STATS_BYTES_IN, take);
        c->last_active = now;
        size_t used = run_input(c, p, take, now);
        if (used < take && uses_input(c)) {
            int e = buf_append(&c->in, p + used, take - used);
            if (e < 0)
                fail(c, e, now);
        }
        settle(c, now);
        trim(c);
        return take;
    }
    uint8_t *dst;
    size_t room = conn_read_buf(c, now, &dst);
    size_t take = n < room ? n : room;
    if (take == 0)
        return 0;
    memcpy(dst, p, take);
    conn_read_commit(c, take, now);
    return take;
}

void conn_on_eof(struct conn *c, uint64_t now)
{
    trim(c); /* the room of the read that found EOF */
    if (c->state == CONN_CLOSED)
        return;
    if (c->proxy_stage == CONN_PROXY_REQUIRE && c->state == CONN_OPEN) {
        proxy_refuse(c, PROXY_HDR_E_INCOMPLETE, CONN_REASON_EOF);
        return;
    }
    if (c->proxy_stage == CONN_PROXY_REFUSE) {
        /* What waited as a possible signature is not one: the protocol has it now. */
        c->proxy_stage = CONN_PROXY_OFF;
        if (uses_input(c) && !buf_empty(&c->in))
            process(c, now);
    }
    c->peer_eof = true;
    if (c->state != CONN_OPEN) {
        if (c->state == CONN_LINGER || buf_empty(&c->out))
            close_now(c, CONN_REASON_EOF);
        return;
    }
    conn_drain(c, CONN_REASON_EOF, now + CONN_DRAIN_MS);
    settle(c, now);
    trim(c);
}

void conn_on_recv_error(struct conn *c, int err)
{
    trim(c);
    if (c->state == CONN_CLOSED)
        return;
    if (c->proxy_stage == CONN_PROXY_REQUIRE && c->state == CONN_OPEN) {
        proxy_refuse(c, PROXY_HDR_E_INCOMPLETE,
                     err == ECONNRESET || err == EPIPE || err == ETIMEDOUT ? CONN_REASON_RESET
                                                                           : CONN_REASON_ERROR);
        return;
    }
    if (c->state != CONN_OPEN || err == ECONNRESET || err == EPIPE || err == ETIMEDOUT) {
        close_now(c, CONN_REASON_RESET);
        return;
    }
    fault(c, CONN_FAULT_RECV, err);
    close_now(c, CONN_REASON_ERROR);
}

void conn_on_send_error(struct conn *c, int err)
{
    if (c->state == CONN_CLOSED)
        return;
    close_now(c, err == EPIPE || err == ECONNRESET ? CONN_REASON_RESET : CONN_REASON_ERROR);
}

void conn_on_hangup(struct conn *c, int so_error)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->proxy_stage == CONN_PROXY_REQUIRE && c->state == CONN_OPEN) {
        proxy_refuse(c, PROXY_HDR_E_INCOMPLETE,
                     so_error == 0 ? CONN_REASON_EOF : CONN_REASON_RESET);
        return;
    }
    close_now(c, c->state == CONN_LINGER || so_error == 0 ? CONN_REASON_EOF : CONN_REASON_RESET);
}

int conn_send_msg(struct conn *c, const uint8_t *data, size_t len)
{
    const struct proto_vt *vt = c->conf.vt;
    if (c->state != CONN_OPEN)
        return -EPIPE;
    if (!c->ready)
        return PROTO_E_STATE;
    if (vt->flags & PROTO_F_UNFRAMED)
        return buf_append(&c->out, data, len);
    return vt->conn_write(c->pconn, data, len, &c->out);
}

bool conn_can_send(const struct conn *c)
{
    return c->state == CONN_OPEN && c->ready && !out_busy(c);
}

size_t conn_out_peek(struct conn *c, uint64_t now, const uint8_t **p)
{
    /* A read room that received nothing (EAGAIN), or an output buffer already empty, goes
     * back here: every driver asks for output after each event. */
    trim(c);
    if (c->state == CONN_CLOSED || c->state == CONN_LINGER)
        return 0;
    if (c->paused) {
        if (now < c->pause_until)
            return 0;
        /* The pause is over, and whatever waited for it goes on here as in conn_on_time: the
         * next part, or a drain's next step (its goodbye, the half-close). Only clearing the
         * flag would leave a drain whose output is all sent waiting for its deadline. */
        settle(c, now);
        if (c->state == CONN_CLOSED || c->state == CONN_LINGER)
            return 0;
    }
    size_t n = buf_sendable(&c->out);
    if (n == 0) {
        /* A mark with nothing before it: the pause starts now. */
        if (!buf_empty(&c->out) && buf_pause_reached(&c->out))
            start_pause(c, now);
        return 0;
    }
    *p = buf_head(&c->out);
    return n;
}

void conn_out_sent(struct conn *c, size_t n, uint64_t now)
{
    stats_add(STATS_BYTES_OUT, n);
    if (c->state == CONN_CLOSED || n == 0)
        return;
    buf_consume(&c->out, n);
    c->last_active = now;
    if (buf_pause_reached(&c->out))
        start_pause(c, now);
    settle(c, now);
    trim(c);
}

void conn_shut_done(struct conn *c)
{
    c->shut_owed = false;
}

void conn_finish(struct conn *c, enum conn_reason reason, int wait_ms, uint64_t now)
{
    if (c->state != CONN_OPEN)
        return;
    conn_drain(c, reason, CONN_NO_DEADLINE);
    c->wait_ms = wait_ms < 0 ? 0 : wait_ms;
    settle(c, now);
}

void conn_on_time(struct conn *c, uint64_t now)
{
    const struct conn_conf *cf = &c->conf;
    if (c->state == CONN_CLOSED)
        return;
    if (c->paused && now >= c->pause_until)
        settle(c, now);
    if (c->state == CONN_OPEN && c->proxy_stage == CONN_PROXY_REQUIRE) {
        /* No header in time: the handshake timeout bounds it, or without one the idle
         * timeout. */
        if ((cf->handshake_ms > 0 && now >= c->started + (uint64_t)cf->handshake_ms) ||
            (cf->idle_ms > 0 && now >= c->last_active + (uint64_t)cf->idle_ms))
            proxy_refuse(c, PROXY_HDR_E_TIMEOUT, CONN_REASON_TIMEOUT);
        trim(c);
        return;
    }
    if (c->state == CONN_OPEN) {
        if (!c->ready && cf->handshake_ms > 0 && now >= c->started + (uint64_t)cf->handshake_ms) {
            fault(c, CONN_FAULT_HANDSHAKE, -ETIMEDOUT);
            close_now(c, CONN_REASON_TIMEOUT);
            return;
        }
        if (c->in_record && record_timed(c) && now >= c->record_start + (uint64_t)cf->record_ms) {
            /* A peer trickling a record: every byte refreshed the idle timer, not this. */
            fault(c, CONN_FAULT_RECORD, -ETIMEDOUT);
            conn_drain(c, CONN_REASON_TIMEOUT, now + (uint64_t)cf->linger_ms);
            settle(c, now);
        } else if (cf->idle_ms > 0 && now >= c->last_active + (uint64_t)cf->idle_ms) {
            conn_drain(c, CONN_REASON_TIMEOUT, now + (uint64_t)cf->linger_ms);
            settle(c, now);
        }
    }
    if ((c->state == CONN_DRAIN || c->state == CONN_LINGER) && now >= c->deadline) {
        if (c->state == CONN_DRAIN && c->waiting)
            c->reason = CONN_REASON_TIMEOUT; /* what was awaited did not come */
        close_now(c, c->reason);
    }
    trim(c);
}

void conn_begin_shutdown(struct conn *c, uint64_t now, uint64_t stop_at)
{
    if (c->state == CONN_CLOSED)
        return;
    conn_drain(c, CONN_REASON_SHUTDOWN, stop_at > now ? stop_at : now);
    settle(c, now);
    trim(c);
}

void conn_abort(struct conn *c)
{
    close_now(c, CONN_REASON_SHUTDOWN);
}

unsigned conn_wants(const struct conn *c)
{
    unsigned want = 0;
    switch (c->state) {
    case CONN_OPEN:
        if (!is_server(c) || !out_busy(c))
            want |= CONN_WANT_READ;
        /* fallthrough */
    case CONN_DRAIN:
        if (!buf_empty(&c->out) && !c->paused)
            want |= CONN_WANT_WRITE;
        if (c->state == CONN_DRAIN && !c->peer_eof)
            want |= CONN_WANT_READ;
        break;
    case CONN_LINGER:
        want |= CONN_WANT_READ;
        if (c->shut_owed)
            want |= CONN_WANT_SHUT_WR;
        break;
    case CONN_CLOSED:
        want |= CONN_WANT_CLOSE;
        break;
    }
    return want;
}

uint64_t conn_deadline(const struct conn *c)
{
    const struct conn_conf *cf = &c->conf;
    uint64_t next = CONN_NO_DEADLINE;
    if (c->state == CONN_CLOSED)
        return next;
    if (c->paused)
        next = c->pause_until;
    if (c->state == CONN_OPEN) {
        if (!c->ready && cf->handshake_ms > 0) {
            uint64_t hs = c->started + (uint64_t)cf->handshake_ms;
            if (hs < next)
                next = hs;
        }
        if (cf->idle_ms > 0) {
            uint64_t idle = c->last_active + (uint64_t)cf->idle_ms;
            if (idle < next)
                next = idle;
        }
        if (c->in_record && record_timed(c)) {
            uint64_t rec = c->record_start + (uint64_t)cf->record_ms;
            if (rec < next)
                next = rec;
        }
    } else if (c->deadline < next) {
        next = c->deadline;
    }
    return next;
}

void conn_free(struct conn *c)
{
    if (c->ops && c->ops->on_close)
        c->ops->on_close(c->arg, c);
    proto_conn_free(c->conf.vt, c->pconn);
    c->pconn = NULL;
    free(c->phdr);
    c->phdr = NULL;
    buf_free_nowipe(&c->in); /* wire bytes only, as in trim */
    buf_free_nowipe(&c->out);
    free(c->marks);
    c->marks = NULL;
    c->out.marks = NULL;
    c->state = CONN_CLOSED;
}
