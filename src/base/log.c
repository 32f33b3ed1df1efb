/* SPDX-License-Identifier: MIT */
/* logfmt event log with a bounded ring and a writer thread, so logging never stalls echo. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING_SIZE    (1U << 20) /* 1 MiB of queued lines */
#define LINE_MAX_LEN 4096
/* After each write the writer naps this long, to batch what comes next. */
#define WRITER_NAP_MS 10

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stopping;
    bool waiting; /* the writer sleeps on cv until a line arrives */
    char *ring;
    size_t head, len; /* ring[head .. head+len) modulo RING_SIZE is queued */
    uint64_t dropped;
    int fd;
    char *path; /* NULL for stderr */
} lg = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .fd = -1};

/* Set by the signal thread (SIGHUP), taken by the writer thread. */
static atomic_int reopen_requested;

static int open_path(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* a broken log must not take the server down */
        }
        p += w;
        n -= (size_t)w;
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    char *chunk = malloc(RING_SIZE);
    pthread_mutex_lock(&lg.mu);
    for (;;) {
        /* Sleep until a line arrives (the first line into an empty ring wakes us, so a
         * quiet server's log is written at once), or now and then to notice a SIGHUP. */
        while (lg.len == 0 && !lg.stopping && !reopen_requested) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            lg.waiting = true;
            pthread_cond_timedwait(&lg.cv, &lg.mu, &ts);
            lg.waiting = false;
        }
        if (reopen_requested && lg.path) {
            reopen_requested = 0;
            int fd = open_path(lg.path);
            if (fd >= 0) {
                close(lg.fd);
                lg.fd = fd;
            }
        }
        reopen_requested = 0;
        size_t n = lg.len;
        if (n == 0 && lg.stopping)
            break;
        /* Copy out under the lock, write without it: producers never wait on the disk. */
        size_t first = RING_SIZE - lg.head < n ? RING_SIZE - lg.head : n;
        if (chunk) {
            memcpy(chunk, lg.ring + lg.head, first);
            memcpy(chunk + first, lg.ring, n - first);
        }
        lg.head = (lg.head + n) % RING_SIZE;
        lg.len = 0;
        int fd = lg.fd;
        bool stopping = lg.stopping;
        pthread_mutex_unlock(&lg.mu);
        if (chunk)
            write_all(fd, chunk, n);
        /* Then nap, so that a busy server's lines go out in batches: producers do not wake
         * us while we nap (a futex wake per echoed message would cost more than the echo). */
        if (!stopping) {
            struct timespec nap = {0, WRITER_NAP_MS * 1000000L};
            nanosleep(&nap, NULL);
        }
        pthread_mutex_lock(&lg.mu);
    }
    pthread_mutex_unlock(&lg.mu);
    free(chunk);
    return NULL;
}

int log_open(const char *path)
{
    int fd = STDERR_FILENO;
    char *p = NULL;
    if (path && strcmp(path, "-") != 0) {
        fd = open_path(path);
        if (fd < 0)
            return -errno;
        p = strdup(path);
    }
    lg.ring = malloc(RING_SIZE);
    if (!lg.ring) {
        if (p)
            close(fd);
        free(p);
        return -ENOMEM;
    }
    lg.fd = fd;
    lg.path = p;
    lg.head = lg.len = 0;
    lg.stopping = false;
    int r = pthread_create(&lg.thread, NULL, writer_main, NULL);
    if (r != 0) {
        free(lg.ring);
        lg.ring = NULL;
        return -r;
    }
    lg.running = true;
    return 0;
}

void log_reopen(void)
{
    reopen_requested = 1;
}

void log_close(void)
{
    if (!lg.running)
        return;
    pthread_mutex_lock(&lg.mu);
    lg.stopping = true;
    pthread_cond_signal(&lg.cv);
    pthread_mutex_unlock(&lg.mu);
    pthread_join(lg.thread, NULL);
    lg.running = false;
    if (lg.path)
        close(lg.fd);
    free(lg.path);
    lg.path = NULL;
    free(lg.ring);
    lg.ring = NULL;
    lg.fd = -1;
}

void log_timestamp(char *out, size_t outlen)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
}

static const char *level_name(enum log_level level)
{
    switch (level) {
    case LOG_DEBUG:
        return "debug";
    case LOG_INFO:
        return "info";
    case LOG_WARN:
        return "warn";
    default:
        return "error";
    }
}

static void ring_put(const char *p, size_t n)
{
    size_t tail = (lg.head + lg.len) % RING_SIZE;
    size_t first = RING_SIZE - tail < n ? RING_SIZE - tail : n;
    memcpy(lg.ring + tail, p, first);
    memcpy(lg.ring, p + first, n - first);
    lg.len += n;
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
    if (!lg.running)
        return;
    char line[LINE_MAX_LEN];
    char ts[40];
    log_timestamp(ts, sizeof(ts));
    int n = snprintf(line, sizeof(line), "ts=%s level=%s event=%s", ts, level_name(level), event);
    if (fmt && *fmt && n >= 0 && (size_t)n < sizeof(line) - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2; /* cut, still one line */
    line[n++] = '\n';

    pthread_mutex_lock(&lg.mu);
    if (lg.dropped && RING_SIZE - lg.len >= 128) {
        char note[128];
        int k = snprintf(note, sizeof(note), "ts=%s level=warn event=log_dropped lines=%llu\n", ts,
                         (unsigned long long)lg.dropped);
        ring_put(note, (size_t)k);
        lg.dropped = 0;
    }
    if (RING_SIZE - lg.len >= (size_t)n)
        ring_put(line, (size_t)n);
    else
        lg.dropped++;
    if (lg.waiting)
        pthread_cond_signal(&lg.cv);
    pthread_mutex_unlock(&lg.mu);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF), or 0 if the bytes there are not one. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

size_t log_escape(char *dst, const uint8_t *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *o = dst;
    size_t i = 0;
    while (i < n) {
        uint8_t c = src[i];
        if (c >= 0x80) {
            size_t k = utf8_seq(src + i, n - i);
            if (k) {
                memcpy(o, src + i, k);
                o += k;
                i += k;
                continue;
            }
        }
        i++;
        switch (c) {
        case '"':
            *o++ = '\\';
            *o++ = '"';
            continue;
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            continue;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            continue;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            continue;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            continue;
        default:
            break;
        }
        if (c < 0x20 || c >= 0x7F) {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    *o = '\0';
    return (size_t)(o - dst);
}
