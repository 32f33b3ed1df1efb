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
    /* Small values are exact. */
    for (uint64_t v = 0; v < 2 * BENCH_HIST_HALF; v++) {
        CHECK_INT(bench_hist_index(v), v);
        CHECK_INT(bench_hist_bucket_low(bench_hist_index(v)), v);
    }
    /* Every value lies inside its bucket; buckets are contiguous and narrow. */
    uint64_t vals[] = {256,
                       257,
                       511,
                       512,
                       1000,
                       4095,
                       4096,
                       123456789,
                       1ULL << 40,
                       (1ULL << 40) + 12345,
                       UINT64_MAX / 3,
                       UINT64_MAX};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        unsigned idx = bench_hist_index(vals[i]);
        CHECK(idx < BENCH_HIST_BUCKETS);
        CHECK(bench_hist_bucket_low(idx) <= vals[i]);
        CHECK(bench_hist_bucket_high(idx) >= vals[i]);
        uint64_t width = bench_hist_bucket_high(idx) - bench_hist_bucket_low(idx) + 1;
        CHECK((double)width / (double)bench_hist_bucket_low(idx) <= 1.0 / BENCH_HIST_HALF);
    }
    for (unsigned idx = 1; idx < BENCH_HIST_BUCKETS; idx++)
        if (bench_hist_bucket_low(idx) != bench_hist_bucket_high(idx - 1) + 1) {
            CHECK_INT(bench_hist_bucket_low(idx), bench_hist_bucket_high(idx - 1) + 1);
            break;
        }
    CHECK_INT(bench_hist_index(UINT64_MAX), BENCH_HIST_BUCKETS - 1);
    CHECK(bench_hist_bucket_high(BENCH_HIST_BUCKETS - 1) == UINT64_MAX);
}

static struct bench_hist h, h2;

static void test_uniform(void)
{
    /* 1..100000 once each: the p-th percentile is p * 1000. */
    bench_hist_init(&h);
    for (uint64_t v = 1; v <= 100000; v++)
        bench_hist_record(&h, v);
    CHECK_INT(h.count, 100000);
    CHECK_INT(h.min, 1);
    CHECK_INT(h.max, 100000);
    double pcts[] = {1, 10, 50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
        uint64_t want = (uint64_t)(pcts[i] * 1000 + 0.5);
        uint64_t got = bench_hist_percentile(&h, pcts[i]);
        if (rel(got, want) > 1.0 / BENCH_HIST_HALF) {
            fprintf(stderr, "p%g: got %llu want %llu\n", pcts[i], (unsigned long long)got,
                    (unsigned long long)want);
            CHECK(0);
        }
    }
    CHECK_INT(bench_hist_percentile(&h, 0), 1);
    CHECK_INT(bench_hist_percentile(&h, 100), 100000);
    CHECK(fabs(bench_hist_mean(&h) - 50000.5) < 1e-6);
}

static void test_exact_and_skewed(void)
{
    /* Small values are recorded exactly: 1..100 gives the nearest-rank percentiles. */
    bench_hist_init(&h);
    for (uint64_t v = 1; v <= 100; v++)
        bench_hist_record(&h, v);
    CHECK_INT(bench_hist_percentile(&h, 50), 50);
    CHECK_INT(bench_hist_percentile(&h, 90), 90);
    CHECK_INT(bench_hist_percentile(&h, 99), 99);
    CHECK_INT(bench_hist_percentile(&h, 99.9), 100);

    /* A latency-like distribution: 990 fast (20 us) and 10 slow (5 ms) in ns. */
    bench_hist_init(&h);
    for (int i = 0; i < 990; i++)
        bench_hist_record(&h, 20000);
    for (int i = 0; i < 10; i++)
        bench_hist_record(&h, 5000000);
    CHECK(rel(bench_hist_percentile(&h, 50), 20000) <= 1.0 / BENCH_HIST_HALF);
    CHECK(rel(bench_hist_percentile(&h, 99), 20000) <= 1.0 / BENCH_HIST_HALF);
    CHECK(rel(bench_hist_percentile(&h, 99.9), 5000000) <= 1.0 / BENCH_HIST_HALF);
    /* Clamped to what was seen: a single value reads back exactly. */
    bench_hist_init(&h);
    bench_hist_record(&h, 123456789);
    CHECK_INT(bench_hist_percentile(&h, 50), 123456789);
    /* Empty. */
    bench_hist_init(&h);
    CHECK_INT(bench_hist_percentile(&h, 99), 0);
    CHECK(bench_hist_mean(&h) == 0.0);
}

static void test_merge(void)
{
    bench_hist_init(&h);
    bench_hist_init(&h2);
    for (uint64_t v = 1; v <= 50000; v++)
        bench_hist_record(&h, v);
    for (uint64_t v = 50001; v <= 100000; v++)
        bench_hist_record(&h2, v);
    bench_hist_merge(&h, &h2);
    CHECK_INT(h.count, 100000);
    CHECK_INT(h.min, 1);
    CHECK_INT(h.max, 100000);
    CHECK(rel(bench_hist_percentile(&h, 90), 90000) <= 1.0 / BENCH_HIST_HALF);
    bench_hist_init(&h2);
    bench_hist_merge(&h, &h2); /* merging an empty one changes nothing */
    CHECK_INT(h.count, 100000);
    CHECK_INT(h.min, 1);
}

static void test_fill(void)
{
    uint64_t rng = 42;
    uint8_t a[4096], b[4096];
    for (size_t n = 1; n <= 300; n++) {
        bench_fill(&rng, a, n, true);
        CHECK_INT(a[n - 1], '\n');
        CHECK(memchr(a, '\n', n - 1) == NULL);
    }
    /* Two messages differ (a wrong echo cannot pass by accident). */
    bench_fill(&rng, a, sizeof(a), false);
    bench_fill(&rng, b, sizeof(b), false);
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    /* No message is ever a command: try many short ones. */
    for (int i = 0; i < 200000; i++) {
        bench_fill(&rng, a, 5, true);
        CHECK(memcmp(a, "exit\n", 5) != 0);
    }
}

static void test_format(void)
{
    bench_hist_init(&h);
    for (uint64_t v = 1; v <= 100; v++)
        bench_hist_record(&h, v * 1000); /* 1..100 us */
    struct bench_result r = {
        .proto = "plain",
        .transport = "tcp",
        .host = "ho\"st\\",
        .port = 9090,
        .connections = 4,
        .threads = 1,
        .pipeline = 2,
        .size = 100,
        .duration_s = 2.0,
        .warmup_s = 1.0,
        .msgs = 1000,
        .mismatch = 1,
        .lost = 2,
        .conn_errors = 3,
        .hist = &h,
    };
    char out[2048];
    int n = bench_format_json(&r, out, sizeof(out));
    CHECK_INT(n, strlen(out));
    /* The percentiles are bucket midpoints; the exact text follows from the histogram. */
    char want[2048];
    snprintf(want, sizeof(want),
             "{\"proto\":\"plain\",\"transport\":\"tcp\",\"host\":\"ho\\\"st\\\\\","
             "\"port\":9090,\"connections\":4,\"threads\":1,\"pipeline\":2,\"size\":100,"
             "\"duration\":2.000,\"warmup\":1.000,\"msgs\":1000,\"msgs_per_s\":500.0,"
             "\"mb_per_s\":0.050,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
             "\"p999_us\":100.0,\"max_us\":100.0,\"mean_us\":50.5,\"errors\":6,"
             "\"mismatch\":1,\"lost\":2,\"conn_errors\":3}\n",
             (double)bench_hist_percentile(&h, 50) / 1000,
             (double)bench_hist_percentile(&h, 90) / 1000,
             (double)bench_hist_percentile(&h, 99) / 1000);
    CHECK_STR(out, want);
    CHECK(rel(bench_hist_percentile(&h, 90), 90000) <= 1.0 / BENCH_HIST_HALF);
    /* Too small a buffer: truncated, terminated, full length reported. */
    char small[16];
    CHECK_INT(bench_format_json(&r, small, sizeof(small)), n);
    CHECK_INT(strlen(small), sizeof(small) - 1);

    n = bench_format_summary(&r, out, sizeof(out));
    CHECK_INT(n, strlen(out));
    CHECK(strstr(out, "1000 (500 msgs/s)") != NULL);
    CHECK(strstr(out, "0.05 MB/s") != NULL);
    snprintf(want, sizeof(want), "p50 %.1f  p90 %.1f  p99 %.1f  p99.9 100.0  max 100.0",
             (double)bench_hist_percentile(&h, 50) / 1000,
             (double)bench_hist_percentile(&h, 90) / 1000,
             (double)bench_hist_percentile(&h, 99) / 1000);
    CHECK(strstr(out, want) != NULL);
    CHECK(strstr(out, "errors      6 (mismatch 1, lost 2, connection 3)") != NULL);
    CHECK(strstr(out, "4 connections on 1 thread, 100-byte messages, pipeline 2") != NULL);
    CHECK_INT(bench_errors(&r), 6);
}

int main(void)
{
    test_buckets();
    test_uniform();
    test_exact_and_skewed();
    test_merge();
    test_fill();
    test_format();
    return CHECK_DONE();
}
