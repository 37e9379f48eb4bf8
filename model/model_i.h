/* model_i.h - private to model/model*.c: the model's state. */
#ifndef CHARTFS_MODEL_I_H
#define CHARTFS_MODEL_I_H

#include <pthread.h>
#include <stdatomic.h>

#include "model/model.h"

struct refresh_job; /* model_prefetch.c */
struct ra_walk;	    /* model_prefetch.c */

/* A listing that fetched at least this many manifests gives the memory of
 * its transient documents back to the system (malloc_trim): a 4,000-tag
 * listing otherwise leaves 10 MiB of freed pages in the daemon. */
#define MODEL_TRIM_AFTER 64

struct repo {
	struct timespec listed; /* last successful tag listing; {0} = never */
	struct timespec saved;	/* the listing last written to disk */
	bool listing;		/* a listing is in flight (single-flight) */
	bool fetching;		/* its manifests are being fetched (single-flight) */
	bool ever_listed;
	struct timespec missed;	 /* a tag missing from the listing was asked for */
	bool revalidating;	 /* a background refresh is queued or running */
	unsigned gen;		 /* bumped when its names are forgotten (invalidate) */
	struct model_tag **tags; /* sorted by tag */
	size_t ntags, cap;
};

struct model {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when a catalog or tag listing completes */
	struct ns_node *root;
	struct oci_client *client;
	struct blobcache *bc;
	char *prefix;
	unsigned ttl, parallel;
	bool show_signatures;
	bool offline; /* never ask the registry: what the cache holds, any age */
	time_t start;
	struct timespec catalog_at;
	bool catalog_loading;
	bool catalog_ever;
	bool catalog_unsupported;	/* registry refuses _catalog: probe names */
	bool catalog_denied;		/* and /v2/ too (no credentials): root EACCES */
	struct timespec catalog_missed; /* last asked for a name missing below */
	size_t catalog_count;
	bool catalog_revalidating; /* a background refresh is queued or running */
	unsigned catalog_gen;	   /* bumped when every name is forgotten */
	atomic_bool forget;	   /* set by a signal handler: drop names at next use */
	unsigned prefetch;	   /* -o prefetch: repositories warmed per listing */
	bool readahead;		   /* follow walks (-o readahead, on by default) */
	/* The walks followed (model_prefetch.c), under the lock, and the
	 * read-ahead workers running (counted in pf_threads too). */
	struct ra_walk *walks[MODEL_READAHEAD_WALKS];
	unsigned long ra_clock; /* orders the walks by last use */
	unsigned ra_threads;
	unsigned pf_threads; /* prefetch workers running (lock; cond at 0) */
	atomic_bool pf_stop; /* the model is going away: workers stop early */
	/* Background refreshes of expired names (model_prefetch.c), under the
	 * lock: the queue, its length, and the workers running (cond at 0). */
	struct refresh_job *rq_head, *rq_tail;
	size_t rq_len;
	unsigned rq_threads;
	struct verifier *verify; /* model/verify.c, or NULL: everything shown */
};

/* What a background refresh asks again. */
enum model_refresh_kind {
	MODEL_REFRESH_CATALOG,
	MODEL_REFRESH_REPO, /* a tag listing and its expired manifests */
	MODEL_REFRESH_TAG,  /* one tag's manifest */
};

static inline struct timespec now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

/* now_mono() less age seconds: when something fetched that long ago was
 * fetched. */
static inline struct timespec mono_ago(unsigned age)
{
	struct timespec ts = now_mono();

	ts.tv_sec = ts.tv_sec > (time_t)age ? ts.tv_sec - (time_t)age : 1;
	return ts;
}

static inline bool fresh(const struct model *m, struct timespec at)
{
	struct timespec now = now_mono();

	if (at.tv_sec == 0 && at.tv_nsec == 0)
		return false;
	if (m->offline)
		return true;
	return (now.tv_sec - at.tv_sec) * 1000000000ll + (now.tv_nsec - at.tv_nsec) <
	       (long long)m->ttl * 1000000000ll;
}

/* Whether a name missing below a directory may make the registry be asked
 * now: not offline, and at most once per MODEL_MISS_INTERVAL_MS for the
 * directory, whose *asked is then set; lock held. */
static inline bool miss_due_locked(const struct model *m, struct timespec *asked)
{
	struct timespec now = now_mono();
	long long ms = (now.tv_sec - asked->tv_sec) * 1000ll +
		       (now.tv_nsec - asked->tv_nsec) / 1000000;

	if (m->offline ||
	    ((asked->tv_sec || asked->tv_nsec) && ms < MODEL_MISS_INTERVAL_MS))
		return false;
	*asked = now;
	return true;
}

/* One thread fetches, the others wait: a name being fetched (the catalog,
 * a repository's tag list) has a busy flag under the model lock, and every
 * waiter sleeps on m->cond, as blobcache.c's flight_begin/flight_end do per
 * blob. flight_lead_locked() makes the caller the leader when nobody is
 * (true: it sets *busy, fetches without the lock, then calls
 * flight_done_locked()); otherwise it waits for one change and returns
 * false, and the caller looks again at what it would serve. Lock held. */
static inline bool flight_lead_locked(struct model *m, bool *busy)
{
	if (!*busy) {
		*busy = true;
		return true;
	}
	pthread_cond_wait(&m->cond, &m->lock);
	return false;
}

/* The same for work that may be skipped (a background refresh, a snapshot
 * load): lead when nobody does, never wait. Lock held. */
static inline bool flight_try_lead_locked(bool *busy)
{
	if (*busy)
		return false;
	*busy = true;
	return true;
}

/* The leader is done (success or not): wake every waiter. Lock held. */
static inline void flight_done_locked(struct model *m, bool *busy)
{
	*busy = false;
	pthread_cond_broadcast(&m->cond);
}

/* An answer that expired may be served while a background refresh asks
 * again (stale-while-revalidate); one forgotten ({0}: SIGHUP, a push or
 * delete through the mount) may not: the next access waits for the
 * registry. Offline, nothing expires (fresh()). */
static inline bool stale_ok(const struct model *m, struct timespec at)
{
	return !m->offline && (at.tv_sec != 0 || at.tv_nsec != 0);
}

/* Queue one background refresh of the catalog, of repository node, or of
 * tag t of node (a reference is taken), unless one is queued or running
 * for it already, and if this call queued it, wait a little for it (the
 * lock is released meanwhile: the caller looks again at what it serves);
 * lock held. Best effort: a refresh not queued is asked for again by the
 * next access. */
void model_revalidate_locked(struct model *m, enum model_refresh_kind kind,
			     struct ns_node *node, struct model_tag *t);
/* What the background workers run (lock not held). */
void model_revalidate_catalog(struct model *m);
void model_revalidate_repo(struct model *m, struct ns_node *node);
void model_revalidate_tag(struct model *m, struct ns_node *node, struct model_tag *t);

/* The repo data of a node, created on demand; lock held. */
struct repo *model_node_repo(struct ns_node *n);
/* Drop one reference to a tag record; lock held. */
void model_tag_unref_locked(struct model_tag *t);
/* Free a repo's data; lock held or model going away. */
void model_repo_free(struct repo *r);
/* Replace the repo's tag table with these (sorted) names; lock held. */
int model_apply_tags_locked(struct repo *r, const struct strv *tags) WUR;
/* Refresh node's tag listing when stale (single-flight); an expired one is
 * refreshed in the background, and served while that takes long. */
int model_refresh_tags(struct model *m, struct ns_node *node) WUR;
/* Fetch the manifests of every listed tag that is not fresh, in parallel;
 * with serve_expired, expired ones are left to a background refresh. */
int model_refresh_manifests(struct model *m, struct ns_node *node,
			    bool serve_expired) WUR;
/* node was listed: warm its repository kids in the background (-o
 * prefetch; model_prefetch.c). No-op when off. */
void model_prefetch_kids(struct model *m, struct ns_node *node);
/* node was listed: a namespace starts a walk, a repository of one moves
 * it, and what the walk will ask for next is fetched (see
 * MODEL_READAHEAD_REPOS; model_prefetch.c). No-op when off or offline. */
void model_readahead_listed(struct model *m, struct ns_node *node);
/* Stop the prefetch, read-ahead and refresh workers and wait for them
 * (before model_free). */
void model_prefetch_stop(struct model *m);

/* A tag record built from a fetched manifest (not yet in any table). */
struct model_tag *model_tag_from_fetched(const char *tag, const struct oci_fetched *f);
/* Insert or replace a record in the repo's table; takes the reference. */
int model_repo_set_tag_locked(struct repo *r, struct model_tag *t) WUR;

/* Snapshots on disk (model/model_snap.c), so a remount within the ttl does
 * not ask again. Loading fills node's tag table; -ENOENT when there is no
 * fresh snapshot. Saving and keeping are best effort. */
int model_snap_load_tags(struct model *m, struct ns_node *node, const char *name);
void model_snap_save_tags(struct model *m, struct ns_node *node);
void model_snap_drop_tags(struct model *m, struct ns_node *node);
void model_snap_keep_manifest(struct model *m, const struct oci_fetched *f);
/* Keep the n manifests a listing of node (repository name) fetched, in
 * one document for the repository (see model_snap.c). */
void model_snap_keep_manifests(struct model *m, struct ns_node *node, const char *name,
			       const struct oci_fetched *res, size_t n);
int model_snap_load_catalog(struct model *m, struct strv *names, unsigned *age);
void model_snap_save_catalog(struct model *m, const struct strv *names);
void model_snap_drop_catalog(struct model *m);

#endif
