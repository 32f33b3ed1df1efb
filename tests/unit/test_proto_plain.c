/* SPDX-License-Identifier: MIT */
/* Unit tests for the plain protocol (line splitting) and the shared message handling
 * (terminator trimming, command matching, shutdown policy), without sockets. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "check.h"
#include "proto.h"
#include "server.h"

struct collected {
    char lines[16][64];
    int n;
    size_t echoed;
};

/* Feeds `in` in pieces of `step` bytes; collects whole lines and echoed byte counts. */
static void feed(const char *in, size_t len, size_t step, struct collected *c)
{
    struct proto_opts o = {.max_msg = 1000};
    void *ctx = NULL;
    char err[PROTO_ERRLEN];
    CHECK_INT(proto_plain.ctx_new(&o, PROTO_SERVER, &ctx, err, sizeof(err)), 0);
    uint8_t conn[64] = {0};
    CHECK(proto_plain.conn_size <= sizeof(conn));
    struct buf out;
    buf_init(&out, 1 << 16);
    CHECK_INT(proto_plain.conn_init(conn, ctx, PROTO_SERVER, &out), 0);
    struct server_msg m;
    server_msg_reset(&m);
    memset(c, 0, sizeof(*c));
    for (size_t off = 0; off < len; off += step) {
        size_t chunk = len - off < step ? len - off : step;
        const uint8_t *p = (const uint8_t *)in + off;
        for (;;) {
            size_t used = chunk;
            struct proto_msg msg;
            int r = proto_plain.conn_read(conn, p, &used, &out, &msg);
            if (r == PROTO_NEED_MORE)
                break;
            CHECK_INT(r, PROTO_MSG);
            if (msg.first)
                server_msg_reset(&m);
            server_msg_add(&m, msg.data, msg.len);
            c->echoed += msg.len;
            if (msg.last) {
                server_msg_trim_eol(&m);
                snprintf(c->lines[c->n++ % 16], 64, "%.*s", (int)m.headlen, m.head);
            }
            p += used;
            chunk -= used;
        }
    }
    proto_plain.conn_free(conn);
    proto_plain.ctx_free(ctx);
    buf_free(&out);
}

static void test_lines_every_split(void)
{
    const char in[] = "hello\r\nworld\n\nexit\npartial";
    for (size_t step = 1; step <= sizeof(in); step++) {
        struct collected c;
        feed(in, sizeof(in) - 1, step, &c);
        CHECK_INT(c.n, 4);
        CHECK_STR(c.lines[0], "hello");
        CHECK_STR(c.lines[1], "world");
        CHECK_STR(c.lines[2], "");
        CHECK_STR(c.lines[3], "exit");
        CHECK_INT(c.echoed, sizeof(in) - 1); /* every byte echoed, partial line too */
    }
}

static void test_max_msg(void)
{
    struct proto_opts o = {.max_msg = 8};
    void *ctx = NULL;
    char err[PROTO_ERRLEN];
    CHECK_INT(proto_plain.ctx_new(&o, PROTO_SERVER, &ctx, err, sizeof(err)), 0);
    uint8_t conn[64] = {0};
    struct buf out;
    buf_init(&out, 64);
    CHECK_INT(proto_plain.conn_init(conn, ctx, PROTO_SERVER, &out), 0);
    struct proto_msg msg;
    size_t used = 9;
    CHECK_INT(proto_plain.conn_read(conn, (const uint8_t *)"12345678\n", &used, &out, &msg),
              PROTO_MSG); /* 8 bytes + newline is allowed */
    used = 5;
    CHECK_INT(proto_plain.conn_read(conn, (const uint8_t *)"12345", &used, &out, &msg), PROTO_MSG);
    used = 4;
    CHECK_INT(proto_plain.conn_read(conn, (const uint8_t *)"6789", &used, &out, &msg),
              PROTO_E_TOOBIG);
    used = 100;
    uint8_t big[100] = {0};
    CHECK_INT(proto_plain.dgram_read(conn, big, sizeof(big), &out, &msg), PROTO_E_TOOBIG);
    proto_plain.ctx_free(ctx);
    buf_free(&out);
}

static void test_trim(void)
{
    struct server_msg m;
    const char *cases[][2] = {
        {"exit\n", "exit"}, {"exit\r\n", "exit"}, {"exit", "exit"}, {"\n", ""},
        {"a\r", "a\r"},     {"\r\n", ""},         {"x\n\n", "x\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        server_msg_reset(&m);
        /* byte by byte, so the tail tracking is exercised */
        for (const char *p = cases[i][0]; *p; p++)
            server_msg_add(&m, (const uint8_t *)p, 1);
        server_msg_trim_eol(&m);
        CHECK_INT(m.total, strlen(cases[i][1]));
        CHECK_MEM(m.head, cases[i][1], m.headlen);
    }
    /* Long lines: head keeps 256 bytes, total counts all, terminator still trimmed. */
    server_msg_reset(&m);
    uint8_t big[300];
    memset(big, 'a', sizeof(big));
    big[298] = '\r';
    big[299] = '\n';
    server_msg_add(&m, big, sizeof(big));
    server_msg_trim_eol(&m);
    CHECK_INT(m.total, 298);
    CHECK_INT(m.headlen, LOG_TEXT_BYTES);
}

static enum server_action act_for(enum server_allow allow, const char *ip, int admin,
                                  const char *text)
{
    struct server srv;
    memset(&srv, 0, sizeof(srv));
    srv.conf.allow_shutdown = allow;
    srv.conf.proto = &proto_plain;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    struct server_msg m;
    server_msg_reset(&m);
    server_msg_add(&m, (const uint8_t *)text, strlen(text));
    return server_on_message(&srv, 1, ip, (struct sockaddr *)&sa, admin, &m);
}

static void test_commands(void)
{
    CHECK_INT(act_for(ALLOW_LOOPBACK, "127.0.0.1", -1, "hello"), ACT_ECHO);
    CHECK_INT(act_for(ALLOW_LOOPBACK, "127.0.0.1", -1, "exit"), ACT_EXIT);
    CHECK_INT(act_for(ALLOW_LOOPBACK, "127.0.0.1", -1, "exit "), ACT_ECHO);
    CHECK_INT(act_for(ALLOW_LOOPBACK, "127.0.0.1", -1, "EXIT"), ACT_ECHO);
    CHECK_INT(act_for(ALLOW_LOOPBACK, "127.0.0.1", -1, "shutdown"), ACT_SHUTDOWN);
    CHECK_INT(act_for(ALLOW_LOOPBACK, "127.5.0.1", -1, "shutdown"), ACT_SHUTDOWN);
    CHECK_INT(act_for(ALLOW_LOOPBACK, "192.0.2.1", -1, "shutdown"), ACT_DENIED);
    CHECK_INT(act_for(ALLOW_ANY, "192.0.2.1", -1, "shutdown"), ACT_SHUTDOWN);
    CHECK_INT(act_for(ALLOW_NONE, "127.0.0.1", -1, "shutdown"), ACT_DENIED);
    /* A protocol's opinion (secure: --admins) overrides the address policy. */
    CHECK_INT(act_for(ALLOW_ANY, "127.0.0.1", 0, "shutdown"), ACT_DENIED);
    CHECK_INT(act_for(ALLOW_NONE, "192.0.2.1", 1, "shutdown"), ACT_SHUTDOWN);
}

int main(void)
{
    test_lines_every_split();
    test_max_msg();
    test_trim();
    test_commands();
    return CHECK_DONE();
}
