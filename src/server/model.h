/* SPDX-License-Identifier: MIT */
/* Shared-internal: what every I/O model does the same way (listening, accept admission, running
 * out of descriptors, moving one connection's bytes between its socket and the engine). */
#ifndef SECHO_MODEL_H
#define SECHO_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "service.h"

/* Out of descriptors: stop accepting for this long instead of spinning. */
#define MODEL_EMFILE_PAUSE_MS 100

/* Binds the transport's socket (TCP listener or UDP socket, per srv->conf.udp) for `addr`,
 * with SO_REUSEPORT when asked. Returns the fd, or -1 after printing
 * "secho: cannot listen on HOST:PORT: REASON" on stderr. */
int model_listen(struct server *srv, const struct net_addr *addr, bool reuseport);

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
/* Un-counts a connection model_accept returned, after its socket is closed. */
void model_release(struct server *srv);

/* Readiness models, for a connection whose socket `fd` is readable: receives once into the
 * engine (bytes, EOF or an error). */
void model_conn_recv(struct conn *c, int fd, uint64_t now);
/* Sends what the engine lets go now until the socket is full or a pause begins, then does
 * the half-close the engine asks for. */
void model_conn_send(struct conn *c, int fd, uint64_t now);
/* The socket reported an error or hang-up without readable data. */
void model_conn_hangup(struct conn *c, int fd);

#endif
