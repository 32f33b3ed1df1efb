/* SPDX-License-Identifier: MIT */
/* Server start-up: everything before and after the I/O model runs. */
#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "activation.h"
#include "io.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "stats.h"

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

/* Writes event=stats (the totals) and one event=stats_worker line per worker of the model. */
static void log_stats(struct server *srv, uint64_t started)
{
    uint64_t v[STATS_N];
    char line[1024];
    stats_total(&srv->stats, v);
    stats_format_line(v, line, sizeof(line));
    int used = atomic_load(&srv->stats.used);
    log_event(LOG_INFO, "stats", "uptime_s=%.3f workers=%d %s",
              (double)(loop_clock_ms() - started) / 1000.0, used, line);
    for (int i = 0; i < used; i++) {
        stats_read(&srv->stats, i, v);
        stats_format_line(v, line, sizeof(line));
        log_event(LOG_INFO, "stats_worker", "worker=%d %s", i, line);
    }
}

struct signal_ctx {
    struct server *srv;
    uint64_t started;
};

static void *signal_main(void *arg)
{
    struct signal_ctx *ctx = arg;
    struct server *srv = ctx->srv;
    int every = srv->conf.stats_ms;
    uint64_t next = ctx->started + (uint64_t)every;
    sigset_t set;
    server_signals(&set);
    for (;;) {
        int sig;
        if (every > 0) {
            /* --stats: wait for a signal until the next line is due. */
            uint64_t now = loop_clock_ms();
            if (now >= next) {
                log_stats(srv, ctx->started);
                next += (uint64_t)every;
                if (next <= now)
                    next = now + (uint64_t)every; /* the machine slept: no burst of lines */
                continue;
            }
            uint64_t left = next - now;
            struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
            sig = sigtimedwait(&set, NULL, &ts);
            if (sig < 0)
                continue; /* EAGAIN: time for the line; EINTR */
        } else if (sigwait(&set, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            log_reopen();
        } else if (sig == SIGUSR1) {
            return NULL; /* the server is done: the main thread asks us to leave */
        } else {
            log_event(LOG_INFO, "signal", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
            activation_notify("STOPPING=1");
            server_request_shutdown(srv);
        }
    }
}

/* How many workers the chosen model runs (the reactors may run fewer: see model_listen). */
static int model_workers(const struct server_conf *conf)
{
    return conf->model == SERVER_REACTORS && conf->threads > 1 ? conf->threads : 1;
}

int server_run(const struct server_conf *conf)
{
    struct server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        fprintf(stderr, "secho: out of memory\n");
        return 1;
    }
    srv->conf = *conf;
    srv->pidfile_fd = -1;
    atomic_init(&srv->next_id, 1);
    pthread_mutex_init(&srv->wake_mu, NULL);
    int status = 1;
    pthread_t sigthread;
    bool sig_started = false;
    struct activation act;
    struct metrics *metrics = NULL;
    struct signal_ctx sctx = {.srv = srv, .started = loop_clock_ms()};

    /* Block the signals before any thread exists (the log writer included), so that only
     * the signal thread ever receives them. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    server_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* Sockets passed by a service manager are taken first (and their variables unset),
     * whatever happens next. */
    int inherited = activation_take(&act, conf->udp);
    if (inherited < 0)
        goto out;
    srv->inherited = inherited > 0 ? &act : NULL;

    char err[256];
    if ((!srv->inherited || act.n == 0) &&
        net_resolve(conf->host, conf->port, conf->udp ? SOCK_DGRAM : SOCK_STREAM, &srv->addr, err,
                    sizeof(err)) < 0) {
        fprintf(stderr, "secho: cannot resolve %s: %s\n", conf->host, err);
        goto out;
    }
    if (conf->pid_file && (srv->pidfile_fd = pidfile_open(conf->pid_file)) < 0)
        goto out;
    if (stats_init(&srv->stats, model_workers(conf)) < 0) {
        fprintf(stderr, "secho: out of memory\n");
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
    /* The metrics listener: an inherited one named "metrics" wins over --metrics. */
    if (act.metrics.fd >= 0 || conf->metrics) {
        int mfd = act.metrics.fd;
        act.metrics.fd = -1;
        metrics = metrics_open(srv, conf->metrics, mfd);
        if (!metrics)
            goto out_ctx;
        if ((r = metrics_start(metrics)) < 0) {
            fprintf(stderr, "secho: cannot start the metrics thread: %s\n", strerror(-r));
            goto out_ctx;
        }
    }

    if (pthread_create(&sigthread, NULL, signal_main, &sctx) == 0)
        sig_started = true;

    switch (conf->model) {
    case SERVER_THREADS:
        status = io_threads_run(srv);
        break;
    case SERVER_EPOLL:
        status = io_epoll_run(srv);
        break;
    case SERVER_URING:
        status = io_uring_run(srv);
        break;
    default:
        status = io_reactors_run(srv);
        break;
    }
    activation_notify("STOPPING=1");
    if (sig_started) {
        pthread_kill(sigthread, SIGUSR1);
        pthread_join(sigthread, NULL);
    }
    if (status == 0 && conf->stats_ms > 0)
        log_stats(srv, sctx.started); /* the run's totals */
    if (status == 0) {
        log_limit_flush(); /* the counts of rate-limited events come before `stop` */
        log_event(LOG_INFO, "stop", "conns=%ld", atomic_load(&srv->nconns));
    }
out_ctx:
    metrics_stop(metrics);
    if (conf->proto->ctx_free && srv->pctx)
        conf->proto->ctx_free(srv->pctx);
out_log:
    log_close();
out:
    if (inherited > 0)
        activation_close(&act);
    stats_free(&srv->stats);
    if (srv->pidfile_fd >= 0)
        pidfile_remove(conf->pid_file, srv->pidfile_fd);
    pthread_mutex_destroy(&srv->wake_mu);
    free(srv);
    return status;
}
