/* SPDX-License-Identifier: MIT */
/* libFuzzer target: bench's echo verifier (bench_vfy_*) against a reference model written
 * the plain way (a byte-by-byte queue, whole-buffer comparisons). The input's header picks
 * the mode (stream, record, datagram), the message size and the depth; then each op byte
 * pushes a message, feeds a correct or a corrupted echo (split as the input says, fragments
 * flagged first/last as it says), feeds raw input bytes, or expires datagrams. After every
 * op the verifier's outcomes (each `done` with its ok, the stray counts, what is in flight)
 * must equal the model's; under ASan any overread or leak shows up. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXSIZE  64
#define MAXDEPTH 8

enum mode { STREAM, RECORD, DGRAM };

/* The model: each in-flight message's bytes, what its echo has been so far, its times. */
struct mmsg {
    uint8_t want[MAXSIZE];
    uint8_t got[MAXSIZE + 1];
    size_t ngot;
    bool over; /* the echo ran past the message's length */
    bool done; /* datagram */
    uint64_t sent;
};

static struct {
    enum mode mode;
    size_t size;
    unsigned depth;
    struct mmsg q[MAXDEPTH]; /* oldest first, n of them */
    unsigned n;
    /* What the verifier's callback reported, and what the model expects it to. */
    unsigned ok, bad, want_ok, want_bad;
    uint64_t last_sent, want_last_sent;
    bool saw_cb;
} m;

static const uint8_t *in;
static size_t inlen;

static unsigned next_byte(void)
{
    if (!inlen)
        return 0;
    inlen--;
    return *in++;
}

static void on_done(void *arg, const struct bench_slot *s, bool ok)
{
    (void)arg;
    if (ok)
        m.ok++;
    else
        m.bad++;
    m.last_sent = s->sent_ns;
    m.saw_cb = true;
}

static void model_pop(unsigned i)
{
    memmove(&m.q[i], &m.q[i + 1], (m.n - i - 1) * sizeof(m.q[0]));
    m.n--;
}

/* The model's completion of message i, as the verifier must report it. */
static void model_complete(unsigned i, bool ok)
{
    if (ok)
        m.want_ok++;
    else
        m.want_bad++;
    m.want_last_sent = m.q[i].sent;
    model_pop(i);
}

/* Stream: bytes go to the oldest message until it has its length; the rest is stray. */
static size_t model_stream(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (m.n == 0)
            return n - i;
        struct mmsg *q = &m.q[0];
        q->got[q->ngot++] = p[i];
        if (q->ngot == m.size)
            model_complete(0, memcmp(q->got, q->want, m.size) == 0);
    }
    return 0;
}

/* Record: the echo is the bytes since the message's push or its last first fragment. */
static int model_record(const uint8_t *p, size_t n, bool first, bool last)
{
    if (m.n == 0)
        return last ? 1 : 0;
    struct mmsg *q = &m.q[0];
    if (first) {
        q->ngot = 0;
        q->over = false;
    }
    for (size_t i = 0; i < n; i++) {
        if (q->ngot == m.size)
            q->over = true;
        else
            q->got[q->ngot++] = p[i];
    }
    if (last)
        model_complete(0, !q->over && q->ngot == m.size && memcmp(q->got, q->want, m.size) == 0);
    return 0;
}

/* Datagram: the oldest message not yet echoed with exactly these bytes. */
static bool model_dgram(const uint8_t *p, size_t n)
{
    if (n != m.size)
        return false;
    for (unsigned i = 0; i < m.n; i++)
        if (!m.q[i].done && memcmp(m.q[i].want, p, n) == 0) {
            m.q[i].done = true;
            m.want_ok++;
            m.want_last_sent = m.q[i].sent;
            while (m.n && m.q[0].done)
                model_pop(0);
            return true;
        }
    return false;
}

static unsigned model_expire(uint64_t before)
{
    unsigned lost = 0;
    while (m.n && m.q[0].done)
        model_pop(0);
    while (m.n && m.q[0].sent < before) {
        model_pop(0);
        lost++;
        while (m.n && m.q[0].done)
            model_pop(0);
    }
    return lost;
}

/* The echo of the in-flight messages from message `from` on, as the stream or the records
 * would carry it, into out (at most cap bytes); returns the length. A stream goes on where
 * the oldest message's echo stopped. */
static size_t expected_tail(unsigned from, uint8_t *out, size_t cap)
{
    size_t len = 0;
    for (unsigned i = from; i < m.n && len + m.size <= cap; i++) {
        size_t skip = m.mode == STREAM && i == 0 ? m.q[0].ngot : 0;
        memcpy(out + len, m.q[i].want + skip, m.size - skip);
        len += m.size - skip;
    }
    return len;
}

static void check_same(const struct bench_vfy *v)
{
    if (m.ok != m.want_ok || m.bad != m.want_bad)
        abort();
    if (m.saw_cb && m.last_sent != m.want_last_sent)
        abort();
    if (v->inflight > v->depth)
        abort();
    /* The datagram ring keeps echoed messages behind an awaited older one; the model
     * drops them the same way, so the counts agree in every mode. */
    if (v->inflight != m.n)
        abort();
    const struct bench_slot *o = bench_vfy_oldest(v);
    unsigned first_awaited = 0;
    while (first_awaited < m.n && m.q[first_awaited].done)
        first_awaited++;
    if ((o == NULL) != (first_awaited == m.n))
        abort();
    if (o && o->sent_ns != m.q[first_awaited].sent)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    memset(&m, 0, sizeof(m));
    in = data;
    inlen = size;
    m.mode = (enum mode)(next_byte() % 3);
    m.size = 1 + next_byte() % MAXSIZE;
    m.depth = 1 + next_byte() % MAXDEPTH;
    struct bench_vfy v;
    if (bench_vfy_init(&v, m.size, m.depth) < 0)
        abort();
    uint64_t rng = 0x9e3779b97f4a7c15ULL, clock = 0;
    uint8_t buf[MAXSIZE * MAXDEPTH + 256];
    while (inlen) {
        unsigned op = next_byte();
        clock += op & 7;
        switch (op >> 5) {
        case 0:
        case 1: { /* a new message */
            uint8_t *p = bench_vfy_push(&v, clock, clock);
            if ((p == NULL) != (m.n == m.depth))
                abort();
            if (!p)
                break;
            /* Mostly random bytes; sometimes a copy of an in-flight message (datagram
             * duplicates), sometimes a line (stream). */
            if (m.n && (op & 0x10))
                memcpy(p, m.q[next_byte() % m.n].want, m.size);
            else
                bench_fill(&rng, p, m.size, op & 8 ? BENCH_LINE : BENCH_BYTES);
            struct mmsg *q = &m.q[m.n++];
            memset(q, 0, sizeof(*q));
            memcpy(q->want, p, m.size);
            q->sent = clock;
            break;
        }
        case 2:
        case 3:
        case 4: { /* the correct echo, maybe with one byte flipped, fed in pieces */
            unsigned from = m.mode == DGRAM && m.n ? next_byte() % m.n : 0;
            size_t len = expected_tail(from, buf, sizeof(buf));
            if (m.mode == DGRAM)
                len = len < m.size ? len : m.size;
            if (len && (op & 0x10))
                buf[next_byte() % len] ^= (uint8_t)(1 + next_byte() % 255);
            size_t off = 0;
            while (off < len) {
                size_t k = m.mode == DGRAM ? len : 1 + next_byte() % (len - off);
                if (k > len - off)
                    k = len - off;
                if (m.mode == STREAM) {
                    size_t a = bench_vfy_stream(&v, buf + off, k, on_done, NULL);
                    if (a != model_stream(buf + off, k))
                        abort();
                } else if (m.mode == RECORD) {
                    unsigned f = next_byte();
                    bool first = f & 1, last = f & 2 || off + k == len;
                    int a = bench_vfy_record(&v, buf + off, k, first, last, on_done, NULL);
                    if (a != model_record(buf + off, k, first, last))
                        abort();
                } else if (bench_vfy_dgram(&v, buf + off, k, on_done, NULL) !=
                           model_dgram(buf + off, k)) {
                    abort();
                }
                off += k;
                check_same(&v);
            }
            break;
        }
        case 5:
        case 6: { /* raw input bytes as an echo */
            size_t len = next_byte() % (m.size * 2 + 1);
            if (len > inlen)
                len = inlen;
            const uint8_t *p = in;
            in += len;
            inlen -= len;
            if (m.mode == STREAM) {
                if (bench_vfy_stream(&v, p, len, on_done, NULL) != model_stream(p, len))
                    abort();
            } else if (m.mode == RECORD) {
                bool first = op & 1, last = op & 2;
                if (bench_vfy_record(&v, p, len, first, last, on_done, NULL) !=
                    model_record(p, len, first, last))
                    abort();
            } else if (bench_vfy_dgram(&v, p, len, on_done, NULL) != model_dgram(p, len)) {
                abort();
            }
            break;
        }
        default: /* datagram timeouts; a clear now and then */
            if (m.mode == DGRAM) {
                uint64_t before = clock > (op & 31) ? clock - (op & 31) : 0;
                if (bench_vfy_expire(&v, before) != model_expire(before))
                    abort();
            } else if ((op & 31) == 31) {
                bench_vfy_clear(&v);
                m.n = 0;
            }
            break;
        }
        check_same(&v);
    }
    bench_vfy_free(&v);
    return 0;
}
