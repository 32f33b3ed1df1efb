/* SPDX-License-Identifier: MIT */
/* Server start-up, shutdown coordination and the message handling every model shares. */
#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "log.h"
#include "loop.h"

void server_msg_reset(struct server_msg *m)
{
    m->headlen = 0;
    m->total = 0;
    m->tail[0] = m->tail[1] = 0;
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
    if (m->total > 0 && m->tail[0] == '\r')
        m->total--;
    if (m->headlen > m->total)
        m->headlen = m->total;
}

static bool msg_is(const struct server_msg *m, const char *word)
{
    size_t n = strlen(word);
    return m->total == n && m->headlen == n && memcmp(m->head, word, n) == 0;
}

static void log_message(struct server *srv, uint64_t conn_id, const char *peer,
                        const struct server_msg *m, bool partial)
{
    if (!srv->conf.log_messages) {
        log_event(LOG_INFO, "message", "peer=%s conn=%llu bytes=%zu%s", peer,
                  (unsigned long long)conn_id, m->total, partial ? " partial=1" : "");
        return;
    }
    char text[LOG_ESCAPED_MAX];
    log_escape(text, m->head, m->headlen);
    log_event(LOG_INFO, "message", "peer=%s conn=%llu bytes=%zu text=\"%s\"%s%s", peer,
              (unsigned long long)conn_id, m->total, text,
              m->total > m->headlen ? " truncated=1" : "", partial ? " partial=1" : "");
}

void server_log_partial(struct server *srv, uint64_t conn_id, const char *peer,
                        const struct server_msg *m)
{
    log_message(srv, conn_id, peer, m, true);
}

void server_log_proto_error(struct server *srv, uint64_t conn_id, const char *peer, int err,
                            const char *detail)
{
    (void)srv;
    /* The detail may quote peer bytes: escape it like any peer text. */
    char text[LOG_ESCAPED_MAX];
    size_t n = detail ? strnlen(detail, LOG_TEXT_BYTES) : 0;
    log_escape(text, (const uint8_t *)(detail ? detail : ""), n);
    bool auth = err == PROTO_E_AUTH || err == PROTO_E_PARSE;
    log_event(auth ? LOG_WARN : LOG_ERROR, auth ? "auth_fail" : "error",
              "peer=%s conn=%llu error=\"%s\"%s%s%s", peer, (unsigned long long)conn_id,
              proto_strerror(err), n ? " detail=\"" : "", text, n ? "\"" : "");
}

enum server_action server_on_message(struct server *srv, uint64_t conn_id, const char *peer,
                                     const struct sockaddr *peer_sa, int admin,
                                     const struct server_msg *m)
{
    log_message(srv, conn_id, peer, m, false);
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
        log_event(LOG_WARN, "denied", "peer=%s conn=%llu command=shutdown", peer,
                  (unsigned long long)conn_id);
        return ACT_DENIED;
    }
    log_event(LOG_INFO, "shutdown", "peer=%s conn=%llu", peer, (unsigned long long)conn_id);
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

void server_ready(struct server *srv, const struct net_addr *bound)
{
    char addr[NET_ADDRSTRLEN];
    net_format_addr((const struct sockaddr *)&bound->ss, addr, sizeof(addr));
    log_event(LOG_INFO, "listening", "addr=%s transport=%s proto=%s model=%s", addr,
              srv->conf.udp ? "udp" : "tcp", srv->conf.proto->name,
              srv->conf.model == SERVER_THREADS ? "threads"
              : srv->conf.model == SERVER_EPOLL ? "epoll"
                                                : "reactors");
    printf("listening on %s\n", addr);
    fflush(stdout);
}

/* Signals are taken by one thread with sigwait, so no handler ever runs on an I/O thread
 * and every model sees shutdown the same way. */
static void *signal_main(void *arg)
{
    struct server *srv = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            log_reopen();
        } else if (sig == SIGUSR1) {
            return NULL; /* the server is done: the main thread asks us to leave */
        } else {
            log_event(LOG_INFO, "signal", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
            server_request_shutdown(srv);
        }
    }
}

int server_run(const struct server_conf *conf)
{
    struct server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        fprintf(stderr, "secho: out of memory\n");
        return 1;
    }
    srv->conf = *conf;
    atomic_init(&srv->next_id, 1);
    pthread_mutex_init(&srv->wake_mu, NULL);
    int status = 1;
    pthread_t sigthread;
    bool sig_started = false;

    /* Block the signals before any thread exists (the log writer included), so that only
     * the signal thread ever receives them. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    char err[256];
    if (net_resolve(conf->host, conf->port, conf->udp ? SOCK_DGRAM : SOCK_STREAM, &srv->addr, err,
                    sizeof(err)) < 0) {
        fprintf(stderr, "secho: cannot resolve %s: %s\n", conf->host, err);
        goto out;
    }
    int r = log_open(conf->log_path);
    if (r < 0) {
        fprintf(stderr, "secho: cannot open log file %s: %s\n", conf->log_path, strerror(-r));
        goto out;
    }
    char perr[PROTO_ERRLEN] = "";
    if (conf->proto->ctx_new && (r = conf->proto->ctx_new(&srv->conf.popts, PROTO_SERVER,
                                                          &srv->pctx, perr, sizeof(perr))) < 0) {
        fprintf(stderr, "secho: %s\n", perr[0] ? perr : proto_strerror(r));
        goto out_log;
    }
    if (conf->proto->ctx_banner) {
        const char *banner = conf->proto->ctx_banner(srv->pctx);
        if (banner) {
            fprintf(stderr, "%s\n", banner);
            char text[LOG_ESCAPED_MAX];
            log_escape(text, (const uint8_t *)banner, strnlen(banner, LOG_TEXT_BYTES));
            log_event(LOG_INFO, "identity", "proto=%s text=\"%s\"", conf->proto->name, text);
        }
    }

    if (pthread_create(&sigthread, NULL, signal_main, srv) == 0)
        sig_started = true;

    switch (conf->model) {
    case SERVER_THREADS:
        status = io_threads_run(srv);
        break;
    case SERVER_EPOLL:
        status = io_epoll_run(srv);
        break;
    default:
        status = io_reactors_run(srv);
        break;
    }
    if (status == 0)
        log_event(LOG_INFO, "stop", "conns=%ld", atomic_load(&srv->nconns));
    if (sig_started) {
        pthread_kill(sigthread, SIGUSR1);
        pthread_join(sigthread, NULL);
    }
    if (conf->proto->ctx_free && srv->pctx)
        conf->proto->ctx_free(srv->pctx);
out_log:
    log_close();
out:
    pthread_mutex_destroy(&srv->wake_mu);
    free(srv);
    return status;
}
