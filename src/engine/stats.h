/* SPDX-License-Identifier: MIT */
/* The server's counters (--stats, --metrics): per-worker slots written without locks or
 * contended atomics on the hot path, summed only when someone asks. */
#ifndef SECHO_STATS_H
#define SECHO_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* What is counted. Each is a monotonic count; "open" connections are conns - closed. */
enum stats_counter {
    STATS_CONNS,      /* TCP connections accepted and admitted; UDP peer sessions started */
    STATS_CLOSED,     /* of those, ended (disconnect logged or evicted) */
    STATS_MSGS,       /* messages received (each logged as event=message) */
    STATS_BYTES_IN,   /* bytes received from peers (TCP stream bytes, UDP datagram bytes) */
    STATS_BYTES_OUT,  /* bytes sent to peers (echoes, handshakes, greetings) */
    STATS_HANDSHAKES, /* handshakes completed (secure, lab-dh, ...; none for plain) */
    STATS_AUTH_FAIL,  /* records, datagrams or handshake messages that failed (auth_fail) */
    /* Why connections ended (event=disconnect reason=...). */
    STATS_END_EXIT,
    STATS_END_EOF,
    STATS_END_RESET,
    STATS_END_TIMEOUT,
    STATS_END_ERROR,
    STATS_END_SHUTDOWN,
    STATS_END_EVICTED, /* UDP: made room for a new peer */
    /* Errors by kind. */
    STATS_ERR_PROTO,             /* a protocol failure that is not an auth_fail (event=error) */
    STATS_ERR_RECV,              /* a receive failed (not a reset) */
    STATS_ERR_HANDSHAKE_TIMEOUT, /* --handshake-timeout passed */
    STATS_ERR_RECORD_TIMEOUT,    /* --record-timeout passed */
    STATS_ERR_MAX_CONNS,         /* refused: --max-conns reached */
    STATS_ERR_NO_FDS,            /* accept ran out of descriptors */
    STATS_ERR_DENIED,            /* `shutdown` from a peer that may not */
    STATS_ERR_PROXY,             /* refused at the PROXY header (--proxy-protocol) */
    STATS_N
};

/*
 * One thread's counters. Only the owning thread writes them (a relaxed load and store: plain
 * moves, no locked instruction, no cache line shared with another writer); readers load them
 * relaxed. A slot is listed in its worker while a thread counts into it.
 */
struct stats_slot {
    atomic_uint_fast64_t v[STATS_N];
    struct stats_slot *prev, *next; /* the worker's list, under its mutex */
    struct stats_worker *w;
};

/* One worker of the I/O model: the thread of an event loop (epoll, each reactor), or for
 * -m threads the acceptor with every connection thread. */
struct stats_worker {
    pthread_mutex_t mu;
    struct stats_slot own;     /* the worker thread's own slot, always listed */
    struct stats_slot *slots;  /* every listed slot */
    uint64_t retired[STATS_N]; /* what slots that left had counted */
    char pad[64];              /* keeps the next worker's lines off this one's */
};

struct stats {
    struct stats_worker *w;
    int n;           /* workers allocated */
    atomic_int used; /* workers the model runs (reported) */
};

/* The slot the calling thread counts into, NULL when it counts nothing (the client, bench,
 * the unit tests, threads the models do not run). */
extern _Thread_local struct stats_slot *stats_tls;

/* Counts n for the calling thread's slot; nothing without one. Cheap: one thread-local load,
 * a branch, and an add to memory no other thread writes. */
static inline void stats_add(enum stats_counter k, uint64_t n)
{
    struct stats_slot *s = stats_tls;
    if (s)
        atomic_store_explicit(&s->v[k], atomic_load_explicit(&s->v[k], memory_order_relaxed) + n,
                              memory_order_relaxed);
}

/* A connection ended for `reason` (the log's name: "exit", "eof", "reset", "timeout",
 * "error", "shutdown", "evicted"): counts STATS_CLOSED and that reason. */
void stats_end(const char *reason);

/* Sets up n (>= 1) workers, each reported once used. Returns 0 or -ENOMEM (then nothing is
 * owed; stats_free is safe). */
int stats_init(struct stats *st, int n);
/* Frees the workers. No thread may be counting into them any more. */
void stats_free(struct stats *st);
/* The model runs this many workers (1..n): only those are reported. */
void stats_set_workers(struct stats *st, int used);
/* The calling thread counts for `worker` (0..n-1) from now on: into the worker's own slot
 * when s is NULL (the one thread of an event loop), otherwise into s (a thread of its own,
 * such as one connection's under -m threads), which the caller keeps alive until
 * stats_leave. Does nothing when st is NULL. */
void stats_enter(struct stats *st, int worker, struct stats_slot *s);
/* The calling thread stops counting; what a slot of its own counted stays in the worker's
 * totals. */
void stats_leave(void);

/* The counts of one worker (v) or of all used ones (stats_total); thread-safe. */
void stats_read(struct stats *st, int worker, uint64_t v[STATS_N]);
void stats_total(struct stats *st, uint64_t v[STATS_N]);
/* Connections open in v: conns - closed (never below 0 in a racy read). */
uint64_t stats_open(const uint64_t v[STATS_N]);

/* The counts as logfmt pairs for event=stats: "conns_open=N conns=N msgs=N ..." (every value
 * a bare number). Always NUL-terminated; returns the length, cut to fit cap. */
size_t stats_format_line(const uint64_t v[STATS_N], char *out, size_t cap);

/* Labels of the secho_build_info metric; any may be NULL. */
struct stats_info {
    const char *version;
    const char *proto;
    const char *transport;
    const char *model;
    double start_time; /* Unix seconds */
};

/* Appends the counters of every used worker in the Prometheus text exposition format 0.0.4
 * (HELP and TYPE lines, one sample per worker and label, label values escaped) to out.
 * Returns 0, or -ENOBUFS/-ENOMEM when out cannot hold it (out then holds part of it). */
int stats_format_prometheus(struct stats *st, const struct stats_info *info, struct buf *out);

#endif
