/* SPDX-License-Identifier: MIT */
/* Pure parts of `secho bench`: latency histogram, payload generator, result formatting. */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* ---- log-linear bucket arithmetic, shared by both histograms ---- */

static inline unsigned loglin_index(uint64_t v, unsigned shift, unsigned top)
{
    if (v >> top)
        v = ((uint64_t)1 << top) - 1; /* the last bucket holds everything above */
    if (v < ((uint64_t)2 << shift))
        return (unsigned)v;
    unsigned msb = 63U - (unsigned)__builtin_clzll(v);
    unsigned s = msb - shift;
    /* v >> s lies in [H, 2H): the linear position inside the power-of-two range. */
    return (s << shift) + (unsigned)(v >> s);
}

static inline uint64_t loglin_low(unsigned idx, unsigned shift)
{
    if (idx < (2U << shift))
        return idx;
    unsigned s = (idx >> shift) - 1;
    return (uint64_t)(idx - (s << shift)) << s;
}

static inline uint64_t loglin_high(unsigned idx, unsigned shift, unsigned nbuckets)
{
    if (idx + 1 == nbuckets)
        return UINT64_MAX;
    if (idx < (2U << shift))
        return idx;
    unsigned s = (idx >> shift) - 1;
    return loglin_low(idx, shift) + ((uint64_t)1 << s) - 1;
}

/* The nearest-rank target: ceil(pct * count / 100), at least 1, where a fraction below
 * 1e-9 of the rank is floating-point residue (99.9 % of 2000 is rank 1998, not 1999). */
static uint64_t rank_of(double pct, uint64_t count)
{
    double want = pct * (double)count / 100.0;
    uint64_t rank = (uint64_t)want;
    if (want - (double)rank > 1e-9 * want)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > count)
        rank = count;
    return rank;
}

static uint64_t clamp_mid(unsigned idx, unsigned shift, unsigned nbuckets, uint64_t min,
                          uint64_t max)
{
    uint64_t lo = loglin_low(idx, shift), hi = loglin_high(idx, shift, nbuckets);
    uint64_t mid = lo + (hi - lo) / 2;
    if (mid < min)
        mid = min;
    if (mid > max)
        mid = max;
    return mid;
}

/* ---- the run's histogram ---- */

void bench_hist_init(struct bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned bench_hist_index(uint64_t v)
{
    return loglin_index(v, BENCH_HIST_SHIFT, BENCH_HIST_TOP);
}

uint64_t bench_hist_bucket_low(unsigned idx)
{
    return loglin_low(idx, BENCH_HIST_SHIFT);
}

uint64_t bench_hist_bucket_high(unsigned idx)
{
    return loglin_high(idx, BENCH_HIST_SHIFT, BENCH_HIST_BUCKETS);
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

void bench_hist_record(struct bench_hist *h, uint64_t v)
{
    h->buckets[bench_hist_index(v)]++;
    h->count++;
    h->sum = add_sat(h->sum, v);
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    if (!src->count)
        return;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum = add_sat(dst->sum, src->sum);
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double pct)
{
    if (!h->count)
        return 0;
    if (pct <= 0)
        return h->min;
    if (pct >= 100)
        return h->max;
    uint64_t rank = rank_of(pct, h->count), seen = 0;
    /* Start at min's bucket: nothing lies below it. */
    for (unsigned i = bench_hist_index(h->min); i < BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank)
            return clamp_mid(i, BENCH_HIST_SHIFT, BENCH_HIST_BUCKETS, h->min, h->max);
    }
    return h->max;
}

double bench_hist_mean(const struct bench_hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}

/* ---- one connection's histogram ---- */

void bench_chist_init(struct bench_chist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void bench_chist_record(struct bench_chist *h, uint64_t v)
{
    uint32_t *b = &h->buckets[loglin_index(v, BENCH_CHIST_SHIFT, BENCH_CHIST_TOP)];
    if (*b == UINT32_MAX)
        return;
    (*b)++;
    h->count++;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

uint64_t bench_chist_percentile(const struct bench_chist *h, double pct)
{
    if (!h->count)
        return 0;
    if (pct <= 0)
        return h->min;
    if (pct >= 100)
        return h->max;
    uint64_t rank = rank_of(pct, h->count), seen = 0;
    for (unsigned i = 0; i < BENCH_CHIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank)
            return clamp_mid(i, BENCH_CHIST_SHIFT, BENCH_CHIST_BUCKETS, h->min, h->max);
    }
    return h->max;
}

/* ---- the echo verifier ---- */

int bench_vfy_init(struct bench_vfy *v, size_t size, unsigned depth)
{
    memset(v, 0, sizeof(*v));
    v->size = size;
    v->depth = depth;
    v->payload = malloc(size * depth);
    v->slots = calloc(depth, sizeof(*v->slots));
    return v->payload && v->slots ? 0 : -ENOMEM;
}

void bench_vfy_free(struct bench_vfy *v)
{
    free(v->payload);
    free(v->slots);
    v->payload = NULL;
    v->slots = NULL;
    v->head = v->inflight = 0;
}

void bench_vfy_clear(struct bench_vfy *v)
{
    v->head = v->inflight = 0;
}

static uint8_t *vfy_bytes(const struct bench_vfy *v, unsigned idx)
{
    return v->payload + (size_t)idx * v->size;
}

uint8_t *bench_vfy_push(struct bench_vfy *v, uint64_t due_ns, uint64_t sent_ns)
{
    if (v->inflight >= v->depth)
        return NULL;
    unsigned idx = (v->head + v->inflight) % v->depth;
    v->slots[idx] = (struct bench_slot){.due_ns = due_ns, .sent_ns = sent_ns};
    v->inflight++;
    return vfy_bytes(v, idx);
}

/* Drops the oldest slot. */
static void vfy_pop(struct bench_vfy *v)
{
    v->head = (v->head + 1) % v->depth;
    v->inflight--;
}

/* Datagram: drops the echoed slots at the head. */
static void vfy_pop_done(struct bench_vfy *v)
{
    while (v->inflight > 0 && v->slots[v->head].done)
        vfy_pop(v);
}

const struct bench_slot *bench_vfy_oldest(const struct bench_vfy *v)
{
    for (unsigned i = 0; i < v->inflight; i++) {
        const struct bench_slot *s = &v->slots[(v->head + i) % v->depth];
        if (!s->done)
            return s;
    }
    return NULL;
}

size_t bench_vfy_stream(struct bench_vfy *v, const uint8_t *p, size_t n, bench_vfy_done done,
                        void *arg)
{
    while (n > 0) {
        if (v->inflight == 0)
            return n; /* bytes nobody sent */
        struct bench_slot *s = &v->slots[v->head];
        size_t k = v->size - s->got;
        if (k > n)
            k = n;
        if (memcmp(vfy_bytes(v, v->head) + s->got, p, k) != 0)
            s->bad = true;
        s->got += k;
        p += k;
        n -= k;
        if (s->got == v->size) {
            struct bench_slot copy = *s;
            vfy_pop(v);
            done(arg, &copy, !copy.bad);
        }
    }
    return 0;
}

int bench_vfy_record(struct bench_vfy *v, const uint8_t *p, size_t n, bool first, bool last,
                     bench_vfy_done done, void *arg)
{
    if (v->inflight == 0)
        return last ? 1 : 0;
    struct bench_slot *s = &v->slots[v->head];
    if (first) {
        s->got = 0;
        s->bad = false;
    }
    if (n > v->size - s->got || memcmp(vfy_bytes(v, v->head) + s->got, p, n) != 0) {
        s->bad = true;
        s->got = v->size; /* anything more is too long as well */
    } else {
        s->got += n;
    }
    if (last) {
        struct bench_slot copy = *s;
        vfy_pop(v);
        done(arg, &copy, !copy.bad && copy.got == v->size);
    }
    return 0;
}

bool bench_vfy_dgram(struct bench_vfy *v, const uint8_t *p, size_t n, bench_vfy_done done,
                     void *arg)
{
    if (n != v->size)
        return false;
    for (unsigned i = 0; i < v->inflight; i++) {
        unsigned idx = (v->head + i) % v->depth;
        struct bench_slot *s = &v->slots[idx];
        if (!s->done && memcmp(vfy_bytes(v, idx), p, n) == 0) {
            s->done = true;
            struct bench_slot copy = *s;
            vfy_pop_done(v);
            done(arg, &copy, true);
            return true;
        }
    }
    return false;
}

unsigned bench_vfy_expire(struct bench_vfy *v, uint64_t before_ns)
{
    unsigned lost = 0;
    vfy_pop_done(v);
    while (v->inflight > 0 && v->slots[v->head].sent_ns < before_ns) {
        vfy_pop(v);
        lost++;
        vfy_pop_done(v);
    }
    return lost;
}

/* True if p[0..n) is a command a server acts on, ignoring a trailing "\n" or "\r\n". */
static bool is_command(const uint8_t *p, size_t n)
{
    if (n && p[n - 1] == '\n')
        n--;
    if (n && p[n - 1] == '\r')
        n--;
    return (n == 4 && memcmp(p, "exit", 4) == 0) || (n == 8 && memcmp(p, "shutdown", 8) == 0);
}

void bench_fill(uint64_t *state, uint8_t *p, size_t n, bool line)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t r = bench_rand(state);
        memcpy(p + i, &r, 8);
    }
    if (i < n) {
        uint64_t r = bench_rand(state);
        memcpy(p + i, &r, n - i);
    }
    if (line && n) {
        /* A '\n' inside would split the message into two lines for the server. */
        for (uint8_t *q = memchr(p, '\n', n); q; q = memchr(q, '\n', (size_t)(p + n - q)))
            *q = 'n';
        p[n - 1] = '\n';
    }
    if (n <= 10 && is_command(p, n))
        p[0] ^= 0x20; /* "Exit" is just a message */
}

uint64_t bench_errors(const struct bench_result *r)
{
    return r->mismatch + r->lost + r->conn_errors;
}

/* snprintf that appends at *len and keeps counting past the end, as snprintf does. */
static void put(char *out, size_t outlen, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *out, size_t outlen, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n =
        vsnprintf(*len < outlen ? out + *len : NULL, *len < outlen ? outlen - *len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n;
}

/* A JSON string literal (RFC 8259 section 7) for text that comes from the command line. */
static void put_json_string(char *out, size_t outlen, size_t *len, const char *s)
{
    put(out, outlen, len, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            put(out, outlen, len, "\\%c", *p);
        else if (*p < 0x20)
            put(out, outlen, len, "\\u%04x", *p);
        else
            put(out, outlen, len, "%c", *p);
    }
    put(out, outlen, len, "\"");
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static double rate(const struct bench_result *r, double amount)
{
    return r->duration_s > 0 ? amount / r->duration_s : 0.0;
}

int bench_format_json(const struct bench_result *r, char *out, size_t outlen)
{
    size_t len = 0;
    const struct bench_hist *h = r->hist;
    if (outlen)
        out[0] = '\0';
    put(out, outlen, &len, "{\"proto\":");
    put_json_string(out, outlen, &len, r->proto);
    put(out, outlen, &len, ",\"transport\":");
    put_json_string(out, outlen, &len, r->transport);
    put(out, outlen, &len, ",\"host\":");
    put_json_string(out, outlen, &len, r->host);
    put(out, outlen, &len,
        ",\"port\":%u,\"connections\":%u,\"threads\":%u,\"pipeline\":%u,\"size\":%zu"
        ",\"duration\":%.3f,\"warmup\":%.3f,\"msgs\":%llu,\"msgs_per_s\":%.1f"
        ",\"mb_per_s\":%.3f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f"
        ",\"max_us\":%.1f,\"mean_us\":%.1f,\"errors\":%llu,\"mismatch\":%llu,\"lost\":%llu"
        ",\"conn_errors\":%llu}\n",
        r->port, r->connections, r->threads, r->pipeline, r->size, r->duration_s, r->warmup_s,
        (unsigned long long)r->msgs, rate(r, (double)r->msgs),
        rate(r, (double)r->msgs * (double)r->size / 1e6), us(bench_hist_percentile(h, 50)),
        us(bench_hist_percentile(h, 90)), us(bench_hist_percentile(h, 99)),
        us(bench_hist_percentile(h, 99.9)), us(h->count ? h->max : 0), bench_hist_mean(h) / 1000.0,
        (unsigned long long)bench_errors(r), (unsigned long long)r->mismatch,
        (unsigned long long)r->lost, (unsigned long long)r->conn_errors);
    return (int)len;
}

int bench_format_summary(const struct bench_result *r, char *out, size_t outlen)
{
    size_t len = 0;
    const struct bench_hist *h = r->hist;
    if (outlen)
        out[0] = '\0';
    put(out, outlen, &len,
        "%s/%s %s port %u: %u connection%s on %u thread%s, %zu-byte messages, pipeline %u\n",
        r->proto, r->transport, r->host, r->port, r->connections, r->connections == 1 ? "" : "s",
        r->threads, r->threads == 1 ? "" : "s", r->size, r->pipeline);
    put(out, outlen, &len, "  duration    %.2f s (after %.2f s warm-up)\n", r->duration_s,
        r->warmup_s);
    put(out, outlen, &len, "  messages    %llu (%.0f msgs/s)\n", (unsigned long long)r->msgs,
        rate(r, (double)r->msgs));
    put(out, outlen, &len, "  throughput  %.2f MB/s each way\n",
        rate(r, (double)r->msgs * (double)r->size / 1e6));
    put(out, outlen, &len,
        "  latency us  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n",
        us(bench_hist_percentile(h, 50)), us(bench_hist_percentile(h, 90)),
        us(bench_hist_percentile(h, 99)), us(bench_hist_percentile(h, 99.9)),
        us(h->count ? h->max : 0), bench_hist_mean(h) / 1000.0);
    put(out, outlen, &len, "  errors      %llu (mismatch %llu, lost %llu, connection %llu)\n",
        (unsigned long long)bench_errors(r), (unsigned long long)r->mismatch,
        (unsigned long long)r->lost, (unsigned long long)r->conn_errors);
    return (int)len;
}
