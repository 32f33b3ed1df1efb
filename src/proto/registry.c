/* SPDX-License-Identifier: MIT */
/* The protocol registry: one line per protocol. */
#include "proto.h"

#include <string.h>

static const struct proto_vt *const protos[] = {
    &proto_plain, &proto_secure, &proto_lab_dh, &proto_lab_fernet, &proto_tls,
};

const struct proto_vt *proto_find(const char *name)
{
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
        if (strcmp(protos[i]->name, name) == 0)
            return protos[i];
    return NULL;
}

const struct proto_vt *proto_at(size_t i)
{
    return i < sizeof(protos) / sizeof(protos[0]) ? protos[i] : NULL;
}
