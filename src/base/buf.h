/* SPDX-License-Identifier: MIT */
/* Bounded byte buffer: every buffer has a hard cap, so no peer can grow our memory. */
#ifndef SECHO_BUF_H
#define SECHO_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUF_MAX_PAUSES 16

/* The per-thread storage free-list (see struct buf). */
#define BUF_POOL_MIN       256
#define BUF_POOL_MAX       (128 * 1024)
#define BUF_POOL_PER_CLASS 8
#define BUF_POOL_BYTES     (512 * 1024)

/*
 * Pause marks support peers that cannot frame (the notebook's protocols read each part
 * with one recv(1024)). They are opt-in: only a buffer whose owner attached a struct
 * buf_marks (buf_attach_marks) carries them, so that every other buffer stays small and
 * knows nothing of pacing. A protocol marks the current end with buf_mark_pause; the writer
 * sends at most buf_sendable() bytes, and when it has sent exactly up to a mark it calls
 * buf_pause_reached(), waits a short while, then goes on.
 */
struct buf_marks {
    uint64_t at[BUF_MAX_PAUSES]; /* absolute stream offsets, ascending */
    unsigned n;
};

/*
 * A FIFO of bytes: data[rd .. wr) is unread, data[wr .. cap) is free. Appends fail with
 * -ENOBUFS once the unread length would exceed `limit`. Storage is allocated lazily and
 * grows geometrically up to `limit`; an owner that wants an idle buffer to cost nothing
 * gives it back with buf_release once it is empty (the next append takes storage again).
 * The owner calls buf_free, which wipes every byte the buffer ever held (and only those:
 * pages never written are not touched), or, by name, buf_free_nowipe for a buffer that only
 * ever held public bytes. Growing moves the bytes to new storage and wipes the old, so no
 * copy is left behind in freed memory.
 *
 * Storage of a power-of-two size from BUF_POOL_MIN to BUF_POOL_MAX comes from, and goes back
 * to, a small free-list of the calling thread (wiped before it goes there), so an event loop
 * that takes a read buffer per event and gives it back does not call malloc for each, and
 * the blocks kept are bounded per thread (BUF_POOL_PER_CLASS of a size, BUF_POOL_BYTES in
 * all). A buffer may be freed on another thread than the one it grew on.
 */
struct buf {
    uint8_t *data;
    size_t rd, wr, cap;
    size_t dirty; /* data[0 .. dirty) may hold bytes once written: what a free wipes */
    size_t limit;
    uint64_t consumed;       /* bytes ever consumed from the front */
    struct buf_marks *marks; /* NULL: this buffer takes no pause marks */
};

/* Storage this buffer holds now (0 after buf_release or buf_free). */
static inline size_t buf_cap(const struct buf *b)
{
    return b->cap;
}

/* Initialises an empty buffer that will never hold more than `limit` unread bytes. */
void buf_init(struct buf *b, size_t limit);
/* Wipes what was written (OPENSSL_cleanse) and releases storage; accepts a zeroed or
 * already freed buffer. */
void buf_free(struct buf *b);
/* As buf_free without the wipe: only for buffers that never hold anything secret (public
 * keys, handshake bytes in clear). */
void buf_free_nowipe(struct buf *b);

static inline size_t buf_len(const struct buf *b)
{
    return b->wr - b->rd;
}
/* The unread bytes; never NULL: an empty buffer that holds no storage (buffers are taken on
 * demand) gives a pointer to an empty static byte, so callers may pass it with length 0. */
static inline const uint8_t *buf_head(const struct buf *b)
{
    static const uint8_t none[1];
    return b->data ? b->data + b->rd : none;
}
static inline bool buf_empty(const struct buf *b)
{
    return b->wr == b->rd;
}

/* Ensures room for `n` more bytes. Returns 0, -ENOBUFS (over limit) or -ENOMEM. */
int buf_reserve(struct buf *b, size_t n) __attribute__((warn_unused_result));
/* Writable tail after a successful buf_reserve; commit what was written with buf_commit. */
static inline uint8_t *buf_tail(struct buf *b)
{
    return b->data + b->wr;
}
void buf_commit(struct buf *b, size_t n);
/* Appends bytes. Returns 0, -ENOBUFS or -ENOMEM; on failure the buffer is unchanged. */
int buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
int buf_put_u8(struct buf *b, uint8_t v) __attribute__((warn_unused_result));
int buf_put_u16be(struct buf *b, uint16_t v) __attribute__((warn_unused_result));
/* Drops `n` (<= buf_len) bytes from the front. */
void buf_consume(struct buf *b, size_t n);
/* Drops everything (pause marks too). The storage stays. */
void buf_reset(struct buf *b);
/* If the buffer is empty, gives its storage back (wiping what was written); a buffer that
 * holds unread bytes is left alone. Pause marks, the limit and the consumed count stay, so
 * the buffer is used on as before. Returns true when no storage is held afterwards. */
bool buf_release(struct buf *b);
/* As buf_release without the wipe: only for a buffer that never holds anything secret (the
 * storage goes to the free-list with the public bytes it held). */
bool buf_release_nowipe(struct buf *b);
/* buf_reset, then buf_release: drops everything and holds no storage. */
void buf_clear(struct buf *b);

/* What the calling thread's storage free-list holds and has done (for tests and stats). */
struct buf_pool_stats {
    size_t blocks, bytes; /* kept now */
    uint64_t fresh;       /* storage allocated with malloc */
    uint64_t reused;      /* storage taken from the free-list */
    uint64_t kept, freed; /* storage given back: kept in the list, or returned to malloc */
};
void buf_pool_stats(struct buf_pool_stats *out);
/* Frees everything the calling thread's free-list keeps (a thread's free-list is also freed
 * when the thread exits). */
void buf_pool_drain(void);
/* The most bytes the calling thread's free-list keeps from now on (at most BUF_POOL_BYTES,
 * the default; 0 keeps nothing); what it holds beyond is freed now. For a thread that
 * serves one connection, whose old storage no other connection could take. */
void buf_pool_set_limit(size_t bytes);

/* Lets b carry pause marks, kept in m (emptied here). The owner keeps m alive, at the same
 * address, for as long as b is used; buf_free and buf_reset empty it but leave it attached. */
void buf_attach_marks(struct buf *b, struct buf_marks *m);
/* Whether n more marks may be placed: 0, -ENOBUFS when fewer are free, -EINVAL when b has
 * no marks attached (its owner does not pace what it sends). */
int buf_marks_room(const struct buf *b, unsigned n);
/* Records a pause after the bytes appended so far. Returns 0, -ENOBUFS if BUF_MAX_PAUSES
 * are pending, or -EINVAL if b has no marks attached; on failure nothing is recorded. */
int buf_mark_pause(struct buf *b);
/* Pause marks pending (0 on a buffer without marks). */
static inline unsigned buf_pauses(const struct buf *b)
{
    return b->marks ? b->marks->n : 0;
}
/* Bytes that may be sent now: up to the next pause mark, or everything. */
size_t buf_sendable(const struct buf *b);
/* True (and the mark is dropped) when everything up to the next mark has been consumed. */
bool buf_pause_reached(struct buf *b);

/* Reads a big-endian u16 from p (no bounds: the caller checked two bytes exist). */
static inline uint16_t buf_get_u16be(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

#endif
