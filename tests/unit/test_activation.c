/* SPDX-License-Identifier: MIT */
/* Unit tests for socket activation (LISTEN_FDS), sd_notify messages and the pid file. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "activation.h"
#include "check.h"

/* A socket of `type` bound to loopback (v6 when asked), listening if TCP and `listen_it`. */
static int make_sock(int family, int type, bool listen_it)
{
    int fd = socket(family, type, 0);
    if (fd < 0)
        return -1;
    if (family == AF_INET6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
            close(fd);
            return -2; /* no IPv6 here */
        }
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bind(fd, (struct sockaddr *)&a, sizeof(a));
    }
    if (type == SOCK_STREAM && listen_it)
        listen(fd, 8);
    return fd;
}

/* Puts fds[0..n-1] at descriptors 3.. and sets the variables as a service manager does. */
static void pass(const int *fds, int n, const char *names, long pid)
{
    int tmp[32];
    for (int i = 0; i < n; i++)
        tmp[i] = fcntl(fds[i], F_DUPFD, 100);
    for (int i = 0; i < n; i++) {
        close(fds[i]);
    }
    for (int i = 0; i < n; i++) {
        dup2(tmp[i], 3 + i);
        close(tmp[i]);
    }
    char v[32];
    snprintf(v, sizeof(v), "%ld", pid);
    setenv("LISTEN_PID", v, 1);
    snprintf(v, sizeof(v), "%d", n);
    setenv("LISTEN_FDS", v, 1);
    if (names)
        setenv("LISTEN_FDNAMES", names, 1);
    else
        unsetenv("LISTEN_FDNAMES");
}

static bool env_clear(void)
{
    return !getenv("LISTEN_PID") && !getenv("LISTEN_FDS") && !getenv("LISTEN_FDNAMES");
}

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void test_none(void)
{
    struct activation a;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    CHECK_INT(activation_take(&a, false), 0);
    CHECK_INT(a.n, 0);
    CHECK_INT(a.metrics.fd, -1);
    /* Meant for another process: ignored, and unset all the same. */
    int fd = make_sock(AF_INET, SOCK_STREAM, true);
    pass(&fd, 1, "echo", (long)getpid() + 1);
    CHECK_INT(activation_take(&a, false), 0);
    CHECK(env_clear());
    CHECK(is_open(3)); /* not ours: left alone */
    close(3);
    /* Zero sockets. */
    setenv("LISTEN_PID", "1", 1);
    char v[32];
    snprintf(v, sizeof(v), "%ld", (long)getpid());
    setenv("LISTEN_PID", v, 1);
    setenv("LISTEN_FDS", "0", 1);
    CHECK_INT(activation_take(&a, false), 0);
    CHECK(env_clear());
    /* Junk. */
    setenv("LISTEN_PID", v, 1);
    setenv("LISTEN_FDS", "2x", 1);
    CHECK_INT(activation_take(&a, false), -1);
    CHECK(env_clear());
}

static void test_tcp(void)
{
    struct activation a;
    int fds[3];
    fds[0] = make_sock(AF_INET6, SOCK_STREAM, true);
    bool v6 = fds[0] >= 0;
    if (!v6)
        fds[0] = make_sock(AF_INET, SOCK_STREAM, true);
    fds[1] = make_sock(AF_INET, SOCK_STREAM, true);
    fds[2] = make_sock(AF_INET, SOCK_STREAM, true);
    pass(fds, 3, "echo6:metrics:echo4", (long)getpid());
    CHECK_INT(activation_take(&a, false), 1);
    CHECK(env_clear());
    CHECK_INT(a.n, 2);
    CHECK_INT(a.metrics.fd, 4);
    CHECK_STR(a.metrics.name, "metrics");
    if (v6) {
        /* IPv4 first, whatever the order passed. */
        CHECK_INT(a.socks[0].fd, 5);
        CHECK_STR(a.socks[0].name, "echo4");
        CHECK_INT(a.socks[0].addr.ss.ss_family, AF_INET);
        CHECK_INT(a.socks[1].fd, 3);
        CHECK_INT(a.socks[1].addr.ss.ss_family, AF_INET6);
    }
    for (int fd = 3; fd <= 5; fd++) {
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    }
    /* Without names: "unknown". */
    activation_close(&a);
    CHECK(!is_open(3) && !is_open(4) && !is_open(5));
    fds[0] = make_sock(AF_INET, SOCK_STREAM, true);
    pass(fds, 1, NULL, (long)getpid());
    CHECK_INT(activation_take(&a, false), 1);
    CHECK_STR(a.socks[0].name, "unknown");
    activation_close(&a);
    /* Only a metrics socket: the echo listener is bound as usual. */
    fds[0] = make_sock(AF_INET, SOCK_STREAM, true);
    pass(fds, 1, "metrics", (long)getpid());
    CHECK_INT(activation_take(&a, true), 1);
    CHECK_INT(a.n, 0);
    CHECK_INT(a.metrics.fd, 3);
    activation_close(&a);
}

static void test_udp(void)
{
    struct activation a;
    int fds[2] = {make_sock(AF_INET, SOCK_DGRAM, false), make_sock(AF_INET, SOCK_DGRAM, false)};
    pass(fds, 2, "a:b", (long)getpid());
    CHECK_INT(activation_take(&a, true), 1);
    CHECK_INT(a.n, 2);
    CHECK_STR(a.socks[1].name, "b");
    activation_close(&a);
}

/* Each refused case closes every inherited descriptor and unsets the variables. */
static void refused(int *fds, int n, const char *names, bool udp)
{
    struct activation a;
    pass(fds, n, names, (long)getpid());
    CHECK_INT(activation_take(&a, udp), -1);
    CHECK(env_clear());
    for (int i = 0; i < n; i++)
        CHECK(!is_open(3 + i));
}

static void test_refused(void)
{
    int fds[2];
    fds[0] = make_sock(AF_INET, SOCK_DGRAM, false); /* UDP for a TCP server */
    refused(fds, 1, NULL, false);
    fds[0] = make_sock(AF_INET, SOCK_STREAM, true); /* TCP for a UDP server */
    fds[1] = make_sock(AF_INET, SOCK_DGRAM, false);
    refused(fds, 2, NULL, true);
    fds[0] = make_sock(AF_INET, SOCK_STREAM, false); /* not listening (Accept=yes) */
    refused(fds, 1, NULL, false);
    fds[0] = make_sock(AF_INET, SOCK_DGRAM, false); /* a UDP metrics socket */
    refused(fds, 1, "metrics", true);
    fds[0] = make_sock(AF_INET, SOCK_STREAM, true); /* two metrics sockets */
    fds[1] = make_sock(AF_INET, SOCK_STREAM, true);
    refused(fds, 2, "metrics:metrics", false);
    fds[0] = socket(AF_UNIX, SOCK_STREAM, 0); /* not IP */
    refused(fds, 1, NULL, false);
    /* 17 echo sockets: one more than is served (a metrics one would have been fine). */
    int many[17];
    for (int i = 0; i < 17; i++)
        many[i] = make_sock(AF_INET, SOCK_STREAM, true);
    refused(many, 17, NULL, false);
    int p[2];
    CHECK_INT(pipe(p), 0); /* not a socket */
    close(p[1]);
    fds[0] = p[0];
    refused(fds, 1, NULL, false);
}

static void test_notify(void)
{
    unsetenv("NOTIFY_SOCKET");
    CHECK_INT(activation_notify("READY=1"), 0);
    char path[] = "/tmp/secho-notify-XXXXXX";
    int tfd = mkstemp(path);
    close(tfd);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, path);
    CHECK_INT(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    setenv("NOTIFY_SOCKET", path, 1);
    CHECK_INT(activation_notify("READY=1\nSTATUS=listening on 127.0.0.1:9"), 1);
    char buf[128];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    CHECK_INT(n, (ssize_t)strlen("READY=1\nSTATUS=listening on 127.0.0.1:9"));
    buf[n > 0 ? n : 0] = '\0';
    CHECK_STR(buf, "READY=1\nSTATUS=listening on 127.0.0.1:9");
    close(fd);
    unlink(path);
    /* Abstract namespace: "@name". */
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un abs = {.sun_family = AF_UNIX};
    char name[64];
    int len = snprintf(name, sizeof(name), "@secho-test-%ld", (long)getpid());
    memcpy(abs.sun_path, name, (size_t)len);
    abs.sun_path[0] = '\0';
    CHECK_INT(bind(fd, (struct sockaddr *)&abs,
                   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)len)),
              0);
    setenv("NOTIFY_SOCKET", name, 1);
    CHECK_INT(activation_notify("STOPPING=1"), 1);
    n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    CHECK_INT(n, 10);
    close(fd);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    CHECK_INT(activation_notify("READY=1"), -EINVAL);
    unsetenv("NOTIFY_SOCKET");
}

static void test_pidfile(void)
{
    char dir[] = "/tmp/secho-pid-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], link[128];
    snprintf(path, sizeof(path), "%s/secho.pid", dir);
    snprintf(link, sizeof(link), "%s/link.pid", dir);
    /* A stale file (its process died) is taken over. */
    FILE *f = fopen(path, "w");
    fputs("999999999\n", f);
    fclose(f);
    int fd = pidfile_open(path);
    CHECK(fd >= 0);
    CHECK_INT(pidfile_write(fd), 0);
    char text[32] = "", want[32];
    f = fopen(path, "r");
    CHECK(fgets(text, sizeof(text), f) != NULL);
    fclose(f);
    snprintf(want, sizeof(want), "%ld\n", (long)getpid());
    CHECK_STR(text, want);
    /* While held, another server is refused. */
    CHECK_INT(pidfile_open(path), -1);
    pidfile_remove(path, fd);
    CHECK(access(path, F_OK) != 0);
    /* A symbolic link and a directory are refused. */
    CHECK_INT(symlink("/tmp/elsewhere.pid", link), 0);
    CHECK_INT(pidfile_open(link), -1);
    CHECK(access("/tmp/elsewhere.pid", F_OK) != 0);
    unlink(link);
    CHECK_INT(pidfile_open(dir), -1);
    rmdir(dir);
}

int main(void)
{
    test_none();
    test_tcp();
    test_udp();
    test_refused();
    test_notify();
    test_pidfile();
    return CHECK_DONE();
}
