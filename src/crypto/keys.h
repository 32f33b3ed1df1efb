/* SPDX-License-Identifier: MIT */
/* Key files and trust stores for `secure`: X25519 private keys as PKCS#8 PEM files created
 * 0600, public keys as standard base64 of the raw 32 bytes, known_hosts and admins lists.
 * Errors come back as codes plus one sentence in a caller buffer; nothing here prints. */
#ifndef SECHO_KEYS_H
#define SECHO_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYS_LEN    32 /* raw X25519 key */
#define KEYS_B64LEN 44 /* base64 text of a key, without the NUL */

enum {
    KEYS_E_PERM = -1301,   /* a private key file is group/other accessible */
    KEYS_E_FORMAT = -1302, /* a file or value does not parse */
};

/* ---- base64 public keys ---- */

/* Writes the 44 base64 characters and a NUL. */
void keys_b64_encode(const uint8_t key[static KEYS_LEN], char out[static KEYS_B64LEN + 1]);
/* Decodes exactly 44 characters of canonical standard base64 (with the one '=' pad).
 * Returns false for anything else (other lengths, URL alphabet, non-zero trailing bits). */
bool keys_b64_decode(const char *s, size_t len, uint8_t key[static KEYS_LEN]);
/* True if the NUL-terminated s is a valid public key text. */
bool keys_b64_valid(const char *s);

/* ---- paths ---- */

/* ${XDG_CONFIG_HOME:-$HOME/.config}/secho/NAME into out. Returns 0, -ENOENT (neither
 * variable set) or -ENAMETOOLONG. */
int keys_default_path(const char *name, char *out, size_t cap);
/* Creates every missing directory above the file `path` with mode 0700. Returns 0 or
 * -errno (err gets a sentence). */
int keys_make_parent(const char *path, char *err, size_t errlen);

/* ---- private keys ---- */

/* Loads an X25519 private key (PEM, PKCS#8) and derives its public key. Refuses (KEYS_E_PERM)
 * a file that group or others may read or write, naming the `chmod 600` fix. Returns 0,
 * -ENOENT (absent), another -errno, KEYS_E_PERM or KEYS_E_FORMAT. priv is wiped on error. */
int keys_load(const char *path, uint8_t priv[static KEYS_LEN], uint8_t pub[static KEYS_LEN],
              char *err, size_t errlen) __attribute__((warn_unused_result));
/* Writes priv to a new file with mode 0600 from creation (O_CREAT|O_EXCL; never
 * overwrites: -EEXIST), creating missing parent directories 0700. Returns 0 or -errno. */
int keys_save(const char *path, const uint8_t priv[static KEYS_LEN], char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Loads path, or if it does not exist makes a fresh pair and saves it (*created = true).
 * Returns as keys_load / keys_save. */
int keys_load_or_create(const char *path, uint8_t priv[static KEYS_LEN],
                        uint8_t pub[static KEYS_LEN], bool *created, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* ---- other private files (tls: a PEM private key) ---- */

/* Reads the whole regular file path (at most cap - 1 bytes, then a NUL) that holds a secret.
 * Refuses (KEYS_E_PERM, naming the `chmod 600` fix) a file that others may access or the
 * group may write; the group may read (as keys of group ssl-cert in /etc/ssl/private).
 * Returns 0 with *len set, -ENOENT (absent), another -errno, KEYS_E_PERM or KEYS_E_FORMAT
 * (too large, not a regular file). buf is wiped on error. */
int keys_read_private(const char *path, char *buf, size_t cap, size_t *len, char *err,
                      size_t errlen) __attribute__((warn_unused_result));
/* Creates path holding exactly data, with `mode` (0600 for a secret) from creation, creating
 * missing parent directories 0700. The file appears whole or not at all (it is written to
 * a temporary file beside it, then linked into place), and an existing path is never
 * overwritten (-EEXIST), so two processes creating it at once both end with one whole
 * file. Returns 0 or -errno with a sentence in err. */
int keys_write_new(const char *path, const void *data, size_t len, unsigned mode, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

/* ---- known_hosts: lines "HOST:PORT PUBKEY", IPv6 as "[ADDR]:PORT", '#' comments ----
 *
 * A line may name the protocol its key belongs to: "HOST:PORT KIND KEY", KIND being a token
 * of 1 to KEYS_KIND_MAX - 1 characters [a-z0-9-] ("tls": KEY is a certificate's SHA-256
 * fingerprint). A line without one is secure's, as every line secho ever wrote before kinds
 * existed, and as secure still writes them (an older secho skips a tagged line as
 * malformed, so the file stays readable both ways). Lookups pass the kind they want: NULL
 * (or "") for the untagged lines; a line of another kind never vouches for a key. */
#define KEYS_KIND_MAX 16

/* Formats a host id as known_hosts keys it: "HOST:PORT", or "[HOST]:PORT" when the host
 * contains ':' (IPv6). Returns 0 or -ENAMETOOLONG. */
int keys_host_id(const char *host, unsigned port, char *out, size_t cap);
/* True if kind is NULL, "" or a valid kind token. */
bool keys_kind_valid(const char *kind);
/* Parses one line (with or without its newline). Returns 1 with host, kind ("" for an
 * untagged line) and key filled, 0 for a blank or comment line, KEYS_E_FORMAT for anything
 * else. */
int keys_parse_known_host(const char *line, char *host, size_t hostcap,
                          char kind[static KEYS_KIND_MAX], uint8_t key[static KEYS_LEN]);

enum { KEYS_HOST_UNKNOWN = 0, KEYS_HOST_MATCH = 1, KEYS_HOST_CHANGED = 2 };
/* Looks host_id up in the file, among the lines of `kind`. Returns KEYS_HOST_MATCH if a line
 * for it carries key,
 * KEYS_HOST_CHANGED if lines for it exist but none carries key (the first such key goes to
 * old if non-NULL), KEYS_HOST_UNKNOWN if none (also when the file does not exist), or
 * -errno. Malformed lines are skipped, as ssh does, so a hand edit cannot lock a user out;
 * only well-formed lines can vouch for a key. An existing file owned by another user than
 * the caller or root, writable by group or others, or in a directory others may write
 * (unless sticky) is refused with -EPERM and a sentence naming the fix, as ssh's
 * StrictModes. */
int keys_known_hosts_check(const char *path, const char *host_id, const char *kind,
                           const uint8_t key[static KEYS_LEN], uint8_t *old, char *err,
                           size_t errlen);
/* The 1-based number of the first well-formed line of path for host_id and kind that carries
 * key (to
 * name it, as ssh's "Offending key in FILE:LINE"). Returns it, 0 if there is none (also
 * when the file does not exist), or -errno. */
int keys_known_hosts_line(const char *path, const char *host_id, const char *kind,
                          const uint8_t key[static KEYS_LEN]);
/* Appends "host_id KEY\n", or "host_id KIND KEY\n" for a kind (creating the file 0600 and its
 * parents 0700 if needed), under an exclusive flock(2) on the file, after reading it again under
 * that lock: when a concurrent caller already added this very key, nothing is written. The file is
 * refused (-EPERM) as in keys_known_hosts_check. Returns 0 or -errno (-EINVAL: a bad host or kind)
 * with a sentence in err. */
int keys_known_hosts_add(const char *path, const char *host_id, const char *kind,
                         const uint8_t key[static KEYS_LEN], char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Removes every well-formed line for host_id, of every kind, from the file (as `ssh-keygen -R`),
 * keeping all other lines, comments and unparsable lines byte for byte. The new file is written to
 * a temporary file in the same directory with the old file's permission bits and renamed over it,
 * so readers see the old or the new contents, never a mix; when nothing matches the file is left
 * untouched. Returns the number of lines removed (0: host not found), or -errno (cannot read,
 * cannot write) with a sentence in err. */
int keys_known_hosts_remove(const char *path, const char *host_id, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* ---- key lists (--admins): one base64 key per line, '#' comments ---- */

struct keys_set {
    uint8_t (*keys)[KEYS_LEN];
    size_t n, cap;
};

/* Parses one line: 1 with key filled, 0 blank/comment, KEYS_E_FORMAT otherwise. */
int keys_parse_key_line(const char *line, uint8_t key[static KEYS_LEN]);
/* Adds a key (duplicates are kept out). Returns 0 or -ENOMEM. */
int keys_set_add(struct keys_set *set, const uint8_t key[static KEYS_LEN])
    __attribute__((warn_unused_result));
/* Reads a whole list file into set (which MUST be zeroed or previously freed). Any bad line
 * is an error naming FILE:LINE, since a typo would silently drop an admin. A file others may
 * write is refused with -EPERM, as in keys_known_hosts_check. Returns 0, -errno or
 * KEYS_E_FORMAT; on error set is left freed. */
int keys_set_load(const char *path, struct keys_set *set, char *err, size_t errlen)
    __attribute__((warn_unused_result));
bool keys_set_contains(const struct keys_set *set, const uint8_t key[static KEYS_LEN]);
void keys_set_free(struct keys_set *set);

#endif
