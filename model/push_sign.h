/*
 * push_sign.h - signing what the mount pushes (-o sign_key): after each chart
 * manifest, the signature cosign v3 makes with a key and the transparency log
 * off, a Sigstore bundle stored as an OCI 1.1 referrer of that manifest, listed
 * in the referrers tag schema (tag sha256-<hex>, an image index) where the
 * registry has no referrers API.
 *
 * Contract:
 * - Threads: one push_signer serves every push of a mount. A reload (SIGHUP)
 *   swaps its key whole; a signature being made keeps the key it started
 *   with (a reference), so the old one is freed by whichever ends last.
 * - Errors: 0 or -errno with one log line. A failed signature push is -EIO,
 *   logged as "pushed but unsigned": the chart stays, as cosign leaves it.
 * - The bytes of bundles, referrer manifests and indexes are sign/cosign.c's;
 *   this file moves them to the registry.
 */
#ifndef CHARTFS_PUSH_SIGN_H
#define CHARTFS_PUSH_SIGN_H

#include <stddef.h>

#include "client/oci.h"
#include "common/compiler.h"

struct push_signer;

/* Load the private key at path (sign_key_load: its rules, its log line). */
int push_signer_new(const char *path, struct push_signer **out) WUR;
/* Read the key file again; on failure the old key stays (one log line). */
void push_signer_reload(struct push_signer *s);
void push_signer_free(struct push_signer *s);

/* Sign the manifest (its bytes, OCI image manifest) just pushed to repo,
 * what naming it in messages ("repo:tag"). 0, or -EIO (logged once). */
int push_sign_manifest(struct push_signer *s, struct oci_client *c, const char *repo,
		       const char *what, const char *manifest, size_t len) WUR;

/* The manifest subject ("sha256:<hex>") of repo was deleted: delete the
 * cosign signatures its referrers tag schema lists, and the index, when it
 * lists nothing else. Best effort: a failure is logged, not returned. */
void push_sign_forget(struct oci_client *c, const char *repo, const char *subject);

#endif
