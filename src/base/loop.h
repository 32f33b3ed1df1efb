/* SPDX-License-Identifier: MIT */
/* A small epoll event loop: fds with a read/write mask, deadline timers, one periodic tick, a
 * thread-safe wake. */
#ifndef SECHO_LOOP_H
#define SECHO_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

enum {
    LOOP_READ = 1U << 0,
    LOOP_WRITE = 1U << 1,
    LOOP_HUP = 1U << 2, /* error or hang-up reported by the kernel */
    /* loop_add only: the fd (a listener several loops watch) wakes one waiting loop, not
     * all of them (EPOLLEXCLUSIVE); read/write readiness only, no peer half-close. */
    LOOP_EXCLUSIVE = 1U << 3,
};

typedef void (*loop_fd_cb)(struct loop *l, int fd, unsigned events, void *arg);
typedef void (*loop_cb)(struct loop *l, void *arg);

/*
 * A one-shot timer keyed by an absolute deadline (loop_now() milliseconds). Armed timers sit
 * in a binary min-heap, so arming, re-arming and disarming cost O(log n) and each loop
 * iteration visits only the timers that are due; epoll_wait sleeps until the earliest one.
 * The caller owns the struct (typically embedded in what it times) and MUST disarm it before
 * freeing it. `slot` is the heap index + 1, 0 while unarmed: the loop's, not the caller's.
 */
struct loop_timer {
    uint64_t due;
    size_t slot;
    loop_cb cb;
    void *arg;
};

/* Creates a loop. Returns NULL with errno set on failure. Not thread-safe: one thread runs
 * a loop; only loop_wake may be called from other threads. */
struct loop *loop_new(void);
/* Frees the loop (not the fds registered in it). Accepts NULL. */
void loop_free(struct loop *l);

/* Watches fd for the events in mask (LOOP_READ|LOOP_WRITE, may be 0; plus LOOP_EXCLUSIVE).
 * Returns 0 or -errno. */
int loop_add(struct loop *l, int fd, unsigned mask, loop_fd_cb cb, void *arg);
/* Changes the mask of a watched fd; cheap when unchanged. Returns 0 or -errno. */
int loop_set(struct loop *l, int fd, unsigned mask);
/* Stops watching fd. MUST be called before close(fd). */
void loop_del(struct loop *l, int fd);

/* Prepares an unarmed timer that calls cb(l, arg) on the loop thread when due. */
void loop_timer_init(struct loop_timer *t, loop_cb cb, void *arg);
/* Arms t for `due` (re-arms if armed; a due time in the past fires on the next iteration).
 * Returns 0, or -ENOMEM (t is then unarmed). */
int loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t due);
/* Disarms t; accepts an unarmed timer. A timer is disarmed before its callback runs. */
void loop_timer_disarm(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t)
{
    return t->slot != 0;
}

/* Calls cb every interval_ms (and sooner after loop_tick_soon). */
void loop_set_tick(struct loop *l, int interval_ms, loop_cb cb, void *arg);
/* Asks for the next tick no later than ms from now. */
void loop_tick_soon(struct loop *l, int ms);
/* Calls cb on the loop thread after loop_wake. */
void loop_set_wake(struct loop *l, loop_cb cb, void *arg);
/* Wakes the loop from any thread (or a signal handler). */
void loop_wake(struct loop *l);

/* Runs until loop_stop. Returns 0, or -errno if epoll fails. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

/*
 * A driver that waits for its events elsewhere (the io_uring model) uses the loop only for
 * its timers, tick and wake, never calling loop_run: it waits until the wake fd is readable
 * or loop_run_due's delay has passed, and calls loop_take_wake when that fd was readable.
 */
/* The descriptor that becomes readable after loop_wake. */
int loop_wake_fd(const struct loop *l);
/* Consumes a pending wake and calls the wake callback. */
void loop_take_wake(struct loop *l);
/* Refreshes loop_now (done by loop_run_due too). */
void loop_refresh(struct loop *l);
/* Refreshes loop_now, runs the timers that are due and the tick if it is due; returns the
 * ms until the next timer or tick (0: one is due already), or -1 when none is set. */
int loop_run_due(struct loop *l);

/* Monotonic milliseconds, refreshed once per loop iteration. */
uint64_t loop_now(const struct loop *l);
/* Monotonic milliseconds now. */
uint64_t loop_clock_ms(void);

#endif
