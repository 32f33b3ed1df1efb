/* SPDX-License-Identifier: MIT */
/* Reports of `secho bench` beyond the summary: one self-contained HTML page per run
 * (--html), and several runs side by side (--compare), as a page or a text table. Pure
 * functions from results to text; every label, host and name is escaped, and the page
 * fetches nothing: inline SVG and an inline style sheet, no script, font or image. */
#ifndef SECHO_BENCH_HTML_H
#define SECHO_BENCH_HTML_H

#include <stddef.h>

#include "bench.h"

/* Appends s as HTML text (also safe inside a double- or single-quoted attribute): & < > " '
 * become entities, control characters other than tab and newline and bytes that are not
 * valid UTF-8 become U+FFFD. s == NULL appends nothing. */
void bench_html_escape(struct bench_str *out, const char *s);

/*
 * Appends a whole page (<!DOCTYPE html> .. </html>) reporting run r under `title` (NULL:
 * r->label, else a title made from the protocol and host): the summary figures as text
 * (each in an element with data-key="KEY", KEY the JSON member it equals and printed as the
 * JSON prints it: msgs_per_s, mb_per_s, p50_us, p90_us, p99_us, p999_us, p9999_us, max_us,
 * mean_us, errors, ...), messages/s over time from r->points (a note instead when there are
 * none), the latency percentile plot on log axes from r->hist, and the fairness figures with
 * the per-connection counts in order. Out of memory sets out->failed.
 */
void bench_html_report(const struct bench_result *r, const char *title, struct bench_str *out);

/*
 * Runs side by side: runs[0..n) named labels[0..n) (n >= 1), the first the baseline.
 * bench_html_compare appends a page with the table of the summary figures (each cell with
 * data-run="I" data-key="KEY", the value printed as the JSON prints it, and its ratio to
 * the first run's) and the runs' percentile curves and messages/s lines overlaid, each run
 * in its own colour and named in a legend. bench_compare_text appends the same table as
 * aligned text, one column per run, for a terminal.
 */
void bench_html_compare(const struct bench_result *const *runs, const char *const *labels, size_t n,
                        struct bench_str *out);
void bench_compare_text(const struct bench_result *const *runs, const char *const *labels, size_t n,
                        struct bench_str *out);

#endif
