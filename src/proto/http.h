/* SPDX-License-Identifier: MIT */
/* A minimal HTTP/1.x request-head parser and response heads, sans-IO: enough for the
 * --metrics responder (GET /metrics), strict about everything it reads (RFC 9112). */
#ifndef SECHO_HTTP_H
#define SECHO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest request head (request line and header fields) accepted; a longer one is
 * answered 431 and the connection closed. */
#define HTTP_HEAD_MAX 4096
/* The longest method name remembered (the others are "not allowed" all the same). */
#define HTTP_METHOD_MAX 16

enum http_result {
    HTTP_NEED_MORE = 0, /* the head is not complete yet: feed more */
    HTTP_DONE = 1,      /* the head is complete and parsed: see the fields */
    /* Otherwise the negated status to answer with before closing: -400 (malformed), -431
     * (head too large), -501 (a Transfer-Encoding: no request body is read), -505 (not
     * HTTP/1.0 or 1.1). */
};

/*
 * One request head being received. The bytes are kept here (at most HTTP_HEAD_MAX), so the
 * struct is self-contained: the caller feeds what it receives, in pieces of any size.
 * Fields are valid once http_req_feed returned HTTP_DONE.
 */
struct http_req {
    char buf[HTTP_HEAD_MAX];
    size_t len;     /* bytes held */
    size_t scan;    /* where the search for the end of the head goes on */
    size_t line;    /* where the line being searched starts */
    bool seen_line; /* a non-empty line was seen (the request line) */
    int result;     /* HTTP_NEED_MORE until the head is done or refused; then final */
    char method[HTTP_METHOD_MAX + 1];
    size_t path;     /* offset of the path in buf (the request target without query) */
    size_t path_len; /* its length */
    int minor;       /* HTTP/1.minor */
};

/* Starts an empty request. */
void http_req_init(struct http_req *r);

/*
 * Feeds n received bytes. Takes (*used) only the bytes of the head: what follows its blank
 * line is left (a body, or the next request, neither of which a responder that closes after
 * one answer reads). Returns HTTP_NEED_MORE, HTTP_DONE, or a negated status (see
 * enum http_result); once not HTTP_NEED_MORE the result is final and nothing more is taken.
 * The outcome and fields are the same however the bytes are split across calls.
 * Accepted: optional empty lines before the request line; "METHOD SP TARGET SP HTTP/1.x"
 * with a token method and an origin-form ("/path?query") or absolute-form
 * ("http://host/path") target of visible ASCII; header fields "name: value" with a token
 * name and a value without control bytes other than tab; lines ending in CRLF or a bare LF.
 * Refused with -400: anything else, including a bare CR, whitespace before a field's colon,
 * an obsolete line folding, an HTTP/1.1 request without exactly one Host field, and a
 * Content-Length that is not one decimal number.
 */
int http_req_feed(struct http_req *r, const uint8_t *p, size_t n, size_t *used);

/* True if the parsed request's method is `m` (case-sensitive, as HTTP methods are). */
bool http_req_method_is(const struct http_req *r, const char *m);
/* True if the parsed request's path (without its query) is exactly `path`. */
bool http_req_path_is(const struct http_req *r, const char *path);

/* The status the metrics responder answers a parsed request with: 200 for GET or HEAD of
 * /metrics, 405 for another method on it, 404 for any other path. */
int http_metrics_status(const struct http_req *r);

/* The reason phrase of the statuses used here ("OK", "Not Found", ...). */
const char *http_reason(int status);

/*
 * Writes a response head into out: "HTTP/1.1 STATUS REASON", Content-Type, Content-Length,
 * "Connection: close", for 405 "Allow: GET, HEAD", and the blank line. Returns its length,
 * or -1 if cap is too small.
 */
int http_response_head(char *out, size_t cap, int status, const char *content_type,
                       size_t content_length);

#endif
