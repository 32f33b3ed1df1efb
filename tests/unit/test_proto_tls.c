/* SPDX-License-Identifier: MIT */
/* Unit tests for -P tls: the protocol (proto/tls.c) between a server and a client conn in
 * memory (the handshake whole, byte by byte and cut at every offset; lines and records;
 * tampering; what is not TLS; trust on first use, pins and --ca; close_notify), the
 * certificate files (crypto/tls.c), and the engine driving it (back-pressure over a record's
 * lines, the goodbye, the peer's close_notify, the record timeout). */
#include "check.h"
#include "conn.h"
#include "keys.h"
#include "log.h"
#include "proto.h"
#include "service.h"
#include "tls.h"
#include "trust.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct proto_vt *vt = &proto_tls;
static char tmp[] = "/tmp/secho-test-tls.XXXXXX";
static char known_hosts[300];

#define HOST_ID "127.0.0.1:9443"

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmp, name);
}

static void *server_ctx(const char *cert, const char *key, bool create)
{
    struct proto_opts o = {
        .max_msg = 1 << 20, .cert_file = cert, .key_file = key, .cert_create = create};
    void *ctx = NULL;
    char err[PROTO_ERRLEN] = "";
    int r = vt->ctx_new(&o, PROTO_SERVER, &ctx, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "server ctx_new: %s\n", err);
    CHECK_INT(r, 0);
    return ctx;
}

/* A client ctx: o's trust fields as given, the rest filled. */
static void *client_ctx_opts(struct proto_opts o, int want, char *err)
{
    void *ctx = NULL;
    char e[PROTO_ERRLEN] = "";
    o.max_msg = 1 << 20;
    if (!o.host_id)
        o.host_id = HOST_ID;
    int r = vt->ctx_new(&o, PROTO_CLIENT, &ctx, err ? err : e, PROTO_ERRLEN);
    CHECK_INT(r, want);
    return ctx;
}

/* A client with the test's known_hosts. */
static void *kh_ctx(bool accept_new)
{
    return client_ctx_opts(
        (struct proto_opts){.known_hosts = known_hosts, .accept_new = accept_new}, 0, NULL);
}

/* A client that accepts any server and remembers none (as bench). */
static void *client_ctx(bool accept_new)
{
    return client_ctx_opts((struct proto_opts){.accept_new = accept_new}, 0, NULL);
}

/* ---- one end ---- */

struct end {
    enum proto_role role;
    void *conn;
    struct buf out;
    struct buf got; /* decoded stream bytes */
    int err, handshakes, closed, frags;
    bool in_line;
};

static void end_open(struct end *x, void *ctx, enum proto_role role)
{
    memset(x, 0, sizeof(*x));
    x->role = role;
    buf_init(&x->out, 1 << 21);
    buf_init(&x->got, 1 << 21);
    CHECK_INT(proto_conn_new(vt, ctx, role, &x->out, &x->conn), 0);
}

static void end_close(struct end *x)
{
    proto_conn_free(vt, x->conn);
    buf_free(&x->out);
    buf_free(&x->got);
}

/* One read batch, as an I/O model loops: until PROTO_NEED_MORE (all taken) or an error. */
static void feed(struct end *x, const uint8_t *p, size_t n)
{
    for (int guard = 0; guard < 1000000 && !x->err; guard++) {
        size_t used = n;
        struct proto_msg m = {0};
        int r = vt->conn_read(x->conn, p, &used, &x->out, &m);
        CHECK(used <= n);
        p += used;
        n -= used;
        if (r < 0) {
            x->err = r;
            return;
        }
        if (r == PROTO_HANDSHAKE) {
            x->handshakes++;
            CHECK(vt->conn_ready(x->conn));
        } else if (r == PROTO_MSG) {
            CHECK(m.first == !x->in_line);
            x->in_line = !m.last;
            x->frags++;
            CHECK_INT(buf_append(&x->got, m.data, m.len), 0);
        } else if (r == PROTO_CLOSED) {
            x->closed++;
        } else {
            CHECK_INT(r, PROTO_NEED_MORE);
            CHECK_INT(n, 0);
            return;
        }
    }
}

/* Moves all of from's output to to: whole (cut 0), byte by byte (cut 1), or in two reads
 * cut at offset `cut` - 1 (if inside). Returns the bytes moved. */
static size_t move(struct end *from, struct end *to, size_t cut)
{
    size_t n = buf_len(&from->out);
    uint8_t *copy = malloc(n + 1);
    memcpy(copy, buf_head(&from->out), n);
    buf_reset(&from->out);
    if (cut == 1) {
        for (size_t i = 0; i < n && !to->err; i++)
            feed(to, copy + i, 1);
    } else if (cut >= 2 && cut - 1 < n) {
        feed(to, copy, cut - 1);
        feed(to, copy + cut - 1, n - (cut - 1));
    } else if (n > 0) {
        feed(to, copy, n);
    }
    free(copy);
    return n;
}

/* Runs the handshake; the client queues `msg` as soon as it is ready. Returns the longest
 * transfer. */
static size_t handshake(struct end *s, struct end *c, const char *msg, size_t cut)
{
    size_t longest = 0;
    bool queued = false;
    for (int round = 0; round < 8 && !s->err && !c->err; round++) {
        if (!queued && vt->conn_ready(c->conn)) {
            CHECK_INT(vt->conn_write(c->conn, (const uint8_t *)msg, strlen(msg), &c->out), 0);
            queued = true;
        }
        size_t a = move(c, s, cut), b = move(s, c, cut);
        longest = a > longest ? a : longest;
        longest = b > longest ? b : longest;
        if (!a && !b && queued)
            break;
    }
    return longest;
}

/* The server echoes what it decoded, as the server's policy does. */
static void echo_back(struct end *s)
{
    if (buf_len(&s->got))
        CHECK_INT(vt->conn_write(s->conn, buf_head(&s->got), buf_len(&s->got), &s->out), 0);
    buf_reset(&s->got);
}

/* ---- the protocol ---- */

static void session(void *sctx, void *cctx, size_t cut, size_t *longest)
{
    static const char msg[] = "hello\nsecond line\npartial";
    struct end s, c;
    end_open(&s, sctx, PROTO_SERVER);
    end_open(&c, cctx, PROTO_CLIENT);
    CHECK(!buf_empty(&c.out) && buf_empty(&s.out)); /* the client speaks first */
    CHECK(vt->conn_write(c.conn, (const uint8_t *)"x", 1, &c.out) == PROTO_E_STATE);
    size_t l = handshake(&s, &c, msg, cut);
    if (longest && l > *longest)
        *longest = l;
    CHECK_INT(s.err, 0);
    CHECK_INT(c.err, 0);
    CHECK_INT(s.handshakes, 1);
    CHECK_INT(c.handshakes, 1);
    CHECK_INT(buf_len(&s.got), strlen(msg));
    CHECK(buf_len(&s.got) == strlen(msg) && memcmp(buf_head(&s.got), msg, strlen(msg)) == 0);
    echo_back(&s);
    move(&s, &c, cut);
    CHECK_INT(buf_len(&c.got), strlen(msg));
    CHECK(buf_len(&c.got) == strlen(msg) && memcmp(buf_head(&c.got), msg, strlen(msg)) == 0);
    end_close(&s);
    end_close(&c);
}

static void test_handshake_every_cut(void)
{
    void *sctx = server_ctx(NULL, NULL, false), *cctx = client_ctx(true);
    size_t longest = 0;
    session(sctx, cctx, 0, &longest);
    session(sctx, cctx, 1, NULL);
    fprintf(stderr, "tls: transfers up to %zu bytes, each cut at every offset\n", longest);
    CHECK(longest > 300);
    for (size_t k = 2; k <= longest; k++)
        session(sctx, cctx, k, NULL);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

/* A pair past the handshake. */
static void pair(struct end *s, struct end *c, void *sctx, void *cctx)
{
    end_open(s, sctx, PROTO_SERVER);
    end_open(c, cctx, PROTO_CLIENT);
    for (int i = 0; i < 4; i++) {
        move(c, s, 0);
        move(s, c, 0);
    }
    CHECK(vt->conn_ready(s->conn) && vt->conn_ready(c->conn));
}

/* One record of several lines is handed over a line per call, the rest without input. */
static void test_lines_of_a_record(void)
{
    void *sctx = server_ctx(NULL, NULL, false), *cctx = client_ctx(true);
    struct end s, c;
    pair(&s, &c, sctx, cctx);
    static const char rec[] = "a\nbb\n\nccc";
    CHECK_INT(vt->conn_write(c.conn, (const uint8_t *)rec, strlen(rec), &c.out), 0);
    CHECK_INT(buf_len(&c.out), strlen(rec) + CRYPTO_TLS_OVERHEAD); /* one record */
    static const char *const want[] = {"a\n", "bb\n", "\n", "ccc"};
    size_t n = buf_len(&c.out), used;
    struct proto_msg m;
    for (int i = 0; i < 4; i++) {
        used = i == 0 ? n : 0;
        CHECK_INT(vt->conn_read(s.conn, buf_head(&c.out), &used, &s.out, &m), PROTO_MSG);
        CHECK_INT(used, i == 0 ? n : 0);
        CHECK_INT(m.len, strlen(want[i]));
        CHECK(m.len == strlen(want[i]) && memcmp(m.data, want[i], m.len) == 0);
        CHECK(m.first);
        CHECK(m.last == (i < 3));
        CHECK(vt->conn_pending(s.conn) == (i < 3));
    }
    used = 0;
    CHECK_INT(vt->conn_read(s.conn, NULL, &used, &s.out, &m), PROTO_NEED_MORE);
    buf_reset(&c.out);
    /* The line goes on in the next record: not its first fragment. */
    CHECK_INT(vt->conn_write(c.conn, (const uint8_t *)"dd\n", 3, &c.out), 0);
    used = buf_len(&c.out);
    CHECK_INT(vt->conn_read(s.conn, buf_head(&c.out), &used, &s.out, &m), PROTO_MSG);
    CHECK(!m.first && m.last && m.len == 3);
    buf_reset(&c.out);
    /* A long message is split into records of 16 KiB; every one yields a fragment. */
    uint8_t *big = malloc(40000);
    memset(big, 'z', 40000);
    CHECK_INT(vt->conn_write(c.conn, big, 40000, &c.out), 0);
    CHECK_INT(buf_len(&c.out), 40000 + 3 * CRYPTO_TLS_OVERHEAD);
    s.frags = 0;
    move(&c, &s, 0);
    CHECK_INT(s.frags, 3);
    CHECK_INT(s.err, 0);
    /* A write that does not fit is refused whole; the session goes on. */
    struct buf small;
    buf_init(&small, 100);
    CHECK_INT(vt->conn_write(c.conn, big, 1000, &small), -ENOBUFS);
    CHECK(buf_empty(&small));
    buf_free(&small);
    CHECK_INT(vt->conn_write(c.conn, (const uint8_t *)"\n", 1, &c.out), 0);
    CHECK_INT(vt->conn_write(c.conn, big, 0, &c.out), 0);
    CHECK_INT(buf_len(&c.out), 1 + CRYPTO_TLS_OVERHEAD);
    move(&c, &s, 1);
    CHECK_INT(s.err, 0);
    CHECK(!s.in_line);
    free(big);
    end_close(&s);
    end_close(&c);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

/* The offsets of the legacy_record_version bytes of the records in clear (ServerHello,
 * change_cipher_spec) in a server flight: RFC 8446 5.1 has them ignored, so a flip there
 * may pass. Everything else is authenticated. */
static bool ignored_byte(const uint8_t *p, size_t n, size_t at)
{
    for (size_t off = 0; off + CRYPTO_TLS_HDR <= n;) {
        if (p[off] != 23 && (at == off + 1 || at == off + 2))
            return true;
        off += CRYPTO_TLS_HDR + buf_get_u16be(p + off + 3);
    }
    return false;
}

/* A flipped bit anywhere in the server's flight keeps the client's handshake from
 * completing (it fails, saying why, or waits for a length it was promised); a flipped bit in
 * a record fails the conn for good. */
static void test_tamper(void)
{
    void *sctx = server_ctx(NULL, NULL, false), *cctx = client_ctx(true);
    struct end s, c;
    end_open(&s, sctx, PROTO_SERVER);
    end_open(&c, cctx, PROTO_CLIENT);
    move(&c, &s, 0);
    size_t n = buf_len(&s.out);
    end_close(&s);
    end_close(&c);
    CHECK(n > 300);
    int accepted = 0, unsaid = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        /* A fresh client for each flip: its ClientHello differs, so the server's flight
         * does too; the flip goes into the flight answering this very client. */
        end_open(&s, sctx, PROTO_SERVER);
        end_open(&c, cctx, PROTO_CLIENT);
        move(&c, &s, 0);
        size_t len = buf_len(&s.out);
        uint8_t *p = (uint8_t *)buf_head(&s.out);
        bool ignored = ignored_byte(p, len, i % len);
        p[i % len] ^= (uint8_t)(1u << (i % 8));
        move(&s, &c, 0);
        if (c.handshakes && !ignored) {
            fprintf(stderr, "flip at %zu of %zu completed the handshake\n", i % len, len);
            accepted++;
        }
        failed += c.err != 0;
        const char *why = vt->conn_error(c.conn);
        if (c.err && (!why || !*why))
            unsaid++;
        size_t one = 1;
        struct proto_msg m;
        if (c.err && vt->conn_read(c.conn, (const uint8_t *)"x", &one, &c.out, &m) >= 0)
            accepted++;
        end_close(&s);
        end_close(&c);
    }
    CHECK_INT(accepted, 0);
    CHECK_INT(unsaid, 0);
    CHECK((size_t)failed > n * 9 / 10); /* all but lengths that promise more */

    /* A record after the handshake. */
    pair(&s, &c, sctx, cctx);
    CHECK_INT(vt->conn_write(c.conn, (const uint8_t *)"secret\n", 7, &c.out), 0);
    ((uint8_t *)buf_head(&c.out))[10] ^= 0x20;
    move(&c, &s, 0);
    CHECK_INT(s.err, PROTO_E_AUTH);
    CHECK_INT(buf_len(&s.got), 0);
    CHECK(strstr(vt->conn_error(s.conn), "record:") != NULL);
    CHECK(vt->conn_write(s.conn, (const uint8_t *)"x", 1, &s.out) < 0);
    end_close(&s);
    end_close(&c);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

/* Bytes that are not TLS are refused at the first byte that tells, with a reason. */
static void test_not_tls(void)
{
    void *sctx = server_ctx(NULL, NULL, false), *cctx = client_ctx(true);
    struct end s, c;
    size_t used;
    struct proto_msg m;

    end_open(&s, sctx, PROTO_SERVER);
    used = 16;
    CHECK_INT(vt->conn_read(s.conn, (const uint8_t *)"GET / HTTP/1.0\r\n", &used, &s.out, &m),
              PROTO_E_PARSE);
    CHECK_INT(used, 1);
    CHECK(strstr(vt->conn_error(s.conn), "not a TLS client") != NULL);
    CHECK(strstr(vt->conn_error(s.conn), "'G'") != NULL);
    end_close(&s);

    /* A record longer than TLS allows is refused on its header, before its body. */
    end_open(&s, sctx, PROTO_SERVER);
    static const uint8_t big[] = {22, 3, 1, 0x48, 0x01, 1, 2, 3}; /* 18433 bytes */
    used = sizeof(big);
    CHECK_INT(vt->conn_read(s.conn, big, &used, &s.out, &m), PROTO_E_PARSE);
    CHECK_INT(used, 5);
    CHECK(strstr(vt->conn_error(s.conn), "exceeds") != NULL);
    end_close(&s);

    /* A client whose ClientHello comes back (an echo server) says so. */
    end_open(&c, cctx, PROTO_CLIENT);
    size_t n = buf_len(&c.out);
    uint8_t *hello = malloc(n);
    memcpy(hello, buf_head(&c.out), n);
    used = n;
    CHECK_INT(vt->conn_read(c.conn, hello, &used, &c.out, &m), PROTO_E_PARSE);
    CHECK(strstr(vt->conn_error(c.conn), "echo server") != NULL);
    CHECK(strstr(vt->conn_error(c.conn), "-P plain") != NULL);
    free(hello);
    end_close(&c);

    /* A garbled ClientHello is refused by libssl, with the alert owed to the peer in out. */
    end_open(&c, cctx, PROTO_CLIENT);
    end_open(&s, sctx, PROTO_SERVER);
    ((uint8_t *)buf_head(&c.out))[5] ^= 0x03; /* ClientHello (1) becomes ServerHello (2) */
    move(&c, &s, 0);
    CHECK_INT(s.err, PROTO_E_AUTH);
    CHECK(strstr(vt->conn_error(s.conn), "handshake:") != NULL);
    CHECK(!buf_empty(&s.out) && buf_head(&s.out)[0] == 21); /* an alert record */
    end_close(&s);
    end_close(&c);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

static void fingerprint_of(void *sctx, uint8_t fp[static 32])
{
    const char *b64 = vt->ctx_identity(sctx);
    CHECK(b64 && keys_b64_decode(b64, strlen(b64), fp));
}

/* Runs a handshake; returns the client's error (0: it completed). Nothing goes out after a
 * refusal (not even the client's Finished). */
static int connect_with(void *sctx, void *cctx, char *why, size_t cap)
{
    struct end s, c;
    end_open(&s, sctx, PROTO_SERVER);
    end_open(&c, cctx, PROTO_CLIENT);
    move(&c, &s, 0);
    move(&s, &c, 0);
    int err = c.err;
    snprintf(why, cap, "%s", vt->conn_error(c.conn));
    if (err == PROTO_E_TRUST)
        CHECK(buf_empty(&c.out)); /* a refused server gets nothing more */
    else if (err)
        CHECK(!buf_empty(&c.out) && buf_head(&c.out)[0] == 21); /* libssl's alert */
    else
        CHECK(c.handshakes == 1 && !buf_empty(&c.out));
    end_close(&s);
    end_close(&c);
    return err;
}

static void test_trust(void)
{
    void *s1 = server_ctx(NULL, NULL, false), *s2 = server_ctx(NULL, NULL, false);
    uint8_t fp1[32], fp2[32];
    char why[PROTO_TRUST_MSGLEN], line[200];
    fingerprint_of(s1, fp1);
    fingerprint_of(s2, fp2);
    CHECK(memcmp(fp1, fp2, 32) != 0);
    unlink(known_hosts);

    /* Unknown, not accepted: refused, naming the fingerprint and the way out. */
    void *strict = kh_ctx(false), *accept = kh_ctx(true);
    CHECK_INT(connect_with(s1, strict, why, sizeof(why)), PROTO_E_TRUST);
    CHECK(strstr(why, "unknown server certificate") && strstr(why, "--accept-new"));
    CHECK(strstr(why, vt->ctx_identity(s1)) != NULL);
    CHECK(access(known_hosts, F_OK) != 0);
    /* Accepted on first use: remembered as a tls line, with the notice. */
    CHECK_INT(connect_with(s1, accept, why, sizeof(why)), 0);
    CHECK(strstr(why, "Permanently added") != NULL);
    FILE *f = fopen(known_hosts, "r");
    CHECK(f && fgets(line, sizeof(line), f));
    if (f)
        fclose(f);
    char want[200];
    snprintf(want, sizeof(want), HOST_ID " tls %s\n", vt->ctx_identity(s1));
    CHECK_STR(line, want);
    CHECK_INT(keys_known_hosts_check(known_hosts, HOST_ID, "tls", fp1, NULL, NULL, 0),
              KEYS_HOST_MATCH);
    /* Known: passes without asking. */
    CHECK_INT(connect_with(s1, strict, why, sizeof(why)), 0);
    CHECK_STR(why, "");
    /* Another certificate for the same host: refused, even with --accept-new. */
    CHECK_INT(connect_with(s2, accept, why, sizeof(why)), PROTO_E_TRUST);
    CHECK(strstr(why, "THE SERVER CERTIFICATE FOR " HOST_ID " HAS CHANGED") != NULL);
    CHECK(strstr(why, "secho keygen -R " HOST_ID) != NULL);
    vt->ctx_free(strict);
    vt->ctx_free(accept);

    /* A pin wins: over a changed entry, and a mismatch is refused even with accept_new. */
    struct proto_opts o = {.known_hosts = known_hosts, .server_key = vt->ctx_identity(s2)};
    void *pinned = client_ctx_opts(o, 0, NULL);
    CHECK_INT(connect_with(s2, pinned, why, sizeof(why)), 0);
    CHECK_INT(connect_with(s1, pinned, why, sizeof(why)), PROTO_E_TRUST);
    CHECK(strstr(why, "server certificate mismatch") != NULL);
    vt->ctx_free(pinned);
    o.server_key = "not a fingerprint";
    char err[PROTO_ERRLEN];
    client_ctx_opts(o, -EINVAL, err);
    CHECK(strstr(err, "--server-key") != NULL);

    /* secure's untagged line with the very same bytes vouches for no certificate, and a
     * tls line none for a secure key (the lookup kinds differ). */
    char b64[KEYS_B64LEN + 1];
    keys_b64_encode(fp1, b64);
    f = fopen(known_hosts, "w");
    fprintf(f, HOST_ID " %s\n", b64);
    fclose(f);
    chmod(known_hosts, 0600);
    strict = kh_ctx(false);
    CHECK_INT(connect_with(s1, strict, why, sizeof(why)), PROTO_E_TRUST);
    CHECK(strstr(why, "unknown server certificate") != NULL);
    vt->ctx_free(strict);
    vt->ctx_free(s1);
    vt->ctx_free(s2);
}

static void test_files_and_ca(void)
{
    char cert[300], key[300], cert2[300], key2[300], err[PROTO_ERRLEN];
    struct stat st;
    path_of(cert, sizeof(cert), "cfg/secho/server-tls.crt");
    path_of(key, sizeof(key), "cfg/secho/server-tls.key");
    struct crypto_tls_ctx *a = NULL, *b = NULL;
    bool created = false;
    uint8_t fpa[32], fpb[32];
    /* Made on first use: the key 0600, the certificate 0644, in new 0700 directories. */
    CHECK_INT(crypto_tls_server_ctx(cert, key, true, &a, &created, err, sizeof(err)), 0);
    CHECK(created);
    CHECK_INT(stat(key, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    CHECK_INT(stat(cert, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0644);
    /* Kept: the next start loads the same pair. */
    CHECK_INT(crypto_tls_server_ctx(cert, key, true, &b, &created, err, sizeof(err)), 0);
    CHECK(!created);
    crypto_tls_ctx_fingerprint(a, fpa);
    crypto_tls_ctx_fingerprint(b, fpb);
    CHECK_MEM(fpa, fpb, 32);
    crypto_tls_ctx_free(a);
    crypto_tls_ctx_free(b);
    /* The same files given as --cert/--key. */
    CHECK_INT(crypto_tls_server_ctx(cert, key, false, &a, &created, err, sizeof(err)), 0);
    crypto_tls_ctx_free(a);
    /* openssl agrees on the fingerprint. */
    char cmd[800], hex[200] = "";
    snprintf(cmd, sizeof(cmd),
             "openssl x509 -in '%s' -outform DER | openssl dgst -sha256 -binary | base64", cert);
    FILE *p = popen(cmd, "r");
    CHECK(p && fgets(hex, sizeof(hex), p));
    if (p)
        pclose(p);
    char b64[KEYS_B64LEN + 1];
    keys_b64_encode(fpa, b64);
    CHECK(strncmp(hex, b64, KEYS_B64LEN) == 0);
    /* A key others may read is refused, naming the fix. */
    chmod(key, 0644);
    CHECK_INT(crypto_tls_server_ctx(cert, key, true, &a, &created, err, sizeof(err)), KEYS_E_PERM);
    CHECK(strstr(err, "chmod 600") != NULL);
    chmod(key, 0640); /* the group may read (ssl-cert) */
    CHECK_INT(crypto_tls_server_ctx(cert, key, false, &a, &created, err, sizeof(err)), 0);
    crypto_tls_ctx_free(a);
    chmod(key, 0600);
    /* A certificate and another key do not go together; one without the other is refused. */
    path_of(cert2, sizeof(cert2), "other.crt");
    path_of(key2, sizeof(key2), "other.key");
    CHECK_INT(crypto_tls_server_ctx(cert2, key2, true, &a, &created, err, sizeof(err)), 0);
    crypto_tls_ctx_free(a);
    CHECK_INT(crypto_tls_server_ctx(cert, key2, false, &a, &created, err, sizeof(err)),
              CRYPTO_TLS_E_FILE);
    CHECK(strstr(err, "do not go together") != NULL);
    CHECK(crypto_tls_server_ctx(cert, NULL, false, &a, &created, err, sizeof(err)) < 0);
    path_of(key2, sizeof(key2), "absent.key");
    CHECK_INT(crypto_tls_server_ctx(cert, key2, false, &a, &created, err, sizeof(err)), -ENOENT);

    /* --ca: the chain and the name are checked by libssl; known_hosts is not touched. */
    void *sctx = server_ctx(cert, key, false);
    unlink(known_hosts);
    struct proto_opts o = {.known_hosts = known_hosts, .ca_file = cert};
    char why[PROTO_TRUST_MSGLEN];
    void *ca = client_ctx_opts(o, 0, NULL);
    CHECK_INT(connect_with(sctx, ca, why, sizeof(why)), 0);
    vt->ctx_free(ca);
    o.host_id = "[::1]:9443";
    ca = client_ctx_opts(o, 0, NULL);
    CHECK_INT(connect_with(sctx, ca, why, sizeof(why)), 0);
    vt->ctx_free(ca);
    o.host_id = "localhost:9443";
    ca = client_ctx_opts(o, 0, NULL);
    CHECK_INT(connect_with(sctx, ca, why, sizeof(why)), 0);
    vt->ctx_free(ca);
    CHECK(access(known_hosts, F_OK) != 0);
    o.host_id = "example.org:9443";
    ca = client_ctx_opts(o, 0, NULL);
    CHECK_INT(connect_with(sctx, ca, why, sizeof(why)), PROTO_E_AUTH);
    CHECK(strstr(why, "certificate verify failed") != NULL);
    vt->ctx_free(ca);
    o.host_id = NULL;
    o.ca_file = cert2; /* another CA */
    ca = client_ctx_opts(o, 0, NULL);
    CHECK_INT(connect_with(sctx, ca, why, sizeof(why)), PROTO_E_AUTH);
    vt->ctx_free(ca);
    o.ca_file = key2; /* no such file */
    client_ctx_opts(o, CRYPTO_TLS_E_FILE, err);
    CHECK(strstr(err, "CA file") != NULL);
    vt->ctx_free(sctx);
}

/* close_notify: the goodbye once; the peer reads PROTO_CLOSED once and drops what follows. */
static void test_close_notify(void)
{
    void *sctx = server_ctx(NULL, NULL, false), *cctx = client_ctx(true);
    struct end s, c;
    pair(&s, &c, sctx, cctx);
    CHECK_INT(vt->conn_goodbye(s.conn, &s.out), 0);
    CHECK(!buf_empty(&s.out));
    size_t n = buf_len(&s.out);
    CHECK_INT(vt->conn_goodbye(s.conn, &s.out), 0);
    CHECK_INT(buf_len(&s.out), n);
    move(&s, &c, 1);
    CHECK_INT(c.closed, 1);
    CHECK_INT(c.err, 0);
    size_t used = 3;
    struct proto_msg m;
    CHECK_INT(vt->conn_read(c.conn, (const uint8_t *)"abc", &used, &c.out, &m), PROTO_NEED_MORE);
    CHECK_INT(used, 3);
    /* Half-closed: the client may still write, the server still reads. */
    CHECK_INT(vt->conn_write(c.conn, (const uint8_t *)"late\n", 5, &c.out), 0);
    move(&c, &s, 0);
    CHECK_INT(s.err, 0);
    CHECK_INT(buf_len(&s.got), 5);
    end_close(&s);
    end_close(&c);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

/* ---- the engine ---- */

struct rig {
    struct server srv;
    struct server_conn sc;
    uint64_t now;
    struct end cli; /* the peer, a tls client conn */
    bool shut;
};

static void rig_start(struct rig *r, void *sctx, void *cctx, int record_ms)
{
    memset(r, 0, sizeof(*r));
    r->srv.conf.proto = vt;
    r->srv.conf.max_conns = 10;
    r->srv.conf.record_timeout_ms = record_ms;
    r->srv.conf.allow_shutdown = ALLOW_NONE;
    r->srv.pctx = sctx;
    atomic_init(&r->srv.next_id, 1);
    pthread_mutex_init(&r->srv.wake_mu, NULL);
    r->now = 1000000;
    struct net_addr peer = {.len = sizeof(struct sockaddr_in)};
    struct sockaddr_in *in = (struct sockaddr_in *)&peer.ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(40000);
    in->sin_addr.s_addr = htonl(0x7f000001);
    CHECK_INT(server_conn_init(&r->sc, &r->srv, &peer, r->now), 0);
    end_open(&r->cli, cctx, PROTO_CLIENT);
}

static void rig_end(struct rig *r)
{
    conn_free(&r->sc.c);
    end_close(&r->cli);
    pthread_mutex_destroy(&r->srv.wake_mu);
}

/* The client's output into the server, as a readiness model reads: until the engine wants
 * no more. Returns how much is left. */
static size_t to_server(struct rig *r)
{
    while (!buf_empty(&r->cli.out)) {
        uint8_t *dst;
        size_t room = conn_read_buf(&r->sc.c, r->now, &dst);
        if (room == 0)
            break;
        size_t k = buf_len(&r->cli.out) < room ? buf_len(&r->cli.out) : room;
        memcpy(dst, buf_head(&r->cli.out), k);
        buf_consume(&r->cli.out, k);
        conn_read_commit(&r->sc.c, k, r->now);
    }
    return buf_len(&r->cli.out);
}

/* Everything the server lets go, into the client. */
static void to_client(struct rig *r)
{
    const uint8_t *p;
    size_t n;
    while ((n = conn_out_peek(&r->sc.c, r->now, &p)) > 0) {
        feed(&r->cli, p, n);
        conn_out_sent(&r->sc.c, n, r->now);
    }
    if (conn_wants(&r->sc.c) & CONN_WANT_SHUT_WR) {
        r->shut = true;
        conn_shut_done(&r->sc.c);
    }
}

static void rig_handshake(struct rig *r)
{
    for (int i = 0; i < 4; i++) {
        to_server(r);
        to_client(r);
    }
    CHECK(conn_ready(&r->sc.c) && vt->conn_ready(r->cli.conn));
}

/* Records of many short lines: each line's echo is a record of its own, so the server's
 * output reaches its high-water mark in the middle of a record's lines. The rest of them
 * must still be echoed once the output drains, with no further input coming. */
static void test_engine_backpressure(void)
{
    void *sctx = server_ctx(NULL, NULL, false), *cctx = client_ctx(true);
    struct rig r;
    rig_start(&r, sctx, cctx, 0);
    rig_handshake(&r);
    size_t lines = 0;
    char line[8];
    struct buf want;
    buf_init(&want, 1 << 22);
    for (int rec = 0; rec < 6; rec++) {
        uint8_t chunk[CRYPTO_TLS_PLAIN_MAX];
        size_t k = 0;
        while (k + 6 <= sizeof(chunk)) {
            int w = snprintf(line, sizeof(line), "%04zu\n", lines++ % 10000);
            memcpy(chunk + k, line, (size_t)w);
            k += (size_t)w;
        }
        CHECK_INT(buf_append(&want, chunk, k), 0);
        CHECK_INT(vt->conn_write(r.cli.conn, chunk, k, &r.cli.out), 0);
    }
    bool stalled = false;
    for (int round = 0; round < 1000 && buf_len(&r.cli.got) < buf_len(&want); round++) {
        if (to_server(&r) > 0)
            stalled = true; /* back-pressure: the engine did not take it all */
        to_client(&r);
    }
    CHECK(stalled);
    CHECK_INT(buf_len(&r.cli.got), buf_len(&want));
    CHECK(buf_len(&r.cli.got) == buf_len(&want) &&
          memcmp(buf_head(&r.cli.got), buf_head(&want), buf_len(&want)) == 0);
    CHECK(!conn_closed(&r.sc.c));
    buf_free(&want);
    rig_end(&r);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

/* `exit`: the echo, then close_notify, then the half-close; the peer's close_notify: ours,
 * then the connection ends (reason eof). */
static void test_engine_closing(void)
{
    void *sctx = server_ctx(NULL, NULL, false), *cctx = client_ctx(true);
    struct rig r;
    rig_start(&r, sctx, cctx, 0);
    rig_handshake(&r);
    CHECK_INT(vt->conn_write(r.cli.conn, (const uint8_t *)"exit\n", 5, &r.cli.out), 0);
    to_server(&r);
    to_client(&r);
    CHECK_INT(buf_len(&r.cli.got), 5);
    CHECK_INT(r.cli.closed, 1);
    CHECK(r.shut);
    CHECK_INT(conn_reason(&r.sc.c), CONN_REASON_EXIT);
    rig_end(&r);

    rig_start(&r, sctx, cctx, 0);
    rig_handshake(&r);
    CHECK_INT(vt->conn_write(r.cli.conn, (const uint8_t *)"bye\n", 4, &r.cli.out), 0);
    CHECK_INT(vt->conn_goodbye(r.cli.conn, &r.cli.out), 0);
    to_server(&r);
    CHECK(conn_peer_closed(&r.sc.c));
    to_client(&r);
    CHECK_INT(buf_len(&r.cli.got), 4); /* what was owed still went */
    CHECK_INT(r.cli.closed, 1);        /* then our close_notify */
    CHECK(conn_closed(&r.sc.c));
    CHECK_INT(conn_reason(&r.sc.c), CONN_REASON_EOF);
    rig_end(&r);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

/* The record timeout bounds a TLS record trickled in, never a line spread over records. */
static void test_engine_record_timeout(void)
{
    void *sctx = server_ctx(NULL, NULL, false), *cctx = client_ctx(true);
    struct rig r;
    rig_start(&r, sctx, cctx, 1000);
    rig_handshake(&r);
    for (int i = 0; i < 5; i++) { /* a line of five records, 900 ms apart */
        CHECK_INT(vt->conn_write(r.cli.conn, (const uint8_t *)"part ", 5, &r.cli.out), 0);
        to_server(&r);
        to_client(&r);
        r.now += 900;
        conn_on_time(&r.sc.c, r.now);
        CHECK(!conn_closed(&r.sc.c) && conn_reason(&r.sc.c) == CONN_REASON_NONE);
    }
    CHECK_INT(buf_len(&r.cli.got), 25);
    /* Half a record, then silence. */
    CHECK_INT(vt->conn_write(r.cli.conn, (const uint8_t *)"trickled\n", 9, &r.cli.out), 0);
    size_t n = buf_len(&r.cli.out);
    uint8_t half[64];
    CHECK(n < 2 * sizeof(half));
    memcpy(half, buf_head(&r.cli.out), n / 2);
    buf_reset(&r.cli.out);
    CHECK_INT(buf_append(&r.cli.out, half, n / 2), 0);
    to_server(&r);
    r.now += 999;
    conn_on_time(&r.sc.c, r.now);
    CHECK_INT(conn_reason(&r.sc.c), CONN_REASON_NONE);
    r.now += 2;
    conn_on_time(&r.sc.c, r.now);
    CHECK_INT(conn_reason(&r.sc.c), CONN_REASON_TIMEOUT);
    rig_end(&r);
    vt->ctx_free(sctx);
    vt->ctx_free(cctx);
}

int main(void)
{
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    umask(022);
    path_of(known_hosts, sizeof(known_hosts), "known_hosts");
    CHECK(vt == proto_find("tls"));
    CHECK(vt->flags & PROTO_F_STREAM_ECHO);
    CHECK(!(vt->flags & PROTO_F_UNFRAMED));
    test_handshake_every_cut();
    test_lines_of_a_record();
    test_tamper();
    test_not_tls();
    test_trust();
    test_files_and_ca();
    test_close_notify();
    test_engine_backpressure();
    test_engine_closing();
    test_engine_record_timeout();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    CHECK_INT(system(cmd), 0);
    return CHECK_DONE();
}
