/* SPDX-License-Identifier: MIT */
/* One server-side TCP connection as a sans-IO state machine: events in, bytes and wishes out. */
#ifndef SECHO_CONN_H
#define SECHO_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "net.h"
#include "service.h"

/*
 * The engine never touches a socket or a clock. An I/O model owns the descriptor and tells
 * the engine what happened (bytes arrived, EOF, an error, bytes were sent, the time); after
 * each event it asks what the connection wants now (conn_wants), which bytes to send
 * (conn_out_peek) and when to call again at the latest (conn_deadline). A readiness model
 * (epoll, poll) reads into the engine's own buffer (conn_read_buf, then conn_read_commit); a
 * completion model (io_uring) that already holds bytes hands them over with conn_feed.
 *
 * Life: OPEN (reading, echoing) -> DRAIN (no more input is used; what is owed is delivered)
 * -> LINGER (our side is half-closed; waiting briefly for the peer's FIN) -> CLOSED. Any
 * state may go straight to CLOSED (reset, error, handshake timeout, abort). Every `now` is
 * monotonic milliseconds and must not go backwards.
 *
 * Only one thread at a time may call into a given conn.
 */

enum conn_reason {
    CONN_REASON_NONE,
    CONN_REASON_EXIT,
    CONN_REASON_EOF,
    CONN_REASON_RESET,
    CONN_REASON_TIMEOUT,
    CONN_REASON_ERROR,
    CONN_REASON_SHUTDOWN,
};

enum conn_state {
    CONN_OPEN,
    CONN_DRAIN,
    CONN_LINGER,
    CONN_CLOSED,
};

/* What a connection wants from its model (conn_wants). */
enum {
    CONN_WANT_READ = 1U << 0,    /* deliver input (or EOF, or a read error) when there is some */
    CONN_WANT_WRITE = 1U << 1,   /* conn_out_peek has bytes to send */
    CONN_WANT_SHUT_WR = 1U << 2, /* half-close our side (shutdown SHUT_WR), then conn_shut_done */
    CONN_WANT_CLOSE = 1U << 3,   /* finished: the model calls conn_free and closes the socket */
};

/* The deadline of a connection that has none. */
#define CONN_NO_DEADLINE UINT64_MAX

/* How long a peer that stopped reading may keep a closing connection (exit, eof, error). */
#define CONN_DRAIN_MS 10000

/* Room conn_read_buf offers while the connection is closing (input is then discarded). */
#define CONN_DISCARD_CHUNK 4096

/* The fields are the engine's: a model reads them only through the functions below. */
struct conn {
    struct server *srv;
    uint64_t id;
    struct net_addr peer;
    char peer_text[NET_ADDRSTRLEN];
    void *pconn;
    struct buf in, out;
    struct server_msg msg;
    enum conn_state state;
    enum conn_reason reason;
    bool ready;     /* handshake done */
    bool peer_eof;  /* the peer half-closed */
    bool paused;    /* sending waits until pause_until (pacing) */
    bool shut_owed; /* CONN_WANT_SHUT_WR not yet acknowledged */
    uint64_t pause_until;
    uint64_t last_active;
    uint64_t started;
    uint64_t deadline; /* DRAIN/LINGER: closed by then */
};

/* Sets up a connection from `peer` accepted at `now`: logs `connect` and runs the
 * protocol's greeting (which is then owed: see conn_out_peek). Returns 0, or <0 after
 * logging why (the connection is then CLOSED with reason error). Either way the caller
 * MUST call conn_free once. */
int conn_init(struct conn *c, struct server *srv, const struct net_addr *peer, uint64_t now);

/* ---- input ---- */

/* Readiness models: room to receive into. Returns the number of bytes that may be read into
 * *p (then report them with conn_read_commit), or 0 when the connection wants no input now
 * (CONN_WANT_READ is clear, or the input buffer failed: that is handled and logged here).
 * While the connection is closing the room is a scratch area and what lands there is
 * discarded. */
size_t conn_read_buf(struct conn *c, uint64_t now, uint8_t **p);
/* Readiness models: n > 0 bytes were received into the room of the last conn_read_buf. */
void conn_read_commit(struct conn *c, size_t n, uint64_t now);
/* Completion models: n > 0 bytes the model already received. Takes what the connection
 * wants now and returns the count taken: up to SERVER_READ_CHUNK while it is open and wants
 * input, up to CONN_DISCARD_CHUNK (discarded) while it is closing, 0 when it wants none. The
 * model keeps the rest and feeds it again once CONN_WANT_READ is set. */
size_t conn_feed(struct conn *c, const uint8_t *p, size_t n, uint64_t now);
/* The peer half-closed (recv returned 0): what is owed is still delivered. */
void conn_on_eof(struct conn *c, uint64_t now);
/* A receive failed with errno `err` (not EAGAIN/EINTR): ECONNRESET, EPIPE and ETIMEDOUT
 * close with reason reset, anything else is logged and closes with reason error. */
void conn_on_recv_error(struct conn *c, int err);
/* A send failed with errno `err` (not EAGAIN/EINTR): EPIPE and ECONNRESET close with
 * reason reset, anything else with reason error. */
void conn_on_send_error(struct conn *c, int err);
/* The kernel reported a hang-up or error on the socket without readable data; `so_error`
 * is the socket's pending error (0 for none). Closes with eof or reset. */
void conn_on_hangup(struct conn *c, int so_error);

/* ---- output ---- */

/* The bytes to send now: sets *p and returns their count, or 0 when nothing may go now
 * (nothing owed, or waiting for a pause to end: see conn_deadline). Never past a pause mark.
 * The bytes stay valid until the next call into the connection. */
size_t conn_out_peek(struct conn *c, uint64_t now, const uint8_t **p);
/* The first n bytes of the last conn_out_peek were sent (a partial write is fine). */
void conn_out_sent(struct conn *c, size_t n, uint64_t now);
/* The model did what CONN_WANT_SHUT_WR asked (whatever shutdown() returned). */
void conn_shut_done(struct conn *c);

/* ---- time and shutdown ---- */

/* Time passed: ends pauses and runs the handshake, idle, drain and linger timeouts that are
 * due at `now`. */
void conn_on_time(struct conn *c, uint64_t now);
/* Server shutdown began: stop using input, deliver what is owed by the server's stop_at. */
void conn_begin_shutdown(struct conn *c, uint64_t now);
/* Closes at once (past the shutdown deadline): reason shutdown unless one was set. */
void conn_abort(struct conn *c);

/* ---- queries ---- */

/* CONN_WANT_* bits the connection needs now. */
unsigned conn_wants(const struct conn *c);
/* The absolute time by which conn_on_time must be called (a pause ends, a timeout or a
 * drain/linger deadline expires), or CONN_NO_DEADLINE. */
uint64_t conn_deadline(const struct conn *c);
static inline bool conn_closed(const struct conn *c)
{
    return c->state == CONN_CLOSED;
}
/* The reason the connection ended (or is ending) as the log names it: "exit", "eof",
 * "reset", "timeout", "shutdown" or "error". */
const char *conn_reason_name(const struct conn *c);

/* Logs a cut-off message and `disconnect`, frees and wipes the protocol state and buffers.
 * Accepts a failed conn_init. The model then closes the socket. */
void conn_free(struct conn *c);

#endif
