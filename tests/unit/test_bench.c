/* SPDX-License-Identifier: MIT */
/* Unit tests for bench.c: histogram buckets and percentiles, payloads, formatting. */
#include <math.h>

#include "bench.h"
#include "check.h"

/* Relative error of `got` against `want`, for precision checks. */
static double rel(uint64_t got, uint64_t want)
{
    return want ? fabs((double)got - (double)want) / (double)want : (double)got;
}

static void test_buckets(void)
{
    /* Values below 2H are exact. */
    for (uint64_t v = 0; v < 2 * BENCH_HIST_HALF; v++) {
        CHECK_INT(bench_hist_index(v), v);
        CHECK_INT(bench_hist_bucket_low(bench_hist_index(v)), v);
        CHECK_INT(bench_hist_bucket_high(bench_hist_index(v)), v);
    }
    /* Buckets are contiguous, from 0 to UINT64_MAX. */
    CHECK_INT(bench_hist_bucket_low(0), 0);
    for (unsigned idx = 1; idx < BENCH_HIST_BUCKETS; idx++)
        if (bench_hist_bucket_low(idx) != bench_hist_bucket_high(idx - 1) + 1) {
            CHECK_INT(bench_hist_bucket_low(idx), bench_hist_bucket_high(idx - 1) + 1);
            break;
        }
    CHECK(bench_hist_bucket_high(BENCH_HIST_BUCKETS - 1) == UINT64_MAX);
    /* Three significant digits from 1 us to 100 s (and on to 2^40 ns): every value lies in
     * its bucket, and the bucket is at most 1/1000 of the value wide. Checked at every
     * power-of-two boundary, around it, and at 20,000 geometric steps. */
    for (unsigned k = 10; k < BENCH_HIST_TOP; k++) {
        uint64_t b = (uint64_t)1 << k;
        uint64_t around[] = {b - 1, b, b + 1, b + b / 3};
        for (size_t i = 0; i < 4; i++) {
            uint64_t v = around[i];
            unsigned idx = bench_hist_index(v);
            CHECK(idx < BENCH_HIST_BUCKETS);
            CHECK(bench_hist_bucket_low(idx) <= v && v <= bench_hist_bucket_high(idx));
            CHECK(bench_hist_index(bench_hist_bucket_low(idx)) == idx);
        }
    }
    unsigned worst_ok = 1;
    double g = 1000.0; /* 1 us .. 100 s in ns, in steps of 1e8^(1/20000) */
    for (int i = 0; i <= 20000; i++, g *= 1.00092145856) {
        uint64_t v = (uint64_t)g;
        unsigned idx = bench_hist_index(v);
        uint64_t lo = bench_hist_bucket_low(idx), hi = bench_hist_bucket_high(idx);
        if (!(lo <= v && v <= hi && (double)(hi - lo + 1) / (double)v <= 1e-3))
            worst_ok = 0;
    }
    CHECK(worst_ok);
    CHECK(g > 0.99e11 && g < 1.01e11);
    /* Above the top, everything shares the last bucket. */
    CHECK_INT(bench_hist_index((uint64_t)1 << BENCH_HIST_TOP), BENCH_HIST_BUCKETS - 1);
    CHECK_INT(bench_hist_index(UINT64_MAX), BENCH_HIST_BUCKETS - 1);
    CHECK_INT(bench_hist_index(((uint64_t)1 << BENCH_HIST_TOP) - 1), BENCH_HIST_BUCKETS - 1);
}

static struct bench_hist h, h2, h3;

/* The exact nearest-rank percentile of the sorted values v[0..n). */
static uint64_t exact_pct(const uint64_t *v, size_t n, double pct)
{
    /* pct * n / 100 in exact integer arithmetic: pct has at most two decimals here. */
    uint64_t num = (uint64_t)(pct * 100 + 0.5) * n;
    size_t rank = (size_t)(num / 10000 + (num % 10000 != 0));
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

static const double pcts[] = {1, 10, 50, 90, 99, 99.9, 99.99};
#define NPCTS (sizeof(pcts) / sizeof(pcts[0]))

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every percentile of h is the exact one to within half a bucket (1/2048 of the value). */
static void check_against_exact(const struct bench_hist *hh, uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    for (size_t i = 0; i < NPCTS; i++) {
        uint64_t want = exact_pct(v, n, pcts[i]);
        uint64_t got = bench_hist_percentile(hh, pcts[i]);
        if (rel(got, want) > 1.0 / (2 * BENCH_HIST_HALF)) {
            fprintf(stderr, "p%g: got %llu want %llu\n", pcts[i], (unsigned long long)got,
                    (unsigned long long)want);
            CHECK(0);
        }
    }
    CHECK_INT(bench_hist_percentile(hh, 0), v[0]);
    CHECK_INT(bench_hist_percentile(hh, 100), v[n - 1]);
}

static uint64_t vals[1000000];

/* bench_hist_percentiles (one pass) gives bench_hist_percentile's every answer. */
static void check_percentiles(const struct bench_hist *hh)
{
    static double pct[2003];
    static uint64_t got[2003];
    size_t n = 0;
    pct[n++] = -1;
    pct[n++] = 0;
    for (int i = 1; i <= 1999; i++)
        pct[n++] = i / 20.0; /* 0.05 .. 99.95 */
    pct[n++] = 99.99;
    pct[n++] = 100;
    bench_hist_percentiles(hh, pct, n, got);
    for (size_t i = 0; i < n; i++)
        if (got[i] != bench_hist_percentile(hh, pct[i])) {
            fprintf(stderr, "percentile %g: %llu in one pass, %llu alone\n", pct[i],
                    (unsigned long long)got[i],
                    (unsigned long long)bench_hist_percentile(hh, pct[i]));
            CHECK(0);
            break;
        }
}

static void test_uniform(void)
{
    /* 1 us, 2 us, ... 1 s: the p-th percentile is p * 10^4 us. */
    bench_hist_init(&h);
    size_t n = 1000000;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        vals[i] = (i + 1) * 1000;
        bench_hist_record(&h, vals[i]);
        sum += vals[i];
    }
    CHECK_INT(h.count, n);
    CHECK_INT(h.min, 1000);
    CHECK_INT(h.max, 1000000000);
    CHECK(h.sum == sum);
    check_against_exact(&h, vals, n);
    check_percentiles(&h);
    CHECK(rel(bench_hist_percentile(&h, 99.9), 999000000) <= 1.0 / 2048);
    CHECK(fabs(bench_hist_mean(&h) - 500000500.0) < 1e-3);
}

static void test_exact_and_skewed(void)
{
    /* Empty, and one value. */
    bench_hist_init(&h);
    check_percentiles(&h);
    bench_hist_record(&h, 12345);
    check_percentiles(&h);
    /* Values below 2048 are recorded exactly: 1..2000 gives the nearest-rank percentiles. */
    bench_hist_init(&h);
    for (uint64_t v = 1; v <= 2000; v++)
        bench_hist_record(&h, v);
    CHECK_INT(bench_hist_percentile(&h, 50), 1000);
    CHECK_INT(bench_hist_percentile(&h, 90), 1800);
    CHECK_INT(bench_hist_percentile(&h, 99), 1980);
    CHECK_INT(bench_hist_percentile(&h, 99.9), 1998);
    CHECK_INT(bench_hist_percentile(&h, 99.99), 2000);
    CHECK_INT(bench_hist_percentile(&h, 0.01), 1);

    /* A latency-like distribution with a tail, in ns: 99,000 at 100 us, 900 at 10 ms,
     * 90 at 1 s, 10 at 100 s. p99 is still fast; p99.9, p99.99 and max fall in the tail. */
    bench_hist_init(&h);
    size_t n = 0;
    for (int i = 0; i < 99000; i++)
        bench_hist_record(&h, vals[n++] = 100000);
    for (int i = 0; i < 900; i++)
        bench_hist_record(&h, vals[n++] = 10000000);
    for (int i = 0; i < 90; i++)
        bench_hist_record(&h, vals[n++] = 1000000000);
    for (int i = 0; i < 10; i++)
        bench_hist_record(&h, vals[n++] = 100000000000ULL);
    check_against_exact(&h, vals, n);
    check_percentiles(&h);
    CHECK_INT(bench_hist_percentile(&h, 50), 100000); /* clamped to min: exact */
    CHECK_INT(bench_hist_percentile(&h, 99), 100000);
    CHECK(rel(bench_hist_percentile(&h, 99.9), 10000000) <= 1.0 / 2048);
    CHECK(rel(bench_hist_percentile(&h, 99.99), 1000000000) <= 1.0 / 2048);
    CHECK_INT(bench_hist_percentile(&h, 99.999), 100000000000ULL);
    CHECK_INT(bench_hist_percentile(&h, 100), 100000000000ULL);

    /* Random values spread over 2^10..2^37 ns (a power of two picked at random, then a
     * random value inside it): within half a bucket throughout. */
    uint64_t rng = 12345;
    bench_hist_init(&h);
    n = 200000;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = bench_rand(&rng);
        unsigned k = 10 + (unsigned)(r % 27);
        vals[i] = ((uint64_t)1 << k) | ((r >> 8) & (((uint64_t)1 << k) - 1));
        bench_hist_record(&h, vals[i]);
    }
    check_against_exact(&h, vals, n);

    /* A single value reads back exactly; beyond the top it is still the max. */
    bench_hist_init(&h);
    bench_hist_record(&h, 123456789);
    CHECK_INT(bench_hist_percentile(&h, 50), 123456789);
    bench_hist_init(&h);
    bench_hist_record(&h, (uint64_t)1 << 50);
    CHECK(bench_hist_percentile(&h, 50) == (uint64_t)1 << 50);
    /* The sum saturates instead of wrapping. */
    bench_hist_record(&h, UINT64_MAX);
    CHECK(h.sum == UINT64_MAX);
    /* Empty. */
    bench_hist_init(&h);
    CHECK_INT(bench_hist_percentile(&h, 99), 0);
    CHECK(bench_hist_mean(&h) == 0.0);
}

static void test_merge(void)
{
    /* Values split over two histograms merge into exactly the histogram of all of them,
     * in either order, and merging is associative. */
    uint64_t rng = 99;
    bench_hist_init(&h);
    bench_hist_init(&h2);
    bench_hist_init(&h3);
    static struct bench_hist all, other;
    bench_hist_init(&all);
    for (int i = 0; i < 300000; i++) {
        uint64_t v = bench_rand(&rng) % 5000000000ULL;
        struct bench_hist *to = i % 3 == 0 ? &h : i % 3 == 1 ? &h2 : &h3;
        bench_hist_record(to, v);
        bench_hist_record(&all, v);
    }
    /* (h + h2) + h3 */
    bench_hist_init(&other);
    bench_hist_merge(&other, &h);
    bench_hist_merge(&other, &h2);
    bench_hist_merge(&other, &h3);
    CHECK(memcmp(&other, &all, sizeof(all)) == 0);
    /* h3 + (h2 + h) */
    bench_hist_merge(&h2, &h);
    bench_hist_merge(&h3, &h2);
    CHECK(memcmp(&h3, &all, sizeof(all)) == 0);
    for (size_t i = 0; i < NPCTS; i++)
        CHECK(bench_hist_percentile(&h3, pcts[i]) == bench_hist_percentile(&all, pcts[i]));
    /* Merging an empty one changes nothing; into an empty one copies. */
    bench_hist_init(&h2);
    bench_hist_merge(&h3, &h2);
    CHECK(memcmp(&h3, &all, sizeof(all)) == 0);
    bench_hist_merge(&h2, &all);
    CHECK(memcmp(&h2, &all, sizeof(all)) == 0);
}

static void test_chist(void)
{
    static struct bench_chist c;
    bench_chist_init(&c);
    CHECK_INT(bench_chist_percentile(&c, 99), 0);
    /* 1..100000 us: every percentile within the 1/32 a half bucket allows. */
    for (size_t i = 0; i < 100000; i++) {
        vals[i] = (i + 1) * 1000;
        bench_chist_record(&c, vals[i]);
    }
    CHECK_INT(c.count, 100000);
    for (size_t i = 0; i < NPCTS; i++) {
        uint64_t want = exact_pct(vals, 100000, pcts[i]);
        CHECK(rel(bench_chist_percentile(&c, pcts[i]), want) <= 1.0 / 32);
    }
    CHECK_INT(bench_chist_percentile(&c, 100), 100000000);
    /* Values below 32 exact, above the top in the last bucket. */
    bench_chist_init(&c);
    for (uint64_t v = 1; v <= 20; v++)
        bench_chist_record(&c, v);
    CHECK_INT(bench_chist_percentile(&c, 50), 10);
    bench_chist_record(&c, UINT64_MAX);
    CHECK(bench_chist_percentile(&c, 100) == UINT64_MAX);
    CHECK_INT(c.buckets[BENCH_CHIST_BUCKETS - 1], 1);
    CHECK(sizeof(c) < 2300);
}

/* ---- the echo verifier ---- */

struct outcome {
    unsigned ok, bad;
    uint64_t last_due, last_sent;
};

static void on_done(void *arg, const struct bench_slot *s, bool ok)
{
    struct outcome *o = arg;
    if (ok)
        o->ok++;
    else
        o->bad++;
    o->last_due = s->due_ns;
    o->last_sent = s->sent_ns;
}

static void test_vfy_stream(void)
{
    struct bench_vfy v;
    CHECK_INT(bench_vfy_init(&v, 10, 3), 0);
    uint64_t rng = 7;
    uint8_t sent[30];
    for (int i = 0; i < 3; i++) {
        uint8_t *p = bench_vfy_push(&v, 100 + (uint64_t)i, 200 + (uint64_t)i);
        CHECK(p != NULL);
        bench_fill(&rng, p, 10, BENCH_LINE);
        memcpy(sent + 10 * i, p, 10);
    }
    CHECK(bench_vfy_push(&v, 0, 0) == NULL); /* depth 3 in flight */
    CHECK(bench_vfy_oldest(&v)->due_ns == 100);
    /* The stream back in pieces that straddle message boundaries. */
    struct outcome o = {0};
    CHECK_INT(bench_vfy_stream(&v, sent, 7, on_done, &o), 0);
    CHECK_INT(o.ok, 0);
    CHECK_INT(bench_vfy_stream(&v, sent + 7, 16, on_done, &o), 0);
    CHECK_INT(o.ok, 2);
    CHECK_INT(o.last_due, 101);
    CHECK_INT(o.last_sent, 201);
    /* One wrong byte spoils its own message only. */
    uint8_t bad[7];
    memcpy(bad, sent + 23, 7);
    bad[3] ^= 1;
    CHECK_INT(bench_vfy_stream(&v, bad, 7, on_done, &o), 0);
    CHECK_INT(o.ok, 2);
    CHECK_INT(o.bad, 1);
    CHECK(bench_vfy_oldest(&v) == NULL);
    /* Bytes with nothing in flight are reported, not matched. */
    CHECK_INT(bench_vfy_stream(&v, sent, 5, on_done, &o), 5);
    uint8_t *p = bench_vfy_push(&v, 1, 1);
    memcpy(p, sent, 10);
    CHECK_INT(bench_vfy_stream(&v, sent, 14, on_done, &o), 4);
    CHECK_INT(o.ok, 3);
    bench_vfy_free(&v);
}

static void test_vfy_record(void)
{
    struct bench_vfy v;
    CHECK_INT(bench_vfy_init(&v, 8, 2), 0);
    const uint8_t msg[8] = "abcdefg\n";
    struct outcome o = {0};
    memcpy(bench_vfy_push(&v, 1, 1), msg, 8);
    memcpy(bench_vfy_push(&v, 2, 2), msg, 8);
    /* Whole, then in fragments. */
    CHECK_INT(bench_vfy_record(&v, msg, 8, true, true, on_done, &o), 0);
    CHECK_INT(bench_vfy_record(&v, msg, 3, true, false, on_done, &o), 0);
    CHECK_INT(bench_vfy_record(&v, msg + 3, 5, false, true, on_done, &o), 0);
    CHECK_INT(o.ok, 2);
    /* Too short, too long, wrong: each is one bad echo. */
    memcpy(bench_vfy_push(&v, 3, 3), msg, 8);
    CHECK_INT(bench_vfy_record(&v, msg, 7, true, true, on_done, &o), 0);
    memcpy(bench_vfy_push(&v, 4, 4), msg, 8);
    CHECK_INT(bench_vfy_record(&v, msg, 8, true, false, on_done, &o), 0);
    CHECK_INT(bench_vfy_record(&v, msg, 1, false, true, on_done, &o), 0);
    memcpy(bench_vfy_push(&v, 5, 5), msg, 8);
    CHECK_INT(bench_vfy_record(&v, (const uint8_t *)"abcdefgX", 8, true, true, on_done, &o), 0);
    CHECK_INT(o.ok, 2);
    CHECK_INT(o.bad, 3);
    /* A first fragment starts the echo over. */
    memcpy(bench_vfy_push(&v, 6, 6), msg, 8);
    CHECK_INT(bench_vfy_record(&v, (const uint8_t *)"zz", 2, true, false, on_done, &o), 0);
    CHECK_INT(bench_vfy_record(&v, msg, 8, true, true, on_done, &o), 0);
    CHECK_INT(o.ok, 3);
    /* A record with nothing in flight. */
    CHECK_INT(bench_vfy_record(&v, msg, 8, true, true, on_done, &o), 1);
    CHECK_INT(bench_vfy_record(&v, msg, 4, true, false, on_done, &o), 0);
    bench_vfy_free(&v);
}

static void test_vfy_dgram(void)
{
    struct bench_vfy v;
    CHECK_INT(bench_vfy_init(&v, 4, 4), 0);
    const char *m[4] = {"aaaa", "bbbb", "cccc", "aaaa"};
    for (int i = 0; i < 4; i++)
        memcpy(bench_vfy_push(&v, 10 * (uint64_t)i, 10 * (uint64_t)i), m[i], 4);
    struct outcome o = {0};
    /* Out of order: the third comes back first; the head stays. */
    CHECK(bench_vfy_dgram(&v, (const uint8_t *)"cccc", 4, on_done, &o));
    CHECK_INT(o.last_due, 20);
    CHECK_INT(v.inflight, 4);
    /* Equal bytes match the oldest such message. */
    CHECK(bench_vfy_dgram(&v, (const uint8_t *)"aaaa", 4, on_done, &o));
    CHECK_INT(o.last_due, 0);
    CHECK_INT(v.inflight, 3); /* the head went */
    /* Duplicate of an echoed one matches the later equal message, then nothing. */
    CHECK(bench_vfy_dgram(&v, (const uint8_t *)"aaaa", 4, on_done, &o));
    CHECK_INT(o.last_due, 30);
    CHECK(!bench_vfy_dgram(&v, (const uint8_t *)"aaaa", 4, on_done, &o));
    CHECK(!bench_vfy_dgram(&v, (const uint8_t *)"bbb", 3, on_done, &o));
    CHECK(!bench_vfy_dgram(&v, (const uint8_t *)"bbbx", 4, on_done, &o));
    CHECK_INT(o.ok, 3);
    CHECK_INT(bench_vfy_oldest(&v)->due_ns, 10);
    /* "bbbb" (sent at 10) is lost once its time is up; then all is clear. */
    CHECK_INT(bench_vfy_expire(&v, 10), 0);
    CHECK_INT(bench_vfy_expire(&v, 11), 1);
    CHECK_INT(v.inflight, 0);
    CHECK(bench_vfy_oldest(&v) == NULL);
    /* Room again for depth messages; clear forgets them. */
    for (int i = 0; i < 4; i++)
        CHECK(bench_vfy_push(&v, 0, 0) != NULL);
    bench_vfy_clear(&v);
    CHECK_INT(v.inflight, 0);
    bench_vfy_free(&v);
    bench_vfy_free(&v); /* twice is harmless */
}

static void test_fill(void)
{
    uint64_t rng = 42;
    uint8_t a[4096], b[4096];
    for (size_t n = 1; n <= 300; n++) {
        bench_fill(&rng, a, n, BENCH_LINE);
        CHECK_INT(a[n - 1], '\n');
        CHECK(memchr(a, '\n', n - 1) == NULL);
    }
    /* Two messages differ (a wrong echo cannot pass by accident). */
    bench_fill(&rng, a, sizeof(a), BENCH_BYTES);
    bench_fill(&rng, b, sizeof(b), BENCH_BYTES);
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    /* No message is ever a command: try many short ones. */
    for (int i = 0; i < 200000; i++) {
        bench_fill(&rng, a, 5, BENCH_LINE);
        CHECK(memcmp(a, "exit\n", 5) != 0);
    }
}

static void test_fill_text(void)
{
    uint64_t rng = 5;
    uint8_t a[300];
    for (size_t n = 1; n <= sizeof(a); n++) {
        bench_fill(&rng, a, n, BENCH_TEXT);
        CHECK_INT(a[n - 1], '\n');
        for (size_t i = 0; i + 1 < n; i++)
            if (!(a[i] >= 0x21 && a[i] <= 0x7e)) {
                CHECK(a[i] >= 0x21 && a[i] <= 0x7e);
                break;
            }
    }
    /* Every character of the alphabet turns up, so the text is not degenerate. */
    bool seen[128] = {0};
    for (int k = 0; k < 100; k++) {
        bench_fill(&rng, a, sizeof(a), BENCH_TEXT);
        for (size_t i = 0; i + 1 < sizeof(a); i++)
            seen[a[i]] = true;
    }
    int distinct = 0;
    for (int i = 0; i < 128; i++)
        distinct += seen[i];
    CHECK_INT(distinct, 64);
    for (int i = 0; i < 200000; i++) {
        bench_fill(&rng, a, 5, BENCH_TEXT);
        CHECK(memcmp(a, "exit\n", 5) != 0);
    }
    /* Raw bytes keep their last byte. */
    int nl = 0;
    for (int i = 0; i < 1000; i++) {
        bench_fill(&rng, a, 1, BENCH_BYTES);
        nl += a[0] == '\n';
    }
    CHECK(nl < 1000);
}

static void test_str(void)
{
    struct bench_str s = {0};
    for (int i = 0; i < 10000; i++)
        bench_str_printf(&s, "%d,", i);
    CHECK(!s.failed);
    CHECK_INT(s.len, strlen(s.p));
    CHECK(strncmp(s.p, "0,1,2,", 6) == 0);
    CHECK(strstr(s.p, ",9999,") != NULL);
    bench_str_free(&s);
    CHECK(s.p == NULL && s.len == 0);
}

static void test_fairness(void)
{
    struct bench_fair f;
    uint64_t eq[4] = {10, 10, 10, 10};
    CHECK_INT(bench_fairness(eq, 4, &f), 0);
    CHECK(fabs(f.jain - 1.0) < 1e-12);
    CHECK_INT(f.min, 10);
    CHECK_INT(f.median, 10);
    uint64_t one[4] = {0, 40, 0, 0}; /* one connection got everything: 1/n */
    bench_fairness(one, 4, &f);
    CHECK(fabs(f.jain - 0.25) < 1e-12);
    CHECK_INT(f.min, 0);
    CHECK_INT(f.median, 0);
    CHECK_INT(f.max, 40);
    uint64_t x[5] = {5, 1, 4, 2, 3}; /* (15)^2 / (5 * 55) */
    bench_fairness(x, 5, &f);
    CHECK(fabs(f.jain - 225.0 / 275.0) < 1e-12);
    CHECK_INT(f.median, 3);
    uint64_t y[4] = {4, 1, 3, 2}; /* nearest-rank median: rank 2 */
    bench_fairness(y, 4, &f);
    CHECK_INT(f.median, 2);
    CHECK_INT(x[0], 5); /* the input is not reordered */
    uint64_t z[3] = {0, 0, 0};
    bench_fairness(z, 3, &f);
    CHECK(f.jain == 0.0);
    bench_fairness(NULL, 0, &f);
    CHECK(f.jain == 0.0 && f.max == 0);
}

static uint64_t conn_msgs[4] = {30, 20, 25, 25};

static struct bench_result sample(void)
{
    return (struct bench_result){
        .mode = "open",
        .proto = "plain",
        .transport = "tcp",
        .host = "ho\"st\\",
        .payload = "random",
        .port = 9090,
        .connections = 4,
        .threads = 1,
        .pipeline = 2,
        .size = 100,
        .rate = 50,
        .duration_s = 2.0,
        .warmup_s = 1.0,
        .start_unix = 1700000000.25,
        .runs = 1,
        .msgs_per_s = 50.0,
        .msgs = 100,
        .mismatch = 1,
        .lost = 2,
        .conn_errors = 3,
        .late = 4,
        .unsent = 1,
        .lag_max_ns = 1500000,
        .hist = &h,
        .conn_msgs = conn_msgs,
        .slowest_p99_ns = 99000,
        .slowest_conn = 2,
    };
}

static void test_format(void)
{
    bench_hist_init(&h);
    for (uint64_t v = 1; v <= 100; v++)
        bench_hist_record(&h, v * 1000); /* 1..100 us */
    struct bench_result r = sample();
    struct bench_str out = {0};
    bench_format_json(&r, &out);
    CHECK(!out.failed);
    CHECK_INT(out.p[out.len - 1], '\n');
    CHECK(strchr(out.p, '\n') == out.p + out.len - 1); /* one line */
    const char *want[] = {
        "{\"schema\":\"secho-bench/1\",\"mode\":\"open\",\"proto\":\"plain\"",
        "\"host\":\"ho\\\"st\\\\\"",
        ",\"port\":9090,\"connections\":4,\"threads\":1,\"pipeline\":2,\"size\":100,"
        "\"payload\":\"random\",\"rate\":50.000,\"runs\":1,\"start_unix\":1700000000.250000",
        "\"msgs\":100,\"bytes\":10000,\"msgs_per_s\":50.0,\"mb_per_s\":0.005",
        /* 100 us lies in the bucket [99.968, 100.031]: its middle, clamped to the max */
        "\"p999_us\":99.999,\"p9999_us\":99.999,\"min_us\":1.000,\"max_us\":100.000,"
        "\"mean_us\":50.500",
        "\"errors\":6,\"mismatch\":1,\"lost\":2,\"conn_errors\":3,\"late\":4,\"unsent\":1,"
        "\"lag_max_us\":1500.000",
        "\"fairness\":{\"min\":20,\"median\":25,\"max\":30,\"jain\":0.980392,"
        "\"slowest_p99_us\":99.000,\"slowest_conn\":2}",
        "\"per_conn_msgs\":[30,20,25,25]",
        "\"hist\":{\"unit\":\"ns\",\"sub_buckets\":1024,\"count\":100,\"min\":1000,"
        "\"max\":100000,\"sum\":5050000,\"buckets\":[[1000,1],[2000,1],",
        "[98944,1],[99968,1]]}}\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(out.p, want[i])) {
            fprintf(stderr, "missing %s\nin %s", want[i], out.p);
            CHECK(0);
        }
    CHECK(strstr(out.p, "noise_name") == NULL);
    CHECK(strstr(out.p, "handshake") == NULL);
    char p50[64];
    snprintf(p50, sizeof(p50), "\"p50_us\":%.3f", (double)bench_hist_percentile(&h, 50) / 1000);
    CHECK(strstr(out.p, p50) != NULL);
    bench_str_free(&out);

    bench_format_summary(&r, &out);
    CHECK(!out.failed);
    const char *swant[] = {
        ("plain/tcp ho\"st\\ port 9090: 4 connections on 1 thread, 100-byte random messages, "
         "pipeline 2\n"),
        "open loop: 50 msgs/s offered",
        "100 (50 msgs/s)",
        "0.01 MB/s",
        "p99.9 100.0",
        "p99.99 100.0",
        "late        4 left more than 1 ms after they were due (1 never left)",
        "min 20  median 25  max 30  Jain 0.9804; slowest p99 99.0 us (connection 2)",
        "errors      6 (mismatch 1, lost 2, connection 3)",
    };
    for (size_t i = 0; i < sizeof(swant) / sizeof(swant[0]); i++)
        if (!strstr(out.p, swant[i])) {
            fprintf(stderr, "missing %s\nin %s", swant[i], out.p);
            CHECK(0);
        }
    CHECK_INT(bench_errors(&r), 6);
    bench_str_free(&out);

    /* An interval line. */
    struct bench_interval iv = {.t = 3,
                                .dur = 1,
                                .unix_end = 10.5,
                                .msgs = 100,
                                .bytes = 6400,
                                .errors = 2,
                                .late = 1,
                                .hist = &h};
    bench_format_interval(&iv, &out);
    CHECK(strncmp(out.p,
                  "{\"t\":3.000,\"dur\":1.000,\"unix\":10.500000,\"msgs\":100,"
                  "\"bytes\":6400,\"msgs_per_s\":100.0,\"p50_us\":",
                  62) == 0);
    CHECK(strstr(out.p, ",\"max_us\":100.000,\"errors\":2,\"late\":1}\n") != NULL);
    bench_str_free(&out);
}

static void check_same_result(const struct bench_result *a, const struct bench_result *b)
{
    CHECK_STR(a->mode, b->mode);
    CHECK_STR(a->proto, b->proto);
    CHECK_STR(a->host, b->host);
    CHECK_INT(a->port, b->port);
    CHECK_INT(a->connections, b->connections);
    CHECK_INT(a->msgs, b->msgs);
    CHECK_INT(a->late, b->late);
    CHECK_INT(a->unsent, b->unsent);
    CHECK_INT(a->lag_max_ns, b->lag_max_ns);
    CHECK_INT(a->slowest_conn, b->slowest_conn);
    CHECK_INT(a->slowest_p99_ns, b->slowest_p99_ns);
    CHECK(fabs(a->rate - b->rate) < 1e-3);
    CHECK(fabs(a->start_unix - b->start_unix) < 1e-6);
    CHECK(memcmp(a->hist, b->hist, sizeof(*a->hist)) == 0);
    CHECK(memcmp(a->conn_msgs, b->conn_msgs, a->connections * sizeof(uint64_t)) == 0);
}

static void test_parse_roundtrip(void)
{
    bench_hist_init(&h);
    uint64_t rng = 3;
    for (int i = 0; i < 100; i++)
        bench_hist_record(&h, bench_rand(&rng) % 10000000000ULL);
    struct bench_result r = sample();
    struct bench_str out = {0};
    bench_format_json(&r, &out);
    struct bench_run run;
    char err[256] = "";
    int rc = bench_run_parse(&run, out.p, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "parse: %s\n", err);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        check_same_result(&r, &run.r);
        CHECK_STR(run.r.host, "ho\"st\\");
        CHECK(run.r.noise_name == NULL);
        CHECK(run.r.hs_hist == NULL);
        /* Written again, it is the same text. */
        struct bench_str again = {0};
        bench_format_json(&run.r, &again);
        CHECK_STR(again.p, out.p);
        bench_str_free(&again);
    }
    bench_run_free(&run);

    /* Handshake figures and a noise name come back too. */
    bench_hist_init(&h2);
    for (uint64_t v = 1; v <= 10; v++)
        bench_hist_record(&h2, v * 100000);
    r.mode = "handshakes";
    r.proto = "secure";
    r.noise_name = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
    r.hs_hist = &h2;
    r.handshakes = 10;
    r.handshakes_per_s = 5;
    bench_str_free(&out);
    bench_format_json(&r, &out);
    rc = bench_run_parse(&run, out.p, err, sizeof(err));
    CHECK_INT(rc, 0);
    if (rc == 0) {
        CHECK_STR(run.r.noise_name, "Noise_XX_25519_ChaChaPoly_BLAKE2b");
        CHECK(run.r.hs_hist && memcmp(run.r.hs_hist, &h2, sizeof(h2)) == 0);
        CHECK_INT(run.r.handshakes, 10);
    }
    bench_run_free(&run);
    r.hs_hist = NULL;
    r.noise_name = NULL;

    /* Broken or inconsistent input is refused with a reason, never read past. */
    r.mode = "open";
    r.proto = "plain";
    bench_str_free(&out);
    bench_format_json(&r, &out);
    struct {
        const char *from, *to, *why;
    } edits[] = {
        {"\"msgs\":100,", "\"msgs\":101,", "msgs"},
        {"\"per_conn_msgs\":[30,20,25,25]", "\"per_conn_msgs\":[30,20,25,26]", "per_conn_msgs"},
        {"\"per_conn_msgs\":[30,20,25,25]", "\"per_conn_msgs\":[30,20,50]", "per_conn_msgs"},
        {"\"sub_buckets\":1024", "\"sub_buckets\":2048", "layout"},
        {"\"schema\":\"secho-bench/1\"", "\"schema\":\"secho-bench/2\"", "schema"},
        {"\"count\":100,", "\"count\":99,", "add up"},
        {"\"slowest_conn\":2", "\"slowest_conn\":4", "slowest_conn"},
        {"\"port\":9090", "\"port\":-1", "port"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char *t = strdup(out.p);
        char *at = strstr(t, edits[i].from);
        CHECK(at != NULL);
        if (!at) {
            free(t);
            continue;
        }
        size_t fl = strlen(edits[i].from), tl = strlen(edits[i].to);
        char *u = malloc(strlen(t) + tl + 1);
        memcpy(u, t, (size_t)(at - t));
        memcpy(u + (at - t), edits[i].to, tl);
        strcpy(u + (at - t) + tl, at + fl);
        err[0] = '\0';
        CHECK_INT(bench_run_parse(&run, u, err, sizeof(err)), -1);
        if (!strstr(err, edits[i].why)) {
            fprintf(stderr, "edit %zu: reason \"%s\" lacks \"%s\"\n", i, err, edits[i].why);
            CHECK(0);
        }
        bench_run_free(&run);
        free(u);
        free(t);
    }
    /* Every truncation of the text fails cleanly. */
    for (size_t n = 0; n + 1 < out.len; n += 7) {
        char *t = strndup(out.p, n);
        CHECK_INT(bench_run_parse(&run, t, err, sizeof(err)), -1);
        bench_run_free(&run);
        free(t);
    }
    const char *junk[] = {
        "", "[]", "{", "{\"schema\":1}", "{}x", "{\"a\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        CHECK_INT(bench_run_parse(&run, junk[i], err, sizeof(err)), -1);
        bench_run_free(&run);
    }
    bench_str_free(&out);
}

/* Two runs' results merge into what one run over both would report. */
static void test_merge_runs(void)
{
    static struct bench_hist ha, hb, hall;
    bench_hist_init(&ha);
    bench_hist_init(&hb);
    bench_hist_init(&hall);
    uint64_t rng = 77;
    uint64_t ca[3] = {0}, cb[2] = {0};
    for (int i = 0; i < 5000; i++) {
        uint64_t v = 1000 + bench_rand(&rng) % 50000000;
        if (i % 5 < 3) {
            bench_hist_record(&ha, v);
            ca[i % 3]++;
        } else {
            bench_hist_record(&hb, v);
            cb[i % 2]++;
        }
        bench_hist_record(&hall, v);
    }
    struct bench_result a = sample(), b = sample();
    a.connections = 3;
    a.conn_msgs = ca;
    a.msgs = ha.count;
    a.hist = &ha;
    a.msgs_per_s = 1500;
    a.slowest_conn = 1;
    a.slowest_p99_ns = 5000;
    b.connections = 2;
    b.conn_msgs = cb;
    b.msgs = hb.count;
    b.hist = &hb;
    b.msgs_per_s = 1000;
    b.start_unix += 0.5;
    b.lag_max_ns = 7000000;
    b.slowest_conn = 0;
    b.slowest_p99_ns = 9000;
    b.host = "other";
    struct bench_str sa = {0}, sb = {0};
    bench_format_json(&a, &sa);
    bench_format_json(&b, &sb);
    struct bench_run ra, rb;
    char err[256];
    CHECK_INT(bench_run_parse(&ra, sa.p, err, sizeof(err)), 0);
    CHECK_INT(bench_run_parse(&rb, sb.p, err, sizeof(err)), 0);
    CHECK_INT(bench_run_merge(&ra, &rb, err, sizeof(err)), 0);
    const struct bench_result *m = &ra.r;
    CHECK(memcmp(m->hist, &hall, sizeof(hall)) == 0); /* exact */
    CHECK_INT(m->msgs, 5000);
    CHECK_INT(m->connections, 5);
    CHECK_INT(m->runs, 2);
    CHECK(fabs(m->msgs_per_s - 2500) < 1e-9);
    CHECK(fabs(m->rate - 100) < 1e-9);
    CHECK_INT(m->mismatch, 2);
    CHECK_INT(m->late, 8);
    CHECK_INT(m->lag_max_ns, 7000000);
    CHECK_INT(m->slowest_conn, 3); /* b's connection 0, after a's three */
    CHECK_INT(m->slowest_p99_ns, 9000);
    CHECK(fabs(m->start_unix - 1700000000.25) < 1e-6);
    CHECK(fabs(m->start_spread_s - 0.5) < 1e-6);
    CHECK_STR(m->host, "*");
    CHECK_INT(m->conn_msgs[3], cb[0]);
    CHECK_INT(m->conn_msgs[0], ca[0]);
    /* The merged result reads back and merges again (associative with a third). */
    struct bench_str sm = {0};
    bench_format_json(m, &sm);
    struct bench_run rm;
    CHECK_INT(bench_run_parse(&rm, sm.p, err, sizeof(err)), 0);
    CHECK(memcmp(rm.r.hist, &hall, sizeof(hall)) == 0);
    CHECK(fabs(rm.r.start_spread_s - 0.5) < 1e-6);
    bench_run_free(&rm);
    /* Runs that measured different things are refused. */
    struct bench_result c = sample();
    c.size = 64;
    struct bench_str sc = {0};
    bench_format_json(&c, &sc);
    struct bench_run rc;
    CHECK_INT(bench_run_parse(&rc, sc.p, err, sizeof(err)), 0);
    CHECK_INT(bench_run_merge(&ra, &rc, err, sizeof(err)), -1);
    CHECK(strstr(err, "size") != NULL);
    CHECK_INT(ra.r.msgs, 5000); /* unchanged */
    bench_run_free(&rc);
    bench_run_free(&ra);
    bench_run_free(&rb);
    bench_str_free(&sa);
    bench_str_free(&sb);
    bench_str_free(&sc);
    bench_str_free(&sm);
}

/* The per-second figures and the label travel in the JSON, are checked on the way in, and
 * add second by second in a merge. */
static void test_points(void)
{
    bench_hist_init(&h);
    for (uint64_t v = 1; v <= 100; v++)
        bench_hist_record(&h, v * 1000);
    struct bench_point pts[2] = {
        {.t = 1,
         .dur = 1,
         .msgs = 60,
         .errors = 2,
         .late = 3,
         .p50_ns = 30000,
         .p99_ns = 60000,
         .max_ns = 61000},
        {.t = 1.5, .dur = 0.5, .msgs = 40, .p50_ns = 80000, .p99_ns = 99000, .max_ns = 100000},
    };
    struct bench_result r = sample();
    r.points = pts;
    r.npoints = 2;
    r.label = "epoll \"A\"";
    struct bench_str out = {0};
    bench_format_json(&r, &out);
    CHECK(strstr(out.p, "{\"schema\":\"secho-bench/1\",\"label\":\"epoll \\\"A\\\"\",") != NULL);
    CHECK(strstr(out.p, "\"intervals\":[{\"t\":1.000,\"dur\":1.000,\"msgs\":60,"
                        "\"msgs_per_s\":60.0,\"p50_us\":30.000,\"p99_us\":60.000,"
                        "\"max_us\":61.000,\"errors\":2,\"late\":3},{\"t\":1.500,\"dur\":0.500,"
                        "\"msgs\":40,\"msgs_per_s\":80.0,") != NULL);
    struct bench_run run, two;
    char err[256] = "";
    int rc = bench_run_parse(&run, out.p, err, sizeof(err));
    if (rc)
        fprintf(stderr, "parse: %s\n", err);
    CHECK_INT(rc, 0);
    CHECK_INT(run.r.npoints, 2);
    if (run.r.npoints == 2) {
        CHECK_STR(run.r.label, "epoll \"A\"");
        CHECK(memcmp(&run.r.points[1], &pts[1], sizeof(pts[1])) == 0);
        CHECK(memcmp(&run.r.points[0], &pts[0], sizeof(pts[0])) == 0);
        struct bench_str again = {0};
        bench_format_json(&run.r, &again);
        CHECK_STR(again.p, out.p);
        bench_str_free(&again);
    }
    /* A merge with a longer run: counts add, the highest percentile stands. */
    struct bench_point longer[3] = {
        {.t = 1, .dur = 1, .msgs = 50, .p50_ns = 20000, .p99_ns = 70000, .max_ns = 70000},
        {.t = 2, .dur = 1, .msgs = 30, .p50_ns = 20000, .p99_ns = 50000, .max_ns = 50000},
        {.t = 2.2, .dur = 0.2, .msgs = 20, .p50_ns = 20000, .p99_ns = 50000, .max_ns = 50000},
    };
    r.points = longer;
    r.npoints = 3;
    r.label = NULL;
    struct bench_str out2 = {0};
    bench_format_json(&r, &out2);
    CHECK(strstr(out2.p, "label") == NULL);
    CHECK_INT(bench_run_parse(&two, out2.p, err, sizeof(err)), 0);
    CHECK(two.r.label == NULL);
    CHECK_INT(bench_run_merge(&run, &two, err, sizeof(err)), 0);
    CHECK_INT(run.r.npoints, 3);
    if (run.r.npoints == 3) {
        CHECK_INT(run.r.points[0].msgs, 110);
        CHECK_INT(run.r.points[0].errors, 2);
        CHECK_INT(run.r.points[0].p99_ns, 70000);
        CHECK_INT(run.r.points[1].msgs, 70);
        CHECK(run.r.points[1].t == 2 && run.r.points[1].dur == 1);
        CHECK_INT(run.r.points[1].p99_ns, 99000);
        CHECK_INT(run.r.points[2].msgs, 20);
        CHECK_STR(run.r.label, "epoll \"A\"");
    }
    /* Merged, it reads back: the seconds add up to the merged msgs. */
    struct bench_str out3 = {0};
    bench_format_json(&run.r, &out3);
    struct bench_run three;
    rc = bench_run_parse(&three, out3.p, err, sizeof(err));
    if (rc)
        fprintf(stderr, "parse merged: %s\n", err);
    CHECK_INT(rc, 0);
    bench_run_free(&three);
    bench_run_free(&two);
    /* With a run that has no seconds, the merge has none. */
    r.points = NULL;
    r.npoints = 0;
    bench_str_free(&out2);
    bench_format_json(&r, &out2);
    CHECK(strstr(out2.p, "intervals") == NULL);
    CHECK_INT(bench_run_parse(&two, out2.p, err, sizeof(err)), 0);
    CHECK_INT(bench_run_merge(&run, &two, err, sizeof(err)), 0);
    CHECK_INT(run.r.npoints, 0);
    CHECK(run.r.points == NULL);
    bench_run_free(&two);
    bench_run_free(&run);

    /* Seconds that do not add up, run backwards or are not objects are refused. */
    struct {
        const char *from, *to, *why;
    } edits[] = {
        {"\"t\":1.000,\"dur\":1.000,\"msgs\":60", "\"t\":1.000,\"dur\":1.000,\"msgs\":61",
         "add up"},
        {"{\"t\":1.500", "{\"t\":0.500", "order"},
        {"\"intervals\":[{", "\"intervals\":[7,{", "not an object"},
        {"\"intervals\":[", "\"intervals\":7,\"x\":[", "not a list"},
        {",\"p50_us\":30.000", "", "p50_us"},
        {"\"label\":\"epoll \\\"A\\\"\"", "\"label\":7", "label"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char *at = strstr(out.p, edits[i].from);
        CHECK(at != NULL);
        if (!at)
            continue;
        size_t fl = strlen(edits[i].from), tl = strlen(edits[i].to);
        char *u = malloc(out.len + tl + 1);
        memcpy(u, out.p, (size_t)(at - out.p));
        memcpy(u + (at - out.p), edits[i].to, tl);
        strcpy(u + (at - out.p) + tl, at + fl);
        err[0] = '\0';
        CHECK_INT(bench_run_parse(&run, u, err, sizeof(err)), -1);
        if (!strstr(err, edits[i].why)) {
            fprintf(stderr, "points edit %zu: reason \"%s\" lacks \"%s\"\n", i, err, edits[i].why);
            CHECK(0);
        }
        bench_run_free(&run);
        free(u);
    }
    bench_str_free(&out);
    bench_str_free(&out2);
    bench_str_free(&out3);
}

int main(void)
{
    test_buckets();
    test_uniform();
    test_exact_and_skewed();
    test_merge();
    test_chist();
    test_vfy_stream();
    test_vfy_record();
    test_vfy_dgram();
    test_fill();
    test_fill_text();
    test_str();
    test_fairness();
    test_format();
    test_parse_roundtrip();
    test_merge_runs();
    test_points();
    return CHECK_DONE();
}
