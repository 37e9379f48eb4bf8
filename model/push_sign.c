/* push_sign.c - cosign signatures of pushed charts, to the registry. */
#include "model/push_sign.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "sign/cosign.h"
#include "sign/keys.h"

/* The empty config every referrer names (OCI image-spec's empty
 * descriptor, sha256:44136fa3...). */
#define EMPTY_CONFIG "{}"

/* A loaded key and the signatures being made with it. */
struct held_key {
	struct sign_key *key;
	unsigned refs; /* under the signer's lock */
};

struct push_signer {
	char *path;
	pthread_mutex_t lock;
	struct held_key *cur; /* holds one reference of its own */
};

/* The referrers tag schema is a read-modify-write of one tag (GET the
 * index, add, PUT). An upload's lock is held across its whole push, but it
 * is the upload's own: two files copied at once into one repository, or a
 * push racing a delete, would each read the same index and the last PUT
 * would drop the other's entry. This lock serializes every index update of
 * the process (they are two small requests). Other clients of the registry
 * may still race: the spec leaves that to them (distribution 2.8 has no
 * conditional PUT). */
static pthread_mutex_t index_lock = PTHREAD_MUTEX_INITIALIZER;

static int held_load(const char *path, struct held_key **out)
{
	struct held_key *h = calloc(1, sizeof(*h));
	int ret;

	if (!h)
		return -ENOMEM;
	ret = sign_key_load(path, &h->key);
	if (ret) {
		free(h);
		return ret;
	}
	h->refs = 1;
	*out = h;
	return 0;
}

/* Drop a reference (s->lock held); the last frees the key. */
static void held_put_locked(struct held_key *h)
{
	if (h && --h->refs == 0) {
		sign_key_free(h->key);
		free(h);
	}
}

int push_signer_new(const char *path, struct push_signer **out)
{
	struct push_signer *s = calloc(1, sizeof(*s));
	int ret;

	*out = NULL;
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return -ENOMEM;
	}
	ret = held_load(path, &s->cur);
	if (ret) {
		free(s->path);
		free(s);
		return ret;
	}
	pthread_mutex_init(&s->lock, NULL);
	log_info("model: -o sign_key: pushes are signed with %s",
		 sign_key_fpr(s->cur->key));
	*out = s;
	return 0;
}

void push_signer_reload(struct push_signer *s)
{
	struct held_key *h;

	if (held_load(s->path, &h) != 0) {
		/* sign_key_load said why; say what happens now. */
		log_warn("model: SIGHUP: -o sign_key %s not read again: pushes are "
			 "signed with the key read before",
			 s->path);
		return;
	}
	pthread_mutex_lock(&s->lock);
	held_put_locked(s->cur);
	s->cur = h;
	pthread_mutex_unlock(&s->lock);
	log_notice("model: SIGHUP: pushes are signed with %s", sign_key_fpr(h->key));
}

void push_signer_free(struct push_signer *s)
{
	if (!s)
		return;
	held_put_locked(s->cur);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}

static struct held_key *held_get(struct push_signer *s)
{
	struct held_key *h;

	pthread_mutex_lock(&s->lock);
	h = s->cur;
	h->refs++;
	pthread_mutex_unlock(&s->lock);
	return h;
}

static void held_put(struct push_signer *s, struct held_key *h)
{
	pthread_mutex_lock(&s->lock);
	held_put_locked(h);
	pthread_mutex_unlock(&s->lock);
}

/* Upload len bytes from memory as a blob unless the registry has it; its
 * digest into digest. The client reads uploads from a descriptor: a memfd. */
static int upload_mem(struct oci_client *c, const char *repo, const void *data,
		      size_t len, char digest[DIGEST_STR_MAX])
{
	int fd, ret = digest_buf(data, len, digest);

	if (ret)
		return ret;
	ret = oci_blob_exists(c, repo, digest);
	if (ret != -ENOENT)
		return ret;
	fd = memfd_create("chartfs-sign", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, data, len) != (ssize_t)len)
		ret = -EIO; /* a memfd write of a few KiB: short only in theory */
	else
		ret = oci_blob_upload(c, repo, digest, fd, len);
	close(fd);
	return ret;
}

/* "sha256-<hex>": the referrers tag schema's tag for a sha256 subject. */
static void schema_tag(const char *subject, char tag[DIGEST_STR_MAX])
{
	snprintf(tag, DIGEST_STR_MAX, "sha256-%s", digest_hex(subject));
}

/* Add the referrer manifest ref to subject's tag schema index (the
 * distribution-spec steps: read it, an absent tag is an empty index, a
 * manifest that is no index is a failure, add, write it back). *step says
 * what failed. */
static int index_add(struct oci_client *c, const char *repo, const char *subject,
		     const struct oci_buf *ref, const char **step)
{
	struct oci_fetched f = {0};
	struct oci_buf idx = {0};
	char tag[DIGEST_STR_MAX];
	int ret;

	schema_tag(subject, tag);
	pthread_mutex_lock(&index_lock);
	*step = "reading the referrers index";
	ret = oci_manifest_get(c, repo, tag, &f);
	if (ret == -ENOENT)
		ret = 0;
	else if (!ret && f.media_type[0] && strcmp(f.media_type, OCI_MT_INDEX)) {
		*step = "the referrers tag holds no image index";
		ret = -EINVAL;
	}
	if (ret)
		goto out;
	*step = "adding to the referrers index";
	ret = cosign_index_add(f.body.data, f.body.len, ref->data, ref->len, &idx);
	if (ret)
		goto out;
	*step = "writing the referrers index";
	ret = oci_manifest_put(c, repo, tag, OCI_MT_INDEX, idx.data, idx.len);
out:
	pthread_mutex_unlock(&index_lock);
	oci_fetched_clear(&f);
	free(idx.data);
	return ret;
}

/* Upload the bundle and the empty config, then PUT the referrer manifest
 * by its digest; *subject_api says whether the registry keeps referrers
 * itself. */
static int push_referrer(struct oci_client *c, const char *repo,
			 const struct oci_buf *bundle, const char *subject, size_t len,
			 struct oci_buf *ref, bool *subject_api, const char **step)
{
	char bundle_digest[DIGEST_STR_MAX], config[DIGEST_STR_MAX],
	    digest[DIGEST_STR_MAX];
	int ret;

	*step = "uploading the bundle";
	ret = upload_mem(c, repo, bundle->data, bundle->len, bundle_digest);
	if (ret)
		return ret;
	*step = "uploading the empty config";
	ret = upload_mem(c, repo, EMPTY_CONFIG, strlen(EMPTY_CONFIG), config);
	if (ret)
		return ret;
	*step = "making the referrer manifest";
	ret = cosign_referrer_manifest(bundle_digest, bundle->len, OCI_MT_MANIFEST,
				       subject, len, ref);
	if (!ret)
		ret = digest_buf(ref->data, ref->len, digest);
	if (ret)
		return ret;
	*step = "pushing the referrer manifest";
	return oci_manifest_put_subject(c, repo, digest, OCI_MT_MANIFEST, ref->data,
					ref->len, subject_api);
}

int push_sign_manifest(struct push_signer *s, struct oci_client *c, const char *repo,
		       const char *what, const char *manifest, size_t len)
{
	struct held_key *h = held_get(s);
	struct oci_buf bundle = {0}, ref = {0};
	char subject[DIGEST_STR_MAX];
	const char *step = "hashing the manifest";
	bool subject_api = false;
	int ret;

	ret = digest_buf(manifest, len, subject);
	if (ret)
		goto out;
	step = "making the bundle";
	ret = cosign_bundle_make(h->key, subject, &bundle);
	if (ret)
		goto out;
	ret = push_referrer(c, repo, &bundle, subject, len, &ref, &subject_api, &step);
	/* No OCI-Subject in the answer: the registry does not list referrers
	 * (distribution 2.8), the tag schema is ours to keep. */
	if (!ret && !subject_api)
		ret = index_add(c, repo, subject, &ref, &step);
out:
	if (ret) {
		log_warn("model: push %s: the chart is pushed but unsigned: %s: %s", what,
			 step, strerror(-ret));
		ret = -EIO;
	} else {
		log_info("model: signed %s (%s) with %s%s", what, subject,
			 sign_key_fpr(h->key),
			 subject_api ? "" : ", listed in the referrers tag schema");
	}
	held_put(s, h);
	free(bundle.data);
	free(ref.data);
	return ret;
}

/* How many manifests an index lists, or -1 when it is none. */
static long index_entries(const struct oci_fetched *f)
{
	json_t *root = json_loadb(f->body.data, f->body.len, 0, NULL);
	json_t *arr = json_object_get(root, "manifests");
	long n = json_is_array(arr) ? (long)json_array_size(arr) : -1;

	json_decref(root);
	return n;
}

void push_sign_forget(struct oci_client *c, const char *repo, const char *subject)
{
	struct oci_fetched f = {0};
	struct strv bundles = {0};
	char tag[DIGEST_STR_MAX];
	size_t i, gone = 0;
	int ret;

	schema_tag(subject, tag);
	pthread_mutex_lock(&index_lock);
	ret = oci_manifest_get(c, repo, tag, &f);
	if (ret)
		goto out; /* none (-ENOENT), or the client said why */
	ret = cosign_index_bundles(f.body.data, f.body.len, &bundles);
	if (ret || index_entries(&f) != (long)bundles.n) {
		/* Others' artifacts (an SBOM, an attestation) are not ours
		 * to remove, nor is an index we cannot read. */
		log_info("model: %s:%s lists more than cosign signatures: left as it is",
			 repo, tag);
		goto out;
	}
	for (i = 0; i < bundles.n; i++) {
		ret = oci_manifest_delete(c, repo, bundles.v[i]);
		if (ret == 0 || ret == -ENOENT)
			gone++;
	}
	/* The index goes last, and only once it lists nothing left. */
	if (gone == bundles.n && oci_manifest_delete(c, repo, f.digest) == 0)
		log_info("model: deleted %zu signature%s of %s@%s and %s", gone,
			 gone == 1 ? "" : "s", repo, subject, tag);
out:
	pthread_mutex_unlock(&index_lock);
	strv_free(&bundles);
	oci_fetched_clear(&f);
}
