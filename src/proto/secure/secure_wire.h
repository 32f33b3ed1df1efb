/* SPDX-License-Identifier: MIT */
/* secure over UDP: the five datagrams' fields by name (offsets, lengths, typed get/put), byte
 * for byte as docs/PROTOCOL.md "secure over UDP" fixes them. Internal to src/proto/secure/. */
#ifndef SECHO_SECURE_WIRE_H
#define SECHO_SECURE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "noise.h"

/*
 * Every datagram starts with a 4-byte header: the type, one byte that is the suite in an
 * initiation and zero otherwise, and two zero bytes. Integers are big-endian.
 *
 *   initiation   type | suite | 0 0 | sender   | cookie   (16) | Noise message 1 (e)
 *   response     type | 0     | 0 0 | sender   | receiver      | Noise message 2 (e, ee, s, es)
 *   cookie reply type | 0     | 0 0 | receiver | cookie   (16)
 *   finish       type | 0     | 0 0 | receiver | Noise message 3 (s, se)
 *   data         type | 0     | 0 0 | receiver | counter  (8)  | AEAD ciphertext + tag
 */
enum wire_type {
    WIRE_INIT = 1,
    WIRE_RESP = 2,
    WIRE_COOKIE = 3,
    WIRE_FINISH = 4,
    WIRE_DATA = 5,
};

#define WIRE_TYPE     0 /* u8 */
#define WIRE_SUITE    1 /* u8, initiation only; zero in the others */
#define WIRE_RESERVED 2 /* two zero bytes */
#define WIRE_HDR_LEN  4
#define WIRE_IDX_LEN  4 /* a session index */

#define WIRE_COOKIE_BYTES 16 /* the cookie field of an initiation and of a cookie reply */

/* Sizes of the three XX messages with empty payloads. */
#define WIRE_NOISE1_LEN NOISE_DHLEN                                    /* e */
#define WIRE_NOISE2_LEN (NOISE_DHLEN + NOISE_DHLEN + 2 * NOISE_TAGLEN) /* e, ee, s, es */
#define WIRE_NOISE3_LEN (NOISE_DHLEN + 2 * NOISE_TAGLEN)               /* s, se */

/* initiation (client -> server) */
#define WIRE_INIT_SENDER 4
#define WIRE_INIT_COOKIE 8
#define WIRE_INIT_NOISE  24
#define WIRE_INIT_LEN    (WIRE_INIT_NOISE + WIRE_NOISE1_LEN) /* 56 */

/* response (server -> client) */
#define WIRE_RESP_SENDER   4
#define WIRE_RESP_RECEIVER 8
#define WIRE_RESP_NOISE    12
#define WIRE_RESP_LEN      (WIRE_RESP_NOISE + WIRE_NOISE2_LEN) /* 108 */

/* cookie reply (server -> client) */
#define WIRE_COOKIE_RECEIVER 4
#define WIRE_COOKIE_COOKIE   8
#define WIRE_COOKIE_LEN      (WIRE_COOKIE_COOKIE + WIRE_COOKIE_BYTES) /* 24 */

/* finish (client -> server) */
#define WIRE_FINISH_RECEIVER 4
#define WIRE_FINISH_NOISE    8
#define WIRE_FINISH_LEN      (WIRE_FINISH_NOISE + WIRE_NOISE3_LEN) /* 72 */

/* data (both ways); the header (bytes 0..15) is the AEAD's associated data */
#define WIRE_DATA_RECEIVER 4
#define WIRE_DATA_COUNTER  8
#define WIRE_DATA_HDR_LEN  16
#define WIRE_DATA_OVERHEAD (WIRE_DATA_HDR_LEN + NOISE_TAGLEN)

/* The largest handshake datagram (the response): room kept for a retransmission. */
#define WIRE_HS_MAX WIRE_RESP_LEN

_Static_assert(WIRE_INIT_LEN == 56 && WIRE_RESP_LEN == 108 && WIRE_COOKIE_LEN == 24 &&
                   WIRE_FINISH_LEN == 72,
               "datagram sizes fixed by docs/PROTOCOL.md");

static inline uint32_t wire_get_u32(const uint8_t *p)
{
    return (uint32_t)buf_get_u16be(p) << 16 | buf_get_u16be(p + 2);
}

static inline uint64_t wire_get_u64(const uint8_t *p)
{
    return (uint64_t)wire_get_u32(p) << 32 | wire_get_u32(p + 4);
}

static inline void wire_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void wire_put_u64(uint8_t *p, uint64_t v)
{
    wire_put_u32(p, (uint32_t)(v >> 32));
    wire_put_u32(p + 4, (uint32_t)v);
}

/* Writes a header: type, suite (0 unless an initiation), the two zero bytes. */
static inline void wire_put_hdr(uint8_t *d, enum wire_type type, uint8_t suite)
{
    d[WIRE_TYPE] = (uint8_t)type;
    d[WIRE_SUITE] = suite;
    d[WIRE_RESERVED] = 0;
    d[WIRE_RESERVED + 1] = 0;
}

static inline uint8_t wire_type(const uint8_t *d)
{
    return d[WIRE_TYPE];
}

static inline uint8_t wire_suite(const uint8_t *d)
{
    return d[WIRE_SUITE];
}

static inline bool wire_reserved_zero(const uint8_t *d)
{
    return d[WIRE_RESERVED] == 0 && d[WIRE_RESERVED + 1] == 0;
}

/* Field accessors. Each takes a datagram already known to be of that type and length. */
static inline uint32_t wire_init_sender(const uint8_t *d)
{
    return wire_get_u32(d + WIRE_INIT_SENDER);
}

static inline const uint8_t *wire_init_cookie(const uint8_t *d)
{
    return d + WIRE_INIT_COOKIE;
}

static inline const uint8_t *wire_init_noise(const uint8_t *d)
{
    return d + WIRE_INIT_NOISE;
}

static inline uint32_t wire_resp_sender(const uint8_t *d)
{
    return wire_get_u32(d + WIRE_RESP_SENDER);
}

static inline uint32_t wire_resp_receiver(const uint8_t *d)
{
    return wire_get_u32(d + WIRE_RESP_RECEIVER);
}

static inline const uint8_t *wire_resp_noise(const uint8_t *d)
{
    return d + WIRE_RESP_NOISE;
}

static inline uint32_t wire_cookie_receiver(const uint8_t *d)
{
    return wire_get_u32(d + WIRE_COOKIE_RECEIVER);
}

static inline const uint8_t *wire_cookie_cookie(const uint8_t *d)
{
    return d + WIRE_COOKIE_COOKIE;
}

static inline uint32_t wire_finish_receiver(const uint8_t *d)
{
    return wire_get_u32(d + WIRE_FINISH_RECEIVER);
}

static inline const uint8_t *wire_finish_noise(const uint8_t *d)
{
    return d + WIRE_FINISH_NOISE;
}

static inline uint32_t wire_data_receiver(const uint8_t *d)
{
    return wire_get_u32(d + WIRE_DATA_RECEIVER);
}

static inline uint64_t wire_data_counter(const uint8_t *d)
{
    return wire_get_u64(d + WIRE_DATA_COUNTER);
}

static inline const uint8_t *wire_data_ciphertext(const uint8_t *d)
{
    return d + WIRE_DATA_HDR_LEN;
}

#endif
