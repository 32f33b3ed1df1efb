/* SPDX-License-Identifier: MIT */
/* Pure parts of `secho bench`: latency histogram, payload generator, result formatting. */
#ifndef SECHO_BENCH_H
#define SECHO_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A log-linear histogram in the manner of HdrHistogram: values below 2 * BENCH_HIST_HALF
 * have a bucket each; above, every power-of-two range [2^k, 2^(k+1)) is split into
 * BENCH_HIST_HALF equal buckets. A value's bucket is thus at most 1/BENCH_HIST_HALF
 * (0.78 %) of the value wide, for the whole uint64_t range, in fixed memory (58 KiB)
 * and with a record cost of one count-leading-zeros and one add. Units are the caller's
 * (bench records nanoseconds).
 */
#define BENCH_HIST_SHIFT   7
#define BENCH_HIST_HALF    (1U << BENCH_HIST_SHIFT) /* 128 */
#define BENCH_HIST_BUCKETS ((64 - BENCH_HIST_SHIFT + 1) * BENCH_HIST_HALF)

struct bench_hist {
    uint64_t count;
    uint64_t min, max;
    long double sum;
    uint64_t buckets[BENCH_HIST_BUCKETS];
};

/* Empties h (caller memory). */
void bench_hist_init(struct bench_hist *h);
/* Adds one value. Never fails. */
void bench_hist_record(struct bench_hist *h, uint64_t v);
/* Adds every value of src to dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* The value below which `pct` percent (0..100) of the recorded values fall, to within the
 * bucket precision (the middle of the bucket, clamped to the recorded min and max).
 * Returns 0 for an empty histogram. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double pct);
/* Arithmetic mean; 0 for an empty histogram. */
double bench_hist_mean(const struct bench_hist *h);

/* Bucket index of v and the lowest and highest values sharing that bucket (for tests). */
unsigned bench_hist_index(uint64_t v);
uint64_t bench_hist_bucket_low(unsigned idx);
uint64_t bench_hist_bucket_high(unsigned idx);

/* xorshift64* generator: fast, not cryptographic; payloads only need to be unpredictable
 * enough that a wrong echo cannot match by accident. Seed MUST be non-zero. */
static inline uint64_t bench_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Fills p[0..n) with random bytes. With `line`, the message is a text line for stream
 * (plain TCP) servers: no '\n' inside and p[n-1] == '\n'. Either way the message is never
 * a command a server would act on (`exit`, `shutdown`, with or without CR/LF). */
void bench_fill(uint64_t *state, uint8_t *p, size_t n, bool line);

/* Everything a run reports. Latencies are in nanoseconds. */
struct bench_result {
    const char *proto;     /* "plain", "secure", ... */
    const char *transport; /* "tcp" or "udp" */
    const char *host;
    unsigned port;
    unsigned connections, threads, pipeline;
    size_t size;
    double duration_s, warmup_s; /* measured window, and warm-up before it */
    uint64_t msgs;               /* echoes completed and verified in the window */
    uint64_t mismatch;           /* echoes whose bytes differ from what was sent */
    uint64_t lost;               /* UDP echoes not back within the timeout */
    uint64_t conn_errors;        /* connections that failed during the run */
    const struct bench_hist *hist;
};

/* Total errors: mismatch + lost + conn_errors. */
uint64_t bench_errors(const struct bench_result *r);
/* Writes the result as one JSON object on one line (with '\n'). Returns the length that
 * was (or, if outlen is too small, would have been) written, as snprintf. */
int bench_format_json(const struct bench_result *r, char *out, size_t outlen);
/* Writes the human summary (several lines). Returns as snprintf. */
int bench_format_summary(const struct bench_result *r, char *out, size_t outlen);

#endif
