/* SPDX-License-Identifier: MIT */
/* Unit tests for fernet: known answers from Python, base64 strictness, forged/expired/short. */
#include "check.h"
#include "crypto_lab.h"
#include "fernet.h"

#include <errno.h>

#include <openssl/evp.h>

/*
 * Known answers generated once with Debian's python3-cryptography 38.0.4:
 *
 *   import base64, hashlib
 *   from cryptography.fernet import Fernet
 *   key = base64.urlsafe_b64encode(bytes(range(32)))
 *   f = Fernet(key)
 *   iv = bytes(range(0xa0, 0xb0))
 *   t = 1700000000
 *   for m in [b"", b"exit", "Привет, мир!".encode(), b"0123456789abcdef"]:
 *       print(f._encrypt_from_parts(m, t, iv).decode())
 *   long = bytes(i % 251 for i in range(703))
 *   tok = f._encrypt_from_parts(long, t, iv)
 *   print(len(tok), hashlib.sha256(tok).hexdigest())
 *   print(len(f._encrypt_from_parts(bytes(704), t, iv)))      # 1036
 */
static const char kat_key[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
static const uint64_t kat_time = 1700000000;
static const struct {
    const char *msg;
    const char *token;
} kats[] = {
    {"", "gAAAAABlU_EAoKGio6SlpqeoqaqrrK2ur9O7erZFnrP5QdmHcSLL6VFXYIixxl1AmTRA6zW1v27gD2v8Il0NNOcH"
         "T_InaMMxDQ=="},
    {"exit", "gAAAAABlU_EAoKGio6SlpqeoqaqrrK2ur3KpPWHVPvZ6Ekqq4NLMRTwoSc5-eOTcKubxi-WTZ1QIgn2zm_Y6"
             "b222rFKipSFGBA=="},
    {"Привет, мир!",
     "gAAAAABlU_EAoKGio6SlpqeoqaqrrK2urwYr7wD93zFuODAylsxldBgjsxAwrewqIhl8C6fXPdb8Nu4Rx-FjXqdej_"
     "8qKdCqE5wQYiKxspJpGdv0LRrE47w="},
    {"0123456789abcdef",
     "gAAAAABlU_EAoKGio6SlpqeoqaqrrK2urynNqNPaVpvoj53cifbv3U7vIS3mPVH4s4-IuMvWgTxT78aFCil8vOYYWL49"
     "5JfjkOoLI2oZikwINuaarJvS868="},
};
static const char kat_long_sha256[] =
    "4819c39404ea3b90c3a19cdc5209885e3604e9cd40d7de6532cf7a622158c4a4";

static struct fernet_key key;
static uint8_t iv[16];

static void sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t d[32];
    unsigned dn = 0;
    EVP_Digest(p, n, d, &dn, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_key(void)
{
    char text[FERNET_KEY_TEXT_LEN + 1];
    CHECK_INT(fernet_key_decode(&key, kat_key, strlen(kat_key)), 0);
    for (int i = 0; i < 16; i++) {
        CHECK_INT(key.signing[i], i);
        CHECK_INT(key.encryption[i], 16 + i);
    }
    fernet_key_encode(&key, text);
    CHECK_STR(text, kat_key);

    struct fernet_key k2, k3;
    CHECK_INT(fernet_key_generate(&k2), 0);
    CHECK_INT(fernet_key_generate(&k3), 0);
    CHECK(memcmp(&k2, &k3, sizeof(k2)) != 0);
    fernet_key_encode(&k2, text);
    CHECK_INT(strlen(text), 44);
    CHECK_INT(text[43], '=');
    CHECK_INT(fernet_key_decode(&k3, text, 44), 0);
    CHECK_MEM(&k2, &k3, sizeof(k2));

    /* 43 chars, 45 chars, standard alphabet, no padding, non-canonical last char. */
    CHECK_INT(fernet_key_decode(&k3, kat_key, 43), -EBADMSG);
    CHECK_INT(fernet_key_decode(&k3, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==", 45),
              -EBADMSG);
    CHECK_INT(fernet_key_decode(&k3, "+AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 44), -EBADMSG);
    CHECK_INT(fernet_key_decode(&k3, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A", 44), -EBADMSG);
    CHECK_INT(fernet_key_decode(&k3, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", 44), -EBADMSG);
    /* A failed decode leaves no key material behind. */
    static const struct fernet_key zero;
    CHECK_MEM(&k3, &zero, sizeof(zero));
}

static void test_base64(void)
{
    /* Every 6-bit value against OpenSSL's standard-alphabet encoder, translated to url. */
    uint8_t in[48];
    for (int i = 0; i < 48; i++)
        in[i] = (uint8_t)(i * 5 + 3);
    for (unsigned v = 0; v < 256; v++) {
        uint8_t b[3] = {(uint8_t)v, (uint8_t)(v << 2 | v >> 6), (uint8_t)(v * 7)};
        char ours[8] = {0}, ref[8] = {0};
        CHECK_INT(fernet_b64_encode(b, 3, ours), 4);
        EVP_EncodeBlock((unsigned char *)ref, b, 3);
        for (int i = 0; i < 4; i++)
            ref[i] = ref[i] == '+' ? '-' : ref[i] == '/' ? '_' : ref[i];
        CHECK_STR(ours, ref);
        uint8_t back[3];
        CHECK_INT(fernet_b64_decode(ours, 4, back, 3), 3);
        CHECK_MEM(back, b, 3);
    }
    for (size_t n = 0; n <= 48; n++) {
        char text[80], ref[80];
        uint8_t back[48];
        size_t tn = fernet_b64_encode(in, n, text);
        text[tn] = '\0';
        EVP_EncodeBlock((unsigned char *)ref, in, (int)n);
        for (size_t i = 0; ref[i]; i++)
            ref[i] = ref[i] == '+' ? '-' : ref[i] == '/' ? '_' : ref[i];
        CHECK_STR(text, ref);
        if (n) {
            CHECK_INT(fernet_b64_decode(text, tn, back, sizeof(back)), n);
            CHECK_MEM(back, in, n);
        }
    }
    uint8_t out[16];
    CHECK_INT(fernet_b64_decode("", 0, out, 16), -EBADMSG);
    CHECK_INT(fernet_b64_decode("QUJD=", 5, out, 16), -EBADMSG);
    CHECK_INT(fernet_b64_decode("QU=D", 4, out, 16), -EBADMSG);
    CHECK_INT(fernet_b64_decode("Q===", 4, out, 16), -EBADMSG);
    CHECK_INT(fernet_b64_decode("====", 4, out, 16), -EBADMSG);
    CHECK_INT(fernet_b64_decode("QUI=QUJD", 8, out, 16), -EBADMSG);
    CHECK_INT(fernet_b64_decode("QUJ\n", 4, out, 16), -EBADMSG);
    CHECK_INT(fernet_b64_decode("QR==", 4, out, 16), -EBADMSG); /* non-canonical */
    CHECK_INT(fernet_b64_decode("QUJD", 4, out, 2), -EMSGSIZE);
    CHECK_INT(fernet_b64_decode("QQ==", 4, out, 16), 1);
    CHECK_INT(out[0], 'A');
}

static void test_kats(void)
{
    char tok[FERNET_TOKEN_MAX];
    uint8_t pt[FERNET_TOKEN_MAX];
    size_t n = 0, m = 0;
    for (size_t i = 0; i < sizeof(kats) / sizeof(kats[0]); i++) {
        size_t len = strlen(kats[i].msg);
        CHECK_INT(fernet_encrypt_at(&key, kat_time, iv, (const uint8_t *)kats[i].msg, len, tok,
                                    sizeof(tok), &n),
                  0);
        CHECK_INT(n, strlen(kats[i].token));
        CHECK_INT(n, fernet_token_len(len));
        CHECK_MEM(tok, kats[i].token, n);
        CHECK_INT(
            fernet_decrypt(&key, kats[i].token, strlen(kats[i].token), 0, 0, pt, sizeof(pt), &m),
            0);
        CHECK_INT(m, len);
        CHECK_MEM(pt, kats[i].msg, len);
    }
    uint8_t big[704];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i % 251);
    CHECK_INT(fernet_encrypt_at(&key, kat_time, iv, big, 703, tok, sizeof(tok), &n), 0);
    CHECK_INT(n, 1016);
    char hex[65];
    sha256_hex(tok, n, hex);
    CHECK_STR(hex, kat_long_sha256);
    CHECK_INT(fernet_token_len(704), 1036);
    CHECK_INT(fernet_max_msg(1024), 703);
    CHECK_INT(fernet_max_msg(100), 15);
    CHECK_INT(fernet_max_msg(99), 0);
    /* The output capacity is exact: one byte short fails. */
    CHECK_INT(fernet_encrypt_at(&key, kat_time, iv, big, 703, tok, 1015, &n), -EMSGSIZE);
    CHECK_INT(fernet_encrypt(&key, big, 4000, tok, sizeof(tok), &n), -EMSGSIZE);

    /* Random IV and current time: two tokens differ, both decrypt. */
    char t2[200];
    size_t n2 = 0;
    CHECK_INT(fernet_encrypt(&key, (const uint8_t *)"exit", 4, tok, sizeof(tok), &n), 0);
    CHECK_INT(fernet_encrypt(&key, (const uint8_t *)"exit", 4, t2, sizeof(t2), &n2), 0);
    CHECK(n == n2 && memcmp(tok, t2, n) != 0);
    CHECK_INT(fernet_decrypt(&key, t2, n2, 0, 0, pt, sizeof(pt), &m), 0);
}

static void test_negative(void)
{
    const char *good = kats[1].token; /* "exit" */
    size_t gl = strlen(good);
    char tok[256];
    uint8_t pt[256];
    size_t m = 0;

    /* Every single-character change is refused, never decrypted. The last character of a
     * padded token also carries dropped bits, so some changes are -EBADMSG, the rest -EACCES
     * (or -EBADMSG for the version byte). */
    for (size_t i = 0; i < gl; i++) {
        memcpy(tok, good, gl);
        if (tok[i] == '=')
            continue;
        tok[i] = tok[i] == 'A' ? 'B' : 'A';
        int r = fernet_decrypt(&key, tok, gl, 0, 0, pt, sizeof(pt), &m);
        CHECK(r == -EACCES || r == -EBADMSG);
    }
    /* Another key. */
    struct fernet_key other;
    CHECK_INT(fernet_key_generate(&other), 0);
    CHECK_INT(fernet_decrypt(&other, good, gl, 0, 0, pt, sizeof(pt), &m), -EACCES);
    /* Truncated at every length, including whole-group lengths that decode. */
    for (size_t n = 0; n < gl; n++)
        CHECK(fernet_decrypt(&key, good, n, 0, 0, pt, sizeof(pt), &m) < 0);
    /* Padding stripped, as some encoders do: we decode strictly. */
    CHECK_INT(fernet_decrypt(&key, good, gl - 2, 0, 0, pt, sizeof(pt), &m), -EBADMSG);
    /* Bad characters: standard alphabet, whitespace, NUL. */
    memcpy(tok, good, gl);
    tok[20] = '+';
    CHECK_INT(fernet_decrypt(&key, tok, gl, 0, 0, pt, sizeof(pt), &m), -EBADMSG);
    tok[20] = '\n';
    CHECK_INT(fernet_decrypt(&key, tok, gl, 0, 0, pt, sizeof(pt), &m), -EBADMSG);
    tok[20] = '\0';
    CHECK_INT(fernet_decrypt(&key, tok, gl, 0, 0, pt, sizeof(pt), &m), -EBADMSG);

    /* Hand-built tokens with a valid HMAC: wrong version, no ciphertext, partial block, and a
     * ciphertext whose padding is bad. The HMAC passes, the structure does not. */
    uint8_t raw[256];
    size_t rn = 0;
    raw[rn++] = 0x80;
    for (int i = 7; i >= 0; i--)
        raw[rn++] = (uint8_t)(kat_time >> (8 * i));
    memcpy(raw + rn, iv, 16);
    rn += 16;
    /* One block that decrypts to 15 bytes then 0x00: invalid PKCS#7. */
    uint8_t block[16] = {0};
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0;
    CHECK(EVP_EncryptInit_ex2(c, EVP_aes_128_cbc(), key.encryption, iv, NULL) == 1);
    EVP_CIPHER_CTX_set_padding(c, 0);
    CHECK(EVP_EncryptUpdate(c, raw + rn, &outl, block, 16) == 1);
    EVP_CIPHER_CTX_free(c);
    rn += 16;
    CHECK_INT(crypto_lab_hmac_sha256(key.signing, 16, raw, rn, raw + rn), 0);
    size_t tl = fernet_b64_encode(raw, rn + 32, tok);
    CHECK_INT(fernet_decrypt(&key, tok, tl, 0, 0, pt, sizeof(pt), &m), -EBADMSG);

    raw[0] = 0x81;
    CHECK_INT(crypto_lab_hmac_sha256(key.signing, 16, raw, rn, raw + rn), 0);
    tl = fernet_b64_encode(raw, rn + 32, tok);
    CHECK_INT(fernet_decrypt(&key, tok, tl, 0, 0, pt, sizeof(pt), &m), -EBADMSG);
    raw[0] = 0x80;
    /* No ciphertext at all (57 bytes) and a partial block (57 + 8). */
    CHECK_INT(crypto_lab_hmac_sha256(key.signing, 16, raw, 25, raw + 25), 0);
    tl = fernet_b64_encode(raw, 57, tok);
    CHECK_INT(fernet_decrypt(&key, tok, tl, 0, 0, pt, sizeof(pt), &m), -EBADMSG);
    CHECK_INT(crypto_lab_hmac_sha256(key.signing, 16, raw, 33, raw + 33), 0);
    tl = fernet_b64_encode(raw, 65, tok);
    CHECK_INT(fernet_decrypt(&key, tok, tl, 0, 0, pt, sizeof(pt), &m), -EBADMSG);
    /* Too short to hold anything. */
    CHECK_INT(fernet_decrypt(&key, "gAAAAAA=", 8, 0, 0, pt, sizeof(pt), &m), -EBADMSG);
    /* Too long for this module. */
    static char huge[FERNET_TOKEN_MAX + 4];
    memset(huge, 'A', sizeof(huge));
    CHECK_INT(fernet_decrypt(&key, huge, sizeof(huge), 0, 0, pt, sizeof(pt), &m), -EMSGSIZE);
}

static void test_ttl(void)
{
    const char *good = kats[1].token;
    size_t gl = strlen(good), m = 0;
    uint8_t pt[64];
    /* Within the TTL, at its edge, one second after, from the future (beyond the skew). */
    CHECK_INT(fernet_decrypt(&key, good, gl, kat_time + 10, 60, pt, sizeof(pt), &m), 0);
    CHECK_INT(fernet_decrypt(&key, good, gl, kat_time + 60, 60, pt, sizeof(pt), &m), 0);
    CHECK_INT(fernet_decrypt(&key, good, gl, kat_time + 61, 60, pt, sizeof(pt), &m), -ETIME);
    CHECK_INT(fernet_decrypt(&key, good, gl, kat_time - 60, 60, pt, sizeof(pt), &m), 0);
    CHECK_INT(fernet_decrypt(&key, good, gl, kat_time - 61, 60, pt, sizeof(pt), &m), -ETIME);
    /* An expired forged token reports the forgery: the HMAC is checked first. */
    char tok[128];
    memcpy(tok, good, gl);
    tok[40] = tok[40] == 'A' ? 'B' : 'A';
    CHECK_INT(fernet_decrypt(&key, tok, gl, kat_time + 1000, 60, pt, sizeof(pt), &m), -EACCES);
}

int main(void)
{
    for (int i = 0; i < 16; i++)
        iv[i] = (uint8_t)(0xa0 + i);
    test_key();
    test_base64();
    test_kats();
    test_negative();
    test_ttl();
    return CHECK_DONE();
}
