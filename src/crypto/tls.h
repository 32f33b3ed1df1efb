/* SPDX-License-Identifier: MIT */
/* Thin layer over OpenSSL's libssl for TLS 1.3, driven sans-IO over two memory BIOs: the
 * caller feeds the peer's bytes in (crypto_tls_feed), steps the session, and takes the bytes
 * to send out (crypto_tls_out_take). Nothing here touches a socket or knows secho's
 * protocol. Also the certificate work: PEM files, a self-signed pair made and kept on first
 * use, SHA-256 fingerprints. Errors come back as codes plus one sentence in a caller buffer
 * (OpenSSL's own reason, e.g. "wrong version number"); nothing here prints. */
#ifndef SECHO_TLS_H
#define SECHO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
 * One session. The caller owns the struct; crypto_tls_free MUST be called (it accepts a
 * zeroed or freed struct) and releases everything the session holds, its secrets wiped by
 * libssl (SSL_free; the memory BIOs clear their buffers when freed). Only one thread at a
 * time may use a session.
 *
 * Output: every step may produce bytes to send (a handshake flight, an alert after a
 * failure, a key update answer); the caller takes them all with crypto_tls_out_take after
 * each step, failed or not: after a failure they are the alert owed to the peer.
 */
struct crypto_tls {
    void *ssl; /* SSL, which owns both BIOs */
    void *rbio, *wbio;
};

/* Returns 0 or CRYPTO_TLS_E_LIB (the struct is then freed). The role is the ctx's. */
int crypto_tls_new(struct crypto_tls *t, const struct crypto_tls_ctx *ctx)
    __attribute__((warn_unused_result));
void crypto_tls_free(struct crypto_tls *t);
/* Hands n bytes from the peer to the session (they are processed by the next step).
 * Returns 0 or CRYPTO_TLS_E_LIB. */
int crypto_tls_feed(struct crypto_tls *t, const uint8_t *p, size_t n)
    __attribute__((warn_unused_result));
/* Bytes waiting to be sent, and taking up to cap of them into dst (returns the count). */
size_t crypto_tls_out_len(const struct crypto_tls *t);
size_t crypto_tls_out_take(struct crypto_tls *t, uint8_t *dst, size_t cap);
/* Discards what waits to be sent (a client that refuses the server sends nothing more). */
void crypto_tls_out_drop(struct crypto_tls *t);

/* Advances the handshake over what was fed. Returns 1 once complete, 0 when it needs more
 * input, or CRYPTO_TLS_E_PROTO / CRYPTO_TLS_E_LIB with the reason in err. */
int crypto_tls_handshake(struct crypto_tls *t, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* After the handshake: decrypts into p (up to cap bytes). Returns 1 with *n > 0 bytes, 0
 * when what was fed held no application data (a partial record, a key update),
 * CRYPTO_TLS_E_CLOSED after the peer's close_notify, or <0 with err. */
int crypto_tls_read(struct crypto_tls *t, uint8_t *p, size_t cap, size_t *n, char *err,
                    size_t errlen) __attribute__((warn_unused_result));
/* After the handshake: encrypts n bytes (records of at most CRYPTO_TLS_PLAIN_MAX, each
 * CRYPTO_TLS_OVERHEAD longer, maybe after CRYPTO_TLS_WRITE_EXTRA bytes of key update) into
 * the output. Returns 0 or <0 with err. */
int crypto_tls_write(struct crypto_tls *t, const uint8_t *p, size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Queues close_notify (our side is done). Returns 0 or <0. */
int crypto_tls_close(struct crypto_tls *t);
/* Client, after the handshake: the SHA-256 of the server's certificate. Returns 0, or
 * CRYPTO_TLS_E_PROTO if it presented none. */
int crypto_tls_peer_fingerprint(const struct crypto_tls *t, uint8_t fp[static CRYPTO_TLS_FPLEN])
    __attribute__((warn_unused_result));
/* The negotiated cipher suite's name ("TLS_AES_256_GCM_SHA384"), or "" before. */
const char *crypto_tls_cipher(const struct crypto_tls *t);

#endif
