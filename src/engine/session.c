/* SPDX-License-Identifier: MIT */
/* Server-side TCP connection: the byte pump between one socket and one protocol instance. */
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* How long a peer that stopped reading may keep a closing connection (exit, eof, error). */
#define DRAIN_MS 10000

static const char *reason_name(enum session_reason r)
{
    switch (r) {
    case REASON_EXIT:
        return "exit";
    case REASON_EOF:
        return "eof";
    case REASON_RESET:
        return "reset";
    case REASON_TIMEOUT:
        return "timeout";
    case REASON_SHUTDOWN:
        return "shutdown";
    default:
        return "error";
    }
}

/* Owes enough that reading more would only pile up output: the byte high-water mark, or
 * pause marks nearly used up (each paced record takes two). */
static bool out_busy(const struct session *s)
{
    return buf_len(&s->out) >= SERVER_OUT_HIGH || s->out.npauses + 4 > BUF_MAX_PAUSES;
}

static void close_now(struct session *s, enum session_reason r)
{
    if (s->reason == REASON_NONE)
        s->reason = r;
    s->state = SESSION_CLOSED;
}

/* Stops reading; what is owed is still delivered, until `deadline`. */
static void begin_drain(struct session *s, enum session_reason r, uint64_t deadline)
{
    if (s->reason == REASON_NONE)
        s->reason = r;
    if (s->state == SESSION_OPEN) {
        s->state = SESSION_DRAIN;
        s->deadline = deadline;
    } else if (deadline < s->deadline) {
        s->deadline = deadline;
    }
}

static const char *conn_error(const struct session *s)
{
    const struct proto_vt *vt = s->srv->conf.proto;
    return s->pconn && vt->conn_error ? vt->conn_error(s->pconn) : NULL;
}

int session_init(struct session *s, struct server *srv, int fd, const struct net_addr *peer,
                 uint64_t now)
{
    const struct proto_vt *vt = srv->conf.proto;
    memset(s, 0, sizeof(*s));
    s->srv = srv;
    s->fd = fd;
    s->peer = *peer;
    s->id = atomic_fetch_add(&srv->next_id, 1);
    net_format_addr((const struct sockaddr *)&peer->ss, s->peer_text, sizeof(s->peer_text));
    s->started = s->last_active = now;
    buf_init(&s->in, SERVER_IN_LIMIT);
    buf_init(&s->out, SERVER_OUT_LIMIT);
    log_event(LOG_INFO, "connect", "peer=%s conn=%llu", s->peer_text, (unsigned long long)s->id);
    int r = proto_conn_new(vt, srv->pctx, PROTO_SERVER, &s->out, &s->pconn);
    if (r < 0) {
        server_log_proto_error(srv, s->id, s->peer_text, r, conn_error(s));
        s->reason = REASON_ERROR;
        return r;
    }
    s->ready = vt->conn_ready(s->pconn);
    return 0;
}

static int send_msg(struct session *s, const uint8_t *p, size_t n)
{
    return s->srv->conf.proto->conn_write(s->pconn, p, n, &s->out);
}

static void fail(struct session *s, int err, uint64_t now)
{
    server_log_proto_error(s->srv, s->id, s->peer_text, err, conn_error(s));
    begin_drain(s, REASON_ERROR, now + DRAIN_MS);
}

static int handle_msg(struct session *s, const struct proto_msg *m, uint64_t now)
{
    struct server *srv = s->srv;
    const struct proto_vt *vt = srv->conf.proto;
    bool stream = vt->flags & PROTO_F_STREAM_ECHO;
    int r;

    if (m->first)
        server_msg_reset(&s->msg);
    server_msg_add(&s->msg, m->data, m->len);
    /* RFC 862: plain TCP echoes every byte at once, line or not. */
    if (stream && (r = send_msg(s, m->data, m->len)) < 0)
        return r;
    if (!m->last)
        return 0;
    if (stream)
        server_msg_trim_eol(&s->msg);
    int admin = vt->conn_admin ? vt->conn_admin(s->pconn) : -1;
    enum server_action act = server_on_message(
        srv, s->id, s->peer_text, (const struct sockaddr *)&s->peer.ss, admin, &s->msg);
    server_msg_reset(&s->msg);
    switch (act) {
    case ACT_DENIED:
        if (stream)
            return send_msg(s, (const uint8_t *)SERVER_DENIED_TEXT "\n",
                            sizeof(SERVER_DENIED_TEXT));
        return send_msg(s, (const uint8_t *)SERVER_DENIED_TEXT, sizeof(SERVER_DENIED_TEXT) - 1);
    case ACT_EXIT:
        r = stream ? 0 : send_msg(s, m->data, m->len);
        begin_drain(s, REASON_EXIT, now + DRAIN_MS);
        return r;
    case ACT_SHUTDOWN:
        r = stream ? 0 : send_msg(s, m->data, m->len);
        server_request_shutdown(srv);
        return r;
    case ACT_ECHO:
    default:
        return stream ? 0 : send_msg(s, m->data, m->len);
    }
}

/* Runs the protocol over buffered input until it needs more, the connection stops
 * reading, or the output reaches its high-water mark (back-pressure: the rest waits). */
static void process(struct session *s, uint64_t now)
{
    const struct proto_vt *vt = s->srv->conf.proto;
    while (s->state == SESSION_OPEN && !out_busy(s)) {
        size_t used = buf_len(&s->in);
        struct proto_msg m = {0};
        int r = vt->conn_read(s->pconn, buf_head(&s->in), &used, &s->out, &m);
        if (r >= 0 && r == PROTO_HANDSHAKE) {
            s->ready = true;
            char id[128] = "";
            if (vt->conn_peer_id && vt->conn_peer_id(s->pconn, id, sizeof(id)))
                log_event(LOG_INFO, "handshake", "conn=%llu peer=%s peer_key=%s",
                          (unsigned long long)s->id, s->peer_text, id);
        } else if (r == PROTO_MSG) {
            int e = handle_msg(s, &m, now);
            if (e < 0)
                r = e;
        }
        buf_consume(&s->in, used);
        if (r < 0) {
            fail(s, r, now);
            return;
        }
        if (r == PROTO_NEED_MORE)
            return;
    }
}

static void flush(struct session *s, uint64_t now)
{
    while (s->state != SESSION_CLOSED && s->state != SESSION_LINGER) {
        if (s->paused) {
            if (now < s->pause_until)
                return;
            s->paused = false;
        }
        bool sent = false;
        int r = net_send_buf(s->fd, &s->out, &sent);
        if (sent)
            s->last_active = now;
        if (r < 0) {
            close_now(s, r == -EPIPE || r == -ECONNRESET ? REASON_RESET : REASON_ERROR);
            return;
        }
        if (r == 1) {
            /* The peer reads each part with its own recv(); let this part arrive alone. */
            s->paused = true;
            s->pause_until = now + SERVER_PACE_MS;
            return;
        }
        if (!buf_empty(&s->out))
            return; /* the socket is full: wait until it is writable */
        if (s->state == SESSION_DRAIN) {
            if (s->peer_eof) {
                close_now(s, REASON_EOF);
                return;
            }
            /* Half-close, then wait for the peer's FIN: closing with unread input would
             * send a reset that can destroy the echo still in flight. */
            shutdown(s->fd, SHUT_WR);
            s->state = SESSION_LINGER;
            uint64_t linger = now + SERVER_LINGER_MS;
            if (linger < s->deadline)
                s->deadline = linger;
            return;
        }
        if (buf_empty(&s->in))
            return;
        /* Back-pressure lifted: run the input that waited, then flush again. */
        size_t before = buf_len(&s->in);
        process(s, now);
        if (buf_len(&s->in) == before && buf_empty(&s->out))
            return;
    }
}

void session_on_readable(struct session *s, uint64_t now)
{
    if (s->state == SESSION_CLOSED)
        return;
    if (s->state == SESSION_LINGER || s->state == SESSION_DRAIN) {
        /* Discard: nothing more is echoed once the connection is closing. */
        uint8_t sink[4096];
        ssize_t r = recv(s->fd, sink, sizeof(sink), 0);
        if (r == 0) {
            s->peer_eof = true;
            if (s->state == SESSION_LINGER || buf_empty(&s->out))
                close_now(s, REASON_EOF);
        } else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            close_now(s, REASON_RESET);
        }
        return;
    }
    /* Input left over from back-pressure goes first; read more only once it is used up,
     * so that a peer that does not read cannot make us buffer what it sends. */
    if (!buf_empty(&s->in))
        process(s, now);
    if (out_busy(s) || s->state != SESSION_OPEN) {
        flush(s, now);
        return;
    }
    int e = buf_reserve(&s->in, SERVER_READ_CHUNK);
    if (e < 0) {
        fail(s, e, now);
        return;
    }
    ssize_t n = recv(s->fd, buf_tail(&s->in), SERVER_READ_CHUNK, 0);
    if (n > 0) {
        buf_commit(&s->in, (size_t)n);
        s->last_active = now;
        process(s, now);
    } else if (n == 0) {
        s->peer_eof = true;
        begin_drain(s, REASON_EOF, now + DRAIN_MS);
    } else if (errno == ECONNRESET || errno == EPIPE || errno == ETIMEDOUT) {
        close_now(s, REASON_RESET);
        return;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        log_event(LOG_ERROR, "error", "conn=%llu peer=%s error=\"recv: %s\"",
                  (unsigned long long)s->id, s->peer_text, strerror(errno));
        close_now(s, REASON_ERROR);
        return;
    }
    flush(s, now);
}

void session_on_writable(struct session *s, uint64_t now)
{
    flush(s, now);
}

void session_on_hangup(struct session *s)
{
    if (s->state == SESSION_CLOSED)
        return;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    close_now(s, s->state == SESSION_LINGER || err == 0 ? REASON_EOF : REASON_RESET);
}

int session_on_timer(struct session *s, uint64_t now, int max_ms)
{
    const struct server_conf *c = &s->srv->conf;
    uint64_t next = now + (uint64_t)max_ms;
    if (s->state == SESSION_CLOSED)
        return 0;
    if (s->paused) {
        if (now >= s->pause_until)
            flush(s, now);
        if (s->paused && s->pause_until < next)
            next = s->pause_until;
    }
    if (s->state == SESSION_OPEN) {
        uint64_t hs = s->started + (uint64_t)c->handshake_timeout_ms;
        uint64_t idle = s->last_active + (uint64_t)c->idle_timeout_ms;
        if (!s->ready && c->handshake_timeout_ms > 0) {
            if (now >= hs) {
                log_event(LOG_WARN, "timeout", "conn=%llu peer=%s what=handshake",
                          (unsigned long long)s->id, s->peer_text);
                close_now(s, REASON_TIMEOUT);
                return 0;
            }
            if (hs < next)
                next = hs;
        }
        if (c->idle_timeout_ms > 0) {
            if (now >= idle) {
                begin_drain(s, REASON_TIMEOUT, now + SERVER_LINGER_MS);
                flush(s, now);
            } else if (idle < next) {
                next = idle;
            }
        }
    }
    if (s->state == SESSION_DRAIN || s->state == SESSION_LINGER) {
        if (now >= s->deadline) {
            close_now(s, s->reason);
            return 0;
        }
        if (s->deadline < next)
            next = s->deadline;
    }
    return next > now ? (int)(next - now) : 0;
}

void session_begin_shutdown(struct session *s, uint64_t now)
{
    if (s->state == SESSION_CLOSED)
        return;
    uint64_t stop_at = atomic_load(&s->srv->stop_at);
    begin_drain(s, REASON_SHUTDOWN, stop_at > now ? stop_at : now);
    flush(s, now);
}

unsigned session_wants(const struct session *s)
{
    unsigned want = 0;
    switch (s->state) {
    case SESSION_OPEN:
        if (!out_busy(s))
            want |= LOOP_READ;
        /* fallthrough */
    case SESSION_DRAIN:
        if (!buf_empty(&s->out) && !s->paused)
            want |= LOOP_WRITE;
        if (s->state == SESSION_DRAIN && !s->peer_eof)
            want |= LOOP_READ;
        break;
    case SESSION_LINGER:
        want |= LOOP_READ;
        break;
    case SESSION_CLOSED:
        break;
    }
    return want;
}

void session_free(struct session *s)
{
    const struct proto_vt *vt = s->srv->conf.proto;
    if (s->msg.total > 0)
        server_log_partial(s->srv, s->id, s->peer_text, &s->msg);
    log_event(LOG_INFO, "disconnect", "peer=%s conn=%llu reason=%s", s->peer_text,
              (unsigned long long)s->id, reason_name(s->reason));
    proto_conn_free(vt, s->pconn);
    s->pconn = NULL;
    OPENSSL_cleanse(&s->msg, sizeof(s->msg));
    buf_free_secret(&s->in);
    buf_free_secret(&s->out);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->state = SESSION_CLOSED;
    atomic_fetch_sub(&s->srv->nconns, 1);
}
