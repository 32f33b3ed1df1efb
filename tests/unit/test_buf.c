/* SPDX-License-Identifier: MIT */
/* Unit tests for the bounded byte buffer. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "buf.h"
#include "check.h"

static void test_append_consume(void)
{
    struct buf b;
    buf_init(&b, 1000);
    CHECK(buf_empty(&b));
    CHECK_INT(buf_append(&b, "hello", 5), 0);
    CHECK_INT(buf_put_u8(&b, ' '), 0);
    CHECK_INT(buf_put_u16be(&b, 0x4142), 0);
    CHECK_INT(buf_len(&b), 8);
    CHECK_MEM(buf_head(&b), "hello AB", 8);
    CHECK_INT(buf_get_u16be(buf_head(&b) + 6), 0x4142);
    buf_consume(&b, 6);
    CHECK_INT(buf_len(&b), 2);
    CHECK_MEM(buf_head(&b), "AB", 2);
    buf_consume(&b, 100); /* over-consume is clamped */
    CHECK(buf_empty(&b));
    CHECK_INT(b.consumed, 8);
    buf_free(&b);
    buf_free(&b); /* double free is safe */
}

static void test_limit(void)
{
    struct buf b;
    buf_init(&b, 10);
    CHECK_INT(buf_append(&b, "0123456789", 10), 0);
    CHECK_INT(buf_append(&b, "x", 1), -ENOBUFS);
    CHECK_INT(buf_len(&b), 10); /* unchanged on failure */
    buf_consume(&b, 4);
    CHECK_INT(buf_append(&b, "abcd", 4), 0); /* room again after consuming */
    CHECK_MEM(buf_head(&b), "456789abcd", 10);
    CHECK_INT(buf_reserve(&b, (size_t)-1), -ENOBUFS); /* no overflow on huge sizes */
    buf_free(&b);
}

static void test_growth_and_slide(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    uint8_t chunk[1000];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)i;
    size_t total = 0;
    /* Keep a FIFO busy: append 1000, consume 999; content must stay in order. */
    for (int round = 0; round < 500; round++) {
        CHECK_INT(buf_append(&b, chunk, sizeof(chunk)), 0);
        total += sizeof(chunk);
        buf_consume(&b, 999);
        total -= 999;
    }
    CHECK_INT(buf_len(&b), total);
    CHECK(b.cap <= 4096); /* sliding, not growing without bound */
    buf_free(&b);
}

static void test_reserve_commit(void)
{
    struct buf b;
    buf_init(&b, 64);
    CHECK_INT(buf_reserve(&b, 5), 0);
    memcpy(buf_tail(&b), "xyz", 3);
    buf_commit(&b, 3);
    CHECK_INT(buf_len(&b), 3);
    CHECK_MEM(buf_head(&b), "xyz", 3);
    buf_free(&b);
}

static void test_pauses(void)
{
    struct buf b;
    struct buf_marks m;
    buf_init(&b, 100);
    buf_attach_marks(&b, &m);
    CHECK(buf_append(&b, "IVIVIVIVIVIVIVIV", 16) == 0);
    CHECK_INT(buf_mark_pause(&b), 0);
    CHECK(buf_append(&b, "ciphertext", 10) == 0);
    CHECK_INT(buf_mark_pause(&b), 0);
    CHECK_INT(buf_pauses(&b), 2);
    CHECK_INT(buf_sendable(&b), 16);
    CHECK(!buf_pause_reached(&b));
    buf_consume(&b, 10); /* a partial write */
    CHECK_INT(buf_sendable(&b), 6);
    CHECK(!buf_pause_reached(&b));
    buf_consume(&b, 6);
    CHECK(buf_pause_reached(&b));
    CHECK(!buf_pause_reached(&b)); /* the mark is gone */
    CHECK_INT(buf_sendable(&b), 10);
    buf_consume(&b, 10);
    CHECK(buf_pause_reached(&b));
    CHECK_INT(buf_sendable(&b), 0);
    /* Marks are bounded, and a full set is refused before it is exceeded. */
    CHECK_INT(buf_marks_room(&b, BUF_MAX_PAUSES), 0);
    CHECK_INT(buf_marks_room(&b, BUF_MAX_PAUSES + 1), -ENOBUFS);
    unsigned ok = 0;
    for (int i = 0; i < BUF_MAX_PAUSES + 3; i++)
        ok += buf_mark_pause(&b) == 0;
    CHECK_INT(ok, BUF_MAX_PAUSES);
    CHECK_INT(buf_mark_pause(&b), -ENOBUFS);
    CHECK_INT(buf_marks_room(&b, 1), -ENOBUFS);
    buf_reset(&b);
    CHECK_INT(buf_pauses(&b), 0);
    /* Freed and used again: the marks stay attached, and empty. */
    CHECK_INT(buf_mark_pause(&b), 0);
    buf_free(&b);
    CHECK_INT(buf_pauses(&b), 0);
    CHECK(b.marks == &m);
    buf_free(&b);
}

static void test_no_marks(void)
{
    /* A buffer nobody attached marks to refuses them cleanly and sends everything. */
    struct buf b;
    buf_init(&b, 100);
    CHECK(b.marks == NULL);
    CHECK(buf_append(&b, "abcdef", 6) == 0);
    CHECK_INT(buf_marks_room(&b, 1), -EINVAL);
    CHECK_INT(buf_mark_pause(&b), -EINVAL);
    CHECK_INT(buf_pauses(&b), 0);
    CHECK_INT(buf_len(&b), 6);
    CHECK_INT(buf_sendable(&b), 6);
    buf_consume(&b, 6);
    CHECK(!buf_pause_reached(&b));
    buf_free(&b);
}

/* A free wipes what was written and nothing more: a 64 KiB read room that received 10 bytes
 * costs a 10-byte wipe, not 64 KiB of pages faulted in (the memory-after-churn hole). */
static void test_wipe_only_written(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_INT(buf_reserve(&b, 65536), 0);
    CHECK(b.cap >= 65536);
    CHECK_INT(b.dirty, 0);
    memcpy(buf_tail(&b), "0123456789", 10);
    buf_commit(&b, 10);
    CHECK_INT(b.dirty, 10);
    buf_consume(&b, 10); /* emptied: the bytes are still in storage until wiped */
    CHECK_INT(b.dirty, 10);
    CHECK_INT(buf_append(&b, "abc", 3), 0);
    CHECK_INT(b.dirty, 10);
    buf_free(&b);
    CHECK(b.data == NULL);
    CHECK_INT(b.dirty, 0);

    /* Growing moves what is unread to new storage; only that is dirty there. */
    buf_init(&b, 1 << 20);
    CHECK_INT(buf_append(&b, "xxxxxxxxxx", 10), 0);
    size_t cap = b.cap;
    buf_consume(&b, 8);
    uint8_t big[4096] = {0};
    CHECK_INT(buf_append(&b, big, sizeof(big)), 0);
    CHECK(b.cap > cap);
    CHECK_INT(buf_len(&b), 2 + sizeof(big));
    CHECK_INT(b.dirty, 2 + sizeof(big));
    CHECK(memcmp(buf_head(&b), "xx", 2) == 0);
    buf_free(&b);
}

/* An empty buffer gives its storage back and takes it again when bytes come; one that holds
 * bytes keeps it. Marks, limit and the consumed count survive. */
static void test_release(void)
{
    struct buf b;
    struct buf_marks m;
    buf_init(&b, 1 << 20);
    buf_attach_marks(&b, &m);
    CHECK(buf_release(&b)); /* nothing held: nothing to do */
    CHECK_INT(buf_cap(&b), 0);
    CHECK_INT(buf_append(&b, "hello", 5), 0);
    CHECK_INT(buf_mark_pause(&b), 0);
    CHECK(buf_cap(&b) > 0);
    CHECK(!buf_release(&b)); /* holds bytes: kept */
    CHECK(b.data != NULL);
    CHECK_MEM(buf_head(&b), "hello", 5);
    buf_consume(&b, 5);
    CHECK(buf_release(&b));
    CHECK(b.data == NULL);
    CHECK_INT(buf_cap(&b), 0);
    CHECK_INT(b.dirty, 0);
    CHECK_INT(b.consumed, 5);
    CHECK_INT(buf_pauses(&b), 1); /* the pause at offset 5 is still owed */
    CHECK(buf_pause_reached(&b));
    CHECK_INT(buf_append(&b, "again", 5), 0); /* storage comes back when needed */
    CHECK_MEM(buf_head(&b), "again", 5);
    CHECK_INT(b.limit, 1 << 20);
    buf_clear(&b);
    CHECK(b.data == NULL);
    CHECK(buf_empty(&b));
    CHECK_INT(b.consumed, 10);
    buf_free(&b);
}

/* buf_release_nowipe: a buffer holding bytes keeps them; an empty one gives its storage to
 * the free-list as it is (public bytes: no wipe), and the next buffer takes that block. */
static void test_release_nowipe(void)
{
    struct buf_pool_stats st0, st1;
    buf_pool_drain();
    buf_pool_stats(&st0);
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK(buf_release_nowipe(&b)); /* nothing held: nothing to do */
    CHECK_INT(buf_reserve(&b, 4096), 0);
    uint8_t *first = b.data;
    memset(buf_tail(&b), 'P', 100);
    buf_commit(&b, 100);
    CHECK(!buf_release_nowipe(&b)); /* holds bytes: kept */
    CHECK(b.data == first);
    buf_consume(&b, 100);
    CHECK(buf_release_nowipe(&b));
    CHECK(b.data == NULL);
    CHECK_INT(buf_cap(&b), 0);
    CHECK_INT(b.dirty, 0);
    CHECK_INT(b.consumed, 100);
    CHECK_INT(b.limit, 1 << 20);
    buf_pool_stats(&st1);
    CHECK_INT(st1.kept, st0.kept + 1);
    CHECK_INT(st1.blocks, 1);
    bool kept = true;
    for (size_t i = sizeof(void *); i < 100; i++)
        kept = kept && first[i] == 'P';
    CHECK(kept);
    struct buf c;
    buf_init(&c, 1 << 20);
    CHECK_INT(buf_reserve(&c, 4096), 0);
    CHECK(c.data == first);
    buf_free(&c);
    buf_free(&b);
    buf_pool_drain();
}

/* Released storage goes to the thread's free-list wiped, and the next buffer of that size
 * takes it from there instead of from malloc. */
static void test_pool_reuse_and_wipe(void)
{
    struct buf_pool_stats st0, st1;
    buf_pool_drain();
    buf_pool_stats(&st0);
    CHECK_INT(st0.blocks, 0);
    CHECK_INT(st0.bytes, 0);

    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_INT(buf_reserve(&b, 65536), 0);
    CHECK_INT(buf_cap(&b), 65536);
    uint8_t *first = b.data;
    memset(buf_tail(&b), 'S', 100); /* a secret */
    buf_commit(&b, 100);
    buf_consume(&b, 100);
    CHECK(buf_release(&b));
    buf_pool_stats(&st1);
    CHECK_INT(st1.blocks, 1);
    CHECK_INT(st1.bytes, 65536);
    CHECK_INT(st1.kept, st0.kept + 1);

    /* The block in the list holds no byte of what was written (past the list's own link). */
    bool wiped = true;
    for (size_t i = sizeof(void *); i < 100; i++)
        wiped = wiped && first[i] == 0;
    CHECK(wiped);

    /* A read room of the same size, for another buffer, is that block: no malloc. */
    struct buf c;
    buf_init(&c, 1 << 20);
    CHECK_INT(buf_reserve(&c, 65536), 0);
    CHECK(c.data == first);
    buf_pool_stats(&st1);
    CHECK_INT(st1.reused, st0.reused + 1);
    CHECK_INT(st1.fresh, st0.fresh + 1);
    CHECK_INT(st1.blocks, 0);

    /* An event loop's pattern, a room per read given back after it: one block serves all. */
    for (int i = 0; i < 1000; i++) {
        CHECK_INT(buf_append(&b, "ping\n", 5), 0);
        buf_consume(&b, 5);
        CHECK(buf_release(&b));
    }
    buf_free(&c);
    buf_pool_stats(&st1);
    CHECK(st1.fresh <= st0.fresh + 2);

    /* Sizes that are not a power of two (a limit caps them) are never kept. */
    struct buf odd;
    buf_init(&odd, 1000);
    CHECK_INT(buf_reserve(&odd, 1000), 0);
    CHECK_INT(buf_cap(&odd), 1000);
    size_t before = st1.blocks;
    buf_free(&odd);
    buf_pool_stats(&st1);
    CHECK_INT(st1.blocks, before);
    buf_free(&b);
    buf_pool_drain();
}

/* A thread's limit set lower keeps fewer bytes, frees what it held beyond at once, and 0
 * keeps nothing; the default comes back with BUF_POOL_BYTES. */
static void test_pool_limit(void)
{
    struct buf_pool_stats st;
    struct buf bs[4];
    buf_pool_drain();
    for (int i = 0; i < 4; i++) {
        buf_init(&bs[i], 1 << 20);
        CHECK_INT(buf_reserve(&bs[i], 16384), 0);
    }
    for (int i = 0; i < 4; i++)
        buf_free(&bs[i]);
    buf_pool_stats(&st);
    CHECK_INT(st.bytes, 4 * 16384);

    buf_pool_set_limit(32768); /* holds 64 KiB: emptied */
    buf_pool_stats(&st);
    CHECK_INT(st.bytes, 0);
    for (int i = 0; i < 4; i++) {
        buf_init(&bs[i], 1 << 20);
        CHECK_INT(buf_reserve(&bs[i], 16384), 0);
    }
    for (int i = 0; i < 4; i++)
        buf_free(&bs[i]);
    buf_pool_stats(&st);
    CHECK_INT(st.blocks, 2);
    CHECK_INT(st.bytes, 32768);

    buf_pool_set_limit(0);
    buf_pool_stats(&st);
    CHECK_INT(st.bytes, 0);
    buf_init(&bs[0], 1 << 20);
    CHECK_INT(buf_reserve(&bs[0], BUF_POOL_MIN), 0);
    buf_free(&bs[0]);
    buf_pool_stats(&st);
    CHECK_INT(st.blocks, 0);

    buf_pool_set_limit(BUF_POOL_BYTES);
    for (int i = 0; i < 4; i++) {
        buf_init(&bs[i], 1 << 20);
        CHECK_INT(buf_reserve(&bs[i], 16384), 0);
    }
    for (int i = 0; i < 4; i++)
        buf_free(&bs[i]);
    buf_pool_stats(&st);
    CHECK_INT(st.bytes, 4 * 16384);
    buf_pool_drain();
}

/* The free-list is bounded: per size, and in bytes over all sizes. */
static void test_pool_bounded(void)
{
    enum { N = 3 * BUF_POOL_PER_CLASS };
    static struct buf bs[N];
    struct buf_pool_stats st;
    buf_pool_drain();
    for (int i = 0; i < N; i++) {
        buf_init(&bs[i], 1 << 20);
        CHECK_INT(buf_reserve(&bs[i], 300), 0); /* 512-byte storage */
    }
    for (int i = 0; i < N; i++)
        buf_free(&bs[i]);
    buf_pool_stats(&st);
    CHECK_INT(st.blocks, BUF_POOL_PER_CLASS);
    CHECK_INT(st.bytes, BUF_POOL_PER_CLASS * 512);
    buf_pool_drain();
    for (int i = 0; i < N; i++) {
        buf_init(&bs[i], 1 << 20);
        CHECK_INT(buf_reserve(&bs[i], BUF_POOL_MAX), 0);
    }
    for (int i = 0; i < N; i++)
        buf_free(&bs[i]);
    buf_pool_stats(&st);
    CHECK(st.bytes <= BUF_POOL_BYTES);
    CHECK_INT(st.blocks, BUF_POOL_BYTES / BUF_POOL_MAX);
    /* Storage larger than the largest class goes straight back to malloc. */
    buf_init(&bs[0], 1 << 20);
    CHECK_INT(buf_reserve(&bs[0], BUF_POOL_MAX + 1), 0);
    size_t before = st.blocks;
    buf_free(&bs[0]);
    buf_pool_stats(&st);
    CHECK_INT(st.blocks, before);
    buf_pool_drain();
    buf_pool_stats(&st);
    CHECK_INT(st.blocks, 0);
    CHECK_INT(st.bytes, 0);
}

/* A thread's free-list dies with the thread (the sanitizer build reports it if it leaks);
 * storage grown on one thread may be freed on another. */
static void *pool_thread(void *arg)
{
    struct buf *shared = arg;
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_INT(buf_append(&b, "abc", 3), 0);
    buf_consume(&b, 3);
    CHECK(buf_release(&b));
    CHECK_INT(buf_reserve(&b, 4000), 0);
    buf_free(&b);
    struct buf_pool_stats st;
    buf_pool_stats(&st);
    CHECK_INT(st.blocks, 2);
    CHECK_INT(buf_append(shared, "from a thread", 13), 0);
    return NULL;
}

static void test_pool_threads(void)
{
    struct buf shared;
    buf_init(&shared, 1 << 20);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, pool_thread, &shared), 0);
    CHECK_INT(pthread_join(t, NULL), 0);
    CHECK_MEM(buf_head(&shared), "from a thread", 13);
    buf_free(&shared); /* into this thread's list */
    buf_pool_drain();
}

int main(void)
{
    test_append_consume();
    test_limit();
    test_growth_and_slide();
    test_reserve_commit();
    test_pauses();
    test_no_marks();
    test_wipe_only_written();
    test_release();
    test_release_nowipe();
    test_pool_reuse_and_wipe();
    test_pool_bounded();
    test_pool_limit();
    test_pool_threads();
    return CHECK_DONE();
}
