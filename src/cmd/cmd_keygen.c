/* SPDX-License-Identifier: MIT */
/* `secho keygen [-o FILE]`: makes an X25519 key pair, saves the private key as PKCS#8 PEM
 * (mode 0600, never overwriting) and prints the public key, ssh-keygen style. */
#include "cmd_keygen.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "keys.h"

static void usage(FILE *f)
{
    fputs("usage: secho keygen [-o FILE]\n"
          "\n"
          "Creates a static X25519 key pair for the secure protocol and prints the public\n"
          "key (base64, for --server-key, --admins and known_hosts) on stdout.\n"
          "\n"
          "  -o, --output FILE  write the private key (PEM, PKCS#8, mode 0600) to FILE;\n"
          "                     default ${XDG_CONFIG_HOME:-~/.config}/secho/id.key.\n"
          "                     An existing file is never overwritten.\n"
          "                     FILE '-' prints the private key on stdout and the public\n"
          "                     key on stderr instead.\n"
          "  -h, --help         show this help\n",
          f);
}

int keygen_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    char path[4096], err[512], b64[KEYS_B64LEN + 1], pem[1024];
    uint8_t priv[KEYS_LEN], pub[KEYS_LEN];
    int c, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "secho: keygen: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!out) {
        if (keys_default_path("id.key", path, sizeof(path)) != 0) {
            fprintf(stderr, "secho: keygen: cannot find a config directory (HOME is not "
                            "set); use -o FILE\n");
            return 1;
        }
        out = path;
    }
    if (crypto_x25519_keygen(priv, pub) != 0) {
        fprintf(stderr, "secho: keygen: cannot generate a key pair\n");
        return 1;
    }
    keys_b64_encode(pub, b64);
    if (strcmp(out, "-") == 0) {
        int n = crypto_x25519_to_pem(priv, pem, sizeof(pem));
        if (n < 0 || fwrite(pem, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0) {
            fprintf(stderr, "secho: keygen: cannot write the private key\n");
            goto out;
        }
        fprintf(stderr, "%s\n", b64);
        rc = 0;
        goto out;
    }
    if (keys_save(out, priv, err, sizeof(err)) != 0) {
        fprintf(stderr, "secho: keygen: %s\n", err);
        goto out;
    }
    fprintf(stderr, "secho: private key written to %s\n", out);
    printf("%s\n", b64);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    crypto_wipe(priv, sizeof(priv));
    crypto_wipe(pem, sizeof(pem));
    return rc;
}
