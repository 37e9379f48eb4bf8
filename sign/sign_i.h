/*
 * sign_i.h - what keys.c, pkey.c and the cosign files share inside sign/:
 * the key structures and the primitives over OpenSSL (sign, verify,
 * base64). Not part of the contract between helpers.
 *
 * Contract: as keys.h; every function is pure over its arguments, any
 * thread. Fallible ones return 0 or -errno and log nothing (the caller
 * knows what the bytes were).
 */
#ifndef CHARTFS_SIGN_I_H
#define CHARTFS_SIGN_I_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/evp.h>

#include "common/compiler.h"
#include "sign/keys.h"

/* base64 of a sha256: 44 characters + NUL. */
#define SIGN_HINT_MAX 48

/* A public key and the two names cosign gives it. */
struct sign_pub {
	EVP_PKEY *pk;
	char fpr[SIGN_FPR_MAX];	  /* "sha256:<hex>" of the DER SPKI */
	char hint[SIGN_HINT_MAX]; /* base64 of the same sha256 (bundle hint) */
};

struct sign_keys {
	struct sign_pub *v;
	size_t n;
	char id[SIGN_FPR_MAX];
};

struct sign_key {
	struct sign_pub pub; /* pub.pk is the private key; its public half names it */
};

/* Is pk a kind chartfs signs and verifies with (ECDSA P-256/P-384, RSA of
 * at least 2048 bits, Ed25519)? NULL if so, else why not, for a log line. */
const char *sign_pkey_unsupported(EVP_PKEY *pk);
/* The fingerprint and hint of pk's public half; -ENOMEM or -EINVAL. */
int sign_pub_names(EVP_PKEY *pk, struct sign_pub *out) WUR;

/* Does sig verify over data with pk? ECDSA: SHA-256, and SHA-384 too for
 * P-384 keys; RSA: PKCS#1 v1.5 SHA-256; Ed25519: pure. */
bool sign_pkey_verify(EVP_PKEY *pk, const void *data, size_t len,
		      const unsigned char *sig, size_t siglen);
/* Sign data with the private key pk as `cosign verify --key` checks by
 * default (ECDSA DER with SHA-256 on both curves, RSA PKCS#1 v1.5 SHA-256,
 * Ed25519 pure) into a malloc'd *sig. */
int sign_pkey_sign(EVP_PKEY *pk, const void *data, size_t len, unsigned char **sig,
		   size_t *siglen) WUR;

/* Standard base64 (with padding) of s's len bytes into a malloc'd *out:
 * -EINVAL for anything else, -ENOMEM. *out is NUL-terminated (not counted). */
int sign_b64_decode(const char *s, size_t len, unsigned char **out, size_t *outlen) WUR;
/* Standard base64 of data into a malloc'd NUL-terminated *out. */
int sign_b64_encode(const void *data, size_t len, char **out) WUR;

/* The DSSE pre-authentication encoding of (type, payload) into a malloc'd
 * *out: "DSSEv1" SP len(type) SP type SP len(payload) SP payload. */
int sign_dsse_pae(const char *type, const void *payload, size_t len, unsigned char **out,
		  size_t *outlen) WUR;

#endif
