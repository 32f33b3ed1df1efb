/* SPDX-License-Identifier: MIT */
/* secure over UDP: stateless cookies bound to the peer's address and the time period; a
 * forged source address can get a cookie sent to it, never learn it. */
#include "secure_cookie.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "proto.h"

uint64_t secure_cookie_monotonic(void *arg)
{
    struct timespec ts;
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

int secure_cookie_init(struct secure_cookie *k, secure_cookie_clock_fn now, void *now_arg)
{
    k->now = now;
    k->now_arg = now_arg;
    if (crypto_random(k->secret, sizeof(k->secret)) != 0)
        return PROTO_E_CRYPTO;
    return 0;
}

#define ADDR_MAX (1 + 16 + 2) /* family byte, IPv6 address, port */

/* A = family byte (4 or 6), address, port, in network order: what the cookie binds (the port
 * too, as WireGuard's). Returns its length, or 0 for another family. */
static size_t encode_addr(const struct sockaddr *sa, uint8_t a[static ADDR_MAX])
{
    const void *addr, *port;
    size_t alen;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const void *)sa;
        a[0] = 4;
        addr = &s4->sin_addr;
        alen = sizeof(s4->sin_addr);
        port = &s4->sin_port;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        a[0] = 6;
        addr = &s6->sin6_addr;
        alen = sizeof(s6->sin6_addr);
        port = &s6->sin6_port;
    } else {
        return 0;
    }
    memcpy(a + 1, addr, alen);
    memcpy(a + 1 + alen, port, 2);
    return 1 + alen + 2;
}

static int cookie_at(const struct secure_cookie *k, const uint8_t *a, size_t alen, uint64_t period,
                     uint8_t out[static SECURE_COOKIE_LEN])
{
    static const char label[] = "secho/1 cookie";
    uint8_t t[8], key[CRYPTO_HASHMAX], mac[CRYPTO_HASHMAX];
    int r = 0;
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(period >> (56 - 8 * i));
    if (crypto_hmac(CRYPTO_SHA256, k->secret, sizeof(k->secret), (const uint8_t *)label,
                    sizeof(label) - 1, t, sizeof(t), key) != 0 ||
        crypto_hmac(CRYPTO_SHA256, key, 32, a, alen, NULL, 0, mac) != 0)
        r = PROTO_E_CRYPTO;
    else
        memcpy(out, mac, SECURE_COOKIE_LEN);
    crypto_wipe(key, sizeof(key));
    crypto_wipe(mac, sizeof(mac));
    return r;
}

int secure_cookie_make(const struct secure_cookie *k, const struct sockaddr *peer,
                       uint8_t out[static SECURE_COOKIE_LEN])
{
    uint8_t a[ADDR_MAX];
    size_t alen = encode_addr(peer, a);
    if (alen == 0)
        return -EAFNOSUPPORT;
    return cookie_at(k, a, alen, k->now(k->now_arg) / SECURE_COOKIE_PERIOD, out);
}

int secure_cookie_check(const struct secure_cookie *k, const struct sockaddr *peer,
                        const uint8_t cookie[static SECURE_COOKIE_LEN],
                        enum secure_cookie_result *res)
{
    uint8_t a[ADDR_MAX], want[SECURE_COOKIE_LEN], acc = 0;
    int r = 0;
    *res = SECURE_COOKIE_INVALID;
    size_t alen = encode_addr(peer, a);
    if (alen == 0)
        return -EAFNOSUPPORT;
    for (size_t i = 0; i < SECURE_COOKIE_LEN; i++)
        acc |= cookie[i];
    if (acc == 0) {
        *res = SECURE_COOKIE_NONE;
        return 0;
    }
    /* A cookie handed out just before the period changed stays good for one more period,
     * so a client always has at least SECURE_COOKIE_PERIOD seconds to use it. */
    uint64_t now = k->now(k->now_arg) / SECURE_COOKIE_PERIOD;
    for (uint64_t i = 0; i < 2; i++) {
        if ((r = cookie_at(k, a, alen, now - i, want)) != 0)
            break;
        if (crypto_equal(want, cookie, SECURE_COOKIE_LEN)) {
            *res = SECURE_COOKIE_VALID;
            break;
        }
    }
    crypto_wipe(want, sizeof(want));
    return r;
}
