/* SPDX-License-Identifier: MIT */
/* secure (secho/1) over UDP: the dgram_* entries of proto_secure and the client's first
 * datagram. Internal to src/proto/secure/. */
#ifndef SECHO_SECURE_UDP_H
#define SECHO_SECURE_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "proto.h"
#include "secure_int.h"

/* Client: appends the initiation (no cookie yet) to out and keeps it for retransmission; c
 * is initialised (ctx, role, buffers) by secure.c. Returns 0, or <0 with the conn dead. */
int secure__udp_client_init(struct secure_conn *c, struct buf *out);

/* struct proto_vt dgram_new, dgram_read, dgram_write, dgram_retransmit (contracts in
 * proto.h). dgram_new answers a session-less address from ctx's cookie state only. */
int secure__dgram_new(void *ctx, const struct sockaddr *peer, socklen_t peerlen, const uint8_t *in,
                      size_t len, struct buf *reply);
int secure__dgram_read(void *conn, const uint8_t *in, size_t len, struct buf *reply,
                       struct proto_msg *msg);
int secure__dgram_write(void *conn, const uint8_t *msg, size_t len, struct buf *out);
int secure__dgram_retransmit(void *conn, struct buf *out);

#endif
