/* SPDX-License-Identifier: MIT */
/* Anti-replay sliding window for explicit 64-bit counters (RFC 6479): a bitmap of words
 * rotated by index, so moving the window costs at most REPLAY_WORDS word clears. */
#ifndef SECHO_REPLAY_H
#define SECHO_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#define REPLAY_WORDS  32 /* bitmap words of 64 bits; MUST be a power of two */
#define REPLAY_WINDOW ((REPLAY_WORDS - 1) * 64) /* counters always tracked below the top */
/* The largest counter a peer may use: Noise reserves the nonce 2^64 - 1. */
#define REPLAY_COUNTER_MAX (UINT64_MAX - 1)

struct replay_window {
    uint64_t top; /* highest counter accepted so far (valid when `any`) */
    bool any;
    uint64_t bits[REPLAY_WORDS];
};

/* Empties the window: every counter up to REPLAY_COUNTER_MAX is new. */
void replay_init(struct replay_window *w);
/* True if ctr may be fresh: at most REPLAY_COUNTER_MAX, not older than REPLAY_WINDOW below
 * the top and not seen. Changes nothing; call it before the (costly) authentication. */
bool replay_check(const struct replay_window *w, uint64_t ctr);
/* Records ctr as seen, moving the window if ctr is the new top. MUST be called only after
 * the datagram authenticated and replay_check(w, ctr) held, so forgeries cannot move it. */
void replay_update(struct replay_window *w, uint64_t ctr);

#endif
