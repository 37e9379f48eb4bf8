/* cosign_simple.c - cosign's tag scheme (cosign v2): a simple-signing
 * payload and its base64 signature, checked with the configured keys. */
#include "sign/cosign.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "sign/sign_i.h"

/* What the payload says about manifest_digest; its signature is good. */
static enum sign_verdict simple_payload(const void *payload, size_t len,
					const char *manifest_digest)
{
	json_t *root, *image;
	const char *digest;
	enum sign_verdict v = SIGN_BROKEN;

	root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL);
	image = json_object_get(json_object_get(root, "critical"), "image");
	digest = json_string_value(json_object_get(image, "docker-manifest-digest"));
	if (digest)
		v = strcmp(digest, manifest_digest) == 0 ? SIGN_OK : SIGN_OTHER_DIGEST;
	json_decref(root);
	return v;
}

int cosign_simple_verify(const struct sign_keys *k, const char *manifest_digest,
			 const void *payload, size_t len, const char *sig_b64,
			 struct sign_result *r)
{
	const struct sign_pub *good = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0, i;
	int ret;

	memset(r, 0, sizeof(*r));
	r->verdict = SIGN_BROKEN;
	if (!payload || !sig_b64 || len > COSIGN_BLOB_MAX)
		return 0;
	ret = sign_b64_decode(sig_b64, strlen(sig_b64), &sig, &siglen);
	if (ret == -ENOMEM)
		return ret;
	if (ret || !siglen) {
		free(sig);
		return 0;
	}
	/* The payload names no key: every configured one is tried, and a
	 * signature none verifies cannot be told from another key's. */
	for (i = 0; k && i < k->n && !good; i++)
		if (sign_pkey_verify(k->v[i].pk, payload, len, sig, siglen))
			good = &k->v[i];
	free(sig);
	if (!good) {
		r->verdict = SIGN_WRONG_KEY;
		return 0;
	}
	r->verdict = simple_payload(payload, len, manifest_digest);
	if (r->verdict == SIGN_OK) {
		r->mech = SIGN_MECH_COSIGN_TAG;
		memcpy(r->fpr, good->fpr, sizeof(r->fpr));
	}
	return 0;
}
