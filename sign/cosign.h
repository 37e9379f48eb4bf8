/*
 * cosign.h - cosign's two signature formats, from bytes: the tag scheme
 * (cosign v2: simple-signing payloads in sha256-<hex>.sig) and Sigstore
 * bundles (cosign v3: a DSSE envelope over an in-toto statement, stored as
 * an OCI 1.1 referrer). Checking and making signatures; finding them in a
 * registry is the model's job (model/verify.c), pushing them push.c's.
 *
 * Formats: cosign specs/SIGNATURE_SPEC.md and specs/BUNDLE_SPEC.md; the
 * facts chartfs relies on are in ../shared/reference/signatures-and-mirrors.md.
 *
 * Contract:
 * - Pure functions over bytes, any thread, no network, no FUSE.
 * - Verification returns 0 with r filled (r->verdict says what was
 *   concluded; only SIGN_OK sets r->mech and r->fpr), or -ENOMEM. Key-based
 *   only: no transparency log, no certificates (a bundle that carries only
 *   a certificate is SIGN_WRONG_KEY).
 * - Outputs (struct oci_buf) belong to the caller.
 */
#ifndef CHARTFS_SIGN_COSIGN_H
#define CHARTFS_SIGN_COSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "client/oci.h"
#include "common/compiler.h"
#include "common/strv.h"
#include "sign/keys.h"
#include "sign/verdict.h"

#define COSIGN_MT_SIMPLESIGNING "application/vnd.dev.cosign.simplesigning.v1+json"
#define COSIGN_ANN_SIGNATURE "dev.cosignproject.cosign/signature"
#define COSIGN_MT_BUNDLE "application/vnd.dev.sigstore.bundle.v0.3+json"
#define COSIGN_PREDICATE_SIGN "https://sigstore.dev/cosign/sign/v1"
#define OCI_MT_EMPTY "application/vnd.oci.empty.v1+json"
/* The largest payload or bundle blob read (cosign's are under 8 KiB). */
#define COSIGN_BLOB_MAX (256u * 1024)

/* The tag scheme: one layer's payload (its blob, already checked against
 * its descriptor's digest) and the base64 signature of its annotation,
 * for the chart manifest manifest_digest ("sha256:<hex>"). */
int cosign_simple_verify(const struct sign_keys *k, const char *manifest_digest,
			 const void *payload, size_t len, const char *sig_b64,
			 struct sign_result *r) WUR;

/* A Sigstore bundle (the referrer's layer blob) for manifest_digest: a DSSE
 * envelope of type application/vnd.in-toto+json whose statement has the
 * digest as a subject and predicateType COSIGN_PREDICATE_SIGN, signed over
 * the DSSE PAE by a configured key (publicKey.hint, when present, picks
 * it). Message-signature bundles are SIGN_BROKEN, as cosign refuses them
 * for images. */
int cosign_bundle_verify(const struct sign_keys *k, const char *manifest_digest,
			 const void *bundle, size_t len, struct sign_result *r) WUR;

/* Make the bundle cosign v3 makes with a key and the transparency log off,
 * for manifest_digest. */
int cosign_bundle_make(const struct sign_key *k, const char *manifest_digest,
		       struct oci_buf *out) WUR;

/* The referrer manifest that carries a bundle blob (bundle_digest,
 * bundle_size) for the subject manifest (its media type, digest, size):
 * OCI image manifest, artifactType COSIGN_MT_BUNDLE, the empty config, the
 * annotations cosign writes. */
int cosign_referrer_manifest(const char *bundle_digest, uint64_t bundle_size,
			     const char *subject_mt, const char *subject_digest,
			     uint64_t subject_size, struct oci_buf *out) WUR;

/* The referrers tag schema (distribution-spec): index (NULL or empty for
 * none yet) with the descriptor of one more referrer manifest added
 * (replacing one of the same digest); its artifactType and annotations are
 * copied from manifest (the referrer's bytes). -EINVAL for an index that is
 * not an OCI image index. */
int cosign_index_add(const void *index, size_t index_len, const void *manifest,
		     size_t manifest_len, struct oci_buf *out) WUR;

/* The referrer manifests of an index (referrers API answer or tag schema)
 * whose artifactType is COSIGN_MT_BUNDLE, as digests into out (strv). */
int cosign_index_bundles(const void *index, size_t len, struct strv *out) WUR;

#endif
