/*
 * prov.h - helm provenance (.prov) checked against an OpenPGP keyring
 * (-o keyring), as `helm verify --keyring` checks it, through gpgme.
 *
 * Contract:
 * - Threads: a loaded keyring may be used by any thread; each check makes
 *   its own gpgme context and gpg process. Loading is done once (mount,
 *   SIGHUP); prov_keyring_free must wait for the checks using that keyring
 *   (a SIGHUP swaps a new one in and frees the old after its last check).
 * - The keyring file (binary or armored public keys, as helm's
 *   --keyring takes) is imported into a private GnuPG home made under
 *   workdir (mode 0700, removed by prov_keyring_free); the user's own
 *   ~/.gnupg is never read or written. The home, workdir/gnupg-XXXXXX, is
 *   held by an flock while the keyring lives (a cleaner of workdir may
 *   take an unlocked one for a leftover). A keyring with secret keys is
 *   refused (-EINVAL): importing them would need gpg-agent and copy them
 *   to disk; `gpg --export` writes the public keyring.
 * - prov_verify returns 0 with r filled (SIGN_OK, or why not: no valid
 *   clear signature or an unparseable body is SIGN_BROKEN, a key not in the
 *   keyring SIGN_WRONG_KEY, a bad signature SIGN_BAD_SIG, a files: entry
 *   for the package missing or naming another sha256 SIGN_OTHER_DIGEST),
 *   or -errno when gpgme itself failed (one log line).
 * - No network, no FUSE. gpg runs as a child of the calling thread
 *   (gpgme forks and waits for it): the process must not set SIGCHLD to
 *   SIG_IGN, and prov_init makes SIGPIPE ignored (gpgme's own rule).
 * - Trust: a good signature by any key of the keyring is OK, whatever
 *   that key's validity or ownertrust in GnuPG's web of trust, as helm
 *   checks (the keyring is the trust). A key that expired or was revoked
 *   makes SIGN_BAD_SIG, as does an expired signature.
 * - r->fpr on SIGN_OK is "openpgp:" + the 40 uppercase hex digits of the
 *   signing key's primary fingerprint, as `gpg --fingerprint` and
 *   `helm verify` print it (a subkey signature names its primary key).
 */
#ifndef CHARTFS_SIGN_PROV_H
#define CHARTFS_SIGN_PROV_H

#include <stddef.h>

#include "common/compiler.h"
#include "sign/verdict.h"

/* A keyring file larger than this is refused (-EFBIG). */
#define PROV_KEYRING_MAX (8 << 20)

struct prov_keyring;

/* Initialise gpgme (gpgme_check_version) and check that gpg is there:
 * 0, or -ENOSYS with one log line. Call it once from the main thread
 * before any other thread starts (gpgme's rule); prov_keyring_load calls
 * it too (under pthread_once), for programs with one thread. */
int prov_init(void) WUR;

int prov_keyring_load(const char *path, const char *workdir,
		      struct prov_keyring **out) WUR;
void prov_keyring_free(struct prov_keyring *kr);
/* A digest of the keyring file's bytes ("sha256:<hex>"). */
const char *prov_keyring_id(const struct prov_keyring *kr);

/* The provenance bytes of package pkg_name ("web-0.1.0.tgz") whose blob
 * digest is pkg_digest ("sha256:<hex>"). Bytes over OCI_PROV_LAYER_MAX
 * (client/manifest.h, 1 MiB: the layer's own cap) are SIGN_BROKEN unread. */
int prov_verify(const struct prov_keyring *kr, const void *prov, size_t len,
		const char *pkg_name, const char *pkg_digest, struct sign_result *r) WUR;

#endif
