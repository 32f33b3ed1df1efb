/* SPDX-License-Identifier: MIT */
/* The bench report page and comparison: escaping, well-formed pages that fetch nothing, and
 * figures on the page equal to the JSON's. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "bench_html.h"
#include "check.h"

static struct bench_hist h1, h2;

static void check_escape(const char *in, const char *want)
{
    struct bench_str s = {0};
    bench_html_escape(&s, in);
    bench_str_printf(&s, "%s", ""); /* NUL-terminated even when nothing was appended */
    CHECK(!s.failed);
    CHECK_STR(s.p, want);
    bench_str_free(&s);
}

static void test_escape(void)
{
    check_escape("plain", "plain");
    check_escape("<script>alert('x')</script>", "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
    check_escape("a&b \"c\"", "a&amp;b &quot;c&quot;");
    check_escape("\xc2\xb5s \xe2\x82\xac \xf0\x9f\x98\x80",
                 "\xc2\xb5s \xe2\x82\xac \xf0\x9f\x98\x80");
    /* Control characters and bytes that are not UTF-8 become U+FFFD, one each. */
    check_escape("a\x01"
                 "b",
                 "a\xef\xbf\xbd"
                 "b");
    check_escape("\x1b[31m", "\xef\xbf\xbd[31m");
    check_escape("\xff", "\xef\xbf\xbd");
    check_escape("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");                 /* overlong '/' */
    check_escape("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* a surrogate */
    check_escape("\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd");                 /* cut short */
    check_escape("tab\tnl\n", "tab\tnl\n");
    check_escape("", "");
}

/*
 * Tags balance: every element opened is closed in order, except void elements and
 * self-closed ones; the page is one <html> element after the doctype. Returns true if so.
 */
static bool well_formed(const char *p)
{
    static const char *const voids[] = {"meta", "br", "hr", "img", "input", "link"};
    char stack[64][16];
    int depth = 0, roots = 0;
    if (strncmp(p, "<!DOCTYPE html>\n", 16) != 0)
        return false;
    p += 16;
    while ((p = strchr(p, '<'))) {
        const char *end = strchr(p, '>');
        if (!end)
            return false;
        bool closing = p[1] == '/', selfclosed = end[-1] == '/';
        const char *name = p + 1 + closing;
        size_t n = strcspn(name, " \t\n/>");
        if (n == 0 || n >= 16)
            return false;
        if (closing) {
            if (depth == 0 || strlen(stack[depth - 1]) != n ||
                strncmp(stack[depth - 1], name, n) != 0)
                return false;
            depth--;
        } else if (!selfclosed) {
            bool isvoid = false;
            for (size_t i = 0; i < sizeof(voids) / sizeof(voids[0]); i++)
                isvoid |= strlen(voids[i]) == n && strncmp(voids[i], name, n) == 0;
            if (!isvoid) {
                if (depth == 64)
                    return false;
                if (depth == 0)
                    roots++;
                memcpy(stack[depth], name, n);
                stack[depth++][n] = '\0';
            }
        }
        /* Raw text: nothing inside <style> is a tag. */
        if (!closing && n == 5 && strncmp(name, "style", 5) == 0) {
            end = strstr(end, "</style>");
            if (!end)
                return false;
            end--;
        }
        p = end + 1;
    }
    return depth == 0 && roots == 1;
}

/* Nothing the page would fetch: no URL, no script, no external reference of any kind. */
static void check_self_contained(const char *page)
{
    static const char *const banned[] = {
        "http:",   "https:", "//",   "<script", "src=",    "href=",  "url(",
        "@import", "<link",  "<img", "<iframe", "<object", "<embed", "javascript:"};
    for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
        if (strstr(page, banned[i])) {
            fprintf(stderr, "the page holds %s\n", banned[i]);
            CHECK(0);
        }
}

/* The member `key` of the JSON text as printed there (up to ',' or '}'). */
static bool json_value(const char *json, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p)
        return false;
    p += strlen(pat);
    size_t n = strcspn(p, ",}");
    if (n >= cap)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static uint64_t conn_a[3] = {40, 30, 30}, conn_b[3] = {100, 60, 40};
static struct bench_point pts[3] = {
    {.t = 1, .dur = 1, .msgs = 30, .p50_ns = 20000, .p99_ns = 90000, .max_ns = 100000},
    {.t = 2, .dur = 1, .msgs = 40, .p50_ns = 21000, .p99_ns = 95000, .max_ns = 99000},
    {.t = 2.5,
     .dur = 0.5,
     .msgs = 30,
     .errors = 1,
     .p50_ns = 22000,
     .p99_ns = 99000,
     .max_ns = 100000},
};

static struct bench_result sample(const char *label)
{
    return (struct bench_result){
        .label = label,
        .mode = "closed",
        .proto = "plain",
        .transport = "tcp",
        .host = "127.0.0.1<b>",
        .payload = "random",
        .port = 9090,
        .connections = 3,
        .threads = 1,
        .pipeline = 1,
        .size = 64,
        .duration_s = 2.5,
        .warmup_s = 1,
        .start_unix = 1700000000,
        .runs = 1,
        .msgs_per_s = 40,
        .msgs = 100,
        .mismatch = 1,
        .hist = &h1,
        .conn_msgs = conn_a,
        .slowest_p99_ns = 99000,
        .slowest_conn = 1,
        .points = pts,
        .npoints = 3,
    };
}

static const char *const top_keys[] = {"msgs_per_s", "mb_per_s", "msgs",    "p50_us",
                                       "p90_us",     "p99_us",   "p999_us", "p9999_us",
                                       "max_us",     "mean_us",  "errors",  "mismatch"};

static void test_report(void)
{
    bench_hist_init(&h1);
    for (uint64_t v = 1; v <= 100; v++)
        bench_hist_record(&h1, 15000 + v * v * 8); /* 15 us .. 95 us, skewed */
    struct bench_result r = sample("run <1> & \"friends\"");
    struct bench_str page = {0}, json = {0};
    bench_html_report(&r, NULL, &page);
    bench_format_json(&r, &json);
    CHECK(!page.failed && !json.failed);
    CHECK(well_formed(page.p));
    check_self_contained(page.p);
    /* The label is the title, escaped; so is the host. */
    CHECK(strstr(page.p, "<title>run &lt;1&gt; &amp; &quot;friends&quot;</title>") != NULL);
    CHECK(strstr(page.p, "127.0.0.1&lt;b&gt;") != NULL);
    CHECK(strstr(page.p, "<b>") == NULL);
    /* Every summary figure is on the page exactly as the JSON prints it. */
    for (size_t i = 0; i < sizeof(top_keys) / sizeof(top_keys[0]); i++) {
        char v[64], want[128];
        CHECK(json_value(json.p, top_keys[i], v, sizeof(v)));
        snprintf(want, sizeof(want), "data-key=\"%s\">%s<", top_keys[i], v);
        if (!strstr(page.p, want)) {
            fprintf(stderr, "missing %s\n", want);
            CHECK(0);
        }
    }
    static const char *const fair_keys[] = {"min",  "median",         "max",
                                            "jain", "slowest_p99_us", "slowest_conn"};
    const char *fair = strstr(json.p, "\"fairness\":");
    CHECK(fair != NULL);
    for (size_t i = 0; fair && i < sizeof(fair_keys) / sizeof(fair_keys[0]); i++) {
        char v[64], want[128];
        CHECK(json_value(fair, fair_keys[i], v, sizeof(v)));
        snprintf(want, sizeof(want), "data-key=\"fairness.%s\">%s<", fair_keys[i], v);
        if (!strstr(page.p, want)) {
            fprintf(stderr, "missing %s\n", want);
            CHECK(0);
        }
    }
    /* Three charts: messages/s (a step per second: 6 points), percentiles, per connection. */
    const char *p = page.p;
    int charts = 0;
    while ((p = strstr(p, "<svg ")))
        charts++, p++;
    CHECK_INT(charts, 3);
    CHECK(strstr(page.p, "points=\"80.0,") != NULL); /* the first step starts at t = 0 */
    CHECK(strstr(page.p, ">99%<") != NULL);          /* 100 values resolve percentiles up to 99 % */
    CHECK(strstr(page.p, ">99.9%<") == NULL);
    CHECK(strstr(page.p, ">10 \xc2\xb5s<") != NULL); /* 15..95 us: one decade, 10..100 us */
    CHECK(strstr(page.p, ">100 \xc2\xb5s<") != NULL);
    CHECK(strstr(page.p, ">1 ms<") == NULL);
    bench_str_free(&page);

    /* Open loop: late figures and the offered rate; handshakes: their figures and curve. */
    r.mode = "open";
    r.rate = 40;
    r.late = 7;
    bench_hist_init(&h2);
    bench_hist_record(&h2, 2000000);
    r.hs_hist = &h2;
    r.handshakes = 1;
    r.handshakes_per_s = 0.4;
    bench_html_report(&r, "explicit title", &page);
    CHECK(well_formed(page.p));
    check_self_contained(page.p);
    CHECK(strstr(page.p, "<title>explicit title</title>") != NULL);
    CHECK(strstr(page.p, "data-key=\"late\">7<") != NULL);
    CHECK(strstr(page.p, "data-key=\"handshake.per_s\">0.4<") != NULL);
    CHECK(strstr(page.p, ">offered<") != NULL);
    CHECK(strstr(page.p, ">handshake latency<") != NULL);
    bench_str_free(&page);

    /* Nothing measured: still a whole page, saying so. */
    struct bench_hist empty;
    bench_hist_init(&empty);
    struct bench_result z = sample(NULL);
    z.hist = &empty;
    z.msgs = 0;
    z.msgs_per_s = 0;
    z.conn_msgs = NULL;
    z.connections = 0;
    z.slowest_conn = -1;
    z.points = NULL;
    z.npoints = 0;
    bench_html_report(&z, NULL, &page);
    CHECK(!page.failed);
    CHECK(well_formed(page.p));
    check_self_contained(page.p);
    CHECK(strstr(page.p, "no per-second figures") != NULL);
    CHECK(strstr(page.p, ">no data<") != NULL);
    CHECK(strstr(page.p, "<title>secho bench: plain/tcp 127.0.0.1&lt;b&gt; port 9090</title>") !=
          NULL);
    bench_str_free(&page);
    bench_str_free(&json);
}

static void test_compare(void)
{
    bench_hist_init(&h1);
    bench_hist_init(&h2);
    for (uint64_t v = 1; v <= 1000; v++) {
        bench_hist_record(&h1, 10000 + v * 10);
        bench_hist_record(&h2, 20000 + v * 20); /* twice as slow */
    }
    struct bench_result a = sample(NULL), b = sample(NULL);
    a.msgs = 1000;
    a.conn_msgs = (uint64_t[3]){400, 300, 300};
    a.npoints = 0;
    a.points = NULL;
    b.hist = &h2;
    b.msgs = 1000;
    b.msgs_per_s = 80; /* twice as many */
    b.conn_msgs = conn_b;
    b.npoints = 0;
    b.points = NULL;
    const struct bench_result *runs[] = {&a, &b};
    const char *labels[] = {"a.json", "b <&> \x1b[2J"};
    struct bench_str page = {0}, text = {0}, ja = {0}, jb = {0};
    bench_html_compare(runs, labels, 2, &page);
    bench_format_json(&a, &ja);
    bench_format_json(&b, &jb);
    CHECK(!page.failed);
    CHECK(well_formed(page.p));
    check_self_contained(page.p);
    CHECK(strstr(page.p, "b &lt;&amp;&gt; \xef\xbf\xbd[2J") != NULL);
    CHECK(strstr(page.p, "\x1b") == NULL);
    const char *jsons[] = {ja.p, jb.p};
    for (int run = 0; run < 2; run++)
        for (size_t i = 0; i < sizeof(top_keys) / sizeof(top_keys[0]); i++) {
            if (strcmp(top_keys[i], "msgs") == 0 || strcmp(top_keys[i], "mismatch") == 0)
                continue; /* not compared */
            char v[64], want[160];
            CHECK(json_value(jsons[run], top_keys[i], v, sizeof(v)));
            snprintf(want, sizeof(want), "data-run=\"%d\" data-key=\"%s\">%s<", run, top_keys[i],
                     v);
            if (!strstr(page.p, want)) {
                fprintf(stderr, "missing %s\n", want);
                CHECK(0);
            }
        }
    CHECK(strstr(page.p, "data-key=\"msgs_per_s\">80.0</span> <span "
                         "class=\"ratio\">&times;2.00</span>") != NULL);
    /* Both runs drawn in the percentile chart, with a legend entry each. */
    CHECK(strstr(page.p, ">a.json</text>") != NULL);
    CHECK(strstr(page.p, "stroke=\"#1f77b4\" stroke-width=\"2\" points=") != NULL);
    CHECK(strstr(page.p, "stroke=\"#d62728\" stroke-width=\"2\" points=") != NULL);
    CHECK(strstr(page.p, "no per-second figures") != NULL);

    bench_compare_text(runs, labels, 2, &text);
    CHECK(!text.failed);
    CHECK(strstr(text.p, "\x1b") == NULL); /* a label cannot drive the terminal */
    CHECK(strstr(text.p, "b <&> ?[2J") != NULL);
    CHECK(strstr(text.p, "80.0 (2.00x)") != NULL);
    CHECK(strstr(text.p, "messages/s") != NULL);
    /* Every line as wide as the header (columns line up), none with trailing blanks. */
    size_t first = strcspn(text.p, "\n");
    for (const char *line = text.p; *line; line += strcspn(line, "\n") + 1) {
        size_t n = strcspn(line, "\n"), chars = 0;
        for (size_t i = 0; i < n; i++)
            chars += ((unsigned char)line[i] & 0xc0) != 0x80;
        CHECK_INT(chars, first);
        CHECK(line[n - 1] != ' ');
    }
    bench_str_free(&text);
    bench_str_free(&page);

    /* A small ratio keeps two significant digits. */
    b.msgs_per_s = 0.184;
    bench_compare_text(runs, labels, 2, &text);
    CHECK(strstr(text.p, "0.2 (0.0046x)") != NULL);
    bench_str_free(&text);
    b.msgs_per_s = 80;

    /* One run: no ratios. */
    bench_html_compare(runs, labels, 1, &page);
    CHECK(well_formed(page.p));
    CHECK(strstr(page.p, "&times;") == NULL);
    bench_str_free(&page);
    bench_str_free(&ja);
    bench_str_free(&jb);
}

int main(void)
{
    test_escape();
    test_report();
    test_compare();
    return CHECK_DONE();
}
