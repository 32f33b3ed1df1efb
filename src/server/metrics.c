/* SPDX-License-Identifier: MIT */
/* The --metrics responder: a poll loop on its own thread, a bounded set of scrapes, each
 * answered once (parsed by proto/http.c, rendered by engine/stats.c) and closed. */
#include "metrics.h"
#include "model.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "stats.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_CONTENT_TYPE "text/plain; charset=utf-8"

enum mstate { M_FREE, M_READ, M_WRITE, M_LINGER };

struct mclient {
    enum mstate state;
    bool busy; /* taken beyond METRICS_MAX_CLIENTS: answered 503 at once */
    int fd;
    uint64_t deadline;
    char peer[NET_ADDRSTRLEN];
    struct http_req req;
    char *out; /* the whole answer */
    size_t out_len, out_off;
};

struct metrics {
    struct server *srv;
    int lfd;
    int wakefd;
    pthread_t thread;
    bool started;
    struct stats_info info;
    /* The scrapes served, and as many more slots for telling others 503 (an answer needs
     * its linger, or closing on their unread request would reset it away). */
    struct mclient c[2 * METRICS_MAX_CLIENTS];
};

bool metrics_parse_spec(const char *spec, char *host, size_t hostcap, uint16_t *port)
{
    const char *colon;
    size_t hlen;
    const char *h = spec;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':')
            return false;
        h = spec + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon)
            return false;
        hlen = (size_t)(colon - spec);
        if (memchr(spec, ':', hlen))
            return false; /* an IPv6 address needs its brackets */
    }
    if (hlen == 0 || hlen >= hostcap)
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return net_parse_port(colon + 1, port);
}

struct metrics *metrics_open(struct server *srv, const char *spec, int fd)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (!m) {
        fprintf(stderr, "secho: out of memory\n");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    m->srv = srv;
    m->lfd = fd;
    m->wakefd = -1;
    if (m->lfd < 0) {
        char host[256], err[256];
        uint16_t port = 0;
        struct net_addr addr;
        if (!metrics_parse_spec(spec, host, sizeof(host), &port)) {
            fprintf(stderr, "secho: invalid --metrics '%s' (use HOST:PORT)\n", spec);
            free(m);
            return NULL;
        }
        if (net_resolve(host, port, SOCK_STREAM, &addr, err, sizeof(err)) < 0) {
            fprintf(stderr, "secho: cannot resolve %s: %s\n", host, err);
            free(m);
            return NULL;
        }
        m->lfd = net_listen_tcp(&addr, 0, 64);
        if (m->lfd < 0) {
            char text[NET_ADDRSTRLEN];
            net_format_addr((const struct sockaddr *)&addr.ss, text, sizeof(text));
            fprintf(stderr, "secho: cannot listen on %s: %s\n", text, strerror(-m->lfd));
            free(m);
            return NULL;
        }
    }
    m->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m->wakefd < 0) {
        fprintf(stderr, "secho: cannot start the metrics listener: %s\n", strerror(errno));
        close(m->lfd);
        free(m);
        return NULL;
    }
    struct net_addr bound;
    char text[NET_ADDRSTRLEN] = "?", v[LOG_VALUE_MAX(NET_ADDRSTRLEN)];
    if (net_local_addr(m->lfd, &bound) == 0)
        net_format_addr((const struct sockaddr *)&bound.ss, text, sizeof(text));
    log_event(LOG_INFO, "listening", "addr=%s transport=tcp service=metrics%s",
              log_value(v, sizeof(v), text), fd >= 0 ? " fdname=metrics" : "");

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->info = (struct stats_info){
        .version = SECHO_VERSION,
        .proto = srv->conf.proto->name,
        .transport = srv->conf.udp ? "udp" : "tcp",
        .model = model_name(srv->conf.model),
        .start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9,
    };
    for (int i = 0; i < 2 * METRICS_MAX_CLIENTS; i++)
        m->c[i].fd = -1;
    return m;
}

static void client_close(struct mclient *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->out);
    c->out = NULL;
    c->state = M_FREE;
    c->busy = false;
}

/* Makes the answer to the request (or to its refusal, status = -result). */
static void answer(struct metrics *m, struct mclient *c, int result, uint64_t now)
{
    int status = result == HTTP_DONE ? http_metrics_status(&c->req) : -result;
    bool head_only = result == HTTP_DONE && http_req_method_is(&c->req, "HEAD");
    struct buf body;
    buf_init(&body, METRICS_BODY_MAX);
    const char *type = TEXT_CONTENT_TYPE;
    if (status == 200) {
        if (stats_format_prometheus(&m->srv->stats, &m->info, &body) == 0) {
            type = PROM_CONTENT_TYPE;
        } else {
            status = 500;
            buf_reset(&body);
        }
    }
    if (status != 200) {
        char text[96];
        int k = snprintf(text, sizeof(text), "%d %s\n", status, http_reason(status));
        if (buf_append(&body, text, (size_t)k) < 0)
            buf_reset(&body);
        char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)], ev[LOG_VALUE_MAX(96)];
        text[strcspn(text, "\n")] = '\0';
        log_event(LOG_WARN, "error", "peer=%s service=metrics status=%d error=%s",
                  log_value(pv, sizeof(pv), c->peer), status, log_value(ev, sizeof(ev), text));
    }
    char head[512];
    int hl = http_response_head(head, sizeof(head), status, type, buf_len(&body));
    size_t blen = head_only ? 0 : buf_len(&body);
    c->out = hl > 0 ? malloc((size_t)hl + blen + 1) : NULL;
    if (!c->out) {
        buf_free_nowipe(&body);
        client_close(c);
        return;
    }
    memcpy(c->out, head, (size_t)hl);
    if (blen)
        memcpy(c->out + hl, buf_head(&body), blen);
    buf_free_nowipe(&body);
    c->out_len = (size_t)hl + blen;
    c->out_off = 0;
    c->state = M_WRITE;
    (void)now;
}

static void on_readable(struct metrics *m, struct mclient *c, uint64_t now)
{
    uint8_t data[2048];
    ssize_t n = recv(c->fd, data, sizeof(data), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (c->state == M_LINGER) {
        if (n <= 0)
            client_close(c); /* the peer's FIN (or an error): done */
        return;
    }
    if (n <= 0) {
        client_close(c); /* gone before it finished asking */
        return;
    }
    size_t used;
    int r = http_req_feed(&c->req, data, (size_t)n, &used);
    if (r != HTTP_NEED_MORE)
        answer(m, c, r, now);
}

static void on_writable(struct mclient *c, uint64_t now)
{
    while (c->out_off < c->out_len) {
        ssize_t w =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                client_close(c);
            return;
        }
        c->out_off += (size_t)w;
    }
    (void)shutdown(c->fd, SHUT_WR);
    free(c->out);
    c->out = NULL;
    c->state = M_LINGER;
    c->deadline = now + METRICS_LINGER_MS;
}

/* Sets c up to send `text` (a whole answer), then linger. */
static int answer_text(struct mclient *c, const char *text)
{
    size_t n = strlen(text);
    c->out = malloc(n);
    if (!c->out)
        return -1;
    memcpy(c->out, text, n);
    c->out_len = n;
    c->out_off = 0;
    c->state = M_WRITE;
    return 0;
}

static void on_accept(struct metrics *m, uint64_t now)
{
    for (int k = 0; k < 16; k++) {
        struct net_addr peer;
        int fd = net_accept(m->lfd, &peer);
        if (fd < 0)
            return; /* -EAGAIN, or out of descriptors: the next poll tries again */
        int serving = 0;
        struct mclient *c = NULL;
        for (int i = 0; i < 2 * METRICS_MAX_CLIENTS; i++) {
            if (m->c[i].state != M_FREE && !m->c[i].busy)
                serving++;
            else if (m->c[i].state == M_FREE && !c)
                c = &m->c[i];
        }
        char text[NET_ADDRSTRLEN];
        net_format_addr((const struct sockaddr *)&peer.ss, text, sizeof(text));
        if (serving >= METRICS_MAX_CLIENTS || !c) {
            char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)];
            log_event(LOG_WARN, "denied", "peer=%s service=metrics reason=max_conns limit=%d",
                      log_value(pv, sizeof(pv), text), METRICS_MAX_CLIENTS);
        }
        if (!c) {
            close(fd); /* even the 503 slots are taken */
            continue;
        }
        c->fd = fd;
        c->state = M_READ;
        c->busy = serving >= METRICS_MAX_CLIENTS;
        c->deadline = now + METRICS_TIMEOUT_MS;
        memcpy(c->peer, text, sizeof(text));
        http_req_init(&c->req);
        c->out = NULL;
        if (c->busy && answer_text(c, "HTTP/1.1 503 Service Unavailable\r\n"
                                      "Content-Type: " TEXT_CONTENT_TYPE "\r\n"
                                      "Content-Length: 24\r\n"
                                      "Connection: close\r\n\r\n"
                                      "503 Service Unavailable\n") < 0)
            client_close(c);
    }
}

static void *metrics_main(void *arg)
{
    struct metrics *m = arg;
    for (;;) {
        uint64_t now = loop_clock_ms();
        struct pollfd p[2 + 2 * METRICS_MAX_CLIENTS];
        int idx[2 + 2 * METRICS_MAX_CLIENTS];
        int np = 0, timeout = -1;
        p[np++] = (struct pollfd){.fd = m->wakefd, .events = POLLIN};
        p[np++] = (struct pollfd){.fd = m->lfd, .events = POLLIN};
        for (int i = 0; i < 2 * METRICS_MAX_CLIENTS; i++) {
            struct mclient *c = &m->c[i];
            if (c->state == M_FREE)
                continue;
            if (now >= c->deadline) {
                if (c->state != M_LINGER) {
                    char pv[LOG_VALUE_MAX(NET_ADDRSTRLEN)];
                    log_event(LOG_WARN, "timeout", "peer=%s service=metrics what=request",
                              log_value(pv, sizeof(pv), c->peer));
                }
                client_close(c);
                continue;
            }
            int left = (int)(c->deadline - now);
            if (timeout < 0 || left < timeout)
                timeout = left;
            idx[np] = i;
            p[np++] = (struct pollfd){.fd = c->fd,
                                      .events = (short)(c->state == M_WRITE ? POLLOUT : POLLIN)};
        }
        int r = poll(p, (nfds_t)np, timeout);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        if (p[0].revents)
            break; /* metrics_stop */
        now = loop_clock_ms();
        for (int k = 2; k < np; k++) {
            struct mclient *c = &m->c[idx[k]];
            if (!p[k].revents || c->state == M_FREE)
                continue;
            if (c->state == M_WRITE)
                on_writable(c, now);
            else
                on_readable(m, c, now);
            if (c->state == M_WRITE)
                on_writable(c, now); /* the answer usually fits the socket at once */
        }
        if (p[1].revents & POLLIN)
            on_accept(m, now);
    }
    return NULL;
}

int metrics_start(struct metrics *m)
{
    int e = pthread_create(&m->thread, NULL, metrics_main, m);
    if (e != 0)
        return -e;
    m->started = true;
    return 0;
}

void metrics_stop(struct metrics *m)
{
    if (!m)
        return;
    if (m->started) {
        uint64_t one = 1;
        ssize_t w = write(m->wakefd, &one, sizeof(one));
        (void)w;
        pthread_join(m->thread, NULL);
    }
    for (int i = 0; i < 2 * METRICS_MAX_CLIENTS; i++)
        if (m->c[i].state != M_FREE)
            client_close(&m->c[i]);
    if (m->lfd >= 0)
        close(m->lfd);
    if (m->wakefd >= 0)
        close(m->wakefd);
    free(m);
}
