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
#include "trust.h"

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
    struct proto_trust t = {
        .known_hosts = x->known_hosts,
        .host_id = x->host_id,
        .kind = NULL, /* secure's known_hosts lines are the untagged ones */
        .noun = "key",
        .desc = "public key",
        .has_pin = x->has_pin,
        .accept_new = x->accept_new,
        .confirm = x->confirm,
        .confirm_arg = x->confirm_arg,
    };
    char msg[SECURE_ERRLEN];
    memcpy(t.pin, x->pin, sizeof(t.pin));
    int r = proto_trust_server(&t, rs, msg, sizeof(msg));
    crypto_wipe(&t, sizeof(t));
    if (r != 0)
        return secure__fail(c, r, "%s", msg);
    /* On success c->err is empty or holds the notice the user is owed (the key was added). */
    memcpy(c->err, msg, strlen(msg) + 1);
    return 0;
}

void secure__set_admin(struct secure_conn *c)
{
    if (c->role == PROTO_SERVER)
        c->admin =
            keys_set_contains(&c->ctx->admins, noise_handshake_remote_static(&c->hs)) ? 1 : 0;
}
