/* SPDX-License-Identifier: MIT */
/* secure over UDP: the server's stateless cookie (WireGuard's cookie reply, DTLS's
 * HelloVerifyRequest), a MAC over the peer's address under a per-process secret that changes
 * every period, so an address proves it can receive before the server keeps any state. */
#ifndef SECHO_SECURE_COOKIE_H
#define SECHO_SECURE_COOKIE_H

#include <stdint.h>
#include <sys/socket.h>

#define SECURE_COOKIE_LEN    16  /* bytes of a cookie on the wire */
#define SECURE_COOKIE_PERIOD 120 /* seconds per secret period; this one and the last are valid */

/* A clock: whole seconds that never go backwards (its epoch does not matter). */
typedef uint64_t (*secure_cookie_clock_fn)(void *arg);

/* The server's cookie state; caller-owned (in the secure context), no allocation. */
struct secure_cookie {
    uint8_t secret[32]; /* random per process; every period key is derived from it */
    secure_cookie_clock_fn now;
    void *now_arg;
};

enum secure_cookie_result {
    SECURE_COOKIE_VALID = 0, /* made by this secret for this address, this period or the last */
    SECURE_COOKIE_NONE,      /* all zero: the client has no cookie yet */
    SECURE_COOKIE_INVALID,   /* anything else: forged, for another address, or expired */
};

/* CLOCK_MONOTONIC in seconds; what the server uses (arg is ignored). */
uint64_t secure_cookie_monotonic(void *arg);

/* Fills k with a fresh random secret and the clock now(now_arg). Returns 0 or
 * PROTO_E_CRYPTO (no randomness; k is then unusable). */
int secure_cookie_init(struct secure_cookie *k, secure_cookie_clock_fn now, void *now_arg)
    __attribute__((warn_unused_result));

/* Writes the cookie for peer in the current period: HMAC-SHA256(K_t, A)[0..15] with
 * K_t = HMAC-SHA256(secret, "secho/1 cookie" || u64be(t)) and A = family byte (4 or 6),
 * address, port (docs/PROTOCOL.md). Returns 0, -EAFNOSUPPORT (peer is neither IPv4 nor
 * IPv6) or PROTO_E_CRYPTO; out is undefined on error. */
int secure_cookie_make(const struct secure_cookie *k, const struct sockaddr *peer,
                       uint8_t out[static SECURE_COOKIE_LEN]) __attribute__((warn_unused_result));

/* Checks the cookie a datagram from peer carries, in constant time. Sets *res and returns 0,
 * or returns -EAFNOSUPPORT or PROTO_E_CRYPTO with *res = SECURE_COOKIE_INVALID. */
int secure_cookie_check(const struct secure_cookie *k, const struct sockaddr *peer,
                        const uint8_t cookie[static SECURE_COOKIE_LEN],
                        enum secure_cookie_result *res) __attribute__((warn_unused_result));

#endif
