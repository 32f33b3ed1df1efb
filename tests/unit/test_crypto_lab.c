/* SPDX-License-Identifier: MIT */
/* Unit tests for crypto_lab: HKDF/AES-CFB/CBC/HMAC known answers, DH groups, keys, checks. */
#include "check.h"
#include "crypto_lab.h"

#include <errno.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    if (n > cap)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            abort();
        out[i] = (uint8_t)v;
    }
    return n;
}

/*
 * Known answers generated once with Debian's python3-cryptography 38.0.4:
 *
 *   from cryptography.hazmat.primitives import hashes
 *   from cryptography.hazmat.primitives.kdf.hkdf import HKDF
 *   from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
 *   ikm = bytes(range(256))
 *   k = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
 *            info=b'handshake data').derive(ikm)
 *   iv = bytes(range(16, 32))
 *   e = Cipher(algorithms.AES(k), modes.CFB(iv)).encryptor()
 *   ct = e.update('Секретное сообщение'.encode()) + e.finalize()
 *   print(k.hex(), ct.hex())
 */
static const char kat_hkdf[] = "93b8639a742528b32d3d21302db87daaa1d73e80f99ebcaae7fc1e2e0537806d";
static const char kat_cfb[] =
    "bcf0808201ea57b067f788b03dfe906eefc9737aa5e4c04b8e4af8ee951d5ae95a182afd99";
static const char kat_plain[] = "Секретное сообщение";

static void test_hkdf(void)
{
    uint8_t ikm[256], out[32], want[64];
    for (int i = 0; i < 256; i++)
        ikm[i] = (uint8_t)i;
    CHECK_INT(crypto_lab_hkdf_sha256(ikm, sizeof(ikm), NULL, 0, (const uint8_t *)"handshake data",
                                     14, out, 32),
              0);
    unhex(kat_hkdf, want, sizeof(want));
    CHECK_MEM(out, want, 32);

    /* RFC 5869 A.3: zero-length salt and info. */
    uint8_t ikm3[22], okm[42];
    memset(ikm3, 0x0b, sizeof(ikm3));
    CHECK_INT(crypto_lab_hkdf_sha256(ikm3, sizeof(ikm3), NULL, 0, NULL, 0, okm, sizeof(okm)), 0);
    unhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
          want, sizeof(want));
    CHECK_MEM(okm, want, 42);

    CHECK_INT(crypto_lab_hkdf_sha256(ikm, 1, NULL, 0, NULL, 0, okm, 0), -EINVAL);
}

static void test_cfb(void)
{
    uint8_t key[32], iv[16], ct[64], want[64], back[64];
    unhex(kat_hkdf, key, sizeof(key));
    for (int i = 0; i < 16; i++)
        iv[i] = (uint8_t)(16 + i);
    size_t n = strlen(kat_plain);
    size_t wn = unhex(kat_cfb, want, sizeof(want));
    CHECK_INT(n, wn);
    CHECK_INT(crypto_lab_aes256_cfb(true, key, iv, (const uint8_t *)kat_plain, n, ct), 0);
    CHECK_MEM(ct, want, n);
    CHECK_INT(crypto_lab_aes256_cfb(false, key, iv, ct, n, back), 0);
    CHECK_MEM(back, kat_plain, n);
    /* CFB is a stream mode: any length works, in place too. */
    memcpy(back, kat_plain, n);
    CHECK_INT(crypto_lab_aes256_cfb(true, key, iv, back, 1, back), 0);
    CHECK_INT(back[0], want[0]);
}

static void test_cbc_hmac(void)
{
    /* NIST SP 800-38A F.2.1 (CBC-AES128.Encrypt), first block, then our PKCS#7 block. */
    uint8_t key[16], iv[16], pt[16], want[16], ct[64], back[64];
    size_t n = 0, m = 0;
    unhex("2b7e151628aed2a6abf7158809cf4f3c", key, 16);
    unhex("000102030405060708090a0b0c0d0e0f", iv, 16);
    unhex("6bc1bee22e409f96e93d7e117393172a", pt, 16);
    unhex("7649abac8119b246cee98e9b12e9197d", want, 16);
    CHECK_INT(crypto_lab_aes128_cbc_encrypt(key, iv, pt, 16, ct, sizeof(ct), &n), 0);
    CHECK_INT(n, 32);
    CHECK_MEM(ct, want, 16);
    CHECK_INT(crypto_lab_aes128_cbc_decrypt(key, iv, ct, n, back, sizeof(back), &m), 0);
    CHECK_INT(m, 16);
    CHECK_MEM(back, pt, 16);
    CHECK_INT(crypto_lab_aes128_cbc_encrypt(key, iv, pt, 16, ct, 31, &n), -EMSGSIZE);
    CHECK_INT(crypto_lab_aes128_cbc_decrypt(key, iv, ct, 31, back, sizeof(back), &m), -EBADMSG);
    CHECK_INT(crypto_lab_aes128_cbc_decrypt(key, iv, ct, 0, back, sizeof(back), &m), -EBADMSG);
    /* A flipped last byte breaks the padding (0x10 expected) nearly always; with the first
     * block the padding block decrypts to garbage, which must be refused, never trusted. */
    CHECK_INT(crypto_lab_aes128_cbc_encrypt(key, iv, pt, 15, ct, sizeof(ct), &n), 0);
    CHECK_INT(n, 16);
    ct[15] ^= 0x01;
    int r = crypto_lab_aes128_cbc_decrypt(key, iv, ct, n, back, sizeof(back), &m);
    CHECK(r == -EBADMSG || (r == 0 && m < 16));

    /* RFC 4231 test case 2. */
    uint8_t mac[32], wmac[32];
    CHECK_INT(crypto_lab_hmac_sha256((const uint8_t *)"Jefe", 4,
                                     (const uint8_t *)"what do ya want for nothing?", 28, mac),
              0);
    unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", wmac, 32);
    CHECK_MEM(mac, wmac, 32);

    uint8_t r1[32] = {0}, r2[32] = {0};
    CHECK_INT(crypto_lab_random(r1, 32), 0);
    CHECK_INT(crypto_lab_random(r2, 32), 0);
    CHECK(memcmp(r1, r2, 32) != 0);
}

static const char ffdhe2048_pem[] =
    "-----BEGIN DH PARAMETERS-----\n"
    "MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz\n"
    "+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a\n"
    "87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7\n"
    "YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi\n"
    "7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD\n"
    "ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==\n"
    "-----END DH PARAMETERS-----\n";

/* Written by the notebook's own code (Python cryptography 38):
 *   params = dh.generate_parameters(generator=2, key_size=2048)
 *   params.parameter_bytes(Encoding.PEM, ParameterFormat.PKCS3)
 * A 2048-bit group other than ffdhe2048, without q. */
static const char notebook_pem[] =
    "-----BEGIN DH PARAMETERS-----\n"
    "MIIBCAKCAQEAqnKkeeXueZFPaTYndt1LtOGWCL5MdiA7I8tlU3cFadfiQLgWK9ui\n"
    "2Mih2VhZEFD3aCEBWVlZ/LyfEBXKmoDhAzxqdWwT1FO5xGd2M2IaDJGMUGeUtmCI\n"
    "NvmnU+NigzRjvw2lrDmDBvb7ebRRuZlpOU9OEdh/qA8+WSy9CW/rlIsfhSAIL6Ii\n"
    "5S2xgXBYBEfoho1fdYYaPU1dQG//ZtWbjR1n0C9BsROvAb44Qc/pWpl8uTSNioUw\n"
    "cNpO5syBCxY7fNNWJSFY3O53KgumikcJ1qoxxTJHK502mMXaXuSvWCIm8+KpMnm+\n"
    "RcaRSuW7FhtuFFfjpWpiZNksOrO5GAigXwIBAg==\n"
    "-----END DH PARAMETERS-----\n";

/*
 * Shared-secret known answer, generated once with python3-cryptography 38.0.4 in the
 * ffdhe2048 group above; x_b was searched so that the secret starts with a zero byte, which
 * Python keeps (it pads to the size of p):
 *
 *   pn = serialization.load_pem_parameters(FFDHE2048_PEM).parameter_numbers()
 *   priv = lambda x: dh.DHPrivateNumbers(
 *       x, dh.DHPublicNumbers(pow(pn.g, x, pn.p), pn)).private_key()
 *   a = priv(0x1234567890abcdef1234567890abcdef1234567890abcdef1234567)
 *   b = priv(0xe3)
 *   b.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
 *   a.exchange(b.public_key()).hex()
 */
static const char kat_dh_priv_a[] = "1234567890abcdef1234567890abcdef1234567890abcdef1234567";
static const char kat_dh_pub_b[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBPTCCARcGCSqGSIb3DQEDATCCAQgCggEBAP//////////rfhUWKK7Spqv3FYg\n"
    "Jz088di5xYPOLTaVqeE2QRRkM/vMk53OJJs++X0v42NjDHXY9oGyAq7EYXrT3x7V\n"
    "1f1lYSQz9R9fBm7QhWNlVT3tGvO1VxNef1fJNZhPDHDg5ot34qaJ2vPv6HId8Vih\n"
    "Nq3nNTCsyk9IOnl6vAqxgrMk+2HRCKlLssjj+7lq2rdg1/RoHU9Co945TfSuVu3n\n"
    "Y3K7GQsHp8juCm1wngL84c334uzANATNKDQvYZFy/pzphYP/jk8SMu7ygYPD/jsb\n"
    "TG+tczu1/LwuwiAFxY7xg30Wg7LG80omwbLv+ohrQjhhKFyX//////////8CAQID\n"
    "IAACHQgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    "-----END PUBLIC KEY-----\n";
static const char kat_dh_secret[] =
    "006cae471a6170dea7de42215fabb88a5948888606616a98db368d4cf9ae384355264504c8c9dffeb13960bf"
    "125eef33f116f3cb230b5c24aa605d05155949917ab7c19dd2251843efcd9acea43eb6d305be1175227b8d9d"
    "25d5b774a0323f81803521a3f751d1e8c8d07dbeafa4469c87553e5dfa58f3c5e665610421799606f0945267"
    "a03c08acf8ab83243d0339fd687749a87294d6ba5f0e334114d82ac315a24126e9d4113e0f08ffd0739b4316"
    "716f1b652a58a9411ca58a64dcbbe0e8917f8674a9b5c2bcb9fb3c2b45a2ea826d068c05c5e6ad85da03efcc"
    "6ef43823afaa1f7641c974baa7b7a66874f86ac94bb37d6e3c30ed96e5f8b78244fb537c";

/* Builds a DH key in g's group from raw numbers (priv may be NULL for a public key). Test-only:
 * lets us fix a private key for a known answer and forge out-of-range public keys. */
static EVP_PKEY *make_key(const struct crypto_lab_dh_group *g, const BIGNUM *priv,
                          const BIGNUM *pub)
{
    BIGNUM *p = NULL, *gen = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
    EVP_PKEY *pk = NULL;
    if (!bld || !ctx || !EVP_PKEY_get_bn_param(g->params, OSSL_PKEY_PARAM_FFC_P, &p) ||
        !EVP_PKEY_get_bn_param(g->params, OSSL_PKEY_PARAM_FFC_G, &gen))
        abort();
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_FFC_P, p);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_FFC_G, gen);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, pub);
    if (priv)
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv);
    params = OSSL_PARAM_BLD_to_param(bld);
    if (!params || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1)
        abort();
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(p);
    BN_free(gen);
    return pk;
}

static size_t to_pem(EVP_PKEY *pk, char *out, size_t cap)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p;
    if (!bio || !PEM_write_bio_PUBKEY(bio, pk))
        abort();
    long n = BIO_get_mem_data(bio, &p);
    if (n <= 0 || (size_t)n >= cap)
        abort();
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    BIO_free(bio);
    return (size_t)n;
}

/* PEM of a public key with an arbitrary y in g's group. */
static size_t forged_pem(const struct crypto_lab_dh_group *g, const BIGNUM *y, char *out,
                         size_t cap)
{
    EVP_PKEY *k = make_key(g, NULL, y);
    size_t n = to_pem(k, out, cap);
    EVP_PKEY_free(k);
    return n;
}

static void test_dh_groups(void)
{
    struct crypto_lab_dh_group g, nb, bad;
    CHECK_INT(crypto_lab_dh_group_init(&g, NULL, 0, 0), 0);
    CHECK_INT(g.bits, 2048);
    /* The built-in group goes out as PKCS#3, byte for byte as OpenSSL/Python write it. */
    CHECK_STR(g.pem, ffdhe2048_pem);
    CHECK_INT(g.pem_len, strlen(ffdhe2048_pem));
    crypto_lab_dh_group_free(&g);
    crypto_lab_dh_group_free(&g); /* idempotent */

    /* A notebook-made group, fully checked, re-encodes to exactly what Python wrote. */
    CHECK_INT(
        crypto_lab_dh_group_init(&nb, notebook_pem, strlen(notebook_pem), CRYPTO_LAB_DH_FULL_CHECK),
        0);
    CHECK(nb.pem && strcmp(nb.pem, notebook_pem) == 0);
    crypto_lab_dh_group_free(&nb);

    /* Garbage, truncation, wrong PEM type, too long, too small, X9.42 when not allowed. */
    CHECK_INT(crypto_lab_dh_group_init(&bad, "hello", 5, 0), -EBADMSG);
    CHECK(bad.params == NULL && bad.pem == NULL);
    CHECK_INT(crypto_lab_dh_group_init(&bad, ffdhe2048_pem, strlen(ffdhe2048_pem) - 40, 0),
              -EBADMSG);
    CHECK_INT(crypto_lab_dh_group_init(&bad, kat_dh_pub_b, strlen(kat_dh_pub_b), 0), -EBADMSG);
    static char big[CRYPTO_LAB_PEM_MAX + 2];
    memset(big, ' ', sizeof(big) - 1);
    CHECK_INT(crypto_lab_dh_group_init(&bad, big, sizeof(big) - 1, 0), -EMSGSIZE);
    /* `openssl dhparam 512`: a real group, too small. */
    static const char small_pem[] =
        "-----BEGIN DH PARAMETERS-----\n"
        "MEYCQQDfb5Q2f0XU02tpRxfKxXWoDHWGCmfJpxnFsyfLhK6HXLsGNg2nXh22aOzr\n"
        "IcxVpve6zAiX5GZZwwjjMvMlNJAvAgEC\n"
        "-----END DH PARAMETERS-----\n";
    CHECK_INT(crypto_lab_dh_group_init(&bad, small_pem, strlen(small_pem), 0), -ERANGE);
}

/* An X9.42 ("DHX") public key in ffdhe2048, as pyca/cryptography >= 40 writes for that group
 * (made with: openssl genpkey -algorithm DHX -pkeyopt group:ffdhe2048 | openssl pkey -pubout). */
static const char dhx_ffdhe2048_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIDJjCCAhkGByqGSM4+AgEwggIMAoIBAQD//////////634VFiiu0qar9xWICc9\n"
    "PPHYucWDzi02lanhNkEUZDP7zJOdziSbPvl9L+NjYwx12PaBsgKuxGF6098e1dX9\n"
    "ZWEkM/UfXwZu0IVjZVU97RrztVcTXn9XyTWYTwxw4OaLd+Kmidrz7+hyHfFYoTat\n"
    "5zUwrMpPSDp5erwKsYKzJPth0QipS7LI4/u5atq3YNf0aB1PQqPeOU30rlbt52Ny\n"
    "uxkLB6fI7gptcJ4C/OHN9+LswDQEzSg0L2GRcv6c6YWD/45PEjLu8oGDw/47G0xv\n"
    "rXM7tfy8LsIgBcWO8YN9FoOyxvNKJsGy7/qIa0I4YShcl///////////AgECAoIB\n"
    "AH//////////1vwqLFFdpU1X7isQE56eeOxc4sHnFptK1PCbIIoyGf3mSc7nEk2f\n"
    "fL6X8bGxhjrse0DZAVdiML1p749q6v6ysJIZ+o+vgzdoQrGyqp72jXnaq4mvP6vk\n"
    "mswnhjhwc0W78VNE7Xn39DkO+KxQm1bzmphWZSekHTy9XgVYwVmSfbDohFSl2WRx\n"
    "/dy1bVuwa/o0DqehUe8cpvpXK3bzsbldjIWD0+R3BTa4TwF+cOb78XZgGgJmlBoX\n"
    "sMi5f050wsH/xyeJGXd5QMHh/x2NpjfWuZ3a/l4XYRAC4sd4wb6LQdljeaUTYNl3\n"
    "/UQ1oRwwlC5L//////////8DggEFAAKCAQA0WHB6PX6RyEuKnZ+CXcVVBadGr6qc\n"
    "WSTjXaH3a2kFOlrnWP/DPAfwVFOjgRewMZcQ60UeC1VnXjSMbnJG/t9VitWKX6ES\n"
    "ra5MYYwbGTtzttZBYIBJPIvf10KamIc2D9RvyTej5ExP+xjU6G0+Gm9mXqxMq0ph\n"
    "/vbJjmwcOuHiRFYy4d0uuCAvf3uvV6U5yd25AT7Ih2h0MbpbiL++0RUSWj2kndKO\n"
    "rUyhRVAgmNYx2aEpHgfzNd7Ygdeh56xihPiqrJB8nusBIXxrdcvZj0s/Obw3FvQf\n"
    "std+WGRxWPpP3+G4n/JdBfylv9Nc+M1PSK6EHPNtXwbLW/+u8IwpnYbl\n"
    "-----END PUBLIC KEY-----\n";

static void test_dh_x942_peer(void)
{
    struct crypto_lab_dh_group g;
    struct crypto_lab_dh_key a = {0};
    uint8_t s1[512];
    size_t n = 0;
    CHECK_INT(crypto_lab_dh_group_init(&g, NULL, 0, 0), 0);
    CHECK_INT(crypto_lab_dh_keygen(&a, &g), 0);
    /* Same group, other encoding: accepted, and the secret is the size of p. */
    CHECK_INT(
        crypto_lab_dh_derive(&a, dhx_ffdhe2048_pub, strlen(dhx_ffdhe2048_pub), s1, sizeof(s1), &n),
        0);
    CHECK_INT(n, 256);
    crypto_lab_dh_key_free(&a);
    crypto_lab_dh_group_free(&g);
}

static void test_dh_agree(void)
{
    struct crypto_lab_dh_group g;
    struct crypto_lab_dh_key a = {0}, b = {0};
    char pa[4096], pb[4096];
    size_t la = 0, lb = 0, sa = 0, sb = 0;
    uint8_t s1[CRYPTO_LAB_DH_SECRET_MAX], s2[CRYPTO_LAB_DH_SECRET_MAX];

    CHECK_INT(crypto_lab_dh_group_init(&g, NULL, 0, 0), 0);
    CHECK_INT(crypto_lab_dh_keygen(&a, &g), 0);
    CHECK_INT(crypto_lab_dh_keygen(&b, &g), 0);
    CHECK_INT(crypto_lab_dh_pub_pem(&a, pa, sizeof(pa), &la), 0);
    CHECK_INT(crypto_lab_dh_pub_pem(&b, pb, sizeof(pb), &lb), 0);
    CHECK(strncmp(pa, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
    CHECK(la > 27 && strcmp(pa + la - 25, "-----END PUBLIC KEY-----\n") == 0);
    /* A 2048-bit key PEM fits the notebook's recv(1024). */
    CHECK(la < 1024);
    CHECK(strcmp(pa, pb) != 0);
    CHECK_INT(crypto_lab_dh_pub_pem(&a, pa, 100, &la), -EMSGSIZE);
    CHECK_INT(crypto_lab_dh_pub_pem(&a, pa, sizeof(pa), &la), 0);

    CHECK_INT(crypto_lab_dh_derive(&a, pb, lb, s1, sizeof(s1), &sa), 0);
    CHECK_INT(crypto_lab_dh_derive(&b, pa, la, s2, sizeof(s2), &sb), 0);
    CHECK_INT(sa, 256);
    CHECK_INT(sb, 256);
    CHECK_MEM(s1, s2, 256);
    CHECK_INT(crypto_lab_dh_derive(&a, pb, lb, s1, 255, &sa), -EMSGSIZE);

    /* Known answer against Python, including the leading zero byte. */
    BIGNUM *x = NULL;
    CHECK(BN_hex2bn(&x, kat_dh_priv_a) > 0);
    BIGNUM *y = BN_new();
    BIGNUM *p = NULL, *gen = NULL;
    BN_CTX *bn = BN_CTX_new();
    CHECK(EVP_PKEY_get_bn_param(g.params, OSSL_PKEY_PARAM_FFC_P, &p));
    CHECK(EVP_PKEY_get_bn_param(g.params, OSSL_PKEY_PARAM_FFC_G, &gen));
    CHECK(BN_mod_exp(y, gen, x, p, bn));
    struct crypto_lab_dh_key fixed = {make_key(&g, x, y)};
    uint8_t want[256];
    unhex(kat_dh_secret, want, sizeof(want));
    CHECK_INT(want[0], 0);
    CHECK_INT(crypto_lab_dh_derive(&fixed, kat_dh_pub_b, strlen(kat_dh_pub_b), s1, sizeof(s1), &sa),
              0);
    CHECK_INT(sa, 256);
    CHECK_MEM(s1, want, 256);

    /* Out-of-range public keys: 0, 1, p-1, p, p+1; then y = 2 (= g, in range) is accepted. */
    BIGNUM *bad = BN_new();
    char pem[4096];
    size_t n = 0;
    BN_zero(bad);
    n = forged_pem(&g, bad, pem, sizeof(pem));
    CHECK_INT(crypto_lab_dh_derive(&a, pem, n, s1, sizeof(s1), &sa), -EKEYREJECTED);
    BN_one(bad);
    n = forged_pem(&g, bad, pem, sizeof(pem));
    CHECK_INT(crypto_lab_dh_derive(&a, pem, n, s1, sizeof(s1), &sa), -EKEYREJECTED);
    const int deltas[] = {-1, 0, 1}; /* around p */
    for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
        BN_copy(bad, p);
        if (deltas[i] < 0)
            BN_sub_word(bad, 1);
        else
            BN_add_word(bad, (BN_ULONG)deltas[i]);
        n = forged_pem(&g, bad, pem, sizeof(pem));
        CHECK_INT(crypto_lab_dh_derive(&a, pem, n, s1, sizeof(s1), &sa), -EKEYREJECTED);
    }
    BN_set_word(bad, 2);
    n = forged_pem(&g, bad, pem, sizeof(pem));
    CHECK_INT(crypto_lab_dh_derive(&a, pem, n, s1, sizeof(s1), &sa), 0);

    /* A key from another group (the notebook's) and from a larger one (ffdhe3072). */
    struct crypto_lab_dh_group nb;
    struct crypto_lab_dh_key c = {0};
    CHECK_INT(crypto_lab_dh_group_init(&nb, notebook_pem, strlen(notebook_pem), 0), 0);
    CHECK_INT(crypto_lab_dh_keygen(&c, &nb), 0);
    CHECK_INT(crypto_lab_dh_pub_pem(&c, pem, sizeof(pem), &n), 0);
    CHECK_INT(crypto_lab_dh_derive(&a, pem, n, s1, sizeof(s1), &sa), -EKEYREJECTED);
    CHECK_INT(crypto_lab_dh_derive(&c, pa, la, s1, sizeof(s1), &sa), -EKEYREJECTED);
    crypto_lab_dh_key_free(&c);
    {
        EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
        EVP_PKEY *k3 = NULL;
        OSSL_PARAM gp[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"ffdhe3072", 0),
            OSSL_PARAM_construct_end()};
        CHECK(kc && EVP_PKEY_keygen_init(kc) == 1 && EVP_PKEY_CTX_set_params(kc, gp) == 1 &&
              EVP_PKEY_generate(kc, &k3) == 1);
        n = to_pem(k3, pem, sizeof(pem));
        EVP_PKEY_free(k3);
        EVP_PKEY_CTX_free(kc);
        CHECK_INT(crypto_lab_dh_derive(&a, pem, n, s1, sizeof(s1), &sa), -EKEYREJECTED);
    }
    crypto_lab_dh_group_free(&nb);

    /* Wrong and truncated PEM. */
    CHECK_INT(crypto_lab_dh_derive(&a, "garbage", 7, s1, sizeof(s1), &sa), -EBADMSG);
    CHECK_INT(crypto_lab_dh_derive(&a, pb, lb / 2, s1, sizeof(s1), &sa), -EBADMSG);
    CHECK_INT(crypto_lab_dh_derive(&a, pb, lb - 26, s1, sizeof(s1), &sa), -EBADMSG);
    CHECK_INT(crypto_lab_dh_derive(&a, ffdhe2048_pem, strlen(ffdhe2048_pem), s1, sizeof(s1), &sa),
              -EBADMSG);
    memcpy(pem, pb, lb + 1);
    pem[100] = pem[100] == 'A' ? 'B' : 'A'; /* corrupts p: DER still parses, group differs */
    int r = crypto_lab_dh_derive(&a, pem, lb, s1, sizeof(s1), &sa);
    CHECK(r == -EBADMSG || r == -EKEYREJECTED);
    static char big[CRYPTO_LAB_PEM_MAX + 1];
    CHECK_INT(crypto_lab_dh_derive(&a, big, sizeof(big), s1, sizeof(s1), &sa), -EMSGSIZE);

    BN_free(x);
    BN_free(y);
    BN_free(p);
    BN_free(gen);
    BN_free(bad);
    BN_CTX_free(bn);
    crypto_lab_dh_key_free(&fixed);
    crypto_lab_dh_key_free(&a);
    crypto_lab_dh_key_free(&b);
    crypto_lab_dh_group_free(&g);
}

int main(void)
{
    test_hkdf();
    test_cfb();
    test_cbc_hmac();
    test_dh_groups();
    test_dh_agree();
    test_dh_x942_peer();
    return CHECK_DONE();
}
