/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary bytes from a "client" into a secure server conn. The first
 * byte picks how the rest is chunked, so framing across reads is explored too. Under ASan
 * any overread, leak or unbounded buffering shows up. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "fuzz_proto.h"
#include "proto.h"

static void *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char dir[] = "/tmp/secho-fuzz-XXXXXX", path[64], err[PROTO_ERRLEN];
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof(path), "%s/server.key", dir);
    struct proto_opts o = {0};
    o.key_file = path;
    if (proto_secure.ctx_new(&o, PROTO_SERVER, &ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "ctx_new: %s\n", err);
        abort();
    }
    /* The key stays in memory; the file is not needed again. */
    unlink(path);
    rmdir(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static _Alignas(max_align_t) uint8_t conn[16384];
    struct buf out;
    if (proto_secure.conn_size > sizeof(conn))
        abort();
    if (size == 0)
        return 0;
    size_t chunk = data[0] ? data[0] : size;
    data++;
    size--;
    memset(conn, 0, proto_secure.conn_size);
    buf_init(&out, 1 << 20);
    int r = proto_secure.conn_init(conn, ctx, PROTO_SERVER, &out);
    fuzz_feed_server(&proto_secure, conn, r, data, size, chunk, &out, fuzz_echo_msg, 0);
    proto_secure.conn_free(conn);
    buf_free(&out);
    return 0;
}
