/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary bytes from a "client" into a tls server conn (record framing,
 * then libssl's handshake parser). The first byte picks how the rest is chunked, so records
 * split across reads are explored too. Under ASan any overread, leak or unbounded
 * buffering shows up. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "fuzz_proto.h"
#include "proto.h"

static void *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[PROTO_ERRLEN];
    struct proto_opts o = {0}; /* no files: an ephemeral self-signed certificate */
    if (proto_tls.ctx_new(&o, PROTO_SERVER, &ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "ctx_new: %s\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf out;
    void *conn = NULL;
    if (size == 0)
        return 0;
    size_t chunk = data[0] ? data[0] : size;
    data++;
    size--;
    buf_init(&out, 1 << 20);
    int r = proto_conn_new(&proto_tls, ctx, PROTO_SERVER, &out, &conn);
    /* A server flight or an echo is owed after a read, never more. */
    fuzz_feed_server(&proto_tls, conn, r, data, size, chunk, &out, fuzz_echo_msg, 64 * 1024);
    proto_conn_free(&proto_tls, conn);
    buf_free(&out);
    return 0;
}
