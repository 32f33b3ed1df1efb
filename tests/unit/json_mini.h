/* SPDX-License-Identifier: MIT */
/* A small JSON reader for test data (the Noise vector files): builds a tree of objects,
 * arrays and strings; numbers and literals are kept as their raw text. Test use only. */
#ifndef SECHO_JSON_MINI_H
#define SECHO_JSON_MINI_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum json_type { JSON_NULL, JSON_STRING, JSON_RAW, JSON_ARRAY, JSON_OBJECT };

struct json {
    enum json_type type;
    char *str;          /* JSON_STRING (unescaped), JSON_RAW (number, true, false) */
    size_t n;           /* children */
    struct json *items; /* JSON_ARRAY / JSON_OBJECT values */
    char **keys;        /* JSON_OBJECT keys */
};

struct json_parser {
    const char *p, *end;
    int depth;
};

static void json_ws(struct json_parser *jp)
{
    while (jp->p < jp->end && strchr(" \t\r\n", *jp->p))
        jp->p++;
}

static char *json_string(struct json_parser *jp)
{
    if (jp->p >= jp->end || *jp->p != '"')
        return NULL;
    jp->p++;
    /* Size the copy by the raw length up to the closing quote (escapes only shrink it). */
    const char *q = jp->p;
    while (q < jp->end && *q != '"')
        q += (*q == '\\' && q + 1 < jp->end) ? 2 : 1;
    char *out = malloc((size_t)(q - jp->p) + 1), *o = out;
    if (!out)
        return NULL;
    while (jp->p < jp->end && *jp->p != '"') {
        char c = *jp->p++;
        if (c == '\\') {
            if (jp->p >= jp->end)
                break;
            c = *jp->p++;
            switch (c) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u': /* not needed by the vector files: keep a marker */
                if (jp->end - jp->p < 4)
                    goto bad;
                jp->p += 4;
                c = '?';
                break;
            default: /* '"', '\\', '/' */
                break;
            }
        }
        *o++ = c;
    }
    if (jp->p >= jp->end)
        goto bad;
    jp->p++;
    *o = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

static bool json_value(struct json_parser *jp, struct json *v);

static bool json_push(struct json *v, size_t *cap)
{
    if (v->n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 8;
    struct json *items = realloc(v->items, ncap * sizeof(*items));
    if (!items)
        return false;
    v->items = items;
    if (v->type == JSON_OBJECT) {
        char **keys = realloc(v->keys, ncap * sizeof(*keys));
        if (!keys)
            return false;
        v->keys = keys;
    }
    *cap = ncap;
    return true;
}

static bool json_value(struct json_parser *jp, struct json *v)
{
    memset(v, 0, sizeof(*v));
    json_ws(jp);
    if (jp->p >= jp->end || ++jp->depth > 64)
        return false;
    bool ok = false;
    size_t cap = 0;
    char c = *jp->p;
    if (c == '"') {
        v->type = JSON_STRING;
        ok = (v->str = json_string(jp)) != NULL;
    } else if (c == '[' || c == '{') {
        char close = c == '[' ? ']' : '}';
        v->type = c == '[' ? JSON_ARRAY : JSON_OBJECT;
        jp->p++;
        json_ws(jp);
        if (jp->p < jp->end && *jp->p == close) {
            jp->p++;
            ok = true;
        }
        while (!ok) {
            if (!json_push(v, &cap))
                break;
            if (v->type == JSON_OBJECT) {
                json_ws(jp);
                v->keys[v->n] = json_string(jp);
                if (!v->keys[v->n])
                    break;
                json_ws(jp);
                if (jp->p >= jp->end || *jp->p != ':') {
                    free(v->keys[v->n]);
                    break;
                }
                jp->p++;
            }
            bool good = json_value(jp, &v->items[v->n]);
            v->n++; /* counted even on failure so json_free releases it */
            if (!good)
                break;
            json_ws(jp);
            if (jp->p < jp->end && *jp->p == ',') {
                jp->p++;
                continue;
            }
            if (jp->p < jp->end && *jp->p == close) {
                jp->p++;
                ok = true;
            }
            break;
        }
    } else {
        const char *s = jp->p;
        while (jp->p < jp->end && !strchr(",]} \t\r\n", *jp->p))
            jp->p++;
        v->type = JSON_RAW;
        v->str = strndup(s, (size_t)(jp->p - s));
        ok = v->str != NULL && jp->p > s;
    }
    jp->depth--;
    return ok;
}

static void json_free(struct json *v)
{
    for (size_t i = 0; i < v->n; i++) {
        json_free(&v->items[i]);
        if (v->type == JSON_OBJECT)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    memset(v, 0, sizeof(*v));
}

/* Parses a whole file. Returns false on I/O or syntax errors. */
static bool json_load(const char *path, struct json *root)
{
    memset(root, 0, sizeof(*root));
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char *data = NULL;
    size_t len = 0, cap = 0;
    bool ok = false;
    for (;;) {
        if (cap - len < 65536) {
            char *d = realloc(data, cap + 65536 * 4);
            if (!d)
                goto out;
            data = d;
            cap += 65536 * 4;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f))
        goto out;
    struct json_parser jp = {data, data + len, 0};
    ok = json_value(&jp, root);
    json_ws(&jp);
    ok = ok && jp.p == jp.end;
    if (!ok)
        json_free(root);
out:
    free(data);
    fclose(f);
    return ok;
}

/* Member of an object by key, or NULL. */
static const struct json *json_get(const struct json *o, const char *key)
{
    if (!o || o->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0)
            return &o->items[i];
    return NULL;
}

/* String member, or NULL. */
static const char *json_get_str(const struct json *o, const char *key)
{
    const struct json *v = json_get(o, key);
    return v && v->type == JSON_STRING ? v->str : NULL;
}

#endif
