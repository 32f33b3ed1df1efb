/* SPDX-License-Identifier: MIT */
/* Unit tests for log escaping (what a peer can put in a log line) and the writer. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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

static void test_escape_worst_case(void)
{
    uint8_t in[LOG_TEXT_BYTES];
    memset(in, 0x01, sizeof(in));
    char out[LOG_ESCAPED_MAX];
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

static void test_timestamp(void)
{
    char ts[40];
    log_timestamp(ts, sizeof(ts));
    CHECK_INT(strlen(ts), 24); /* 2026-11-25T04:39:15.123Z */
    CHECK(ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');
}

int main(void)
{
    test_escape();
    test_escape_worst_case();
    test_writer();
    test_timestamp();
    return CHECK_DONE();
}
