/* SPDX-License-Identifier: MIT */
/* Sans-IO protocol interface: bytes in, bytes out plus events. No protocol touches a socket. */
#ifndef SECHO_PROTO_H
#define SECHO_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"

/*
 * Every protocol (plain, secure, lab-dh, lab-fernet, tls) implements `struct proto_vt`. The I/O
 * models (threads, epoll, reactors) and the client only move bytes between sockets and
 * these functions, so each protocol runs on every model unchanged. Callers learn all they
 * need of a protocol (limits, UDP, key files, warning, help line) from its vtable, never
 * from its name: adding one is its own file plus one line in registry.c.
 *
 * Two levels of state:
 *   - a context (`ctx`), one per process and role, made by ctx_new from the command-line
 *     options (keys, DH parameters, trust store). It is shared by all connections and all
 *     threads, so after ctx_new it MUST be treated as read-only.
 *   - a connection (`conn`), `conn_size` bytes of caller-owned memory per TCP connection or
 *     per UDP peer session. Only one thread touches a given conn at a time.
 */

enum proto_role { PROTO_SERVER = 0, PROTO_CLIENT = 1 };

/* Protocol results. Negative values: the connection (TCP) or datagram (UDP) is bad. */
enum {
    PROTO_NEED_MORE = 0,    /* everything consumed, no event */
    PROTO_MSG = 1,          /* *msg describes (a fragment of) a message */
    PROTO_HANDSHAKE = 2,    /* the handshake just completed; call again */
    PROTO_CLOSED = 3,       /* the peer ended its stream cleanly (tls close_notify), as at
                             * end of input: what is owed still goes, later input is dropped */
    PROTO_E_AUTH = -1001,   /* a record/handshake failed authentication: log auth_fail */
    PROTO_E_PARSE = -1002,  /* malformed input (bad length, bad PEM, unknown name): auth_fail */
    PROTO_E_TOOBIG = -1003, /* a message above the allowed size */
    PROTO_E_STATE = -1004,  /* call out of order (e.g. write before the handshake) */
    PROTO_E_LIMIT = -1005,  /* a nonce/counter reached its limit: the session must end */
    PROTO_E_CRYPTO = -1006, /* the crypto library failed (out of memory, ...) */
    PROTO_E_TRUST = -1007,  /* the peer's key is not trusted (client: known_hosts/pin) */
    PROTO_DROP = -1008,     /* UDP: drop this datagram silently (already handled) */
};

/* Human text for a PROTO_E_* or negative errno value. */
const char *proto_strerror(int err);

/* A decoded message or fragment. `data` stays valid until the next call on the conn. */
struct proto_msg {
    const uint8_t *data;
    size_t len;
    bool first; /* the first bytes of a message */
    bool last;  /* the message ends here (for plain TCP: data ends with '\n') */
};

/* Everything a protocol may need from the command line. Fields a protocol does not use
 * are ignored. Strings are borrowed for the lifetime of the ctx. */
struct proto_opts {
    size_t max_msg;             /* largest message accepted, bytes */
    const char *key_file;       /* secure: our static key (created 0600 if absent); tls: the
                                 * server's private key (PEM), ignored by a client */
    const char *admins_file;    /* secure server: public keys allowed to shutdown */
    const char *known_hosts;    /* secure, tls client: trust store */
    const char *server_key;     /* secure client: pinned server public key (base64); tls:
                                 * the certificate's SHA-256 fingerprint (base64) */
    const char *host_id;        /* client: "HOST:PORT" as given, for known_hosts (and tls
                                 * --ca: the name the certificate must carry) */
    bool accept_new;            /* secure client: trust an unknown key */
    bool interactive;           /* secure client: may ask on the terminal */
    const char *noise_name;     /* secure client: e.g. "Noise_XX_25519_AESGCM_SHA256" */
    const char *dh_params_file; /* lab-dh server: PKCS#3 PEM */
    const char *cert_file;      /* tls server: certificate chain (PEM), with key_file its key */
    bool cert_create;           /* tls server: make the two files (self-signed) if absent */
    const char *ca_file;        /* tls client: verify the server against these CAs (PEM) */
    /* The transport is UDP. conn_init cannot tell otherwise, and lab-fernet differs: over
     * UDP its client opens with a key request datagram and its server sends the key as the
     * reply to that datagram; over TCP the server sends the key at once. */
    bool dgram;
    /* Client: asks the user a yes/no question on the terminal (trust on first use).
     * Returns true for yes. NULL when there is no terminal. It blocks. */
    bool (*confirm)(void *arg, const char *question);
    void *confirm_arg;
};

/* Room for one error sentence from ctx_new. */
#define PROTO_ERRLEN 256

struct proto_vt {
    const char *name; /* as on the command line: "plain", "secure", ... */
    /* One line for help texts: what the protocol is (no newline, no final period). */
    const char *summary;
    unsigned flags; /* PROTO_F_* */
    size_t conn_size;
    /* Largest message, in plaintext bytes, that one conn_write record carries (and
     * conn_read accepts), whatever proto_opts.max_msg says; a caller splits longer lines
     * into several records. At least 1. SIZE_MAX: the protocol sets no limit (plain TCP
     * echoes bytes as they come, lines of any length; the server's --max-msg only
     * decides which lines are logged truncated and cannot be commands). */
    size_t stream_max;
    /* The same for one datagram (dgram_write); 0 exactly when there is no UDP form. */
    size_t dgram_max;
    /* Set exactly when PROTO_F_UNAUTHENTICATED: the sentence the command line prints as a
     * warning before it uses the protocol, saying what an attacker on the path can do. */
    const char *warning;
    /* The Noise protocol names a client may offer with --noise-name, the first being the
     * default; NULL (and nsuites 0) when the protocol takes no such option. */
    const char *const *suites;
    size_t nsuites;

    /* Builds the shared context. Returns 0, or <0 with a sentence in err (for the CLI to
     * print after "secho: "). May print nothing. Optional: NULL means no context. */
    int (*ctx_new)(const struct proto_opts *o, enum proto_role role, void **ctx, char *err,
                   size_t errlen);
    void (*ctx_free)(void *ctx);
    /* A line or two for the log/stderr at start (e.g. the public key); NULL if none. */
    const char *(*ctx_banner)(void *ctx);
    /* The server's own identity alone (its public key in base64, or a certificate
     * fingerprint), logged as `event=identity key=...`; NULL if none. Optional. */
    const char *(*ctx_identity)(void *ctx);

    /* ---- stream (TCP) ----
     * Wire bytes only: `in` is what came from the peer and `out` what goes to it, so the
     * engine neither wipes nor guards them. A protocol never decrypts into `in` or writes
     * plaintext of an encrypted message to `out`; its plaintext lives in its own storage,
     * which it wipes (buf_clear, crypto_wipe) when done. */
    /* Initialises conn (caller memory, conn_size bytes, zeroed) and appends anything that
     * must be sent first (greeting, key, handshake message) to out. */
    int (*conn_init)(void *conn, void *ctx, enum proto_role role, struct buf *out);
    /* Consumes input. *inlen is in: bytes available, out: bytes consumed. May append
     * handshake bytes to out. Returns PROTO_MSG with *msg set, PROTO_HANDSHAKE, or
     * PROTO_NEED_MORE when all usable input is consumed; PROTO_CLOSED (once) when the peer
     * ended its stream within the protocol; <0 on a fatal error, after appending to out
     * what the peer is owed (a tls alert). Callers loop until PROTO_NEED_MORE or
     * PROTO_CLOSED, advancing the input by the consumed count each time. */
    int (*conn_read)(void *conn, const uint8_t *in, size_t *inlen, struct buf *out,
                     struct proto_msg *msg);
    /* Encodes one whole message (after the handshake) into out. */
    int (*conn_write)(void *conn, const uint8_t *msg, size_t len, struct buf *out);
    /* True once the handshake (if any) is complete and messages may be written. */
    bool (*conn_ready)(const void *conn);
    /* Server: is the peer allowed to run `shutdown`? -1 = no opinion (use
     * --allow-shutdown), 0 = no, 1 = yes. NULL = no opinion. */
    int (*conn_admin)(const void *conn);
    /* Writes a printable identity of the peer (e.g. its public key) into out; returns
     * false if it has none. Optional. */
    bool (*conn_peer_id)(const void *conn, char *out, size_t outlen);
    /* Text explaining the last failure (or a warning) of this conn, for the log and the
     * client's message; "" or NULL when there is none. Optional. */
    const char *(*conn_error)(const void *conn);
    /* Optional: conn_read holds decoded input beyond what it has handed over (tls: the
     * further lines of one record), so called with no input it returns PROTO_MSG. A caller
     * that stopped calling conn_read with input left (back-pressure) calls it again once it
     * may, even when no input is left. NULL: never. */
    bool (*conn_pending)(const void *conn);
    /* Optional: the connection ends cleanly (everything owed went out, our half-close
     * comes next): appends the protocol's last words (tls: close_notify) to out. Called at
     * most once, after the handshake and never after a failure. Returns 0 or <0 (then
     * nothing more is owed). */
    int (*conn_goodbye)(void *conn, struct buf *out);
    /* Releases and wipes conn. Accepts a conn whose init failed. */
    void (*conn_free)(void *conn);

    /* ---- datagram (UDP); all NULL if the protocol has no UDP form ---- */
    /* Server: first datagram from an address without a session. Returns 1 to create a
     * session (conn_init then dgram_read with this same datagram), PROTO_DROP to ignore it
     * (reply may hold one stateless answer datagram), or <0 (auth_fail). */
    int (*dgram_new)(void *ctx, const struct sockaddr *peer, socklen_t peerlen, const uint8_t *in,
                     size_t len, struct buf *reply);
    /* One datagram for a session. May put one datagram into reply (handshake answer,
     * key). Returns PROTO_MSG, PROTO_HANDSHAKE, PROTO_NEED_MORE, PROTO_DROP or <0. */
    int (*dgram_read)(void *conn, const uint8_t *in, size_t len, struct buf *reply,
                      struct proto_msg *msg);
    /* Encodes one message as one datagram into out. */
    int (*dgram_write)(void *conn, const uint8_t *msg, size_t len, struct buf *out);
    /* Client, optional: the protocol survives loss by retransmission (secure). When no
     * answer came within the retransmission time, the client calls this and sends what it
     * appended to out (empty, or one datagram: the last handshake message, still
     * unanswered), then encodes its outstanding message again with dgram_write (a fresh
     * counter, never the same bytes) and sends that too. Echoes can then arrive twice, so
     * the client takes as the echo only a message equal to the one outstanding (or the
     * shutdown refusal) and ignores others. Returns 0 or <0 (fatal). NULL: no retransmission
     * (one wait of --timeout per message). */
    int (*dgram_retransmit)(void *conn, struct buf *out);
};

enum {
    /* A byte stream, echoed as it arrives; messages are its lines (plain TCP, tls): each
     * fragment conn_read hands over is echoed at once and the lines are what the log records
     * and commands match. conn_read then ends a record's worth of input with a fragment
     * (possibly empty: a tls record that carried no data), never with PROTO_NEED_MORE. */
    PROTO_F_STREAM_ECHO = 1U << 0,
    /* Output contains pause marks (the notebook's recv(1024) peers). */
    PROTO_F_PACED = 1U << 1,
    /* It encrypts, yet nothing authenticates the peer or the messages (the notebook
     * protocols), so it looks safer than it is: callers print vt->warning. plain, which
     * claims no protection, does not carry this flag. */
    PROTO_F_UNAUTHENTICATED = 1U << 2,
    /* The protocol keeps key files (proto_opts key_file, known_hosts, admins_file): callers
     * fill in their paths, default or given. */
    PROTO_F_KEY_FILES = 1U << 3,
    /* The server reads Diffie-Hellman group parameters (proto_opts dh_params_file). */
    PROTO_F_DH_PARAMS = 1U << 4,
    /* Who may run `shutdown` follows from the peer's authenticated key (proto_opts
     * admins_file; conn_admin always answers 0 or 1 after the handshake), so the server's
     * address-based --allow-shutdown does not apply. */
    PROTO_F_PEER_ADMINS = 1U << 5,
    /* The wire bytes are the stream itself (plain TCP): conn_write appends them as they are
     * and a client needs no conn_read, so callers may move them without the protocol. No
     * record is ever held back, so no record timeout applies. */
    PROTO_F_UNFRAMED = 1U << 6,
    /* X.509 certificates (tls): the server's key_file is the private key of cert_file (PEM);
     * without both the command line gives its own pair to make (cert_create); the client
     * has no key of its own, checks ca_file or pins the certificate's fingerprint. */
    PROTO_F_CERTS = 1U << 7,
};

/* True if the protocol has a UDP form (its dgram_new, dgram_read and dgram_write are set). */
bool proto_has_dgram(const struct proto_vt *vt);
/* The largest message one record (dgram false) or one datagram (dgram true) carries:
 * vt->stream_max or vt->dgram_max (0: no UDP form). */
size_t proto_max_msg(const struct proto_vt *vt, bool dgram);

/* The registered protocols. */
extern const struct proto_vt proto_plain;
extern const struct proto_vt proto_secure;
extern const struct proto_vt proto_lab_dh;
extern const struct proto_vt proto_lab_fernet;
extern const struct proto_vt proto_tls;

/*
 * The one pair that allocates and releases a protocol connection (callers never size, wipe
 * or free conn memory themselves). proto_conn_new allocates vt->conn_size zeroed bytes and
 * runs conn_init; on success *conn is set and 0 returned. On failure it returns <0 and still
 * sets *conn (NULL only for -ENOMEM) so that conn_error can be asked why; the caller MUST
 * then call proto_conn_free. Whatever conn_init appended to out is owed either way only on
 * success. proto_conn_free runs conn_free, wipes the whole conn (OPENSSL_cleanse) and frees
 * it; it accepts NULL.
 */
int proto_conn_new(const struct proto_vt *vt, void *ctx, enum proto_role role, struct buf *out,
                   void **conn) __attribute__((warn_unused_result));
void proto_conn_free(const struct proto_vt *vt, void *conn);

/* A dgram_new for protocols that keep a session for every new address (no stateless
 * vetting): always returns 1. */
int proto_dgram_new_any(void *ctx, const struct sockaddr *peer, socklen_t peerlen,
                        const uint8_t *in, size_t len, struct buf *reply);

/* Looks a protocol up by its command-line name; NULL if unknown. */
const struct proto_vt *proto_find(const char *name);
/* The i-th registered protocol (registry order), or NULL past the last: for name lists
 * and for tests that cover every protocol. */
const struct proto_vt *proto_at(size_t i);

#endif
