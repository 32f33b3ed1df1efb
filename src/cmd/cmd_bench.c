/* SPDX-License-Identifier: MIT */
/* `secho bench`: a load generator that drives many connections per event loop, verifies
 * every echoed byte and records each message's round trip in a histogram. Closed loop (the
 * next message when an echo is back), open loop (--rate: a fixed schedule, latency from each
 * message's due time), or handshake cycles (--handshakes). The JSON it writes, and reads
 * back for --merge and --compare, is described in docs/BENCH.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_html.h"
#include "cli.h"
#include "loop.h"
#include "net.h"
#include "conn.h"

#define RECV_CHUNK  65536
#define TICK_MS     20
#define MAX_THREADS 64
#define IVL_RING    8         /* interval accumulators the workers fill ahead of the writer */
#define RETRY_NS    10000000u /* handshakes: pause after a failed cycle before the next */
#define SEC_NS      1000000000u
#define MERGE_MAX   (1u << 28) /* the largest JSON file --merge reads */

/* The help text, around the -P line (made from the registry by cli_help_proto). */
static const char usage_head[] =
    "Usage: secho bench [options]\n"
    "       secho bench --merge [--json[=FILE]] [--html FILE] A.json B.json ...\n"
    "       secho bench --compare [--html FILE] A.json B.json ...\n"
    "Load an echo server with many connections and verify every echoed byte; report\n"
    "messages/s, MB/s, latency percentiles, fairness across connections and errors.\n"
    "Works against any echo server speaking the chosen protocol.\n"
    "\n"
    "  -t, --transport tcp|udp   transport (default tcp)\n";
static const char usage_tail[] =
    "  -H, --host HOST           server address (default 127.0.0.1)\n"
    "  -p, --port PORT           server port (default 9090)\n"
    "  -c, --connections N       concurrent connections (UDP: sockets) (default 10)\n"
    "  -s, --size BYTES          message size on the wire before encryption (default 64)\n"
    "      --payload random|text what a message holds (default random): random bytes\n"
    "                            (plain TCP: a line, BYTES-1 random bytes and '\\n'), or\n"
    "                            text: printable ASCII ending in '\\n', for servers that\n"
    "                            decode UTF-8, like the notebook's Python ones\n"
    "  -d, --duration SEC        measured time, after the warm-up (default 10)\n"
    "      --warmup SEC          time before measuring starts, not counted (default 1)\n"
    "      --pipeline N          messages in flight per connection (default 1); in the\n"
    "                            open loop a message due while N are in flight waits\n"
    "      --rate R              open loop: R messages/s in total, spread evenly over\n"
    "                            the connections on a fixed schedule; latency counts\n"
    "                            from each message's due time, so a stalled server\n"
    "                            cannot hide (coordinated omission), and messages that\n"
    "                            leave over 1 ms late, or never, are counted as late\n"
    "      --handshakes          cycles instead: connect, handshake, one message,\n"
    "                            close, repeat; reports handshakes/s and their latency\n"
    "                            (from connect to the handshake's end)\n"
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
    "      --start-at UNIX_TIME  connect, then wait until this wall-clock time (seconds\n"
    "                            since 1970, fractions allowed; at most a day ahead), so\n"
    "                            that bench processes on several machines run together\n"
    "      --json[=FILE]         the result as one JSON object (docs/BENCH.md): on\n"
    "                            stdout instead of the summary, or written to FILE\n"
    "      --html FILE           write a report page to FILE (self-contained: inline SVG,\n"
    "                            nothing fetched, no script): the summary, messages/s\n"
    "                            each second, the latency percentiles on log axes and\n"
    "                            the fairness figures\n"
    "      --label TEXT          the run's name in its JSON and on --html and --compare\n"
    "                            pages (default: none; --compare then shows the file name)\n"
    "      --interval-json[=FILE]  one JSON line per second of the measured window\n"
    "                            (t, msgs, bytes, p50/p99/max, errors, late), on stdout\n"
    "                            or written to FILE, to plot a run\n"
    "      --merge               combine saved JSON results (the files after the\n"
    "                            options) into one exact result: histograms and rates\n"
    "                            add, connections are pooled for fairness\n"
    "      --compare             put saved JSON results (the files after the options)\n"
    "                            side by side: a table of the summary figures with\n"
    "                            ratios to the first on stdout, and with --html FILE a\n"
    "                            page with their percentile curves and messages/s\n"
    "                            overlaid\n"
    "  -h, --help                show this help\n"
    "\n"
    "Options marked secure: apply to -P secure only; with another protocol they are a\n"
    "usage error (exit 2).\n"
    "\n"
    "SEC may have a fraction (0.5). Latency is from handing a message to the kernel (with\n"
    "--rate: from when it was due) to the last byte of its echo, in microseconds, in a\n"
    "histogram exact to three significant digits; MB/s counts message bytes one way\n"
    "(1 MB = 10^6 bytes). Warm-up messages are verified but not counted. Fairness: echoes\n"
    "per connection (min, median, max, Jain's index: 1 = all equal) and the slowest\n"
    "connection's p99. On a terminal, progress is shown on stderr once a second; Ctrl-C\n"
    "ends the run early with a summary. Exit status: 0 the run completed (errors are\n"
    "reported, not fatal), 1 cannot connect, every connection failed, or a --merge or\n"
    "--compare file is unreadable or not a bench result, 2 usage error.\n"
    "\n"
    "Examples:\n"
    "  secho bench -P plain -p 9090                       # 10 connections for 10 s\n"
    "  secho bench -P plain -c 100 -s 1024 --pipeline 8 -d 30\n"
    "  secho bench -P plain -c 50 --rate 40000 -d 30      # open loop, 40k msgs/s\n"
    "  secho bench -P plain -t udp -c 4 --json | jq .msgs_per_s\n"
    "  secho bench -P secure -c 50 -s 1024     # accepts the key the server shows\n"
    "  secho bench -P secure --server-key BASE64KEY   # or pins it (from the server's banner)\n"
    "  secho bench -P secure --handshakes -c 8 --noise-name Noise_XX_25519_ChaChaPoly_BLAKE2b\n"
    "  secho bench -P plain --interval-json=run.jsonl --json=run.json\n"
    "  T=$(( $(date +%s) + 5 ))      # two load machines, one result:\n"
    "  secho bench -H srv --start-at $T --json=a.json   # on machine A\n"
    "  secho bench -H srv --start-at $T --json=b.json   # on machine B\n"
    "  secho bench --merge a.json b.json\n"
    "  secho bench -P plain -p 9090 --label epoll --json=epoll.json --html=epoll.html\n"
    "  secho bench --compare epoll.json reactors.json --html compare.html\n";

enum {
    OPT_WARMUP = 256,
    OPT_PIPELINE,
    OPT_THREADS,
    OPT_TIMEOUT,
    OPT_SERVER_KEY,
    OPT_NOISE_NAME,
    OPT_JSON,
    OPT_RATE,
    OPT_HANDSHAKES,
    OPT_PAYLOAD,
    OPT_INTERVAL_JSON,
    OPT_START_AT,
    OPT_MERGE,
    OPT_HTML,
    OPT_COMPARE,
    OPT_LABEL,
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
    {"json", optional_argument, NULL, OPT_JSON},
    {"rate", required_argument, NULL, OPT_RATE},
    {"handshakes", no_argument, NULL, OPT_HANDSHAKES},
    {"payload", required_argument, NULL, OPT_PAYLOAD},
    {"interval-json", optional_argument, NULL, OPT_INTERVAL_JSON},
    {"start-at", required_argument, NULL, OPT_START_AT},
    {"merge", no_argument, NULL, OPT_MERGE},
    {"html", required_argument, NULL, OPT_HTML},
    {"compare", no_argument, NULL, OPT_COMPARE},
    {"label", required_argument, NULL, OPT_LABEL},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

enum mode { MODE_CLOSED, MODE_OPEN, MODE_HANDSHAKES };
static const char *const mode_names[] = {"closed", "open", "handshakes"};

/* --handshakes: where a connection is in its cycle. UDP has no close, so a UDP cycle ends
 * as SPEC says a session ends: with `exit`, whose echo tells that the server forgot it (a
 * later socket on the same local port then starts afresh). */
enum cycle { CY_IDLE, CY_CONNECTING, CY_HANDSHAKE, CY_ECHO, CY_BYE };

struct bconn {
    struct worker *w;
    unsigned id; /* index among all connections: its place in the schedule and the report */
    int fd;
    struct conn conn;     /* TCP: the connection engine (bytes, pacing, handshake timeout) */
    bool has_conn;        /* conn_init ran: conn_free is owed */
    int err;              /* TCP: why the engine failed the connection (0: it did not) */
    uint64_t rx_ns;       /* when the bytes being verified were received */
    void *pconn;          /* UDP: the protocol session */
    struct buf out;       /* UDP: one datagram */
    struct bench_vfy vfy; /* the messages in flight and their bytes */
    uint64_t rng;
    uint64_t since_ns; /* UDP: start of the last greeting */
    struct buf hello;  /* UDP: the greeting, resent until the handshake completes */
    bool ready, dead;  /* ready: UDP (TCP asks the engine) */
    uint64_t next_k;   /* open loop: the number of this connection's next message */
    enum cycle cy;     /* handshakes */
    bool cy_done;      /* handshakes: the echo is in; close and start over */
    uint64_t cy_start_ns, retry_ns;
    uint64_t msgs;          /* echoes counted (the fairness figures) */
    struct bench_chist *ch; /* their latencies */
};

/* An interval's figures, summed over the workers (--interval-json). */
struct ivl_slot {
    uint64_t idx;       /* which second of the window */
    unsigned reporters; /* workers that added theirs */
    uint64_t msgs, errors, late, handshakes;
    struct bench_hist *hist, *hs;
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
    struct bench_hist *hs_hist; /* handshakes mode */
    /* Only this thread writes these (the main thread reads them after the join). */
    uint64_t msgs, mismatch, lost, conn_errors, late, lag_max, handshakes;
    _Atomic uint64_t done;   /* every echo completed, for progress */
    _Atomic uint64_t errors; /* every error, for progress */
    _Atomic unsigned alive;
    _Atomic uint64_t echoes; /* every datagram/record echoed, warm-up included */
    _Atomic int last_err;    /* why the last connection failed */
    /* open loop: a timer at the next due message, (cur_k, cur_j) in schedule order */
    int tfd;
    uint64_t cur_k;
    unsigned cur_j;
    /* --interval-json: this second's share, handed to the bench's ring when it ends */
    struct bench_hist *ivl_hist, *ivl_hs;
    uint64_t ivl_idx, ivl_msgs, ivl_errors, ivl_late, ivl_handshakes;
};

struct bench {
    const struct proto_vt *vt;
    void *ctx;
    enum mode mode;
    bool udp, stream;
    enum bench_payload payload;
    size_t size;
    unsigned pipeline, nconns, nworkers;
    uint64_t timeout_ns;
    double period_ns;        /* open loop: 1e9 / rate, between two messages of the whole run */
    uint64_t t0;             /* open loop: when message 0 of connection 0 is due */
    uint64_t warm_ns;        /* echoes completing before this are not counted */
    _Atomic uint64_t end_ns; /* nor those completing after this */
    _Atomic bool stopping;
    struct net_addr addr; /* handshakes: where to connect each cycle */
    struct conn_conf cf;  /* TCP: every connection's engine settings */
    bool intervals; /* per-second figures: --interval-json, and the result's for --json, --html */
    struct bench_point *points; /* each second so far, for the result (main thread only) */
    size_t npoints, cap_points;
    bool points_failed;
    pthread_mutex_t ivl_mu;
    pthread_cond_t ivl_cv;
    struct ivl_slot ring[IVL_RING];
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
    return (uint64_t)ts.tv_sec * SEC_NS + (uint64_t)ts.tv_nsec;
}

static double unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool in_window(const struct bench *b, uint64_t t)
{
    return t >= b->warm_ns && t < atomic_load_explicit(&b->end_ns, memory_order_relaxed);
}

/* ---- intervals ---- */

/* Hands this worker's share of interval w->ivl_idx to the ring and starts the next. A
 * slot still holding an interval the writer has not taken yet (IVL_RING seconds behind) is
 * waited for. */
static void ivl_publish(struct worker *w)
{
    struct bench *b = w->b;
    pthread_mutex_lock(&b->ivl_mu);
    struct ivl_slot *s = &b->ring[w->ivl_idx % IVL_RING];
    while (s->reporters && s->idx != w->ivl_idx)
        pthread_cond_wait(&b->ivl_cv, &b->ivl_mu);
    s->idx = w->ivl_idx;
    s->reporters++;
    s->msgs += w->ivl_msgs;
    s->errors += w->ivl_errors;
    s->late += w->ivl_late;
    s->handshakes += w->ivl_handshakes;
    bench_hist_merge(s->hist, w->ivl_hist);
    if (s->hs)
        bench_hist_merge(s->hs, w->ivl_hs);
    pthread_mutex_unlock(&b->ivl_mu);
    w->ivl_msgs = w->ivl_errors = w->ivl_late = w->ivl_handshakes = 0;
    if (w->ivl_hist->count)
        bench_hist_init(w->ivl_hist);
    if (w->ivl_hs && w->ivl_hs->count)
        bench_hist_init(w->ivl_hs);
    w->ivl_idx++;
}

/* Publishes every interval that ended by t (t inside the window). */
static void ivl_roll(struct worker *w, uint64_t t)
{
    uint64_t idx = (t - w->b->warm_ns) / SEC_NS;
    while (w->ivl_idx < idx)
        ivl_publish(w);
}

/* Something went wrong at t: counted in its interval. */
static void ivl_error(struct worker *w, uint64_t n)
{
    struct bench *b = w->b;
    if (!b->intervals)
        return;
    uint64_t t = now_ns();
    if (in_window(b, t)) {
        ivl_roll(w, t);
        w->ivl_errors += n;
    }
}

/* ---- counting ---- */

static void count_mismatch(struct worker *w)
{
    w->mismatch++;
    atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
    ivl_error(w, 1);
}

static void count_lost(struct worker *w, unsigned n)
{
    if (!n)
        return;
    w->lost += n;
    atomic_fetch_add_explicit(&w->errors, n, memory_order_relaxed);
    ivl_error(w, n);
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
    if (b->mode == MODE_HANDSHAKES)
        c->cy_done = true;
    if (!ok) {
        count_mismatch(w);
        return;
    }
    if (!in_window(b, t))
        return;
    uint64_t lat = t > s->due_ns ? t - s->due_ns : 0;
    w->msgs++;
    c->msgs++;
    bench_hist_record(&w->hist, lat);
    bench_chist_record(c->ch, lat);
    if (b->intervals) {
        ivl_roll(w, t);
        w->ivl_msgs++;
        bench_hist_record(w->ivl_hist, lat);
    }
}

/* Open loop: a message due at `due` left at `now`. */
static void note_lag(struct worker *w, uint64_t due, uint64_t now)
{
    struct bench *b = w->b;
    if (!in_window(b, due))
        return;
    uint64_t lag = now - due;
    if (lag > w->lag_max)
        w->lag_max = lag;
    if (lag > BENCH_LATE_NS) {
        w->late++;
        if (b->intervals && in_window(b, now)) {
            ivl_roll(w, now);
            w->ivl_late++;
        }
    }
}

/* ---- sending ---- */

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

static bool sendable(const struct bconn *c)
{
    const struct bench *b = c->w->b;
    return !c->dead && c->fd >= 0 && (b->udp ? c->ready : c->has_conn && conn_ready(&c->conn)) &&
           !atomic_load_explicit(&b->stopping, memory_order_relaxed);
}

/* Fills the message at p (just pushed) and queues (TCP) or sends (UDP) it. Returns 0 or <0
 * (the connection failed). */
static int send_one(struct bconn *c, uint8_t *p)
{
    struct bench *b = c->w->b;
    bench_fill(&c->rng, p, b->size, b->payload);
    if (!b->udp)
        return conn_send_msg(&c->conn, p, b->size);
    buf_reset(&c->out);
    int r = b->vt->dgram_write(c->pconn, p, b->size, &c->out);
    if (r < 0)
        return r;
    if (send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
        errno != ENOBUFS && errno != ECONNREFUSED)
        return -errno;
    /* A refused or dropped datagram is found lost by the timeout. */
    return 0;
}

static uint64_t due_of(const struct bench *b, uint64_t k, unsigned id)
{
    return b->t0 + (uint64_t)(((double)k * b->nconns + id) * b->period_ns);
}

/* Sends what the connection may send at t: closed loop, a message for every free slot;
 * open loop, every message that is due and has a slot (TCP: queued, flushed by the
 * caller). Returns 0 or <0 (connection failed). */
static int top_up(struct bconn *c, uint64_t t)
{
    struct bench *b = c->w->b;
    if (b->mode == MODE_HANDSHAKES || !sendable(c))
        return 0;
    uint8_t *p;
    if (b->mode == MODE_CLOSED) {
        while ((p = bench_vfy_push(&c->vfy, t, t)) != NULL) {
            int r = send_one(c, p);
            if (r < 0)
                return r;
        }
        return 0;
    }
    for (;;) {
        uint64_t due = due_of(b, c->next_k, c->id);
        if (due > t || !(p = bench_vfy_push(&c->vfy, due, t)))
            return 0;
        c->next_k++;
        note_lag(c->w, due, t);
        int r = send_one(c, p);
        if (r < 0)
            return r;
    }
}

/* ---- handshake cycles ---- */

static void cycle_close(struct bconn *c)
{
    struct bench *b = c->w->b;
    if (c->fd >= 0) {
        loop_del(c->w->loop, c->fd);
        close(c->fd);
        c->fd = -1;
    }
    if (c->has_conn) {
        conn_free(&c->conn);
        c->has_conn = false;
    }
    proto_conn_free(b->vt, c->pconn);
    c->pconn = NULL;
    buf_reset(&c->out);
    buf_reset(&c->hello);
    bench_vfy_clear(&c->vfy);
    c->ready = c->cy_done = false;
    c->err = 0;
    c->cy = CY_IDLE;
}

static void cycle_start(struct bconn *c, uint64_t now);

/* A cycle failed (err < 0): counted; the next starts after a pause. */
static void cycle_fail(struct bconn *c, int err)
{
    struct worker *w = c->w;
    w->conn_errors++;
    atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
    atomic_store_explicit(&w->last_err, err, memory_order_relaxed);
    ivl_error(w, 1);
    cycle_close(c);
    c->retry_ns = now_ns() + RETRY_NS;
}

/* The handshake completed at t: timed; the one message goes out. */
static int cycle_ready(struct bconn *c, uint64_t t)
{
    struct worker *w = c->w;
    struct bench *b = w->b;
    c->cy = CY_ECHO;
    if (in_window(b, t)) {
        uint64_t lat = t - c->cy_start_ns;
        w->handshakes++;
        bench_hist_record(w->hs_hist, lat);
        if (b->intervals) {
            ivl_roll(w, t);
            w->ivl_handshakes++;
            bench_hist_record(w->ivl_hs, lat);
        }
    }
    uint8_t *p = bench_vfy_push(&c->vfy, t, t);
    return p ? send_one(c, p) : -EIO;
}

static void on_tcp(struct loop *l, int fd, unsigned events, void *arg);
static void on_udp(struct loop *l, int fd, unsigned events, void *arg);
static const struct conn_ops bench_conn_ops;

/* A new cycle: a fresh socket, a connect that completes in the loop (TCP) or at once (UDP),
 * a fresh protocol session. */
static void cycle_start(struct bconn *c, uint64_t now)
{
    struct worker *w = c->w;
    struct bench *b = w->b;
    c->cy_start_ns = now;
    int type = (b->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
    int fd = socket(b->addr.ss.ss_family, type, 0);
    if (fd < 0) {
        cycle_fail(c, -errno);
        return;
    }
    c->fd = fd;
    if (!b->udp) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (connect(fd, (const struct sockaddr *)&b->addr.ss, b->addr.len) < 0 &&
        errno != EINPROGRESS) {
        cycle_fail(c, -errno);
        return;
    }
    int r = loop_add(w->loop, fd, b->udp ? LOOP_READ : LOOP_WRITE, b->udp ? on_udp : on_tcp, c);
    if (r < 0) {
        close(fd);
        c->fd = -1;
        cycle_fail(c, r);
        return;
    }
    if (!b->udp) {
        c->cy = CY_CONNECTING;
        return;
    }
    c->cy = CY_HANDSHAKE;
    if ((r = proto_conn_new(b->vt, b->ctx, PROTO_CLIENT, &c->out, &c->pconn)) < 0) {
        cycle_fail(c, r);
        return;
    }
    if (!buf_empty(&c->out))
        (void)send(fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
    buf_reset(&c->out);
    c->since_ns = now;
    if ((c->ready = b->vt->conn_ready(c->pconn)) && (r = cycle_ready(c, now)) < 0)
        cycle_fail(c, r);
}

/* TCP connect finished (or failed): the engine starts with the protocol's greeting. */
static int cycle_connected(struct bconn *c)
{
    struct bench *b = c->w->b;
    int e = 0;
    socklen_t sl = sizeof(e);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
        return -errno;
    if (e)
        return -e;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0)
        return errno == ENOTCONN ? 0 : -errno; /* not yet: an event for an earlier socket */
    c->cy = CY_HANDSHAKE;
    int r = conn_init(&c->conn, &b->cf, &bench_conn_ops, c, loop_clock_ms());
    c->has_conn = true;
    return r < 0 ? r : 1;
}

/* ---- TCP ---- */

static void conn_fail(struct bconn *c, int err)
{
    struct worker *w = c->w;
    if (w->b->mode == MODE_HANDSHAKES) {
        cycle_fail(c, err);
        return;
    }
    if (c->dead)
        return;
    c->dead = true;
    w->conn_errors++;
    atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
    atomic_store_explicit(&w->last_err, err, memory_order_relaxed);
    atomic_fetch_sub_explicit(&w->alive, 1, memory_order_relaxed);
    ivl_error(w, 1);
    loop_del(w->loop, c->fd);
    close(c->fd);
    c->fd = -1;
}

/* bench's policy for a TCP connection (struct conn_ops): verify, time, count. */
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

/* After input: the handshake may have completed (handshakes: timed, message sent), an echo
 * may have ended the cycle (1: the connection is gone), or there is room for more. */
static int after_input(struct bconn *c)
{
    struct bench *b = c->w->b;
    if (c->err)
        return c->err;
    if (b->mode != MODE_HANDSHAKES)
        return top_up(c, c->rx_ns);
    if (c->cy == CY_HANDSHAKE && conn_ready(&c->conn))
        return cycle_ready(c, c->rx_ns);
    if (c->cy_done) {
        cycle_close(c);
        if (!atomic_load_explicit(&b->stopping, memory_order_relaxed))
            cycle_start(c, now_ns());
        return 1;
    }
    return 0;
}

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
        int r = after_input(c);
        if (r != 0)
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
    if (c->cy == CY_CONNECTING) {
        if (!(events & (LOOP_WRITE | LOOP_HUP)) || (r = cycle_connected(c)) == 0)
            return;
        if (r > 0) {
            c->rx_ns = now_ns();
            r = conn_ready(&c->conn) ? cycle_ready(c, c->rx_ns) : c->err;
        }
    } else if (events & (LOOP_READ | LOOP_HUP)) {
        r = read_tcp(c, now);
    }
    if (r > 0)
        return; /* a cycle ended: c is a new connection now */
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

/* ---- UDP ---- */

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
                if (b->mode == MODE_HANDSHAKES) {
                    cycle_fail(c, -ECONNREFUSED);
                    return;
                }
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
        bool was_ready = c->ready;
        if (r == PROTO_MSG && c->cy != CY_BYE)
            verify_dgram(c, &m);
        else if (r == PROTO_HANDSHAKE || (r == PROTO_NEED_MORE && !c->ready))
            c->ready = b->vt->conn_ready(c->pconn);
        else if (r < 0 && r != PROTO_DROP)
            count_mismatch(w);
        if (b->mode == MODE_HANDSHAKES) {
            if (c->cy == CY_BYE && r == PROTO_MSG) {
                cycle_close(c);
                if (!atomic_load_explicit(&b->stopping, memory_order_relaxed))
                    cycle_start(c, now_ns());
                return;
            }
            if (c->cy_done) {
                c->cy_done = false;
                c->cy = CY_BYE;
                c->since_ns = t;
                buf_reset(&c->out);
                if (b->vt->dgram_write(c->pconn, (const uint8_t *)"exit", 4, &c->out) == 0)
                    (void)send(fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
                continue;
            }
            if (c->ready && !was_ready && (r = cycle_ready(c, t)) < 0) {
                cycle_fail(c, r);
                return;
            }
            continue;
        }
        r = top_up(c, t);
        if (r < 0) {
            conn_fail(c, r);
            return;
        }
    }
}

/* ---- time: timeouts, the open-loop schedule ---- */

/* Handshakes: timeouts of a cycle, and cycles waiting to start again. */
static void tick_cycle(struct loop *l, struct bconn *c, uint64_t t)
{
    struct bench *b = c->w->b;
    if (c->cy == CY_IDLE) {
        if (t >= c->retry_ns && !atomic_load_explicit(&b->stopping, memory_order_relaxed))
            cycle_start(c, t);
        return;
    }
    if (c->cy == CY_BYE) {
        if (t - c->since_ns > b->timeout_ns) { /* the exit's echo was lost: start anyway */
            cycle_close(c);
            c->retry_ns = t;
        }
        return;
    }
    if (c->cy != CY_ECHO && t - c->cy_start_ns > b->timeout_ns) {
        cycle_fail(c, -ETIMEDOUT);
        return;
    }
    const struct bench_slot *s = bench_vfy_oldest(&c->vfy);
    if (s && t - s->sent_ns > b->timeout_ns) {
        if (b->udp) {
            count_lost(c->w, bench_vfy_expire(&c->vfy, t - b->timeout_ns));
            cycle_close(c);
            c->retry_ns = t;
        } else {
            cycle_fail(c, -ETIMEDOUT);
        }
        return;
    }
    if (!b->udp && c->has_conn) {
        conn_on_time(&c->conn, loop_now(l));
        if (c->err)
            cycle_fail(c, c->err);
        else if (conn_wants(&c->conn) & CONN_WANT_WRITE)
            on_tcp(l, c->fd, 0, c);
    }
}

/* Periodic: handshake and echo timeouts, paused output, intervals that ended. */
static void on_tick(struct loop *l, void *arg)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    uint64_t t = now_ns();
    if (b->intervals && in_window(b, t))
        ivl_roll(w, t);
    for (unsigned i = 0; i < w->nconns; i++) {
        struct bconn *c = &w->conns[i];
        if (b->mode == MODE_HANDSHAKES) {
            tick_cycle(l, c, t);
            continue;
        }
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
            if (b->mode == MODE_OPEN && top_up(c, t) < 0) {
                conn_fail(c, -EIO);
                continue;
            }
            if (conn_wants(&c->conn) & CONN_WANT_WRITE)
                on_tcp(l, c->fd, 0, c);
        } else {
            count_lost(w, bench_vfy_expire(&c->vfy, before));
            if (top_up(c, t) < 0)
                conn_fail(c, -EIO);
        }
    }
    if (atomic_load_explicit(&b->stopping, memory_order_relaxed))
        loop_stop(l);
}

static void pace_arm(struct worker *w)
{
    uint64_t due = due_of(w->b, w->cur_k, w->conns[w->cur_j].id);
    struct itimerspec its = {
        .it_value = {.tv_sec = (time_t)(due / SEC_NS), .tv_nsec = (long)(due % SEC_NS)},
    };
    (void)timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Open loop: the timer at the next due message. Walks the schedule (every connection of
 * this worker in turn, message by message) up to now, letting each connection send what is
 * due, then sets the timer for the next. */
static void on_pace(struct loop *l, int fd, unsigned events, void *arg)
{
    (void)events;
    struct worker *w = arg;
    struct bench *b = w->b;
    uint64_t v;
    ssize_t rd = read(fd, &v, sizeof(v));
    (void)rd;
    if (atomic_load_explicit(&b->stopping, memory_order_relaxed))
        return;
    uint64_t now = now_ns();
    for (;;) {
        struct bconn *c = &w->conns[w->cur_j];
        if (due_of(b, w->cur_k, c->id) > now && due_of(b, w->cur_k, c->id) > (now = now_ns()))
            break;
        if (sendable(c)) {
            if (top_up(c, now) < 0)
                conn_fail(c, -EIO);
            else if (!b->udp)
                on_tcp(l, c->fd, 0, c);
        }
        if (++w->cur_j == w->nconns) {
            w->cur_j = 0;
            w->cur_k++;
        }
    }
    pace_arm(w);
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
    if (b->mode == MODE_OPEN)
        (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* wake on time, not 50 us late */
    uint64_t t = now_ns();
    for (unsigned i = 0; i < w->nconns; i++) {
        struct bconn *c = &w->conns[i];
        c->since_ns = t;
        if (b->mode == MODE_HANDSHAKES) {
            cycle_start(c, now_ns());
            continue;
        }
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
            if (top_up(c, now_ns()) < 0)
                conn_fail(c, -EIO);
        } else {
            if (top_up(c, now_ns()) < 0)
                conn_fail(c, -EIO);
            else
                on_tcp(w->loop, c->fd, 0, c);
        }
    }
    if (b->mode == MODE_OPEN && w->nconns) {
        if (loop_add(w->loop, w->tfd, LOOP_READ, on_pace, w) == 0)
            pace_arm(w);
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

/* ---- output ---- */

/* An output file of --json=FILE or --interval-json=FILE, or stdout. */
static FILE *open_out(const char *path)
{
    if (!path)
        return stdout;
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "secho: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

static bool write_str(FILE *f, const struct bench_str *s, const char *path)
{
    if (s->failed) {
        fprintf(stderr, "secho: out of memory\n");
        return false;
    }
    if ((s->len && fwrite(s->p, 1, s->len, f) != s->len) || fflush(f) != 0) {
        fprintf(stderr, "secho: cannot write %s: %s\n", path ? path : "stdout", strerror(errno));
        return false;
    }
    return true;
}

/* Writes every interval all workers have handed in (the writer side of the ring). With
 * `final`, the last one ends at the window's end. Returns false on a write error. */
static bool ivl_drain(struct bench *b, uint64_t *next, double start_unix, FILE *f, const char *path)
{
    bool ok = true;
    pthread_mutex_lock(&b->ivl_mu);
    for (;;) {
        struct ivl_slot *s = &b->ring[*next % IVL_RING];
        if (s->reporters < b->nworkers || s->idx != *next)
            break;
        uint64_t end = atomic_load(&b->end_ns);
        uint64_t from = b->warm_ns + s->idx * SEC_NS, to = from + SEC_NS;
        if (to > end)
            to = end;
        struct bench_interval iv = {
            .t = (double)(to - b->warm_ns) / 1e9,
            .dur = (double)(to - from) / 1e9,
            .unix_end = start_unix + (double)(to - b->warm_ns) / 1e9,
            .msgs = s->msgs,
            .bytes = s->msgs * b->size,
            .errors = s->errors,
            .late = s->late,
            .handshakes = s->handshakes,
            .hist = s->hist,
            .hs_hist = s->hs,
        };
        struct bench_str line = {0};
        if (f)
            bench_format_interval(&iv, &line);
        if (b->npoints == b->cap_points && !b->points_failed) {
            size_t cap = b->cap_points ? b->cap_points * 2 : 64;
            struct bench_point *q = realloc(b->points, cap * sizeof(*q));
            if (q) {
                b->points = q;
                b->cap_points = cap;
            } else {
                b->points_failed = true;
            }
        }
        if (b->npoints < b->cap_points)
            b->points[b->npoints++] = bench_interval_point(&iv);
        pthread_mutex_unlock(&b->ivl_mu);
        if (ok && f)
            ok = write_str(f, &line, path);
        bench_str_free(&line);
        pthread_mutex_lock(&b->ivl_mu);
        s->reporters = 0;
        s->msgs = s->errors = s->late = s->handshakes = 0;
        bench_hist_init(s->hist);
        if (s->hs)
            bench_hist_init(s->hs);
        (*next)++;
        pthread_cond_broadcast(&b->ivl_cv);
    }
    pthread_mutex_unlock(&b->ivl_mu);
    return ok;
}

/* Open loop: messages of connection c due in [from, to) that never left. */
static uint64_t unsent_of(const struct bench *b, const struct bconn *c, uint64_t from, uint64_t to)
{
    /* The first message number due at or after T, found near its estimate and fixed up
     * against due_of itself (the schedule's own rounding). */
    uint64_t k_to = 0, k_from = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t T = pass ? from : to;
        double est = ((double)(T > b->t0 ? T - b->t0 : 0) / b->period_ns - c->id) / b->nconns;
        uint64_t k = est > 0 ? (uint64_t)est : 0;
        while (k > 0 && due_of(b, k - 1, c->id) >= T)
            k--;
        while (due_of(b, k, c->id) < T)
            k++;
        if (pass)
            k_from = k;
        else
            k_to = k;
    }
    uint64_t first = c->next_k > k_from ? c->next_k : k_from;
    return k_to > first ? k_to - first : 0;
}

/* ---- --merge ---- */

/* The whole file, NUL-terminated, or NULL (reason printed). */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "secho: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *p = malloc(cap);
    while (p) {
        size_t n = fread(p + len, 1, cap - len - 1, f);
        len += n;
        if (len < cap - 1) {
            if (ferror(f)) {
                fprintf(stderr, "secho: cannot read %s: %s\n", path, strerror(errno));
                free(p);
                p = NULL;
            }
            break;
        }
        if (cap >= MERGE_MAX) {
            fprintf(stderr, "secho: %s: larger than %u bytes\n", path, MERGE_MAX);
            free(p);
            p = NULL;
            break;
        }
        char *q = realloc(p, cap * 2);
        if (!q)
            free(p);
        p = q;
        cap *= 2;
    }
    fclose(f);
    if (p)
        p[len] = '\0';
    else if (!len)
        fprintf(stderr, "secho: out of memory\n");
    return p;
}

/* A saved run: the file is bench's JSON object, or JSON lines (--json and --interval-json
 * both on stdout) whose last object with a "schema" is the result. */
static int parse_saved(struct bench_run *run, char *text, char *err, size_t errlen)
{
    if (bench_run_parse(run, text, err, errlen) == 0)
        return 0;
    char first_err[256];
    snprintf(first_err, sizeof(first_err), "%s", err);
    char *last = NULL;
    for (char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, "{\"schema\":", 10) == 0)
            last = line;
    if (!last || last == text) {
        snprintf(err, errlen, "%s", first_err);
        return -1;
    }
    char *nl = strchr(last, '\n');
    if (nl)
        *nl = '\0';
    bench_run_free(run);
    return bench_run_parse(run, last, err, errlen);
}

/* Reads one saved result into run; false (the reason printed) when it cannot.
 * bench_run_free is owed either way. */
static bool load_saved(const char *path, struct bench_run *run)
{
    char err[256] = "";
    char *text = read_file(path);
    if (!text)
        return false;
    int r = parse_saved(run, text, err, sizeof(err));
    free(text);
    if (r < 0) {
        fprintf(stderr, "secho: %s: not a secho bench result: %s\n", path, err);
        return false;
    }
    return true;
}

/* Writes s to the file at path (--html FILE) or to f when given (already open); false (the
 * reason printed) on failure. */
static bool write_file(const char *path, FILE *f, const struct bench_str *s)
{
    if (!f && !(f = open_out(path)))
        return false;
    bool ok = write_str(f, s, path);
    if (fclose(f) != 0 && ok) {
        fprintf(stderr, "secho: cannot write %s: %s\n", path, strerror(errno));
        ok = false;
    }
    return ok;
}

static int merge_main(char **files, int nfiles, bool json, const char *json_path,
                      const char *html_path, const char *label)
{
    struct bench_run total, one;
    memset(&total, 0, sizeof(total));
    memset(&one, 0, sizeof(one));
    int status = 1;
    char err[256] = "";
    for (int i = 0; i < nfiles; i++) {
        if (!load_saved(files[i], i == 0 ? &total : &one))
            goto out;
        if (i > 0) {
            int r = bench_run_merge(&total, &one, err, sizeof(err));
            bench_run_free(&one);
            if (r < 0) {
                fprintf(stderr, "secho: %s: %s\n", files[i], err);
                goto out;
            }
        }
    }
    if (label)
        snprintf(total.label, sizeof(total.label), "%s", label);
    total.r.label = total.label[0] ? total.label : NULL;
    struct bench_str s = {0};
    if (json) {
        bench_format_json(&total.r, &s);
        FILE *f = open_out(json_path);
        bool ok = f && write_str(f, &s, json_path);
        if (f && f != stdout && fclose(f) != 0)
            ok = false;
        bench_str_free(&s);
        if (!ok)
            goto out;
    }
    if (html_path) {
        bench_html_report(&total.r, NULL, &s);
        bool ok = write_file(html_path, NULL, &s);
        bench_str_free(&s);
        if (!ok)
            goto out;
    }
    if (!json || json_path) {
        bench_format_summary(&total.r, &s);
        bool ok = write_str(stdout, &s, NULL);
        bench_str_free(&s);
        if (!ok)
            goto out;
    }
    status = 0;
out:
    bench_run_free(&total);
    bench_run_free(&one);
    return status;
}

/* The name of a saved run on a comparison: its label, else its file's name (the path as
 * given when two files share a name). */
static const char *file_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

static int compare_main(char **files, int nfiles, const char *html_path)
{
    size_t n = (size_t)nfiles;
    struct bench_run *runs = calloc(n, sizeof(*runs));
    const struct bench_result **rs = calloc(n, sizeof(const struct bench_result *));
    const char **labels = calloc(n, sizeof(*labels));
    int status = 1;
    struct bench_str s = {0};
    if (!runs || !rs || !labels) {
        fprintf(stderr, "secho: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!load_saved(files[i], &runs[i]))
            goto out;
        rs[i] = &runs[i].r;
    }
    bool same_name = false;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            same_name |= strcmp(file_name(files[i]), file_name(files[j])) == 0;
    for (size_t i = 0; i < n; i++)
        labels[i] = runs[i].r.label ? runs[i].r.label : same_name ? files[i] : file_name(files[i]);
    if (html_path) {
        bench_html_compare(rs, labels, n, &s);
        bool ok = write_file(html_path, NULL, &s);
        bench_str_free(&s);
        if (!ok)
            goto out;
    }
    bench_compare_text(rs, labels, n, &s);
    if (!write_str(stdout, &s, NULL))
        goto out;
    status = 0;
out:
    bench_str_free(&s);
    for (size_t i = 0; runs && i < n; i++)
        bench_run_free(&runs[i]);
    free(runs);
    free(rs);
    free(labels);
    return status;
}

/* ---- the run ---- */

/* Sleeps until the wall-clock time `at` (--start-at); false if interrupted. */
static bool wait_until(double at)
{
    for (;;) {
        if (interrupted)
            return false;
        double left = at - unix_now();
        if (left <= 0)
            return true;
        if (left > 0.05)
            left = 0.05;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
}

int bench_main(int argc, char **argv)
{
    const char *cmd = "bench";
    struct cli_common common;
    cli_common_init(&common);
    long conns = 10, size = 64, pipeline = 1, nthreads = 1;
    double duration = 10, warmup = 1, timeout = -1, rate = 0, start_at = 0;
    const char *server_key = NULL, *noise_name = NULL, *json_path = NULL, *ivl_path = NULL;
    const char *html_path = NULL, *label = NULL;
    bool json = false, handshakes = false, intervals = false, merge = false, text = false;
    bool compare = false;
    bool pipeline_given = false;
    char load_opt[40] = ""; /* an option --merge does not take */
    int opt, li = -1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "c:s:d:h", long_opts, &li)) != -1) {
        if (opt != OPT_JSON && opt != OPT_MERGE && opt != OPT_COMPARE && opt != OPT_HTML &&
            opt != OPT_LABEL && opt != 'h' && opt != '?' && opt != ':') {
            if (li >= 0)
                snprintf(load_opt, sizeof(load_opt), "--%s", long_opts[li].name);
            else
                snprintf(load_opt, sizeof(load_opt), "-%c", opt);
        }
        li = -1;
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
            pipeline_given = true;
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
            json_path = optarg;
            break;
        case OPT_RATE:
            if (!cli_parse_seconds(cmd, "rate", optarg, 0.001, 1e8, &rate))
                return 2;
            break;
        case OPT_HANDSHAKES:
            handshakes = true;
            break;
        case OPT_PAYLOAD:
            if (strcmp(optarg, "text") == 0)
                text = true;
            else if (strcmp(optarg, "random") == 0)
                text = false;
            else
                return cli_usage_error(cmd, "--payload is random or text, not '%s'", optarg);
            break;
        case OPT_INTERVAL_JSON:
            intervals = true;
            ivl_path = optarg;
            break;
        case OPT_START_AT:
            if (!cli_parse_seconds(cmd, "start-at", optarg, 1, 1e11, &start_at))
                return 2;
            if (start_at > unix_now() + 86400)
                return cli_usage_error(cmd, "--start-at %s is more than a day ahead", optarg);
            break;
        case OPT_MERGE:
            merge = true;
            break;
        case OPT_COMPARE:
            compare = true;
            break;
        case OPT_HTML:
            if (!*optarg)
                return cli_usage_error(cmd, "--html needs a file name");
            html_path = optarg;
            break;
        case OPT_LABEL:
            if (!*optarg || strlen(optarg) > BENCH_LABEL_MAX)
                return cli_usage_error(cmd, "--label is 1 to %d bytes", BENCH_LABEL_MAX);
            label = optarg;
            break;
        case 'h':
            return cli_help(usage_head, 26, usage_tail);
        default:
            return cli_getopt_error(cmd, opt, argv, long_opts);
        }
    }
    if ((json_path && !*json_path) || (ivl_path && !*ivl_path))
        return cli_usage_error(cmd, "--json= and --interval-json= need a file name");
    if (merge && compare)
        return cli_usage_error(cmd, "--merge and --compare cannot be combined");
    if (merge) {
        if (load_opt[0])
            return cli_usage_error(cmd,
                                   "--merge takes only --json, --html, --label and files, "
                                   "not %s",
                                   load_opt);
        if (optind >= argc)
            return cli_usage_error(cmd, "--merge needs the JSON files of one or more runs");
        return merge_main(argv + optind, argc - optind, json, json_path, html_path, label);
    }
    if (compare) {
        if (load_opt[0] || json || label)
            return cli_usage_error(cmd, "--compare takes only --html and files, not %s",
                                   load_opt[0] ? load_opt
                                   : json      ? "--json"
                                               : "--label");
        if (optind >= argc)
            return cli_usage_error(cmd, "--compare needs the JSON files of one or more runs");
        return compare_main(argv + optind, argc - optind, html_path);
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
    if (handshakes && rate > 0)
        return cli_usage_error(cmd, "--rate and --handshakes cannot be combined");
    if (handshakes && pipeline_given)
        return cli_usage_error(cmd, "--pipeline does not apply to --handshakes (one message "
                                    "per connection)");
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

    static struct bench b; /* big (the interval ring); one per process */
    memset(&b, 0, sizeof(b));
    b.vt = vt;
    b.mode = handshakes ? MODE_HANDSHAKES : rate > 0 ? MODE_OPEN : MODE_CLOSED;
    b.udp = common.udp;
    b.stream = !common.udp && (vt->flags & PROTO_F_STREAM_ECHO);
    b.payload = text ? BENCH_TEXT : b.stream ? BENCH_LINE : BENCH_BYTES;
    b.size = (size_t)size;
    b.pipeline = (unsigned)pipeline;
    b.nconns = (unsigned)conns;
    b.nworkers = (unsigned)nthreads;
    b.timeout_ns = (uint64_t)(timeout * 1e9);
    b.period_ns = rate > 0 ? 1e9 / rate : 0;
    b.intervals = intervals || json || html_path;
    pthread_mutex_init(&b.ivl_mu, NULL);
    pthread_cond_init(&b.ivl_cv, NULL);

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
    FILE *json_f = NULL, *ivl_f = NULL, *html_f = NULL;
    struct bench_chist *chists = calloc((size_t)conns, sizeof(*chists));
    struct bconn *cs = calloc((size_t)conns, sizeof(*cs));
    struct worker *ws = calloc((size_t)nthreads, sizeof(*ws));
    uint64_t *conn_msgs = calloc((size_t)conns, sizeof(*conn_msgs));
    static struct bench_hist hist, hs_hist;
    for (long i = 0; cs && i < conns; i++)
        cs[i].fd = -1;
    for (long i = 0; ws && i < nthreads; i++)
        ws[i].tfd = -1;
    if (!cs || !ws || !chists || !conn_msgs) {
        fprintf(stderr, "secho: out of memory\n");
        goto out;
    }
    if (b.intervals) {
        for (unsigned i = 0; i < IVL_RING; i++) {
            b.ring[i].hist = malloc(sizeof(struct bench_hist));
            b.ring[i].hs = handshakes ? malloc(sizeof(struct bench_hist)) : NULL;
            if (!b.ring[i].hist || (handshakes && !b.ring[i].hs)) {
                fprintf(stderr, "secho: out of memory\n");
                goto out;
            }
            bench_hist_init(b.ring[i].hist);
            if (b.ring[i].hs)
                bench_hist_init(b.ring[i].hs);
        }
    }
    if (json_path && !(json_f = open_out(json_path)))
        goto out;
    if (intervals && !(ivl_f = open_out(ivl_path)))
        goto out;
    if (html_path && !(html_f = open_out(html_path)))
        goto out;
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
    if (net_resolve(common.host, common.port, common.udp ? SOCK_DGRAM : SOCK_STREAM, &b.addr, err,
                    sizeof(err)) < 0) {
        fprintf(stderr, "secho: cannot connect to %s: %s\n", hostport, err);
        goto out;
    }
    size_t frame = (size_t)size + 1024;
    /* Bench never queues more than the pipeline, so out_high is the hard cap. */
    b.cf = (struct conn_conf){
        .vt = vt,
        .pctx = NULL, /* set below, once the context exists */
        .role = PROTO_CLIENT,
        .in_limit = 2 * RECV_CHUNK + frame,
        .out_limit = (size_t)pipeline * frame + RECV_CHUNK,
        .out_high = (size_t)pipeline * frame + RECV_CHUNK,
        .read_chunk = RECV_CHUNK,
        .handshake_ms = (int)(timeout * 1000),
    };
    b.cf.pctx = b.ctx;
    if (handshakes && !common.udp) {
        /* Cycles connect in the loop; an unreachable server is reported at once. */
        int fd = net_connect_tcp(&b.addr, (int)(timeout * 1000));
        if (fd < 0) {
            fprintf(stderr, "secho: cannot connect to %s: %s\n", hostport, strerror(-fd));
            goto out;
        }
        close(fd);
    }
    uint64_t seed = now_ns() ^ ((uint64_t)getpid() << 32);
    for (long i = 0; i < conns; i++) {
        struct bconn *c = &cs[i];
        c->id = (unsigned)i;
        c->ch = &chists[i];
        bench_chist_init(c->ch);
        buf_init(&c->out, (size_t)pipeline * frame + RECV_CHUNK);
        buf_init(&c->hello, RECV_CHUNK);
        if (bench_vfy_init(&c->vfy, (size_t)size, (unsigned)pipeline) < 0) {
            fprintf(stderr, "secho: out of memory\n");
            goto out;
        }
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        c->rng = seed | 1;
        if (handshakes)
            continue; /* each cycle makes its own connection */
        c->fd =
            common.udp ? net_connect_udp(&b.addr) : net_connect_tcp(&b.addr, (int)(timeout * 1000));
        if (c->fd < 0) {
            fprintf(stderr, "secho: cannot connect to %s: %s\n", hostport, strerror(-c->fd));
            c->fd = -1;
            goto out;
        }
        if ((r = net_set_nonblock(c->fd, true)) < 0) {
            fprintf(stderr, "secho: %s: %s\n", hostport, strerror(-r));
            goto out;
        }
        if (!common.udp) {
            r = conn_init(&c->conn, &b.cf, &bench_conn_ops, c, loop_clock_ms());
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
        if (b.mode == MODE_OPEN &&
            (w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0) {
            fprintf(stderr, "secho: timer: %s\n", strerror(errno));
            goto out;
        }
        if (handshakes && !(w->hs_hist = malloc(sizeof(*w->hs_hist)))) {
            fprintf(stderr, "secho: out of memory\n");
            goto out;
        }
        if (w->hs_hist)
            bench_hist_init(w->hs_hist);
        if (b.intervals) {
            w->ivl_hist = malloc(sizeof(*w->ivl_hist));
            w->ivl_hs = handshakes ? malloc(sizeof(*w->ivl_hs)) : NULL;
            if (!w->ivl_hist || (handshakes && !w->ivl_hs)) {
                fprintf(stderr, "secho: out of memory\n");
                goto out;
            }
            bench_hist_init(w->ivl_hist);
            if (w->ivl_hs)
                bench_hist_init(w->ivl_hs);
        }
    }

    /* Workers run with SIGINT blocked, so that Ctrl-C reaches this thread's sleep. */
    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (start_at > 0) {
        double late_by = unix_now() - start_at;
        if (late_by > 0.001)
            fprintf(stderr, "secho: warning: starting %.3f s after --start-at\n", late_by);
        if (!wait_until(start_at)) {
            fprintf(stderr, "secho: interrupted before the start time\n");
            goto out;
        }
    }
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    uint64_t start = now_ns();
    double start_unix = unix_now() + warmup;
    b.t0 = start;
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
    uint64_t next_report = start + SEC_NS, last_done = 0, next_ivl = 0;
    bool all_dead = false, ivl_ok = true;
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
                     next_report - SEC_NS < b.warm_ns, &last_done, b.size);
            next_report += SEC_NS;
        }
        if (b.intervals && ivl_ok)
            ivl_ok = ivl_drain(&b, &next_ivl, start_unix, ivl_f, ivl_path);
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

    uint64_t end = atomic_load(&b.end_ns), echoes = 0;
    if (b.intervals) {
        /* Each worker's last share: the intervals up to the one holding the window's end. */
        uint64_t last = end > b.warm_ns ? (end - b.warm_ns - 1) / SEC_NS : 0;
        for (long i = 0; i < nthreads; i++)
            while (end > b.warm_ns && ws[i].ivl_idx <= last)
                ivl_publish(&ws[i]);
        if (ivl_ok)
            ivl_ok = ivl_drain(&b, &next_ivl, start_unix, ivl_f, ivl_path);
        if (!ivl_ok)
            goto out;
    }
    bench_hist_init(&hist);
    bench_hist_init(&hs_hist);
    struct bench_result res = {
        .label = label,
        .mode = mode_names[b.mode],
        .proto = vt->name,
        .transport = common.udp ? "udp" : "tcp",
        .host = common.host,
        .payload = text ? "text" : "random",
        .noise_name = cli_popt_applies(CLI_POPT_NOISE_NAME, vt)
                          ? (noise_name ? noise_name : "Noise_XX_25519_AESGCM_SHA256")
                          : NULL,
        .port = common.port,
        .connections = (uint64_t)conns,
        .threads = (unsigned)nthreads,
        .pipeline = (unsigned)pipeline,
        .size = (size_t)size,
        .rate = rate,
        .warmup_s = warmup,
        .start_unix = start_unix,
        .runs = 1,
        .hist = &hist,
        .conn_msgs = conn_msgs,
        .slowest_conn = -1,
        .hs_hist = handshakes ? &hs_hist : NULL,
        .points = b.points_failed ? NULL : b.points,
        .npoints = b.points_failed ? 0 : b.npoints,
    };
    res.duration_s = (double)(end - b.warm_ns) / 1e9;
    int last_err = 0;
    for (long i = 0; i < nthreads; i++) {
        struct worker *w = &ws[i];
        bench_hist_merge(&hist, &w->hist);
        if (w->hs_hist)
            bench_hist_merge(&hs_hist, w->hs_hist);
        res.msgs += w->msgs;
        res.mismatch += w->mismatch;
        res.lost += w->lost;
        res.conn_errors += w->conn_errors;
        res.late += w->late;
        res.handshakes += w->handshakes;
        if (w->lag_max > res.lag_max_ns)
            res.lag_max_ns = w->lag_max;
        echoes += atomic_load(&w->echoes);
        if (atomic_load(&w->last_err))
            last_err = atomic_load(&w->last_err);
    }
    for (long i = 0; i < conns; i++) {
        const struct bconn *c = &cs[i];
        conn_msgs[i] = c->msgs;
        if (c->ch->count) {
            uint64_t p99 = bench_chist_percentile(c->ch, 99);
            if (res.slowest_conn < 0 || p99 > res.slowest_p99_ns) {
                res.slowest_p99_ns = p99;
                res.slowest_conn = i;
            }
        }
        if (b.mode == MODE_OPEN)
            res.unsent += unsent_of(&b, c, b.warm_ns, end);
    }
    res.late += res.unsent;
    if (res.duration_s > 0) {
        res.msgs_per_s = (double)res.msgs / res.duration_s;
        res.handshakes_per_s = (double)res.handshakes / res.duration_s;
    }
    if (common.udp && echoes == 0) {
        /* Connected UDP sockets only learn of a missing server from an ICMP error, or from
         * silence: either way nothing was measured. */
        fprintf(stderr, "secho: cannot connect to %s: %s\n", hostport,
                last_err ? proto_strerror(last_err) : "no echo from the server");
        goto out;
    }
    if (handshakes && res.handshakes == 0 && last_err) {
        fprintf(stderr, "secho: cannot connect to %s: %s\n", hostport, proto_strerror(last_err));
        goto out;
    }
    struct bench_str s = {0};
    bool ok = true;
    if (json) {
        bench_format_json(&res, &s);
        ok = write_str(json_f ? json_f : stdout, &s, json_path);
        bench_str_free(&s);
    }
    if (ok && html_f) {
        bench_html_report(&res, NULL, &s);
        ok = write_file(html_path, html_f, &s);
        html_f = NULL;
        bench_str_free(&s);
    }
    if (ok && (!json || json_path)) {
        bench_format_summary(&res, &s);
        ok = write_str(stdout, &s, NULL);
        bench_str_free(&s);
    }
    if (!ok)
        goto out;
    if (all_dead) {
        fprintf(stderr, "secho: %s: every connection failed (last: %s)\n", hostport,
                proto_strerror(last_err));
        goto out;
    }
    status = 0;
out:
    for (long i = 0; cs && i < conns; i++)
        conn_release(vt, &cs[i]);
    for (long i = 0; ws && i < nthreads; i++) {
        loop_free(ws[i].loop);
        if (ws[i].tfd >= 0)
            close(ws[i].tfd);
        free(ws[i].hs_hist);
        free(ws[i].ivl_hist);
        free(ws[i].ivl_hs);
    }
    for (unsigned i = 0; i < IVL_RING; i++) {
        free(b.ring[i].hist);
        free(b.ring[i].hs);
    }
    if (b.ctx && vt->ctx_free)
        vt->ctx_free(b.ctx);
    scratch_remove(&scratch);
    if (json_f && json_f != stdout && fclose(json_f) != 0 && status == 0) {
        fprintf(stderr, "secho: cannot write %s: %s\n", json_path, strerror(errno));
        status = 1;
    }
    if (ivl_f && ivl_f != stdout && fclose(ivl_f) != 0 && status == 0) {
        fprintf(stderr, "secho: cannot write %s: %s\n", ivl_path, strerror(errno));
        status = 1;
    }
    if (html_f)
        fclose(html_f); /* the run failed: the page stays empty */
    free(b.points);
    pthread_mutex_destroy(&b.ivl_mu);
    pthread_cond_destroy(&b.ivl_cv);
    free(cs);
    free(ws);
    free(chists);
    free(conn_msgs);
    return status;
}
