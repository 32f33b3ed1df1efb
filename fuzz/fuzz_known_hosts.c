/* SPDX-License-Identifier: MIT */
/* libFuzzer target: known_hosts lines (keys_parse_known_host) and files (check, line, add,
 * remove).
 *
 * data[0] picks the query and the operations: bits 0-1 which well-formed line's host is
 * asked about (none: "h:1"), bit 2 whether with that line's key or another, bit 3 add the
 * key, bit 4 remove the host, bit 5 the file is group-writable. The rest is the file.
 * Oracles, written here again independently of keys.c:
 *   - a line (split at '\n', cut at a NUL, as getline and C strings see it) is blank before
 *     any '#' (0), or two or three fields (space, tab, CR) "HOST:PORT [KIND] KEY", the host part
 *     non-empty before its last ':' and the port all digits, the key canonical base64 (1),
 *     or malformed; text before '#' of 1024 bytes or more is malformed; what parses formats
 *     back as "HOST KEY" to the same host and key;
 *   - check: MATCH if a well-formed line for the host carries the key, else CHANGED (old =
 *     the first such line's key) if one is for the host, else UNKNOWN; malformed lines never
 *     count; line: the 1-based number of the first matching line, or 0;
 *   - add: the file is its old bytes, then (after a '\n' if its last byte was not one) the
 *     line "HOST KEY\n", unless the key was already there (then untouched); afterwards it
 *     matches;
 *   - remove: exactly the well-formed lines for the host go, every other byte stays, and the
 *     host is unknown afterwards; the count is the number removed;
 *   - a group-writable file is refused (-EPERM) by check and add, whatever it holds. */
#include <errno.h>
#include <stdio.h>

#include "fuzz_util.h"
#include "keys.h"

#define MAX_TEXT  16384
#define MAX_LINES 4096

static char dir[64], path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/known_hosts", dir);
    return 0;
}

static bool canonical_key(const char *s, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n != KEYS_B64LEN || s[43] != '=')
        return false;
    for (size_t i = 0; i < 43; i++)
        if (!s[i] || !strchr(alphabet, s[i]))
            return false;
    return (strchr(alphabet, s[42]) - alphabet) % 4 == 0;
}

struct line {
    size_t off, len; /* the segment in the file, with its '\n' */
    int r;           /* the model's verdict */
    char host[1024];
    char kind[KEYS_KIND_MAX]; /* "" for an untagged (secure) line */
    uint8_t key[KEYS_LEN];
};

static struct line lines[MAX_LINES];

/* The model of one known_hosts line (a C string). */
static int model_line(const char *s, char *host, char kind[KEYS_KIND_MAX], uint8_t key[KEYS_LEN])
{
    size_t len = strcspn(s, "#\n");
    if (len >= 1024)
        return KEYS_E_FORMAT;
    size_t f[3][2], nf = 0;
    for (size_t i = 0; i < len;) {
        if (strchr(" \t\r", s[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && !strchr(" \t\r", s[i]))
            i++;
        if (nf == 3)
            return KEYS_E_FORMAT;
        f[nf][0] = start;
        f[nf][1] = i - start;
        nf++;
    }
    if (nf == 0)
        return 0;
    size_t kf = nf - 1; /* the key is the last field; a middle one is the kind */
    if (nf < 2 || !canonical_key(s + f[kf][0], f[kf][1]))
        return KEYS_E_FORMAT;
    kind[0] = '\0';
    if (nf == 3) {
        if (f[1][1] >= KEYS_KIND_MAX)
            return KEYS_E_FORMAT;
        for (size_t i = 0; i < f[1][1]; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789-", s[f[1][0] + i]))
                return KEYS_E_FORMAT;
        memcpy(kind, s + f[1][0], f[1][1]);
        kind[f[1][1]] = '\0';
    }
    const char *h = s + f[0][0];
    size_t hl = f[0][1], colon = hl;
    for (size_t i = 0; i < hl; i++)
        if (h[i] == ':')
            colon = i;
    if (colon == hl || colon == 0 || colon + 1 == hl)
        return KEYS_E_FORMAT;
    for (size_t i = colon + 1; i < hl; i++)
        if (h[i] < '0' || h[i] > '9')
            return KEYS_E_FORMAT;
    memcpy(host, h, hl);
    host[hl] = '\0';
    FUZZ_CHECK(keys_b64_decode(s + f[kf][0], KEYS_B64LEN, key));
    return 1;
}

/* What check must answer for (host, key), and the old key. */
static int model_check(size_t nlines, const char *host, const uint8_t key[KEYS_LEN],
                       uint8_t old[KEYS_LEN], size_t *lineno)
{
    int verdict = KEYS_HOST_UNKNOWN;
    *lineno = 0;
    for (size_t i = 0; i < nlines; i++) {
        if (lines[i].r != 1 || lines[i].kind[0] || strcmp(lines[i].host, host) != 0)
            continue; /* the query is secure's: untagged lines only */
        if (memcmp(lines[i].key, key, KEYS_LEN) == 0) {
            *lineno = i + 1;
            return KEYS_HOST_MATCH;
        }
        if (verdict == KEYS_HOST_UNKNOWN)
            memcpy(old, lines[i].key, KEYS_LEN);
        verdict = KEYS_HOST_CHANGED;
    }
    return verdict;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text[MAX_TEXT + 1], seg[MAX_TEXT + 1], file[MAX_TEXT + 2048];
    static char want[MAX_TEXT + 2048];
    if (size < 1 || size - 1 > MAX_TEXT)
        return 0;
    uint8_t mode = data[0];
    size_t n = size - 1;
    memcpy(text, data + 1, n);

    size_t nlines = 0, nparsed = 0;
    for (size_t off = 0; off < n && nlines < MAX_LINES;) {
        const char *nl = memchr(text + off, '\n', n - off);
        size_t len = nl ? (size_t)(nl - (text + off)) + 1 : n - off;
        struct line *l = &lines[nlines++];
        memcpy(seg, text + off, len);
        seg[len] = '\0';
        l->off = off;
        l->len = len;
        off += len;
        char host[1024], kind[KEYS_KIND_MAX];
        uint8_t key[KEYS_LEN];
        l->r = model_line(seg, l->host, l->kind, l->key);
        int r = keys_parse_known_host(seg, host, sizeof(host), kind, key);
        FUZZ_CHECK(r == l->r);
        if (r != 1)
            continue;
        nparsed++;
        FUZZ_CHECK(strcmp(host, l->host) == 0 && strcmp(kind, l->kind) == 0 &&
                   memcmp(key, l->key, KEYS_LEN) == 0);
        /* Formats back to the same entry; a buffer one byte short refuses it. */
        char b64[KEYS_B64LEN + 1], again[1200], h2[1024], kind2[KEYS_KIND_MAX];
        uint8_t k2[KEYS_LEN];
        keys_b64_encode(key, b64);
        snprintf(again, sizeof(again), "%s%s%s %s\n", host, kind[0] ? " " : "", kind, b64);
        FUZZ_CHECK(keys_parse_known_host(again, h2, sizeof(h2), kind2, k2) == 1);
        FUZZ_CHECK(strcmp(h2, host) == 0 && strcmp(kind2, kind) == 0 &&
                   memcmp(k2, key, KEYS_LEN) == 0);
        FUZZ_CHECK(keys_parse_known_host(seg, h2, strlen(host), kind2, k2) == KEYS_E_FORMAT);
    }
    if (nlines == MAX_LINES)
        return 0;

    /* The query. */
    char host[1024] = "h:1";
    uint8_t key[KEYS_LEN] = {1}, old[KEYS_LEN], mold[KEYS_LEN];
    if (nparsed) {
        size_t pick = (mode & 3) % nparsed;
        for (size_t i = 0; i < nlines; i++)
            if (lines[i].r == 1 && pick-- == 0) {
                strcpy(host, lines[i].host);
                memcpy(key, lines[i].key, KEYS_LEN);
                break;
            }
    }
    if (mode & 4)
        key[7] ^= 0x5a;
    bool group = mode & 0x20;
    fuzz_write_file(path, text, n, group ? 0620 : 0600);

    char err[512];
    size_t mline;
    int want_check = model_check(nlines, host, key, mold, &mline);
    int r = keys_known_hosts_check(path, host, NULL, key, old, err, sizeof(err));
    if (group) {
        FUZZ_CHECK(r == -EPERM);
        FUZZ_CHECK(keys_known_hosts_add(path, host, NULL, key, err, sizeof(err)) == -EPERM);
        FUZZ_CHECK(fuzz_read_file(path, file, sizeof(file)) == (long)n &&
                   memcmp(file, text, n) == 0);
        return 0;
    }
    FUZZ_CHECK(r == want_check);
    if (r == KEYS_HOST_CHANGED)
        FUZZ_CHECK(memcmp(old, mold, KEYS_LEN) == 0);
    FUZZ_CHECK(keys_known_hosts_line(path, host, NULL, key) == (int)mline);

    if (mode & 8) {
        size_t wn = n;
        memcpy(want, text, n);
        if (want_check != KEYS_HOST_MATCH) {
            char b64[KEYS_B64LEN + 1];
            keys_b64_encode(key, b64);
            if (n > 0 && text[n - 1] != '\n')
                want[wn++] = '\n';
            wn += (size_t)sprintf(want + wn, "%s %s\n", host, b64);
        }
        FUZZ_CHECK(keys_known_hosts_add(path, host, NULL, key, err, sizeof(err)) == 0);
        long got = fuzz_read_file(path, file, sizeof(file));
        FUZZ_CHECK(got == (long)wn && memcmp(file, want, wn) == 0);
        FUZZ_CHECK(keys_known_hosts_check(path, host, NULL, key, NULL, err, sizeof(err)) ==
                   KEYS_HOST_MATCH);
        /* Adding the same key again writes nothing. */
        FUZZ_CHECK(keys_known_hosts_add(path, host, NULL, key, err, sizeof(err)) == 0);
        FUZZ_CHECK(fuzz_read_file(path, file, sizeof(file)) == (long)wn);
        /* The file now holds the query as its entry; the remove below sees it too. */
        memcpy(text, want, wn);
        n = wn;
        nlines = 0;
        for (size_t off = 0; off < n && nlines < MAX_LINES;) {
            const char *nl = memchr(text + off, '\n', n - off);
            size_t len = nl ? (size_t)(nl - (text + off)) + 1 : n - off;
            struct line *l = &lines[nlines++];
            memcpy(seg, text + off, len);
            seg[len] = '\0';
            l->off = off;
            l->len = len;
            off += len;
            l->r = model_line(seg, l->host, l->kind, l->key);
        }
    }
    if (mode & 0x10) {
        size_t wn = 0;
        int count = 0;
        for (size_t i = 0; i < nlines; i++) {
            if (lines[i].r == 1 && strcmp(lines[i].host, host) == 0) {
                count++;
                continue;
            }
            memcpy(want + wn, text + lines[i].off, lines[i].len);
            wn += lines[i].len;
        }
        FUZZ_CHECK(keys_known_hosts_remove(path, host, err, sizeof(err)) == count);
        long got = fuzz_read_file(path, file, sizeof(file));
        FUZZ_CHECK(got == (long)wn && memcmp(file, want, wn) == 0);
        FUZZ_CHECK(keys_known_hosts_check(path, host, NULL, key, NULL, err, sizeof(err)) ==
                   KEYS_HOST_UNKNOWN);
    }
    return 0;
}
