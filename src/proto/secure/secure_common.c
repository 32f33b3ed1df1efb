/* SPDX-License-Identifier: MIT */
/* secure (secho/1): the rules both forms follow: which suites exist, what the prologue binds,
 * when a server key is trusted (SPEC: a pin wins, a changed known_hosts key never passes),
 * who is an admin, and how a conn keeps the reason it failed. */
#include "secure_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "keys.h"

const char *const secure__suites[SECURE_NSUITES] = {
    "Noise_XX_25519_AESGCM_SHA256",
    "Noise_XX_25519_AESGCM_BLAKE2b",
    "Noise_XX_25519_ChaChaPoly_SHA256",
    "Noise_XX_25519_ChaChaPoly_BLAKE2b",
};

int secure__suite_find(const char *name, size_t len)
{
    for (int i = 0; i < SECURE_NSUITES; i++)
        if (strlen(secure__suites[i]) == len && memcmp(secure__suites[i], name, len) == 0)
            return i;
    return -1;
}

size_t secure__prologue(uint8_t out[static SECURE_PROLOGUE_MAX], enum secure_form form,
                        unsigned suite)
{
    const char *label = form == SECURE_FORM_UDP ? SECURE_UDP_PROLOGUE : SECURE_PROLOGUE;
    const char *name = secure__suites[suite];
    size_t k = strlen(label), n = strlen(name);
    /* out is bytes (label, 2-byte length, name), not a C string: no terminator is owed. */
    memcpy(out, label, k); /* NOLINT(bugprone-not-null-terminated-result) */
    out[k] = (uint8_t)(n >> 8);
    out[k + 1] = (uint8_t)n;
    memcpy(out + k + 2, name, n); /* NOLINT(bugprone-not-null-terminated-result) */
    return k + 2 + n;
}

int secure__fail(struct secure_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    c->state = ST_DEAD;
    c->dead_err = code;
    return code;
}

int secure__drop(struct secure_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return code;
}

int secure__trust_server(struct secure_conn *c, const uint8_t rs[static NOISE_DHLEN])
{
    const struct secure_ctx *x = c->ctx;
    const char *host = x->host_id ? x->host_id : "the server";
    char b64[KEYS_B64LEN + 1], oldb64[KEYS_B64LEN + 1], kerr[256] = "";
    uint8_t old[NOISE_DHLEN];
    keys_b64_encode(rs, b64);
    /* On success c->err is empty or holds the notice the user is owed (the key was added). */
    c->err[0] = '\0';

    /* SPEC: a pin always wins, even over --accept-new. */
    if (x->has_pin) {
        if (crypto_equal(rs, x->pin, NOISE_DHLEN))
            return 0;
        keys_b64_encode(x->pin, oldb64);
        return secure__fail(c, PROTO_E_TRUST,
                            "server key mismatch for %s: it presented %s but --server-key is %s",
                            host, b64, oldb64);
    }
    int known = KEYS_HOST_UNKNOWN;
    if (x->known_hosts && x->host_id) {
        known = keys_known_hosts_check(x->known_hosts, x->host_id, rs, old, kerr, sizeof(kerr));
        if (known < 0)
            return secure__fail(c, PROTO_E_TRUST, "cannot check the server key: %s", kerr);
    }
    if (known == KEYS_HOST_MATCH)
        return 0;
    if (known == KEYS_HOST_CHANGED) {
        /* Like ssh: a changed key may be an attack; never accepted automatically. */
        keys_b64_encode(old, oldb64);
        /* ssh names the offending line: FILE:LINE, or FILE alone if it cannot be found. */
        char where[16] = "";
        int line = keys_known_hosts_line(x->known_hosts, x->host_id, old);
        if (line > 0)
            snprintf(where, sizeof(where), ":%d", line);
        return secure__fail(c, PROTO_E_TRUST,
                            "WARNING: THE SERVER KEY FOR %s HAS CHANGED!\n"
                            "Someone could be intercepting the connection, or the server key was "
                            "replaced.\n"
                            "%s%s lists %s,\nthe server presented %s.\n"
                            "If the change is expected, remove the old entry with:\n"
                            "  secho keygen -R %s --known-hosts %s",
                            host, x->known_hosts, where, oldb64, b64, host, x->known_hosts);
    }
    bool yes = x->accept_new;
    if (!yes && x->confirm) {
        char q[SECURE_ERRLEN];
        snprintf(q, sizeof(q),
                 "The authenticity of %s can't be established.\nIts public key is %s.\n"
                 "Trust it%s?",
                 host, b64, x->known_hosts && x->host_id ? " and remember it" : "");
        yes = x->confirm(x->confirm_arg, q);
        if (!yes)
            return secure__fail(c, PROTO_E_TRUST, "server key %s for %s not accepted", b64, host);
    }
    if (!yes)
        return secure__fail(c, PROTO_E_TRUST,
                            "unknown server key %s for %s; check it, then connect with "
                            "--server-key %s or --accept-new",
                            b64, host, b64);
    if (!x->known_hosts || !x->host_id)
        return 0;
    if (keys_known_hosts_add(x->known_hosts, x->host_id, rs, kerr, sizeof(kerr)) != 0)
        snprintf(c->err, sizeof(c->err), "warning: key accepted but not recorded: %s", kerr);
    else /* ssh's wording, with the key and the file */
        snprintf(c->err, sizeof(c->err),
                 "Warning: Permanently added '%s' (%s) to the list of known hosts (%s).", host, b64,
                 x->known_hosts);
    return 0;
}

void secure__set_admin(struct secure_conn *c)
{
    if (c->role == PROTO_SERVER)
        c->admin =
            keys_set_contains(&c->ctx->admins, noise_handshake_remote_static(&c->hs)) ? 1 : 0;
}
