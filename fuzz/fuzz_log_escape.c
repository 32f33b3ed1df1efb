/* SPDX-License-Identifier: MIT */
/* libFuzzer target: log_escape on any bytes.
 *
 * The whole input is the peer's text. Oracle: the output is one valid logfmt quoted value
 * body that no reader can misread: it has the returned length and fits 4 bytes per input
 * byte; it holds no raw byte below 0x20 and no DEL, no `"` that is not escaped, no raw C1
 * control, line or paragraph separator or bidirectional control, and is valid UTF-8; every
 * backslash starts a whole escape (\" \\ \t \r \n \xHH \u{hhhh}); and decoding it gives back
 * exactly the input bytes; and it is the canonical escaping (no \xHH where a valid
 * sequence starts, no \u{} but for those characters). The UTF-8 rules are written here
 * again, independently of log.c. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static bool forging_cp(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Decodes one UTF-8 sequence at s (RFC 3629) into *cp; returns its length or 0 if invalid. */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t v, min;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if ((s[0] & 0xE0) == 0xC0) {
        len = 2, v = s[0] & 0x1F, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, v = s[0] & 0x0F, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, v = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static size_t utf8_encode(uint32_t cp, uint8_t *out)
{
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (uint8_t)(0xE0 | cp >> 12);
    out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* log_escape writes lowercase only */
}

static void fail(const char *why, size_t at)
{
    fprintf(stderr, "fuzz_log_escape: %s at output byte %zu\n", why, at);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = malloc(4 * size + 1);
    uint8_t *back = malloc(size + 1);
    if (!out || !back) {
        free(out);
        free(back);
        return 0;
    }
    /* Poison the budget so a write past the returned length shows as a wrong NUL. */
    memset(out, 'P', 4 * size + 1);
    size_t len = log_escape(out, data, size);
    if (len > 4 * size)
        fail("output above 4 bytes per input byte", len);
    if (out[len] != '\0' || strlen(out) != len)
        fail("length and NUL disagree", len);

    const uint8_t *o = (const uint8_t *)out;
    size_t i = 0, nb = 0;
    while (i < len) {
        uint8_t c = o[i];
        if (c < 0x20 || c == 0x7F)
            fail("raw control byte", i);
        if (c == '"')
            fail("unescaped quote", i);
        if (c >= 0x80) {
            uint32_t cp;
            size_t k = utf8_decode(o + i, len - i, &cp);
            if (!k)
                fail("invalid UTF-8", i);
            if (forging_cp(cp))
                fail("raw C1, separator or bidi control", i);
            if (nb + k > size)
                fail("decodes to more bytes than the input", i);
            memcpy(back + nb, o + i, k);
            nb += k;
            i += k;
            continue;
        }
        if (c != '\\') {
            if (nb + 1 > size)
                fail("decodes to more bytes than the input", i);
            back[nb++] = c;
            i++;
            continue;
        }
        if (i + 1 >= len)
            fail("dangling backslash", i);
        uint8_t e = o[i + 1];
        uint8_t one = 0;
        size_t adv = 2;
        uint8_t seq[3];
        size_t seqlen = 0;
        switch (e) {
        case '"':
        case '\\':
            one = e;
            break;
        case 't':
            one = '\t';
            break;
        case 'r':
            one = '\r';
            break;
        case 'n':
            one = '\n';
            break;
        case 'x': {
            int hi = i + 3 < len ? hexval(o[i + 2]) : -1;
            int lo = i + 3 < len ? hexval(o[i + 3]) : -1;
            if (hi < 0 || lo < 0)
                fail("bad \\x escape", i);
            one = (uint8_t)(hi << 4 | lo);
            /* \x is for what cannot be shown raw: controls, DEL, bytes >= 0x80. */
            if (one >= 0x20 && one < 0x7F)
                fail("printable ASCII written as \\x", i);
            if (one == '\t' || one == '\r' || one == '\n')
                fail("tab, CR or LF written as \\x", i);
            /* ...and a byte >= 0x80 only when no valid sequence starts there: the output is
             * the one canonical escaping, so valid UTF-8 is never turned into \xHH. */
            uint32_t cp;
            if (one >= 0x80 && nb < size && data[nb] == one &&
                utf8_decode(data + nb, size - nb, &cp))
                fail("valid UTF-8 written as \\x", i);
            adv = 4;
            break;
        }
        case 'u': {
            if (i + 7 >= len || o[i + 2] != '{' || o[i + 7] != '}')
                fail("bad \\u escape", i);
            uint32_t cp = 0;
            for (size_t j = 3; j < 7; j++) {
                int h = hexval(o[i + j]);
                if (h < 0)
                    fail("bad \\u digit", i);
                cp = cp << 4 | (uint32_t)h;
            }
            if (!forging_cp(cp))
                fail("\\u escape of a character that is shown raw", i);
            seqlen = utf8_encode(cp, seq);
            adv = 8;
            break;
        }
        default:
            fail("unknown escape", i);
        }
        if (seqlen) {
            if (nb + seqlen > size)
                fail("decodes to more bytes than the input", i);
            memcpy(back + nb, seq, seqlen);
            nb += seqlen;
        } else {
            if (nb + 1 > size)
                fail("decodes to more bytes than the input", i);
            back[nb++] = one;
        }
        i += adv;
    }
    if (nb != size || memcmp(back, data, size) != 0)
        fail("does not decode back to the input", len);
    free(out);
    free(back);
    return 0;
}
