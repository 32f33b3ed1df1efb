/* SPDX-License-Identifier: MIT */
/* HTTP/1.x request heads for the metrics responder (RFC 9112), sans-IO. */
#include "http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void http_req_init(struct http_req *r)
{
    memset(r, 0, sizeof(*r));
    r->result = HTTP_NEED_MORE;
}

/* tchar (RFC 9110 5.6.2). */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value byte: VCHAR, SP, HTAB or obs-text. */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7F);
}

/* Bytes [a, b) of the head. */
struct span {
    const char *p;
    size_t n;
};

static bool span_ieq(struct span s, const char *word)
{
    return s.n == strlen(word) && strncasecmp(s.p, word, s.n) == 0;
}

/* Parses the request line; returns 0 or a negated status. */
static int parse_request_line(struct http_req *r, struct span line)
{
    const char *p = line.p, *end = line.p + line.n;
    const char *m = p;
    while (p < end && is_tchar((unsigned char)*p))
        p++;
    size_t mlen = (size_t)(p - m);
    if (mlen == 0 || p >= end || *p != ' ')
        return -400;
    /* A longer method is remembered as none: it is not one this responder allows. */
    if (mlen <= HTTP_METHOD_MAX) {
        memcpy(r->method, m, mlen);
        r->method[mlen] = '\0';
    }
    const char *t = ++p;
    while (p<end && * p> 0x20 && *p < 0x7F)
        p++;
    size_t tlen = (size_t)(p - t);
    if (tlen == 0 || p >= end || *p != ' ')
        return -400;
    const char *v = ++p;
    size_t vlen = (size_t)(end - v);
    if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return -400;
    if (v[5] != '1')
        return -505;
    r->minor = v[7] - '0';

    /* The target: origin-form "/path?query", absolute-form "scheme://authority/path?query"
     * or asterisk-form "*"; the path is what is matched. */
    const char *path = t, *tend = t + tlen;
    if (*t != '/' && !(tlen == 1 && *t == '*')) {
        const char *colon = memchr(t, ':', tlen);
        if (!colon || colon == t || tend - colon < 3 || colon[1] != '/' || colon[2] != '/')
            return -400;
        for (const char *s = t; s < colon; s++)
            if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                  (s > t && ((*s >= '0' && *s <= '9') || *s == '+' || *s == '-' || *s == '.'))))
                return -400;
        path = colon + 3;
        while (path < tend && *path != '/' && *path != '?')
            path++;
        if (path == colon + 3)
            return -400; /* no authority */
    }
    const char *q = memchr(path, '?', (size_t)(tend - path));
    r->path = (size_t)(path - r->buf);
    r->path_len = (size_t)((q ? q : tend) - path);
    return 0;
}

/* Parses one header field line; returns 0 or a negated status. */
static int parse_field(struct span line, int *hosts, int *lengths, bool *chunked)
{
    const char *p = line.p, *end = line.p + line.n;
    if (line.n && (*p == ' ' || *p == '\t'))
        return -400; /* obsolete line folding */
    const char *name = p;
    while (p < end && is_tchar((unsigned char)*p))
        p++;
    struct span nm = {name, (size_t)(p - name)};
    if (nm.n == 0 || p >= end || *p != ':')
        return -400; /* no name, or whitespace or junk before the colon */
    p++;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *vend = end;
    while (vend > p && (vend[-1] == ' ' || vend[-1] == '\t'))
        vend--;
    for (const char *s = p; s < vend; s++)
        if (!is_value_char((unsigned char)*s))
            return -400;
    struct span val = {p, (size_t)(vend - p)};
    if (span_ieq(nm, "host")) {
        (*hosts)++;
    } else if (span_ieq(nm, "content-length")) {
        (*lengths)++;
        if (val.n == 0 || val.n > 18)
            return -400;
        for (size_t i = 0; i < val.n; i++)
            if (val.p[i] < '0' || val.p[i] > '9')
                return -400;
    } else if (span_ieq(nm, "transfer-encoding")) {
        *chunked = true;
    }
    return 0;
}

/* Parses the complete head buf[0, end): the blank line that ends it is at the end. */
static int parse_head(struct http_req *r, size_t end)
{
    size_t at = 0;
    bool first = true;
    int hosts = 0, lengths = 0;
    bool chunked = false;
    while (at < end) {
        const char *nl = memchr(r->buf + at, '\n', end - at);
        size_t stop = (size_t)(nl - r->buf); /* there is one: end follows a '\n' */
        size_t len = stop - at;
        if (len > 0 && r->buf[stop - 1] == '\r')
            len--;
        struct span line = {r->buf + at, len};
        at = stop + 1;
        if (memchr(line.p, '\r', line.n) || memchr(line.p, '\0', line.n))
            return -400; /* a bare CR, or a NUL */
        if (line.n == 0) {
            if (first)
                continue; /* empty lines before the request line are ignored */
            break;        /* the end of the head */
        }
        int e = first ? parse_request_line(r, line) : parse_field(line, &hosts, &lengths, &chunked);
        if (e < 0)
            return e;
        first = false;
    }
    if (lengths > 1 || hosts > 1 || (r->minor >= 1 && hosts != 1))
        return -400;
    if (chunked)
        return lengths ? -400 : -501;
    return HTTP_DONE;
}

/* Where the head ends (just past its blank line) within buf[0, len), or 0 if not yet.
 * Resumes at r->scan, in the line that starts at r->line; empty lines before the request
 * line do not end it. */
static size_t find_end(struct http_req *r)
{
    size_t i = r->scan;
    for (; i < r->len; i++) {
        if (r->buf[i] != '\n')
            continue;
        size_t len = i - r->line;
        bool empty = len == 0 || (len == 1 && r->buf[r->line] == '\r');
        r->line = i + 1;
        if (!empty) {
            r->seen_line = true;
        } else if (r->seen_line) {
            r->scan = i + 1;
            return i + 1;
        }
    }
    r->scan = i;
    return 0;
}

int http_req_feed(struct http_req *r, const uint8_t *p, size_t n, size_t *used)
{
    *used = 0;
    if (r->result != HTTP_NEED_MORE)
        return r->result;
    size_t room = HTTP_HEAD_MAX - r->len;
    size_t take = n < room ? n : room;
    size_t before = r->len;
    memcpy(r->buf + r->len, p, take);
    r->len += take;
    size_t end = find_end(r);
    if (end) {
        *used = end - before;
        r->len = end;
        r->result = parse_head(r, end);
        return r->result;
    }
    *used = take;
    if (r->len == HTTP_HEAD_MAX)
        r->result = -431;
    return r->result;
}

bool http_req_method_is(const struct http_req *r, const char *m)
{
    return strcmp(r->method, m) == 0;
}

bool http_req_path_is(const struct http_req *r, const char *path)
{
    return r->path_len == strlen(path) && memcmp(r->buf + r->path, path, r->path_len) == 0;
}

int http_metrics_status(const struct http_req *r)
{
    if (!http_req_path_is(r, "/metrics"))
        return 404;
    if (!http_req_method_is(r, "GET") && !http_req_method_is(r, "HEAD"))
        return 405;
    return 200;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

int http_response_head(char *out, size_t cap, int status, const char *content_type,
                       size_t content_length)
{
    int k = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "%s"
                     "Connection: close\r\n"
                     "\r\n",
                     status, http_reason(status), content_type, content_length,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    return k < 0 || (size_t)k >= cap ? -1 : k;
}
