/* SPDX-License-Identifier: MIT */
/* libFuzzer target: public keys as text (keys_b64_decode, keys_b64_valid), --admins lines
 * (keys_parse_key_line) and --admins files (keys_set_load).
 *
 * data[0] bit 0: also write the rest to a file and load it as an --admins list; bit 1: that
 * file is group-writable. The rest is the text.
 * Oracles, written here again independently of keys.c:
 *   - base64: exactly 43 characters of the standard alphabet then '=', the last character's
 *     two unused bits zero (canonical) decodes, nothing else; what decodes encodes back to
 *     the same 44 characters; any 32 bytes encode to text that decodes to them.
 *   - a line (split at '\n', cut at a NUL as getline and C strings do): what comes before
 *     '#' is blank (0), one canonical key (1, that key) or anything else (KEYS_E_FORMAT); a
 *     line whose text before '#' reaches 1024 bytes is refused.
 *   - a file loads exactly when every line parses, into the set of its distinct keys;
 *     otherwise it fails naming the first bad line (FILE:N:) and leaves the set freed; a
 *     group-writable file is refused (-EPERM) whatever it holds. */
#include <errno.h>
#include <stdio.h>

#include "fuzz_util.h"
#include "keys.h"

#define MAX_TEXT 8192

static char dir[64], path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/admins", dir);
    return 0;
}

static int sym(char c)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

/* The specification of a public key's text, as a predicate. */
static bool canonical_key(const char *s, size_t n)
{
    if (n != KEYS_B64LEN || s[43] != '=')
        return false;
    for (size_t i = 0; i < 43; i++)
        if (sym(s[i]) < 0)
            return false;
    return (sym(s[42]) & 3) == 0; /* 43 * 6 = 258 bits: the last two are padding */
}

static void check_b64(const char *s, size_t n)
{
    uint8_t key[KEYS_LEN], again[KEYS_LEN];
    char text[KEYS_B64LEN + 1];
    memset(key, 0xA5, sizeof(key));
    bool ok = keys_b64_decode(s, n, key);
    FUZZ_CHECK(ok == canonical_key(s, n));
    if (ok) {
        keys_b64_encode(key, text);
        FUZZ_CHECK(memcmp(text, s, KEYS_B64LEN) == 0 && text[KEYS_B64LEN] == '\0');
    } else {
        for (size_t i = 0; i < KEYS_LEN; i++)
            FUZZ_CHECK(key[i] == 0xA5); /* untouched on failure */
    }
    if (n >= KEYS_LEN) {
        /* Any 32 bytes: encode, then decode back. */
        keys_b64_encode((const uint8_t *)s, text);
        FUZZ_CHECK(strlen(text) == KEYS_B64LEN && canonical_key(text, KEYS_B64LEN));
        FUZZ_CHECK(keys_b64_decode(text, KEYS_B64LEN, again) && memcmp(again, s, KEYS_LEN) == 0);
        FUZZ_CHECK(keys_b64_valid(text));
    }
}

/* The model of one --admins line (a C string): 0 blank, 1 with *key, KEYS_E_FORMAT. */
static int model_line(const char *line, uint8_t key[KEYS_LEN])
{
    size_t len = strcspn(line, "#\n");
    if (len >= 1024)
        return KEYS_E_FORMAT;
    size_t i = 0, start, end;
    while (i < len && strchr(" \t\r", line[i]))
        i++;
    if (i == len)
        return 0;
    start = i;
    while (i < len && !strchr(" \t\r", line[i]))
        i++;
    end = i;
    while (i < len && strchr(" \t\r", line[i]))
        i++;
    if (i != len || !canonical_key(line + start, end - start))
        return KEYS_E_FORMAT;
    FUZZ_CHECK(keys_b64_decode(line + start, end - start, key));
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text[MAX_TEXT + 1], line[MAX_TEXT + 1];
    static uint8_t keys[MAX_TEXT][KEYS_LEN];
    if (size < 1 || size - 1 > MAX_TEXT)
        return 0;
    uint8_t mode = data[0];
    size_t n = size - 1;
    memcpy(text, data + 1, n);
    text[n] = '\0';

    check_b64(text, n);
    char *nul = memchr(text, '\0', n);
    FUZZ_CHECK(keys_b64_valid(text) == canonical_key(text, nul ? (size_t)(nul - text) : n));

    /* Line by line, as getline splits a file. */
    size_t nkeys = 0, bad = 0, lineno = 0;
    for (size_t off = 0; off < n;) {
        const char *nl = memchr(text + off, '\n', n - off);
        size_t len = nl ? (size_t)(nl - (text + off)) + 1 : n - off;
        memcpy(line, text + off, len);
        line[len] = '\0';
        off += len;
        lineno++;
        uint8_t got[KEYS_LEN], want[KEYS_LEN];
        int r = keys_parse_key_line(line, got), m = model_line(line, want);
        FUZZ_CHECK(r == m);
        if (r == 1) {
            FUZZ_CHECK(memcmp(got, want, KEYS_LEN) == 0);
            bool dup = false;
            for (size_t i = 0; i < nkeys && !dup; i++)
                dup = memcmp(keys[i], got, KEYS_LEN) == 0;
            if (!dup)
                memcpy(keys[nkeys++], got, KEYS_LEN);
        } else if (r < 0 && !bad) {
            bad = lineno;
        }
    }

    if (!(mode & 1))
        return 0;
    fuzz_write_file(path, text, n, mode & 2 ? 0620 : 0600);
    struct keys_set set = {0};
    char err[512] = "";
    int r = keys_set_load(path, &set, err, sizeof(err));
    if (mode & 2) {
        FUZZ_CHECK(r == -EPERM && set.keys == NULL && set.n == 0);
    } else if (bad) {
        char where[64];
        snprintf(where, sizeof(where), "%s:%zu:", path, bad);
        FUZZ_CHECK(r == KEYS_E_FORMAT && strstr(err, where) == err);
        FUZZ_CHECK(set.keys == NULL && set.n == 0);
    } else {
        FUZZ_CHECK(r == 0 && set.n == nkeys);
        for (size_t i = 0; i < nkeys; i++)
            FUZZ_CHECK(keys_set_contains(&set, keys[i]));
    }
    keys_set_free(&set);
    unlink(path);
    return 0;
}
