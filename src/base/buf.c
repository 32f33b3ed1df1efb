/* SPDX-License-Identifier: MIT */
/* Bounded byte buffer. */
#include "buf.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* ---- the per-thread storage free-list ---- */

#define POOL_MIN_SHIFT 8  /* BUF_POOL_MIN */
#define POOL_CLASSES   10 /* 256 B .. 128 KiB */

_Static_assert(BUF_POOL_MIN == 1 << POOL_MIN_SHIFT, "the smallest class");
_Static_assert(BUF_POOL_MAX == BUF_POOL_MIN << (POOL_CLASSES - 1), "the largest class");

struct pool_block {
    struct pool_block *next;
};

struct pool {
    struct pool_block *head[POOL_CLASSES];
    unsigned n[POOL_CLASSES];
    size_t bytes;
    size_t limit;    /* most bytes kept; 0: BUF_POOL_BYTES */
    bool registered; /* the exit destructor knows this thread's list */
    struct buf_pool_stats st;
};

static _Thread_local struct pool tl_pool;
static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static bool pool_key_ok;

static void pool_drain(struct pool *p)
{
    for (int i = 0; i < POOL_CLASSES; i++) {
        while (p->head[i]) {
            struct pool_block *b = p->head[i];
            p->head[i] = b->next;
            free(b);
        }
        p->n[i] = 0;
    }
    p->bytes = 0;
}

static void pool_thread_exit(void *arg)
{
    pool_drain(arg);
}

static void pool_key_make(void)
{
    pool_key_ok = pthread_key_create(&pool_key, pool_thread_exit) == 0;
}

/* The class of a storage size, or -1 when the size is not pooled. */
static int pool_class(size_t size)
{
    if (size < BUF_POOL_MIN || size > BUF_POOL_MAX || (size & (size - 1)) != 0)
        return -1;
    int c = 0;
    while (((size_t)BUF_POOL_MIN << c) < size)
        c++;
    return c;
}

static uint8_t *storage_get(size_t size)
{
    struct pool *p = &tl_pool;
    int c = pool_class(size);
    if (c >= 0 && p->head[c]) {
        struct pool_block *b = p->head[c];
        p->head[c] = b->next;
        p->n[c]--;
        p->bytes -= size;
        p->st.reused++;
        return (uint8_t *)b;
    }
    uint8_t *m = malloc(size);
    if (m)
        p->st.fresh++;
    return m;
}

/* Takes storage whose written bytes the caller has wiped (or that only held public ones). */
static void storage_put(uint8_t *m, size_t size)
{
    struct pool *p = &tl_pool;
    if (!m)
        return;
    int c = pool_class(size);
    size_t limit = p->limit ? p->limit : BUF_POOL_BYTES;
    if (c < 0 || p->n[c] >= BUF_POOL_PER_CLASS || p->bytes + size > limit) {
        free(m);
        p->st.freed++;
        return;
    }
    if (!p->registered) {
        /* A thread's list is freed when the thread exits; without the key (it could not be
         * made) nothing is kept. */
        pthread_once(&pool_once, pool_key_make);
        if (!pool_key_ok || pthread_setspecific(pool_key, p) != 0) {
            free(m);
            p->st.freed++;
            return;
        }
        p->registered = true;
    }
    struct pool_block *b = (struct pool_block *)(void *)m;
    b->next = p->head[c];
    p->head[c] = b;
    p->n[c]++;
    p->bytes += size;
    p->st.kept++;
}

void buf_pool_stats(struct buf_pool_stats *out)
{
    *out = tl_pool.st;
    out->bytes = tl_pool.bytes;
    out->blocks = 0;
    for (int i = 0; i < POOL_CLASSES; i++)
        out->blocks += tl_pool.n[i];
}

void buf_pool_drain(void)
{
    pool_drain(&tl_pool);
}

void buf_pool_set_limit(size_t bytes)
{
    struct pool *p = &tl_pool;
    p->limit = bytes < BUF_POOL_BYTES ? bytes : BUF_POOL_BYTES;
    if (p->limit == 0)
        p->limit = BUF_POOL_MIN - 1; /* nothing fits: no block is kept */
    if (p->bytes > p->limit)
        pool_drain(p);
}

/* ---- buffers ---- */

void buf_init(struct buf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

/* Gives the storage back with what it holds as it is; the caller wiped what needed it. */
static void drop_storage(struct buf *b)
{
    storage_put(b->data, b->cap);
    b->data = NULL;
    b->rd = b->wr = b->cap = b->dirty = 0;
}

static void wipe_written(struct buf *b)
{
    if (b->data && b->dirty)
        OPENSSL_cleanse(b->data, b->dirty);
    b->dirty = 0;
}

void buf_free_nowipe(struct buf *b)
{
    drop_storage(b);
    if (b->marks)
        b->marks->n = 0;
}

void buf_free(struct buf *b)
{
    wipe_written(b);
    buf_free_nowipe(b);
}

bool buf_release(struct buf *b)
{
    if (b->wr != b->rd)
        return false;
    wipe_written(b);
    return buf_release_nowipe(b);
}

bool buf_release_nowipe(struct buf *b)
{
    if (b->wr != b->rd)
        return false;
    if (b->data)
        drop_storage(b);
    return true;
}

void buf_clear(struct buf *b)
{
    buf_reset(b);
    buf_release(b);
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
    size_t want = b->cap ? b->cap : BUF_POOL_MIN;
    while (want < used + n)
        want *= 2;
    if (want > b->limit)
        want = b->limit;
    /* Not realloc: it may leave the old bytes in freed memory unwiped. */
    uint8_t *p = storage_get(want);
    if (!p)
        return -ENOMEM;
    if (used)
        memcpy(p, b->data + b->rd, used);
    wipe_written(b);
    drop_storage(b);
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
