/* SPDX-License-Identifier: MIT */
/* Command-line helpers shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "net.h"

void cli_common_init(struct cli_common *c)
{
    c->udp = false;
    c->proto = proto_find("secure"); /* SPEC's default; always registered */
    c->host = "127.0.0.1";
    c->port = 9090;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "secho %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'secho %s --help' for more information.\n", cmd);
    return 2;
}

int cli_getopt_error(const char *cmd, int opt, char *const argv[], const struct option *longopts)
{
    /* For a missing argument the option is always the last word read; for '?' it is the
     * last word unless it was a letter inside a cluster (-xv), and getopt sets optopt to
     * the letter for short options and to 0 for an unknown long one. */
    const char *word = optind > 0 ? argv[optind - 1] : "";
    bool is_long = strncmp(word, "--", 2) == 0;
    if (opt == ':') {
        if (is_long)
            return cli_usage_error(cmd, "option '%s' requires an argument", word);
        return cli_usage_error(cmd, "option requires an argument -- '%c'", optopt);
    }
    if (optopt == 0 && is_long) {
        /* getopt_long takes any unique prefix; one that fits several names is ambiguous. */
        size_t len = strcspn(word + 2, "="), n = 0;
        char names[512] = "";
        for (const struct option *o = longopts; o && o->name; o++) {
            size_t used = strlen(names);
            if (strncmp(o->name, word + 2, len) == 0 && ++n && used < sizeof(names))
                snprintf(names + used, sizeof(names) - used, " '--%s'", o->name);
        }
        if (n > 1)
            return cli_usage_error(cmd, "option '%.*s' is ambiguous; possibilities:%s",
                                   (int)(len + 2), word, names);
    }
    if (optopt == 0)
        return cli_usage_error(cmd, "unrecognized option '%s'", word);
    if (is_long && strchr(word, '='))
        return cli_usage_error(cmd, "option '%.*s' doesn't allow an argument",
                               (int)strcspn(word, "="), word);
    if (optopt > 0 && optopt < 256)
        return cli_usage_error(cmd, "invalid option -- '%c'", optopt);
    return cli_usage_error(cmd, "invalid option '%s'", word);
}

int cli_common_opt(struct cli_common *c, const char *cmd, int opt, const char *arg)
{
    switch (opt) {
    case 't':
        if (strcmp(arg, "tcp") == 0)
            c->udp = false;
        else if (strcmp(arg, "udp") == 0)
            c->udp = true;
        else {
            cli_usage_error(cmd, "unknown transport '%s' (use tcp or udp)", arg);
            return -1;
        }
        return 1;
    case 'P':
        c->proto = proto_find(arg);
        if (!c->proto) {
            char names[256];
            cli_proto_names(names, sizeof(names), ", ", " or ");
            cli_usage_error(cmd, "unknown protocol '%s' (use %s)", arg, names);
            return -1;
        }
        return 1;
    case 'H':
        if (!*arg) {
            cli_usage_error(cmd, "empty host name");
            return -1;
        }
        c->host = arg;
        return 1;
    case 'p':
        if (!net_parse_port(arg, &c->port)) {
            cli_usage_error(cmd, "invalid port '%s' (use 0-65535)", arg);
            return -1;
        }
        return 1;
    default:
        return 0;
    }
}

bool cli_common_check(const struct cli_common *c, const char *cmd)
{
    if (c->udp && !proto_has_dgram(c->proto)) {
        cli_usage_error(cmd, "protocol %s does not run over UDP", c->proto->name);
        return false;
    }
    return true;
}

bool cli_parse_long(const char *cmd, const char *name, const char *arg, long min, long max,
                    long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max) {
        cli_usage_error(cmd, "invalid value '%s' for --%s (use %ld-%ld)", arg, name, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_seconds(const char *cmd, const char *name, const char *arg, double min, double max,
                       double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v) || v < min || v > max) {
        cli_usage_error(cmd, "invalid value '%s' for --%s (use seconds, %g-%g)", arg, name, min,
                        max);
        return false;
    }
    *out = v;
    return true;
}

bool cli_popt_applies(enum cli_popt o, const struct proto_vt *vt)
{
    switch (o) {
    case CLI_POPT_KEY_FILES:
        return vt->flags & PROTO_F_KEY_FILES;
    case CLI_POPT_CLIENT_KEY:
        return (vt->flags & PROTO_F_KEY_FILES) && !(vt->flags & PROTO_F_CERTS);
    case CLI_POPT_CERTS:
        return vt->flags & PROTO_F_CERTS;
    case CLI_POPT_ADMINS:
        return vt->flags & PROTO_F_PEER_ADMINS;
    case CLI_POPT_ALLOW_SHUTDOWN:
        return !(vt->flags & PROTO_F_PEER_ADMINS);
    case CLI_POPT_DH_PARAMS:
        return vt->flags & PROTO_F_DH_PARAMS;
    case CLI_POPT_NOISE_NAME:
        return vt->nsuites > 0;
    }
    return false;
}

bool cli_popt_check(const char *cmd, const struct cli_common *c, bool given, const char *option,
                    enum cli_popt o)
{
    if (!given || cli_popt_applies(o, c->proto))
        return true;
    /* The protocols that do take it, "a, b or c", from the registry. */
    char names[256] = "";
    size_t len = 0, n = 0, total = 0;
    for (size_t i = 0; proto_at(i); i++)
        total += cli_popt_applies(o, proto_at(i));
    for (size_t i = 0; proto_at(i) && len < sizeof(names); i++) {
        if (!cli_popt_applies(o, proto_at(i)))
            continue;
        const char *join = n == 0 ? "" : n + 1 == total ? " or " : ", ";
        int w = snprintf(names + len, sizeof(names) - len, "%s%s", join, proto_at(i)->name);
        if (w < 0)
            break;
        len += (size_t)w;
        n++;
    }
    if (total == 0)
        cli_usage_error(cmd, "%s applies to no protocol of this build", option);
    else
        cli_usage_error(cmd, "%s applies to -P %s only, not to -P %s", option, names,
                        c->proto->name);
    return false;
}

bool cli_check_noise_name(const char *cmd, const struct proto_vt *vt, const char *name)
{
    char list[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < vt->nsuites; i++) {
        if (strcmp(name, vt->suites[i]) == 0)
            return true;
        int w = snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", vt->suites[i]);
        if (w < 0 || (size_t)w >= sizeof(list) - len)
            break;
        len += (size_t)w;
    }
    cli_usage_error(cmd, "unsupported --noise-name '%s' (use one of %s)", name, list);
    return false;
}

bool cli_check_server_key(const char *cmd, const char *key)
{
    if (keys_b64_valid(key))
        return true;
    cli_usage_error(cmd,
                    "--server-key '%s' is not a public key or certificate fingerprint (44 "
                    "characters of base64, as 'secho keygen' or the server prints)",
                    key);
    return false;
}

void cli_warn_unauthenticated(const struct proto_vt *proto)
{
    if (proto->flags & PROTO_F_UNAUTHENTICATED)
        fprintf(stderr, "secho: warning: %s Use -P secure for a real secure channel.\n",
                proto->warning);
}

void cli_proto_names(char *out, size_t cap, const char *sep, const char *last)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; proto_at(i) && len < cap; i++) {
        const char *join = i == 0 ? "" : proto_at(i + 1) ? sep : last;
        int n = snprintf(out + len, cap - len, "%s%s", join, proto_at(i)->name);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

void cli_help_proto(FILE *f, int width)
{
    struct cli_common defaults;
    char names[256];
    cli_common_init(&defaults);
    cli_proto_names(names, sizeof(names), " | ", " | ");
    fprintf(f, "  %-*s%s (default %s)\n", width, "-P, --proto PROTO", names, defaults.proto->name);
}

int cli_help(const char *head, int width, const char *tail)
{
    fputs(head, stdout);
    cli_help_proto(stdout, width);
    fputs(tail, stdout);
    return 0;
}

bool cli_common_done(const struct cli_common *c, const char *cmd, int argc, char *const argv[])
{
    if (optind < argc) {
        cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
        return false;
    }
    return cli_common_check(c, cmd);
}
