/* SPDX-License-Identifier: MIT */
/*
 * A libuv echo server, written the way libuv's own examples write one: a peer for
 * bench/run.sh, not part of secho.
 *
 * TCP: every read is written straight back (uv_write owns the buffer until its callback);
 * reading pauses while more than 1 MiB of writes is queued on a connection. UDP: each
 * datagram is sent back to its sender with uv_udp_send.
 *
 * Usage: uv_echo tcp|udp PORT   (binds 127.0.0.1; PORT 0 picks a free one; prints
 * "listening on 127.0.0.1:PORT" on stdout once ready, like secho server).
 * Build: cc -O2 uv_echo.c -luv
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define READ_SIZE  65536
#define HIGH_WATER (1024 * 1024)

struct write_req {
    uv_write_t req;
    uv_buf_t buf;
};

static uv_loop_t *loop;

static void die(const char *what, int err)
{
    fprintf(stderr, "uv_echo: %s: %s\n", what, uv_strerror(err));
    exit(1);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    buf->base = malloc(READ_SIZE);
    buf->len = buf->base ? READ_SIZE : 0;
}

static void on_close(uv_handle_t *h)
{
    free(h);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    uv_stream_t *s = req->handle;
    free(w->buf.base);
    free(w);
    if (status < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (!uv_is_closing((uv_handle_t *)s) && uv_stream_get_write_queue_size(s) < HIGH_WATER)
        uv_read_start(s, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n <= 0) {
        free(buf->base);
        if (n < 0 && !uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, on_close);
        return;
    }
    struct write_req *w = malloc(sizeof(*w));
    if (!w) {
        free(buf->base);
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    w->buf = uv_buf_init(buf->base, (unsigned int)n);
    int err = uv_write(&w->req, s, &w->buf, 1, on_write);
    if (err < 0) {
        free(buf->base);
        free(w);
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (uv_stream_get_write_queue_size(s) >= HIGH_WATER)
        uv_read_stop(s);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof(*c));
    if (!c)
        return;
    uv_tcp_init(loop, c);
    if (uv_accept(server, (uv_stream_t *)c) == 0) {
        uv_tcp_nodelay(c, 1);
        uv_read_start((uv_stream_t *)c, on_alloc, on_read);
    } else {
        uv_close((uv_handle_t *)c, on_close);
    }
}

struct send_req {
    uv_udp_send_t req;
    uv_buf_t buf;
};

static void on_sent(uv_udp_send_t *req, int status)
{
    (void)status;
    struct send_req *r = (struct send_req *)req;
    free(r->buf.base);
    free(r);
}

static void on_datagram(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                        unsigned flags)
{
    (void)flags;
    if (n <= 0 || !from) { /* 0 with no address: nothing more to read now */
        free(buf->base);
        return;
    }
    struct send_req *r = malloc(sizeof(*r));
    if (!r) {
        free(buf->base);
        return;
    }
    r->buf = uv_buf_init(buf->base, (unsigned int)n);
    if (uv_udp_send(&r->req, u, &r->buf, 1, from, on_sent) < 0) {
        free(buf->base);
        free(r);
    }
}

static int bound_port(const struct sockaddr_storage *ss)
{
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "tcp") != 0 && strcmp(argv[1], "udp") != 0)) {
        fprintf(stderr, "usage: uv_echo tcp|udp PORT\n");
        return 2;
    }
    loop = uv_default_loop();
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", atoi(argv[2]), &addr);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int err;
    static uv_tcp_t tcp;
    static uv_udp_t udp;
    if (strcmp(argv[1], "tcp") == 0) {
        uv_tcp_init(loop, &tcp);
        if ((err = uv_tcp_bind(&tcp, (const struct sockaddr *)&addr, 0)) < 0)
            die("bind", err);
        if ((err = uv_listen((uv_stream_t *)&tcp, 1024, on_connection)) < 0)
            die("listen", err);
        uv_tcp_getsockname(&tcp, (struct sockaddr *)&ss, &len);
    } else {
        uv_udp_init(loop, &udp);
        if ((err = uv_udp_bind(&udp, (const struct sockaddr *)&addr, UV_UDP_REUSEADDR)) < 0)
            die("bind", err);
        if ((err = uv_udp_recv_start(&udp, on_alloc, on_datagram)) < 0)
            die("recv", err);
        uv_udp_getsockname(&udp, (struct sockaddr *)&ss, &len);
    }
    printf("listening on 127.0.0.1:%d\n", bound_port(&ss));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
