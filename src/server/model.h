/* SPDX-License-Identifier: MIT */
/* Shared-internal: what every I/O model does the same way (listening, accept admission, running
 * out of descriptors, moving one connection's bytes between its socket and the engine). */
#ifndef SECHO_MODEL_H
#define SECHO_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "service.h"

/* The model's name as -m and the log give it. */
const char *model_name(enum server_model m);

/* Out of descriptors: stop accepting for this long instead of spinning. */
#define MODEL_EMFILE_PAUSE_MS 100

/* The most addresses one host name is served on; the resolver's others are left out. */
#define MODEL_MAX_ADDRS 16

/*
 * Every socket the server serves on, per srv->conf.udp TCP listeners or UDP sockets: for
 * each address the host names, `nsock` of them, one per worker (more than one forms an
 * SO_REUSEPORT group that only this server founded, see net_listen_group). Inherited
 * sockets (srv->inherited) are laid out the same way: a TCP listener's descriptor is
 * duplicated for every worker; a UDP socket goes to one worker alone (the others' entries
 * are -1), and nsock may then be smaller than asked (no more workers than sockets).
 */
struct model_listeners {
    int naddrs;
    int nsock;
    struct net_addr addrs[MODEL_MAX_ADDRS]; /* as bound: every one on the same, real port */
    int *fds;                               /* fds[a * nsock + i]: socket i of address a */
};

/*
 * With inherited sockets (srv->inherited), serves those instead (see above). Otherwise:
 * resolves srv->conf.host and opens nsock (>= 1) sockets on every address it names, IPv4
 * ones first (so the readiness line shows the address most clients try), all on one port:
 * with -p 0 the first address picks it and the others take the same (the whole set is
 * tried again if another holds it there). An address whose family or address the machine
 * lacks (no IPv6) is skipped with a logged warning, as long as one address can be served.
 * Returns 0 with *out filled, or -1 after printing "secho: cannot listen on HOST:PORT:
 * REASON" (or "secho: cannot resolve HOST: REASON") on stderr, with nothing left open.
 */
int model_listen(struct server *srv, int nsock, struct model_listeners *out);
/* True when the TCP listeners are inherited ones that several workers share (see
 * model_listen). */
bool model_listener_shared(const struct server *srv);
/* Hands worker i's sockets (socket i of every address that has one for it) over to the
 * caller: fds[0..n-1] (room for MODEL_MAX_ADDRS), each then the caller's to close. Returns
 * n (naddrs when the server bound its own sockets). */
int model_listeners_take(struct model_listeners *l, int i, int *fds);
/* Closes every socket not taken and frees the table. */
void model_listeners_close(struct model_listeners *l);

/*
 * A TCP listener and its spare descriptor: when accept fails for lack of descriptors, the
 * spare is closed to accept-and-close one pending client (so it hears "no" at once instead
 * of hanging in the backlog), then accepting pauses for MODEL_EMFILE_PAUSE_MS.
 */
struct model_acceptor {
    struct server *srv;
    int lfd;
    int spare_fd;
    uint64_t resume_at; /* accepting is paused until then */
};

/* Takes ownership of the listener `lfd` and opens the spare descriptor. */
void model_acceptor_init(struct model_acceptor *a, struct server *srv, int lfd);
/* Closes the listener and the spare (each only if open). */
void model_acceptor_close(struct model_acceptor *a);
/* True while accepting is paused after running out of descriptors. */
bool model_accept_paused(const struct model_acceptor *a, uint64_t now);
/*
 * Accepts one connection and admits it against --max-conns (the shared srv->nconns counter).
 * Returns its fd (non-blocking, counted: the model calls model_release once it has closed
 * it) with *peer set; -EAGAIN when none is pending; -EMFILE (or -ENFILE, -ENOBUFS, -ENOMEM)
 * when out of descriptors, already logged and handled (accepting is paused until
 * a->resume_at); or another -errno when one pending connection died or was refused (logged
 * `denied`): the caller may accept again.
 */
int model_accept(struct model_acceptor *a, struct net_addr *peer, uint64_t now);
/* Completion models, whose accept ran in the kernel: an accept that failed with -errno `err`
 * (out of descriptors: handled as model_accept does, pausing until a->resume_at; anything
 * else needs nothing). */
void model_accept_failed(struct model_acceptor *a, int err, uint64_t now);
/* Completion models: admits the accepted `fd` (non-blocking, TCP_NODELAY set) from `peer`
 * against --max-conns. Returns fd, counted as model_accept's, or -ECONNREFUSED after
 * logging `denied` and closing it. */
int model_admit(struct model_acceptor *a, int fd, const struct net_addr *peer);
/* Un-counts a connection model_accept returned, after its socket is closed. Returns how
 * many stay open. */
long model_release(struct server *srv);

/* Once a second at most, process-wide: how often model_idle_trim gives memory back. */
#define MODEL_TRIM_MS 1000
/*
 * A worker (the calling thread) has no connection open any more: its pool of freed buffer
 * storage is freed, its log ring's pages are given back (log_thread_idle) and, if no trim ran in
 * the last MODEL_TRIM_MS, what the allocator keeps free in every arena goes back to the system
 * (malloc_trim), so that RSS after a burst of connections comes back down instead of staying at its
 * high-water mark. Returns whether the allocator was trimmed (else: call again later, e.g. from a
 * timer, to do it).
 */
bool model_idle_trim(uint64_t now);

/* Readiness models, for a connection whose socket `fd` is readable: receives once into the
 * engine (bytes, EOF or an error). Never blocks, whether or not fd is O_NONBLOCK. */
void model_conn_recv(struct conn *c, int fd, uint64_t now);
/* -m threads, for a connection that wants only to read: waits in recv(2) on the blocking
 * socket fd, then receives once into the engine, as model_conn_recv does, so that one system
 * call both waits and reads. Returns when bytes, EOF or an error came, the socket's
 * SO_RCVTIMEO passed or a signal interrupted it (those two: nothing reported, and the room
 * conn_read_buf lent goes back at the next call into the connection). */
void model_conn_recv_wait(struct conn *c, int fd, uint64_t now);
/* Sends what the engine lets go now until the socket is full or a pause begins, then does
 * the half-close the engine asks for. */
void model_conn_send(struct conn *c, int fd, uint64_t now);
/* The socket reported an error or hang-up without readable data. */
void model_conn_hangup(struct conn *c, int fd);

#endif
