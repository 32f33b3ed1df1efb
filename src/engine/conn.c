/* SPDX-License-Identifier: MIT */
/* Server-side TCP connection engine: the protocol, pacing, back-pressure, closing and timeouts
 * of one connection, driven by events from an I/O model that owns the socket. */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

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

/* Owes enough that reading more would only pile up output: the byte high-water mark, or
 * pause marks nearly used up (each paced record takes two). */
static bool out_busy(const struct conn *c)
{
    return buf_len(&c->out) >= SERVER_OUT_HIGH || c->out.npauses + 4 > BUF_MAX_PAUSES;
}

static void close_now(struct conn *c, enum conn_reason r)
{
    if (c->reason == CONN_REASON_NONE)
        c->reason = r;
    c->state = CONN_CLOSED;
    c->shut_owed = false;
}

/* Stops using input; what is owed is still delivered, until `deadline`. */
static void begin_drain(struct conn *c, enum conn_reason r, uint64_t deadline)
{
    if (c->reason == CONN_REASON_NONE)
        c->reason = r;
    if (c->state == CONN_OPEN) {
        c->state = CONN_DRAIN;
        c->deadline = deadline;
    } else if (deadline < c->deadline) {
        c->deadline = deadline;
    }
}

static const char *proto_error_text(const struct conn *c)
{
    const struct proto_vt *vt = c->srv->conf.proto;
    return c->pconn && vt->conn_error ? vt->conn_error(c->pconn) : NULL;
}

int conn_init(struct conn *c, struct server *srv, const struct net_addr *peer, uint64_t now)
{
    const struct proto_vt *vt = srv->conf.proto;
    memset(c, 0, sizeof(*c));
    c->srv = srv;
    c->peer = *peer;
    c->id = atomic_fetch_add(&srv->next_id, 1);
    net_format_addr((const struct sockaddr *)&peer->ss, c->peer_text, sizeof(c->peer_text));
    c->started = c->last_active = now;
    buf_init(&c->in, SERVER_IN_LIMIT);
    buf_init(&c->out, SERVER_OUT_LIMIT);
    log_event(LOG_INFO, "connect", "peer=%s conn=%llu", c->peer_text, (unsigned long long)c->id);
    int r = proto_conn_new(vt, srv->pctx, PROTO_SERVER, &c->out, &c->pconn);
    if (r < 0) {
        server_log_proto_error(srv, c->id, c->peer_text, r, proto_error_text(c));
        close_now(c, CONN_REASON_ERROR);
        return r;
    }
    c->ready = vt->conn_ready(c->pconn);
    return 0;
}

static int send_msg(struct conn *c, const uint8_t *p, size_t n)
{
    return c->srv->conf.proto->conn_write(c->pconn, p, n, &c->out);
}

static void fail(struct conn *c, int err, uint64_t now)
{
    server_log_proto_error(c->srv, c->id, c->peer_text, err, proto_error_text(c));
    begin_drain(c, CONN_REASON_ERROR, now + CONN_DRAIN_MS);
}

static int handle_msg(struct conn *c, const struct proto_msg *m, uint64_t now)
{
    struct server *srv = c->srv;
    const struct proto_vt *vt = srv->conf.proto;
    bool stream = vt->flags & PROTO_F_STREAM_ECHO;
    int r;

    if (m->first)
        server_msg_reset(&c->msg);
    server_msg_add(&c->msg, m->data, m->len);
    /* RFC 862: plain TCP echoes every byte at once, line or not. */
    if (stream && (r = send_msg(c, m->data, m->len)) < 0)
        return r;
    if (!m->last)
        return 0;
    if (stream)
        server_msg_trim_eol(&c->msg);
    int admin = vt->conn_admin ? vt->conn_admin(c->pconn) : -1;
    enum server_action act = server_on_message(
        srv, c->id, c->peer_text, (const struct sockaddr *)&c->peer.ss, admin, &c->msg);
    server_msg_reset(&c->msg);
    switch (act) {
    case ACT_DENIED:
        if (stream)
            return send_msg(c, (const uint8_t *)SERVER_DENIED_TEXT "\n",
                            sizeof(SERVER_DENIED_TEXT));
        return send_msg(c, (const uint8_t *)SERVER_DENIED_TEXT, sizeof(SERVER_DENIED_TEXT) - 1);
    case ACT_EXIT:
        r = stream ? 0 : send_msg(c, m->data, m->len);
        begin_drain(c, CONN_REASON_EXIT, now + CONN_DRAIN_MS);
        return r;
    case ACT_SHUTDOWN:
        r = stream ? 0 : send_msg(c, m->data, m->len);
        server_request_shutdown(srv);
        return r;
    case ACT_ECHO:
    default:
        return stream ? 0 : send_msg(c, m->data, m->len);
    }
}

/* Runs the protocol over buffered input until it needs more, the connection stops
 * reading, or the output reaches its high-water mark (back-pressure: the rest waits). */
static void process(struct conn *c, uint64_t now)
{
    const struct proto_vt *vt = c->srv->conf.proto;
    while (c->state == CONN_OPEN && !out_busy(c)) {
        size_t used = buf_len(&c->in);
        struct proto_msg m = {0};
        int r = vt->conn_read(c->pconn, buf_head(&c->in), &used, &c->out, &m);
        if (r >= 0 && r == PROTO_HANDSHAKE) {
            c->ready = true;
            char id[128] = "";
            if (vt->conn_peer_id && vt->conn_peer_id(c->pconn, id, sizeof(id)))
                log_event(LOG_INFO, "handshake", "conn=%llu peer=%s peer_key=%s",
                          (unsigned long long)c->id, c->peer_text, id);
        } else if (r == PROTO_MSG) {
            int e = handle_msg(c, &m, now);
            if (e < 0)
                r = e;
        }
        buf_consume(&c->in, used);
        if (r < 0) {
            fail(c, r, now);
            return;
        }
        if (r == PROTO_NEED_MORE)
            return;
    }
}

/*
 * Everything that follows from the output state, after any event: a pause that ended,
 * the half-close once a closing connection owes nothing (then LINGER), and input that
 * waited for back-pressure to lift once everything owed went out.
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
            return; /* the model sends it; this runs again when it reports what went */
        if (c->state == CONN_DRAIN) {
            if (c->peer_eof) {
                close_now(c, CONN_REASON_EOF);
                return;
            }
            /* Half-close, then wait for the peer's FIN: closing with unread input would
             * send a reset that can destroy the echo still in flight. */
            c->shut_owed = true;
            c->state = CONN_LINGER;
            uint64_t linger = now + SERVER_LINGER_MS;
            if (linger < c->deadline)
                c->deadline = linger;
            return;
        }
        if (buf_empty(&c->in))
            return;
        /* Back-pressure lifted: run the input that waited. */
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
    c->pause_until = now + SERVER_PACE_MS;
}

size_t conn_read_buf(struct conn *c, uint64_t now, uint8_t **p)
{
    if (c->state == CONN_CLOSED)
        return 0;
    if (c->state != CONN_OPEN) {
        if (c->state == CONN_DRAIN && c->peer_eof)
            return 0;
        /* Nothing more is used once the connection is closing: the room is scratch. */
        buf_reset(&c->in);
        if (buf_reserve(&c->in, CONN_DISCARD_CHUNK) < 0) {
            close_now(c, CONN_REASON_ERROR);
            return 0;
        }
        *p = buf_tail(&c->in);
        return CONN_DISCARD_CHUNK;
    }
    /* Input left over from back-pressure goes first; read more only once it is used up,
     * so that a peer that does not read cannot make us buffer what it sends. */
    if (!buf_empty(&c->in))
        process(c, now);
    if (out_busy(c) || c->state != CONN_OPEN) {
        settle(c, now);
        return 0;
    }
    int e = buf_reserve(&c->in, SERVER_READ_CHUNK);
    if (e < 0) {
        fail(c, e, now);
        settle(c, now);
        return 0;
    }
    *p = buf_tail(&c->in);
    return SERVER_READ_CHUNK;
}

void conn_read_commit(struct conn *c, size_t n, uint64_t now)
{
    if (c->state != CONN_OPEN || n == 0)
        return; /* closing: discarded */
    buf_commit(&c->in, n);
    c->last_active = now;
    process(c, now);
    settle(c, now);
}

size_t conn_feed(struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
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
    if (c->state == CONN_CLOSED)
        return;
    c->peer_eof = true;
    if (c->state != CONN_OPEN) {
        if (c->state == CONN_LINGER || buf_empty(&c->out))
            close_now(c, CONN_REASON_EOF);
        return;
    }
    begin_drain(c, CONN_REASON_EOF, now + CONN_DRAIN_MS);
    settle(c, now);
}

void conn_on_recv_error(struct conn *c, int err)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->state != CONN_OPEN || err == ECONNRESET || err == EPIPE || err == ETIMEDOUT) {
        close_now(c, CONN_REASON_RESET);
        return;
    }
    log_event(LOG_ERROR, "error", "conn=%llu peer=%s error=\"recv: %s\"", (unsigned long long)c->id,
              c->peer_text, strerror(err));
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
    close_now(c, c->state == CONN_LINGER || so_error == 0 ? CONN_REASON_EOF : CONN_REASON_RESET);
}

size_t conn_out_peek(struct conn *c, uint64_t now, const uint8_t **p)
{
    if (c->state == CONN_CLOSED || c->state == CONN_LINGER)
        return 0;
    if (c->paused) {
        if (now < c->pause_until)
            return 0;
        c->paused = false;
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
    if (c->state == CONN_CLOSED || n == 0)
        return;
    buf_consume(&c->out, n);
    c->last_active = now;
    if (buf_pause_reached(&c->out))
        start_pause(c, now);
    settle(c, now);
}

void conn_shut_done(struct conn *c)
{
    c->shut_owed = false;
}

void conn_on_time(struct conn *c, uint64_t now)
{
    const struct server_conf *cf = &c->srv->conf;
    if (c->state == CONN_CLOSED)
        return;
    if (c->paused && now >= c->pause_until)
        settle(c, now);
    if (c->state == CONN_OPEN) {
        if (!c->ready && cf->handshake_timeout_ms > 0 &&
            now >= c->started + (uint64_t)cf->handshake_timeout_ms) {
            log_event(LOG_WARN, "timeout", "conn=%llu peer=%s what=handshake",
                      (unsigned long long)c->id, c->peer_text);
            close_now(c, CONN_REASON_TIMEOUT);
            return;
        }
        if (cf->idle_timeout_ms > 0 && now >= c->last_active + (uint64_t)cf->idle_timeout_ms) {
            begin_drain(c, CONN_REASON_TIMEOUT, now + SERVER_LINGER_MS);
            settle(c, now);
        }
    }
    if ((c->state == CONN_DRAIN || c->state == CONN_LINGER) && now >= c->deadline)
        close_now(c, c->reason);
}

void conn_begin_shutdown(struct conn *c, uint64_t now)
{
    if (c->state == CONN_CLOSED)
        return;
    uint64_t stop_at = atomic_load(&c->srv->stop_at);
    begin_drain(c, CONN_REASON_SHUTDOWN, stop_at > now ? stop_at : now);
    settle(c, now);
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
        if (!out_busy(c))
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
    const struct server_conf *cf = &c->srv->conf;
    uint64_t next = CONN_NO_DEADLINE;
    if (c->state == CONN_CLOSED)
        return next;
    if (c->paused)
        next = c->pause_until;
    if (c->state == CONN_OPEN) {
        if (!c->ready && cf->handshake_timeout_ms > 0) {
            uint64_t hs = c->started + (uint64_t)cf->handshake_timeout_ms;
            if (hs < next)
                next = hs;
        }
        if (cf->idle_timeout_ms > 0) {
            uint64_t idle = c->last_active + (uint64_t)cf->idle_timeout_ms;
            if (idle < next)
                next = idle;
        }
    } else if (c->deadline < next) {
        next = c->deadline;
    }
    return next;
}

void conn_free(struct conn *c)
{
    const struct proto_vt *vt = c->srv->conf.proto;
    if (c->msg.total > 0)
        server_log_partial(c->srv, c->id, c->peer_text, &c->msg);
    log_event(LOG_INFO, "disconnect", "peer=%s conn=%llu reason=%s", c->peer_text,
              (unsigned long long)c->id, conn_reason_name(c));
    proto_conn_free(vt, c->pconn);
    c->pconn = NULL;
    OPENSSL_cleanse(&c->msg, sizeof(c->msg));
    buf_free_secret(&c->in);
    buf_free_secret(&c->out);
    c->state = CONN_CLOSED;
}
