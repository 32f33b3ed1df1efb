/* SPDX-License-Identifier: MIT */
/* Every registered protocol (walked with proto_at) against its own vtable answers: names,
 * flags, warning and help line, and that its stated stream and datagram limits are exactly
 * what a client/server pair of its conns carries. A new protocol is checked on registering. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "proto.h"

#define KNOWN_FLAGS                                                                                \
    (PROTO_F_STREAM_ECHO | PROTO_F_PACED | PROTO_F_UNAUTHENTICATED | PROTO_F_KEY_FILES |           \
     PROTO_F_DH_PARAMS | PROTO_F_PEER_ADMINS | PROTO_F_UNFRAMED | PROTO_F_CERTS)
/* The largest UDP payload over IPv4: no datagram of any protocol may be longer. */
#define IPV4_UDP_MAX 65507
/* A message for a protocol without a stream limit: well above one read or record. */
#define UNLIMITED_TRY (256 * 1024)

static char tmpdir[] = "/tmp/secho-test-registry.XXXXXX";
static char server_key[64], client_key[64], known_hosts[64];

struct side {
    const struct proto_vt *vt;
    void *ctx;
    void *conn;
    struct buf out;
    struct buf_marks marks; /* the paced parts of out */
    struct buf got;         /* the bytes of the message being received */
    int msgs;               /* whole messages received */
    int err;                /* the first error conn_read/dgram_read returned */
};

static bool one_line(const char *s)
{
    return s && *s && !strchr(s, '\n') && strlen(s) <= 72;
}

/* Checks what can be checked without running the protocol. */
static void check_answers(const struct proto_vt *vt, size_t index)
{
    fprintf(stderr, "protocol %zu: %s\n", index, vt->name ? vt->name : "(no name)");
    CHECK(vt->name && *vt->name && !strpbrk(vt->name, " ,|\t\n"));
    CHECK(proto_find(vt->name) == vt);
    for (size_t j = 0; proto_at(j); j++)
        if (j != index)
            CHECK(strcmp(proto_at(j)->name, vt->name) != 0);
    CHECK(one_line(vt->summary));
    CHECK_INT(vt->flags & ~(unsigned)KNOWN_FLAGS, 0);
    CHECK(vt->conn_size >= 1);
    CHECK(vt->conn_init && vt->conn_read && vt->conn_write && vt->conn_ready && vt->conn_free);
    CHECK(!vt->ctx_new == !vt->ctx_free);

    CHECK(vt->stream_max >= 1);
    /* Only a protocol that echoes bytes as they come may leave records unbounded. */
    if (vt->stream_max == SIZE_MAX)
        CHECK(vt->flags & PROTO_F_STREAM_ECHO);

    bool dg = vt->dgram_new != NULL;
    CHECK(!vt->dgram_read == !dg && !vt->dgram_write == !dg);
    CHECK(proto_has_dgram(vt) == dg);
    CHECK(dg ? vt->dgram_max >= 1 && vt->dgram_max <= IPV4_UDP_MAX : vt->dgram_max == 0);
    if (!dg)
        CHECK(!vt->dgram_retransmit);
    CHECK_INT(proto_max_msg(vt, false), vt->stream_max);
    CHECK_INT(proto_max_msg(vt, true), vt->dgram_max);

    /* The warning exists exactly for unauthenticated protocols, names the protocol and is
     * a sentence the command line can follow with its advice. */
    bool unauth = vt->flags & PROTO_F_UNAUTHENTICATED;
    CHECK(!vt->warning == !unauth);
    if (vt->warning) {
        size_t n = strlen(vt->warning);
        CHECK(strncmp(vt->warning, vt->name, strlen(vt->name)) == 0);
        CHECK(n > strlen(vt->name) && vt->warning[n - 1] == '.' && !strchr(vt->warning, '\n'));
    }
    /* Key files mean peers are authenticated by keys; pacing is for records, not bytes. */
    CHECK(!(unauth && (vt->flags & PROTO_F_KEY_FILES)));
    /* Admission by the peer's key needs keys; --noise-name lists one name per suite. */
    if (vt->flags & PROTO_F_PEER_ADMINS)
        CHECK(vt->flags & PROTO_F_KEY_FILES);
    CHECK(!vt->suites == !vt->nsuites);
    for (size_t i = 0; i < vt->nsuites; i++)
        CHECK(vt->suites[i] && strncmp(vt->suites[i], "Noise_", 6) == 0);
    CHECK(!((vt->flags & PROTO_F_STREAM_ECHO) && (vt->flags & PROTO_F_PACED)));
    /* Unframed bytes are a stream's; certificates are key files, never unauthenticated. */
    if (vt->flags & PROTO_F_UNFRAMED)
        CHECK(vt->flags & PROTO_F_STREAM_ECHO);
    if (vt->flags & PROTO_F_CERTS)
        CHECK((vt->flags & PROTO_F_KEY_FILES) && !unauth && !(vt->flags & PROTO_F_PEER_ADMINS));
    /* Whoever holds input back says so (the engine then drains it without new input). */
    if (vt->flags & PROTO_F_UNFRAMED)
        CHECK(!vt->conn_pending && !vt->conn_goodbye);
}

static void *make_ctx(const struct proto_vt *vt, enum proto_role role, bool dgram)
{
    struct proto_opts o = {.max_msg = 1 << 20, .dgram = dgram};
    if (vt->flags & PROTO_F_KEY_FILES) {
        /* A certificate protocol without files makes an ephemeral pair in memory. */
        if (!(vt->flags & PROTO_F_CERTS))
            o.key_file = role == PROTO_SERVER ? server_key : client_key;
        o.known_hosts = known_hosts;
        o.host_id = "127.0.0.1:9090";
        o.accept_new = true;
    }
    void *ctx = NULL;
    char err[PROTO_ERRLEN] = "";
    if (vt->ctx_new) {
        int r = vt->ctx_new(&o, role, &ctx, err, sizeof(err));
        if (r != 0)
            fprintf(stderr, "%s ctx_new: %s\n", vt->name, err);
        CHECK_INT(r, 0);
    }
    return ctx;
}

static void side_init(struct side *s, const struct proto_vt *vt, enum proto_role role, bool dgram)
{
    memset(s, 0, sizeof(*s));
    s->vt = vt;
    s->ctx = make_ctx(vt, role, dgram);
    buf_init(&s->out, 1 << 21);
    buf_attach_marks(&s->out, &s->marks);
    buf_init(&s->got, 1 << 21);
}

static void side_free(struct side *s)
{
    proto_conn_free(s->vt, s->conn);
    if (s->ctx && s->vt->ctx_free)
        s->vt->ctx_free(s->ctx);
    buf_free(&s->out);
    buf_free(&s->got);
}

/* Collects one decoded message or fragment into s->got. */
static void take(struct side *s, const struct proto_msg *m)
{
    if (m->first)
        buf_reset(&s->got);
    CHECK_INT(buf_append(&s->got, m->data, m->len), 0);
    if (m->last)
        s->msgs++;
}

/* Hands one read batch to d, looping as the I/O layers do until PROTO_NEED_MORE. */
static void stream_deliver(struct side *d, const uint8_t *p, size_t n)
{
    for (int guard = 0; guard < 100000 && !d->err; guard++) {
        size_t used = n;
        struct proto_msg m = {0};
        int r = d->vt->conn_read(d->conn, p, &used, &d->out, &m);
        if (r < 0) {
            d->err = r;
            return;
        }
        CHECK(used <= n);
        p += used;
        n -= used;
        if (r == PROTO_MSG)
            take(d, &m);
        if (r == PROTO_NEED_MORE)
            return;
    }
    CHECK(!"conn_read did not settle");
}

/* Moves all of s's output to d, one batch per paced part. Returns whether anything moved. */
static bool stream_pump(struct side *s, struct side *d)
{
    bool moved = false;
    while (!buf_empty(&s->out) && !d->err) {
        size_t n = buf_sendable(&s->out);
        stream_deliver(d, buf_head(&s->out), n);
        buf_consume(&s->out, n);
        (void)buf_pause_reached(&s->out);
        moved = true;
    }
    return moved;
}

/* Fills a message of n bytes; for byte-echo protocols a line (the message unit). */
static void fill(const struct proto_vt *vt, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 131 + 7);
    if (vt->flags & PROTO_F_STREAM_ECHO) {
        memset(p, 'a', n);
        p[n - 1] = '\n';
    }
}

/* The engine does not wipe its buffers (struct proto_vt: wire bytes only), so a protocol
 * that frames its messages (they all encrypt) must not leave the plaintext in `out`. */
static void check_wire_only(const struct proto_vt *vt, const struct buf *out, const uint8_t *msg,
                            size_t n)
{
    if (vt->flags & PROTO_F_UNFRAMED)
        return; /* plain: the wire bytes are the text */
    size_t w = n < 16 ? n : 16;
    CHECK(memmem(buf_head(out), buf_len(out), msg, w) == NULL);
    CHECK(memmem(buf_head(out), buf_len(out), msg + n - w, w) == NULL);
}

/* A TCP pair: the handshake, then one message of exactly stream_max bytes (one byte more
 * is refused by conn_write) from the client to the server and back. */
static void check_stream(const struct proto_vt *vt)
{
    struct side cli, srv;
    side_init(&cli, vt, PROTO_CLIENT, false);
    side_init(&srv, vt, PROTO_SERVER, false);
    CHECK_INT(proto_conn_new(vt, srv.ctx, PROTO_SERVER, &srv.out, &srv.conn), 0);
    CHECK_INT(proto_conn_new(vt, cli.ctx, PROTO_CLIENT, &cli.out, &cli.conn), 0);
    for (int round = 0; round < 16; round++) {
        bool a = stream_pump(&srv, &cli), b = stream_pump(&cli, &srv);
        if (!a && !b)
            break;
    }
    CHECK_INT(cli.err, 0);
    CHECK_INT(srv.err, 0);
    CHECK(vt->conn_ready(cli.conn) && vt->conn_ready(srv.conn));

    bool unlimited = vt->stream_max == SIZE_MAX;
    size_t n = unlimited ? UNLIMITED_TRY : vt->stream_max;
    uint8_t *msg = malloc(n + 1);
    fill(vt, msg, n + 1);
    if (!unlimited) {
        size_t before = buf_len(&cli.out);
        CHECK(vt->conn_write(cli.conn, msg, n + 1, &cli.out) < 0);
        CHECK_INT(buf_len(&cli.out), before);
    }
    fill(vt, msg, n);
    CHECK_INT(vt->conn_write(cli.conn, msg, n, &cli.out), 0);
    check_wire_only(vt, &cli.out, msg, n);
    stream_pump(&cli, &srv);
    CHECK_INT(srv.err, 0);
    CHECK_INT(srv.msgs, 1);
    CHECK_INT(buf_len(&srv.got), n);
    CHECK(buf_len(&srv.got) == n && memcmp(buf_head(&srv.got), msg, n) == 0);
    CHECK_INT(vt->conn_write(srv.conn, buf_head(&srv.got), buf_len(&srv.got), &srv.out), 0);
    check_wire_only(vt, &srv.out, msg, n);
    stream_pump(&srv, &cli);
    CHECK_INT(cli.err, 0);
    CHECK_INT(cli.msgs, 1);
    CHECK(buf_len(&cli.got) == n && memcmp(buf_head(&cli.got), msg, n) == 0);
    free(msg);
    side_free(&cli);
    side_free(&srv);
}

/* The server side of one datagram, as the UDP engine does it: a datagram from an address
 * without a session goes to dgram_new first. The answer (if any) is left in srv->out. */
static void dgram_to_server(struct side *srv, const struct sockaddr_in *peer, const uint8_t *p,
                            size_t n)
{
    const struct proto_vt *vt = srv->vt;
    struct proto_msg m = {0};
    buf_reset(&srv->out);
    if (!srv->conn) {
        int r =
            vt->dgram_new(srv->ctx, (const struct sockaddr *)peer, sizeof(*peer), p, n, &srv->out);
        if (r == PROTO_DROP)
            return;
        CHECK_INT(r, 1);
        if (r != 1 || proto_conn_new(vt, srv->ctx, PROTO_SERVER, &srv->out, &srv->conn) < 0) {
            srv->err = r < 0 ? r : PROTO_E_STATE;
            return;
        }
    }
    int r = vt->dgram_read(srv->conn, p, n, &srv->out, &m);
    if (r == PROTO_MSG)
        take(srv, &m);
    else if (r < 0 && r != PROTO_DROP)
        srv->err = r;
}

static void dgram_to_client(struct side *cli, const uint8_t *p, size_t n)
{
    struct proto_msg m = {0};
    buf_reset(&cli->out);
    int r = cli->vt->dgram_read(cli->conn, p, n, &cli->out, &m);
    if (r == PROTO_MSG)
        take(cli, &m);
    else if (r < 0 && r != PROTO_DROP)
        cli->err = r;
}

/* A UDP pair: the exchange of greeting, cookie and handshake datagrams, then one message of
 * exactly dgram_max bytes (one byte more is refused by dgram_write) there and back; every
 * datagram fits one IPv4 UDP payload. */
static void check_dgram(const struct proto_vt *vt)
{
    struct side cli, srv;
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    side_init(&cli, vt, PROTO_CLIENT, true);
    side_init(&srv, vt, PROTO_SERVER, true);
    CHECK_INT(proto_conn_new(vt, cli.ctx, PROTO_CLIENT, &cli.out, &cli.conn), 0);
    uint8_t *dgram = malloc(1 << 17);
    for (int round = 0; round < 16 && !buf_empty(&cli.out) && !cli.err && !srv.err; round++) {
        size_t n = buf_len(&cli.out);
        CHECK(n <= IPV4_UDP_MAX);
        memcpy(dgram, buf_head(&cli.out), n);
        dgram_to_server(&srv, &peer, dgram, n);
        if (buf_empty(&srv.out)) {
            buf_reset(&cli.out);
            break;
        }
        n = buf_len(&srv.out);
        CHECK(n <= IPV4_UDP_MAX);
        memcpy(dgram, buf_head(&srv.out), n);
        dgram_to_client(&cli, dgram, n);
    }
    CHECK_INT(cli.err, 0);
    CHECK_INT(srv.err, 0);
    CHECK(vt->conn_ready(cli.conn));

    size_t n = vt->dgram_max;
    uint8_t *msg = malloc(n + 1);
    fill(vt, msg, n + 1);
    buf_reset(&cli.out);
    CHECK(vt->dgram_write(cli.conn, msg, n + 1, &cli.out) < 0);
    CHECK(buf_empty(&cli.out));
    fill(vt, msg, n);
    CHECK_INT(vt->dgram_write(cli.conn, msg, n, &cli.out), 0);
    CHECK(buf_len(&cli.out) <= IPV4_UDP_MAX);
    memcpy(dgram, buf_head(&cli.out), buf_len(&cli.out));
    dgram_to_server(&srv, &peer, dgram, buf_len(&cli.out));
    CHECK_INT(srv.err, 0);
    CHECK_INT(srv.msgs, 1);
    CHECK(srv.conn && vt->conn_ready(srv.conn));
    CHECK(buf_len(&srv.got) == n && memcmp(buf_head(&srv.got), msg, n) == 0);
    if (srv.conn && srv.msgs == 1) {
        buf_reset(&srv.out);
        CHECK_INT(vt->dgram_write(srv.conn, buf_head(&srv.got), n, &srv.out), 0);
        CHECK(buf_len(&srv.out) <= IPV4_UDP_MAX);
        memcpy(dgram, buf_head(&srv.out), buf_len(&srv.out));
        dgram_to_client(&cli, dgram, buf_len(&srv.out));
        CHECK_INT(cli.err, 0);
        CHECK_INT(cli.msgs, 1);
        CHECK(buf_len(&cli.got) == n && memcmp(buf_head(&cli.got), msg, n) == 0);
    }
    free(msg);
    free(dgram);
    side_free(&cli);
    side_free(&srv);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(server_key, sizeof(server_key), "%s/server.key", tmpdir);
    snprintf(client_key, sizeof(client_key), "%s/id.key", tmpdir);
    snprintf(known_hosts, sizeof(known_hosts), "%s/known_hosts", tmpdir);

    size_t count = 0;
    while (proto_at(count))
        count++;
    CHECK(count >= 1);
    CHECK(proto_at(count) == NULL && proto_at(count + 1) == NULL && proto_at(SIZE_MAX) == NULL);
    CHECK(proto_find("") == NULL && proto_find("no-such-protocol") == NULL);

    for (size_t i = 0; i < count; i++) {
        const struct proto_vt *vt = proto_at(i);
        check_answers(vt, i);
        check_stream(vt);
        if (proto_has_dgram(vt))
            check_dgram(vt);
    }

    unlink(server_key);
    unlink(client_key);
    unlink(known_hosts);
    rmdir(tmpdir);
    return CHECK_DONE();
}
