/* verify.c - signatures found in the registry, checked with sign/, cached. */
#include "model/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/manifest.h"
#include "common/file.h"
#include "common/log.h"
#include "model/model_i.h"
#include "sign/cosign.h"
#include "sign/keys.h"
#include "sign/prov.h"

/* Hash buckets of the verdict cache (a power of two). */
#define VERIFY_BUCKETS 16384
/* Signatures tried per chart and format (layers of a .sig manifest,
 * bundles among its referrers): a registry cannot make one check cost
 * thousands of requests. */
#define VERIFY_SIGS_MAX 32
/* registry URL + "/" + repository + "@" + digest. */
#define VERIFY_KEY_MAX 1024

/* One loaded key set; checks hold a reference while they run. */
struct vset {
	int refs;		 /* under the verifier's lock */
	struct sign_keys *keys;	 /* -o verify_key, or NULL */
	struct prov_keyring *kr; /* -o keyring, or NULL */
};

struct ventry {
	struct ventry *hnext;	      /* bucket chain */
	struct ventry *older, *newer; /* insertion order, for eviction */
	uint64_t hash;
	unsigned gen;
	struct sign_result r;
	struct timespec at; /* when it was reached (CLOCK_MONOTONIC) */
	char key[];
};

struct verifier {
	pthread_mutex_t lock; /* a leaf: everything below */
	char *key_paths, *keyring_path, *workdir;
	unsigned ttl;
	struct vset *set;
	unsigned gen; /* bumped at each reload: verdicts of another are stale */
	struct ventry *buckets[VERIFY_BUCKETS];
	struct ventry *oldest, *newest;
	size_t n;
	/* Registries (base URLs) that answered without the referrers API:
	 * asked by the tag schema only, until SIGHUP. One per host. */
	struct strv no_referrers;
};

/* ---- key sets ----------------------------------------------------------- */

static void set_free(struct vset *s)
{
	if (!s)
		return;
	sign_keys_free(s->keys);
	prov_keyring_free(s->kr);
	free(s);
}

static int set_load(const struct verifier *v, struct vset **out)
{
	struct vset *s = calloc(1, sizeof(*s));
	int ret = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->refs = 1;
	if (v->key_paths) {
		ret = sign_keys_load(v->key_paths, &s->keys);
		if (ret == -ENOSYS)
			log_err("verify_key %s: this build cannot check signatures",
				v->key_paths);
	}
	if (!ret && v->keyring_path) {
		ret = prov_keyring_load(v->keyring_path, v->workdir, &s->kr);
		if (ret == -ENOSYS)
			log_err("keyring %s: this build cannot check provenance",
				v->keyring_path);
	}
	if (ret) {
		set_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

/* The set in use, referenced, and the generation its verdicts are kept
 * under. */
static struct vset *set_get(struct verifier *v, unsigned *gen)
{
	struct vset *s;

	pthread_mutex_lock(&v->lock);
	s = v->set;
	s->refs++;
	*gen = v->gen;
	pthread_mutex_unlock(&v->lock);
	return s;
}

static void set_put(struct verifier *v, struct vset *s)
{
	bool last;

	pthread_mutex_lock(&v->lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&v->lock);
	if (last)
		set_free(s);
}

/* ---- the verdict cache -------------------------------------------------- */

static uint64_t key_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct ventry **bucket(struct verifier *v, uint64_t h)
{
	return &v->buckets[h & (VERIFY_BUCKETS - 1)];
}

/* The entry for key, or NULL; lock held. */
static struct ventry *cache_find_locked(struct verifier *v, const char *key, uint64_t h)
{
	struct ventry *e;

	for (e = *bucket(v, h); e; e = e->hnext)
		if (e->hash == h && !strcmp(e->key, key))
			return e;
	return NULL;
}

static void order_unlink(struct verifier *v, struct ventry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		v->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		v->newest = e->older;
	e->older = e->newer = NULL;
}

static void order_push(struct verifier *v, struct ventry *e)
{
	e->older = v->newest;
	e->newer = NULL;
	if (v->newest)
		v->newest->newer = e;
	else
		v->oldest = e;
	v->newest = e;
}

static void cache_drop_locked(struct verifier *v, struct ventry *e)
{
	struct ventry **p = bucket(v, e->hash);

	while (*p != e)
		p = &(*p)->hnext;
	*p = e->hnext;
	order_unlink(v, e);
	v->n--;
	free(e);
}

static void cache_clear_locked(struct verifier *v)
{
	while (v->oldest)
		cache_drop_locked(v, v->oldest);
}

static bool age_below(struct timespec at, unsigned ttl)
{
	struct timespec now = now_mono();

	return (now.tv_sec - at.tv_sec) * 1000000000ll + (now.tv_nsec - at.tv_nsec) <
	       (long long)ttl * 1000000000ll;
}

/* A verdict for key that still holds under the current set: SIGN_OK for
 * good, a failure for the ttl. Lock held. */
static bool cache_get_locked(struct verifier *v, const char *key, struct sign_result *r)
{
	struct ventry *e = cache_find_locked(v, key, key_hash(key));

	if (!e || e->gen != v->gen ||
	    (e->r.verdict != SIGN_OK && !age_below(e->at, v->ttl)))
		return false;
	if (r)
		*r = e->r;
	return true;
}

/* Keep r for key, reached under set generation gen. Whether it is news
 * (no verdict, or another one, was kept under this set): the caller logs
 * it then, so a verdict is said once per key set. */
static bool cache_put(struct verifier *v, const char *key, unsigned gen,
		      const struct sign_result *r)
{
	uint64_t h = key_hash(key);
	struct ventry *e;
	bool news = true;
	size_t len = strlen(key);

	pthread_mutex_lock(&v->lock);
	/* Reached with keys that are no longer the mount's: said, not kept. */
	if (gen != v->gen)
		goto out;
	e = cache_find_locked(v, key, h);
	if (e) {
		news = e->gen != gen || e->r.verdict != r->verdict;
		e->gen = gen;
		e->r = *r;
		e->at = now_mono();
		order_unlink(v, e);
		order_push(v, e);
		goto out;
	}
	if (v->n >= VERIFY_CACHE_MAX)
		cache_drop_locked(v, v->oldest);
	e = calloc(1, sizeof(*e) + len + 1);
	if (!e)
		goto out; /* asked again next time */
	memcpy(e->key, key, len + 1);
	e->hash = h;
	e->gen = gen;
	e->r = *r;
	e->at = now_mono();
	e->hnext = *bucket(v, h);
	*bucket(v, h) = e;
	order_push(v, e);
	v->n++;
out:
	pthread_mutex_unlock(&v->lock);
	return news;
}

/* ---- the verifier ------------------------------------------------------- */

int verify_new(const char *verify_key, const char *keyring, const char *workdir,
	       unsigned ttl, struct verifier **out)
{
	struct verifier *v;
	int ret;

	*out = NULL;
	if (!verify_key && !keyring)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	pthread_mutex_init(&v->lock, NULL);
	v->ttl = ttl;
	v->key_paths = verify_key ? strdup(verify_key) : NULL;
	v->keyring_path = keyring ? strdup(keyring) : NULL;
	v->workdir = strdup(workdir);
	ret = -ENOMEM;
	if ((verify_key && !v->key_paths) || (keyring && !v->keyring_path) || !v->workdir)
		goto out;
	ret = set_load(v, &v->set);
out:
	if (ret)
		verify_free(v);
	else
		*out = v;
	return ret;
}

void verify_free(struct verifier *v)
{
	if (!v)
		return;
	cache_clear_locked(v);
	strv_free(&v->no_referrers);
	if (v->set)
		set_put(v, v->set);
	free(v->key_paths);
	free(v->keyring_path);
	free(v->workdir);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

int verify_reload(struct verifier *v)
{
	struct vset *s, *old;
	int ret;

	ret = set_load(v, &s);
	pthread_mutex_lock(&v->lock);
	/* Either way what was concluded is asked again: a signature may
	 * have come or gone meanwhile, and SIGHUP says "look again". Checks
	 * still running keep their answer to themselves. */
	cache_clear_locked(v);
	strv_free(&v->no_referrers);
	v->gen++;
	if (ret) {
		/* The keys in use stay. */
		s = NULL;
	} else {
		old = v->set;
		v->set = s;
		s = old;
	}
	pthread_mutex_unlock(&v->lock);
	if (ret)
		log_warn("verify: SIGHUP: the keys could not be read again (%s): "
			 "keeping those in use",
			 strerror(-ret));
	else
		log_notice("verify: SIGHUP: keys read again, verdicts forgotten");
	if (s)
		set_put(v, s);
	return ret;
}

bool model_verifies(const struct model *m)
{
	return m->verify != NULL;
}

/* ---- finding and checking signatures ------------------------------------ */

/* The cache key of t in node: registry, repository, manifest digest. */
static int tag_key(const struct model *m, const struct ns_node *node, const char *digest,
		   char *buf, size_t len)
{
	int n =
	    snprintf(buf, len, "%s/%s%s%s@%s", oci_client_base_url(m->client),
		     m->prefix ? m->prefix : "",
		     m->prefix && node->fullname[0] ? "/" : "", node->fullname, digest);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* What one check reads from the registry. */
struct vctx {
	struct model *m;
	const char *repo;   /* the registry's name of the repository */
	const char *digest; /* the chart manifest's */
	const struct vset *s;
};

/* "sha256-<hex>" and suffix, the tag cosign gives what signs digest. */
static void sig_tag(const char *digest, const char *suffix, char *buf, size_t len)
{
	snprintf(buf, len, "sha256-%s%s", digest + strlen("sha256:"), suffix);
}

/* A small blob into memory: -ENOENT (the registry lacks it) is a broken
 * signature, not a failure to ask. */
static int small_blob(const struct vctx *x, const struct oci_descriptor *d,
		      struct oci_buf *b, enum sign_verdict *bad)
{
	int ret;

	*b = (struct oci_buf){0};
	if (d->has_urls || d->size < 0 || (uint64_t)d->size > COSIGN_BLOB_MAX) {
		*bad = SIGN_BROKEN;
		return 0;
	}
	ret = oci_blob_get_mem(x->m->client, x->repo, d->digest, (uint64_t)d->size, b);
	if (ret == -ENOENT) {
		*bad = SIGN_BROKEN;
		return 0;
	}
	return ret;
}

/* cosign's tag scheme: each simple-signing layer of sha256-<hex>.sig. */
static int check_tag_scheme(const struct vctx *x, struct sign_result *r)
{
	struct oci_fetched f = {0};
	struct oci_manifest *man = NULL;
	enum sign_verdict best = SIGN_NONE;
	char ref[96];
	size_t i, tried = 0;
	int ret;

	memset(r, 0, sizeof(*r));
	sig_tag(x->digest, ".sig", ref, sizeof(ref));
	r->verdict = SIGN_NONE;
	ret = oci_manifest_get(x->m->client, x->repo, ref, &f);
	if (ret == -ENOENT) {
		ret = 0;
		goto out;
	}
	if (ret)
		goto out;
	if (oci_manifest_parse(f.body.data, f.body.len, f.media_type, &man) != 0) {
		r->verdict = SIGN_BROKEN;
		goto out;
	}
	for (i = 0; i < man->n_layers && tried < VERIFY_SIGS_MAX; i++) {
		const struct oci_descriptor *l = &man->layers[i];
		const char *sig = oci_descriptor_annotation(l, COSIGN_ANN_SIGNATURE);
		enum sign_verdict bad = SIGN_OK;
		struct sign_result one;
		struct oci_buf b;

		if (strcmp(l->media_type, COSIGN_MT_SIMPLESIGNING))
			continue;
		tried++;
		if (!sig) {
			best = sign_verdict_best(best, SIGN_BROKEN);
			continue;
		}
		ret = small_blob(x, l, &b, &bad);
		if (ret)
			goto out;
		if (bad != SIGN_OK) {
			best = sign_verdict_best(best, bad);
			continue;
		}
		ret =
		    cosign_simple_verify(x->s->keys, x->digest, b.data, b.len, sig, &one);
		free(b.data);
		if (ret)
			goto out;
		if (one.verdict == SIGN_OK) {
			*r = one;
			goto out;
		}
		best = sign_verdict_best(best, one.verdict);
	}
	r->verdict = best;
out:
	oci_manifest_free(man);
	oci_fetched_clear(&f);
	return ret;
}

/* One referrer manifest (by digest): its bundle layer, checked. */
static int check_one_bundle(const struct vctx *x, const char *ref, struct sign_result *r)
{
	struct oci_fetched f = {0};
	struct oci_manifest *man = NULL;
	const struct oci_descriptor *l = NULL;
	enum sign_verdict bad = SIGN_OK;
	struct oci_buf b = {0};
	size_t i;
	int ret;

	memset(r, 0, sizeof(*r));
	r->verdict = SIGN_BROKEN;
	ret = oci_manifest_get(x->m->client, x->repo, ref, &f);
	if (ret == -ENOENT) {
		ret = 0;
		goto out;
	}
	if (ret || oci_manifest_parse(f.body.data, f.body.len, f.media_type, &man) != 0)
		goto out;
	for (i = 0; i < man->n_layers && !l; i++)
		if (!strcmp(man->layers[i].media_type, COSIGN_MT_BUNDLE))
			l = &man->layers[i];
	if (!l)
		goto out;
	ret = small_blob(x, l, &b, &bad);
	if (!ret && bad == SIGN_OK)
		ret = cosign_bundle_verify(x->s->keys, x->digest, b.data, b.len, r);
	free(b.data);
out:
	oci_manifest_free(man);
	oci_fetched_clear(&f);
	return ret;
}

/* Has the model's registry answered without the referrers API? Else
 * (with learnt) remember that it did. */
static bool no_referrers(struct verifier *v, const struct model *m, bool learnt)
{
	const char *base = oci_client_base_url(m->client);
	bool known = false;
	size_t i;

	pthread_mutex_lock(&v->lock);
	for (i = 0; i < v->no_referrers.n && !known; i++)
		known = !strcmp(v->no_referrers.v[i], base);
	/* Best effort: not remembered, it is asked again. */
	if (!known && learnt)
		(void)!strv_push(&v->no_referrers, base);
	pthread_mutex_unlock(&v->lock);
	return known;
}

/* The index of referrers of the chart: the referrers API, or where the
 * registry has none (a registry that has it never answers 404, so one
 * answer tells), the referrers tag schema. out empty: none. */
static int referrers_index(const struct vctx *x, struct oci_buf *out)
{
	struct verifier *v = x->m->verify;
	struct oci_fetched f = {0};
	char ref[96];
	int ret = -EOPNOTSUPP;

	if (!no_referrers(v, x->m, false))
		ret = oci_referrers(x->m->client, x->repo, x->digest, COSIGN_MT_BUNDLE,
				    out);
	if (ret != -EOPNOTSUPP)
		return ret;
	(void)no_referrers(v, x->m, true);
	sig_tag(x->digest, "", ref, sizeof(ref));
	ret = oci_manifest_get(x->m->client, x->repo, ref, &f);
	if (ret == -ENOENT)
		return 0;
	if (!ret) {
		*out = f.body;
		f.body = (struct oci_buf){0};
	}
	oci_fetched_clear(&f);
	return ret;
}

/* Sigstore bundles attached to the chart as referrers. */
static int check_bundles(const struct vctx *x, struct sign_result *r)
{
	enum sign_verdict best = SIGN_NONE;
	struct oci_buf idx = {0};
	struct strv refs = {0};
	size_t i;
	int ret;

	memset(r, 0, sizeof(*r));
	r->verdict = SIGN_NONE;
	ret = referrers_index(x, &idx);
	if (ret || !idx.data)
		goto out;
	ret = cosign_index_bundles(idx.data, idx.len, &refs);
	if (ret && ret != -ENOMEM) {
		/* An index that does not parse (or a build without bundles). */
		r->verdict = SIGN_BROKEN;
		ret = 0;
		goto out;
	}
	for (i = 0; !ret && i < refs.n && i < VERIFY_SIGS_MAX; i++) {
		struct sign_result one;

		ret = check_one_bundle(x, refs.v[i], &one);
		if (!ret && one.verdict == SIGN_OK) {
			*r = one;
			goto out;
		}
		if (!ret)
			best = sign_verdict_best(best, one.verdict);
	}
	if (!ret)
		r->verdict = best;
out:
	strv_free(&refs);
	free(idx.data);
	return ret;
}

/* The package name a provenance file names: "<name>-<version>.tgz" from
 * helm's annotations, else the name the mount shows. */
static void prov_pkg_name(const struct ns_node *node, const struct model_tag *t,
			  char *buf, size_t len)
{
	const char *name = model_tag_annotation(t, "org.opencontainers.image.title");
	const char *ver = model_tag_annotation(t, "org.opencontainers.image.version");

	if (name && ver)
		snprintf(buf, len, "%s-%s.tgz", name, ver);
	else
		snprintf(buf, len, "%s-%s.tgz", node->name, t->tag);
}

/* helm provenance: the tag's .prov layer (cached, digest-checked) against
 * the keyring. */
static int check_prov(const struct vctx *x, struct ns_node *node, struct model_tag *t,
		      struct sign_result *r)
{
	char path[4096], pkg[512];
	char *data = NULL;
	struct stat st;
	size_t len = 0;
	int fd, ret;

	memset(r, 0, sizeof(*r));
	r->verdict = SIGN_NONE;
	if (!t->chart || !t->prov)
		return 0;
	/* Fetched, checked against its digest and logged by the model. */
	ret = model_tag_prov(x->m, node, t, path, sizeof(path));
	if (ret)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ret = fd < 0 ? -errno : file_read_fd(fd, OCI_PROV_LAYER_MAX, &data, &len, &st);
	if (fd >= 0)
		close(fd);
	if (ret) {
		log_warn("verify: %s:%s: cannot read the cached provenance %s: %s",
			 x->repo, t->tag, path, strerror(-ret));
		return ret;
	}
	prov_pkg_name(node, t, pkg, sizeof(pkg));
	ret = prov_verify(x->s->kr, data, len, pkg, t->chart->digest, r);
	free(data);
	return ret;
}

/* Every configured mechanism, until one says SIGN_OK. */
static int check_tag(const struct vctx *x, struct ns_node *node, struct model_tag *t,
		     struct sign_result *r)
{
	enum sign_verdict best = SIGN_NONE;
	struct sign_result one;
	int ret;

	memset(r, 0, sizeof(*r));
	if (x->s->keys) {
		ret = check_tag_scheme(x, &one);
		if (ret || one.verdict == SIGN_OK)
			goto done;
		best = sign_verdict_best(best, one.verdict);
		ret = check_bundles(x, &one);
		if (ret || one.verdict == SIGN_OK)
			goto done;
		best = sign_verdict_best(best, one.verdict);
	}
	if (x->s->kr) {
		ret = check_prov(x, node, t, &one);
		if (ret || one.verdict == SIGN_OK)
			goto done;
		best = sign_verdict_best(best, one.verdict);
	}
	r->verdict = best;
	return 0;
done:
	if (!ret)
		*r = one;
	return ret;
}

static void say(const char *repo, const struct model_tag *t, const struct sign_result *r)
{
	if (r->verdict == SIGN_OK)
		log_info("verify: %s:%s (%s): verified (%s %s)", repo, t->tag, t->digest,
			 r->mech ? r->mech : "?", r->fpr);
	else
		log_warn("verify: %s:%s (%s): %s", repo, t->tag, t->digest,
			 sign_verdict_str(r->verdict));
}

static void verdict_off(struct sign_result *r)
{
	memset(r, 0, sizeof(*r));
	r->verdict = SIGN_OK;
}

int model_tag_verify(struct model *m, struct ns_node *node, struct model_tag *t,
		     struct sign_result *r)
{
	struct verifier *v = m->verify;
	char key[VERIFY_KEY_MAX];
	struct vctx x = {m, NULL, t->digest, NULL};
	struct vset *s;
	unsigned gen;
	char *repo;
	bool hit;
	int ret;

	verdict_off(r);
	if (!v || path_is_signature_tag(t->tag))
		return 0;
	ret = tag_key(m, node, t->digest, key, sizeof(key));
	if (ret)
		return ret;
	pthread_mutex_lock(&v->lock);
	hit = cache_get_locked(v, key, r);
	pthread_mutex_unlock(&v->lock);
	if (hit)
		return 0;
	repo = model_repo_name(m, node);
	if (!repo)
		return -ENOMEM;
	s = set_get(v, &gen);
	x.repo = repo;
	x.s = s;
	ret = check_tag(&x, node, t, r);
	if (ret)
		log_debug("verify: %s:%s (%s): not checked: %s", repo, t->tag, t->digest,
			  strerror(-ret));
	else if (cache_put(v, key, gen, r))
		say(repo, t, r);
	set_put(v, s);
	free(repo);
	return ret;
}

bool model_tag_shown_locked(struct model *m, const struct ns_node *node,
			    const struct model_tag *t)
{
	struct verifier *v = m->verify;
	char key[VERIFY_KEY_MAX];
	struct sign_result r;
	bool hit;

	if (!v || path_is_signature_tag(t->tag))
		return true;
	if (!t->has_manifest || tag_key(m, node, t->digest, key, sizeof(key)) != 0)
		return false;
	pthread_mutex_lock(&v->lock);
	hit = cache_get_locked(v, key, &r);
	pthread_mutex_unlock(&v->lock);
	return hit && r.verdict == SIGN_OK;
}

void model_verify_forget(struct model *m, const struct ns_node *node, const char *digest)
{
	struct verifier *v = m->verify;
	char key[VERIFY_KEY_MAX];
	struct ventry *e;

	if (!v || tag_key(m, node, digest, key, sizeof(key)) != 0)
		return;
	pthread_mutex_lock(&v->lock);
	e = cache_find_locked(v, key, key_hash(key));
	if (e)
		cache_drop_locked(v, e);
	pthread_mutex_unlock(&v->lock);
}

/* ---- listings ----------------------------------------------------------- */

struct vjob {
	struct model *m;
	struct ns_node *node;
	struct model_tag **tags;
	size_t n;
	atomic_size_t next;
};

static void *verify_worker(void *arg)
{
	struct vjob *j = arg;
	struct sign_result r;
	size_t i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->n)
		(void)!model_tag_verify(j->m, j->node, j->tags[i], &r);
	return NULL;
}

/* The listed tags of node without a verdict, referenced; lock held. */
static size_t unverified_locked(struct model *m, struct ns_node *node,
				struct model_tag **out, size_t max)
{
	struct verifier *v = m->verify;
	char key[VERIFY_KEY_MAX];
	size_t i, n = 0;

	for (i = 0; i < max; i++) {
		struct model_tag *t = node->repo->tags[i];
		bool hit;

		if (!t->has_manifest || path_is_signature_tag(t->tag) ||
		    tag_key(m, node, t->digest, key, sizeof(key)) != 0)
			continue;
		pthread_mutex_lock(&v->lock);
		hit = cache_get_locked(v, key, NULL);
		pthread_mutex_unlock(&v->lock);
		if (hit)
			continue;
		t->refs++;
		out[n++] = t;
	}
	return n;
}

void model_verify_listed(struct model *m, struct ns_node *node)
{
	struct vjob j = {.m = m, .node = node};
	size_t extra = 0, started = 0, i, max;
	pthread_t *th = NULL;

	if (!m->verify)
		return;
	pthread_mutex_lock(&m->lock);
	max = node->repo ? node->repo->ntags : 0;
	j.tags = max ? calloc(max, sizeof(*j.tags)) : NULL;
	if (j.tags)
		j.n = unverified_locked(m, node, j.tags, max);
	pthread_mutex_unlock(&m->lock);
	if (!j.n)
		goto out;
	if (m->parallel > 1)
		extra = (m->parallel < j.n ? m->parallel : j.n) - 1;
	if (extra)
		th = calloc(extra, sizeof(*th));
	for (i = 0; th && i < extra; i++, started++)
		if (pthread_create(&th[i], NULL, verify_worker, &j) != 0)
			break;
	/* The caller works too, so something always runs. */
	verify_worker(&j);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
out:
	for (i = 0; i < j.n; i++)
		model_tag_put(m, j.tags[i]);
	free(j.tags);
}
