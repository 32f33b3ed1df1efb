/* SPDX-License-Identifier: MIT */
/* `secho keygen`: makes an X25519 key pair, saves the private key as PKCS#8 PEM (mode 0600,
 * never overwriting) and prints the public key; with -y prints the public key of a key file,
 * with -R forgets a server's known_hosts lines, ssh-keygen style. */
#include "cmd_keygen.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "crypto.h"
#include "keys.h"

static const char *const cmd = "keygen";

static const char usage_text[] =
    "Usage: secho keygen [-o FILE]\n"
    "       secho keygen -y [-k FILE]\n"
    "       secho keygen -R HOST:PORT [--known-hosts FILE]\n"
    "\n"
    "Creates a static X25519 key pair for the secure protocol and prints the public\n"
    "key (base64, for --server-key, --admins and known_hosts) on stdout.\n"
    "\n"
    "  -o, --output FILE       write the private key (PEM, PKCS#8, mode 0600) to FILE;\n"
    "                          default ${XDG_CONFIG_HOME:-~/.config}/secho/id.key (its\n"
    "                          directory is created; FILE's directory must exist).\n"
    "                          An existing file is never overwritten. FILE '-' prints the\n"
    "                          private key on stdout and the public key on stderr.\n"
    "  -y, --public            print the public key of an existing private key file\n"
    "  -k, --key FILE          the key file for -y (default .../secho/id.key)\n"
    "  -R, --remove HOST:PORT  remove the lines of HOST:PORT from known_hosts, e.g.\n"
    "                          after a server's key changed on purpose\n"
    "      --known-hosts FILE  the file for -R (default .../secho/known_hosts)\n"
    "  -h, --help              show this help\n"
    "\n"
    "Exit status: 0 done (also when -R finds no line for the host), 1 the key cannot be\n"
    "written or read, 2 usage error.\n"
    "\n"
    "Examples:\n"
    "  secho keygen -o server.key          # then: secho server -k server.key\n"
    "  secho keygen -y -k server.key       # the key to give clients for --server-key\n"
    "  secho keygen -R 127.0.0.1:9090      # forget a server's key\n";

enum { OPT_KNOWN_HOSTS = 256 };

static const struct option long_opts[] = {
    {"output", required_argument, NULL, 'o'},
    {"public", no_argument, NULL, 'y'},
    {"key", required_argument, NULL, 'k'},
    {"remove", required_argument, NULL, 'R'},
    {"known-hosts", required_argument, NULL, OPT_KNOWN_HOSTS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Fills out with path, or with the default config file NAME; prints why not and returns
 * false when neither is possible. */
static bool path_or_default(const char *path, const char *name, char *out, size_t cap)
{
    if (path) {
        snprintf(out, cap, "%s", path);
        return true;
    }
    if (keys_default_path(name, out, cap) == 0)
        return true;
    fprintf(stderr, "secho keygen: cannot find a config directory (HOME is not set); give the "
                    "file explicitly\n");
    return false;
}

/* An explicit -o names a file in a directory the user already has (as ssh-keygen -f): a
 * typo in the directory must not silently create a tree somewhere else. */
static bool parent_dir_exists(const char *path)
{
    char dir[4096];
    struct stat st;
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return true;
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return true;
    fprintf(stderr, "secho keygen: cannot write %s: directory %s does not exist\n", path, dir);
    return false;
}

static int print_public(const char *keyfile)
{
    char path[4096], err[512], b64[KEYS_B64LEN + 1];
    uint8_t priv[KEYS_LEN], pub[KEYS_LEN];
    if (!path_or_default(keyfile, "id.key", path, sizeof(path)))
        return 1;
    if (keys_load(path, priv, pub, err, sizeof(err)) != 0) {
        fprintf(stderr, "secho keygen: %s\n", err);
        return 1;
    }
    crypto_wipe(priv, sizeof(priv));
    keys_b64_encode(pub, b64);
    printf("%s\n", b64);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int remove_host(const char *hostport, const char *known_hosts)
{
    char path[4096], err[512], host[1024], id[1100];
    /* HOST:PORT as known_hosts spells it; a bare IPv6 address gets its brackets. */
    const char *colon = strrchr(hostport, ':');
    char *end;
    errno = 0;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || colon == hostport || colon[1] == '\0' || *end || errno || port > 65535 ||
        (size_t)(colon - hostport) >= sizeof(host))
        return cli_usage_error(cmd, "-R '%s': use HOST:PORT, as in known_hosts", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    if (keys_host_id(host, (unsigned)port, id, sizeof(id)) != 0)
        return cli_usage_error(cmd, "-R '%s': host name too long", hostport);
    if (!path_or_default(known_hosts, "known_hosts", path, sizeof(path)))
        return 1;
    int n = keys_known_hosts_remove(path, id, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "secho keygen: %s\n", err);
        return 1;
    }
    /* As ssh-keygen -R: a host that is not there is said, and is not a failure. */
    if (n == 0)
        fprintf(stderr, "Host %s not found in %s\n", id, path);
    else
        printf("Removed %d line%s for %s from %s\n", n, n == 1 ? "" : "s", id, path);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int create(const char *out_opt)
{
    char path[4096], err[512], b64[KEYS_B64LEN + 1], pem[1024];
    uint8_t priv[KEYS_LEN], pub[KEYS_LEN];
    int rc = 1;
    if (out_opt && strcmp(out_opt, "-") != 0 && !parent_dir_exists(out_opt))
        return 1;
    if (!path_or_default(out_opt, "id.key", path, sizeof(path)))
        return 1;
    if (crypto_x25519_keygen(priv, pub) != 0) {
        fprintf(stderr, "secho keygen: cannot generate a key pair\n");
        return 1;
    }
    keys_b64_encode(pub, b64);
    if (strcmp(path, "-") == 0) {
        int n = crypto_x25519_to_pem(priv, pem, sizeof(pem));
        if (n < 0 || fwrite(pem, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0) {
            fprintf(stderr, "secho keygen: cannot write the private key\n");
            goto out;
        }
        fprintf(stderr, "%s\n", b64);
        rc = 0;
        goto out;
    }
    if (keys_save(path, priv, err, sizeof(err)) != 0) {
        fprintf(stderr, "secho keygen: %s\n", err);
        goto out;
    }
    fprintf(stderr, "secho: private key written to %s\n", path);
    printf("%s\n", b64);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    crypto_wipe(priv, sizeof(priv));
    crypto_wipe(pem, sizeof(pem));
    return rc;
}

int keygen_main(int argc, char **argv)
{
    const char *out = NULL, *key = NULL, *remove = NULL, *known_hosts = NULL;
    bool public = false;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:yk:R:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'y':
            public
            = true;
            break;
        case 'k':
            key = optarg;
            break;
        case 'R':
            remove = optarg;
            break;
        case OPT_KNOWN_HOSTS:
            known_hosts = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return cli_getopt_error(cmd, c, argv, long_opts);
        }
    }
    if (optind != argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (public + (remove != NULL) + (out != NULL) > 1)
        return cli_usage_error(cmd, "-o, -y and -R are separate tasks; give one of them");
    if (key && !public)
        return cli_usage_error(cmd, "-k/--key names the file for -y (to create a key: -o FILE)");
    if (known_hosts && !remove)
        return cli_usage_error(cmd, "--known-hosts names the file for -R");
    if (public)
        return print_public(key);
    if (remove)
        return remove_host(remove, known_hosts);
    return create(out);
}
