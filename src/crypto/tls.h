/* SPDX-License-Identifier: MIT */
/* Thin layer over OpenSSL's libssl for TLS 1.3, driven sans-IO: each step of a session
 * reads the peer's bytes from the caller's memory and appends what it sends to the caller's
 * buffer, through a memory BIO over the two; nothing here touches a socket or knows secho's
 * protocol. Also the certificate work: PEM files, a self-signed pair made and kept on first
 * use, SHA-256 fingerprints. Errors come back as codes plus one sentence in a caller buffer
 * (OpenSSL's own reason, e.g. "wrong version number"); nothing here prints. */
#ifndef SECHO_TLS_H
#define SECHO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define CRYPTO_TLS_FPLEN      32            /* SHA-256 fingerprint of a certificate (DER) */
#define CRYPTO_TLS_PLAIN_MAX  16384         /* plaintext of one record (RFC 8446 5.1) */
#define CRYPTO_TLS_HDR        5             /* record header: type, version (2), length (2) */
#define CRYPTO_TLS_CIPHER_MAX (16384 + 256) /* largest TLSCiphertext.length (RFC 8446 5.2) */
/* What one record secho writes adds to its plaintext: the header, the inner content type
 * and a 16-byte AEAD tag (the suites offered: AES-GCM, ChaCha20-Poly1305; no padding). */
#define CRYPTO_TLS_OVERHEAD (CRYPTO_TLS_HDR + 1 + 16)
/* What a write may carry ahead of its records: the KeyUpdate (a 5-byte handshake message in
 * a record of its own) that libssl owes a peer who asked for one, sent with the next write. */
#define CRYPTO_TLS_WRITE_EXTRA (CRYPTO_TLS_OVERHEAD + 5)

enum {
    CRYPTO_TLS_E_PROTO = -1201,  /* the handshake failed or the peer broke the protocol */
    CRYPTO_TLS_E_CLOSED = -1202, /* the peer ended its side cleanly (close_notify) */
    CRYPTO_TLS_E_LIB = -1203,    /* allocation or library failure */
    CRYPTO_TLS_E_FILE = -1204,   /* a certificate or key file is unusable (sentence in err) */
};

/* One process-wide configuration: an SSL_CTX for one role. Shared by every connection and
 * thread, read-only after it is made. */
struct crypto_tls_ctx;

/*
 * A server's: TLS 1.3 only, no session tickets, no client certificates.
 *   - cert_file and key_file both set: the certificate chain and its private key (PEM).
 *     With `create`, files that do not exist yet are made: a fresh P-256 key (mode 0600)
 *     and a self-signed certificate for it (localhost, 127.0.0.1, ::1; mode 0644), each
 *     created whole or not at all and never overwritten (two servers starting at once end
 *     with one pair); *created then says whether this call made the certificate.
 *   - both NULL: an ephemeral self-signed pair that lives in memory only (tests).
 * A key file others may access is refused (keys_read_private). Returns 0 or <0 (err says).
 */
int crypto_tls_server_ctx(const char *cert_file, const char *key_file, bool create,
                          struct crypto_tls_ctx **out, bool *created, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* A client's: TLS 1.3 only. With ca_file (PEM), the server's chain must verify against it
 * and its certificate must name `host` (a DNS name or an IP address); without, libssl
 * checks nothing of the certificate but that the server holds its key, and the caller
 * decides on its fingerprint (crypto_tls_peer_fingerprint). Returns 0 or <0 (err says). */
int crypto_tls_client_ctx(const char *ca_file, const char *host, struct crypto_tls_ctx **out,
                          char *err, size_t errlen) __attribute__((warn_unused_result));
/* Accepts NULL. */
void crypto_tls_ctx_free(struct crypto_tls_ctx *ctx);
/* Server: the SHA-256 of its certificate (DER), as clients see it. */
void crypto_tls_ctx_fingerprint(const struct crypto_tls_ctx *ctx,
                                uint8_t fp[static CRYPTO_TLS_FPLEN]);

/*
 * One session. The caller owns the struct, which MUST NOT move while the session lives (the
 * session's BIO points at it); crypto_tls_free MUST be called (it accepts a zeroed or freed
 * struct) and releases everything the session holds, its keys wiped by libssl (SSL_free).
 * Only one thread at a time may use a session.
 *
 * I/O without copies of our own: each step reads the peer's bytes in[0..n) where they are
 * and appends what it sends to `out` (a handshake flight, our records, an alert after a
 * failure: owed to the peer either way), through a BIO over those two, so nothing is
 * buffered between steps but what libssl keeps of a partial record. A step offered part of
 * one record takes it all and waits for the rest (libssl reads no further than one record;
 * the caller offers no more than that). libssl's own record buffers are released while
 * idle (SSL_MODE_RELEASE_BUFFERS).
 */
struct crypto_tls {
    void *ssl;         /* SSL, which owns the BIO */
    const uint8_t *in; /* the current step's input, and how much of it is left */
    size_t in_len;
    struct buf *out; /* the current step's output */
    int out_err;     /* out refused bytes during the current step (-ENOBUFS, -ENOMEM) */
};

/* Returns 0 or CRYPTO_TLS_E_LIB (the struct is then freed). The role is the ctx's. */
int crypto_tls_new(struct crypto_tls *t, const struct crypto_tls_ctx *ctx)
    __attribute__((warn_unused_result));
void crypto_tls_free(struct crypto_tls *t);

/* Advances the handshake over in[0..n) (all of it taken). Returns 1 once complete, 0 when it
 * needs more input, or CRYPTO_TLS_E_PROTO / CRYPTO_TLS_E_LIB with the reason in err. */
int crypto_tls_handshake(struct crypto_tls *t, const uint8_t *in, size_t n, struct buf *out,
                         char *err, size_t errlen) __attribute__((warn_unused_result));
/* After the handshake: takes in[0..n) and decrypts into p (up to cap bytes). Returns 1 with
 * *got > 0 bytes, 0 when no application data came (a partial record, a key update),
 * CRYPTO_TLS_E_CLOSED after the peer's close_notify, or <0 with err. */
int crypto_tls_read(struct crypto_tls *t, const uint8_t *in, size_t n, struct buf *out, uint8_t *p,
                    size_t cap, size_t *got, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* After the handshake: encrypts n bytes (records of at most CRYPTO_TLS_PLAIN_MAX, each
 * CRYPTO_TLS_OVERHEAD longer, maybe after CRYPTO_TLS_WRITE_EXTRA bytes of key update) onto
 * out, which MUST have room for them all (buf_reserve) or the session fails. Returns 0 or
 * <0 with err. */
int crypto_tls_write(struct crypto_tls *t, const uint8_t *p, size_t n, struct buf *out, char *err,
                     size_t errlen) __attribute__((warn_unused_result));
/* Appends close_notify (our side is done) to out. Returns 0 or <0. */
int crypto_tls_close(struct crypto_tls *t, struct buf *out);
/* Client, after the handshake: the SHA-256 of the server's certificate. Returns 0, or
 * CRYPTO_TLS_E_PROTO if it presented none. */
int crypto_tls_peer_fingerprint(const struct crypto_tls *t, uint8_t fp[static CRYPTO_TLS_FPLEN])
    __attribute__((warn_unused_result));
/* The negotiated cipher suite's name ("TLS_AES_256_GCM_SHA384"), or "" before. */
const char *crypto_tls_cipher(const struct crypto_tls *t);

#endif
