/* SPDX-License-Identifier: MIT */
/* Key files and trust stores. Private key files are created 0600 atomically (the mode is set
 * by open(2), never widened then narrowed) and refused when others can read them, as ssh
 * does. Public key text is strict canonical base64, so one key has exactly one spelling. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"

#define PEM_MAX   4096 /* an X25519 PKCS#8 PEM is about 120 bytes */
#define LINE_MAX_ 1024

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- base64 ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

void keys_b64_encode(const uint8_t key[static KEYS_LEN], char out[static KEYS_B64LEN + 1])
{
    size_t o = 0;
    for (size_t i = 0; i < KEYS_LEN; i += 3) {
        uint32_t v = (uint32_t)key[i] << 16;
        if (i + 1 < KEYS_LEN)
            v |= (uint32_t)key[i + 1] << 8;
        if (i + 2 < KEYS_LEN)
            v |= key[i + 2];
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = (char)(i + 1 < KEYS_LEN ? b64chars[(v >> 6) & 63] : '=');
        out[o++] = (char)(i + 2 < KEYS_LEN ? b64chars[v & 63] : '=');
    }
    out[o] = '\0';
}

bool keys_b64_decode(const char *s, size_t len, uint8_t key[static KEYS_LEN])
{
    uint8_t tmp[KEYS_LEN];
    if (len != KEYS_B64LEN || s[43] != '=')
        return false;
    /* 43 symbols carry 258 bits: 32 bytes plus two bits that MUST be zero (canonical). */
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < 43; i++) {
        int v = b64val(s[i]);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            tmp[o++] = (uint8_t)(acc >> bits);
            acc &= (1U << bits) - 1;
        }
    }
    if (o != KEYS_LEN || acc != 0)
        return false;
    memcpy(key, tmp, KEYS_LEN);
    return true;
}

bool keys_b64_valid(const char *s)
{
    uint8_t k[KEYS_LEN];
    return keys_b64_decode(s, strlen(s), k);
}

/* ---- paths ---- */

int keys_default_path(const char *name, char *out, size_t cap)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int n;
    /* XDG Base Directory spec: a relative XDG_CONFIG_HOME is invalid and ignored. */
    if (xdg && xdg[0] == '/')
        n = snprintf(out, cap, "%s/secho/%s", xdg, name);
    else if (home && home[0])
        n = snprintf(out, cap, "%s/.config/secho/%s", home, name);
    else
        return -ENOENT;
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int keys_make_parent(const char *path, char *err, size_t errlen)
{
    char dir[4096];
    size_t len = strlen(path);
    if (len >= sizeof(dir))
        return fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
    memcpy(dir, path, len + 1);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    /* mkdir -p: each missing component is made 0700; existing ones are left alone. */
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return fail(err, errlen, -errno, "cannot create directory %s: %s", dir,
                        strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    return 0;
}

/* ---- trust file permissions ---- */

/* Roughly ssh's secure_permissions (StrictModes): a trust file decides whom we believe, so
 * one that another user could rewrite is refused: the file must belong to the caller or root
 * and not be writable by group or others, and its directory must not be writable by others
 * unless sticky (as /tmp), since whoever can write the directory can replace the file. */
static int check_owner_mode(const char *what, const struct stat *st, bool dir, char *err,
                            size_t errlen)
{
    if (st->st_uid != getuid() && st->st_uid != 0)
        return fail(err, errlen, -EPERM,
                    "%s is owned by another user (uid %u); refusing it, as ssh does", what,
                    (unsigned)st->st_uid);
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(dir && (st->st_mode & S_ISVTX)))
        return fail(err, errlen, -EPERM,
                    "%s is writable by others; refusing it, as ssh does (fix: chmod go-w %s)", what,
                    what);
    return 0;
}

static int check_trust_file(const char *path, int fd, char *err, size_t errlen)
{
    struct stat st;
    char dir[4096];
    if (fstat(fd, &st) != 0)
        return fail(err, errlen, -errno, "cannot read %s: %s", path, strerror(errno));
    int r = check_owner_mode(path, &st, false, err, errlen);
    if (r != 0)
        return r;
    size_t len = strlen(path);
    if (len >= sizeof(dir))
        return fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
    memcpy(dir, path, len + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        memcpy(dir, ".", 2);
    else
        slash[slash == dir ? 1 : 0] = '\0';
    if (stat(dir, &st) != 0)
        return fail(err, errlen, -errno, "cannot read directory %s: %s", dir, strerror(errno));
    return check_owner_mode(dir, &st, true, err, errlen);
}

/* ---- private keys ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int keys_load(const char *path, uint8_t priv[static KEYS_LEN], uint8_t pub[static KEYS_LEN],
              char *err, size_t errlen)
{
    char pem[PEM_MAX];
    size_t len = 0;
    struct stat st;
    int r, fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return fail(err, errlen, -errno, "cannot open key file %s: %s", path, strerror(errno));
    /* fstat on the open descriptor: the checked file is the file read. */
    if (fstat(fd, &st) != 0) {
        r = fail(err, errlen, -errno, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = fail(err, errlen, KEYS_E_FORMAT, "key file %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & 077) {
        r = fail(err, errlen, KEYS_E_PERM,
                 "private key file %s is accessible by others (mode %04o); "
                 "fix it with: chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, pem + len, sizeof(pem) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = fail(err, errlen, -errno, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == sizeof(pem) - 1) {
            r = fail(err, errlen, KEYS_E_FORMAT, "key file %s is too large", path);
            goto out;
        }
    }
    pem[len] = '\0';
    if (crypto_x25519_from_pem(pem, len, priv) != 0) {
        r = fail(err, errlen, KEYS_E_FORMAT, "%s is not an X25519 private key in PEM (PKCS#8) form",
                 path);
        goto out;
    }
    r = crypto_x25519_public(priv, pub) == 0 ? 0 : fail(err, errlen, -EIO, "%s: bad key", path);
out:
    if (r != 0)
        crypto_wipe(priv, KEYS_LEN);
    crypto_wipe(pem, sizeof(pem));
    close(fd);
    return r;
}

int keys_save(const char *path, const uint8_t priv[static KEYS_LEN], char *err, size_t errlen)
{
    char pem[PEM_MAX];
    int r, fd = -1;
    int n = crypto_x25519_to_pem(priv, pem, sizeof(pem));
    if (n < 0)
        return fail(err, errlen, -EIO, "cannot encode the private key");
    r = keys_make_parent(path, err, errlen);
    if (r != 0)
        goto out;
    /* O_EXCL: never overwrite a key; 0600 at creation so it is never readable by others,
     * even for an instant (the umask can only narrow it). */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        r = errno == EEXIST
                ? fail(err, errlen, -EEXIST, "%s already exists; not overwriting it", path)
                : fail(err, errlen, -errno, "cannot create key file %s: %s", path, strerror(errno));
        goto out;
    }
    r = write_all(fd, pem, (size_t)n);
    if (r == 0 && fsync(fd) != 0)
        r = -errno;
    if (r != 0) {
        fail(err, errlen, r, "cannot write key file %s: %s", path, strerror(-r));
        unlink(path); /* do not leave a truncated key behind */
    }
out:
    if (fd >= 0)
        close(fd);
    crypto_wipe(pem, sizeof(pem));
    return r;
}

int keys_load_or_create(const char *path, uint8_t priv[static KEYS_LEN],
                        uint8_t pub[static KEYS_LEN], bool *created, char *err, size_t errlen)
{
    *created = false;
    int r = keys_load(path, priv, pub, err, errlen);
    if (r != -ENOENT)
        return r;
    if (crypto_x25519_keygen(priv, pub) != 0)
        return fail(err, errlen, -EIO, "cannot generate a key pair");
    r = keys_save(path, priv, err, errlen);
    if (r == -EEXIST) /* created by someone else meanwhile: use theirs */
        return keys_load(path, priv, pub, err, errlen);
    if (r != 0) {
        crypto_wipe(priv, KEYS_LEN);
        return r;
    }
    *created = true;
    return 0;
}

/* ---- other private files ---- */

int keys_read_private(const char *path, char *buf, size_t cap, size_t *len, char *err,
                      size_t errlen)
{
    struct stat st;
    size_t n = 0;
    int r = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return fail(err, errlen, -errno, "cannot open key file %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        r = fail(err, errlen, -errno, "cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        r = fail(err, errlen, KEYS_E_FORMAT, "key file %s is not a regular file", path);
    } else if (st.st_mode & 027) {
        r = fail(err, errlen, KEYS_E_PERM,
                 "private key file %s is accessible by others (mode %04o); "
                 "fix it with: chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
    }
    while (r == 0) {
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            r = fail(err, errlen, -errno, "cannot read %s: %s", path, strerror(errno));
        else if (got == 0)
            break;
        else if ((n += (size_t)got) == cap - 1)
            r = fail(err, errlen, KEYS_E_FORMAT, "key file %s is too large", path);
    }
    close(fd);
    if (r != 0) {
        crypto_wipe(buf, cap);
        return r;
    }
    buf[n] = '\0';
    *len = n;
    return 0;
}

int keys_write_new(const char *path, const void *data, size_t len, unsigned mode, char *err,
                   size_t errlen)
{
    char tmp[4096 + 16];
    int r = keys_make_parent(path, err, errlen);
    if (r != 0)
        return r;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
        return fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
    int fd = mkostemp(tmp, O_CLOEXEC); /* 0600 from creation */
    if (fd < 0)
        return fail(err, errlen, -errno, "cannot create a file beside %s: %s", path,
                    strerror(errno));
    r = write_all(fd, data, len);
    if (r == 0 && fchmod(fd, mode & 0777) != 0)
        r = -errno;
    if (r == 0 && fsync(fd) != 0)
        r = -errno;
    if (r != 0)
        fail(err, errlen, r, "cannot write %s: %s", tmp, strerror(-r));
    close(fd);
    /* link(2) never replaces: the whole file appears under path, or EEXIST. */
    if (r == 0 && link(tmp, path) != 0)
        r = errno == EEXIST
                ? fail(err, errlen, -EEXIST, "%s already exists; not overwriting it", path)
                : fail(err, errlen, -errno, "cannot create %s: %s", path, strerror(errno));
    unlink(tmp);
    return r;
}

/* ---- line parsing ---- */

/* Splits a line into up to `max` whitespace-separated fields, ignoring a '#' comment.
 * Works on a copy in buf. Returns the number of fields, or -1 if there are more. */
static int split_fields(const char *line, char *buf, size_t cap, char **f, int max)
{
    size_t len = strcspn(line, "#\n");
    if (len >= cap)
        return -1;
    memcpy(buf, line, len);
    buf[len] = '\0';
    int n = 0;
    for (char *p = buf;;) {
        p += strspn(p, " \t\r");
        if (*p == '\0')
            return n;
        if (n == max)
            return -1;
        f[n++] = p;
        p += strcspn(p, " \t\r");
        if (*p)
            *p++ = '\0';
    }
}

int keys_parse_key_line(const char *line, uint8_t key[static KEYS_LEN])
{
    char buf[LINE_MAX_], *f[1];
    int n = split_fields(line, buf, sizeof(buf), f, 1);
    if (n == 0)
        return 0;
    if (n != 1 || !keys_b64_decode(f[0], strlen(f[0]), key))
        return KEYS_E_FORMAT;
    return 1;
}

int keys_host_id(const char *host, unsigned port, char *out, size_t cap)
{
    bool v6 = strchr(host, ':') != NULL && host[0] != '[';
    int n = snprintf(out, cap, v6 ? "[%s]:%u" : "%s:%u", host, port);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

bool keys_kind_valid(const char *kind)
{
    if (!kind || !*kind)
        return true;
    size_t n = strspn(kind, "abcdefghijklmnopqrstuvwxyz0123456789-");
    return n == strlen(kind) && n < KEYS_KIND_MAX;
}

/* The kinds of a line and of a lookup are the same: NULL and "" both mean untagged. */
static bool same_kind(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

int keys_parse_known_host(const char *line, char *host, size_t hostcap,
                          char kind[static KEYS_KIND_MAX], uint8_t key[static KEYS_LEN])
{
    char buf[LINE_MAX_], *f[3];
    int n = split_fields(line, buf, sizeof(buf), f, 3);
    if (n == 0)
        return 0;
    if (n < 2 || strlen(f[0]) >= hostcap)
        return KEYS_E_FORMAT;
    /* "HOST:PORT KEY" (secure's, untagged) or "HOST:PORT KIND KEY". */
    const char *k = n == 3 ? f[1] : "", *b64 = f[n - 1];
    if ((n == 3 && (!*k || !keys_kind_valid(k))) || !keys_b64_decode(b64, strlen(b64), key))
        return KEYS_E_FORMAT;
    /* The host part must end in ":PORT"; IPv6 addresses are bracketed. */
    const char *colon = strrchr(f[0], ':');
    if (!colon || colon == f[0] || colon[1] == '\0' ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return KEYS_E_FORMAT;
    memcpy(host, f[0], strlen(f[0]) + 1); /* shorter than hostcap, checked above */
    memcpy(kind, k, strlen(k) + 1);       /* shorter than KEYS_KIND_MAX: keys_kind_valid */
    return 1;
}

/* Scans an open known_hosts stream for host_id; see keys_known_hosts_check. */
static int known_scan(FILE *f, const char *path, const char *host_id, const char *kind,
                      const uint8_t key[static KEYS_LEN], uint8_t *old, char *err, size_t errlen)
{
    char *line = NULL, host[LINE_MAX_], lkind[KEYS_KIND_MAX];
    size_t cap = 0;
    uint8_t k[KEYS_LEN];
    bool seen = false, match = false;
    while (getline(&line, &cap, f) >= 0) {
        if (keys_parse_known_host(line, host, sizeof(host), lkind, k) != 1 ||
            strcmp(host, host_id) != 0 || !same_kind(lkind, kind))
            continue;
        if (crypto_equal(k, key, KEYS_LEN)) {
            match = true;
            break;
        }
        if (!seen && old)
            memcpy(old, k, KEYS_LEN);
        seen = true;
    }
    int r = ferror(f) ? fail(err, errlen, -EIO, "cannot read %s", path) : 0;
    free(line);
    if (r != 0)
        return r;
    return match ? KEYS_HOST_MATCH : seen ? KEYS_HOST_CHANGED : KEYS_HOST_UNKNOWN;
}

int keys_known_hosts_check(const char *path, const char *host_id, const char *kind,
                           const uint8_t key[static KEYS_LEN], uint8_t *old, char *err,
                           size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return KEYS_HOST_UNKNOWN;
        return fail(err, errlen, -errno, "cannot read %s: %s", path, strerror(errno));
    }
    int r = check_trust_file(path, fileno(f), err, errlen);
    if (r == 0)
        r = known_scan(f, path, host_id, kind, key, old, err, errlen);
    fclose(f);
    return r;
}

int keys_known_hosts_line(const char *path, const char *host_id, const char *kind,
                          const uint8_t key[static KEYS_LEN])
{
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    char *line = NULL, host[LINE_MAX_], lkind[KEYS_KIND_MAX];
    size_t cap = 0;
    uint8_t k[KEYS_LEN];
    int n = 0, found = 0;
    while (getline(&line, &cap, f) >= 0) {
        n++;
        if (keys_parse_known_host(line, host, sizeof(host), lkind, k) == 1 &&
            strcmp(host, host_id) == 0 && same_kind(lkind, kind) &&
            crypto_equal(k, key, KEYS_LEN)) {
            found = n;
            break;
        }
    }
    if (!found && ferror(f))
        found = -EIO;
    free(line);
    fclose(f);
    return found;
}

int keys_known_hosts_add(const char *path, const char *host_id, const char *kind,
                         const uint8_t key[static KEYS_LEN], char *err, size_t errlen)
{
    char line[LINE_MAX_], b64[KEYS_B64LEN + 1], last = '\n';
    struct stat st;
    int r = keys_make_parent(path, err, errlen);
    if (r != 0)
        return r;
    if (strpbrk(host_id, " \t\r\n#"))
        return fail(err, errlen, -EINVAL, "invalid host \"%s\" for %s", host_id, path);
    if (!keys_kind_valid(kind))
        return fail(err, errlen, -EINVAL, "invalid kind \"%s\" for %s", kind, path);
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
    if ((r = check_trust_file(path, fd, err, errlen)) != 0)
        goto out;
    /* Two first connections at once would both find the host unknown and both append; the
     * lock makes check-then-append one step, and the file is read again under it so a key
     * that the other connection just added is seen and not written twice. */
    if (flock(fd, LOCK_EX) != 0) {
        r = fail(err, errlen, -errno, "cannot lock %s: %s", path, strerror(errno));
        goto out;
    }
    int dfd = dup(fd);
    FILE *f = dfd < 0 ? NULL : fdopen(dfd, "re");
    if (!f) {
        r = fail(err, errlen, -errno, "cannot read %s: %s", path, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        goto out;
    }
    r = known_scan(f, path, host_id, kind, key, NULL, err, errlen);
    fclose(f);
    if (r < 0)
        goto out;
    if (r == KEYS_HOST_MATCH) {
        r = 0;
        goto out;
    }
    /* A hand-edited file may lack its final newline; do not glue our line onto it. */
    if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
        last = '\n';
    keys_b64_encode(key, b64);
    bool tagged = kind && *kind;
    int n = snprintf(line, sizeof(line), "%s%s %s%s%s\n", last == '\n' ? "" : "\n", host_id,
                     tagged ? kind : "", tagged ? " " : "", b64);
    if (n < 0 || (size_t)n >= sizeof(line))
        r = fail(err, errlen, -ENAMETOOLONG, "host name too long");
    else if ((r = write_all(fd, line, (size_t)n)) != 0)
        fail(err, errlen, r, "cannot write %s: %s", path, strerror(-r));
out:
    close(fd); /* releases the lock */
    return r;
}

int keys_known_hosts_remove(const char *path, const char *host_id, char *err, size_t errlen)
{
    char tmp[4096 + 16], *line = NULL, host[LINE_MAX_], kind[KEYS_KIND_MAX];
    size_t cap = 0;
    uint8_t k[KEYS_LEN];
    struct stat st;
    int removed = 0, r = 0, fd = -1;
    FILE *in = fopen(path, "re"), *out = NULL;
    if (!in)
        return fail(err, errlen, -errno, "cannot read %s: %s", path, strerror(errno));
    if (fstat(fileno(in), &st) != 0) {
        r = fail(err, errlen, -errno, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    /* The new contents go to a temporary file beside the old one, renamed over it at the
     * end: a crash or a full disk leaves either the old file or the new, never half. */
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
        r = fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
        goto out;
    }
    fd = mkostemp(tmp, O_CLOEXEC); /* created 0600 */
    if (fd < 0) {
        r = fail(err, errlen, -errno, "cannot create a file beside %s: %s", path, strerror(errno));
        goto out;
    }
    out = fdopen(fd, "w");
    if (!out) {
        r = fail(err, errlen, -errno, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        goto out_unlink;
    }
    ssize_t n;
    while ((n = getline(&line, &cap, in)) >= 0) {
        /* Only well-formed lines for this host go; comments and other hosts' lines stay,
         * byte for byte, as do lines we cannot parse (they are the user's to fix). */
        if (keys_parse_known_host(line, host, sizeof(host), kind, k) == 1 &&
            strcmp(host, host_id) == 0) {
            removed++;
            continue;
        }
        if (fwrite(line, 1, (size_t)n, out) != (size_t)n)
            break;
    }
    if (ferror(in)) {
        r = fail(err, errlen, -EIO, "cannot read %s", path);
        goto out_unlink;
    }
    if (removed == 0)
        goto out_unlink; /* nothing to change: leave the file as it was */
    errno = EIO;         /* what a write error found by ferror() is reported as */
    if (ferror(out) || fflush(out) != 0 || fchmod(fileno(out), st.st_mode & 07777) != 0 ||
        fsync(fileno(out)) != 0) {
        int e = errno ? errno : EIO;
        r = fail(err, errlen, -e, "cannot write %s: %s", tmp, strerror(e));
        goto out_unlink;
    }
    if (rename(tmp, path) != 0) {
        r = fail(err, errlen, -errno, "cannot replace %s: %s", path, strerror(errno));
        goto out_unlink;
    }
    r = removed;
    goto out;
out_unlink:
    unlink(tmp);
out:
    if (out)
        fclose(out);
    fclose(in);
    free(line);
    return r;
}

/* ---- key sets ---- */

int keys_set_add(struct keys_set *set, const uint8_t key[static KEYS_LEN])
{
    if (keys_set_contains(set, key))
        return 0;
    if (set->n == set->cap) {
        size_t ncap = set->cap ? set->cap * 2 : 8;
        void *p = realloc(set->keys, ncap * KEYS_LEN);
        if (!p)
            return -ENOMEM;
        set->keys = p;
        set->cap = ncap;
    }
    memcpy(set->keys[set->n++], key, KEYS_LEN);
    return 0;
}

int keys_set_load(const char *path, struct keys_set *set, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    uint8_t k[KEYS_LEN];
    int r = 0;
    if (!f)
        return fail(err, errlen, -errno, "cannot read %s: %s", path, strerror(errno));
    r = check_trust_file(path, fileno(f), err, errlen);
    while (r == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        int p = keys_parse_key_line(line, k);
        if (p < 0)
            r = fail(err, errlen, KEYS_E_FORMAT,
                     "%s:%zu: not a public key (expected 44 characters of base64)", path, lineno);
        else if (p == 1 && keys_set_add(set, k) != 0)
            r = fail(err, errlen, -ENOMEM, "out of memory");
    }
    if (r == 0 && ferror(f))
        r = fail(err, errlen, -EIO, "cannot read %s", path);
    free(line);
    fclose(f);
    if (r != 0)
        keys_set_free(set);
    return r;
}

bool keys_set_contains(const struct keys_set *set, const uint8_t key[static KEYS_LEN])
{
    bool found = false;
    for (size_t i = 0; i < set->n; i++)
        found |= crypto_equal(set->keys[i], key, KEYS_LEN);
    return found;
}

void keys_set_free(struct keys_set *set)
{
    free(set->keys);
    set->keys = NULL;
    set->n = set->cap = 0;
}
