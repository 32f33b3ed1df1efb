/* SPDX-License-Identifier: MIT */
/* Unit tests for the rate limiter of repeated log events, on a fake clock: the per-key and
 * overall limits, what each count is handed back as, the bounded table, and that no event
 * is ever lost from the totals. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "ratelimit.h"

static struct ratelimit rl; /* large: static */

/* Two kinds, named by the addresses of these. */
static const char kind_a, kind_b;

/* What rl_flush reported. */
#define MAXREP 4096
static struct rep {
    const void *kind;
    char key[RL_KEY_MAX];
    bool has_key;
    uint64_t n;
} reps[MAXREP];
static int nrep;

static void on_emit(void *arg, const void *kind, const char *key, uint64_t n)
{
    (void)arg;
    CHECK(n > 0);
    CHECK(nrep < MAXREP);
    if (nrep >= MAXREP)
        return;
    struct rep *r = &reps[nrep++];
    r->kind = kind;
    r->has_key = key != NULL;
    snprintf(r->key, sizeof(r->key), "%s", key ? key : "");
    r->n = n;
}

static size_t flush(uint64_t now, bool all)
{
    nrep = 0;
    return rl_flush(&rl, now, all, on_emit, NULL);
}

static uint64_t reported(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < nrep; i++)
        sum += reps[i].n;
    return sum;
}

static void init(uint32_t key_burst, uint32_t key_ms, uint32_t burst, uint32_t ms)
{
    rl_init(&rl, (struct rl_rate){key_burst, key_ms}, (struct rl_rate){burst, ms}, 12345);
}

/* One key: a burst passes, the rest is counted, and the key's next line after its limit
 * lifts carries the count. */
static void test_per_key(void)
{
    init(3, 1000, 100, 1);
    uint64_t sup = 99;
    for (int i = 0; i < 3; i++) {
        CHECK(rl_check(&rl, &kind_a, "10.0.0.1:1", 0, &sup));
        CHECK_INT(sup, 0);
    }
    for (int i = 0; i < 7; i++)
        CHECK(!rl_check(&rl, &kind_a, "10.0.0.1:1", 10, &sup));
    CHECK_INT(rl.owed, 7);
    /* Another key and another kind are not limited by this one. */
    CHECK(rl_check(&rl, &kind_a, "10.0.0.1:2", 10, &sup));
    CHECK(rl_check(&rl, &kind_b, "10.0.0.1:1", 10, &sup));
    /* Still limited at 999 ms: one token per second after the burst. */
    CHECK(!rl_check(&rl, &kind_a, "10.0.0.1:1", 999, &sup));
    CHECK(rl_check(&rl, &kind_a, "10.0.0.1:1", 1000, &sup));
    CHECK_INT(sup, 8);
    CHECK_INT(rl.owed, 0);
    CHECK(!rl_check(&rl, &kind_a, "10.0.0.1:1", 1500, &sup));
    CHECK(rl_check(&rl, &kind_a, "10.0.0.1:1", 2000, &sup));
    CHECK_INT(sup, 1);
    /* Quiet for long: the whole burst is back. */
    for (int i = 0; i < 3; i++) {
        CHECK(rl_check(&rl, &kind_a, "10.0.0.1:1", 100000, &sup));
        CHECK_INT(sup, 0);
    }
    CHECK(!rl_check(&rl, &kind_a, "10.0.0.1:1", 100000, &sup));
}

/* A key that stops while counted is reported by the flush once its limit lifted, not
 * before (unless `all`); the report takes one of its tokens. */
static void test_flush_lifted_key(void)
{
    init(1, 1000, 100, 1);
    uint64_t sup;
    CHECK(rl_check(&rl, &kind_a, "k", 0, &sup));
    CHECK(!rl_check(&rl, &kind_a, "k", 1, &sup));
    CHECK(!rl_check(&rl, &kind_a, "k", 2, &sup));
    CHECK_INT(flush(500, false), 0);
    CHECK_INT(flush(1000, false), 1);
    CHECK(reps[0].kind == &kind_a && reps[0].has_key);
    CHECK_STR(reps[0].key, "k");
    CHECK_INT(reps[0].n, 2);
    CHECK_INT(rl.owed, 0);
    /* The report used the token of 1000 ms. */
    CHECK(!rl_check(&rl, &kind_a, "k", 1001, &sup));
    CHECK_INT(flush(1002, false), 0);
    CHECK_INT(flush(1003, true), 1);
    CHECK_INT(reps[0].n, 1);
    CHECK_INT(flush(5000, true), 0);
}

/* Many keys at once (forged source ports): the overall limit holds, and what it left out is
 * one aggregate per kind. */
static void test_global(void)
{
    init(5, 1000, 10, 100);
    uint64_t sup, allowed = 0, handed = 0;
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "127.0.0.1:%d", 10000 + i);
        if (rl_check(&rl, i % 2 ? &kind_a : &kind_b, key, 0, &sup)) {
            allowed++;
            handed += sup;
        }
    }
    CHECK_INT(allowed, 10);
    CHECK_INT(rl.owed, 990);
    /* No key is over its own limit: only aggregates. */
    CHECK_INT(flush(0, false), 2);
    CHECK(!reps[0].has_key && !reps[1].has_key);
    CHECK(reps[0].kind != reps[1].kind);
    CHECK_INT(reported(), 990);
    CHECK_INT(rl.owed, 0);
    /* The overall limit refills at one per 100 ms. */
    CHECK(!rl_check(&rl, &kind_a, "x", 50, &sup));
    CHECK(rl_check(&rl, &kind_a, "y", 100, &sup));
    CHECK(!rl_check(&rl, &kind_a, "z", 100, &sup));
    CHECK_INT(flush(100, true), 1);
    CHECK_INT(reported(), 2);
    CHECK_INT(handed, 0);
}

/* A counted key whose report the overall limit has no room for is folded into its kind's
 * aggregate: the count is still reported once. */
static void test_flush_folds_when_global_is_out(void)
{
    init(1, 10, 2, 100000);
    uint64_t sup;
    CHECK(rl_check(&rl, &kind_a, "a", 0, &sup));
    CHECK(!rl_check(&rl, &kind_a, "a", 0, &sup)); /* per key */
    CHECK(rl_check(&rl, &kind_a, "b", 0, &sup));
    CHECK(!rl_check(&rl, &kind_a, "b", 0, &sup)); /* per key */
    CHECK(!rl_check(&rl, &kind_a, "c", 0, &sup)); /* overall */
    CHECK_INT(rl.owed, 3);
    CHECK_INT(flush(20, false), 1);
    CHECK(!reps[0].has_key);
    CHECK_INT(reps[0].n, 3);
    CHECK_INT(rl.owed, 0);
}

/* More keys than the table holds, each with a count: the ones pushed out hand their count
 * to the kind, so the totals stay exact and the memory fixed. */
static void test_table_bounded(void)
{
    init(1, 60000, 1000000, 1);
    uint64_t sup, allowed = 0, handed = 0, total = 0;
    char key[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4 * RL_SLOTS; i++) {
            snprintf(key, sizeof(key), "[2001:db8::%x]:%d", i, 40000 + i % 100);
            for (int j = 0; j < 2; j++) {
                total++;
                if (rl_check(&rl, &kind_a, key, (uint64_t)round, &sup)) {
                    allowed++;
                    handed += sup;
                }
            }
        }
    }
    CHECK(allowed >= 4 * RL_SLOTS); /* each key's first event, at least */
    flush(10, true);
    CHECK_INT(allowed + handed + reported(), total);
    CHECK_INT(rl.owed, 0);
    int keyed = 0;
    for (int i = 0; i < nrep; i++)
        keyed += reps[i].has_key;
    CHECK(keyed <= RL_SLOTS);
}

/* A key longer than the table keeps is cut: it still counts as one key. */
static void test_long_key(void)
{
    init(1, 1000, 100, 1);
    char key[200];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = 0;
    uint64_t sup;
    CHECK(rl_check(&rl, &kind_a, key, 0, &sup));
    CHECK(!rl_check(&rl, &kind_a, key, 0, &sup));
    CHECK(rl_check(&rl, &kind_a, NULL, 0, &sup));
    CHECK(!rl_check(&rl, &kind_a, "", 0, &sup));
    CHECK_INT(flush(1000, false), 2);
    for (int i = 0; i < nrep; i++)
        CHECK(strlen(reps[i].key) < RL_KEY_MAX);
}

/* Kinds beyond what the table tells apart share one aggregate, still within the limit. */
static void test_many_kinds(void)
{
    init(1, 1000, 3, 1000);
    static char kinds[RL_KINDS + 4];
    uint64_t sup, allowed = 0;
    for (int i = 0; i < RL_KINDS + 4; i++)
        allowed += rl_check(&rl, &kinds[i], "p", 0, &sup);
    CHECK_INT(allowed, 3);
    flush(0, true);
    CHECK_INT(reported(), RL_KINDS + 4 - 3);
    bool other = false;
    for (int i = 0; i < nrep; i++)
        other |= reps[i].kind == RL_KIND_OTHER;
    CHECK(other);
}

/* Random events over keys, kinds and time: the lines allowed never exceed the overall
 * bound in any window, and allowed + every count handed back == events. */
static void test_random(void)
{
    srand(7);
    init(4, 500, 20, 50);
    uint64_t now = 0, sup, total = 0, allowed = 0, handed = 0, flushed = 0;
    enum { STEPS = 200000 };
    static uint64_t allowed_at[2 * STEPS]; /* when each line (event or keyed report) went */
    size_t nallowed = 0;
    for (int i = 0; i < STEPS; i++) {
        now += (uint64_t)(rand() % 3 == 0);
        char key[16];
        snprintf(key, sizeof(key), "p%d", rand() % (rand() % 2 ? 8 : 5000));
        total++;
        if (rl_check(&rl, rand() % 3 ? &kind_a : &kind_b, key, now, &sup)) {
            allowed++;
            handed += sup;
            allowed_at[nallowed++] = now;
        }
        if (i % 5000 == 0) {
            flush(now, false);
            flushed += reported();
            for (int k = 0; k < nrep && nallowed < 2 * STEPS; k++)
                if (reps[k].has_key)
                    allowed_at[nallowed++] = now;
        }
    }
    flush(now, true);
    flushed += reported();
    CHECK_INT(allowed + handed + flushed, total);
    CHECK_INT(rl.owed, 0);
    /* Lines (events and keyed reports) in any window of W ms: at most burst + W / 50 + 1. */
    for (size_t i = 0, j = 0; i < nallowed; i++) {
        while (allowed_at[i] - allowed_at[j] > 1000)
            j++;
        if (i - j + 1 > 20 + 1000 / 50 + 1) {
            CHECK(!"overall limit exceeded");
            break;
        }
    }
}

int main(void)
{
    test_per_key();
    test_flush_lifted_key();
    test_global();
    test_flush_folds_when_global_is_out();
    test_table_bounded();
    test_long_key();
    test_many_kinds();
    test_random();
    return CHECK_DONE();
}
