/* SPDX-License-Identifier: MIT */
/* `secho bench`: a load generator that drives many connections per event loop, verifies
 * every echoed byte and records each message's round trip in a histogram. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bench.h"
#include "cli.h"
#include "loop.h"
#include "net.h"
#include "conn.h"
#include "service.h"

#define RECV_CHUNK  65536
#define TICK_MS     20
#define MAX_THREADS 64

/* The help text, around the -P line (made from the registry by cli_help_proto). */
static const char usage_head[] =
    "Usage: secho bench [options]\n"
    "Load an echo server with many connections, each keeping --pipeline messages in\n"
    "flight; verify every echoed byte; report messages/s, MB/s, latency percentiles\n"
    "and errors. Works against any echo server speaking the chosen protocol.\n"
    "\n"
    "  -t, --transport tcp|udp   transport (default tcp)\n";
static const char usage_tail[] =
    "  -H, --host HOST           server address (default 127.0.0.1)\n"
    "  -p, --port PORT           server port (default 9090)\n"
    "  -c, --connections N       concurrent connections (UDP: sockets) (default 10)\n"
    "  -s, --size BYTES          message size on the wire before encryption (default 64);\n"
    "                            plain TCP messages are lines: BYTES-1 random bytes + '\\n'\n"
    "  -d, --duration SEC        measured time, after the warm-up (default 10)\n"
    "      --warmup SEC          time before measuring starts, not counted (default 1)\n"
    "      --pipeline N          messages in flight per connection (default 1)\n"
    "      --threads N           event-loop threads for the connections (default 1, so\n"
    "                            that a server on the same machine keeps the other cores)\n"
    "      --timeout SEC         connect/handshake limit, and how long an echo may take\n"
    "                            before it counts as lost (UDP) or the connection as\n"
    "                            failed (TCP) (default 1 for UDP, 10 for TCP)\n"
    "      --server-key PUBKEY   secure: pin the server key; otherwise the key shown is\n"
    "                            accepted (nothing is written to ~/.config)\n"
    "      --noise-name NAME     secure: Noise suite to offer, one of\n"
    "                            Noise_XX_25519_{AESGCM,ChaChaPoly}_{SHA256,BLAKE2b}\n"
    "                            (default Noise_XX_25519_AESGCM_SHA256)\n"
    "      --json                print one JSON object instead of the summary\n"
    "  -h, --help                show this help\n"
    "\n"
    "Options marked secure: apply to -P secure only; with another protocol they are a\n"
    "usage error (exit 2).\n"
    "\n"
    "SEC may have a fraction (0.5). Latency is from handing a message to the kernel to\n"
    "the last byte of its echo, in microseconds; MB/s counts message bytes one way\n"
    "(1 MB = 10^6 bytes). Warm-up messages are verified but not counted. On a terminal,\n"
    "progress is shown on stderr once a second; Ctrl-C ends the run early with a summary.\n"
    "Exit status: 0 the run completed (errors are reported, not fatal), 1 cannot connect\n"
    "or every connection failed, 2 usage error.\n"
    "\n"
    "Examples:\n"
    "  secho bench -P plain -p 9090                       # 10 connections for 10 s\n"
    "  secho bench -P plain -c 100 -s 1024 --pipeline 8 -d 30\n"
    "  secho bench -P plain -t udp -c 4 --json | jq .msgs_per_s\n"
    "  secho bench -P secure -c 50 -s 1024     # accepts the key the server shows\n"
    "  secho bench -P secure --server-key BASE64KEY   # or pins it (from the server's banner)\n";

enum {
    OPT_WARMUP = 256,
    OPT_PIPELINE,
    OPT_THREADS,
    OPT_TIMEOUT,
    OPT_SERVER_KEY,
    OPT_NOISE_NAME,
    OPT_JSON,
};

static const struct option long_opts[] = {
    CLI_COMMON_LONG_OPTS,
    {"connections", required_argument, NULL, 'c'},
    {"size", required_argument, NULL, 's'},
    {"duration", required_argument, NULL, 'd'},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"pipeline", required_argument, NULL, OPT_PIPELINE},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"server-key", required_argument, NULL, OPT_SERVER_KEY},
    {"noise-name", required_argument, NULL, OPT_NOISE_NAME},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct bconn {
    struct worker *w;
    int fd;
    struct conn conn;     /* TCP: the connection engine (bytes, pacing, handshake timeout) */
    bool has_conn;        /* conn_init ran: conn_free is owed */
    int err;              /* TCP: why the engine failed the connection (0: it did not) */
    uint64_t rx_ns;       /* TCP: when the bytes being fed were received */
    void *pconn;          /* UDP: the protocol session */
    struct buf out;       /* UDP: one datagram */
    struct bench_vfy vfy; /* the messages in flight and their bytes */
    uint64_t rng;
    uint64_t since_ns; /* UDP: start of the last greeting */
    struct buf hello;  /* UDP: the greeting, resent until the handshake completes */
    bool ready, dead;  /* ready: UDP (TCP asks the engine) */
};

struct bench;

struct worker {
    struct bench *b;
    pthread_t tid;
    struct loop *loop;
    struct bconn *conns;
    unsigned nconns;
    uint8_t scratch[RECV_CHUNK];
    struct bench_hist hist;
    uint64_t msgs, mismatch, lost, conn_errors; /* only this thread writes these */
    _Atomic uint64_t done;                      /* every echo completed, for progress */
    _Atomic uint64_t errors;                    /* every error, for progress */
    _Atomic unsigned alive;
    _Atomic uint64_t echoes; /* every datagram/record echoed, warm-up included */
    _Atomic int last_err;    /* why the last connection failed */
};

struct bench {
    const struct proto_vt *vt;
    void *ctx;
    bool udp, stream;
    size_t size;
    unsigned pipeline;
    uint64_t timeout_ns;
    uint64_t warm_ns;        /* echoes completing before this are not counted */
    _Atomic uint64_t end_ns; /* nor those completing after this */
    _Atomic bool stopping;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void conn_fail(struct bconn *c, int err)
{
    if (c->dead)
        return;
    struct worker *w = c->w;
    c->dead = true;
    w->conn_errors++;
    atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
    atomic_store_explicit(&w->last_err, err, memory_order_relaxed);
    atomic_fetch_sub_explicit(&w->alive, 1, memory_order_relaxed);
    loop_del(w->loop, c->fd);
    close(c->fd);
    c->fd = -1;
}

static void count_mismatch(struct worker *w)
{
    w->mismatch++;
    atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
}

/* An echo came back whole at c->rx_ns (the verifier's callback): record it unless outside
 * the measured window. */
static void complete(void *arg, const struct bench_slot *s, bool ok)
{
    struct bconn *c = arg;
    struct worker *w = c->w;
    struct bench *b = w->b;
    uint64_t t = c->rx_ns;
    atomic_fetch_add_explicit(&w->done, 1, memory_order_relaxed);
    if (!ok) {
        count_mismatch(w);
        return;
    }
    if (t >= b->warm_ns && t < atomic_load_explicit(&b->end_ns, memory_order_relaxed)) {
        w->msgs++;
        bench_hist_record(&w->hist, t - s->due_ns);
    }
}

/* Sends what the engine lets go now (it holds paced parts back until their pause ended). */
static int flush_tcp(struct bconn *c, uint64_t now)
{
    const uint8_t *p;
    size_t n;
    while ((n = conn_out_peek(&c->conn, now, &p)) > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        conn_out_sent(&c->conn, (size_t)w, now);
    }
    return 0;
}

static void update_mask(struct bconn *c, uint64_t now)
{
    unsigned want = conn_wants(&c->conn);
    unsigned mask =
        (want & CONN_WANT_READ ? LOOP_READ : 0) | (want & CONN_WANT_WRITE ? LOOP_WRITE : 0);
    (void)loop_set(c->w->loop, c->fd, mask);
    uint64_t due = conn_deadline(&c->conn);
    if (conn_ready(&c->conn) && due != CONN_NO_DEADLINE) /* a pause: see on_tick */
        loop_tick_soon(c->w->loop, due > now ? (int)(due - now) : 0);
}

/* Tops the pipeline up with fresh messages. TCP: appended to out (one send for all);
 * UDP: one datagram each. Returns 0 or <0 (connection failed). */
static int fill_pipeline(struct bconn *c, uint64_t t)
{
    struct bench *b = c->w->b;
    if (!(b->udp ? c->ready : conn_ready(&c->conn)) ||
        atomic_load_explicit(&b->stopping, memory_order_relaxed))
        return 0;
    uint8_t *p;
    while ((p = bench_vfy_push(&c->vfy, t, t)) != NULL) {
        bench_fill(&c->rng, p, b->size, b->stream);
        int r;
        if (b->udp) {
            buf_reset(&c->out);
            r = b->vt->dgram_write(c->pconn, p, b->size, &c->out);
            if (r < 0)
                return r;
            if (send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL) < 0 &&
                errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED)
                return -errno;
            /* A refused or dropped datagram is found lost by the timeout. */
        } else {
            r = conn_send_msg(&c->conn, p, b->size);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

/* ---- bench's policy for a TCP connection (struct conn_ops): verify, time, count ---- */

static int bench_on_message(void *arg, struct conn *conn, const struct proto_msg *m, uint64_t now)
{
    (void)conn;
    (void)now;
    struct bconn *c = arg;
    if (c->w->b->stream) {
        atomic_fetch_add_explicit(&c->w->echoes, 1, memory_order_relaxed);
        if (bench_vfy_stream(&c->vfy, m->data, m->len, complete, c) > 0)
            count_mismatch(c->w); /* bytes nobody sent */
    } else {
        if (m->last)
            atomic_fetch_add_explicit(&c->w->echoes, 1, memory_order_relaxed);
        if (bench_vfy_record(&c->vfy, m->data, m->len, m->first, m->last, complete, c))
            count_mismatch(c->w);
    }
    return 0;
}

static void bench_on_fault(void *arg, struct conn *conn, enum conn_fault what, int err)
{
    (void)conn;
    struct bconn *c = arg;
    if (c->err == 0)
        c->err = what == CONN_FAULT_HANDSHAKE ? -ETIMEDOUT : what == CONN_FAULT_RECV ? -err : err;
}

static const struct conn_ops bench_conn_ops = {
    .on_message = bench_on_message,
    .on_fault = bench_on_fault,
};

static int read_tcp(struct bconn *c, uint64_t now)
{
    struct worker *w = c->w;
    for (int rounds = 0; rounds < 4; rounds++) {
        ssize_t n = recv(c->fd, w->scratch, sizeof(w->scratch), MSG_DONTWAIT);
        if (n == 0)
            return -ECONNRESET; /* the server closed: a failure for a load generator */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        c->rx_ns = now_ns();
        /* A client connection takes all it is fed (up to read_chunk, the scratch size). */
        (void)conn_feed(&c->conn, w->scratch, (size_t)n, now);
        if (c->err)
            return c->err;
        int r = fill_pipeline(c, c->rx_ns);
        if (r < 0)
            return r;
        if ((size_t)n < sizeof(w->scratch))
            break;
    }
    return 0;
}

static void on_tcp(struct loop *l, int fd, unsigned events, void *arg)
{
    (void)fd;
    struct bconn *c = arg;
    uint64_t now = loop_now(l);
    int r = 0;
    if (events & (LOOP_READ | LOOP_HUP))
        r = read_tcp(c, now);
    if (r == 0)
        r = flush_tcp(c, now);
    if (r == 0 && c->err)
        r = c->err;
    if (r == 0 && conn_closed(&c->conn))
        r = -ECONNRESET;
    if (r < 0) {
        conn_fail(c, r);
        return;
    }
    update_mask(c, now);
}

/* UDP: an echo matches the oldest in-flight datagram with the same bytes; datagrams may
 * be lost or reordered, so an unmatched one is only counted, never fatal. */
static void verify_dgram(struct bconn *c, const struct proto_msg *m)
{
    atomic_fetch_add_explicit(&c->w->echoes, 1, memory_order_relaxed);
    if (!bench_vfy_dgram(&c->vfy, m->data, m->len, complete, c))
        count_mismatch(c->w); /* a corrupted echo, or one that came after its timeout */
}

static void on_udp(struct loop *l, int fd, unsigned events, void *arg)
{
    (void)l;
    (void)events;
    struct bconn *c = arg;
    struct worker *w = c->w;
    struct bench *b = w->b;
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(fd, w->scratch, sizeof(w->scratch), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNREFUSED) {
                /* Nothing listens (yet): the datagrams in flight will be counted lost. */
                atomic_store_explicit(&w->last_err, -ECONNREFUSED, memory_order_relaxed);
                continue;
            }
            break;
        }
        uint64_t t = now_ns();
        c->rx_ns = t;
        struct proto_msg m = {0};
        buf_reset(&c->out);
        int r = b->vt->dgram_read(c->pconn, w->scratch, (size_t)n, &c->out, &m);
        if (!buf_empty(&c->out))
            (void)send(fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        if (r == PROTO_MSG)
            verify_dgram(c, &m);
        else if (r == PROTO_HANDSHAKE || (r == PROTO_NEED_MORE && !c->ready))
            c->ready = b->vt->conn_ready(c->pconn);
        else if (r < 0 && r != PROTO_DROP)
            count_mismatch(w);
        r = fill_pipeline(c, t);
        if (r < 0) {
            conn_fail(c, r);
            return;
        }
    }
}

/* Periodic: handshake and echo timeouts, paused output. */
static void on_tick(struct loop *l, void *arg)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    uint64_t t = now_ns();
    for (unsigned i = 0; i < w->nconns; i++) {
        struct bconn *c = &w->conns[i];
        if (c->dead)
            continue;
        if (!b->udp) {
            /* The engine's clock: a pause that ended, the handshake timeout. */
            conn_on_time(&c->conn, loop_now(l));
            if (c->err) {
                conn_fail(c, c->err);
                continue;
            }
            if (!conn_ready(&c->conn))
                continue;
        } else if (!c->ready) {
            if (t - c->since_ns < b->timeout_ns)
                continue;
            (void)send(c->fd, buf_head(&c->hello), buf_len(&c->hello), MSG_NOSIGNAL);
            c->since_ns = t;
            continue;
        }
        uint64_t before = t > b->timeout_ns ? t - b->timeout_ns : 0;
        if (!b->udp) {
            const struct bench_slot *s = bench_vfy_oldest(&c->vfy);
            if (s && s->sent_ns < before) {
                conn_fail(c, -ETIMEDOUT);
                continue;
            }
        } else {
            unsigned lost = bench_vfy_expire(&c->vfy, before);
            w->lost += lost;
            atomic_fetch_add_explicit(&w->errors, lost, memory_order_relaxed);
        }
        if (b->udp) {
            if (fill_pipeline(c, t) < 0)
                conn_fail(c, -EIO);
        } else if (conn_wants(&c->conn) & CONN_WANT_WRITE) {
            on_tcp(l, c->fd, 0, c);
        }
    }
    if (atomic_load_explicit(&b->stopping, memory_order_relaxed))
        loop_stop(l);
}

static void on_wake(struct loop *l, void *arg)
{
    (void)arg;
    loop_stop(l);
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    uint64_t t = now_ns();
    for (unsigned i = 0; i < w->nconns; i++) {
        struct bconn *c = &w->conns[i];
        c->since_ns = t;
        if (b->udp)
            c->ready = b->vt->conn_ready(c->pconn);
        int r = loop_add(w->loop, c->fd, LOOP_READ, b->udp ? on_udp : on_tcp, c);
        if (r < 0) {
            close(c->fd);
            c->fd = -1;
            c->dead = true;
            w->conn_errors++;
            atomic_fetch_sub_explicit(&w->alive, 1, memory_order_relaxed);
            continue;
        }
        if (b->udp) {
            if (!buf_empty(&c->hello))
                (void)send(c->fd, buf_head(&c->hello), buf_len(&c->hello), MSG_NOSIGNAL);
            if (fill_pipeline(c, now_ns()) < 0)
                conn_fail(c, -EIO);
        } else {
            if (fill_pipeline(c, now_ns()) < 0)
                conn_fail(c, -EIO);
            else
                on_tcp(w->loop, c->fd, 0, c);
        }
    }
    loop_set_tick(w->loop, TICK_MS, on_tick, w);
    loop_set_wake(w->loop, on_wake, w);
    if (!atomic_load(&b->stopping))
        (void)loop_run(w->loop);
    return NULL;
}

static void conn_release(const struct proto_vt *vt, struct bconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    if (c->has_conn)
        conn_free(&c->conn);
    proto_conn_free(vt, c->pconn);
    buf_free(&c->out);
    buf_free_nowipe(&c->hello);
    bench_vfy_free(&c->vfy);
}

/* A throwaway directory for the secure client's identity and known_hosts, so a measuring
 * tool never writes into the user's trust store. */
struct scratch_dir {
    char dir[256], key[300], known[300];
};

static bool scratch_make(struct scratch_dir *s)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if (snprintf(s->dir, sizeof(s->dir), "%s/secho-bench.XXXXXX", tmp) >= (int)sizeof(s->dir) ||
        !mkdtemp(s->dir)) {
        s->dir[0] = '\0';
        return false;
    }
    snprintf(s->key, sizeof(s->key), "%s/id.key", s->dir);
    snprintf(s->known, sizeof(s->known), "%s/known_hosts", s->dir);
    return true;
}

static void scratch_remove(struct scratch_dir *s)
{
    if (!s->dir[0])
        return;
    unlink(s->key);
    unlink(s->known);
    rmdir(s->dir);
}

static void progress(struct worker *ws, unsigned nthreads, double elapsed, bool warm,
                     uint64_t *last_done, size_t size)
{
    uint64_t done = 0, errors = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        done += atomic_load_explicit(&ws[i].done, memory_order_relaxed);
        errors += atomic_load_explicit(&ws[i].errors, memory_order_relaxed);
    }
    uint64_t d = done - *last_done;
    *last_done = done;
    fprintf(stderr, "secho bench: %5.1f s  %9llu msgs/s  %8.2f MB/s  %llu error%s%s\n", elapsed,
            (unsigned long long)d, (double)d * (double)size / 1e6, (unsigned long long)errors,
            errors == 1 ? "" : "s", warm ? "  (warm-up)" : "");
}

/* True if no echo ever came back and a connection was refused. */
static bool refused_only(struct worker *ws, unsigned nthreads)
{
    bool refused = false;
    for (unsigned i = 0; i < nthreads; i++) {
        if (atomic_load_explicit(&ws[i].echoes, memory_order_relaxed))
            return false;
        refused |= atomic_load_explicit(&ws[i].last_err, memory_order_relaxed) == -ECONNREFUSED;
    }
    return refused;
}

int bench_main(int argc, char **argv)
{
    const char *cmd = "bench";
    struct cli_common common;
    cli_common_init(&common);
    long conns = 10, size = 64, pipeline = 1, nthreads = 1;
    double duration = 10, warmup = 1, timeout = -1;
    const char *server_key = NULL, *noise_name = NULL;
    bool json = false;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "c:s:d:h", long_opts, NULL)) != -1) {
        int r = cli_common_opt(&common, cmd, opt, optarg);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        switch (opt) {
        case 'c':
            if (!cli_parse_long(cmd, "connections", optarg, 1, 100000, &conns))
                return 2;
            break;
        case 's':
            if (!cli_parse_long(cmd, "size", optarg, 1, 1 << 20, &size))
                return 2;
            break;
        case 'd':
            if (!cli_parse_seconds(cmd, "duration", optarg, 0.1, 86400, &duration))
                return 2;
            break;
        case OPT_WARMUP:
            if (!cli_parse_seconds(cmd, "warmup", optarg, 0, 3600, &warmup))
                return 2;
            break;
        case OPT_PIPELINE:
            if (!cli_parse_long(cmd, "pipeline", optarg, 1, 4096, &pipeline))
                return 2;
            break;
        case OPT_THREADS:
            if (!cli_parse_long(cmd, "threads", optarg, 1, MAX_THREADS, &nthreads))
                return 2;
            break;
        case OPT_TIMEOUT:
            if (!cli_parse_seconds(cmd, "timeout", optarg, 0.01, 3600, &timeout))
                return 2;
            break;
        case OPT_SERVER_KEY:
            server_key = optarg;
            break;
        case OPT_NOISE_NAME:
            noise_name = optarg;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            return cli_help(usage_head, 26, usage_tail);
        default:
            return cli_getopt_error(cmd, opt, argv, long_opts);
        }
    }
    if (!cli_common_done(&common, cmd, argc, argv))
        return 2;
    if (!cli_popt_check(cmd, &common, server_key, "--server-key", CLI_POPT_KEY_FILES) ||
        !cli_popt_check(cmd, &common, noise_name, "--noise-name", CLI_POPT_NOISE_NAME))
        return 2;
    if (noise_name && !cli_check_noise_name(cmd, common.proto, noise_name))
        return 2;
    if (server_key && !cli_check_server_key(cmd, server_key))
        return 2;
    if (common.port == 0)
        return cli_usage_error(cmd, "port 0 cannot be connected to");
    const struct proto_vt *vt = common.proto;
    /* One message is one record or datagram: bench does not split them as the client does. */
    size_t max = proto_max_msg(vt, common.udp);
    if ((size_t)size > max)
        return cli_usage_error(cmd, "--size %ld is above the largest %s %s message (%zu bytes)",
                               size, vt->name, common.udp ? "udp" : "tcp", max);
    if (nthreads > conns)
        nthreads = conns;
    if (timeout < 0)
        timeout = common.udp ? 1 : 10;

    struct bench b = {
        .vt = vt,
        .udp = common.udp,
        .stream = !common.udp && (vt->flags & PROTO_F_STREAM_ECHO),
        .size = (size_t)size,
        .pipeline = (unsigned)pipeline,
        .timeout_ns = (uint64_t)(timeout * 1e9),
    };
    char hostport[NET_ADDRSTRLEN + 256];
    net_format_hostport(common.host, common.port, hostport, sizeof(hostport));
    struct scratch_dir scratch = {0};
    struct proto_opts po = {
        .max_msg = (size_t)size > (1 << 20) ? (size_t)size : 1 << 20,
        .server_key = server_key,
        .noise_name = noise_name,
        .accept_new = server_key == NULL,
        .host_id = hostport,
        .dgram = common.udp,
    };
    int status = 1;
    struct bconn *cs = calloc((size_t)conns, sizeof(*cs));
    struct worker *ws = calloc((size_t)nthreads, sizeof(*ws));
    for (long i = 0; cs && i < conns; i++)
        cs[i].fd = -1;
    if (!cs || !ws) {
        fprintf(stderr, "secho: out of memory\n");
        goto out;
    }
    cli_warn_unauthenticated(vt);
    signal(SIGPIPE, SIG_IGN);

    if (vt->flags & PROTO_F_KEY_FILES) {
        if (!scratch_make(&scratch)) {
            fprintf(stderr, "secho: cannot create a temporary directory: %s\n", strerror(errno));
            goto out;
        }
        po.key_file = scratch.key;
        po.known_hosts = scratch.known;
    }
    char perr[PROTO_ERRLEN] = "";
    int r;
    if (vt->ctx_new && (r = vt->ctx_new(&po, PROTO_CLIENT, &b.ctx, perr, sizeof(perr))) < 0) {
        fprintf(stderr, "secho: %s\n", perr[0] ? perr : proto_strerror(r));
        goto out;
    }

    char err[256];
    struct net_addr addr;
    if (net_resolve(common.host, common.port, common.udp ? SOCK_DGRAM : SOCK_STREAM, &addr, err,
                    sizeof(err)) < 0) {
        fprintf(stderr, "secho: cannot connect to %s: %s\n", hostport, err);
        goto out;
    }
    uint64_t seed = now_ns() ^ ((uint64_t)getpid() << 32);
    for (long i = 0; i < conns; i++) {
        struct bconn *c = &cs[i];
        c->fd = common.udp ? net_connect_udp(&addr) : net_connect_tcp(&addr, (int)(timeout * 1000));
        if (c->fd < 0) {
            fprintf(stderr, "secho: cannot connect to %s: %s\n", hostport, strerror(-c->fd));
            c->fd = -1;
            goto out;
        }
        if ((r = net_set_nonblock(c->fd, true)) < 0) {
            fprintf(stderr, "secho: %s: %s\n", hostport, strerror(-r));
            goto out;
        }
        size_t frame = (size_t)size + 1024;
        buf_init(&c->out, (size_t)pipeline * frame + RECV_CHUNK);
        buf_init(&c->hello, RECV_CHUNK);
        if (bench_vfy_init(&c->vfy, (size_t)size, (unsigned)pipeline) < 0) {
            fprintf(stderr, "secho: out of memory\n");
            goto out;
        }
        if (!common.udp) {
            /* Bench never queues more than the pipeline, so out_high is the hard cap. */
            const struct conn_conf cf = {
                .vt = vt,
                .pctx = b.ctx,
                .role = PROTO_CLIENT,
                .in_limit = 2 * RECV_CHUNK + frame,
                .out_limit = (size_t)pipeline * frame + RECV_CHUNK,
                .out_high = (size_t)pipeline * frame + RECV_CHUNK,
                .read_chunk = RECV_CHUNK,
                .handshake_ms = (int)(timeout * 1000),
            };
            r = conn_init(&c->conn, &cf, &bench_conn_ops, c, loop_clock_ms());
            c->has_conn = true;
            if (r < 0) {
                fprintf(stderr, "secho: %s: %s\n", hostport, proto_strerror(r));
                goto out;
            }
        } else if ((r = proto_conn_new(vt, b.ctx, PROTO_CLIENT, &c->out, &c->pconn)) < 0) {
            fprintf(stderr, "secho: %s: %s\n", hostport, proto_strerror(r));
            goto out;
        }
        if (common.udp && !buf_empty(&c->out)) {
            if (buf_append(&c->hello, buf_head(&c->out), buf_len(&c->out)) < 0) {
                fprintf(stderr, "secho: %s: greeting too long\n", hostport);
                goto out;
            }
            buf_reset(&c->out);
        }
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        c->rng = seed | 1;
    }

    /* Workers get contiguous shares of the connections. */
    for (long i = 0; i < nthreads; i++) {
        struct worker *w = &ws[i];
        long lo = conns * i / nthreads, hi = conns * (i + 1) / nthreads;
        w->b = &b;
        w->conns = cs + lo;
        w->nconns = (unsigned)(hi - lo);
        atomic_init(&w->alive, w->nconns);
        bench_hist_init(&w->hist);
        for (long j = lo; j < hi; j++)
            cs[j].w = w;
        if (!(w->loop = loop_new())) {
            fprintf(stderr, "secho: event loop: %s\n", strerror(errno));
            goto out;
        }
    }

    /* Workers run with SIGINT blocked, so that Ctrl-C reaches this thread's sleep. */
    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    uint64_t start = now_ns();
    b.warm_ns = start + (uint64_t)(warmup * 1e9);
    atomic_init(&b.end_ns, b.warm_ns + (uint64_t)(duration * 1e9));
    atomic_init(&b.stopping, false);
    long started = 0;
    for (; started < nthreads; started++) {
        if ((r = pthread_create(&ws[started].tid, NULL, worker_run, &ws[started])) != 0) {
            fprintf(stderr, "secho: cannot start a thread: %s\n", strerror(r));
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    bool tty = isatty(STDERR_FILENO) && started == nthreads;
    uint64_t next_report = start + 1000000000u, last_done = 0;
    bool all_dead = false;
    while (started == nthreads) {
        uint64_t t = now_ns();
        if (interrupted) {
            atomic_store(&b.end_ns, t > b.warm_ns ? t : b.warm_ns);
            break;
        }
        if (t >= atomic_load(&b.end_ns))
            break;
        unsigned alive = 0;
        for (long i = 0; i < nthreads; i++)
            alive += atomic_load_explicit(&ws[i].alive, memory_order_relaxed);
        /* UDP with nothing listening: every socket got an ICMP refusal and no echo came
         * back within the timeout; waiting out the duration would measure nothing. */
        if (b.udp && t - start > b.timeout_ns && refused_only(ws, (unsigned)nthreads))
            alive = 0;
        if (alive == 0) {
            all_dead = true;
            atomic_store(&b.end_ns, t > b.warm_ns ? t : b.warm_ns);
            break;
        }
        if (tty && t >= next_report) {
            progress(ws, (unsigned)nthreads, (double)(t - start) / 1e9,
                     next_report - 1000000000u < b.warm_ns, &last_done, b.size);
            next_report += 1000000000u;
        }
        uint64_t wake = atomic_load(&b.end_ns);
        if (tty && next_report < wake)
            wake = next_report;
        uint64_t nap = wake - t < 50000000u ? wake - t : 50000000u; /* 50 ms: see alive */
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)nap};
        nanosleep(&ts, NULL);
    }
    atomic_store(&b.stopping, true);
    for (long i = 0; i < started; i++)
        loop_wake(ws[i].loop);
    for (long i = 0; i < started; i++)
        pthread_join(ws[i].tid, NULL);
    if (started < nthreads)
        goto out;

    static struct bench_hist hist;
    bench_hist_init(&hist);
    struct bench_result res = {
        .proto = vt->name,
        .transport = common.udp ? "udp" : "tcp",
        .host = common.host,
        .port = common.port,
        .connections = (unsigned)conns,
        .threads = (unsigned)nthreads,
        .pipeline = (unsigned)pipeline,
        .size = (size_t)size,
        .warmup_s = warmup,
        .hist = &hist,
    };
    uint64_t end = atomic_load(&b.end_ns), echoes = 0;
    res.duration_s = (double)(end - b.warm_ns) / 1e9;
    int last_err = 0;
    for (long i = 0; i < nthreads; i++) {
        struct worker *w = &ws[i];
        bench_hist_merge(&hist, &w->hist);
        res.msgs += w->msgs;
        res.mismatch += w->mismatch;
        res.lost += w->lost;
        res.conn_errors += w->conn_errors;
        echoes += atomic_load(&w->echoes);
        if (atomic_load(&w->last_err))
            last_err = atomic_load(&w->last_err);
    }
    if (common.udp && echoes == 0) {
        /* Connected UDP sockets only learn of a missing server from an ICMP error, or from
         * silence: either way nothing was measured. */
        fprintf(stderr, "secho: cannot connect to %s: %s\n", hostport,
                last_err ? proto_strerror(last_err) : "no echo from the server");
        goto out;
    }
    char text[2048];
    if (json)
        bench_format_json(&res, text, sizeof(text));
    else
        bench_format_summary(&res, text, sizeof(text));
    fputs(text, stdout);
    fflush(stdout);
    if (all_dead) {
        fprintf(stderr, "secho: %s: every connection failed (last: %s)\n", hostport,
                proto_strerror(last_err));
        goto out;
    }
    status = 0;
out:
    for (long i = 0; cs && i < conns; i++)
        conn_release(vt, &cs[i]);
    for (long i = 0; ws && i < nthreads; i++)
        loop_free(ws[i].loop);
    if (b.ctx && vt->ctx_free)
        vt->ctx_free(b.ctx);
    scratch_remove(&scratch);
    free(cs);
    free(ws);
    return status;
}
