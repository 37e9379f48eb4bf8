/*
 * verdict.h - what a signature check concluded, in words a log line uses.
 *
 * Contract: plain data, any thread. A verdict is a conclusion about bytes
 * the registry served; a failure to get those bytes (network, registry
 * error) is not a verdict but an -errno of the caller.
 */
#ifndef CHARTFS_SIGN_VERDICT_H
#define CHARTFS_SIGN_VERDICT_H

#include "sign/keys.h"

enum sign_verdict {
	SIGN_OK = 0,
	SIGN_NONE,	   /* no signature or provenance at all */
	SIGN_WRONG_KEY,	   /* signed, but by no configured key */
	SIGN_OTHER_DIGEST, /* a good signature over a payload naming another chart */
	SIGN_BAD_SIG,	   /* a configured key's signature that does not verify */
	SIGN_BROKEN,	   /* a signature, bundle, payload or provenance not parseable */
};

/* Which mechanism verified a chart (user.chartfs.verified). */
#define SIGN_MECH_COSIGN_TAG "cosign-tag"	/* sha256-<hex>.sig, simple signing */
#define SIGN_MECH_COSIGN_BUNDLE "cosign-bundle" /* a Sigstore bundle referrer */
#define SIGN_MECH_HELM_PROV "helm-prov"		/* a .prov against -o keyring */

struct sign_result {
	enum sign_verdict verdict;
	const char *mech;	/* one of SIGN_MECH_*, or NULL */
	char fpr[SIGN_FPR_MAX]; /* the verifying key's fingerprint (OK), or "" */
};

/* "no signature", "signed by another key", "signature for another digest",
 * "bad signature", "broken signature or provenance", "verified". */
const char *sign_verdict_str(enum sign_verdict v);

/* Of two verdicts about one chart, the one to report: OK beats all, then
 * the most specific failure (BAD_SIG, OTHER_DIGEST, WRONG_KEY, BROKEN,
 * NONE). */
enum sign_verdict sign_verdict_best(enum sign_verdict a, enum sign_verdict b);

#endif
