/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the UDP peer table (plain and lab-fernet) fed datagrams from four fake
 * addresses under a fake clock. The input is a header byte (protocol, --max-conns, timeouts)
 * then records: an op byte (address, expire first, clock step, "seal with that address's
 * client") and u16be length + bytes. lab-fernet clients keep the keys the table emits, so
 * sealed records reach the message, exit and shutdown paths. Under ASan any overread, leak or
 * crash shows up; the table's size, the shared count and every reply's address are checked. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "udp_peers.h"

#define NADDR 4

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct proto_vt *const vts[] = {&proto_plain, &proto_lab_fernet};
static void *sctx[2], *cctx[2];

static struct {
    struct server srv;
    struct udp_peers t;
    struct net_addr addr[NADDR];
    void *client[NADDR]; /* lab-fernet: each address's client conn */
    const struct net_addr *from;
    int vi;
} st;

static void *make_ctx(const struct proto_vt *vt, enum proto_role role)
{
    struct proto_opts o = {.max_msg = 65507, .dgram = true};
    void *ctx = NULL;
    char err[PROTO_ERRLEN] = "";
    if (vt->ctx_new && vt->ctx_new(&o, role, &ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "ctx_new: %s\n", err);
        abort();
    }
    return ctx;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (int i = 0; i < 2; i++) {
        sctx[i] = make_ctx(vts[i], PROTO_SERVER);
        cctx[i] = make_ctx(vts[i], PROTO_CLIENT);
    }
    for (int i = 0; i < NADDR; i++) {
        struct net_addr *a = &st.addr[i];
        if (i == NADDR - 1) {
            struct sockaddr_in6 *in = (struct sockaddr_in6 *)&a->ss;
            in->sin6_family = AF_INET6;
            in->sin6_port = htons(4000);
            in->sin6_addr = in6addr_loopback;
            a->len = sizeof(*in);
        } else {
            struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
            in->sin_family = AF_INET;
            in->sin_port = htons((uint16_t)(4000 + i));
            in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a->len = sizeof(*in);
        }
    }
    return 0;
}

static void check_counts(void)
{
    long n = udp_peers_count(&st.t);
    if (n < 0 || n > st.srv.conf.max_conns || n != atomic_load(&st.srv.nconns))
        abort();
}

static void on_emit(void *arg, const struct net_addr *to, const uint8_t *data, size_t len)
{
    (void)arg;
    /* Replies only ever go back to the sender of the datagram being handled. */
    if (!st.from ||
        !net_addr_equal((const struct sockaddr *)&to->ss, (const struct sockaddr *)&st.from->ss))
        abort();
    if (len > 65536 + 256)
        abort();
    check_counts();
    size_t i = (size_t)(st.from - st.addr);
    if (st.client[i]) {
        struct buf out;
        struct proto_msg m;
        buf_init(&out, 1 << 16);
        (void)vts[st.vi]->dgram_read(st.client[i], data, len, &out, &m);
        buf_free(&out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t hdr = data[0];
    data++;
    size--;
    memset(&st.srv, 0, sizeof(st.srv));
    st.vi = hdr & 1;
    const struct proto_vt *vt = vts[st.vi];
    struct server *srv = &st.srv;
    srv->conf.proto = vt;
    srv->conf.max_conns = 1 + ((hdr >> 1) & 3);
    srv->conf.idle_timeout_ms = (hdr >> 3) & 1 ? 0 : 1000;
    srv->conf.handshake_timeout_ms = (hdr >> 4) & 1 ? 0 : 300;
    srv->conf.allow_shutdown = (hdr >> 5) & 1 ? ALLOW_ANY : ALLOW_NONE;
    srv->conf.log_messages = true;
    srv->pctx = sctx[st.vi];
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->next_id, 1);
    atomic_init(&srv->nconns, 0);
    pthread_mutex_init(&srv->wake_mu, NULL);
    if (udp_peers_init(&st.t, srv, on_emit, NULL) < 0)
        abort();
    struct buf sealed;
    buf_init(&sealed, 1 << 16);
    for (int i = 0; i < NADDR; i++) {
        st.client[i] = NULL;
        if (vt == &proto_lab_fernet &&
            proto_conn_new(vt, cctx[st.vi], PROTO_CLIENT, &sealed, &st.client[i]) < 0)
            abort();
        buf_reset(&sealed);
    }
    uint64_t now = 1;
    while (size >= 3) {
        uint8_t op = data[0];
        size_t n = (size_t)data[1] << 8 | data[2];
        data += 3;
        size -= 3;
        if (n > size)
            n = size;
        now += (uint64_t)(op >> 4) * 50;
        if (op & 4)
            udp_peers_expire(&st.t, now);
        check_counts();
        if (udp_peers_next_deadline(&st.t) <= now && !(op & 4)) {
            udp_peers_expire(&st.t, now);
            if (udp_peers_next_deadline(&st.t) <= now)
                abort();
        }
        int ai = op & 3;
        st.from = &st.addr[ai];
        const uint8_t *dg = data;
        size_t dn = n;
        buf_reset(&sealed);
        if ((op & 8) && st.client[ai] && vt->conn_ready(st.client[ai]) &&
            vt->dgram_write(st.client[ai], data, n, &sealed) == 0) {
            dg = buf_head(&sealed);
            dn = buf_len(&sealed);
        }
        udp_peers_on_datagram(&st.t, st.from, dg, dn, now);
        st.from = NULL;
        check_counts();
        data += n;
        size -= n;
    }
    udp_peers_close(&st.t);
    if (udp_peers_count(&st.t) != 0 || atomic_load(&srv->nconns) != 0)
        abort();
    for (int i = 0; i < NADDR; i++)
        proto_conn_free(vt, st.client[i]);
    buf_free(&sealed);
    pthread_mutex_destroy(&srv->wake_mu);
    return 0;
}
