/* SPDX-License-Identifier: MIT */
/* One server-side TCP connection: moves bytes between its socket and its protocol. */
#ifndef SECHO_SESSION_H
#define SECHO_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "service.h"

enum session_reason {
    REASON_NONE,
    REASON_EXIT,
    REASON_EOF,
    REASON_RESET,
    REASON_TIMEOUT,
    REASON_ERROR,
    REASON_SHUTDOWN,
};

enum session_state {
    SESSION_OPEN,   /* reading and echoing */
    SESSION_DRAIN,  /* no more reading: deliver what is owed, then close */
    SESSION_LINGER, /* our side is shut: wait briefly for the peer's FIN */
    SESSION_CLOSED, /* ready for session_free */
};

struct session {
    struct server *srv;
    int fd;
    uint64_t id;
    struct net_addr peer;
    char peer_text[NET_ADDRSTRLEN];
    void *pconn;
    struct buf in, out;
    struct server_msg msg;
    enum session_state state;
    enum session_reason reason;
    bool ready;    /* handshake done */
    bool peer_eof; /* the peer half-closed */
    bool paused;   /* writing waits for pause_until (pacing) */
    uint64_t pause_until;
    uint64_t last_active;
    uint64_t started;
    uint64_t deadline; /* DRAIN/LINGER: close by then */
    /* Intrusive list for the loop models' timer sweep. */
    struct session *prev, *next;
};

/* Sets up a session for an accepted, non-blocking socket (which it now owns), logs
 * `connect` and runs the protocol's greeting. Returns 0, or <0 (the caller then calls
 * session_free, which closes the fd). */
int session_init(struct session *s, struct server *srv, int fd, const struct net_addr *peer,
                 uint64_t now);
/* The socket is readable: read once, run the protocol. */
void session_on_readable(struct session *s, uint64_t now);
/* The socket is writable (or a pause ended): send what may be sent. */
void session_on_writable(struct session *s, uint64_t now);
/* The kernel reported an error or hang-up on the socket. */
void session_on_hangup(struct session *s);
/* Timeouts, pacing and drain deadlines. Returns ms until the next interesting moment
 * (capped at `max_ms`). */
int session_on_timer(struct session *s, uint64_t now, int max_ms);
/* Server shutdown: stop reading, deliver what is owed within the server's deadline. */
void session_begin_shutdown(struct session *s, uint64_t now);
/* LOOP_READ / LOOP_WRITE mask the session needs now. */
unsigned session_wants(const struct session *s);
static inline bool session_closed(const struct session *s)
{
    return s->state == SESSION_CLOSED;
}
/* Logs `disconnect`, frees the protocol state, closes the fd. Accepts a failed init. */
void session_free(struct session *s);

#endif
