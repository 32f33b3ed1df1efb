/* SPDX-License-Identifier: MIT */
/* libFuzzer target: bench's reader of saved results (bench_run_parse, what --merge and
 * --compare read from files anyone may hand over) and everything made from what it
 * accepts: the result written again, merged with itself, the --html page, the --compare
 * page and table. The input's first byte picks how the rest is used: as the whole text,
 * or as edits (offset, length, bytes) to a valid result with every optional part (label,
 * handshake figures, intervals), so that the fuzzer reaches the checks deep inside
 * without having to find the schema first. Under ASan and UBSan any overread, leak or
 * undefined arithmetic shows up; a result read MUST be accepted by the merge with itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_html.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *base; /* a valid result, made once */
static size_t base_len;

static void make_base(void)
{
    static struct bench_hist h, hs;
    bench_hist_init(&h);
    bench_hist_init(&hs);
    for (uint64_t v = 1; v <= 30; v++) {
        bench_hist_record(&h, v * v * 1000);
        if (v <= 3)
            bench_hist_record(&hs, v * 500000);
    }
    static uint64_t conn[3] = {10, 10, 10};
    static struct bench_point pts[2] = {
        {.t = 1, .dur = 1, .msgs = 20, .p50_ns = 1000, .p99_ns = 5000, .max_ns = 6000},
        {.t = 1.5, .dur = 0.5, .msgs = 10, .handshakes = 3, .errors = 1},
    };
    struct bench_result r = {
        .label = "fuzz <label> & \"x\"",
        .mode = "handshakes",
        .proto = "secure",
        .transport = "tcp",
        .host = "127.0.0.1",
        .payload = "random",
        .noise_name = "Noise_XX_25519_AESGCM_SHA256",
        .port = 9090,
        .connections = 3,
        .threads = 1,
        .pipeline = 1,
        .size = 64,
        .duration_s = 1.5,
        .warmup_s = 1,
        .start_unix = 1700000000,
        .runs = 1,
        .msgs_per_s = 20,
        .msgs = 30,
        .hist = &h,
        .conn_msgs = conn,
        .slowest_p99_ns = 900000,
        .slowest_conn = 1,
        .handshakes = 3,
        .handshakes_per_s = 2,
        .hs_hist = &hs,
        .points = pts,
        .npoints = 2,
    };
    struct bench_str s = {0};
    bench_format_json(&r, &s);
    if (s.failed)
        abort();
    base = s.p;
    base_len = s.len;
}

/* The text to parse, NUL-terminated (caller frees): the input, or the base with the
 * input's edits applied. */
static char *text_of(const uint8_t *data, size_t size)
{
    if (size && (data[0] & 1) == 0) {
        char *t = malloc(size);
        if (t) {
            memcpy(t, data + 1, size - 1);
            t[size - 1] = '\0';
        }
        return t;
    }
    size_t cap = base_len + size + 1, len = base_len;
    char *t = malloc(cap);
    if (!t)
        return NULL;
    memcpy(t, base, base_len);
    size_t i = size ? 1 : 0;
    while (i + 3 <= size) {
        size_t at = ((size_t)data[i] << 8 | data[i + 1]) % (len + 1);
        size_t cut = data[i + 2] & 0x0f, put = data[i + 2] >> 4;
        i += 3;
        if (put > size - i)
            put = size - i;
        if (cut > len - at)
            cut = len - at;
        /* Replace t[at, at + cut) with put input bytes (room: every byte inserted came
         * from the input once). */
        memmove(t + at + put, t + at + cut, len - at - cut);
        memcpy(t + at, data + i, put);
        len = len - cut + put;
        i += put;
    }
    t[len] = '\0';
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base)
        make_base();
    char *text = text_of(data, size);
    if (!text)
        return 0;
    struct bench_run run, again;
    memset(&again, 0, sizeof(again));
    char err[256];
    int rc = bench_run_parse(&run, text, err, sizeof(err));
    if (rc == 0) {
        const struct bench_result *runs[2] = {&run.r, &run.r};
        const char *labels[2] = {"a.json", run.r.label ? run.r.label : "b"};
        struct bench_str out = {0};
        bench_format_json(&run.r, &out);
        bench_html_report(&run.r, NULL, &out);
        bench_html_compare(runs, labels, 2, &out);
        bench_compare_text(runs, labels, 2, &out);
        bench_str_free(&out);
        /* A result read merges with itself: every check the merge makes is one it passes. */
        if (bench_run_parse(&again, text, err, sizeof(err)) != 0 ||
            bench_run_merge(&run, &again, err, sizeof(err)) != 0)
            abort();
        bench_html_report(&run.r, "merged", &out);
        bench_str_free(&out);
    }
    bench_run_free(&run);
    bench_run_free(&again);
    free(text);
    return 0;
}
