/* SPDX-License-Identifier: MIT */
/* `secho server`: option parsing; the serving itself is server.c and the I/O models. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "keys.h"
#include "metrics.h"
#include "io.h"
#include "server.h"

/* The help text, around the -P line (made from the registry by cli_help_proto). */
static const char usage_head[] =
    "Usage: secho server [options]\n"
    "Run an echo server. Every message is sent back; `exit` closes the connection,\n"
    "`shutdown` stops the server (if the peer is allowed to).\n"
    "\n"
    "  -t, --transport tcp|udp     transport (default tcp)\n";
static const char usage_tail[] =
    "  -H, --host HOST             address to listen on (default 127.0.0.1)\n"
    "  -p, --port PORT             port, 0 = pick a free one (default 9090)\n"
    "  -m, --model MODEL           threads | epoll | reactors | uring (default reactors;\n"
    "                              uring: io_uring, when built with liburing)\n"
    "      --threads N             event loops for -m reactors (default: online CPUs)\n"
    "  -l, --log FILE              append the event log to FILE; - = stderr (default)\n"
    "      --no-log-messages       log message sizes but not their text\n"
    "  -k, --key FILE              secure: static key, created 0600 if absent\n"
    "                              (default ~/.config/secho/server.key);\n"
    "                              tls: the private key (PEM) of --cert\n"
    "      --cert FILE             tls: certificate chain (PEM); without it and -k\n"
    "                              a self-signed pair is made on first start and\n"
    "                              kept in ~/.config/secho/server-tls.{crt,key}\n"
    "      --admins FILE           secure: public keys allowed to run `shutdown`\n"
    "      --allow-shutdown WHO    plain/lab: any | loopback | none (default loopback)\n"
    "      --max-conns N           refuse connections beyond N (default: fd limit - 64)\n"
    "      --max-msg BYTES         largest message accepted (plain TCP: longer lines are\n"
    "                              echoed, logged truncated, never commands)\n"
    "                              (default 1048576; secure caps at 65519)\n"
    "      --idle-timeout SEC      close connections silent this long; 0 = never\n"
    "                              (default 300)\n"
    "      --handshake-timeout SEC close handshakes not done by then (default 10)\n"
    "      --record-timeout SEC    close when a record is still incomplete this long\n"
    "                              after its first byte; plain: a line, the clock\n"
    "                              restarting every KiB of it (default 30, 0 = none)\n"
    "      --dh-params FILE        lab-dh: PKCS#3 PEM parameters (default RFC 7919 ffdhe2048)\n"
    "      --stats SEC             log event=stats (and event=stats_worker per worker)\n"
    "                              every SEC seconds (fractions allowed)\n"
    "      --metrics HOST:PORT     serve the same counters in the Prometheus text format\n"
    "                              on GET /metrics (e.g. 127.0.0.1:9100)\n"
    "      --pid-file FILE         write the pid to FILE once listening (locked while\n"
    "                              the server runs; removed when it exits)\n"
    "      --proxy-protocol        TCP: connections from --trusted-proxy must open with\n"
    "                              a PROXY v1/v2 header (HAProxy send-proxy); the log's\n"
    "                              peer= is then the client it names, proxy= the proxy\n"
    "      --trusted-proxy CIDR... the load balancers' addresses or networks (e.g.\n"
    "                              10.0.0.0/8 ::1), repeatable; others that send a\n"
    "                              PROXY header are refused\n"
    "  -h, --help                  show this help\n"
    "\n"
    "Options marked secure:, tls:, lab-dh: or plain/lab: belong to those protocols;\n"
    "given with another -P they are a usage error (exit 2).\n"
    "\n"
    "Once it accepts traffic the server prints `listening on HOST:PORT` on stdout.\n"
    "SIGINT/SIGTERM shut it down gracefully; SIGHUP reopens the log file.\n"
    "Sockets passed by systemd (LISTEN_FDS, socket activation) are served instead of\n"
    "binding -H/-p; one named `metrics` (FileDescriptorName=metrics) serves --metrics.\n"
    "\n"
    "Examples:\n"
    "  secho server -P plain -p 9090             # then: nc 127.0.0.1 9090\n"
    "  secho server -P plain -t udp -m epoll     # then: socat - UDP:127.0.0.1:9090\n"
    "  secho server -l /var/log/secho.log        # secure echo, keys in ~/.config/secho\n"
    "  secho server -P tls -p 8443               # then: openssl s_client -quiet\n"
    "                                            #   -connect 127.0.0.1:8443\n";

enum {
    OPT_THREADS = 256,
    OPT_NO_LOG_MESSAGES,
    OPT_ADMINS,
    OPT_ALLOW_SHUTDOWN,
    OPT_MAX_CONNS,
    OPT_MAX_MSG,
    OPT_IDLE_TIMEOUT,
    OPT_HANDSHAKE_TIMEOUT,
    OPT_RECORD_TIMEOUT,
    OPT_DH_PARAMS,
    OPT_STATS,
    OPT_METRICS,
    OPT_PID_FILE,
    OPT_CERT,
    OPT_PROXY_PROTOCOL,
    OPT_TRUSTED_PROXY,
};

static const struct option long_opts[] = {
    CLI_COMMON_LONG_OPTS,
    {"model", required_argument, NULL, 'm'},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"log", required_argument, NULL, 'l'},
    {"no-log-messages", no_argument, NULL, OPT_NO_LOG_MESSAGES},
    {"key", required_argument, NULL, 'k'},
    {"admins", required_argument, NULL, OPT_ADMINS},
    {"allow-shutdown", required_argument, NULL, OPT_ALLOW_SHUTDOWN},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"max-msg", required_argument, NULL, OPT_MAX_MSG},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"record-timeout", required_argument, NULL, OPT_RECORD_TIMEOUT},
    {"dh-params", required_argument, NULL, OPT_DH_PARAMS},
    {"stats", required_argument, NULL, OPT_STATS},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"pid-file", required_argument, NULL, OPT_PID_FILE},
    {"cert", required_argument, NULL, OPT_CERT},
    {"proxy-protocol", no_argument, NULL, OPT_PROXY_PROTOCOL},
    {"trusted-proxy", required_argument, NULL, OPT_TRUSTED_PROXY},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Raises the descriptor limit to the hard limit (as nginx's worker_rlimit_nofile) and
 * returns the connection cap that leaves room for listeners, logs and key files. */
static long default_max_conns(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1000;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    long n = rl.rlim_cur == RLIM_INFINITY ? 100000 : (long)rl.rlim_cur - 64;
    return n > 1 ? n : 1;
}

/* Adds the networks of one --trusted-proxy word (one or more, separated by commas).
 * Returns false after printing a usage error. */
static bool add_trusted(const char *cmd, const char *word, struct net_cidr *out, int *n)
{
    char item[NET_ADDRSTRLEN + 8];
    const char *p = word;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof(item) || *n >= SERVER_TRUSTED_MAX) {
            if (*n >= SERVER_TRUSTED_MAX)
                cli_usage_error(cmd, "more than %d --trusted-proxy networks", SERVER_TRUSTED_MAX);
            else
                cli_usage_error(cmd,
                                "invalid --trusted-proxy '%s' (use IPv4 or IPv6 addresses "
                                "or networks, e.g. 10.0.0.0/8 or ::1)",
                                word);
            return false;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (!net_cidr_parse(item, &out[*n])) {
            cli_usage_error(cmd,
                            "invalid --trusted-proxy '%s' (use IPv4 or IPv6 addresses or "
                            "networks, e.g. 10.0.0.0/8 or ::1)",
                            item);
            return false;
        }
        (*n)++;
        if (p[len] == '\0')
            return true;
        p += len + 1;
    }
}

int server_main(int argc, char **argv)
{
    const char *cmd = "server";
    struct cli_common common;
    cli_common_init(&common);
    struct server_conf conf = {
        .model = SERVER_REACTORS,
        .threads = (int)sysconf(_SC_NPROCESSORS_ONLN),
        .log_path = "-",
        .log_messages = true,
        .allow_shutdown = ALLOW_LOOPBACK,
        .max_conns = default_max_conns(),
        .idle_timeout_ms = 300 * 1000,
        .handshake_timeout_ms = 10 * 1000,
        .record_timeout_ms = 30 * 1000,
    };
    long max_msg = 1 << 20;
    /* Static: the server keeps pointing at it while it runs. */
    static struct net_cidr trusted[SERVER_TRUSTED_MAX];
    int ntrusted = 0;
    char keypath[4096] = "", certpath[4096] = "";
    long v;
    int opt;
    bool allow_given = false;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "m:l:k:h", long_opts, NULL)) != -1) {
        int c = cli_common_opt(&common, cmd, opt, optarg);
        if (c < 0)
            return 2;
        if (c > 0)
            continue;
        switch (opt) {
        case 'm':
            if (strcmp(optarg, "threads") == 0)
                conf.model = SERVER_THREADS;
            else if (strcmp(optarg, "epoll") == 0)
                conf.model = SERVER_EPOLL;
            else if (strcmp(optarg, "reactors") == 0)
                conf.model = SERVER_REACTORS;
            else if (strcmp(optarg, "uring") == 0 && io_uring_built())
                conf.model = SERVER_URING;
            else if (strcmp(optarg, "uring") == 0)
                return cli_usage_error(cmd, "model 'uring' is not built in (liburing was not found "
                                            "when secho was built)");
            else
                return cli_usage_error(
                    cmd, "unknown model '%s' (use threads, epoll, reactors or uring)", optarg);
            break;
        case OPT_THREADS:
            if (!cli_parse_long(cmd, "threads", optarg, 1, 1024, &v))
                return 2;
            conf.threads = (int)v;
            break;
        case 'l':
            conf.log_path = optarg;
            break;
        case OPT_NO_LOG_MESSAGES:
            conf.log_messages = false;
            break;
        case 'k':
            conf.popts.key_file = optarg;
            break;
        case OPT_ADMINS:
            conf.popts.admins_file = optarg;
            break;
        case OPT_ALLOW_SHUTDOWN:
            allow_given = true;
            if (strcmp(optarg, "any") == 0)
                conf.allow_shutdown = ALLOW_ANY;
            else if (strcmp(optarg, "loopback") == 0)
                conf.allow_shutdown = ALLOW_LOOPBACK;
            else if (strcmp(optarg, "none") == 0)
                conf.allow_shutdown = ALLOW_NONE;
            else
                return cli_usage_error(cmd,
                                       "invalid --allow-shutdown '%s' (use any, loopback "
                                       "or none)",
                                       optarg);
            break;
        case OPT_MAX_CONNS:
            if (!cli_parse_long(cmd, "max-conns", optarg, 1, 10000000, &conf.max_conns))
                return 2;
            break;
        case OPT_MAX_MSG:
            if (!cli_parse_long(cmd, "max-msg", optarg, 1, 1L << 30, &max_msg))
                return 2;
            break;
        case OPT_IDLE_TIMEOUT:
            if (!cli_parse_long(cmd, "idle-timeout", optarg, 0, 86400 * 365, &v))
                return 2;
            conf.idle_timeout_ms = (int)(v * 1000 > 2000000000 ? 2000000000 : v * 1000);
            break;
        case OPT_HANDSHAKE_TIMEOUT:
            if (!cli_parse_long(cmd, "handshake-timeout", optarg, 0, 3600, &v))
                return 2;
            conf.handshake_timeout_ms = (int)(v * 1000);
            break;
        case OPT_RECORD_TIMEOUT:
            if (!cli_parse_long(cmd, "record-timeout", optarg, 0, 3600, &v))
                return 2;
            conf.record_timeout_ms = (int)(v * 1000);
            break;
        case OPT_DH_PARAMS:
            conf.popts.dh_params_file = optarg;
            break;
        case OPT_CERT:
            conf.popts.cert_file = optarg;
            break;
        case OPT_STATS: {
            double sec;
            if (!cli_parse_seconds(cmd, "stats", optarg, 0.01, 86400, &sec))
                return 2;
            conf.stats_ms = (int)(sec * 1000 + 0.5);
            break;
        }
        case OPT_METRICS: {
            char host[256];
            uint16_t port;
            if (!metrics_parse_spec(optarg, host, sizeof(host), &port))
                return cli_usage_error(cmd, "invalid --metrics '%s' (use HOST:PORT, [IPV6]:PORT)",
                                       optarg);
            conf.metrics = optarg;
            break;
        }
        case OPT_PID_FILE:
            if (!*optarg)
                return cli_usage_error(cmd, "invalid --pid-file ''");
            conf.pid_file = optarg;
            break;
        case OPT_PROXY_PROTOCOL:
            conf.proxy_protocol = true;
            break;
        case OPT_TRUSTED_PROXY:
            /* CIDR...: the words that follow, up to the next option, are networks too. */
            if (!add_trusted(cmd, optarg, trusted, &ntrusted))
                return 2;
            while (optind < argc && argv[optind][0] != '-')
                if (!add_trusted(cmd, argv[optind++], trusted, &ntrusted))
                    return 2;
            break;
        case 'h':
            return cli_help(usage_head, 28, usage_tail);
        default:
            return cli_getopt_error(cmd, opt, argv, long_opts);
        }
    }
    if (!cli_common_done(&common, cmd, argc, argv))
        return 2;
    /* An option the chosen protocol ignores is a mistake the user should hear about (a
     * forgotten -P), not something to drop silently. */
    if (!cli_popt_check(cmd, &common, conf.popts.key_file, "-k/--key", CLI_POPT_KEY_FILES) ||
        !cli_popt_check(cmd, &common, conf.popts.admins_file, "--admins", CLI_POPT_ADMINS) ||
        !cli_popt_check(cmd, &common, allow_given, "--allow-shutdown", CLI_POPT_ALLOW_SHUTDOWN) ||
        !cli_popt_check(cmd, &common, conf.popts.dh_params_file, "--dh-params",
                        CLI_POPT_DH_PARAMS) ||
        !cli_popt_check(cmd, &common, conf.popts.cert_file, "--cert", CLI_POPT_CERTS))
        return 2;
    if (conf.proxy_protocol && common.udp)
        return cli_usage_error(cmd, "--proxy-protocol applies to -t tcp only (a PROXY header "
                                    "opens a TCP stream)");
    if (conf.proxy_protocol && ntrusted == 0)
        return cli_usage_error(cmd, "--proxy-protocol needs --trusted-proxy CIDR... (the "
                                    "addresses of the load balancers allowed to send headers)");
    if (ntrusted > 0 && !conf.proxy_protocol)
        return cli_usage_error(cmd, "--trusted-proxy applies only with --proxy-protocol");
    conf.trusted = trusted;
    conf.ntrusted = ntrusted;
    bool certs = common.proto->flags & PROTO_F_CERTS;
    if (certs && !conf.popts.cert_file != !conf.popts.key_file)
        return cli_usage_error(cmd, "--cert and --key go together (or give neither for a "
                                    "self-signed certificate)");
    /* tls without files: the pair kept beside the secure key, made on first start. */
    if (certs && !conf.popts.cert_file &&
        keys_default_path("server-tls.key", keypath, sizeof(keypath)) == 0 &&
        keys_default_path("server-tls.crt", certpath, sizeof(certpath)) == 0) {
        conf.popts.key_file = keypath;
        conf.popts.cert_file = certpath;
        conf.popts.cert_create = true;
    }
    if (conf.threads < 1)
        conf.threads = 1;
    if ((common.proto->flags & PROTO_F_KEY_FILES) && !certs && !conf.popts.key_file &&
        keys_default_path("server.key", keypath, sizeof(keypath)) == 0)
        conf.popts.key_file = keypath;
    conf.host = common.host;
    conf.port = common.port;
    conf.udp = common.udp;
    conf.proto = common.proto;
    conf.popts.max_msg = (size_t)max_msg;
    conf.popts.dgram = common.udp;
    cli_warn_unauthenticated(conf.proto);
    return server_run(&conf);
}
