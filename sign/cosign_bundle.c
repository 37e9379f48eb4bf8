/* cosign_bundle.c - Sigstore bundles (cosign v3): a DSSE envelope over an
 * in-toto statement naming the chart's manifest digest, checked with the
 * configured keys. Key-based only: no transparency log, no certificates. */
#include "sign/cosign.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>

#include "common/digest.h"
#include "sign/cosign_i.h"
#include "sign/sign_i.h"

/* The envelope's parts a verification reads, pointing into the JSON. */
struct envelope {
	const char *hint;	/* verificationMaterial.publicKey.hint, or NULL */
	json_t *sigs;		/* dsseEnvelope.signatures */
	unsigned char *payload; /* dsseEnvelope.payload, decoded */
	size_t len;
};

static bool bundle_media_type(const char *mt)
{
	static const char *const known[] = {
	    COSIGN_MT_BUNDLE,
	    "application/vnd.dev.sigstore.bundle+json;version=0.1",
	    "application/vnd.dev.sigstore.bundle+json;version=0.2",
	    "application/vnd.dev.sigstore.bundle+json;version=0.3",
	};
	size_t i;

	for (i = 0; mt && i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(mt, known[i]) == 0)
			return true;
	return false;
}

/* Take the envelope apart: 0 with *v the verdict so far (SIGN_OK: go on
 * to the signatures), or -ENOMEM. */
static int envelope_parse(json_t *root, struct envelope *e, enum sign_verdict *v)
{
	json_t *vm, *env, *pk;
	const char *type, *payload;
	int ret;

	*v = SIGN_BROKEN;
	vm = json_object_get(root, "verificationMaterial");
	env = json_object_get(root, "dsseEnvelope");
	/* A message signature is not what cosign signs a chart with, and its
	 * verifier refuses one for an image. */
	if (!bundle_media_type(json_string_value(json_object_get(root, "mediaType"))) ||
	    !json_is_object(vm) || !json_is_object(env) ||
	    json_object_get(root, "messageSignature"))
		return 0;
	type = json_string_value(json_object_get(env, "payloadType"));
	payload = json_string_value(json_object_get(env, "payload"));
	e->sigs = json_object_get(env, "signatures");
	if (!type || strcmp(type, COSIGN_MT_INTOTO) != 0 || !payload ||
	    !json_is_array(e->sigs) || !json_array_size(e->sigs))
		return 0;
	pk = json_object_get(vm, "publicKey");
	if (!json_is_object(pk)) {
		/* Keyless (a Fulcio certificate): chartfs checks keys only. */
		if (json_object_get(vm, "x509CertificateChain") ||
		    json_object_get(vm, "certificate"))
			*v = SIGN_WRONG_KEY;
		return 0;
	}
	e->hint = json_string_value(json_object_get(pk, "hint"));
	if (e->hint && !e->hint[0])
		e->hint = NULL;
	ret = sign_b64_decode(payload, strlen(payload), &e->payload, &e->len);
	if (ret == -ENOMEM)
		return ret;
	if (!ret)
		*v = SIGN_OK;
	return 0;
}

/* Does one of the envelope's signatures verify over pae with pub? */
static int envelope_signed_by(const struct envelope *e, const struct sign_pub *pub,
			      const unsigned char *pae, size_t pae_len, bool *good)
{
	unsigned char *sig;
	size_t i, siglen;
	json_t *s;
	int ret;

	*good = false;
	json_array_foreach(e->sigs, i, s)
	{
		const char *b64 = json_string_value(json_object_get(s, "sig"));
		if (!b64)
			continue;
		ret = sign_b64_decode(b64, strlen(b64), &sig, &siglen);
		if (ret == -ENOMEM)
			return ret;
		if (!ret)
			*good = siglen &&
				sign_pkey_verify(pub->pk, pae, pae_len, sig, siglen);
		free(sig);
		if (*good)
			break;
	}
	return 0;
}

/* Which configured key signed the envelope: *v is SIGN_OK with *who, or
 * why none did. The hint, when present, names the one key to try. */
static int envelope_signer(const struct sign_keys *k, const struct envelope *e,
			   const struct sign_pub **who, enum sign_verdict *v)
{
	unsigned char *pae = NULL;
	size_t pae_len, i;
	bool hinted = false, good = false;
	int ret;

	*who = NULL;
	*v = SIGN_WRONG_KEY;
	ret = sign_dsse_pae(COSIGN_MT_INTOTO, e->payload, e->len, &pae, &pae_len);
	for (i = 0; !ret && k && i < k->n && !good; i++) {
		if (e->hint && strcmp(e->hint, k->v[i].hint) != 0)
			continue;
		hinted = e->hint != NULL;
		ret = envelope_signed_by(e, &k->v[i], pae, pae_len, &good);
		if (good)
			*who = &k->v[i];
	}
	free(pae);
	if (good)
		*v = SIGN_OK;
	else if (hinted)
		*v = SIGN_BAD_SIG;
	return ret;
}

static bool statement_type(const char *t)
{
	return t && (strcmp(t, INTOTO_STATEMENT_V1) == 0 ||
		     strcmp(t, INTOTO_STATEMENT_V01) == 0);
}

/* What a signed statement says about manifest_digest. Another predicate
 * is an attestation, not a signature of the chart: no signature. */
static enum sign_verdict statement_verdict(const unsigned char *p, size_t len,
					   const char *manifest_digest)
{
	json_t *root, *subjects, *s;
	const char *pt, *hex;
	enum sign_verdict v = SIGN_BROKEN;
	size_t i;

	root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, NULL);
	subjects = json_object_get(root, "subject");
	pt = json_string_value(json_object_get(root, "predicateType"));
	if (!statement_type(json_string_value(json_object_get(root, "_type"))) || !pt ||
	    !json_is_array(subjects))
		goto out;
	if (strcmp(pt, COSIGN_PREDICATE_SIGN) != 0) {
		v = SIGN_NONE;
		goto out;
	}
	v = SIGN_OTHER_DIGEST;
	json_array_foreach(subjects, i, s)
	{
		hex = json_string_value(
		    json_object_get(json_object_get(s, "digest"), "sha256"));
		if (hex && digest_valid(manifest_digest) &&
		    strcasecmp(hex, digest_hex(manifest_digest)) == 0)
			v = SIGN_OK;
	}
out:
	json_decref(root);
	return v;
}

int cosign_bundle_verify(const struct sign_keys *k, const char *manifest_digest,
			 const void *bundle, size_t len, struct sign_result *r)
{
	struct envelope e = {0};
	const struct sign_pub *who = NULL;
	json_t *root = NULL;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	r->verdict = SIGN_BROKEN;
	if (!bundle || len > COSIGN_BLOB_MAX)
		return 0;
	root = json_loadb(bundle, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root))
		goto out;
	ret = envelope_parse(root, &e, &r->verdict);
	if (!ret && r->verdict == SIGN_OK)
		ret = envelope_signer(k, &e, &who, &r->verdict);
	if (!ret && r->verdict == SIGN_OK)
		r->verdict = statement_verdict(e.payload, e.len, manifest_digest);
	if (!ret && r->verdict == SIGN_OK) {
		r->mech = SIGN_MECH_COSIGN_BUNDLE;
		memcpy(r->fpr, who->fpr, sizeof(r->fpr));
	}
out:
	free(e.payload);
	json_decref(root);
	if (ret) {
		memset(r, 0, sizeof(*r));
		r->verdict = SIGN_BROKEN;
	}
	return ret;
}
