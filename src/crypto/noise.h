/* SPDX-License-Identifier: MIT */
/* Noise Protocol Framework (revision 34), sans-IO: CipherState, SymmetricState and
 * HandshakeState for patterns NN, NK, XX, IK with DH 25519, ciphers AESGCM and ChaChaPoly and
 * hashes SHA256 and BLAKE2b. All state is caller-owned; a CipherState holds its key, and the
 * OpenSSL contexts it runs on are the calling thread's (crypto.h, struct crypto_aead).
 * Secrets are wiped on split and on free. */
#ifndef SECHO_NOISE_H
#define SECHO_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

/*
 * Return values: 0 on success, else a negative NOISE_E_* code (below):
 *   NOISE_E_AUTH   a ciphertext failed authentication, or a peer key gave an all-zero DH
 *   NOISE_E_PARSE  a message is too short / too long for its pattern, or a bad name
 *   NOISE_E_TOOBIG output would exceed NOISE_MAX_MSG or the caller's capacity
 *   NOISE_E_STATE  a call out of turn (write when a read is due, use after failure, ...)
 *   NOISE_E_LIMIT  the nonce reached 2^64-1: the session MUST end
 *   NOISE_E_CRYPTO OpenSSL failed
 * or -EINVAL for a bad argument. After any error from a handshake call the HandshakeState
 * is dead (every later call returns NOISE_E_STATE) and MUST only be freed.
 */

enum {
    NOISE_E_AUTH = -2001,   /* a ciphertext failed authentication, or an all-zero DH */
    NOISE_E_PARSE = -2002,  /* a message of the wrong size for its pattern, or a bad name */
    NOISE_E_TOOBIG = -2003, /* output above NOISE_MAX_MSG or the caller's capacity */
    NOISE_E_STATE = -2004,  /* a call out of turn, or use after a failure */
    NOISE_E_LIMIT = -2005,  /* the nonce is exhausted: the session MUST end */
    NOISE_E_CRYPTO = -2006, /* OpenSSL failed */
};

/* Human text for a NOISE_E_* (or negative errno) value. */
const char *noise_strerror(int err);

#define NOISE_MAX_MSG 65535 /* Noise section 3: every message is at most 65535 bytes */
#define NOISE_DHLEN   32
#define NOISE_TAGLEN  16
#define NOISE_HASHMAX 64
#define NOISE_KEYLEN  32

enum noise_pattern { NOISE_NN = 0, NOISE_NK = 1, NOISE_XX = 2, NOISE_IK = 3 };

struct noise_suite {
    enum noise_pattern pattern;
    enum crypto_aead_alg cipher;
    enum crypto_hash_alg hash;
};

/* Parses "Noise_<pattern>_25519_<cipher>_<hash>" for the supported sets above. Returns true
 * and fills *s, or false for any other name (psk modifiers, 448, BLAKE2s, ...). */
bool noise_parse_name(const char *name, struct noise_suite *s);

/* ---- CipherState (Noise section 5.1) ---- */

struct noise_cipher {
    struct crypto_aead aead; /* the key, set in InitializeKey; per message only the nonce */
    uint64_t n;
    bool has_key;
};

/* InitializeKey(k). Replaces any previous key. Returns 0 or NOISE_E_CRYPTO. */
int noise_cipher_init(struct noise_cipher *c, enum crypto_aead_alg alg,
                      const uint8_t k[static NOISE_KEYLEN]) __attribute__((warn_unused_result));
/* EncryptWithAd: writes len + NOISE_TAGLEN bytes to out (len bytes, a plain copy, if the
 * state has no key). out may equal pt. Returns 0, NOISE_E_LIMIT or NOISE_E_CRYPTO. */
int noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                         size_t len, uint8_t *out) __attribute__((warn_unused_result));
/* DecryptWithAd: writes len - NOISE_TAGLEN bytes to out (len, a copy, without a key). out may
 * equal ct. The nonce advances only on success. Returns 0, NOISE_E_AUTH (also for len <
 * NOISE_TAGLEN), NOISE_E_LIMIT or NOISE_E_CRYPTO. */
int noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                         size_t len, uint8_t *out) __attribute__((warn_unused_result));
/* SetNonce (for tests and for explicit-counter transports). */
void noise_cipher_set_nonce(struct noise_cipher *c, uint64_t n);
/* Frees the cipher context (cleansing the key). Accepts a zeroed or freed state. */
void noise_cipher_free(struct noise_cipher *c);

/* ---- SymmetricState (Noise section 5.2) ---- */

struct noise_symmetric {
    struct noise_cipher cs;
    enum crypto_aead_alg cipher;
    enum crypto_hash_alg hash;
    size_t hashlen;
    uint8_t ck[NOISE_HASHMAX];
    uint8_t h[NOISE_HASHMAX];
};

/* InitializeSymmetric(protocol_name): h = name zero-padded if len <= HASHLEN, else
 * HASH(name); ck = h; no key. The name is taken as bytes and not parsed here. */
int noise_symmetric_init(struct noise_symmetric *ss, enum crypto_aead_alg cipher,
                         enum crypto_hash_alg hash, const uint8_t *name, size_t len)
    __attribute__((warn_unused_result));
int noise_symmetric_mix_hash(struct noise_symmetric *ss, const uint8_t *data, size_t len)
    __attribute__((warn_unused_result));
int noise_symmetric_mix_key(struct noise_symmetric *ss, const uint8_t *ikm, size_t len)
    __attribute__((warn_unused_result));
/* Split(): c1 is the initiator's sending state, c2 the responder's. */
int noise_symmetric_split(struct noise_symmetric *ss, struct noise_cipher *c1,
                          struct noise_cipher *c2) __attribute__((warn_unused_result));
void noise_symmetric_free(struct noise_symmetric *ss);

/* ---- HandshakeState (Noise section 5.3) ---- */

/* A static key pair; the public half is passed in so a server does not recompute it for
 * every connection. */
struct noise_keypair {
    uint8_t priv[NOISE_DHLEN];
    uint8_t pub[NOISE_DHLEN];
};

enum noise_action {
    NOISE_ACTION_WRITE = 0, /* call noise_handshake_write */
    NOISE_ACTION_READ,      /* call noise_handshake_read */
    NOISE_ACTION_SPLIT,     /* all messages done: call noise_handshake_split */
    NOISE_ACTION_DONE,      /* split done */
    NOISE_ACTION_FAILED,    /* an error happened: free it */
};

enum {
    NOISE_HS_HAS_S = 1U << 0,
    NOISE_HS_HAS_E = 1U << 1,
    NOISE_HS_HAS_RS = 1U << 2,
    NOISE_HS_HAS_RE = 1U << 3,
    NOISE_HS_FIXED_E = 1U << 4,
};

struct noise_handshake {
    struct noise_symmetric ss;
    enum noise_pattern pattern;
    bool initiator;
    uint8_t msg;   /* index of the next handshake message */
    uint8_t flags; /* NOISE_HS_* */
    uint8_t action;
    struct noise_keypair s, e;
    uint8_t rs[NOISE_DHLEN], re[NOISE_DHLEN];
};

/*
 * Initialize(): the protocol name MUST parse with noise_parse_name. s is our static key pair
 * (required when the pattern sends or pre-shares it: XX both sides, IK both sides, NK
 * responder), rs the responder's public key known in advance (NK and IK initiators), both
 * copied; pass NULL when not used. Returns 0, NOISE_E_PARSE (name), -EINVAL (a required key
 * missing) or NOISE_E_CRYPTO. The state MUST be freed with noise_handshake_free even when
 * this fails.
 */
int noise_handshake_init(struct noise_handshake *hs, const char *protocol_name, bool initiator,
                         const uint8_t *prologue, size_t prologue_len,
                         const struct noise_keypair *s, const uint8_t *rs)
    __attribute__((warn_unused_result));
/* Test hook: use this ephemeral private key instead of a fresh random one. MUST be called
 * before the message that sends `e`. Never use outside tests: it breaks forward secrecy. */
int noise_handshake_set_ephemeral(struct noise_handshake *hs, const uint8_t e[static NOISE_DHLEN])
    __attribute__((warn_unused_result));
enum noise_action noise_handshake_action(const struct noise_handshake *hs);
/* WriteMessage(payload): writes the next message into out (cap bytes) and sets *outlen.
 * Returns 0 or an error (see above; NOISE_E_TOOBIG if out is too small). */
int noise_handshake_write(struct noise_handshake *hs, const uint8_t *payload, size_t plen,
                          uint8_t *out, size_t cap, size_t *outlen)
    __attribute__((warn_unused_result));
/* ReadMessage(msg): processes a whole message; the decrypted payload goes to payload (cap
 * bytes) and *plen. Returns 0 or an error (see above). */
int noise_handshake_read(struct noise_handshake *hs, const uint8_t *msg, size_t len,
                         uint8_t *payload, size_t cap, size_t *plen)
    __attribute__((warn_unused_result));
/* Split(): sets up the transport states by role (send = ours, recv = the peer's) and wipes
 * every secret the handshake held; the handshake hash and remote static key stay readable.
 * Returns 0, NOISE_E_STATE (handshake not finished) or NOISE_E_CRYPTO. */
int noise_handshake_split(struct noise_handshake *hs, struct noise_cipher *send,
                          struct noise_cipher *recv) __attribute__((warn_unused_result));
/* The handshake hash h (channel binding); *len = HASHLEN. Final once split is due. */
const uint8_t *noise_handshake_hash(const struct noise_handshake *hs, size_t *len);
/* The peer's static public key, or NULL if not (yet) known. */
const uint8_t *noise_handshake_remote_static(const struct noise_handshake *hs);
/* Makes dst a deep, independent copy of src (its own key copy), so a caller can try a
 * message on the copy and keep the original if it fails (datagram transports, where a
 * forged message must not kill the handshake). dst is overwritten, not freed first.
 * Returns 0 or NOISE_E_CRYPTO; either way dst MUST be freed with noise_handshake_free. */
int noise_handshake_copy(struct noise_handshake *dst, const struct noise_handshake *src)
    __attribute__((warn_unused_result));
/* Wipes and frees. Accepts a zeroed, failed or split state. */
void noise_handshake_free(struct noise_handshake *hs);

#endif
