/* SPDX-License-Identifier: MIT */
/*
 * CPU time of a process tree, for bench/run.sh and bench/concurrency.sh: the process
 * CPU clock (clock_getcpuclockid: user+system of every thread, exited ones included,
 * in nanoseconds) of PID and of each live descendant, plus the user+system time of
 * children they have already reaped (cutime+cstime of /proc/PID/stat). utime+stime
 * from /proc/PID/stat would do for one process, but they are rounded to clock ticks per
 * process, and a server that forks (socat: a process per connection or per datagram)
 * would lose up to a tick per child per sample.
 *
 * Usage: cputime PID   prints "NS THREADS RSS_KIB" for the tree (threads and RSS of
 * the live processes). Not part of secho.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#define MAX_PROCS 4096

static long long ticks_ns;

/* Adds PID's figures; appends its children to the queue. */
static void visit(long pid, long *queue, int *n, long long *ns, long *threads, long *rss_kb)
{
    clockid_t id;
    struct timespec ts;
    if (clock_getcpuclockid((pid_t)pid, &id) == 0 && clock_gettime(id, &ts) == 0)
        *ns += (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(line, sizeof(line), f)) {
            char *p = strrchr(line, ')');
            long long v[24] = {0};
            /* Fields from 3 (state) on; v[k] is field k + 3. */
            for (int k = 0; p && k < 24; k++) {
                p = strchr(p + 1, ' ');
                if (p)
                    v[k] = strtoll(p + 1, NULL, 10);
            }
            *ns += (v[13] + v[14]) * ticks_ns; /* cutime, cstime */
            *threads += (long)v[17];
            *rss_kb += (long)(v[21] * (sysconf(_SC_PAGESIZE) / 1024));
        }
        fclose(f);
    }
    snprintf(path, sizeof(path), "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char cpath[320];
        snprintf(cpath, sizeof(cpath), "/proc/%ld/task/%s/children", pid, e->d_name);
        FILE *c = fopen(cpath, "r");
        if (!c)
            continue;
        long child;
        while (*n < MAX_PROCS && fscanf(c, "%ld", &child) == 1)
            queue[(*n)++] = child;
        fclose(c);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    if (argc != 2 || atol(argv[1]) <= 0) {
        fprintf(stderr, "usage: cputime PID\n");
        return 2;
    }
    ticks_ns = 1000000000LL / sysconf(_SC_CLK_TCK);
    static long queue[MAX_PROCS];
    int n = 0;
    queue[n++] = atol(argv[1]);
    long long ns = 0;
    long threads = 0, rss_kb = 0;
    for (int i = 0; i < n; i++)
        visit(queue[i], queue, &n, &ns, &threads, &rss_kb);
    printf("%lld %ld %ld\n", ns, threads, rss_kb);
    return 0;
}
