/* model.c - the catalog, path resolution and listings, with ttl freshness. */
#include "model/model_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "model/verify.h"

int model_new(const struct model_opts *o, struct oci_client *client, struct blobcache *bc,
	      struct model **out)
{
	struct model *m = calloc(1, sizeof(*m));
	pthread_condattr_t ca;

	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	/* Refreshes are waited for with a deadline on the monotonic clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);
	m->root = ns_tree_new();
	m->prefix = o->prefix && *o->prefix ? strdup(o->prefix) : NULL;
	if (!m->root || (o->prefix && *o->prefix && !m->prefix)) {
		model_free(m);
		return -ENOMEM;
	}
	m->client = client;
	m->bc = bc;
	m->ttl = o->ttl;
	m->parallel = o->parallel ? o->parallel : MODEL_PARALLEL_DEFAULT;
	m->show_signatures = o->show_signatures;
	m->offline = o->offline;
	m->prefetch = o->prefetch;
	m->verify = o->verify;
	m->readahead = !o->no_readahead;
	m->start = time(NULL);
	*out = m;
	return 0;
}

static void free_repos(struct ns_node *n)
{
	size_t i;

	model_repo_free(n->repo);
	n->repo = NULL;
	for (i = 0; i < n->nkids; i++)
		free_repos(n->kids[i]);
}

void model_free(struct model *m)
{
	if (!m)
		return;
	model_prefetch_stop(m);
	if (m->root)
		free_repos(m->root);
	ns_tree_free(m->root);
	free(m->prefix);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

time_t model_start_time(const struct model *m)
{
	return m->start;
}

char *model_full_name(const struct model *m, const char *fullname)
{
	char *s = NULL;

	if (!m->prefix)
		return strdup(fullname);
	if (!fullname[0])
		return strdup(m->prefix);
	if (asprintf(&s, "%s/%s", m->prefix, fullname) < 0)
		return NULL;
	return s;
}

char *model_repo_name(const struct model *m, const struct ns_node *node)
{
	return model_full_name(m, node->fullname);
}

/* ---- catalog ---------------------------------------------------------- */

static void apply_catalog_locked(struct model *m, const struct strv *names)
{
	size_t plen = m->prefix ? strlen(m->prefix) : 0, i, count = 0;

	ns_clear_catalog(m->root);
	for (i = 0; i < names->n; i++) {
		const char *name = names->v[i];
		struct ns_node *n;

		if (plen) {
			if (strncmp(name, m->prefix, plen) != 0 || name[plen] != '/')
				continue;
			name += plen + 1;
		}
		n = ns_insert(m->root, name);
		if (!n) {
			log_info("model: skipping repository name '%s': not a valid name",
				 names->v[i]);
			continue;
		}
		if (!model_node_repo(n))
			continue;
		n->in_catalog = true;
		count++;
	}
	m->catalog_count = count;
}

/* Fetch the catalog as its one leader (the caller set catalog_loading;
 * gen is catalog_gen then). Errors are logged and the previous catalog
 * kept: a listing never fails because _catalog did. */
static void catalog_lead(struct model *m, unsigned gen)
{
	struct strv names = {0};
	bool denied = false;
	unsigned age;
	int ret;

	if (!m->catalog_ever && model_snap_load_catalog(m, &names, &age) == 0) {
		pthread_mutex_lock(&m->lock);
		apply_catalog_locked(m, &names);
		m->catalog_ever = true;
		m->catalog_at = mono_ago(age);
		flight_done_locked(m, &m->catalog_loading);
		pthread_mutex_unlock(&m->lock);
		strv_free(&names);
		return;
	}
	/* Offline with no snapshot: an empty root, not an error. */
	ret = m->offline ? 0 : oci_catalog(m->client, &names);
	if (ret == 0 && !m->offline)
		model_snap_save_catalog(m, &names);
	/* A registry that refuses _catalog (GHCR's 404, Docker Hub's
	 * insufficient_scope) still serves what is asked by name, but one
	 * that refuses /v2/ itself wants credentials for everything: its root
	 * is unreadable (EACCES), not empty. */
	if ((ret == -EOPNOTSUPP || ret == -EACCES) && !m->catalog_ever)
		denied = oci_ping(m->client) == -EACCES;

	pthread_mutex_lock(&m->lock);
	if (ret == 0) {
		apply_catalog_locked(m, &names);
		m->catalog_ever = true;
	} else if (denied) {
		log_warn("model: %s refuses every request without credentials: listing "
			 "the root is EACCES (see CREDENTIALS in chartfs(1))",
			 oci_client_base_url(m->client));
		m->catalog_unsupported = true;
		m->catalog_denied = true;
	} else if (ret == -EOPNOTSUPP || (ret == -EACCES && !m->catalog_ever)) {
		log_notice("model: %s does not list its repositories (catalog refused): "
			   "the root shows names already visited; any path can be opened",
			   oci_client_base_url(m->client));
		m->catalog_unsupported = true;
	} else if (m->catalog_ever) {
		log_warn(
		    "model: catalog refresh failed (%s): serving the previous listing",
		    strerror(-ret));
	}
	/* Retry no sooner than the ttl, success or not, so a dead registry is
	 * not asked on every lookup. Names forgotten meanwhile (SIGHUP) stay
	 * forgotten: this answer may be older than that. */
	if (m->catalog_gen == gen)
		m->catalog_at = now_mono();
	flight_done_locked(m, &m->catalog_loading);
	pthread_mutex_unlock(&m->lock);
	strv_free(&names);
}

/* Refresh the catalog if stale (single-flight); an expired one is
 * refreshed in the background, and served while that takes long. */
static void refresh_catalog(struct model *m)
{
	unsigned gen;

	pthread_mutex_lock(&m->lock);
	for (;;) {
		if (m->catalog_unsupported || fresh(m, m->catalog_at)) {
			pthread_mutex_unlock(&m->lock);
			return;
		}
		if (m->catalog_ever && stale_ok(m, m->catalog_at)) {
			if (!m->catalog_loading)
				model_revalidate_locked(m, MODEL_REFRESH_CATALOG, NULL,
							NULL);
			pthread_mutex_unlock(&m->lock);
			return;
		}
		if (flight_lead_locked(m, &m->catalog_loading))
			break;
	}
	gen = m->catalog_gen;
	pthread_mutex_unlock(&m->lock);
	catalog_lead(m, gen);
}

void model_revalidate_catalog(struct model *m)
{
	unsigned gen = 0;
	bool lead;

	pthread_mutex_lock(&m->lock);
	lead = !m->catalog_unsupported && !fresh(m, m->catalog_at) &&
	       flight_try_lead_locked(&m->catalog_loading);
	if (lead)
		gen = m->catalog_gen;
	pthread_mutex_unlock(&m->lock);
	if (lead)
		catalog_lead(m, gen);
}

/* ---- resolve and list -------------------------------------------------- */

/* For registries without a catalog: is "<node>/<segment>" a repository? */
static int probe(struct model *m, struct ns_node *node, const char *rest)
{
	const char *slash = strchr(rest, '/');
	size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
	struct strv tags = {0};
	char *full = NULL, *api;
	struct ns_node *n;
	int ret;

	if (asprintf(&full, "%s%s%.*s", node->fullname, node->fullname[0] ? "/" : "",
		     (int)len, rest) < 0)
		return -ENOMEM;
	if (!oci_repo_valid(full)) {
		free(full);
		return -ENOENT;
	}
	pthread_mutex_lock(&m->lock);
	n = ns_insert(m->root, full);
	pthread_mutex_unlock(&m->lock);
	free(full);
	if (!n)
		return -ENOMEM;
	api = model_repo_name(m, n);
	ret = api ? oci_tags(m->client, api, &tags) : -ENOMEM;
	free(api);
	pthread_mutex_lock(&m->lock);
	/* Unknown names become namespace directories: the kernel must be able
	 * to walk through "org" to reach "org/chart" without a catalog (nor
	 * the credentials to see inside). Not when the registry could not
	 * answer (down, timed out): nothing it did not say is kept. */
	if (ret == 0 || ret == -ENOENT || ret == -EACCES)
		n->known = true;
	if (ret == 0 && model_node_repo(n)) {
		strv_sort_uniq(&tags);
		ret = model_apply_tags_locked(n->repo, &tags);
		n->repo->ever_listed = true;
		n->repo->listed = now_mono();
	} else if (ret == -ENOENT) {
		ret = 0;
	}
	pthread_mutex_unlock(&m->lock);
	strv_free(&tags);
	return ret;
}

/* Is tag in node's table? Lock held. */
static bool tag_known_locked(const struct ns_node *node, const char *tag)
{
	size_t i;

	for (i = 0; node->repo && i < node->repo->ntags; i++)
		if (!strcmp(node->repo->tags[i]->tag, tag))
			return true;
	return false;
}

/* Is tag in node's tag list (refreshed if stale, or if it lacks the tag
 * and was not asked again within MODEL_MISS_INTERVAL_MS)? */
static bool tag_listed(struct model *m, struct ns_node *node, const char *tag)
{
	bool found, again;

	if (model_refresh_tags(m, node) != 0)
		return false;
	pthread_mutex_lock(&m->lock);
	found = tag_known_locked(node, tag);
	again = !found && node->repo && miss_due_locked(m, &node->repo->missed);
	/* Expired, not forgotten: refreshed behind a short wait. */
	if (again && fresh(m, node->repo->listed))
		node->repo->listed = mono_ago(m->ttl);
	pthread_mutex_unlock(&m->lock);
	if (!again || model_refresh_tags(m, node) != 0)
		return found;
	pthread_mutex_lock(&m->lock);
	found = tag_known_locked(node, tag);
	pthread_mutex_unlock(&m->lock);
	return found;
}

/* A name missing below a listed directory: the catalog is asked again
 * now (a repository pushed elsewhere opens at once), at most once a
 * second in all, in the background, waited for a moment as an expired
 * one is: a stalled registry delays the miss by that wait, no more. */
static void refresh_catalog_missed(struct model *m)
{
	pthread_mutex_lock(&m->lock);
	if (!m->catalog_unsupported && m->catalog_ever && !m->catalog_loading &&
	    miss_due_locked(m, &m->catalog_missed)) {
		if (fresh(m, m->catalog_at))
			m->catalog_at = mono_ago(m->ttl);
		model_revalidate_locked(m, MODEL_REFRESH_CATALOG, NULL, NULL);
	}
	pthread_mutex_unlock(&m->lock);
}

/* Is what path_resolve gave a name the tree lacks below a directory that
 * the catalog may now hold (a repository pushed elsewhere), and may the
 * registry be asked? Lock held. A tag is looked at only in a repository
 * listed before: a cold path costs no catalog request. */
static bool missed_locked(struct model *m, const struct path_res *res)
{
	struct repo *r = res->node ? res->node->repo : NULL;
	size_t len;

	switch (res->kind) {
	case PATH_UNKNOWN:
		/* Names that can be no repository ask nothing: the lookup
		 * before each cp of a package (x-1.0.0.tgz, x.tgz.prov) and
		 * the temporary names of rsync and editors (.x.XXXXXX). */
		len = strcspn(res->seg, "/");
		if (!((res->seg[0] >= 'a' && res->seg[0] <= 'z') ||
		      (res->seg[0] >= '0' && res->seg[0] <= '9')))
			return false;
		if (!res->seg[len] &&
		    ((len > 4 && !strncmp(res->seg + len - 4, ".tgz", 4)) ||
		     (len > 5 && !strncmp(res->seg + len - 5, ".prov", 5))))
			return false;
		break;
	case PATH_TAG:
	case PATH_IN_TAG:
		if (!r || !r->ever_listed || tag_known_locked(res->node, res->tag))
			return false;
		break;
	default:
		return false;
	}
	return miss_due_locked(m, &res->node->asked);
}

static int resolve(struct model *m, const char *path, struct path_res *res,
		   bool may_probe)
{
	bool probe_ok, missed = false, asked = false;
	int ret, tries;

	if (atomic_exchange(&m->forget, false)) {
		log_notice("model: forgetting cached names (SIGHUP)");
		model_invalidate(m, NULL);
	}
	refresh_catalog(m);
	for (tries = 0; tries < 2; tries++) {
		pthread_mutex_lock(&m->lock);
		ret = path_resolve(m->root, path, res);
		probe_ok = m->catalog_unsupported && may_probe;
		if (!ret && may_probe && !probe_ok && !asked)
			missed = missed_locked(m, res);
		pthread_mutex_unlock(&m->lock);
		if (missed && !asked) {
			/* Once: the catalog as it is now, then the walk again. */
			asked = true;
			refresh_catalog_missed(m);
			tries--;
			continue;
		}
		if (ret || !may_probe || res->kind == PATH_DIR || res->kind == PATH_PKG ||
		    res->kind == PATH_PROV)
			return ret;
		if (!probe_ok)
			return res->kind == PATH_UNKNOWN ? -ENOENT : 0;
		/* Without a catalog, "repo/x" may be a tag of repo or a repository
		 * below it: only the tag list can tell. */
		if (res->kind != PATH_UNKNOWN && !tag_listed(m, res->node, res->tag))
			res->kind = PATH_UNKNOWN;
		if (res->kind != PATH_UNKNOWN)
			return 0;
		if (tries)
			return -ENOENT;
		ret = probe(m, res->node, res->seg);
		if (ret)
			return ret;
	}
	return -ENOENT;
}

int model_resolve(struct model *m, const char *path, struct path_res *res)
{
	return resolve(m, path, res, true);
}

int model_resolve_new(struct model *m, const char *path, struct path_res *res)
{
	return resolve(m, path, res, false);
}

static int list_kids_locked(struct ns_node *node, time_t mtime, model_fill_fn fill,
			    void *arg)
{
	size_t i;
	int ret;

	for (i = 0; i < node->nkids; i++) {
		struct model_entry e = {node->kids[i]->name, true, 0, mtime, NULL, false};
		if (!ns_visible(node->kids[i]))
			continue;
		ret = fill(arg, &e);
		if (ret)
			return ret;
	}
	return 0;
}

static int list_tags_locked(struct model *m, struct ns_node *node, time_t mtime,
			    model_fill_fn fill, void *arg)
{
	struct repo *r = node->repo;
	char pkg[512];
	size_t i;
	int ret;

	for (i = 0; r && i < r->ntags; i++) {
		struct model_tag *t = r->tags[i];
		struct model_entry e = {
		    t->tag, true, 0, t->created ? t->created : mtime, t->digest, false};

		/* A kid namespace shadows a tag of the same name (see path.c). */
		if (ns_child(node, t->tag) && ns_visible(ns_child(node, t->tag)))
			continue;
		/* Signatures stay reachable by name, as `crane ls -O` hides them. */
		if (!m->show_signatures && path_is_signature_tag(t->tag))
			continue;
		/* -o verify_key, -o keyring: what no key verified is not shown. */
		if (!model_tag_shown_locked(m, node, t))
			continue;
		ret = fill(arg, &e);
		if (ret)
			return ret;
		if (!t->chart)
			continue;
		snprintf(pkg, sizeof(pkg), "%s-%s.tgz", node->name, t->tag);
		e = (struct model_entry){pkg,	  false,     t->chart->size,
					 e.mtime, t->digest, false};
		ret = fill(arg, &e);
		if (ret)
			return ret;
		if (!t->prov)
			continue;
		/* helm verify reads it beside the package. */
		snprintf(pkg, sizeof(pkg), "%s-%s.tgz.prov", node->name, t->tag);
		e = (struct model_entry){pkg,	  false,     t->prov->size,
					 e.mtime, t->digest, true};
		ret = fill(arg, &e);
		if (ret)
			return ret;
	}
	return 0;
}

int model_list(struct model *m, struct ns_node *node, model_fill_fn fill, void *arg)
{
	bool is_repo, denied;
	int ret;

	refresh_catalog(m);
	pthread_mutex_lock(&m->lock);
	is_repo = ns_is_repo(node);
	/* Logged once, when the catalog was refused. */
	denied = m->catalog_denied && !node->parent;
	pthread_mutex_unlock(&m->lock);
	if (denied)
		return -EACCES;
	if (is_repo) {
		ret = model_refresh_tags(m, node);
		if (ret == -ENOENT || ret == -EACCES) {
			log_info("model: %s: tags unavailable (%s)", node->fullname,
				 strerror(-ret));
			is_repo = false;
		} else if (ret) {
			return ret;
		} else {
			ret = model_refresh_manifests(m, node, true);
			if (ret)
				return ret;
			model_snap_save_tags(m, node);
			model_verify_listed(m, node);
		}
	}
	pthread_mutex_lock(&m->lock);
	ret = list_kids_locked(node, m->start, fill, arg);
	if (!ret && is_repo)
		ret = list_tags_locked(m, node, m->start, fill, arg);
	pthread_mutex_unlock(&m->lock);
	if (!ret && node->nkids)
		model_prefetch_kids(m, node);
	if (!ret)
		model_readahead_listed(m, node);
	return ret;
}

static void invalidate_node(struct ns_node *n, bool deep)
{
	size_t i;

	if (n->repo) {
		n->repo->listed = (struct timespec){0};
		n->repo->gen++;
		for (i = 0; i < n->repo->ntags; i++)
			n->repo->tags[i]->checked = (struct timespec){0};
	}
	if (deep)
		for (i = 0; i < n->nkids; i++)
			invalidate_node(n->kids[i], true);
}

void model_invalidate(struct model *m, struct ns_node *node)
{
	pthread_mutex_lock(&m->lock);
	if (!node) {
		m->catalog_at = (struct timespec){0};
		m->catalog_gen++;
		/* New credentials (SIGHUP) may open the catalog: ask again. */
		if (m->catalog_denied)
			m->catalog_unsupported = m->catalog_denied = false;
		invalidate_node(m->root, true);
	} else {
		invalidate_node(node, false);
	}
	pthread_mutex_unlock(&m->lock);
}

void model_changed(struct model *m, struct ns_node *node)
{
	model_invalidate(m, node);
	model_snap_drop_tags(m, node);
	/* The repository may be new (a push) or gone (its last tag deleted):
	 * a remount within the ttl must not trust the catalog kept before. */
	model_snap_drop_catalog(m);
}

struct oci_client *model_client(const struct model *m)
{
	return m->client;
}

struct blobcache *model_blobcache(const struct model *m)
{
	return m->bc;
}

int model_mkdir(struct model *m, struct ns_node *dir, const char *name)
{
	struct ns_node *n, *kid;
	char *full = NULL;
	int ret = 0;

	if (asprintf(&full, "%s%s%s", dir->fullname, dir->fullname[0] ? "/" : "", name) <
	    0)
		return -ENOMEM;
	pthread_mutex_lock(&m->lock);
	kid = ns_child(dir, name);
	if (kid && ns_visible(kid)) {
		ret = -EEXIST;
		goto out;
	}
	n = ns_insert(m->root, full);
	if (!n) {
		/* Not a valid repository component: the registry could never
		 * hold it, so say so now rather than at the first cp. */
		ret = -EINVAL;
		goto out;
	}
	n->known = true;
	n->made = true;
out:
	pthread_mutex_unlock(&m->lock);
	free(full);
	return ret;
}

int model_rmdir(struct model *m, struct ns_node *node)
{
	size_t i;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	/* What the registry has (or a push through this mount made) is the
	 * registry's: only a directory mkdir made stays removable. */
	if (!node->parent || !node->made || node->in_catalog ||
	    (node->repo && node->repo->ntags)) {
		ret = -EROFS;
		goto out;
	}
	for (i = 0; i < node->nkids; i++)
		if (ns_visible(node->kids[i]))
			ret = -ENOTEMPTY;
	if (ret)
		goto out;
	node->made = false;
	node->known = false;
out:
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int model_add_repo(struct model *m, const char *fullname, struct ns_node **out)
{
	struct ns_node *n;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	n = ns_insert(m->root, fullname);
	if (!n || !model_node_repo(n)) {
		ret = -ENOMEM;
		goto out;
	}
	n->known = true;
	n->made = false; /* the registry's now */
	n->repo->listed = (struct timespec){0};
	*out = n;
out:
	pthread_mutex_unlock(&m->lock);
	return ret;
}

bool model_holds_tags(struct model *m, struct ns_node *node)
{
	bool listed;

	pthread_mutex_lock(&m->lock);
	listed = node->in_catalog;
	pthread_mutex_unlock(&m->lock);
	return listed || model_tag_count(m, node) > 0;
}

void model_forget_soon(struct model *m)
{
	atomic_store(&m->forget, true);
}

int model_tag_count(struct model *m, struct ns_node *node)
{
	bool is_repo;
	size_t i;
	int n = 0;

	pthread_mutex_lock(&m->lock);
	is_repo = ns_is_repo(node);
	pthread_mutex_unlock(&m->lock);
	if (!is_repo || model_refresh_tags(m, node) != 0)
		return -ENOENT;
	pthread_mutex_lock(&m->lock);
	for (i = 0; node->repo && i < node->repo->ntags; i++)
		if (m->show_signatures ||
		    !path_is_signature_tag(node->repo->tags[i]->tag))
			n++;
	pthread_mutex_unlock(&m->lock);
	return n;
}
