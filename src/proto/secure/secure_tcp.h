/* SPDX-License-Identifier: MIT */
/* secure (secho/1) over TCP: the preamble and the u16be-length frames; the conn_* entries of
 * proto_secure for a stream. Internal to src/proto/secure/. */
#ifndef SECHO_SECURE_TCP_H
#define SECHO_SECURE_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "noise.h"
#include "proto.h"
#include "secure_int.h"

#define SECURE_TCP_FRAME_HDR 2 /* u16be body length */
#define SECURE_TCP_FRAME_MAX (SECURE_TCP_FRAME_HDR + NOISE_MAX_MSG)

/* Client: appends the preamble and handshake message 1 to out; c is initialised (ctx, role,
 * buffers) by secure.c. Returns 0, or <0 with the conn dead (nothing in out is owed). */
int secure__tcp_client_init(struct secure_conn *c, struct buf *out);

/* struct proto_vt conn_read and conn_write for a TCP conn (contracts in proto.h). */
int secure__tcp_read(void *conn, const uint8_t *in, size_t *inlen, struct buf *out,
                     struct proto_msg *msg);
int secure__tcp_write(void *conn, const uint8_t *msg, size_t len, struct buf *out);

#endif
