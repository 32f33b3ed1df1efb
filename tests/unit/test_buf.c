/* SPDX-License-Identifier: MIT */
/* Unit tests for the bounded byte buffer. */
#include <errno.h>

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

int main(void)
{
    test_append_consume();
    test_limit();
    test_growth_and_slide();
    test_reserve_commit();
    test_pauses();
    test_no_marks();
    test_wipe_only_written();
    return CHECK_DONE();
}
