/* SPDX-License-Identifier: MIT */
/* secure (secho/1): the context and conn that the vtable (secure.c), the TCP form
 * (secure_tcp.c), the UDP form (secure_udp.c) and their shared rules (secure_common.c) all
 * work on. Internal to src/proto/secure/. */
#ifndef SECHO_SECURE_INT_H
#define SECHO_SECURE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "keys.h"
#include "noise.h"
#include "proto.h"
#include "replay.h"
#include "secure_cookie.h"
#include "secure_wire.h"

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

struct secure_ctx {
    enum proto_role role;
    bool datagram; /* UDP framing (client: conn_init sends an initiation, not a preamble) */
    struct noise_keypair s;
    size_t max_msg;
    char banner[128];
    char pub_b64[KEYS_B64LEN + 1]; /* the public key alone, for the identity log line */
    /* server */
    struct keys_set admins;
    struct secure_cookie cookie; /* UDP: the stateless cookies */
    /* client */
    unsigned suite;         /* index into secure__suites */
    const char *noise_name; /* secure__suites[suite] */
    const char *known_hosts;
    const char *host_id;
    bool has_pin;
    uint8_t pin[NOISE_DHLEN];
    bool accept_new;
    bool (*confirm)(void *arg, const char *question);
    void *confirm_arg;
};

/* ST_PREAMBLE: a server conn before its first handshake message (over TCP: the preamble). */
enum secure_state { ST_PREAMBLE = 0, ST_HANDSHAKE, ST_TRANSPORT, ST_DEAD };

/* UDP-only session state (docs/PROTOCOL.md "secure over UDP"). */
struct secure_udp {
    uint32_t local_idx, remote_idx;
    uint64_t send_ctr;
    struct replay_window replay;
    uint8_t cookie[SECURE_COOKIE_LEN]; /* server: the cookie this session was admitted with */
    uint8_t init_id[WIRE_IDX_LEN + NOISE_DHLEN]; /* server: sender index + e of its initiation */
    uint8_t hs_dgram[WIRE_HS_MAX]; /* client: last handshake datagram; server: response */
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
    struct buf rx; /* TCP: one partial frame, at most SECURE_TCP_FRAME_MAX bytes */
    struct buf pt; /* the last decrypted message */
    struct secure_udp udp;
    char err[SECURE_ERRLEN];
};

#endif
