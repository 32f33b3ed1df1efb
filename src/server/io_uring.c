/* SPDX-License-Identifier: MIT */
/*
 * The io_uring model: one loop on the main thread, like -m epoll, that drives the same
 * connection engine by completions instead of readiness. Each listener has one multishot
 * accept; each connection one multishot receive that takes buffers from a ring provided to
 * the kernel (no buffer per idle connection); sends are queued as they arise and the whole
 * iteration's submissions go in the one io_uring_enter that also waits. Timers, the tick and
 * the wake are the base loop's (loop_run_due), never its epoll. UDP sockets are watched with
 * a multishot poll and pumped by udp_io.c (recvmmsg/sendmmsg).
 *
 * Lifetimes: a connection's record stays until the kernel has finished with every request
 * that names it (the receive, the send): conn_free and close happen when the engine says
 * CLOSE, the record goes once the last completion for it came back (or at exit, after the
 * ring is gone).
 */
#include "io.h"
#include "loop.h"
#include "model.h"
#include "udp_io.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define RING_ENTRIES 1024
/* Provided receive buffers: a power of two of them, each one receive at most. Only the
 * pages the kernel writes are ever touched. */
#define RBUF_COUNT 256
#define RBUF_SIZE  (16 * 1024)
#define RBUF_GROUP 0
/* Bytes one send carries at most (copied: see struct uring_conn). */
#define SEND_MAX (64 * 1024)
/* Housekeeping (shutdown, accept pause, UDP expiry); connections have their own timers. */
#define TICK_MS 250
/* While shutting down, how often the worker checks whether it is done. */
#define STOP_TICK_MS 20
/* The UDP batches one iteration takes from a socket before it waits again. */
#define UDP_ROUNDS 4

/* What a completion is for: the low bits of its user_data (the rest is the record). */
enum op {
    OP_NONE, /* cancellations: their own result is not needed */
    OP_ACCEPT,
    OP_RECV,
    OP_SEND,
    OP_POLL_UDP,
    OP_POLL_WAKE,
};
#define OP_MASK 7U

struct uring_worker;

struct uring_conn {
    struct server_conn sc;
    struct uring_worker *w;
    int fd;
    struct loop_timer timer; /* due at conn_deadline */
    struct uring_conn *prev, *next;
    /* Received bytes the engine has not taken yet: provided buffers in arrival order,
     * linked through w->rnext, the first roff bytes of the head already taken. */
    int rhead, rtail;
    size_t roff;
    int end;          /* after the queued input: 1 EOF, -errno a receive error, 0 nothing yet */
    bool ended;       /* EOF or the error was delivered: no more receiving */
    bool recv_armed;  /* the multishot receive is in the kernel */
    bool cancel_sent; /* and its cancellation too */
    bool starved;     /* the receive ended for want of buffers: re-armed once some are back */
    bool send_busy;   /* a send is in the kernel */
    bool dead;        /* conn_free'd and closed; the record waits for its completions */
    /* The bytes of the send in flight: a copy, since the engine's output may move (grow,
     * compact) while the kernel still reads them. From the thread's buffer pool, given back
     * as soon as the send is done. */
    struct buf snd;
};

struct uring_lis {
    struct uring_worker *w;
    struct model_acceptor acc; /* acc.lfd is -1 once closed */
    bool armed;
    bool paused; /* out of descriptors: not re-armed until acc.resume_at */
};

struct uring_udp {
    struct uring_worker *w;
    struct udp_service u;
    bool open, armed, more;
};

struct uring_worker {
    struct server *srv;
    struct io_uring ring;
    struct loop *loop; /* timers, tick and wake only */
    struct io_uring_buf_ring *br;
    uint8_t *rbufs;
    uint32_t rlen[RBUF_COUNT]; /* bytes received into each buffer */
    int rnext[RBUF_COUNT];     /* next in its connection's queue, -1 for none */
    int br_added;              /* given back since the ring's tail was last published */
    int nlis, nudp;
    long nstarved;
    long nconns;
    bool trim_owed; /* nconns fell to 0: the next tick gives memory back (model_idle_trim) */
    struct uring_lis lis[MODEL_MAX_ADDRS];
    struct uring_udp udp[MODEL_MAX_ADDRS];
    struct uring_conn *conns; /* live, for shutdown */
    struct uring_conn *dead;  /* closed, waiting for their last completions */
    bool ring_ok, br_registered, wake_armed;
    bool stop_seen, done;
};

static void *tag(void *p, enum op op)
{
    return (void *)((uintptr_t)p | op);
}

/* A submission entry; when the queue is full, what is queued goes to the kernel first. */
static struct io_uring_sqe *get_sqe(struct uring_worker *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    while (!sqe) {
        io_uring_submit(&w->ring);
        sqe = io_uring_get_sqe(&w->ring);
    }
    return sqe;
}

static void cancel(struct uring_worker *w, void *p, enum op op)
{
    struct io_uring_sqe *sqe = get_sqe(w);
    io_uring_prep_cancel(sqe, tag(p, op), 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data(sqe, NULL);
}

/* ---- provided receive buffers ---- */

static uint8_t *rbuf(struct uring_worker *w, int bid)
{
    return w->rbufs + (size_t)bid * RBUF_SIZE;
}

/* Gives buffer bid back to the kernel (published before the next submission). */
static void give_back(struct uring_worker *w, int bid)
{
    io_uring_buf_ring_add(w->br, rbuf(w, bid), RBUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(RBUF_COUNT), w->br_added++);
}

static int bufs_init(struct uring_worker *w)
{
    size_t ringsz = RBUF_COUNT * sizeof(struct io_uring_buf);
    void *ring = mmap(NULL, ringsz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (ring == MAP_FAILED)
        return -errno;
    w->br = ring;
    w->rbufs = mmap(NULL, (size_t)RBUF_COUNT * RBUF_SIZE, PROT_READ | PROT_WRITE,
                    MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (w->rbufs == MAP_FAILED) {
        w->rbufs = NULL;
        return -errno;
    }
    struct io_uring_buf_reg reg = {
        .ring_addr = (uintptr_t)w->br, .ring_entries = RBUF_COUNT, .bgid = RBUF_GROUP};
    int r = io_uring_register_buf_ring(&w->ring, &reg, 0);
    if (r < 0)
        return r;
    w->br_registered = true;
    io_uring_buf_ring_init(w->br);
    for (int i = 0; i < RBUF_COUNT; i++)
        give_back(w, i);
    io_uring_buf_ring_advance(w->br, w->br_added);
    w->br_added = 0;
    return 0;
}

static void bufs_free(struct uring_worker *w)
{
    if (w->br)
        munmap(w->br, RBUF_COUNT * sizeof(struct io_uring_buf));
    if (w->rbufs)
        munmap(w->rbufs, (size_t)RBUF_COUNT * RBUF_SIZE);
    w->br = NULL;
    w->rbufs = NULL;
}

/* ---- connections ---- */

static void list_add(struct uring_conn **head, struct uring_conn *uc)
{
    uc->prev = NULL;
    uc->next = *head;
    if (*head)
        (*head)->prev = uc;
    *head = uc;
}

static void list_del(struct uring_conn **head, struct uring_conn *uc)
{
    if (uc->prev)
        uc->prev->next = uc->next;
    else
        *head = uc->next;
    if (uc->next)
        uc->next->prev = uc->prev;
}

static void maybe_finish(struct uring_worker *w)
{
    if (w->stop_seen && w->nconns == 0)
        w->done = true;
}

/* Frees a closed record once the kernel holds no request of it. */
static void maybe_reap(struct uring_conn *uc)
{
    if (!uc->dead || uc->recv_armed || uc->send_busy)
        return;
    list_del(&uc->w->dead, uc);
    buf_free(&uc->snd);
    free(uc);
}

static void queue_input(struct uring_conn *uc, int bid)
{
    uc->w->rnext[bid] = -1;
    if (uc->rtail >= 0)
        uc->w->rnext[uc->rtail] = bid;
    else
        uc->rhead = bid;
    uc->rtail = bid;
}

static void drop_input(struct uring_conn *uc)
{
    while (uc->rhead >= 0) {
        int bid = uc->rhead;
        uc->rhead = uc->w->rnext[bid];
        give_back(uc->w, bid);
    }
    uc->rtail = -1;
    uc->roff = 0;
}

/* Logs the disconnect, closes the socket, and retires the record. */
static void drop(struct uring_conn *uc)
{
    struct uring_worker *w = uc->w;
    loop_timer_disarm(w->loop, &uc->timer);
    list_del(&w->conns, uc);
    if (--w->nconns == 0)
        w->trim_owed = true;
    conn_free(&uc->sc.c);
    drop_input(uc);
    if (uc->starved)
        w->nstarved--;
    uc->starved = false;
    if (uc->recv_armed && !uc->cancel_sent) {
        cancel(w, uc, OP_RECV);
        uc->cancel_sent = true;
    }
    /* The kernel keeps its own reference while a request is in flight: the socket really
     * closes once the last one is done. */
    close(uc->fd);
    uc->fd = -1;
    model_release(w->srv);
    uc->dead = true;
    list_add(&w->dead, uc);
    maybe_reap(uc);
    maybe_finish(w);
}

/* Hands queued input to the engine while it takes some, then the EOF or error behind it. */
static void pump_input(struct uring_conn *uc, uint64_t now)
{
    struct uring_worker *w = uc->w;
    struct conn *c = &uc->sc.c;
    while (uc->rhead >= 0) {
        int bid = uc->rhead;
        size_t n = conn_feed(c, rbuf(w, bid) + uc->roff, w->rlen[bid] - uc->roff, now);
        if (n == 0)
            return;
        uc->roff += n;
        if (uc->roff == w->rlen[bid]) {
            uc->rhead = w->rnext[bid];
            if (uc->rhead < 0)
                uc->rtail = -1;
            uc->roff = 0;
            give_back(w, bid);
        }
    }
    if (uc->end && !uc->ended) {
        uc->ended = true;
        if (uc->end > 0)
            conn_on_eof(c, now);
        else
            conn_on_recv_error(c, -uc->end);
    }
}

/* Queues a send of what the engine lets go now, unless one is in flight; does the half-close
 * the engine asks for once everything went. */
static void pump_send(struct uring_conn *uc, uint64_t now)
{
    struct conn *c = &uc->sc.c;
    if (uc->send_busy)
        return;
    const uint8_t *p;
    size_t n = conn_out_peek(c, now, &p);
    if (n > 0) {
        if (n > SEND_MAX)
            n = SEND_MAX;
        buf_reset(&uc->snd);
        if (buf_append(&uc->snd, p, n) < 0) {
            conn_on_send_error(c, ENOMEM);
            return;
        }
        struct io_uring_sqe *sqe = get_sqe(uc->w);
        io_uring_prep_send(sqe, uc->fd, buf_head(&uc->snd), n, MSG_NOSIGNAL);
        io_uring_sqe_set_data(sqe, tag(uc, OP_SEND));
        uc->send_busy = true;
        return;
    }
    if (conn_wants(c) & CONN_WANT_SHUT_WR) {
        (void)shutdown(uc->fd, SHUT_WR);
        conn_shut_done(c);
    }
}

static void arm_recv(struct uring_conn *uc)
{
    struct io_uring_sqe *sqe = get_sqe(uc->w);
    io_uring_prep_recv_multishot(sqe, uc->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RBUF_GROUP;
    io_uring_sqe_set_data(sqe, tag(uc, OP_RECV));
    uc->recv_armed = true;
    uc->cancel_sent = false;
}

/* After the engine ran: receive while it wants input (and stop receiving when it does not:
 * back-pressure), send, wake it at its deadline, or retire it once it is closed. */
static void service(struct uring_conn *uc, uint64_t now)
{
    if (uc->dead)
        return;
    struct uring_worker *w = uc->w;
    struct conn *c = &uc->sc.c;
    pump_input(uc, now);
    pump_send(uc, now);
    unsigned want = conn_wants(c);
    if (want & CONN_WANT_CLOSE) {
        drop(uc);
        return;
    }
    if (want & CONN_WANT_READ) {
        if (!uc->recv_armed && !uc->ended && !uc->end && !uc->starved)
            arm_recv(uc);
    } else if (uc->recv_armed && !uc->cancel_sent) {
        cancel(w, uc, OP_RECV);
        uc->cancel_sent = true;
    }
    uint64_t due = conn_deadline(c);
    if (due == CONN_NO_DEADLINE)
        loop_timer_disarm(w->loop, &uc->timer);
    else if (loop_timer_arm(w->loop, &uc->timer, due) < 0) {
        conn_abort(c);
        drop(uc);
    }
}

static void on_conn_timer(struct loop *l, void *arg)
{
    struct uring_conn *uc = arg;
    uint64_t now = loop_now(l);
    conn_on_time(&uc->sc.c, now);
    service(uc, now);
}

static void on_recv(struct uring_conn *uc, const struct io_uring_cqe *cqe, uint64_t now)
{
    struct uring_worker *w = uc->w;
    if (!(cqe->flags & IORING_CQE_F_MORE))
        uc->recv_armed = false;
    int res = cqe->res;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if (res > 0 && !uc->dead && !uc->ended && !uc->end) {
            w->rlen[bid] = (uint32_t)res;
            queue_input(uc, bid);
        } else {
            give_back(w, bid);
        }
    } else if (res == 0) {
        uc->end = 1;
    } else if (res == -ENOBUFS) {
        if (!uc->dead && !uc->starved) {
            uc->starved = true;
            w->nstarved++;
        }
    } else if (res < 0 && res != -ECANCELED && res != -EINTR && res != -EAGAIN && !uc->end) {
        uc->end = res;
    }
    if (uc->dead)
        maybe_reap(uc);
    else
        service(uc, now);
}

static void on_send(struct uring_conn *uc, int res, uint64_t now)
{
    uc->send_busy = false;
    /* Given back to the thread's pool (wiping what it held) at once: an idle connection
     * holds no send buffer. */
    buf_clear(&uc->snd);
    if (uc->dead) {
        maybe_reap(uc);
        return;
    }
    struct conn *c = &uc->sc.c;
    if (res > 0)
        conn_out_sent(c, (size_t)res, now);
    else if (res == 0)
        conn_on_send_error(c, EPIPE);
    else if (res != -EINTR && res != -EAGAIN)
        conn_on_send_error(c, -res);
    service(uc, now);
}

/* After buffers came back: connections whose receive ran out of them receive again. */
static void unstarve(struct uring_worker *w, uint64_t now)
{
    for (struct uring_conn *uc = w->conns, *next; uc && w->nstarved > 0; uc = next) {
        next = uc->next;
        if (!uc->starved)
            continue;
        uc->starved = false;
        w->nstarved--;
        service(uc, now);
    }
}

/* ---- listeners ---- */

static void arm_accept(struct uring_lis *li)
{
    struct io_uring_sqe *sqe = get_sqe(li->w);
    /* A blocking socket: io_uring waits for it by itself, so a send never comes back with
     * EAGAIN. */
    io_uring_prep_multishot_accept(sqe, li->acc.lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, tag(li, OP_ACCEPT));
    li->armed = true;
}

static void new_conn(struct uring_lis *li, int fd, uint64_t now)
{
    struct uring_worker *w = li->w;
    struct server *srv = w->srv;
    struct net_addr peer;
    peer.len = sizeof(peer.ss);
    /* A multishot accept has one address buffer for all it accepts: ask each socket. */
    if (getpeername(fd, (struct sockaddr *)&peer.ss, &peer.len) < 0) {
        close(fd); /* gone already */
        return;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if ((fd = model_admit(&li->acc, fd, &peer)) < 0)
        return;
    struct uring_conn *uc = calloc(1, sizeof(*uc));
    if (!uc) {
        close(fd);
        model_release(srv);
        return;
    }
    uc->w = w;
    uc->fd = fd;
    uc->rhead = uc->rtail = -1;
    buf_init(&uc->snd, SEND_MAX);
    loop_timer_init(&uc->timer, on_conn_timer, uc);
    if (server_conn_init(&uc->sc, srv, &peer, now) < 0) {
        conn_free(&uc->sc.c);
        close(fd);
        model_release(srv);
        free(uc);
        return;
    }
    list_add(&w->conns, uc);
    w->nconns++;
    service(uc, now); /* a greeting goes out at once */
}

static void on_accept(struct uring_lis *li, const struct io_uring_cqe *cqe, uint64_t now)
{
    struct uring_worker *w = li->w;
    if (!(cqe->flags & IORING_CQE_F_MORE))
        li->armed = false;
    int res = cqe->res;
    if (res >= 0) {
        if (w->stop_seen || li->acc.lfd < 0)
            close(res); /* accepted while the cancellation was on its way */
        else
            new_conn(li, res, now);
    } else if (res != -ECANCELED && li->acc.lfd >= 0) {
        model_accept_failed(&li->acc, res, now);
        if (model_accept_paused(&li->acc, now)) {
            li->paused = true;
            loop_tick_soon(w->loop, MODEL_EMFILE_PAUSE_MS);
            /* A multishot accept that goes on failing would spin: it rests until the pause
             * ends. */
            if (li->armed)
                cancel(w, li, OP_ACCEPT);
        }
    }
    if (!li->armed && !li->paused && li->acc.lfd >= 0 && !w->stop_seen)
        arm_accept(li);
}

/* ---- UDP, wake ---- */

static void arm_poll(struct uring_worker *w, int fd, void *p, enum op op)
{
    struct io_uring_sqe *sqe = get_sqe(w);
    io_uring_prep_poll_multishot(sqe, fd, POLLIN);
    io_uring_sqe_set_data(sqe, tag(p, op));
}

static void on_udp(struct uring_udp *u, const struct io_uring_cqe *cqe, uint64_t now)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        u->armed = false;
    if (!u->open)
        return;
    if (cqe->res > 0)
        u->more = udp_on_readable(&u->u, now);
    if (!u->armed) {
        arm_poll(u->w, u->u.fd, u, OP_POLL_UDP);
        u->armed = true;
    }
}

static void on_wake_poll(struct uring_worker *w, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        w->wake_armed = false;
    if (cqe->res > 0)
        loop_take_wake(w->loop);
    if (!w->wake_armed && !w->done) {
        arm_poll(w, loop_wake_fd(w->loop), w, OP_POLL_WAKE);
        w->wake_armed = true;
    }
}

/* ---- shutdown ---- */

/* Stops listening: cancels the accepts and polls, closes every listener and UDP socket (UDP
 * sessions end with it). */
static void close_sockets(struct uring_worker *w)
{
    for (int i = 0; i < w->nlis; i++) {
        struct uring_lis *li = &w->lis[i];
        if (li->armed && w->ring_ok)
            cancel(w, li, OP_ACCEPT);
        model_acceptor_close(&li->acc);
    }
    for (int i = 0; i < w->nudp; i++) {
        struct uring_udp *u = &w->udp[i];
        if (u->armed && w->ring_ok)
            cancel(w, u, OP_POLL_UDP);
        if (u->open)
            udp_close(&u->u);
        u->open = false;
        u->more = false;
    }
}

static void begin_stop(struct uring_worker *w)
{
    uint64_t now = loop_now(w->loop);
    w->stop_seen = true;
    close_sockets(w);
    for (struct uring_conn *uc = w->conns, *next; uc; uc = next) {
        next = uc->next;
        conn_begin_shutdown(&uc->sc.c, now, atomic_load(&w->srv->stop_at));
        service(uc, now);
    }
    loop_tick_soon(w->loop, STOP_TICK_MS);
    maybe_finish(w);
}

static void on_wake(struct loop *l, void *arg)
{
    (void)l;
    struct uring_worker *w = arg;
    if (atomic_load(&w->srv->stopping) && !w->stop_seen)
        begin_stop(w);
}

static void on_tick(struct loop *l, void *arg)
{
    struct uring_worker *w = arg;
    uint64_t now = loop_now(l);
    if (atomic_load(&w->srv->stopping) && !w->stop_seen)
        begin_stop(w);
    for (int i = 0; i < w->nlis; i++) {
        struct uring_lis *li = &w->lis[i];
        if (li->paused && !model_accept_paused(&li->acc, now) && li->acc.lfd >= 0) {
            li->paused = false;
            if (!li->armed && !w->stop_seen)
                arm_accept(li);
        }
    }
    for (int i = 0; i < w->nudp; i++)
        if (w->udp[i].open)
            udp_on_timer(&w->udp[i].u, now, TICK_MS);
    if (w->trim_owed && w->nconns == 0 && model_idle_trim(now))
        w->trim_owed = false;
    if (w->stop_seen) {
        /* Each connection closes itself by stop_at (its drain deadline); this is the
         * backstop for any still open past it (logged as shutdown). */
        if (now >= atomic_load(&w->srv->stop_at)) {
            for (struct uring_conn *uc = w->conns, *nx; uc; uc = nx) {
                nx = uc->next;
                conn_abort(&uc->sc.c);
                service(uc, now);
            }
        }
        maybe_finish(w);
        loop_tick_soon(l, STOP_TICK_MS);
    }
}

/* ---- the loop ---- */

static void on_cqe(struct uring_worker *w, const struct io_uring_cqe *cqe, uint64_t now)
{
    uintptr_t data = (uintptr_t)io_uring_cqe_get_data(cqe);
    void *p = (void *)(data & ~(uintptr_t)OP_MASK);
    switch ((enum op)(data & OP_MASK)) {
    case OP_ACCEPT:
        on_accept(p, cqe, now);
        break;
    case OP_RECV:
        on_recv(p, cqe, now);
        break;
    case OP_SEND:
        on_send(p, cqe->res, now);
        break;
    case OP_POLL_UDP:
        on_udp(p, cqe, now);
        break;
    case OP_POLL_WAKE:
        on_wake_poll(w, cqe);
        break;
    default:
        break;
    }
}

static int run(struct uring_worker *w)
{
    while (!w->done) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        loop_refresh(w->loop);
        uint64_t now = loop_now(w->loop);
        io_uring_for_each_cqe(&w->ring, head, cqe)
        {
            on_cqe(w, cqe, now);
            seen++;
        }
        io_uring_cq_advance(&w->ring, seen);
        bool more = false;
        for (int i = 0; i < w->nudp; i++) {
            struct uring_udp *u = &w->udp[i];
            /* The poll fires on new datagrams, not on those left behind: a full batch is
             * followed by more right away, a bounded number of times per iteration. */
            for (int k = 0; k < UDP_ROUNDS && u->open && u->more; k++)
                u->more = udp_on_readable(&u->u, now);
            more |= u->open && u->more;
        }
        int ms = loop_run_due(w->loop);
        if (w->br_added > 0) {
            io_uring_buf_ring_advance(w->br, w->br_added);
            w->br_added = 0;
            if (w->nstarved > 0)
                unstarve(w, loop_now(w->loop));
        }
        if (w->done)
            break;
        if (more)
            ms = 0;
        /* One system call: this iteration's submissions, and the wait for the next. */
        int r;
        if (ms < 0) {
            r = io_uring_submit_and_wait(&w->ring, 1);
        } else {
            struct __kernel_timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
            r = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
        }
        if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            return r;
    }
    return 0;
}

/* ---- start-up ---- */

static int ring_init(struct uring_worker *w)
{
    /* One thread submits, and completions are reaped only when it waits: the cheapest set,
     * then older kernels' fallbacks. */
    static const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int r = -EINVAL;
    for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
        struct io_uring_params p = {.flags = flag_sets[i] | IORING_SETUP_CQSIZE,
                                    .cq_entries = 4 * RING_ENTRIES};
        r = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
        if (r != -EINVAL)
            break;
    }
    if (r < 0)
        return r;
    w->ring_ok = true;
    /* Each io_uring_enter then skips looking the ring's descriptor up; optional. */
    (void)io_uring_register_ring_fd(&w->ring);
    return 0;
}

static void worker_free(struct uring_worker *w)
{
    stats_enter(&w->srv->stats, 0, NULL); /* the drops below count for the worker */
    for (struct uring_conn *uc = w->conns, *next; uc; uc = next) {
        next = uc->next;
        conn_abort(&uc->sc.c);
        drop(uc);
    }
    close_sockets(w);
    /* The kernel lets go of every request with the ring; then no record is named any more. */
    if (w->ring_ok) {
        if (w->br_registered)
            io_uring_unregister_buf_ring(&w->ring, RBUF_GROUP);
        io_uring_queue_exit(&w->ring);
    }
    w->ring_ok = false;
    for (struct uring_conn *uc = w->dead, *next; uc; uc = next) {
        next = uc->next;
        buf_free(&uc->snd);
        free(uc);
    }
    w->dead = NULL;
    bufs_free(w);
    loop_free(w->loop);
    w->loop = NULL;
    stats_leave();
}

static void wake_worker(struct server *srv)
{
    struct uring_worker *w = srv->model;
    loop_wake(w->loop);
}

bool io_uring_built(void)
{
    return true;
}

const char *io_uring_version(void)
{
    return "liburing " SECHO_LIBURING_VERSION;
}

int io_uring_run(struct server *srv)
{
    struct uring_worker *w = calloc(1, sizeof(*w));
    if (!w) {
        fprintf(stderr, "secho: out of memory\n");
        return 1;
    }
    w->srv = srv;
    int r = ring_init(w);
    if (r < 0) {
        fprintf(stderr,
                "secho: cannot start the io_uring model: io_uring_setup: %s (the kernel, its "
                "io_uring_disabled setting or a seccomp filter refuses io_uring; -m epoll "
                "serves the same)\n",
                strerror(-r));
        free(w);
        return 1;
    }
    if ((r = bufs_init(w)) < 0) {
        fprintf(stderr,
                "secho: cannot start the io_uring model: provided buffer ring: %s (it needs "
                "Linux 5.19 or later)\n",
                strerror(-r));
        worker_free(w);
        free(w);
        return 1;
    }
    w->loop = loop_new();
    if (!w->loop) {
        fprintf(stderr, "secho: cannot start: %s\n", strerror(errno));
        worker_free(w);
        free(w);
        return 1;
    }
    loop_set_tick(w->loop, TICK_MS, on_tick, w);
    loop_set_wake(w->loop, on_wake, w);

    struct model_listeners ls;
    if (model_listen(srv, 1, &ls) < 0) {
        worker_free(w);
        free(w);
        return 1;
    }
    int fds[MODEL_MAX_ADDRS];
    int n = model_listeners_take(&ls, 0, fds);
    int taken = 0;
    for (; taken < n; taken++) {
        if (srv->conf.udp) {
            struct uring_udp *u = &w->udp[w->nudp];
            u->w = w;
            if ((r = udp_init(&u->u, srv, fds[taken])) < 0)
                break;
            u->open = true;
            w->nudp++;
            arm_poll(w, u->u.fd, u, OP_POLL_UDP);
            u->armed = true;
        } else {
            struct uring_lis *li = &w->lis[w->nlis++];
            li->w = w;
            model_acceptor_init(&li->acc, srv, fds[taken]);
            arm_accept(li);
        }
    }
    if (taken < n) {
        fprintf(stderr, "secho: cannot start: %s\n", strerror(-r));
        for (int i = taken; i < n; i++)
            close(fds[i]);
        model_listeners_close(&ls);
        worker_free(w);
        free(w);
        return 1;
    }
    arm_poll(w, loop_wake_fd(w->loop), w, OP_POLL_WAKE);
    w->wake_armed = true;
    /* Requests go in now, so that a kernel that refuses one says so before we are ready. */
    io_uring_submit(&w->ring);

    server_set_wake(srv, wake_worker, w);
    server_ready(srv, ls.addrs, ls.naddrs);
    model_listeners_close(&ls);
    stats_enter(&srv->stats, 0, NULL);
    if (atomic_load(&srv->stopping))
        begin_stop(w);
    r = run(w);
    stats_leave();
    server_set_wake(srv, NULL, NULL);
    if (r < 0)
        fprintf(stderr, "secho: io_uring: %s\n", strerror(-r));
    worker_free(w);
    free(w);
    return r < 0 ? 1 : 0;
}
