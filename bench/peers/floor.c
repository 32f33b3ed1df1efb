/* SPDX-License-Identifier: MIT */
/*
 * The machine's floor for an echo: one write plus one read of SIZE bytes on a loopback
 * TCP pair, in one thread, repeated ITERS times; and a bare system call (getppid through
 * syscall(2), which no libc caches). No server does less per echo than one read and one
 * write, so bench/run.sh reads a server's CPU time per echo against rw_us.
 *
 * Usage: floor SIZE ITERS   prints one JSON line:
 *   {"size":SIZE,"iters":ITERS,"rw_us":..,"rw_cpu_us":..,"syscall_us":..}
 * rw_us is wall time per write+read, rw_cpu_us the process's CPU time (user+system) per
 * write+read, syscall_us wall time per bare system call. Not part of secho.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A connected loopback TCP pair: *w is non-blocking (the writer), *r blocking. */
static void tcp_pair(int *w, int *r)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) < 0)
        die("listen");
    *w = socket(AF_INET, SOCK_STREAM, 0);
    if (*w < 0 || connect(*w, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("connect");
    *r = accept(l, NULL, NULL);
    if (*r < 0)
        die("accept");
    close(l);
    int one = 1;
    setsockopt(*w, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(*r, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(*w, F_SETFL, fcntl(*w, F_GETFL) | O_NONBLOCK);
}

/* One write of size bytes and the reads that take them back (one, unless the kernel
 * splits a large write); a write the socket cannot take whole is finished after reading. */
static void write_read(int w, int r, char *buf, size_t size)
{
    size_t sent = 0, got = 0;
    while (got < size) {
        if (sent < size) {
            ssize_t n = write(w, buf + sent, size - sent);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                die("write");
            if (n > 0)
                sent += (size_t)n;
        }
        if (got < sent) {
            ssize_t n = read(r, buf + got, sent - got);
            if (n < 0 && errno != EINTR)
                die("read");
            if (n == 0) {
                fprintf(stderr, "floor: unexpected EOF\n");
                exit(1);
            }
            if (n > 0)
                got += (size_t)n;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || atol(argv[1]) <= 0 || atol(argv[2]) <= 0) {
        fprintf(stderr, "usage: floor SIZE ITERS\n");
        return 2;
    }
    size_t size = (size_t)atol(argv[1]);
    long iters = atol(argv[2]);
    char *buf = malloc(size);
    if (!buf)
        die("malloc");
    memset(buf, 'x', size);
    int w, r;
    tcp_pair(&w, &r);
    for (long i = 0; i < iters / 10 + 1; i++) /* warm the path and the caches */
        write_read(w, r, buf, size);
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    for (long i = 0; i < iters; i++)
        write_read(w, r, buf, size);
    double t1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);
    long calls = iters * 10;
    double s0 = now(CLOCK_MONOTONIC);
    for (long i = 0; i < calls; i++)
        syscall(SYS_getppid);
    double s1 = now(CLOCK_MONOTONIC);
    printf("{\"size\":%zu,\"iters\":%ld,\"rw_us\":%.3f,\"rw_cpu_us\":%.3f,\"syscall_us\":%.4f}\n",
           size, iters, (t1 - t0) * 1e6 / (double)iters, (c1 - c0) * 1e6 / (double)iters,
           (s1 - s0) * 1e6 / (double)calls);
    return 0;
}
