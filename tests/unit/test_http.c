/* SPDX-License-Identifier: MIT */
/* Unit tests for the metrics responder's HTTP/1.x request-head parser and response heads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http.h"

/* Feeds the whole text at once; returns the result, *used the bytes taken. */
static int feed_all(struct http_req *r, const char *text, size_t n, size_t *used)
{
    http_req_init(r);
    return http_req_feed(r, (const uint8_t *)text, n, used);
}

static int parse(const char *text)
{
    struct http_req r;
    size_t used;
    return feed_all(&r, text, strlen(text), &used);
}

/* Feeds text split at every offset (two pieces) and byte by byte; every split must give the
 * one-shot result, path and bytes taken. */
static void same_when_split(const char *text)
{
    size_t n = strlen(text), used1;
    struct http_req one;
    int want = feed_all(&one, text, n, &used1);
    for (size_t cut = 0; cut <= n; cut++) {
        struct http_req r;
        http_req_init(&r);
        size_t u1, u2 = 0;
        int a = http_req_feed(&r, (const uint8_t *)text, cut, &u1);
        int b = a;
        if (a == HTTP_NEED_MORE)
            b = http_req_feed(&r, (const uint8_t *)text + cut, n - cut, &u2);
        CHECK_INT(b, want);
        if (a == HTTP_NEED_MORE)
            CHECK_INT(u1 + u2, used1);
        if (want == HTTP_DONE) {
            CHECK_INT(r.path_len, one.path_len);
            CHECK_INT(r.minor, one.minor);
            CHECK_STR(r.method, one.method);
        }
    }
    struct http_req r;
    http_req_init(&r);
    int res = HTTP_NEED_MORE;
    size_t total = 0;
    for (size_t i = 0; i < n && res == HTTP_NEED_MORE; i++) {
        size_t u;
        res = http_req_feed(&r, (const uint8_t *)text + i, 1, &u);
        total += u;
    }
    CHECK_INT(res, want);
    if (want != HTTP_NEED_MORE)
        CHECK_INT(total, used1);
}

static void test_good(void)
{
    struct http_req r;
    size_t used;
    const char *get = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nUser-Agent: "
                      "Prometheus/2.45\r\nAccept: text/plain;version=0.0.4;q=1,*/*;q=0.1\r\n\r\n";
    CHECK_INT(feed_all(&r, get, strlen(get), &used), HTTP_DONE);
    CHECK_INT(used, strlen(get));
    CHECK(http_req_method_is(&r, "GET"));
    CHECK(http_req_path_is(&r, "/metrics"));
    CHECK_INT(r.minor, 1);
    CHECK_INT(http_metrics_status(&r), 200);
    same_when_split(get);

    /* What follows the head (a body, a pipelined request) is not taken. */
    const char *two = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n";
    CHECK_INT(feed_all(&r, two, strlen(two), &used), HTTP_DONE);
    CHECK_INT(used, strlen("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    same_when_split(two);

    /* HTTP/1.0 needs no Host; bare LF line ends; leading empty lines; a query. */
    CHECK_INT(feed_all(&r, "\r\n\nHEAD /metrics?x=1 HTTP/1.0\n\n", 31, &used), HTTP_DONE);
    CHECK(http_req_method_is(&r, "HEAD"));
    CHECK(http_req_path_is(&r, "/metrics"));
    CHECK_INT(r.minor, 0);
    CHECK_INT(http_metrics_status(&r), 200);
    same_when_split("\r\n\nHEAD /metrics?x=1 HTTP/1.0\n\n");

    /* Absolute form. */
    const char *abs = "GET http://127.0.0.1:9100/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    CHECK_INT(feed_all(&r, abs, strlen(abs), &used), HTTP_DONE);
    CHECK_INT(http_metrics_status(&r), 200);
    CHECK_INT(parse("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_DONE);

    /* Field values may hold tabs, spaces and obs-text; OWS around them is fine. */
    CHECK_INT(parse("GET /metrics HTTP/1.1\r\nHost:\th \r\nX-A: a\tb \xc3\xa9\r\n\r\n"), HTTP_DONE);
    CHECK_INT(parse("GET /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"), HTTP_DONE);
}

static void test_status(void)
{
    struct http_req r;
    size_t used;
    const char *post = "POST /metrics HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(feed_all(&r, post, strlen(post), &used), HTTP_DONE);
    CHECK_INT(http_metrics_status(&r), 405);
    const char *other = "GET /metrics/ HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(feed_all(&r, other, strlen(other), &used), HTTP_DONE);
    CHECK_INT(http_metrics_status(&r), 404);
    const char *lower = "get /metrics HTTP/1.1\r\nHost: h\r\n\r\n"; /* methods are case-sensitive */
    CHECK_INT(feed_all(&r, lower, strlen(lower), &used), HTTP_DONE);
    CHECK_INT(http_metrics_status(&r), 405);
    const char *star = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(feed_all(&r, star, strlen(star), &used), HTTP_DONE);
    CHECK_INT(http_metrics_status(&r), 404);
    /* A method longer than remembered is none: not allowed, never mistaken for GET. */
    const char *longm = "GETGETGETGETGETGETGET /metrics HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(feed_all(&r, longm, strlen(longm), &used), HTTP_DONE);
    CHECK_INT(http_metrics_status(&r), 405);
}

static void test_bad(void)
{
    static const char te_and_length[] = "GET /metrics HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
                                        "chunked\r\nContent-Length: 3\r\n\r\n";
    const char *bad[] = {
        "GET /metrics\r\n\r\n",                      /* no version */
        "GET  /metrics HTTP/1.1\r\nHost: h\r\n\r\n", /* two spaces */
        "GET /metrics HTTP/1.1 \r\nHost: h\r\n\r\n", /* trailing space */
        "GET /metrics HTTP/1.1\r\n\r\n",             /* 1.1 without Host */
        "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost : h\r\n\r\n", /* space before the colon */
        "GET /metrics HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: h\rX\r\n\r\n",  /* bare CR */
        "GET /metrics HTTP/1.1\r\nHost: h\x01\r\n\r\n", /* control byte */
        "GET /me\x7ftrics HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET metrics HTTP/1.1\r\nHost: h\r\n\r\n", /* not origin or absolute form */
        "GET ://x/metrics HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET http:///metrics HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /metrics HTTP/11\r\nHost: h\r\n\r\n",
        "GET /metrics http/1.1\r\nHost: h\r\n\r\n",
        "G(T /metrics HTTP/1.1\r\nHost: h\r\n\r\n",
        " GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
        te_and_length,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = parse(bad[i]);
        if (r != -400)
            fprintf(stderr, "case %zu: %d\n", i, r);
        CHECK_INT(r, -400);
        same_when_split(bad[i]);
    }
    CHECK_INT(parse("GET /metrics HTTP/2.0\r\nHost: h\r\n\r\n"), -505);
    CHECK_INT(parse("GET /metrics HTTP/0.9\r\n\r\n"), -505);
    CHECK_INT(parse("GET /metrics HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
              -501);
    /* A NUL in the head. */
    struct http_req r;
    size_t used;
    static const char nul[] = "GET /metrics HTTP/1.1\r\nHost: h\0\r\n\r\n";
    CHECK_INT(feed_all(&r, nul, sizeof(nul) - 1, &used), -400);
}

static void test_limits(void)
{
    /* Incomplete: more is wanted, and everything was taken. */
    struct http_req r;
    size_t used;
    CHECK_INT(feed_all(&r, "GET /metrics HTTP/1.1\r\nHost: h\r\n", 33, &used), HTTP_NEED_MORE);
    CHECK_INT(used, 33);
    /* Only empty lines: still waiting for a request line. */
    CHECK_INT(parse("\r\n\r\n\r\n"), HTTP_NEED_MORE);

    /* A head of exactly HTTP_HEAD_MAX bytes is fine; one more byte is 431. */
    char *big = malloc(HTTP_HEAD_MAX + 64);
    const char *start = "GET /metrics HTTP/1.1\r\nHost: h\r\nX: ";
    size_t sl = strlen(start);
    memcpy(big, start, sl);
    size_t fill = HTTP_HEAD_MAX - sl - 4;
    memset(big + sl, 'a', fill);
    memcpy(big + sl + fill, "\r\n\r\n", 5);
    CHECK_INT(strlen(big), HTTP_HEAD_MAX);
    CHECK_INT(feed_all(&r, big, HTTP_HEAD_MAX, &used), HTTP_DONE);
    memset(big + sl, 'a', fill + 1);
    memcpy(big + sl + fill + 1, "\r\n\r\n", 5);
    CHECK_INT(feed_all(&r, big, strlen(big), &used), -431);
    CHECK_INT(used, HTTP_HEAD_MAX);
    same_when_split(big);
    /* Final: once answered, nothing more is taken. */
    CHECK_INT(http_req_feed(&r, (const uint8_t *)"x", 1, &used), -431);
    CHECK_INT(used, 0);
    free(big);
}

static void test_response(void)
{
    char out[512];
    int n = http_response_head(out, sizeof(out), 200, "text/plain; version=0.0.4", 123);
    CHECK_STR(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                   "Content-Length: 123\r\nConnection: close\r\n\r\n");
    CHECK_INT(n, strlen(out));
    http_response_head(out, sizeof(out), 405, "text/plain", 0);
    CHECK(strstr(out, "HTTP/1.1 405 Method Not Allowed\r\n") == out);
    CHECK(strstr(out, "\r\nAllow: GET, HEAD\r\n") != NULL);
    CHECK_INT(http_response_head(out, 20, 200, "text/plain", 1), -1);
    CHECK_STR(http_reason(404), "Not Found");
    CHECK_STR(http_reason(431), "Request Header Fields Too Large");
}

int main(void)
{
    test_good();
    test_status();
    test_bad();
    test_limits();
    test_response();
    return CHECK_DONE();
}
