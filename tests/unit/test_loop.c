/* SPDX-License-Identifier: MIT */
/* Unit tests for the event loop's deadline timers: order, re-arming, disarming, and the
 * loop waiting until they are due. */
#include <poll.h>

#include "check.h"
#include "loop.h"

#define NTIMERS 500

struct rec {
    struct loop_timer t;
    int id;
    int fired;
    uint64_t at; /* loop_now() when it fired */
};

static struct rec recs[NTIMERS];
static int order[NTIMERS], nfired;
static struct loop *lp;

static void on_fire(struct loop *l, void *arg)
{
    struct rec *r = arg;
    CHECK(!loop_timer_armed(&r->t)); /* disarmed before its callback */
    r->fired++;
    r->at = loop_now(l);
    order[nfired++] = r->id;
}

static void on_last(struct loop *l, void *arg)
{
    on_fire(l, arg);
    loop_stop(l);
}

static int wakes, ticks;

static void on_wake(struct loop *l, void *arg)
{
    (void)l;
    (void)arg;
    wakes++;
}

static void on_tick(struct loop *l, void *arg)
{
    (void)l;
    (void)arg;
    ticks++;
}

/* A driver that waits elsewhere (the io_uring model): loop_run_due runs what is due and says
 * how long to wait; the wake fd is readable after loop_wake, and loop_take_wake consumes it. */
static void test_without_epoll(void)
{
    struct loop *l = loop_new();
    CHECK(l != NULL);
    loop_set_wake(l, on_wake, NULL);
    CHECK_INT(loop_run_due(l), -1); /* nothing set */
    uint64_t t0 = loop_clock_ms();
    struct rec a = {.id = 1}, b = {.id = 2};
    nfired = 0;
    loop_timer_init(&a.t, on_fire, &a);
    loop_timer_init(&b.t, on_fire, &b);
    CHECK_INT(loop_timer_arm(l, &a.t, t0), 0);
    CHECK_INT(loop_timer_arm(l, &b.t, t0 + 60000), 0);
    int ms = loop_run_due(l);
    CHECK_INT(a.fired, 1);
    CHECK_INT(b.fired, 0);
    CHECK(ms > 59000 && ms <= 60000);
    /* The tick counts too, once due. */
    loop_set_tick(l, 5, on_tick, NULL);
    ms = loop_run_due(l);
    CHECK(ms >= 0 && ms <= 5);
    while (ticks == 0)
        loop_run_due(l);
    CHECK(loop_run_due(l) <= 5);
    loop_timer_disarm(l, &b.t);

    struct pollfd pfd = {.fd = loop_wake_fd(l), .events = POLLIN};
    CHECK_INT(poll(&pfd, 1, 0), 0);
    loop_wake(l);
    CHECK_INT(poll(&pfd, 1, 0), 1);
    loop_take_wake(l);
    CHECK_INT(wakes, 1);
    CHECK_INT(poll(&pfd, 1, 0), 0);
    loop_free(l);
}

int main(void)
{
    lp = loop_new();
    CHECK(lp != NULL);
    uint64_t t0 = loop_clock_ms();
    /* Dues spread over 0..49 ms after t0 in a scrambled order. */
    for (int i = 0; i < NTIMERS; i++) {
        recs[i].id = i;
        loop_timer_init(&recs[i].t, on_fire, &recs[i]);
        CHECK_INT(loop_timer_arm(lp, &recs[i].t, t0 + (uint64_t)((i * 37) % 50)), 0);
        CHECK(loop_timer_armed(&recs[i].t));
    }
    /* Every third is disarmed, every fifth re-armed later, every seventh earlier. */
    for (int i = 0; i < NTIMERS; i++) {
        if (i % 3 == 0)
            loop_timer_disarm(lp, &recs[i].t);
        else if (i % 5 == 0)
            CHECK_INT(loop_timer_arm(lp, &recs[i].t, recs[i].t.due + 20), 0);
        else if (i % 7 == 0)
            CHECK_INT(loop_timer_arm(lp, &recs[i].t, t0), 0);
    }
    loop_timer_disarm(lp, &recs[0].t); /* twice: harmless */
    /* The last one to fire stops the loop. */
    struct rec last = {.id = NTIMERS};
    loop_timer_init(&last.t, on_last, &last);
    CHECK_INT(loop_timer_arm(lp, &last.t, t0 + 100), 0);
    CHECK_INT(loop_run(lp), 0);
    uint64_t t1 = loop_clock_ms();

    int want = 1; /* `last` */
    for (int i = 0; i < NTIMERS; i++) {
        bool armed = i % 3 != 0;
        want += armed;
        CHECK_INT(recs[i].fired, armed ? 1 : 0);
        if (armed)
            CHECK(recs[i].at >= recs[i].t.due);
    }
    CHECK_INT(nfired, want);
    /* In due order. */
    for (int k = 1; k < nfired - 1; k++)
        CHECK(recs[order[k - 1]].t.due <= recs[order[k]].t.due);
    CHECK_INT(order[nfired - 1], NTIMERS);
    /* The loop waited for the last due time, and not much longer. */
    CHECK(t1 >= t0 + 100);
    CHECK(t1 < t0 + 1000);
    loop_free(lp);

    test_without_epoll();
    return CHECK_DONE();
}
