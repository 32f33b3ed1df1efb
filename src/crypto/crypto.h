/* SPDX-License-Identifier: MIT */
/* Thin layer over OpenSSL 3 EVP: AEAD, hashes, HMAC, X25519, randomness, wiping, PEM keys.
 * Nothing here knows about Noise or secho; every primitive is OpenSSL's own. */
#ifndef SECHO_CRYPTO_H
#define SECHO_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_KEYLEN   32 /* AEAD key bytes (AES-256, ChaCha20) */
#define CRYPTO_NONCELEN 12 /* AEAD nonce bytes */
#define CRYPTO_TAGLEN   16 /* AEAD tag bytes */
#define CRYPTO_DHLEN    32 /* X25519 key and shared-secret bytes */
#define CRYPTO_HASHMAX  64 /* largest digest (BLAKE2b-512) */
#define CRYPTO_BLOCKMAX 128

/* Errors, in their own negative range (errno values are also possible: -ENOMEM, -EINVAL). */
enum {
    CRYPTO_E_AUTH = -1101, /* AEAD tag did not verify */
    CRYPTO_E_LIB = -1102,  /* OpenSSL failed (allocation, provider missing, ...) */
    CRYPTO_E_ZERO = -1103, /* X25519 produced the all-zero secret (low-order public key) */
    CRYPTO_E_KEY = -1104,  /* a PEM key did not parse or is not X25519 */
};

/* Human text for a CRYPTO_E_* or negative errno value. */
const char *crypto_strerror(int err);

enum crypto_aead_alg { CRYPTO_AES256GCM = 0, CRYPTO_CHACHAPOLY = 1 };
enum crypto_hash_alg { CRYPTO_SHA256 = 0, CRYPTO_BLAKE2B = 1 };

/*
 * A keyed AEAD: the key itself, not a library context. An OpenSSL cipher context costs about
 * a kilobyte, too much to keep per direction of every idle connection, so the contexts live
 * in a bounded cache of the calling thread (CRYPTO_AEAD_CACHE per algorithm): seal and open
 * take the thread's context that is still keyed with this key (found in one step), or
 * re-key one (a key schedule: well under a microsecond), then set only the nonce. A thread
 * serving up to CRYPTO_AEAD_CACHE directions in turn re-keys none. A context is allocated
 * only when a thread fills a slot (the first uses of an algorithm, or after crypto_aead_free
 * dropped one), so sealing normally does not allocate. The caller owns the struct;
 * crypto_aead_free MUST be called (it accepts a zeroed or freed struct): it wipes the key
 * and frees the calling thread's context keyed with it. A struct must not be used by two
 * threads at once; used by several in turn, each keeps its own context for it until another
 * key takes the slot.
 */
struct crypto_aead {
    uint8_t key[CRYPTO_KEYLEN];
    uint64_t id;   /* names the key in the threads' caches (never reused); 0 = no key */
    unsigned slot; /* where a thread's cache last had its context (checked against id) */
    enum crypto_aead_alg alg;
};

/* Contexts per algorithm a thread keeps at most (about 1.1 KiB each): both directions of the
 * 64 connections it served last. Served in turn, more connections than that re-key on every
 * record (about 5% of a 64-byte echo's cost); none keeps a context while idle. */
#define CRYPTO_AEAD_CACHE 128

/* Frees the calling thread's cached contexts now (also done when the thread exits, and by
 * crypto_thread_stop). */
void crypto_aead_cache_drain(void);
/* Contexts the calling thread's cache holds now (for tests). */
unsigned crypto_aead_cache_size(void);

/* Releases the crypto library's per-thread state of the calling thread now (its cached AEAD
 * contexts, then OPENSSL_thread_stop). A detached thread MUST call it before it signals that
 * it is done, so that nothing of the library runs in it after the process may have begun to
 * exit. */
void crypto_thread_stop(void);

/* Returns 0, -EINVAL (bad alg) or CRYPTO_E_LIB (the algorithm is not available). On failure
 * *a is left freed. */
int crypto_aead_init(struct crypto_aead *a, enum crypto_aead_alg alg,
                     const uint8_t key[static CRYPTO_KEYLEN]) __attribute__((warn_unused_result));
/* Encrypts len bytes of pt into out (len bytes) followed by the tag (16 bytes). out may
 * equal pt. Returns 0 or CRYPTO_E_LIB. */
int crypto_aead_seal(struct crypto_aead *a, const uint8_t nonce[static CRYPTO_NONCELEN],
                     const uint8_t *ad, size_t adlen, const uint8_t *pt, size_t len, uint8_t *out)
    __attribute__((warn_unused_result));
/* Decrypts ct (len bytes including the 16-byte tag) into out (len - 16 bytes). out may equal
 * ct. Returns 0, CRYPTO_E_AUTH (tag mismatch or len < 16; out is then wiped) or
 * CRYPTO_E_LIB. */
int crypto_aead_open(struct crypto_aead *a, const uint8_t nonce[static CRYPTO_NONCELEN],
                     const uint8_t *ad, size_t adlen, const uint8_t *ct, size_t len, uint8_t *out)
    __attribute__((warn_unused_result));
/* Makes dst an independent copy of src (same key, its own id), for a caller that must be
 * able to roll back; dst is overwritten, not freed. Returns 0. A src without a key gives a
 * dst without one. */
int crypto_aead_copy(struct crypto_aead *dst, const struct crypto_aead *src)
    __attribute__((warn_unused_result));
void crypto_aead_free(struct crypto_aead *a);

/* Digest length (32 or 64) and HMAC block length (64 or 128) of a hash. */
size_t crypto_hash_len(enum crypto_hash_alg alg);
size_t crypto_hash_blocklen(enum crypto_hash_alg alg);
/* out = HASH(a || b); b may be NULL with blen 0. Returns 0 or CRYPTO_E_LIB. */
int crypto_hash(enum crypto_hash_alg alg, const uint8_t *a, size_t alen, const uint8_t *b,
                size_t blen, uint8_t out[static CRYPTO_HASHMAX])
    __attribute__((warn_unused_result));
/* out = HMAC-HASH(key, a || b) (RFC 2104). Returns 0 or CRYPTO_E_LIB.
 * HMAC runs on a context the calling thread keeps per hash (the digest is looked up once),
 * keyed per call and re-keyed with a fixed public key before returning: no key, pad state or
 * intermediate of a call outlives it there; what the context keeps between calls is the
 * state of that public key, freed with the thread's AEAD contexts
 * (crypto_aead_cache_drain, crypto_thread_stop, thread exit). */
int crypto_hmac(enum crypto_hash_alg alg, const uint8_t *key, size_t keylen, const uint8_t *a,
                size_t alen, const uint8_t *b, size_t blen, uint8_t out[static CRYPTO_HASHMAX])
    __attribute__((warn_unused_result));
/* Noise's HKDF with two outputs (Noise spec section 4.3; ck is HASHLEN bytes):
 * temp = HMAC(ck, ikm), o1 = HMAC(temp, 0x01), o2 = HMAC(temp, o1 || 0x02). Keys the
 * thread's HMAC context twice rather than three times; temp is wiped and the context left
 * as crypto_hmac leaves it. ikm may be NULL with len 0. Returns 0 or CRYPTO_E_LIB. */
int crypto_hkdf2(enum crypto_hash_alg alg, const uint8_t *ck, const uint8_t *ikm, size_t len,
                 uint8_t o1[static CRYPTO_HASHMAX], uint8_t o2[static CRYPTO_HASHMAX])
    __attribute__((warn_unused_result));

/* Makes a fresh X25519 key pair. Returns 0 or CRYPTO_E_LIB. */
int crypto_x25519_keygen(uint8_t priv[static CRYPTO_DHLEN], uint8_t pub[static CRYPTO_DHLEN])
    __attribute__((warn_unused_result));
/* Derives the public key of priv. Returns 0 or CRYPTO_E_LIB. */
int crypto_x25519_public(const uint8_t priv[static CRYPTO_DHLEN], uint8_t pub[static CRYPTO_DHLEN])
    __attribute__((warn_unused_result));
/* out = X25519(priv, pub). Returns 0, CRYPTO_E_ZERO if the result is all zero (the peer sent
 * a low-order point; RFC 7748 section 6.1 says to abort) or CRYPTO_E_LIB. out is wiped on
 * failure. */
int crypto_x25519(uint8_t out[static CRYPTO_DHLEN], const uint8_t priv[static CRYPTO_DHLEN],
                  const uint8_t pub[static CRYPTO_DHLEN]) __attribute__((warn_unused_result));
/* The same when priv's public key is at hand: priv_pub must be crypto_x25519_public(priv)
 * (the DH reads only priv; a wrong priv_pub does not change out). About half the cost of
 * crypto_x25519, which has to compute that public key first. Same returns and wiping. */
int crypto_x25519_pair(uint8_t out[static CRYPTO_DHLEN], const uint8_t priv[static CRYPTO_DHLEN],
                       const uint8_t priv_pub[static CRYPTO_DHLEN],
                       const uint8_t pub[static CRYPTO_DHLEN]) __attribute__((warn_unused_result));

/* Encodes priv as an unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY") into out, NUL-terminated.
 * Returns the length (> 0), -ENOBUFS if cap is too small, or CRYPTO_E_LIB. */
int crypto_x25519_to_pem(const uint8_t priv[static CRYPTO_DHLEN], char *out, size_t cap)
    __attribute__((warn_unused_result));
/* Parses a PEM private key that MUST be X25519. Returns 0, CRYPTO_E_KEY or CRYPTO_E_LIB. */
int crypto_x25519_from_pem(const char *pem, size_t len, uint8_t priv[static CRYPTO_DHLEN])
    __attribute__((warn_unused_result));

/* Fills p with n bytes from the OpenSSL CSPRNG. Returns 0 or CRYPTO_E_LIB. */
int crypto_random(void *p, size_t n) __attribute__((warn_unused_result));
/* Zeroes n bytes in a way the compiler cannot drop (OPENSSL_cleanse). */
void crypto_wipe(void *p, size_t n);
/* Constant-time equality of two n-byte areas. */
bool crypto_equal(const void *a, const void *b, size_t n);

#endif
