/* SPDX-License-Identifier: MIT */
/* Fernet tokens over crypto_lab. Verify-then-decrypt, constant-time HMAC compare and base64. */
#include "fernet.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "crypto_lab.h"

#define RAW_MAX (FERNET_TOKEN_MAX / 4 * 3)

/* The character for a 6-bit value, without a table or branch (no secret-dependent memory
 * access: keys travel through here). */
static char b64_char(unsigned v)
{
    int x = (int)v, c = x + 'A';
    c += ((25 - x) >> 8) & ('a' - 'A' - 26); /* x >= 26 */
    c -= ((51 - x) >> 8) & ('a' + 26 - '0'); /* x >= 52 */
    c -= ((61 - x) >> 8) & ('0' + 10 - '-'); /* x >= 62: '-' */
    c += ((62 - x) >> 8) & ('_' - '-' - 1);  /* x == 63: '_' */
    return (char)c;
}

/* The value of a base64url character, or -1. Each term is all ones only when lo <= c <= hi
 * ((lo - 1 - c) & (c - hi - 1) is negative exactly then), adding the offset for that range. */
static int b64_value(unsigned char ch)
{
    int c = ch, v = -1;
    v += (((64 - c) & (c - 91)) >> 8) & (c - 64);  /* 'A'..'Z' -> 0..25 */
    v += (((96 - c) & (c - 123)) >> 8) & (c - 70); /* 'a'..'z' -> 26..51 */
    v += (((47 - c) & (c - 58)) >> 8) & (c + 5);   /* '0'..'9' -> 52..61 */
    v += (((44 - c) & (c - 46)) >> 8) & 63;        /* '-' -> 62 */
    v += (((94 - c) & (c - 96)) >> 8) & 64;        /* '_' -> 63 */
    return v;
}

size_t fernet_b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned b0 = in[i], b1 = i + 1 < n ? in[i + 1] : 0, b2 = i + 2 < n ? in[i + 2] : 0;
        unsigned w = b0 << 16 | b1 << 8 | b2;
        out[o++] = b64_char(w >> 18 & 63);
        out[o++] = b64_char(w >> 12 & 63);
        out[o++] = (char)(i + 1 < n ? b64_char(w >> 6 & 63) : '=');
        out[o++] = (char)(i + 2 < n ? b64_char(w & 63) : '=');
    }
    return o;
}

long fernet_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0 || n % 4)
        return -EBADMSG;
    size_t pad = in[n - 1] == '=' ? (in[n - 2] == '=' ? 2 : 1) : 0;
    size_t len = n / 4 * 3 - pad;
    if (len > cap)
        return -EMSGSIZE;
    int bad = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        int v0 = b64_value((unsigned char)in[i]), v1 = b64_value((unsigned char)in[i + 1]);
        int v2 = last && pad == 2 ? 0 : b64_value((unsigned char)in[i + 2]);
        int v3 = last && pad ? 0 : b64_value((unsigned char)in[i + 3]);
        bad |= v0 | v1 | v2 | v3; /* any -1 sets the sign bit */
        unsigned w = (unsigned)(v0 & 63) << 18 | (unsigned)(v1 & 63) << 12 |
                     (unsigned)(v2 & 63) << 6 | (unsigned)(v3 & 63);
        out[o++] = (uint8_t)(w >> 16);
        if (!last || pad < 2)
            out[o++] = (uint8_t)(w >> 8);
        if (!last || pad < 1)
            out[o++] = (uint8_t)w;
        /* Canonical form only: the bits that padding drops must be zero. */
        if (last && pad == 2)
            bad |= -(int)((w & 0xffff) != 0);
        if (last && pad == 1)
            bad |= -(int)((w & 0xff) != 0);
    }
    if (bad < 0) {
        OPENSSL_cleanse(out, o);
        return -EBADMSG;
    }
    return (long)len;
}

int fernet_key_generate(struct fernet_key *k)
{
    uint8_t raw[FERNET_KEY_LEN];
    int r = crypto_lab_random(raw, sizeof(raw));
    if (r == 0) {
        memcpy(k->signing, raw, 16);
        memcpy(k->encryption, raw + 16, 16);
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    return r;
}

void fernet_key_encode(const struct fernet_key *k, char out[static FERNET_KEY_TEXT_LEN + 1])
{
    uint8_t raw[FERNET_KEY_LEN];
    memcpy(raw, k->signing, 16);
    memcpy(raw + 16, k->encryption, 16);
    fernet_b64_encode(raw, sizeof(raw), out);
    out[FERNET_KEY_TEXT_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
}

int fernet_key_decode(struct fernet_key *k, const char *text, size_t len)
{
    uint8_t raw[FERNET_KEY_LEN + 3];
    int ret = -EBADMSG;
    if (len == FERNET_KEY_TEXT_LEN &&
        fernet_b64_decode(text, len, raw, sizeof(raw)) == FERNET_KEY_LEN) {
        memcpy(k->signing, raw, 16);
        memcpy(k->encryption, raw + 16, 16);
        ret = 0;
    } else {
        fernet_key_wipe(k);
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    return ret;
}

void fernet_key_wipe(struct fernet_key *k)
{
    OPENSSL_cleanse(k, sizeof(*k));
}

static size_t raw_len(size_t msg_len)
{
    return FERNET_OVERHEAD + (msg_len / 16 + 1) * 16;
}

size_t fernet_token_len(size_t msg_len)
{
    return (raw_len(msg_len) + 2) / 3 * 4;
}

size_t fernet_max_msg(size_t token_max)
{
    /* Token length only grows every 16 message bytes; find the last block that fits. */
    if (fernet_token_len(0) > token_max)
        return 0;
    size_t blocks = 0;
    while (fernet_token_len((blocks + 1) * 16) <= token_max)
        blocks++;
    return blocks * 16 + 15;
}

int fernet_encrypt_at(const struct fernet_key *k, uint64_t now, const uint8_t iv[static 16],
                      const uint8_t *msg, size_t len, char *out, size_t cap, size_t *out_len)
{
    uint8_t raw[RAW_MAX];
    size_t n = 0, ct = 0;
    int ret;

    if ((!msg && len) || !out)
        return -EINVAL;
    if (fernet_token_len(len) > FERNET_TOKEN_MAX)
        return -EMSGSIZE;
    if (fernet_token_len(len) > cap)
        return -EMSGSIZE;
    raw[n++] = FERNET_VERSION;
    for (int i = 7; i >= 0; i--)
        raw[n++] = (uint8_t)(now >> (8 * i));
    memcpy(raw + n, iv, 16);
    n += 16;
    ret = crypto_lab_aes128_cbc_encrypt(k->encryption, iv, msg, len, raw + n, sizeof(raw) - n, &ct);
    if (ret < 0)
        goto out;
    n += ct;
    ret = crypto_lab_hmac_sha256(k->signing, 16, raw, n, raw + n);
    if (ret < 0)
        goto out;
    n += CRYPTO_LAB_SHA256_LEN;
    *out_len = fernet_b64_encode(raw, n, out);
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    return ret;
}

int fernet_encrypt(const struct fernet_key *k, const uint8_t *msg, size_t len, char *out,
                   size_t cap, size_t *out_len)
{
    uint8_t iv[16];
    int ret = crypto_lab_random(iv, sizeof(iv));
    if (ret < 0)
        return ret;
    return fernet_encrypt_at(k, (uint64_t)time(NULL), iv, msg, len, out, cap, out_len);
}

int fernet_decrypt(const struct fernet_key *k, const char *token, size_t len, uint64_t now,
                   uint64_t ttl, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t raw[RAW_MAX], mac[CRYPTO_LAB_SHA256_LEN];
    int ret = -EBADMSG;

    if (!token || !out)
        return -EINVAL;
    if (len > FERNET_TOKEN_MAX)
        return -EMSGSIZE;
    long n = fernet_b64_decode(token, len, raw, sizeof(raw));
    if (n < 0) {
        ret = (int)n;
        goto out;
    }
    size_t rn = (size_t)n;
    if (rn < FERNET_MIN_RAW || (rn - FERNET_OVERHEAD) % 16 || raw[0] != FERNET_VERSION)
        goto out;
    size_t signed_len = rn - CRYPTO_LAB_SHA256_LEN;
    ret = crypto_lab_hmac_sha256(k->signing, 16, raw, signed_len, mac);
    if (ret < 0)
        goto out;
    if (CRYPTO_memcmp(mac, raw + signed_len, sizeof(mac)) != 0) {
        ret = -EACCES;
        goto out;
    }
    if (ttl) {
        uint64_t ts = 0;
        /* raw[1..8] were written: the decoder wrote rn >= FERNET_MIN_RAW bytes, which the
         * analyzer does not tie to its return value after one pass of its loop. */
        for (int i = 1; i <= 8; i++)
            ts = ts << 8 | raw[i]; /* NOLINT(clang-analyzer-core.UndefinedBinaryOperatorResult) */
        /* Same rules as Python: expired after ts + ttl, refused if from the future. */
        if (ts + ttl < now || now + FERNET_MAX_CLOCK_SKEW < ts) {
            ret = -ETIME;
            goto out;
        }
    }
    ret = crypto_lab_aes128_cbc_decrypt(k->encryption, raw + 9, raw + 25, signed_len - 25, out, cap,
                                        out_len);
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(mac, sizeof(mac));
    return ret;
}
