/* SPDX-License-Identifier: MIT */
/* Tiny assertion helpers for unit tests: print file, line, expression and both values. */
#ifndef SECHO_CHECK_H
#define SECHO_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #expr);               \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_) {                                                                \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b,  \
                    check_a_, check_b_);                                                           \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (strcmp(check_a_, check_b_) != 0) {                                                     \
            fprintf(stderr, "%s:%d: %s == %s failed:\n  got  \"%s\"\n  want \"%s\"\n", __FILE__,   \
                    __LINE__, #a, #b, check_a_, check_b_);                                         \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_MEM(a, b, n)                                                                         \
    do {                                                                                           \
        if (memcmp((a), (b), (n)) != 0) {                                                          \
            fprintf(stderr, "%s:%d: %s == %s failed (%zu bytes)\n", __FILE__, __LINE__, #a, #b,    \
                    (size_t)(n));                                                                  \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

/* Ends main(): prints a summary line and returns the exit status. */
#define CHECK_DONE()                                                                               \
    (fprintf(stderr, "%s: %s (%d failure%s)\n", __FILE__, check_failures ? "FAIL" : "ok",          \
             check_failures, check_failures == 1 ? "" : "s"),                                      \
     check_failures ? 1 : 0)

#endif
