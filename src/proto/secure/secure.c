/* SPDX-License-Identifier: MIT */
/* secure (secho/1): the proto_secure vtable. The context (keys, trust settings, cookie state)
 * and the conn's life cycle live here; the bytes on the wire are the TCP form's
 * (secure_tcp.c) or the UDP form's (secure_udp.c), which share one conn, the trust rules and
 * the Noise states (secure_common.c). */
#include "secure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "keys.h"
#include "noise.h"
#include "secure_common.h"
#include "secure_cookie.h"
#include "secure_int.h"
#include "secure_tcp.h"
#include "secure_udp.h"

/* ---- context ---- */

static void secure_ctx_free(void *ctx)
{
    struct secure_ctx *x = ctx;
    if (!x)
        return;
    keys_set_free(&x->admins);
    crypto_wipe(x, sizeof(*x));
    free(x);
}

static int secure_ctx_new(const struct proto_opts *o, enum proto_role role, void **ctx, char *err,
                          size_t errlen)
{
    struct secure_ctx *x = calloc(1, sizeof(*x));
    char b64[KEYS_B64LEN + 1];
    bool created = false;
    int r;
    if (!x)
        return -ENOMEM;
    x->role = role;
    x->datagram = o->dgram;
    x->max_msg = o->max_msg && o->max_msg < SECURE_MAX_PLAIN ? o->max_msg : SECURE_MAX_PLAIN;
    if (o->key_file) {
        r = keys_load_or_create(o->key_file, x->s.priv, x->s.pub, &created, err, errlen);
        if (r != 0)
            goto fail;
    } else if (role == PROTO_CLIENT) {
        /* No identity file: a one-time identity (the server then sees an anonymous key). */
        if (crypto_x25519_keygen(x->s.priv, x->s.pub) != 0) {
            r = PROTO_E_CRYPTO;
            snprintf(err, errlen, "cannot generate a key pair");
            goto fail;
        }
    } else {
        r = -EINVAL;
        snprintf(err, errlen, "secure: the server needs a key file (--key)");
        goto fail;
    }
    keys_b64_encode(x->s.pub, b64);
    memcpy(x->pub_b64, b64, sizeof(x->pub_b64));
    if (role == PROTO_SERVER) {
        if ((r = secure_cookie_init(&x->cookie, secure_cookie_monotonic, NULL)) != 0) {
            snprintf(err, errlen, "cannot generate the cookie secret");
            goto fail;
        }
        if (o->admins_file) {
            r = keys_set_load(o->admins_file, &x->admins, err, errlen);
            if (r != 0)
                goto fail;
        }
        snprintf(x->banner, sizeof(x->banner), "server public key %s%s", b64,
                 created ? " (new key created)" : "");
    } else {
        const char *name = o->noise_name ? o->noise_name : SECURE_DEFAULT_NAME;
        int suite = secure__suite_find(name, strlen(name));
        if (suite < 0) {
            r = -EINVAL;
            snprintf(err, errlen,
                     "unsupported protocol name %s (use Noise_XX_25519_{AESGCM,ChaChaPoly}_"
                     "{SHA256,BLAKE2b})",
                     name);
            goto fail;
        }
        x->suite = (unsigned)suite;
        x->noise_name = secure__suites[suite];
        if (o->server_key) {
            if (!keys_b64_decode(o->server_key, strlen(o->server_key), x->pin)) {
                r = -EINVAL;
                snprintf(err, errlen, "--server-key %s: not a public key (44 characters of base64)",
                         o->server_key);
                goto fail;
            }
            x->has_pin = true;
        }
        x->known_hosts = o->known_hosts;
        x->host_id = o->host_id;
        x->accept_new = o->accept_new;
        x->confirm = o->confirm;
        x->confirm_arg = o->confirm_arg;
        snprintf(x->banner, sizeof(x->banner), "client public key %s%s", b64,
                 created ? " (new key created)" : "");
    }
    *ctx = x;
    return 0;
fail:
    secure_ctx_free(x);
    return r;
}

static const char *secure_ctx_banner(void *ctx)
{
    return ((struct secure_ctx *)ctx)->banner;
}

static const char *secure_ctx_identity(void *ctx)
{
    return ((struct secure_ctx *)ctx)->pub_b64;
}

/* ---- conn ---- */

static int secure_conn_init(void *conn, void *ctx, enum proto_role role, struct buf *out)
{
    struct secure_conn *c = conn;
    const struct secure_ctx *x = ctx;
    memset(c, 0, sizeof(*c));
    c->ctx = x;
    c->role = role;
    c->admin = -1;
    buf_init(&c->rx, SECURE_TCP_FRAME_MAX);
    buf_init(&c->pt, NOISE_MAX_MSG);
    if (!x || x->role != role)
        return secure__fail(c, PROTO_E_STATE, "context made for the other role");
    if (x->datagram && !(c->udp = calloc(1, sizeof(*c->udp))))
        return secure__fail(c, -ENOMEM, "no memory for a session");
    if (role == PROTO_SERVER) {
        c->state = ST_PREAMBLE; /* both forms: the client speaks first */
        return 0;
    }
    return x->datagram ? secure__udp_client_init(c, out) : secure__tcp_client_init(c, out);
}

static bool secure_conn_ready(const void *conn)
{
    return ((const struct secure_conn *)conn)->state == ST_TRANSPORT;
}

static int secure_conn_admin(const void *conn)
{
    const struct secure_conn *c = conn;
    return c->role == PROTO_SERVER && c->state == ST_TRANSPORT ? c->admin : -1;
}

static bool secure_conn_peer_id(const void *conn, char *out, size_t outlen)
{
    const struct secure_conn *c = conn;
    const uint8_t *rs = secure__remote_static(c);
    char b64[KEYS_B64LEN + 1];
    if (!rs || c->state != ST_TRANSPORT || outlen <= KEYS_B64LEN)
        return false;
    keys_b64_encode(rs, b64);
    memcpy(out, b64, sizeof(b64));
    return true;
}

/* Releases what the conn owns outside itself (the handshake, keys, buffers, UDP state, error text);
 * proto_conn_free wipes the conn's own bytes afterwards. */
static void secure_conn_free(void *conn)
{
    struct secure_conn *c = conn;
    secure__hs_end(c);
    noise_cipher_free(&c->send);
    noise_cipher_free(&c->recv);
    buf_free(&c->rx);
    buf_free(&c->pt);
    if (c->udp) {
        crypto_wipe(c->udp, sizeof(*c->udp));
        free(c->udp);
        c->udp = NULL;
    }
    if (c->err) {
        crypto_wipe(c->err, SECURE_ERRLEN);
        free(c->err);
        c->err = NULL;
    }
}

const char *proto_secure_last_error(const void *conn)
{
    const char *e = ((const struct secure_conn *)conn)->err;
    return e ? e : "";
}

const struct proto_vt proto_secure = {
    .name = "secure",
    .summary = "Noise XX channel: encrypted, peers authenticated by static keys",
    .flags = PROTO_F_KEY_FILES | PROTO_F_PEER_ADMINS,
    .conn_size = sizeof(struct secure_conn),
    .stream_max = SECURE_MAX_PLAIN,
    .dgram_max = SECURE_UDP_MAX_PLAIN,
    .suites = secure__suites,
    .nsuites = SECURE_NSUITES,
    .ctx_new = secure_ctx_new,
    .ctx_free = secure_ctx_free,
    .ctx_banner = secure_ctx_banner,
    .ctx_identity = secure_ctx_identity,
    .conn_init = secure_conn_init,
    .conn_read = secure__tcp_read,
    .conn_write = secure__tcp_write,
    .conn_ready = secure_conn_ready,
    .conn_admin = secure_conn_admin,
    .conn_peer_id = secure_conn_peer_id,
    .conn_error = proto_secure_last_error,
    .conn_free = secure_conn_free,
    .dgram_new = secure__dgram_new,
    .dgram_read = secure__dgram_read,
    .dgram_write = secure__dgram_write,
    .dgram_retransmit = secure__dgram_retransmit,
};
