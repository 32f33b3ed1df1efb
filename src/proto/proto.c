/* SPDX-License-Identifier: MIT */
/* Protocol error strings. */
#include "proto.h"

#include <string.h>

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
