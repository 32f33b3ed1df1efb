/* SPDX-License-Identifier: MIT */
/* libFuzzer target: private key files (keys_load) holding any bytes.
 *
 * data[0] bit 0: the file is group-readable; the rest is written to a file (0600, or 0640)
 * and loaded. Oracles:
 *   - a file others may read is refused (KEYS_E_PERM) whatever it holds, and so is anything
 *     that is not an X25519 private key (KEYS_E_FORMAT); no other answer for a readable
 *     regular file; a refusal leaves the private key buffer wiped (all zero);
 *   - OpenSSL's own PEM reader, asked directly, agrees: keys_load succeeds exactly when it
 *     finds an X25519 private key in the first 4095 bytes, and then with that key's raw
 *     bytes and public key;
 *   - a loaded key is usable: X25519 with it against a fixed peer key gives the same secret
 *     as the peer's side, and keys_save then keys_load gives the same 32 bytes back. */
#include <errno.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "crypto.h"
#include "fuzz_util.h"
#include "keys.h"

#define PEM_READ_MAX 4095 /* keys_load refuses a larger file */

static char dir[64], path[128], saved[128];
static uint8_t peer_priv[KEYS_LEN], peer_pub[KEYS_LEN];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/id.key", dir);
    snprintf(saved, sizeof(saved), "%s/saved.key", dir);
    if (crypto_x25519_keygen(peer_priv, peer_pub) != 0)
        abort();
    return 0;
}

static int refuse_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* OpenSSL's answer for the same bytes: 1 with the raw key, 0 if it finds no X25519 key. */
static int openssl_load(const uint8_t *p, size_t n, uint8_t priv[KEYS_LEN])
{
    BIO *b = BIO_new_mem_buf(p, (int)n);
    if (!b)
        abort();
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, refuse_password, NULL);
    size_t len = KEYS_LEN;
    int ok = k && EVP_PKEY_is_a(k, "X25519") && EVP_PKEY_get_raw_private_key(k, priv, &len) &&
             len == KEYS_LEN;
    EVP_PKEY_free(k);
    BIO_free(b);
    ERR_clear_error();
    return ok;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    bool others = data[0] & 1;
    data++;
    size--;
    fuzz_write_file(path, data, size, others ? 0640 : 0600);

    uint8_t priv[KEYS_LEN], pub[KEYS_LEN], want[KEYS_LEN];
    char err[512] = "";
    memset(priv, 0xA5, sizeof(priv));
    int r = keys_load(path, priv, pub, err, sizeof(err));
    if (r != 0) {
        FUZZ_CHECK(all_zero(priv, sizeof(priv)));
        FUZZ_CHECK(err[0] != '\0');
    }
    if (others) {
        FUZZ_CHECK(r == KEYS_E_PERM);
        return 0;
    }
    /* An encrypted key is not one: the callback gives no password. */
    int ok = size <= PEM_READ_MAX - 1 && openssl_load(data, size, want);
    FUZZ_CHECK(r == 0 || r == KEYS_E_FORMAT);
    FUZZ_CHECK((r == 0) == ok);
    if (r != 0)
        return 0;
    FUZZ_CHECK(memcmp(priv, want, KEYS_LEN) == 0);

    /* Usable: both sides of a DH agree, and the derived public key is the real one. */
    uint8_t mine[KEYS_LEN], theirs[KEYS_LEN], pub2[KEYS_LEN];
    FUZZ_CHECK(crypto_x25519_public(priv, pub2) == 0 && memcmp(pub, pub2, KEYS_LEN) == 0);
    int e1 = crypto_x25519(mine, priv, peer_pub), e2 = crypto_x25519(theirs, peer_priv, pub);
    FUZZ_CHECK(e1 == e2 && (e1 != 0 || memcmp(mine, theirs, KEYS_LEN) == 0));

    /* Saved and loaded again: the same key. */
    uint8_t again[KEYS_LEN], pub3[KEYS_LEN];
    unlink(saved);
    FUZZ_CHECK(keys_save(saved, priv, err, sizeof(err)) == 0);
    struct stat st;
    FUZZ_CHECK(stat(saved, &st) == 0 && (st.st_mode & 0777) == 0600);
    FUZZ_CHECK(keys_load(saved, again, pub3, err, sizeof(err)) == 0);
    FUZZ_CHECK(memcmp(again, priv, KEYS_LEN) == 0 && memcmp(pub3, pub, KEYS_LEN) == 0);
    /* keys_save never overwrites. */
    FUZZ_CHECK(keys_save(saved, priv, err, sizeof(err)) == -EEXIST);
    unlink(saved);
    crypto_wipe(priv, sizeof(priv));
    return 0;
}
