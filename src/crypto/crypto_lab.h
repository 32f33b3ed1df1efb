/* SPDX-License-Identifier: MIT */
/* Lab crypto: a thin OpenSSL 3 EVP layer for the notebook's protocols (finite-field DH, HKDF,
 * AES-CFB/CBC, HMAC, random). No primitive is implemented here; every secret is wiped. */
#ifndef SECHO_CRYPTO_LAB_H
#define SECHO_CRYPTO_LAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

/*
 * Conventions: functions return 0 on success or a negative errno value:
 *   -EINVAL        bad argument (NULL, wrong size)
 *   -EBADMSG       malformed input (not a PEM of the expected kind, bad padding)
 *   -EMSGSIZE      input or output larger than the stated bound
 *   -ERANGE        DH parameters outside the accepted size range
 *   -EKEYREJECTED  a peer public key (or parameter set) that must not be used
 *   -ENOMEM, -EIO  the crypto library failed (out of memory, internal error)
 * Nothing here blocks, prints or touches a file.
 */

/* Largest PEM text accepted from a peer or a file. A 8192-bit DH public key is ~2.9 KiB. */
#define CRYPTO_LAB_PEM_MAX 8192
/* Accepted DH prime sizes. 2048 is the notebook's size (and RFC 7919 ffdhe2048). */
#define CRYPTO_LAB_DH_MIN_BITS 2048
#define CRYPTO_LAB_DH_MAX_BITS 8192
/* Largest shared secret (the size of p, as Python's exchange() pads it). */
#define CRYPTO_LAB_DH_SECRET_MAX (CRYPTO_LAB_DH_MAX_BITS / 8)

#define CRYPTO_LAB_AES_BLOCK  16
#define CRYPTO_LAB_SHA256_LEN 32

/* ---- finite-field Diffie-Hellman ---- */

enum {
    /* Run the full (slow: ~0.2 s for 2048 bits) primality check of the parameters. */
    CRYPTO_LAB_DH_FULL_CHECK = 1U << 0,
    /* Also accept X9.42 parameters ("X9.42 DH PARAMETERS"), which Python writes for a group
     * that has a known q even when asked for PKCS#3. Without it only PKCS#3 is accepted. */
    CRYPTO_LAB_DH_ALLOW_X942 = 1U << 1,
};

/* A DH group: domain parameters plus their PEM text. Caller memory; read-only once made, so
 * one group may be shared by all threads. */
struct crypto_lab_dh_group {
    EVP_PKEY *params;
    char *pem; /* NUL-terminated PKCS#3 (or X9.42) PEM, as OpenSSL writes it */
    size_t pem_len;
    int bits; /* size of p */
};

/* Loads a group from PEM text (`len` bytes, need not be NUL-terminated), or the built-in
 * RFC 7919 ffdhe2048 group when pem is NULL. Checks 2048 <= bits(p) <= 8192 and 1 < g < p-1,
 * plus a primality check with CRYPTO_LAB_DH_FULL_CHECK. The stored PEM is re-encoded by
 * OpenSSL (what Python's parameter_bytes(PEM, PKCS3) writes), not the input text.
 * Returns 0, -EBADMSG, -EMSGSIZE, -ERANGE, -EKEYREJECTED, -ENOMEM or -EIO. On failure *g is
 * left freed (crypto_lab_dh_group_free is still safe). */
int crypto_lab_dh_group_init(struct crypto_lab_dh_group *g, const char *pem, size_t len,
                             unsigned flags) __attribute__((warn_unused_result));
/* Releases a group; accepts a zeroed or already freed one. */
void crypto_lab_dh_group_free(struct crypto_lab_dh_group *g);

/* One ephemeral key pair. Caller memory; one connection uses it. */
struct crypto_lab_dh_key {
    EVP_PKEY *pkey;
};

/* Generates a fresh key pair in group g. Returns 0, -ENOMEM or -EIO. */
int crypto_lab_dh_keygen(struct crypto_lab_dh_key *k, const struct crypto_lab_dh_group *g)
    __attribute__((warn_unused_result));
/* Writes the public key as PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----", as Python's
 * PublicFormat.SubjectPublicKeyInfo) into out (cap bytes, NUL-terminated), *len = length
 * without the NUL. Returns 0, -EMSGSIZE, -ENOMEM or -EIO. */
int crypto_lab_dh_pub_pem(const struct crypto_lab_dh_key *k, char *out, size_t cap, size_t *len)
    __attribute__((warn_unused_result));
/* Computes the shared secret with a peer public key given as SubjectPublicKeyInfo PEM text.
 * The peer key MUST be in the same group as k and satisfy 1 < y < p-1 (and y^q = 1 when q is
 * known), else -EKEYREJECTED. The secret is left-padded with zeros to the size of p, exactly
 * as Python's DHPrivateKey.exchange() returns it; *secret_len is that size. The caller MUST
 * wipe the secret. Returns 0, -EBADMSG (not a public key PEM), -EMSGSIZE (PEM above
 * CRYPTO_LAB_PEM_MAX or cap too small), -EKEYREJECTED, -ENOMEM or -EIO. */
int crypto_lab_dh_derive(const struct crypto_lab_dh_key *k, const char *peer_pem, size_t len,
                         uint8_t *secret, size_t cap, size_t *secret_len)
    __attribute__((warn_unused_result));
/* Releases (and so wipes, OpenSSL clears private BIGNUMs) a key; accepts a zeroed one. */
void crypto_lab_dh_key_free(struct crypto_lab_dh_key *k);

/* ---- symmetric primitives (one-shot) ---- */

/* HKDF-SHA256 (RFC 5869): salt may be NULL (= 32 zero bytes, as Python's salt=None).
 * Returns 0, -EINVAL or -EIO. */
int crypto_lab_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                           const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
    __attribute__((warn_unused_result));

/* AES-256-CFB128 over len bytes (no padding; out may equal in). Returns 0, -EINVAL, -EIO. */
int crypto_lab_aes256_cfb(bool encrypt, const uint8_t key[static 32], const uint8_t iv[static 16],
                          const uint8_t *in, size_t len, uint8_t *out)
    __attribute__((warn_unused_result));

/* AES-128-CBC with PKCS#7 padding. Encrypt writes len rounded up to the next whole block
 * (always at least one padding byte) into out (cap bytes); decrypt checks the padding.
 * *out_len receives the length. Returns 0, -EMSGSIZE (cap too small), -EBADMSG (decrypt:
 * length not a positive multiple of 16, or bad padding), -EINVAL or -EIO. */
int crypto_lab_aes128_cbc_encrypt(const uint8_t key[static 16], const uint8_t iv[static 16],
                                  const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                                  size_t *out_len) __attribute__((warn_unused_result));
int crypto_lab_aes128_cbc_decrypt(const uint8_t key[static 16], const uint8_t iv[static 16],
                                  const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                                  size_t *out_len) __attribute__((warn_unused_result));

/* HMAC-SHA256 (EVP_MAC). Returns 0, -EINVAL or -EIO. */
int crypto_lab_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len,
                           uint8_t out[static 32]) __attribute__((warn_unused_result));

/* Fills p with n bytes from the OpenSSL CSPRNG. Returns 0 or -EIO. */
int crypto_lab_random(uint8_t *p, size_t n) __attribute__((warn_unused_result));

#endif
