/* SPDX-License-Identifier: MIT */
/* Protocol registry and error strings. */
#include "proto.h"

#include <string.h>

static const struct proto_vt *const protos[] = {
    &proto_plain,
    &proto_secure,
    &proto_lab_dh,
    &proto_lab_fernet,
};

const struct proto_vt *proto_find(const char *name)
{
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
        if (strcmp(protos[i]->name, name) == 0)
            return protos[i];
    return NULL;
}

const char *proto_strerror(int err)
{
    switch (err) {
    case PROTO_E_AUTH:
        return "authentication failed";
    case PROTO_E_PARSE:
        return "malformed input";
    case PROTO_E_TOOBIG:
        return "message too long";
    case PROTO_E_STATE:
        return "protocol state error";
    case PROTO_E_LIMIT:
        return "session limit reached";
    case PROTO_E_CRYPTO:
        return "crypto library failure";
    case PROTO_E_TRUST:
        return "peer key not trusted";
    case PROTO_DROP:
        return "dropped";
    default:
        return err < 0 ? strerror(-err) : "no error";
    }
}
