/* cosign_oci.c - the OCI side of cosign's bundles: the referrer manifest
 * that carries one (cosign pkg/oci/remote/write.go), the referrers tag
 * schema's index (distribution-spec), and the bundles an index lists. */
#include "sign/cosign.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "common/digest.h"
#include "sign/cosign_i.h"

#define OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_INDEX "application/vnd.oci.image.index.v1+json"
/* The empty descriptor's blob, "{}" (image-spec, "Guidance for an empty
 * descriptor"). */
#define OCI_EMPTY_DIGEST                                                                 \
	"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#define OCI_EMPTY_SIZE 2
#define ANN_BUNDLE_CONTENT "dev.sigstore.bundle.content"
#define ANN_BUNDLE_PREDICATE "dev.sigstore.bundle.predicateType"
#define ANN_CREATED "org.opencontainers.image.created"

/* Now in RFC 3339, UTC, seconds (Go's time.RFC3339, as cosign writes). */
static void rfc3339_now(char buf[32])
{
	time_t now = time(NULL);
	struct tm tm;

	if (!gmtime_r(&now, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		buf[0] = '\0';
}

int cosign_referrer_manifest(const char *bundle_digest, uint64_t bundle_size,
			     const char *subject_mt, const char *subject_digest,
			     uint64_t subject_size, struct oci_buf *out)
{
	char created[32];
	json_t *root;
	int ret;

	out->data = NULL;
	out->len = 0;
	if (!digest_valid(bundle_digest) || !digest_valid(subject_digest) ||
	    !subject_mt || !subject_mt[0] || bundle_size > (uint64_t)INT64_MAX ||
	    subject_size > (uint64_t)INT64_MAX)
		return -EINVAL;
	rfc3339_now(created);
	root = json_pack(
	    "{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:I}], "
	    "s:{s:s, s:s, s:I}, s:{s:s, s:s, s:s}}",
	    "schemaVersion", 2, "mediaType", OCI_MT_MANIFEST, "artifactType",
	    COSIGN_MT_BUNDLE, "config", "mediaType", OCI_MT_EMPTY, "digest",
	    OCI_EMPTY_DIGEST, "size", OCI_EMPTY_SIZE, "layers", "mediaType",
	    COSIGN_MT_BUNDLE, "digest", bundle_digest, "size", (json_int_t)bundle_size,
	    "subject", "mediaType", subject_mt, "digest", subject_digest, "size",
	    (json_int_t)subject_size, "annotations", ANN_BUNDLE_CONTENT, "dsse-envelope",
	    ANN_BUNDLE_PREDICATE, COSIGN_PREDICATE_SIGN, ANN_CREATED, created);
	ret = cosign_json_out(root, out);
	json_decref(root);
	return ret;
}

/* The descriptor of a referrer manifest for an index: artifactType (the
 * config's media type when the manifest has none, as the referrers API
 * answers) and annotations copied. NULL: not a manifest, or -ENOMEM as
 * *err. */
static json_t *referrer_descriptor(const void *manifest, size_t len, int *err)
{
	char digest[DIGEST_STR_MAX];
	json_t *m, *d = NULL, *ann;
	const char *mt, *at;

	*err = -EINVAL;
	m = json_loadb(manifest, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(m) || len > (size_t)INT64_MAX)
		goto out;
	if ((*err = digest_buf(manifest, len, digest)))
		goto out;
	*err = -ENOMEM;
	mt = json_string_value(json_object_get(m, "mediaType"));
	at = json_string_value(json_object_get(m, "artifactType"));
	if (!at)
		at = json_string_value(
		    json_object_get(json_object_get(m, "config"), "mediaType"));
	d = json_pack("{s:s, s:s, s:I}", "mediaType", mt ? mt : OCI_MT_MANIFEST, "digest",
		      digest, "size", (json_int_t)len);
	if (!d || (at && json_object_set_new(d, "artifactType", json_string(at))))
		goto fail;
	ann = json_object_get(m, "annotations");
	if (json_is_object(ann) && json_object_set(d, "annotations", ann))
		goto fail;
	*err = 0;
	goto out;
fail:
	json_decref(d);
	d = NULL;
out:
	json_decref(m);
	return d;
}

/* The index to add to: index's bytes parsed, or a new empty one. */
static json_t *index_load(const void *index, size_t len, int *err)
{
	json_t *root;

	*err = 0;
	if (!index || !len) {
		root = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType",
				 OCI_MT_INDEX, "manifests");
		if (!root)
			*err = -ENOMEM;
		return root;
	}
	root = json_loadb(index, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root) || !json_is_array(json_object_get(root, "manifests")) ||
	    !json_string_value(json_object_get(root, "mediaType")) ||
	    strcmp(json_string_value(json_object_get(root, "mediaType")), OCI_MT_INDEX) !=
		0) {
		json_decref(root);
		*err = -EINVAL;
		return NULL;
	}
	return root;
}

int cosign_index_add(const void *index, size_t index_len, const void *manifest,
		     size_t manifest_len, struct oci_buf *out)
{
	json_t *root = NULL, *desc = NULL, *arr, *d;
	const char *digest;
	size_t i;
	int ret;

	out->data = NULL;
	out->len = 0;
	root = index_load(index, index_len, &ret);
	if (!ret)
		desc = referrer_descriptor(manifest, manifest_len, &ret);
	if (ret)
		goto out;
	arr = json_object_get(root, "manifests");
	digest = json_string_value(json_object_get(desc, "digest"));
	/* The same manifest pushed again replaces its entry, in place. */
	for (i = json_array_size(arr); i-- > 0;) {
		d = json_array_get(arr, i);
		if (json_string_value(json_object_get(d, "digest")) &&
		    !strcmp(json_string_value(json_object_get(d, "digest")), digest))
			json_array_remove(arr, i);
	}
	ret = json_array_append(arr, desc) ? -ENOMEM : cosign_json_out(root, out);
out:
	json_decref(desc);
	json_decref(root);
	return ret;
}

/* Is the descriptor d a cosign signature bundle? An attestation bundle
 * (another predicate, cosign attest) says so in its annotation. */
static bool is_sign_bundle(json_t *d)
{
	const char *at = json_string_value(json_object_get(d, "artifactType"));
	const char *pt = json_string_value(
	    json_object_get(json_object_get(d, "annotations"), ANN_BUNDLE_PREDICATE));
	const char *digest = json_string_value(json_object_get(d, "digest"));

	return at && !strcmp(at, COSIGN_MT_BUNDLE) && digest_valid(digest) &&
	       (!pt || !strcmp(pt, COSIGN_PREDICATE_SIGN));
}

int cosign_index_bundles(const void *index, size_t len, struct strv *out)
{
	json_t *root, *arr;
	size_t i, n = 0;
	int ret = 0;

	if (!index)
		return -EINVAL;
	root = json_loadb(index, len, JSON_REJECT_DUPLICATES, NULL);
	arr = json_object_get(root, "manifests");
	if (!json_is_object(root) || !json_is_array(arr)) {
		json_decref(root);
		return -EINVAL;
	}
	/* Newest last in the tag schema: a capped list keeps the newest. */
	for (i = json_array_size(arr); i-- > 0 && !ret && n < COSIGN_BUNDLES_MAX;) {
		json_t *d = json_array_get(arr, i);
		if (!is_sign_bundle(d))
			continue;
		ret = strv_push(out, json_string_value(json_object_get(d, "digest")));
		n++;
	}
	json_decref(root);
	return ret;
}
