/* SPDX-License-Identifier: MIT */
/* Thin layer over OpenSSL 3 EVP. Algorithms are fetched once per process (explicit fetching
 * avoids a provider lookup on every call); tags are verified by OpenSSL, comparisons are
 * constant time and every temporary secret is cleansed. */
#include "crypto.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

static struct {
    EVP_CIPHER *cipher[2]; /* by enum crypto_aead_alg */
    EVP_MD *md[2];         /* by enum crypto_hash_alg */
    EVP_MAC *hmac;
} algs;
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static const char *const md_names[2] = {"SHA256", "BLAKE2B-512"};

/* Fetched objects live until exit: they are shared, immutable and reference counted by
 * OpenSSL, so several threads may use them at once. */
static void algs_fetch(void)
{
    algs.cipher[CRYPTO_AES256GCM] = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    algs.cipher[CRYPTO_CHACHAPOLY] = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    algs.md[CRYPTO_SHA256] = EVP_MD_fetch(NULL, md_names[CRYPTO_SHA256], NULL);
    algs.md[CRYPTO_BLAKE2B] = EVP_MD_fetch(NULL, md_names[CRYPTO_BLAKE2B], NULL);
    algs.hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static const EVP_MD *get_md(enum crypto_hash_alg alg)
{
    if ((unsigned)alg > CRYPTO_BLAKE2B)
        return NULL;
    pthread_once(&algs_once, algs_fetch);
    return algs.md[alg];
}

const char *crypto_strerror(int err)
{
    switch (err) {
    case CRYPTO_E_AUTH:
        return "authentication tag mismatch";
    case CRYPTO_E_LIB:
        return "crypto library failure";
    case CRYPTO_E_ZERO:
        return "invalid public key (all-zero shared secret)";
    case CRYPTO_E_KEY:
        return "not an X25519 private key";
    default:
        return err < 0 ? strerror(-err) : "no error";
    }
}

/* ---- AEAD ---- */

/* The thread's cipher contexts, each keyed for one struct crypto_aead (by id). */
struct aead_slot {
    EVP_CIPHER_CTX *ctx;
    uint64_t owner; /* id of the key it holds; 0 = none */
};

struct aead_cache {
    struct aead_slot slot[2][CRYPTO_AEAD_CACHE]; /* by enum crypto_aead_alg */
    unsigned hand[2]; /* the next slot to re-key when none is free (round robin) */
    bool registered;  /* the exit destructor knows this thread's cache */
    /* The thread's HMAC contexts by enum crypto_hash_alg, digest set once (setting it
     * fetches the digest, half the cost of a short HMAC); between calls each is keyed
     * with the public hmac_nokey (see hmac_forget). */
    EVP_MAC_CTX *hmac[2];
};

static _Thread_local struct aead_cache tl_aead;
static pthread_key_t aead_key;
static pthread_once_t aead_key_once = PTHREAD_ONCE_INIT;
static bool aead_key_ok;
static atomic_uint_fast64_t aead_next_id = 1;

static void slot_drop(struct aead_slot *s)
{
    /* EVP_CIPHER_CTX_free cleanses the key schedule. */
    EVP_CIPHER_CTX_free(s->ctx);
    s->ctx = NULL;
    s->owner = 0;
}

static void cache_drain(struct aead_cache *c)
{
    for (int a = 0; a < 2; a++) {
        for (int i = 0; i < CRYPTO_AEAD_CACHE; i++)
            slot_drop(&c->slot[a][i]);
        EVP_MAC_CTX_free(c->hmac[a]); /* cleanses the state */
        c->hmac[a] = NULL;
    }
}

static void aead_thread_exit(void *arg)
{
    cache_drain(arg);
}

static void aead_key_make(void)
{
    aead_key_ok = pthread_key_create(&aead_key, aead_thread_exit) == 0;
}

/* Registers c with the exit destructor once; false if that fails. Without the destructor a
 * thread's contexts would outlive it: the callers then keep none. */
static bool cache_register(struct aead_cache *c)
{
    if (!c->registered) {
        pthread_once(&aead_key_once, aead_key_make);
        if (!aead_key_ok || pthread_setspecific(aead_key, c) != 0)
            return false;
        c->registered = true;
    }
    return true;
}

void crypto_aead_cache_drain(void)
{
    cache_drain(&tl_aead);
}

unsigned crypto_aead_cache_size(void)
{
    unsigned n = 0;
    for (int a = 0; a < 2; a++)
        for (int i = 0; i < CRYPTO_AEAD_CACHE; i++)
            n += tl_aead.slot[a][i].ctx != NULL;
    return n;
}

int crypto_aead_init(struct crypto_aead *a, enum crypto_aead_alg alg,
                     const uint8_t key[static CRYPTO_KEYLEN])
{
    a->id = 0;
    a->slot = 0;
    a->alg = alg;
    if ((unsigned)alg > CRYPTO_CHACHAPOLY)
        return -EINVAL;
    pthread_once(&algs_once, algs_fetch);
    if (!algs.cipher[alg])
        return CRYPTO_E_LIB;
    memcpy(a->key, key, CRYPTO_KEYLEN);
    a->id = atomic_fetch_add(&aead_next_id, 1);
    return 0;
}

/* The calling thread's context keyed with a's key: the one a->slot names if it still is
 * (one comparison), else a free slot or, with none free, the next in turn, re-keyed (the
 * key schedule is computed here; the IV is given later, with the direction, per message).
 * Round robin rather than least recently used: connections served in turn, more of them
 * than there are slots, would otherwise evict each other every time. NULL if OpenSSL
 * fails. */
static EVP_CIPHER_CTX *aead_ctx(struct crypto_aead *a)
{
    struct aead_cache *c = &tl_aead;
    if (a->id == 0 || (unsigned)a->alg > CRYPTO_CHACHAPOLY)
        return NULL;
    struct aead_slot *slots = c->slot[a->alg];
    if (a->slot < CRYPTO_AEAD_CACHE && slots[a->slot].owner == a->id)
        return slots[a->slot].ctx;
    if (!cache_register(c))
        return NULL;
    unsigned i = 0;
    while (i < CRYPTO_AEAD_CACHE && slots[i].owner != 0)
        i++;
    if (i == CRYPTO_AEAD_CACHE) {
        i = c->hand[a->alg];
        c->hand[a->alg] = (i + 1) % CRYPTO_AEAD_CACHE;
    }
    struct aead_slot *s = &slots[i];
    s->owner = 0;
    if (!s->ctx) {
        s->ctx = EVP_CIPHER_CTX_new();
        if (!s->ctx)
            return NULL;
        if (!EVP_CipherInit_ex2(s->ctx, algs.cipher[a->alg], a->key, NULL, 1, NULL)) {
            slot_drop(s);
            return NULL;
        }
    } else if (!EVP_CipherInit_ex2(s->ctx, NULL, a->key, NULL, 1, NULL)) {
        slot_drop(s);
        return NULL;
    }
    s->owner = a->id;
    a->slot = i;
    return s->ctx;
}

int crypto_aead_seal(struct crypto_aead *a, const uint8_t nonce[static CRYPTO_NONCELEN],
                     const uint8_t *ad, size_t adlen, const uint8_t *pt, size_t len, uint8_t *out)
{
    int n;
    if (adlen > INT_MAX || len > INT_MAX)
        return -EINVAL;
    EVP_CIPHER_CTX *c = aead_ctx(a);
    if (!c)
        return CRYPTO_E_LIB;
    if (!EVP_CipherInit_ex2(c, NULL, NULL, nonce, 1, NULL))
        return CRYPTO_E_LIB;
    if (adlen && !EVP_CipherUpdate(c, NULL, &n, ad, (int)adlen))
        return CRYPTO_E_LIB;
    if (len && !EVP_CipherUpdate(c, out, &n, pt, (int)len))
        return CRYPTO_E_LIB;
    if (!EVP_CipherFinal_ex(c, out + len, &n))
        return CRYPTO_E_LIB;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, CRYPTO_TAGLEN, out + len) <= 0)
        return CRYPTO_E_LIB;
    return 0;
}

int crypto_aead_open(struct crypto_aead *a, const uint8_t nonce[static CRYPTO_NONCELEN],
                     const uint8_t *ad, size_t adlen, const uint8_t *ct, size_t len, uint8_t *out)
{
    uint8_t tag[CRYPTO_TAGLEN];
    int n, r = CRYPTO_E_LIB;
    if (len < CRYPTO_TAGLEN)
        return CRYPTO_E_AUTH;
    if (adlen > INT_MAX || len > INT_MAX)
        return -EINVAL;
    size_t mlen = len - CRYPTO_TAGLEN;
    EVP_CIPHER_CTX *c = aead_ctx(a);
    if (!c)
        return CRYPTO_E_LIB;
    /* Copy the tag first: with out == ct the plaintext never reaches it, but this keeps the
     * contract simple for any overlap. */
    memcpy(tag, ct + mlen, CRYPTO_TAGLEN);
    if (!EVP_CipherInit_ex2(c, NULL, NULL, nonce, 0, NULL))
        goto out;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, CRYPTO_TAGLEN, tag) <= 0)
        goto out;
    if (adlen && !EVP_CipherUpdate(c, NULL, &n, ad, (int)adlen))
        goto out;
    if (mlen && !EVP_CipherUpdate(c, out, &n, ct, (int)mlen))
        goto out;
    /* OpenSSL compares the tag (in constant time) in Final. */
    if (EVP_CipherFinal_ex(c, out + mlen, &n) <= 0) {
        r = CRYPTO_E_AUTH;
        goto out;
    }
    r = 0;
out:
    if (r != 0 && mlen)
        crypto_wipe(out, mlen);
    return r;
}

int crypto_aead_copy(struct crypto_aead *dst, const struct crypto_aead *src)
{
    memcpy(dst->key, src->key, CRYPTO_KEYLEN);
    dst->alg = src->alg;
    dst->slot = 0;
    /* Its own id: freeing one of the two never touches the other's context. */
    dst->id = src->id ? atomic_fetch_add(&aead_next_id, 1) : 0;
    return 0;
}

void crypto_aead_free(struct crypto_aead *a)
{
    /* An id is in at most one slot of a thread's cache: the one a->slot names. */
    if (a->id != 0 && (unsigned)a->alg <= CRYPTO_CHACHAPOLY && a->slot < CRYPTO_AEAD_CACHE) {
        struct aead_slot *s = &tl_aead.slot[a->alg][a->slot];
        if (s->owner == a->id)
            slot_drop(s);
    }
    OPENSSL_cleanse(a->key, sizeof(a->key));
    a->id = 0;
}

/* ---- hashes ---- */

size_t crypto_hash_len(enum crypto_hash_alg alg)
{
    return alg == CRYPTO_BLAKE2B ? 64 : 32;
}

size_t crypto_hash_blocklen(enum crypto_hash_alg alg)
{
    return alg == CRYPTO_BLAKE2B ? 128 : 64;
}

int crypto_hash(enum crypto_hash_alg alg, const uint8_t *a, size_t alen, const uint8_t *b,
                size_t blen, uint8_t out[static CRYPTO_HASHMAX])
{
    const EVP_MD *md = get_md(alg);
    EVP_MD_CTX *c = NULL;
    int r = CRYPTO_E_LIB;
    if (!md)
        return CRYPTO_E_LIB;
    c = EVP_MD_CTX_new();
    if (!c)
        goto out;
    if (!EVP_DigestInit_ex2(c, md, NULL) || !EVP_DigestUpdate(c, a, alen))
        goto out;
    if (blen && !EVP_DigestUpdate(c, b, blen))
        goto out;
    if (!EVP_DigestFinal_ex(c, out, NULL))
        goto out;
    r = 0;
out:
    EVP_MD_CTX_free(c);
    return r;
}

/* The public key (one zero byte) every cached HMAC context is left keyed with between
 * calls. Not the empty key: OpenSSL 3.0's HMAC keeps a copy of the key and frees the old
 * copy only if it was not empty. */
static const uint8_t hmac_nokey[1];

/* The calling thread's HMAC context for alg, digest set, keyed with hmac_nokey; NULL if
 * OpenSSL fails or the thread cannot keep one. */
static EVP_MAC_CTX *hmac_ctx(enum crypto_hash_alg alg)
{
    struct aead_cache *c = &tl_aead;
    if (!get_md(alg) || !algs.hmac)
        return NULL;
    if (c->hmac[alg])
        return c->hmac[alg];
    if (!cache_register(c))
        return NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md_names[alg], 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC_CTX *m = EVP_MAC_CTX_new(algs.hmac);
    if (!m || !EVP_MAC_init(m, hmac_nokey, sizeof(hmac_nokey), params)) {
        EVP_MAC_CTX_free(m);
        return NULL;
    }
    c->hmac[alg] = m;
    return m;
}

/* Leaves m keyed with hmac_nokey: OpenSSL frees (cleansing) its copy of the last key and
 * overwrites the inner and outer pads' states and the running digest derived from it. If
 * that fails the context is freed instead. */
static void hmac_forget(enum crypto_hash_alg alg, EVP_MAC_CTX *m)
{
    if (!EVP_MAC_init(m, hmac_nokey, sizeof(hmac_nokey), NULL)) {
        EVP_MAC_CTX_free(m);
        tl_aead.hmac[alg] = NULL;
    }
}

/* out = HMAC(m's key, a || b); m is left keyed. Returns 0 or CRYPTO_E_LIB. */
static int hmac_run(enum crypto_hash_alg alg, EVP_MAC_CTX *m, const uint8_t *a, size_t alen,
                    const uint8_t *b, size_t blen, uint8_t out[static CRYPTO_HASHMAX])
{
    size_t outl = 0;
    if (alen && !EVP_MAC_update(m, a, alen))
        return CRYPTO_E_LIB;
    if (blen && !EVP_MAC_update(m, b, blen))
        return CRYPTO_E_LIB;
    if (!EVP_MAC_final(m, out, &outl, CRYPTO_HASHMAX) || outl != crypto_hash_len(alg))
        return CRYPTO_E_LIB;
    return 0;
}

int crypto_hmac(enum crypto_hash_alg alg, const uint8_t *key, size_t keylen, const uint8_t *a,
                size_t alen, const uint8_t *b, size_t blen, uint8_t out[static CRYPTO_HASHMAX])
{
    EVP_MAC_CTX *m = hmac_ctx(alg);
    int r = CRYPTO_E_LIB;
    if (!m)
        return CRYPTO_E_LIB;
    if (keylen == 0) {
        /* The same HMAC (keys are zero-padded to the block), and a NULL key would mean "the
         * key the context has". */
        key = hmac_nokey;
        keylen = sizeof(hmac_nokey);
    }
    if (EVP_MAC_init(m, key, keylen, NULL))
        r = hmac_run(alg, m, a, alen, b, blen, out);
    hmac_forget(alg, m);
    return r;
}

int crypto_hkdf2(enum crypto_hash_alg alg, const uint8_t *ck, const uint8_t *ikm, size_t len,
                 uint8_t o1[static CRYPTO_HASHMAX], uint8_t o2[static CRYPTO_HASHMAX])
{
    static const uint8_t one = 1, two = 2;
    uint8_t temp[CRYPTO_HASHMAX];
    size_t hashlen = crypto_hash_len(alg);
    EVP_MAC_CTX *m = hmac_ctx(alg);
    int r = CRYPTO_E_LIB;
    if (!m)
        return CRYPTO_E_LIB;
    if (!EVP_MAC_init(m, ck, hashlen, NULL))
        goto out;
    r = hmac_run(alg, m, ikm, len, NULL, 0, temp);
    if (r == 0)
        r = EVP_MAC_init(m, temp, hashlen, NULL) ? 0 : CRYPTO_E_LIB;
    if (r == 0)
        r = hmac_run(alg, m, &one, 1, NULL, 0, o1);
    /* The same key again: a NULL key restarts from the pads' states, with no re-keying. */
    if (r == 0)
        r = EVP_MAC_init(m, NULL, 0, NULL) ? 0 : CRYPTO_E_LIB;
    if (r == 0)
        r = hmac_run(alg, m, o1, hashlen, &two, 1, o2);
out:
    hmac_forget(alg, m);
    crypto_wipe(temp, sizeof(temp));
    return r;
}

/* ---- X25519 ---- */

int crypto_x25519_public(const uint8_t priv[static CRYPTO_DHLEN], uint8_t pub[static CRYPTO_DHLEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, priv, CRYPTO_DHLEN);
    size_t len = CRYPTO_DHLEN;
    int r = CRYPTO_E_LIB;
    if (!k)
        return CRYPTO_E_LIB;
    if (EVP_PKEY_get_raw_public_key(k, pub, &len) && len == CRYPTO_DHLEN)
        r = 0;
    EVP_PKEY_free(k);
    return r;
}

int crypto_x25519_keygen(uint8_t priv[static CRYPTO_DHLEN], uint8_t pub[static CRYPTO_DHLEN])
{
    /* Any 32 random bytes are a valid private key: X25519 clamps them (RFC 7748 5). */
    int r = crypto_random(priv, CRYPTO_DHLEN);
    if (r == 0)
        r = crypto_x25519_public(priv, pub);
    if (r != 0)
        crypto_wipe(priv, CRYPTO_DHLEN);
    return r;
}

static const uint8_t zero32[CRYPTO_DHLEN];

/* Our key for a derive. With own_pub (priv's public key) the pair goes in as it is;
 * without it, OpenSSL computes the public key from priv first: a whole X25519 scalar
 * multiplication (about as costly as the DH itself) that the derive never uses. */
static EVP_PKEY *x25519_own_key(const uint8_t priv[static CRYPTO_DHLEN], const uint8_t *own_pub)
{
    if (!own_pub)
        return EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, priv, CRYPTO_DHLEN);
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *fc = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, (void *)priv, CRYPTO_DHLEN),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)own_pub, CRYPTO_DHLEN),
        OSSL_PARAM_construct_end(),
    };
    if (!fc || EVP_PKEY_fromdata_init(fc) <= 0 ||
        EVP_PKEY_fromdata(fc, &k, EVP_PKEY_KEYPAIR, params) <= 0)
        k = NULL;
    EVP_PKEY_CTX_free(fc);
    return k;
}

static int x25519_derive(uint8_t out[static CRYPTO_DHLEN], const uint8_t priv[static CRYPTO_DHLEN],
                         const uint8_t *own_pub, const uint8_t pub[static CRYPTO_DHLEN])
{
    EVP_PKEY *k = NULL, *peer = NULL;
    EVP_PKEY_CTX *c = NULL;
    size_t len = CRYPTO_DHLEN;
    int r = CRYPTO_E_LIB;

    k = x25519_own_key(priv, own_pub);
    peer = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, pub, CRYPTO_DHLEN);
    if (!k || !peer)
        goto out;
    c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    if (!c || EVP_PKEY_derive_init(c) <= 0 || EVP_PKEY_derive_set_peer_ex(c, peer, 0) <= 0)
        goto out;
    /* OpenSSL's X25519 derive itself fails when the result is all zero (a low-order peer
     * point); everything that can fail for lack of memory happened above, so a failure
     * here means a bad public key. */
    if (EVP_PKEY_derive(c, out, &len) <= 0 || len != CRYPTO_DHLEN) {
        r = CRYPTO_E_ZERO;
        goto out;
    }
    /* Check again ourselves so the guarantee does not depend on the provider. */
    r = CRYPTO_memcmp(out, zero32, CRYPTO_DHLEN) == 0 ? CRYPTO_E_ZERO : 0;
out:
    if (r != 0)
        crypto_wipe(out, CRYPTO_DHLEN);
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(peer);
    EVP_PKEY_free(k);
    return r;
}

int crypto_x25519(uint8_t out[static CRYPTO_DHLEN], const uint8_t priv[static CRYPTO_DHLEN],
                  const uint8_t pub[static CRYPTO_DHLEN])
{
    return x25519_derive(out, priv, NULL, pub);
}

int crypto_x25519_pair(uint8_t out[static CRYPTO_DHLEN], const uint8_t priv[static CRYPTO_DHLEN],
                       const uint8_t priv_pub[static CRYPTO_DHLEN],
                       const uint8_t pub[static CRYPTO_DHLEN])
{
    return x25519_derive(out, priv, priv_pub, pub);
}

/* ---- PEM (PKCS#8) ---- */

int crypto_x25519_to_pem(const uint8_t priv[static CRYPTO_DHLEN], char *out, size_t cap)
{
    EVP_PKEY *k = NULL;
    BIO *b = NULL;
    char *p = NULL;
    int r = CRYPTO_E_LIB;

    k = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, priv, CRYPTO_DHLEN);
    /* A secure-memory BIO is cleansed when freed. */
    b = BIO_new(BIO_s_secmem());
    if (!k || !b)
        goto out;
    if (!PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
        goto out;
    long len = BIO_get_mem_data(b, &p);
    if (len <= 0 || len > INT_MAX)
        goto out;
    if ((size_t)len >= cap) {
        r = -ENOBUFS;
        goto out;
    }
    memcpy(out, p, (size_t)len);
    out[len] = '\0';
    r = (int)len;
out:
    BIO_free(b);
    EVP_PKEY_free(k);
    return r;
}

/* Refuses encrypted keys instead of letting OpenSSL prompt on the terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int crypto_x25519_from_pem(const char *pem, size_t len, uint8_t priv[static CRYPTO_DHLEN])
{
    EVP_PKEY *k = NULL;
    BIO *b = NULL;
    size_t klen = CRYPTO_DHLEN;
    int r = CRYPTO_E_KEY;

    if (len > INT_MAX)
        return CRYPTO_E_KEY;
    b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return CRYPTO_E_LIB;
    k = PEM_read_bio_PrivateKey_ex(b, NULL, no_password, NULL, NULL, NULL);
    if (!k || !EVP_PKEY_is_a(k, "X25519"))
        goto out;
    if (!EVP_PKEY_get_raw_private_key(k, priv, &klen) || klen != CRYPTO_DHLEN)
        goto out;
    r = 0;
out:
    if (r != 0)
        crypto_wipe(priv, CRYPTO_DHLEN);
    /* Parsing failures leave entries on the thread's error queue; drop them so they do
     * not surface later in an unrelated caller. */
    ERR_clear_error();
    EVP_PKEY_free(k);
    BIO_free(b);
    return r;
}

/* ---- misc ---- */

int crypto_random(void *p, size_t n)
{
    if (n > INT_MAX)
        return -EINVAL;
    return RAND_bytes(p, (int)n) == 1 ? 0 : CRYPTO_E_LIB;
}

void crypto_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

bool crypto_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void crypto_thread_stop(void)
{
    cache_drain(&tl_aead);
    OPENSSL_thread_stop();
}
