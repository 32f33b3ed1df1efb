/* SPDX-License-Identifier: MIT */
/* epoll event loop (level-triggered: a handler that stops early is simply called again). */
#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256

struct loop_fd {
    loop_fd_cb cb;
    void *arg;
    unsigned mask;
    bool used;
    bool exclusive; /* LOOP_EXCLUSIVE: epoll cannot modify it, so a change re-adds it */
    bool parked;    /* exclusive with mask 0: not in the epoll set at all */
};

struct loop {
    int epfd, wakefd;
    struct loop_fd *fds;
    int nfds;
    bool stop;
    uint64_t now;
    int tick_ms;
    uint64_t next_tick;
    loop_cb tick_cb, wake_cb;
    void *tick_arg, *wake_arg;
    struct loop_timer **heap; /* min-heap by due; heap[i]->slot == i + 1 */
    size_t nheap, heapcap;
};

uint64_t loop_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t loop_now(const struct loop *l)
{
    return l->now;
}

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->wakefd < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = -1};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0)
        goto fail;
    l->now = loop_clock_ms();
    l->tick_ms = -1;
    return l;
fail:;
    int e = errno;
    loop_free(l);
    errno = e;
    return NULL;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    free(l->fds);
    free(l->heap);
    free(l);
}

static void heap_place(struct loop *l, size_t i, struct loop_timer *t)
{
    l->heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(struct loop *l, size_t i)
{
    struct loop_timer *t = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent]->due <= t->due)
            break;
        heap_place(l, i, l->heap[parent]);
        i = parent;
    }
    heap_place(l, i, t);
}

static void sift_down(struct loop *l, size_t i)
{
    struct loop_timer *t = l->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= l->nheap)
            break;
        if (child + 1 < l->nheap && l->heap[child + 1]->due < l->heap[child]->due)
            child++;
        if (t->due <= l->heap[child]->due)
            break;
        heap_place(l, i, l->heap[child]);
        i = child;
    }
    heap_place(l, i, t);
}

void loop_timer_init(struct loop_timer *t, loop_cb cb, void *arg)
{
    *t = (struct loop_timer){.cb = cb, .arg = arg};
}

void loop_timer_disarm(struct loop *l, struct loop_timer *t)
{
    if (!t->slot)
        return;
    size_t i = t->slot - 1;
    t->slot = 0;
    struct loop_timer *last = l->heap[--l->nheap];
    if (i == l->nheap)
        return;
    heap_place(l, i, last);
    /* The moved timer may belong above or below its new place. */
    if (i > 0 && l->heap[(i - 1) / 2]->due > last->due)
        sift_up(l, i);
    else
        sift_down(l, i);
}

int loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t due)
{
    if (t->slot) {
        uint64_t old = t->due;
        t->due = due;
        if (due < old)
            sift_up(l, t->slot - 1);
        else if (due > old)
            sift_down(l, t->slot - 1);
        return 0;
    }
    if (l->nheap == l->heapcap) {
        size_t n = l->heapcap ? l->heapcap * 2 : 64;
        struct loop_timer **p = realloc(l->heap, n * sizeof(struct loop_timer *));
        if (!p)
            return -ENOMEM;
        l->heap = p;
        l->heapcap = n;
    }
    t->due = due;
    heap_place(l, l->nheap++, t);
    sift_up(l, l->nheap - 1);
    return 0;
}

/* Runs the timers due at l->now. Only those due when the pass began: a callback that
 * re-arms for "now" waits for the next iteration, so the loop cannot starve its fds. */
static void run_timers(struct loop *l)
{
    size_t budget = l->nheap;
    while (budget-- > 0 && l->nheap > 0 && !l->stop) {
        struct loop_timer *t = l->heap[0];
        if (t->due > l->now)
            break;
        loop_timer_disarm(l, t);
        t->cb(l, t->arg);
    }
}

static uint32_t to_epoll(unsigned mask, bool exclusive)
{
    /* EPOLLEXCLUSIVE takes only in/out/err/hup (no EPOLLRDHUP). */
    if (exclusive)
        return EPOLLEXCLUSIVE | (mask & LOOP_READ ? EPOLLIN : 0) |
               (mask & LOOP_WRITE ? EPOLLOUT : 0);
    return (mask & LOOP_READ ? EPOLLIN | EPOLLRDHUP : 0) | (mask & LOOP_WRITE ? EPOLLOUT : 0);
}

int loop_add(struct loop *l, int fd, unsigned mask, loop_fd_cb cb, void *arg)
{
    if (fd < 0)
        return -EBADF;
    if (fd >= l->nfds) {
        int n = l->nfds ? l->nfds : 64;
        while (n <= fd)
            n *= 2;
        struct loop_fd *p = realloc(l->fds, (size_t)n * sizeof(*p));
        if (!p)
            return -ENOMEM;
        memset(p + l->nfds, 0, (size_t)(n - l->nfds) * sizeof(*p));
        l->fds = p;
        l->nfds = n;
    }
    bool exclusive = mask & LOOP_EXCLUSIVE;
    mask &= ~(unsigned)LOOP_EXCLUSIVE;
    bool parked = exclusive && mask == 0;
    struct epoll_event ev = {.events = to_epoll(mask, exclusive), .data.fd = fd};
    if (!parked && epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    l->fds[fd] = (struct loop_fd){
        .cb = cb, .arg = arg, .mask = mask, .used = true, .exclusive = exclusive, .parked = parked};
    return 0;
}

int loop_set(struct loop *l, int fd, unsigned mask)
{
    if (fd < 0 || fd >= l->nfds || !l->fds[fd].used)
        return -EBADF;
    mask &= ~(unsigned)LOOP_EXCLUSIVE;
    struct loop_fd *f = &l->fds[fd];
    if (f->mask == mask)
        return 0;
    struct epoll_event ev = {.events = to_epoll(mask, f->exclusive), .data.fd = fd};
    if (f->exclusive) {
        /* Only EPOLL_CTL_ADD takes EPOLLEXCLUSIVE: take it out, then back in unless the
         * new mask is empty (an exclusive entry cannot be left watching nothing). */
        if (!f->parked)
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
        f->parked = true;
        if (mask != 0) {
            if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
            f->parked = false;
        }
    } else if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
        return -errno;
    }
    f->mask = mask;
    return 0;
}

void loop_del(struct loop *l, int fd)
{
    if (fd < 0 || fd >= l->nfds || !l->fds[fd].used)
        return;
    if (!l->fds[fd].parked)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    l->fds[fd].used = false;
}

void loop_set_tick(struct loop *l, int interval_ms, loop_cb cb, void *arg)
{
    l->tick_ms = interval_ms;
    l->tick_cb = cb;
    l->tick_arg = arg;
    l->next_tick = loop_clock_ms() + (uint64_t)interval_ms;
}

void loop_tick_soon(struct loop *l, int ms)
{
    uint64_t at = loop_clock_ms() + (uint64_t)(ms > 0 ? ms : 0);
    if (!l->tick_cb || at < l->next_tick)
        l->next_tick = at;
}

void loop_set_wake(struct loop *l, loop_cb cb, void *arg)
{
    l->wake_cb = cb;
    l->wake_arg = arg;
}

void loop_wake(struct loop *l)
{
    uint64_t one = 1;
    /* A full counter (EAGAIN) already means "wake up". */
    ssize_t r = write(l->wakefd, &one, sizeof(one));
    (void)r;
}

void loop_stop(struct loop *l)
{
    l->stop = true;
}

int loop_wake_fd(const struct loop *l)
{
    return l->wakefd;
}

void loop_take_wake(struct loop *l)
{
    uint64_t v;
    ssize_t r = read(l->wakefd, &v, sizeof(v));
    (void)r;
    if (l->wake_cb)
        l->wake_cb(l, l->wake_arg);
}

void loop_refresh(struct loop *l)
{
    l->now = loop_clock_ms();
}

/* The earliest of the next tick and the first timer, UINT64_MAX for none. */
static uint64_t next_due(const struct loop *l)
{
    uint64_t wake_at = l->tick_cb ? l->next_tick : UINT64_MAX;
    if (l->nheap > 0 && l->heap[0]->due < wake_at)
        wake_at = l->heap[0]->due;
    return wake_at;
}

static int ms_until(const struct loop *l, uint64_t wake_at)
{
    if (wake_at == UINT64_MAX)
        return -1;
    return wake_at <= l->now ? 0 : wake_at - l->now > INT_MAX ? INT_MAX : (int)(wake_at - l->now);
}

static void run_tick(struct loop *l)
{
    if (l->tick_cb && loop_clock_ms() >= l->next_tick) {
        l->now = loop_clock_ms();
        l->next_tick = l->now + (uint64_t)l->tick_ms;
        l->tick_cb(l, l->tick_arg);
    }
}

int loop_run_due(struct loop *l)
{
    l->now = loop_clock_ms();
    run_timers(l);
    run_tick(l);
    return ms_until(l, next_due(l));
}

int loop_run(struct loop *l)
{
    struct epoll_event evs[MAX_EVENTS];
    l->stop = false;
    while (!l->stop) {
        l->now = loop_clock_ms();
        int timeout = ms_until(l, next_due(l));
        int n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        l->now = loop_clock_ms();
        for (int i = 0; i < n && !l->stop; i++) {
            int fd = evs[i].data.fd;
            if (fd < 0) {
                loop_take_wake(l);
                continue;
            }
            if (fd >= l->nfds || !l->fds[fd].used)
                continue; /* removed by an earlier handler in this batch */
            uint32_t e = evs[i].events;
            unsigned ev = (e & (EPOLLIN | EPOLLRDHUP) ? LOOP_READ : 0) |
                          (e & EPOLLOUT ? LOOP_WRITE : 0) |
                          (e & (EPOLLERR | EPOLLHUP) ? LOOP_HUP : 0);
            l->fds[fd].cb(l, fd, ev, l->fds[fd].arg);
        }
        l->now = loop_clock_ms();
        run_timers(l);
        run_tick(l);
    }
    return 0;
}
