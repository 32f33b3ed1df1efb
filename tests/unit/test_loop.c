/* SPDX-License-Identifier: MIT */
/* Unit tests for the event loop's deadline timers: order, re-arming, disarming, and the
 * loop waiting until they are due. */
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
    return CHECK_DONE();
}
