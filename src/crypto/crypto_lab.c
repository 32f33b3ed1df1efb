/* SPDX-License-Identifier: MIT */
/* Lab crypto over OpenSSL 3 EVP: DH groups and keys, HKDF, AES-CFB/CBC, HMAC, random. Every
 * peer DH key is range- and group-checked before use; secrets are wiped with OPENSSL_cleanse. */
#include "crypto_lab.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/dh.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

/* RFC 7919 Appendix A.1 ffdhe2048 as a PKCS#3 DHParameter (p, g = 2, no privateValueLength),
 * exactly as `openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048` writes it. */
static const char ffdhe2048_pem[] =
    "-----BEGIN DH PARAMETERS-----\n"
    "MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz\n"
    "+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a\n"
    "87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7\n"
    "YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi\n"
    "7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD\n"
    "ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==\n"
    "-----END DH PARAMETERS-----\n";

/* OpenSSL errors are reported through our return codes; its queue must not grow per call. */
static int lib_fail(void)
{
    ERR_clear_error();
    return -EIO;
}

/* Copies a memory BIO's contents into a fresh NUL-terminated string. */
static int bio_to_string(BIO *bio, char **out, size_t *len)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    if (n <= 0)
        return -EIO;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    *out = s;
    *len = (size_t)n;
    return 0;
}

/* Checks 1 < v < p - 1, i.e. v is neither 0, 1, p-1 nor outside [0, p): the values that
 * force the shared secret into a subgroup of order 1 or 2 (RFC 7919 section 5.1). */
static bool bn_in_open_range(const BIGNUM *v, const BIGNUM *p)
{
    bool ok = false;
    BIGNUM *pm1 = BN_dup(p);
    if (!pm1 || !BN_sub_word(pm1, 1))
        goto out;
    ok = BN_cmp(v, BN_value_one()) > 0 && BN_cmp(v, pm1) < 0;
out:
    BN_free(pm1);
    return ok;
}

static bool is_dh_type(const EVP_PKEY *pk, bool allow_x942)
{
    return EVP_PKEY_is_a(pk, "DH") || (allow_x942 && EVP_PKEY_is_a(pk, "DHX"));
}

int crypto_lab_dh_group_init(struct crypto_lab_dh_group *g, const char *pem, size_t len,
                             unsigned flags)
{
    int ret = -EIO;
    BIO *in = NULL, *out = NULL;
    EVP_PKEY_CTX *check = NULL;
    BIGNUM *p = NULL, *gen = NULL;

    memset(g, 0, sizeof(*g));
    if (!pem) {
        pem = ffdhe2048_pem;
        len = sizeof(ffdhe2048_pem) - 1;
    }
    if (len > CRYPTO_LAB_PEM_MAX)
        return -EMSGSIZE;
    in = BIO_new_mem_buf(pem, (int)len);
    if (!in)
        goto fail;
    g->params = PEM_read_bio_Parameters_ex(in, NULL, NULL, NULL);
    if (!g->params || !is_dh_type(g->params, flags & CRYPTO_LAB_DH_ALLOW_X942)) {
        ret = -EBADMSG;
        goto fail;
    }
    g->bits = EVP_PKEY_get_bits(g->params);
    if (g->bits < CRYPTO_LAB_DH_MIN_BITS || g->bits > CRYPTO_LAB_DH_MAX_BITS) {
        ret = -ERANGE;
        goto fail;
    }
    if (!EVP_PKEY_get_bn_param(g->params, OSSL_PKEY_PARAM_FFC_P, &p) ||
        !EVP_PKEY_get_bn_param(g->params, OSSL_PKEY_PARAM_FFC_G, &gen))
        goto fail;
    /* An even p or a generator of order 1 or 2 leaks the shared secret outright. */
    if (!BN_is_odd(p) || !bn_in_open_range(gen, p)) {
        ret = -EKEYREJECTED;
        goto fail;
    }
    if (flags & CRYPTO_LAB_DH_FULL_CHECK) {
        check = EVP_PKEY_CTX_new_from_pkey(NULL, g->params, NULL);
        if (!check)
            goto fail;
        if (EVP_PKEY_param_check(check) != 1) {
            ret = -EKEYREJECTED;
            goto fail;
        }
    }
    out = BIO_new(BIO_s_mem());
    if (!out || !PEM_write_bio_Parameters(out, g->params))
        goto fail;
    ret = bio_to_string(out, &g->pem, &g->pem_len);
    if (ret < 0)
        goto fail;
    ret = 0;
    goto done;
fail:
    ERR_clear_error();
    crypto_lab_dh_group_free(g);
done:
    BN_free(p);
    BN_free(gen);
    EVP_PKEY_CTX_free(check);
    BIO_free(in);
    BIO_free(out);
    return ret;
}

void crypto_lab_dh_group_free(struct crypto_lab_dh_group *g)
{
    EVP_PKEY_free(g->params);
    free(g->pem);
    memset(g, 0, sizeof(*g));
}

int crypto_lab_dh_keygen(struct crypto_lab_dh_key *k, const struct crypto_lab_dh_group *g)
{
    int ret = -EIO;
    EVP_PKEY_CTX *ctx = NULL;

    k->pkey = NULL;
    if (!g->params)
        return -EINVAL;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, g->params, NULL);
    if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_generate(ctx, &k->pkey) != 1) {
        ret = lib_fail();
        goto out;
    }
    ret = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    return ret;
}

int crypto_lab_dh_pub_pem(const struct crypto_lab_dh_key *k, char *out, size_t cap, size_t *len)
{
    int ret = -EIO;
    BIO *bio = NULL;
    char *p = NULL;

    if (!k->pkey || !out)
        return -EINVAL;
    bio = BIO_new(BIO_s_mem());
    if (!bio || !PEM_write_bio_PUBKEY(bio, k->pkey)) {
        ret = lib_fail();
        goto out;
    }
    long n = BIO_get_mem_data(bio, &p);
    if (n <= 0)
        goto out;
    if ((size_t)n >= cap) {
        ret = -EMSGSIZE;
        goto out;
    }
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    ret = 0;
out:
    BIO_free(bio);
    return ret;
}

/* True if a and b have the same p and g. */
static bool same_group(const EVP_PKEY *a, const EVP_PKEY *b)
{
    BIGNUM *pa = NULL, *pb = NULL, *ga = NULL, *gb = NULL;
    bool eq = EVP_PKEY_get_bn_param(a, OSSL_PKEY_PARAM_FFC_P, &pa) &&
              EVP_PKEY_get_bn_param(b, OSSL_PKEY_PARAM_FFC_P, &pb) &&
              EVP_PKEY_get_bn_param(a, OSSL_PKEY_PARAM_FFC_G, &ga) &&
              EVP_PKEY_get_bn_param(b, OSSL_PKEY_PARAM_FFC_G, &gb) && BN_cmp(pa, pb) == 0 &&
              BN_cmp(ga, gb) == 0;
    BN_free(pa);
    BN_free(pb);
    BN_free(ga);
    BN_free(gb);
    return eq;
}

/* A public key y in our group, of our key's type (so that derive accepts the pair). */
static EVP_PKEY *key_like_ours(const EVP_PKEY *ours, const BIGNUM *y)
{
    EVP_PKEY *out = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *p = NULL, *g = NULL;
    if (!EVP_PKEY_get_bn_param(ours, OSSL_PKEY_PARAM_FFC_P, &p) ||
        !EVP_PKEY_get_bn_param(ours, OSSL_PKEY_PARAM_FFC_G, &g))
        goto out;
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_FFC_P, p) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_FFC_G, g) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, y))
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)ours, NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &out, EVP_PKEY_PUBLIC_KEY, params) != 1)
        out = NULL;
out:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(p);
    BN_free(g);
    return out;
}

/* Parses a peer public key and checks it belongs to our group with 1 < y < p-1. The key
 * may come as PKCS#3 DH or as X9.42 DHX (what pyca/cryptography writes for a group whose q
 * it knows, such as ffdhe2048): only the group and y matter. */
static int load_peer(const EVP_PKEY *ours, const char *pem, size_t len, EVP_PKEY **peer)
{
    int ret = -EBADMSG;
    BIO *in = NULL;
    BIGNUM *y = NULL, *p = NULL;

    *peer = NULL;
    if (len > CRYPTO_LAB_PEM_MAX)
        return -EMSGSIZE;
    in = BIO_new_mem_buf(pem, (int)len);
    if (!in) {
        ret = -ENOMEM;
        goto out;
    }
    *peer = PEM_read_bio_PUBKEY_ex(in, NULL, NULL, NULL, NULL, NULL);
    if (!*peer)
        goto out;
    /* Same p and g: a key from another group would make us compute in a group the peer
     * chose, possibly one with small subgroups. */
    if ((!EVP_PKEY_is_a(*peer, "DH") && !EVP_PKEY_is_a(*peer, "DHX")) || !same_group(*peer, ours)) {
        ret = -EKEYREJECTED;
        goto out;
    }
    if (!EVP_PKEY_get_bn_param(*peer, OSSL_PKEY_PARAM_PUB_KEY, &y) ||
        !EVP_PKEY_get_bn_param(ours, OSSL_PKEY_PARAM_FFC_P, &p)) {
        ret = -EKEYREJECTED;
        goto out;
    }
    if (!bn_in_open_range(y, p)) {
        ret = -EKEYREJECTED;
        goto out;
    }
    if (EVP_PKEY_get_base_id(*peer) != EVP_PKEY_get_base_id(ours)) {
        EVP_PKEY *same = key_like_ours(ours, y);
        EVP_PKEY_free(*peer);
        *peer = same;
        if (!same) {
            ret = -EKEYREJECTED;
            goto out;
        }
    }
    ret = 0;
out:
    if (ret < 0) {
        EVP_PKEY_free(*peer);
        *peer = NULL;
        ERR_clear_error();
    }
    BN_free(y);
    BN_free(p);
    BIO_free(in);
    return ret;
}

int crypto_lab_dh_derive(const struct crypto_lab_dh_key *k, const char *peer_pem, size_t len,
                         uint8_t *secret, size_t cap, size_t *secret_len)
{
    int ret;
    EVP_PKEY *peer = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    size_t n = 0;

    if (!k->pkey || !peer_pem || !secret)
        return -EINVAL;
    ret = load_peer(k->pkey, peer_pem, len, &peer);
    if (ret < 0)
        return ret;
    ret = -EIO;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (!ctx || EVP_PKEY_derive_init(ctx) != 1)
        goto out;
    /* Python pads the secret to the size of p; OpenSSL strips leading zeros unless asked. */
    if (EVP_PKEY_CTX_set_dh_pad(ctx, 1) != 1)
        goto out;
    /* set_peer also runs OpenSSL's own public key check (y^q = 1 mod p when q is known). */
    if (EVP_PKEY_derive_set_peer(ctx, peer) != 1) {
        ret = -EKEYREJECTED;
        goto out;
    }
    if (EVP_PKEY_derive(ctx, NULL, &n) != 1)
        goto out;
    if (n > cap) {
        ret = -EMSGSIZE;
        goto out;
    }
    if (EVP_PKEY_derive(ctx, secret, &n) != 1) {
        OPENSSL_cleanse(secret, cap);
        goto out;
    }
    *secret_len = n;
    ret = 0;
out:
    if (ret < 0)
        ERR_clear_error();
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    return ret;
}

void crypto_lab_dh_key_free(struct crypto_lab_dh_key *k)
{
    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
}

int crypto_lab_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                           const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    int ret = -EIO;
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM params[5], *p = params;

    if (!ikm || !out || out_len == 0 || out_len > 255 * CRYPTO_LAB_SHA256_LEN)
        return -EINVAL;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    /* No salt parameter means HashLen zero bytes (RFC 5869 section 2.2), as Python's None. */
    if (salt)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    if (info)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    *p = OSSL_PARAM_construct_end();
    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (!kdf)
        goto out;
    ctx = EVP_KDF_CTX_new(kdf);
    if (!ctx || EVP_KDF_derive(ctx, out, out_len, params) != 1) {
        OPENSSL_cleanse(out, out_len);
        goto out;
    }
    ret = 0;
out:
    if (ret < 0)
        ERR_clear_error();
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ret;
}

/* One-shot EVP cipher run. `pad` selects PKCS#7 for block modes. Returns bytes written. */
static int cipher_run(const EVP_CIPHER *type, bool encrypt, bool pad, const uint8_t *key,
                      const uint8_t *iv, const uint8_t *in, size_t len, uint8_t *out,
                      size_t *out_len)
{
    int ret = -EIO;
    int n1 = 0, n2 = 0;
    EVP_CIPHER_CTX *ctx = NULL;

    if (len > INT_MAX - CRYPTO_LAB_AES_BLOCK)
        return -EMSGSIZE;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return -ENOMEM;
    if (EVP_CipherInit_ex2(ctx, type, key, iv, encrypt ? 1 : 0, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, pad ? 1 : 0) != 1)
        goto out;
    if (EVP_CipherUpdate(ctx, out, &n1, in, (int)len) != 1)
        goto out;
    /* For CBC decryption a failure here is a bad PKCS#7 padding (or a partial block). */
    if (EVP_CipherFinal_ex(ctx, out + n1, &n2) != 1) {
        ret = encrypt ? -EIO : -EBADMSG;
        goto out;
    }
    *out_len = (size_t)n1 + (size_t)n2;
    ret = 0;
out:
    if (ret < 0)
        ERR_clear_error();
    EVP_CIPHER_CTX_free(ctx);
    return ret;
}

int crypto_lab_aes256_cfb(bool encrypt, const uint8_t key[static 32], const uint8_t iv[static 16],
                          const uint8_t *in, size_t len, uint8_t *out)
{
    size_t n = 0;
    if ((!in || !out) && len)
        return -EINVAL;
    if (len == 0)
        return 0;
    return cipher_run(EVP_aes_256_cfb128(), encrypt, false, key, iv, in, len, out, &n);
}

int crypto_lab_aes128_cbc_encrypt(const uint8_t key[static 16], const uint8_t iv[static 16],
                                  const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                                  size_t *out_len)
{
    if ((!in && len) || !out)
        return -EINVAL;
    size_t need = (len / CRYPTO_LAB_AES_BLOCK + 1) * CRYPTO_LAB_AES_BLOCK;
    if (need > cap)
        return -EMSGSIZE;
    return cipher_run(EVP_aes_128_cbc(), true, true, key, iv, in, len, out, out_len);
}

int crypto_lab_aes128_cbc_decrypt(const uint8_t key[static 16], const uint8_t iv[static 16],
                                  const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                                  size_t *out_len)
{
    if (!in || !out)
        return -EINVAL;
    if (len == 0 || len % CRYPTO_LAB_AES_BLOCK)
        return -EBADMSG;
    /* EVP may write a whole block into out before removing the padding. */
    if (len > cap)
        return -EMSGSIZE;
    int ret = cipher_run(EVP_aes_128_cbc(), false, true, key, iv, in, len, out, out_len);
    if (ret < 0)
        OPENSSL_cleanse(out, len);
    return ret;
}

int crypto_lab_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len,
                           uint8_t out[static 32])
{
    int ret = -EIO;
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    size_t n = 0;

    if (!key || (!data && len))
        return -EINVAL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac)
        goto out;
    ctx = EVP_MAC_CTX_new(mac);
    if (!ctx || EVP_MAC_init(ctx, key, key_len, params) != 1 ||
        EVP_MAC_update(ctx, data, len) != 1 ||
        EVP_MAC_final(ctx, out, &n, CRYPTO_LAB_SHA256_LEN) != 1 || n != CRYPTO_LAB_SHA256_LEN)
        goto out;
    ret = 0;
out:
    if (ret < 0)
        ERR_clear_error();
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ret;
}

int crypto_lab_random(uint8_t *p, size_t n)
{
    if (n > INT_MAX)
        return -EINVAL;
    if (n && RAND_bytes(p, (int)n) != 1)
        return lib_fail();
    return 0;
}
