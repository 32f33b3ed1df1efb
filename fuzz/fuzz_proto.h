/* SPDX-License-Identifier: MIT */
/* What the libFuzzer targets of the protocols share: making a protocol context (aborting if it
 * cannot be made), and feeding a server conn the fuzz input in reads of a chosen size, as a
 * driver would, checking conn_read's contract on the way. Header-only, after fuzz_util.h. */
#ifndef SECHO_FUZZ_PROTO_H
#define SECHO_FUZZ_PROTO_H

#include "fuzz_util.h"
#include "proto.h"

/* vt's context for role (NULL for a protocol without one); key and pin as proto_opts
 * key_file and server_key. Aborts with the reason if it cannot be made. */
static inline void *fuzz_proto_ctx(const struct proto_vt *vt, enum proto_role role, const char *key,
                                   const char *pin)
{
    struct proto_opts o = {.max_msg = 65535, .key_file = key, .server_key = pin};
    void *ctx = NULL;
    char err[PROTO_ERRLEN] = "";
    if (vt->ctx_new && vt->ctx_new(&o, role, &ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "ctx_new: %s\n", err);
        abort();
    }
    return ctx;
}

/* Server and client contexts for each of vts[0..n): a protocol that keeps key files gets a
 * server key in a fresh private directory (fuzz_tmpdir: once per process) and a client that
 * pins it, so no known_hosts file is touched. Aborts if one cannot be made. */
static inline void fuzz_proto_pairs(const struct proto_vt *const *vts, size_t n, void **sctx,
                                    void **cctx)
{
    char dir[64], key[128];
    fuzz_tmpdir(dir, sizeof(dir));
    snprintf(key, sizeof(key), "%s/server.key", dir);
    for (size_t i = 0; i < n; i++) {
        bool keys = vts[i]->flags & PROTO_F_KEY_FILES;
        sctx[i] = fuzz_proto_ctx(vts[i], PROTO_SERVER, keys ? key : NULL, NULL);
        cctx[i] =
            fuzz_proto_ctx(vts[i], PROTO_CLIENT, NULL, keys ? vts[i]->ctx_identity(sctx[i]) : NULL);
    }
}

/* What a target does with each message the server conn decodes (m), with out its output;
 * <0 ends that read's loop (the next read goes on). */
typedef int (*fuzz_on_msg)(const struct proto_vt *vt, void *conn, const struct proto_msg *m,
                           struct buf *out);

/* Echoes m, as the server does; a message that cannot be echoed ends the read's loop. */
static inline int fuzz_echo_msg(const struct proto_vt *vt, void *conn, const struct proto_msg *m,
                                struct buf *out)
{
    return vt->conn_write(conn, m->data, m->len, out) < 0 ? -1 : 0;
}

/* Feeds data[0..size) to conn in reads of `chunk` bytes while r (conn_init's result, then
 * conn_read's) is not an error, calling on_msg for each message. Aborts if conn_read takes
 * more than it was given, or says PROTO_NEED_MORE with input left; after each read checks
 * that at most out_max bytes are owed (0: no check) and empties out, as if sent. Returns the
 * last result. */
static inline int fuzz_feed_server(const struct proto_vt *vt, void *conn, int r,
                                   const uint8_t *data, size_t size, size_t chunk, struct buf *out,
                                   fuzz_on_msg on_msg, size_t out_max)
{
    for (size_t off = 0; r >= 0 && off < size;) {
        size_t end = off + chunk < size ? off + chunk : size;
        while (r >= 0) {
            struct proto_msg m;
            size_t n = end - off;
            r = vt->conn_read(conn, data + off, &n, out, &m);
            FUZZ_CHECK(n <= end - off); /* never more consumed than given */
            off += n;
            if (r == PROTO_NEED_MORE) {
                FUZZ_CHECK(off == end); /* NEED_MORE consumes everything */
                break;
            }
            if (r == PROTO_MSG && on_msg(vt, conn, &m, out) < 0)
                break;
        }
        FUZZ_CHECK(out_max == 0 || buf_len(out) <= out_max);
        buf_reset(out); /* as if sent */
    }
    return r;
}

#endif
