/* SPDX-License-Identifier: MIT */
/* Unit tests for log escaping (what a peer can put in a log line) and the writer. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

static void esc(const char *in, size_t n, const char *want)
{
    char out[4 * 64 + 1];
    size_t len = log_escape(out, (const uint8_t *)in, n);
    CHECK_STR(out, want);
    CHECK_INT(len, strlen(want));
}

static void test_escape(void)
{
    esc("hello", 5, "hello");
    esc("a\"b", 3, "a\\\"b");
    esc("a\\b", 3, "a\\\\b");
    esc("t\tr\rn\n", 6, "t\\tr\\rn\\n");
    esc("\x01\x1f\x7f", 3, "\\x01\\x1f\\x7f");
    esc("nul\0x", 5, "nul\\x00x");
    /* Valid UTF-8 stays readable. */
    esc("\xd0\x9f\xd1\x80\xd0\xb8", 6, "\xd0\x9f\xd1\x80\xd0\xb8");
    esc("\xe2\x82\xac", 3, "\xe2\x82\xac");
    esc("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80");
    /* Invalid UTF-8: lone continuation, truncated sequence, overlong, surrogate, > U+10FFFF. */
    esc("\x80", 1, "\\x80");
    esc("\xd0", 1, "\\xd0");
    esc("\xe2\x82", 2, "\\xe2\\x82");
    esc("\xc0\xaf", 2, "\\xc0\\xaf");
    esc("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");
    esc("\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80");
    esc("\xff", 1, "\\xff");
    /* A forged log line stays inside its quoted value. */
    esc("x\nts=1 level=info event=stop", 28, "x\\nts=1 level=info event=stop");
}

/* The UTF-8 encoding of code point cp (below U+10000) into out; returns its length. */
static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

static bool forging_cp(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Each C1 control, separator and bidi control alone, then between valid UTF-8 neighbours
 * (which stay raw), written \u{hhhh}; the code points around each range stay raw. */
static void test_escape_forging_characters(void)
{
    uint32_t cps[64];
    size_t ncp = 0;
    for (uint32_t cp = 0x80; cp <= 0x9F; cp++)
        cps[ncp++] = cp;
    const uint32_t more[] = {0x2028, 0x2029, 0x202A, 0x202B, 0x202C, 0x202D,
                             0x202E, 0x2066, 0x2067, 0x2068, 0x2069};
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
        cps[ncp++] = more[i];
    CHECK_INT(ncp, 43);
    for (size_t i = 0; i < ncp; i++) {
        char in[16], want[64];
        size_t n = utf8_put(cps[i], in);
        snprintf(want, sizeof(want), "\\u{%04x}", (unsigned)cps[i]);
        esc(in, n, want);
        /* Between é (2 bytes) and € (3 bytes), and ASCII: the neighbours are copied. */
        char in2[32];
        size_t m = 0;
        memcpy(in2, "a\xc3\xa9", 3);
        m = 3;
        m += utf8_put(cps[i], in2 + m);
        memcpy(in2 + m, "\xe2\x82\xac\"", 4);
        m += 4;
        snprintf(want, sizeof(want), "a\xc3\xa9\\u{%04x}\xe2\x82\xac\\\"", (unsigned)cps[i]);
        esc(in2, m, want);
    }
    /* The exact spelling SPEC gives, and neighbours of each range that stay as they are. */
    esc("\xc2\x85", 2, "\\u{0085}");
    esc("\xe2\x80\xa8", 3, "\\u{2028}");
    esc("\xe2\x80\xae", 3, "\\u{202e}");
    esc("\xe2\x81\xa9", 3, "\\u{2069}");
    const uint32_t raw[] = {0x7E, 0xA0, 0xA9, 0x2027, 0x202F, 0x2065, 0x206A, 0x20AC};
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        char in[4];
        size_t n = utf8_put(raw[i], in);
        in[n] = '\0';
        esc(in, n, in);
    }
    /* Every code point of the first three UTF-8 lengths: escaped exactly when listed. */
    for (uint32_t cp = 0x80; cp < 0x10000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue; /* surrogates are not valid UTF-8 */
        char in[4], out[16];
        size_t n = utf8_put(cp, in);
        size_t len = log_escape(out, (const uint8_t *)in, n);
        if (forging_cp(cp))
            CHECK(len == 8 && out[0] == '\\' && out[1] == 'u');
        else
            CHECK(len == n && memcmp(out, in, n) == 0);
    }
    /* Invalid UTF-8 that resembles them stays \xHH: a lone C1 byte, an overlong U+0085, a
     * separator cut short, a separator's lead byte before ASCII. */
    esc("\x85", 1, "\\x85");
    esc("\xc1\x85", 2, "\\xc1\\x85");
    esc("\xe0\x82\x85", 3, "\\xe0\\x82\\x85");
    esc("\xe2\x80", 2, "\\xe2\\x80");
    esc("\xe2\x80x", 3, "\\xe2\\x80x");
    esc("\xc2", 1, "\\xc2");
}

/* Decodes what log_escape wrote back to bytes; returns the length, or -1 when the text is
 * not a sequence of whole escapes and plain characters. */
static int unescape(const char *s, uint8_t *out)
{
    int n = 0;
    while (*s) {
        if (*s != '\\') {
            out[n++] = (uint8_t)*s++;
            continue;
        }
        unsigned v;
        switch (s[1]) {
        case '"':
        case '\\':
            out[n++] = (uint8_t)s[1];
            s += 2;
            break;
        case 't':
            out[n++] = '\t';
            s += 2;
            break;
        case 'r':
            out[n++] = '\r';
            s += 2;
            break;
        case 'n':
            out[n++] = '\n';
            s += 2;
            break;
        case 'x':
            if (!isxdigit((unsigned char)s[2]) || !isxdigit((unsigned char)s[3]) ||
                sscanf(s + 2, "%2x", &v) != 1)
                return -1;
            out[n++] = (uint8_t)v;
            s += 4;
            break;
        case 'u':
            if (s[2] != '{' || s[7] != '}' || sscanf(s + 3, "%4x", &v) != 1 || !forging_cp(v))
                return -1;
            n += (int)utf8_put(v, (char *)out + n);
            s += 8;
            break;
        default:
            return -1;
        }
    }
    return n;
}

/* The message head is cut at LOG_TEXT_BYTES wherever the peer's bytes fall, possibly inside
 * a sequence: every cut of a text full of escapes gives whole escapes that decode back to
 * exactly the bytes kept. */
static void test_escape_cut_anywhere(void)
{
    const char text[] = "a\xc2\x85\xe2\x80\xa8\xe2\x80\xae"
                        "b\xe2\x81\xa6\"\\\n\x01\xff\xc3\xa9"
                        "\xf0\x9f\x98\x80\xe2\x82\xac\xc2\x9f";
    for (size_t cut = 0; cut < sizeof(text); cut++) {
        char out[4 * sizeof(text) + 1];
        uint8_t back[sizeof(text)];
        size_t len = log_escape(out, (const uint8_t *)text, cut);
        CHECK_INT(len, strlen(out));
        CHECK(len <= 4 * cut);
        int m = unescape(out, back);
        CHECK_INT(m, (int)cut);
        if (m == (int)cut)
            CHECK_MEM(back, text, cut);
    }
    /* A separator whose last byte fell past the cut is \xHH, never a partial \u escape. */
    esc("ok\xe2\x80", 4, "ok\\xe2\\x80");
}

static void test_escape_worst_case(void)
{
    uint8_t in[LOG_TEXT_BYTES];
    memset(in, 0x01, sizeof(in));
    char out[LOG_ESCAPED_MAX];
    CHECK_INT(log_escape(out, in, sizeof(in)), 4 * LOG_TEXT_BYTES);
    /* C1 controls take 8 characters for 2 bytes: exactly the same bound. */
    for (size_t i = 0; i < sizeof(in); i += 2) {
        in[i] = 0xC2;
        in[i + 1] = 0x85;
    }
    CHECK_INT(log_escape(out, in, sizeof(in)), 4 * LOG_TEXT_BYTES);
}

static void test_writer(void)
{
    char path[] = "/tmp/secho-test-log-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK_INT(log_open(path), 0);
    for (int i = 0; i < 1000; i++)
        log_event(LOG_INFO, "message", "conn=%d", i);
    log_event(LOG_WARN, "auth_fail", "peer=%s", "127.0.0.1:1");
    log_close();
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char line[512];
    int n = 0, warn = 0;
    while (f && fgets(line, sizeof(line), f)) {
        CHECK(strncmp(line, "ts=", 3) == 0);
        CHECK(line[strlen(line) - 1] == '\n');
        if (strstr(line, "level=warn event=auth_fail peer=127.0.0.1:1\n"))
            warn++;
        n++;
    }
    if (f)
        fclose(f);
    CHECK_INT(n, 1001);
    CHECK_INT(warn, 1);
    unlink(path);
}

/* Reads a whole file into a NUL-terminated heap buffer (NULL on error). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    for (size_t k; b && (k = fread(b + len, 1, cap - len - 1, f)) > 0;) {
        len += k;
        if (cap - len < 2) {
            char *nb = realloc(b, cap *= 2);
            if (!nb)
                free(b);
            b = nb;
        }
    }
    fclose(f);
    if (b)
        b[len] = '\0';
    return b;
}

#define LT_THREADS 8
#define LT_LINES   3000

/* What the lines of one log say: per-thread sequence checks and the drop reports. */
struct tally {
    int next[LT_THREADS]; /* the seq expected next from each thread */
    long lines, dropped, bad, out_of_order;
};

/*
 * Checks every line of `text`: it starts with ts=, is a whole `event=seq` line written by
 * producer() with an intact padding, or a log_dropped report; seqs of a thread only grow.
 */
static void tally_lines(char *text, struct tally *t)
{
    memset(t, 0, sizeof(*t));
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) {
            t->bad++; /* a torn last line */
            break;
        }
        *nl = '\0';
        unsigned long long d;
        int th, seq;
        char pad[64];
        const char *rest = strncmp(line, "ts=", 3) == 0 ? strstr(line, " level=") : NULL;
        if (rest && sscanf(rest, " level=warn event=log_dropped lines=%llu", &d) == 1) {
            t->dropped += (long)d;
        } else if (rest &&
                   sscanf(rest, " level=info event=seq thread=%d seq=%d pad=%63s", &th, &seq,
                          pad) == 3 &&
                   th >= 0 && th < LT_THREADS && strcmp(pad, "0123456789abcdef0123456789") == 0) {
            if (seq < t->next[th])
                t->out_of_order++;
            t->next[th] = seq + 1;
            t->lines++;
        } else {
            fprintf(stderr, "bad log line: %s\n", line);
            t->bad++;
        }
    }
}

struct producer_arg {
    int id, lines;
    bool pace; /* nap now and then, as a server thread would between messages */
};

static void *producer(void *p)
{
    const struct producer_arg *a = p;
    for (int i = 0; i < a->lines; i++) {
        log_event(LOG_INFO, "seq", "thread=%d seq=%d pad=%s", a->id, i,
                  "0123456789abcdef0123456789");
        if (a->pace && i % 64 == 63) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static bool temp_path(char *path)
{
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* Many threads at once: every line arrives whole, each thread's in its order, none lost
 * unless reported; the threads exit before log_close, so their rings are drained dead. */
static void test_threads(void)
{
    char path[] = "/tmp/secho-test-log-XXXXXX";
    CHECK(temp_path(path));
    CHECK_INT(log_open(path), 0);
    pthread_t t[LT_THREADS];
    struct producer_arg a[LT_THREADS];
    for (int i = 0; i < LT_THREADS; i++) {
        a[i] = (struct producer_arg){.id = i, .lines = LT_LINES, .pace = true};
        CHECK_INT(pthread_create(&t[i], NULL, producer, &a[i]), 0);
    }
    for (int i = 0; i < LT_THREADS; i++)
        pthread_join(t[i], NULL);
    log_close();
    char *text = slurp(path);
    CHECK(text != NULL);
    if (text) {
        struct tally tl;
        tally_lines(text, &tl);
        CHECK_INT(tl.bad, 0);
        CHECK_INT(tl.out_of_order, 0);
        CHECK_INT(tl.lines + tl.dropped, (long)LT_THREADS * LT_LINES);
        /* Paced and with a 256 KiB ring each, a thread may lose lines only to a starved
         * writer: most lines must arrive. */
        CHECK(tl.lines >= (long)LT_THREADS * LT_LINES / 2);
        for (int i = 0; i < LT_THREADS; i++)
            CHECK(tl.next[i] > 0);
        free(text);
    }
    unlink(path);
}

/* A FIFO the test reads only when it chooses to, so the writer can be held in write(). */
struct fifo_reader {
    int fd;
    atomic_bool go;
    char *text;
    size_t len, cap;
};

static void *fifo_read_main(void *p)
{
    struct fifo_reader *fr = p;
    while (!atomic_load(&fr->go)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    /* Blocking from here on: EOF once log_close has closed the writing end. */
    fcntl(fr->fd, F_SETFL, fcntl(fr->fd, F_GETFL) & ~O_NONBLOCK);
    for (;;) {
        if (fr->cap - fr->len < 65536) {
            char *nb = realloc(fr->text, fr->cap = fr->cap * 2 + 65536);
            if (!nb)
                break;
            fr->text = nb;
        }
        ssize_t k = read(fr->fd, fr->text + fr->len, fr->cap - fr->len - 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        fr->len += (size_t)k;
    }
    if (fr->text)
        fr->text[fr->len] = '\0';
    return NULL;
}

/*
 * With the writer stuck on a full pipe, a thread's ring fills: further lines are dropped
 * and counted (log_event does not wait), and the count is reported once the pipe drains.
 * A second thread logs a few lines and exits while the writer is stuck: its lines are
 * still written after it is gone.
 */
static void test_full_ring_and_dead_thread(void)
{
    char dir[] = "/tmp/secho-test-log-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[64];
    snprintf(path, sizeof(path), "%s/fifo", dir);
    CHECK_INT(mkfifo(path, 0600), 0);
    struct fifo_reader fr = {.fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)};
    CHECK(fr.fd >= 0);
    CHECK_INT(log_open(path), 0);
    pthread_t reader;
    CHECK_INT(pthread_create(&reader, NULL, fifo_read_main, &fr), 0);

    /* 64 KiB fill the pipe, 1 MiB the writer's chunk, 256 KiB the ring: 40000 lines of
     * about 110 bytes (4.4 MB) are far more than all of them hold. */
    struct producer_arg flood = {.id = 0, .lines = 40000, .pace = false};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, producer, &flood), 0);
    pthread_join(t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* Never blocked on the stuck writer (generous for sanitizers and a loaded machine). */
    CHECK(t1.tv_sec - t0.tv_sec < 20);

    struct producer_arg brief = {.id = 1, .lines = 50, .pace = false};
    CHECK_INT(pthread_create(&t, NULL, producer, &brief), 0);
    pthread_join(t, NULL);

    atomic_store(&fr.go, true);
    /* Give the writer time to report the drops while running, before log_close. */
    struct timespec nap = {0, 300000000};
    nanosleep(&nap, NULL);
    log_close();
    pthread_join(reader, NULL);
    close(fr.fd);
    CHECK(fr.text != NULL);
    if (fr.text) {
        struct tally tl;
        tally_lines(fr.text, &tl);
        CHECK_INT(tl.bad, 0);
        CHECK_INT(tl.out_of_order, 0);
        CHECK(tl.dropped > 0);
        CHECK_INT(tl.lines + tl.dropped, 40000 + 50);
        CHECK_INT(tl.next[1], 50); /* the exited thread's lines, all of them */
        free(fr.text);
    }
    unlink(path);
    rmdir(dir);
}

/* log_close writes out everything still queued, and a second log_open starts clean. */
static void test_close_flushes(void)
{
    for (int round = 0; round < 2; round++) {
        char path[] = "/tmp/secho-test-log-XXXXXX";
        CHECK(temp_path(path));
        CHECK_INT(log_open(path), 0);
        /* About 200 KiB at once, within one ring: nothing may be dropped. */
        struct producer_arg a = {.id = 2, .lines = 2000, .pace = false};
        producer(&a);
        log_close();
        char *text = slurp(path);
        CHECK(text != NULL);
        if (text) {
            struct tally tl;
            tally_lines(text, &tl);
            CHECK_INT(tl.bad, 0);
            CHECK_INT(tl.dropped, 0);
            CHECK_INT(tl.lines, 2000);
            CHECK_INT(tl.next[2], 2000);
            free(text);
        }
        unlink(path);
    }
    /* Closed: nothing is queued, nothing crashes. */
    log_event(LOG_INFO, "seq", "thread=0 seq=0 pad=x");
}

/* A thread gives its ring's pages back while idle (only once the writer has taken everything)
 * and logs on after it: every line of both batches is written whole and in order. */
static void test_thread_idle(void)
{
    char path[] = "/tmp/secho-test-log-XXXXXX";
    CHECK(temp_path(path));
    log_thread_idle(); /* no ring yet: nothing to do */
    CHECK_INT(log_open(path), 0);
    struct producer_arg a = {.id = 2, .lines = 2000, .pace = false};
    producer(&a);
    log_thread_idle(); /* the writer may not have taken it all: then nothing is given back */
    /* Wait (10 s at most) for the writer to have written the first batch. */
    for (int i = 0; i < 1000; i++) {
        char *text = slurp(path);
        struct tally tl = {0};
        if (text) {
            tally_lines(text, &tl);
            free(text);
        }
        if (tl.next[2] == 2000)
            break;
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    log_thread_idle();
    struct producer_arg b = {.id = 3, .lines = 2000, .pace = false};
    producer(&b);
    log_close();
    char *text = slurp(path);
    CHECK(text != NULL);
    if (text) {
        struct tally tl;
        tally_lines(text, &tl);
        CHECK_INT(tl.bad, 0);
        CHECK_INT(tl.dropped, 0);
        CHECK_INT(tl.out_of_order, 0);
        CHECK_INT(tl.lines, 4000);
        CHECK_INT(tl.next[2], 2000);
        CHECK_INT(tl.next[3], 2000);
        free(text);
    }
    unlink(path);
}

/* ---- log_event_limited, on a fake clock ---- */

static atomic_uint_least64_t lim_fake;

static uint64_t lim_fake_clock(void)
{
    return atomic_load(&lim_fake);
}

static int count_in(const char *text, const char *s)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, s)) != NULL; p += strlen(s))
        n++;
    return n;
}

/* Lines holding `has` (and not `hasnt`), and the sum of their suppressed= counts. */
static void limited_totals(const char *text, const char *has, const char *hasnt, long *lines,
                           long *sup)
{
    *lines = *sup = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[4096];
        if (len < sizeof(buf)) {
            memcpy(buf, line, len);
            buf[len] = '\0';
            if (strstr(buf, has) && !(hasnt && strstr(buf, hasnt))) {
                const char *q = strstr(buf, " suppressed=");
                if (strstr(buf, " conn="))
                    (*lines)++; /* an event's own line (a summary has no conn=) */
                if (q)
                    *sup += strtol(q + 12, NULL, 10);
            }
        }
        line += len + (end ? 1 : 0);
    }
}

/* One peer repeating itself: the burst is written, its next line after a second carries
 * the count, a summary reports what is left at the end; many peers at once meet the
 * overall limit, reported per kind; every event is accounted for exactly once. */
static void test_limited(void)
{
    static const struct log_kind auth = {"auth_fail", LOG_WARN, NULL};
    static const struct log_kind evict = {"disconnect", LOG_INFO, "reason=evicted"};
    char path[] = "/tmp/secho-test-log-XXXXXX";
    CHECK(temp_path(path));
    atomic_store(&lim_fake, 0);
    log_limit_clock(lim_fake_clock);
    CHECK_INT(log_open(path), 0);
    const char *peer = "a b"; /* not a bare token: the summary line must quote it */
    for (int i = 0; i < LOG_LIMIT_PEER_BURST + 2; i++)
        log_event_limited(&auth, peer, "peer=\"a b\" conn=1 error=x seq=%d", i);
    atomic_store(&lim_fake, LOG_LIMIT_PEER_INTERVAL_MS);
    log_event_limited(&auth, peer, "peer=\"a b\" conn=1 error=x seq=lifted");
    for (int i = 0; i < 3; i++)
        log_event_limited(&auth, peer, "peer=\"a b\" conn=1 error=x seq=late%d", i);
    /* 300 peers at once, of two kinds. */
    for (int i = 0; i < 300; i++) {
        char p[32];
        snprintf(p, sizeof(p), "10.0.0.1:%d", 1000 + i);
        if (i % 3)
            log_event_limited(&auth, p, "peer=%s conn=%d error=x", p, i + 2);
        else
            log_event_limited(&evict, p, "peer=%s conn=%d reason=evicted", p, i + 2);
    }
    /* Long after: the peer's limit has lifted, the overall one refilled. */
    atomic_store(&lim_fake, 1000000);
    log_limit_flush();
    log_event(LOG_INFO, "stop", "conns=0");
    log_close();
    log_limit_clock(NULL);
    char *text = slurp(path);
    CHECK(text != NULL);
    if (text) {
        if (getenv("SHOW_LOG"))
            fputs(text, stderr);
        /* The burst, then the line that carries the two left out. */
        CHECK_INT(count_in(text, "error=x seq="), LOG_LIMIT_PEER_BURST + 1);
        CHECK_INT(count_in(text, "seq=lifted suppressed=2\n"), 1);
        CHECK_INT(count_in(text, "level=warn event=auth_fail peer=\"a b\" suppressed=3\n"), 1);
        /* Totals, per kind: lines + suppressed == events. */
        long lines, sup;
        limited_totals(text, "event=auth_fail", NULL, &lines, &sup);
        CHECK_INT(lines + sup, LOG_LIMIT_PEER_BURST + 2 + 1 + 3 + 200);
        limited_totals(text, "event=disconnect", NULL, &lines, &sup);
        CHECK_INT(lines + sup, 100);
        /* The overall limit: its burst (and what the clock allowed) for 300 + 10 events. */
        CHECK(count_in(text, " conn=") <=
              LOG_LIMIT_BURST + LOG_LIMIT_PEER_INTERVAL_MS / LOG_LIMIT_INTERVAL_MS + 1);
        /* One aggregate per kind, at the flush. */
        CHECK_INT(count_in(text, "level=warn event=auth_fail suppressed="), 1);
        CHECK_INT(count_in(text, "level=info event=disconnect reason=evicted suppressed="), 1);
        /* Everything was reported before `stop`. */
        const char *stop = strstr(text, "event=stop");
        CHECK(stop != NULL && strstr(stop, "suppressed=") == NULL);
        free(text);
    }
    unlink(path);
}

/* A limit of its own: counted apart from the log's (neither exhausts the other), reported
 * the same way (with the key's next line, in a per-key or per-kind summary), on
 * log_event_limited_in and log_line_begin_limited lines alike; set up afresh by log_open. */
static struct log_limit own = LOG_LIMIT_INIT(3, 1000, 10, 100);

static void own_message(const char *key, int seq)
{
    static const struct log_kind message = {"message", LOG_INFO, NULL};
    struct log_line l;
    if (!log_line_begin_limited(&l, &own, &message, key))
        return;
    log_line_lit(&l, " peer=");
    log_line_raw(&l, key, strlen(key));
    log_line_lit(&l, " conn=");
    log_line_u64(&l, (uint64_t)seq);
    log_line_end(&l);
}

static void test_limit_of_its_own(void)
{
    static const struct log_kind auth = {"auth_fail", LOG_WARN, NULL};
    static const struct log_kind connect = {"connect", LOG_INFO, NULL};
    char path[] = "/tmp/secho-test-log-XXXXXX", path2[] = "/tmp/secho-test-log-XXXXXX";
    CHECK(temp_path(path));
    CHECK(temp_path(path2));
    atomic_store(&lim_fake, 0);
    log_limit_clock(lim_fake_clock);
    CHECK_INT(log_open(path), 0);
    /* The log's own overall limit is spent... */
    for (int i = 0; i < LOG_LIMIT_BURST + 10; i++) {
        char p[32];
        snprintf(p, sizeof(p), "10.9.9.9:%d", 1000 + i);
        log_event_limited(&auth, p, "peer=%s conn=%d error=x", p, i);
    }
    /* ...and this one's is not: 3 per key, 10 in all. */
    for (int i = 0; i < 5; i++)
        log_event_limited_in(&own, &connect, "10.0.0.1", "peer=10.0.0.1:%d conn=%d", 2000 + i,
                             100 + i);
    for (int i = 0; i < 4; i++)
        own_message("10.0.0.1", 200 + i);
    for (int i = 0; i < 10; i++) {
        char k[32];
        snprintf(k, sizeof(k), "10.0.1.%d", i);
        log_event_limited_in(&own, &connect, k, "peer=%s:1 conn=%d", k, 300 + i);
    }
    /* A second later both of 10.0.0.1's kinds may log again: their counts come along. */
    atomic_store(&lim_fake, 1000);
    log_event_limited_in(&own, &connect, "10.0.0.1", "peer=10.0.0.1:3000 conn=400");
    own_message("10.0.0.1", 401);
    atomic_store(&lim_fake, 1000000);
    log_limit_flush();
    log_event(LOG_INFO, "stop", "conns=0");
    log_close();
    /* A new log_open: the limit starts afresh (its clock went back, as a test's may). */
    atomic_store(&lim_fake, 0);
    CHECK_INT(log_open(path2), 0);
    for (int i = 0; i < 3; i++)
        log_event_limited_in(&own, &connect, "10.0.0.1", "peer=10.0.0.1:5000 conn=%d", 500 + i);
    log_close();
    log_limit_clock(NULL);
    char *text = slurp(path), *text2 = slurp(path2);
    CHECK(text != NULL && text2 != NULL);
    if (text && text2) {
        if (getenv("SHOW_LOG"))
            fputs(text, stderr);
        long lines, sup;
        limited_totals(text, "event=auth_fail", NULL, &lines, &sup);
        CHECK_INT(lines, LOG_LIMIT_BURST);
        CHECK_INT(lines + sup, LOG_LIMIT_BURST + 10);
        /* 10.0.0.1: 3 connect and 3 message lines; then 4 of the others' 10 (overall). */
        CHECK_INT(count_in(text, "event=connect peer=10.0.0.1:200"), 3);
        CHECK_INT(count_in(text, "event=message peer=10.0.0.1 conn=20"), 3);
        CHECK_INT(count_in(text, "event=connect peer=10.0.1."), 4);
        CHECK_INT(count_in(text, "conn=400 suppressed=2\n"), 1);
        CHECK_INT(count_in(text, "conn=401 suppressed=1\n"), 1);
        CHECK_INT(count_in(text, "level=info event=connect suppressed=6\n"), 1);
        limited_totals(text, "event=connect", NULL, &lines, &sup);
        CHECK_INT(lines + sup, 5 + 10 + 1);
        limited_totals(text, "event=message", NULL, &lines, &sup);
        CHECK_INT(lines + sup, 4 + 1);
        const char *stop = strstr(text, "event=stop");
        CHECK(stop != NULL && strstr(stop, "suppressed=") == NULL);
        CHECK_INT(count_in(text2, "event=connect peer=10.0.0.1:5000 conn=50"), 3);
        CHECK_INT(count_in(text2, "suppressed="), 0);
    }
    free(text);
    free(text2);
    unlink(path);
    unlink(path2);
}

/* A quiet writer is woken by the first line: it is on disk within milliseconds. */
static void test_quiet_latency(void)
{
    char path[] = "/tmp/secho-test-log-XXXXXX";
    CHECK(temp_path(path));
    CHECK_INT(log_open(path), 0);
    for (int round = 0; round < 3; round++) {
        /* Let the writer fall asleep (past its nap) before the line. */
        struct timespec nap = {0, 50000000};
        nanosleep(&nap, NULL);
        log_event(LOG_INFO, "quiet", "round=%d", round);
        char want[32];
        snprintf(want, sizeof(want), "event=quiet round=%d\n", round);
        bool seen = false;
        for (int i = 0; i < 500 && !seen; i++) { /* 500 ms at most; normally < 1 ms */
            char *text = slurp(path);
            seen = text && strstr(text, want);
            free(text);
            if (!seen) {
                struct timespec ms = {0, 1000000};
                nanosleep(&ms, NULL);
            }
        }
        CHECK(seen);
    }
    log_close();
    unlink(path);
}

static void test_timestamp(void)
{
    char ts[40];
    log_timestamp(ts, sizeof(ts));
    CHECK_INT(strlen(ts), 24); /* 2026-11-25T04:39:15.123Z */
    CHECK(ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');
}

/* log_value: bare tokens as they are, everything else quoted and escaped, so that base64
 * padding (`=`) is never read as a separator by a logfmt parser. */
static void test_value(void)
{
    char v[LOG_VALUE_MAX(64)];
    const char *bare = "127.0.0.1:9090";
    CHECK(log_value(v, sizeof(v), bare) == bare);
    CHECK_STR(log_value(v, sizeof(v), "[::1]:5"), "[::1]:5");
    CHECK_STR(log_value(v, sizeof(v), "abc="), "\"abc=\"");
    CHECK_STR(log_value(v, sizeof(v), "message too long"), "\"message too long\"");
    CHECK_STR(log_value(v, sizeof(v), ""), "\"\"");
    CHECK_STR(log_value(v, sizeof(v), "a\"b"), "\"a\\\"b\"");
    CHECK_STR(log_value(v, sizeof(v), "a\\b"), "a\\b"); /* SPEC: a backslash may stand bare */
    CHECK_STR(log_value(v, sizeof(v), "x\ny"), "\"x\\ny\"");
    CHECK_STR(log_value(v, sizeof(v), "caf\xc3\xa9"), "\"caf\xc3\xa9\"");
    CHECK_STR(log_value(v, sizeof(v), "\x7f"), "\"\\x7f\"");
    /* Too long for dst: cut to what fits, still one whole quoted value. */
    char small[LOG_VALUE_MAX(3)];
    CHECK_STR(log_value(small, sizeof(small), "ab cdef"), "\"ab \"");
}

/* SIGHUP's log_reopen: the reopened file starts with event=reopen. */
static void test_reopen(void)
{
    char path[] = "/tmp/secho-test-log-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    char old[sizeof(path) + 8];
    snprintf(old, sizeof(old), "%s.1", path);
    CHECK_INT(log_open(path), 0);
    log_event(LOG_INFO, "connect", "peer=%s", "127.0.0.1:1");
    CHECK_INT(rename(path, old), 0);
    log_reopen();
    char *got = NULL;
    for (int i = 0; i < 2000 && !(got && strstr(got, "event=reopen")); i++) {
        free(got);
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
        got = slurp(path);
    }
    log_close();
    CHECK(got != NULL);
    CHECK(got && strncmp(got, "ts=", 3) == 0 && strstr(got, " level=info event=reopen\n"));
    free(got);
    char *before = slurp(old);
    CHECK(before && strstr(before, "event=connect peer=127.0.0.1:1\n"));
    CHECK(before && !strstr(before, "event=reopen"));
    free(before);
    unlink(path);
    unlink(old);
}

int main(void)
{
    test_escape();
    test_escape_forging_characters();
    test_escape_cut_anywhere();
    test_escape_worst_case();
    test_writer();
    test_threads();
    test_full_ring_and_dead_thread();
    test_close_flushes();
    test_thread_idle();
    test_quiet_latency();
    test_timestamp();
    test_value();
    test_reopen();
    test_limited();
    test_limit_of_its_own();
    return CHECK_DONE();
}
