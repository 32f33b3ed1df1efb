/* SPDX-License-Identifier: MIT */
/* tls: TLS 1.3 over TCP through libssl (crypto/tls.c), sans-IO. The decrypted stream is
 * echoed like plain TCP: its lines are the messages (SPEC "Wire protocols"), so openssl
 * s_client, ncat --ssl and socat OPENSSL: are clients. The server is known by its
 * certificate's SHA-256 fingerprint, which a client pins with trust on first use exactly as
 * secure pins keys (trust.c; known_hosts lines of kind "tls"), unless it verifies the
 * certificate against --ca.
 *
 * Input is taken one TLS record at a time: each record header is checked as soon as its
 * bytes come (type, version, a length of at most 2^14 + 256), and libssl is offered bytes no
 * further than the current record's end, so it holds at most one partial record, and every
 * record that completes is reported (a fragment of the line it carries, or an empty one). A
 * record's plaintext (at most 16 KiB) may hold several lines: they are handed over one call
 * at a time (conn_pending). An idle conn holds no buffer of its own, and libssl none of its
 * record buffers (SSL_MODE_RELEASE_BUFFERS). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "keys.h"
#include "proto.h"
#include "tls.h"
#include "trust.h"

#define TLS_KIND "tls" /* known_hosts lines of this protocol */

/* TLS record content types (RFC 8446 5.1). */
enum { REC_CCS = 20, REC_ALERT = 21, REC_HANDSHAKE = 22, REC_APPDATA = 23 };
#define HS_CLIENT_HELLO 1

struct tls_ctx {
    enum proto_role role;
    struct crypto_tls_ctx *tls;
    char fp_b64[KEYS_B64LEN + 1]; /* server: its certificate's fingerprint */
    char banner[512];
    /* client */
    bool verify_ca; /* --ca: libssl verified the chain and the name */
    struct proto_trust trust;
};

enum tls_state { TS_HANDSHAKE, TS_OPEN, TS_DEAD };

struct tls_conn {
    const struct tls_ctx *ctx;
    enum proto_role role;
    uint8_t state;
    bool peer_closed; /* close_notify came: nothing may follow it, anything that does is dropped */
    bool said_bye;
    bool ready;       /* the handshake completed (for good) */
    bool in_line;     /* the last fragment handed over did not end its line */
    bool seen_record; /* the peer's first record header was checked */
    int dead_err;     /* the error that ended the conn, returned again by later calls */
    uint8_t hdr[CRYPTO_TLS_HDR];
    size_t hdr_have;  /* bytes of the current record's header seen */
    size_t body_left; /* bytes of the current record's body still to come */
    struct crypto_tls t;
    struct buf pt; /* the plaintext of the last record, not yet handed over */
    char err[PROTO_TRUST_MSGLEN];
};

static int tls_fail(struct tls_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int tls_fail(struct tls_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    c->state = TS_DEAD;
    c->dead_err = code;
    return code;
}

/* crypto/tls.c results as protocol results: a failed handshake or a bad record is the
 * peer's failure to authenticate (auth_fail), the library's own trouble is not. */
static int proto_code(int r)
{
    return r == CRYPTO_TLS_E_LIB ? PROTO_E_CRYPTO : r == -ENOMEM ? -ENOMEM : PROTO_E_AUTH;
}

/* ---- context ---- */

static void tls_ctx_free(void *ctx)
{
    struct tls_ctx *x = ctx;
    if (!x)
        return;
    crypto_tls_ctx_free(x->tls);
    crypto_wipe(x, sizeof(*x)); /* the pin */
    free(x);
}

/* "HOST:PORT" or "[ADDR]:PORT" (keys_host_id) back to the host. */
static bool host_of(const char *host_id, char *out, size_t cap)
{
    const char *end = strrchr(host_id, ':');
    if (!end || end == host_id)
        return false;
    size_t n = (size_t)(end - host_id);
    if (host_id[0] == '[' && end[-1] == ']') {
        host_id++;
        n -= 2;
    }
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, host_id, n);
    out[n] = '\0';
    return true;
}

/* "AB:CD:..." as `openssl x509 -fingerprint -sha256` prints it. */
static void fp_hex(const uint8_t fp[static CRYPTO_TLS_FPLEN], char out[static 3 * CRYPTO_TLS_FPLEN])
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < CRYPTO_TLS_FPLEN; i++) {
        out[3 * i] = hex[fp[i] >> 4];
        out[3 * i + 1] = hex[fp[i] & 15];
        out[3 * i + 2] = i + 1 < CRYPTO_TLS_FPLEN ? ':' : '\0';
    }
}

static int tls_ctx_new(const struct proto_opts *o, enum proto_role role, void **ctx, char *err,
                       size_t errlen)
{
    struct tls_ctx *x = calloc(1, sizeof(*x));
    char cerr[PROTO_ERRLEN - 8] = "";
    int r;
    if (!x)
        return -ENOMEM;
    x->role = role;
    if (role == PROTO_SERVER) {
        bool created = false;
        uint8_t fp[CRYPTO_TLS_FPLEN];
        char hex[3 * CRYPTO_TLS_FPLEN];
        r = crypto_tls_server_ctx(o->cert_file, o->key_file, o->cert_create, &x->tls, &created,
                                  cerr, sizeof(cerr));
        if (r != 0) {
            snprintf(err, errlen, "tls: %s", cerr);
            goto fail;
        }
        crypto_tls_ctx_fingerprint(x->tls, fp);
        keys_b64_encode(fp, x->fp_b64);
        fp_hex(fp, hex);
        if (created)
            snprintf(x->banner, sizeof(x->banner),
                     "server certificate fingerprint %s (new self-signed certificate %s)\n"
                     "  SHA-256 as openssl x509 -fingerprint shows it: %s",
                     x->fp_b64, o->cert_file, hex);
        else
            snprintf(x->banner, sizeof(x->banner),
                     "server certificate fingerprint %s\n"
                     "  SHA-256 as openssl x509 -fingerprint shows it: %s",
                     x->fp_b64, hex);
    } else {
        char host[256];
        bool named = o->host_id && host_of(o->host_id, host, sizeof(host));
        r = crypto_tls_client_ctx(o->ca_file, named ? host : NULL, &x->tls, cerr, sizeof(cerr));
        if (r != 0) {
            snprintf(err, errlen, "tls: %s", cerr);
            goto fail;
        }
        x->verify_ca = o->ca_file != NULL;
        x->trust = (struct proto_trust){
            /* With --ca the CAs decide; known_hosts is neither read nor written. */
            .known_hosts = x->verify_ca ? NULL : o->known_hosts,
            .host_id = o->host_id,
            .kind = TLS_KIND,
            .noun = "certificate",
            .desc = "certificate's SHA-256 fingerprint",
            .accept_new = o->accept_new,
            .confirm = o->confirm,
            .confirm_arg = o->confirm_arg,
        };
        if (o->server_key) {
            if (!keys_b64_decode(o->server_key, strlen(o->server_key), x->trust.pin)) {
                r = -EINVAL;
                snprintf(err, errlen,
                         "--server-key %s: not a certificate fingerprint (44 characters of "
                         "base64, as the server prints)",
                         o->server_key);
                goto fail;
            }
            x->trust.has_pin = true;
        }
    }
    *ctx = x;
    return 0;
fail:
    tls_ctx_free(x);
    return r;
}

static const char *tls_ctx_banner(void *ctx)
{
    const struct tls_ctx *x = ctx;
    return x->banner[0] ? x->banner : NULL;
}

static const char *tls_ctx_identity(void *ctx)
{
    const struct tls_ctx *x = ctx;
    return x->role == PROTO_SERVER ? x->fp_b64 : NULL;
}

/* ---- conn ---- */

static int tls_conn_init(void *conn, void *ctx, enum proto_role role, struct buf *out)
{
    struct tls_conn *c = conn;
    const struct tls_ctx *x = ctx;
    memset(c, 0, sizeof(*c));
    c->ctx = x;
    c->role = role;
    buf_init(&c->pt, CRYPTO_TLS_PLAIN_MAX);
    if (!x || x->role != role)
        return tls_fail(c, PROTO_E_STATE, "context made for the other role");
    int r = crypto_tls_new(&c->t, x->tls);
    if (r != 0)
        return tls_fail(c, PROTO_E_CRYPTO, "cannot start a TLS session");
    c->state = TS_HANDSHAKE;
    if (role == PROTO_SERVER)
        return 0; /* the client speaks first */
    char why[256] = "";
    r = crypto_tls_handshake(&c->t, NULL, 0, out, why, sizeof(why)); /* the ClientHello */
    if (r < 0)
        return tls_fail(c, proto_code(r), "handshake: %s", why);
    return 0;
}

/* Checks the header of a record as soon as its bytes are known. */
static int check_header(struct tls_conn *c)
{
    const char *peer = c->role == PROTO_SERVER ? "client" : "server";
    /* A peer's first record is its hello (or an alert refusing ours). */
    if (c->hdr_have >= 1 && !c->seen_record && c->hdr[0] != REC_HANDSHAKE &&
        c->hdr[0] != REC_ALERT) {
        uint8_t b = c->hdr[0];
        char shown[8] = "";
        if (b >= 0x20 && b < 0x7f)
            snprintf(shown, sizeof(shown), " ('%c')", b);
        return tls_fail(c, PROTO_E_PARSE,
                        "not a TLS %s: its first byte 0x%02x%s starts no TLS handshake "
                        "(plain text, or another protocol?)",
                        peer, b, shown);
    }
    if (c->hdr_have >= 1 && (c->hdr[0] < REC_CCS || c->hdr[0] > REC_APPDATA))
        return tls_fail(c, PROTO_E_PARSE, "bad TLS record type %u", c->hdr[0]);
    if (c->hdr_have >= 2 && c->hdr[1] != 3)
        return tls_fail(c, PROTO_E_PARSE, "bad TLS record version %u.%u", c->hdr[1],
                        c->hdr_have >= 3 ? c->hdr[2] : 0);
    if (c->hdr_have < CRYPTO_TLS_HDR)
        return 0;
    size_t len = buf_get_u16be(c->hdr + 3);
    if (len > CRYPTO_TLS_CIPHER_MAX)
        return tls_fail(c, PROTO_E_PARSE, "TLS record of %zu bytes exceeds %d", len,
                        CRYPTO_TLS_CIPHER_MAX);
    c->body_left = len;
    c->seen_record = true;
    return 0;
}

/* How many bytes of p[0..n) belong to the current record (its header checked as it comes).
 * Returns the count (*r = 0) or sets *r < 0. */
static size_t take_record(struct tls_conn *c, const uint8_t *p, size_t n, int *r)
{
    size_t take = 0;
    *r = 0;
    while (c->hdr_have < CRYPTO_TLS_HDR && take < n) {
        c->hdr[c->hdr_have++] = p[take++];
        if ((*r = check_header(c)) != 0)
            return take;
    }
    size_t body = n - take < c->body_left ? n - take : c->body_left;
    /* A server that answers our ClientHello with a ClientHello is an echo server. */
    if (c->role == PROTO_CLIENT && c->state == TS_HANDSHAKE && body > 0 &&
        c->body_left == buf_get_u16be(c->hdr + 3) && c->hdr[0] == REC_HANDSHAKE &&
        p[take] == HS_CLIENT_HELLO) {
        *r = tls_fail(c, PROTO_E_PARSE,
                      "the server sent a TLS ClientHello back, as ours: it is an echo server "
                      "that does not speak tls; try -P plain");
        return take;
    }
    c->body_left -= body;
    return take + body;
}

/* The next line fragment of c->pt. */
static int hand_out(struct tls_conn *c, struct proto_msg *msg)
{
    const uint8_t *p = buf_head(&c->pt);
    size_t n = buf_len(&c->pt);
    const uint8_t *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) + 1 : n;
    msg->data = p;
    msg->len = take;
    msg->first = !c->in_line;
    msg->last = nl != NULL;
    c->in_line = !msg->last;
    /* The bytes stay where they are until the next call (buf_consume never moves them). */
    buf_consume(&c->pt, take);
    return PROTO_MSG;
}

/* The client's decision on the certificate, before its Finished goes out. */
static int trust_server(struct tls_conn *c)
{
    const struct tls_ctx *x = c->ctx;
    uint8_t fp[CRYPTO_TLS_FPLEN];
    char msg[PROTO_TRUST_MSGLEN];
    if (crypto_tls_peer_fingerprint(&c->t, fp) != 0)
        return tls_fail(c, PROTO_E_TRUST, "the server presented no certificate");
    /* With --ca libssl already verified it; a --server-key pin still has to match. */
    if (x->verify_ca && !x->trust.has_pin)
        return 0;
    int r = proto_trust_server(&x->trust, fp, msg, sizeof(msg));
    if (r != 0)
        return tls_fail(c, r, "%s", msg);
    memcpy(c->err, msg, strlen(msg) + 1); /* the notice the user is owed, if any */
    return 0;
}

/* The session takes p[0..n), bytes of one record; `whole` says the record ends there. */
static int on_bytes(struct tls_conn *c, const uint8_t *p, size_t n, bool whole, struct buf *out,
                    struct proto_msg *msg)
{
    char why[256] = "";
    int r, e;
    if (c->state == TS_HANDSHAKE) {
        /* The flight goes aside first: a client that refuses the server sends nothing more,
         * not even its Finished. */
        struct buf hs;
        buf_init(&hs, out->limit);
        r = crypto_tls_handshake(&c->t, p, n, &hs, why, sizeof(why));
        if (r == 1 && c->role == PROTO_CLIENT && (e = trust_server(c)) != 0) {
            buf_free(&hs);
            return e;
        }
        e = buf_empty(&hs) ? 0 : buf_append(out, buf_head(&hs), buf_len(&hs));
        buf_free(&hs);
        if (r < 0) /* its alert (in out now) tells the peer why */
            return tls_fail(c, proto_code(r), "handshake: %s", why);
        if (e != 0)
            return tls_fail(c, e, "output buffer full");
        if (r == 0)
            return PROTO_NEED_MORE;
        c->state = TS_OPEN;
        c->ready = true;
        return PROTO_HANDSHAKE;
    }
    size_t got = 0;
    uint8_t none[1];
    if (whole && (e = buf_reserve(&c->pt, CRYPTO_TLS_PLAIN_MAX)) != 0)
        return tls_fail(c, e, "message buffer: %s", strerror(-e));
    /* Part of a record yields nothing yet: libssl keeps it until the record is whole. */
    r = whole ? crypto_tls_read(&c->t, p, n, out, buf_tail(&c->pt), CRYPTO_TLS_PLAIN_MAX, &got, why,
                                sizeof(why))
              : crypto_tls_read(&c->t, p, n, out, none, sizeof(none), &got, why, sizeof(why));
    if (r == 1 && !whole)
        return tls_fail(c, PROTO_E_CRYPTO, "TLS data before the end of its record");
    if (r == 1) {
        buf_commit(&c->pt, got);
        return hand_out(c, msg);
    }
    if (r == CRYPTO_TLS_E_CLOSED) {
        c->peer_closed = true;
        c->err[0] = '\0';
        return PROTO_CLOSED;
    }
    if (r < 0)
        return tls_fail(c, proto_code(r), "record: %s", why);
    if (!whole)
        return PROTO_NEED_MORE;
    /* A record without application data (a key update): an empty fragment says it ended. */
    msg->data = buf_head(&c->pt);
    msg->len = 0;
    msg->first = !c->in_line;
    msg->last = false;
    c->in_line = true;
    return PROTO_MSG;
}

static int tls_conn_read(void *conn, const uint8_t *in, size_t *inlen, struct buf *out,
                         struct proto_msg *msg)
{
    struct tls_conn *c = conn;
    size_t n = *inlen, pos = 0;
    *inlen = 0;
    if (c->state == TS_DEAD)
        return c->dead_err ? c->dead_err : PROTO_E_STATE;
    if (!buf_empty(&c->pt))
        return hand_out(c, msg);
    buf_release(&c->pt); /* its last message was handed over last call: an idle conn holds none */
    while (pos < n && !c->peer_closed) {
        int r;
        size_t take = take_record(c, in + pos, n - pos, &r);
        bool whole = c->hdr_have == CRYPTO_TLS_HDR && c->body_left == 0;
        if (r == 0 && take > 0)
            r = on_bytes(c, in + pos, take, whole, out, msg);
        pos += take;
        if (whole && r >= 0)
            c->hdr_have = 0; /* the next record starts */
        if (r != PROTO_NEED_MORE) {
            *inlen = pos;
            return r;
        }
    }
    /* After close_notify the peer may send nothing; whatever it does is dropped. */
    *inlen = n;
    return PROTO_NEED_MORE;
}

static int tls_conn_write(void *conn, const uint8_t *msg, size_t len, struct buf *out)
{
    struct tls_conn *c = conn;
    if (c->state != TS_OPEN)
        return c->state == TS_DEAD && c->dead_err ? c->dead_err : PROTO_E_STATE;
    if (len == 0)
        return 0; /* a stream: nothing to send */
    /* Room for every record first: once libssl encrypted them they must all go out. */
    size_t records = (len + CRYPTO_TLS_PLAIN_MAX - 1) / CRYPTO_TLS_PLAIN_MAX;
    if (records > (SIZE_MAX - len - CRYPTO_TLS_WRITE_EXTRA) / CRYPTO_TLS_OVERHEAD)
        return -ENOBUFS;
    size_t need = len + records * CRYPTO_TLS_OVERHEAD + CRYPTO_TLS_WRITE_EXTRA;
    int r = buf_reserve(out, need);
    if (r != 0)
        return r;
    char why[256] = "";
    r = crypto_tls_write(&c->t, msg, len, out, why, sizeof(why));
    if (r != 0)
        return tls_fail(c, proto_code(r), "write: %s", why);
    return 0;
}

static bool tls_conn_ready(const void *conn)
{
    return ((const struct tls_conn *)conn)->ready;
}

static bool tls_conn_pending(const void *conn)
{
    return !buf_empty(&((const struct tls_conn *)conn)->pt);
}

static int tls_conn_goodbye(void *conn, struct buf *out)
{
    struct tls_conn *c = conn;
    if (c->state != TS_OPEN || c->said_bye)
        return 0;
    c->said_bye = true;
    (void)crypto_tls_close(&c->t, out); /* failing, nothing is owed: the peer sees our FIN */
    return 0;
}

static const char *tls_conn_error(const void *conn)
{
    return ((const struct tls_conn *)conn)->err;
}

/* SSL_free wipes the session's keys (and libssl cleanses the plaintext it decrypted:
 * SSL_OP_CLEANSE_PLAINTEXT); buf_free wipes our plaintext buffer; and
 * proto_conn_free wipes the conn itself afterwards. */
static void tls_conn_free(void *conn)
{
    struct tls_conn *c = conn;
    crypto_tls_free(&c->t);
    buf_free(&c->pt);
}

const struct proto_vt proto_tls = {
    .name = "tls",
    .summary = "TLS 1.3 (libssl), echoed like plain: for openssl s_client, ncat, socat",
    .flags = PROTO_F_STREAM_ECHO | PROTO_F_KEY_FILES | PROTO_F_CERTS,
    .conn_size = sizeof(struct tls_conn),
    .stream_max = SIZE_MAX,
    .dgram_max = 0,
    .ctx_new = tls_ctx_new,
    .ctx_free = tls_ctx_free,
    .ctx_banner = tls_ctx_banner,
    .ctx_identity = tls_ctx_identity,
    .conn_init = tls_conn_init,
    .conn_read = tls_conn_read,
    .conn_write = tls_conn_write,
    .conn_ready = tls_conn_ready,
    .conn_error = tls_conn_error,
    .conn_pending = tls_conn_pending,
    .conn_goodbye = tls_conn_goodbye,
    .conn_free = tls_conn_free,
};
