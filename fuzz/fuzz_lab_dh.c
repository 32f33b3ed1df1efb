/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary bytes from a "client" into a lab-dh server conn.
 *
 * data[0]: bit 7 clear: the bytes start right after accept (the client's public key PEM is
 * what is parsed first); bit 7 set: they follow a completed handshake, so they are IVs and
 * ciphertexts. The low 7 bits pick how the rest is chunked (0 = one batch), so the IV /
 * ciphertext split across reads is explored too. Messages are echoed with conn_write as the
 * server would.
 *
 * The completed handshake is done once, at start, between a server and a client conn of this
 * same codec; the ready server conn is then copied for each input. That is safe because a
 * ready lab-dh conn holds no heap pointers (its private key, peer group and PEM buffer are
 * freed and zeroed when the key is derived); the copy is checked to be ready.
 *
 * SECHO_FUZZ_SEED_DIR=DIR writes two seeds there at start: the client's public key PEM plus
 * one record (bit 7 clear) and one record alone (bit 7 set). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "fuzz_proto.h"
#include "proto.h"

static void *server_ctx, *client_ctx;
static _Alignas(max_align_t) uint8_t ready_conn[8192];

int LLVMFuzzerInitialize(int *argc, char ***argv);
/* A record is 1..1024 bytes, and echoing what was accepted must work. */
static int echo_record(const struct proto_vt *vt, void *conn, const struct proto_msg *m,
                       struct buf *out)
{
    FUZZ_CHECK(m->len >= 1 && m->len <= 1024);
    FUZZ_CHECK(vt->conn_write(conn, m->data, m->len, out) == 0);
    buf_reset(out); /* as if sent */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, int r)
{
    fprintf(stderr, "fuzz_lab_dh: %s: %d\n", what, r);
    abort();
}

/* Feeds all of in to conn; what it answers goes to out. Returns the last result. */
static int feed(void *conn, const uint8_t *in, size_t n, struct buf *out)
{
    int r = PROTO_NEED_MORE;
    while (n > 0) {
        struct proto_msg m;
        size_t used = n;
        r = proto_lab_dh.conn_read(conn, in, &used, out, &m);
        if (r < 0)
            return r;
        in += used;
        n -= used;
        if (r == PROTO_NEED_MORE)
            break;
    }
    return r;
}

static void write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        die("cannot write a seed", 0);
    fputc(mode, f);
    fwrite(p, 1, n, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[PROTO_ERRLEN];
    struct proto_opts o = {0};
    static _Alignas(max_align_t) uint8_t client[8192];
    struct buf s_out, c_out;
    int r;

    if (proto_lab_dh.conn_size > sizeof(ready_conn))
        die("conn_size", (int)proto_lab_dh.conn_size);
    if ((r = proto_lab_dh.ctx_new(&o, PROTO_SERVER, &server_ctx, err, sizeof(err))) != 0 ||
        (r = proto_lab_dh.ctx_new(&o, PROTO_CLIENT, &client_ctx, err, sizeof(err))) != 0)
        die(err, r);
    static struct buf_marks s_marks, c_marks; /* lab-dh output is paced */
    buf_init(&s_out, 1 << 20);
    buf_attach_marks(&s_out, &s_marks);
    buf_init(&c_out, 1 << 20);
    buf_attach_marks(&c_out, &c_marks);
    if ((r = proto_lab_dh.conn_init(ready_conn, server_ctx, PROTO_SERVER, &s_out)) < 0 ||
        (r = proto_lab_dh.conn_init(client, client_ctx, PROTO_CLIENT, &c_out)) < 0)
        die("conn_init", r);
    if ((r = feed(client, buf_head(&s_out), buf_len(&s_out), &c_out)) < 0)
        die("client handshake", r);
    size_t pem_len = buf_len(&c_out);
    if ((r = feed(ready_conn, buf_head(&c_out), pem_len, &s_out)) < 0)
        die("server handshake", r);
    if (!proto_lab_dh.conn_ready(ready_conn) || !proto_lab_dh.conn_ready(client))
        die("handshake did not complete", 0);

    const char *dir = getenv("SECHO_FUZZ_SEED_DIR");
    if (dir) {
        struct buf rec;
        struct buf_marks rec_marks;
        buf_init(&rec, 1 << 16);
        buf_attach_marks(&rec, &rec_marks);
        if ((r = proto_lab_dh.conn_write(client, (const uint8_t *)"hello", 5, &rec)) < 0)
            die("conn_write", r);
        /* The client's key PEM then a record: the server in the seed has another key pair,
         * so the record decrypts to noise, but every step is walked. */
        uint8_t seed[16384];
        size_t n = pem_len + buf_len(&rec);
        if (n > sizeof(seed))
            die("seed size", (int)n);
        memcpy(seed, buf_head(&c_out), pem_len);
        memcpy(seed + pem_len, buf_head(&rec), buf_len(&rec));
        write_seed(dir, "handshake_record", 0x00, seed, n);
        write_seed(dir, "record", 0x80, buf_head(&rec), buf_len(&rec));
        write_seed(dir, "record_split_iv", 0x80 | 16, buf_head(&rec), buf_len(&rec));
        buf_free(&rec);
    }
    proto_lab_dh.conn_free(client);
    buf_free(&s_out);
    buf_free(&c_out);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static _Alignas(max_align_t) uint8_t conn[8192];
    struct buf out;
    if (size == 0)
        return 0;
    bool after_handshake = data[0] & 0x80;
    size_t chunk = data[0] & 0x7f ? data[0] & 0x7f : size;
    data++;
    size--;
    static struct buf_marks marks;
    buf_init(&out, 1 << 20);
    buf_attach_marks(&out, &marks);
    int r = 0;
    if (after_handshake) {
        memcpy(conn, ready_conn, proto_lab_dh.conn_size);
        if (!proto_lab_dh.conn_ready(conn))
            abort();
    } else {
        memset(conn, 0, proto_lab_dh.conn_size);
        r = proto_lab_dh.conn_init(conn, server_ctx, PROTO_SERVER, &out);
    }
    fuzz_feed_server(&proto_lab_dh, conn, r, data, size, chunk, &out, echo_record, 0);
    proto_lab_dh.conn_free(conn);
    buf_free(&out);
    return 0;
}
