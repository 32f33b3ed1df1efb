/* SPDX-License-Identifier: MIT */
/* Unit tests for address parsing and formatting, resolving to every address, and listening
 * groups that no one else's socket can be part of. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "net.h"

static void test_ports(void)
{
    uint16_t p = 1;
    CHECK(net_parse_port("0", &p) && p == 0);
    CHECK(net_parse_port("9090", &p) && p == 9090);
    CHECK(net_parse_port("65535", &p) && p == 65535);
    CHECK(!net_parse_port("65536", &p));
    CHECK(!net_parse_port("", &p));
    CHECK(!net_parse_port("-1", &p));
    CHECK(!net_parse_port("+80", &p));
    CHECK(!net_parse_port("80x", &p));
    CHECK(!net_parse_port(" 80", &p));
    CHECK(!net_parse_port("99999999999999999999", &p));
}

static void test_resolve_format(void)
{
    struct net_addr a;
    char err[128], text[NET_ADDRSTRLEN];
    CHECK_INT(net_resolve("127.0.0.1", 9090, SOCK_STREAM, &a, err, sizeof(err)), 0);
    net_format_addr((struct sockaddr *)&a.ss, text, sizeof(text));
    CHECK_STR(text, "127.0.0.1:9090");
    CHECK(net_is_loopback((struct sockaddr *)&a.ss));
    CHECK_INT(net_resolve("::1", 7, SOCK_DGRAM, &a, err, sizeof(err)), 0);
    net_format_addr((struct sockaddr *)&a.ss, text, sizeof(text));
    CHECK_STR(text, "[::1]:7");
    CHECK(net_is_loopback((struct sockaddr *)&a.ss));
    CHECK_INT(net_resolve("10.1.2.3", 80, SOCK_STREAM, &a, err, sizeof(err)), 0);
    CHECK(!net_is_loopback((struct sockaddr *)&a.ss));
    CHECK(net_resolve("no such host.invalid", 80, SOCK_STREAM, &a, err, sizeof(err)) < 0);
    CHECK(err[0] != '\0');

    /* IPv4-mapped IPv6 shows (and counts) as IPv4. */
    struct sockaddr_in6 m = {.sin6_family = AF_INET6, .sin6_port = htons(5)};
    inet_pton(AF_INET6, "::ffff:127.0.0.2", &m.sin6_addr);
    net_format_addr((struct sockaddr *)&m, text, sizeof(text));
    CHECK_STR(text, "127.0.0.2:5");
    CHECK(net_is_loopback((struct sockaddr *)&m));
}

static void test_hostport(void)
{
    char text[128];
    net_format_hostport("example.org", 9090, text, sizeof(text));
    CHECK_STR(text, "example.org:9090");
    net_format_hostport("::1", 9090, text, sizeof(text));
    CHECK_STR(text, "[::1]:9090");
}

static void test_equal(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1)};
    struct sockaddr_in b = a;
    a.sin_addr.s_addr = b.sin_addr.s_addr = htonl(0x7f000001);
    CHECK(net_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
    b.sin_port = htons(2);
    CHECK(!net_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
}

static void test_resolve_all(void)
{
    struct net_addr a[4];
    char err[128], text[NET_ADDRSTRLEN];
    CHECK_INT(net_resolve_all("127.0.0.1", 80, SOCK_STREAM, a, 4, err, sizeof(err)), 1);
    net_format_addr((struct sockaddr *)&a[0].ss, text, sizeof(text));
    CHECK_STR(text, "127.0.0.1:80");
    CHECK_INT(net_resolve_all("::1", 81, SOCK_DGRAM, a, 4, err, sizeof(err)), 1);
    net_format_addr((struct sockaddr *)&a[0].ss, text, sizeof(text));
    CHECK_STR(text, "[::1]:81");
    /* localhost names at least one loopback address, each once. */
    int n = net_resolve_all("localhost", 82, SOCK_STREAM, a, 4, err, sizeof(err));
    CHECK(n >= 1);
    for (int i = 0; i < n; i++) {
        CHECK(net_is_loopback((struct sockaddr *)&a[i].ss));
        for (int j = 0; j < i; j++)
            CHECK(!net_addr_equal((struct sockaddr *)&a[i].ss, (struct sockaddr *)&a[j].ss));
    }
    CHECK_INT(net_resolve_all("localhost", 82, SOCK_STREAM, a, 1, err, sizeof(err)), 1);
    err[0] = '\0';
    CHECK_INT(net_resolve_all("no such host.invalid", 80, SOCK_STREAM, a, 4, err, sizeof(err)), -1);
    CHECK(err[0] != '\0');
}

static struct net_addr loopback4(uint16_t port)
{
    struct net_addr a = {.len = sizeof(struct sockaddr_in)};
    struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static uint16_t port_of(const struct net_addr *a)
{
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* Which of the n non-blocking sockets has something to accept or receive: a bit each. */
static unsigned drain(int *fds, int n, int socktype)
{
    unsigned seen = 0;
    for (int i = 0; i < n; i++) {
        for (;;) {
            char b[16];
            int r = socktype == SOCK_STREAM ? accept(fds[i], NULL, NULL)
                                            : (int)recv(fds[i], b, sizeof(b), 0);
            if (r < 0)
                break;
            if (socktype == SOCK_STREAM)
                close(r);
            seen |= 1U << i;
        }
    }
    return seen;
}

static void test_group(int socktype)
{
    enum { N = 3, CLIENTS = 60 };
    int fds[N], other[N];
    struct net_addr any = loopback4(0), bound, b2;
    CHECK_INT(net_listen_group(&any, socktype, N, 0, fds, &bound), 0);
    uint16_t port = port_of(&bound);
    CHECK(port != 0);

    /* Nobody joins: not another group, not one exclusive socket, not SO_REUSEPORT alone. */
    struct net_addr same = loopback4(port);
    CHECK_INT(net_listen_group(&same, socktype, N, 0, other, &b2), -EADDRINUSE);
    CHECK_INT(net_listen_group(&same, socktype, 1, 0, other, &b2), -EADDRINUSE);
    if (socktype == SOCK_DGRAM)
        CHECK_INT(net_bind_udp(&same, 0), -EADDRINUSE);
    else
        CHECK_INT(net_listen_tcp(&same, 0, 8), -EADDRINUSE);

    /* Every member, the first one too, gets its share (with 60 clients the chance that the
     * kernel's hash leaves one of three out is below 1e-10). */
    int cl[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = socket(AF_INET, socktype, 0);
        CHECK(cl[i] >= 0);
        CHECK_INT(connect(cl[i], (struct sockaddr *)&same.ss, same.len), 0);
        if (socktype == SOCK_DGRAM)
            CHECK_INT(send(cl[i], "x", 1, 0), 1);
    }
    unsigned seen = 0;
    for (int tries = 0; tries < 100 && seen != (1U << N) - 1; tries++) {
        poll(NULL, 0, 10);
        seen |= drain(fds, N, socktype);
    }
    CHECK_INT(seen, (1U << N) - 1);
    close_all(cl, CLIENTS);
    close_all(fds, N);
}

/* The group never joins a socket someone else bound (and, TCP, listens on), whatever
 * SO_REUSEADDR / SO_REUSEPORT that socket set. */
static void test_group_refuses_holder(int socktype, int reuseaddr, int reuseport)
{
    struct net_addr any = loopback4(0), bound;
    int h = socket(AF_INET, socktype, 0);
    CHECK(h >= 0);
    CHECK_INT(setsockopt(h, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof(reuseaddr)), 0);
    CHECK_INT(setsockopt(h, SOL_SOCKET, SO_REUSEPORT, &reuseport, sizeof(reuseport)), 0);
    CHECK_INT(bind(h, (struct sockaddr *)&any.ss, any.len), 0);
    if (socktype == SOCK_STREAM)
        CHECK_INT(listen(h, 8), 0);
    CHECK_INT(net_local_addr(h, &bound), 0);
    int fds[3];
    struct net_addr b2;
    CHECK_INT(net_listen_group(&bound, socktype, 3, 0, fds, &b2), -EADDRINUSE);
    CHECK_INT(net_listen_group(&bound, socktype, 1, 0, fds, &b2), -EADDRINUSE);
    close(h);
}

/* With NET_V6ONLY the IPv6 wildcard leaves IPv4 to a group of its own on the same port. */
static void test_v6only(void)
{
    struct net_addr a6, a4;
    char err[128];
    CHECK_INT(net_resolve_all("::", 0, SOCK_STREAM, &a6, 1, err, sizeof(err)), 1);
    CHECK_INT(net_resolve_all("0.0.0.0", 0, SOCK_STREAM, &a4, 1, err, sizeof(err)), 1);
    int fds6[2], fds4[2];
    struct net_addr b6, b4;
    int r = net_listen_group(&a6, SOCK_STREAM, 2, NET_V6ONLY, fds6, &b6);
    if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL) {
        fprintf(stderr, "test_v6only: no IPv6 here, skipped\n");
        return;
    }
    CHECK_INT(r, 0);
    ((struct sockaddr_in *)&a4.ss)->sin_port = ((struct sockaddr_in6 *)&b6.ss)->sin6_port;
    CHECK_INT(net_listen_group(&a4, SOCK_STREAM, 2, 0, fds4, &b4), 0);
    close_all(fds4, 2);
    close_all(fds6, 2);
}

int main(void)
{
    test_ports();
    test_resolve_format();
    test_hostport();
    test_equal();
    test_resolve_all();
    test_group(SOCK_STREAM);
    test_group(SOCK_DGRAM);
    for (int t = 0; t < 2; t++)
        for (int ra = 0; ra < 2; ra++)
            for (int rp = 0; rp < 2; rp++)
                test_group_refuses_holder(t ? SOCK_DGRAM : SOCK_STREAM, ra, rp);
    test_v6only();
    return CHECK_DONE();
}
