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

/* What a conn holds once its handshake is done is only what the transport needs: the two
 * keys (struct noise_cipher: a key and a nonce each, no library context), the peer's static
 * key, and two empty buffers. The handshake state lives on the heap while it runs and is
 * wiped and freed when it is split; the UDP form's state and the error text are allocated
 * only by conns that need them. */
struct secure_conn {
    const struct secure_ctx *ctx;
    enum proto_role role;
    uint8_t state;
    int8_t admin;
    bool has_rs;                /* rs holds the peer's static key (after the split) */
    int dead_err;               /* the error that killed the conn, returned again on later calls */
    struct noise_handshake *hs; /* while the handshake runs (secure__hs_begin), else NULL */
    uint8_t rs[NOISE_DHLEN];
    struct noise_cipher send, recv;
    struct buf rx;          /* TCP: one partial frame, at most SECURE_TCP_FRAME_MAX bytes */
    struct buf pt;          /* the last decrypted message, until the next read */
    struct secure_udp *udp; /* the UDP form's state: a datagram conn's, else NULL */
    char *err;              /* SECURE_ERRLEN bytes once there was something to say */
};

#endif
