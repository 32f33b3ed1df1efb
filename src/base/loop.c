/* SPDX-License-Identifier: MIT */
/* epoll event loop (level-triggered: a handler that stops early is simply called again). */
#include "loop.h"

#include <errno.h>
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
    free(l);
}

static uint32_t to_epoll(unsigned mask)
{
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
    struct epoll_event ev = {.events = to_epoll(mask), .data.fd = fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    l->fds[fd] = (struct loop_fd){.cb = cb, .arg = arg, .mask = mask, .used = true};
    return 0;
}

int loop_set(struct loop *l, int fd, unsigned mask)
{
    if (fd < 0 || fd >= l->nfds || !l->fds[fd].used)
        return -EBADF;
    if (l->fds[fd].mask == mask)
        return 0;
    struct epoll_event ev = {.events = to_epoll(mask), .data.fd = fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return -errno;
    l->fds[fd].mask = mask;
    return 0;
}

void loop_del(struct loop *l, int fd)
{
    if (fd < 0 || fd >= l->nfds || !l->fds[fd].used)
        return;
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

int loop_run(struct loop *l)
{
    struct epoll_event evs[MAX_EVENTS];
    l->stop = false;
    while (!l->stop) {
        int timeout = -1;
        l->now = loop_clock_ms();
        if (l->tick_cb)
            timeout = l->next_tick > l->now ? (int)(l->next_tick - l->now) : 0;
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
                uint64_t v;
                ssize_t r = read(l->wakefd, &v, sizeof(v));
                (void)r;
                if (l->wake_cb)
                    l->wake_cb(l, l->wake_arg);
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
        if (l->tick_cb && loop_clock_ms() >= l->next_tick) {
            l->now = loop_clock_ms();
            l->next_tick = l->now + (uint64_t)l->tick_ms;
            l->tick_cb(l, l->tick_arg);
        }
    }
    return 0;
}
