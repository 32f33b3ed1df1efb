/* SPDX-License-Identifier: MIT */
/* The TCP client's reading of echoes (SPEC "Client behaviour"): the account of what each line
 * sent is owed back, which of the server's bytes or records are those echoes, where each
 * printed echo line ends, and whether the server refused `shutdown`. No I/O and no clock:
 * client.c queues lines through it, prints what it says, and decides when to stop. */
#ifndef SECHO_CLIENT_ECHO_H
#define SECHO_CLIENT_ECHO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "proto.h"

/* Lines queued and not yet echoed, at most. */
#define CLIENT_LINES_IN_FLIGHT 256

struct client_echo {
    bool stream;    /* plain TCP: owed counts bytes, echoes are raw bytes */
    long long owed; /* bytes (stream) or records still to be echoed */
    /* Records per line still to be echoed, oldest first: a line longer than one record
     * goes out as several, and its echoes are printed back as one line. */
    uint32_t parts[CLIENT_LINES_IN_FLIGHT];
    unsigned parts_head, parts_len;
    bool mid_line;       /* the newest line is queued in part (client_echo_send_line) */
    bool leaving;        /* `exit` or `shutdown` was queued: no more lines */
    bool shutdown_sent;  /* `shutdown` was queued and not refused */
    uint64_t answer_due; /* `shutdown` sent: when to stop waiting for its answer (client.c) */
    /* plain TCP: the bytes that came after every echo owed for `shutdown`, up to a newline:
     * the server's refusal line, if it refused (SPEC: it follows the echo as a line). */
    char answer[64];
    size_t answer_len;
};

/* Starts the account of a connection; stream as above. */
void client_echo_init(struct client_echo *e, bool stream);

/* What client_echo_send_line returns when vt cannot carry an empty message: nothing was
 * queued, and the caller says so. */
#define CLIENT_ECHO_EMPTY 1

/* Queues one line (without its newline; a trailing '\r' is dropped) on conn: plain TCP the
 * bytes and a '\n', otherwise one message, or several records when it is longer than one
 * record of vt carries. A line of more records than conn takes at once (each paced record
 * holds a pause mark) is queued in parts: *taken says how many of the n bytes went (at least
 * one record's worth), and the caller calls again with the rest of the same line once
 * conn_can_send holds; the echoes of all its parts still print as one line. `exit` and
 * `shutdown` (a line queued whole) mark the account as leaving. Returns 0, CLIENT_ECHO_EMPTY
 * (nothing queued: vt carries no empty message), or <0 from conn_send_msg (then nothing of
 * these n bytes was queued and the account is as before). */
int client_echo_send_line(struct client_echo *e, struct conn *conn, const struct proto_vt *vt,
                          const uint8_t *p, size_t n, size_t *taken);

/* True while another line may be queued (fewer than CLIENT_LINES_IN_FLIGHT in flight). */
bool client_echo_room(const struct client_echo *e);

/* Accounts for one message or fragment from the server, all of whose bytes the client prints;
 * *newline says whether a '\n' follows them (the last record of a line's echo: never while
 * the rest of that line is still to be queued). A refusal of `shutdown` clears leaving and
 * shutdown_sent. Returns true when nothing more is owed and no line is queued in part (the
 * prompt is due). */
bool client_echo_on_message(struct client_echo *e, const struct proto_msg *m, bool *newline);

#endif
