/* SPDX-License-Identifier: MIT */
/* The client's trust rules (SPEC "Client options"), shared by every protocol that pins. */
#include "trust.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "proto.h"

int proto_trust_server(const struct proto_trust *t, const uint8_t id[static KEYS_LEN], char *msg,
                       size_t msglen)
{
    const char *host = t->host_id ? t->host_id : "the server";
    const char *noun = t->noun ? t->noun : "key", *desc = t->desc ? t->desc : "public key";
    char b64[KEYS_B64LEN + 1], oldb64[KEYS_B64LEN + 1], kerr[256] = "", upper[32];
    uint8_t old[KEYS_LEN];
    keys_b64_encode(id, b64);
    msg[0] = '\0';

    /* SPEC: a pin always wins, even over --accept-new. */
    if (t->has_pin) {
        if (crypto_equal(id, t->pin, KEYS_LEN))
            return 0;
        keys_b64_encode(t->pin, oldb64);
        snprintf(msg, msglen, "server %s mismatch for %s: it presented %s but --server-key is %s",
                 noun, host, b64, oldb64);
        return PROTO_E_TRUST;
    }
    int known = KEYS_HOST_UNKNOWN;
    if (t->known_hosts && t->host_id) {
        known = keys_known_hosts_check(t->known_hosts, t->host_id, t->kind, id, old, kerr,
                                       sizeof(kerr));
        if (known < 0) {
            snprintf(msg, msglen, "cannot check the server %s: %s", noun, kerr);
            return PROTO_E_TRUST;
        }
    }
    if (known == KEYS_HOST_MATCH)
        return 0;
    if (known == KEYS_HOST_CHANGED) {
        /* Like ssh: a changed key may be an attack; never accepted automatically. */
        size_t i;
        for (i = 0; noun[i] && i + 1 < sizeof(upper); i++)
            upper[i] = (char)toupper((unsigned char)noun[i]);
        upper[i] = '\0';
        keys_b64_encode(old, oldb64);
        /* ssh names the offending line: FILE:LINE, or FILE alone if it cannot be found. */
        char where[16] = "";
        int line = keys_known_hosts_line(t->known_hosts, t->host_id, t->kind, old);
        if (line > 0)
            snprintf(where, sizeof(where), ":%d", line);
        snprintf(msg, msglen,
                 "WARNING: THE SERVER %s FOR %s HAS CHANGED!\n"
                 "Someone could be intercepting the connection, or the server %s was "
                 "replaced.\n"
                 "%s%s lists %s,\nthe server presented %s.\n"
                 "If the change is expected, remove the old entry with:\n"
                 "  secho keygen -R %s --known-hosts %s",
                 upper, host, noun, t->known_hosts, where, oldb64, b64, host, t->known_hosts);
        return PROTO_E_TRUST;
    }
    bool yes = t->accept_new;
    if (!yes && t->confirm) {
        char q[PROTO_TRUST_MSGLEN];
        snprintf(q, sizeof(q),
                 "The authenticity of %s can't be established.\nIts %s is %s.\n"
                 "Trust it%s?",
                 host, desc, b64, t->known_hosts && t->host_id ? " and remember it" : "");
        yes = t->confirm(t->confirm_arg, q);
        if (!yes) {
            snprintf(msg, msglen, "server %s %s for %s not accepted", noun, b64, host);
            return PROTO_E_TRUST;
        }
    }
    if (!yes) {
        snprintf(msg, msglen,
                 "unknown server %s %s for %s; check it, then connect with "
                 "--server-key %s or --accept-new",
                 noun, b64, host, b64);
        return PROTO_E_TRUST;
    }
    if (!t->known_hosts || !t->host_id)
        return 0;
    if (keys_known_hosts_add(t->known_hosts, t->host_id, t->kind, id, kerr, sizeof(kerr)) != 0)
        snprintf(msg, msglen, "warning: %s accepted but not recorded: %s", noun, kerr);
    else /* ssh's wording, with the key and the file */
        snprintf(msg, msglen,
                 "Warning: Permanently added '%s' (%s) to the list of known hosts (%s).", host, b64,
                 t->known_hosts);
    return 0;
}
