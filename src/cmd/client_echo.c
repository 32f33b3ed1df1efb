/* SPDX-License-Identifier: MIT */
/* The TCP client's account of the echoes it is owed; see client_echo.h. */
#include "client_echo.h"

#include <errno.h>
#include <string.h>

#include "service.h"

void client_echo_init(struct client_echo *e, bool stream)
{
    memset(e, 0, sizeof(*e));
    e->stream = stream;
}

bool client_echo_room(const struct client_echo *e)
{
    return e->parts_len < CLIENT_LINES_IN_FLIGHT;
}

int client_echo_send_line(struct client_echo *e, struct conn *conn, const struct proto_vt *vt,
                          const uint8_t *p, size_t n, size_t *taken)
{
    size_t whole = n;
    *taken = 0;
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (e->stream) {
        int r = conn_send_msg(conn, p, n);
        if (r == 0)
            r = conn_send_msg(conn, (const uint8_t *)"\n", 1);
        if (r < 0)
            return r;
        e->owed += (long long)n + 1;
    } else {
        bool resumed = e->mid_line;
        if (resumed && n == 0) { /* only the '\r' was left: the line is all queued */
            e->mid_line = false;
            *taken = whole;
            return 0;
        }
        /* Largest message one record carries; longer lines are split. */
        size_t max = proto_max_msg(vt, false);
        size_t off = 0;
        uint32_t parts = 0;
        do {
            if (parts > 0 && !conn_can_send(conn))
                break; /* the rest goes in a later call */
            size_t k = n - off < max ? n - off : max;
            int r = conn_send_msg(conn, p + off, k);
            if (r == -EINVAL && n == 0)
                return CLIENT_ECHO_EMPTY;
            if (r < 0 && parts == 0)
                return r;
            if (r < 0)
                break; /* what went stays queued; the rest goes in a later call */
            e->owed++;
            parts++;
            off += k;
        } while (off < n);
        if (resumed)
            e->parts[(e->parts_head + e->parts_len - 1) % CLIENT_LINES_IN_FLIGHT] += parts;
        else
            e->parts[(e->parts_head + e->parts_len++) % CLIENT_LINES_IN_FLIGHT] = parts;
        e->mid_line = off < n;
        if (e->mid_line) {
            *taken = off;
            return 0;
        }
        if (resumed) {
            *taken = whole;
            return 0;
        }
    }
    *taken = whole;
    if ((n == 4 && memcmp(p, "exit", 4) == 0) || (n == 8 && memcmp(p, "shutdown", 8) == 0)) {
        e->leaving = true;
        e->shutdown_sent = n == 8;
    }
    return 0;
}

/* A refused `shutdown` means the server goes on, and so does the client. */
static void shutdown_refused(struct client_echo *e)
{
    e->shutdown_sent = false;
    e->leaving = false;
    e->answer_due = 0;
    e->answer_len = 0;
}

/* A record protocol: the refusal comes instead of the echo of `shutdown`. */
static void check_denied(struct client_echo *e, const uint8_t *p, size_t n)
{
    static const char denied[] = SERVER_DENIED_TEXT;
    if (e->shutdown_sent && memmem(p, n, denied, sizeof(denied) - 1))
        shutdown_refused(e);
}

/* plain TCP: bytes beyond the echoes owed after `shutdown` are the server's answer; a
 * whole line equal to the refusal means the server goes on. Another line is not one. */
static void collect_answer(struct client_echo *e, const uint8_t *p, size_t n)
{
    static const char denied[] = SERVER_DENIED_TEXT;
    for (size_t i = 0; i < n && e->shutdown_sent; i++) {
        if (p[i] != '\n') {
            if (e->answer_len < sizeof(e->answer))
                e->answer[e->answer_len++] = (char)p[i];
            continue;
        }
        size_t len = e->answer_len;
        if (len > 0 && e->answer[len - 1] == '\r')
            len--;
        e->answer_len = 0;
        if (len == sizeof(denied) - 1 && memcmp(e->answer, denied, len) == 0)
            shutdown_refused(e);
    }
}

bool client_echo_on_message(struct client_echo *e, const struct proto_msg *m, bool *newline)
{
    if (e->stream) {
        *newline = false;
        size_t echo = e->owed <= 0                           ? 0
                      : (unsigned long long)e->owed < m->len ? (size_t)e->owed
                                                             : m->len;
        e->owed -= (long long)echo;
        if (e->shutdown_sent && echo < m->len)
            collect_answer(e, m->data + echo, m->len - echo);
        return e->owed <= 0;
    }
    check_denied(e, m->data, m->len);
    bool eol = m->last;
    /* The oldest line's count is 0 only while its rest is still to be queued and every
     * record queued so far has come back: a message then is one nobody asked for (a
     * misbehaving server) and takes nothing from the count, which the rest adds to. */
    bool owed_here = e->parts_len > 0 && e->parts[e->parts_head] > 0;
    if (m->last && owed_here &&
        (--e->parts[e->parts_head] > 0 || (e->parts_len == 1 && e->mid_line))) {
        /* more records of the same line follow, or the rest of the line is still to be
         * queued (its entry stays) */
        eol = false;
    } else if (m->last && owed_here) {
        e->parts_head = (e->parts_head + 1) % CLIENT_LINES_IN_FLIGHT;
        e->parts_len--;
    }
    *newline = eol;
    if (!m->last)
        return false;
    if (e->owed > 0) /* a message nobody asked for (a misbehaving server) owes nothing back */
        e->owed--;
    return e->owed == 0 && !e->mid_line;
}
