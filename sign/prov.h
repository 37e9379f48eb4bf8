/*
 * prov.h - helm provenance (.prov) checked against an OpenPGP keyring
 * (-o keyring), as `helm verify --keyring` checks it, through gpgme.
 *
 * Contract:
 * - Threads: a loaded keyring may be used by any thread; each check makes
 *   its own gpgme context. Loading is done once (mount, SIGHUP).
 * - The keyring file (binary or armored public keys, as helm's
 *   --keyring takes) is imported into a private GnuPG home made under
 *   workdir (mode 0700, removed by prov_keyring_free); the user's own
 *   ~/.gnupg is never read or written.
 * - prov_verify returns 0 with r filled (SIGN_OK, or why not: no valid
 *   clear signature or an unparseable body is SIGN_BROKEN, a key not in the
 *   keyring SIGN_WRONG_KEY, a bad signature SIGN_BAD_SIG, a files: entry
 *   for the package missing or naming another sha256 SIGN_OTHER_DIGEST),
 *   or -errno when gpgme itself failed (one log line).
 * - No network, no FUSE.
 */
#ifndef CHARTFS_SIGN_PROV_H
#define CHARTFS_SIGN_PROV_H

#include <stddef.h>

#include "common/compiler.h"
#include "sign/verdict.h"

struct prov_keyring;

int prov_keyring_load(const char *path, const char *workdir,
		      struct prov_keyring **out) WUR;
void prov_keyring_free(struct prov_keyring *kr);
/* A digest of the keyring file's bytes ("sha256:<hex>"). */
const char *prov_keyring_id(const struct prov_keyring *kr);

/* The provenance bytes of package pkg_name ("web-0.1.0.tgz") whose blob
 * digest is pkg_digest ("sha256:<hex>"). */
int prov_verify(const struct prov_keyring *kr, const void *prov, size_t len,
		const char *pkg_name, const char *pkg_digest, struct sign_result *r) WUR;

#endif
