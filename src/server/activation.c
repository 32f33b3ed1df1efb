/* SPDX-License-Identifier: MIT */
/* Socket activation, service manager notifications and the pid file, without libsystemd. */
#include "activation.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The first inherited descriptor (SD_LISTEN_FDS_START). */
#define LISTEN_FDS_START 3
#define STR_(x)          #x
#define STR(x)           STR_(x)

/* More than this many inherited descriptors is refused: every one must be served. */
#define LISTEN_FDS_MAX (MODEL_MAX_ADDRS + 1)

/* Parses a decimal number in [min, max] that fills the whole string. */
static bool parse_num(const char *s, long min, long max, long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max || s[0] == '+' || s[0] == '-' || s[0] == ' ')
        return false;
    *out = v;
    return true;
}

static void unset_all(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

/* The i-th colon-separated name of names (NULL: none given) into out; "unknown", as systemd
 * calls an unnamed descriptor, when it has none. */
static void fd_name(const char *names, int i, char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    if (!names)
        return;
    const char *p = names;
    for (int k = 0; k < i; k++) {
        p = strchr(p, ':');
        if (!p)
            return;
        p++;
    }
    size_t len = strcspn(p, ":");
    if (len == 0)
        return;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

/* Checks one inherited descriptor; returns NULL, or why it cannot be served. */
static const char *check_sock(int fd, bool want_udp, bool metrics, struct net_addr *addr, char *why,
                              size_t whylen)
{
    int type = 0, domain = 0, listening = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        snprintf(why, whylen, "%s", errno == ENOTSOCK ? "not a socket" : strerror(errno));
        return why;
    }
    len = sizeof(domain);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return why;
    }
    if (domain != AF_INET && domain != AF_INET6)
        return "not an IPv4 or IPv6 socket (secho serves only those)";
    if (metrics && type != SOCK_STREAM)
        return "the metrics socket must be a TCP listener (ListenStream=)";
    if (!metrics && type != (want_udp ? SOCK_DGRAM : SOCK_STREAM))
        return want_udp ? "a stream socket, but this server serves udp (-t udp): use "
                          "ListenDatagram="
                        : "a datagram socket, but this server serves tcp: use -t udp, or "
                          "ListenStream=";
    if (type == SOCK_STREAM) {
        len = sizeof(listening);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening)
            return "not listening (a connection: Accept=yes is not supported, use Accept=no)";
    }
    if (net_local_addr(fd, addr) < 0) {
        snprintf(why, whylen, "getsockname: %s", strerror(errno));
        return why;
    }
    return NULL;
}

int activation_take(struct activation *a, bool udp)
{
    memset(a, 0, sizeof(*a));
    a->metrics.fd = -1;
    for (int i = 0; i < MODEL_MAX_ADDRS; i++)
        a->socks[i].fd = -1;
    const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
    long pid, n;
    if (!pid_s || !fds_s || !parse_num(pid_s, 1, INT_MAX, &pid) || pid != (long)getpid()) {
        unset_all();
        return 0;
    }
    if (!parse_num(fds_s, 0, INT_MAX - LISTEN_FDS_START, &n)) {
        fprintf(stderr, "secho: inherited sockets: invalid LISTEN_FDS '%s'\n", fds_s);
        unset_all();
        return -1;
    }
    char *names = getenv("LISTEN_FDNAMES") ? strdup(getenv("LISTEN_FDNAMES")) : NULL;
    unset_all();
    if (n == 0) {
        free(names);
        return 0;
    }
    /* Every inherited descriptor is ours to close from here on, used or not. */
    for (long i = 0; i < n; i++)
        (void)fcntl((int)(LISTEN_FDS_START + i), F_SETFD, FD_CLOEXEC);
    if (n > LISTEN_FDS_MAX) {
        fprintf(stderr, "secho: inherited sockets: %ld passed, at most %d can be served\n", n,
                LISTEN_FDS_MAX);
        for (long i = 0; i < n; i++)
            close((int)(LISTEN_FDS_START + i));
        free(names);
        return -1;
    }
    struct activation_sock got[LISTEN_FDS_MAX];
    int ngot = 0, failed = -1;
    const char *reason = NULL;
    char why[128];
    for (int i = 0; i < (int)n && failed < 0; i++) {
        struct activation_sock *s = &got[ngot];
        s->fd = LISTEN_FDS_START + i;
        fd_name(names, i, s->name, sizeof(s->name));
        bool metrics = strcmp(s->name, ACTIVATION_METRICS_NAME) == 0;
        reason = check_sock(s->fd, udp, metrics, &s->addr, why, sizeof(why));
        if (!reason && metrics && a->metrics.fd >= 0)
            reason = "a second socket named " ACTIVATION_METRICS_NAME;
        if (!reason && !metrics && ngot >= MODEL_MAX_ADDRS)
            reason = "more echo sockets than can be served (at most " STR(MODEL_MAX_ADDRS) ")";
        if (!reason && net_set_nonblock(s->fd, true) < 0)
            reason = "cannot make it non-blocking";
        if (reason) {
            failed = i;
        } else if (metrics) {
            a->metrics = *s;
        } else {
            ngot++;
        }
    }
    free(names);
    if (failed >= 0) {
        fprintf(stderr, "secho: inherited socket %d: %s\n", LISTEN_FDS_START + failed, reason);
        for (long i = 0; i < n; i++)
            close((int)(LISTEN_FDS_START + i));
        a->metrics.fd = -1;
        return -1;
    }
    /* IPv4 first, as when binding ourselves, each family in the order passed. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ngot; i++)
            if ((got[i].addr.ss.ss_family == AF_INET) == (pass == 0))
                a->socks[a->n++] = got[i];
    return 1;
}

void activation_close(struct activation *a)
{
    for (int i = 0; i < a->n; i++) {
        if (a->socks[i].fd >= 0)
            close(a->socks[i].fd);
        a->socks[i].fd = -1;
    }
    if (a->metrics.fd >= 0)
        close(a->metrics.fd);
    a->metrics.fd = -1;
}

int activation_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sun.sun_path))
        return -EINVAL;
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@')
        sun.sun_path[0] = '\0'; /* an abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    ssize_t w;
    do
        w = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT,
                   (const struct sockaddr *)&sun, alen);
    while (w < 0 && errno == EINTR);
    int e = w < 0 ? -errno : 1;
    close(fd);
    return e;
}

int pidfile_open(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
    if (fd < 0) {
        fprintf(stderr, "secho: cannot open pid file %s: %s\n", path,
                errno == ELOOP ? "a symbolic link" : strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "secho: cannot use pid file %s: not a regular file\n", path);
        close(fd);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char held[32] = "";
        ssize_t r = pread(fd, held, sizeof(held) - 1, 0);
        held[r > 0 ? r : 0] = '\0';
        held[strcspn(held, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            fprintf(stderr, "secho: pid file %s: in use by process %s (another server runs)\n",
                    path, held[0] ? held : "?");
        else
            fprintf(stderr, "secho: cannot lock pid file %s: %s\n", path, strerror(e));
        close(fd);
        return -1;
    }
    return fd;
}

int pidfile_write(int fd)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0)
        return -errno;
    if (pwrite(fd, text, (size_t)n, 0) != n)
        return errno ? -errno : -EIO;
    return 0;
}

void pidfile_remove(const char *path, int fd)
{
    if (fd < 0)
        return;
    (void)unlink(path);
    close(fd);
}
