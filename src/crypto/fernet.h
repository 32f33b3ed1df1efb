/* SPDX-License-Identifier: MIT */
/* Fernet tokens (github.com/fernet/spec): AES-128-CBC + HMAC-SHA256, base64url. The HMAC is
 * checked in constant time before anything is decrypted; base64 is decoded strictly. */
#ifndef SECHO_FERNET_H
#define SECHO_FERNET_H

#include <stddef.h>
#include <stdint.h>

#define FERNET_KEY_LEN        32 /* raw key: 16 signing bytes then 16 encryption bytes */
#define FERNET_KEY_TEXT_LEN   44 /* base64url with padding, as Fernet.generate_key() */
#define FERNET_VERSION        0x80
#define FERNET_OVERHEAD       57   /* version 1 + time 8 + IV 16 + HMAC 32 */
#define FERNET_MIN_RAW        73   /* overhead + one padded block */
#define FERNET_TOKEN_MAX      4096 /* longest token text this module handles */
#define FERNET_MAX_CLOCK_SKEW 60   /* seconds, as Python's _MAX_CLOCK_SKEW */

struct fernet_key {
    uint8_t signing[16];
    uint8_t encryption[16];
};

/*
 * Return values: 0 on success, or
 *   -EBADMSG   malformed: bad base64 (strict: alphabet, padding, canonical bits), wrong
 *              length, wrong version byte, or bad PKCS#7 padding after a valid HMAC
 *   -EACCES    the HMAC does not verify (forged, corrupted or another key)
 *   -ETIME     valid but outside the TTL (or more than 60 s in the future), only with a TTL
 *   -EMSGSIZE  output capacity too small, or token above FERNET_TOKEN_MAX
 *   -EINVAL    bad argument;  -EIO  crypto library failure
 * Nothing blocks or prints.
 */

/* Fills k with 32 random bytes. Returns 0 or -EIO. */
int fernet_key_generate(struct fernet_key *k) __attribute__((warn_unused_result));
/* Writes the 44-character base64url text of k plus a NUL into out. */
void fernet_key_encode(const struct fernet_key *k, char out[static FERNET_KEY_TEXT_LEN + 1]);
/* Parses exactly `len` characters of key text (44, base64url with its '='). Returns 0 or
 * -EBADMSG; k is wiped on failure. */
int fernet_key_decode(struct fernet_key *k, const char *text, size_t len)
    __attribute__((warn_unused_result));
/* Wipes a key. */
void fernet_key_wipe(struct fernet_key *k);

/* Length of the token text for a message of msg_len bytes. */
size_t fernet_token_len(size_t msg_len);
/* Largest message whose token has at most token_max characters (0 if none fits). For the
 * notebook's recv(1024): fernet_max_msg(1024) == 703. */
size_t fernet_max_msg(size_t token_max);

/* Encrypts msg with a given time and IV (tests, known answers) into out (cap bytes; exactly
 * fernet_token_len(len) are written, no NUL). Returns 0, -EMSGSIZE, -EINVAL or -EIO. */
int fernet_encrypt_at(const struct fernet_key *k, uint64_t now, const uint8_t iv[static 16],
                      const uint8_t *msg, size_t len, char *out, size_t cap, size_t *out_len)
    __attribute__((warn_unused_result));
/* As fernet_encrypt_at with the current time and a random IV. */
int fernet_encrypt(const struct fernet_key *k, const uint8_t *msg, size_t len, char *out,
                   size_t cap, size_t *out_len) __attribute__((warn_unused_result));

/* Verifies then decrypts a token of `len` characters into out (cap bytes; needs the
 * ciphertext length, i.e. at most len*3/4 - 57). ttl = 0 means no time check (as Python's
 * decrypt(token) without ttl); otherwise now is the current Unix time. Returns 0 (and
 * *out_len) or a negative value above; on failure out holds no plaintext. */
int fernet_decrypt(const struct fernet_key *k, const char *token, size_t len, uint64_t now,
                   uint64_t ttl, uint8_t *out, size_t cap, size_t *out_len)
    __attribute__((warn_unused_result));

/* Strict base64url (RFC 4648 section 5, with padding) helpers, constant time in the data.
 * encode writes 4*ceil(n/3) characters; decode returns the byte count or -EBADMSG /
 * -EMSGSIZE. Exposed for the protocol's key/token framing and for tests. */
size_t fernet_b64_encode(const uint8_t *in, size_t n, char *out);
long fernet_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

#endif
