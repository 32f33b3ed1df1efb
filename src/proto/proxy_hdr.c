/* SPDX-License-Identifier: MIT */
/* PROXY protocol header parser (haproxy doc/proxy-protocol.txt, versions 1 and 2), sans-IO:
 * bytes in, a verdict out, nothing taken past the header's last byte. */
#include "proxy_hdr.h"

#include <arpa/inet.h>
#include <string.h>

static const uint8_t v1_sig[PROXY_HDR_V1_SIG_LEN] = {'P', 'R', 'O', 'X', 'Y', ' '};
static const uint8_t v2_sig[PROXY_HDR_V2_SIG_LEN] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                                     0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* Version 2 wire fields (section 2.2): after the signature, one byte of version (high
 * nibble) and command (low), one of address family (high) and transport (low), then the
 * big-endian length of the rest. */
#define V2_VER_CMD 12
#define V2_FAM     13
#define V2_LEN     14
#define V2_ADDRS   PROXY_HDR_V2_FIXED

enum { V2_CMD_LOCAL = 0x0, V2_CMD_PROXY = 0x1 };
enum { V2_AF_UNSPEC = 0x0, V2_AF_INET = 0x1, V2_AF_INET6 = 0x2, V2_AF_UNIX = 0x3 };
enum { V2_TP_UNSPEC = 0x0, V2_TP_STREAM = 0x1, V2_TP_DGRAM = 0x2 };

/* Size of each family's address block: two addresses, then two ports (IPv4, IPv6) or none
 * (AF_UNIX: two 108-byte paths). */
static const size_t v2_addr_len[4] = {0, 2 * 4 + 2 * 2, 2 * 16 + 2 * 2, 2 * 108};

/* A TLV: one byte of type, two of big-endian value length, then the value (section 2.2). */
#define V2_TLV_HDR 3

void proxy_hdr_init(struct proxy_hdr *h)
{
    memset(h, 0, sizeof(*h));
    h->status = PROXY_HDR_NEED_MORE;
}

static enum proxy_hdr_status fail(struct proxy_hdr *h, enum proxy_hdr_error e)
{
    h->status = PROXY_HDR_ERROR;
    h->err = e;
    return PROXY_HDR_ERROR;
}

enum proxy_hdr_sniff proxy_hdr_sniff(const uint8_t *p, size_t n)
{
    const struct {
        const uint8_t *sig;
        size_t len;
    } sigs[] = {{v1_sig, sizeof(v1_sig)}, {v2_sig, sizeof(v2_sig)}};
    if (n == 0)
        return PROXY_SNIFF_MAYBE;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        size_t k = n < sigs[i].len ? n : sigs[i].len;
        if (memcmp(p, sigs[i].sig, k) == 0)
            return n >= sigs[i].len ? PROXY_SNIFF_YES : PROXY_SNIFF_MAYBE;
    }
    return PROXY_SNIFF_NO;
}

/* ---- version 1 ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Section 2.1: exactly four decimal numbers 0..255 separated by single dots, no leading
 * zeroes ("avoid any possible confusion with octal numbers"). */
static bool parse_v4(const char *s, struct in_addr *out)
{
    uint8_t b[4];
    for (int k = 0; k < 4; k++) {
        const char *start = s;
        unsigned v = 0;
        while (is_digit(*s)) {
            v = v * 10 + (unsigned)(*s - '0');
            if (++s - start > 3)
                return false;
        }
        if (s == start || v > 255 || (s - start > 1 && *start == '0'))
            return false;
        b[k] = (uint8_t)v;
        if (k < 3 && *s++ != '.')
            return false;
    }
    if (*s != '\0')
        return false;
    memcpy(&out->s_addr, b, 4);
    return true;
}

/* Hexadecimal groups separated by colons, one "::" at most; inet_pton decides the rest. */
static bool parse_v6(const char *s, struct in6_addr *out)
{
    size_t n = strlen(s);
    if (n == 0 || n >= INET6_ADDRSTRLEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool hex = is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex && c != ':' && c != '.')
            return false;
    }
    return inet_pton(AF_INET6, s, out) == 1;
}

/* A decimal 0..65535 without a leading zero or a sign. */
static bool parse_port(const char *s, uint16_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* The whole line is in head (it ends with the first LF). Splits it in place. */
static enum proxy_hdr_status parse_v1(struct proxy_hdr *h)
{
    /* A lone LF does not end the line (section 2.1: "must not tolerate a single CR or LF"). */
    if (h->have < PROXY_HDR_V1_SIG_LEN + 2 || h->head[h->have - 2] != '\r')
        return fail(h, PROXY_HDR_E_V1_SYNTAX);
    char *s = (char *)h->head + PROXY_HDR_V1_SIG_LEN;
    size_t len = h->have - PROXY_HDR_V1_SIG_LEN - 2;
    s[len] = '\0';
    if (strlen(s) != len)
        return fail(h, PROXY_HDR_E_V1_SYNTAX); /* a NUL inside the line */
    h->res.version = 1;
    /* "the receiver must ignore anything presented before the CRLF is found". */
    if (strcmp(s, "UNKNOWN") == 0 || strncmp(s, "UNKNOWN ", 8) == 0) {
        h->status = PROXY_HDR_DONE;
        return PROXY_HDR_DONE;
    }
    char *tok[5];
    int nt = 0;
    for (char *q = s;;) {
        if (nt == 5)
            return fail(h, PROXY_HDR_E_V1_SYNTAX);
        tok[nt++] = q;
        char *sp = strchr(q, ' ');
        if (!sp)
            break;
        *sp = '\0';
        q = sp + 1;
    }
    if (nt != 5)
        return fail(h, PROXY_HDR_E_V1_SYNTAX);
    for (int i = 0; i < nt; i++)
        if (tok[i][0] == '\0')
            return fail(h, PROXY_HDR_E_V1_SYNTAX); /* two spaces in a row, or one at an end */
    uint16_t sport, dport;
    if (strcmp(tok[0], "TCP4") == 0) {
        struct in_addr src, dst;
        if (!parse_v4(tok[1], &src) || !parse_v4(tok[2], &dst))
            return fail(h, PROXY_HDR_E_V1_ADDRESS);
        if (!parse_port(tok[3], &sport) || !parse_port(tok[4], &dport))
            return fail(h, PROXY_HDR_E_V1_PORT);
        h->res.src.in =
            (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(sport), .sin_addr = src};
        h->res.dst.in =
            (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(dport), .sin_addr = dst};
    } else if (strcmp(tok[0], "TCP6") == 0) {
        struct in6_addr src, dst;
        if (!parse_v6(tok[1], &src) || !parse_v6(tok[2], &dst))
            return fail(h, PROXY_HDR_E_V1_ADDRESS);
        if (!parse_port(tok[3], &sport) || !parse_port(tok[4], &dport))
            return fail(h, PROXY_HDR_E_V1_PORT);
        h->res.src.in6 = (struct sockaddr_in6){
            .sin6_family = AF_INET6, .sin6_port = htons(sport), .sin6_addr = src};
        h->res.dst.in6 = (struct sockaddr_in6){
            .sin6_family = AF_INET6, .sin6_port = htons(dport), .sin6_addr = dst};
    } else {
        return fail(h, PROXY_HDR_E_V1_SYNTAX);
    }
    h->res.has_addr = true;
    h->status = PROXY_HDR_DONE;
    return PROXY_HDR_DONE;
}

/* Takes bytes up to and including the first LF, at most PROXY_HDR_V1_MAX in all. */
static enum proxy_hdr_status feed_v1(struct proxy_hdr *h, const uint8_t *p, size_t n, size_t *used)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i++];
        h->head[h->have++] = c;
        if (c == '\n') {
            *used = i;
            return parse_v1(h);
        }
        if (h->have >= PROXY_HDR_V1_MAX) {
            *used = i;
            return fail(h, PROXY_HDR_E_V1_TOO_LONG);
        }
    }
    *used = i;
    return PROXY_HDR_NEED_MORE;
}

/* ---- version 2 ---- */

/* The fixed part is in head: checks it and lays out what follows. */
static enum proxy_hdr_status v2_fixed(struct proxy_hdr *h)
{
    uint8_t vc = h->head[V2_VER_CMD], fam = h->head[V2_FAM];
    size_t len = (size_t)h->head[V2_LEN] << 8 | h->head[V2_LEN + 1];
    if (vc >> 4 != 2)
        return fail(h, PROXY_HDR_E_V2_VERSION);
    unsigned cmd = vc & 0x0f;
    if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
        return fail(h, PROXY_HDR_E_V2_COMMAND);
    h->res.version = 2;
    h->total = PROXY_HDR_V2_FIXED + len;
    h->keep = PROXY_HDR_V2_FIXED;
    h->tlv_at = 0;
    if (cmd == V2_CMD_LOCAL) {
        /* "discard the protocol block including the family which is ignored". */
        h->res.local = true;
        return PROXY_HDR_NEED_MORE;
    }
    unsigned af = fam >> 4, tp = fam & 0x0f;
    if (af > V2_AF_UNIX || tp > V2_TP_DGRAM)
        return fail(h, PROXY_HDR_E_V2_FAMILY);
    if (len < v2_addr_len[af])
        return fail(h, PROXY_HDR_E_V2_LENGTH);
    if (af == V2_AF_UNSPEC)
        return PROXY_HDR_NEED_MORE; /* no address block: the rest is skipped unread */
    if (af == V2_AF_INET || af == V2_AF_INET6)
        h->keep = PROXY_HDR_V2_FIXED + v2_addr_len[af];
    h->tlv_at = PROXY_HDR_V2_FIXED + v2_addr_len[af];
    return PROXY_HDR_NEED_MORE;
}

/* Walks n bytes of the TLV area (all of them before the header's end), skipping values.
 * *took is the bytes walked: n, or on error those up to the TLV header at fault. */
static bool walk_tlvs(struct proxy_hdr *h, const uint8_t *p, size_t n, size_t *took)
{
    size_t i = 0;
    *took = n;
    while (i < n) {
        if (h->tlv_left > 0) {
            size_t k = n - i < h->tlv_left ? n - i : h->tlv_left;
            h->tlv_left -= k;
            i += k;
            continue;
        }
        h->tlv[h->tlv_have++] = p[i++];
        if (h->tlv_have < V2_TLV_HDR)
            continue;
        h->tlv_have = 0;
        h->tlv_left = (size_t)h->tlv[1] << 8 | h->tlv[2];
        /* The value must end within the header: its length is the header's, not the TLV's. */
        if (h->tlv_left > h->total - (h->seen + i)) {
            *took = i;
            return false;
        }
    }
    return true;
}

static enum proxy_hdr_status v2_done(struct proxy_hdr *h)
{
    if (h->tlv_have != 0)
        return fail(h, PROXY_HDR_E_V2_TLV); /* a TLV header cut by the end */
    unsigned af = h->head[V2_FAM] >> 4, tp = h->head[V2_FAM] & 0x0f;
    const uint8_t *a = h->head + V2_ADDRS;
    /* Only a relayed TCP connection has endpoints that mean something here; for the other
     * valid combinations the connection's own stand (section 2.2, "falls back to the
     * UNSPEC mode"). */
    if (!h->res.local && tp == V2_TP_STREAM && af == V2_AF_INET) {
        h->res.src.in.sin_family = AF_INET;
        h->res.dst.in.sin_family = AF_INET;
        memcpy(&h->res.src.in.sin_addr, a, 4);
        memcpy(&h->res.dst.in.sin_addr, a + 4, 4);
        memcpy(&h->res.src.in.sin_port, a + 8, 2);
        memcpy(&h->res.dst.in.sin_port, a + 10, 2);
        h->res.has_addr = true;
    } else if (!h->res.local && tp == V2_TP_STREAM && af == V2_AF_INET6) {
        h->res.src.in6.sin6_family = AF_INET6;
        h->res.dst.in6.sin6_family = AF_INET6;
        memcpy(&h->res.src.in6.sin6_addr, a, 16);
        memcpy(&h->res.dst.in6.sin6_addr, a + 16, 16);
        memcpy(&h->res.src.in6.sin6_port, a + 32, 2);
        memcpy(&h->res.dst.in6.sin6_port, a + 34, 2);
        h->res.has_addr = true;
    }
    h->status = PROXY_HDR_DONE;
    return PROXY_HDR_DONE;
}

/* Takes bytes of the header after the signature, up to its last. */
static enum proxy_hdr_status feed_v2(struct proxy_hdr *h, const uint8_t *p, size_t n, size_t *used)
{
    size_t i = 0;
    while (h->seen < PROXY_HDR_V2_FIXED) {
        if (i == n) {
            *used = i;
            return PROXY_HDR_NEED_MORE;
        }
        h->head[h->have++] = p[i++];
        h->seen++;
        if (h->seen == PROXY_HDR_V2_FIXED && v2_fixed(h) == PROXY_HDR_ERROR) {
            *used = i;
            return PROXY_HDR_ERROR;
        }
    }
    while (h->seen < h->total && i < n) {
        size_t take = n - i < h->total - h->seen ? n - i : h->total - h->seen;
        if (h->seen < h->keep) {
            /* The address block of an IPv4 or IPv6 header. */
            size_t k = h->keep - h->seen < take ? h->keep - h->seen : take;
            memcpy(h->head + h->have, p + i, k);
            h->have += k;
            h->seen += k;
            i += k;
        } else if (h->tlv_at && h->seen >= h->tlv_at) {
            size_t k;
            bool ok = walk_tlvs(h, p + i, take, &k);
            h->seen += k;
            i += k;
            if (!ok) {
                *used = i;
                return fail(h, PROXY_HDR_E_V2_TLV);
            }
        } else {
            /* Skipped unread: a LOCAL or AF_UNSPEC block, or AF_UNIX paths. */
            size_t end = h->tlv_at ? h->tlv_at : h->total;
            size_t k = end - h->seen < take ? end - h->seen : take;
            h->seen += k;
            i += k;
        }
    }
    *used = i;
    if (h->seen < h->total)
        return PROXY_HDR_NEED_MORE;
    return v2_done(h);
}

enum proxy_hdr_status proxy_hdr_feed(struct proxy_hdr *h, const uint8_t *p, size_t n, size_t *used)
{
    *used = 0;
    if (h->status != PROXY_HDR_NEED_MORE)
        return h->status;
    size_t i = 0;
    /* The signature, a byte at a time: the first byte that fits neither ends it. */
    while (h->version == 0) {
        if (i == n) {
            *used = i;
            return PROXY_HDR_NEED_MORE;
        }
        h->head[h->have++] = p[i++];
        enum proxy_hdr_sniff s = proxy_hdr_sniff(h->head, h->have);
        if (s == PROXY_SNIFF_NO) {
            *used = i;
            return fail(h, PROXY_HDR_E_SIGNATURE);
        }
        if (s == PROXY_SNIFF_YES) {
            h->version = h->head[0] == 'P' ? 1 : 2;
            h->seen = h->have;
        }
    }
    size_t k = 0;
    enum proxy_hdr_status st =
        h->version == 1 ? feed_v1(h, p + i, n - i, &k) : feed_v2(h, p + i, n - i, &k);
    *used = i + k;
    return st;
}

const char *proxy_hdr_strerror(enum proxy_hdr_error err)
{
    switch (err) {
    case PROXY_HDR_E_NONE:
        return "no error";
    case PROXY_HDR_E_SIGNATURE:
        return "not a PROXY protocol header";
    case PROXY_HDR_E_V1_TOO_LONG:
        return "PROXY v1 line longer than 107 bytes";
    case PROXY_HDR_E_V1_SYNTAX:
        return "malformed PROXY v1 line";
    case PROXY_HDR_E_V1_ADDRESS:
        return "bad address in PROXY v1 line";
    case PROXY_HDR_E_V1_PORT:
        return "bad port in PROXY v1 line";
    case PROXY_HDR_E_V2_VERSION:
        return "PROXY v2 header with an unknown version";
    case PROXY_HDR_E_V2_COMMAND:
        return "PROXY v2 header with an unknown command";
    case PROXY_HDR_E_V2_FAMILY:
        return "PROXY v2 header with an unknown address family or transport";
    case PROXY_HDR_E_V2_LENGTH:
        return "PROXY v2 header too short for its addresses";
    case PROXY_HDR_E_V2_TLV:
        return "PROXY v2 TLV runs past the header";
    case PROXY_HDR_E_UNTRUSTED:
        return "PROXY header from an address not in --trusted-proxy";
    case PROXY_HDR_E_TIMEOUT:
        return "no PROXY header within the handshake timeout";
    case PROXY_HDR_E_INCOMPLETE:
        return "connection ended before a whole PROXY header";
    }
    return "unknown PROXY header error";
}
