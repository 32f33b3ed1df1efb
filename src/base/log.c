/* SPDX-License-Identifier: MIT */
/* logfmt event log: one lock-free ring per logging thread, drained by one writer thread. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ratelimit.h"

/* Queued bytes per logging thread (a power of two): as much as the one shared buffer held
 * before rings, so that one event-loop thread (the epoll model, a UDP flood of new peers)
 * can log a burst of ten thousand lines while the writer is scheduled. A page is touched
 * only once lines pass through it, so a connection thread that logs little costs little. */
#define RING_SIZE    (1U << 20)
#define LINE_MAX_LEN LOG_LINE_MAX
/* The writer copies rings into one chunk per write(); a ring always fits in it. */
#define CHUNK_SIZE (1U << 20)
/* After each write the writer naps, to batch what comes next: briefly after a small write
 * (a few lines at a time cost little to wake for, and they show soon), longer after a
 * big one... */
#define WRITER_NAP_SHORT_MS 1
#define WRITER_NAP_MS       10
#define WRITER_SMALL_WRITE  4096
/* ...unless a ring was this full when drained, or a producer fills its ring to RING_URGENT
 * during the nap (it then ends the nap), so that a burst does not overflow the ring. */
#define RING_BUSY     (RING_SIZE / 4)
#define RING_URGENT   (RING_SIZE / 2)
#define CACHE_LINE    64
#define RINGS_WALK_MS 1000

/*
 * A single-producer, single-consumer byte ring holding whole lines. Positions only grow
 * (the slot is pos % RING_SIZE): `tail` is written by the owning thread alone, `head` by
 * the writer thread alone, each published with release and read with acquire, so the
 * bytes before a published position are visible to the other side without a lock.
 */
struct log_ring {
    /* Writer's side. */
    _Alignas(CACHE_LINE) atomic_size_t head;
    _Atomic(struct log_ring *) next; /* set before the push; afterwards only the writer */
    /* Producer's side. */
    _Alignas(CACHE_LINE) atomic_size_t tail;
    size_t head_seen;              /* producer's last look at head: refreshed when short */
    atomic_uint_least64_t dropped; /* lines that did not fit; the writer takes and reports */
    atomic_bool dead;              /* the thread exited; the writer drains and frees the ring */
    /* On lg.pending (or about to be): set by the producer when it publishes, cleared by the
     * writer when it takes the ring off, so the writer visits only rings with news. */
    atomic_bool queued;
    _Atomic(struct log_ring *) qnext; /* next on lg.pending */
    _Alignas(CACHE_LINE) char buf[RING_SIZE];
};

enum { WRITER_AWAKE, WRITER_ASLEEP, WRITER_NAPPING };

static struct {
    pthread_t thread;
    atomic_bool running; /* log_event queues only while set */
    atomic_bool stopping;
    /* WRITER_ASLEEP while the writer sleeps (or is about to): a producer that sees it sets
     * WRITER_AWAKE and wakes the writer with a futex; WRITER_NAPPING while it naps, which
     * only a producer whose ring is filling up ends. A 32-bit int, as a futex word is. */
    atomic_int sleeping;
    _Atomic(struct log_ring *) rings; /* every registered ring; producers push, writer unlinks */
    /* Rings with something new (bytes, drops): producers push, the writer takes them all at
     * once. With -m threads there is a ring per connection thread, thousands: walking them
     * all at every drain (each ring's header on a page of its own) cost the writer more
     * than the connections did. The full list is walked once a second (RINGS_WALK_MS) and
     * at reopen and close, to free the rings of exited threads and as a safety net. */
    _Atomic(struct log_ring *) pending;
    struct timespec walked; /* the writer's last full walk (CLOCK_MONOTONIC) */
    char *chunk;
    int fd;
    char *path;   /* NULL for stderr */
    bool journal; /* stderr is the systemd journal: "<N>" priorities, no ts= */
    bool stuck;   /* log_close gave up on a writer blocked in write(2); see log.h */
} lg = {.fd = -1};

static const char *level_name(enum log_level level);

/* True when stderr is a stream the journal reads: systemd sets JOURNAL_STREAM to its
 * "DEVICE:INODE" (decimal), which must match stderr itself, not a descriptor redirected
 * since (sd_journal_stream_fd(3)). */
static bool stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char end;
    if (!e || sscanf(e, "%llu:%llu%c", &dev, &ino, &end) != 2)
        return false;
    struct stat st;
    return fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

/* The syslog priority journald reads from a "<N>" line prefix (sd-daemon(3)). */
static int journal_priority(enum log_level level)
{
    switch (level) {
    case LOG_DEBUG:
        return 7;
    case LOG_INFO:
        return 6;
    case LOG_WARN:
        return 4;
    default:
        return 3;
    }
}

/* The date and time to the second of the calling thread's last timestamp: a busy thread
 * logs many lines a second, and only the milliseconds change between them. */
static _Thread_local struct {
    time_t sec;
    bool valid;
    char text[24]; /* "2026-11-25T04:39:15" */
    size_t len;
} ts_cache;

/* Formats the current UTC time as 2026-11-25T04:39:15.123Z into out (>= 40 bytes, NUL
 * terminated); returns its length. gmtime_r and the formatting run once a second per
 * thread. */
static size_t timestamp_text(char *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!ts_cache.valid || ts_cache.sec != ts.tv_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        int k = snprintf(ts_cache.text, sizeof(ts_cache.text), "%04d-%02d-%02dT%02d:%02d:%02d",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec);
        if (k < 0 || (size_t)k >= sizeof(ts_cache.text)) {
            /* A year past 9999: not cached, formatted whole. */
            ts_cache.valid = false;
            return (size_t)snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
        }
        ts_cache.sec = ts.tv_sec;
        ts_cache.len = (size_t)k;
        ts_cache.valid = true;
    }
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000L);
    size_t n = ts_cache.len;
    memcpy(out, ts_cache.text, n);
    out[n++] = '.';
    out[n++] = (char)('0' + ms / 100);
    out[n++] = (char)('0' + ms / 10 % 10);
    out[n++] = (char)('0' + ms % 10);
    out[n++] = 'Z';
    out[n] = '\0';
    return n;
}

/* The head of every line: "ts=... level=... event=EVENT", or for the journal, which stamps
 * each line itself, "<N>level=... event=EVENT". Returns what snprintf returns. */
static int line_head(char *line, size_t cap, enum log_level level, const char *event)
{
    if (lg.journal)
        return snprintf(line, cap, "<%d>level=%s event=%s", journal_priority(level),
                        level_name(level), event);
    /* Every line has one: put together by hand, not by snprintf (one per echoed message). */
    char ts[40];
    size_t tn = timestamp_text(ts);
    const char *lv = level_name(level);
    size_t ln = strlen(lv), en = strlen(event);
    size_t n = 3 + tn + 7 + ln + 7 + en;
    if (n >= cap)
        return snprintf(line, cap, "ts=%s level=%s event=%s", ts, lv, event);
    char *o = line;
    memcpy(o, "ts=", 3);
    o += 3;
    memcpy(o, ts, tn);
    o += tn;
    memcpy(o, " level=", 7);
    o += 7;
    memcpy(o, lv, ln);
    o += ln;
    memcpy(o, " event=", 7);
    o += 7;
    memcpy(o, event, en);
    o += en;
    *o = '\0';
    return (int)n;
}

/* Set by the signal thread (SIGHUP), taken by the writer thread. */
static atomic_int reopen_requested;

/* The rate limit of log_event_limited: one for the process, so that its overall bound holds
 * whatever thread logs. Each limit's mutex guards it; the writer thread reports what every
 * limit in use counted. */
static struct log_limit lim_own = LOG_LIMIT_INIT(LOG_LIMIT_PEER_BURST, LOG_LIMIT_PEER_INTERVAL_MS,
                                                 LOG_LIMIT_BURST, LOG_LIMIT_INTERVAL_MS);
/* The limits set up since the first log_open (pushed in front, never taken out). */
static _Atomic(struct log_limit *) lim_list;
/* Counts the log_opens: a limit set up for an earlier one starts afresh at its next use. */
static atomic_uint lim_gen;
static uint64_t (*lim_clock)(void);
static atomic_uint_least64_t lim_next_flush; /* when the writer reports what is due next */

static uint64_t lim_now(void)
{
    if (lim_clock)
        return lim_clock();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* At log_open: every limit starts afresh at its next use. */
static void lim_reset(void)
{
    unsigned g = atomic_load(&lim_gen) + 1;
    atomic_store(&lim_gen, g ? g : 1);
    atomic_store(&lim_next_flush, 0);
}

/* Takes l->mu and makes sure l is set up for the current log_open. */
static void lim_lock(struct log_limit *l)
{
    pthread_mutex_lock(&l->mu);
    unsigned g = atomic_load_explicit(&lim_gen, memory_order_relaxed);
    if (l->gen == g)
        return;
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = lim_now() ^ (uint64_t)(uintptr_t)&seed ^ (uint64_t)(uintptr_t)l;
    rl_init(&l->rl, l->per_key, l->overall, seed);
    if (l->gen == 0) {
        struct log_limit *first = atomic_load_explicit(&lim_list, memory_order_relaxed);
        do
            l->next = first;
        while (!atomic_compare_exchange_weak_explicit(&lim_list, &first, l, memory_order_release,
                                                      memory_order_relaxed));
    }
    l->gen = g;
}

/* rl_flush's report, as one line of the calling thread (under the limit's mutex: log_event
 * takes no lock). */
static void lim_emit(void *arg, const void *id, const char *peer, uint64_t n)
{
    (void)arg;
    const struct log_kind *k = id;
    if (!k) {
        log_event(LOG_WARN, "log_suppressed", "suppressed=%llu", (unsigned long long)n);
        return;
    }
    const char *f = k->fields ? k->fields : "";
    const char *sep = *f ? " " : "";
    if (peer) {
        char pv[LOG_VALUE_MAX(RL_KEY_MAX)];
        log_event(k->level, k->event, "peer=%s%s%s suppressed=%llu",
                  log_value(pv, sizeof(pv), peer[0] ? peer : "-"), sep, f, (unsigned long long)n);
    } else {
        log_event(k->level, k->event, "%s%ssuppressed=%llu", f, sep, (unsigned long long)n);
    }
}

/* Reports what the limits counted: what is due (every LOG_LIMIT_FLUSH_MS, from the writer),
 * or everything (`all`). */
static void lim_flush(bool all)
{
    uint64_t now = lim_now();
    /* Under a test clock only log_limit_flush and log_close report: what the writer thread
     * would report on its own would then depend on when it happens to run. */
    if (!all && (lim_clock || now < atomic_load_explicit(&lim_next_flush, memory_order_relaxed)))
        return;
    unsigned g = atomic_load_explicit(&lim_gen, memory_order_relaxed);
    for (struct log_limit *l = atomic_load_explicit(&lim_list, memory_order_acquire); l;
         l = l->next) {
        pthread_mutex_lock(&l->mu);
        if (l->gen == g) /* else: not used since this log_open, nothing owed */
            rl_flush(&l->rl, now, all, lim_emit, NULL);
        pthread_mutex_unlock(&l->mu);
    }
    atomic_store_explicit(&lim_next_flush, now + LOG_LIMIT_FLUSH_MS, memory_order_relaxed);
}

/* The calling thread's ring, registered on its first log_event. The key's destructor marks
 * it dead when the thread exits (the threads model runs one thread per connection). */
static _Thread_local struct log_ring *my_ring;
static pthread_key_t ring_key;
static pthread_once_t ring_key_once = PTHREAD_ONCE_INIT;

static void ring_release(void *p)
{
    struct log_ring *r = p;
    my_ring = NULL;
    /* After this store the writer may free the ring at any time: touch it no more. */
    atomic_store_explicit(&r->dead, true, memory_order_release);
}

static void ring_key_create(void)
{
    if (pthread_key_create(&ring_key, ring_release) != 0)
        abort(); /* only EAGAIN/ENOMEM at start-up: nothing sensible is left to do */
}

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

static void futex_wake(atomic_int *word)
{
    syscall(SYS_futex, (int *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Wakes the writer if it sleeps, or if `urgent` and it naps. Called after the caller
 * published what the writer is to see. */
static void wake_writer(bool urgent)
{
    /* Pairs with the fence in writer_sleep: either we see WRITER_ASLEEP here, or the
     * writer's last look before sleeping sees what we just published. */
    atomic_thread_fence(memory_order_seq_cst);
    int s = atomic_load_explicit(&lg.sleeping, memory_order_relaxed);
    if ((s == WRITER_ASLEEP || (s == WRITER_NAPPING && urgent)) &&
        atomic_exchange_explicit(&lg.sleeping, WRITER_AWAKE, memory_order_relaxed) != WRITER_AWAKE)
        futex_wake(&lg.sleeping);
}

static bool any_pending(void)
{
    return atomic_load_explicit(&lg.pending, memory_order_acquire) != NULL;
}

/* Waits in state `how` for a wake or `ts`; wakes that were meant for an earlier wait only
 * make the writer look at the rings once more. */
static void writer_wait(int how, const struct timespec *ts)
{
    syscall(SYS_futex, (int *)&lg.sleeping, FUTEX_WAIT_PRIVATE, how, ts, NULL, 0);
    atomic_store_explicit(&lg.sleeping, WRITER_AWAKE, memory_order_relaxed);
}

/* Sleeps until a producer wakes us, log_close or log_reopen does, or a second passes. */
static void writer_sleep(void)
{
    atomic_store_explicit(&lg.sleeping, WRITER_ASLEEP, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (any_pending() || atomic_load_explicit(&lg.stopping, memory_order_relaxed) ||
        atomic_load_explicit(&reopen_requested, memory_order_relaxed)) {
        atomic_store_explicit(&lg.sleeping, WRITER_AWAKE, memory_order_relaxed);
        return;
    }
    struct timespec ts = {1, 0};
    writer_wait(WRITER_ASLEEP, &ts);
}

static void flush_chunk(size_t *used)
{
    write_all(lg.fd, lg.chunk, *used);
    *used = 0;
}

/* Takes `r`'s dead ring out of the list; `prev` is its predecessor or NULL if none was seen. */
static void ring_unlink(struct log_ring *prev, struct log_ring *r)
{
    struct log_ring *next = atomic_load_explicit(&r->next, memory_order_relaxed);
    if (!prev) {
        struct log_ring *expect = r;
        if (atomic_compare_exchange_strong_explicit(&lg.rings, &expect, next, memory_order_acq_rel,
                                                    memory_order_acquire))
            return;
        /* Rings were pushed in front of r meanwhile: one of them is its predecessor now. */
        prev = expect;
        while (atomic_load_explicit(&prev->next, memory_order_relaxed) != r)
            prev = atomic_load_explicit(&prev->next, memory_order_relaxed);
    }
    atomic_store_explicit(&prev->next, next, memory_order_relaxed);
}

/* Moves what is queued in r to the chunk (flushing it when full) and reports its dropped
 * lines; adds to *total, sets *busy if r was filling up fast. */
static void drain_one(struct log_ring *r, size_t *used, size_t *total, bool *busy)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t n = atomic_load_explicit(&r->tail, memory_order_acquire) - head;
    if (n >= RING_BUSY)
        *busy = true;
    if (n > 0) {
        if (n > CHUNK_SIZE - *used)
            flush_chunk(used);
        size_t at = head % RING_SIZE;
        size_t first = RING_SIZE - at < n ? RING_SIZE - at : n;
        memcpy(lg.chunk + *used, r->buf + at, first);
        memcpy(lg.chunk + *used + first, r->buf, n - first);
        *used += n;
        *total += n;
        /* The space is the producer's again once copied, before the write. */
        atomic_store_explicit(&r->head, head + n, memory_order_release);
    }
    /* Looked at before it is taken: a ring that dropped nothing is only read. */
    uint64_t dropped = atomic_load_explicit(&r->dropped, memory_order_relaxed);
    if (dropped)
        dropped = atomic_exchange_explicit(&r->dropped, 0, memory_order_relaxed);
    if (dropped) {
        char note[128];
        int k = line_head(note, sizeof(note), LOG_WARN, "log_dropped");
        k += snprintf(note + k, sizeof(note) - (size_t)k, " lines=%llu\n",
                      (unsigned long long)dropped);
        if ((size_t)k > CHUNK_SIZE - *used)
            flush_chunk(used);
        memcpy(lg.chunk + *used, note, (size_t)k);
        *used += (size_t)k;
        *total += (size_t)k;
    }
}

static bool walk_due(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms =
        (long)(now.tv_sec - lg.walked.tv_sec) * 1000 + (now.tv_nsec - lg.walked.tv_nsec) / 1000000L;
    if (ms < RINGS_WALK_MS)
        return false;
    lg.walked = now;
    return true;
}

/*
 * Moves everything queued in the pending rings (with `all`, in every ring) to the chunk and
 * out to the file, then reports each ring's dropped lines and, with `all`, frees the rings
 * of exited threads. Returns the bytes written; sets *busy if some ring was filling up fast.
 */
static size_t drain_all(bool *busy, bool all)
{
    size_t used = 0, total = 0;
    struct log_ring *r = atomic_exchange_explicit(&lg.pending, NULL, memory_order_acquire);
    while (r) {
        /* Read before `queued` is cleared: then the producer may push r again. */
        struct log_ring *next = atomic_load_explicit(&r->qnext, memory_order_relaxed);
        atomic_store_explicit(&r->queued, false, memory_order_relaxed);
        /* Pairs with the fence in ring_queue: either the producer sees `queued` clear and
         * pushes r again, or what it published before is seen by drain_one here. */
        atomic_thread_fence(memory_order_seq_cst);
        drain_one(r, &used, &total, busy);
        r = next;
    }
    if (all) {
        struct log_ring *prev = NULL;
        r = atomic_load_explicit(&lg.rings, memory_order_acquire);
        while (r) {
            struct log_ring *next = atomic_load_explicit(&r->next, memory_order_relaxed);
            bool dead = atomic_load_explicit(&r->dead, memory_order_acquire);
            drain_one(r, &used, &total, busy);
            /* A dead ring still on lg.pending (pushed after the take above) is freed at
             * the next walk, once it is off. */
            if (dead && !atomic_load_explicit(&r->queued, memory_order_relaxed)) {
                ring_unlink(prev, r);
                free(r);
            } else {
                prev = r;
            }
            r = next;
        }
    }
    if (used)
        flush_chunk(&used);
    return total;
}

/* Reopens the file (logrotate moved it away) and says so as the new file's first line, so
 * that whoever rotated can see the server let go of the old one; if the path cannot be
 * opened, the old file is kept and the failure is logged there. With stderr there is
 * nothing to reopen, and the signal is still acknowledged. */
static void writer_reopen(void)
{
    int err = 0;
    if (lg.path) {
        int fd = open_path(lg.path);
        if (fd >= 0) {
            close(lg.fd);
            lg.fd = fd;
        } else {
            err = errno;
        }
    }
    char line[256], v[LOG_VALUE_MAX(64)];
    int k = line_head(line, sizeof(line), err ? LOG_ERROR : LOG_INFO, "reopen");
    if (err)
        k += snprintf(line + k, sizeof(line) - (size_t)k, " error=%s\n",
                      log_value(v, sizeof(v), strerror(err)));
    else
        k += snprintf(line + k, sizeof(line) - (size_t)k, "\n");
    if (k > 0 && (size_t)k < sizeof(line))
        write_all(lg.fd, line, (size_t)k);
}

static void *writer_main(void *arg)
{
    (void)arg;
    for (;;) {
        if (atomic_exchange(&reopen_requested, 0)) {
            /* What was logged before the signal still goes to the old file. */
            bool ignored = false;
            drain_all(&ignored, true);
            writer_reopen();
        }
        /* Read before draining: what was queued before log_close is then in this pass. */
        bool stopping = atomic_load_explicit(&lg.stopping, memory_order_acquire);
        /* The rate limit's counts: those due, or at the end all (the lines go to this
         * thread's own ring, drained below). */
        lim_flush(stopping);
        bool busy = false;
        size_t n = drain_all(&busy, stopping || walk_due());
        if (n == 0) {
            if (stopping)
                break;
            /* Quiet: sleep until the next line, which then goes out at once. */
            writer_sleep();
        } else if (!stopping && !busy) {
            /* Then nap, so that a busy server's lines go out in batches: producers do not
             * wake us while we nap (a futex wake per echoed message would cost more than
             * the echo), unless one's ring is filling up. */
            long ms = n < WRITER_SMALL_WRITE ? WRITER_NAP_SHORT_MS : WRITER_NAP_MS;
            struct timespec nap = {0, ms * 1000000L};
            atomic_store_explicit(&lg.sleeping, WRITER_NAPPING, memory_order_relaxed);
            writer_wait(WRITER_NAPPING, &nap);
        }
    }
    return NULL;
}

/* Forgets what is queued from before this log_open, and the rings of exited threads. */
static void rings_reset(void)
{
    struct log_ring *q = atomic_exchange_explicit(&lg.pending, NULL, memory_order_acquire);
    while (q) {
        struct log_ring *next = atomic_load_explicit(&q->qnext, memory_order_relaxed);
        atomic_store_explicit(&q->queued, false, memory_order_relaxed);
        q = next;
    }
    struct log_ring *prev = NULL;
    struct log_ring *r = atomic_load_explicit(&lg.rings, memory_order_acquire);
    while (r) {
        struct log_ring *next = atomic_load_explicit(&r->next, memory_order_relaxed);
        if (atomic_load_explicit(&r->dead, memory_order_acquire)) {
            ring_unlink(prev, r);
            free(r);
        } else {
            atomic_store_explicit(&r->head, atomic_load_explicit(&r->tail, memory_order_acquire),
                                  memory_order_release);
            atomic_store_explicit(&r->dropped, 0, memory_order_relaxed);
            prev = r;
        }
        r = next;
    }
}

int log_open(const char *path)
{
    if (lg.stuck)
        return -EBUSY;
    pthread_once(&ring_key_once, ring_key_create);
    int fd = STDERR_FILENO;
    char *p = NULL;
    if (path && strcmp(path, "-") != 0) {
        fd = open_path(path);
        if (fd < 0)
            return -errno;
        p = strdup(path);
    }
    lg.chunk = malloc(CHUNK_SIZE);
    if (!lg.chunk) {
        if (p)
            close(fd);
        free(p);
        return -ENOMEM;
    }
    rings_reset();
    lim_reset();
    lg.fd = fd;
    lg.path = p;
    lg.journal = !p && stderr_is_journal();
    atomic_store(&lg.stopping, false);
    atomic_store(&lg.sleeping, WRITER_AWAKE);
    int r = pthread_create(&lg.thread, NULL, writer_main, NULL);
    if (r != 0) {
        if (p)
            close(fd);
        free(p);
        lg.path = NULL;
        lg.fd = -1;
        free(lg.chunk);
        lg.chunk = NULL;
        return -r;
    }
    atomic_store_explicit(&lg.running, true, memory_order_release);
    return 0;
}

void log_reopen(void)
{
    atomic_store(&reopen_requested, 1);
    wake_writer(false); /* a fence, lock-free atomics and a futex syscall: async-signal-safe */
}

int log_close(void)
{
    if (!atomic_load(&lg.running))
        return 0;
    atomic_store(&lg.stopping, true);
    wake_writer(true);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* pthread_timedjoin_np's clock */
    until.tv_nsec += (long)LOG_CLOSE_WAIT_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    if (pthread_timedjoin_np(lg.thread, NULL, &until) != 0) {
        /* Stuck in write(2): it keeps lg's file and chunk, and lg stays running so that
         * no log_open reuses them. Later lines fill the rings and are dropped there. */
        lg.stuck = true;
        return -ETIMEDOUT;
    }
    atomic_store(&lg.running, false);
    if (lg.path)
        close(lg.fd);
    free(lg.path);
    lg.path = NULL;
    free(lg.chunk);
    lg.chunk = NULL;
    lg.fd = -1;
    return 0;
}

void log_timestamp(char *out, size_t outlen)
{
    char ts[40];
    size_t n = timestamp_text(ts);
    if (outlen == 0)
        return;
    if (n >= outlen)
        n = outlen - 1; /* cut, as snprintf cuts */
    memcpy(out, ts, n);
    out[n] = '\0';
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

/* The calling thread's ring, created and registered on its first line; NULL if out of
 * memory. */
static struct log_ring *ring_mine(void)
{
    struct log_ring *r = my_ring;
    if (r)
        return r;
    r = aligned_alloc(CACHE_LINE, sizeof(*r));
    if (!r)
        return NULL;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->head_seen = 0;
    atomic_init(&r->dropped, 0);
    atomic_init(&r->dead, false);
    atomic_init(&r->queued, false);
    atomic_init(&r->qnext, NULL);
    if (pthread_setspecific(ring_key, r) != 0) {
        free(r);
        return NULL;
    }
    my_ring = r;
    /* Push in front; the release publishes the initialised ring to the writer. */
    struct log_ring *first = atomic_load_explicit(&lg.rings, memory_order_relaxed);
    do
        atomic_store_explicit(&r->next, first, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&lg.rings, &first, r, memory_order_release,
                                                  memory_order_relaxed));
    return r;
}

void log_thread_idle(void)
{
    struct log_ring *r = my_ring;
    if (!r)
        return;
    /* head == tail, read with acquire: the writer has copied out every byte it will read
     * (it publishes head after the copy), so nobody touches buf until this thread writes. */
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (atomic_load_explicit(&r->head, memory_order_acquire) != tail)
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)r->buf + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)r->buf + RING_SIZE) & ~(page - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Puts r on lg.pending unless it is there already. Called by the producer after it
 * published (tail or dropped). */
static void ring_queue(struct log_ring *r)
{
    /* Pairs with the fence in drain_all (see there). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&r->queued, memory_order_relaxed) ||
        atomic_exchange_explicit(&r->queued, true, memory_order_relaxed))
        return;
    struct log_ring *first = atomic_load_explicit(&lg.pending, memory_order_relaxed);
    do
        atomic_store_explicit(&r->qnext, first, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&lg.pending, &first, r, memory_order_release,
                                                  memory_order_relaxed));
}

/* Appends one whole line to the thread's own ring, or counts it as dropped. */
static void ring_put(struct log_ring *r, const char *p, size_t n)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (RING_SIZE - (tail - r->head_seen) < n) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (RING_SIZE - (tail - r->head_seen) < n) {
            atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
            ring_queue(r);
            return;
        }
    }
    size_t at = tail % RING_SIZE;
    size_t first = RING_SIZE - at < n ? RING_SIZE - at : n;
    memcpy(r->buf + at, p, first);
    memcpy(r->buf, p + first, n - first);
    atomic_store_explicit(&r->tail, tail + n, memory_order_release);
    ring_queue(r);
    /* Our view of head is old: look again only when the ring seems to fill up. */
    size_t fill = tail + n - r->head_seen;
    if (fill >= RING_URGENT) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        fill = tail + n - r->head_seen;
    }
    wake_writer(fill >= RING_URGENT);
}

/* One line: the header, the formatted fields, then `suffix` (NULL: none). */
static void vlog(enum log_level level, const char *event, const char *suffix, const char *fmt,
                 va_list ap)
{
    struct log_ring *r = ring_mine();
    if (!r)
        return;
    char line[LINE_MAX_LEN];
    int n = line_head(line, sizeof(line), level, event);
    if (fmt && *fmt && n >= 0 && (size_t)n < sizeof(line) - 2) {
        line[n++] = ' ';
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        if (m > 0)
            n += m;
    }
    if (suffix && n >= 0 && (size_t)n < sizeof(line) - 2) {
        int m = snprintf(line + n, sizeof(line) - (size_t)n, "%s", suffix);
        if (m > 0)
            n += m;
    }
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2; /* cut, still one line */
    line[n++] = '\n';
    ring_put(r, line, (size_t)n);
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
    if (!atomic_load_explicit(&lg.running, memory_order_acquire))
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, event, NULL, fmt, ap);
    va_end(ap);
}

bool log_line_begin(struct log_line *l, enum log_level level, const char *event)
{
    if (!atomic_load_explicit(&lg.running, memory_order_acquire))
        return false;
    int n = line_head(l->buf, sizeof(l->buf), level, event);
    if (n < 0)
        return false;
    l->n = (size_t)n < sizeof(l->buf) - 1 ? (size_t)n : sizeof(l->buf) - 2;
    l->suppressed = 0;
    return true;
}

/* Room left for the line's fields: one byte stays for the newline. */
static size_t line_room(const struct log_line *l)
{
    return sizeof(l->buf) - 1 - l->n;
}

void log_line_raw(struct log_line *l, const char *s, size_t n)
{
    size_t room = line_room(l);
    if (n > room)
        n = room;
    memcpy(l->buf + l->n, s, n);
    l->n += n;
}

void log_line_u64(struct log_line *l, uint64_t v)
{
    char d[20];
    size_t k = sizeof(d);
    do {
        d[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    log_line_raw(l, d + k, sizeof(d) - k);
}

void log_line_escaped(struct log_line *l, const uint8_t *p, size_t n)
{
    /* log_escape needs 4 per byte and its NUL: escape no more than the room holds. */
    size_t room = line_room(l);
    if (room == 0)
        return;
    size_t fits = (room - 1) / 4;
    if (n > fits)
        n = fits;
    l->n += log_escape(l->buf + l->n, p, n);
}

void log_line_end(struct log_line *l)
{
    struct log_ring *r = ring_mine();
    if (!r)
        return;
    if (l->suppressed) {
        log_line_lit(l, " suppressed=");
        log_line_u64(l, l->suppressed);
    }
    l->buf[l->n++] = '\n';
    ring_put(r, l->buf, l->n);
}

/* One event of `kind` about `key` within `lim`: true if it may be logged, with *suppressed
 * the count to report with it. */
static bool lim_check(struct log_limit *lim, const struct log_kind *kind, const char *key,
                      uint64_t *suppressed)
{
    *suppressed = 0;
    lim_lock(lim);
    bool ok = rl_check(&lim->rl, kind, key, lim_now(), suppressed);
    pthread_mutex_unlock(&lim->mu);
    return ok;
}

static void vlog_limited(struct log_limit *lim, const struct log_kind *kind, const char *key,
                         const char *fmt, va_list ap)
{
    if (!atomic_load_explicit(&lg.running, memory_order_acquire))
        return;
    uint64_t suppressed;
    if (!lim_check(lim, kind, key, &suppressed))
        return;
    char suffix[40] = "";
    if (suppressed)
        snprintf(suffix, sizeof(suffix), " suppressed=%llu", (unsigned long long)suppressed);
    vlog(kind->level, kind->event, suffix, fmt, ap);
}

void log_event_limited(const struct log_kind *kind, const char *peer, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog_limited(&lim_own, kind, peer, fmt, ap);
    va_end(ap);
}

void log_event_limited_in(struct log_limit *lim, const struct log_kind *kind, const char *key,
                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog_limited(lim, kind, key, fmt, ap);
    va_end(ap);
}

bool log_line_begin_limited(struct log_line *l, struct log_limit *lim, const struct log_kind *kind,
                            const char *key)
{
    if (!atomic_load_explicit(&lg.running, memory_order_acquire))
        return false;
    uint64_t suppressed;
    if (!lim_check(lim, kind, key, &suppressed) || !log_line_begin(l, kind->level, kind->event))
        return false;
    l->suppressed = suppressed;
    return true;
}

void log_limit_flush(void)
{
    if (atomic_load_explicit(&lg.running, memory_order_acquire))
        lim_flush(true);
}

void log_limit_clock(uint64_t (*now_ms)(void))
{
    lim_clock = now_ms;
}

/* What a byte may start (RFC 3629: no overlongs, no surrogates, at most U+10FFFF): the
 * length of the sequence it leads (0 for none: ASCII, a continuation byte, 0xC0, 0xC1,
 * 0xF5-0xFF) and the range its second byte must be in (the others are 0x80-0xBF). */
struct utf8_lead {
    uint8_t len, lo, hi;
};
#define LEAD(c)                                                                                    \
    {                                                                                              \
        (c) >= 0xC2 && (c) <= 0xDF   ? 2                                                           \
        : (c) >= 0xE0 && (c) <= 0xEF ? 3                                                           \
        : (c) >= 0xF0 && (c) <= 0xF4 ? 4                                                           \
                                     : 0,                                                          \
            (c) == 0xE0   ? 0xA0                                                                   \
            : (c) == 0xF0 ? 0x90                                                                   \
                          : 0x80,                                                                  \
            (c) == 0xED   ? 0x9F                                                                   \
            : (c) == 0xF4 ? 0x8F                                                                   \
                          : 0xBF                                                                   \
    }
#define LEAD4(c)  LEAD(c), LEAD((c) + 1), LEAD((c) + 2), LEAD((c) + 3)
#define LEAD16(c) LEAD4(c), LEAD4((c) + 4), LEAD4((c) + 8), LEAD4((c) + 12)
#define LEAD64(c) LEAD16(c), LEAD16((c) + 16), LEAD16((c) + 32), LEAD16((c) + 48)
static const struct utf8_lead utf8_lead_tab[256] = {LEAD64(0), LEAD64(64), LEAD64(128),
                                                    LEAD64(192)};

/* Length of the valid UTF-8 sequence at s, or 0 if the bytes there are not one. s[0..3]
 * MUST be readable (log_escape pads the input's last bytes with zeros, which continue no
 * sequence). No branch: on random bytes, an invalid lead (most of them) would mispredict
 * one comparison after another. */
static size_t utf8_seq(const uint8_t *s)
{
    const struct utf8_lead *l = &utf8_lead_tab[s[0]];
    unsigned ok = (uint8_t)(s[1] - l->lo) <= (uint8_t)(l->hi - l->lo);
    ok &= (l->len < 3) | ((s[2] & 0xC0) == 0x80);
    ok &= (l->len < 4) | ((s[3] & 0xC0) == 0x80);
    return ok * l->len;
}

/* The code point of a valid UTF-8 sequence of 2 or 3 bytes (the only lengths that hold the
 * characters below); 0 for a 4-byte one, which holds none of them. */
static uint32_t utf8_cp(const uint8_t *s, size_t len)
{
    if (len == 2)
        return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    if (len == 3)
        return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    return 0;
}

/* Characters that are valid UTF-8 yet let a peer forge what a reader sees: the C1 controls
 * (U+0085 NEL ends a line for Unicode-aware splitters such as Python's splitlines()), the
 * line and paragraph separators, and the bidirectional embeddings, overrides and isolates
 * (they reorder the text shown after them, Trojan Source style). */
static bool cp_must_escape(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* What one byte becomes when it is not part of a UTF-8 sequence that is copied: itself
 * (printable ASCII), a two-character escape, or \xHH; `s` holds the characters (four bytes
 * are always stored, of which `len` count). A table, so that escaping random bytes takes no
 * branch per byte beyond the one for a possible UTF-8 lead. */
struct esc {
    char s[4];
    unsigned char len;
};
#define ESC_SAFE(c)  ((c) >= 0x20 && (c) < 0x7F && (c) != '"' && (c) != '\\')
#define ESC_SHORT(c) ((c) == '"' || (c) == '\\' || (c) == '\t' || (c) == '\r' || (c) == '\n')
#define ESC_HEX(v)   ((char)((v) < 10 ? '0' + (v) : 'a' + (v)-10))
#define ESC_SECOND(c)                                                                              \
    ((c) == '"'    ? '"'                                                                           \
     : (c) == '\\' ? '\\'                                                                          \
     : (c) == '\t' ? 't'                                                                           \
     : (c) == '\r' ? 'r'                                                                           \
     : (c) == '\n' ? 'n'                                                                           \
                   : 'x')
#define ESC(c)                                                                                     \
    {                                                                                              \
        {ESC_SAFE(c) ? (char)(c) : '\\', ESC_SAFE(c) ? '\0' : ESC_SECOND(c), ESC_HEX((c) >> 4),    \
         ESC_HEX((c)&15)},                                                                         \
            ESC_SAFE(c)    ? 1                                                                     \
            : ESC_SHORT(c) ? 2                                                                     \
                           : 4                                                                     \
    }
#define ESC4(c)  ESC(c), ESC((c) + 1), ESC((c) + 2), ESC((c) + 3)
#define ESC16(c) ESC4(c), ESC4((c) + 4), ESC4((c) + 8), ESC4((c) + 12)
#define ESC64(c) ESC16(c), ESC16((c) + 16), ESC16((c) + 32), ESC16((c) + 48)
static const struct esc esc_tab[256] = {ESC64(0), ESC64(64), ESC64(128), ESC64(192)};

size_t log_escape(char *dst, const uint8_t *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *o = dst;
    size_t i = 0;
    uint8_t pad[4];
    while (i < n) {
        uint8_t c = src[i];
        /* Only 0xC2-0xF4 can start a valid sequence (utf8_seq); every other byte is one
         * table entry. dst holds 4 per input byte, so the 4-byte store always fits. */
        if (c >= 0xC2 && c <= 0xF4) {
            const uint8_t *p = src + i;
            if (n - i < 4) { /* a sequence cut off by the end is not one: pad with zeros */
                memset(pad, 0, sizeof(pad));
                memcpy(pad, p, n - i);
                p = pad;
            }
            size_t k = utf8_seq(p);
            if (k) {
                uint32_t cp = utf8_cp(p, k);
                if (cp_must_escape(cp)) {
                    /* \u{HHHH}: 8 characters for 2 or 3 bytes, within the 4 per byte budget. */
                    memcpy(o, "\\u{", 3);
                    o += 3;
                    for (int shift = 12; shift >= 0; shift -= 4)
                        *o++ = hex[(cp >> shift) & 15];
                    *o++ = '}';
                } else {
                    memcpy(o, src + i, k);
                    o += k;
                }
                i += k;
                continue;
            }
        }
        memcpy(o, esc_tab[c].s, 4);
        o += esc_tab[c].len;
        i++;
    }
    *o = '\0';
    return (size_t)(o - dst);
}

/* A value logfmt parsers read as one token without quotes: `=` would be taken for the
 * next key's separator (base64 padding), a space or `"` would end or open a value. */
static bool is_bare(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c >= 0x7F || c == '"' || c == '=')
            return false;
    }
    return true;
}

const char *log_value(char *dst, size_t dstlen, const char *s)
{
    if (is_bare(s))
        return s;
    size_t room = (dstlen - 3) / 4;
    size_t n = strnlen(s, room);
    dst[0] = '"';
    size_t k = log_escape(dst + 1, (const uint8_t *)s, n);
    dst[k + 1] = '"';
    dst[k + 2] = '\0';
    return dst;
}
