/* SPDX-License-Identifier: MIT */
/* logfmt event log. Peer bytes are always escaped; writing never blocks the caller. */
#ifndef SECHO_LOG_H
#define SECHO_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
 * running. Each logging thread queues its lines in its own bounded in-memory ring (256 KiB,
 * allocated on its first line, freed by the writer after the thread exits) without taking
 * a lock; the writer thread drains all rings, so log_event never waits for the disk, a full
 * pipe or another thread. If a thread's ring overflows, its lines are dropped and counted,
 * and a `level=warn event=log_dropped lines=N` line reports how many once there is room.
 * One thread's lines appear in the order it logged them; lines of different threads in
 * the order the writer found them.
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
 */
void log_close(void);

/*
 * Queues one line: `ts=... level=... event=EVENT` followed by " " and the printf-formatted
 * `fmt` (key=value pairs; every string value MUST be passed through log_value, or be
 * a `"%s"` of log_escape's output, so that each line parses with a standard logfmt parser). A line
 * is cut at 4 KiB. Thread-safe and lock-free; never blocks. Without log_open, nothing is logged; if
 * the thread's ring cannot be allocated, neither.
 */
void log_event(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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
