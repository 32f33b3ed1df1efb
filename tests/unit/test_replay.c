/* SPDX-License-Identifier: MIT */
/* RFC 6479 replay window: in order, replay, reorder within the window, too old, big jumps,
 * the counter limit, and a randomised comparison against a plain set of seen counters. */
#include "check.h"
#include "replay.h"

#include <stdbool.h>

/* check + update, as a receiver does after authentication. */
static bool accept_ctr(struct replay_window *w, uint64_t c)
{
    if (!replay_check(w, c))
        return false;
    replay_update(w, c);
    return true;
}

static void test_basic(void)
{
    struct replay_window w;
    replay_init(&w);
    for (uint64_t c = 0; c < 5000; c++)
        CHECK(accept_ctr(&w, c));
    for (uint64_t c = 4990; c < 5000; c++)
        CHECK(!accept_ctr(&w, c)); /* replays */
    CHECK(!accept_ctr(&w, 0));     /* far too old */
    CHECK(!replay_check(&w, 4999 - REPLAY_WINDOW));
}

static void test_reorder(void)
{
    struct replay_window w;
    replay_init(&w);
    CHECK(accept_ctr(&w, 100));
    CHECK(accept_ctr(&w, 99));
    CHECK(!accept_ctr(&w, 99));
    CHECK(accept_ctr(&w, 50));
    CHECK(accept_ctr(&w, 0)); /* the window reaches back REPLAY_WINDOW from 100 */
    CHECK(!accept_ctr(&w, 0));
    /* Jump ahead by exactly the window: the oldest tracked counter is still new. */
    uint64_t top = 100 + REPLAY_WINDOW;
    CHECK(accept_ctr(&w, top));
    CHECK(accept_ctr(&w, top - REPLAY_WINDOW + 1));
    CHECK(!replay_check(&w, top - REPLAY_WINDOW)); /* 100: seen and at the edge */
    CHECK(!replay_check(&w, 99));                  /* too old */
    /* A huge jump clears everything. */
    CHECK(accept_ctr(&w, 1000000));
    CHECK(accept_ctr(&w, 1000000 - 1));
    CHECK(accept_ctr(&w, 1000000 - REPLAY_WINDOW + 1));
    CHECK(!accept_ctr(&w, top));
}

static void test_limit(void)
{
    struct replay_window w;
    replay_init(&w);
    CHECK(!replay_check(&w, UINT64_MAX)); /* the nonce Noise reserves */
    CHECK(accept_ctr(&w, REPLAY_COUNTER_MAX));
    CHECK(!accept_ctr(&w, REPLAY_COUNTER_MAX));
    CHECK(accept_ctr(&w, REPLAY_COUNTER_MAX - 1));
    CHECK(!accept_ctr(&w, UINT64_MAX));
}

static void test_random(void)
{
    /* Against a simple model: accepted iff not seen and within the window of the top. */
    static bool seen[20000];
    struct replay_window w;
    replay_init(&w);
    uint64_t top = 0;
    bool any = false;
    unsigned long x = 12345;
    for (int i = 0; i < 200000; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        uint64_t base = any ? top : 0;
        uint64_t c = base + (x >> 33) % 4200;
        c = c >= 2100 ? c - 2100 : c;
        if (c >= 20000)
            continue;
        bool want = !seen[c] && (!any || c > top || top - c < REPLAY_WINDOW);
        bool got = accept_ctr(&w, c);
        CHECK_INT(got, want);
        if (got) {
            seen[c] = true;
            if (!any || c > top)
                top = c;
            any = true;
        }
    }
}

int main(void)
{
    test_basic();
    test_reorder();
    test_limit();
    test_random();
    return CHECK_DONE();
}
