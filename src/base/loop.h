/* SPDX-License-Identifier: MIT */
/* A small epoll event loop: fds with a read/write mask, one periodic tick, a thread-safe wake. */
#ifndef SECHO_LOOP_H
#define SECHO_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;

enum {
    LOOP_READ = 1U << 0,
    LOOP_WRITE = 1U << 1,
    LOOP_HUP = 1U << 2, /* error or hang-up reported by the kernel */
};

typedef void (*loop_fd_cb)(struct loop *l, int fd, unsigned events, void *arg);
typedef void (*loop_cb)(struct loop *l, void *arg);

/* Creates a loop. Returns NULL with errno set on failure. Not thread-safe: one thread runs
 * a loop; only loop_wake may be called from other threads. */
struct loop *loop_new(void);
/* Frees the loop (not the fds registered in it). Accepts NULL. */
void loop_free(struct loop *l);

/* Watches fd for the events in mask (LOOP_READ|LOOP_WRITE, may be 0). Returns 0 or -errno. */
int loop_add(struct loop *l, int fd, unsigned mask, loop_fd_cb cb, void *arg);
/* Changes the mask of a watched fd; cheap when unchanged. Returns 0 or -errno. */
int loop_set(struct loop *l, int fd, unsigned mask);
/* Stops watching fd. MUST be called before close(fd). */
void loop_del(struct loop *l, int fd);

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

/* Monotonic milliseconds, refreshed once per loop iteration. */
uint64_t loop_now(const struct loop *l);
/* Monotonic milliseconds now. */
uint64_t loop_clock_ms(void);

#endif
