/* SPDX-License-Identifier: MIT */
/* Unit tests for address parsing and formatting. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

int main(void)
{
    test_ports();
    test_resolve_format();
    test_hostport();
    test_equal();
    return CHECK_DONE();
}
