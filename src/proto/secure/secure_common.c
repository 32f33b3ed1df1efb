/* SPDX-License-Identifier: MIT */
/* secure (secho/1): the rules both forms follow: which suites exist, what the prologue binds,
 * when a server key is trusted (SPEC: a pin wins, a changed known_hosts key never passes),
 * who is an admin, and how a conn keeps the reason it failed. */
#include "secure_common.h"

#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

char *secure__errbuf(struct secure_conn *c)
{
    if (!c->err)
        c->err = calloc(1, SECURE_ERRLEN);
    return c->err;
}

int secure__fail(struct secure_conn *c, int code, const char *fmt, ...)
{
    char *e = secure__errbuf(c);
    va_list ap;
    va_start(ap, fmt);
    if (e)
        vsnprintf(e, SECURE_ERRLEN, fmt, ap);
    va_end(ap);
    c->state = ST_DEAD;
    c->dead_err = code;
    return code;
}

int secure__drop(struct secure_conn *c, int code, const char *fmt, ...)
{
    char *e = secure__errbuf(c);
    va_list ap;
    va_start(ap, fmt);
    if (e)
        vsnprintf(e, SECURE_ERRLEN, fmt, ap);
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
    if (msg[0]) {
        char *e = secure__errbuf(c); /* held only while there is something to say */
        if (e)
            memcpy(e, msg, strlen(msg) + 1);
    } else if (c->err) {
        c->err[0] = '\0';
    }
    return 0;
}

void secure__set_admin(struct secure_conn *c)
{
    const uint8_t *rs = secure__remote_static(c);
    if (c->role == PROTO_SERVER)
        c->admin = rs && keys_set_contains(&c->ctx->admins, rs) ? 1 : 0;
}

int secure__hs_begin(struct secure_conn *c)
{
    secure__hs_end(c);
    c->hs = calloc(1, sizeof(*c->hs));
    if (!c->hs)
        return secure__fail(c, -ENOMEM, "no memory for a handshake");
    return 0;
}

void secure__hs_end(struct secure_conn *c)
{
    if (!c->hs)
        return;
    noise_handshake_free(c->hs);
    crypto_wipe(c->hs, sizeof(*c->hs));
    free(c->hs);
    c->hs = NULL;
}

int secure__split(struct secure_conn *c)
{
    if (!c->hs)
        return secure__fail(c, PROTO_E_STATE, "split: no handshake");
    int r = secure__noise(noise_handshake_split(c->hs, &c->send, &c->recv));
    if (r != 0)
        return secure__fail(c, r, "split: %s", proto_strerror(r));
    const uint8_t *rs = noise_handshake_remote_static(c->hs);
    c->has_rs = rs != NULL;
    if (rs)
        memcpy(c->rs, rs, NOISE_DHLEN);
    secure__hs_end(c);
    return 0;
}

const uint8_t *secure__remote_static(const struct secure_conn *c)
{
    if (c->hs)
        return noise_handshake_remote_static(c->hs);
    return c->has_rs ? c->rs : NULL;
}
