/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the secure UDP datagram readers. The input is a sequence of datagrams
 * (u16be length + bytes each). The first datagram goes through dgram_new as udp_peers.c does; the
 * rest reach a server session (made from a genuine, cookie-checked initiation) and a client
 * conn waiting for its response, so every state's parser sees arbitrary bytes. Under ASan
 * any overread, leak or crash shows up; no input may make either side accept a message. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

static void *sctx, *cctx;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *make_ctx(enum proto_role role, const char *path)
{
    struct proto_opts o = {0};
    void *ctx = NULL;
    char err[PROTO_ERRLEN];
    o.key_file = path;
    o.dgram = true;
    o.accept_new = true;
    if (proto_secure.ctx_new(&o, role, &ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "ctx_new: %s\n", err);
        abort();
    }
    return ctx;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char dir[] = "/tmp/secho-fuzz-XXXXXX", spath[64], cpath[64];
    if (!mkdtemp(dir))
        abort();
    snprintf(spath, sizeof(spath), "%s/server.key", dir);
    snprintf(cpath, sizeof(cpath), "%s/client.key", dir);
    sctx = make_ctx(PROTO_SERVER, spath);
    cctx = make_ctx(PROTO_CLIENT, cpath);
    unlink(spath);
    unlink(cpath);
    rmdir(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static _Alignas(max_align_t) uint8_t sconn[32768], cconn[32768];
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(4242)};
    struct buf out, cout;
    struct proto_msg m;
    if (proto_secure.conn_size > sizeof(sconn))
        abort();
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    buf_init(&out, 1 << 17);
    buf_init(&cout, 1 << 17);
    memset(sconn, 0, proto_secure.conn_size);
    memset(cconn, 0, proto_secure.conn_size);

    /* A genuine session: client initiation, cookie round trip, server session. */
    if (proto_secure.conn_init(cconn, cctx, PROTO_CLIENT, &cout) != 0)
        abort();
    uint8_t init[64];
    size_t ilen = buf_len(&cout);
    memcpy(init, buf_head(&cout), ilen);
    buf_reset(&cout);
    if (proto_secure.dgram_new(sctx, (struct sockaddr *)&peer, sizeof(peer), init, ilen, &out) !=
        PROTO_DROP)
        abort();
    if (proto_secure.dgram_read(cconn, buf_head(&out), buf_len(&out), &cout, &m) != PROTO_NEED_MORE)
        abort();
    buf_reset(&out);
    memcpy(init, buf_head(&cout), ilen);
    buf_reset(&cout);
    if (proto_secure.dgram_new(sctx, (struct sockaddr *)&peer, sizeof(peer), init, ilen, &out) !=
            1 ||
        proto_secure.conn_init(sconn, sctx, PROTO_SERVER, &out) != 0 ||
        proto_secure.dgram_read(sconn, init, ilen, &out, &m) != PROTO_NEED_MORE)
        abort();
    buf_reset(&out);

    for (size_t off = 0; off + 2 <= size;) {
        size_t n = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
        if (n > size - off)
            n = size - off;
        const uint8_t *d = data + off;
        off += n;
        (void)proto_secure.dgram_new(sctx, (struct sockaddr *)&peer, sizeof(peer), d, n, &out);
        buf_reset(&out);
        int r = proto_secure.dgram_read(sconn, d, n, &out, &m);
        if (r == PROTO_MSG || r == PROTO_HANDSHAKE)
            abort(); /* forging a message or a handshake without the keys */
        buf_reset(&out);
        r = proto_secure.dgram_read(cconn, d, n, &cout, &m);
        if (r == PROTO_MSG || r == PROTO_HANDSHAKE)
            abort();
        buf_reset(&cout);
    }
    proto_secure.conn_free(sconn);
    proto_secure.conn_free(cconn);
    buf_free(&out);
    buf_free(&cout);
    return 0;
}
