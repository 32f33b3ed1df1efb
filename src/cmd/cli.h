/* SPDX-License-Identifier: MIT */
/* Command-line helpers shared by the subcommands, and the subcommands' entry points. */
#ifndef SECHO_CLI_H
#define SECHO_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto.h"

/* Options every networking subcommand takes (-t, -P, -H, -p). */
struct cli_common {
    bool udp;
    const struct proto_vt *proto;
    const char *host;
    uint16_t port;
};

#define CLI_COMMON_SHORT "t:P:H:p:"
/* Fills the SPEC defaults: tcp, secure (plain until secure is built in), 127.0.0.1:9090. */
void cli_common_init(struct cli_common *c);
/* Handles one common option. Returns 1 if handled, 0 if `opt` is not a common option, or
 * -1 after printing a usage error for `cmd` (exit 2). */
int cli_common_opt(struct cli_common *c, const char *cmd, int opt, const char *arg);
/* Checks the protocol can run on the transport; prints a usage error and returns false. */
bool cli_common_check(const struct cli_common *c, const char *cmd);

/* Parses a decimal integer in [min, max]; prints "secho CMD: invalid VALUE for --NAME"
 * and returns false on error. */
bool cli_parse_long(const char *cmd, const char *name, const char *arg, long min, long max,
                    long *out);
/* Prints "secho CMD: MSG" and the --help hint; returns 2 (the usage exit code). */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints, for a PROTO_F_UNAUTHENTICATED protocol, "secho: warning: " and its warning on
 * stderr; nothing for the others. */
void cli_warn_unauthenticated(const struct proto_vt *proto);
/* Writes the registered protocols' names into out, in registry order, separated by sep
 * and the last two by last (", " and " or " give "a, b or c"). Always NUL-terminates (cap
 * >= 1); the list is cut short if out is too small. */
void cli_proto_names(char *out, size_t cap, const char *sep, const char *last);
/* Prints the help line of -P: "  -P, --proto PROTO", padded to `width` columns after the
 * two leading spaces, then "plain | secure | ... (default NAME)". */
void cli_help_proto(FILE *f, int width);

int server_main(int argc, char **argv);
int client_main(int argc, char **argv);
int bench_main(int argc, char **argv);
int keygen_main(int argc, char **argv);

#endif
