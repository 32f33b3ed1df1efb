/* SPDX-License-Identifier: MIT */
/* secure (secho/1): extras beyond struct proto_vt for the client and the logger. */
#ifndef SECHO_PROTO_SECURE_H
#define SECHO_PROTO_SECURE_H

#include "proto.h"

#define SECURE_PROLOGUE      "secho/1"
#define SECURE_DEFAULT_NAME  "Noise_XX_25519_AESGCM_SHA256"
#define SECURE_MAX_PLAIN     65519 /* 65535 - 16-byte tag */
#define SECURE_NAME_MAX      64    /* longest protocol name a server reads in a preamble */
#define SECURE_UDP_MAX_PLAIN 65475 /* UDP: 65507 (largest IPv4 payload) - 16 header - 16 tag */

/*
 * The last diagnostic sentence for a conn: why a call failed (e.g. the trust refusal text
 * the client MUST print after a PROTO_E_TRUST, the name of an unknown suite, an
 * authentication failure), or a warning left by a call that succeeded (e.g. known_hosts
 * could not be written). "" if none. The pointer stays valid until the conn is freed; the
 * text may span several lines and never ends with a newline.
 */
const char *proto_secure_last_error(const void *conn);

/* Test hook (unit tests only): sets a UDP conn's next send counter, to reach the limit. */
void proto_secure_udp_set_counter(void *conn, uint64_t ctr);

#endif
