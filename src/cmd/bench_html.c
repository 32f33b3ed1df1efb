/* SPDX-License-Identifier: MIT */
/* The --html report page and the --compare table of `secho bench`: text from results, every
 * name escaped, nothing fetched (inline SVG, no script). */
#include "bench_html.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- escaping ---- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 (RFC 3629 section 4: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (!n)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminator */
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
        (c == 0xf4 && p[1] > 0x8f))
        return 0;
    return n;
}

void bench_html_escape(struct bench_str *out, const char *s)
{
    if (!s)
        return;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned c = *p;
        size_t n = utf8_len(p);
        if (c == '&')
            bench_str_printf(out, "&amp;");
        else if (c == '<')
            bench_str_printf(out, "&lt;");
        else if (c == '>')
            bench_str_printf(out, "&gt;");
        else if (c == '"')
            bench_str_printf(out, "&quot;");
        else if (c == '\'')
            bench_str_printf(out, "&#39;");
        else if (n == 0 || (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
            bench_str_printf(out, "\xef\xbf\xbd"); /* U+FFFD */
        else
            bench_str_printf(out, "%.*s", (int)n, (const char *)p);
        p += n ? n : 1;
    }
}

/* For a terminal: s with control characters and invalid UTF-8 shown as '?', so a label
 * read from a file cannot send escape sequences. */
static void put_text(struct bench_str *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_len(p);
        if (n == 0 || *p < 0x20 || *p == 0x7f)
            bench_str_printf(out, "?");
        else
            bench_str_printf(out, "%.*s", (int)n, (const char *)p);
        p += n ? n : 1;
    }
}

/* ---- the figures ---- */

enum fig {
    F_MSGS_PER_S,
    F_MB_PER_S,
    F_MSGS,
    F_P50,
    F_P90,
    F_P99,
    F_P999,
    F_P9999,
    F_MAX,
    F_MEAN,
    F_ERRORS,
    F_MISMATCH,
    F_LOST,
    F_CONN_ERRORS,
    F_LATE,
    F_UNSENT,
    F_HS_PER_S,
    F_HS_P50,
    F_HS_P99,
    F_FAIR_MIN,
    F_FAIR_MEDIAN,
    F_FAIR_MAX,
    F_JAIN,
    F_SLOWEST_P99,
    NFIGS
};

enum when { ALWAYS, OPEN, HANDSHAKES };

/* Each figure under the name of its JSON member (fairness and handshake members with their
 * object's name in front), printed with the JSON's digits. */
static const struct {
    const char *key, *name;
    int digits;
    enum when when;
} figs[NFIGS] = {
    [F_MSGS_PER_S] = {"msgs_per_s", "messages/s", 1, ALWAYS},
    [F_MB_PER_S] = {"mb_per_s", "MB/s", 3, ALWAYS},
    [F_MSGS] = {"msgs", "messages", 0, ALWAYS},
    [F_P50] = {"p50_us", "p50 latency (\xc2\xb5s)", 3, ALWAYS},
    [F_P90] = {"p90_us", "p90 latency (\xc2\xb5s)", 3, ALWAYS},
    [F_P99] = {"p99_us", "p99 latency (\xc2\xb5s)", 3, ALWAYS},
    [F_P999] = {"p999_us", "p99.9 latency (\xc2\xb5s)", 3, ALWAYS},
    [F_P9999] = {"p9999_us", "p99.99 latency (\xc2\xb5s)", 3, ALWAYS},
    [F_MAX] = {"max_us", "max latency (\xc2\xb5s)", 3, ALWAYS},
    [F_MEAN] = {"mean_us", "mean latency (\xc2\xb5s)", 3, ALWAYS},
    [F_ERRORS] = {"errors", "errors", 0, ALWAYS},
    [F_MISMATCH] = {"mismatch", "wrong echoes", 0, ALWAYS},
    [F_LOST] = {"lost", "lost echoes", 0, ALWAYS},
    [F_CONN_ERRORS] = {"conn_errors", "failed connections", 0, ALWAYS},
    [F_LATE] = {"late", "late messages", 0, OPEN},
    [F_UNSENT] = {"unsent", "never sent", 0, OPEN},
    [F_HS_PER_S] = {"handshake.per_s", "handshakes/s", 1, HANDSHAKES},
    [F_HS_P50] = {"handshake.p50_us", "handshake p50 (\xc2\xb5s)", 3, HANDSHAKES},
    [F_HS_P99] = {"handshake.p99_us", "handshake p99 (\xc2\xb5s)", 3, HANDSHAKES},
    [F_FAIR_MIN] = {"fairness.min", "per connection: min", 0, ALWAYS},
    [F_FAIR_MEDIAN] = {"fairness.median", "per connection: median", 0, ALWAYS},
    [F_FAIR_MAX] = {"fairness.max", "per connection: max", 0, ALWAYS},
    [F_JAIN] = {"fairness.jain", "Jain's fairness index", 6, ALWAYS},
    [F_SLOWEST_P99] = {"fairness.slowest_p99_us", "slowest connection's p99 (\xc2\xb5s)", 3,
                       ALWAYS},
};

static double us_of(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static bool is_open(const struct bench_result *r)
{
    return strcmp(r->mode, "open") == 0;
}

/* Every figure of r into v[NFIGS]. False when out of memory (the fairness sort). */
static bool values_of(const struct bench_result *r, double *v)
{
    const struct bench_hist *h = r->hist;
    struct bench_fair f;
    bool ok = bench_fairness(r->conn_msgs, r->conn_msgs ? r->connections : 0, &f) == 0;
    v[F_MSGS_PER_S] = r->msgs_per_s;
    v[F_MB_PER_S] = r->msgs_per_s * (double)r->size / 1e6;
    v[F_MSGS] = (double)r->msgs;
    static const double pct[] = {50, 90, 99, 99.9, 99.99};
    uint64_t p[5];
    bench_hist_percentiles(h, pct, 5, p);
    v[F_P50] = us_of(p[0]);
    v[F_P90] = us_of(p[1]);
    v[F_P99] = us_of(p[2]);
    v[F_P999] = us_of(p[3]);
    v[F_P9999] = us_of(p[4]);
    v[F_MAX] = us_of(h->count ? h->max : 0);
    v[F_MEAN] = bench_hist_mean(h) / 1000.0;
    v[F_ERRORS] = (double)bench_errors(r);
    v[F_MISMATCH] = (double)r->mismatch;
    v[F_LOST] = (double)r->lost;
    v[F_CONN_ERRORS] = (double)r->conn_errors;
    v[F_LATE] = (double)r->late;
    v[F_UNSENT] = (double)r->unsent;
    v[F_HS_PER_S] = r->handshakes_per_s;
    v[F_HS_P50] = r->hs_hist ? us_of(bench_hist_percentile(r->hs_hist, 50)) : 0;
    v[F_HS_P99] = r->hs_hist ? us_of(bench_hist_percentile(r->hs_hist, 99)) : 0;
    v[F_FAIR_MIN] = (double)f.min;
    v[F_FAIR_MEDIAN] = (double)f.median;
    v[F_FAIR_MAX] = (double)f.max;
    v[F_JAIN] = f.jain;
    v[F_SLOWEST_P99] = us_of(r->slowest_p99_ns);
    return ok;
}

static bool fig_applies(enum fig i, const struct bench_result *r)
{
    return figs[i].when == ALWAYS || (figs[i].when == OPEN && is_open(r)) ||
           (figs[i].when == HANDSHAKES && r->hs_hist);
}

static void put_value(struct bench_str *out, enum fig i, double v)
{
    bench_str_printf(out, "%.*f", figs[i].digits, v);
}

/* "plain/tcp 127.0.0.1 port 9090: 10 connections on 1 thread, 64-byte random messages,
 * pipeline 1" and the load, escaped. */
static void put_run_line(struct bench_str *out, const struct bench_result *r)
{
    bench_html_escape(out, r->proto);
    bench_str_printf(out, "/");
    bench_html_escape(out, r->transport);
    bench_str_printf(out, " ");
    bench_html_escape(out, r->host);
    bench_str_printf(out, " port %u: %llu connection%s on %u thread%s, %zu-byte ", r->port,
                     (unsigned long long)r->connections, r->connections == 1 ? "" : "s", r->threads,
                     r->threads == 1 ? "" : "s", r->size);
    bench_html_escape(out, r->payload);
    bench_str_printf(out, " messages, pipeline %u; ", r->pipeline);
    if (is_open(r))
        bench_str_printf(out, "open loop at %.0f messages/s offered", r->rate);
    else if (strcmp(r->mode, "handshakes") == 0)
        bench_str_printf(out, "handshake cycles");
    else
        bench_str_printf(out, "closed loop");
    if (r->noise_name) {
        bench_str_printf(out, ", ");
        bench_html_escape(out, r->noise_name);
    }
    bench_str_printf(out, "; %.2f s measured after %.2f s warm-up", r->duration_s, r->warmup_s);
    if (r->runs > 1)
        bench_str_printf(out, "; %llu runs merged, started within %.3f s",
                         (unsigned long long)r->runs, r->start_spread_s);
    time_t t = (time_t)r->start_unix;
    struct tm tm;
    char when[32];
    if (t > 0 && gmtime_r(&t, &tm) && strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm))
        bench_str_printf(out, "; started %s UTC", when);
}

/* ---- charts ---- */

enum axis {
    AX_LINEAR, /* from 0 */
    AX_LOG,    /* decades */
    AX_NINES,  /* percentiles: x = log10(1 / (1 - q)), so 90 %, 99 %, 99.9 % are equally apart */
};

struct series {
    const char *label; /* NULL: no legend entry */
    const double *x, *y;
    size_t n;
    unsigned colour; /* index into the palette; from its end on, dashed */
    bool dashed;
};

struct chart {
    const char *title, *xlabel, *ylabel;
    enum axis xa, ya;
};

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define NPALETTE (sizeof(palette) / sizeof(palette[0]))

#define CW     900.0 /* the drawing's size in SVG units; it scales with the page */
#define CH     360.0
#define LEFT   80.0
#define RIGHT  40.0
#define TOP    44.0
#define BOTTOM 50.0

/* A step of 1, 2 or 5 times a power of ten, about span / 5. */
static double nice_step(double span)
{
    if (!(span > 0))
        return 1;
    double raw = span / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/* A linear axis tick: 950, 1.5k, 12k, 2M. */
static void put_tick(struct bench_str *out, double v)
{
    double a = fabs(v);
    if (a >= 1e6)
        bench_str_printf(out, "%gM", v / 1e6);
    else if (a >= 1e4)
        bench_str_printf(out, "%gk", v / 1e3);
    else
        bench_str_printf(out, "%g", v);
}

/* A latency decade (the value in microseconds is 10^k). */
static void put_decade(struct bench_str *out, int k)
{
    static const char *const unit[] = {"ns", "\xc2\xb5s", "ms", "s"};
    int u = (k + 3) / 3; /* 10^-3 us is 1 ns */
    if (k < -3 || u > 3) {
        bench_str_printf(out, "1e%d \xc2\xb5s", k);
        return;
    }
    static const int mul[] = {1, 10, 100};
    bench_str_printf(out, "%d %s", mul[(k + 3) % 3], unit[u]);
}

/* The percentile at `nines` (0 -> 0 %, 1 -> 90 %, 2 -> 99 %, 3 -> 99.9 %). */
static void put_nines(struct bench_str *out, int k)
{
    double pct = 100.0 * (1.0 - pow(10, -k));
    bench_str_printf(out, "%.*f%%", k > 2 ? k - 2 : 0, pct);
}

/* The value as drawn along an axis (log: its exponent). */
static bool axis_value(enum axis a, double v, double *out)
{
    if (!isfinite(v))
        return false;
    if (a == AX_LOG) {
        if (v <= 0)
            return false;
        v = log10(v);
    }
    *out = v;
    return true;
}

struct range {
    double lo, hi, step;
};

static struct range axis_range(enum axis a, double lo, double hi, bool any)
{
    struct range r;
    if (!any)
        lo = hi = 0;
    if (a == AX_LOG) {
        r.lo = floor(lo);
        r.hi = ceil(hi);
        if (r.hi <= r.lo)
            r.hi = r.lo + 1;
        r.step = 1;
    } else if (a == AX_NINES) {
        r.lo = 0;
        r.hi = ceil(hi - 1e-9);
        if (r.hi < 1)
            r.hi = 1;
        r.step = 1;
    } else {
        r.lo = 0;
        r.step = nice_step(hi);
        r.hi = ceil(hi / r.step - 1e-9) * r.step;
        if (r.hi <= 0)
            r.hi = r.step;
    }
    return r;
}

/* How many steps from lo to hi (at most 100: a range made of odd input stays drawable). */
static long ticks(const struct range *r)
{
    double n = floor((r->hi - r->lo) / r->step + 1e-6);
    return n > 100 ? 100 : n < 1 ? 1 : (long)n;
}

static void put_axis_label(struct bench_str *out, enum axis a, double v)
{
    if (a == AX_LOG)
        put_decade(out, (int)lround(v));
    else if (a == AX_NINES)
        put_nines(out, (int)lround(v));
    else
        put_tick(out, v);
}

static void svg_chart(struct bench_str *out, const struct chart *c, const struct series *s,
                      size_t ns)
{
    double xlo = 0, xhi = 0, ylo = 0, yhi = 0;
    bool any = false;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < s[i].n; j++) {
            double x, y;
            if (!axis_value(c->xa, s[i].x[j], &x) || !axis_value(c->ya, s[i].y[j], &y))
                continue;
            if (!any || x < xlo)
                xlo = x;
            if (!any || x > xhi)
                xhi = x;
            if (!any || y < ylo)
                ylo = y;
            if (!any || y > yhi)
                yhi = y;
            any = true;
        }
    struct range xr = axis_range(c->xa, xlo, xhi, any), yr = axis_range(c->ya, ylo, yhi, any);
    /* The legend has a row of its own per named series, between the title and the plot. */
    size_t named = 0;
    for (size_t i = 0; i < ns; i++)
        named += s[i].label != NULL;
    double top = TOP + 18.0 * (double)named, height = CH + 18.0 * (double)named;
    double pw = CW - LEFT - RIGHT, ph = height - top - BOTTOM;
    bench_str_printf(out,
                     "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" "
                     "height=\"%.0f\" role=\"img\" aria-label=\"",
                     CW, height, CW, height);
    bench_html_escape(out, c->title);
    bench_str_printf(out,
                     "\">\n<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" "
                     "fill=\"#ffffff\"/>\n",
                     CW, height);
    bench_str_printf(out, "<text x=\"%.0f\" y=\"20\" class=\"ct\">", LEFT);
    bench_html_escape(out, c->title);
    bench_str_printf(out, "</text>\n");
    /* Grid lines and tick labels. */
    for (long k = 0, nk = ticks(&xr); k <= nk; k++) {
        double v = xr.lo + (double)k * xr.step;
        double px = LEFT + (v - xr.lo) / (xr.hi - xr.lo) * pw;
        bench_str_printf(out,
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                         "<text x=\"%.1f\" y=\"%.1f\" class=\"tx\">",
                         px, top, px, top + ph, px, top + ph + 16);
        put_axis_label(out, c->xa, v);
        bench_str_printf(out, "</text>\n");
    }
    for (long k = 0, nk = ticks(&yr); k <= nk; k++) {
        double v = yr.lo + (double)k * yr.step;
        double py = top + ph - (v - yr.lo) / (yr.hi - yr.lo) * ph;
        bench_str_printf(out,
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                         "<text x=\"%.1f\" y=\"%.1f\" class=\"ty\">",
                         LEFT, py, LEFT + pw, py, LEFT - 6, py + 4);
        put_axis_label(out, c->ya, v);
        bench_str_printf(out, "</text>\n");
    }
    bench_str_printf(
        out,
        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"frame\"/>\n"
        "<text x=\"%.1f\" y=\"%.1f\" class=\"tx\">",
        LEFT, top, pw, ph, LEFT + pw / 2, height - 8);
    bench_html_escape(out, c->xlabel);
    bench_str_printf(out,
                     "</text>\n<text x=\"14\" y=\"%.1f\" class=\"tx\" "
                     "transform=\"rotate(-90 14 %.1f)\">",
                     top + ph / 2, top + ph / 2);
    bench_html_escape(out, c->ylabel);
    bench_str_printf(out, "</text>\n");
    /* The series, then the legend above them. */
    double lx = LEFT, ly = TOP - 2;
    for (size_t i = 0; i < ns; i++) {
        const char *colour = palette[s[i].colour % NPALETTE];
        bool dashed = s[i].dashed || s[i].colour >= NPALETTE;
        bench_str_printf(out,
                         "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
                         colour, dashed ? " stroke-dasharray=\"6 4\"" : "");
        size_t drawn = 0;
        double lastx = 0, lasty = 0;
        for (size_t j = 0; j < s[i].n; j++) {
            double x, y;
            if (!axis_value(c->xa, s[i].x[j], &x) || !axis_value(c->ya, s[i].y[j], &y))
                continue;
            lastx = LEFT + (x - xr.lo) / (xr.hi - xr.lo) * pw;
            lasty = top + ph - (y - yr.lo) / (yr.hi - yr.lo) * ph;
            bench_str_printf(out, "%s%.1f,%.1f", drawn ? " " : "", lastx, lasty);
            drawn++;
        }
        bench_str_printf(out, "\"/>\n");
        if (drawn == 1) /* one point is no line: mark it */
            bench_str_printf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", lastx,
                             lasty, colour);
    }
    for (size_t i = 0; i < ns; i++) {
        if (!s[i].label)
            continue;
        const char *colour = palette[s[i].colour % NPALETTE];
        bool dashed = s[i].dashed || s[i].colour >= NPALETTE;
        bench_str_printf(out,
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                         "stroke-width=\"3\"%s/><text x=\"%.1f\" y=\"%.1f\" class=\"lg\">",
                         lx, ly - 4, lx + 24, ly - 4, colour,
                         dashed ? " stroke-dasharray=\"6 4\"" : "", lx + 30, ly);
        bench_html_escape(out, s[i].label);
        bench_str_printf(out, "</text>\n");
        ly += 18;
    }
    if (!any)
        bench_str_printf(out, "<text x=\"%.1f\" y=\"%.1f\" class=\"tx\">no data</text>\n",
                         LEFT + pw / 2, top + ph / 2);
    bench_str_printf(out, "</svg>\n");
}

/* ---- chart data ---- */

#define CURVE_POINTS 121

/* r's latency percentiles in microseconds against their nines, from 0 % (the minimum) to
 * the last rank the count resolves (99.9 % of 1000 values), at most 99.9999 %. Returns how
 * many points (0 for an empty histogram). */
static size_t curve_of(const struct bench_hist *h, double *x, double *y)
{
    if (!h || !h->count)
        return 0;
    double top = log10((double)h->count);
    if (top > 6)
        top = 6;
    size_t n = top > 0 ? CURVE_POINTS : 1;
    double pct[CURVE_POINTS];
    uint64_t v[CURVE_POINTS];
    for (size_t i = 0; i < n; i++) {
        x[i] = n > 1 ? top * (double)i / (double)(n - 1) : 0; /* the nines */
        pct[i] = i + 1 == n && top < 6 ? 100 : 100.0 * (1.0 - pow(10, -x[i]));
    }
    bench_hist_percentiles(h, pct, n, v);
    for (size_t i = 0; i < n; i++)
        y[i] = v[i] ? (double)v[i] / 1000.0 : 0.001; /* a log axis has no 0: 1 ns stands in */
    return n;
}

/* Messages (or handshakes) per second of each interval, drawn as a step across it: two
 * points per interval, 2 * r->npoints in all. */
static size_t rate_of(const struct bench_result *r, bool hs, double *x, double *y)
{
    for (size_t i = 0; i < r->npoints; i++) {
        const struct bench_point *p = &r->points[i];
        double n = (double)(hs ? p->handshakes : p->msgs);
        x[2 * i] = p->t - p->dur;
        x[2 * i + 1] = p->t;
        y[2 * i] = y[2 * i + 1] = p->dur > 0 ? n / p->dur : 0;
    }
    return 2 * r->npoints;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- the page ---- */

static const char page_style[] =
    "body{font-family:sans-serif;margin:1.5em auto;max-width:960px;color:#222;"
    "background:#fff;padding:0 1em}"
    "h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "th,td{border:1px solid #ccc;padding:3px 10px;text-align:right}"
    "th{background:#f2f2f2}td.n,th.n{text-align:left}"
    ".ratio{color:#666;font-size:.9em}"
    "svg.chart{max-width:100%;height:auto;display:block;margin:.5em 0}"
    ".grid{stroke:#e4e4e4;stroke-width:1}.frame{fill:none;stroke:#888;stroke-width:1}"
    ".ct{font-size:15px;font-weight:bold}"
    ".tx{font-size:12px;text-anchor:middle;fill:#333}"
    ".ty{font-size:12px;text-anchor:end;fill:#333}.lg{font-size:13px;fill:#222}"
    "p.note{color:#555}";

static void page_head(struct bench_str *out, const char *title)
{
    bench_str_printf(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                          "<meta name=\"viewport\" content=\"width=device-width\">\n<title>");
    bench_html_escape(out, title);
    bench_str_printf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>", page_style);
    bench_html_escape(out, title);
    bench_str_printf(out, "</h1>\n");
}

static void page_foot(struct bench_str *out)
{
    bench_str_printf(out, "<p class=\"note\">Written by secho bench (result schema "
                          "secho-bench/1). Latency percentiles are read from the run's "
                          "histogram, exact to three significant digits.</p>\n"
                          "</body>\n</html>\n");
}

static void summary_row(struct bench_str *out, enum fig i, const double *v)
{
    bench_str_printf(out, "<tr><th class=\"n\">");
    bench_html_escape(out, figs[i].name);
    bench_str_printf(out, "</th><td data-key=\"%s\">", figs[i].key);
    put_value(out, i, v[i]);
    bench_str_printf(out, "</td></tr>\n");
}

static const char latency_note[] =
    "Percentiles on a log scale (90 %, 99 %, 99.9 % equally apart), latency on a log scale";

void bench_html_report(const struct bench_result *r, const char *title, struct bench_str *out)
{
    double v[NFIGS];
    if (!values_of(r, v))
        out->failed = true;
    struct bench_str t = {0};
    if (!title)
        title = r->label;
    if (!title) {
        bench_str_printf(&t, "secho bench: %s/%s %s port %u", r->proto, r->transport, r->host,
                         r->port);
        title = t.p;
    }
    page_head(out, title ? title : "secho bench");
    bench_str_free(&t);
    bench_str_printf(out, "<p class=\"run\">");
    put_run_line(out, r);
    bench_str_printf(out, "</p>\n<h2>Summary</h2>\n<table class=\"summary\">\n");
    static const enum fig summary[] = {F_MSGS_PER_S, F_MB_PER_S, F_MSGS,   F_P50,         F_P90,
                                       F_P99,        F_P999,     F_P9999,  F_MAX,         F_MEAN,
                                       F_ERRORS,     F_MISMATCH, F_LOST,   F_CONN_ERRORS, F_LATE,
                                       F_UNSENT,     F_HS_PER_S, F_HS_P50, F_HS_P99};
    for (size_t i = 0; i < sizeof(summary) / sizeof(summary[0]); i++)
        if (fig_applies(summary[i], r))
            summary_row(out, summary[i], v);
    bench_str_printf(out, "</table>\n");

    /* Throughput over time. */
    bench_str_printf(out, "<h2>Messages per second</h2>\n");
    size_t room = 2 * r->npoints + CURVE_POINTS;
    double *x = malloc(room * sizeof(double) * 4);
    if (!x) {
        out->failed = true;
        return;
    }
    double *y = x + room, *x2 = y + room, *y2 = x2 + room;
    if (r->npoints) {
        struct series s[3] = {
            {.label = "messages/s", .x = x, .y = y, .n = rate_of(r, false, x, y)}};
        size_t ns = 1;
        if (r->hs_hist)
            s[ns++] = (struct series){.label = "handshakes/s",
                                      .x = x2,
                                      .y = y2,
                                      .n = rate_of(r, true, x2, y2),
                                      .colour = 1};
        double ox[2] = {0, r->points[r->npoints - 1].t}, oy[2] = {r->rate, r->rate};
        if (is_open(r))
            s[ns++] = (struct series){
                .label = "offered", .x = ox, .y = oy, .n = 2, .colour = 2, .dashed = true};
        struct chart c = {"Messages per second, each second of the measured window",
                          "seconds into the measured window", "per second", AX_LINEAR, AX_LINEAR};
        svg_chart(out, &c, s, ns);
    } else {
        bench_str_printf(out, "<p class=\"note\">This result has no per-second figures.</p>\n");
    }

    /* Latency distribution. */
    bench_str_printf(out, "<h2>Latency distribution</h2>\n");
    struct series ls[2];
    size_t nl = 0;
    size_t n = curve_of(r->hist, x, y);
    if (n)
        ls[nl++] = (struct series){.label = "echo latency", .x = x, .y = y, .n = n};
    n = curve_of(r->hs_hist, x2, y2);
    if (n)
        ls[nl++] =
            (struct series){.label = "handshake latency", .x = x2, .y = y2, .n = n, .colour = 1};
    struct chart lc = {"Latency by percentile", "percentile", "latency", AX_NINES, AX_LOG};
    svg_chart(out, &lc, ls, nl);
    bench_str_printf(out, "<p class=\"note\">%s.</p>\n", latency_note);
    free(x);

    /* Fairness. */
    bench_str_printf(out, "<h2>Fairness across connections</h2>\n<table class=\"fairness\">\n");
    static const enum fig fair[] = {F_FAIR_MIN, F_FAIR_MEDIAN, F_FAIR_MAX, F_JAIN, F_SLOWEST_P99};
    for (size_t i = 0; i < sizeof(fair) / sizeof(fair[0]); i++)
        summary_row(out, fair[i], v);
    if (r->slowest_conn >= 0)
        bench_str_printf(out,
                         "<tr><th class=\"n\">slowest connection</th><td "
                         "data-key=\"fairness.slowest_conn\">%lld</td></tr>\n",
                         (long long)r->slowest_conn);
    bench_str_printf(out, "</table>\n<p class=\"note\">Echoes per connection in the measured "
                          "window; Jain's index is 1 when every connection got the same and "
                          "1/n when one got everything.</p>\n");
    size_t nc = r->conn_msgs ? (size_t)r->connections : 0;
    if (nc) {
        uint64_t *sorted = malloc(nc * sizeof(*sorted));
        size_t m = nc > 1000 ? 1000 : nc;
        double *cx = malloc(2 * m * sizeof(double));
        if (!sorted || !cx) {
            out->failed = true;
        } else {
            memcpy(sorted, r->conn_msgs, nc * sizeof(*sorted));
            qsort(sorted, nc, sizeof(*sorted), cmp_u64);
            double *cy = cx + m;
            for (size_t i = 0; i < m; i++) {
                size_t k = m > 1 ? i * (nc - 1) / (m - 1) : 0; /* evenly by rank */
                cx[i] = (double)(k + 1);
                cy[i] = (double)sorted[k];
            }
            struct series s = {.label = NULL, .x = cx, .y = cy, .n = m};
            struct chart c = {"Echoes per connection, fewest first", "connections by rank",
                              "echoes", AX_LINEAR, AX_LINEAR};
            svg_chart(out, &c, &s, 1);
        }
        free(sorted);
        free(cx);
    }
    page_foot(out);
}

/* ---- comparison ---- */

/* Figures of the comparison, in order; those of a kind no run has are left out. */
static const enum fig compared[] = {
    F_MSGS_PER_S, F_MB_PER_S,    F_P50,      F_P90,  F_P99,         F_P999,   F_P9999,
    F_MAX,        F_MEAN,        F_ERRORS,   F_LATE, F_HS_PER_S,    F_HS_P50, F_HS_P99,
    F_FAIR_MIN,   F_FAIR_MEDIAN, F_FAIR_MAX, F_JAIN, F_SLOWEST_P99,
};
#define NCOMPARED (sizeof(compared) / sizeof(compared[0]))

/* Descriptive rows: what each run was. */
enum desc { D_MODE, D_PROTO, D_CONNECTIONS, D_SIZE, D_PIPELINE, D_DURATION, NDESC };
static const char *const desc_names[NDESC] = {"load",          "protocol", "connections",
                                              "message bytes", "pipeline", "seconds measured"};

static void put_desc(struct bench_str *out, enum desc d, const struct bench_result *r, bool html)
{
    void (*put)(struct bench_str *, const char *) = html ? bench_html_escape : put_text;
    switch (d) {
    case D_MODE:
        put(out, r->mode);
        if (is_open(r))
            bench_str_printf(out, " %.0f/s", r->rate);
        break;
    case D_PROTO:
        put(out, r->proto);
        bench_str_printf(out, "/");
        put(out, r->transport);
        break;
    case D_CONNECTIONS:
        bench_str_printf(out, "%llu", (unsigned long long)r->connections);
        break;
    case D_SIZE:
        bench_str_printf(out, "%zu", r->size);
        break;
    case D_PIPELINE:
        bench_str_printf(out, "%u", r->pipeline);
        break;
    case D_DURATION:
        bench_str_printf(out, "%.2f", r->duration_s);
        break;
    case NDESC:
        break;
    }
}

static bool any_applies(enum fig f, const struct bench_result *const *runs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fig_applies(f, runs[i]))
            return true;
    return false;
}

/* values[i * NFIGS + f]; NULL when out of memory. */
static double *all_values(const struct bench_result *const *runs, size_t n)
{
    double *v = malloc((n ? n : 1) * NFIGS * sizeof(double));
    for (size_t i = 0; v && i < n; i++)
        if (!values_of(runs[i], v + i * NFIGS)) {
            free(v);
            return NULL;
        }
    return v;
}

/* A ratio with two digits that say something: 1.23, 0.45, 0.0046. */
static void put_ratio(struct bench_str *out, double ratio)
{
    if (ratio > 0 && ratio < 0.1)
        bench_str_printf(out, "%.2g", ratio);
    else
        bench_str_printf(out, "%.2f", ratio);
}

/* "1.23", the run's value over the first's; false when there is no ratio (0 / 0, x / 0). */
static bool ratio_of(double v, double base, double *ratio)
{
    if (!(base > 0) || !isfinite(v))
        return false;
    *ratio = v / base;
    return true;
}

void bench_html_compare(const struct bench_result *const *runs, const char *const *labels, size_t n,
                        struct bench_str *out)
{
    double *v = all_values(runs, n);
    if (!v) {
        out->failed = true;
        return;
    }
    page_head(out, n == 1 ? "secho bench: one run" : "secho bench: runs compared");
    bench_str_printf(out, "<p class=\"run\">Ratios are to the first run, ");
    bench_html_escape(out, labels[0]);
    bench_str_printf(out, ".</p>\n<ol class=\"runs\">\n");
    for (size_t i = 0; i < n; i++) {
        bench_str_printf(out, "<li><b>");
        bench_html_escape(out, labels[i]);
        bench_str_printf(out, "</b>: ");
        put_run_line(out, runs[i]);
        bench_str_printf(out, "</li>\n");
    }
    bench_str_printf(out, "</ol>\n<h2>Summary</h2>\n<table class=\"compare\">\n<tr><th "
                          "class=\"n\">figure</th>");
    for (size_t i = 0; i < n; i++) {
        bench_str_printf(out, "<th>");
        bench_html_escape(out, labels[i]);
        bench_str_printf(out, "</th>");
    }
    bench_str_printf(out, "</tr>\n");
    for (int d = 0; d < NDESC; d++) {
        bench_str_printf(out, "<tr><th class=\"n\">%s</th>", desc_names[d]);
        for (size_t i = 0; i < n; i++) {
            bench_str_printf(out, "<td>");
            put_desc(out, (enum desc)d, runs[i], true);
            bench_str_printf(out, "</td>");
        }
        bench_str_printf(out, "</tr>\n");
    }
    for (size_t k = 0; k < NCOMPARED; k++) {
        enum fig f = compared[k];
        if (!any_applies(f, runs, n))
            continue;
        bench_str_printf(out, "<tr><th class=\"n\">");
        bench_html_escape(out, figs[f].name);
        bench_str_printf(out, "</th>");
        for (size_t i = 0; i < n; i++) {
            if (!fig_applies(f, runs[i])) {
                bench_str_printf(out, "<td></td>");
                continue;
            }
            bench_str_printf(out, "<td><span data-run=\"%zu\" data-key=\"%s\">", i, figs[f].key);
            put_value(out, f, v[i * NFIGS + f]);
            bench_str_printf(out, "</span>");
            double ratio;
            if (i > 0 && fig_applies(f, runs[0]) && ratio_of(v[i * NFIGS + f], v[f], &ratio)) {
                bench_str_printf(out, " <span class=\"ratio\">&times;");
                put_ratio(out, ratio);
                bench_str_printf(out, "</span>");
            }
            bench_str_printf(out, "</td>");
        }
        bench_str_printf(out, "</tr>\n");
    }
    bench_str_printf(out, "</table>\n");
    free(v);

    /* The curves: every run's points in one block. */
    size_t per = CURVE_POINTS, most = 0;
    for (size_t i = 0; i < n; i++)
        if (2 * runs[i]->npoints > most)
            most = 2 * runs[i]->npoints;
    if (most > per)
        per = most;
    double *xy = malloc(n * per * 2 * sizeof(double));
    struct series *s = calloc(n, sizeof(*s));
    if (!xy || !s) {
        out->failed = true;
        free(xy);
        free(s);
        return;
    }
    bench_str_printf(out, "<h2>Latency distribution</h2>\n");
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        double *x = xy + i * per * 2, *y = x + per;
        size_t m = curve_of(runs[i]->hist, x, y);
        if (m)
            s[ns++] =
                (struct series){.label = labels[i], .x = x, .y = y, .n = m, .colour = (unsigned)i};
    }
    struct chart lc = {"Latency by percentile", "percentile", "latency", AX_NINES, AX_LOG};
    svg_chart(out, &lc, s, ns);
    bench_str_printf(out, "<p class=\"note\">%s.</p>\n", latency_note);

    bench_str_printf(out, "<h2>Messages per second</h2>\n");
    ns = 0;
    for (size_t i = 0; i < n; i++) {
        if (!runs[i]->npoints)
            continue;
        double *x = xy + i * per * 2, *y = x + per;
        s[ns++] = (struct series){.label = labels[i],
                                  .x = x,
                                  .y = y,
                                  .n = rate_of(runs[i], false, x, y),
                                  .colour = (unsigned)i};
    }
    struct chart tc = {"Messages per second, each second of the measured window",
                       "seconds into the measured window", "messages/s", AX_LINEAR, AX_LINEAR};
    svg_chart(out, &tc, s, ns);
    if (ns < n)
        bench_str_printf(out,
                         "<p class=\"note\">%zu of the results have no per-second "
                         "figures.</p>\n",
                         n - ns);
    free(xy);
    free(s);
    page_foot(out);
}

/* ---- the text table ---- */

struct cell {
    struct bench_str s;
};

void bench_compare_text(const struct bench_result *const *runs, const char *const *labels, size_t n,
                        struct bench_str *out)
{
    double *v = all_values(runs, n);
    size_t rows = 1 + NDESC + NCOMPARED, cols = n + 1;
    struct cell *c = calloc(rows * cols, sizeof(*c));
    if (!v || !c) {
        out->failed = true;
        free(v);
        free(c);
        return;
    }
    size_t nr = 0;
    bench_str_printf(&c[0].s, "%s", "");
    for (size_t i = 0; i < n; i++)
        put_text(&c[i + 1].s, labels[i]);
    nr++;
    for (int d = 0; d < NDESC; d++, nr++) {
        bench_str_printf(&c[nr * cols].s, "%s", desc_names[d]);
        for (size_t i = 0; i < n; i++)
            put_desc(&c[nr * cols + i + 1].s, (enum desc)d, runs[i], false);
    }
    for (size_t k = 0; k < NCOMPARED; k++) {
        enum fig f = compared[k];
        if (!any_applies(f, runs, n))
            continue;
        put_text(&c[nr * cols].s, figs[f].name);
        for (size_t i = 0; i < n; i++) {
            struct bench_str *s = &c[nr * cols + i + 1].s;
            if (!fig_applies(f, runs[i])) {
                bench_str_printf(s, "-");
                continue;
            }
            put_value(s, f, v[i * NFIGS + f]);
            double ratio;
            if (i > 0 && fig_applies(f, runs[0]) && ratio_of(v[i * NFIGS + f], v[f], &ratio)) {
                bench_str_printf(s, " (");
                put_ratio(s, ratio);
                bench_str_printf(s, "x)");
            }
        }
        nr++;
    }
    /* Columns as wide as their widest cell, counted in characters (UTF-8 lead bytes). */
    size_t *w = calloc(cols, sizeof(*w));
    if (!w)
        out->failed = true;
    for (size_t r = 0; w && r < nr; r++)
        for (size_t k = 0; k < cols; k++) {
            size_t len = 0;
            for (const char *p = c[r * cols + k].s.p; p && *p; p++)
                len += ((unsigned char)*p & 0xc0) != 0x80;
            if (len > w[k])
                w[k] = len;
        }
    for (size_t r = 0; w && r < nr; r++) {
        for (size_t k = 0; k < cols; k++) {
            const struct bench_str *s = &c[r * cols + k].s;
            const char *p = s->p ? s->p : "";
            size_t len = 0;
            for (const char *q = p; *q; q++)
                len += ((unsigned char)*q & 0xc0) != 0x80;
            if (k + 1 == cols)
                bench_str_printf(out, "%s%*s\n", k ? "  " : "", (int)(w[k] - len) + (int)strlen(p),
                                 p);
            else if (k == 0)
                bench_str_printf(out, "%s%*s", p, (int)(w[k] - len), "");
            else
                bench_str_printf(out, "  %*s", (int)(w[k] - len) + (int)strlen(p), p);
        }
    }
    for (size_t i = 0; i < rows * cols; i++) {
        if (c[i].s.failed)
            out->failed = true;
        bench_str_free(&c[i].s);
    }
    free(w);
    free(c);
    free(v);
}
