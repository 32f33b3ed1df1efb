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

/* The long forms of the common options, for the head of each subcommand's option table. */
/* clang-format off */
#define CLI_COMMON_LONG_OPTS                    \
    {"transport", required_argument, NULL, 't'}, \
    {"proto", required_argument, NULL, 'P'},     \
    {"host", required_argument, NULL, 'H'},      \
    {"port", required_argument, NULL, 'p'}
/* clang-format on */

/* The leading ':' makes getopt report a missing argument as ':' (see cli_getopt_error). */
#define CLI_COMMON_SHORT ":t:P:H:p:"
/* Fills the SPEC defaults: tcp, secure, 127.0.0.1:9090. */
void cli_common_init(struct cli_common *c);
/* Handles one common option. Returns 1 if handled, 0 if `opt` is not a common option, or
 * -1 after printing a usage error for `cmd` (exit 2). */
int cli_common_opt(struct cli_common *c, const char *cmd, int opt, const char *arg);
/* Checks the protocol can run on the transport; prints a usage error and returns false. */
bool cli_common_check(const struct cli_common *c, const char *cmd);
/* After getopt: refuses a leftover argument (argv[optind]) and checks the common options
 * (cli_common_check). Prints the usage error and returns false; true when all is well. */
bool cli_common_done(const struct cli_common *c, const char *cmd, int argc, char *const argv[]);

/* Parses a decimal integer in [min, max]; prints "secho CMD: invalid VALUE for --NAME"
 * and returns false on error. */
bool cli_parse_long(const char *cmd, const char *name, const char *arg, long min, long max,
                    long *out);
/* Parses seconds with an optional fraction ("0.5") in [min, max]; prints a usage error for
 * `cmd` and returns false on error. */
bool cli_parse_seconds(const char *cmd, const char *name, const char *arg, double min, double max,
                       double *out);
/* Prints "secho CMD: MSG" and the --help hint; returns 2 (the usage exit code). */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct option;
/* Reports what getopt_long returned as '?' (unknown or ambiguous option, or an argument
 * given to an option without one) or ':' (missing argument) as a usage error for `cmd`, in
 * getopt's own words; longopts is the table given to getopt_long. Needs opterr = 0 and an
 * optstring starting with ':'. Returns 2. */
int cli_getopt_error(const char *cmd, int opt, char *const argv[], const struct option *longopts);

/* Options that only some protocols take; the protocol's vtable says which. */
enum cli_popt {
    CLI_POPT_KEY_FILES,      /* server -k; client --known-hosts, --server-key, --accept-new */
    CLI_POPT_CLIENT_KEY,     /* client -k: an identity key of the client's own */
    CLI_POPT_CERTS,          /* server --cert, client --ca */
    CLI_POPT_ADMINS,         /* --admins */
    CLI_POPT_ALLOW_SHUTDOWN, /* --allow-shutdown */
    CLI_POPT_DH_PARAMS,      /* --dh-params */
    CLI_POPT_NOISE_NAME,     /* --noise-name */
};
/* True if the protocol takes options of kind `o`. */
bool cli_popt_applies(enum cli_popt o, const struct proto_vt *vt);
/* If `option` (e.g. "--admins") was given and the chosen protocol does not take it, prints
 * "secho CMD: OPTION applies to -P NAMES only, not to -P PROTO" and returns false. */
bool cli_popt_check(const char *cmd, const struct cli_common *c, bool given, const char *option,
                    enum cli_popt o);
/* Checks a --noise-name against the protocol's suites (vt->suites); prints a usage error
 * listing them and returns false for any other name. */
bool cli_check_noise_name(const char *cmd, const struct proto_vt *vt, const char *name);
/* Checks that a --server-key is a public key or fingerprint text (keys_b64_valid); prints a
 * usage error and returns false otherwise. */
bool cli_check_server_key(const char *cmd, const char *key);
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
/* Prints a subcommand's --help on stdout: head, the -P line (cli_help_proto), tail. Returns
 * 0, the exit status of --help. */
int cli_help(const char *head, int width, const char *tail);

int server_main(int argc, char **argv);
int client_main(int argc, char **argv);
int bench_main(int argc, char **argv);
int keygen_main(int argc, char **argv);

#endif
