/* SPDX-License-Identifier: MIT */
/* UDP peer table, sans-IO: datagrams in, datagrams out through a callback; a bounded set of
 * peer sessions of any protocol's dgram form, each expiring when idle or stalled, the least
 * recently active making room for a new peer when the table is full. */
#ifndef SECHO_UDP_PEERS_H
#define SECHO_UDP_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "net.h"
#include "service.h"

/*
 * Sends one datagram of `len` bytes (len may be 0: the echo of an empty datagram is still a
 * datagram) to `to`. Both are valid only during the call. The table never learns whether it
 * was sent: UDP promises nothing, and a full socket buffer simply drops it.
 */
typedef void (*udp_peers_emit_fn)(void *arg, const struct net_addr *to, const uint8_t *data,
                                  size_t len);

struct udp_peer;

/* A doubly linked list of peers through one of their links (see udp_peers.c). */
struct udp_peer_list {
    struct udp_peer *head, *tail;
};

struct udp_peers {
    struct server *srv;
    udp_peers_emit_fn emit;
    void *emit_arg;
    struct udp_peer **table; /* open hashing by peer address */
    size_t nbuckets;
    long npeers;
    /* Every peer, least recently heard from first: a datagram moves its peer to the tail,
     * so idle expiry looks only at the head. */
    struct udp_peer_list by_last;
    /* The peers whose handshake is not done, oldest first (creation order). */
    struct udp_peer_list by_created;
    /* The peers that have not yet sent one valid message, oldest first (creation order):
     * the first to make room when the table is full (see udp_peers.c). */
    struct udp_peer_list unproven;
    long nunproven;
    struct buf reply, out;
};

/* Sets up an empty table for srv (its conf, protocol context and shared counters). Datagrams
 * the table answers go to emit(emit_arg, ...). Returns 0 or -ENOMEM (then nothing is owed;
 * udp_peers_close is still safe). */
int udp_peers_init(struct udp_peers *t, struct server *srv, udp_peers_emit_fn emit, void *emit_arg);

/*
 * Handles one received datagram from `from` at monotonic time `now` (ms): finds or admits
 * the peer (the protocol's dgram_new vets a new address first; no new peer once shutdown
 * began), runs the protocol, logs connect, handshake, message, denied and errors (those of
 * a peer that has not proven itself within server_unproven_limit: see udp_peers.c), emits the
 * replies and the echo, forgets the peer on `exit` (before its echo is emitted, so a client
 * that saw the echo can count on the freed slot) and asks the server to shut down on an
 * allowed `shutdown`. --max-conns bounds the table: when it is reached a new peer takes the
 * place of one held here (`disconnect reason=evicted`, rate-limited as log.h's
 * log_event_limited; see udp_peers.c for
 * which), or, when this table holds none, is admitted all the same. A new session whose first
 * datagram the protocol refuses before its handshake is done is forgotten at once (reason=error),
 * so a failed handshake never blocks the next one from that address. `now` must not go backwards.
 */
void udp_peers_on_datagram(struct udp_peers *t, const struct net_addr *from, const uint8_t *data,
                           size_t len, uint64_t now);

/* Forgets (logging `disconnect reason=timeout`) every peer silent for the idle timeout
 * (--idle-timeout, or 180 s when none) and every peer whose handshake is not done within
 * --handshake-timeout of its first datagram. Visits only the peers it forgets. */
void udp_peers_expire(struct udp_peers *t, uint64_t now);

/* The earliest time at which udp_peers_expire would forget a peer, or UINT64_MAX when there
 * is nothing to do. */
uint64_t udp_peers_next_deadline(const struct udp_peers *t);

/* Number of peer sessions held. */
long udp_peers_count(const struct udp_peers *t);

/* Forgets every peer (logging `disconnect reason=shutdown`) and frees the table. Safe after
 * a failed udp_peers_init and twice. */
void udp_peers_close(struct udp_peers *t);

#endif
