/* SPDX-License-Identifier: MIT */
/* Pure parts of `secho bench`: latency histogram, payload generator, result formatting. */
#ifndef SECHO_BENCH_H
#define SECHO_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Latency histograms, log-linear in the manner of HdrHistogram. With `shift` s and H = 2^s,
 * values below 2H have a bucket each; above, every power-of-two range [2^k, 2^(k+1)) is
 * split into H equal buckets, so a bucket is at most 1/H of its values wide. Values from
 * 2^top on share the last bucket (min and max stay exact). Recording costs one
 * count-leading-zeros and one add; two histograms of one layout merge exactly by adding
 * their buckets. Units are the caller's: bench records nanoseconds.
 *
 * struct bench_hist, the run's histogram: s = 10 (1024 buckets per power of two, so every
 * value from 2048 ns on lies in a bucket at most 0.098 % wide: three significant digits from
 * 1 us to 18 minutes, exact below 2 us), top = 40 (2^40 ns = 1099.5 s); 31,744 buckets,
 * 248 KiB, fixed.
 */
#define BENCH_HIST_SHIFT   10
#define BENCH_HIST_HALF    (1U << BENCH_HIST_SHIFT) /* 1024 */
#define BENCH_HIST_TOP     40
#define BENCH_HIST_BUCKETS ((BENCH_HIST_TOP + 1 - BENCH_HIST_SHIFT) * BENCH_HIST_HALF)

struct bench_hist {
    uint64_t count;
    uint64_t min, max; /* UINT64_MAX and 0 while empty */
    uint64_t sum;      /* of every value, saturating at UINT64_MAX */
    uint64_t buckets[BENCH_HIST_BUCKETS];
};

/* Empties h (caller memory). */
void bench_hist_init(struct bench_hist *h);
/* Adds one value. Never fails. */
void bench_hist_record(struct bench_hist *h, uint64_t v);
/* Adds every value of src to dst: afterwards dst is exactly the histogram of both. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/*
 * The value at percentile `pct` (0..100), nearest-rank: the bucket holding the value of rank
 * ceil(pct * count / 100) (at least 1; a fraction under 1e-9 of the rank does not round up)
 * in ascending order, reported as that bucket's middle
 * (low + (high - low) / 2) clamped to [min, max]. pct <= 0 gives min, pct >= 100 max.
 * Returns 0 for an empty histogram. A reader of the JSON histogram (docs/BENCH.md) gets the
 * same figures by the same rule.
 */
uint64_t bench_hist_percentile(const struct bench_hist *h, double pct);
/* The values at percentiles pct[0..n), which MUST be ascending, in one pass over the
 * buckets: out[i] is bench_hist_percentile(h, pct[i]). */
void bench_hist_percentiles(const struct bench_hist *h, const double *pct, size_t n, uint64_t *out);
/* Arithmetic mean (sum / count); 0 for an empty histogram. */
double bench_hist_mean(const struct bench_hist *h);

/* Bucket index of v and the lowest and highest values sharing that bucket. */
unsigned bench_hist_index(uint64_t v);
uint64_t bench_hist_bucket_low(unsigned idx);
uint64_t bench_hist_bucket_high(unsigned idx);

/*
 * A small histogram for one connection (the fairness figures' slowest-connection p99):
 * s = 4 (16 buckets per power of two: a bucket is at most 6.25 % wide, so a percentile is
 * within 3.2 %), top = 37 (137 s); 544 32-bit buckets, 2.2 KiB. A bucket that is full
 * (2^32 - 1) takes no more values, and neither does the count.
 */
#define BENCH_CHIST_SHIFT   4
#define BENCH_CHIST_TOP     37
#define BENCH_CHIST_BUCKETS ((BENCH_CHIST_TOP + 1 - BENCH_CHIST_SHIFT) << BENCH_CHIST_SHIFT)

struct bench_chist {
    uint64_t count;
    uint64_t min, max;
    uint32_t buckets[BENCH_CHIST_BUCKETS];
};

void bench_chist_init(struct bench_chist *h);
void bench_chist_record(struct bench_chist *h, uint64_t v);
/* As bench_hist_percentile, to this histogram's precision. */
uint64_t bench_chist_percentile(const struct bench_chist *h, double pct);

/*
 * The echo verifier: the messages one connection has in flight, oldest first, with their
 * bytes, and the check of what comes back against them. Sans-IO and clock-free: the caller
 * says when a message was due and sent, hands over echoed bytes as they arrive, and is told
 * (the `done` callback, inside the call) of each echo that is complete and whether every
 * byte matched. Three ways an echo comes back:
 *   stream   plain TCP: one byte stream, in order; message boundaries are the sizes.
 *   record   record protocols: each message is one record, decoded in fragments (first ..
 *            last); a first fragment starts the oldest message's echo over.
 *   datagram UDP: whole datagrams that may be lost, duplicated or reordered; a datagram
 *            matches the oldest in-flight message with exactly its bytes.
 */
struct bench_slot {
    uint64_t due_ns;  /* when the message was due (open loop: its schedule; else sent_ns) */
    uint64_t sent_ns; /* when it was handed to the transport */
    size_t got;       /* bytes of its echo so far (stream, record) */
    bool bad;         /* a byte differed, or the echo was too long (stream, record) */
    bool done;        /* datagram: echoed, ahead of an older message still in flight */
};

struct bench_vfy {
    size_t size;              /* every message's length */
    unsigned depth;           /* the most in flight */
    uint8_t *payload;         /* depth * size: slot i's bytes at i * size */
    struct bench_slot *slots; /* ring of depth */
    unsigned head, inflight;  /* the oldest, and how many from it */
};

/* One echo is complete: `ok` if it was exactly the message's bytes. `s` is valid during
 * the call only. */
typedef void (*bench_vfy_done)(void *arg, const struct bench_slot *s, bool ok);

/* Sets up an empty verifier for messages of size >= 1 bytes, at most depth >= 1 in flight.
 * Returns 0 or -ENOMEM; bench_vfy_free is owed either way. */
int bench_vfy_init(struct bench_vfy *v, size_t size, unsigned depth);
/* Frees what init allocated; accepts a zeroed or failed verifier. */
void bench_vfy_free(struct bench_vfy *v);
/* Forgets every message in flight (a new connection). */
void bench_vfy_clear(struct bench_vfy *v);
/* Takes a slot for a new message: returns its `size` bytes, for the caller to fill before
 * sending (they stay put while the message is in flight), or NULL while depth are. */
uint8_t *bench_vfy_push(struct bench_vfy *v, uint64_t due_ns, uint64_t sent_ns);
/* The oldest message in flight that has not been echoed, or NULL. */
const struct bench_slot *bench_vfy_oldest(const struct bench_vfy *v);
/* Stream: n echoed bytes, compared in order; calls done for each echo completed. Returns
 * how many bytes came with nothing in flight (the caller counts them as one mismatch):
 * those are dropped. */
size_t bench_vfy_stream(struct bench_vfy *v, const uint8_t *p, size_t n, bench_vfy_done done,
                        void *arg);
/* Record: one decoded fragment (first/last as in struct proto_msg) of the oldest message's
 * echo; done is called at `last`. Returns 1 for a last fragment that came with nothing in
 * flight (the caller counts a mismatch), else 0. */
int bench_vfy_record(struct bench_vfy *v, const uint8_t *p, size_t n, bool first, bool last,
                     bench_vfy_done done, void *arg);
/* Datagram: if the oldest in-flight message not yet echoed with exactly these bytes exists,
 * marks it echoed, calls done (ok) and returns true; otherwise (corrupt, duplicate, late)
 * changes nothing and returns false (the caller counts a mismatch). */
bool bench_vfy_dgram(struct bench_vfy *v, const uint8_t *p, size_t n, bench_vfy_done done,
                     void *arg);
/* Datagram: gives up on every message not echoed that was sent before `before_ns` and is
 * not younger than a message still awaited (the ring is in send order); returns how many
 * (lost). */
unsigned bench_vfy_expire(struct bench_vfy *v, uint64_t before_ns);

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

/* What a message is made of (bench_fill). */
enum bench_payload {
    BENCH_BYTES, /* random bytes (record and datagram protocols) */
    BENCH_LINE,  /* random bytes with no '\n' inside, ending in '\n' (stream servers) */
    BENCH_TEXT,  /* printable ASCII (letters, digits, '+', '/') ending in '\n': valid UTF-8
                  * for servers that decode it, such as the notebook's Python ones */
};

/* Fills p[0..n) with a fresh message of that kind. Whatever the kind, the message is never
 * a command a server would act on (`exit`, `shutdown`, with or without CR/LF). */
void bench_fill(uint64_t *state, uint8_t *p, size_t n, enum bench_payload kind);

/* A growing text buffer. `failed` is set (and the text left as it was) when memory ran
 * out; `p` is NUL-terminated whenever len > 0. */
struct bench_str {
    char *p;
    size_t len, cap;
    bool failed;
};
void bench_str_printf(struct bench_str *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void bench_str_free(struct bench_str *s);

/* Fairness of the per-connection message counts x[0..n): min, the nearest-rank median
 * (rank ceil(n/2) in ascending order) and max, and Jain's index (sum x)^2 / (n sum x^2),
 * from 1/n (one connection got everything) to 1 (all equal); 0 when nothing was counted. */
struct bench_fair {
    uint64_t min, median, max;
    double jain;
};
/* Returns 0, or -ENOMEM (it sorts a copy). n may be 0 (all zero). */
int bench_fairness(const uint64_t *x, size_t n, struct bench_fair *f);

/* One second of the measured window as the result carries it (the JSON's "intervals"; the
 * same figures as an --interval-json line). Latencies in nanoseconds. */
struct bench_point {
    double t;   /* seconds from the start of the window to the interval's end */
    double dur; /* the interval's length (1 s, the last one shorter) */
    uint64_t msgs, errors, late, handshakes;
    uint64_t p50_ns, p99_ns, max_ns; /* merged: the highest of the runs' (an upper bound) */
};

/* The figures a run reports, as the JSON object and the summary give them (the schema is
 * in docs/BENCH.md). Latencies in nanoseconds; pointers borrowed. */
struct bench_result {
    const char *label;     /* --label: the run's name on --compare pages; NULL: none */
    const char *mode;      /* "closed", "open" (--rate) or "handshakes" */
    const char *proto;     /* "plain", "secure", ... */
    const char *transport; /* "tcp" or "udp" */
    const char *host;
    const char *payload;    /* "random" or "text" */
    const char *noise_name; /* secure: the suite offered; NULL otherwise */
    unsigned port;
    uint64_t connections; /* merged: the sum */
    unsigned threads, pipeline;
    size_t size;
    double rate;                 /* open loop: messages/s offered (merged: the sum); else 0 */
    double duration_s, warmup_s; /* measured window, and warm-up before it (merged: max) */
    double start_unix;           /* wall-clock start of the measured window (merged: first) */
    double start_spread_s;       /* merged: last start - first start; else 0 */
    uint64_t runs;               /* 1, or how many runs were merged */
    double msgs_per_s;           /* msgs / duration_s (merged: the sum of the runs') */
    uint64_t msgs;               /* echoes completed and verified in the window */
    uint64_t mismatch;           /* echoes whose bytes differ from what was sent */
    uint64_t lost;               /* UDP echoes not back within the timeout */
    uint64_t conn_errors;        /* connections (or handshake cycles) that failed */
    uint64_t late;               /* open loop: messages due in the window that left more than
                                  * BENCH_LATE_NS after they were due, or never (unsent) */
    uint64_t unsent;             /* open loop: of those, the ones still unsent at the end */
    uint64_t lag_max_ns;         /* open loop: the longest a sent message left after its time */
    const struct bench_hist *hist;
    const uint64_t *conn_msgs; /* connections entries: measured echoes per connection */
    uint64_t slowest_p99_ns;   /* the highest per-connection p99 */
    int64_t slowest_conn;      /* which connection (index into conn_msgs); -1: none */
    /* handshakes mode */
    uint64_t handshakes; /* completed in the window */
    double handshakes_per_s;
    const struct bench_hist *hs_hist; /* NULL outside handshakes mode */
    /* every second of the window in order (the JSON's "intervals"); NULL, 0: not recorded */
    const struct bench_point *points;
    size_t npoints;
};

/* A message counts as late once it leaves more than this after it was due. */
#define BENCH_LATE_NS 1000000u

/* Total errors: mismatch + lost + conn_errors. */
uint64_t bench_errors(const struct bench_result *r);
/* Appends the result as one JSON object on one line, with '\n'. */
void bench_format_json(const struct bench_result *r, struct bench_str *out);
/* Appends the human summary (several lines). */
void bench_format_summary(const struct bench_result *r, struct bench_str *out);
/* Appends a histogram as the JSON object the result carries (docs/BENCH.md). */
void bench_hist_json(const struct bench_hist *h, struct bench_str *out);

/* One interval line of --interval-json (latencies in ns). */
struct bench_interval {
    double t;   /* seconds from the start of the measured window to the interval's end */
    double dur; /* the interval's length (1 s, the last one shorter) */
    double unix_end;
    uint64_t msgs, bytes, errors, late, handshakes;
    const struct bench_hist *hist, *hs_hist; /* hs_hist: handshakes mode, else NULL */
};
void bench_format_interval(const struct bench_interval *iv, struct bench_str *out);

/* The longest --label, in bytes. */
#define BENCH_LABEL_MAX 200

/* The point of an interval's figures (as bench_format_interval writes them). */
struct bench_point bench_interval_point(const struct bench_interval *iv);

/*
 * A result with storage of its own: read from bench's JSON (bench_run_parse) or several
 * merged (bench_run_merge). r's pointers point into it.
 */
struct bench_run {
    struct bench_result r;
    char mode[16], proto[32], transport[8], host[256], payload[8], noise_name[64];
    char label[BENCH_LABEL_MAX + 1];
    struct bench_hist *hist, *hs_hist;
    uint64_t *conn_msgs;
    struct bench_point *points;
};
/* Parses one JSON object as bench_format_json writes it (text NUL-terminated), checking
 * it is whole and consistent: the histogram's buckets are buckets of this layout and add
 * up to msgs, the per-connection counts add up to msgs, and so do the intervals' (which,
 * like the label, may be absent). Returns 0, or -1 with the reason
 * in err. bench_run_free is owed either way. */
int bench_run_parse(struct bench_run *run, const char *text, char *err, size_t errlen);
/* Adds src to dst exactly: histograms, counts and rates add, connections are put side by
 * side, maxima and the slowest connection are taken over both, start and spread cover
 * both; intervals add second by second (kept only when both runs have them). Runs of another
 * mode, protocol, transport, size, pipeline or payload are refused (-1 with the reason in
 * err; dst unchanged); -ENOMEM likewise. Returns 0. */
int bench_run_merge(struct bench_run *dst, const struct bench_run *src, char *err, size_t errlen);
void bench_run_free(struct bench_run *run);

#endif
