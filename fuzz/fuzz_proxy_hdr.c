/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the PROXY protocol header parser (proto/proxy_hdr.c).
 *
 * The input is what a trusted load balancer (or whoever pretends to be one) sends first. The
 * first byte picks a shape, so that the fuzzer reaches deep states without a seed corpus:
 * raw bytes, bytes after "PROXY ", after "PROXY TCP4 ", or after the version 2 signature (the
 * fuzzer then writes the version, family, length and body itself); the next byte how many
 * of the following bytes are piece sizes. Oracle: the parser takes no more than it is
 * given, takes all while it wants more, and never a byte past the header; the verdict, the
 * error, the bytes taken and the result are the same fed whole, in the chosen pieces and
 * byte by byte, and a verdict is final; it agrees with proxy_hdr_sniff on whether a
 * signature is there; a version 1 header ends with its first CRLF within 107 bytes and a
 * TCP4 one reads back as the very line; a version 2 header is exactly 16 + its length
 * bytes; an address comes only with a PROXY command and an IPv4 or IPv6 family. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "proxy_hdr.h"

struct outcome {
    enum proxy_hdr_status st;
    enum proxy_hdr_error err;
    size_t used;
    struct proxy_hdr_result res;
};

/* Feeds data in pieces of the given sizes (cycled; 0 = the rest). */
static void run(const uint8_t *data, size_t n, const uint8_t *sizes, size_t nsizes,
                struct outcome *o)
{
    static struct proxy_hdr h;
    proxy_hdr_init(&h);
    o->st = PROXY_HDR_NEED_MORE;
    o->used = 0;
    size_t at = 0, k = 0;
    while (at < n && o->st == PROXY_HDR_NEED_MORE) {
        size_t piece = nsizes ? sizes[k++ % nsizes] : 0;
        if (piece == 0 || piece > n - at)
            piece = n - at;
        size_t used = 0;
        o->st = proxy_hdr_feed(&h, data + at, piece, &used);
        FUZZ_CHECK(used <= piece);
        FUZZ_CHECK(o->st != PROXY_HDR_NEED_MORE || used == piece);
        o->used += used;
        at += piece;
    }
    o->err = h.err;
    memset(&o->res, 0, sizeof(o->res));
    if (o->st == PROXY_HDR_DONE)
        o->res = h.res;
    if (o->st != PROXY_HDR_NEED_MORE) {
        size_t used = 1;
        FUZZ_CHECK(proxy_hdr_feed(&h, (const uint8_t *)"x", 1, &used) == o->st && used == 0);
    }
}

static bool same_addr(const struct proxy_hdr_result *a, const struct proxy_hdr_result *b)
{
    if (a->src.sa.sa_family != b->src.sa.sa_family)
        return false;
    if (a->src.sa.sa_family == AF_INET)
        return memcmp(&a->src.in.sin_addr, &b->src.in.sin_addr, 4) == 0 &&
               memcmp(&a->dst.in.sin_addr, &b->dst.in.sin_addr, 4) == 0 &&
               a->src.in.sin_port == b->src.in.sin_port && a->dst.in.sin_port == b->dst.in.sin_port;
    if (a->src.sa.sa_family == AF_INET6)
        return memcmp(&a->src.in6.sin6_addr, &b->src.in6.sin6_addr, 16) == 0 &&
               memcmp(&a->dst.in6.sin6_addr, &b->dst.in6.sin6_addr, 16) == 0 &&
               a->src.in6.sin6_port == b->src.in6.sin6_port &&
               a->dst.in6.sin6_port == b->dst.in6.sin6_port;
    return true;
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
    FUZZ_CHECK(a->st == b->st);
    if (a->st == PROXY_HDR_NEED_MORE)
        return;
    FUZZ_CHECK(a->used == b->used);
    FUZZ_CHECK(a->st != PROXY_HDR_ERROR || a->err == b->err);
    if (a->st == PROXY_HDR_DONE) {
        FUZZ_CHECK(a->res.version == b->res.version && a->res.has_addr == b->res.has_addr &&
                   a->res.local == b->res.local);
        FUZZ_CHECK(!a->res.has_addr || same_addr(&a->res, &b->res));
    }
}

static void check_v1(const struct outcome *o, const uint8_t *p)
{
    FUZZ_CHECK(o->used >= PROXY_HDR_V1_SIG_LEN + 2 && o->used <= PROXY_HDR_V1_MAX);
    FUZZ_CHECK(memcmp(p, PROXY_HDR_V1_SIG, PROXY_HDR_V1_SIG_LEN) == 0);
    FUZZ_CHECK(p[o->used - 2] == '\r' && p[o->used - 1] == '\n');
    FUZZ_CHECK(memchr(p, '\n', o->used - 1) == NULL);
    FUZZ_CHECK(!o->res.local);
    if (!o->res.has_addr) {
        FUZZ_CHECK(memcmp(p + 6, "UNKNOWN", 7) == 0);
        return;
    }
    if (o->res.src.sa.sa_family == AF_INET) {
        /* Canonical IPv4 (no leading zeroes) and ports: the line reads back exactly. */
        char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN], line[PROXY_HDR_V1_MAX + 1];
        inet_ntop(AF_INET, &o->res.src.in.sin_addr, s, sizeof(s));
        inet_ntop(AF_INET, &o->res.dst.in.sin_addr, d, sizeof(d));
        int k = snprintf(line, sizeof(line), "PROXY TCP4 %s %s %u %u\r\n", s, d,
                         ntohs(o->res.src.in.sin_port), ntohs(o->res.dst.in.sin_port));
        FUZZ_CHECK(k > 0 && (size_t)k == o->used && memcmp(line, p, o->used) == 0);
    } else {
        FUZZ_CHECK(o->res.src.sa.sa_family == AF_INET6 && o->res.dst.sa.sa_family == AF_INET6);
        FUZZ_CHECK(memcmp(p + 6, "TCP6 ", 5) == 0);
    }
}

static void check_v2(const struct outcome *o, const uint8_t *p)
{
    FUZZ_CHECK(o->used >= PROXY_HDR_V2_FIXED);
    FUZZ_CHECK(memcmp(p, PROXY_HDR_V2_SIG, PROXY_HDR_V2_SIG_LEN) == 0);
    size_t len = (size_t)p[14] << 8 | p[15];
    FUZZ_CHECK(o->used == PROXY_HDR_V2_FIXED + len);
    FUZZ_CHECK(p[12] >> 4 == 2 && (p[12] & 0x0f) <= 1);
    FUZZ_CHECK(o->res.local == ((p[12] & 0x0f) == 0));
    if (o->res.has_addr) {
        FUZZ_CHECK(!o->res.local && (p[13] == 0x11 || p[13] == 0x21));
        FUZZ_CHECK(len >= (p[13] == 0x11 ? 12u : 36u));
        FUZZ_CHECK(o->res.src.sa.sa_family == (p[13] == 0x11 ? AF_INET : AF_INET6));
    } else {
        FUZZ_CHECK(o->res.local || (p[13] != 0x11 && p[13] != 0x21));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[PROXY_HDR_V2_MAX + 64];
    if (size < 2)
        return 0;
    static const char *const prefixes[] = {"", PROXY_HDR_V1_SIG, "PROXY TCP4 ", "PROXY TCP6 "};
    unsigned shape = data[0] & 7;
    size_t nsizes = data[1] & 7;
    if (size < 2 + nsizes)
        return 0;
    const uint8_t *sizes = data + 2;
    const uint8_t *body = data + 2 + nsizes;
    size_t nbody = size - 2 - nsizes, pre = 0;
    if (shape < 4) {
        pre = strlen(prefixes[shape]);
        memcpy(buf, prefixes[shape], pre);
    } else {
        pre = PROXY_HDR_V2_SIG_LEN;
        memcpy(buf, PROXY_HDR_V2_SIG, pre);
    }
    if (nbody > sizeof(buf) - pre)
        nbody = sizeof(buf) - pre;
    memcpy(buf + pre, body, nbody);
    size_t n = pre + nbody;

    static struct outcome whole, cut, bytes;
    static const uint8_t one = 1;
    run(buf, n, NULL, 0, &whole);
    run(buf, n, sizes, nsizes, &cut);
    run(buf, n, &one, 1, &bytes);
    check_same(&whole, &cut);
    check_same(&whole, &bytes);

    enum proxy_hdr_sniff sn = proxy_hdr_sniff(buf, n < 12 ? n : 12);
    if (sn == PROXY_SNIFF_NO)
        FUZZ_CHECK(whole.st == PROXY_HDR_ERROR && whole.err == PROXY_HDR_E_SIGNATURE);
    if (sn == PROXY_SNIFF_YES)
        FUZZ_CHECK(whole.st == PROXY_HDR_DONE || whole.err != PROXY_HDR_E_SIGNATURE);
    if (whole.st == PROXY_HDR_ERROR)
        FUZZ_CHECK(whole.err >= PROXY_HDR_E_SIGNATURE && whole.err <= PROXY_HDR_E_V2_TLV &&
                   whole.used <= n);
    if (whole.st == PROXY_HDR_NEED_MORE) {
        /* Still open: shorter than the longest line, or than the announced length. */
        if (buf[0] == 'P')
            FUZZ_CHECK(n < PROXY_HDR_V1_MAX);
        else if (n >= PROXY_HDR_V2_FIXED)
            FUZZ_CHECK(n < PROXY_HDR_V2_FIXED + ((size_t)buf[14] << 8 | buf[15]));
    }
    if (whole.st == PROXY_HDR_DONE) {
        FUZZ_CHECK(whole.res.version == 1 || whole.res.version == 2);
        if (whole.res.version == 1)
            check_v1(&whole, buf);
        else
            check_v2(&whole, buf);
    }
    return 0;
}
