/* SPDX-License-Identifier: MIT */
/* secure (secho/1): state and helpers shared by the TCP form (proto_secure.c) and the UDP
 * form (secure_udp.c). Internal to those two files. */
#ifndef SECHO_SECURE_INT_H
#define SECHO_SECURE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "keys.h"
#include "noise.h"
#include "proto.h"
#include "replay.h"

#define SECURE_ERRLEN 512

/* Maps a NOISE_E_* result to the protocol's PROTO_E_* (0 and -errno pass through). */
static inline int secure__noise(int r)
{
    switch (r) {
    case NOISE_E_AUTH:
        return PROTO_E_AUTH;
    case NOISE_E_PARSE:
        return PROTO_E_PARSE;
    case NOISE_E_TOOBIG:
        return PROTO_E_TOOBIG;
    case NOISE_E_STATE:
        return PROTO_E_STATE;
    case NOISE_E_LIMIT:
        return PROTO_E_LIMIT;
    case NOISE_E_CRYPTO:
        return PROTO_E_CRYPTO;
    default:
        return r;
    }
}
#define SECURE_NSUITES 4

/* The suites, in the order of the UDP initiation's suite byte. */
extern const char *const secure__suites[SECURE_NSUITES];

struct secure_ctx {
    enum proto_role role;
    bool datagram; /* UDP framing (client: conn_init sends an initiation, not a preamble) */
    struct noise_keypair s;
    size_t max_msg;
    char banner[128];
    /* server */
    struct keys_set admins;
    uint8_t cookie_secret[32]; /* UDP: random per process; cookies are MACs under it */
    /* client */
    const char *noise_name;
    const char *known_hosts;
    const char *host_id;
    bool has_pin;
    uint8_t pin[NOISE_DHLEN];
    bool accept_new;
    bool (*confirm)(void *arg, const char *question);
    void *confirm_arg;
};

enum secure_state { ST_PREAMBLE = 0, ST_HANDSHAKE, ST_TRANSPORT, ST_DEAD };

#define SUDP_DGRAM_MAX 108 /* the largest handshake datagram (the response) */

/* UDP-only session state (docs/PROTOCOL.md "secure over UDP"). */
struct secure_udp {
    uint32_t local_idx, remote_idx;
    uint64_t send_ctr;
    struct replay_window replay;
    uint8_t cookie[16];               /* server: the cookie this session was admitted with */
    uint8_t init_id[4 + 32];          /* server: sender index + e of the initiation in progress */
    uint8_t hs_dgram[SUDP_DGRAM_MAX]; /* client: last handshake datagram; server: response */
    size_t hs_len;
    bool confirmed; /* client: a data message from the server authenticated */
};

struct secure_conn {
    const struct secure_ctx *ctx;
    enum proto_role role;
    uint8_t state;
    int8_t admin;
    int dead_err; /* the error that killed the conn, returned again on later calls */
    struct noise_handshake hs;
    struct noise_cipher send, recv;
    struct buf rx; /* one partial frame, at most FRAME_MAX bytes */
    struct buf pt; /* the last decrypted message */
    struct secure_udp udp;
    char err[SECURE_ERRLEN];
};

/* Records why the conn died (state ST_DEAD); every later call returns the same code. */
int secure__fail(struct secure_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records why one datagram was dropped, leaving the conn alive; returns code. */
int secure__drop(struct secure_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Client: applies the trust rules (pin, known_hosts, --accept-new, terminal) to the server's
 * static key. Returns 0 or PROTO_E_TRUST (conn dead, reason in c->err). */
int secure__trust_server(struct secure_conn *c, const uint8_t rs[static NOISE_DHLEN]);
/* Server: records whether the peer is an admin, after the handshake. */
void secure__set_admin(struct secure_conn *c);

/* The UDP form (secure_udp.c). */
int secure__udp_client_init(struct secure_conn *c, struct buf *out);
int secure__dgram_new(void *ctx, const struct sockaddr *peer, socklen_t peerlen, const uint8_t *in,
                      size_t len, struct buf *reply);
int secure__dgram_read(void *conn, const uint8_t *in, size_t len, struct buf *reply,
                       struct proto_msg *msg);
int secure__dgram_write(void *conn, const uint8_t *msg, size_t len, struct buf *out);
int secure__dgram_retransmit(void *conn, struct buf *out);

#endif
