/* model_tag.c - tag tables, manifests, blobs and trees of the model. */
#include "model/model_i.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "model/timefmt.h"

/* The repo data of a node, created on demand; lock held. */
struct repo *model_node_repo(struct ns_node *n)
{
	if (!n->repo)
		n->repo = calloc(1, sizeof(struct repo));
	return n->repo;
}

static void tag_free(struct model_tag *t)
{
	if (!t)
		return;
	/* Its strings and descriptors live in its own allocation. */
	free(t->blob_path);
	free(t->tree_path);
	free(t);
}

/* Drop one reference; the lock must be held. */
void model_tag_unref_locked(struct model_tag *t)
{
	if (t && --t->refs == 0)
		tag_free(t);
}

void model_repo_free(struct repo *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->ntags; i++)
		model_tag_unref_locked(r->tags[i]);
	free(r->tags);
	free(r);
}

/* ---- tags ------------------------------------------------------------- */

static ssize_t tag_find(const struct repo *r, const char *tag, bool *found)
{
	size_t lo = 0, hi = r->ntags;

	*found = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(r->tags[mid]->tag, tag);
		if (c == 0) {
			*found = true;
			return (ssize_t)mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ssize_t)lo;
}

/* A record of name tag, with room for extra bytes after it (descriptors
 * and strings); its manifest still unknown. */
static struct model_tag *tag_alloc(const char *tag, size_t extra, char **rest)
{
	size_t len = strlen(tag) + 1;
	struct model_tag *t = calloc(1, sizeof(*t) + extra + len);

	if (!t)
		return NULL;
	t->tag = (char *)(t + 1) + extra;
	memcpy(t->tag, tag, len);
	t->media_type = "";
	t->refs = 1;
	*rest = (char *)(t + 1);
	return t;
}

static struct model_tag *tag_new(const char *tag)
{
	char *rest;

	return tag_alloc(tag, 0, &rest);
}

/* Insert or replace the record for t->tag; takes the caller's reference. */
int model_repo_set_tag_locked(struct repo *r, struct model_tag *t)
{
	bool found;
	ssize_t pos = tag_find(r, t->tag, &found);

	if (found) {
		model_tag_unref_locked(r->tags[pos]);
		r->tags[pos] = t;
		return 0;
	}
	if (r->ntags == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct model_tag **v = realloc(r->tags, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->tags = v;
		r->cap = cap;
	}
	memmove(r->tags + pos + 1, r->tags + pos,
		(r->ntags - (size_t)pos) * sizeof(*r->tags));
	r->tags[pos] = t;
	r->ntags++;
	return 0;
}

static void repo_drop_tag_locked(struct repo *r, const char *tag)
{
	bool found;
	ssize_t pos = tag_find(r, tag, &found);

	if (!found)
		return;
	model_tag_unref_locked(r->tags[pos]);
	memmove(r->tags + pos, r->tags + pos + 1,
		(r->ntags - (size_t)pos - 1) * sizeof(*r->tags));
	r->ntags--;
}

/* Replace the tag table with the listed names, keeping known records. */
int model_apply_tags_locked(struct repo *r, const struct strv *tags)
{
	struct model_tag **v = calloc(tags->n ? tags->n : 1, sizeof(*v));
	size_t i, n = 0;

	if (!v)
		return -ENOMEM;
	for (i = 0; i < tags->n; i++) {
		bool found;
		ssize_t pos;

		if (!oci_tag_valid(tags->v[i]) ||
		    (n && !strcmp(v[n - 1]->tag, tags->v[i])))
			continue;
		pos = tag_find(r, tags->v[i], &found);
		if (found) {
			v[n] = r->tags[pos];
			v[n++]->refs++;
		} else {
			v[n] = tag_new(tags->v[i]);
			if (v[n])
				n++;
		}
	}
	for (i = 0; i < r->ntags; i++)
		model_tag_unref_locked(r->tags[i]);
	free(r->tags);
	r->tags = v;
	r->ntags = n;
	r->cap = tags->n ? tags->n : 1;
	return 0;
}

/* A repository never listed by this mount takes what an earlier mount
 * kept in the cache dir (model_snap.c), if it is within the ttl: a remount
 * lists it, or opens a path in it (a script that knows its paths), with no
 * request, and offline there is something to serve. Never a network
 * listing here: a cold read costs a manifest and a blob, no more. Another
 * thread listing meanwhile is left to it. */
static void load_snapshot_once(struct model *m, struct ns_node *node)
{
	struct repo *r;
	char *name;

	pthread_mutex_lock(&m->lock);
	r = model_node_repo(node);
	if (!r || r->ever_listed || !flight_try_lead_locked(&r->listing)) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	pthread_mutex_unlock(&m->lock);
	name = model_repo_name(m, node);
	if (name)
		(void)model_snap_load_tags(m, node, name);
	free(name);
	pthread_mutex_lock(&m->lock);
	flight_done_locked(m, &r->listing);
	pthread_mutex_unlock(&m->lock);
}

/* List node's tags as the one leader (the caller set r->listing; gen is
 * r->gen then). */
static int tags_lead(struct model *m, struct ns_node *node, struct repo *r, unsigned gen)
{
	struct strv tags = {0};
	char *name;
	int ret;

	name = model_repo_name(m, node);
	if (m->offline)
		ret = name ? -ENOENT : -ENOMEM;
	else
		ret = name ? oci_tags(m->client, name, &tags) : -ENOMEM;
	if (ret == 0)
		strv_sort_uniq(&tags);

	pthread_mutex_lock(&m->lock);
	if (ret == 0) {
		ret = model_apply_tags_locked(r, &tags);
		r->ever_listed = true;
		/* Forgotten meanwhile (a push, SIGHUP): this answer may be
		 * older than that, so the next access asks again. */
		r->listed = r->gen == gen ? now_mono() : (struct timespec){0};
	} else if (r->ever_listed && ret != -ENOENT && ret != -EACCES) {
		log_warn(
		    "model: listing tags of %s failed (%s): serving the previous listing",
		    name, strerror(-ret));
		r->listed = r->gen == gen ? now_mono() : (struct timespec){0};
		ret = 0;
	} else {
		/* Gone or refused: no longer served as it was; the next
		 * access asks and answers with the error. */
		r->listed = (struct timespec){0};
	}
	flight_done_locked(m, &r->listing);
	pthread_mutex_unlock(&m->lock);
	strv_free(&tags);
	free(name);
	return ret;
}

/* node's repo data, with what a snapshot on disk holds loaded first, and
 * the model's lock taken; NULL (unlocked) when out of memory. */
static struct repo *lock_repo(struct model *m, struct ns_node *node)
{
	struct repo *r;

	load_snapshot_once(m, node);
	pthread_mutex_lock(&m->lock);
	r = model_node_repo(node);
	if (!r)
		pthread_mutex_unlock(&m->lock);
	return r;
}

/* Refresh the tag listing of node when stale (single-flight). A listing
 * that expired is refreshed in the background and served as it is if the
 * answer does not come within a short wait; one never made or forgotten
 * waits for the registry. */
int model_refresh_tags(struct model *m, struct ns_node *node)
{
	struct repo *r;
	unsigned gen;

	r = lock_repo(m, node);
	if (!r)
		return -ENOMEM;
	for (;;) {
		if (fresh(m, r->listed)) {
			pthread_mutex_unlock(&m->lock);
			return 0;
		}
		if (r->ever_listed && stale_ok(m, r->listed)) {
			model_revalidate_locked(m, MODEL_REFRESH_REPO, node, NULL);
			pthread_mutex_unlock(&m->lock);
			return 0;
		}
		if (flight_lead_locked(m, &r->listing))
			break;
	}
	gen = r->gen;
	pthread_mutex_unlock(&m->lock);
	return tags_lead(m, node, r, gen);
}

const char *model_tag_annotation_at(const struct model_tag *t, size_t i,
				    const char **value)
{
	const char *p = t->annotations;

	for (; i > 0; i--) {
		p += strlen(p) + 1;
		p += strlen(p) + 1;
	}
	*value = p + strlen(p) + 1;
	return p;
}

const char *model_tag_annotation(const struct model_tag *t, const char *key)
{
	const char *k, *v;
	size_t i;

	for (i = 0; i < t->n_annotations; i++) {
		k = model_tag_annotation_at(t, i, &v);
		if (!strcmp(k, key))
			return v;
	}
	return NULL;
}

/* The annotations of man that a record keeps (MODEL_TAG_ANNOTATIONS_MAX):
 * how many, and their packed bytes into *bytes. */
static size_t annotations_kept(const struct oci_manifest *man, size_t *bytes)
{
	size_t i, b = 0;

	for (i = 0; man && i < man->n_annotations; i++) {
		size_t one = strlen(man->annotations[i].key) +
			     strlen(man->annotations[i].value) + 2;

		if (b + one > MODEL_TAG_ANNOTATIONS_MAX)
			break;
		b += one;
	}
	*bytes = b;
	return i;
}

/* The media types nearly every chart has, kept once rather than per tag. */
static const char *const common_types[] = {OCI_MT_MANIFEST, HELM_MT_CHART, HELM_MT_PROV,
					   OCI_MT_DOCKER_MANIFEST};

static const char *common_type(const char *mt)
{
	size_t i;

	for (i = 0; i < sizeof(common_types) / sizeof(*common_types); i++)
		if (!strcmp(mt, common_types[i]))
			return common_types[i];
	return NULL;
}

/* Bytes a string of the record takes: none for a common media type. */
static size_t type_bytes(const char *mt)
{
	return common_type(mt) ? 0 : strlen(mt) + 1;
}

/* Copy s and its NUL to *p, which moves past them; the copy. */
static const char *put_str(char **p, const char *s)
{
	size_t len = strlen(s) + 1;
	char *at = *p;

	memcpy(at, s, len);
	*p += len;
	return at;
}

/* Copy media type mt to *p (moved past it), unless it is a common one. */
static const char *put_type(char **p, const char *mt)
{
	const char *common = common_type(mt);

	return common ? common : put_str(p, mt);
}

/* Copy descriptor d (its media type into *strs) to *slot. */
static const struct oci_descriptor *put_desc(struct oci_descriptor *slot, char **strs,
					     const struct oci_descriptor *d)
{
	*slot = *d;
	slot->media_type = (char *)put_type(strs, d->media_type ? d->media_type : "");
	return slot;
}

static size_t desc_bytes(const struct oci_descriptor *d)
{
	return d ? sizeof(*d) + type_bytes(d->media_type ? d->media_type : "") : 0;
}

/* The compact record of a parsed manifest man (of f): one allocation. */
static struct model_tag *tag_compact(const char *tag, const struct oci_fetched *f,
				     const struct oci_manifest *man)
{
	const struct oci_descriptor *chart = oci_manifest_chart_layer(man);
	const struct oci_descriptor *prov = chart ? oci_manifest_prov_layer(man) : NULL;
	const char *mt = f->media_type[0] ? f->media_type : man->media_type;
	const char *created =
	    oci_manifest_annotation(man, "org.opencontainers.image.created");
	size_t ann_bytes, n_ann = annotations_kept(man, &ann_bytes), i;
	struct oci_descriptor *descs;
	struct model_tag *t;
	char *p;

	mt = mt ? mt : "";
	t = tag_alloc(
	    tag, desc_bytes(chart) + desc_bytes(prov) + strlen(mt) + 1 + ann_bytes, &p);
	if (!t)
		return NULL;
	/* Descriptors first: the record's end is aligned for them. */
	descs = (struct oci_descriptor *)p;
	p = (char *)(descs + (chart ? 1 : 0) + (prov ? 1 : 0));
	if (chart)
		t->chart = put_desc(&descs[0], &p, chart);
	if (prov)
		t->prov = put_desc(&descs[1], &p, prov);
	t->media_type = put_type(&p, mt);
	t->annotations = p;
	t->n_annotations = n_ann;
	for (i = 0; i < n_ann; i++) {
		put_str(&p, man->annotations[i].key);
		put_str(&p, man->annotations[i].value);
	}
	if (n_ann < man->n_annotations)
		log_debug("model: tag %s: %zu annotations past %d bytes not kept", tag,
			  man->n_annotations - n_ann, MODEL_TAG_ANNOTATIONS_MAX);
	if (created)
		t->created = timefmt_parse_rfc3339(created);
	t->has_manifest = true;
	return t;
}

/* Build a record from a fetched manifest. */
struct model_tag *model_tag_from_fetched(const char *tag, const struct oci_fetched *f)
{
	struct oci_manifest *man = NULL;
	struct model_tag *t;

	if (oci_manifest_parse(f->body.data, f->body.len, f->media_type, &man) != 0) {
		log_info("model: tag %s: manifest %s is not one chartfs understands", tag,
			 f->digest);
		t = tag_new(tag);
	} else {
		t = tag_compact(tag, f, man);
		oci_manifest_free(man);
	}
	if (!t)
		return NULL;
	memcpy(t->digest, f->digest, sizeof(t->digest));
	t->manifest_size = (int64_t)f->body.len;
	t->source = f->source;
	t->checked = now_mono();
	return t;
}

/* Apply one manifest fetch result to the repo; lock held. A fetch that
 * finds the digest unchanged keeps the record, so its cached tree and the
 * kernel's page cache stay valid. mark: the repository was not forgotten
 * since the fetch began, so its answer counts as fresh; otherwise it is
 * kept (it is at least as new as what was known) but asked again. */
static void apply_fetched_locked(struct repo *r, const char *tag,
				 const struct oci_fetched *f, bool mark)
{
	bool found;
	ssize_t pos = tag_find(r, tag, &found);
	struct model_tag *t;

	if (f->err == -ENOENT) {
		if (mark)
			repo_drop_tag_locked(r, tag);
		return;
	}
	if (f->err) {
		if (found && mark)
			r->tags[pos]->checked = now_mono(); /* stale-if-error */
		return;
	}
	if (found && r->tags[pos]->has_manifest &&
	    !strcmp(r->tags[pos]->digest, f->digest)) {
		if (mark)
			r->tags[pos]->checked = now_mono();
		return;
	}
	t = model_tag_from_fetched(tag, f);
	if (t && !mark)
		t->checked = (struct timespec){0};
	if (t && model_repo_set_tag_locked(r, t) != 0)
		tag_free(t);
}

/* Fetch the manifests of every listed tag that is not fresh, in parallel;
 * with serve_expired, those that expired are served and left to a
 * background refresh of the repository. */
int model_refresh_manifests(struct model *m, struct ns_node *node, bool serve_expired)
{
	struct repo *r;
	const char **refs = NULL;
	char **owned = NULL;
	struct oci_fetched *res = NULL;
	size_t i, n = 0;
	char *name = NULL;
	unsigned gen = 0;
	bool expired = false, lead = false;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	r = node->repo;
	/* One fetch of a repository's manifests at a time (a walk's
	 * read-ahead and the walk itself): the others wait for it, then find
	 * fresh what it fetched. */
	while (r && r->fetching)
		pthread_cond_wait(&m->cond, &m->lock);
	if (r && r->ntags) {
		owned = calloc(r->ntags, sizeof(*owned));
		if (!owned) {
			pthread_mutex_unlock(&m->lock);
			return -ENOMEM;
		}
		gen = r->gen;
		for (i = 0; i < r->ntags; i++) {
			const struct model_tag *t = r->tags[i];

			if (t->has_manifest && fresh(m, t->checked))
				continue;
			/* Hidden from the listing: fetched only when opened. */
			if (!m->show_signatures && path_is_signature_tag(t->tag))
				continue;
			if (serve_expired && t->has_manifest && stale_ok(m, t->checked)) {
				expired = true;
				continue;
			}
			owned[n] = strdup(t->tag);
			if (owned[n])
				n++;
		}
		if (expired)
			model_revalidate_locked(m, MODEL_REFRESH_REPO, node, NULL);
	}
	if (n && !m->offline) {
		/* Started meanwhile (the wait above lets go of the lock). */
		while (r->fetching)
			pthread_cond_wait(&m->cond, &m->lock);
		r->fetching = true;
		lead = true;
	}
	pthread_mutex_unlock(&m->lock);
	if (!lead)
		goto out;

	name = model_repo_name(m, node);
	refs = calloc(n, sizeof(*refs));
	res = calloc(n, sizeof(*res));
	if (!name || !refs || !res) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		refs[i] = owned[i];
	ret = oci_manifest_get_many(m->client, name, refs, n, m->parallel, res);
	if (ret)
		goto out;
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < n; i++)
		apply_fetched_locked(node->repo, owned[i], &res[i],
				     node->repo->gen == gen);
	pthread_mutex_unlock(&m->lock);
	model_snap_keep_manifests(m, node, name, res, n);
out:
	if (lead) {
		pthread_mutex_lock(&m->lock);
		flight_done_locked(m, &r->fetching);
		pthread_mutex_unlock(&m->lock);
	}
	for (i = 0; res && i < n; i++)
		oci_fetched_clear(&res[i]);
	for (i = 0; owned && i < n; i++)
		free(owned[i]);
	free(owned);
	free(refs);
	free(res);
	free(name);
	/* The bodies, the pack and its JSON were freed in the arenas of
	 * several threads, between the records kept: give the pages back. */
	if (n >= MODEL_TRIM_AFTER)
		malloc_trim(0);
	return ret;
}

void model_revalidate_repo(struct model *m, struct ns_node *node)
{
	struct repo *r;
	unsigned gen = 0;
	bool lead;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	r = node->repo;
	lead = !fresh(m, r->listed) && flight_try_lead_locked(&r->listing);
	if (lead)
		gen = r->gen;
	pthread_mutex_unlock(&m->lock);
	if (lead)
		ret = tags_lead(m, node, r, gen);
	if (!ret && !atomic_load(&m->pf_stop))
		ret = model_refresh_manifests(m, node, false);
	if (!ret)
		model_snap_save_tags(m, node);
}

/* Fetch tag's manifest and apply it to r; lock not held. */
static int fetch_tag(struct model *m, struct ns_node *node, struct repo *r,
		     const char *tag, unsigned gen)
{
	struct oci_fetched f = {0};
	char *name = model_repo_name(m, node);
	int ret;

	if (!name)
		return -ENOMEM;
	ret = oci_manifest_get(m->client, name, tag, &f);
	f.err = ret;
	model_snap_keep_manifest(m, &f);
	free(name);
	pthread_mutex_lock(&m->lock);
	apply_fetched_locked(r, tag, &f, r->gen == gen);
	pthread_mutex_unlock(&m->lock);
	oci_fetched_clear(&f);
	return ret;
}

void model_revalidate_tag(struct model *m, struct ns_node *node, struct model_tag *t)
{
	struct repo *r;
	unsigned gen;
	bool found;
	ssize_t pos;

	pthread_mutex_lock(&m->lock);
	r = node->repo;
	pos = tag_find(r, t->tag, &found);
	/* Asked again meanwhile (a listing), or gone from the listing. */
	if (!found || (r->tags[pos]->has_manifest && fresh(m, r->tags[pos]->checked))) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	gen = r->gen;
	pthread_mutex_unlock(&m->lock);
	(void)fetch_tag(m, node, r, t->tag, gen);
}

int model_tag_get(struct model *m, struct ns_node *node, const char *tag,
		  struct model_tag **out)
{
	struct repo *r;
	bool found;
	ssize_t pos;
	unsigned gen;
	int ret;

	r = lock_repo(m, node);
	if (!r)
		return -ENOMEM;
	pos = tag_find(r, tag, &found);
	if (found && r->tags[pos]->has_manifest && !fresh(m, r->tags[pos]->checked) &&
	    stale_ok(m, r->tags[pos]->checked)) {
		/* Expired: asked again behind, and served as it is if the
		 * answer does not come at once. */
		struct model_tag *t = r->tags[pos];

		t->refs++;
		model_revalidate_locked(m, MODEL_REFRESH_TAG, node, t);
		model_tag_unref_locked(t);
		pos = tag_find(r, tag, &found);
	}
	if (found && r->tags[pos]->has_manifest &&
	    (fresh(m, r->tags[pos]->checked) || stale_ok(m, r->tags[pos]->checked))) {
		*out = r->tags[pos];
		(*out)->refs++;
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	/* A fresh listing without this tag answers without a request, but
	 * for a tag pushed elsewhere since: once a second the listing is
	 * asked again, as an expired one is (a stalled registry costs this
	 * miss a short wait). */
	if (!found && fresh(m, r->listed)) {
		if (miss_due_locked(m, &r->missed)) {
			r->listed = mono_ago(m->ttl);
			model_revalidate_locked(m, MODEL_REFRESH_REPO, node, NULL);
			pos = tag_find(r, tag, &found);
		}
		if (!found) {
			pthread_mutex_unlock(&m->lock);
			return -ENOENT;
		}
		if (r->tags[pos]->has_manifest) {
			*out = r->tags[pos];
			(*out)->refs++;
			pthread_mutex_unlock(&m->lock);
			return 0;
		}
	}
	gen = r->gen;
	pthread_mutex_unlock(&m->lock);

	if (m->offline)
		return -ENOENT;
	ret = fetch_tag(m, node, r, tag, gen);

	pthread_mutex_lock(&m->lock);
	pos = tag_find(r, tag, &found);
	if (found && r->tags[pos]->has_manifest) {
		*out = r->tags[pos];
		(*out)->refs++;
		ret = 0;
	} else if (ret == 0) {
		ret = -EIO;
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

void model_tag_put(struct model *m, struct model_tag *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&m->lock);
	model_tag_unref_locked(t);
	pthread_mutex_unlock(&m->lock);
}

/* ---- blobs and trees --------------------------------------------------- */

struct fetch_arg {
	struct oci_client *client;
	const char *repo;
	const char *digest;
	uint64_t size;	   /* the descriptor's: the download stops there */
	const char *where; /* fd, for the log line of a failed write */
};

static int fetch_blob(void *arg, int fd)
{
	struct fetch_arg *a = arg;

	return oci_blob_get_into(a->client, a->repo, a->digest, a->size, fd, a->where);
}

/* What a read gets when the cache cannot take the chart (a full disk, a
 * quota, a read-only cache directory, no descriptor left in the daemon): an
 * I/O error, as from a dead registry, not an errno read(2) is not expected to
 * give (EMFILE would blame the caller). The failure was logged where it
 * happened, naming the cache directory and the reason. */
static int read_errno(int ret)
{
	switch (ret) {
	case -ENOSPC:
	case -EDQUOT:
	case -EFBIG:
	case -EROFS:
	case -EMFILE: /* the daemon's descriptors, not the caller's */
	case -ENFILE:
		return -EIO;
	default:
		return ret;
	}
}

/* Store path into *slot once; lock taken here. */
static const char *set_once(struct model *m, char **slot, const char *path)
{
	const char *ret;

	pthread_mutex_lock(&m->lock);
	if (!*slot)
		*slot = strdup(path);
	ret = *slot;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int model_tag_blob(struct model *m, struct ns_node *node, struct model_tag *t,
		   const char **path)
{
	char buf[4096];
	struct fetch_arg a;
	char *name, *where = NULL;
	int ret;

	if (!t->chart)
		return -ENOENT;
	pthread_mutex_lock(&m->lock);
	*path = t->blob_stale ? NULL : t->blob_path;
	pthread_mutex_unlock(&m->lock);
	if (*path)
		return 0;
	name = model_repo_name(m, node);
	if (!name || asprintf(&where, "the cache %s", blobcache_dir(m->bc)) < 0) {
		free(name);
		return -ENOMEM;
	}
	a = (struct fetch_arg){m->client, name, t->chart->digest,
			       (uint64_t)t->chart->size, where};
	ret = blobcache_get(m->bc, t->chart->digest, t->chart->size,
			    m->offline ? NULL : fetch_blob, &a, buf, sizeof(buf));
	if (ret == -ENOENT && m->offline) {
		log_warn(
		    "model: %s: chart %s is not in the cache and the mount is offline",
		    name, t->chart->digest);
		ret = -EIO;
	}
	free(where);
	free(name);
	if (ret)
		return read_errno(ret);
	*path = set_once(m, &t->blob_path, buf);
	pthread_mutex_lock(&m->lock);
	t->blob_stale = false;
	pthread_mutex_unlock(&m->lock);
	return *path ? 0 : -ENOMEM;
}

int model_tag_prov(struct model *m, struct ns_node *node, struct model_tag *t, char *buf,
		   size_t len)
{
	struct fetch_arg a;
	char *name, *where = NULL;
	int ret;

	if (!t->prov)
		return -ENOENT;
	name = model_repo_name(m, node);
	if (!name || asprintf(&where, "the cache %s", blobcache_dir(m->bc)) < 0) {
		free(name);
		return -ENOMEM;
	}
	/* Fetched, verified against its digest and kept as the chart is. */
	a = (struct fetch_arg){m->client, name, t->prov->digest, (uint64_t)t->prov->size,
			       where};
	ret = blobcache_get(m->bc, t->prov->digest, t->prov->size,
			    m->offline ? NULL : fetch_blob, &a, buf, len);
	if (ret == -ENOENT && m->offline) {
		log_warn("model: %s: provenance %s is not in the cache and the mount is "
			 "offline",
			 name, t->prov->digest);
		ret = -EIO;
	}
	free(where);
	free(name);
	return read_errno(ret);
}

/* The unpacked chart of t as the model knows it (made when it is not). */
static int tree_once(struct model *m, struct ns_node *node, struct model_tag *t,
		     const char **path)
{
	char buf[4096];
	const char *blob;
	int ret;

	pthread_mutex_lock(&m->lock);
	*path = t->tree_stale ? NULL : t->tree_path;
	pthread_mutex_unlock(&m->lock);
	if (*path)
		return 0;
	ret = model_tag_blob(m, node, t, &blob);
	if (ret)
		return ret;
	ret = blobcache_tree(m->bc, t->chart->digest, buf, sizeof(buf));
	if (ret) {
		/* The cache drops a blob it finds damaged: fetch it again next
		 * time rather than failing until the mount goes away. The path
		 * string stays (it is the same for the same digest). */
		pthread_mutex_lock(&m->lock);
		t->blob_stale = true;
		pthread_mutex_unlock(&m->lock);
		return read_errno(ret);
	}
	*path = set_once(m, &t->tree_path, buf);
	pthread_mutex_lock(&m->lock);
	t->tree_stale = false;
	pthread_mutex_unlock(&m->lock);
	/* In use by this mount: last in line for eviction (-o cache_max). */
	blobcache_touch(m->bc, t->chart->digest);
	return *path ? 0 : -ENOMEM;
}

int model_digest_shared(struct model *m, struct ns_node *node, const char *tag,
			const char *digest, struct strv *others)
{
	struct repo *r;
	size_t i;
	int ret;

	model_invalidate(m, node);
	ret = model_refresh_tags(m, node);
	if (!ret)
		ret = model_refresh_manifests(m, node, false);
	if (ret)
		return ret;
	pthread_mutex_lock(&m->lock);
	r = node->repo;
	for (i = 0; !ret && r && i < r->ntags; i++) {
		const struct model_tag *t = r->tags[i];
		/* A tag whose manifest could not be read counts as shared:
		 * better refuse a delete than remove a version silently. */
		if (strcmp(t->tag, tag) &&
		    (!t->has_manifest || !strcmp(t->digest, digest)))
			ret = strv_push(others, t->tag);
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* The cached files of t went away (evicted by -o cache_max, here or by
 * another daemon sharing the cache): the next tree_once or model_tag_blob
 * makes them again. The path strings stay valid (same digest, same path). */
static void files_gone(struct model *m, struct model_tag *t)
{
	pthread_mutex_lock(&m->lock);
	t->tree_stale = true;
	t->blob_stale = true;
	pthread_mutex_unlock(&m->lock);
}

int model_tag_tree(struct model *m, struct ns_node *node, struct model_tag *t,
		   const char **path)
{
	int ret = tree_once(m, node, t, path);

	/* Evicted (-o cache_max, maybe by another daemon): made again. */
	if (!ret && access(*path, F_OK) != 0) {
		files_gone(m, t);
		ret = tree_once(m, node, t, path);
	}
	return ret;
}

int model_tag_open_blob(struct model *m, struct ns_node *node, struct model_tag *t)
{
	const char *blob;
	int ret = model_tag_blob(m, node, t, &blob), fd = -1;

	if (!ret)
		fd = open(blob, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (!ret && fd < 0 && errno == ENOENT) {
		/* Evicted meanwhile: fetched again. */
		files_gone(m, t);
		ret = model_tag_blob(m, node, t, &blob);
		if (!ret)
			fd = open(blob, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (!ret && fd < 0)
		ret = -errno;
	return ret ? ret : fd;
}
