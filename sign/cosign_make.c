/* cosign_make.c - the Sigstore bundle cosign v3 writes for `cosign sign
 * --key` with the transparency log off: a DSSE envelope over an in-toto
 * statement naming the manifest digest, the key named by its hint. */
#include "sign/cosign.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "common/digest.h"
#include "sign/cosign_i.h"
#include "sign/sign_i.h"

int cosign_json_out(json_t *root, struct oci_buf *out)
{
	char *text;

	out->data = NULL;
	out->len = 0;
	text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	if (!text)
		return -ENOMEM;
	out->data = text;
	out->len = strlen(text);
	return 0;
}

/* The statement cosign signs for an image: one subject, named only by its
 * digest (protojson leaves out cosign's empty name), and an empty
 * predicate. */
static int statement(const char *manifest_digest, struct oci_buf *out)
{
	json_t *root;
	int ret;

	root = json_pack("{s:s, s:[{s:{s:s}}], s:s, s:{}}", "_type", INTOTO_STATEMENT_V1,
			 "subject", "digest", "sha256", digest_hex(manifest_digest),
			 "predicateType", COSIGN_PREDICATE_SIGN, "predicate");
	ret = cosign_json_out(root, out);
	json_decref(root);
	return ret;
}

/* The base64 signature of the statement's DSSE PAE by k. A P-384 key
 * signs with SHA-256, not with the SHA-384 cosign sign would use: cosign
 * verify --key (without --signature-digest-algorithm) and @sigstore/verify
 * check P-384 signatures with SHA-256, and chartfs's verifier takes both. */
static int envelope_sig(const struct sign_key *k, const struct oci_buf *st,
			char **sig_b64)
{
	unsigned char *pae = NULL, *sig = NULL;
	size_t pae_len = 0, siglen = 0;
	int ret;

	*sig_b64 = NULL;
	ret = sign_dsse_pae(COSIGN_MT_INTOTO, st->data, st->len, &pae, &pae_len);
	if (!ret)
		ret = sign_pkey_sign(k->pub.pk, pae, pae_len, &sig, &siglen);
	if (!ret)
		ret = sign_b64_encode(sig, siglen, sig_b64);
	free(pae);
	free(sig);
	return ret;
}

int cosign_bundle_make(const struct sign_key *k, const char *manifest_digest,
		       struct oci_buf *out)
{
	struct oci_buf st = {0};
	char *payload = NULL, *sig = NULL;
	json_t *root = NULL;
	int ret;

	out->data = NULL;
	out->len = 0;
	if (!k || !digest_valid(manifest_digest))
		return -EINVAL;
	ret = statement(manifest_digest, &st);
	if (!ret)
		ret = sign_b64_encode(st.data, st.len, &payload);
	if (!ret)
		ret = envelope_sig(k, &st, &sig);
	if (ret)
		goto out;
	/* As sigstore-go's protojson writes it: empty fields (tlogEntries,
	 * the signature's keyid) left out. */
	root = json_pack("{s:s, s:{s:{s:s}}, s:{s:s, s:s, s:[{s:s}]}}", "mediaType",
			 COSIGN_MT_BUNDLE, "verificationMaterial", "publicKey", "hint",
			 k->pub.hint, "dsseEnvelope", "payload", payload, "payloadType",
			 COSIGN_MT_INTOTO, "signatures", "sig", sig);
	ret = cosign_json_out(root, out);
out:
	json_decref(root);
	free(st.data);
	free(payload);
	free(sig);
	return ret;
}
