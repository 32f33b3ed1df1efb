/* SPDX-License-Identifier: MIT */
/* TLS 1.3 through libssl over a BIO on the caller's memory, and the certificate work it needs.
 * Every call that
 * can fail clears OpenSSL's (per-thread) error queue first and reads its reason after, so a
 * failure of one connection never shows up as another's. */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "keys.h"

#define PEM_MAX (64 * 1024) /* a private key in PEM; RSA-8192 is about 6.5 KiB */
/* The self-signed certificate: names a client with --ca can check, and a long life (it is
 * pinned by its fingerprint, not trusted for its dates). */
#define SELF_SAN  "DNS:localhost,IP:127.0.0.1,IP:::1"
#define SELF_CN   "secho"
#define SELF_DAYS (365L * 20)

struct crypto_tls_ctx {
    SSL_CTX *ssl;
    bool server;
    uint8_t fp[CRYPTO_TLS_FPLEN];
};

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* OpenSSL's reason for the first error queued ("wrong version number"), then an empty
 * queue. */
static const char *lib_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (e && !r) {
        ERR_error_string_n(e, buf, cap);
        r = buf;
    }
    ERR_clear_error();
    return r ? r : "unknown error";
}

/* ---- certificates ---- */

static int fingerprint(X509 *x, uint8_t fp[static CRYPTO_TLS_FPLEN])
{
    unsigned int n = 0;
    if (!X509_digest(x, EVP_sha256(), fp, &n) || n != CRYPTO_TLS_FPLEN)
        return CRYPTO_TLS_E_LIB;
    return 0;
}

static bool add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
    bool ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* A self-signed certificate for key. NULL on failure. */
static X509 *make_cert(EVP_PKEY *key)
{
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();
    uint8_t serial[16];
    bool ok = x && bn && crypto_random(serial, sizeof(serial)) == 0;
    if (ok) {
        serial[0] &= 0x7f; /* positive, as RFC 5280 asks */
        serial[0] |= 0x40; /* and exactly 16 bytes long */
        ok = BN_bin2bn(serial, sizeof(serial), bn) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) && X509_set_version(x, 2);
    }
    X509_NAME *name = ok ? X509_get_subject_name(x) : NULL;
    ok = ok && name &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)SELF_CN, -1,
                                    -1, 0) &&
         X509_set_issuer_name(x, name);
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
         X509_time_adj_ex(X509_getm_notAfter(x), (int)SELF_DAYS, 0, NULL) &&
         X509_set_pubkey(x, key);
    ok = ok && add_ext(x, NID_basic_constraints, "critical,CA:FALSE") &&
         add_ext(x, NID_key_usage, "critical,digitalSignature") &&
         add_ext(x, NID_ext_key_usage, "serverAuth") &&
         add_ext(x, NID_subject_alt_name, SELF_SAN) &&
         add_ext(x, NID_subject_key_identifier, "hash");
    ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    BN_free(bn);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Refuses the passphrase prompt: an encrypted key cannot be read unattended. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Loads a private key (PEM) through keys_read_private. Returns 0, -ENOENT or <0. */
static int load_key(const char *path, EVP_PKEY **key, char *err, size_t errlen)
{
    char *pem = OPENSSL_malloc(PEM_MAX); /* too large for a thread's stack */
    size_t len = 0;
    char why[256];
    if (!pem)
        return fail(err, errlen, -ENOMEM, "out of memory");
    int r = keys_read_private(path, pem, PEM_MAX, &len, err, errlen);
    if (r == 0) {
        ERR_clear_error();
        BIO *b = BIO_new_mem_buf(pem, (int)len);
        *key = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
        BIO_free(b);
        if (!*key)
            r = fail(err, errlen, CRYPTO_TLS_E_FILE,
                     "%s is not a private key in PEM form (or is encrypted): %s", path,
                     lib_reason(why, sizeof(why)));
    }
    OPENSSL_clear_free(pem, PEM_MAX);
    return r;
}

/* The PEM text of key (PKCS#8, unencrypted) or cert into *out (OPENSSL_malloc'd, its
 * length in *len). Returns 0 or CRYPTO_TLS_E_LIB. */
static int to_pem(EVP_PKEY *key, X509 *cert, char **out, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    bool ok = b && (key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
                        : PEM_write_bio_X509(b, cert));
    long n = ok ? BIO_get_mem_data(b, &p) : 0;
    *out = n > 0 ? OPENSSL_malloc((size_t)n) : NULL;
    if (*out) {
        memcpy(*out, p, (size_t)n);
        *len = (size_t)n;
    }
    BIO_free(b); /* a memory BIO clears its buffer when freed */
    return *out ? 0 : CRYPTO_TLS_E_LIB;
}

/* Writes a new file with pem (mode), then frees pem (wiped). -EEXIST: someone else made it
 * first. */
static int save_pem(const char *path, char *pem, size_t len, unsigned mode, char *err,
                    size_t errlen)
{
    int r = keys_write_new(path, pem, len, mode, err, errlen);
    OPENSSL_clear_free(pem, len);
    return r;
}

/* The key at path, made (and saved 0600) if the file does not exist. */
static int key_load_or_make(const char *path, EVP_PKEY **key, char *err, size_t errlen)
{
    int r = load_key(path, key, err, errlen);
    if (r != -ENOENT)
        return r;
    char *pem;
    size_t len;
    *key = EVP_EC_gen("P-256");
    if (!*key || to_pem(*key, NULL, &pem, &len) != 0)
        return fail(err, errlen, CRYPTO_TLS_E_LIB, "cannot make a key pair");
    r = save_pem(path, pem, len, 0600, err, errlen);
    if (r == -EEXIST) { /* another process made one first: use theirs */
        EVP_PKEY_free(*key);
        *key = NULL;
        return load_key(path, key, err, errlen);
    }
    return r;
}

/* Loads a certificate chain (PEM): the leaf into *leaf, the rest into *chain. */
static int load_chain(const char *path, X509 **leaf, STACK_OF(X509) * *chain, char *err,
                      size_t errlen)
{
    char why[256];
    ERR_clear_error();
    BIO *b = BIO_new_file(path, "r");
    if (!b) {
        int e = errno ? errno : EIO;
        ERR_clear_error();
        return fail(err, errlen, e == ENOENT ? -ENOENT : -e, "cannot read certificate %s: %s", path,
                    strerror(e));
    }
    *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    *chain = *leaf ? sk_X509_new_null() : NULL;
    X509 *x;
    while (*chain && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(*chain, x))
            X509_free(x);
    BIO_free(b);
    if (!*leaf) {
        return fail(err, errlen, CRYPTO_TLS_E_FILE, "%s holds no certificate in PEM form: %s", path,
                    lib_reason(why, sizeof(why)));
    }
    ERR_clear_error(); /* the end of the file, after the last certificate */
    return *chain ? 0 : fail(err, errlen, CRYPTO_TLS_E_LIB, "out of memory");
}

/* The certificate at path, made self-signed for key (and saved 0644) if the file does not
 * exist; *made says which. */
static int cert_load_or_make(const char *path, EVP_PKEY *key, X509 **leaf, STACK_OF(X509) * *chain,
                             bool *made, char *err, size_t errlen)
{
    struct stat st;
    *made = false;
    if (stat(path, &st) == 0 || errno != ENOENT)
        return load_chain(path, leaf, chain, err, errlen);
    char *pem;
    size_t len;
    *leaf = make_cert(key);
    *chain = sk_X509_new_null();
    if (!*leaf || !*chain || to_pem(NULL, *leaf, &pem, &len) != 0)
        return fail(err, errlen, CRYPTO_TLS_E_LIB, "cannot make a certificate");
    int r = save_pem(path, pem, len, 0644, err, errlen);
    if (r == -EEXIST) {
        X509_free(*leaf);
        sk_X509_pop_free(*chain, X509_free);
        *leaf = NULL;
        *chain = NULL;
        return load_chain(path, leaf, chain, err, errlen);
    }
    *made = r == 0;
    return r;
}

static SSL_CTX *new_ctx(bool server)
{
    SSL_CTX *s = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!s)
        return NULL;
    if (!SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION)) {
        SSL_CTX_free(s);
        return NULL;
    }
    /* Nothing outlives a connection: no tickets, no session cache (no resumption). */
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    /* Decrypted application data is wiped in libssl's buffers once handed over. */
    SSL_CTX_set_options(s, SSL_OP_NO_TICKET | SSL_OP_CLEANSE_PLAINTEXT);
    if (server)
        SSL_CTX_set_num_tickets(s, 0);
    /* An idle session keeps no record buffers (libssl frees them when empty). */
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
    return s;
}

void crypto_tls_ctx_free(struct crypto_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl);
    OPENSSL_cleanse(ctx, sizeof(*ctx));
    OPENSSL_free(ctx);
}

int crypto_tls_server_ctx(const char *cert_file, const char *key_file, bool create,
                          struct crypto_tls_ctx **out, bool *created, char *err, size_t errlen)
{
    struct crypto_tls_ctx *c = OPENSSL_zalloc(sizeof(*c));
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    char why[256];
    bool made = false;
    int r;
    *out = NULL;
    if (created)
        *created = false;
    if (!c)
        return fail(err, errlen, -ENOMEM, "out of memory");
    c->server = true;
    c->ssl = new_ctx(true);
    if (!c->ssl) {
        r = fail(err, errlen, CRYPTO_TLS_E_LIB, "cannot set up TLS: %s",
                 lib_reason(why, sizeof(why)));
        goto out;
    }
    if (!cert_file && !key_file) {
        key = EVP_EC_gen("P-256");
        leaf = key ? make_cert(key) : NULL;
        r = leaf ? 0 : fail(err, errlen, CRYPTO_TLS_E_LIB, "cannot make a certificate");
        made = true;
    } else if (!cert_file || !key_file) {
        r = fail(err, errlen, -EINVAL, "a certificate needs its key and a key its certificate");
    } else if (create) {
        r = key_load_or_make(key_file, &key, err, errlen);
        if (r == 0)
            r = cert_load_or_make(cert_file, key, &leaf, &chain, &made, err, errlen);
    } else {
        r = load_key(key_file, &key, err, errlen);
        if (r == -ENOENT)
            r = fail(err, errlen, -ENOENT, "cannot open key file %s: %s", key_file,
                     strerror(ENOENT));
        if (r == 0)
            r = load_chain(cert_file, &leaf, &chain, err, errlen);
    }
    if (r != 0)
        goto out;
    ERR_clear_error();
    if (!SSL_CTX_use_cert_and_key(c->ssl, leaf, key, chain, 1)) {
        r = fail(err, errlen, CRYPTO_TLS_E_FILE, "%s and %s do not go together: %s",
                 cert_file ? cert_file : "the certificate", key_file ? key_file : "its key",
                 lib_reason(why, sizeof(why)));
        goto out;
    }
    if ((r = fingerprint(leaf, c->fp)) != 0) {
        fail(err, errlen, r, "cannot hash the certificate");
        goto out;
    }
    if (created)
        *created = made && cert_file;
    *out = c;
    c = NULL;
out:
    EVP_PKEY_free(key);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    crypto_tls_ctx_free(c);
    return r;
}

/* "[::1]" or "::1" or "name": an IP address or a DNS name for the certificate check. */
static bool set_peer_name(SSL_CTX *s, const char *host)
{
    char h[256];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(h))
        return false;
    memcpy(h, host, n);
    h[n] = '\0';
    X509_VERIFY_PARAM *p = SSL_CTX_get0_param(s);
    if (X509_VERIFY_PARAM_set1_ip_asc(p, h))
        return true;
    ERR_clear_error(); /* not an address: a name */
    return X509_VERIFY_PARAM_set1_host(p, h, 0) == 1;
}

int crypto_tls_client_ctx(const char *ca_file, const char *host, struct crypto_tls_ctx **out,
                          char *err, size_t errlen)
{
    struct crypto_tls_ctx *c = OPENSSL_zalloc(sizeof(*c));
    char why[256];
    int r = 0;
    *out = NULL;
    if (!c)
        return fail(err, errlen, -ENOMEM, "out of memory");
    ERR_clear_error();
    c->ssl = new_ctx(false);
    if (!c->ssl) {
        r = fail(err, errlen, CRYPTO_TLS_E_LIB, "cannot set up TLS: %s",
                 lib_reason(why, sizeof(why)));
    } else if (ca_file) {
        if (!SSL_CTX_load_verify_file(c->ssl, ca_file))
            r = fail(err, errlen, CRYPTO_TLS_E_FILE, "cannot use %s as a CA file: %s", ca_file,
                     lib_reason(why, sizeof(why)));
        else if (host && !set_peer_name(c->ssl, host))
            r = fail(err, errlen, -EINVAL, "cannot check certificates for host %s", host);
        else
            SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    } else {
        /* The caller pins the certificate's fingerprint after the handshake, which has
         * already proved that the server holds the certificate's key. */
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
    }
    if (r != 0) {
        crypto_tls_ctx_free(c);
        return r;
    }
    *out = c;
    return 0;
}

void crypto_tls_ctx_fingerprint(const struct crypto_tls_ctx *ctx,
                                uint8_t fp[static CRYPTO_TLS_FPLEN])
{
    memcpy(fp, ctx->fp, CRYPTO_TLS_FPLEN);
}

/* ---- sessions ---- */

/*
 * The BIO of every session: reads come from t->in, writes go onto t->out (struct crypto_tls
 * is its data). Between steps both are unset, so a stray read wants more and a stray write
 * fails; libssl never reads past the record the caller offered.
 */
static BIO_METHOD *io_method;
static CRYPTO_ONCE io_once = CRYPTO_ONCE_STATIC_INIT;

static int io_read(BIO *b, char *dst, size_t cap, size_t *got)
{
    struct crypto_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!t || t->in_len == 0) {
        BIO_set_retry_read(b); /* more to come, never end of file */
        *got = 0;
        return 0;
    }
    size_t k = cap < t->in_len ? cap : t->in_len;
    memcpy(dst, t->in, k);
    t->in += k;
    t->in_len -= k;
    *got = k;
    return 1;
}

static int io_write(BIO *b, const char *src, size_t n, size_t *put)
{
    struct crypto_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    *put = 0;
    if (!t || !t->out) {
        if (t)
            t->out_err = -EPIPE;
        return 0;
    }
    int r = buf_append(t->out, src, n);
    if (r != 0) {
        t->out_err = r;
        return 0;
    }
    *put = n;
    return 1;
}

static long io_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    const struct crypto_tls *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return t ? (long)t->in_len : 0;
    default:
        return 0;
    }
}

static int io_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void io_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "secho-tls");
    if (m && BIO_meth_set_read_ex(m, io_read) && BIO_meth_set_write_ex(m, io_write) &&
        BIO_meth_set_ctrl(m, io_ctrl) && BIO_meth_set_create(m, io_create)) {
        io_method = m; /* lives as long as the process */
        return;
    }
    BIO_meth_free(m);
}

int crypto_tls_new(struct crypto_tls *t, const struct crypto_tls_ctx *ctx)
{
    memset(t, 0, sizeof(*t));
    ERR_clear_error();
    if (!CRYPTO_THREAD_run_once(&io_once, io_method_make) || !io_method)
        return CRYPTO_TLS_E_LIB;
    SSL *s = SSL_new(ctx->ssl);
    BIO *b = BIO_new(io_method);
    if (!s || !b) {
        SSL_free(s);
        BIO_free(b);
        ERR_clear_error();
        return CRYPTO_TLS_E_LIB;
    }
    BIO_set_data(b, t);
    SSL_set_bio(s, b, b); /* one BIO both ways; s owns its one reference */
    if (ctx->server)
        SSL_set_accept_state(s);
    else
        SSL_set_connect_state(s);
    t->ssl = s;
    return 0;
}

void crypto_tls_free(struct crypto_tls *t)
{
    SSL_free(t->ssl); /* wipes the keys and libssl's buffers */
    memset(t, 0, sizeof(*t));
}

/* The outcome of a failed SSL call as a code and a sentence. */
static int step_error(struct crypto_tls *t, int ret, char *err, size_t errlen)
{
    char why[256];
    SSL *s = t->ssl;
    if (t->out_err)
        return fail(err, errlen, t->out_err, "output buffer: %s", strerror(-t->out_err));
    switch (SSL_get_error(s, ret)) {
    case SSL_ERROR_WANT_READ:
        ERR_clear_error();
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return CRYPTO_TLS_E_CLOSED;
    case SSL_ERROR_SSL: {
        long v = SSL_get_verify_result(s);
        const char *r = lib_reason(why, sizeof(why));
        if (v != X509_V_OK)
            return fail(err, errlen, CRYPTO_TLS_E_PROTO, "%s: %s", r,
                        X509_verify_cert_error_string(v));
        return fail(err, errlen, CRYPTO_TLS_E_PROTO, "%s", r);
    }
    default:
        return fail(err, errlen, CRYPTO_TLS_E_LIB, "TLS library failure: %s",
                    lib_reason(why, sizeof(why)));
    }
}

static void io_begin(struct crypto_tls *t, const uint8_t *in, size_t n, struct buf *out)
{
    t->in = in;
    t->in_len = n;
    t->out = out;
    t->out_err = 0;
    ERR_clear_error();
}

/* Ends a step that returned r: everything offered must have been taken. */
static int io_end(struct crypto_tls *t, int r, char *err, size_t errlen)
{
    size_t left = t->in_len;
    t->in = NULL;
    t->in_len = 0;
    t->out = NULL;
    if (r >= 0 && left > 0)
        return fail(err, errlen, CRYPTO_TLS_E_LIB, "%zu bytes offered past a record", left);
    return r;
}

int crypto_tls_handshake(struct crypto_tls *t, const uint8_t *in, size_t n, struct buf *out,
                         char *err, size_t errlen)
{
    io_begin(t, in, n, out);
    int r = SSL_do_handshake(t->ssl);
    return io_end(t, r == 1 ? 1 : step_error(t, r, err, errlen), err, errlen);
}

int crypto_tls_read(struct crypto_tls *t, const uint8_t *in, size_t n, struct buf *out, uint8_t *p,
                    size_t cap, size_t *got, char *err, size_t errlen)
{
    *got = 0;
    io_begin(t, in, n, out);
    int r = SSL_read_ex(t->ssl, p, cap, got);
    return io_end(t, r == 1 ? 1 : step_error(t, r, err, errlen), err, errlen);
}

int crypto_tls_write(struct crypto_tls *t, const uint8_t *p, size_t n, struct buf *out, char *err,
                     size_t errlen)
{
    size_t w = 0;
    io_begin(t, NULL, 0, out);
    /* Every record goes onto out in this one call: out has room (the caller reserved it). */
    int r = SSL_write_ex(t->ssl, p, n, &w);
    if (r == 1 && w == n)
        r = 0;
    else if ((r = step_error(t, r, err, errlen)) >= 0)
        r = fail(err, errlen, CRYPTO_TLS_E_LIB, "short TLS write");
    return io_end(t, r, err, errlen);
}

int crypto_tls_close(struct crypto_tls *t, struct buf *out)
{
    io_begin(t, NULL, 0, out);
    int r = SSL_shutdown(t->ssl);
    ERR_clear_error();
    return io_end(t, r >= 0 ? 0 : CRYPTO_TLS_E_PROTO, NULL, 0);
}

int crypto_tls_peer_fingerprint(const struct crypto_tls *t, uint8_t fp[static CRYPTO_TLS_FPLEN])
{
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    return x ? fingerprint(x, fp) : CRYPTO_TLS_E_PROTO;
}

const char *crypto_tls_cipher(const struct crypto_tls *t)
{
    const SSL_CIPHER *c = t->ssl ? SSL_get_current_cipher(t->ssl) : NULL;
    return c ? SSL_CIPHER_get_name(c) : "";
}
