/* SPDX-License-Identifier: MIT */
/* Rate limiter for repeated log events: GCRA buckets per (kind, key) in a small open-addressed
 * table, and one bucket for everything. */
#include "ratelimit.h"

#include <string.h>

void rl_init(struct ratelimit *rl, struct rl_rate per_key, struct rl_rate global, uint64_t seed)
{
    memset(rl, 0, sizeof(*rl));
    if (per_key.burst < 1)
        per_key.burst = 1;
    if (per_key.interval_ms < 1)
        per_key.interval_ms = 1;
    if (global.burst < 1)
        global.burst = 1;
    if (global.interval_ms < 1)
        global.interval_ms = 1;
    rl->per_key = per_key;
    rl->global = global;
    rl->seed = seed;
}

/* GCRA: an event may pass at `now` unless the bucket's next arrival is further ahead than
 * the burst allows. */
static bool gcra_ok(const struct rl_rate *r, uint64_t tat, uint64_t now)
{
    uint64_t tau = (uint64_t)(r->burst - 1) * r->interval_ms;
    return tat <= now + tau;
}

static void gcra_take(const struct rl_rate *r, uint64_t *tat, uint64_t now)
{
    *tat = (*tat > now ? *tat : now) + r->interval_ms;
}

/* The kind's index, registering it if there is room; -1 when the table of kinds is full. */
static int kind_index(struct ratelimit *rl, const void *kind)
{
    for (int i = 0; i < RL_KINDS; i++) {
        if (rl->kinds[i].id == kind)
            return i;
        if (!rl->kinds[i].id) {
            rl->kinds[i].id = kind;
            return i;
        }
    }
    return -1;
}

static uint64_t key_hash(const struct ratelimit *rl, int kind, const char *key, size_t n)
{
    /* FNV-1a, keyed with the seed. */
    uint64_t h = 0xcbf29ce484222325ULL ^ rl->seed;
    h = (h ^ (uint8_t)kind) * 0x100000001b3ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)key[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

/* A slot holding nothing owed whose bucket is full again is as good as empty. */
static bool slot_idle(const struct ratelimit *rl, const struct rl_slot *s, uint64_t now)
{
    (void)rl;
    return !s->used || (s->suppressed == 0 && s->tat <= now);
}

/* Moves a forgotten or refused count to its kind's aggregate. */
static void to_aggregate(struct ratelimit *rl, int kind, uint64_t n)
{
    if (kind >= 0)
        rl->kinds[kind].suppressed += n;
    else
        rl->other += n;
}

/* The slot of (kind, key): found, or taken over (an idle one in the probe window first,
 * else the one whose bucket refills soonest, its count handed to its kind). */
static struct rl_slot *slot_for(struct ratelimit *rl, int kind, const char *key, uint64_t now)
{
    size_t n = strnlen(key, RL_KEY_MAX - 1);
    size_t at = (size_t)key_hash(rl, kind, key, n) & (RL_SLOTS - 1);
    struct rl_slot *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < RL_PROBE; i++) {
        struct rl_slot *s = &rl->slots[(at + i) & (RL_SLOTS - 1)];
        if (s->used && s->kind == (uint8_t)kind && strncmp(s->key, key, n) == 0 && s->key[n] == 0)
            return s;
        if (!free_slot && slot_idle(rl, s, now))
            free_slot = s;
        if (!oldest || s->tat < oldest->tat)
            oldest = s;
    }
    struct rl_slot *s = free_slot ? free_slot : oldest;
    if (s->used && s->suppressed)
        to_aggregate(rl, s->kind, s->suppressed);
    s->used = 1;
    s->kind = (uint8_t)kind;
    s->tat = 0;
    s->suppressed = 0;
    memcpy(s->key, key, n);
    s->key[n] = 0;
    return s;
}

bool rl_check(struct ratelimit *rl, const void *kind, const char *key, uint64_t now,
              uint64_t *suppressed)
{
    *suppressed = 0;
    int k = kind_index(rl, kind);
    if (k < 0) {
        /* No room to tell this kind apart: only the overall limit applies. */
        if (!gcra_ok(&rl->global, rl->global_tat, now)) {
            rl->other++;
            rl->owed++;
            return false;
        }
        gcra_take(&rl->global, &rl->global_tat, now);
        return true;
    }
    struct rl_slot *s = slot_for(rl, k, key ? key : "", now);
    if (!gcra_ok(&rl->per_key, s->tat, now)) {
        s->suppressed++;
        rl->owed++;
        return false;
    }
    if (!gcra_ok(&rl->global, rl->global_tat, now)) {
        rl->kinds[k].suppressed++;
        rl->owed++;
        return false;
    }
    gcra_take(&rl->per_key, &s->tat, now);
    gcra_take(&rl->global, &rl->global_tat, now);
    *suppressed = s->suppressed;
    rl->owed -= s->suppressed;
    s->suppressed = 0;
    return true;
}

size_t rl_flush(struct ratelimit *rl, uint64_t now, bool all, rl_emit_fn emit, void *arg)
{
    size_t lines = 0;
    if (rl->owed == 0)
        return 0;
    for (size_t i = 0; i < RL_SLOTS; i++) {
        struct rl_slot *s = &rl->slots[i];
        if (!s->used || s->suppressed == 0)
            continue;
        if (!all && !gcra_ok(&rl->per_key, s->tat, now))
            continue; /* still limited: reported with its next line, or a later flush */
        uint64_t n = s->suppressed;
        s->suppressed = 0;
        if (gcra_ok(&rl->global, rl->global_tat, now)) {
            gcra_take(&rl->per_key, &s->tat, now);
            gcra_take(&rl->global, &rl->global_tat, now);
            rl->owed -= n;
            emit(arg, rl->kinds[s->kind].id, s->key, n);
            lines++;
        } else {
            to_aggregate(rl, s->kind, n);
        }
    }
    for (int k = 0; k < RL_KINDS && rl->kinds[k].id; k++) {
        uint64_t n = rl->kinds[k].suppressed;
        if (!n)
            continue;
        rl->kinds[k].suppressed = 0;
        rl->owed -= n;
        emit(arg, rl->kinds[k].id, NULL, n);
        lines++;
    }
    if (rl->other) {
        uint64_t n = rl->other;
        rl->other = 0;
        rl->owed -= n;
        emit(arg, RL_KIND_OTHER, NULL, n);
        lines++;
    }
    return lines;
}
