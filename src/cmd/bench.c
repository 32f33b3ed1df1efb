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
    /* Nothing lies outside the buckets of min and max. */
    for (unsigned i = bench_hist_index(src->min); i <= bench_hist_index(src->max); i++)
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

void bench_hist_percentiles(const struct bench_hist *h, const double *pct, size_t n, uint64_t *out)
{
    unsigned i = h->count ? bench_hist_index(h->min) : 0;
    uint64_t seen = h->count ? h->buckets[i] : 0;
    for (size_t k = 0; k < n; k++) {
        if (!h->count || pct[k] <= 0 || pct[k] >= 100) {
            out[k] = bench_hist_percentile(h, pct[k]);
            continue;
        }
        /* Ranks ascend with pct, so the bucket reached so far is never past the next one. */
        uint64_t rank = rank_of(pct[k], h->count);
        while (seen < rank && i + 1 < BENCH_HIST_BUCKETS)
            seen += h->buckets[++i];
        out[k] = seen >= rank ? clamp_mid(i, BENCH_HIST_SHIFT, BENCH_HIST_BUCKETS, h->min, h->max)
                              : h->max;
    }
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

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
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

static const char text_alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void bench_fill(uint64_t *state, uint8_t *p, size_t n, enum bench_payload kind)
{
    size_t i = 0;
    if (kind == BENCH_TEXT) {
        /* Ten characters from each 64-bit draw, six bits apiece. */
        while (i < n) {
            uint64_t r = bench_rand(state);
            for (int k = 0; k < 10 && i < n; k++, r >>= 6)
                p[i++] = (uint8_t)text_alphabet[r & 63];
        }
    } else {
        for (; i + 8 <= n; i += 8) {
            uint64_t r = bench_rand(state);
            memcpy(p + i, &r, 8);
        }
        if (i < n) {
            uint64_t r = bench_rand(state);
            memcpy(p + i, &r, n - i);
        }
    }
    if (kind == BENCH_LINE && n) {
        /* A '\n' inside would split the message into two lines for the server. */
        for (uint8_t *q = memchr(p, '\n', n); q; q = memchr(q, '\n', (size_t)(p + n - q)))
            *q = 'n';
    }
    if (kind != BENCH_BYTES && n)
        p[n - 1] = '\n';
    if (n <= 10 && is_command(p, n))
        p[0] ^= 0x20; /* "Exit" is just a message (and stays printable) */
}

/* ---- text buffer ---- */

void bench_str_printf(struct bench_str *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = s->cap - s->len;
        int n = vsnprintf(s->p ? s->p + s->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            s->failed = true;
            return;
        }
        if ((size_t)n < room) {
            s->len += (size_t)n;
            return;
        }
        size_t cap = s->cap ? s->cap : 256;
        while (cap - s->len <= (size_t)n)
            cap *= 2;
        char *q = realloc(s->p, cap);
        if (!q) {
            if (s->p)
                s->p[s->len] = '\0';
            s->failed = true;
            return;
        }
        s->p = q;
        s->cap = cap;
    }
}

void bench_str_free(struct bench_str *s)
{
    free(s->p);
    memset(s, 0, sizeof(*s));
}

/* ---- fairness ---- */

int bench_fairness(const uint64_t *x, size_t n, struct bench_fair *f)
{
    memset(f, 0, sizeof(*f));
    if (n == 0)
        return 0;
    uint64_t *v = malloc(n * sizeof(*v));
    if (!v)
        return -ENOMEM;
    memcpy(v, x, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_u64);
    f->min = v[0];
    f->max = v[n - 1];
    f->median = v[(n + 1) / 2 - 1];
    long double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        sum += (long double)v[i];
        sq += (long double)v[i] * (long double)v[i];
    }
    f->jain = sq > 0 ? (double)(sum * sum / ((long double)n * sq)) : 0.0;
    free(v);
    return 0;
}

/* ---- the JSON result ---- */

uint64_t bench_errors(const struct bench_result *r)
{
    return r->mismatch + r->lost + r->conn_errors;
}

/* A JSON string literal (RFC 8259 section 7) for text that comes from the command line. */
static void put_json_string(struct bench_str *out, const char *s)
{
    bench_str_printf(out, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            bench_str_printf(out, "\\%c", *p);
        else if (*p < 0x20)
            bench_str_printf(out, "\\u%04x", *p);
        else
            bench_str_printf(out, "%c", *p);
    }
    bench_str_printf(out, "\"");
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static unsigned long long ull(uint64_t v)
{
    return (unsigned long long)v;
}

/* The percentiles every latency report carries, in this order. */
static const struct {
    double pct;
    const char *key, *label;
} pcts[] = {
    {50, "p50_us", "p50"},      {90, "p90_us", "p90"},         {99, "p99_us", "p99"},
    {99.9, "p999_us", "p99.9"}, {99.99, "p9999_us", "p99.99"},
};
#define NPCTS (sizeof(pcts) / sizeof(pcts[0]))

/* "p50_us":..,...,"min_us":..,"max_us":..,"mean_us":.. of h, each with a leading comma. */
static void put_latency_keys(struct bench_str *out, const struct bench_hist *h)
{
    for (size_t i = 0; i < NPCTS; i++)
        bench_str_printf(out, ",\"%s\":%.3f", pcts[i].key,
                         us(bench_hist_percentile(h, pcts[i].pct)));
    bench_str_printf(out, ",\"min_us\":%.3f,\"max_us\":%.3f,\"mean_us\":%.3f",
                     us(h->count ? h->min : 0), us(h->count ? h->max : 0),
                     bench_hist_mean(h) / 1000.0);
}

void bench_hist_json(const struct bench_hist *h, struct bench_str *out)
{
    bench_str_printf(out,
                     "{\"unit\":\"ns\",\"sub_buckets\":%u,\"count\":%llu,\"min\":%llu,"
                     "\"max\":%llu,\"sum\":%llu,\"buckets\":[",
                     BENCH_HIST_HALF, ull(h->count), ull(h->count ? h->min : 0),
                     ull(h->count ? h->max : 0), ull(h->sum));
    bool first = true;
    if (h->count)
        for (unsigned i = bench_hist_index(h->min); i <= bench_hist_index(h->max); i++) {
            if (!h->buckets[i])
                continue;
            bench_str_printf(out, "%s[%llu,%llu]", first ? "" : ",", ull(bench_hist_bucket_low(i)),
                             ull(h->buckets[i]));
            first = false;
        }
    bench_str_printf(out, "]}");
}

void bench_format_json(const struct bench_result *r, struct bench_str *out)
{
    const struct bench_hist *h = r->hist;
    bench_str_printf(out, "{\"schema\":\"secho-bench/1\"");
    if (r->label) {
        bench_str_printf(out, ",\"label\":");
        put_json_string(out, r->label);
    }
    bench_str_printf(out, ",\"mode\":");
    put_json_string(out, r->mode);
    bench_str_printf(out, ",\"proto\":");
    put_json_string(out, r->proto);
    bench_str_printf(out, ",\"transport\":");
    put_json_string(out, r->transport);
    bench_str_printf(out, ",\"host\":");
    put_json_string(out, r->host);
    bench_str_printf(out,
                     ",\"port\":%u,\"connections\":%llu,\"threads\":%u,\"pipeline\":%u"
                     ",\"size\":%zu,\"payload\":",
                     r->port, ull(r->connections), r->threads, r->pipeline, r->size);
    put_json_string(out, r->payload);
    if (r->noise_name) {
        bench_str_printf(out, ",\"noise_name\":");
        put_json_string(out, r->noise_name);
    }
    bench_str_printf(out,
                     ",\"rate\":%.3f,\"runs\":%llu,\"start_unix\":%.6f,\"start_spread_s\":%.6f"
                     ",\"duration\":%.6f,\"warmup\":%.3f,\"msgs\":%llu,\"bytes\":%llu"
                     ",\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f",
                     r->rate, ull(r->runs), r->start_unix, r->start_spread_s, r->duration_s,
                     r->warmup_s, ull(r->msgs), ull(r->msgs * r->size), r->msgs_per_s,
                     r->msgs_per_s * (double)r->size / 1e6);
    put_latency_keys(out, h);
    bench_str_printf(out,
                     ",\"errors\":%llu,\"mismatch\":%llu,\"lost\":%llu,\"conn_errors\":%llu"
                     ",\"late\":%llu,\"unsent\":%llu,\"lag_max_us\":%.3f",
                     ull(bench_errors(r)), ull(r->mismatch), ull(r->lost), ull(r->conn_errors),
                     ull(r->late), ull(r->unsent), us(r->lag_max_ns));
    struct bench_fair f;
    if (bench_fairness(r->conn_msgs, r->conn_msgs ? r->connections : 0, &f) < 0)
        out->failed = true;
    bench_str_printf(out,
                     ",\"fairness\":{\"min\":%llu,\"median\":%llu,\"max\":%llu,\"jain\":%.6f"
                     ",\"slowest_p99_us\":%.3f,\"slowest_conn\":%lld}",
                     ull(f.min), ull(f.median), ull(f.max), f.jain, us(r->slowest_p99_ns),
                     (long long)r->slowest_conn);
    if (r->hs_hist) {
        bench_str_printf(out, ",\"handshake\":{\"count\":%llu,\"per_s\":%.1f", ull(r->handshakes),
                         r->handshakes_per_s);
        put_latency_keys(out, r->hs_hist);
        bench_str_printf(out, ",\"hist\":");
        bench_hist_json(r->hs_hist, out);
        bench_str_printf(out, "}");
    }
    if (r->npoints) {
        bench_str_printf(out, ",\"intervals\":[");
        for (size_t i = 0; i < r->npoints; i++) {
            const struct bench_point *pt = &r->points[i];
            bench_str_printf(out,
                             "%s{\"t\":%.3f,\"dur\":%.3f,\"msgs\":%llu,\"msgs_per_s\":%.1f"
                             ",\"p50_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f,\"errors\":%llu"
                             ",\"late\":%llu",
                             i ? "," : "", pt->t, pt->dur, ull(pt->msgs),
                             pt->dur > 0 ? (double)pt->msgs / pt->dur : 0.0, us(pt->p50_ns),
                             us(pt->p99_ns), us(pt->max_ns), ull(pt->errors), ull(pt->late));
            if (r->hs_hist)
                bench_str_printf(out, ",\"handshakes\":%llu", ull(pt->handshakes));
            bench_str_printf(out, "}");
        }
        bench_str_printf(out, "]");
    }
    bench_str_printf(out, ",\"per_conn_msgs\":[");
    for (uint64_t i = 0; r->conn_msgs && i < r->connections; i++)
        bench_str_printf(out, "%s%llu", i ? "," : "", ull(r->conn_msgs[i]));
    bench_str_printf(out, "],\"hist\":");
    bench_hist_json(h, out);
    bench_str_printf(out, "}\n");
}

static void put_latency_line(struct bench_str *out, const char *label, const struct bench_hist *h)
{
    bench_str_printf(out, "  %-11s", label);
    for (size_t i = 0; i < NPCTS; i++)
        bench_str_printf(out, " %s %.1f ", pcts[i].label,
                         us(bench_hist_percentile(h, pcts[i].pct)));
    bench_str_printf(out, " max %.1f  mean %.1f\n", us(h->count ? h->max : 0),
                     bench_hist_mean(h) / 1000.0);
}

void bench_format_summary(const struct bench_result *r, struct bench_str *out)
{
    const char *plural_c = r->connections == 1 ? "" : "s";
    bench_str_printf(out,
                     "%s/%s %s port %u: %llu connection%s on %u thread%s, %zu-byte %s messages, "
                     "pipeline %u\n",
                     r->proto, r->transport, r->host, r->port, ull(r->connections), plural_c,
                     r->threads, r->threads == 1 ? "" : "s", r->size, r->payload, r->pipeline);
    if (r->runs > 1)
        bench_str_printf(out, "  merged      %llu runs, started within %.3f s of each other\n",
                         ull(r->runs), r->start_spread_s);
    if (strcmp(r->mode, "open") == 0)
        bench_str_printf(out, "  load        open loop: %.0f msgs/s offered on a fixed schedule\n",
                         r->rate);
    else if (strcmp(r->mode, "handshakes") == 0)
        bench_str_printf(out, "  load        handshakes: connect, handshake, one echo, close\n");
    else
        bench_str_printf(out, "  load        closed loop: the next message when an echo is back\n");
    bench_str_printf(out, "  duration    %.2f s (after %.2f s warm-up)\n", r->duration_s,
                     r->warmup_s);
    bench_str_printf(out, "  messages    %llu (%.0f msgs/s)\n", ull(r->msgs), r->msgs_per_s);
    bench_str_printf(out, "  throughput  %.2f MB/s each way\n",
                     r->msgs_per_s * (double)r->size / 1e6);
    put_latency_line(out, "latency us", r->hist);
    if (strcmp(r->mode, "open") == 0)
        bench_str_printf(out,
                         "  late        %llu left more than %.0f ms after they were due (%llu "
                         "never left); worst %.1f us late\n",
                         ull(r->late), BENCH_LATE_NS / 1e6, ull(r->unsent), us(r->lag_max_ns));
    if (r->hs_hist) {
        bench_str_printf(out, "  handshakes  %llu (%.0f /s)\n", ull(r->handshakes),
                         r->handshakes_per_s);
        put_latency_line(out, "handshake us", r->hs_hist);
    }
    struct bench_fair f;
    if (bench_fairness(r->conn_msgs, r->conn_msgs ? r->connections : 0, &f) < 0)
        out->failed = true;
    bench_str_printf(out,
                     "  fairness    per connection min %llu  median %llu  max %llu  Jain %.4f;"
                     " slowest p99 %.1f us",
                     ull(f.min), ull(f.median), ull(f.max), f.jain, us(r->slowest_p99_ns));
    if (r->slowest_conn >= 0)
        bench_str_printf(out, " (connection %lld)", (long long)r->slowest_conn);
    bench_str_printf(out, "\n  errors      %llu (mismatch %llu, lost %llu, connection %llu)\n",
                     ull(bench_errors(r)), ull(r->mismatch), ull(r->lost), ull(r->conn_errors));
}

struct bench_point bench_interval_point(const struct bench_interval *iv)
{
    const struct bench_hist *h = iv->hist;
    return (struct bench_point){
        .t = iv->t,
        .dur = iv->dur,
        .msgs = iv->msgs,
        .errors = iv->errors,
        .late = iv->late,
        .handshakes = iv->handshakes,
        .p50_ns = bench_hist_percentile(h, 50),
        .p99_ns = bench_hist_percentile(h, 99),
        .max_ns = h->count ? h->max : 0,
    };
}

void bench_format_interval(const struct bench_interval *iv, struct bench_str *out)
{
    const struct bench_hist *h = iv->hist;
    bench_str_printf(out,
                     "{\"t\":%.3f,\"dur\":%.3f,\"unix\":%.6f,\"msgs\":%llu,\"bytes\":%llu"
                     ",\"msgs_per_s\":%.1f,\"p50_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f"
                     ",\"errors\":%llu,\"late\":%llu",
                     iv->t, iv->dur, iv->unix_end, ull(iv->msgs), ull(iv->bytes),
                     iv->dur > 0 ? (double)iv->msgs / iv->dur : 0.0,
                     us(bench_hist_percentile(h, 50)), us(bench_hist_percentile(h, 99)),
                     us(h->count ? h->max : 0), ull(iv->errors), ull(iv->late));
    if (iv->hs_hist)
        bench_str_printf(out, ",\"handshakes\":%llu,\"hs_p50_us\":%.3f,\"hs_p99_us\":%.3f",
                         ull(iv->handshakes), us(bench_hist_percentile(iv->hs_hist, 50)),
                         us(bench_hist_percentile(iv->hs_hist, 99)));
    bench_str_printf(out, "}\n");
}

/* ---- reading a result back (--merge) ---- */

/* A small JSON reader over NUL-terminated text: enough to find members of an object and
 * read numbers, strings and arrays of them; never reads past the terminator. */
#define JSON_DEPTH 16

static const char *jws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

/* Past a string literal at p (at '"'), or NULL. */
static const char *jskip_string(const char *p)
{
    for (p++; *p; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\') {
            if (!p[1])
                return NULL;
            p++;
        } else if ((unsigned char)*p < 0x20) {
            return NULL;
        }
    }
    return NULL;
}

/* Past the value at p, or NULL when it is not one. */
static const char *jskip(const char *p, int depth)
{
    p = jws(p);
    if (depth > JSON_DEPTH)
        return NULL;
    if (*p == '"')
        return jskip_string(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = jws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                if (*p != '"' || !(p = jskip_string(p)))
                    return NULL;
                p = jws(p);
                if (*p++ != ':')
                    return NULL;
            }
            if (!(p = jskip(p, depth + 1)))
                return NULL;
            p = jws(p);
            if (*p == close)
                return p + 1;
            if (*p++ != ',')
                return NULL;
            p = jws(p);
        }
    }
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
        return p + 4;
    if (strncmp(p, "false", 5) == 0)
        return p + 5;
    const char *q = p;
    while (*q == '-' || *q == '+' || *q == '.' || *q == 'e' || *q == 'E' ||
           (*q >= '0' && *q <= '9'))
        q++;
    return q > p ? q : NULL;
}

/* The value of member `key` of the object at obj (at '{'), or NULL if there is none. Keys
 * are compared as written (bench writes none with escapes). */
static const char *jget(const char *obj, const char *key)
{
    const char *p = jws(obj);
    if (*p != '{')
        return NULL;
    p = jws(p + 1);
    size_t klen = strlen(key);
    while (*p == '"') {
        const char *k = p + 1, *end = jskip_string(p);
        if (!end)
            return NULL;
        p = jws(end);
        if (*p++ != ':')
            return NULL;
        p = jws(p);
        if ((size_t)(end - 1 - k) == klen && memcmp(k, key, klen) == 0)
            return p;
        if (!(p = jskip(p, 1)))
            return NULL;
        p = jws(p);
        if (*p != ',')
            return NULL;
        p = jws(p + 1);
    }
    return NULL;
}

/* An unsigned integer (digits only) at p; sets *end past it. */
static bool jparse_u64(const char *p, uint64_t *out, const char **end)
{
    p = jws(p);
    if (*p < '0' || *p > '9')
        return false;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (*p == '.' || *p == 'e' || *p == 'E')
        return false;
    *out = v;
    if (end)
        *end = p;
    return true;
}

static bool jparse_double(const char *p, double *out)
{
    p = jws(p);
    if (!(*p == '-' || (*p >= '0' && *p <= '9')))
        return false;
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno == ERANGE || v != v)
        return false;
    *out = v;
    return true;
}

/* A string value at p into out (cap >= 1), escapes decoded (\uXXXX as UTF-8). */
static bool jparse_string(const char *p, char *out, size_t cap)
{
    p = jws(p);
    if (*p != '"')
        return false;
    size_t n = 0;
    for (p++; *p && *p != '"'; p++) {
        unsigned c = (unsigned char)*p;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            p++;
            switch (*p) {
            case '"':
            case '\\':
            case '/':
                c = (unsigned char)*p;
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u': {
                c = 0;
                for (int i = 1; i <= 4; i++) {
                    char h = p[i];
                    unsigned d = h >= '0' && h <= '9'   ? (unsigned)(h - '0')
                                 : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10)
                                 : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10)
                                                        : 16;
                    if (d == 16)
                        return false;
                    c = c * 16 + d;
                }
                p += 4;
                if (c == 0)
                    return false;
                uint8_t u[3];
                size_t k;
                if (c < 0x80) {
                    u[0] = (uint8_t)c;
                    k = 1;
                } else if (c < 0x800) {
                    u[0] = (uint8_t)(0xc0 | c >> 6);
                    u[1] = (uint8_t)(0x80 | (c & 0x3f));
                    k = 2;
                } else {
                    u[0] = (uint8_t)(0xe0 | c >> 12);
                    u[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
                    u[2] = (uint8_t)(0x80 | (c & 0x3f));
                    k = 3;
                }
                if (n + k >= cap)
                    return false;
                memcpy(out + n, u, k);
                n += k;
                continue;
            }
            default:
                return false;
            }
        }
        if (n + 1 >= cap)
            return false;
        out[n++] = (char)c;
    }
    if (*p != '"')
        return false;
    out[n] = '\0';
    return true;
}

struct jerr {
    char *buf;
    size_t len;
};

static int jfail(struct jerr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jfail(struct jerr *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (e->len)
        vsnprintf(e->buf, e->len, fmt, ap);
    va_end(ap);
    return -1;
}

static int get_u64(const char *obj, const char *key, uint64_t *out, struct jerr *e)
{
    const char *v = jget(obj, key);
    if (!v)
        return jfail(e, "no \"%s\"", key);
    if (!jparse_u64(v, out, NULL))
        return jfail(e, "\"%s\" is not an unsigned integer", key);
    return 0;
}

static int get_double(const char *obj, const char *key, double *out, struct jerr *e)
{
    const char *v = jget(obj, key);
    if (!v)
        return jfail(e, "no \"%s\"", key);
    if (!jparse_double(v, out) || *out < 0)
        return jfail(e, "\"%s\" is not a number >= 0", key);
    return 0;
}

static int get_string(const char *obj, const char *key, char *out, size_t cap, struct jerr *e)
{
    const char *v = jget(obj, key);
    if (!v)
        return jfail(e, "no \"%s\"", key);
    if (!jparse_string(v, out, cap))
        return jfail(e, "\"%s\" is not a string (of at most %zu bytes)", key, cap - 1);
    return 0;
}

/* The histogram object at obj into h, checked: this layout, buckets in ascending order,
 * each a bucket's low value with a count > 0, adding up to count, within [min, max]. */
static int parse_hist(const char *obj, struct bench_hist *h, const char *what, struct jerr *e)
{
    bench_hist_init(h);
    if (!obj)
        return jfail(e, "no \"%s\"", what);
    char unit[8] = "";
    uint64_t sub = 0, count = 0, min = 0, max = 0, sum = 0;
    if (get_string(obj, "unit", unit, sizeof(unit), e) < 0 ||
        get_u64(obj, "sub_buckets", &sub, e) < 0 || get_u64(obj, "count", &count, e) < 0 ||
        get_u64(obj, "min", &min, e) < 0 || get_u64(obj, "max", &max, e) < 0 ||
        get_u64(obj, "sum", &sum, e) < 0)
        return -1;
    if (strcmp(unit, "ns") != 0 || sub != BENCH_HIST_HALF)
        return jfail(e, "%s: not this histogram layout (unit ns, %u sub-buckets)", what,
                     BENCH_HIST_HALF);
    const char *p = jget(obj, "buckets");
    if (!p || *(p = jws(p)) != '[')
        return jfail(e, "%s: no bucket list", what);
    p = jws(p + 1);
    uint64_t seen = 0;
    long first = -1, last = -1;
    while (*p == '[') {
        uint64_t low = 0, n = 0;
        if (!jparse_u64(p + 1, &low, &p) || *(p = jws(p)) != ',' || !jparse_u64(p + 1, &n, &p) ||
            *(p = jws(p)) != ']')
            return jfail(e, "%s: a bucket is not [low, count]", what);
        unsigned idx = bench_hist_index(low);
        if (bench_hist_bucket_low(idx) != low || (long)idx <= last || n == 0)
            return jfail(e, "%s: bucket %llu is not a bucket of this layout in order", what,
                         ull(low));
        if (seen + n < seen)
            return jfail(e, "%s: counts overflow", what);
        h->buckets[idx] = n;
        seen += n;
        if (first < 0)
            first = (long)idx;
        last = (long)idx;
        p = jws(p + 1);
        if (*p == ',')
            p = jws(p + 1);
        else
            break;
    }
    if (*p != ']')
        return jfail(e, "%s: the bucket list is malformed", what);
    if (seen != count)
        return jfail(e, "%s: buckets add up to %llu, not count %llu", what, ull(seen), ull(count));
    if (count) {
        /* min lies in the first non-empty bucket and max in the last. */
        if (min > max || (long)bench_hist_index(min) != first ||
            (long)bench_hist_index(max) != last)
            return jfail(e, "%s: min or max outside the buckets", what);
        h->min = min;
        h->max = max;
    }
    h->count = count;
    h->sum = sum;
    return 0;
}

/* The "intervals" list at arr into run->points, checked: objects in time order (never
 * earlier than the one before) whose messages add up to the run's. */
static int parse_points(const char *arr, struct bench_run *run, struct jerr *e)
{
    const char *p = jws(arr);
    if (*p != '[')
        return jfail(e, "intervals is not a list");
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    p = jws(p + 1);
    while (*p != ']') {
        const char *end = *p == '{' ? jskip(p, 1) : NULL;
        if (!end)
            return jfail(e, "interval %zu is not an object", n);
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct bench_point *q = realloc(run->points, ncap * sizeof(*q));
            if (!q)
                return jfail(e, "out of memory");
            run->points = q;
            cap = ncap;
        }
        struct bench_point *pt = &run->points[n];
        memset(pt, 0, sizeof(*pt));
        double p50 = 0, p99 = 0, max = 0;
        if (get_double(p, "t", &pt->t, e) < 0 || get_double(p, "dur", &pt->dur, e) < 0 ||
            get_u64(p, "msgs", &pt->msgs, e) < 0 || get_u64(p, "errors", &pt->errors, e) < 0 ||
            get_u64(p, "late", &pt->late, e) < 0 || get_double(p, "p50_us", &p50, e) < 0 ||
            get_double(p, "p99_us", &p99, e) < 0 || get_double(p, "max_us", &max, e) < 0)
            return -1;
        if (jget(p, "handshakes") && get_u64(p, "handshakes", &pt->handshakes, e) < 0)
            return -1;
        /* Equal is in order: a run stopped early can end a few microseconds after a second,
         * and its last interval's end then prints as that second's. */
        if (n > 0 && pt->t < run->points[n - 1].t)
            return jfail(e, "intervals are not in time order");
        if (p50 > 1e12 || p99 > 1e12 || max > 1e12)
            return jfail(e, "an interval's latency is out of range");
        pt->p50_ns = (uint64_t)(p50 * 1000.0 + 0.5);
        pt->p99_ns = (uint64_t)(p99 * 1000.0 + 0.5);
        pt->max_ns = (uint64_t)(max * 1000.0 + 0.5);
        if (total + pt->msgs < total)
            return jfail(e, "intervals: counts overflow");
        total += pt->msgs;
        n++;
        p = jws(end);
        if (*p == ',')
            p = jws(p + 1);
        else if (*p != ']')
            return jfail(e, "intervals are malformed");
    }
    if (total != run->r.msgs)
        return jfail(e, "intervals add up to %llu messages, not msgs %llu", ull(total),
                     ull(run->r.msgs));
    run->r.npoints = n;
    return 0;
}

static void run_point(struct bench_run *run)
{
    struct bench_result *r = &run->r;
    r->label = run->label[0] ? run->label : NULL;
    r->points = run->points;
    r->mode = run->mode;
    r->proto = run->proto;
    r->transport = run->transport;
    r->host = run->host;
    r->payload = run->payload;
    r->noise_name = run->noise_name[0] ? run->noise_name : NULL;
    r->hist = run->hist;
    r->hs_hist = run->hs_hist;
    r->conn_msgs = run->conn_msgs;
}

void bench_run_free(struct bench_run *run)
{
    free(run->hist);
    free(run->hs_hist);
    free(run->conn_msgs);
    free(run->points);
    memset(run, 0, sizeof(*run));
}

int bench_run_parse(struct bench_run *run, const char *text, char *err, size_t errlen)
{
    struct jerr e = {err, errlen};
    memset(run, 0, sizeof(*run));
    const char *end = jskip(text, 0);
    if (!end || *jws(text) != '{')
        return jfail(&e, "not a JSON object");
    if (*jws(end))
        return jfail(&e, "text after the JSON object");
    char schema[32] = "";
    if (get_string(text, "schema", schema, sizeof(schema), &e) < 0)
        return -1;
    if (strcmp(schema, "secho-bench/1") != 0)
        return jfail(&e, "schema \"%s\" is not secho-bench/1", schema);
    struct bench_result *r = &run->r;
    uint64_t port = 0, threads = 0, pipeline = 0, size = 0;
    if (get_string(text, "mode", run->mode, sizeof(run->mode), &e) < 0 ||
        get_string(text, "proto", run->proto, sizeof(run->proto), &e) < 0 ||
        get_string(text, "transport", run->transport, sizeof(run->transport), &e) < 0 ||
        get_string(text, "host", run->host, sizeof(run->host), &e) < 0 ||
        get_string(text, "payload", run->payload, sizeof(run->payload), &e) < 0 ||
        get_u64(text, "port", &port, &e) < 0 ||
        get_u64(text, "connections", &r->connections, &e) < 0 ||
        get_u64(text, "threads", &threads, &e) < 0 ||
        get_u64(text, "pipeline", &pipeline, &e) < 0 || get_u64(text, "size", &size, &e) < 0 ||
        get_double(text, "rate", &r->rate, &e) < 0 || get_u64(text, "runs", &r->runs, &e) < 0 ||
        get_double(text, "start_unix", &r->start_unix, &e) < 0 ||
        get_double(text, "start_spread_s", &r->start_spread_s, &e) < 0 ||
        get_double(text, "duration", &r->duration_s, &e) < 0 ||
        get_double(text, "warmup", &r->warmup_s, &e) < 0 ||
        get_u64(text, "msgs", &r->msgs, &e) < 0 ||
        get_double(text, "msgs_per_s", &r->msgs_per_s, &e) < 0 ||
        get_u64(text, "mismatch", &r->mismatch, &e) < 0 ||
        get_u64(text, "lost", &r->lost, &e) < 0 ||
        get_u64(text, "conn_errors", &r->conn_errors, &e) < 0 ||
        get_u64(text, "late", &r->late, &e) < 0 || get_u64(text, "unsent", &r->unsent, &e) < 0)
        return -1;
    if (jget(text, "noise_name") &&
        get_string(text, "noise_name", run->noise_name, sizeof(run->noise_name), &e) < 0)
        return -1;
    if (jget(text, "label") && get_string(text, "label", run->label, sizeof(run->label), &e) < 0)
        return -1;
    if (port > 65535 || threads > UINT32_MAX || pipeline > UINT32_MAX || size > SIZE_MAX ||
        r->runs == 0)
        return jfail(&e, "port, threads, pipeline, size or runs out of range");
    r->port = (unsigned)port;
    r->threads = (unsigned)threads;
    r->pipeline = (unsigned)pipeline;
    r->size = (size_t)size;
    double lag_us = 0, slowest_us = 0;
    if (get_double(text, "lag_max_us", &lag_us, &e) < 0)
        return -1;
    r->lag_max_ns = (uint64_t)(lag_us * 1000.0 + 0.5);
    const char *fair = jget(text, "fairness");
    const char *sc;
    long long slowest_conn;
    if (!fair || get_double(fair, "slowest_p99_us", &slowest_us, &e) < 0 ||
        !(sc = jget(fair, "slowest_conn")))
        return jfail(&e, "no fairness figures");
    char *scend;
    slowest_conn = strtoll(jws(sc), &scend, 10);
    if (scend == jws(sc) || slowest_conn < -1 ||
        (slowest_conn >= 0 && (uint64_t)slowest_conn >= r->connections))
        return jfail(&e, "fairness: slowest_conn out of range");
    r->slowest_p99_ns = (uint64_t)(slowest_us * 1000.0 + 0.5);
    r->slowest_conn = slowest_conn;

    if (!(run->hist = malloc(sizeof(*run->hist))))
        return jfail(&e, "out of memory");
    if (parse_hist(jget(text, "hist"), run->hist, "hist", &e) < 0)
        return -1;
    if (run->hist->count != r->msgs)
        return jfail(&e, "msgs %llu differs from the histogram's count %llu", ull(r->msgs),
                     ull(run->hist->count));
    const char *hs = jget(text, "handshake");
    if (hs && strncmp(jws(hs), "null", 4) != 0) {
        if (!(run->hs_hist = malloc(sizeof(*run->hs_hist))))
            return jfail(&e, "out of memory");
        if (get_u64(hs, "count", &r->handshakes, &e) < 0 ||
            get_double(hs, "per_s", &r->handshakes_per_s, &e) < 0 ||
            parse_hist(jget(hs, "hist"), run->hs_hist, "handshake hist", &e) < 0)
            return -1;
        if (run->hs_hist->count != r->handshakes)
            return jfail(&e, "handshake count differs from its histogram's");
    }
    if (strcmp(run->mode, "handshakes") == 0 && !run->hs_hist)
        return jfail(&e, "a handshakes run without handshake figures");

    const char *pc = jget(text, "per_conn_msgs");
    if (!pc || *(pc = jws(pc)) != '[')
        return jfail(&e, "no per_conn_msgs");
    if (r->connections > (1u << 26))
        return jfail(&e, "connections out of range");
    if (!(run->conn_msgs = calloc(r->connections ? r->connections : 1, sizeof(uint64_t))))
        return jfail(&e, "out of memory");
    uint64_t n = 0, total = 0;
    const char *p = jws(pc + 1);
    while (*p != ']') {
        uint64_t v;
        if (n == r->connections || !jparse_u64(p, &v, &p))
            return jfail(&e, "per_conn_msgs is not %llu counts", ull(r->connections));
        run->conn_msgs[n++] = v;
        total += v;
        p = jws(p);
        if (*p == ',')
            p = jws(p + 1);
        else if (*p != ']')
            return jfail(&e, "per_conn_msgs is malformed");
    }
    if (n != r->connections || total != r->msgs)
        return jfail(&e, "per_conn_msgs has %llu counts adding up to %llu, not %llu and %llu",
                     ull(n), ull(total), ull(r->connections), ull(r->msgs));
    const char *iv = jget(text, "intervals");
    if (iv && parse_points(iv, run, &e) < 0)
        return -1;
    run_point(run);
    return 0;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Second i of the merged window is second i of each run's (they started together, within
 * start_spread_s): counts add; per-second percentiles cannot be added without the
 * histograms, so the highest stands for them. dst->points has room for src's. */
static void merge_points(struct bench_run *dst, const struct bench_run *src)
{
    struct bench_result *a = &dst->r;
    const struct bench_result *b = &src->r;
    if (!dst->points || !src->points) {
        free(dst->points);
        dst->points = NULL;
        a->npoints = 0;
        return;
    }
    for (size_t i = 0; i < b->npoints; i++) {
        struct bench_point *d = &dst->points[i];
        const struct bench_point *s = &b->points[i];
        if (i >= a->npoints) {
            *d = *s;
            continue;
        }
        if (s->t > d->t)
            d->t = s->t;
        if (s->dur > d->dur)
            d->dur = s->dur;
        d->msgs += s->msgs;
        d->errors += s->errors;
        d->late += s->late;
        d->handshakes += s->handshakes;
        d->p50_ns = max_u64(d->p50_ns, s->p50_ns);
        d->p99_ns = max_u64(d->p99_ns, s->p99_ns);
        d->max_ns = max_u64(d->max_ns, s->max_ns);
    }
    if (b->npoints > a->npoints)
        a->npoints = b->npoints;
}

int bench_run_merge(struct bench_run *dst, const struct bench_run *src, char *err, size_t errlen)
{
    struct jerr e = {err, errlen};
    struct bench_result *a = &dst->r;
    const struct bench_result *b = &src->r;
    const char *what = strcmp(dst->mode, src->mode)               ? "mode"
                       : strcmp(dst->proto, src->proto)           ? "proto"
                       : strcmp(dst->transport, src->transport)   ? "transport"
                       : strcmp(dst->payload, src->payload)       ? "payload"
                       : strcmp(dst->noise_name, src->noise_name) ? "noise_name"
                       : a->size != b->size                       ? "size"
                       : a->pipeline != b->pipeline               ? "pipeline"
                                                                  : NULL;
    if (what)
        return jfail(&e, "cannot merge runs whose %s differs", what);
    if ((dst->hs_hist == NULL) != (src->hs_hist == NULL))
        return jfail(&e, "cannot merge runs with and without handshake figures");
    if (dst->points && src->points && b->npoints > a->npoints) {
        struct bench_point *q = realloc(dst->points, b->npoints * sizeof(*q));
        if (!q)
            return jfail(&e, "out of memory");
        memset(q + a->npoints, 0, (b->npoints - a->npoints) * sizeof(*q));
        dst->points = q;
    }
    uint64_t nconn = a->connections + b->connections;
    uint64_t *cm = realloc(dst->conn_msgs, (nconn ? nconn : 1) * sizeof(uint64_t));
    if (!cm)
        return jfail(&e, "out of memory");
    memcpy(cm + a->connections, src->conn_msgs, b->connections * sizeof(uint64_t));
    dst->conn_msgs = cm;
    if (b->slowest_conn >= 0 && (a->slowest_conn < 0 || b->slowest_p99_ns > a->slowest_p99_ns)) {
        a->slowest_p99_ns = b->slowest_p99_ns;
        a->slowest_conn = (int64_t)a->connections + b->slowest_conn;
    }
    a->connections = nconn;
    if (strcmp(dst->host, src->host) != 0)
        snprintf(dst->host, sizeof(dst->host), "*");
    if (a->port != b->port)
        a->port = 0;
    a->threads += b->threads;
    a->rate += b->rate;
    double first = a->start_unix < b->start_unix ? a->start_unix : b->start_unix;
    double la = a->start_unix + a->start_spread_s, lb = b->start_unix + b->start_spread_s;
    a->start_spread_s = (la > lb ? la : lb) - first;
    a->start_unix = first;
    a->runs += b->runs;
    if (b->duration_s > a->duration_s)
        a->duration_s = b->duration_s;
    if (b->warmup_s > a->warmup_s)
        a->warmup_s = b->warmup_s;
    a->msgs_per_s += b->msgs_per_s;
    a->msgs += b->msgs;
    a->mismatch += b->mismatch;
    a->lost += b->lost;
    a->conn_errors += b->conn_errors;
    a->late += b->late;
    a->unsent += b->unsent;
    if (b->lag_max_ns > a->lag_max_ns)
        a->lag_max_ns = b->lag_max_ns;
    merge_points(dst, src);
    bench_hist_merge(dst->hist, src->hist);
    if (dst->hs_hist) {
        bench_hist_merge(dst->hs_hist, src->hs_hist);
        a->handshakes += b->handshakes;
        a->handshakes_per_s += b->handshakes_per_s;
    }
    run_point(dst);
    return 0;
}
