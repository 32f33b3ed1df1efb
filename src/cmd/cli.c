/* SPDX-License-Identifier: MIT */
/* Command-line helpers shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

void cli_common_init(struct cli_common *c)
{
    c->udp = false;
    c->proto = proto_find("secure");
    if (!c->proto)
        c->proto = &proto_plain;
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
