/* SPDX-License-Identifier: MIT */
/* Whether a client trusts the identity a server presented (secure: its static public key;
 * tls: its certificate's SHA-256 fingerprint): the SPEC's trust rules in one place, so that
 * every protocol pins the same way. */
#ifndef SECHO_TRUST_H
#define SECHO_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"

/* Room for any sentence proto_trust_server writes. */
#define PROTO_TRUST_MSGLEN 512

/* A client's trust settings, from its proto_opts. Strings are borrowed. */
struct proto_trust {
    const char *known_hosts; /* the trust store; NULL: nothing is looked up or remembered */
    const char *host_id;     /* "HOST:PORT" as given; NULL: as known_hosts NULL */
    const char *kind;        /* its known_hosts lines' kind (keys.h): NULL for secure's */
    const char *noun;        /* what the server presented, in "server NOUN": "key" */
    const char *desc;        /* the same for the question, in "Its DESC is": "public key" */
    bool has_pin;            /* --server-key was given: pin */
    uint8_t pin[KEYS_LEN];
    bool accept_new;
    /* Asks yes/no on the terminal; NULL when there is none. It blocks. */
    bool (*confirm)(void *arg, const char *question);
    void *confirm_arg;
};

/*
 * Decides on `id`, the identity a server presented (32 bytes, shown as keys_b64_encode):
 * a pin always wins (a mismatch is refused even with accept_new); a known_hosts line of
 * this kind for host_id that carries id passes; lines of this kind for it that carry
 * another never pass (ssh's "HAS CHANGED" warning); an unknown one passes with accept_new or
 * a yes on the terminal, and is then added to known_hosts. Returns 0 with msg empty or
 * holding the notice the user is owed (the identity was added, or could not be), or
 * PROTO_E_TRUST with msg saying why and what to do.
 */
int proto_trust_server(const struct proto_trust *t, const uint8_t id[static KEYS_LEN], char *msg,
                       size_t msglen);

#endif
