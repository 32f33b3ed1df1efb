/* SPDX-License-Identifier: MIT */
/* The UDP cookie under a test clock: valid in its period and the next, refused for another
 * address, after expiry, forged or from another secret; the documented formula byte for
 * byte; "none" for all zeros; unsupported address families. */
#include "check.h"
#include "crypto.h"
#include "proto.h"
#include "secure_cookie.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/un.h>

/* The test clock: whatever the test last set. */
static uint64_t test_now(void *arg)
{
    return *(const uint64_t *)arg;
}

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(port)};
    CHECK_INT(inet_pton(AF_INET, ip, &s.sin_addr), 1);
    return s;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port)
{
    struct sockaddr_in6 s = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    CHECK_INT(inet_pton(AF_INET6, ip, &s.sin6_addr), 1);
    return s;
}

/* Checks cookie for sa; returns the result (-1 if the call itself failed). */
static int check_at(const struct secure_cookie *k, const void *sa, const uint8_t *cookie)
{
    enum secure_cookie_result res = SECURE_COOKIE_VALID;
    int r = secure_cookie_check(k, sa, cookie, &res);
    CHECK_INT(r, 0);
    return r == 0 ? (int)res : -1;
}

static void test_valid_and_address(void)
{
    uint64_t now = 5000;
    struct secure_cookie k;
    uint8_t c[SECURE_COOKIE_LEN], c6[SECURE_COOKIE_LEN], again[SECURE_COOKIE_LEN];
    CHECK_INT(secure_cookie_init(&k, test_now, &now), 0);
    struct sockaddr_in a = v4("192.0.2.1", 5000);
    struct sockaddr_in6 a6 = v6("2001:db8::1", 5000);
    CHECK_INT(secure_cookie_make(&k, (const void *)&a, c), 0);
    CHECK_INT(check_at(&k, &a, c), SECURE_COOKIE_VALID);
    /* The same address in the same period gets the same cookie (no state per client). */
    CHECK_INT(secure_cookie_make(&k, (const void *)&a, again), 0);
    CHECK_MEM(again, c, sizeof(c));

    /* Another port, another address, another family: each refused. */
    struct sockaddr_in port = v4("192.0.2.1", 5001), host = v4("192.0.2.2", 5000);
    struct sockaddr_in6 mapped = v6("::ffff:192.0.2.1", 5000);
    CHECK_INT(check_at(&k, &port, c), SECURE_COOKIE_INVALID);
    CHECK_INT(check_at(&k, &host, c), SECURE_COOKIE_INVALID);
    CHECK_INT(check_at(&k, &mapped, c), SECURE_COOKIE_INVALID);

    CHECK_INT(secure_cookie_make(&k, (const void *)&a6, c6), 0);
    CHECK(memcmp(c6, c, sizeof(c)) != 0);
    CHECK_INT(check_at(&k, &a6, c6), SECURE_COOKIE_VALID);
    CHECK_INT(check_at(&k, &a6, c), SECURE_COOKIE_INVALID);
    CHECK_INT(check_at(&k, &a, c6), SECURE_COOKIE_INVALID);
}

static void test_expiry(void)
{
    /* Period 41 is seconds 4920..5039, period 42 is 5040..5159. */
    uint64_t now = 4920;
    struct secure_cookie k;
    uint8_t first[SECURE_COOKIE_LEN], last[SECURE_COOKIE_LEN];
    struct sockaddr_in a = v4("198.51.100.7", 40000);
    CHECK_INT(secure_cookie_init(&k, test_now, &now), 0);
    CHECK_INT(secure_cookie_make(&k, (const void *)&a, first), 0); /* first second of 41 */
    now = 5039;
    CHECK_INT(secure_cookie_make(&k, (const void *)&a, last), 0); /* last second of 41 */
    CHECK_MEM(first, last, sizeof(first));
    now = 5040; /* the next period: the previous period's cookie still holds */
    CHECK_INT(check_at(&k, &a, first), SECURE_COOKIE_VALID);
    uint8_t fresh[SECURE_COOKIE_LEN];
    CHECK_INT(secure_cookie_make(&k, (const void *)&a, fresh), 0);
    CHECK(memcmp(fresh, first, sizeof(fresh)) != 0); /* a new period, a new cookie */
    now = 5159;
    CHECK_INT(check_at(&k, &a, last), SECURE_COOKIE_VALID);
    now = 5160; /* two periods on: expired, and so is any cookie older than that */
    CHECK_INT(check_at(&k, &a, first), SECURE_COOKIE_INVALID);
    CHECK_INT(check_at(&k, &a, last), SECURE_COOKIE_INVALID);
    CHECK_INT(check_at(&k, &a, fresh), SECURE_COOKIE_VALID);
    now = 1000000;
    CHECK_INT(check_at(&k, &a, fresh), SECURE_COOKIE_INVALID);
    /* A cookie from the future (a clock that went backwards would need one) is refused. */
    now = 4919;
    CHECK_INT(check_at(&k, &a, fresh), SECURE_COOKIE_INVALID);
}

static void test_forged(void)
{
    uint64_t now = 777;
    struct secure_cookie k, other;
    uint8_t c[SECURE_COOKIE_LEN], bad[SECURE_COOKIE_LEN], zero[SECURE_COOKIE_LEN] = {0};
    struct sockaddr_in a = v4("203.0.113.9", 9);
    CHECK_INT(secure_cookie_init(&k, test_now, &now), 0);
    CHECK_INT(secure_cookie_init(&other, test_now, &now), 0);
    CHECK(memcmp(k.secret, other.secret, sizeof(k.secret)) != 0);
    CHECK_INT(secure_cookie_make(&k, (const void *)&a, c), 0);

    /* Every single flipped bit is caught. */
    for (size_t bit = 0; bit < 8 * SECURE_COOKIE_LEN; bit++) {
        memcpy(bad, c, sizeof(bad));
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK_INT(check_at(&k, &a, bad), SECURE_COOKIE_INVALID);
    }
    /* Random bytes, and a genuine cookie of another server (another secret). */
    CHECK_INT(crypto_random(bad, sizeof(bad)), 0);
    bad[0] |= 1; /* never all zero */
    CHECK_INT(check_at(&k, &a, bad), SECURE_COOKIE_INVALID);
    CHECK_INT(secure_cookie_make(&other, (const void *)&a, bad), 0);
    CHECK_INT(check_at(&k, &a, bad), SECURE_COOKIE_INVALID);
    CHECK_INT(check_at(&other, &a, bad), SECURE_COOKIE_VALID);
    /* All zeros: the client has none yet, which is not a forgery. */
    CHECK_INT(check_at(&k, &a, zero), SECURE_COOKIE_NONE);
}

/* docs/PROTOCOL.md: cookie = HMAC-SHA256(K_t, A)[0..15],
 * K_t = HMAC-SHA256(secret, "secho/1 cookie" || u64be(t)), A = 4 || addr || port. */
static void test_formula(void)
{
    uint64_t now = 120 * 3 + 5; /* t = 3 */
    struct secure_cookie k;
    uint8_t c[SECURE_COOKIE_LEN], kt[CRYPTO_HASHMAX], mac[CRYPTO_HASHMAX];
    static const uint8_t tbytes[] = "secho/1 cookie\0\0\0\0\0\0\0\3";
    static const uint8_t addr[] = {4, 10, 1, 2, 3, 0x1f, 0x90};
    struct sockaddr_in a = v4("10.1.2.3", 8080);
    CHECK_INT(secure_cookie_init(&k, test_now, &now), 0);
    for (size_t i = 0; i < sizeof(k.secret); i++)
        k.secret[i] = (uint8_t)i;
    CHECK_INT(secure_cookie_make(&k, (const void *)&a, c), 0);
    CHECK_INT(crypto_hmac(CRYPTO_SHA256, k.secret, sizeof(k.secret), tbytes, sizeof(tbytes) - 1,
                          NULL, 0, kt),
              0);
    CHECK_INT(crypto_hmac(CRYPTO_SHA256, kt, 32, addr, sizeof(addr), NULL, 0, mac), 0);
    CHECK_MEM(c, mac, SECURE_COOKIE_LEN);
}

static void test_family(void)
{
    uint64_t now = 1;
    struct secure_cookie k;
    struct sockaddr_un u = {.sun_family = AF_UNIX};
    uint8_t c[SECURE_COOKIE_LEN] = {1};
    enum secure_cookie_result res = SECURE_COOKIE_VALID;
    CHECK_INT(secure_cookie_init(&k, test_now, &now), 0);
    CHECK_INT(secure_cookie_make(&k, (const void *)&u, c), -EAFNOSUPPORT);
    CHECK_INT(secure_cookie_check(&k, (const void *)&u, c, &res), -EAFNOSUPPORT);
    CHECK_INT(res, SECURE_COOKIE_INVALID);
}

int main(void)
{
    test_valid_and_address();
    test_expiry();
    test_forged();
    test_formula();
    test_family();
    return CHECK_DONE();
}
