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
            cli_usage_error(cmd, "unknown protocol '%s' (use plain, secure, lab-dh or lab-fernet)",
                            arg);
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
    if (c->udp && !c->proto->dgram_read) {
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

void cli_warn_lab(const struct proto_vt *proto)
{
    if (strcmp(proto->name, "lab-dh") == 0)
        fprintf(stderr, "secho: warning: lab-dh is unauthenticated: anyone on the path can read "
                        "and change the messages. Use -P secure for a real secure channel.\n");
    else if (strcmp(proto->name, "lab-fernet") == 0)
        fprintf(stderr, "secho: warning: lab-fernet sends its key in clear and is "
                        "unauthenticated: anyone on the path can read and forge messages. Use "
                        "-P secure for a real secure channel.\n");
}
