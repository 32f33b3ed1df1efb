/* SPDX-License-Identifier: MIT */
/* One TCP connection, server or client side, as a sans-IO state machine: events in, bytes and
 * wishes out, each message handed to a policy. */
#ifndef SECHO_CONN_H
#define SECHO_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto.h"
#include "proxy_hdr.h"

/*
 * The engine never touches a socket or a clock. A driver (a server I/O model, the client,
 * bench) owns the descriptor and tells the engine what happened (bytes arrived, EOF, an
 * error, bytes were sent, the time); after each event it asks what the connection wants now
 * (conn_wants), which bytes to send (conn_out_peek) and when to call again at the latest
 * (conn_deadline). A readiness driver (epoll, poll) reads into the engine's own buffer
 * (conn_read_buf, then conn_read_commit); a driver that already holds bytes hands them over
 * with conn_feed.
 *
 * Memory: the input and output buffers take storage when bytes arrive or are queued and give
 * it back as soon as they are empty again (to the thread's bounded free-list, unwiped: they
 * hold wire bytes only, see struct proto_vt), so a connection that has echoed everything
 * and waits holds no buffer at all (conn_buffer_bytes is then 0), and the protocol's own idle state
 * is all it costs.
 *
 * What the connection means is its policy's (struct conn_ops): the server's echo and
 * commands (service.c), the client's printing, bench's verifying. The engine does the rest
 * once for all of them: the protocol, pacing (pause marks of PROTO_F_PACED protocols),
 * back-pressure, closing and timeouts.
 *
 * Life: OPEN -> DRAIN (we queue nothing new; what we owe is delivered, and in the client role
 * what the policy awaits is still received) -> LINGER (our side is half-closed; waiting
 * briefly for the peer's FIN) -> CLOSED. Any state may go straight to CLOSED (reset, error,
 * handshake timeout, abort). Every `now` is monotonic milliseconds and must not go backwards.
 *
 * Roles differ in what input costs. Server: input makes output (echoes), so the engine stops
 * reading while it owes out_high bytes, and input that arrives while closing is discarded.
 * Client: input is what the policy waits for, so reading never stops while the connection
 * lives; the back-pressure is on queueing messages (conn_can_send).
 *
 * A server connection may start with a PROXY protocol stage (conn_conf.proxy), in front of
 * the protocol: a trusted load balancer's header is consumed before the protocol sees a byte
 * (and before a greeting goes out), and its verdict goes to the policy (on_proxy); an
 * untrusted peer that opens with a PROXY signature is refused.
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

/* What a connection wants from its driver (conn_wants). */
enum {
    CONN_WANT_READ = 1U << 0,    /* deliver input (or EOF, or a read error) when there is some */
    CONN_WANT_WRITE = 1U << 1,   /* conn_out_peek has bytes to send */
    CONN_WANT_SHUT_WR = 1U << 2, /* half-close our side (shutdown SHUT_WR), then conn_shut_done */
    CONN_WANT_CLOSE = 1U << 3,   /* finished: the driver calls conn_free and closes the socket */
};

/* What went wrong, for conn_ops.on_fault. */
enum conn_fault {
    CONN_FAULT_PROTO,     /* the protocol or the policy failed: err is PROTO_E_* or -errno */
    CONN_FAULT_HANDSHAKE, /* the handshake did not complete within handshake_timeout_ms */
    CONN_FAULT_RECV,      /* a receive failed with errno err (not a reset) */
    CONN_FAULT_RECORD,    /* a record did not complete within record_ms (err -ETIMEDOUT) */
    /* The PROXY stage refused the connection (it is closed): err is a PROXY_HDR_E_* code, a
     * parse error of the header, or PROXY_HDR_E_UNTRUSTED (an untrusted peer sent one),
     * PROXY_HDR_E_TIMEOUT (none within handshake_ms, or idle_ms without one), or
     * PROXY_HDR_E_INCOMPLETE (the peer closed or reset before a whole header). */
    CONN_FAULT_PROXY,
};

/* A server connection's PROXY protocol stage (conn_conf.proxy), run before the protocol. */
enum conn_proxy {
    CONN_PROXY_OFF, /* none: the protocol starts at conn_init */
    /* The peer is a trusted proxy: its first bytes MUST be a PROXY header (version 1 or 2),
     * complete within handshake_ms. The protocol starts, and its greeting is queued, only
     * once the header is consumed and on_proxy agreed; until then the connection is not
     * ready and has no protocol state. */
    CONN_PROXY_REQUIRE,
    /* The peer is not a trusted proxy: the protocol starts at conn_init, but its input waits
     * while the bytes so far could still begin a PROXY signature (at most 11 bytes, e.g. a
     * first line "PRO" not yet ended); a signature is refused (CONN_FAULT_PROXY). */
    CONN_PROXY_REFUSE,
};

/* The deadline of a connection that has none. */
#define CONN_NO_DEADLINE UINT64_MAX

/* How long a peer that stopped reading may keep a closing connection (exit, eof, error). */
#define CONN_DRAIN_MS 10000

/* Unframed streams (plain): the bytes of one line that restart its record_ms clock. */
#define CONN_LINE_PROGRESS 1024

/* Pause after each paced part: a notebook peer reads each part with its own recv(1024). */
#define CONN_PACE_MS 60

/* Room conn_read_buf offers while the connection is closing (input is then discarded). */
#define CONN_DISCARD_CHUNK 4096

/* Pause marks one record may take (lab-dh: two); the engine keeps this many free before it
 * reads (server) or takes messages (conn_can_send). */
#define CONN_MARKS_RESERVE 4

struct conn;

/*
 * A connection's policy. `arg` is the one given to conn_init. The hooks run inside the
 * engine call that caused them and may call conn_send_msg, conn_drain and the queries; they
 * must not free the connection.
 */
struct conn_ops {
    /* A decoded message or fragment (m->first/m->last), in order. For an unframed protocol
     * (PROTO_F_UNFRAMED) in the client role, input is not framed: each arrival is handed
     * over as it came, with first and last false. Returns 0, or <0 to fail the connection
     * (on_fault CONN_FAULT_PROTO with that value, then it closes as after a protocol error). */
    int (*on_message)(void *arg, struct conn *c, const struct proto_msg *m, uint64_t now);
    /* Optional: the handshake just completed (messages may now be queued). */
    void (*on_handshake)(void *arg, struct conn *c, uint64_t now);
    /* Optional: something failed; the connection is already closing (or closed). For
     * CONN_FAULT_PROTO conn_error_text may explain. */
    void (*on_fault)(void *arg, struct conn *c, enum conn_fault what, int err);
    /* Optional, client role: true while the policy still awaits messages from the peer (the
     * echoes it is owed). A closing client connection keeps receiving while this holds, and
     * half-closes only once it does not. NULL: nothing is awaited. */
    bool (*awaiting)(void *arg, const struct conn *c);
    /* Optional: conn_free is releasing the connection (its reason is final). */
    void (*on_close)(void *arg, struct conn *c);
    /* Optional, CONN_PROXY_REQUIRE: the PROXY header is complete and consumed (`h` is valid
     * during the call only); the protocol has not started. Returns 0 to start it, or <0 to
     * refuse the connection (it closes with reason error; on_fault is not called). */
    int (*on_proxy)(void *arg, struct conn *c, const struct proxy_hdr_result *h, uint64_t now);
};

/* How a connection behaves; copied by conn_init. */
struct conn_conf {
    const struct proto_vt *vt;
    void *pctx; /* the protocol context for `role`, shared and read-only */
    enum proto_role role;
    size_t in_limit;   /* cap of unprocessed input (a whole record plus a read) */
    size_t out_limit;  /* cap of owed output */
    size_t out_high;   /* server: no reading, client: no queueing, while this much is owed */
    size_t read_chunk; /* room one conn_read_buf offers, and the most conn_feed takes */
    int handshake_ms;  /* close with reason timeout if not ready by then; 0 = none */
    int idle_ms;       /* drain with reason timeout after this long without traffic; 0 = none */
    /* After the handshake, a record whose first byte the protocol took must be complete
     * (a whole message decoded) this long after that byte, or the connection drains with
     * reason timeout (on_fault CONN_FAULT_RECORD): a peer trickling a record a byte at a time
     * refreshes the idle timer but not this one. The clock restarts at each record: it starts
     * at the first arrival after a whole message that the protocol takes without completing
     * one (bytes the protocol took in the same read that completed the previous message, as
     * lab-fernet does with a pipelined token, start it at the next arrival). For a
     * stream-echo protocol over records (tls) the record is the protocol's own (a line may
     * be of any length and pace): every fragment it hands over ends one. For an unframed
     * protocol (plain) the bound is on a line: it must end ('\n') within record_ms of its
     * first byte or of the last CONN_LINE_PROGRESS bytes of it, whichever is later (a
     * minimum rate, so a stream without newlines flows while a trickle is closed). 0 = none. */
    int record_ms;
    int linger_ms;         /* after our half-close, how long to wait for the peer's FIN */
    enum conn_proxy proxy; /* server role only: the PROXY protocol stage (default off) */
};

/* The fields are the engine's: drivers and policies read them only through the functions
 * below. */
struct conn {
    struct conn_conf conf;
    const struct conn_ops *ops;
    void *arg;
    void *pconn;
    struct buf in, out;      /* each holds storage only while it holds bytes (or a read room) */
    struct buf_marks *marks; /* pause marks of out, allocated for PROTO_F_PACED protocols */
    enum conn_state state;
    enum conn_reason reason;
    bool ready;            /* handshake done */
    bool peer_eof;         /* the peer half-closed */
    bool paused;           /* sending waits until pause_until (pacing) */
    bool shut_owed;        /* CONN_WANT_SHUT_WR not yet acknowledged */
    bool failed;           /* on_fault was called */
    bool waiting;          /* client DRAIN: all went out, the deadline is the wait for the answer */
    bool in_record;        /* the protocol holds part of a record since record_start */
    uint32_t record_bytes; /* unframed: bytes of the line in progress since record_start */
    bool said_bye;         /* the protocol's goodbye (proto_vt.conn_goodbye) was asked for */
    /* Server: reading stopped for back-pressure before the protocol said PROTO_NEED_MORE, so
     * it may hold whole messages (lab-fernet takes up to a token's worth of input ahead)
     * with no input left in `in`: the protocol is called again once the output drains. */
    bool proto_owed;
    enum conn_proxy proxy_stage; /* the PROXY stage still running (CONN_PROXY_OFF: none) */
    struct proxy_hdr *phdr;      /* CONN_PROXY_REQUIRE: the header parser, until it is done */
    int wait_ms;                 /* conn_finish's wait, until it is armed (then -1) */
    uint64_t pause_until;
    uint64_t last_active;
    uint64_t started;
    uint64_t record_start;
    uint64_t deadline; /* DRAIN/LINGER: closed by then */
};

/* Sets up a connection at `now` for policy (ops, arg) and runs the protocol's greeting (which
 * is then owed: see conn_out_peek); with CONN_PROXY_REQUIRE the protocol and its greeting
 * wait for the PROXY header instead. Returns 0, or <0 after on_fault (the connection is then
 * CLOSED with reason error; -EINVAL for a PROXY stage in the client role). Either way the
 * caller MUST call conn_free once. */
int conn_init(struct conn *c, const struct conn_conf *cf, const struct conn_ops *ops, void *arg,
              uint64_t now);

/* ---- input ---- */

/* Readiness drivers: room to receive into. Returns the number of bytes that may be read into
 * *p (then report them with conn_read_commit), or 0 when the connection wants no input now
 * (CONN_WANT_READ is clear, or the input buffer failed: that is handled here). While a
 * server connection is closing the room is a scratch area and what lands there is
 * discarded. The room is valid until the next call into the connection; a driver whose
 * receive brings nothing (EAGAIN) just goes on: the next call gives the room back. */
size_t conn_read_buf(struct conn *c, uint64_t now, uint8_t **p);
/* Readiness drivers: n > 0 bytes were received into the room of the last conn_read_buf. */
void conn_read_commit(struct conn *c, size_t n, uint64_t now);
/* Drivers that already hold bytes: n > 0 bytes received. Takes what the connection wants
 * now and returns the count taken: up to read_chunk while it wants input (without a copy
 * when nothing is buffered: the protocol reads p itself), up to CONN_DISCARD_CHUNK
 * (discarded) while a server connection is closing, 0 when it wants none. The driver keeps
 * the rest and feeds it again once CONN_WANT_READ is set. */
size_t conn_feed(struct conn *c, const uint8_t *p, size_t n, uint64_t now);
/* The peer half-closed (recv returned 0): what is owed is still delivered. */
void conn_on_eof(struct conn *c, uint64_t now);
/* A receive failed with errno `err` (not EAGAIN/EINTR): ECONNRESET, EPIPE and ETIMEDOUT
 * close with reason reset, anything else calls on_fault (CONN_FAULT_RECV) and closes with
 * reason error. */
void conn_on_recv_error(struct conn *c, int err);
/* A send failed with errno `err` (not EAGAIN/EINTR): EPIPE and ECONNRESET close with
 * reason reset, anything else with reason error. */
void conn_on_send_error(struct conn *c, int err);
/* The kernel reported a hang-up or error on the socket without readable data; `so_error`
 * is the socket's pending error (0 for none). Closes with eof or reset. */
void conn_on_hangup(struct conn *c, int so_error);

/* ---- output ---- */

/* Queues one message: encoded with the protocol's conn_write, or for an unframed protocol
 * (plain) the bytes as they are. Returns 0, PROTO_E_STATE before the handshake, -EPIPE once the
 * connection is closing, or the protocol's error (e.g. -EINVAL for a message it cannot
 * carry, -ENOBUFS over out_limit); on error nothing was queued for the message, and the
 * connection is unchanged: whether it fails is the caller's decision. */
int conn_send_msg(struct conn *c, const uint8_t *data, size_t len);
/* True while the connection takes messages without piling up output: open, ready, below
 * out_high and with pause marks to spare. */
bool conn_can_send(const struct conn *c);
/* The bytes to send now: sets *p and returns their count, or 0 when nothing may go now
 * (nothing owed, or waiting for a pause to end: see conn_deadline). Never past a pause mark.
 * The bytes stay valid until the next call into the connection. */
size_t conn_out_peek(struct conn *c, uint64_t now, const uint8_t **p);
/* The first n bytes of the last conn_out_peek were sent (a partial write is fine). */
void conn_out_sent(struct conn *c, size_t n, uint64_t now);
/* The driver did what CONN_WANT_SHUT_WR asked (whatever shutdown() returned). */
void conn_shut_done(struct conn *c);

/* ---- closing, time ---- */

/* Stops new work with `reason`: a server connection uses no more input, a client one
 * queues no more messages; what is owed is delivered, then our side half-closes and
 * lingers. Closed at `deadline` at the latest (an earlier deadline already set stays). */
void conn_drain(struct conn *c, enum conn_reason reason, uint64_t deadline);
/* Client role: the last message is queued (end of input, or `exit`). What is queued goes
 * out; then the connection waits up to wait_ms for what the policy awaits (closing with
 * reason timeout if it does not come), half-closes and waits linger_ms for the peer's FIN.
 * `reason` is the one the connection ends with if nothing else happens. */
void conn_finish(struct conn *c, enum conn_reason reason, int wait_ms, uint64_t now);
/* Time passed: ends pauses and runs the handshake, record, idle, drain and linger timeouts that are
 * due at `now`. */
void conn_on_time(struct conn *c, uint64_t now);
/* Server shutdown began: stop using input, deliver what is owed by stop_at. */
void conn_begin_shutdown(struct conn *c, uint64_t now, uint64_t stop_at);
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
/* True once the handshake (if any) is complete. */
static inline bool conn_ready(const struct conn *c)
{
    return c->ready;
}
/* True once the peer half-closed (EOF was delivered). */
static inline bool conn_peer_closed(const struct conn *c)
{
    return c->peer_eof;
}
/* The reason the connection ended (or is ending), CONN_REASON_NONE while it is open. */
static inline enum conn_reason conn_reason(const struct conn *c)
{
    return c->reason;
}
/* The reason as the log names it: "exit", "eof", "reset", "timeout", "shutdown" or
 * "error". */
const char *conn_reason_name(const struct conn *c);
/* Bytes of buffer storage the connection holds now (input and output; the protocol's state
 * aside): 0 whenever it owes nothing and holds no partial input. */
static inline size_t conn_buffer_bytes(const struct conn *c)
{
    return buf_cap(&c->in) + buf_cap(&c->out);
}
/* The protocol's explanation of its last failure, or NULL. */
const char *conn_error_text(const struct conn *c);
/* The protocol's opinion of the peer's right to `shutdown` (proto_vt.conn_admin): -1 none,
 * 0 no, 1 yes. */
int conn_admin(const struct conn *c);
/* The peer's printable identity (proto_vt.conn_peer_id) into out; false if it has none. */
bool conn_peer_id(const struct conn *c, char *out, size_t outlen);

/* Calls on_close, frees and wipes the protocol state and buffers. Accepts a failed
 * conn_init. The driver then closes the socket. */
void conn_free(struct conn *c);

#endif
