/* SPDX-License-Identifier: MIT */
/* Unit tests for the crypto layer: published known-answer vectors, tampering, reuse. */
#include "check.h"
#include "crypto.h"
#include "hexutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

static void test_aead_vector(enum crypto_aead_alg alg, const char *key_hex, const char *nonce_hex,
                             const char *ad_hex, const char *pt_hex, const char *ct_hex)
{
    uint8_t key[32], nonce[12], ad[64], pt[256], ct[256 + 16], out[256 + 16], back[256];
    CHECK_INT(hex_decode(key_hex, key, sizeof(key)), 32);
    CHECK_INT(hex_decode(nonce_hex, nonce, sizeof(nonce)), 12);
    long adlen = hex_decode(ad_hex, ad, sizeof(ad));
    long ptlen = hex_decode(pt_hex, pt, sizeof(pt));
    long ctlen = hex_decode(ct_hex, ct, sizeof(ct));
    CHECK(adlen >= 0 && ptlen >= 0);
    CHECK_INT(ctlen, ptlen + 16);

    struct crypto_aead a;
    CHECK_INT(crypto_aead_init(&a, alg, key), 0);
    /* Seal twice with the same context: the key must survive a nonce reset. */
    for (int round = 0; round < 2; round++) {
        CHECK_INT(crypto_aead_seal(&a, nonce, ad, (size_t)adlen, pt, (size_t)ptlen, out), 0);
        CHECK_MEM(out, ct, (size_t)ctlen);
    }
    CHECK_INT(crypto_aead_open(&a, nonce, ad, (size_t)adlen, ct, (size_t)ctlen, back), 0);
    CHECK_MEM(back, pt, (size_t)ptlen);

    /* In place, both ways. */
    memcpy(out, pt, (size_t)ptlen);
    CHECK_INT(crypto_aead_seal(&a, nonce, ad, (size_t)adlen, out, (size_t)ptlen, out), 0);
    CHECK_MEM(out, ct, (size_t)ctlen);
    CHECK_INT(crypto_aead_open(&a, nonce, ad, (size_t)adlen, out, (size_t)ctlen, out), 0);
    CHECK_MEM(out, pt, (size_t)ptlen);

    /* Every flipped bit of ciphertext or tag, and of the AD, fails; the context stays usable. */
    for (long i = 0; i < ctlen; i++) {
        memcpy(out, ct, (size_t)ctlen);
        out[i] ^= (uint8_t)(1u << (i % 8));
        CHECK_INT(crypto_aead_open(&a, nonce, ad, (size_t)adlen, out, (size_t)ctlen, back),
                  CRYPTO_E_AUTH);
    }
    if (adlen > 0) {
        ad[0] ^= 1;
        CHECK_INT(crypto_aead_open(&a, nonce, ad, (size_t)adlen, ct, (size_t)ctlen, back),
                  CRYPTO_E_AUTH);
        ad[0] ^= 1;
    }
    nonce[11] ^= 1;
    CHECK_INT(crypto_aead_open(&a, nonce, ad, (size_t)adlen, ct, (size_t)ctlen, back),
              CRYPTO_E_AUTH);
    nonce[11] ^= 1;
    CHECK_INT(crypto_aead_open(&a, nonce, ad, (size_t)adlen, ct, 15, back), CRYPTO_E_AUTH);
    CHECK_INT(crypto_aead_open(&a, nonce, ad, (size_t)adlen, ct, (size_t)ctlen, back), 0);
    CHECK_MEM(back, pt, (size_t)ptlen);
    crypto_aead_free(&a);
    crypto_aead_free(&a); /* idempotent */
}

static void test_hash(void)
{
    uint8_t out[64], want[64];
    /* FIPS 180-2 "abc", split across the two parts. */
    CHECK_INT(crypto_hash(CRYPTO_SHA256, (const uint8_t *)"a", 1, (const uint8_t *)"bc", 2, out),
              0);
    hex_decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 64);
    CHECK_MEM(out, want, 32);
    /* RFC 7693 appendix A: BLAKE2b-512("abc"). */
    CHECK_INT(crypto_hash(CRYPTO_BLAKE2B, (const uint8_t *)"abc", 3, NULL, 0, out), 0);
    hex_decode("ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
               "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
               want, 64);
    CHECK_MEM(out, want, 64);
    CHECK_INT(crypto_hash_len(CRYPTO_SHA256), 32);
    CHECK_INT(crypto_hash_len(CRYPTO_BLAKE2B), 64);
    CHECK_INT(crypto_hash_blocklen(CRYPTO_BLAKE2B), 128);

    /* RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?"). */
    const char *msg = "what do ya want for nothing?";
    CHECK_INT(crypto_hmac(CRYPTO_SHA256, (const uint8_t *)"Jefe", 4, (const uint8_t *)msg, 10,
                          (const uint8_t *)msg + 10, strlen(msg) - 10, out),
              0);
    hex_decode("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 64);
    CHECK_MEM(out, want, 32);
    /* HMAC-BLAKE2b (128-byte block), value from Python hmac.new(b"key", MSG, blake2b). */
    const char *fox = "The quick brown fox jumps over the lazy dog";
    CHECK_INT(crypto_hmac(CRYPTO_BLAKE2B, (const uint8_t *)"key", 3, (const uint8_t *)fox,
                          strlen(fox), NULL, 0, out),
              0);
    hex_decode("92294f92c0dfb9b00ec9ae8bd94d7e7d8a036b885a499f149dfe2fd2199394aa"
               "af6b8894a1730cccb2cd050f9bcf5062a38b51b0dab33207f8ef35ae2c9df51b",
               want, 64);
    CHECK_MEM(out, want, 64);
    /* The empty key (a thread's HMAC context is kept keyed with a public one between calls;
     * this must not be mistaken for it). Value from Python hmac.new(b"", b"", sha256). */
    CHECK_INT(crypto_hmac(CRYPTO_SHA256, NULL, 0, NULL, 0, NULL, 0, out), 0);
    hex_decode("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", want, 64);
    CHECK_MEM(out, want, 32);
}

/* crypto_hkdf2 is Noise's HKDF written out with crypto_hmac, for both hashes, with and
 * without input key material; HMAC still gives RFC 4231's value after it. */
static void test_hkdf2(void)
{
    static const uint8_t one = 1, two = 2;
    uint8_t ck[64], ikm[32], o1[64], o2[64], temp[64], w1[64], w2[64];
    for (size_t i = 0; i < sizeof(ck); i++)
        ck[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof(ikm); i++)
        ikm[i] = (uint8_t)(200 - i);
    for (int alg = CRYPTO_SHA256; alg <= CRYPTO_BLAKE2B; alg++) {
        size_t n = crypto_hash_len((enum crypto_hash_alg)alg);
        for (size_t len = 0; len <= sizeof(ikm); len += sizeof(ikm)) {
            CHECK_INT(crypto_hkdf2((enum crypto_hash_alg)alg, ck, len ? ikm : NULL, len, o1, o2),
                      0);
            CHECK_INT(crypto_hmac((enum crypto_hash_alg)alg, ck, n, ikm, len, NULL, 0, temp), 0);
            CHECK_INT(crypto_hmac((enum crypto_hash_alg)alg, temp, n, &one, 1, NULL, 0, w1), 0);
            CHECK_INT(crypto_hmac((enum crypto_hash_alg)alg, temp, n, w1, n, &two, 1, w2), 0);
            CHECK_MEM(o1, w1, n);
            CHECK_MEM(o2, w2, n);
        }
    }
    uint8_t out[64], want[64];
    const char *msg = "what do ya want for nothing?";
    CHECK_INT(crypto_hmac(CRYPTO_SHA256, (const uint8_t *)"Jefe", 4, (const uint8_t *)msg,
                          strlen(msg), NULL, 0, out),
              0);
    hex_decode("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 64);
    CHECK_MEM(out, want, 32);
}

static void test_x25519(void)
{
    /* RFC 7748 section 6.1. */
    uint8_t a[32], b[32], apub[32], bpub[32], want[32], k1[32], k2[32];
    hex_decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a, 32);
    hex_decode("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b, 32);
    CHECK_INT(crypto_x25519_public(a, apub), 0);
    CHECK_INT(crypto_x25519_public(b, bpub), 0);
    hex_decode("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", want, 32);
    CHECK_MEM(apub, want, 32);
    hex_decode("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", want, 32);
    CHECK_MEM(bpub, want, 32);
    CHECK_INT(crypto_x25519(k1, a, bpub), 0);
    CHECK_INT(crypto_x25519(k2, b, apub), 0);
    hex_decode("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", want, 32);
    CHECK_MEM(k1, want, 32);
    CHECK_MEM(k2, want, 32);
    /* With our public key passed in (the cheaper path the handshake takes): the same. */
    memset(k1, 0, 32);
    memset(k2, 0, 32);
    CHECK_INT(crypto_x25519_pair(k1, a, apub, bpub), 0);
    CHECK_INT(crypto_x25519_pair(k2, b, bpub, apub), 0);
    CHECK_MEM(k1, want, 32);
    CHECK_MEM(k2, want, 32);

    /* Low-order points give the all-zero secret, which MUST be rejected: u = 0, u = 1 and
     * the order-8 point from RFC 7748's reference list. */
    uint8_t low[3][32] = {{0}, {1}, {0}};
    hex_decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", low[2], 32);
    for (int i = 0; i < 3; i++) {
        memset(k1, 0xaa, 32);
        CHECK_INT(crypto_x25519(k1, a, low[i]), CRYPTO_E_ZERO);
        static const uint8_t zero[32];
        CHECK_MEM(k1, zero, 32); /* wiped */
        memset(k1, 0xaa, 32);
        CHECK_INT(crypto_x25519_pair(k1, a, apub, low[i]), CRYPTO_E_ZERO);
        CHECK_MEM(k1, zero, 32);
    }

    /* Fresh pairs agree and differ from each other. */
    uint8_t p1[32], q1[32], p2[32], q2[32];
    CHECK_INT(crypto_x25519_keygen(p1, q1), 0);
    CHECK_INT(crypto_x25519_keygen(p2, q2), 0);
    CHECK(!crypto_equal(q1, q2, 32));
    CHECK_INT(crypto_x25519(k1, p1, q2), 0);
    CHECK_INT(crypto_x25519(k2, p2, q1), 0);
    CHECK(crypto_equal(k1, k2, 32));
}

static void test_pem(void)
{
    uint8_t priv[32], pub[32], back[32];
    char pem[512];
    CHECK_INT(crypto_x25519_keygen(priv, pub), 0);
    int n = crypto_x25519_to_pem(priv, pem, sizeof(pem));
    CHECK(n > 0);
    CHECK((size_t)n == strlen(pem));
    CHECK(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
    CHECK_INT(crypto_x25519_from_pem(pem, (size_t)n, back), 0);
    CHECK_MEM(back, priv, 32);
    CHECK_INT(crypto_x25519_to_pem(priv, pem, 20), -ENOBUFS);

    /* An Ed25519 key (RFC 8410 section 10.3) is a valid PKCS#8 key but not X25519. */
    const char *ed = "-----BEGIN PRIVATE KEY-----\n"
                     "MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n"
                     "-----END PRIVATE KEY-----\n";
    CHECK_INT(crypto_x25519_from_pem(ed, strlen(ed), back), CRYPTO_E_KEY);
    CHECK_INT(crypto_x25519_from_pem("garbage", 7, back), CRYPTO_E_KEY);
}

/* A keyed AEAD is its key: the OpenSSL contexts are the thread's, a bounded LRU cache. Many
 * keys used in turn each get the right context back (re-keyed when evicted); freeing a key
 * drops its context; a copy is independent; the cache dies with its thread. */
static void test_aead_cache(void)
{
    enum { K = 3 * CRYPTO_AEAD_CACHE };
    static const uint8_t nonce[12] = {1};
    struct crypto_aead a[K];
    uint8_t key[32], ct[K][16 + 16], pt[16], back[16];
    crypto_aead_cache_drain();
    CHECK_INT(crypto_aead_cache_size(), 0);
    for (int i = 0; i < K; i++) {
        memset(key, i + 1, sizeof(key));
        CHECK_INT(crypto_aead_init(&a[i], i % 2 ? CRYPTO_CHACHAPOLY : CRYPTO_AES256GCM, key), 0);
    }
    CHECK_INT(crypto_aead_cache_size(), 0); /* keying allocates nothing */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < K; i++) {
            memset(pt, 'a' + i, sizeof(pt));
            uint8_t out[32];
            CHECK_INT(crypto_aead_seal(&a[i], nonce, NULL, 0, pt, sizeof(pt), out), 0);
            if (round == 0)
                memcpy(ct[i], out, sizeof(out));
            CHECK_MEM(out, ct[i], sizeof(out)); /* the same key gives the same bytes */
            CHECK(crypto_aead_cache_size() <= 2 * CRYPTO_AEAD_CACHE);
        }
    }
    /* Each key opens its own record and no other, whichever context is where now. */
    for (int i = K - 1; i >= 0; i--) {
        CHECK_INT(crypto_aead_open(&a[i], nonce, NULL, 0, ct[i], sizeof(ct[i]), back), 0);
        memset(pt, 'a' + i, sizeof(pt));
        CHECK_MEM(back, pt, sizeof(pt));
        int j = (i + 2) % K; /* same algorithm, another key */
        CHECK_INT(crypto_aead_open(&a[j], nonce, NULL, 0, ct[i], sizeof(ct[i]), back),
                  CRYPTO_E_AUTH);
    }
    CHECK_INT(crypto_aead_cache_size(), 2 * CRYPTO_AEAD_CACHE);
    /* A copy has its own id: freeing the original leaves it working. */
    struct crypto_aead cp;
    CHECK_INT(crypto_aead_copy(&cp, &a[0]), 0);
    CHECK(cp.id != a[0].id);
    CHECK_INT(crypto_aead_seal(&a[0], nonce, NULL, 0, pt, sizeof(pt), ct[0]), 0);
    unsigned before = crypto_aead_cache_size();
    crypto_aead_free(&a[0]);
    CHECK_INT(crypto_aead_cache_size(), before - 1); /* its context went with the key */
    CHECK_INT(a[0].id, 0);
    uint8_t zero[32] = {0};
    CHECK_MEM(a[0].key, zero, sizeof(zero)); /* the key is wiped */
    CHECK_INT(crypto_aead_open(&cp, nonce, NULL, 0, ct[0], sizeof(ct[0]), back), 0);
    CHECK_MEM(back, pt, sizeof(pt));
    CHECK_INT(crypto_aead_seal(&a[0], nonce, NULL, 0, pt, sizeof(pt), ct[0]), CRYPTO_E_LIB);
    crypto_aead_free(&cp);
    for (int i = 1; i < K; i++)
        crypto_aead_free(&a[i]);
    crypto_aead_cache_drain();
    CHECK_INT(crypto_aead_cache_size(), 0);
}

static void *aead_thread(void *arg)
{
    struct crypto_aead *a = arg;
    uint8_t out[4 + 16];
    static const uint8_t nonce[12] = {2};
    CHECK_INT(crypto_aead_seal(a, nonce, NULL, 0, (const uint8_t *)"abcd", 4, out), 0);
    CHECK_INT(crypto_aead_cache_size(), 1);
    return NULL; /* the thread's context is freed as it exits (the sanitizer build checks) */
}

static void test_aead_cache_threads(void)
{
    uint8_t key[32] = {9};
    struct crypto_aead a;
    CHECK_INT(crypto_aead_init(&a, CRYPTO_AES256GCM, key), 0);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, aead_thread, &a), 0);
    CHECK_INT(pthread_join(t, NULL), 0);
    CHECK_INT(crypto_aead_cache_size(), 0); /* that context was the other thread's */
    crypto_aead_free(&a);
}

static void test_misc(void)
{
    uint8_t a[64] = {0}, b[64] = {0};
    CHECK_INT(crypto_random(a, sizeof(a)), 0);
    CHECK_INT(crypto_random(b, sizeof(b)), 0);
    CHECK(!crypto_equal(a, b, sizeof(a)));
    memcpy(b, a, sizeof(a));
    CHECK(crypto_equal(a, b, sizeof(a)));
    b[63] ^= 0x80;
    CHECK(!crypto_equal(a, b, sizeof(a)));
    crypto_wipe(a, sizeof(a));
    static const uint8_t zero[64];
    CHECK_MEM(a, zero, sizeof(a));
    CHECK_STR(crypto_strerror(CRYPTO_E_AUTH), "authentication tag mismatch");
}

int main(void)
{
    /* RFC 8439 section 2.8.2. */
    test_aead_vector(CRYPTO_CHACHAPOLY,
                     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
                     "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7",
                     "4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
                     "73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
                     "6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
                     "637265656e20776f756c642062652069742e",
                     "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
                     "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
                     "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
                     "3ff4def08e4b7a9de576d26586cec64b6116"
                     "1ae10b594f09e26a7e902ecbd0600691");
    /* McGrew & Viega GCM spec, test cases 13 and 14 (AES-256, zero key and IV). */
    test_aead_vector(CRYPTO_AES256GCM,
                     "0000000000000000000000000000000000000000000000000000000000000000",
                     "000000000000000000000000", "", "", "530f8afbc74536b9a963b4f1c4cb738b");
    test_aead_vector(CRYPTO_AES256GCM,
                     "0000000000000000000000000000000000000000000000000000000000000000",
                     "000000000000000000000000", "", "00000000000000000000000000000000",
                     "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
    test_hkdf2();
    test_aead_cache();
    test_aead_cache_threads();
    test_hash();
    test_x25519();
    test_pem();
    test_misc();
    return CHECK_DONE();
}
