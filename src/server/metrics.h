/* SPDX-License-Identifier: MIT */
/* --metrics: the server's counters in the Prometheus text format on GET /metrics, served by
 * one thread of its own on its own TCP listener. */
#ifndef SECHO_METRICS_H
#define SECHO_METRICS_H

#include "service.h"

/* At most this many scrapes are served at once; another is answered 503 and closed. */
#define METRICS_MAX_CLIENTS 8
/* A scrape must have sent its whole request head and taken the whole answer within this
 * long of being accepted, or it is closed. */
#define METRICS_TIMEOUT_MS 5000
/* After the answer, how long the peer's FIN is waited for (unread bytes would turn the
 * close into a reset that can destroy the answer in flight). */
#define METRICS_LINGER_MS 1000
/* The largest answer (many thousands of workers would need more). */
#define METRICS_BODY_MAX (16u << 20)

struct metrics;

/*
 * Opens the metrics listener: the inherited socket `fd` when >= 0 (socket activation,
 * already listening), else a new one bound to `spec` ("HOST:PORT", IPv6 as "[ADDR]:PORT";
 * port 0 picks a free one). Logs `event=listening addr=... service=metrics`. Returns NULL
 * after printing "secho: cannot listen on ...: REASON" (or a resolve error) on stderr; `fd`
 * is then closed. The answers describe `srv`, which must outlive metrics_stop.
 */
struct metrics *metrics_open(struct server *srv, const char *spec, int fd);
/* Starts serving on a thread of its own. Returns 0 or -errno (then metrics_stop is still
 * owed). */
int metrics_start(struct metrics *m);
/* Stops the thread (if started), closes the listener and every scrape in progress, frees m.
 * Accepts NULL. */
void metrics_stop(struct metrics *m);

/* Parses "HOST:PORT" ("[ADDR]:PORT" for IPv6) into host (NUL-terminated, brackets removed)
 * and port. Returns false if it is not of that form. */
bool metrics_parse_spec(const char *spec, char *host, size_t hostcap, uint16_t *port);

#endif
