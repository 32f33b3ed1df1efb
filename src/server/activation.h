/* SPDX-License-Identifier: MIT */
/* Running under a service manager without libsystemd: sockets inherited through socket
 * activation (the LISTEN_FDS protocol of sd_listen_fds(3)), readiness and stopping
 * notifications (the NOTIFY_SOCKET protocol of sd_notify(3)), and the --pid-file. */
#ifndef SECHO_ACTIVATION_H
#define SECHO_ACTIVATION_H

#include <stdbool.h>

#include "model.h"
#include "net.h"

/* The name (FileDescriptorName= in a .socket unit, LISTEN_FDNAMES) of an inherited TCP
 * listener that serves --metrics instead of echo. */
#define ACTIVATION_METRICS_NAME "metrics"

/* The longest file descriptor name the protocol allows (systemd: 255). */
#define ACTIVATION_NAME_MAX 255

struct activation_sock {
    int fd; /* -1 once handed over */
    struct net_addr addr;
    char name[ACTIVATION_NAME_MAX + 1];
};

struct activation {
    /* The echo sockets: TCP listeners or UDP sockets, per the server's transport, IPv4 ones
     * first (each family in the order the service manager passed them). */
    int n;
    struct activation_sock socks[MODEL_MAX_ADDRS];
    /* The socket named ACTIVATION_METRICS_NAME, or fd -1. */
    struct activation_sock metrics;
};

/*
 * Takes the sockets the service manager passed, as sd_listen_fds_with_names(unset=1) does:
 * when LISTEN_PID is this process, LISTEN_FDS sockets from fd 3 on, named by the
 * colon-separated LISTEN_FDNAMES; the three variables are unset in every case, so that no
 * child would take them for its own. Each socket is made close-on-exec and non-blocking.
 * Every echo socket must be an IPv4 or IPv6 socket of the server's transport (`udp`), and a
 * TCP one must be listening (Accept=no); the one named "metrics" must be a TCP listener.
 * Returns 1 when at least one socket was inherited, 0 when none was (a->n is 0 and
 * a->metrics.fd -1), or -1 after printing "secho: inherited socket N: REASON" on stderr with
 * every inherited socket closed.
 */
int activation_take(struct activation *a, bool udp);
/* Closes every socket still held. */
void activation_close(struct activation *a);

/*
 * Sends `state` (e.g. "READY=1\nSTATUS=...") to the service manager's notification socket
 * ($NOTIFY_SOCKET: a path, or an abstract name starting with '@'), as sd_notify(3) does;
 * nothing when it is unset. Safe from any thread; never blocks for long (a datagram on a
 * local socket). Returns 1 when sent, 0 when there is no socket, -errno on failure.
 */
int activation_notify(const char *state);

/*
 * --pid-file: opens (creating it 0644 if absent) and locks the file with flock, so that a
 * second server given the same file is refused while the first runs ("secho: PATH: in use by
 * process N"), whatever the file held before: a stale pid file of a process that died is
 * simply taken over. Refuses anything that is not a regular file, and a symbolic link.
 * Returns the descriptor (to keep until pidfile_remove), or -1 after printing why.
 */
int pidfile_open(const char *path);
/* Writes this process's pid into the locked file (replacing what it held). Returns 0 or
 * -errno. */
int pidfile_write(int fd);
/* Removes the file (still locked, so no other server holds it) and closes it. */
void pidfile_remove(const char *path, int fd);

#endif
