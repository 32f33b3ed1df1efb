/* SPDX-License-Identifier: MIT */
/* Hex helpers for unit tests (test data only; not constant time). */
#ifndef SECHO_HEXUTIL_H
#define SECHO_HEXUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes n hex digits from s into out (capacity cap). Returns the byte count or -1. */
static inline long hex_decode_n(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(n / 2);
}

static inline long hex_decode(const char *s, uint8_t *out, size_t cap)
{
    return hex_decode_n(s, strlen(s), out, cap);
}

#endif
