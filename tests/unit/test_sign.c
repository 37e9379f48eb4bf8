/* test_sign.c - sign/'s pieces that need no independent implementation:
 * the OCI JSON builders (referrer manifest, referrers index, the bundles an
 * index lists), verdict words and order, base64 and the DSSE PAE, and the
 * error cases of keys and verification. tests/test_sign_formats.py checks
 * the signature formats against cryptography and the Sigstore JS libs. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/digest.h"
#include "sign/cosign.h"
#include "sign/cosign_i.h"
#include "sign/keys.h"
#include "sign/sign_i.h"
#include "sign/verdict.h"
#include "tap.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"

static char tmpdir[64];

static json_t *parse(const struct oci_buf *b)
{
	return json_loadb(b->data, b->len, 0, NULL);
}

static const char *str_at(json_t *root, const char *path)
{
	char buf[256], *save = NULL, *p;
	json_t *cur = root;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = strtok_r(buf, ".", &save); p && cur; p = strtok_r(NULL, ".", &save)) {
		if (json_is_array(cur))
			cur = json_array_get(cur, (size_t)strtoul(p, NULL, 10));
		else
			cur = json_object_get(cur, p);
	}
	return json_string_value(cur);
}

/* An annotation's value ("" when absent): its keys hold dots. */
static const char *ann_of(json_t *obj, const char *key)
{
	const char *v =
	    json_string_value(json_object_get(json_object_get(obj, "annotations"), key));

	return v ? v : "";
}

static void test_verdicts(void)
{
	static const enum sign_verdict order[] = {SIGN_OK,	     SIGN_BAD_SIG,
						  SIGN_OTHER_DIGEST, SIGN_WRONG_KEY,
						  SIGN_BROKEN,	     SIGN_NONE};
	size_t i, j;
	bool good = true;

	ok(!strcmp(sign_verdict_str(SIGN_OK), "verified") &&
	       !strcmp(sign_verdict_str(SIGN_NONE), "no signature") &&
	       !strcmp(sign_verdict_str(SIGN_WRONG_KEY), "signed by another key") &&
	       !strcmp(sign_verdict_str(SIGN_OTHER_DIGEST),
		       "signature for another digest") &&
	       !strcmp(sign_verdict_str(SIGN_BAD_SIG), "bad signature") &&
	       !strcmp(sign_verdict_str(SIGN_BROKEN), "broken signature or provenance"),
	   "verdict words as verdict.h says");
	for (i = 0; i < 6; i++)
		for (j = 0; j < 6; j++)
			good &=
			    sign_verdict_best(order[i], order[j]) == order[i < j ? i : j];
	ok(good, "sign_verdict_best: OK, BAD_SIG, OTHER_DIGEST, WRONG_KEY, BROKEN, NONE");
}

static void test_b64_pae(void)
{
	unsigned char *out = NULL;
	size_t len = 0;
	char *enc = NULL;

	ok(!sign_b64_decode("aGVsbG8=", 8, &out, &len) && len == 5 &&
	       !memcmp(out, "hello", 5),
	   "base64 with padding decodes");
	free(out);
	ok(!sign_b64_decode("", 0, &out, &len) && len == 0, "empty base64 is empty");
	free(out);
	ok(sign_b64_decode("aGVsbG8", 7, &out, &len) == -EINVAL && !out,
	   "base64 without padding is refused");
	ok(sign_b64_decode("aGV*bG8=", 8, &out, &len) == -EINVAL,
	   "a foreign character too");
	ok(sign_b64_decode("aG=sbG8=", 8, &out, &len) == -EINVAL, "and padding inside");
	ok(!sign_b64_encode("hello", 5, &enc) && !strcmp(enc, "aGVsbG8="),
	   "base64 encodes");
	free(enc);
	ok(!sign_dsse_pae("t/y", "abc", 3, &out, &len) && len == 18 &&
	       !memcmp(out, "DSSEv1 3 t/y 3 abc", 18),
	   "DSSE PAE is DSSEv1 SP len SP type SP len SP payload");
	free(out);
}

static void test_referrer_manifest(void)
{
	struct oci_buf b = {0};
	json_t *m;

	ok(!cosign_referrer_manifest(D1, 1234, MT_MANIFEST, D2, 567, &b),
	   "referrer manifest");
	m = parse(&b);
	ok(m && json_integer_value(json_object_get(m, "schemaVersion")) == 2 &&
	       !strcmp(str_at(m, "mediaType"), MT_MANIFEST) &&
	       !strcmp(str_at(m, "artifactType"), COSIGN_MT_BUNDLE),
	   "an OCI image manifest of artifactType the bundle type");
	ok(!strcmp(str_at(m, "config.mediaType"), OCI_MT_EMPTY) &&
	       !strcmp(str_at(m, "config.digest"),
		       "sha256:44136fa355b3678a1146ad16f7e8649e94fb4"
		       "fc21fe77e8310c060f61caaff8a") &&
	       json_integer_value(
		   json_object_get(json_object_get(m, "config"), "size")) == 2,
	   "the empty config");
	ok(json_array_size(json_object_get(m, "layers")) == 1 &&
	       !strcmp(str_at(m, "layers.0.mediaType"), COSIGN_MT_BUNDLE) &&
	       !strcmp(str_at(m, "layers.0.digest"), D1) &&
	       json_integer_value(json_object_get(
		   json_array_get(json_object_get(m, "layers"), 0), "size")) == 1234,
	   "one layer: the bundle");
	ok(!strcmp(str_at(m, "subject.mediaType"), MT_MANIFEST) &&
	       !strcmp(str_at(m, "subject.digest"), D2) &&
	       json_integer_value(
		   json_object_get(json_object_get(m, "subject"), "size")) == 567,
	   "the subject is the chart's manifest");
	ok(!strcmp(ann_of(m, "dev.sigstore.bundle.content"), "dsse-envelope") &&
	       !strcmp(ann_of(m, "dev.sigstore.bundle.predicateType"),
		       COSIGN_PREDICATE_SIGN) &&
	       strlen(ann_of(m, "org.opencontainers.image.created")) == 20,
	   "cosign's annotations, created in RFC 3339");
	json_decref(m);
	free(b.data);
	ok(cosign_referrer_manifest("sha256:x", 1, MT_MANIFEST, D2, 1, &b) == -EINVAL &&
	       !b.data,
	   "a bad bundle digest is -EINVAL");
	ok(cosign_referrer_manifest(D1, 1, "", D2, 1, &b) == -EINVAL,
	   "an empty subject type too");
	ok(cosign_referrer_manifest(D1, 1, MT_MANIFEST, "D2", 1, &b) == -EINVAL,
	   "and a bad subject digest");
}

/* A referrer manifest's bytes, with artifactType (NULL: none) and its
 * predicate annotation (NULL: none). */
static char *referrer(const char *layer, const char *artifact_type, const char *predicate)
{
	json_t *m =
	    json_pack("{s:i, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:i}]}",
		      "schemaVersion", 2, "mediaType", MT_MANIFEST, "config", "mediaType",
		      OCI_MT_EMPTY, "digest", D2, "size", 2, "layers", "mediaType",
		      COSIGN_MT_BUNDLE, "digest", layer, "size", 10);
	char *s;

	if (artifact_type)
		json_object_set_new(m, "artifactType", json_string(artifact_type));
	if (predicate)
		json_object_set_new(
		    m, "annotations",
		    json_pack("{s:s}", "dev.sigstore.bundle.predicateType", predicate));
	s = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	return s;
}

static void test_index_add(void)
{
	char *m1 = referrer(D1, COSIGN_MT_BUNDLE, COSIGN_PREDICATE_SIGN);
	char *m2 = referrer(D2, NULL, NULL);
	char d1[DIGEST_STR_MAX], d2[DIGEST_STR_MAX];
	struct oci_buf a = {0}, b = {0}, c = {0};
	json_t *i;

	ok(!digest_buf(m1, strlen(m1), d1) && !digest_buf(m2, strlen(m2), d2), "digests");
	ok(!cosign_index_add(NULL, 0, m1, strlen(m1), &a),
	   "a first referrer makes an index");
	i = parse(&a);
	ok(i && !strcmp(str_at(i, "mediaType"), MT_INDEX) &&
	       json_integer_value(json_object_get(i, "schemaVersion")) == 2 &&
	       json_array_size(json_object_get(i, "manifests")) == 1 &&
	       !strcmp(str_at(i, "manifests.0.digest"), d1) &&
	       !strcmp(str_at(i, "manifests.0.mediaType"), MT_MANIFEST) &&
	       !strcmp(str_at(i, "manifests.0.artifactType"), COSIGN_MT_BUNDLE) &&
	       json_integer_value(json_object_get(
		   json_array_get(json_object_get(i, "manifests"), 0), "size")) ==
		   (json_int_t)strlen(m1),
	   "an OCI index listing the referrer's descriptor");
	ok(!strcmp(ann_of(json_array_get(json_object_get(i, "manifests"), 0),
			  "dev.sigstore.bundle.predicateType"),
		   COSIGN_PREDICATE_SIGN),
	   "with the referrer's annotations");
	json_decref(i);
	ok(!cosign_index_add(a.data, a.len, m2, strlen(m2), &b),
	   "a second referrer is added");
	i = parse(&b);
	ok(json_array_size(json_object_get(i, "manifests")) == 2 &&
	       !strcmp(str_at(i, "manifests.1.digest"), d2) &&
	       !strcmp(str_at(i, "manifests.1.artifactType"), OCI_MT_EMPTY) &&
	       !json_object_get(json_array_get(json_object_get(i, "manifests"), 1),
				"annotations"),
	   "without artifactType, the config's media type stands for it");
	json_decref(i);
	ok(!cosign_index_add(b.data, b.len, m1, strlen(m1), &c), "the first one again");
	i = parse(&c);
	ok(json_array_size(json_object_get(i, "manifests")) == 2 &&
	       !strcmp(str_at(i, "manifests.0.digest"), d2) &&
	       !strcmp(str_at(i, "manifests.1.digest"), d1),
	   "replaces its entry, listed once");
	json_decref(i);
	free(a.data);
	free(b.data);
	free(c.data);
	ok(cosign_index_add(m2, strlen(m2), m1, strlen(m1), &a) == -EINVAL && !a.data,
	   "a manifest as the index is -EINVAL");
	ok(cosign_index_add("{\"mediaType\":\"" MT_INDEX "\"}", 46, m1, strlen(m1), &a) ==
	       -EINVAL,
	   "an index without manifests too");
	ok(cosign_index_add("garbage", 7, m1, strlen(m1), &a) == -EINVAL, "garbage too");
	ok(cosign_index_add(NULL, 0, "[1]", 3, &a) == -EINVAL,
	   "and a referrer that is no object");
	free(m1);
	free(m2);
}

static void test_index_bundles(void)
{
	struct strv sv = {0};
	json_t *idx = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType",
				MT_INDEX, "manifests");
	json_t *arr = json_object_get(idx, "manifests");
	char *text, digest[DIGEST_STR_MAX];
	int i;

	json_array_append_new(arr,
			      json_pack("{s:s, s:s, s:s}", "mediaType", MT_MANIFEST,
					"digest", D1, "artifactType", COSIGN_MT_BUNDLE));
	json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:{s:s}}", "mediaType",
					     MT_MANIFEST, "digest", D2, "artifactType",
					     COSIGN_MT_BUNDLE, "annotations",
					     "dev.sigstore.bundle.predicateType",
					     "https://slsa.dev/provenance/v1"));
	json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "mediaType", MT_MANIFEST,
					     "digest", D2, "artifactType",
					     "application/spdx+json"));
	json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "mediaType", MT_MANIFEST,
					     "digest", "sha256:../x", "artifactType",
					     COSIGN_MT_BUNDLE));
	text = json_dumps(idx, JSON_COMPACT);
	ok(!cosign_index_bundles(text, strlen(text), &sv) && sv.n == 1 &&
	       !strcmp(sv.v[0], D1),
	   "only cosign signature bundles are listed (no attestation, SBOM, bad digest)");
	strv_free(&sv);
	free(text);
	for (i = 0; i < COSIGN_BUNDLES_MAX + 8; i++) {
		char data[16];
		snprintf(data, sizeof(data), "%d", i);
		if (digest_buf(data, strlen(data), digest))
			break;
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "mediaType",
						     MT_MANIFEST, "digest", digest,
						     "artifactType", COSIGN_MT_BUNDLE));
	}
	text = json_dumps(idx, JSON_COMPACT);
	ok(!cosign_index_bundles(text, strlen(text), &sv) && sv.n == COSIGN_BUNDLES_MAX &&
	       !strcmp(sv.v[0], digest),
	   "at most COSIGN_BUNDLES_MAX, the newest (last) first");
	strv_free(&sv);
	free(text);
	json_decref(idx);
	ok(cosign_index_bundles("{}", 2, &sv) == -EINVAL && !sv.n,
	   "no manifests is -EINVAL");
	ok(cosign_index_bundles("nope", 4, &sv) == -EINVAL, "garbage too");
	ok(cosign_index_bundles(NULL, 0, &sv) == -EINVAL, "and nothing");
}

/* Write a new key of the given kind: the public half to pub (PEM), the
 * private one to priv (PKCS#8 PEM, mode), either path NULL to skip. */
static int write_key(EVP_PKEY *pk, const char *pub, const char *priv, mode_t mode)
{
	FILE *f;
	int fd, good = 1;

	if (pub) {
		f = fopen(pub, "w");
		good &= f && PEM_write_PUBKEY(f, pk) == 1;
		if (f)
			fclose(f);
	}
	if (priv) {
		fd = open(priv, O_WRONLY | O_CREAT | O_TRUNC, mode);
		f = fd >= 0 ? fdopen(fd, "w") : NULL;
		good &= f && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1;
		if (f)
			fclose(f);
		good &= chmod(priv, mode) == 0;
	}
	return good ? 0 : -EIO;
}

static void path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void test_keys(void)
{
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char pub[128], pub2[128], priv[128], open_priv[128], both[256];
	struct sign_keys *k = NULL;
	struct sign_key *sk = NULL;
	int ret;

	path(pub, sizeof(pub), "ec.pub");
	path(pub2, sizeof(pub2), "ed.pub");
	path(priv, sizeof(priv), "ec.key");
	path(open_priv, sizeof(open_priv), "open.key");
	ok(ec && ed && !write_key(ec, pub, priv, 0600) && !write_key(ed, pub2, NULL, 0) &&
	       !write_key(ec, NULL, open_priv, 0644),
	   "keys written");
	snprintf(both, sizeof(both), "%s:%s", pub, pub2);
	ok(!sign_keys_load(both, &k) && sign_keys_count(k) == 2 &&
	       digest_valid(sign_keys_id(k)),
	   "two files load, the set has an id");
	sign_keys_free(k);
	ok(sign_keys_load("", &k) == -EINVAL && !k, "no file is -EINVAL");
	ok(sign_keys_load(priv, &k) == -EINVAL && !k,
	   "a private key file holds no public key");
	ret = sign_keys_load("/nonexistent/x.pub", &k);
	ok(ret == -ENOENT && !k, "a missing file is its errno (%d)", ret);
	ok(!sign_key_load(priv, &sk) && digest_valid(sign_key_fpr(sk)),
	   "a 0600 key loads");
	sign_key_free(sk);
	ok(sign_key_load(open_priv, &sk) == -EPERM && !sk, "a 0644 key is -EPERM");
	ok(!chmod(pub, 0600) && sign_key_load(pub, &sk) == -EINVAL && !sk,
	   "a public key is no signing key");
	unlink(pub);
	unlink(pub2);
	unlink(priv);
	unlink(open_priv);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
}

/* A bundle made and checked by chartfs alone, and the verdicts that need
 * no foreign signature. */
static void test_verify_edges(void)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	char pub[128], priv[128];
	struct sign_keys *k = NULL;
	struct sign_key *sk = NULL;
	struct oci_buf b = {0};
	struct sign_result r;
	char *big;

	path(pub, sizeof(pub), "p384.pub");
	path(priv, sizeof(priv), "p384.key");
	ok(pk && !write_key(pk, pub, priv, 0600) && !sign_keys_load(pub, &k) &&
	       !sign_key_load(priv, &sk),
	   "a P-384 key pair");
	ok(!cosign_bundle_make(sk, D1, &b) && b.len, "make-bundle");
	ok(!cosign_bundle_verify(k, D1, b.data, b.len, &r) && r.verdict == SIGN_OK &&
	       !strcmp(r.mech, SIGN_MECH_COSIGN_BUNDLE) &&
	       !strcmp(r.fpr, sign_key_fpr(sk)),
	   "verifies with its key, naming it");
	ok(!cosign_bundle_verify(k, D2, b.data, b.len, &r) &&
	       r.verdict == SIGN_OTHER_DIGEST && !r.mech && !r.fpr[0],
	   "another digest: no mechanism, no key");
	ok(!cosign_bundle_verify(NULL, D1, b.data, b.len, &r) &&
	       r.verdict == SIGN_WRONG_KEY,
	   "no keys: another key's");
	ok(!cosign_bundle_verify(k, D1, b.data, b.len - 1, &r) &&
	       r.verdict == SIGN_BROKEN,
	   "a truncated bundle is broken");
	free(b.data);
	ok(cosign_bundle_make(sk, "sha256:nothex", &b) == -EINVAL && !b.data,
	   "make-bundle refuses a bad digest");
	big = calloc(1, COSIGN_BLOB_MAX + 2);
	memset(big, ' ', COSIGN_BLOB_MAX + 1);
	ok(big && !cosign_bundle_verify(k, D1, big, COSIGN_BLOB_MAX + 1, &r) &&
	       r.verdict == SIGN_BROKEN,
	   "a blob over COSIGN_BLOB_MAX is broken unread");
	ok(!cosign_simple_verify(k, D1, big, COSIGN_BLOB_MAX + 1, "AAAA", &r) &&
	       r.verdict == SIGN_BROKEN,
	   "a payload over COSIGN_BLOB_MAX too");
	free(big);
	ok(!cosign_simple_verify(k, D1, "{}", 2, "AAAA", &r) &&
	       r.verdict == SIGN_WRONG_KEY,
	   "a signature no key verifies is another key's");
	ok(!cosign_simple_verify(k, D1, NULL, 0, "AAAA", &r) && r.verdict == SIGN_BROKEN,
	   "no payload is broken");
	sign_keys_free(k);
	sign_key_free(sk);
	EVP_PKEY_free(pk);
	unlink(pub);
	unlink(priv);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_sign.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_verdicts();
	test_b64_pae();
	test_referrer_manifest();
	test_index_add();
	test_index_bundles();
	test_keys();
	test_verify_edges();
	rmdir(tmpdir);
	return tap_done();
}
