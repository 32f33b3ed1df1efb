/* SPDX-License-Identifier: MIT */
/* Noise tests: every supported vector of both shared files (both roles, every message,
 * handshake hash), the protocol-name hashing branch, tampering, truncation, nonce limit. */
#include "check.h"
#include "hexutil.h"
#include "json_mini.h"
#include "noise.h"

#include <errno.h>

/* 16 supported names (4 patterns x 2 ciphers x 2 hashes) in each of the two files. */
#define EXPECTED_VECTORS 32

struct party {
    struct noise_handshake hs;
    struct noise_cipher send, recv;
};

static void party_free(struct party *p)
{
    noise_handshake_free(&p->hs);
    noise_cipher_free(&p->send);
    noise_cipher_free(&p->recv);
}

/* Loads an optional hex key field; returns true if present. */
static bool get_key(const struct json *v, const char *field, uint8_t out[32])
{
    const char *s = json_get_str(v, field);
    if (!s)
        return false;
    CHECK_INT(hex_decode(s, out, 32), 32);
    return true;
}

static int init_party(struct party *p, const struct json *v, const char *name, bool initiator)
{
    const char *role = initiator ? "init" : "resp";
    char field[64];
    uint8_t prologue[256], e[32], rs[32];
    struct noise_keypair s;
    bool has_s, has_rs;

    memset(p, 0, sizeof(*p));
    snprintf(field, sizeof(field), "%s_prologue", role);
    const char *ph = json_get_str(v, field);
    long plen = ph ? hex_decode(ph, prologue, sizeof(prologue)) : 0;
    CHECK(plen >= 0);
    snprintf(field, sizeof(field), "%s_static", role);
    has_s = get_key(v, field, s.priv);
    if (has_s)
        CHECK_INT(crypto_x25519_public(s.priv, s.pub), 0);
    snprintf(field, sizeof(field), "%s_remote_static", role);
    has_rs = get_key(v, field, rs);
    int r = noise_handshake_init(&p->hs, name, initiator, prologue, (size_t)plen, has_s ? &s : NULL,
                                 has_rs ? rs : NULL);
    CHECK_INT(r, 0);
    snprintf(field, sizeof(field), "%s_ephemeral", role);
    if (r == 0 && get_key(v, field, e))
        CHECK_INT(noise_handshake_set_ephemeral(&p->hs, e), 0);
    return r;
}

static uint8_t payload[NOISE_MAX_MSG], ct[NOISE_MAX_MSG], out[NOISE_MAX_MSG];

/* Runs one vector through both roles. Returns true if it ran to the end without a mismatch. */
static bool run_vector(const struct json *v, const char *name)
{
    struct party ini, res;
    int fails = check_failures;
    const struct json *msgs = json_get(v, "messages");
    const char *hh_hex = json_get_str(v, "handshake_hash");
    CHECK(msgs && msgs->type == JSON_ARRAY && msgs->n > 0);
    CHECK(hh_hex != NULL);
    if (!msgs || !hh_hex)
        return false;
    if (init_party(&ini, v, name, true) != 0 || init_party(&res, v, name, false) != 0)
        goto out;
    for (size_t i = 0; i < msgs->n; i++) {
        struct party *tx = i % 2 == 0 ? &ini : &res, *rx = i % 2 == 0 ? &res : &ini;
        const char *pl_hex = json_get_str(&msgs->items[i], "payload");
        const char *ct_hex = json_get_str(&msgs->items[i], "ciphertext");
        CHECK(pl_hex && ct_hex);
        if (!pl_hex || !ct_hex)
            goto out;
        long pl = hex_decode(pl_hex, payload, sizeof(payload));
        long cl = hex_decode(ct_hex, ct, sizeof(ct));
        CHECK(pl >= 0 && cl >= 0);
        size_t n = 0, m = 0;
        if (noise_handshake_action(&tx->hs) == NOISE_ACTION_WRITE) {
            CHECK_INT(noise_handshake_action(&rx->hs), NOISE_ACTION_READ);
            CHECK_INT(noise_handshake_write(&tx->hs, payload, (size_t)pl, out, sizeof(out), &n), 0);
            CHECK_INT(n, cl);
            CHECK_MEM(out, ct, (size_t)cl);
            CHECK_INT(noise_handshake_read(&rx->hs, ct, (size_t)cl, out, sizeof(out), &m), 0);
            CHECK_INT(m, pl);
            CHECK_MEM(out, payload, (size_t)pl);
            if (noise_handshake_action(&tx->hs) == NOISE_ACTION_SPLIT) {
                size_t hl1, hl2;
                uint8_t want[64];
                CHECK_INT(noise_handshake_action(&rx->hs), NOISE_ACTION_SPLIT);
                CHECK_INT(noise_handshake_split(&ini.hs, &ini.send, &ini.recv), 0);
                CHECK_INT(noise_handshake_split(&res.hs, &res.send, &res.recv), 0);
                const uint8_t *h1 = noise_handshake_hash(&ini.hs, &hl1);
                const uint8_t *h2 = noise_handshake_hash(&res.hs, &hl2);
                CHECK_INT(hex_decode(hh_hex, want, sizeof(want)), hl1);
                CHECK_INT(hl1, hl2);
                CHECK_MEM(h1, want, hl1);
                CHECK_MEM(h2, want, hl2);
            }
        } else {
            CHECK_INT(noise_handshake_action(&tx->hs), NOISE_ACTION_DONE);
            CHECK_INT(noise_cipher_encrypt(&tx->send, NULL, 0, payload, (size_t)pl, out), 0);
            CHECK_INT(pl + NOISE_TAGLEN, cl);
            CHECK_MEM(out, ct, (size_t)cl);
            CHECK_INT(noise_cipher_decrypt(&rx->recv, NULL, 0, ct, (size_t)cl, out), 0);
            CHECK_MEM(out, payload, (size_t)pl);
        }
        if (check_failures != fails) {
            fprintf(stderr, "  in %s, message %zu\n", name, i);
            goto out;
        }
    }
    /* Every vector has transport messages after the handshake. */
    CHECK_INT(noise_handshake_action(&ini.hs), NOISE_ACTION_DONE);
out:
    party_free(&ini);
    party_free(&res);
    return check_failures == fails;
}

static int run_file(const char *dir, const char *file)
{
    char path[4096];
    struct json root;
    int ran = 0, seen = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (!json_load(path, &root)) {
        fprintf(stderr, "cannot load %s\n", path);
        check_failures++;
        return 0;
    }
    const struct json *vecs = json_get(&root, "vectors");
    CHECK(vecs && vecs->type == JSON_ARRAY);
    for (size_t i = 0; vecs && i < vecs->n; i++) {
        const struct json *v = &vecs->items[i];
        const char *name = json_get_str(v, "protocol_name");
        if (!name)
            name = json_get_str(v, "name");
        struct noise_suite s;
        seen++;
        /* Skip psk modes (also the obsolete NoisePSK_ entries), 448, BLAKE2s, SHA512 and
         * other patterns: noise_parse_name accepts exactly our names. */
        if (!name || strncmp(name, "Noise_", 6) != 0 || !noise_parse_name(name, &s))
            continue;
        if (json_get(v, "init_psks") || json_get(v, "init_psk"))
            continue;
        if (run_vector(v, name))
            ran++;
    }
    fprintf(stderr, "%s: %d of %d vectors ran and passed\n", file, ran, seen);
    json_free(&root);
    return ran;
}

/* ---- hand-made handshakes for negative tests ---- */

static struct noise_keypair kp_init, kp_resp;

static void start_xx(struct party *ini, struct party *res, const char *name)
{
    static const uint8_t prologue[] = "secho/1";
    memset(ini, 0, sizeof(*ini));
    memset(res, 0, sizeof(*res));
    CHECK_INT(noise_handshake_init(&ini->hs, name, true, prologue, 7, &kp_init, NULL), 0);
    CHECK_INT(noise_handshake_init(&res->hs, name, false, prologue, 7, &kp_resp, NULL), 0);
}

/* Runs an XX handshake with payload "hi" in every message; message `flip_msg` gets bit
 * `bit` flipped (or is truncated by `cut` bytes) in transit. Returns the first error seen,
 * or 0 when the handshake completes. */
static int xx_tampered(const char *name, int flip_msg, size_t bit, size_t cut)
{
    struct party ini, res;
    struct party *side[2] = {&ini, &res};
    int r = 0;
    start_xx(&ini, &res, name);
    for (int i = 0; i < 3 && r == 0; i++) {
        struct party *tx = side[i % 2], *rx = side[(i + 1) % 2];
        size_t n = 0, m = 0;
        r = noise_handshake_write(&tx->hs, (const uint8_t *)"hi", 2, ct, sizeof(ct), &n);
        CHECK_INT(r, 0);
        if (i == flip_msg) {
            if (cut)
                n = cut > n ? 0 : n - cut;
            else
                ct[(bit / 8) % n] ^= (uint8_t)(1u << (bit % 8));
        }
        r = noise_handshake_read(&rx->hs, ct, n, out, sizeof(out), &m);
        if (r == 0) {
            CHECK_INT(m, 2);
            /* An undetected change may only be one the next message will catch. */
            if (memcmp(out, "hi", 2) != 0)
                CHECK(i == flip_msg && i == 0);
        } else {
            CHECK_INT(noise_handshake_action(&rx->hs), NOISE_ACTION_FAILED);
            size_t k;
            CHECK_INT(noise_handshake_read(&rx->hs, ct, n, out, sizeof(out), &k), NOISE_E_STATE);
        }
    }
    party_free(&ini);
    party_free(&res);
    return r;
}

static void test_tamper(const char *name, size_t stride)
{
    /* Message 0 of XX is "e" + a payload in clear: a change there is caught when the
     * initiator reads message 1, since both transcripts (h) differ. Later messages fail at
     * once. Every bit (stride 1) or one bit per byte (stride 9) of every message is tried. */
    size_t lens[3] = {32 + 2, 32 + 48 + 18, 48 + 18};
    for (int m = 0; m < 3; m++) {
        int bad = 0;
        for (size_t bit = 0; bit < lens[m] * 8; bit += stride)
            if (xx_tampered(name, m, bit, 0) != NOISE_E_AUTH)
                bad++;
        CHECK_INT(bad, 0);
    }
    CHECK_INT(xx_tampered(name, -1, 0, 0), 0); /* the untampered run completes */
    /* Truncation: by one byte (a tag no longer verifies, or too short for the pattern), and
     * to nothing. */
    CHECK_INT(xx_tampered(name, 1, 0, 1), NOISE_E_AUTH);
    CHECK_INT(xx_tampered(name, 2, 0, 1), NOISE_E_AUTH);
    CHECK_INT(xx_tampered(name, 0, 0, 3), NOISE_E_PARSE); /* 31 bytes: no room for e */
    CHECK_INT(xx_tampered(name, 1, 0, 1000), NOISE_E_PARSE);
    CHECK_INT(xx_tampered(name, 2, 0, 1000), NOISE_E_PARSE);
    CHECK_INT(xx_tampered(name, 1, 0, 17), NOISE_E_PARSE); /* payload shorter than a tag */
}

static void full_xx(const char *name, struct party *ini, struct party *res)
{
    struct party *side[2] = {ini, res};
    start_xx(ini, res, name);
    for (int i = 0; i < 3; i++) {
        size_t n = 0, m = 0;
        CHECK_INT(noise_handshake_write(&side[i % 2]->hs, NULL, 0, ct, sizeof(ct), &n), 0);
        CHECK_INT(noise_handshake_read(&side[(i + 1) % 2]->hs, ct, n, out, sizeof(out), &m), 0);
        CHECK_INT(m, 0);
    }
    CHECK_INT(noise_handshake_split(&ini->hs, &ini->send, &ini->recv), 0);
    CHECK_INT(noise_handshake_split(&res->hs, &res->send, &res->recv), 0);
    CHECK_MEM(noise_handshake_remote_static(&ini->hs), kp_resp.pub, 32);
    CHECK_MEM(noise_handshake_remote_static(&res->hs), kp_init.pub, 32);
}

static void test_transport(const char *name)
{
    struct party ini, res;
    full_xx(name, &ini, &res);
    static const uint8_t msg[] = "hello, transport";
    size_t len = sizeof(msg) - 1;
    CHECK_INT(noise_cipher_encrypt(&ini.send, NULL, 0, msg, len, ct), 0);
    for (size_t bit = 0; bit < (len + NOISE_TAGLEN) * 8; bit++) {
        ct[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK_INT(noise_cipher_decrypt(&res.recv, NULL, 0, ct, len + NOISE_TAGLEN, out),
                  NOISE_E_AUTH);
        ct[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CHECK_INT(noise_cipher_decrypt(&res.recv, NULL, 0, ct, len + NOISE_TAGLEN - 1, out),
              NOISE_E_AUTH);
    CHECK_INT(noise_cipher_decrypt(&res.recv, NULL, 0, ct, 15, out), NOISE_E_AUTH);
    /* Failures did not advance the nonce: the genuine record still opens. */
    CHECK_INT(noise_cipher_decrypt(&res.recv, NULL, 0, ct, len + NOISE_TAGLEN, out), 0);
    CHECK_MEM(out, msg, len);
    /* Replay: the same record again is under the next nonce and fails. */
    CHECK_INT(noise_cipher_decrypt(&res.recv, NULL, 0, ct, len + NOISE_TAGLEN, out), NOISE_E_AUTH);
    /* The other direction, in place. */
    memcpy(ct, msg, len);
    CHECK_INT(noise_cipher_encrypt(&res.send, NULL, 0, ct, len, ct), 0);
    CHECK_INT(noise_cipher_decrypt(&ini.recv, NULL, 0, ct, len + NOISE_TAGLEN, ct), 0);
    CHECK_MEM(ct, msg, len);

    /* Nonce limit: 2^64-2 is the last usable nonce; 2^64-1 is reserved (section 5.1). */
    noise_cipher_set_nonce(&ini.send, UINT64_MAX - 1);
    noise_cipher_set_nonce(&res.recv, UINT64_MAX - 1);
    CHECK_INT(noise_cipher_encrypt(&ini.send, NULL, 0, msg, len, ct), 0);
    CHECK_INT(noise_cipher_decrypt(&res.recv, NULL, 0, ct, len + NOISE_TAGLEN, out), 0);
    CHECK_MEM(out, msg, len);
    CHECK_INT(noise_cipher_encrypt(&ini.send, NULL, 0, msg, len, ct), NOISE_E_LIMIT);
    CHECK_INT(noise_cipher_decrypt(&res.recv, NULL, 0, ct, len + NOISE_TAGLEN, out), NOISE_E_LIMIT);
    party_free(&ini);
    party_free(&res);
}

static void test_names(void)
{
    struct noise_suite s;
    CHECK(noise_parse_name("Noise_XX_25519_AESGCM_SHA256", &s));
    CHECK_INT(s.pattern, NOISE_XX);
    CHECK_INT(s.cipher, CRYPTO_AES256GCM);
    CHECK_INT(s.hash, CRYPTO_SHA256);
    CHECK(noise_parse_name("Noise_IK_25519_ChaChaPoly_BLAKE2b", &s));
    CHECK_INT(s.pattern, NOISE_IK);
    CHECK_INT(s.cipher, CRYPTO_CHACHAPOLY);
    CHECK_INT(s.hash, CRYPTO_BLAKE2B);
    static const char *const bad[] = {
        "",
        "Noise_",
        "Noise_XX_25519_AESGCM_SHA25",
        "Noise_XX_25519_AESGCM_SHA2566",
        "Noise_XX_25519_AESGCM_SHA256 ",
        "Noise_XX_448_AESGCM_SHA256",
        "Noise_XXpsk3_25519_AESGCM_SHA256",
        "Noise_XX_25519_AESGCM_BLAKE2s",
        "Noise_XX_25519_AESGCM_SHA512",
        "Noise_KK_25519_AESGCM_SHA256",
        "NoisePSK_XX_25519_AESGCM_SHA256",
        "noise_XX_25519_AESGCM_SHA256",
        "Noise_XX_25519_AESGCM",
        "Noise_XX_25519__SHA256",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (noise_parse_name(bad[i], &s)) {
            fprintf(stderr, "accepted bad name \"%s\"\n", bad[i]);
            check_failures++;
        }
    struct noise_handshake hs;
    CHECK_INT(
        noise_handshake_init(&hs, "Noise_XX_448_AESGCM_SHA256", true, NULL, 0, &kp_init, NULL),
        NOISE_E_PARSE);
    noise_handshake_free(&hs);
    /* Required keys: XX needs s, NK initiator needs rs. */
    CHECK_INT(noise_handshake_init(&hs, "Noise_XX_25519_AESGCM_SHA256", true, NULL, 0, NULL, NULL),
              -EINVAL);
    noise_handshake_free(&hs);
    CHECK_INT(noise_handshake_init(&hs, "Noise_NK_25519_AESGCM_SHA256", true, NULL, 0, NULL, NULL),
              -EINVAL);
    noise_handshake_free(&hs);
    /* Out of turn. */
    CHECK_INT(noise_handshake_init(&hs, "Noise_NN_25519_AESGCM_SHA256", false, NULL, 0, NULL, NULL),
              0);
    size_t n;
    CHECK_INT(noise_handshake_write(&hs, NULL, 0, out, sizeof(out), &n), NOISE_E_STATE);
    struct noise_cipher a = {0}, b = {0};
    CHECK_INT(noise_handshake_split(&hs, &a, &b), NOISE_E_STATE);
    noise_handshake_free(&hs);
    /* Output that does not fit. */
    CHECK_INT(noise_handshake_init(&hs, "Noise_NN_25519_AESGCM_SHA256", true, NULL, 0, NULL, NULL),
              0);
    CHECK_INT(noise_handshake_write(&hs, payload, 10, out, 41, &n), NOISE_E_TOOBIG);
    noise_handshake_free(&hs);
    CHECK_INT(noise_handshake_init(&hs, "Noise_NN_25519_AESGCM_SHA256", true, NULL, 0, NULL, NULL),
              0);
    CHECK_INT(noise_handshake_write(&hs, payload, NOISE_MAX_MSG - 31, out, sizeof(out), &n),
              NOISE_E_TOOBIG);
    noise_handshake_free(&hs);
}

/* InitializeSymmetric: names up to HASHLEN are zero-padded, longer ones hashed. The expected
 * digests were computed independently with Python:
 *   hashlib.sha256(b"Noise_NNpsk0_25519_ChaChaPoly_SHA256").hexdigest()
 *   hashlib.blake2b(b"Noise_XXfallback+psk0+psk1+psk2_25519_ChaChaPoly_BLAKE2b_with_a_long_tail")
 *          .hexdigest()   (a 73-byte name, longer than BLAKE2b's 64-byte HASHLEN) */
static void test_name_hashing(void)
{
    struct noise_symmetric ss;
    uint8_t want[64];
    const char *n1 = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
    CHECK_INT(noise_symmetric_init(&ss, CRYPTO_CHACHAPOLY, CRYPTO_SHA256, (const uint8_t *)n1,
                                   strlen(n1)),
              0);
    hex_decode("f0b890826fb8e6584af6948d227169c381c9ed6a4c1c90df4b9ff454fa947f7b", want, 32);
    CHECK_INT(strlen(n1), 36);
    CHECK_MEM(ss.h, want, 32);
    CHECK_MEM(ss.ck, want, 32);
    CHECK(!ss.cs.has_key);
    noise_symmetric_free(&ss);

    const char *n2 = "Noise_XXfallback+psk0+psk1+psk2_25519_ChaChaPoly_BLAKE2b_with_a_long_tail";
    CHECK_INT(noise_symmetric_init(&ss, CRYPTO_CHACHAPOLY, CRYPTO_BLAKE2B, (const uint8_t *)n2,
                                   strlen(n2)),
              0);
    hex_decode("87629a8e312bc5534a630dc0e622c64c3ca61243bb4cc88344457809d4f47e76"
               "9346131a9a6dc3b035d9f871e4ce4cdbd598176d6d22835a144213f530df0738",
               want, 64);
    CHECK_MEM(ss.h, want, 64);
    CHECK_MEM(ss.ck, want, 64);
    noise_symmetric_free(&ss);

    /* Exactly HASHLEN (32): copied, not hashed. */
    const char *n3 = "Noise_XX_25519_ChaChaPoly_SHA256";
    CHECK_INT(noise_symmetric_init(&ss, CRYPTO_CHACHAPOLY, CRYPTO_SHA256, (const uint8_t *)n3,
                                   strlen(n3)),
              0);
    CHECK_MEM(ss.h, n3, 32);
    noise_symmetric_free(&ss);
    /* Shorter: zero-padded. */
    const char *n4 = "Noise_XX_25519_AESGCM_BLAKE2b";
    CHECK_INT(noise_symmetric_init(&ss, CRYPTO_AES256GCM, CRYPTO_BLAKE2B, (const uint8_t *)n4,
                                   strlen(n4)),
              0);
    memset(want, 0, 64);
    memcpy(want, n4, strlen(n4));
    CHECK_MEM(ss.h, want, 64);
    noise_symmetric_free(&ss);
}

int main(void)
{
    const char *dir = getenv("SECHO_VECTORS");
    if (!dir) {
        fprintf(stderr, "SECHO_VECTORS is not set\n");
        return 1;
    }
    CHECK_INT(crypto_x25519_keygen(kp_init.priv, kp_init.pub), 0);
    CHECK_INT(crypto_x25519_keygen(kp_resp.priv, kp_resp.pub), 0);

    int ran = run_file(dir, "cacophony.txt") + run_file(dir, "noise-c-basic.txt");
    fprintf(stderr, "vectors run: %d (expected %d)\n", ran, EXPECTED_VECTORS);
    CHECK_INT(ran, EXPECTED_VECTORS);

    test_names();
    test_name_hashing();
    static const char *const suites[] = {
        "Noise_XX_25519_AESGCM_SHA256",
        "Noise_XX_25519_AESGCM_BLAKE2b",
        "Noise_XX_25519_ChaChaPoly_SHA256",
        "Noise_XX_25519_ChaChaPoly_BLAKE2b",
    };
    for (size_t i = 0; i < 4; i++) {
        test_tamper(suites[i], i == 0 ? 1 : 9);
        test_transport(suites[i]);
    }
    return CHECK_DONE();
}
