/*
 * model_snap.c - the model's names on disk (cache/meta.h), so that a remount
 * within the ttl trusts what was fetched before, as the mount that fetched it
 * would have. A repository's snapshot is its tags with their manifest
 * digests. The manifests a listing fetched go into one document per
 * repository, the pack ({digest: body}), checked against their digests when
 * read back: a file per manifest cost a quarter of a cold `ls -l` of 200
 * tags in inode creation alone. A manifest fetched on its own goes to the
 * blob store by digest (verified there), where the pack's misses are looked
 * up too.
 */
#include "model/model_i.h"

#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/meta.h"
#include "common/digest.h"
#include "common/log.h"

/* Below what meta_get reads back (16 MiB): about 20,000 manifests. */
#define PACK_MAX (15u * 1024 * 1024)

/* The registry's host (and port) in base, without the scheme: what is
 * kept of a registry is the same whichever scheme the mount speaks, so an
 * -o offline mount without -o plain_http serves what an earlier plain
 * HTTP mount kept. */
static const char *snap_host(const char *base)
{
	const char *p = strstr(base, "://");

	return p ? p + 3 : base;
}

/* The key of kind for name. scheme NULL: today's key, by host; else the
 * key older cache dirs hold ("<scheme>://host/name"). */
static char *snap_key_as(struct model *m, const char *scheme, const char *kind,
			 const char *name)
{
	const char *host = snap_host(oci_client_base_url(m->client));
	char *key = NULL;

	if (asprintf(&key, "%s %s%s%s/%s", kind, scheme ? scheme : "",
		     scheme ? "://" : "", host, name) < 0)
		return NULL;
	return key;
}

static char *snap_key(struct model *m, const char *kind, const char *name)
{
	return snap_key_as(m, NULL, kind, name);
}

/* The schemes of the keys of older cache dirs, still read and dropped, so
 * that a cache dir filled before keys were by host keeps serving. */
static const char *const legacy_schemes[] = {"https", "http"};

/* The document of kind for name, parsed, if at most max_age seconds old
 * (*age gets its age): NULL when missing, older, unreadable or not JSON.
 * A miss under today's key looks under the legacy ones. */
static json_t *snap_load(struct model *m, const char *kind, const char *name,
			 unsigned max_age, unsigned *age)
{
	json_t *doc = NULL;
	size_t i;

	for (i = 0; !doc && i <= sizeof(legacy_schemes) / sizeof(*legacy_schemes); i++) {
		char *key = snap_key_as(m, i ? legacy_schemes[i - 1] : NULL, kind, name);
		char *text = NULL;
		size_t len;

		if (key && meta_get(m->bc, key, max_age, &text, &len, age) == 0)
			doc = json_loadb(text, len, 0, NULL);
		free(text);
		free(key);
	}
	return doc;
}

/* Forget the document of kind for name under every key it may be kept. */
static void snap_drop(struct model *m, const char *kind, const char *name)
{
	size_t i;

	for (i = 0; i <= sizeof(legacy_schemes) / sizeof(*legacy_schemes); i++) {
		char *key = snap_key_as(m, i ? legacy_schemes[i - 1] : NULL, kind, name);

		if (!key || meta_drop(m->bc, key) != 0)
			log_debug("model: could not drop the %s snapshot of %s", kind,
				  name);
		free(key);
	}
}

/* How old a document may be: the ttl, or anything offline. */
static unsigned snap_max_age(const struct model *m)
{
	return m->offline ? ~0u : m->ttl;
}

void model_snap_keep_manifest(struct model *m, const struct oci_fetched *f)
{
	if (f->err || !f->body.data)
		return;
	if (blobcache_put(m->bc, f->digest, f->body.data, f->body.len) != 0)
		log_debug("model: could not keep manifest %s", f->digest);
}

/* The pack of repository name, or a new empty one; NULL without memory.
 * Its bodies are content-addressed: no age makes them wrong. */
static json_t *load_pack(struct model *m, const char *name)
{
	unsigned age;
	json_t *pack = snap_load(m, "manifests", name, ~0u, &age);

	if (!json_is_object(pack)) {
		json_decref(pack);
		pack = json_object();
	}
	return pack;
}

/* Add to keep the manifest digests the tags snapshot of name holds. */
static void keep_snapshot_digests(struct model *m, const char *name, json_t *keep)
{
	unsigned age;
	json_t *root = snap_load(m, "tags", name, ~0u, &age), *e;
	size_t i;

	json_array_foreach(json_object_get(root, "tags"), i, e)
	{
		const char *digest = json_string_value(json_array_get(e, 1));

		if (digest && *digest)
			json_object_set_new(keep, digest, json_true());
	}
	json_decref(root);
}

void model_snap_keep_manifests(struct model *m, struct ns_node *node, const char *name,
			       const struct oci_fetched *res, size_t n)
{
	json_t *pack = load_pack(m, name), *keep = json_object(), *body;
	char *key = snap_key(m, "manifests", name), *text = NULL;
	const char *digest;
	void *iter_tmp;
	size_t i;

	if (!pack || !keep || !key)
		goto out;
	for (i = 0; i < n; i++) {
		if (res[i].err || !res[i].body.data)
			continue;
		/* Not UTF-8 (a hostile registry): JSON cannot hold it. */
		body = json_stringn(res[i].body.data, res[i].body.len);
		if (!body || json_object_set_new(pack, res[i].digest, body) != 0)
			model_snap_keep_manifest(m, &res[i]);
	}
	/* Keep what the repository's tags point to, nothing more: the pack is
	 * rewritten whole, and a listing may fetch only some tags. Those of
	 * this mount, and those of the snapshot on disk, which a remount (or
	 * another daemon sharing the cache) reads and may be older. */
	pthread_mutex_lock(&m->lock);
	for (i = 0; node->repo && i < node->repo->ntags; i++)
		if (node->repo->tags[i]->has_manifest)
			json_object_set_new(keep, node->repo->tags[i]->digest,
					    json_true());
	pthread_mutex_unlock(&m->lock);
	keep_snapshot_digests(m, name, keep);
	json_object_foreach_safe(pack, iter_tmp, digest, body)
	{
		if (!json_object_get(keep, digest))
			json_object_del(pack, digest);
	}
	text = json_dumps(pack, JSON_COMPACT);
	/* Too large to be read back (tens of thousands of tags): a file
	 * each, as for a manifest fetched on its own. */
	if (text && strlen(text) > PACK_MAX) {
		for (i = 0; i < n; i++)
			model_snap_keep_manifest(m, &res[i]);
		goto out;
	}
	if (text && meta_put(m->bc, key, text, strlen(text)) != 0)
		log_debug("model: could not keep the manifests of %s", name);
out:
	json_decref(pack);
	json_decref(keep);
	free(key);
	free(text);
}

void model_snap_save_tags(struct model *m, struct ns_node *node)
{
	json_t *root = json_object(), *arr = json_array();
	struct repo *r;
	char *key = NULL, *name = NULL, *text = NULL;
	size_t i;

	if (!root || !arr)
		goto out;
	pthread_mutex_lock(&m->lock);
	r = node->repo;
	if (!r || !r->ever_listed ||
	    (r->saved.tv_sec == r->listed.tv_sec &&
	     r->saved.tv_nsec == r->listed.tv_nsec)) {
		pthread_mutex_unlock(&m->lock);
		goto out;
	}
	r->saved = r->listed;
	for (i = 0; i < r->ntags; i++) {
		const struct model_tag *t = r->tags[i];
		json_array_append_new(
		    arr, json_pack("[sss]", t->tag, t->has_manifest ? t->digest : "",
				   t->has_manifest ? t->media_type : ""));
	}
	pthread_mutex_unlock(&m->lock);
	json_object_set(root, "tags", arr);
	name = model_repo_name(m, node);
	key = name ? snap_key(m, "tags", name) : NULL;
	text = json_dumps(root, JSON_COMPACT);
	if (key && text && meta_put(m->bc, key, text, strlen(text)) != 0)
		log_debug("model: could not save the tags of %s", name);
	if (json_array_size(arr) >= MODEL_TRIM_AFTER)
		malloc_trim(0);
out:
	json_decref(root);
	json_decref(arr);
	free(key);
	free(name);
	free(text);
}

void model_snap_drop_tags(struct model *m, struct ns_node *node)
{
	char *name = model_repo_name(m, node);

	if (name)
		snap_drop(m, "tags", name);
	free(name);
}

/* Read a manifest kept by digest back into a fetch result. */
static int kept_manifest(struct model *m, const char *digest, const char *media_type,
			 struct oci_fetched *f)
{
	char path[4096];
	FILE *fp;
	long len;
	int ret;

	ret = blobcache_get(m->bc, digest, -1, NULL, NULL, path, sizeof(path));
	if (ret)
		return ret;
	fp = fopen(path, "rbe");
	if (!fp)
		return -ENOENT;
	if (fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0 ||
	    len > OCI_MANIFEST_MAX || fseek(fp, 0, SEEK_SET) != 0) {
		fclose(fp);
		return -EIO;
	}
	f->body.data = malloc((size_t)len + 1);
	if (!f->body.data || fread(f->body.data, 1, (size_t)len, fp) != (size_t)len) {
		fclose(fp);
		return -EIO;
	}
	fclose(fp);
	f->body.data[len] = '\0';
	f->body.len = (size_t)len;
	snprintf(f->digest, sizeof(f->digest), "%s", digest);
	snprintf(f->media_type, sizeof(f->media_type), "%s", media_type);
	return 0;
}

/* Read a manifest from the pack back into a fetch result, if it is there
 * and still hashes to its digest. */
static int packed_manifest(json_t *pack, const char *digest, const char *media_type,
			   struct oci_fetched *f)
{
	json_t *body = json_object_get(pack, digest);
	char got[DIGEST_STR_MAX];
	size_t len;

	if (!json_is_string(body))
		return -ENOENT;
	len = json_string_length(body);
	if (len > OCI_MANIFEST_MAX ||
	    digest_buf(json_string_value(body), len, got) != 0 || strcmp(got, digest))
		return -ENOENT;
	f->body.data = malloc(len + 1);
	if (!f->body.data)
		return -ENOMEM;
	memcpy(f->body.data, json_string_value(body), len);
	f->body.data[len] = '\0';
	f->body.len = len;
	snprintf(f->digest, sizeof(f->digest), "%s", digest);
	snprintf(f->media_type, sizeof(f->media_type), "%s", media_type);
	return 0;
}

/* A kept manifest: from the pack, else from the blob store. */
static int reload_manifest(struct model *m, json_t *pack, const char *digest,
			   const char *media_type, struct oci_fetched *f)
{
	if (packed_manifest(pack, digest, media_type, f) == 0)
		return 0;
	oci_fetched_clear(f);
	return kept_manifest(m, digest, media_type, f);
}

int model_snap_load_tags(struct model *m, struct ns_node *node, const char *name)
{
	json_t *pack = NULL;
	struct strv tags = {0};
	json_t *root, *arr, *e;
	struct timespec at;
	unsigned age;
	size_t i;
	int ret;

	root = snap_load(m, "tags", name, snap_max_age(m), &age);
	arr = json_object_get(root, "tags");
	ret = -ENOENT;
	if (!json_is_array(arr))
		goto out;
	json_array_foreach(arr, i, e)
	{
		const char *tag = json_string_value(json_array_get(e, 0));
		if (!tag || strv_push(&tags, tag) != 0)
			goto out;
	}
	strv_sort_uniq(&tags);
	at = mono_ago(age);
	pthread_mutex_lock(&m->lock);
	ret = model_apply_tags_locked(node->repo, &tags);
	node->repo->ever_listed = true;
	node->repo->listed = at;
	node->repo->saved = at;
	pthread_mutex_unlock(&m->lock);
	if (ret)
		goto out;
	json_array_foreach(arr, i, e)
	{
		const char *tag = json_string_value(json_array_get(e, 0));
		const char *digest = json_string_value(json_array_get(e, 1));
		const char *mt = json_string_value(json_array_get(e, 2));
		struct oci_fetched f = {0};
		struct model_tag *t;

		/* A manifest missing from the store is fetched when needed. */
		if (!pack)
			pack = load_pack(m, name);
		if (!digest || !digest_valid(digest) || !mt ||
		    reload_manifest(m, pack, digest, mt, &f) != 0) {
			oci_fetched_clear(&f);
			continue;
		}
		t = model_tag_from_fetched(tag, &f);
		oci_fetched_clear(&f);
		if (!t)
			continue;
		t->checked = at;
		pthread_mutex_lock(&m->lock);
		if (model_repo_set_tag_locked(node->repo, t) != 0)
			model_tag_unref_locked(t);
		pthread_mutex_unlock(&m->lock);
	}
	log_debug("model: tags of %s from a snapshot %u s old", name, age);
out:
	json_decref(pack);
	json_decref(root);
	strv_free(&tags);
	return ret;
}

void model_snap_save_catalog(struct model *m, const struct strv *names)
{
	json_t *arr = json_array();
	char *key = snap_key(m, "catalog", ""), *text = NULL;
	size_t i;

	for (i = 0; arr && i < names->n; i++)
		json_array_append_new(arr, json_string(names->v[i]));
	text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	if (key && text && meta_put(m->bc, key, text, strlen(text)) != 0)
		log_debug("model: could not save the catalog");
	json_decref(arr);
	free(key);
	free(text);
}

void model_snap_drop_catalog(struct model *m)
{
	snap_drop(m, "catalog", "");
}

int model_snap_load_catalog(struct model *m, struct strv *names, unsigned *age)
{
	json_t *arr = snap_load(m, "catalog", "", snap_max_age(m), age), *e;
	size_t i;
	int ret = json_is_array(arr) ? 0 : -ENOENT;

	json_array_foreach(arr, i, e)
	{
		if (!json_is_string(e) || strv_push(names, json_string_value(e)) != 0) {
			strv_free(names);
			ret = -ENOENT;
			break;
		}
	}
	json_decref(arr);
	return ret;
}
