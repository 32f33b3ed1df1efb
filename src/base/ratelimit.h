/* SPDX-License-Identifier: MIT */
/* Rate limiter for repeated log events, per (kind, key) and overall, in bounded memory.
 * Pure: no clock, no lock, no allocation; the caller passes the time and serialises calls. */
#ifndef SECHO_RATELIMIT_H
#define SECHO_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keys remembered at once (a power of two), and the slots one key may land in. */
#define RL_SLOTS 1024
#define RL_PROBE 8
/* A key longer than this minus one is cut (two keys alike up to there count as one). */
#define RL_KEY_MAX 64
/* Kinds remembered; the events of any further kind share one aggregate (RL_KIND_OTHER). */
#define RL_KINDS      16
#define RL_KIND_OTHER NULL

/* A token bucket as GCRA: `burst` events at once, then one per `interval_ms`. */
struct rl_rate {
    uint32_t burst;       /* >= 1 */
    uint32_t interval_ms; /* >= 1 */
};

struct rl_slot {
    uint64_t tat;        /* theoretical arrival time of the key's next event (GCRA) */
    uint64_t suppressed; /* events of this key left out since its last line */
    uint8_t used;
    uint8_t kind; /* index into kinds */
    char key[RL_KEY_MAX];
};

struct rl_kind {
    const void *id;      /* the caller's kind (compared by address); NULL: unused */
    uint64_t suppressed; /* left out by the overall limit, or by keys that were forgotten */
};

/*
 * Every key is limited to `per_key`; the events of all keys together to `global`. An event
 * the per-key limit refuses is counted on its key (reported with the key's next line, or by
 * rl_flush once the key may log again); one the global limit refuses is counted on its kind
 * and reported by rl_flush in one aggregated line per kind. A key pushed out of the table
 * (more than RL_PROBE keys in use around its hash slot) hands its count to its kind, so no
 * event is ever lost from the totals: every event is either allowed, or counted exactly
 * once in a count that rl_check or rl_flush hands back.
 */
struct ratelimit {
    struct rl_rate per_key, global;
    uint64_t seed;
    uint64_t global_tat;
    uint64_t other; /* the aggregate of kinds beyond RL_KINDS */
    uint64_t owed;  /* events counted and not yet handed back, wherever they are counted */
    struct rl_kind kinds[RL_KINDS];
    struct rl_slot slots[RL_SLOTS];
};

/* Empties `rl` and sets its limits; `seed` keys the slot hash (so a peer cannot aim keys at
 * one slot). */
void rl_init(struct ratelimit *rl, struct rl_rate per_key, struct rl_rate global, uint64_t seed);

/*
 * One event of `kind` (any stable address naming the kind) for `key` (NUL-terminated; NULL
 * or "" is a key like any other) at monotonic time `now` (ms, never going backwards).
 * Returns true if it may be logged, with *suppressed set to the events of this key left out
 * since its last line (now handed over: the caller reports them with this line, e.g. as
 * `suppressed=N`); false if it is left out (counted).
 */
bool rl_check(struct ratelimit *rl, const void *kind, const char *key, uint64_t now,
              uint64_t *suppressed);

/*
 * What rl_flush reports: for a key, the events of `kind` left out for `key` (its limit has
 * lifted, so this line may go out); for key == NULL, the events of `kind` left out by the
 * overall limit or by keys forgotten (kind RL_KIND_OTHER: of kinds beyond RL_KINDS).
 */
typedef void (*rl_emit_fn)(void *arg, const void *kind, const char *key, uint64_t n);

/*
 * Hands back what is owed at `now`: each key whose count is not zero and whose own limit has
 * lifted (with `all`, every such key, lifted or not) is reported on its own while the
 * overall limit allows it (each report takes one event of the key's and the overall
 * allowance), and folded into its kind's aggregate otherwise; then each kind with a count is
 * reported as one aggregate. So one call reports at most the overall allowance plus
 * RL_KINDS + 1 lines. Returns the number of reports.
 */
size_t rl_flush(struct ratelimit *rl, uint64_t now, bool all, rl_emit_fn emit, void *arg);

#endif
