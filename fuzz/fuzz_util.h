/* SPDX-License-Identifier: MIT */
/* What the libFuzzer targets share: a reader over the input (bytes taken from the front run
 * out as zeros, so every input is valid), a check that names the broken property before it
 * aborts, and a private temporary directory. Header-only; each target includes it once. */
#ifndef SECHO_FUZZ_UTIL_H
#define SECHO_FUZZ_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken property: says which, where, then aborts (libFuzzer saves the input). */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

static inline bool fuzz_more(const struct fuzz_in *in)
{
    return in->n > 0;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
    uint16_t hi = fuzz_u8(in);
    return (uint16_t)(hi << 8 | fuzz_u8(in));
}

/* Up to n bytes from the front; *len gets how many there were. */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t n, size_t *len)
{
    const uint8_t *p = in->p;
    *len = n < in->n ? n : in->n;
    in->p += *len;
    in->n -= *len;
    return p;
}

static char fuzz_tmpdir_path[64];

/* Empties and removes the directory of fuzz_tmpdir (its files only: it has no subdirectory). */
static inline void fuzz_tmpdir_remove(void)
{
    DIR *d = opendir(fuzz_tmpdir_path);
    if (!d)
        return;
    int fd = dirfd(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            (void)unlinkat(fd, e->d_name, 0);
    closedir(d);
    (void)rmdir(fuzz_tmpdir_path);
}

/* A fresh directory (0700) for files a target writes, removed at exit: in /dev/shm where there
 * is one (memory: thousands of files a second, and keys_save's fsync costs nothing), else in
 * /tmp. Aborts if it cannot be made. One per process. */
static inline void fuzz_tmpdir(char *dir, size_t cap)
{
    struct stat st;
    const char *base =
        stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
            ? "/dev/shm"
            : "/tmp";
    snprintf(fuzz_tmpdir_path, sizeof(fuzz_tmpdir_path), "%s/secho-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_tmpdir_path) || strlen(fuzz_tmpdir_path) >= cap)
        abort();
    memcpy(dir, fuzz_tmpdir_path, strlen(fuzz_tmpdir_path) + 1);
    atexit(fuzz_tmpdir_remove);
}

/* Writes exactly n bytes to path (created or truncated with `mode`). Aborts on failure. */
static inline void fuzz_write_file(const char *path, const void *p, size_t n, unsigned mode)
{
    FILE *f = fopen(path, "we");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0 || chmod(path, mode) != 0)
        abort();
}

/* Reads up to cap bytes of path into p; returns the count, or -1 if it cannot be read. */
static inline long fuzz_read_file(const char *path, void *p, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(p, 1, cap, f);
    fclose(f);
    return (long)n;
}

/* SECHO_FUZZ_SEED_DIR=DIR: a target writes seeds made with the real protocol there at start
 * (fuzz/seeds.py runs each target so). Writes one; aborts on failure. */
static inline void fuzz_write_seed(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        abort();
    fuzz_write_file(path, p, n, 0644);
}

#endif
