/* SPDX-License-Identifier: MIT */
/* secho entry point: a table of subcommands, each with its own --help. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "io.h"
#include "lineedit.h"

struct subcommand {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *help;
};

static const struct subcommand subcommands[] = {
    {"server", server_main, "run an echo server"},
    {"client", client_main, "interactive (or piped) echo client"},
    {"bench", bench_main, "load generator against any echo server"},
    {"keygen", keygen_main, "create a static key pair, print the public key"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: secho COMMAND [options]\n"
               "A fast, secure echo server, client and load generator.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].help);
    fprintf(f, "\nRun 'secho COMMAND --help' for a command's options; 'man secho' for more.\n"
               "Quick start:\n"
               "  secho server -P plain -p 9090 &\n"
               "  secho client -P plain -p 9090\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0 || strcmp(cmd, "version") == 0) {
        /* The OpenSSL that is loaded, which may be newer than the one built against: what a
         * bug report needs. */
        printf("secho %s\n%s\nbuild type %s\nline editing: %s\nio_uring: %s\n", SECHO_VERSION,
               OpenSSL_version(OPENSSL_VERSION), SECHO_BUILD_TYPE, lineedit_name(),
               io_uring_version());
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        if (strcmp(cmd, subcommands[i].name) == 0)
            return subcommands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "secho: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
