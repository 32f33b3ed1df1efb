/* SPDX-License-Identifier: MIT */
/* logfmt event log. Peer bytes are always escaped; writing never blocks the caller. */
#ifndef SECHO_LOG_H
#define SECHO_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Largest escaped text excerpt: SPEC logs the first 256 bytes of a message, and one
 * byte escapes to at most 4 characters. */
#define LOG_TEXT_BYTES  256
#define LOG_ESCAPED_MAX (LOG_TEXT_BYTES * 4 + 1)

/*
 * Opens the log: `path` "-" (or NULL) means stderr, anything else is opened for append
 * (created 0640). When stderr is the systemd journal (JOURNAL_STREAM names stderr's device
 * and inode), each line on it starts with the syslog priority journald reads, "<6>" for
 * info, "<4>" warn, "<3>" error, "<7>" debug, and has no ts= (the journal stamps every
 * line itself): "<6>level=info event=connect ...". Starts the writer thread. Returns 0 or a
 * negative errno (-ENOMEM, or open's or pthread_create's error); on error nothing is left open or
 * running. Each logging thread queues its lines in its own bounded in-memory ring (1 MiB of
 * address space, its pages touched only as lines pass through them; allocated on its first line,
 * freed by the writer after the thread exits) without taking a lock; the writer thread drains all
 * rings, so log_event never waits for the disk, a full pipe or another thread. If a thread's ring
 * overflows, its lines are dropped and counted, and a `level=warn event=log_dropped lines=N` line
 * reports how many once there is room. One thread's lines appear in the order it logged them; lines
 * of different threads in the order the writer found them.
 */
int log_open(const char *path);
/* Asks the writer to reopen the file (SIGHUP, for logrotate); the writer then logs
 * `event=reopen` as the reopened file's first line (`level=error event=reopen error=...`
 * in the old file if the path cannot be opened). Async-signal-safe. */
void log_reopen(void);
/*
 * Writes out everything queued, stops the writer thread and closes the file. The caller
 * MUST make sure no other thread is inside log_event (lines logged concurrently may be
 * lost, never torn); afterwards log_event logs nothing until the next log_open.
 * Waits at most LOG_CLOSE_WAIT_MS for the writer: a sink that takes nothing (a pipe no one
 * reads, a hung file system) must not keep a stopping server alive. Then the writer is
 * left blocked with its file and buffers, what it had not written is lost, and log_open
 * fails (-EBUSY) from then on: the caller is about to exit. Returns 0, or -ETIMEDOUT then.
 */
#define LOG_CLOSE_WAIT_MS 500
int log_close(void);
/*
 * The calling thread expects to log nothing for a while (a -m threads connection thread
 * waiting for its next connection): if the writer has taken everything in its ring, the
 * ring's pages go back to the system (refilled with zeroes when next written). Positions
 * only grow, so a ring reused by many connections would otherwise end up holding all of
 * its 1 MiB. Cheap when the thread has no ring.
 */
void log_thread_idle(void);

/*
 * Queues one line: `ts=... level=... event=EVENT` followed by " " and the printf-formatted
 * `fmt` (key=value pairs; every string value MUST be passed through log_value, or be
 * a `"%s"` of log_escape's output, so that each line parses with a standard logfmt parser). A line
 * is cut at 4 KiB. Thread-safe and lock-free; never blocks. Without log_open, nothing is logged; if
 * the thread's ring cannot be allocated, neither.
 */
void log_event(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The longest line: longer ones are cut (still one line). */
#define LOG_LINE_MAX 4096

/*
 * A line put together piece by piece without printf, for lines written once per message:
 * log_line_begin writes the head (as log_event: ts=... level=... event=EVENT), each
 * log_line_* call appends, log_line_end queues it as log_event would. What does not fit in
 * LOG_LINE_MAX - 1 bytes is cut (an escaped text only at whole escapes). The appended pieces
 * must make logfmt pairs, as log_event's fields must: raw text only through log_line_lit
 * (the caller's own keys and tokens), peer strings only through log_value (its result
 * to log_line_raw) or log_line_escaped.
 */
struct log_line {
    size_t n;
    uint64_t suppressed; /* log_line_begin_limited's count, appended by log_line_end */
    char buf[LOG_LINE_MAX];
};

/* Starts a line; false (nothing to do, log_line_end not needed) when nothing is logged. */
bool log_line_begin(struct log_line *l, enum log_level level, const char *event);
/* Appends n bytes as they are. */
void log_line_raw(struct log_line *l, const char *s, size_t n);
#define log_line_lit(l, lit) log_line_raw((l), "" lit, sizeof(lit) - 1)
/* Appends v in decimal. */
void log_line_u64(struct log_line *l, uint64_t v);
/* Appends log_escape's escapes of p[0..n) (no quotes). */
void log_line_escaped(struct log_line *l, const uint8_t *p, size_t n);
/* Queues the line (with its newline; after log_line_begin_limited, with ` suppressed=N`
 * first when some were left out). */
void log_line_end(struct log_line *l);

/*
 * Rate-limited events: a kind of event a peer can repeat at will (a failed authentication,
 * a malformed datagram, an eviction), named by a static struct: its event name, level and
 * the fixed fields (NULL, or a logfmt fragment such as "reason=evicted") that the summary
 * lines of the kind carry.
 */
struct log_kind {
    const char *event;
    enum log_level level;
    const char *fields;
};

/* Per peer and kind: LOG_LIMIT_PEER_BURST lines at once, then one per
 * LOG_LIMIT_PEER_INTERVAL_MS. All rate-limited events together: LOG_LIMIT_BURST lines at
 * once, then one per LOG_LIMIT_INTERVAL_MS. Summaries are written every LOG_LIMIT_FLUSH_MS. */
#define LOG_LIMIT_PEER_BURST       5
#define LOG_LIMIT_PEER_INTERVAL_MS 1000
#define LOG_LIMIT_BURST            50
#define LOG_LIMIT_INTERVAL_MS      100
#define LOG_LIMIT_FLUSH_MS         1000

/*
 * Like log_event for one event of `kind` about `peer` (the peer's address as the line's
 * peer= shows it; NULL or "" for none), within the limits above; `fmt` holds every field
 * but `ts`, `level` and `event`, as for log_event. An event over a limit is not written but
 * counted, and every count is reported exactly once:
 *   - the peer's next line that is written carries ` suppressed=N`: the events of this kind
 *     and peer left out since its previous line;
 *   - otherwise, about once a second once the peer's limit has lifted, the writer thread
 *     writes `event=EVENT peer=PEER FIELDS suppressed=N` for it;
 *   - events left out by the overall limit (many peers at once, e.g. forged source ports),
 *     and the counts of peers the bounded table had to forget, are written about once a
 *     second as one `event=EVENT FIELDS suppressed=N` line per kind (no peer=);
 *   - log_limit_flush and log_close write whatever is still counted.
 * So the lines written for a kind plus the N of its suppressed= fields are exactly the
 * events logged. Memory is bounded (a fixed table of recent peers). Thread-safe; takes a
 * short internal lock (never held across I/O), so it never waits for the disk.
 */
void log_event_limited(const struct log_kind *kind, const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A rate limit of its own, for a class of lines that must neither crowd out the events
 * above nor be crowded out by them: each (kind, key) may log `per_key` lines, all its lines
 * together `overall` (a burst, then one per interval; see ratelimit.h). log_event_limited
 * uses the log's own (the LOG_LIMIT_* figures). Define one with static storage, initialised
 * with LOG_LIMIT_INIT; the log sets it up (keyed afresh) at its first use after each
 * log_open, and from then on reports its counts exactly as it reports its own (see
 * log_event_limited), log_limit_flush and log_close included. The other fields are the
 * log's. Never freed.
 */
struct log_limit {
    struct rl_rate per_key, overall;
    pthread_mutex_t mu;     /* guards what follows */
    unsigned gen;           /* the log_open it was set up for; 0: never used */
    struct log_limit *next; /* the limits in use, which the log reports for */
    struct ratelimit rl;
};
#define LOG_LIMIT_INIT(key_burst, key_interval_ms, burst, interval_ms)                             \
    {                                                                                              \
        .per_key = {(key_burst), (key_interval_ms)}, .overall = {(burst), (interval_ms)},          \
        .mu = PTHREAD_MUTEX_INITIALIZER,                                                           \
    }

/* log_event_limited within `lim` instead of the log's own limit; `key` is what the limit
 * tells apart (the peer, or e.g. only its host) and what a summary line shows as peer=. */
void log_event_limited_in(struct log_limit *lim, const struct log_kind *kind, const char *key,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* log_line_begin for one event of `kind` about `key` within `lim`: false (nothing to do, as
 * log_line_begin's false) when the limit leaves it out, and counts it; otherwise the line is
 * begun as log_line_begin(l, kind->level, kind->event) would, and log_line_end appends the
 * ` suppressed=N` owed. */
bool log_line_begin_limited(struct log_line *l, struct log_limit *lim, const struct log_kind *kind,
                            const char *key);

/* Writes, from the calling thread, a line for every count of rate-limited events still
 * owed, of every limit (the server calls it before `stop`, so the totals are complete by then). */
void log_limit_flush(void);

/* For tests: the millisecond clock of the rate limits (NULL: CLOCK_MONOTONIC again); while
 * one is set, the writer thread writes no summaries of its own (log_limit_flush and log_close
 * still do), so what is written depends on the test alone. Set it before log_open and while
 * no other thread logs. */
void log_limit_clock(uint64_t (*now_ms)(void));

/*
 * Escapes `n` bytes of `src` for a quoted logfmt value: `"` as \", `\` as \\, tab, CR, LF
 * as \t \r \n, other control bytes, DEL and bytes that are not part of valid UTF-8 as \xHH
 * (lowercase hex); the C1 controls U+0080-U+009F, the separators U+2028 and U+2029 and the
 * bidirectional controls U+202A-U+202E and U+2066-U+2069 as \u{hhhh} (4 lowercase hex
 * digits). Other valid UTF-8 sequences are copied. A sequence cut off by the end of `src`
 * is not valid, so its bytes become \xHH: every escape in the output is whole. `dst` MUST
 * hold 4*n+1 bytes. Returns the length written (without the terminating NUL). Pure: no
 * allocation, no state.
 */
size_t log_escape(char *dst, const uint8_t *src, size_t n);

/* Room log_value needs in `dst` for a value of up to n bytes: the quotes, the escapes, NUL. */
#define LOG_VALUE_MAX(n) (4 * (n) + 3)

/*
 * One logfmt value, for a `key=%s` in log_event's format: returns `s` itself when it is a
 * bare token (non-empty, printable ASCII without space, `"` or `=`), otherwise writes it
 * to `dst` double-quoted with log_escape's escapes and returns dst. Of a longer `s`, only
 * the first (dstlen - 3) / 4 bytes are kept, quoted. `dstlen` MUST be at least
 * LOG_VALUE_MAX(1); LOG_VALUE_MAX(strlen(s)) keeps the whole value. Pure: no allocation.
 */
const char *log_value(char *dst, size_t dstlen, const char *s);

/* Formats the current UTC time as 2026-11-25T04:39:15.123Z into out (>= 25 bytes). */
void log_timestamp(char *out, size_t outlen);

#endif
