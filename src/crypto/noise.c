/* SPDX-License-Identifier: MIT */
/* Noise Protocol Framework, revision 34 (https://noiseprotocol.org/noise.html). Section
 * numbers below refer to that document. Every primitive comes from crypto.c. */
#include "noise.h"

#include <errno.h>
#include <string.h>

/* Maps crypto-layer errors to the protocol codes noise.h promises. A low-order peer key is
 * the peer's fault, like a bad tag. */
static int map_err(int r)
{
    switch (r) {
    case CRYPTO_E_AUTH:
    case CRYPTO_E_ZERO:
        return NOISE_E_AUTH;
    case CRYPTO_E_LIB:
    case CRYPTO_E_KEY:
        return NOISE_E_CRYPTO;
    default:
        return r; /* 0 or a negative errno */
    }
}

/* ---- names ---- */

static const char *const pattern_names[] = {"NN", "NK", "XX", "IK"};
static const char *const cipher_names[] = {"AESGCM", "ChaChaPoly"};
static const char *const hash_names[] = {"SHA256", "BLAKE2b"};

/* Matches `word` followed by `sep` at *p and advances past both. */
static bool eat(const char **p, const char *word, char sep)
{
    size_t n = strlen(word);
    if (strncmp(*p, word, n) != 0 || (*p)[n] != sep)
        return false;
    *p += n + (sep ? 1 : 0);
    return true;
}

bool noise_parse_name(const char *name, struct noise_suite *s)
{
    const char *p = name;
    size_t i;
    if (!eat(&p, "Noise", '_'))
        return false;
    for (i = 0; i < 4 && !eat(&p, pattern_names[i], '_'); i++)
        ;
    if (i == 4)
        return false;
    s->pattern = (enum noise_pattern)i;
    if (!eat(&p, "25519", '_'))
        return false;
    for (i = 0; i < 2 && !eat(&p, cipher_names[i], '_'); i++)
        ;
    if (i == 2)
        return false;
    s->cipher = (enum crypto_aead_alg)i;
    for (i = 0; i < 2 && !eat(&p, hash_names[i], '\0'); i++)
        ;
    if (i == 2)
        return false;
    s->hash = (enum crypto_hash_alg)i;
    return true;
}

/* ---- CipherState ---- */

/* Section 12.3 / 12.4: AESGCM puts the counter big-endian, ChaChaPoly little-endian, both
 * after 32 zero bits. */
static void make_nonce(enum crypto_aead_alg alg, uint64_t n, uint8_t out[static 12])
{
    memset(out, 0, 4);
    for (int i = 0; i < 8; i++) {
        uint8_t b = (uint8_t)(n >> (8 * i));
        if (alg == CRYPTO_AES256GCM)
            out[11 - i] = b;
        else
            out[4 + i] = b;
    }
}

int noise_cipher_init(struct noise_cipher *c, enum crypto_aead_alg alg,
                      const uint8_t k[static NOISE_KEYLEN])
{
    noise_cipher_free(c);
    int r = crypto_aead_init(&c->aead, alg, k);
    if (r != 0)
        return map_err(r);
    c->has_key = true;
    c->n = 0;
    return 0;
}

/* EncryptWithAd and DecryptWithAd (section 5.1) differ only in the AEAD call and the
 * shortest valid input, so one body serves both. */
static int cipher_apply(struct noise_cipher *c, bool seal, const uint8_t *ad, size_t adlen,
                        const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t nonce[CRYPTO_NONCELEN];
    if (!c->has_key) {
        if (len && out != in)
            memmove(out, in, len);
        return 0;
    }
    /* 2^64-1 is reserved; reaching it ends the session. */
    if (c->n == UINT64_MAX)
        return NOISE_E_LIMIT;
    if (!seal && len < NOISE_TAGLEN)
        return NOISE_E_AUTH;
    make_nonce(c->aead.alg, c->n, nonce);
    int r = seal ? crypto_aead_seal(&c->aead, nonce, ad, adlen, in, len, out)
                 : crypto_aead_open(&c->aead, nonce, ad, adlen, in, len, out);
    if (r != 0)
        return map_err(r);
    c->n++;
    return 0;
}

int noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                         size_t len, uint8_t *out)
{
    return cipher_apply(c, true, ad, adlen, pt, len, out);
}

int noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                         size_t len, uint8_t *out)
{
    return cipher_apply(c, false, ad, adlen, ct, len, out);
}

void noise_cipher_set_nonce(struct noise_cipher *c, uint64_t n)
{
    c->n = n;
}

void noise_cipher_free(struct noise_cipher *c)
{
    crypto_aead_free(&c->aead);
    c->has_key = false;
    c->n = 0;
}

/* ---- SymmetricState ---- */

int noise_symmetric_init(struct noise_symmetric *ss, enum crypto_aead_alg cipher,
                         enum crypto_hash_alg hash, const uint8_t *name, size_t len)
{
    memset(ss, 0, sizeof(*ss));
    ss->cipher = cipher;
    ss->hash = hash;
    ss->hashlen = crypto_hash_len(hash);
    if (len <= ss->hashlen) {
        memcpy(ss->h, name, len); /* the rest stays zero: padding */
    } else {
        int r = crypto_hash(hash, name, len, NULL, 0, ss->h);
        if (r != 0)
            return map_err(r);
    }
    memcpy(ss->ck, ss->h, ss->hashlen);
    return 0;
}

int noise_symmetric_mix_hash(struct noise_symmetric *ss, const uint8_t *data, size_t len)
{
    return map_err(crypto_hash(ss->hash, ss->h, ss->hashlen, data, len, ss->h));
}

/* Section 4.3 HKDF with two outputs; each output is HASHLEN bytes. */
static int hkdf(struct noise_symmetric *ss, const uint8_t *ikm, size_t len,
                uint8_t o1[static NOISE_HASHMAX], uint8_t o2[static NOISE_HASHMAX])
{
    return map_err(crypto_hkdf2(ss->hash, ss->ck, ikm, len, o1, o2));
}

int noise_symmetric_mix_key(struct noise_symmetric *ss, const uint8_t *ikm, size_t len)
{
    uint8_t ck[NOISE_HASHMAX], k[NOISE_HASHMAX];
    int r = hkdf(ss, ikm, len, ck, k);
    if (r != 0)
        goto out;
    memcpy(ss->ck, ck, ss->hashlen);
    /* Section 5.2: with HASHLEN 64 the key is the first 32 bytes. */
    r = noise_cipher_init(&ss->cs, ss->cipher, k);
out:
    crypto_wipe(ck, sizeof(ck));
    crypto_wipe(k, sizeof(k));
    return r;
}

/* EncryptAndHash: out gets len (+ tag) bytes; *outlen is set. */
static int encrypt_and_hash(struct noise_symmetric *ss, const uint8_t *pt, size_t len, uint8_t *out,
                            size_t *outlen)
{
    int r = noise_cipher_encrypt(&ss->cs, ss->h, ss->hashlen, pt, len, out);
    if (r != 0)
        return r;
    *outlen = len + (ss->cs.has_key ? NOISE_TAGLEN : 0);
    return noise_symmetric_mix_hash(ss, out, *outlen);
}

/* DecryptAndHash: ct is len bytes; out gets the plaintext. */
static int decrypt_and_hash(struct noise_symmetric *ss, const uint8_t *ct, size_t len, uint8_t *out)
{
    int r = noise_cipher_decrypt(&ss->cs, ss->h, ss->hashlen, ct, len, out);
    if (r != 0)
        return r;
    return noise_symmetric_mix_hash(ss, ct, len);
}

int noise_symmetric_split(struct noise_symmetric *ss, struct noise_cipher *c1,
                          struct noise_cipher *c2)
{
    uint8_t k1[NOISE_HASHMAX], k2[NOISE_HASHMAX];
    int r = hkdf(ss, NULL, 0, k1, k2);
    if (r == 0)
        r = noise_cipher_init(c1, ss->cipher, k1);
    if (r == 0)
        r = noise_cipher_init(c2, ss->cipher, k2);
    crypto_wipe(k1, sizeof(k1));
    crypto_wipe(k2, sizeof(k2));
    return r;
}

void noise_symmetric_free(struct noise_symmetric *ss)
{
    noise_cipher_free(&ss->cs);
    crypto_wipe(ss->ck, sizeof(ss->ck));
}

/* ---- HandshakeState ---- */

enum token { T_END = 0, T_E, T_S, T_EE, T_ES, T_SE, T_SS };

#define MAX_MSGS   3
#define MAX_TOKENS 5

/* Section 7.4 / 7.5: the four patterns we speak. `resp_pre_s` is the "<- s" pre-message. */
static const struct pattern_def {
    bool resp_pre_s;
    uint8_t nmsgs;
    uint8_t tok[MAX_MSGS][MAX_TOKENS];
} patterns[] = {
    [NOISE_NN] = {false, 2, {{T_E}, {T_E, T_EE}}},
    [NOISE_NK] = {true, 2, {{T_E, T_ES}, {T_E, T_EE}}},
    [NOISE_XX] = {false, 3, {{T_E}, {T_E, T_EE, T_S, T_ES}, {T_S, T_SE}}},
    [NOISE_IK] = {true, 2, {{T_E, T_ES, T_S, T_SS}, {T_E, T_EE, T_SE}}},
};

/* Does this side need a static key pair? Everyone who sends `s` or pre-shares it. */
static bool needs_s(enum noise_pattern p, bool initiator)
{
    if (initiator)
        return p == NOISE_XX || p == NOISE_IK;
    return p != NOISE_NN;
}

int noise_handshake_init(struct noise_handshake *hs, const char *protocol_name, bool initiator,
                         const uint8_t *prologue, size_t prologue_len,
                         const struct noise_keypair *s, const uint8_t *rs)
{
    struct noise_suite suite;
    int r;
    memset(hs, 0, sizeof(*hs));
    hs->action = NOISE_ACTION_FAILED;
    if (!noise_parse_name(protocol_name, &suite))
        return NOISE_E_PARSE;
    const struct pattern_def *pd = &patterns[suite.pattern];
    if (needs_s(suite.pattern, initiator) && !s)
        return -EINVAL;
    if (initiator && pd->resp_pre_s && !rs)
        return -EINVAL;
    hs->pattern = suite.pattern;
    hs->initiator = initiator;
    r = noise_symmetric_init(&hs->ss, suite.cipher, suite.hash, (const uint8_t *)protocol_name,
                             strlen(protocol_name));
    if (r == 0)
        r = noise_symmetric_mix_hash(&hs->ss, prologue, prologue_len);
    if (r != 0)
        return r;
    if (s) {
        hs->s = *s;
        hs->flags |= NOISE_HS_HAS_S;
    }
    if (initiator && pd->resp_pre_s) {
        memcpy(hs->rs, rs, NOISE_DHLEN);
        hs->flags |= NOISE_HS_HAS_RS;
    }
    /* Section 5.3: pre-message keys are hashed, initiator's first (we have none). */
    if (pd->resp_pre_s) {
        r = noise_symmetric_mix_hash(&hs->ss, initiator ? hs->rs : hs->s.pub, NOISE_DHLEN);
        if (r != 0)
            return r;
    }
    hs->action = initiator ? NOISE_ACTION_WRITE : NOISE_ACTION_READ;
    return 0;
}

int noise_handshake_set_ephemeral(struct noise_handshake *hs, const uint8_t e[static NOISE_DHLEN])
{
    memcpy(hs->e.priv, e, NOISE_DHLEN);
    int r = crypto_x25519_public(hs->e.priv, hs->e.pub);
    if (r != 0)
        return map_err(r);
    hs->flags |= NOISE_HS_FIXED_E;
    return 0;
}

enum noise_action noise_handshake_action(const struct noise_handshake *hs)
{
    return (enum noise_action)hs->action;
}

/* Performs one DH token and MixKey. */
static int dh_token(struct noise_handshake *hs, enum token t)
{
    const uint8_t *priv, *pub;
    uint8_t need;
    /* Section 7.1: "es" is DH(e, rs) for the initiator and DH(s, re) for the responder;
     * "se" the other way round. */
    bool local_e;
    bool remote_e;
    switch (t) {
    case T_EE:
        local_e = remote_e = true;
        break;
    case T_ES:
        local_e = hs->initiator;
        remote_e = !hs->initiator;
        break;
    case T_SE:
        local_e = !hs->initiator;
        remote_e = hs->initiator;
        break;
    default: /* T_SS */
        local_e = remote_e = false;
        break;
    }
    need = (uint8_t)((local_e ? NOISE_HS_HAS_E : NOISE_HS_HAS_S) |
                     (remote_e ? NOISE_HS_HAS_RE : NOISE_HS_HAS_RS));
    if ((hs->flags & need) != need)
        return NOISE_E_STATE;
    const struct noise_keypair *own = local_e ? &hs->e : &hs->s;
    priv = own->priv;
    pub = remote_e ? hs->re : hs->rs;
    uint8_t dh[NOISE_DHLEN];
    int r = map_err(crypto_x25519_pair(dh, priv, own->pub, pub));
    if (r == 0)
        r = noise_symmetric_mix_key(&hs->ss, dh, sizeof(dh));
    crypto_wipe(dh, sizeof(dh));
    return r;
}

static void advance(struct noise_handshake *hs)
{
    hs->msg++;
    if (hs->msg == patterns[hs->pattern].nmsgs) {
        hs->action = NOISE_ACTION_SPLIT;
        return;
    }
    bool initiator_sends = (hs->msg % 2) == 0;
    hs->action = initiator_sends == hs->initiator ? NOISE_ACTION_WRITE : NOISE_ACTION_READ;
}

int noise_handshake_write(struct noise_handshake *hs, const uint8_t *payload, size_t plen,
                          uint8_t *out, size_t cap, size_t *outlen)
{
    size_t pos = 0, n;
    int r = 0;
    if (hs->action != NOISE_ACTION_WRITE)
        return NOISE_E_STATE;
    if (cap > NOISE_MAX_MSG)
        cap = NOISE_MAX_MSG;
    const uint8_t *tok = patterns[hs->pattern].tok[hs->msg];
    for (int i = 0; i < MAX_TOKENS && tok[i] != T_END; i++) {
        switch (tok[i]) {
        case T_E:
            if (cap - pos < NOISE_DHLEN) {
                r = NOISE_E_TOOBIG;
                goto out;
            }
            if (!(hs->flags & NOISE_HS_FIXED_E)) {
                r = map_err(crypto_x25519_keygen(hs->e.priv, hs->e.pub));
                if (r != 0)
                    goto out;
            }
            hs->flags |= NOISE_HS_HAS_E;
            memcpy(out + pos, hs->e.pub, NOISE_DHLEN);
            r = noise_symmetric_mix_hash(&hs->ss, hs->e.pub, NOISE_DHLEN);
            pos += NOISE_DHLEN;
            break;
        case T_S:
            if (cap - pos < NOISE_DHLEN + (hs->ss.cs.has_key ? NOISE_TAGLEN : 0)) {
                r = NOISE_E_TOOBIG;
                goto out;
            }
            r = encrypt_and_hash(&hs->ss, hs->s.pub, NOISE_DHLEN, out + pos, &n);
            if (r != 0)
                goto out; /* n is not set on failure */
            pos += n;
            break;
        default:
            r = dh_token(hs, (enum token)tok[i]);
            break;
        }
        if (r != 0)
            goto out;
    }
    size_t tag = hs->ss.cs.has_key ? NOISE_TAGLEN : 0;
    if (cap - pos < tag || plen > cap - pos - tag) {
        r = NOISE_E_TOOBIG;
        goto out;
    }
    r = encrypt_and_hash(&hs->ss, payload, plen, out + pos, &n);
    if (r != 0)
        goto out;
    *outlen = pos + n;
    advance(hs);
out:
    if (r != 0)
        hs->action = NOISE_ACTION_FAILED;
    return r;
}

int noise_handshake_read(struct noise_handshake *hs, const uint8_t *msg, size_t len,
                         uint8_t *payload, size_t cap, size_t *plen)
{
    size_t pos = 0, n;
    int r = 0;
    if (hs->action != NOISE_ACTION_READ)
        return NOISE_E_STATE;
    if (len > NOISE_MAX_MSG) {
        r = NOISE_E_PARSE;
        goto out;
    }
    const uint8_t *tok = patterns[hs->pattern].tok[hs->msg];
    for (int i = 0; i < MAX_TOKENS && tok[i] != T_END; i++) {
        switch (tok[i]) {
        case T_E:
            if (len - pos < NOISE_DHLEN) {
                r = NOISE_E_PARSE;
                goto out;
            }
            memcpy(hs->re, msg + pos, NOISE_DHLEN);
            hs->flags |= NOISE_HS_HAS_RE;
            r = noise_symmetric_mix_hash(&hs->ss, hs->re, NOISE_DHLEN);
            pos += NOISE_DHLEN;
            break;
        case T_S:
            n = NOISE_DHLEN + (hs->ss.cs.has_key ? NOISE_TAGLEN : 0);
            if (len - pos < n) {
                r = NOISE_E_PARSE;
                goto out;
            }
            r = decrypt_and_hash(&hs->ss, msg + pos, n, hs->rs);
            if (r == 0)
                hs->flags |= NOISE_HS_HAS_RS;
            pos += n;
            break;
        default:
            r = dh_token(hs, (enum token)tok[i]);
            break;
        }
        if (r != 0)
            goto out;
    }
    n = len - pos;
    if (hs->ss.cs.has_key) {
        if (n < NOISE_TAGLEN) {
            r = NOISE_E_PARSE;
            goto out;
        }
        n -= NOISE_TAGLEN;
    }
    if (n > cap) {
        r = NOISE_E_TOOBIG;
        goto out;
    }
    r = decrypt_and_hash(&hs->ss, msg + pos, len - pos, payload);
    if (r != 0)
        goto out;
    *plen = n;
    advance(hs);
out:
    if (r != 0)
        hs->action = NOISE_ACTION_FAILED;
    return r;
}

/* Wipes every secret of the handshake (not h, rs: public). */
static void wipe_secrets(struct noise_handshake *hs)
{
    noise_symmetric_free(&hs->ss);
    crypto_wipe(&hs->s, sizeof(hs->s));
    crypto_wipe(&hs->e, sizeof(hs->e));
    hs->flags &= (uint8_t) ~(NOISE_HS_HAS_S | NOISE_HS_HAS_E | NOISE_HS_FIXED_E);
}

int noise_handshake_split(struct noise_handshake *hs, struct noise_cipher *send,
                          struct noise_cipher *recv)
{
    if (hs->action != NOISE_ACTION_SPLIT)
        return NOISE_E_STATE;
    int r = hs->initiator ? noise_symmetric_split(&hs->ss, send, recv)
                          : noise_symmetric_split(&hs->ss, recv, send);
    wipe_secrets(hs);
    if (r != 0) {
        noise_cipher_free(send);
        noise_cipher_free(recv);
        hs->action = NOISE_ACTION_FAILED;
        return r;
    }
    hs->action = NOISE_ACTION_DONE;
    return 0;
}

const uint8_t *noise_handshake_hash(const struct noise_handshake *hs, size_t *len)
{
    *len = hs->ss.hashlen;
    return hs->ss.h;
}

const uint8_t *noise_handshake_remote_static(const struct noise_handshake *hs)
{
    return (hs->flags & NOISE_HS_HAS_RS) ? hs->rs : NULL;
}

int noise_handshake_copy(struct noise_handshake *dst, const struct noise_handshake *src)
{
    memcpy(dst, src, sizeof(*dst));
    if (crypto_aead_copy(&dst->ss.cs.aead, &src->ss.cs.aead) != 0) {
        dst->ss.cs.has_key = false;
        dst->action = NOISE_ACTION_FAILED;
        return NOISE_E_CRYPTO;
    }
    return 0;
}

void noise_handshake_free(struct noise_handshake *hs)
{
    wipe_secrets(hs);
    crypto_wipe(hs->re, sizeof(hs->re));
    hs->action = NOISE_ACTION_FAILED;
}

const char *noise_strerror(int err)
{
    switch (err) {
    case NOISE_E_AUTH:
        return "authentication failed";
    case NOISE_E_PARSE:
        return "malformed handshake message";
    case NOISE_E_TOOBIG:
        return "message too long";
    case NOISE_E_STATE:
        return "handshake state error";
    case NOISE_E_LIMIT:
        return "nonce exhausted";
    case NOISE_E_CRYPTO:
        return "crypto library failure";
    default:
        return err < 0 ? strerror(-err) : "no error";
    }
}
