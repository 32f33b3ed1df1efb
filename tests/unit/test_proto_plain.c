/* SPDX-License-Identifier: MIT */
/* Unit tests for the plain protocol (line splitting) and the shared message handling
 * (terminator trimming, command matching, shutdown policy), without sockets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
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

/* RFC 862: no line is too long for plain TCP. --max-msg 8, then a 9-byte line, a line of
 * 3 MiB fed in 64 KiB reads, and a newline-free stream: every byte comes out as fragments of
 * one message (first on its first bytes only, last only at the newline), never an error. */
static void test_long_lines_flow(void)
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
              PROTO_MSG);
    CHECK(msg.first && msg.last && msg.len == 9 && used == 9);
    used = 5;
    CHECK_INT(proto_plain.conn_read(conn, (const uint8_t *)"12345", &used, &out, &msg), PROTO_MSG);
    CHECK(msg.first && !msg.last && msg.len == 5);
    used = 6;
    CHECK_INT(proto_plain.conn_read(conn, (const uint8_t *)"6789\nx", &used, &out, &msg),
              PROTO_MSG); /* 9 bytes before the newline: still one message */
    CHECK(!msg.first && msg.last && msg.len == 5 && used == 5);

    static uint8_t chunk[64 * 1024];
    memset(chunk, 'e', sizeof(chunk));
    memcpy(chunk, "exit", 4);
    size_t total = 0;
    for (int i = 0; i < 48; i++) {
        used = sizeof(chunk);
        CHECK_INT(proto_plain.conn_read(conn, chunk, &used, &out, &msg), PROTO_MSG);
        CHECK_INT(used, sizeof(chunk));
        CHECK(msg.data == chunk && msg.len == sizeof(chunk));
        CHECK(msg.first == (i == 0));
        CHECK(!msg.last);
        total += msg.len;
    }
    used = 2;
    CHECK_INT(proto_plain.conn_read(conn, (const uint8_t *)"z\n", &used, &out, &msg), PROTO_MSG);
    CHECK(!msg.first && msg.last && msg.len == 2);
    CHECK_INT(total + msg.len, 3 * 1024 * 1024 + 2);

    /* The next line starts afresh. */
    used = 4;
    CHECK_INT(proto_plain.conn_read(conn, (const uint8_t *)"ok\r\n", &used, &out, &msg), PROTO_MSG);
    CHECK(msg.first && msg.last && msg.len == 4);
    CHECK(buf_empty(&out)); /* the engine echoes; conn_read writes nothing */

    /* UDP is unchanged: a datagram above --max-msg is refused. */
    uint8_t big[100] = {0};
    CHECK_INT(proto_plain.dgram_read(conn, big, sizeof(big), &out, &msg), PROTO_E_TOOBIG);
    CHECK_INT(proto_plain.dgram_read(conn, big, 8, &out, &msg), PROTO_MSG);
    proto_plain.conn_free(conn);
    proto_plain.ctx_free(ctx);
    buf_free(&out);
}

/* The message policy for a line longer than --max-msg: what server_on_message logs (text cut
 * at the limit, truncated=1, bytes= the whole length) and that it is never a command, even
 * when its head or all of it says exit or shutdown. Returns the action; logline gets
 * everything logged. */
static enum server_action long_line_act(size_t max_msg, const uint8_t *p, size_t n, char *logline,
                                        size_t loglen)
{
    char path[] = "/tmp/secho-test-plain-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_INT(log_open(path), 0);
    struct server srv;
    memset(&srv, 0, sizeof(srv));
    srv.conf.allow_shutdown = ALLOW_ANY;
    srv.conf.log_messages = true;
    srv.conf.proto = &proto_plain;
    srv.conf.popts.max_msg = max_msg;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    struct server_msg m;
    server_msg_reset(&m);
    /* in pieces, as conn.c adds fragments */
    for (size_t off = 0; off < n; off += 1000)
        server_msg_add(&m, p + off, n - off < 1000 ? n - off : 1000);
    server_msg_trim_eol(&m);
    enum server_action act =
        server_on_message(&srv, 7, "127.0.0.1:1", (struct sockaddr *)&sa, -1, &m);
    log_close();
    FILE *f = fdopen(fd, "r");
    CHECK(f != NULL);
    size_t got = 0;
    if (f) {
        got = fread(logline, 1, loglen - 1, f);
        fclose(f);
    }
    logline[got] = '\0';
    unlink(path);
    return act;
}

static void test_long_line_policy(void)
{
    char line[8192];
    static uint8_t big[2 * 1024 * 1024 + 2];
    memset(big, 'x', sizeof(big));
    memcpy(big, "exit", 4);
    big[sizeof(big) - 2] = '\r';
    big[sizeof(big) - 1] = '\n';
    CHECK_INT(long_line_act(1 << 20, big, sizeof(big), line, sizeof(line)), ACT_ECHO);
    CHECK(strstr(line, " bytes=2097152 text=\"exitxxx") != NULL);
    CHECK(strstr(line, "xxx\" truncated=1\n") != NULL);

    /* Under a small --max-msg, the text is cut there and even "exit" is no command. */
    CHECK_INT(long_line_act(3, (const uint8_t *)"exit\n", 5, line, sizeof(line)), ACT_ECHO);
    CHECK(strstr(line, " bytes=4 text=\"exi\" truncated=1\n") != NULL);
    CHECK_INT(long_line_act(7, (const uint8_t *)"shutdown", 8, line, sizeof(line)), ACT_ECHO);
    CHECK(strstr(line, " bytes=8 text=\"shutdow\" truncated=1\n") != NULL);
    CHECK(strstr(line, "event=shutdown") == NULL);
    CHECK_INT(long_line_act(10, (const uint8_t *)"0123456789ABCDEF\n", 17, line, sizeof(line)),
              ACT_ECHO);
    CHECK(strstr(line, " bytes=16 text=\"0123456789\" truncated=1\n") != NULL);

    /* At the limit (the terminator, \r\n too, does not count) it is a command as before. */
    CHECK_INT(long_line_act(4, (const uint8_t *)"exit\r\n", 6, line, sizeof(line)), ACT_EXIT);
    CHECK(strstr(line, " bytes=4 text=\"exit\"\n") != NULL);
    CHECK_INT(long_line_act(8, (const uint8_t *)"shutdown\n", 9, line, sizeof(line)), ACT_SHUTDOWN);
    CHECK_INT(long_line_act(10, (const uint8_t *)"0123456789\n", 11, line, sizeof(line)), ACT_ECHO);
    CHECK(strstr(line, " bytes=10 text=\"0123456789\"\n") != NULL);
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
    test_long_lines_flow();
    test_long_line_policy();
    test_trim();
    test_commands();
    return CHECK_DONE();
}
