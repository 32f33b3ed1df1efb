/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the metrics responder's HTTP request-head parser (proto/http.c).
 *
 * The input is what a scraper (or anyone who reaches the metrics port) sends. The first
 * byte picks how it is cut into reads. Oracle: the parser never reads or keeps more than
 * HTTP_HEAD_MAX bytes and takes no more than it is given; the outcome, the bytes taken and
 * the parsed fields are the same fed whole, cut into the chosen pieces, and byte by byte;
 * once final, nothing more is taken; a parsed request's head ends with its blank line, its
 * method is a token and its path lies inside the head, starts with '/' (or is "*", or empty
 * for an absolute target without one) and holds only visible ASCII without '?'; every
 * result is HTTP_NEED_MORE, HTTP_DONE or one of the statuses the responder answers; and the
 * response head for it is well formed. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_metrics_http: %s\n", what);
    abort();
}

struct outcome {
    int result;
    size_t used;
    struct http_req r;
};

/* Feeds data in pieces of the given sizes (cycled; 0 = the rest), as a responder would. */
static void run(const uint8_t *data, size_t n, const uint8_t *sizes, size_t nsizes,
                struct outcome *o)
{
    http_req_init(&o->r);
    o->used = 0;
    o->result = HTTP_NEED_MORE;
    size_t at = 0, k = 0;
    while (at < n && o->result == HTTP_NEED_MORE) {
        size_t piece = nsizes ? sizes[k++ % nsizes] : 0;
        if (piece == 0 || piece > n - at)
            piece = n - at;
        size_t used = 0;
        o->result = http_req_feed(&o->r, data + at, piece, &used);
        if (used > piece)
            fail("took more than it was given");
        if (o->r.len > HTTP_HEAD_MAX)
            fail("holds more than HTTP_HEAD_MAX");
        if (o->result == HTTP_NEED_MORE && used != piece)
            fail("left bytes while wanting more");
        o->used += used;
        at += piece;
    }
    if (o->result != HTTP_NEED_MORE) {
        size_t used = 1;
        if (http_req_feed(&o->r, (const uint8_t *)"x", 1, &used) != o->result || used != 0)
            fail("a final result changed or took more");
    }
}

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
    if (a->result != b->result)
        fail("the result depends on how the bytes were cut");
    if (a->result != HTTP_NEED_MORE && a->used != b->used)
        fail("the bytes taken depend on how they were cut");
    if (a->result == HTTP_DONE &&
        (strcmp(a->r.method, b->r.method) != 0 || a->r.path_len != b->r.path_len ||
         a->r.minor != b->r.minor ||
         memcmp(a->r.buf + a->r.path, b->r.buf + b->r.path, a->r.path_len) != 0))
        fail("the parsed fields depend on how the bytes were cut");
}

static void check_done(const struct outcome *o, const uint8_t *data)
{
    const struct http_req *r = &o->r;
    if (o->used < 2 || o->used > HTTP_HEAD_MAX || memcmp(r->buf, data, o->used) != 0)
        fail("a parsed head is not the bytes taken");
    const char *end = r->buf + o->used;
    if (end[-1] != '\n' ||
        !(end[-2] == '\n' || (o->used >= 3 && end[-2] == '\r' && end[-3] == '\n')))
        fail("a parsed head does not end with a blank line");
    size_t ml = strlen(r->method);
    for (size_t i = 0; i < ml; i++)
        if (!is_tchar((unsigned char)r->method[i]))
            fail("the method is not a token");
    if (r->path > o->used || r->path_len > o->used - r->path)
        fail("the path lies outside the head");
    const char *p = r->buf + r->path;
    if (r->path_len && p[0] != '/' && !(r->path_len == 1 && p[0] == '*'))
        fail("the path does not start with '/'");
    for (size_t i = 0; i < r->path_len; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7F || p[i] == '?')
            fail("the path holds a byte it must not");
    if (r->minor < 0 || r->minor > 9)
        fail("the version is not HTTP/1.x");
    int st = http_metrics_status(r);
    if (st != 200 && st != 404 && st != 405)
        fail("an unexpected status for a parsed request");
    if (st == 200 && strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        fail("200 for a method that is not GET or HEAD");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte: how many of the next bytes are piece sizes (0-7). */
    size_t nsizes = data[0] & 7;
    if (size < 1 + nsizes)
        return 0;
    const uint8_t *sizes = data + 1;
    const uint8_t *req = data + 1 + nsizes;
    size_t n = size - 1 - nsizes;

    static struct outcome whole, cut, bytes;
    static const uint8_t one = 1;
    run(req, n, NULL, 0, &whole);
    run(req, n, sizes, nsizes, &cut);
    run(req, n, &one, 1, &bytes);
    check_same(&whole, &cut);
    check_same(&whole, &bytes);

    int r = whole.result;
    if (r != HTTP_NEED_MORE && r != HTTP_DONE && r != -400 && r != -431 && r != -501 && r != -505)
        fail("an unexpected result");
    if (r == -431 && whole.used != HTTP_HEAD_MAX)
        fail("431 before the head limit was reached");
    if (r == HTTP_NEED_MORE && n >= HTTP_HEAD_MAX)
        fail("still wanting more past the head limit");
    if (r == HTTP_DONE)
        check_done(&whole, req);
    if (r != HTTP_NEED_MORE) {
        int status = r == HTTP_DONE ? http_metrics_status(&whole.r) : -r;
        char head[512];
        int k = http_response_head(head, sizeof(head), status, "text/plain", 12345);
        if (k <= 0 || memcmp(head, "HTTP/1.1 ", 9) != 0 ||
            strstr(head, "\r\n\r\n") != head + k - 4 || !strstr(head, "\r\nConnection: close\r\n"))
            fail("a malformed response head");
    }
    return 0;
}
