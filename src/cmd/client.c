/* SPDX-License-Identifier: MIT */
/* `secho client`: interactive or piped echo client for every protocol and transport. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "client_echo.h"
#include "keys.h"
#include "loop.h"
#include "net.h"
#include "conn.h"
#include "lineedit.h"
#include "service.h"

#define STDIN_CHUNK 65536
#define LINE_LIMIT  (16 * 1024 * 1024)
#define OUT_HIGH    (256 * 1024)
/* UDP retransmission (protocols with dgram_retransmit): first wait, and its cap. */
#define UDP_RTO_MS     250
#define UDP_RTO_MAX_MS 2000

/* The help text, around the -P line (made from the registry by cli_help_proto). */
static const char usage_head[] =
    "Usage: secho client [options]\n"
    "Send each line of standard input as one message and print each echo as one line.\n"
    "Type `exit` (or end the input) to leave, `shutdown` to stop the server.\n"
    "\n"
    "  -t, --transport tcp|udp   transport (default tcp)\n";
static const char usage_tail[] =
    "  -H, --host HOST           server address (default 127.0.0.1)\n"
    "  -p, --port PORT           server port (default 9090)\n"
    "  -k, --key FILE            secure: our identity key, created if absent\n"
    "                            (default ~/.config/secho/id.key)\n"
    "      --known-hosts FILE    secure/tls: trusted server keys and certificates\n"
    "                            (default ~/.config/secho/known_hosts)\n"
    "      --server-key PUBKEY   secure: pin the server's public key (base64);\n"
    "                            tls: its certificate's SHA-256 fingerprint (base64)\n"
    "      --accept-new          secure/tls: trust an unknown server key without asking\n"
    "      --ca FILE             tls: verify the server's certificate with these CAs\n"
    "                            (PEM) instead of pinning it in known_hosts\n"
    "      --noise-name NAME     secure: Noise suite to offer, one of\n"
    "                            Noise_XX_25519_{AESGCM,ChaChaPoly}_{SHA256,BLAKE2b}\n"
    "                            (default Noise_XX_25519_AESGCM_SHA256)\n"
    "      --timeout SEC         wait this long to connect and for echoes; fractions\n"
    "                            allowed, e.g. 0.5 (default 10)\n"
    "      --history             secure/tls: keep typed lines in the history file too\n"
    "  -h, --help                show this help\n"
    "\n"
    "Options marked secure: or tls: apply to those protocols only; with another protocol\n"
    "they are a usage error (exit 2).\n"
    "\n"
    "On a terminal the client shows a prompt and, where built with libedit, edits lines and\n"
    "keeps their history in $XDG_STATE_HOME/secho/history (default ~/.local/state); piped,\n"
    "it prints only the echoes (errors go to stderr). Exit status: 0 ok, 1 connection or trust "
    "failure, 2 usage error.\n"
    "\n"
    "Examples:\n"
    "  secho client -P plain -p 9090\n"
    "  printf 'hello\\nexit\\n' | secho client -P plain\n"
    "  secho client --accept-new             # secure, trust the server on first use\n"
    "  secho client -P tls -p 8443 --ca ca.pem\n";

enum {
    OPT_KNOWN_HOSTS = 256,
    OPT_SERVER_KEY,
    OPT_ACCEPT_NEW,
    OPT_TIMEOUT,
    OPT_NOISE_NAME,
    OPT_HISTORY,
    OPT_CA,
};

static const struct option long_opts[] = {
    CLI_COMMON_LONG_OPTS,
    {"key", required_argument, NULL, 'k'},
    {"known-hosts", required_argument, NULL, OPT_KNOWN_HOSTS},
    {"server-key", required_argument, NULL, OPT_SERVER_KEY},
    {"accept-new", no_argument, NULL, OPT_ACCEPT_NEW},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"noise-name", required_argument, NULL, OPT_NOISE_NAME},
    {"history", no_argument, NULL, OPT_HISTORY},
    {"ca", required_argument, NULL, OPT_CA},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct client {
    const struct proto_vt *vt;
    void *ctx;
    void *pconn; /* UDP: the protocol session (TCP: the engine's) */
    int fd;
    bool interactive;
    /* interactive: lines are edited (edit_tried: lineedit_open was called), and the
     * history file they go to (NULL: none). */
    bool edit, edit_tried;
    const char *history;
    char hostport[NET_ADDRSTRLEN + 256];
    int timeout_ms;
    struct buf out, line;    /* out: UDP datagrams */
    struct conn conn;        /* TCP: the connection engine */
    struct client_echo echo; /* TCP: the echoes owed, and the answer to `shutdown` */
    bool stdin_eof, prompt_due;
    bool finishing; /* conn_finish was called */
    bool failed;    /* an error was reported: the exit status is 1 */
    bool running;   /* conn_init returned: faults are reported as they come */
    bool heard;     /* something arrived from the server */
    /* The user answered yes to the first-contact question (the key is now trusted): if the
     * server gave up on the handshake meanwhile, connect again. retry: run_tcp asks
     * client_main to do so. */
    bool answered_yes, retry;
    bool handshake_echoed; /* secure: what first arrived was our own preamble */
};

static bool ask_tty(const char *question)
{
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty)
        return false;
    char answer[32];
    for (;;) {
        fprintf(tty, "%s (yes/no) ", question);
        fflush(tty);
        if (!fgets(answer, sizeof(answer), tty)) {
            fclose(tty);
            return false;
        }
        answer[strcspn(answer, "\r\n")] = '\0';
        /* As ssh: yes/y/no/n, in any case. */
        if (strcasecmp(answer, "yes") == 0 || strcasecmp(answer, "y") == 0) {
            fclose(tty);
            return true;
        }
        if (strcasecmp(answer, "no") == 0 || strcasecmp(answer, "n") == 0)
            break;
        fprintf(tty, "Please type 'yes' or 'no'.\n");
    }
    fclose(tty);
    return false;
}

struct client;
static void note_answer(struct client *c, bool yes);

static bool confirm_tty(void *arg, const char *question)
{
    bool yes = ask_tty(question);
    note_answer(arg, yes);
    return yes;
}

/* What the protocol left to tell the user once the handshake passed (a server key was
 * added to known_hosts, or could not be). */
static void handshake_notice(const char *text)
{
    if (text && *text)
        fprintf(stderr, "%s\n", text);
}

/* The prompt is the last thing on the terminal's line: a notice must start a line of its
 * own. One client runs per process, and every report goes through fail()/report_start(). */
static bool prompt_open;
static bool editing; /* the terminal is in lineedit's hands (the prompt is its) */

static void prompt(struct client *c)
{
    /* Opened at the first prompt: a trust question before it reads the terminal as is. */
    if (c->interactive && !c->edit_tried) {
        c->edit_tried = true;
        c->edit = editing = lineedit_open(&c->line, c->history) == 0;
    }
    if (c->interactive && !c->echo.leaving && !c->stdin_eof) {
        if (c->edit) {
            lineedit_prompt("secho> ");
        } else {
            fputs("secho> ", stdout);
            fflush(stdout);
        }
        prompt_open = true;
    }
    c->prompt_due = false;
}

/* Before a message on stderr: ends the prompt's line if it is open. */
static void report_start(void)
{
    if (editing) {
        lineedit_notice(); /* the editor knows whether its line is showing */
        prompt_open = false;
    } else if (prompt_open) {
        putchar('\n');
        fflush(stdout);
        prompt_open = false;
    }
}

static int print_echo(struct client *c, const uint8_t *p, size_t n, bool newline)
{
    prompt_open = false; /* the user ended the line the prompt was on, or this follows it */
    if (fwrite(p, 1, n, stdout) != n || (newline && putchar('\n') == EOF))
        return -1;
    (void)c;
    fflush(stdout);
    return 0;
}

static int fail(const char *what, const char *why)
{
    report_start();
    fprintf(stderr, "secho: %s: %s\n", what, why);
    return 1;
}

/* Reports a protocol failure with the protocol's own explanation (why) when it has one. */
static int proto_fail(struct client *c, int r, const char *why)
{
    report_start();
    if (why && *why)
        fprintf(stderr, "secho: %s: %s\n%s\n", c->hostport, proto_strerror(r), why);
    else
        fprintf(stderr, "secho: %s: %s\n", c->hostport, proto_strerror(r));
    return 1;
}

/* Queues one line (without its newline) as one message, or as several records when it is
 * longer than one record carries; *taken: how many of its n bytes went (fewer when the rest
 * waits for the engine to take more). Returns 0 or <0. */
static int send_line(struct client *c, const uint8_t *p, size_t n, size_t *taken)
{
    int r = client_echo_send_line(&c->echo, &c->conn, c->vt, p, n, taken);
    if (r == CLIENT_ECHO_EMPTY) {
        fprintf(stderr, "secho: %s cannot carry an empty message; not sent\n", c->vt->name);
        *taken = n;
        return 0;
    }
    return r;
}

/* Splits buffered stdin into lines and queues them while the engine takes more. */
static int take_lines(struct client *c)
{
    while (!c->echo.leaving && conn_can_send(&c->conn) && client_echo_room(&c->echo)) {
        const uint8_t *p = buf_head(&c->line);
        size_t n = buf_len(&c->line), taken = 0;
        const uint8_t *nl = n ? memchr(p, '\n', n) : NULL; /* p is NULL before any input */
        if (!nl) {
            if (!c->stdin_eof || n == 0)
                return 0;
            int r = send_line(c, p, n, &taken); /* a last line without newline */
            buf_consume(&c->line, r < 0 ? n : taken);
            if (r < 0 || taken == n)
                return r;
            continue; /* the rest of it once the engine takes more */
        }
        int r = send_line(c, p, (size_t)(nl - p), &taken);
        if (r < 0) {
            buf_consume(&c->line, (size_t)(nl - p) + 1);
            return r;
        }
        /* A line queued in part keeps its rest (and newline) for the next call. */
        buf_consume(&c->line, taken + (taken == (size_t)(nl - p)));
    }
    return 0;
}

/* ---- the client's policy for its connection (struct conn_ops) ---- */

/* Prints one echo (or a record of a split line, or raw stream bytes) and counts it. */
static int client_on_message(void *arg, struct conn *conn, const struct proto_msg *m, uint64_t now)
{
    (void)conn;
    (void)now;
    struct client *c = arg;
    bool newline;
    bool due = client_echo_on_message(&c->echo, m, &newline);
    if (print_echo(c, m->data, m->len, newline) < 0) {
        c->failed = true;
        fail("stdout", strerror(errno));
        return -EIO;
    }
    if (due)
        c->prompt_due = true;
    return 0;
}

static void client_on_handshake(void *arg, struct conn *conn, uint64_t now)
{
    (void)now;
    handshake_notice(conn_error_text(conn));
    ((struct client *)arg)->prompt_due = true;
}

static void note_answer(struct client *c, bool yes)
{
    c->answered_yes = yes;
}

/* The server closed a connection on which nothing was sent yet after the user said yes to
 * the question: it gave up on the handshake while the user was reading (its handshake
 * timeout). Says so; client_main then connects again, the key being trusted now. */
static bool retry_after_question(struct client *c)
{
    if (!c->answered_yes || c->echo.owed > 0 || c->echo.parts_len > 0 || c->echo.leaving)
        return false;
    c->answered_yes = false;
    c->retry = true;
    report_start();
    fprintf(stderr,
            "secho: %s: the server gave up on the handshake while the question was open; "
            "connecting again with the key now trusted\n",
            c->hostport);
    return true;
}

/* The server does not speak the chosen protocol: says so, and what to try. Returns true
 * when it said so. */
static bool wrong_protocol_hint(const struct client *c, bool handshake_timeout)
{
    if (c->handshake_echoed) {
        report_start();
        fprintf(stderr,
                "secho: %s: the server sent our %s handshake back byte for byte: it is an echo "
                "server that does not speak %s; try -P plain\n",
                c->hostport, c->vt->name, c->vt->name);
        return true;
    }
    if (handshake_timeout && !c->heard && strcmp(c->vt->name, "lab-dh") == 0) {
        report_start();
        fprintf(stderr,
                "secho: %s: no PEM public key arrived within %g s: the server is not speaking "
                "lab-dh\n",
                c->hostport, c->timeout_ms / 1000.0);
        return true;
    }
    return false;
}

static void client_on_fault(void *arg, struct conn *conn, enum conn_fault what, int err)
{
    struct client *c = arg;
    if (c->failed)
        return; /* already reported */
    c->failed = true;
    if (!c->running)
        return; /* conn_init failed: run_tcp reports it */
    if (!conn_ready(conn) && wrong_protocol_hint(c, what == CONN_FAULT_HANDSHAKE))
        return;
    if (what == CONN_FAULT_RECV && retry_after_question(c))
        return;
    if (what == CONN_FAULT_HANDSHAKE)
        fail(c->hostport, "handshake timed out");
    else if (what == CONN_FAULT_RECV)
        fail(c->hostport, strerror(err));
    else if (err == -ENOBUFS)
        fail(c->hostport, "input buffer full");
    else
        proto_fail(c, err, conn_error_text(conn));
}

/* Echoes still to come: the engine keeps receiving until they are in. */
static bool client_awaiting(void *arg, const struct conn *conn)
{
    (void)conn;
    return ((const struct client *)arg)->echo.owed > 0;
}

static const struct conn_ops client_conn_ops = {
    .on_message = client_on_message,
    .on_handshake = client_on_handshake,
    .on_fault = client_on_fault,
    .awaiting = client_awaiting,
};

/* Sends what the engine lets go now, then the half-close it asks for. Returns 0 or -errno. */
static int send_out(struct client *c, uint64_t now)
{
    const uint8_t *p;
    size_t n;
    while ((n = conn_out_peek(&c->conn, now, &p)) > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            int e = errno;
            conn_on_send_error(&c->conn, e);
            return -e;
        }
        conn_out_sent(&c->conn, (size_t)w, now);
    }
    if (conn_wants(&c->conn) & CONN_WANT_SHUT_WR) {
        (void)shutdown(c->fd, SHUT_WR);
        conn_shut_done(&c->conn);
    }
    return 0;
}

/* Receives once into the engine. Returns 0, or 1 after reporting a receive error. */
static int recv_in(struct client *c, short revents, uint64_t now)
{
    uint8_t *p;
    size_t room = conn_read_buf(&c->conn, now, &p);
    if (room == 0) {
        if (revents & (POLLHUP | POLLERR)) {
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
            conn_on_hangup(&c->conn, err);
        }
        return 0;
    }
    ssize_t n = recv(c->fd, p, room, MSG_DONTWAIT);
    if (n > 0 && !c->heard) {
        c->heard = true;
        /* A secure server answers with an ephemeral key; an echo server sends back our
         * preamble (2-byte length, then the Noise protocol name). */
        c->handshake_echoed = (c->vt->flags & PROTO_F_KEY_FILES) && !conn_ready(&c->conn) &&
                              n >= 8 && memcmp(p + 2, "Noise_", 6) == 0;
    }
    if (n > 0) {
        conn_read_commit(&c->conn, (size_t)n, now);
    } else if (n == 0) {
        conn_on_eof(&c->conn, now);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        int e = errno;
        conn_on_recv_error(&c->conn, e);
        /* After exit or shutdown the server is expected to close, even with a reset. */
        if (c->echo.leaving && e == ECONNRESET)
            return 0;
        if (c->retry)
            return 1; /* reported by retry_after_question (on_fault) */
        return fail(c->hostport, strerror(e));
    }
    return 0;
}

/* Everything queued: the last line went (end of input, `exit`), or the server accepted
 * `shutdown` (its echo came back). */
static bool done_sending(const struct client *c)
{
    /* plain TCP: the echo of `shutdown` comes either way; what follows it tells (the
     * refusal line, or the server closing), so the client waits for that. */
    if (c->echo.shutdown_sent)
        return !c->echo.stream && c->echo.owed <= 0;
    return c->echo.leaving || (c->stdin_eof && buf_empty(&c->line));
}

/* Echoes owed that will not come are reported (SPEC): the exit status is then 1. */
static int gave_up(const struct client *c)
{
    if (c->echo.owed <= 0)
        return 0;
    report_start();
    fprintf(stderr, "secho: %s: gave up waiting for %lld echo%s after %g s\n", c->hostport,
            c->echo.owed, c->echo.stream ? " bytes" : "es", c->timeout_ms / 1000.0);
    return 1;
}

/* The exit status once the connection closed (no error was reported yet). */
static int outcome(struct client *c)
{
    if (conn_reason(&c->conn) == CONN_REASON_TIMEOUT)
        return gave_up(c);
    /* After exit, shutdown or the end of the input the server may close, but only once it
     * delivered every echo it owes. */
    if ((c->echo.leaving || c->stdin_eof) && c->echo.owed > 0) {
        report_start();
        fprintf(stderr, "secho: %s: %lld echo%s never arrived: the server closed the connection\n",
                c->hostport, c->echo.owed,
                c->echo.stream ? (c->echo.owed == 1 ? " byte" : " bytes")
                               : (c->echo.owed == 1 ? "" : "es"));
        return 1;
    }
    if (!conn_ready(&c->conn) && wrong_protocol_hint(c, false))
        return 1;
    if (conn_peer_closed(&c->conn) && retry_after_question(c))
        return 1;
    /* Otherwise the server is expected to stay. */
    if (conn_peer_closed(&c->conn) && !c->echo.leaving && !c->stdin_eof)
        return fail(c->hostport, "connection closed by the server");
    return 0;
}

static int run_tcp(struct client *c)
{
    const struct conn_conf cf = {
        .vt = c->vt,
        .pctx = c->ctx,
        .role = PROTO_CLIENT,
        .in_limit = 1 << 20,
        .out_limit = 1 << 20,
        .out_high = OUT_HIGH,
        .read_chunk = 65536,
        .handshake_ms = c->timeout_ms,
        .linger_ms = c->timeout_ms,
    };
    int r = conn_init(&c->conn, &cf, &client_conn_ops, c, loop_clock_ms());
    c->running = true;
    if (r < 0) {
        fprintf(stderr, "secho: %s\n", proto_strerror(r));
        return 1;
    }
    c->prompt_due = conn_ready(&c->conn);
    for (;;) {
        uint64_t now = loop_clock_ms();
        if (c->failed) {
            (void)send_out(c, now); /* what the failure left owed (a tls alert), if it goes */
            return 1;
        }
        if (conn_ready(&c->conn) && c->prompt_due && c->echo.owed <= 0)
            prompt(c);
        if ((r = send_out(c, now)) < 0)
            return c->failed ? 1 : fail(c->hostport, strerror(-r));
        if (c->failed)
            return 1;
        if (conn_closed(&c->conn))
            return outcome(c);
        if (conn_peer_closed(&c->conn) && !c->finishing)
            return outcome(c); /* the server closed first */
        if (c->echo.answer_due && now >= c->echo.answer_due)
            return gave_up(c);
        uint64_t due = conn_deadline(&c->conn);
        if (c->echo.answer_due && c->echo.answer_due < due)
            due = c->echo.answer_due;
        int timeout = -1;
        if (due != CONN_NO_DEADLINE)
            timeout = due <= now ? 0 : due - now < INT32_MAX ? (int)(due - now) : INT32_MAX;
        unsigned want = conn_wants(&c->conn);
        bool want_stdin = conn_ready(&c->conn) && !c->stdin_eof && !c->echo.leaving &&
                          conn_can_send(&c->conn) && buf_len(&c->line) < LINE_LIMIT;
        struct pollfd p[2] = {
            {.fd = c->fd,
             .events = (short)((want & CONN_WANT_READ ? POLLIN : 0) |
                               (want & CONN_WANT_WRITE ? POLLOUT : 0))},
            {.fd = want_stdin ? STDIN_FILENO : -1, .events = POLLIN},
        };
        r = poll(p, 2, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return fail("poll", strerror(errno));
        }
        now = loop_clock_ms();
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && recv_in(c, p[0].revents, now))
            return 1;
        if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && c->edit) {
            int e = lineedit_feed();
            if (e < 0)
                return fail("stdin", "line too long");
            c->stdin_eof = e > 0;
        } else if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (buf_reserve(&c->line, STDIN_CHUNK) < 0)
                return fail("stdin", "line too long");
            ssize_t n = read(STDIN_FILENO, buf_tail(&c->line), STDIN_CHUNK);
            if (n > 0) {
                buf_commit(&c->line, (size_t)n);
                prompt_open = false; /* the terminal echoed the typed line's newline */
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN))
                c->stdin_eof = true;
        }
        conn_on_time(&c->conn, now);
        if (conn_ready(&c->conn) && (r = take_lines(c)) < 0)
            return fail(c->hostport, proto_strerror(r));
        if (c->echo.shutdown_sent && !c->echo.answer_due && (c->echo.stream || c->echo.owed > 0))
            c->echo.answer_due = now + (uint64_t)c->timeout_ms;
        if (!c->finishing && done_sending(c)) {
            c->finishing = true;
            conn_finish(&c->conn,
                        c->echo.shutdown_sent ? CONN_REASON_SHUTDOWN
                        : c->echo.leaving     ? CONN_REASON_EXIT
                                              : CONN_REASON_EOF,
                        c->timeout_ms, now);
        }
    }
}

/* Waits for one datagram and runs it through the protocol. Returns the PROTO_* result,
 * or -ETIMEDOUT / -errno. */
static int udp_receive(struct client *c, uint64_t deadline, struct proto_msg *m, uint8_t *dgram,
                       size_t cap)
{
    for (;;) {
        uint64_t now = loop_clock_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n = recv(c->fd, dgram, cap, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return -errno;
        }
        buf_reset(&c->out);
        r = c->vt->dgram_read(c->pconn, dgram, (size_t)n, &c->out, m);
        if (!buf_empty(&c->out))
            (void)send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        if (r == PROTO_DROP || r == PROTO_NEED_MORE)
            continue;
        if ((r == PROTO_E_AUTH || r == PROTO_E_PARSE) && c->vt->dgram_retransmit) {
            /* A datagram that fails authentication is dropped (SPEC), not fatal. */
            const char *why = c->vt->conn_error ? c->vt->conn_error(c->pconn) : NULL;
            report_start();
            fprintf(stderr, "secho: %s: dropped a datagram: %s\n", c->hostport,
                    why && *why ? why : proto_strerror(r));
            continue;
        }
        return r;
    }
}

/* Is m the echo of the message (line, n) sent? The shutdown refusal answers `shutdown`. */
static bool is_echo_of(const struct proto_msg *m, const char *line, size_t n)
{
    static const char denied[] = SERVER_DENIED_TEXT;
    if (m->len == n && (n == 0 || memcmp(m->data, line, n) == 0))
        return true;
    return n == 8 && memcmp(line, "shutdown", 8) == 0 && m->len == sizeof(denied) - 1 &&
           memcmp(m->data, denied, m->len) == 0;
}

/*
 * Waits up to --timeout for the answer to what was just sent: the handshake (line NULL) or
 * the echo of line. With a protocol that retransmits (vt->dgram_retransmit), resends after
 * UDP_RTO_MS, doubling up to UDP_RTO_MAX_MS: the pending handshake datagram if any, then the
 * line encoded afresh; echoes that are not of this line are old duplicates and ignored.
 */
static int udp_exchange(struct client *c, const char *line, size_t n, struct proto_msg *m,
                        uint8_t *dgram, size_t cap)
{
    const struct proto_vt *vt = c->vt;
    uint64_t deadline = loop_clock_ms() + (uint64_t)c->timeout_ms, rto = UDP_RTO_MS;
    for (;;) {
        uint64_t now = loop_clock_ms(), until = deadline;
        if (vt->dgram_retransmit && now + rto < deadline)
            until = now + rto;
        int r = udp_receive(c, until, m, dgram, cap);
        if (r == PROTO_MSG && line && vt->dgram_retransmit && !is_echo_of(m, line, n))
            continue;
        if (r != -ETIMEDOUT || until >= deadline)
            return r;
        buf_reset(&c->out);
        if ((r = vt->dgram_retransmit(c->pconn, &c->out)) < 0)
            return r;
        if (!buf_empty(&c->out))
            (void)send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        if (line) {
            buf_reset(&c->out);
            if ((r = vt->dgram_write(c->pconn, (const uint8_t *)line, n, &c->out)) < 0)
                return r;
            (void)send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        }
        rto = rto * 2 < UDP_RTO_MAX_MS ? rto * 2 : UDP_RTO_MAX_MS;
    }
}

static int udp_error(struct client *c, int r)
{
    if (r == -ECONNREFUSED)
        return fail(c->hostport, "no server is listening (connection refused)");
    if (r <= PROTO_E_AUTH && r >= PROTO_DROP)
        return proto_fail(c, r, c->vt->conn_error ? c->vt->conn_error(c->pconn) : NULL);
    return fail(c->hostport, proto_strerror(r));
}

/* getline() for an edited terminal: waits for the next line lineedit completes. Returns
 * its length with the newline, or -1 at the end of the input (or on an error, reported). */
static ssize_t edit_getline(struct client *c, char **line, size_t *cap)
{
    for (;;) {
        const uint8_t *p = buf_head(&c->line);
        size_t n = buf_len(&c->line);
        const uint8_t *nl = n ? memchr(p, '\n', n) : NULL;
        if (nl) {
            size_t k = (size_t)(nl - p) + 1;
            if (!*line || k + 1 > *cap) {
                char *bigger = realloc(*line, k + 1);
                if (!bigger)
                    return -1;
                *line = bigger;
                *cap = k + 1;
            }
            memcpy(*line, p, k);
            (*line)[k] = '\0';
            buf_consume(&c->line, k);
            return (ssize_t)k;
        }
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        if (poll(&pfd, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        int e = lineedit_feed();
        if (e != 0) {
            if (e < 0)
                fail("stdin", "line too long");
            return -1;
        }
    }
}

static int run_udp(struct client *c)
{
    static uint8_t dgram[65536];
    struct proto_msg m = {0};
    int r;
    /* A greeting (e.g. lab-fernet's key request) is answered before any message. */
    if (!buf_empty(&c->out)) {
        (void)send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        r = udp_exchange(c, NULL, 0, &m, dgram, sizeof(dgram));
        if (r == -ETIMEDOUT)
            return fail(c->hostport, "no answer from the server");
        if (r < 0)
            return udp_error(c, r);
        handshake_notice(c->vt->conn_error ? c->vt->conn_error(c->pconn) : NULL);
    }
    long lost = 0, seq = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int status = 0;
    if (c->interactive)
        prompt(c);
    while ((len = c->edit ? edit_getline(c, &line, &cap) : getline(&line, &cap, stdin)) >= 0) {
        size_t n = (size_t)len;
        prompt_open = false; /* the terminal echoed the typed line's newline */
        if (n && line[n - 1] == '\n')
            n--;
        if (n && line[n - 1] == '\r')
            n--;
        seq++;
        buf_reset(&c->out);
        r = c->vt->dgram_write(c->pconn, (const uint8_t *)line, n, &c->out);
        if (r < 0) {
            status = fail(c->hostport, proto_strerror(r));
            break;
        }
        if (send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL) < 0) {
            status = udp_error(c, -errno);
            break;
        }
        r = udp_exchange(c, line, n, &m, dgram, sizeof(dgram));
        if (r == -ETIMEDOUT) {
            report_start();
            fprintf(stderr, "secho: %s: no echo for message %ld within %d s (lost)\n", c->hostport,
                    seq, c->timeout_ms / 1000);
            lost++;
        } else if (r < 0) {
            status = udp_error(c, r);
            break;
        } else if (r == PROTO_MSG) {
            print_echo(c, m.data, m.len, true);
        }
        if ((n == 4 && memcmp(line, "exit", 4) == 0) ||
            (n == 8 && memcmp(line, "shutdown", 8) == 0 && r == PROTO_MSG &&
             !(m.len == sizeof(SERVER_DENIED_TEXT) - 1 &&
               memcmp(m.data, SERVER_DENIED_TEXT, m.len) == 0)))
            break;
        if (c->interactive)
            prompt(c);
    }
    OPENSSL_cleanse(line, cap);
    free(line);
    if (status == 0 && lost > 0) {
        fprintf(stderr, "secho: %ld of %ld messages got no echo\n", lost, seq);
        status = 1;
    }
    return status;
}

/* ${XDG_STATE_HOME:-$HOME/.local/state}/secho/history into path, making the directories
 * (0700) it needs. Returns 0, or -1 when there is no home or a directory cannot be made. */
static int history_path(char *path, size_t size)
{
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int n;
    size_t base; /* the directory the path starts with, which must exist */
    if (state && *state) {
        n = snprintf(path, size, "%s/secho/history", state);
        base = strlen(state);
    } else if (home && *home) {
        n = snprintf(path, size, "%s/.local/state/secho/history", home);
        base = strlen(home);
    } else {
        return -1;
    }
    if (n < 0 || (size_t)n >= size)
        return -1;
    /* Each directory in turn below the base, as mkdir -p would; existing ones stay as are. */
    for (char *s = path + base + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        int r = mkdir(path, 0700);
        *s = '/';
        if (r < 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

/* Tells the user that a new identity key was made, and its public key (as ssh-keygen). */
static void announce_new_key(const char *path)
{
    uint8_t priv[KEYS_LEN], pub[KEYS_LEN];
    char err[256], b64[KEYS_B64LEN + 1];
    if (keys_load(path, priv, pub, err, sizeof(err)) != 0)
        return; /* not made after all (the protocol reported why, or used none) */
    OPENSSL_cleanse(priv, sizeof(priv));
    keys_b64_encode(pub, b64);
    fprintf(stderr, "secho: created a new identity key in %s; its public key is %s\n", path, b64);
}

int client_main(int argc, char **argv)
{
    const char *cmd = "client";
    struct cli_common common;
    cli_common_init(&common);
    struct proto_opts po = {.max_msg = 1 << 20};
    char keypath[4096] = "", khpath[4096] = "";
    double timeout = 10;
    bool history = false;
    char histpath[4096];
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "k:h", long_opts, NULL)) != -1) {
        int r = cli_common_opt(&common, cmd, opt, optarg);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        switch (opt) {
        case 'k':
            po.key_file = optarg;
            break;
        case OPT_KNOWN_HOSTS:
            po.known_hosts = optarg;
            break;
        case OPT_SERVER_KEY:
            po.server_key = optarg;
            break;
        case OPT_ACCEPT_NEW:
            po.accept_new = true;
            break;
        case OPT_NOISE_NAME:
            po.noise_name = optarg;
            break;
        case OPT_HISTORY:
            history = true;
            break;
        case OPT_CA:
            po.ca_file = optarg;
            break;
        case OPT_TIMEOUT:
            if (!cli_parse_seconds(cmd, "timeout", optarg, 0.01, 86400, &timeout))
                return 2;
            break;
        case 'h':
            return cli_help(usage_head, 26, usage_tail);
        default:
            return cli_getopt_error(cmd, opt, argv, long_opts);
        }
    }
    if (!cli_common_done(&common, cmd, argc, argv))
        return 2;
    if (!cli_popt_check(cmd, &common, po.key_file, "-k/--key", CLI_POPT_CLIENT_KEY) ||
        !cli_popt_check(cmd, &common, po.ca_file, "--ca", CLI_POPT_CERTS) ||
        !cli_popt_check(cmd, &common, po.known_hosts, "--known-hosts", CLI_POPT_KEY_FILES) ||
        !cli_popt_check(cmd, &common, po.server_key, "--server-key", CLI_POPT_KEY_FILES) ||
        !cli_popt_check(cmd, &common, po.accept_new, "--accept-new", CLI_POPT_KEY_FILES) ||
        !cli_popt_check(cmd, &common, po.noise_name, "--noise-name", CLI_POPT_NOISE_NAME) ||
        !cli_popt_check(cmd, &common, history, "--history", CLI_POPT_KEY_FILES))
        return 2;
    if (po.noise_name && !cli_check_noise_name(cmd, common.proto, po.noise_name))
        return 2;
    if (po.server_key && !cli_check_server_key(cmd, po.server_key))
        return 2;
    if (common.proto->flags & PROTO_F_KEY_FILES) {
        if (!(common.proto->flags & PROTO_F_CERTS) && !po.key_file &&
            keys_default_path("id.key", keypath, sizeof(keypath)) == 0)
            po.key_file = keypath;
        if (!po.known_hosts && keys_default_path("known_hosts", khpath, sizeof(khpath)) == 0)
            po.known_hosts = khpath;
    }

    struct client c = {.vt = common.proto, .fd = -1, .timeout_ms = (int)(timeout * 1000)};
    c.interactive = isatty(STDIN_FILENO);
    /* A protocol that protects its text keeps it out of the history file unless asked. */
    if (c.interactive && (history || !(c.vt->flags & PROTO_F_KEY_FILES)) &&
        history_path(histpath, sizeof(histpath)) == 0)
        c.history = histpath;
    client_echo_init(&c.echo, !common.udp && (c.vt->flags & PROTO_F_STREAM_ECHO));
    net_format_hostport(common.host, common.port, c.hostport, sizeof(c.hostport));
    po.host_id = c.hostport;
    po.dgram = common.udp;
    if (c.interactive) {
        po.confirm = confirm_tty;
        po.confirm_arg = &c;
        po.interactive = true;
    }
    buf_init(&c.out, 1 << 20);
    buf_init(&c.line, LINE_LIMIT + STDIN_CHUNK);
    cli_warn_unauthenticated(c.vt);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    char err[256];
    struct net_addr addr;
    if (net_resolve(common.host, common.port, common.udp ? SOCK_DGRAM : SOCK_STREAM, &addr, err,
                    sizeof(err)) < 0) {
        fprintf(stderr, "secho: cannot connect to %s: %s\n", c.hostport, err);
        goto out;
    }
    c.fd = common.udp ? net_connect_udp(&addr) : net_connect_tcp(&addr, c.timeout_ms);
    if (c.fd < 0) {
        fprintf(stderr, "secho: cannot connect to %s: %s\n", c.hostport, strerror(-c.fd));
        goto out;
    }
    char perr[PROTO_ERRLEN] = "";
    int r;
    /* The identity key is created on first use (by the protocol): announced once, here. */
    bool had_key = !po.key_file || access(po.key_file, F_OK) == 0;
    if (c.vt->ctx_new && (r = c.vt->ctx_new(&po, PROTO_CLIENT, &c.ctx, perr, sizeof(perr))) < 0) {
        fprintf(stderr, "secho: %s\n", perr[0] ? perr : proto_strerror(r));
        goto out;
    }
    if (!had_key)
        announce_new_key(po.key_file);
    if (!common.udp) {
        status = run_tcp(&c);
        if (c.running)
            conn_free(&c.conn);
        if (c.retry) { /* once: the key is trusted now, no question comes again */
            close(c.fd);
            c.fd = net_connect_tcp(&addr, c.timeout_ms);
            if (c.fd < 0) {
                fprintf(stderr, "secho: cannot connect to %s: %s\n", c.hostport, strerror(-c.fd));
                status = 1;
                goto out;
            }
            c.retry = c.running = c.failed = c.finishing = false;
            c.heard = c.handshake_echoed = false;
            status = run_tcp(&c);
            if (c.running)
                conn_free(&c.conn);
        }
        goto out;
    }
    if ((r = proto_conn_new(c.vt, c.ctx, PROTO_CLIENT, &c.out, &c.pconn)) < 0) {
        fprintf(stderr, "secho: %s\n", proto_strerror(r));
        goto out;
    }
    status = run_udp(&c);
out:
    lineedit_close();
    proto_conn_free(c.vt, c.pconn);
    if (c.ctx && c.vt->ctx_free)
        c.vt->ctx_free(c.ctx);
    if (c.fd >= 0)
        close(c.fd);
    buf_free(&c.out);
    buf_free(&c.line);
    return status;
}
