/* SPDX-License-Identifier: MIT */
/* libFuzzer target: plain's line splitting (through the proto vtable, TCP and UDP) and the
 * server's message policy (service.c: the log record of a message and the `exit` and
 * `shutdown` commands), without I/O.
 *
 * data[0]: how the stream is cut into reads (0 = one read, else reads of that many bytes);
 * data[1]: bits 0-1 --max-msg (0 none, 4, 8, 65535), bits 2-3 --allow-shutdown (any,
 * loopback, none), bit 4 the peer is loopback, bits 5-6 the protocol's opinion of the peer
 * (none, no, yes). The rest is what the peer sends.
 * Oracles (the rules written here again, from SPEC "Messages and commands"):
 *   - conn_read hands out every byte once, in order, without copying (the message is the
 *     input at the consumed offset); a message holds at most one '\n', its last byte exactly
 *     when m.last; m.first exactly at the start of the stream and after a last fragment;
 *   - each line, its fragments added to a server_msg as service.c does, is a command
 *     exactly when, without its "\n" or "\r\n", it is `exit` or `shutdown` and not longer
 *     than --max-msg; `shutdown` is allowed per the protocol's opinion, else per
 *     --allow-shutdown and the peer's address; everything else is echoed;
 *   - as a UDP datagram, the same line is one message, refused when above --max-msg. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fuzz_util.h"
#include "proto.h"
#include "service.h"

static void *ctx[4];
static const size_t max_msgs[4] = {0, 4, 8, 65535};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[PROTO_ERRLEN];
    for (int i = 0; i < 4; i++) {
        struct proto_opts o = {.max_msg = max_msgs[i]};
        if (proto_plain.ctx_new(&o, PROTO_SERVER, &ctx[i], err, sizeof(err)) != 0)
            abort();
    }
    return 0;
}

/* What the policy must do with a whole line (with its '\n'). */
static enum server_action expected(const uint8_t *line, size_t n, size_t max_msg,
                                   enum server_allow allow, bool loopback, int admin)
{
    if (n > 0 && line[n - 1] == '\n')
        n--;
    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (max_msg && n > max_msg)
        return ACT_ECHO;
    if (n == 4 && memcmp(line, "exit", 4) == 0)
        return ACT_EXIT;
    if (n != 8 || memcmp(line, "shutdown", 8) != 0)
        return ACT_ECHO;
    bool ok = admin >= 0 ? admin == 1 : allow == ALLOW_ANY || (allow == ALLOW_LOOPBACK && loopback);
    return ok ? ACT_SHUTDOWN : ACT_DENIED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static _Alignas(max_align_t) uint8_t conn[256];
    if (size < 2 || proto_plain.conn_size > sizeof(conn))
        return 0;
    size_t chunk = data[0] ? data[0] : size;
    uint8_t opt = data[1];
    data += 2;
    size -= 2;
    int mi = opt & 3;
    enum server_allow allow = (enum server_allow)((opt >> 2) & 3) % 3;
    bool loopback = opt & 0x10;
    int admin = (int)((opt >> 5) & 3) % 3 - 1;

    struct server srv;
    memset(&srv, 0, sizeof(srv));
    srv.conf.proto = &proto_plain;
    srv.conf.popts.max_msg = max_msgs[mi];
    srv.conf.allow_shutdown = allow;
    srv.pctx = ctx[mi];
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(4000)};
    peer.sin_addr.s_addr = htonl(loopback ? INADDR_LOOPBACK : 0xC0000201); /* 192.0.2.1 */

    struct buf out;
    buf_init(&out, 1 << 16);
    memset(conn, 0, proto_plain.conn_size);
    FUZZ_CHECK(proto_plain.conn_init(conn, ctx[mi], PROTO_SERVER, &out) == 0);
    FUZZ_CHECK(proto_plain.conn_ready(conn) && buf_empty(&out));

    struct server_msg msg;
    server_msg_reset(&msg);
    size_t off = 0, line_start = 0;
    bool at_start = true;
    while (off < size) {
        size_t end = off + chunk < size ? off + chunk : size;
        while (off < end) {
            struct proto_msg m;
            size_t n = end - off;
            int r = proto_plain.conn_read(conn, data + off, &n, &out, &m);
            FUZZ_CHECK(r == PROTO_MSG);
            FUZZ_CHECK(n >= 1 && n <= end - off && m.data == data + off && m.len == n);
            const uint8_t *nl = memchr(m.data, '\n', m.len);
            FUZZ_CHECK(m.last == (nl != NULL) && (!nl || nl == m.data + m.len - 1));
            FUZZ_CHECK(m.first == at_start);
            at_start = m.last;
            off += n;
            if (m.first)
                server_msg_reset(&msg);
            server_msg_add(&msg, m.data, m.len);
            if (!m.last)
                continue;
            /* A whole line: the policy, as server_on_conn_message runs it. */
            server_msg_trim_eol(&msg);
            enum server_action act =
                server_on_message(&srv, 1, "peer", (const struct sockaddr *)&peer, admin, &msg);
            FUZZ_CHECK(act == expected(data + line_start, off - line_start, max_msgs[mi], allow,
                                       loopback, admin));
            FUZZ_CHECK(msg.total + msg.eol == off - line_start);
            FUZZ_CHECK(msg.headlen == (msg.total < LOG_TEXT_BYTES ? msg.total : LOG_TEXT_BYTES));
            FUZZ_CHECK(memcmp(msg.head, data + line_start, msg.headlen) == 0);
            /* The same line as one UDP datagram. */
            struct proto_msg d;
            r = proto_plain.dgram_read(conn, data + line_start, off - line_start, &out, &d);
            if (max_msgs[mi] && off - line_start > max_msgs[mi])
                FUZZ_CHECK(r == PROTO_E_TOOBIG);
            else
                FUZZ_CHECK(r == PROTO_MSG && d.data == data + line_start &&
                           d.len == off - line_start && d.first && d.last);
            line_start = off;
        }
        /* Nothing left over: an empty read is no message. */
        size_t zero = 0;
        struct proto_msg m;
        FUZZ_CHECK(proto_plain.conn_read(conn, data + off, &zero, &out, &m) == PROTO_NEED_MORE);
    }
    /* Plain adds nothing of its own to what is echoed. */
    FUZZ_CHECK(buf_empty(&out));
    proto_plain.conn_free(conn);
    buf_free(&out);
    return 0;
}
