/* SPDX-License-Identifier: MIT */
/* plain: RFC 862 echo. TCP bytes are echoed as they arrive; lines are the messages. */
#include "proto.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header). */
#define PLAIN_DGRAM_MAX 65507

struct plain_ctx {
    size_t max_msg; /* UDP: larger datagrams are refused; TCP lines are never cut off */
};

struct plain_conn {
    const struct plain_ctx *ctx;
    size_t line_len; /* bytes of the current line seen so far */
};

static int plain_ctx_new(const struct proto_opts *o, enum proto_role role, void **ctx, char *err,
                         size_t errlen)
{
    (void)role;
    (void)err;
    (void)errlen;
    struct plain_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->max_msg = o->max_msg;
    *ctx = c;
    return 0;
}

static void plain_ctx_free(void *ctx)
{
    free(ctx);
}

static int plain_conn_init(void *conn, void *ctx, enum proto_role role, struct buf *out)
{
    (void)role;
    (void)out;
    struct plain_conn *c = conn;
    c->ctx = ctx;
    c->line_len = 0;
    return 0;
}

static int plain_conn_read(void *conn, const uint8_t *in, size_t *inlen, struct buf *out,
                           struct proto_msg *msg)
{
    (void)out;
    struct plain_conn *c = conn;
    size_t n = *inlen;
    if (n == 0)
        return PROTO_NEED_MORE;
    const uint8_t *nl = memchr(in, '\n', n);
    size_t take = nl ? (size_t)(nl - in) + 1 : n;
    /* RFC 862 sets no limit: a line of any length, or a stream that never has a newline,
     * flows through as fragments of one message. The line is only the unit of the log and
     * of command matching, and the message policy (server_on_message) logs one longer
     * than --max-msg truncated and never takes it as a command. */
    msg->data = in;
    msg->len = take;
    msg->first = c->line_len == 0;
    msg->last = nl != NULL;
    c->line_len = nl ? 0 : c->line_len + take;
    *inlen = take;
    return PROTO_MSG;
}

static int plain_conn_write(void *conn, const uint8_t *msg, size_t len, struct buf *out)
{
    (void)conn;
    return buf_append(out, msg, len);
}

static bool plain_conn_ready(const void *conn)
{
    (void)conn;
    return true;
}

static void plain_conn_free(void *conn)
{
    (void)conn;
}

static int plain_dgram_read(void *conn, const uint8_t *in, size_t len, struct buf *reply,
                            struct proto_msg *msg)
{
    (void)reply;
    struct plain_conn *c = conn;
    if (c->ctx->max_msg && len > c->ctx->max_msg)
        return PROTO_E_TOOBIG;
    msg->data = in;
    msg->len = len;
    msg->first = msg->last = true;
    return PROTO_MSG;
}

/* The kernel would refuse a longer datagram with EMSGSIZE; refusing it here with the same
 * error keeps dgram_max the contract without changing what the user sees. */
static int plain_dgram_write(void *conn, const uint8_t *msg, size_t len, struct buf *out)
{
    if (len > PLAIN_DGRAM_MAX)
        return -EMSGSIZE;
    return plain_conn_write(conn, msg, len, out);
}

const struct proto_vt proto_plain = {
    .name = "plain",
    .summary = "RFC 862 echo in clear text (TCP: lines, UDP: datagrams)",
    .flags = PROTO_F_STREAM_ECHO | PROTO_F_UNFRAMED,
    .conn_size = sizeof(struct plain_conn),
    .stream_max = SIZE_MAX,
    .dgram_max = PLAIN_DGRAM_MAX,
    .ctx_new = plain_ctx_new,
    .ctx_free = plain_ctx_free,
    .conn_init = plain_conn_init,
    .conn_read = plain_conn_read,
    .conn_write = plain_conn_write,
    .conn_ready = plain_conn_ready,
    .conn_free = plain_conn_free,
    .dgram_new = proto_dgram_new_any,
    .dgram_read = plain_dgram_read,
    .dgram_write = plain_dgram_write,
};
