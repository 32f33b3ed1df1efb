/* SPDX-License-Identifier: MIT */
/* The PROXY protocol header (versions 1 and 2 of haproxy's doc/proxy-protocol.txt) that a load
 * balancer sends ahead of a TCP stream to say whose connection it relays: a sans-IO parser fed
 * bytes as they arrive. It never takes a byte past the header and holds a small fixed state
 * whatever the header's length (a version 2 header's TLVs are walked, bounds-checked and
 * skipped, never stored). */
#ifndef SECHO_PROXY_HDR_H
#define SECHO_PROXY_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* The longest version 1 line, CRLF included ("PROXY UNKNOWN" with two IPv6 addresses). */
#define PROXY_HDR_V1_MAX 107
/* Version 1 starts with these 6 bytes, version 2 with the 12 of its signature. */
#define PROXY_HDR_V1_SIG     "PROXY "
#define PROXY_HDR_V1_SIG_LEN 6
#define PROXY_HDR_V2_SIG     "\r\n\r\n\0\r\nQUIT\n"
#define PROXY_HDR_V2_SIG_LEN 12
/* Version 2: the fixed part (signature, version and command, family, length), then `length`
 * bytes of addresses and TLVs. */
#define PROXY_HDR_V2_FIXED 16
#define PROXY_HDR_V2_MAX   (PROXY_HDR_V2_FIXED + 65535)

enum proxy_hdr_status {
    PROXY_HDR_NEED_MORE, /* every byte given was taken; the header goes on */
    PROXY_HDR_DONE,      /* the header is complete: see proxy_hdr.res */
    PROXY_HDR_ERROR,     /* not a valid header: see proxy_hdr.err; the connection MUST end */
};

/* Why a header was refused (proxy_hdr_strerror). The last three are not the parser's: the
 * connection engine reports them through the same codes, so one text function serves. */
enum proxy_hdr_error {
    PROXY_HDR_E_NONE = 0,
    PROXY_HDR_E_SIGNATURE,   /* neither "PROXY " nor the version 2 signature */
    PROXY_HDR_E_V1_TOO_LONG, /* version 1: no CRLF within PROXY_HDR_V1_MAX bytes */
    PROXY_HDR_E_V1_SYNTAX,   /* version 1: not "PROXY TCP4|TCP6 SRC DST SPORT DPORT" (single
                                spaces, CRLF) nor "PROXY UNKNOWN..." */
    PROXY_HDR_E_V1_ADDRESS,  /* version 1: an address not in its family's canonical form */
    PROXY_HDR_E_V1_PORT,     /* version 1: a port above 65535, with a leading zero or a sign */
    PROXY_HDR_E_V2_VERSION,  /* version 2: the version nibble is not 2 */
    PROXY_HDR_E_V2_COMMAND,  /* version 2: neither LOCAL nor PROXY */
    PROXY_HDR_E_V2_FAMILY,   /* version 2: an undefined address family or transport */
    PROXY_HDR_E_V2_LENGTH,   /* version 2: shorter than the family's address block */
    PROXY_HDR_E_V2_TLV,      /* version 2: a TLV that runs past the header's length */
    PROXY_HDR_E_UNTRUSTED,   /* engine: a header from an address that is not trusted */
    PROXY_HDR_E_TIMEOUT,     /* engine: no whole header within the handshake timeout */
    PROXY_HDR_E_INCOMPLETE,  /* engine: the peer closed before a whole header came */
};

/* What a complete header says. */
struct proxy_hdr_result {
    uint8_t version; /* 1 or 2 */
    /* True when src/dst hold the relayed connection's endpoints (AF_INET or AF_INET6, with
     * ports). False for a version 2 LOCAL command (the proxy's own connection, e.g. a health
     * check), version 1 UNKNOWN, and the families or transports that carry no TCP address
     * (AF_UNSPEC, AF_UNIX, UNSPEC or DGRAM transport): the connection's own endpoints stand. */
    bool has_addr;
    bool local; /* version 2 LOCAL command */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } src, dst;
};

/* The parser's state: caller-owned, no allocation. The fields are the parser's; read only
 * `res` after PROXY_HDR_DONE and `err` after PROXY_HDR_ERROR. */
struct proxy_hdr {
    enum proxy_hdr_status status;
    enum proxy_hdr_error err;
    uint8_t version; /* 0 until the first byte tells */
    /* Version 1: the line so far. Version 2: the fixed part, then the address block of an
     * AF_INET or AF_INET6 header (at most 36 bytes). */
    uint8_t head[PROXY_HDR_V1_MAX + 1];
    size_t have;    /* bytes in head */
    size_t seen;    /* version 2: bytes of the header taken */
    size_t total;   /* version 2: PROXY_HDR_V2_FIXED + length, once the fixed part is in */
    size_t keep;    /* version 2: bytes of the header kept in head (fixed part + addresses) */
    size_t tlv_at;  /* version 2: where the TLVs start (0: the rest is skipped unread) */
    uint8_t tlv[3]; /* version 2: the TLV header being read */
    uint8_t tlv_have;
    size_t tlv_left; /* version 2: bytes of the current TLV's value still to skip */
    struct proxy_hdr_result res;
};

/* Readies h for a new header. */
void proxy_hdr_init(struct proxy_hdr *h);

/*
 * Feeds the next n bytes of the stream (n may be 0). Sets *used to the bytes taken from p:
 * on PROXY_HDR_NEED_MORE all n; on PROXY_HDR_DONE those up to the header's last byte (the
 * rest of p belongs to what follows the header); on PROXY_HDR_ERROR those looked at. Once
 * DONE or ERROR, every further call returns the same with *used 0. Pure: no allocation, no
 * I/O; a header split anywhere, across any number of calls, parses as if given at once.
 */
enum proxy_hdr_status proxy_hdr_feed(struct proxy_hdr *h, const uint8_t *p, size_t n, size_t *used);

/* What the first bytes of a stream say, for a peer that may not send a header. */
enum proxy_hdr_sniff {
    PROXY_SNIFF_NO,    /* they are not the start of a PROXY header */
    PROXY_SNIFF_MAYBE, /* all n are a strict prefix of a signature: more bytes will tell */
    PROXY_SNIFF_YES,   /* they start with a signature ("PROXY " or version 2's 12 bytes) */
};
/* Looks at the first n bytes of a stream (n may be 0: MAYBE). Pure. */
enum proxy_hdr_sniff proxy_hdr_sniff(const uint8_t *p, size_t n);

/* Human text for an error code (PROXY_HDR_E_*); never NULL. */
const char *proxy_hdr_strerror(enum proxy_hdr_error err);

#endif
