/* SPDX-License-Identifier: MIT */
/* Unit tests for key files, base64 keys, known_hosts and admin lists (in a temp dir). */
#include "check.h"
#include "crypto.h"
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[256];
static char err[256];

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmp, name);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_INT(write(fd, text, strlen(text)), (long long)strlen(text));
    CHECK_INT(fchmod(fd, mode), 0);
    close(fd);
}

static void test_b64(void)
{
    uint8_t k[32], back[32];
    char s[KEYS_B64LEN + 1];
    for (int i = 0; i < 32; i++)
        k[i] = (uint8_t)(i * 7 + 1);
    keys_b64_encode(k, s);
    CHECK_INT(strlen(s), 44);
    CHECK(keys_b64_decode(s, 44, back));
    CHECK_MEM(back, k, 32);
    /* RFC 7748 Alice public key, as `openssl pkey -pubout | base64` shows its raw bytes. */
    static const uint8_t alice[32] = {0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54,
                                      0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e, 0xf7, 0x5a,
                                      0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4,
                                      0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a};
    keys_b64_encode(alice, s);
    CHECK_STR(s, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
    CHECK(keys_b64_valid("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="));
    /* Wrong length, URL alphabet, missing pad, non-canonical trailing bits, junk. */
    CHECK(!keys_b64_valid("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo"));
    CHECK(!keys_b64_valid("hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo="));
    CHECK(!keys_b64_valid("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmp="));
    CHECK(!keys_b64_valid("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=="));
    CHECK(!keys_b64_valid("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066Spjqqb mo="));
    CHECK(!keys_b64_valid(""));
}

static void test_key_files(void)
{
    char path[512], dirpath[512];
    uint8_t priv[32], pub[32], priv2[32], pub2[32];
    bool created = false;

    /* Creation makes missing parents 0700 and the file 0600. */
    path_of(dirpath, sizeof(dirpath), "cfg/secho");
    path_of(path, sizeof(path), "cfg/secho/server.key");
    CHECK_INT(keys_load(path, priv, pub, err, sizeof(err)), -ENOENT);
    CHECK_INT(keys_load_or_create(path, priv, pub, &created, err, sizeof(err)), 0);
    CHECK(created);
    struct stat st;
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    CHECK_INT(stat(dirpath, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0700);

    /* Loading again gives the same pair. */
    CHECK_INT(keys_load_or_create(path, priv2, pub2, &created, err, sizeof(err)), 0);
    CHECK(!created);
    CHECK_MEM(priv2, priv, 32);
    CHECK_MEM(pub2, pub, 32);

    /* Never overwritten. */
    CHECK_INT(keys_save(path, priv, err, sizeof(err)), -EEXIST);
    CHECK(strstr(err, "already exists") != NULL);

    /* Too open: refused, with the fix in the message. Group-readable and world-writable. */
    const mode_t bad[] = {0640, 0604, 0602, 0660, 0644};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(chmod(path, bad[i]), 0);
        err[0] = '\0';
        CHECK_INT(keys_load(path, priv2, pub2, err, sizeof(err)), KEYS_E_PERM);
        char want[600];
        snprintf(want, sizeof(want), "chmod 600 %s", path);
        CHECK(strstr(err, want) != NULL);
    }
    CHECK_INT(chmod(path, 0400), 0);
    CHECK_INT(keys_load(path, priv2, pub2, err, sizeof(err)), 0);
    CHECK_INT(chmod(path, 0600), 0);

    /* Interop: `openssl pkey` reads our file and prints the same public key. */
    char cmd[1200], line[128];
    snprintf(cmd, sizeof(cmd),
             "openssl pkey -in '%s' -pubout -outform DER 2>/dev/null | tail -c 32 | "
             "base64",
             path);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    if (p) {
        char b64[KEYS_B64LEN + 1];
        keys_b64_encode(pub, b64);
        CHECK(fgets(line, sizeof(line), p) != NULL);
        line[strcspn(line, "\n")] = '\0';
        CHECK_STR(line, b64);
        pclose(p);
    }

    /* A key written by openssl is loaded. */
    path_of(path, sizeof(path), "openssl.key");
    snprintf(cmd, sizeof(cmd), "umask 077; openssl genpkey -algorithm X25519 -out '%s'", path);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(keys_load(path, priv2, pub2, err, sizeof(err)), 0);

    /* Not a key, wrong type, not a regular file. */
    path_of(path, sizeof(path), "junk.key");
    write_file(path, "hello\n", 0600);
    CHECK_INT(keys_load(path, priv2, pub2, err, sizeof(err)), KEYS_E_FORMAT);
    path_of(path, sizeof(path), "ed.key");
    snprintf(cmd, sizeof(cmd), "umask 077; openssl genpkey -algorithm ED25519 -out '%s'", path);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(keys_load(path, priv2, pub2, err, sizeof(err)), KEYS_E_FORMAT);
    CHECK_INT(keys_load(tmp, priv2, pub2, err, sizeof(err)), KEYS_E_FORMAT);
}

static void read_file(const char *path, char *out, size_t cap);

static void test_known_hosts(void)
{
    char path[512], id[300], host[300], kind[KEYS_KIND_MAX];
    uint8_t k1[32], k2[32], k3[32], old[32], got[32];
    for (int i = 0; i < 32; i++) {
        k1[i] = (uint8_t)i;
        k2[i] = (uint8_t)(0x80 + i);
        k3[i] = (uint8_t)(0x40 + i);
    }

    CHECK_INT(keys_host_id("127.0.0.1", 9090, id, sizeof(id)), 0);
    CHECK_STR(id, "127.0.0.1:9090");
    CHECK_INT(keys_host_id("::1", 9090, id, sizeof(id)), 0);
    CHECK_STR(id, "[::1]:9090");
    CHECK_INT(keys_host_id("example.org", 1, id, 5), -ENAMETOOLONG);

    char b64[KEYS_B64LEN + 1], line[400];
    keys_b64_encode(k1, b64);
    snprintf(line, sizeof(line), "  [fe80::1]:22\t%s   # office\r\n", b64);
    CHECK_INT(keys_parse_known_host(line, host, sizeof(host), kind, got), 1);
    CHECK_STR(host, "[fe80::1]:22");
    CHECK_MEM(got, k1, 32);
    CHECK_INT(keys_parse_known_host("# only a comment\n", host, sizeof(host), kind, got), 0);
    CHECK_INT(keys_parse_known_host("   \n", host, sizeof(host), kind, got), 0);
    CHECK_INT(keys_parse_known_host("host:1\n", host, sizeof(host), kind, got), KEYS_E_FORMAT);
    snprintf(line, sizeof(line), "host %s", b64);
    CHECK_INT(keys_parse_known_host(line, host, sizeof(host), kind, got), KEYS_E_FORMAT);
    snprintf(line, sizeof(line), "host:1 %s extra", b64);
    CHECK_INT(keys_parse_known_host(line, host, sizeof(host), kind, got), KEYS_E_FORMAT);
    snprintf(line, sizeof(line), "host:x1 %s", b64);
    CHECK_INT(keys_parse_known_host(line, host, sizeof(host), kind, got), KEYS_E_FORMAT);

    path_of(path, sizeof(path), "kh/known_hosts");
    CHECK_INT(keys_known_hosts_check(path, "a:1", NULL, k1, NULL, err, sizeof(err)),
              KEYS_HOST_UNKNOWN);
    CHECK_INT(keys_known_hosts_add(path, "a:1", NULL, k1, err, sizeof(err)), 0);
    CHECK_INT(keys_known_hosts_add(path, "[::1]:9090", NULL, k2, err, sizeof(err)), 0);
    CHECK_INT(keys_known_hosts_check(path, "a:1", NULL, k1, NULL, err, sizeof(err)),
              KEYS_HOST_MATCH);
    CHECK_INT(keys_known_hosts_check(path, "[::1]:9090", NULL, k2, NULL, err, sizeof(err)),
              KEYS_HOST_MATCH);
    memset(old, 0, 32);
    CHECK_INT(keys_known_hosts_check(path, "a:1", NULL, k2, old, err, sizeof(err)),
              KEYS_HOST_CHANGED);
    CHECK_MEM(old, k1, 32);
    /* Same server, other name or port: a new entry, as with ssh. */
    CHECK_INT(keys_known_hosts_check(path, "a:2", NULL, k1, NULL, err, sizeof(err)),
              KEYS_HOST_UNKNOWN);
    CHECK_INT(keys_known_hosts_check(path, "A:1", NULL, k1, NULL, err, sizeof(err)),
              KEYS_HOST_UNKNOWN);
    struct stat st;
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);

    /* Hand edits: comments, junk lines, no final newline. */
    path_of(path, sizeof(path), "kh2");
    keys_b64_encode(k3, b64);
    snprintf(line, sizeof(line), "# header\ngarbage line here\nb:2 %s", b64);
    write_file(path, line, 0644);
    CHECK_INT(keys_known_hosts_check(path, "b:2", NULL, k3, NULL, err, sizeof(err)),
              KEYS_HOST_MATCH);
    CHECK_INT(keys_known_hosts_add(path, "c:3", NULL, k1, err, sizeof(err)), 0);
    CHECK_INT(keys_known_hosts_check(path, "b:2", NULL, k3, NULL, err, sizeof(err)),
              KEYS_HOST_MATCH);
    CHECK_INT(keys_known_hosts_check(path, "c:3", NULL, k1, NULL, err, sizeof(err)),
              KEYS_HOST_MATCH);
    CHECK_INT(keys_known_hosts_add(path, "bad host", NULL, k1, err, sizeof(err)), -EINVAL);
}

/* Lines of a kind ("HOST:PORT KIND KEY", tls's fingerprints) beside secure's untagged ones:
 * each lookup sees its own kind only, and the untagged lines read as before. */
static void test_known_hosts_kinds(void)
{
    char path[512], host[300], kind[KEYS_KIND_MAX], line[400], text[1024], b1[KEYS_B64LEN + 1];
    uint8_t k1[32], k2[32], got[32], old[32];
    for (int i = 0; i < 32; i++) {
        k1[i] = (uint8_t)(7 * i + 1);
        k2[i] = (uint8_t)(0xa0 ^ i);
    }
    keys_b64_encode(k1, b1);
    snprintf(line, sizeof(line), "h:1 tls %s # a certificate\n", b1);
    CHECK_INT(keys_parse_known_host(line, host, sizeof(host), kind, got), 1);
    CHECK_STR(host, "h:1");
    CHECK_STR(kind, "tls");
    CHECK_MEM(got, k1, 32);
    snprintf(line, sizeof(line), "h:1 %s\n", b1);
    CHECK_INT(keys_parse_known_host(line, host, sizeof(host), kind, got), 1);
    CHECK_STR(kind, "");
    /* A kind is a short lower-case token; four fields are not a line. */
    snprintf(line, sizeof(line), "h:1 TLS %s", b1);
    CHECK_INT(keys_parse_known_host(line, host, sizeof(host), kind, got), KEYS_E_FORMAT);
    snprintf(line, sizeof(line), "h:1 abcdefghijklmnop %s", b1);
    CHECK_INT(keys_parse_known_host(line, host, sizeof(host), kind, got), KEYS_E_FORMAT);
    snprintf(line, sizeof(line), "h:1 tls x %s", b1);
    CHECK_INT(keys_parse_known_host(line, host, sizeof(host), kind, got), KEYS_E_FORMAT);
    CHECK(keys_kind_valid(NULL) && keys_kind_valid("") && keys_kind_valid("tls"));
    CHECK(!keys_kind_valid("t s") && !keys_kind_valid("Tls") && !keys_kind_valid("a#"));

    path_of(path, sizeof(path), "kh_kinds");
    CHECK_INT(keys_known_hosts_add(path, "h:1", NULL, k1, err, sizeof(err)), 0);
    /* The same host with the same bytes under another kind is another entry. */
    CHECK_INT(keys_known_hosts_check(path, "h:1", "tls", k1, NULL, err, sizeof(err)),
              KEYS_HOST_UNKNOWN);
    CHECK_INT(keys_known_hosts_add(path, "h:1", "tls", k2, err, sizeof(err)), 0);
    CHECK_INT(keys_known_hosts_add(path, "h:1", "tls", k2, err, sizeof(err)), 0); /* no copy */
    read_file(path, text, sizeof(text));
    char want[1024], b2[KEYS_B64LEN + 1];
    keys_b64_encode(k2, b2);
    snprintf(want, sizeof(want), "h:1 %s\nh:1 tls %s\n", b1, b2);
    CHECK_STR(text, want);
    CHECK_INT(keys_known_hosts_check(path, "h:1", NULL, k1, NULL, err, sizeof(err)),
              KEYS_HOST_MATCH);
    CHECK_INT(keys_known_hosts_check(path, "h:1", "", k1, NULL, err, sizeof(err)), KEYS_HOST_MATCH);
    CHECK_INT(keys_known_hosts_check(path, "h:1", "tls", k2, NULL, err, sizeof(err)),
              KEYS_HOST_MATCH);
    /* A changed entry is reported within its kind only, with the old value of that kind. */
    CHECK_INT(keys_known_hosts_check(path, "h:1", "tls", k1, old, err, sizeof(err)),
              KEYS_HOST_CHANGED);
    CHECK_MEM(old, k2, 32);
    CHECK_INT(keys_known_hosts_check(path, "h:1", NULL, k2, old, err, sizeof(err)),
              KEYS_HOST_CHANGED);
    CHECK_MEM(old, k1, 32);
    CHECK_INT(keys_known_hosts_line(path, "h:1", "tls", k2), 2);
    CHECK_INT(keys_known_hosts_line(path, "h:1", NULL, k2), 0);
    CHECK_INT(keys_known_hosts_line(path, "h:1", NULL, k1), 1);
    CHECK_INT(keys_known_hosts_add(path, "h:2", "No Kind", k1, err, sizeof(err)), -EINVAL);
    /* Forgetting a host forgets all its kinds. */
    CHECK_INT(keys_known_hosts_remove(path, "h:1", err, sizeof(err)), 2);
    read_file(path, text, sizeof(text));
    CHECK_STR(text, "");
}

static void read_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
}

static void test_known_hosts_remove(void)
{
    char path[512], b1[KEYS_B64LEN + 1], b2[KEYS_B64LEN + 1], text[1024], want[1024], got[1024];
    uint8_t k1[32], k2[32];
    struct stat st;
    for (int i = 0; i < 32; i++) {
        k1[i] = (uint8_t)(i * 3);
        k2[i] = (uint8_t)(0xc0 + i);
    }
    keys_b64_encode(k1, b1);
    keys_b64_encode(k2, b2);
    path_of(path, sizeof(path), "kh_remove");
    /* Two lines of the host (one after a key change), a comment, another host, a line we
     * cannot parse, the same host on another port, and no final newline. */
    snprintf(text, sizeof(text),
             "# trusted servers\nh:1 %s\nother:1 %s\nnot a known_hosts line\n  h:1 %s # new\n"
             "h:10 %s",
             b1, b2, b2, b1);
    write_file(path, text, 0600);
    CHECK_INT(keys_known_hosts_remove(path, "h:1", err, sizeof(err)), 2);
    snprintf(want, sizeof(want), "# trusted servers\nother:1 %s\nnot a known_hosts line\nh:10 %s",
             b2, b1);
    read_file(path, got, sizeof(got));
    CHECK_STR(got, want);
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    CHECK_INT(keys_known_hosts_check(path, "h:10", NULL, k1, NULL, err, sizeof(err)),
              KEYS_HOST_MATCH);

    /* Not there: 0, and the file is left exactly as it was (same inode, no temp file). */
    struct stat before;
    CHECK_INT(stat(path, &before), 0);
    CHECK_INT(keys_known_hosts_remove(path, "h:1", err, sizeof(err)), 0);
    CHECK_INT(keys_known_hosts_remove(path, "H:10", err, sizeof(err)), 0);
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT((long long)st.st_ino, (long long)before.st_ino);
    read_file(path, got, sizeof(got));
    CHECK_STR(got, want);

    /* IPv6 ids are bracketed, as keys_host_id writes them. */
    snprintf(text, sizeof(text), "[::1]:9090 %s\n", b1);
    write_file(path, text, 0600);
    CHECK_INT(keys_known_hosts_remove(path, "[::1]:9090", err, sizeof(err)), 1);
    read_file(path, got, sizeof(got));
    CHECK_STR(got, "");

    path_of(path, sizeof(path), "kh_absent");
    err[0] = '\0';
    CHECK_INT(keys_known_hosts_remove(path, "h:1", err, sizeof(err)), -ENOENT);
    CHECK(strstr(err, "kh_absent") != NULL);
    /* Nothing but the files written above is left in the directory (no temp files). */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "test \"$(ls -A '%s' | grep -c kh_remove)\" = 1", tmp);
    CHECK_INT(system(cmd), 0);
}

static void test_admins(void)
{
    char path[512], text[400], b1[KEYS_B64LEN + 1], b2[KEYS_B64LEN + 1];
    uint8_t k1[32], k2[32], k3[32];
    struct keys_set set = {0};
    memset(k1, 1, 32);
    memset(k2, 2, 32);
    memset(k3, 3, 32);
    keys_b64_encode(k1, b1);
    keys_b64_encode(k2, b2);
    path_of(path, sizeof(path), "admins");
    snprintf(text, sizeof(text), "# admins\n%s\n\n  %s  # bob\n%s\n", b1, b2, b1);
    write_file(path, text, 0644);
    CHECK_INT(keys_set_load(path, &set, err, sizeof(err)), 0);
    CHECK_INT(set.n, 2);
    CHECK(keys_set_contains(&set, k1));
    CHECK(keys_set_contains(&set, k2));
    CHECK(!keys_set_contains(&set, k3));
    keys_set_free(&set);

    snprintf(text, sizeof(text), "%s\nnot-a-key\n", b1);
    write_file(path, text, 0644);
    CHECK_INT(keys_set_load(path, &set, err, sizeof(err)), KEYS_E_FORMAT);
    CHECK(strstr(err, ":2:") != NULL);
    CHECK_INT(set.n, 0);
    path_of(path, sizeof(path), "missing");
    CHECK_INT(keys_set_load(path, &set, err, sizeof(err)), -ENOENT);
}

/* StrictModes: trust files (and their directories) that others may write are refused. */
static void test_strict_modes(void)
{
    char path[600], dir[512], text[200], b64[KEYS_B64LEN + 1];
    uint8_t k[32], old[32];
    struct keys_set set = {0};
    memset(k, 7, 32);
    keys_b64_encode(k, b64);

    path_of(path, sizeof(path), "kh_strict");
    snprintf(text, sizeof(text), "h:1 %s\n", b64);
    write_file(path, text, 0644);
    CHECK_INT(keys_known_hosts_check(path, "h:1", NULL, k, old, err, sizeof(err)), KEYS_HOST_MATCH);
    write_file(path, text, 0666);
    err[0] = '\0';
    CHECK_INT(keys_known_hosts_check(path, "h:1", NULL, k, old, err, sizeof(err)), -EPERM);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, "chmod go-w") != NULL);
    CHECK_INT(keys_known_hosts_add(path, "h:2", NULL, k, err, sizeof(err)), -EPERM);
    write_file(path, text, 0620);
    CHECK_INT(keys_known_hosts_check(path, "h:1", NULL, k, old, err, sizeof(err)), -EPERM);

    path_of(path, sizeof(path), "admins_strict");
    snprintf(text, sizeof(text), "%s\n", b64);
    write_file(path, text, 0644);
    CHECK_INT(keys_set_load(path, &set, err, sizeof(err)), 0);
    CHECK_INT(set.n, 1);
    keys_set_free(&set);
    write_file(path, text, 0666);
    err[0] = '\0';
    CHECK_INT(keys_set_load(path, &set, err, sizeof(err)), -EPERM);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, "chmod go-w") != NULL);
    CHECK_INT(set.n, 0);

    /* A directory others may write lets them replace the file: refused unless sticky. */
    path_of(dir, sizeof(dir), "open_dir");
    CHECK_INT(mkdir(dir, 0700), 0);
    CHECK_INT(chmod(dir, 0777), 0);
    snprintf(path, sizeof(path), "%s/known_hosts", dir);
    snprintf(text, sizeof(text), "h:1 %s\n", b64);
    write_file(path, text, 0600);
    err[0] = '\0';
    CHECK_INT(keys_known_hosts_check(path, "h:1", NULL, k, old, err, sizeof(err)), -EPERM);
    CHECK(strstr(err, dir) != NULL);
    CHECK_INT(chmod(dir, 01777), 0);
    CHECK_INT(keys_known_hosts_check(path, "h:1", NULL, k, old, err, sizeof(err)), KEYS_HOST_MATCH);
    CHECK_INT(chmod(dir, 0700), 0);
}

static int count_lines(const char *path)
{
    char buf[4096];
    int fd = open(path, O_RDONLY);
    int lines = 0;
    ssize_t n;
    if (fd < 0)
        return -1;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    close(fd);
    return lines;
}

/* Several first connections at once add the same host: the file ends with one line. */
static void test_known_hosts_concurrent_add(void)
{
    char path[512];
    uint8_t k[32];
    memset(k, 9, 32);
    path_of(path, sizeof(path), "kh_race");
    for (int round = 0; round < 20; round++) {
        int go[2];
        pid_t kids[4];
        unlink(path);
        CHECK_INT(pipe(go), 0);
        for (int i = 0; i < 4; i++) {
            kids[i] = fork();
            if (kids[i] == 0) {
                char c, e[256];
                close(go[1]);
                /* Every child starts when the pipe closes, to make the race as tight as it
                 * can be; the ones that see the key already there write nothing. */
                _exit(read(go[0], &c, 1) == 0 &&
                              keys_known_hosts_add(path, "race:1", NULL, k, e, sizeof(e)) == 0
                          ? 0
                          : 1);
            }
            CHECK(kids[i] > 0);
        }
        close(go[0]);
        close(go[1]);
        for (int i = 0; i < 4; i++) {
            int st = -1;
            if (kids[i] > 0)
                CHECK_INT(waitpid(kids[i], &st, 0), kids[i]);
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        CHECK_INT(count_lines(path), 1);
    }
}

static void test_default_path(void)
{
    char out[512];
    setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
    CHECK_INT(keys_default_path("id.key", out, sizeof(out)), 0);
    CHECK_STR(out, "/x/cfg/secho/id.key");
    setenv("XDG_CONFIG_HOME", "relative", 1);
    setenv("HOME", "/home/u", 1);
    CHECK_INT(keys_default_path("known_hosts", out, sizeof(out)), 0);
    CHECK_STR(out, "/home/u/.config/secho/known_hosts");
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("HOME");
    CHECK_INT(keys_default_path("id.key", out, sizeof(out)), -ENOENT);
}

int main(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/secho-keys-XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    umask(022);
    test_b64();
    test_key_files();
    test_known_hosts();
    test_known_hosts_kinds();
    test_known_hosts_remove();
    test_admins();
    test_strict_modes();
    test_known_hosts_concurrent_add();
    test_default_path();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    CHECK_INT(system(cmd), 0);
    return CHECK_DONE();
}
