/* SPDX-License-Identifier: MIT */
/* The server's counters: per-thread slots, summed at report time, and their two renderings
 * (the event=stats line and the Prometheus text format). Sans-IO. */
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Thread_local struct stats_slot *stats_tls;

/* How each counter is named: its logfmt key, and its Prometheus family and label (a family
 * with a label collects several counters, one sample each). */
struct stats_name {
    const char *key;
    const char *family;
    const char *label; /* NULL: the family has no label of its own */
    const char *value;
};

static const struct stats_name names[STATS_N] = {
    [STATS_CONNS] = {"conns", "secho_connections_total", NULL, NULL},
    [STATS_CLOSED] = {"closed", "secho_connections_closed_total", NULL, NULL},
    [STATS_MSGS] = {"msgs", "secho_messages_total", NULL, NULL},
    [STATS_BYTES_IN] = {"bytes_in", "secho_received_bytes_total", NULL, NULL},
    [STATS_BYTES_OUT] = {"bytes_out", "secho_sent_bytes_total", NULL, NULL},
    [STATS_HANDSHAKES] = {"handshakes", "secho_handshakes_total", NULL, NULL},
    [STATS_AUTH_FAIL] = {"auth_fail", "secho_auth_failures_total", NULL, NULL},
    [STATS_END_EXIT] = {"disconnects_exit", "secho_disconnects_total", "reason", "exit"},
    [STATS_END_EOF] = {"disconnects_eof", "secho_disconnects_total", "reason", "eof"},
    [STATS_END_RESET] = {"disconnects_reset", "secho_disconnects_total", "reason", "reset"},
    [STATS_END_TIMEOUT] = {"disconnects_timeout", "secho_disconnects_total", "reason", "timeout"},
    [STATS_END_ERROR] = {"disconnects_error", "secho_disconnects_total", "reason", "error"},
    [STATS_END_SHUTDOWN] = {"disconnects_shutdown", "secho_disconnects_total", "reason",
                            "shutdown"},
    [STATS_END_EVICTED] = {"disconnects_evicted", "secho_disconnects_total", "reason", "evicted"},
    [STATS_ERR_PROTO] = {"errors_proto", "secho_errors_total", "kind", "proto"},
    [STATS_ERR_RECV] = {"errors_recv", "secho_errors_total", "kind", "recv"},
    [STATS_ERR_HANDSHAKE_TIMEOUT] = {"errors_handshake_timeout", "secho_errors_total", "kind",
                                     "handshake_timeout"},
    [STATS_ERR_RECORD_TIMEOUT] = {"errors_record_timeout", "secho_errors_total", "kind",
                                  "record_timeout"},
    [STATS_ERR_MAX_CONNS] = {"errors_max_conns", "secho_errors_total", "kind", "max_conns"},
    [STATS_ERR_NO_FDS] = {"errors_no_fds", "secho_errors_total", "kind", "no_fds"},
    [STATS_ERR_DENIED] = {"errors_denied", "secho_errors_total", "kind", "denied"},
    [STATS_ERR_PROXY] = {"errors_proxy", "secho_errors_total", "kind", "proxy"},
};

/* One HELP text per family, in the order families are written. */
static const struct {
    const char *family;
    const char *type;
    const char *help;
} families[] = {
    {"secho_connections_total", "counter",
     "TCP connections accepted and admitted, or UDP peer sessions started."},
    {"secho_connections_closed_total", "counter", "Connections and UDP sessions that ended."},
    {"secho_connections_open", "gauge", "Connections and UDP sessions open now."},
    {"secho_messages_total", "counter", "Messages received (each one echoed or answered)."},
    {"secho_received_bytes_total", "counter", "Bytes received from peers."},
    {"secho_sent_bytes_total", "counter", "Bytes sent to peers."},
    {"secho_handshakes_total", "counter", "Handshakes completed."},
    {"secho_auth_failures_total", "counter",
     "Records, datagrams or handshake messages that failed authentication or parsing."},
    {"secho_disconnects_total", "counter", "Connections and UDP sessions ended, by reason."},
    {"secho_errors_total", "counter", "Errors, by kind."},
};

void stats_end(const char *reason)
{
    if (!stats_tls)
        return;
    stats_add(STATS_CLOSED, 1);
    for (int k = STATS_END_EXIT; k <= STATS_END_EVICTED; k++) {
        if (strcmp(names[k].value, reason) == 0) {
            stats_add((enum stats_counter)k, 1);
            return;
        }
    }
    stats_add(STATS_END_ERROR, 1); /* "none" cannot end a connection; count it somewhere */
}

static void slot_init(struct stats_slot *s, struct stats_worker *w)
{
    for (int k = 0; k < STATS_N; k++)
        atomic_init(&s->v[k], 0);
    s->prev = s->next = NULL;
    s->w = w;
}

/* Under w->mu. */
static void slot_link(struct stats_worker *w, struct stats_slot *s)
{
    s->prev = NULL;
    s->next = w->slots;
    if (w->slots)
        w->slots->prev = s;
    w->slots = s;
}

int stats_init(struct stats *st, int n)
{
    st->n = 0;
    atomic_init(&st->used, 0);
    st->w = calloc((size_t)(n > 0 ? n : 1), sizeof(*st->w));
    if (!st->w)
        return -ENOMEM;
    st->n = n > 0 ? n : 1;
    for (int i = 0; i < st->n; i++) {
        struct stats_worker *w = &st->w[i];
        pthread_mutex_init(&w->mu, NULL);
        slot_init(&w->own, w);
        w->slots = NULL;
        slot_link(w, &w->own);
    }
    atomic_store(&st->used, st->n);
    return 0;
}

void stats_free(struct stats *st)
{
    for (int i = 0; i < st->n; i++)
        pthread_mutex_destroy(&st->w[i].mu);
    free(st->w);
    st->w = NULL;
    st->n = 0;
}

void stats_set_workers(struct stats *st, int used)
{
    if (used < 1)
        used = 1;
    atomic_store(&st->used, used < st->n ? used : st->n);
}

void stats_enter(struct stats *st, int worker, struct stats_slot *s)
{
    if (!st || !st->w || worker < 0 || worker >= st->n)
        return;
    struct stats_worker *w = &st->w[worker];
    if (s) {
        slot_init(s, w);
        pthread_mutex_lock(&w->mu);
        slot_link(w, s);
        pthread_mutex_unlock(&w->mu);
    } else {
        s = &w->own;
    }
    stats_tls = s;
}

void stats_leave(void)
{
    struct stats_slot *s = stats_tls;
    stats_tls = NULL;
    if (!s || s == &s->w->own)
        return;
    struct stats_worker *w = s->w;
    pthread_mutex_lock(&w->mu);
    for (int k = 0; k < STATS_N; k++)
        w->retired[k] += atomic_load_explicit(&s->v[k], memory_order_relaxed);
    if (s->prev)
        s->prev->next = s->next;
    else
        w->slots = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&w->mu);
}

void stats_read(struct stats *st, int worker, uint64_t v[STATS_N])
{
    memset(v, 0, sizeof(uint64_t) * STATS_N);
    if (!st->w || worker < 0 || worker >= st->n)
        return;
    struct stats_worker *w = &st->w[worker];
    pthread_mutex_lock(&w->mu);
    for (int k = 0; k < STATS_N; k++)
        v[k] = w->retired[k];
    /* Closed before opened, so that a connection that comes and goes meanwhile is not
     * counted as closed without having been opened. */
    for (const struct stats_slot *s = w->slots; s; s = s->next) {
        v[STATS_CLOSED] += atomic_load_explicit(&s->v[STATS_CLOSED], memory_order_acquire);
        for (int k = 0; k < STATS_N; k++)
            if (k != STATS_CLOSED)
                v[k] += atomic_load_explicit(&s->v[k], memory_order_relaxed);
    }
    pthread_mutex_unlock(&w->mu);
}

void stats_total(struct stats *st, uint64_t v[STATS_N])
{
    memset(v, 0, sizeof(uint64_t) * STATS_N);
    int used = atomic_load(&st->used);
    for (int i = 0; i < used; i++) {
        uint64_t one[STATS_N];
        stats_read(st, i, one);
        for (int k = 0; k < STATS_N; k++)
            v[k] += one[k];
    }
}

uint64_t stats_open(const uint64_t v[STATS_N])
{
    return v[STATS_CONNS] > v[STATS_CLOSED] ? v[STATS_CONNS] - v[STATS_CLOSED] : 0;
}

size_t stats_format_line(const uint64_t v[STATS_N], char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    size_t n = 0;
    int k = snprintf(out, cap, "conns_open=%" PRIu64, stats_open(v));
    n = k > 0 ? (size_t)k : 0;
    for (int i = 0; i < STATS_N && n < cap; i++) {
        if (i == STATS_CLOSED)
            continue; /* conns_open says it */
        k = snprintf(out + n, cap - n, " %s=%" PRIu64, names[i].key, v[i]);
        if (k < 0)
            break;
        n += (size_t)k;
    }
    if (n >= cap)
        n = cap - 1;
    out[n] = '\0';
    return n;
}

/* ---- Prometheus text format ---- */

static int put(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int put(struct buf *out, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (k < 0)
        return -EINVAL;
    if ((size_t)k >= sizeof(line))
        k = (int)sizeof(line) - 1; /* never: every line here is short */
    return buf_append(out, line, (size_t)k);
}

/* A label value as the format wants it: backslash, double quote and line feed escaped. */
static void label_escape(char *dst, size_t cap, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            dst[n++] = '\\';
            dst[n++] = *s;
        } else if (*s == '\n') {
            dst[n++] = '\\';
            dst[n++] = 'n';
        } else {
            dst[n++] = *s;
        }
    }
    dst[n] = '\0';
}

static int put_family(struct buf *out, const char *family, uint64_t (*vals)[STATS_N], int used)
{
    int r = 0;
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        if (strcmp(families[f].family, family) != 0)
            continue;
        if ((r = put(out, "# HELP %s %s\n# TYPE %s %s\n", family, families[f].help, family,
                     families[f].type)) < 0)
            return r;
    }
    for (int i = 0; i < used; i++) {
        if (strcmp(family, "secho_connections_open") == 0) {
            if ((r = put(out, "%s{worker=\"%d\"} %" PRIu64 "\n", family, i, stats_open(vals[i]))) <
                0)
                return r;
            continue;
        }
        for (int k = 0; k < STATS_N; k++) {
            if (strcmp(names[k].family, family) != 0)
                continue;
            if (names[k].label)
                r = put(out, "%s{worker=\"%d\",%s=\"%s\"} %" PRIu64 "\n", family, i, names[k].label,
                        names[k].value, vals[i][k]);
            else
                r = put(out, "%s{worker=\"%d\"} %" PRIu64 "\n", family, i, vals[i][k]);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

int stats_format_prometheus(struct stats *st, const struct stats_info *info, struct buf *out)
{
    int used = atomic_load(&st->used);
    uint64_t(*vals)[STATS_N] = calloc((size_t)used, sizeof(*vals));
    if (!vals)
        return -ENOMEM;
    for (int i = 0; i < used; i++)
        stats_read(st, i, vals[i]);
    int r = 0;
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]) && r == 0; f++)
        r = put_family(out, families[f].family, vals, used);
    free(vals);
    if (r < 0)
        return r;
    char v[64], p[64], t[64], m[64];
    label_escape(v, sizeof(v), info ? info->version : NULL);
    label_escape(p, sizeof(p), info ? info->proto : NULL);
    label_escape(t, sizeof(t), info ? info->transport : NULL);
    label_escape(m, sizeof(m), info ? info->model : NULL);
    if ((r = put(out,
                 "# HELP secho_build_info The server's version and what it serves.\n"
                 "# TYPE secho_build_info gauge\n"
                 "secho_build_info{version=\"%s\",proto=\"%s\",transport=\"%s\",model=\"%s\"} 1\n",
                 v, p, t, m)) < 0)
        return r;
    if ((r = put(out,
                 "# HELP secho_workers Workers of the I/O model (the worker label of the others).\n"
                 "# TYPE secho_workers gauge\n"
                 "secho_workers %d\n",
                 used)) < 0)
        return r;
    return put(out,
               "# HELP secho_start_time_seconds When the server started, in Unix seconds.\n"
               "# TYPE secho_start_time_seconds gauge\n"
               "secho_start_time_seconds %.3f\n",
               info ? info->start_time : 0.0);
}
