/* SPDX-License-Identifier: MIT */
/* What every protocol shares: allocating a connection, its limits, the error strings. */
#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

int proto_conn_new(const struct proto_vt *vt, void *ctx, enum proto_role role, struct buf *out,
                   void **conn)
{
    *conn = calloc(1, vt->conn_size ? vt->conn_size : 1);
    if (!*conn)
        return -ENOMEM;
    return vt->conn_init(*conn, ctx, role, out);
}

int proto_dgram_new_any(void *ctx, const struct sockaddr *peer, socklen_t peerlen,
                        const uint8_t *in, size_t len, struct buf *reply)
{
    (void)ctx;
    (void)peer;
    (void)peerlen;
    (void)in;
    (void)len;
    (void)reply;
    return 1;
}

void proto_conn_free(const struct proto_vt *vt, void *conn)
{
    if (!conn)
        return;
    vt->conn_free(conn);
    OPENSSL_cleanse(conn, vt->conn_size ? vt->conn_size : 1);
    free(conn);
}

bool proto_has_dgram(const struct proto_vt *vt)
{
    return vt->dgram_new && vt->dgram_read && vt->dgram_write;
}

size_t proto_max_msg(const struct proto_vt *vt, bool dgram)
{
    return dgram ? vt->dgram_max : vt->stream_max;
}

const char *proto_strerror(int err)
{
    switch (err) {
    case PROTO_E_AUTH:
        return "authentication failed";
    case PROTO_E_PARSE:
        return "malformed input";
    case PROTO_E_TOOBIG:
        return "message too long";
    case PROTO_E_STATE:
        return "protocol state error";
    case PROTO_E_LIMIT:
        return "session limit reached";
    case PROTO_E_CRYPTO:
        return "crypto library failure";
    case PROTO_E_TRUST:
        return "peer key not trusted";
    case PROTO_DROP:
        return "dropped";
    default:
        return err < 0 ? strerror(-err) : "no error";
    }
}
