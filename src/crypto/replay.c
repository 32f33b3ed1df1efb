/* SPDX-License-Identifier: MIT */
/* RFC 6479 anti-replay window. Bit b of the ring (b = ctr mod REPLAY_WORDS*64) says whether
 * ctr was seen; the words ahead of the old top are cleared as the top advances, and the one
 * word that may hold stale bits beyond the window is why only (REPLAY_WORDS - 1) * 64
 * counters are guaranteed (RFC 6479 section 2). */
#include "replay.h"

#include <string.h>

#define RING_BITS ((uint64_t)REPLAY_WORDS * 64)

void replay_init(struct replay_window *w)
{
    memset(w, 0, sizeof(*w));
}

bool replay_check(const struct replay_window *w, uint64_t ctr)
{
    if (ctr > REPLAY_COUNTER_MAX)
        return false;
    if (!w->any || ctr > w->top)
        return true;
    if (w->top - ctr >= REPLAY_WINDOW)
        return false; /* too old to tell: treated as a replay */
    uint64_t b = ctr % RING_BITS;
    return !(w->bits[b / 64] >> (b % 64) & 1);
}

void replay_update(struct replay_window *w, uint64_t ctr)
{
    if (!w->any) {
        memset(w->bits, 0, sizeof(w->bits));
        w->any = true;
        w->top = ctr;
    } else if (ctr > w->top) {
        uint64_t cur = w->top / 64, next = ctr / 64, diff = next - cur;
        if (diff > REPLAY_WORDS)
            diff = REPLAY_WORDS;
        for (uint64_t i = 1; i <= diff; i++)
            w->bits[(cur + i) % REPLAY_WORDS] = 0;
        w->top = ctr;
    }
    uint64_t b = ctr % RING_BITS;
    w->bits[b / 64] |= (uint64_t)1 << (b % 64);
}
