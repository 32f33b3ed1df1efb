/* SPDX-License-Identifier: MIT */
/* The server state every connection shares (configuration, ids, shutdown coordination) and
 * the server's message policy (logging, commands, echo), for TCP connections as a policy of
 * the connection engine and for UDP peers. Used by the I/O models; it never touches a
 * socket. */
#ifndef SECHO_SERVICE_H
#define SECHO_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "conn.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "stats.h"

enum server_model { SERVER_THREADS, SERVER_EPOLL, SERVER_REACTORS, SERVER_URING };
enum server_allow { ALLOW_ANY, ALLOW_LOOPBACK, ALLOW_NONE };

/* Bytes a connection may owe its peer before the server stops reading from it. */
#define SERVER_OUT_HIGH (256 * 1024)
/* Hard cap of a connection's output buffer (high water + one read's worth of echo). */
#define SERVER_OUT_LIMIT (512 * 1024)
/* One read() at most. */
#define SERVER_READ_CHUNK (64 * 1024)
/* Cap of a connection's unprocessed input (one whole record plus a read). */
#define SERVER_IN_LIMIT (160 * 1024)
/* Pause between parts sent to a notebook peer that reads each part with recv(1024). */
#define SERVER_PACE_MS CONN_PACE_MS
/* After shutdown begins, what is still owed is delivered for at most this long. */
#define SERVER_DRAIN_MS 1000
/* After our last byte, wait this long for the peer's FIN before closing (so unread input
 * does not turn close() into a reset that destroys the echo in flight). */
#define SERVER_LINGER_MS 1000

struct server_conf {
    const char *host;
    uint16_t port;
    bool udp;
    enum server_model model;
    int threads;
    const char *log_path;
    bool log_messages;
    enum server_allow allow_shutdown;
    long max_conns;
    int idle_timeout_ms;      /* 0 = none */
    int handshake_timeout_ms; /* 0 = none */
    int record_timeout_ms;    /* TCP: a record's (plain: a line's) bound (conn_conf.record_ms) */
    const struct proto_vt *proto;
    struct proto_opts popts;
    const char *pid_file; /* --pid-file, or NULL */
    const char *metrics;  /* --metrics HOST:PORT, or NULL */
    int stats_ms;         /* --stats: an event=stats line this often; 0 = none */
    /* --proxy-protocol: a TCP connection from one of the `ntrusted` networks in `trusted`
     * (--trusted-proxy; the array outlives the server) must open with a PROXY header, which
     * says who the peer is; one from elsewhere that opens with a PROXY header is refused. */
    bool proxy_protocol;
    const struct net_cidr *trusted;
    int ntrusted;
};

/* The most --trusted-proxy networks. */
#define SERVER_TRUSTED_MAX 64

struct server;
typedef void (*server_wake_fn)(struct server *srv);
struct activation;

struct server {
    struct server_conf conf;
    void *pctx;
    struct net_addr addr;
    atomic_bool stopping;
    atomic_uint_fast64_t next_id;
    atomic_long nconns;
    atomic_uint_fast64_t stop_at; /* monotonic ms by which everything must be closed */
    /* Set by the I/O model: wakes every thread so it notices `stopping`. */
    server_wake_fn wake;
    pthread_mutex_t wake_mu; /* guards wake: a model clears it before freeing what it uses */
    void *model;
    /* Every worker's counters (--stats, --metrics); the models say which thread counts for
     * which worker (stats_enter). */
    struct stats stats;
    /* The server layer's: sockets inherited through socket activation, which the model
     * serves instead of binding (NULL: none), and the locked --pid-file (-1: none). */
    struct activation *inherited;
    int pidfile_fd;
};

/* Starts shutdown from any thread: stop accepting, deliver what is owed, close all. */
void server_request_shutdown(struct server *srv);

/* Installs (or, with NULL, retires) the model's wake hook. After it returns with NULL, no
 * thread is inside the old hook, so the model may free what the hook uses. */
void server_set_wake(struct server *srv, server_wake_fn wake, void *model);

/*
 * The lines about a UDP peer that has not yet proven itself (udp_peers.c says when it has):
 * its connect, its message and denied lines, handshake and disconnect. A datagram's source
 * address is free to forge and every new source port is a new peer, so unlimited these
 * would let a flood of them write a line or two each. They go through a limit of their own
 * (not the log's limit of repeated events, which auth_fail and evictions share), keyed by
 * the peer's host without its port, so that many ports of one host share one allowance:
 * per host and kind of line SERVER_UNPROVEN_HOST_BURST at once, then one every
 * SERVER_UNPROVEN_HOST_INTERVAL_MS; all together SERVER_UNPROVEN_BURST, then one every
 * SERVER_UNPROVEN_INTERVAL_MS. What is left out is counted in suppressed=N fields (see
 * log.h's log_event_limited). A proven peer's lines never go through it.
 */
#define SERVER_UNPROVEN_HOST_BURST       64
#define SERVER_UNPROVEN_HOST_INTERVAL_MS 250 /* 4 a second */
#define SERVER_UNPROVEN_BURST            256
#define SERVER_UNPROVEN_INTERVAL_MS      50 /* 20 a second */
extern struct log_limit server_unproven_limit;

/* The first LOG_TEXT_BYTES bytes of a message being received, for the log and commands. */
struct server_msg {
    uint8_t head[LOG_TEXT_BYTES];
    size_t headlen;
    size_t total;
    uint8_t tail[2]; /* the last two bytes seen, to strip a line terminator */
    size_t eol;      /* bytes server_msg_trim_eol took off: a UDP datagram's count keeps them */
    /* NULL, or the message comes from a UDP peer not yet proven whose host this is: its
     * message and denied lines go through server_unproven_limit, keyed by it. */
    const char *limit_key;
};

/* Starts a new message (limit_key NULL). */
void server_msg_reset(struct server_msg *m);
/* Adds bytes of the message. */
void server_msg_add(struct server_msg *m, const uint8_t *p, size_t n);
/* Drops a trailing "\n" or "\r\n" (line protocols: plain) from the text and the command
 * match; the `message` event of a UDP server still counts them in bytes= (the datagram's). */
void server_msg_trim_eol(struct server_msg *m);

/* What to do with a complete message. */
enum server_action { ACT_ECHO, ACT_EXIT, ACT_SHUTDOWN, ACT_DENIED };

/* The text sent instead of the echo when shutdown is refused. */
#define SERVER_DENIED_TEXT "error: shutdown not permitted"

/*
 * Shared message handling for every model and transport: logs the message and matches
 * commands. `admin` is
 * the protocol's opinion (proto_vt.conn_admin: -1 none, 0 no, 1 yes). Logs `denied` and
 * `shutdown` events itself (message and denied within server_unproven_limit when
 * m->limit_key is set). Thread-safe.
 */
enum server_action server_on_message(struct server *srv, uint64_t conn_id, const char *peer,
                                     const struct sockaddr *peer_sa, int admin,
                                     const struct server_msg *m);

/* One server-side TCP connection: the engine, and what the server's policy keeps for it.
 * The model owns the memory; it must not move between server_conn_init and conn_free. */
struct server_conn {
    struct conn c; /* the model drives this */
    struct server *srv;
    uint64_t id;
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer; /* a TCP peer is IPv4 or IPv6: no room for a whole sockaddr_storage */
    char peer_text[NET_ADDRSTRLEN];
    /* Behind a PROXY header: the proxy's own address (peer then is the client the header
     * names, or the proxy itself for a LOCAL or address-less header); "" otherwise. */
    char proxy_text[NET_ADDRSTRLEN];
    bool connected; /* `connect` was logged (a trusted proxy's, once its header came) */
    /* The message being received, allocated only while one spans several fragments (a
     * message that arrives whole is handled where it lies), wiped and freed when it ends. */
    struct server_msg *msg;
};

/* Sets up a connection from `peer` accepted at `now` under the server's policy: logs
 * `connect`, then conn_init (the greeting is owed). With --proxy-protocol and a peer in
 * --trusted-proxy, `connect` (peer= the client the header names, proxy= the peer) and the
 * greeting wait for the PROXY header; a connection refused at the header logs `denied`
 * (reason=proxy_header or untrusted_proxy, rate-limited) instead. Returns 0, or <0 after
 * logging why (the connection is then CLOSED with reason error). Either way the model MUST
 * call conn_free(&sc->c) once, which logs a cut-off message and, if `connect` was logged,
 * `disconnect`. */
int server_conn_init(struct server_conn *sc, struct server *srv, const struct net_addr *peer,
                     uint64_t now);

/* Logs a message cut off by a disconnect (no command matching). */
void server_log_partial(struct server *srv, uint64_t conn_id, const char *peer,
                        const struct server_msg *m);

/* Logs a protocol failure of one connection or datagram: auth_fail (warn) for
 * authentication and parse errors, error otherwise; rate-limited per peer and overall
 * (log_event_limited: repeated ones are counted and reported with `suppressed=N`). */
void server_log_proto_error(struct server *srv, uint64_t conn_id, const char *peer, int err,
                            const char *detail);

#endif
