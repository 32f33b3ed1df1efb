/* SPDX-License-Identifier: MIT */
/* Unit tests for the server's counters: per-thread slots, sums, and their renderings. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "stats.h"

static void test_no_slot(void)
{
    /* A thread that entered no worker counts nothing, and that is not an error. */
    stats_add(STATS_MSGS, 5);
    stats_end("eof");
    CHECK(stats_tls == NULL);
    struct stats st;
    CHECK_INT(stats_init(&st, 2), 0);
    uint64_t v[STATS_N];
    stats_total(&st, v);
    CHECK_INT(v[STATS_MSGS], 0);
    stats_enter(NULL, 0, NULL); /* no stats: nothing */
    CHECK(stats_tls == NULL);
    stats_enter(&st, 5, NULL); /* no such worker: nothing */
    CHECK(stats_tls == NULL);
    stats_free(&st);
}

static void test_own_slot(void)
{
    struct stats st;
    CHECK_INT(stats_init(&st, 3), 0);
    stats_enter(&st, 1, NULL);
    stats_add(STATS_CONNS, 3);
    stats_add(STATS_BYTES_IN, 1000);
    stats_end("eof");
    stats_end("exit");
    stats_end("evicted");
    stats_end("bogus"); /* counted as an error rather than lost */
    stats_leave();
    stats_add(STATS_MSGS, 1); /* after leaving: not counted */
    uint64_t v[STATS_N];
    stats_read(&st, 1, v);
    CHECK_INT(v[STATS_CONNS], 3);
    CHECK_INT(v[STATS_CLOSED], 4);
    CHECK_INT(v[STATS_END_EOF], 1);
    CHECK_INT(v[STATS_END_EXIT], 1);
    CHECK_INT(v[STATS_END_EVICTED], 1);
    CHECK_INT(v[STATS_END_ERROR], 1);
    CHECK_INT(v[STATS_BYTES_IN], 1000);
    CHECK_INT(v[STATS_MSGS], 0);
    CHECK_INT(stats_open(v), 0); /* more closed than opened reads as none open */
    stats_read(&st, 0, v);
    CHECK_INT(v[STATS_CONNS], 0);
    /* The own slot keeps its counts after leaving and entering again. */
    stats_enter(&st, 1, NULL);
    stats_add(STATS_CONNS, 2);
    stats_leave();
    stats_read(&st, 1, v);
    CHECK_INT(v[STATS_CONNS], 5);
    CHECK_INT(stats_open(v), 1);
    /* Only the workers in use are totalled. */
    stats_set_workers(&st, 1);
    stats_total(&st, v);
    CHECK_INT(v[STATS_CONNS], 0);
    stats_set_workers(&st, 3);
    stats_total(&st, v);
    CHECK_INT(v[STATS_CONNS], 5);
    stats_free(&st);
}

/* Many short threads with slots of their own (as -m threads), and one long one on the
 * worker's own slot, counting while the main thread reads. */
struct job {
    struct stats *st;
    int n;
};

static void *short_thread(void *arg)
{
    struct job *j = arg;
    struct stats_slot slot;
    stats_enter(j->st, 0, &slot);
    stats_add(STATS_CONNS, 1);
    for (int i = 0; i < j->n; i++) {
        stats_add(STATS_MSGS, 1);
        stats_add(STATS_BYTES_OUT, 10);
    }
    stats_end("eof");
    stats_leave();
    return NULL;
}

static void *long_thread(void *arg)
{
    struct job *j = arg;
    stats_enter(j->st, 1, NULL);
    for (int i = 0; i < j->n; i++)
        stats_add(STATS_MSGS, 1);
    stats_leave();
    return NULL;
}

static void test_threads(void)
{
    struct stats st;
    CHECK_INT(stats_init(&st, 2), 0);
    struct job j = {&st, 10000};
    pthread_t th[16], lt;
    pthread_create(&lt, NULL, long_thread, &j);
    for (int i = 0; i < 16; i++)
        pthread_create(&th[i], NULL, short_thread, &j);
    uint64_t last = 0;
    for (int k = 0; k < 200; k++) {
        uint64_t v[STATS_N];
        stats_total(&st, v);
        CHECK(v[STATS_MSGS] >= last); /* never goes back while threads come and go */
        last = v[STATS_MSGS];
    }
    for (int i = 0; i < 16; i++)
        pthread_join(th[i], NULL);
    pthread_join(lt, NULL);
    uint64_t v[STATS_N];
    stats_read(&st, 0, v);
    CHECK_INT(v[STATS_CONNS], 16);
    CHECK_INT(v[STATS_CLOSED], 16);
    CHECK_INT(v[STATS_END_EOF], 16);
    CHECK_INT(v[STATS_MSGS], 16 * 10000);
    CHECK_INT(v[STATS_BYTES_OUT], 16 * 100000);
    CHECK(st.w[0].slots == &st.w[0].own); /* every short slot left the list */
    CHECK(st.w[0].own.next == NULL);
    stats_total(&st, v);
    CHECK_INT(v[STATS_MSGS], 17 * 10000);
    stats_free(&st);
}

static void test_line(void)
{
    uint64_t v[STATS_N] = {0};
    v[STATS_CONNS] = 7;
    v[STATS_CLOSED] = 5;
    v[STATS_MSGS] = 42;
    v[STATS_ERR_RECORD_TIMEOUT] = 3;
    char out[1024];
    size_t n = stats_format_line(v, out, sizeof(out));
    CHECK_INT(n, strlen(out));
    CHECK(strncmp(out, "conns_open=2 conns=7 msgs=42 bytes_in=0 ", 40) == 0);
    CHECK(strstr(out, " errors_record_timeout=3") != NULL);
    CHECK(strstr(out, " disconnects_evicted=0") != NULL);
    CHECK(strstr(out, "closed=") == NULL);
    /* Every pair is key=number. */
    char *save = NULL, copy[1024];
    strcpy(copy, out);
    int pairs = 0;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        CHECK(eq && eq > tok && eq[1]);
        for (char *d = eq + 1; eq && *d; d++)
            CHECK(*d >= '0' && *d <= '9');
        pairs++;
    }
    CHECK_INT(pairs, STATS_N); /* conns_open stands for closed */
    /* Cut to fit, still terminated. */
    char small[16];
    n = stats_format_line(v, small, sizeof(small));
    CHECK_INT(n, 15);
    CHECK_INT(strlen(small), 15);
}

static void test_prometheus(void)
{
    struct stats st;
    CHECK_INT(stats_init(&st, 2), 0);
    stats_enter(&st, 1, NULL);
    stats_add(STATS_CONNS, 4);
    stats_add(STATS_MSGS, 9);
    stats_add(STATS_ERR_MAX_CONNS, 2);
    stats_end("timeout");
    stats_leave();
    struct buf out;
    buf_init(&out, 1 << 20);
    struct stats_info info = {"1.2.3", "plain", "tcp", "re\"act\\ors\n", 1700000000.5};
    CHECK_INT(stats_format_prometheus(&st, &info, &out), 0);
    char *text = malloc(buf_len(&out) + 1);
    memcpy(text, buf_head(&out), buf_len(&out));
    text[buf_len(&out)] = '\0';
    CHECK(strstr(text, "# TYPE secho_messages_total counter\n") != NULL);
    CHECK(strstr(text, "\nsecho_messages_total{worker=\"1\"} 9\n") != NULL);
    CHECK(strstr(text, "\nsecho_messages_total{worker=\"0\"} 0\n") != NULL);
    CHECK(strstr(text, "\nsecho_connections_open{worker=\"1\"} 3\n") != NULL);
    CHECK(strstr(text, "\nsecho_disconnects_total{worker=\"1\",reason=\"timeout\"} 1\n") != NULL);
    CHECK(strstr(text, "\nsecho_errors_total{worker=\"1\",kind=\"max_conns\"} 2\n") != NULL);
    CHECK(strstr(text, "model=\"re\\\"act\\\\ors\\n\"} 1\n") != NULL);
    CHECK(strstr(text, "\nsecho_start_time_seconds 1700000000.500\n") != NULL);
    CHECK(strstr(text, "\nsecho_workers 2\n") != NULL);
    /* Each family's TYPE line comes once, before its samples, and every line ends. */
    CHECK(text[strlen(text) - 1] == '\n');
    const char *t = strstr(text, "# TYPE secho_errors_total");
    CHECK(t && strstr(t + 1, "# TYPE secho_errors_total") == NULL);
    CHECK(t && strstr(text, "secho_errors_total{") > t);
    free(text);
    /* Too small a buffer fails cleanly. */
    struct buf tiny;
    buf_init(&tiny, 64);
    CHECK(stats_format_prometheus(&st, &info, &tiny) < 0);
    buf_free_nowipe(&tiny);
    buf_free_nowipe(&out);
    stats_free(&st);
}

int main(void)
{
    test_no_slot();
    test_own_slot();
    test_threads();
    test_line();
    test_prometheus();
    return CHECK_DONE();
}
