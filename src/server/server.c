/* SPDX-License-Identifier: MIT */
/* Server start-up: everything before and after the I/O model runs. */
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

/* Signals are taken by one thread with sigwait, so no handler ever runs on an I/O thread
 * and every model sees shutdown the same way. */
static void server_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

static void *signal_main(void *arg)
{
    struct server *srv = arg;
    sigset_t set;
    server_signals(&set);
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
    server_signals(&set);
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
        if (banner)
            fprintf(stderr, "%s\n", banner);
    }
    if (conf->proto->ctx_identity) {
        const char *key = conf->proto->ctx_identity(srv->pctx);
        if (key) {
            char v[LOG_VALUE_MAX(128)];
            log_event(LOG_INFO, "identity", "proto=%s key=%s", conf->proto->name,
                      log_value(v, sizeof(v), key));
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
    if (status == 0) {
        log_limit_flush(); /* the counts of rate-limited events come before `stop` */
        log_event(LOG_INFO, "stop", "conns=%ld", atomic_load(&srv->nconns));
    }
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
