/* SPDX-License-Identifier: MIT */
/* Bounded byte buffer. */
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void buf_init(struct buf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

void buf_free_nowipe(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->rd = b->wr = b->cap = b->dirty = 0;
    if (b->marks)
        b->marks->n = 0;
}

void buf_free(struct buf *b)
{
    if (b->data && b->dirty)
        OPENSSL_cleanse(b->data, b->dirty);
    buf_free_nowipe(b);
}

static void note_written(struct buf *b)
{
    if (b->wr > b->dirty)
        b->dirty = b->wr;
}

int buf_reserve(struct buf *b, size_t n)
{
    size_t used = b->wr - b->rd;
    if (n > b->limit || used > b->limit - n)
        return -ENOBUFS;
    if (b->cap - b->wr >= n)
        return 0;
    /* Slide unread bytes to the front before growing: a FIFO that is drained as fast as it
     * is filled then never reallocates. */
    if (b->rd > 0) {
        memmove(b->data, b->data + b->rd, used);
        b->rd = 0;
        b->wr = used;
        if (b->cap - b->wr >= n)
            return 0;
    }
    size_t want = b->cap ? b->cap : 256;
    while (want < used + n)
        want *= 2;
    if (want > b->limit)
        want = b->limit;
    /* Not realloc: it may leave the old bytes in freed memory unwiped. */
    uint8_t *p = malloc(want);
    if (!p)
        return -ENOMEM;
    if (used)
        memcpy(p, b->data + b->rd, used);
    if (b->data && b->dirty)
        OPENSSL_cleanse(b->data, b->dirty);
    free(b->data);
    b->data = p;
    b->cap = want;
    b->rd = 0;
    b->wr = b->dirty = used;
    return 0;
}

void buf_commit(struct buf *b, size_t n)
{
    b->wr += n;
    note_written(b);
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    int r = buf_reserve(b, n);
    if (r < 0)
        return r;
    if (n)
        memcpy(b->data + b->wr, p, n);
    b->wr += n;
    note_written(b);
    return 0;
}

int buf_put_u8(struct buf *b, uint8_t v)
{
    return buf_append(b, &v, 1);
}

int buf_put_u16be(struct buf *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return buf_append(b, p, 2);
}

void buf_consume(struct buf *b, size_t n)
{
    if (n > b->wr - b->rd)
        n = b->wr - b->rd;
    b->rd += n;
    b->consumed += n;
    if (b->rd == b->wr)
        b->rd = b->wr = 0;
}

void buf_reset(struct buf *b)
{
    b->consumed += b->wr - b->rd;
    b->rd = b->wr = 0;
    if (b->marks)
        b->marks->n = 0;
}

void buf_attach_marks(struct buf *b, struct buf_marks *m)
{
    m->n = 0;
    b->marks = m;
}

int buf_marks_room(const struct buf *b, unsigned n)
{
    if (!b->marks)
        return -EINVAL;
    return b->marks->n + n > BUF_MAX_PAUSES ? -ENOBUFS : 0;
}

int buf_mark_pause(struct buf *b)
{
    int r = buf_marks_room(b, 1);
    if (r < 0)
        return r;
    b->marks->at[b->marks->n++] = b->consumed + (b->wr - b->rd);
    return 0;
}

size_t buf_sendable(const struct buf *b)
{
    size_t len = b->wr - b->rd;
    if (!b->marks || b->marks->n == 0)
        return len;
    uint64_t until = b->marks->at[0] - b->consumed;
    return until < len ? (size_t)until : len;
}

bool buf_pause_reached(struct buf *b)
{
    struct buf_marks *m = b->marks;
    if (!m || m->n == 0 || m->at[0] != b->consumed)
        return false;
    memmove(m->at, m->at + 1, (m->n - 1) * sizeof(m->at[0]));
    m->n--;
    return true;
}
