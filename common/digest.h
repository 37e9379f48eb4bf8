/*
 * digest.h - OCI content digests ("sha256:<64 lowercase hex>") via OpenSSL EVP.
 *
 * Contract: pure functions and a streaming context owned by its caller, safe
 * from any thread; the one global is OpenSSL's sha256, fetched once (by
 * digest_init or the first digest) and kept for the process. Only sha256 is
 * supported: anything else is rejected by digest_valid(), so it can never
 * reach a file name.
 */
#ifndef CHARTFS_DIGEST_H
#define CHARTFS_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "common/compiler.h"

/* "sha256:" + 64 hex + NUL */
#define DIGEST_STR_MAX 72

/* True iff d is exactly "sha256:" followed by 64 lowercase hex digits. */
bool digest_valid(const char *d);
/* The 64-hex part of a valid digest (pointer into d). */
const char *digest_hex(const char *d);

/* Fetch sha256 from OpenSSL now (a daemon does it before it serves, so no
 * request pays for it): 0, or -ENOSYS when OpenSSL offers none. */
int digest_init(void) WUR;
/* Digest of a buffer. */
int digest_buf(const void *data, size_t len, char out[DIGEST_STR_MAX]) WUR;
/* Digest of a whole file, read from offset 0 with pread; *size gets its length. */
int digest_fd(int fd, char out[DIGEST_STR_MAX], long long *size) WUR;

#endif
