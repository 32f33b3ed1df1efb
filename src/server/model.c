/* SPDX-License-Identifier: MIT */
/* What every I/O model shares: the readiness line. */
#include "io.h"

#include <stdio.h>

#include "log.h"

void server_ready(struct server *srv, const struct net_addr *bound)
{
    char addr[NET_ADDRSTRLEN];
    net_format_addr((const struct sockaddr *)&bound->ss, addr, sizeof(addr));
    log_event(LOG_INFO, "listening", "addr=%s transport=%s proto=%s model=%s", addr,
              srv->conf.udp ? "udp" : "tcp", srv->conf.proto->name,
              srv->conf.model == SERVER_THREADS ? "threads"
              : srv->conf.model == SERVER_EPOLL ? "epoll"
                                                : "reactors");
    printf("listening on %s\n", addr);
    fflush(stdout);
}
