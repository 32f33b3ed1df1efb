/* SPDX-License-Identifier: MIT */
/* secure (secho/1): what the TCP and the UDP form share: the suite list, the prologue, the
 * trust rules for the server's key, admin lookup, and how a conn records an error. */
#ifndef SECHO_SECURE_COMMON_H
#define SECHO_SECURE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "noise.h"
#include "secure.h"
#include "secure_int.h"

#define SECURE_NSUITES 4

/* The suites, in the order of the UDP initiation's suite byte. */
extern const char *const secure__suites[SECURE_NSUITES];

/* Index of the suite named by the len bytes at name (not NUL-terminated), or -1. */
int secure__suite_find(const char *name, size_t len);

enum secure_form { SECURE_FORM_TCP, SECURE_FORM_UDP };

#define SECURE_UDP_PROLOGUE  "secho/1-udp"
#define SECURE_TCP_LABEL_LEN (sizeof(SECURE_PROLOGUE) - 1)
#define SECURE_PROLOGUE_MAX  (sizeof(SECURE_UDP_PROLOGUE) - 1 + 2 + SECURE_NAME_MAX)

/*
 * Writes the Noise prologue for suite (an index < SECURE_NSUITES) into out: the form's label
 * ("secho/1" over TCP, "secho/1-udp" over UDP), u16be(len(name)), the name. It binds the
 * suite to the transcript and keeps a UDP transcript out of TCP. Over TCP, the bytes after
 * the label (SECURE_TCP_LABEL_LEN) are exactly the client's preamble. Returns the length.
 */
size_t secure__prologue(uint8_t out[static SECURE_PROLOGUE_MAX], enum secure_form form,
                        unsigned suite);

/* Records why the conn died (state ST_DEAD); every later call returns the same code.
 * Returns code. */
int secure__fail(struct secure_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records why one datagram was dropped, leaving the conn alive; returns code. */
int secure__drop(struct secure_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Client: applies the trust rules (pin, known_hosts, --accept-new, terminal) to the server's
 * static key. Returns 0 (maybe with a warning in c->err: the key was accepted but not
 * recorded) or PROTO_E_TRUST (conn dead, reason in c->err). May block in ctx->confirm. */
int secure__trust_server(struct secure_conn *c, const uint8_t rs[static NOISE_DHLEN]);

/* Server: records whether the peer is an admin; call once the handshake is split. */
void secure__set_admin(struct secure_conn *c);

/* Gives the conn a fresh, zeroed handshake state (a previous one is ended first). Returns 0
 * or a fatal -ENOMEM (conn dead). */
int secure__hs_begin(struct secure_conn *c);
/* Wipes and frees the handshake state, if any. */
void secure__hs_end(struct secure_conn *c);
/* Splits the finished handshake into c->send and c->recv, keeps the peer's static key in
 * c->rs and ends the handshake state. Returns 0 or a fatal error (conn dead). */
int secure__split(struct secure_conn *c);
/* The peer's static key: from the handshake while it runs, then c->rs; NULL if unknown. */
const uint8_t *secure__remote_static(const struct secure_conn *c);
/* The conn's SECURE_ERRLEN-byte error text buffer, allocated on first use; NULL when there
 * is no memory for it (the text is then lost, never the error code). */
char *secure__errbuf(struct secure_conn *c);

#endif
