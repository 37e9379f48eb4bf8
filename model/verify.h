/*
 * verify.h - show only what trusted keys signed (-o verify_key, -o keyring).
 *
 * A verifier holds the keys a mount trusts and the verdicts it reached;
 * every model of the mount (one per registry host) points at the same one.
 * model_tag_verify finds a chart's signatures in its own repository and
 * checks them with the sign/ library: cosign's tag scheme
 * (sha256-<hex>.sig), Sigstore bundles attached as OCI 1.1 referrers (the
 * referrers API, else the referrers tag schema sha256-<hex>), and, with a
 * keyring, helm's provenance layer. A verdict from any mechanism that says
 * SIGN_OK verifies the tag; otherwise the most specific failure is kept.
 * Only the registry is asked: no transparency log, nothing else online.
 *
 * Contract:
 * - Threads: all functions are thread-safe. The verifier's lock is a leaf
 *   (in-memory state only), so it may be taken under the model's lock; no
 *   lock is held across a registry request.
 * - Keys: loaded at mount (a file that does not load fails the mount) and
 *   again at SIGHUP (verify_reload): the new set is swapped in whole and
 *   every cached verdict forgotten; a check still running with the old set
 *   finishes with it (sets are reference counted) and its verdict is not
 *   kept.
 * - Cache: at most VERIFY_CACHE_MAX verdicts, keyed by registry,
 *   repository and manifest digest, under one key set; the oldest goes
 *   first. A verdict of SIGN_OK is kept for good (content under a digest
 *   never changes); a failure is asked again after the model's ttl (a
 *   signature may be pushed after its chart), logged once per key set.
 * - A registry that answers without the referrers API (distribution 2.8's
 *   404) is asked through the referrers tag schema only, until SIGHUP.
 * - Errors: a registry that could not be asked (network, 5xx, refused) is
 *   no verdict: -errno, nothing cached, the client's one log line. Each
 *   failed check is one log line: "verify: REPO:TAG (DIGEST): <verdict>".
 * - No FUSE here.
 */
#ifndef CHARTFS_VERIFY_H
#define CHARTFS_VERIFY_H

#include <stdbool.h>

#include "common/compiler.h"
#include "model/model.h"
#include "sign/verdict.h"

/* Verdicts kept in memory, in all (about 200 bytes each). */
#define VERIFY_CACHE_MAX 65536

struct verifier;

/* Load the keys of verify_key (':'-separated PEM files) and the keyring
 * (either may be NULL, not both). workdir is where the keyring's private
 * GnuPG home goes; ttl (seconds) how long a failed verdict is trusted. On
 * failure one line says which file and why. */
int verify_new(const char *verify_key, const char *keyring, const char *workdir,
	       unsigned ttl, struct verifier **out) WUR;
void verify_free(struct verifier *v);
/* SIGHUP: read the files again and forget every verdict. A file that no
 * longer loads keeps the keys in use (one log line, -errno). */
int verify_reload(struct verifier *v) WUR;

/* Is the model's verification on? */
bool model_verifies(const struct model *m);

/* The verdict on tag t of repository node: cached, or found now. r->mech
 * and r->fpr say what verified it (SIGN_OK). With verification off, or
 * for a signature tag (sha256-<hex>[.sig...]; signatures are not signed),
 * SIGN_OK with mech NULL. 0 or -errno (the registry could not be asked:
 * no verdict). */
int model_tag_verify(struct model *m, struct ns_node *node, struct model_tag *t,
		     struct sign_result *r) WUR;

/* Before a listing of node: verify its listed tags that have no verdict
 * yet, -o parallel at once. Best effort: a tag that could not be checked
 * is not shown (model_tag_shown_locked). */
void model_verify_listed(struct model *m, struct ns_node *node);

/* Forget the verdict on digest in repository node (a push through the
 * mount that signed it: the "no signature" a lookup reached between the
 * chart and its signature must not hide it for the ttl). */
void model_verify_forget(struct model *m, const struct ns_node *node, const char *digest);

/* May t be listed? True with verification off, for signature tags, and
 * for a tag whose kept verdict is SIGN_OK; model lock held. */
bool model_tag_shown_locked(struct model *m, const struct ns_node *node,
			    const struct model_tag *t);

#endif
