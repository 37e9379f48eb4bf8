/*
 * keys.h - the keys a mount trusts (-o verify_key) and signs with (-o sign_key).
 *
 * Contract:
 * - Threads: a loaded key set or key is immutable; any thread may use it
 *   concurrently. Loading is done once (mount, SIGHUP) by one thread.
 * - Ownership: the caller frees what it loaded (sign_keys_free,
 *   sign_key_free). A SIGHUP reload builds a new set and swaps it in.
 * - Errors: 0 or -errno with one log line naming the file ("verify_key
 *   /path: ..."); never key material in a log. An unreadable file is its
 *   errno, a file that holds no supported key -EINVAL.
 * - Keys: PEM public keys (SubjectPublicKeyInfo) of ECDSA P-256/P-384, RSA
 *   (>= 2048 bits) and Ed25519, as `cosign generate-key-pair` and
 *   `openssl pkey -pubout` write them. A key's fingerprint is
 *   "sha256:<hex>" of its DER SubjectPublicKeyInfo; cosign's bundle hint is
 *   the base64 of the same sha256.
 * - No network, no FUSE: OpenSSL only.
 */
#ifndef CHARTFS_SIGN_KEYS_H
#define CHARTFS_SIGN_KEYS_H

#include <stddef.h>

#include "common/compiler.h"

/* "sha256:" + 64 hex + NUL. */
#define SIGN_FPR_MAX 72

struct sign_keys;
struct sign_key;

/* Load the public keys of paths, a ':'-separated list of PEM files (each
 * may hold several keys). */
int sign_keys_load(const char *paths, struct sign_keys **out) WUR;
void sign_keys_free(struct sign_keys *k);
size_t sign_keys_count(const struct sign_keys *k);
/* A digest of the whole set ("sha256:<hex>"): a verdict cached under one
 * set is not trusted under another. */
const char *sign_keys_id(const struct sign_keys *k);

/* Load an unencrypted PKCS#8 PEM private key. The file must be owned by
 * the caller's uid and not readable by group or others, as with
 * password_file (-EPERM with one log line otherwise). */
int sign_key_load(const char *path, struct sign_key **out) WUR;
void sign_key_free(struct sign_key *k);
/* The fingerprint of its public half. */
const char *sign_key_fpr(const struct sign_key *k);

#endif
