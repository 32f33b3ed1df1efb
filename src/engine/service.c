/* SPDX-License-Identifier: MIT */
/* The message policy every model and transport shares (for TCP, the engine's server-role
 * policy), and shutdown coordination. */
#include "service.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "loop.h"
#include "stats.h"

void server_msg_reset(struct server_msg *m)
{
    m->headlen = 0;
    m->total = 0;
    m->tail[0] = m->tail[1] = 0;
    m->eol = 0;
    m->limit_key = NULL;
}

void server_msg_add(struct server_msg *m, const uint8_t *p, size_t n)
{
    size_t room = sizeof(m->head) - m->headlen;
    size_t take = n < room ? n : room;
    memcpy(m->head + m->headlen, p, take);
    m->headlen += take;
    m->total += n;
    if (n >= 2) {
        m->tail[0] = p[n - 2];
        m->tail[1] = p[n - 1];
    } else if (n == 1) {
        m->tail[0] = m->tail[1];
        m->tail[1] = p[0];
    }
}

void server_msg_trim_eol(struct server_msg *m)
{
    if (m->total == 0 || m->tail[1] != '\n')
        return;
    m->total--;
    m->eol = 1;
    if (m->total > 0 && m->tail[0] == '\r') {
        m->total--;
        m->eol = 2;
    }
    if (m->headlen > m->total)
        m->headlen = m->total;
}

static bool msg_is(const struct server_msg *m, const char *word)
{
    size_t n = strlen(word);
    return m->total == n && m->headlen == n && memcmp(m->head, word, n) == 0;
}

/* A message longer than --max-msg: only plain TCP lets one through (its bytes are echoed
 * as they come, RFC 862); it is logged cut at the limit and is never a command. */
static bool msg_too_long(const struct server *srv, const struct server_msg *m)
{
    return srv->conf.popts.max_msg && m->total > srv->conf.popts.max_msg;
}

struct log_limit server_unproven_limit =
    LOG_LIMIT_INIT(SERVER_UNPROVEN_HOST_BURST, SERVER_UNPROVEN_HOST_INTERVAL_MS,
                   SERVER_UNPROVEN_BURST, SERVER_UNPROVEN_INTERVAL_MS);

/* The lines of an unproven UDP peer that are written here (udp_peers.c has the others). */
static const struct log_kind kind_unproven_message = {"message", LOG_INFO, NULL};
static const struct log_kind kind_unproven_denied = {"denied", LOG_WARN, "command=shutdown"};

static void log_message(struct server *srv, uint64_t conn_id, const char *peer,
                        const struct server_msg *m, bool partial)
{
    size_t shown = m->headlen;
    if (msg_too_long(srv, m) && shown > srv->conf.popts.max_msg)
        shown = srv->conf.popts.max_msg;
    /* TCP counts the line, UDP the datagram (its line terminator too). */
    size_t bytes = m->total + (srv->conf.udp ? m->eol : 0);
    /* One line per message: put together without printf (log_line_*). */
    struct log_line l;
    if (m->limit_key ? !log_line_begin_limited(&l, &server_unproven_limit, &kind_unproven_message,
                                               m->limit_key)
                     : !log_line_begin(&l, LOG_INFO, "message"))
        return;
    char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)];
    const char *pval = log_value(pv, sizeof(pv), peer);
    log_line_lit(&l, " peer=");
    log_line_raw(&l, pval, strlen(pval));
    log_line_lit(&l, " conn=");
    log_line_u64(&l, conn_id);
    log_line_lit(&l, " bytes=");
    log_line_u64(&l, bytes);
    if (srv->conf.log_messages) {
        /* text= is always quoted (SPEC shows it so), even when it is one bare word. */
        log_line_lit(&l, " text=\"");
        log_line_escaped(&l, m->head, shown);
        log_line_lit(&l, "\"");
        if (m->total > shown)
            log_line_lit(&l, " truncated=1");
    }
    if (partial)
        log_line_lit(&l, " partial=1");
    log_line_end(&l);
}

void server_log_partial(struct server *srv, uint64_t conn_id, const char *peer,
                        const struct server_msg *m)
{
    log_message(srv, conn_id, peer, m, true);
}

/* Events a peer can repeat at will: rate-limited per peer and overall (log_event_limited). */
static const struct log_kind kind_auth_fail = {"auth_fail", LOG_WARN, NULL};
static const struct log_kind kind_proto_error = {"error", LOG_ERROR, NULL};
static const struct log_kind kind_timeout_handshake = {"timeout", LOG_WARN, "what=handshake"};
static const struct log_kind kind_timeout_record = {"timeout", LOG_WARN, "what=record"};
static const struct log_kind kind_proxy_header = {"denied", LOG_WARN, "reason=proxy_header"};
static const struct log_kind kind_untrusted_proxy = {"denied", LOG_WARN, "reason=untrusted_proxy"};

void server_log_proto_error(struct server *srv, uint64_t conn_id, const char *peer, int err,
                            const char *detail)
{
    (void)srv;
    /* The detail may quote peer bytes: log_value escapes it like any peer text. */
    char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)], ev[LOG_VALUE_MAX(128)];
    char dv[LOG_VALUE_MAX(LOG_TEXT_BYTES)];
    bool has_detail = detail && detail[0];
    bool auth = err == PROTO_E_AUTH || err == PROTO_E_PARSE;
    stats_add(auth ? STATS_AUTH_FAIL : STATS_ERR_PROTO, 1);
    log_event_limited(auth ? &kind_auth_fail : &kind_proto_error, peer,
                      "peer=%s conn=%llu error=%s%s%s", log_value(pv, sizeof(pv), peer),
                      (unsigned long long)conn_id, log_value(ev, sizeof(ev), proto_strerror(err)),
                      has_detail ? " detail=" : "",
                      has_detail ? log_value(dv, sizeof(dv), detail) : "");
}

enum server_action server_on_message(struct server *srv, uint64_t conn_id, const char *peer,
                                     const struct sockaddr *peer_sa, int admin,
                                     const struct server_msg *m)
{
    stats_add(STATS_MSGS, 1);
    log_message(srv, conn_id, peer, m, false);
    if (msg_too_long(srv, m))
        return ACT_ECHO;
    if (msg_is(m, "exit"))
        return ACT_EXIT;
    if (!msg_is(m, "shutdown"))
        return ACT_ECHO;
    bool allowed;
    if (admin >= 0)
        allowed = admin == 1;
    else if (srv->conf.allow_shutdown == ALLOW_ANY)
        allowed = true;
    else if (srv->conf.allow_shutdown == ALLOW_LOOPBACK)
        allowed = net_is_loopback(peer_sa);
    else
        allowed = false;
    if (!allowed) {
        stats_add(STATS_ERR_DENIED, 1);
        char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)];
        if (m->limit_key)
            log_event_limited_in(&server_unproven_limit, &kind_unproven_denied, m->limit_key,
                                 "peer=%s conn=%llu command=shutdown",
                                 log_value(pv, sizeof(pv), peer), (unsigned long long)conn_id);
        else
            log_event(LOG_WARN, "denied", "peer=%s conn=%llu command=shutdown",
                      log_value(pv, sizeof(pv), peer), (unsigned long long)conn_id);
        return ACT_DENIED;
    }
    char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)];
    log_event(LOG_INFO, "shutdown", "peer=%s conn=%llu", log_value(pv, sizeof(pv), peer),
              (unsigned long long)conn_id);
    return ACT_SHUTDOWN;
}

static void server_request_wake(struct server *srv)
{
    pthread_mutex_lock(&srv->wake_mu);
    if (srv->wake)
        srv->wake(srv);
    pthread_mutex_unlock(&srv->wake_mu);
}

void server_request_shutdown(struct server *srv)
{
    bool expected = false;
    if (!atomic_compare_exchange_strong(&srv->stopping, &expected, true))
        return;
    atomic_store(&srv->stop_at, loop_clock_ms() + SERVER_DRAIN_MS);
    server_request_wake(srv);
}

void server_set_wake(struct server *srv, server_wake_fn wake, void *model)
{
    pthread_mutex_lock(&srv->wake_mu);
    srv->wake = wake;
    srv->model = model;
    pthread_mutex_unlock(&srv->wake_mu);
    /* A shutdown requested before the hook existed is seen by the model's own checks of
     * `stopping`; waking once more here closes the window between the two. */
    if (wake && atomic_load(&srv->stopping))
        server_request_wake(srv);
}

/* ---- the server's policy for TCP connections (struct conn_ops) ---- */

static int echo(struct conn *c, const uint8_t *p, size_t n)
{
    return conn_send_msg(c, p, n);
}

/* Ends the fragmented message in progress, if any: wiped (it may be secret) and freed. */
static void drop_partial(struct server_conn *sc)
{
    if (!sc->msg)
        return;
    OPENSSL_cleanse(sc->msg, sizeof(*sc->msg));
    free(sc->msg);
    sc->msg = NULL;
}

static int server_on_conn_message(void *arg, struct conn *c, const struct proto_msg *m,
                                  uint64_t now)
{
    struct server_conn *sc = arg;
    struct server *srv = sc->srv;
    bool stream = srv->conf.proto->flags & PROTO_F_STREAM_ECHO;
    struct server_msg whole, *msg;
    int r;

    if (m->first)
        drop_partial(sc);
    if (m->first && m->last) {
        msg = &whole; /* the usual case: nothing kept between calls */
        server_msg_reset(msg);
    } else {
        if (!sc->msg) {
            sc->msg = malloc(sizeof(*sc->msg));
            if (!sc->msg)
                return -ENOMEM;
            server_msg_reset(sc->msg);
        }
        msg = sc->msg;
    }
    server_msg_add(msg, m->data, m->len);
    /* RFC 862: plain TCP echoes every byte at once, line or not. */
    if (stream && (r = echo(c, m->data, m->len)) < 0)
        return r;
    if (!m->last)
        return 0;
    if (stream)
        server_msg_trim_eol(msg);
    enum server_action act =
        server_on_message(srv, sc->id, sc->peer_text, &sc->peer.sa, conn_admin(c), msg);
    if (msg == &whole)
        OPENSSL_cleanse(&whole, sizeof(whole));
    else
        drop_partial(sc);
    switch (act) {
    case ACT_DENIED:
        if (stream)
            return echo(c, (const uint8_t *)SERVER_DENIED_TEXT "\n", sizeof(SERVER_DENIED_TEXT));
        return echo(c, (const uint8_t *)SERVER_DENIED_TEXT, sizeof(SERVER_DENIED_TEXT) - 1);
    case ACT_EXIT:
        r = stream ? 0 : echo(c, m->data, m->len);
        conn_drain(c, CONN_REASON_EXIT, now + CONN_DRAIN_MS);
        return r;
    case ACT_SHUTDOWN:
        r = stream ? 0 : echo(c, m->data, m->len);
        server_request_shutdown(srv);
        return r;
    case ACT_ECHO:
    default:
        return stream ? 0 : echo(c, m->data, m->len);
    }
}

static void server_on_conn_handshake(void *arg, struct conn *c, uint64_t now)
{
    (void)now;
    struct server_conn *sc = arg;
    char id[128] = "";
    char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)], kv[LOG_VALUE_MAX(sizeof(id))];
    stats_add(STATS_HANDSHAKES, 1);
    if (conn_peer_id(c, id, sizeof(id)))
        log_event(LOG_INFO, "handshake", "peer=%s conn=%llu peer_key=%s",
                  log_value(pv, sizeof(pv), sc->peer_text), (unsigned long long)sc->id,
                  log_value(kv, sizeof(kv), id));
}

static void server_on_conn_fault(void *arg, struct conn *c, enum conn_fault what, int err)
{
    struct server_conn *sc = arg;
    char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)], e[128], ev[LOG_VALUE_MAX(sizeof(e))];
    switch (what) {
    case CONN_FAULT_HANDSHAKE:
        stats_add(STATS_ERR_HANDSHAKE_TIMEOUT, 1);
        log_event_limited(&kind_timeout_handshake, sc->peer_text,
                          "peer=%s conn=%llu what=handshake",
                          log_value(pv, sizeof(pv), sc->peer_text), (unsigned long long)sc->id);
        break;
    case CONN_FAULT_RECORD:
        stats_add(STATS_ERR_RECORD_TIMEOUT, 1);
        log_event_limited(&kind_timeout_record, sc->peer_text, "peer=%s conn=%llu what=record",
                          log_value(pv, sizeof(pv), sc->peer_text), (unsigned long long)sc->id);
        break;
    case CONN_FAULT_RECV:
        stats_add(STATS_ERR_RECV, 1);
        snprintf(e, sizeof(e), "recv: %s", strerror(err));
        log_event(LOG_ERROR, "error", "peer=%s conn=%llu error=%s",
                  log_value(pv, sizeof(pv), sc->peer_text), (unsigned long long)sc->id,
                  log_value(ev, sizeof(ev), e));
        break;
    case CONN_FAULT_PROXY:
        stats_add(STATS_ERR_PROXY, 1);
        if (err == PROXY_HDR_E_UNTRUSTED) {
            log_event_limited(&kind_untrusted_proxy, sc->peer_text,
                              "peer=%s conn=%llu reason=untrusted_proxy",
                              log_value(pv, sizeof(pv), sc->peer_text), (unsigned long long)sc->id);
            break;
        }
        log_event_limited(&kind_proxy_header, sc->peer_text,
                          "peer=%s conn=%llu reason=proxy_header error=%s",
                          log_value(pv, sizeof(pv), sc->peer_text), (unsigned long long)sc->id,
                          log_value(ev, sizeof(ev), proxy_hdr_strerror((enum proxy_hdr_error)err)));
        break;
    case CONN_FAULT_PROTO:
    default:
        server_log_proto_error(sc->srv, sc->id, sc->peer_text, err, conn_error_text(c));
        break;
    }
}

/* `connect`, with the proxy beside the peer when a PROXY header named the peer. */
static void log_connect(struct server_conn *sc)
{
    char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)], xv[LOG_VALUE_MAX(NET_ADDRSTRLEN)];
    sc->connected = true;
    log_event(LOG_INFO, "connect", "peer=%s conn=%llu%s%s",
              log_value(pv, sizeof(pv), sc->peer_text), (unsigned long long)sc->id,
              sc->proxy_text[0] ? " proxy=" : "",
              sc->proxy_text[0] ? log_value(xv, sizeof(xv), sc->proxy_text) : "");
}

static int server_on_conn_proxy(void *arg, struct conn *c, const struct proxy_hdr_result *h,
                                uint64_t now)
{
    (void)c;
    (void)now;
    struct server_conn *sc = arg;
    memcpy(sc->proxy_text, sc->peer_text, sizeof(sc->proxy_text));
    /* From here on the client is the peer: the log, the rate limits, and the loopback rule
     * of --allow-shutdown (a proxy on loopback does not make its clients local). A LOCAL
     * header (a health check) or one without an address leaves the proxy as the peer. */
    if (h->has_addr) {
        _Static_assert(sizeof(sc->peer) == sizeof(h->src), "peer and header address unions");
        memcpy(&sc->peer, &h->src, sizeof(sc->peer));
        net_format_addr(&sc->peer.sa, sc->peer_text, sizeof(sc->peer_text));
    }
    log_connect(sc);
    return 0;
}

static bool trusted_proxy(const struct server *srv, const struct sockaddr *sa)
{
    for (int i = 0; i < srv->conf.ntrusted; i++)
        if (net_cidr_match(&srv->conf.trusted[i], sa))
            return true;
    return false;
}

static void server_on_conn_close(void *arg, struct conn *c)
{
    struct server_conn *sc = arg;
    if (!sc->connected) {
        /* Refused (or shut down) before its PROXY header: `denied` said so, if anything. */
        stats_end(conn_reason_name(c));
        return;
    }
    if (sc->msg && sc->msg->total > 0)
        server_log_partial(sc->srv, sc->id, sc->peer_text, sc->msg);
    char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)];
    log_event(LOG_INFO, "disconnect", "peer=%s conn=%llu reason=%s",
              log_value(pv, sizeof(pv), sc->peer_text), (unsigned long long)sc->id,
              conn_reason_name(c));
    stats_end(conn_reason_name(c));
    drop_partial(sc);
}

static const struct conn_ops server_conn_ops = {
    .on_message = server_on_conn_message,
    .on_handshake = server_on_conn_handshake,
    .on_fault = server_on_conn_fault,
    .on_close = server_on_conn_close,
    .on_proxy = server_on_conn_proxy,
};

int server_conn_init(struct server_conn *sc, struct server *srv, const struct net_addr *peer,
                     uint64_t now)
{
    sc->srv = srv;
    memset(&sc->peer, 0, sizeof(sc->peer));
    memcpy(&sc->peer, &peer->ss,
           (size_t)peer->len < sizeof(sc->peer) ? (size_t)peer->len : sizeof(sc->peer));
    sc->id = atomic_fetch_add(&srv->next_id, 1);
    net_format_addr((const struct sockaddr *)&peer->ss, sc->peer_text, sizeof(sc->peer_text));
    sc->msg = NULL;
    sc->proxy_text[0] = '\0';
    sc->connected = false;
    stats_add(STATS_CONNS, 1);
    enum conn_proxy pp = CONN_PROXY_OFF;
    if (srv->conf.proxy_protocol)
        pp = trusted_proxy(srv, &sc->peer.sa) ? CONN_PROXY_REQUIRE : CONN_PROXY_REFUSE;
    if (pp != CONN_PROXY_REQUIRE)
        log_connect(sc);
    const struct conn_conf cf = {
        .vt = srv->conf.proto,
        .pctx = srv->pctx,
        .role = PROTO_SERVER,
        .in_limit = SERVER_IN_LIMIT,
        .out_limit = SERVER_OUT_LIMIT,
        .out_high = SERVER_OUT_HIGH,
        .read_chunk = SERVER_READ_CHUNK,
        .handshake_ms = srv->conf.handshake_timeout_ms,
        .idle_ms = srv->conf.idle_timeout_ms,
        .record_ms = srv->conf.record_timeout_ms,
        .linger_ms = SERVER_LINGER_MS,
        .proxy = pp,
    };
    return conn_init(&sc->c, &cf, &server_conn_ops, sc, now);
}
