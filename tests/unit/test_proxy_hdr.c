/* SPDX-License-Identifier: MIT */
/* PROXY protocol header parser: versions 1 and 2, whole, byte by byte and split at every
 * offset; never a byte past the header; bad signatures, overlong lines, bad lengths, TLVs. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "proxy_hdr.h"

/* A result as text, so that two parses compare in one line and a failure shows both. */
static void describe(const struct proxy_hdr_result *r, char *out, size_t cap)
{
    char s[INET6_ADDRSTRLEN] = "-", d[INET6_ADDRSTRLEN] = "-";
    unsigned sp = 0, dp = 0;
    if (r->has_addr && r->src.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &r->src.in.sin_addr, s, sizeof(s));
        inet_ntop(AF_INET, &r->dst.in.sin_addr, d, sizeof(d));
        sp = ntohs(r->src.in.sin_port);
        dp = ntohs(r->dst.in.sin_port);
    } else if (r->has_addr && r->src.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &r->src.in6.sin6_addr, s, sizeof(s));
        inet_ntop(AF_INET6, &r->dst.in6.sin6_addr, d, sizeof(d));
        sp = ntohs(r->src.in6.sin6_port);
        dp = ntohs(r->dst.in6.sin6_port);
    }
    snprintf(out, cap, "v%u%s%s src=%s:%u dst=%s:%u", r->version, r->local ? " local" : "",
             r->has_addr ? "" : " noaddr", s, sp, d, dp);
}

struct outcome {
    enum proxy_hdr_status st;
    enum proxy_hdr_error err;
    size_t used;
    char text[256];
};

/* Feeds p[0..n) in pieces whose ends are cuts[0..ncuts) (ascending, each <= n), then the rest;
 * stops at the first verdict. */
static void feed_cuts(const uint8_t *p, size_t n, const size_t *cuts, size_t ncuts,
                      struct outcome *o)
{
    struct proxy_hdr h;
    proxy_hdr_init(&h);
    size_t at = 0;
    o->st = PROXY_HDR_NEED_MORE;
    for (size_t k = 0; k <= ncuts && o->st == PROXY_HDR_NEED_MORE; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        size_t used = 0;
        o->st = proxy_hdr_feed(&h, p + at, end - at, &used);
        if (o->st == PROXY_HDR_NEED_MORE && used != end - at) {
            fprintf(stderr, "NEED_MORE took %zu of %zu\n", used, end - at);
            check_failures++;
        }
        at += used;
    }
    o->used = at;
    o->err = h.err;
    o->text[0] = '\0';
    if (o->st == PROXY_HDR_DONE)
        describe(&h.res, o->text, sizeof(o->text));
    /* A verdict is final. */
    if (o->st != PROXY_HDR_NEED_MORE) {
        size_t again = 99;
        CHECK_INT(proxy_hdr_feed(&h, p, n, &again), o->st);
        CHECK_INT(again, 0);
    }
}

static void same(const struct outcome *a, const struct outcome *b, const char *how, size_t at)
{
    if (a->st != b->st || a->err != b->err || a->used != b->used || strcmp(a->text, b->text)) {
        fprintf(stderr, "%s at %zu: st %d/%d err %d/%d used %zu/%zu '%s'/'%s'\n", how, at, a->st,
                b->st, a->err, b->err, a->used, b->used, a->text, b->text);
        check_failures++;
    }
}

/*
 * The stream p[0..n): whole, then split in two at every offset, then byte by byte, then in
 * three at every pair of offsets when short; every way must give the same verdict, the same
 * count of bytes taken and the same result as the whole. Returns the whole's outcome.
 */
static struct outcome parse_every_way(const uint8_t *p, size_t n)
{
    struct outcome whole, o;
    feed_cuts(p, n, NULL, 0, &whole);
    for (size_t s = 0; s <= n; s++) {
        feed_cuts(p, n, &s, 1, &o);
        same(&whole, &o, "split", s);
    }
    size_t cuts[PROXY_HDR_V1_MAX + 64] = {0};
    if (n <= sizeof(cuts) / sizeof(cuts[0])) {
        for (size_t i = 0; i < n; i++)
            cuts[i] = i;
        feed_cuts(p, n, cuts, n, &o);
        same(&whole, &o, "bytewise", 0);
    }
    if (n <= 80) {
        for (size_t a = 0; a <= n; a++)
            for (size_t b = a; b <= n; b++) {
                size_t two[2] = {a, b};
                feed_cuts(p, n, two, 2, &o);
                same(&whole, &o, "three pieces", a * 1000 + b);
            }
    }
    return whole;
}

static const char tail[] = "hello\n"; /* what follows the header: never taken */

/* A header followed by `tail`: parses, takes exactly hlen bytes, says `want`. */
static void expect_done(const uint8_t *hdr, size_t hlen, const char *want)
{
    uint8_t buf[70000];
    memcpy(buf, hdr, hlen);
    memcpy(buf + hlen, tail, sizeof(tail) - 1);
    struct outcome o = parse_every_way(buf, hlen + sizeof(tail) - 1);
    CHECK_INT(o.st, PROXY_HDR_DONE);
    CHECK_INT(o.used, hlen);
    CHECK_STR(o.text, want);
}

static void expect_done_str(const char *hdr, const char *want)
{
    expect_done((const uint8_t *)hdr, strlen(hdr), want);
}

static void expect_error(const uint8_t *hdr, size_t hlen, enum proxy_hdr_error err)
{
    struct outcome o = parse_every_way(hdr, hlen);
    CHECK_INT(o.st, PROXY_HDR_ERROR);
    CHECK_INT(o.err, err);
    CHECK(o.used <= hlen);
}

static void expect_error_str(const char *hdr, enum proxy_hdr_error err)
{
    expect_error((const uint8_t *)hdr, strlen(hdr), err);
}

/* Bytes never completing a header: still NEED_MORE, every byte taken. */
static void expect_more(const uint8_t *p, size_t n)
{
    struct outcome o = parse_every_way(p, n);
    CHECK_INT(o.st, PROXY_HDR_NEED_MORE);
    CHECK_INT(o.used, n);
}

static void test_v1_good(void)
{
    expect_done_str("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
                    "v1 src=192.168.0.1:56324 dst=192.168.0.11:443");
    expect_done_str("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
                    "v1 src=0.0.0.0:0 dst=255.255.255.255:65535");
    expect_done_str("PROXY TCP6 2001:db8::1 ::1 1 2\r\n", "v1 src=2001:db8::1:1 dst=::1:2");
    expect_done_str("PROXY TCP6 FFFF:ffff:FFFF:ffff:FFFF:ffff:FFFF:ffff ::ffff:10.0.0.1 9 10\r\n",
                    "v1 src=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:9 dst=::ffff:10.0.0.1:10");
    expect_done_str("PROXY UNKNOWN\r\n", "v1 noaddr src=-:0 dst=-:0");
    expect_done_str("PROXY UNKNOWN whatever comes \x01 before CRLF\r\n",
                    "v1 noaddr src=-:0 dst=-:0");
    /* The longest line the receiver must take: 107 bytes, CRLF included. */
    const char *longest = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    CHECK_INT(strlen(longest), PROXY_HDR_V1_MAX);
    expect_done_str(longest, "v1 noaddr src=-:0 dst=-:0");
    const char *longest6 = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    CHECK_INT(strlen(longest6), 104);
    expect_done_str(longest6, "v1 src=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:65535 "
                              "dst=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:65535");
}

static void test_v1_bad(void)
{
    /* Over 107 bytes without CRLF: refused at the 107th byte, whatever follows. */
    char line[300];
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    struct outcome o = parse_every_way((const uint8_t *)line, sizeof(line));
    CHECK_INT(o.st, PROXY_HDR_ERROR);
    CHECK_INT(o.err, PROXY_HDR_E_V1_TOO_LONG);
    CHECK_INT(o.used, PROXY_HDR_V1_MAX);
    /* 108 bytes with the CRLF at the end is one too many. */
    memset(line, 'f', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + 106, "\r\n", 2);
    expect_error((const uint8_t *)line, 108, PROXY_HDR_E_V1_TOO_LONG);

    expect_error_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", PROXY_HDR_E_V1_SYNTAX); /* lone LF */
    expect_error_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", PROXY_HDR_E_V1_PORT);
    expect_error_str("PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n", PROXY_HDR_E_V1_SYNTAX);
    expect_error_str("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", PROXY_HDR_E_V1_SYNTAX);
    expect_error_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", PROXY_HDR_E_V1_SYNTAX);
    expect_error_str("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", PROXY_HDR_E_V1_SYNTAX);
    expect_error_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", PROXY_HDR_E_V1_SYNTAX);
    expect_error_str("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_HDR_E_V1_SYNTAX);
    expect_error_str("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_HDR_E_V1_SYNTAX);
    expect_error_str("PROXY \r\n", PROXY_HDR_E_V1_SYNTAX);
    expect_error_str("PROXY UNKNOWNX\r\n", PROXY_HDR_E_V1_SYNTAX);
    expect_error_str("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", PROXY_HDR_E_V1_ADDRESS);
    expect_error_str("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", PROXY_HDR_E_V1_ADDRESS);
    expect_error_str("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", PROXY_HDR_E_V1_ADDRESS);
    expect_error_str("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", PROXY_HDR_E_V1_ADDRESS);
    expect_error_str("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", PROXY_HDR_E_V1_ADDRESS);
    expect_error_str("PROXY TCP4 1.2.3.4 ::1 1 2\r\n", PROXY_HDR_E_V1_ADDRESS);
    expect_error_str("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", PROXY_HDR_E_V1_ADDRESS);
    expect_error_str("PROXY TCP6 ::1::2 ::1 1 2\r\n", PROXY_HDR_E_V1_ADDRESS);
    expect_error_str("PROXY TCP6 ::g ::1 1 2\r\n", PROXY_HDR_E_V1_ADDRESS);
    expect_error_str("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", PROXY_HDR_E_V1_PORT);
    expect_error_str("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", PROXY_HDR_E_V1_PORT);
    expect_error_str("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", PROXY_HDR_E_V1_PORT);
    expect_error_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n", PROXY_HDR_E_V1_PORT);
    expect_error_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n", PROXY_HDR_E_V1_PORT);
    static const uint8_t nul[] = "PROXY TCP4 1.2.3.4\0005.6.7.8 1 2\r\n";
    expect_error(nul, sizeof(nul) - 1, PROXY_HDR_E_V1_SYNTAX);
    /* A line still open: every byte taken, no verdict yet. */
    expect_more((const uint8_t *)"PROXY TCP4 1.2.3.4 5.6", 22);
    expect_more((const uint8_t *)"PROX", 4);
}

static void test_signatures(void)
{
    expect_error_str("GET / HTTP/1.1\r\n", PROXY_HDR_E_SIGNATURE);
    expect_error_str("PROXY\r\n", PROXY_HDR_E_SIGNATURE);
    expect_error_str("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", PROXY_HDR_E_SIGNATURE);
    static const uint8_t v2bad[] = "\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x0c";
    expect_error(v2bad, sizeof(v2bad) - 1, PROXY_HDR_E_SIGNATURE);
    /* The parser stops at the first byte that fits no signature: nothing after it is taken. */
    struct outcome o = parse_every_way(v2bad, sizeof(v2bad) - 1);
    CHECK_INT(o.used, 11);
    o = parse_every_way((const uint8_t *)"PROXz", 5);
    CHECK_INT(o.used, 5);
    o = parse_every_way((const uint8_t *)"\x16\x03\x01", 3); /* a TLS ClientHello */
    CHECK_INT(o.st, PROXY_HDR_ERROR);
    CHECK_INT(o.used, 1);
    expect_more((const uint8_t *)"\r\n\r\n\0\r\nQU", 9);
    expect_more((const uint8_t *)"", 0);

    CHECK_INT(proxy_hdr_sniff((const uint8_t *)"", 0), PROXY_SNIFF_MAYBE);
    CHECK_INT(proxy_hdr_sniff((const uint8_t *)"PRO", 3), PROXY_SNIFF_MAYBE);
    CHECK_INT(proxy_hdr_sniff((const uint8_t *)"PROXY", 5), PROXY_SNIFF_MAYBE);
    CHECK_INT(proxy_hdr_sniff((const uint8_t *)"PROXY ", 6), PROXY_SNIFF_YES);
    CHECK_INT(proxy_hdr_sniff((const uint8_t *)"PROXY TCP4", 10), PROXY_SNIFF_YES);
    CHECK_INT(proxy_hdr_sniff((const uint8_t *)"PROXY\n", 6), PROXY_SNIFF_NO);
    CHECK_INT(proxy_hdr_sniff((const uint8_t *)"hello", 5), PROXY_SNIFF_NO);
    CHECK_INT(proxy_hdr_sniff((const uint8_t *)"\r\n", 2), PROXY_SNIFF_MAYBE);
    CHECK_INT(proxy_hdr_sniff((const uint8_t *)"\r\nx", 3), PROXY_SNIFF_NO);
    CHECK_INT(proxy_hdr_sniff((const uint8_t *)PROXY_HDR_V2_SIG, 11), PROXY_SNIFF_MAYBE);
    CHECK_INT(proxy_hdr_sniff((const uint8_t *)PROXY_HDR_V2_SIG, 12), PROXY_SNIFF_YES);
    CHECK_INT(proxy_hdr_sniff((const uint8_t *)PROXY_HDR_V2_SIG "\x21", 13), PROXY_SNIFF_YES);
}

/* ---- version 2 ---- */

/* Builds a version 2 header: fixed part with ver_cmd, fam and `len`, then body[0..nbody). */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, size_t len, const uint8_t *body,
                 size_t nbody)
{
    memcpy(out, PROXY_HDR_V2_SIG, PROXY_HDR_V2_SIG_LEN);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (nbody)
        memcpy(out + 16, body, nbody);
    return 16 + nbody;
}

static const uint8_t addr4[12] = {192, 0, 2, 7, 198, 51, 100, 9, 0xd4, 0x31, 0x23, 0x82};
/* 2001:db8::5 -> 2001:db8::6, ports 1 and 65535 */
static const uint8_t addr6[36] = {0x20, 0x01, 0x0d, 0xb8, 0,    0,    0,    0,   0, 0, 0, 0, 0, 0,
                                  0,    5,    0x20, 0x01, 0x0d, 0xb8, 0,    0,   0, 0, 0, 0, 0, 0,
                                  0,    0,    0,    6,    0x00, 0x01, 0xff, 0xff};

static void test_v2_good(void)
{
    uint8_t h[70000], body[66000];
    size_t n;

    n = v2(h, 0x21, 0x11, 12, addr4, 12);
    expect_done(h, n, "v2 src=192.0.2.7:54321 dst=198.51.100.9:9090");
    n = v2(h, 0x21, 0x21, 36, addr6, 36);
    expect_done(h, n, "v2 src=2001:db8::5:1 dst=2001:db8::6:65535");
    /* LOCAL (a health check): the family and whatever block comes are ignored. */
    n = v2(h, 0x20, 0x00, 0, NULL, 0);
    expect_done(h, n, "v2 local noaddr src=-:0 dst=-:0");
    n = v2(h, 0x20, 0x11, 12, addr4, 12);
    expect_done(h, n, "v2 local noaddr src=-:0 dst=-:0");
    n = v2(h, 0x20, 0xff, 5, (const uint8_t *)"\xff\xff\xff\xff\xff", 5);
    expect_done(h, n, "v2 local noaddr src=-:0 dst=-:0");
    /* PROXY with AF_UNSPEC, or a family/transport without a TCP endpoint: accepted, no
     * address (the connection's own endpoints stand). */
    n = v2(h, 0x21, 0x00, 3, (const uint8_t *)"abc", 3);
    expect_done(h, n, "v2 noaddr src=-:0 dst=-:0");
    n = v2(h, 0x21, 0x12, 12, addr4, 12); /* UDP over IPv4 */
    expect_done(h, n, "v2 noaddr src=-:0 dst=-:0");
    n = v2(h, 0x21, 0x10, 12, addr4, 12); /* IPv4, UNSPEC transport */
    expect_done(h, n, "v2 noaddr src=-:0 dst=-:0");
    memset(body, 'u', 216);
    n = v2(h, 0x21, 0x31, 216, body, 216); /* AF_UNIX stream */
    expect_done(h, n, "v2 noaddr src=-:0 dst=-:0");

    /* TLVs after the addresses: skipped, whatever their types (ALPN, NOOP of length 0,
     * an SSL block, a custom one), across every split. */
    size_t b = 0;
    memcpy(body, addr4, 12);
    b = 12;
    const uint8_t tlvs[] = {0x01, 0x00, 0x02, 'h',  '2',  0x04, 0x00, 0x00, 0x20, 0x00,
                            0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x00, 0x01, 0x7f};
    memcpy(body + b, tlvs, sizeof(tlvs));
    b += sizeof(tlvs);
    n = v2(h, 0x21, 0x11, b, body, b);
    expect_done(h, n, "v2 src=192.0.2.7:54321 dst=198.51.100.9:9090");
    /* TLVs behind IPv6 and AF_UNIX blocks too. */
    memcpy(body, addr6, 36);
    memcpy(body + 36, tlvs, sizeof(tlvs));
    n = v2(h, 0x21, 0x21, 36 + sizeof(tlvs), body, 36 + sizeof(tlvs));
    expect_done(h, n, "v2 src=2001:db8::5:1 dst=2001:db8::6:65535");
    memset(body, 'u', 216);
    memcpy(body + 216, tlvs, sizeof(tlvs));
    n = v2(h, 0x21, 0x31, 216 + sizeof(tlvs), body, 216 + sizeof(tlvs));
    expect_done(h, n, "v2 noaddr src=-:0 dst=-:0");

    /* The largest header: length 65535, one TLV filling all of it after the addresses. */
    memcpy(body, addr4, 12);
    size_t vlen = 65535 - 12 - 3;
    body[12] = 0x04;
    body[13] = (uint8_t)(vlen >> 8);
    body[14] = (uint8_t)vlen;
    memset(body + 15, 0xaa, vlen);
    n = v2(h, 0x21, 0x11, 65535, body, 65535);
    CHECK_INT(n, PROXY_HDR_V2_MAX);
    expect_done(h, n, "v2 src=192.0.2.7:54321 dst=198.51.100.9:9090");
    /* ...and a LOCAL one as long, skipped unread. */
    n = v2(h, 0x20, 0x00, 65535, body, 65535);
    expect_done(h, n, "v2 local noaddr src=-:0 dst=-:0");
}

static void test_v2_bad(void)
{
    uint8_t h[600], body[400];
    size_t n;

    n = v2(h, 0x11, 0x11, 12, addr4, 12);
    expect_error(h, n, PROXY_HDR_E_V2_VERSION);
    n = v2(h, 0x31, 0x11, 12, addr4, 12);
    expect_error(h, n, PROXY_HDR_E_V2_VERSION);
    n = v2(h, 0x22, 0x11, 12, addr4, 12);
    expect_error(h, n, PROXY_HDR_E_V2_COMMAND);
    n = v2(h, 0x2f, 0x11, 12, addr4, 12);
    expect_error(h, n, PROXY_HDR_E_V2_COMMAND);
    n = v2(h, 0x21, 0x41, 12, addr4, 12);
    expect_error(h, n, PROXY_HDR_E_V2_FAMILY);
    n = v2(h, 0x21, 0x13, 12, addr4, 12);
    expect_error(h, n, PROXY_HDR_E_V2_FAMILY);
    /* The length must cover the family's addresses. */
    n = v2(h, 0x21, 0x11, 11, addr4, 11);
    expect_error(h, n, PROXY_HDR_E_V2_LENGTH);
    n = v2(h, 0x21, 0x21, 35, addr6, 35);
    expect_error(h, n, PROXY_HDR_E_V2_LENGTH);
    n = v2(h, 0x21, 0x11, 0, NULL, 0);
    expect_error(h, n, PROXY_HDR_E_V2_LENGTH);
    memset(body, 0, 215);
    n = v2(h, 0x21, 0x31, 215, body, 215);
    expect_error(h, n, PROXY_HDR_E_V2_LENGTH);
    /* The error comes with the fixed part: nothing after byte 16 is taken. */
    struct outcome o = parse_every_way(h, n);
    CHECK_INT(o.used, 16);

    /* A TLV whose value runs one byte past the header, and TLV headers cut by its end. */
    memcpy(body, addr4, 12);
    memcpy(body + 12, "\x01\x00\x03xy", 5);
    n = v2(h, 0x21, 0x11, 17, body, 17);
    expect_error(h, n, PROXY_HDR_E_V2_TLV);
    o = parse_every_way(h, n);
    CHECK_INT(o.used, 16 + 12 + 3); /* up to the TLV header at fault, however it was split */
    memcpy(body + 12, "\x01", 1);
    n = v2(h, 0x21, 0x11, 13, body, 13);
    expect_error(h, n, PROXY_HDR_E_V2_TLV);
    memcpy(body + 12, "\x01\x00", 2);
    n = v2(h, 0x21, 0x11, 14, body, 14);
    expect_error(h, n, PROXY_HDR_E_V2_TLV);
    memcpy(body + 12, "\x04\x00\x00\x01\x00\x02z", 7); /* a good one, then a cut one */
    n = v2(h, 0x21, 0x11, 19, body, 19);
    expect_error(h, n, PROXY_HDR_E_V2_TLV);
    memcpy(body + 12, "\x04\xff\xff", 3); /* a value claiming 65535 bytes */
    n = v2(h, 0x21, 0x11, 15, body, 15);
    expect_error(h, n, PROXY_HDR_E_V2_TLV);

    /* A header the stream has not finished: no verdict, every byte taken. */
    n = v2(h, 0x21, 0x11, 12, addr4, 7);
    expect_more(h, n);
    n = v2(h, 0x21, 0x11, 300, addr4, 12);
    expect_more(h, n);
}

/* Every error has its own text. */
static void test_strerror(void)
{
    for (int e = PROXY_HDR_E_NONE; e <= PROXY_HDR_E_INCOMPLETE; e++) {
        const char *t = proxy_hdr_strerror((enum proxy_hdr_error)e);
        CHECK(t && *t);
        for (int f = PROXY_HDR_E_NONE; f < e; f++)
            CHECK(strcmp(t, proxy_hdr_strerror((enum proxy_hdr_error)f)) != 0);
    }
    CHECK(strstr(proxy_hdr_strerror(PROXY_HDR_E_UNTRUSTED), "--trusted-proxy") != NULL);
}

int main(void)
{
    test_v1_good();
    test_v1_bad();
    test_signatures();
    test_v2_good();
    test_v2_bad();
    test_strerror();
    return CHECK_DONE();
}
