/*
 * model_prefetch.c - the model's background work: -o prefetch=N, which
 * warms the charts of up to N repositories of a listed namespace, and the
 * refresh of expired names (stale-while-revalidate).
 *
 * A `grep -r` walks a tree one directory at a time, so a cold walk pays a
 * tag list, a manifest and a blob download, one after the other, per chart.
 * Listing a namespace is the hint that its repositories come next: workers
 * (twice -o parallel at most) fetch their tags, manifests and small chart blobs
 * and unpack them, while the walk proceeds; the single-flight of the blob
 * cache and of tag listings makes a reader that arrives first share the
 * download instead of repeating it. Off by default: a plain `ls` must not
 * download a registry.
 *
 * Read-ahead (on by default, model.h's MODEL_READAHEAD_*) follows the
 * walk instead, as a kernel's readahead follows a file read in order: a
 * namespace listed keeps its repositories in listing order (a walk); the
 * first of them entered (listed) fetches the tags and manifests of the
 * next ones, and a second entered right after confirms the walk, so the
 * charts of the one entered and of the next ones are fetched and unpacked
 * as well. Both windows move as the walk does. Workers take the job
 * nearest each walk's position first, charts before metadata, so what the
 * walk asks for next is what is in flight.
 *
 * An expired name (the catalog, a repository's tags, a tag's digest) is
 * refreshed here: the access that finds it expired waits REFRESH_WAIT_MS
 * at most, then it and those after it are served the previous answer
 * until the refresh lands. One refresh per name at a time
 * (a flag on the name, set while queued or running), run by at most
 * REFRESH_THREADS workers that start on demand and end when the queue is
 * empty. A stalled registry then holds a worker for the client's deadline,
 * never a reader, and a name's refresh is not asked again while one waits.
 */
#include "model/model_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "model/verify.h"

/* Charts warmed per repository, and the largest blob worth it. */
#define PREFETCH_TAGS 16
#define PREFETCH_BLOB_MAX (1u << 20)
/* Background refreshes of expired names: workers at once, and names
 * waiting (beyond that, a refresh is asked for again at the next access). */
#define REFRESH_THREADS 4
#define REFRESH_QUEUE_MAX 4096
/* How long the access that finds a name expired waits for its refresh
 * before it is served the previous answer (those that come meanwhile do
 * not wait). */
#define REFRESH_WAIT_MS 250

struct refresh_job {
	struct refresh_job *next;
	enum model_refresh_kind kind;
	struct ns_node *node; /* nodes live as long as the tree */
	struct model_tag *t;  /* a reference, for MODEL_REFRESH_TAG */
};

struct prefetch_job {
	struct model *m;
	struct ns_node **nodes; /* nodes live as long as the tree */
	size_t n;
	atomic_size_t next;
	atomic_uint workers; /* the last one out frees the job */
};

/* Fetch the tags and manifests of one repository (when not fresh), then
 * the trees of its first max_charts charts of at most max_size bytes. */
static void warm_repo(struct model *m, struct ns_node *node, size_t max_charts,
		      int64_t max_size)
{
	struct model_tag *tags[PREFETCH_TAGS > MODEL_READAHEAD_CHARTS
				   ? PREFETCH_TAGS
				   : MODEL_READAHEAD_CHARTS];
	const char *path;
	size_t n = 0, i;
	struct repo *r;

	if (model_refresh_tags(m, node) != 0 ||
	    model_refresh_manifests(m, node, true) != 0)
		return;
	model_snap_save_tags(m, node);
	/* With -o verify_key or -o keyring: the verdicts are warmed too, and
	 * nothing no key verifies is unpacked. */
	model_verify_listed(m, node);
	if (max_charts > sizeof(tags) / sizeof(*tags))
		max_charts = sizeof(tags) / sizeof(*tags);
	pthread_mutex_lock(&m->lock);
	r = node->repo;
	for (i = 0; r && i < r->ntags && n < max_charts; i++) {
		struct model_tag *t = r->tags[i];

		if (!t->chart || t->chart->size > max_size || t->tree_path ||
		    !model_tag_shown_locked(m, node, t))
			continue;
		t->refs++;
		tags[n++] = t;
	}
	pthread_mutex_unlock(&m->lock);
	for (i = 0; i < n; i++) {
		/* A failure is logged where it happens; the reader that
		 * comes next meets it again and gets the errno. */
		if (!atomic_load(&m->pf_stop) &&
		    model_tag_tree(m, node, tags[i], &path) != 0)
			log_debug("model: %s:%s: not warmed", node->fullname,
				  tags[i]->tag);
		model_tag_put(m, tags[i]);
	}
}

static void *prefetch_worker(void *arg)
{
	struct prefetch_job *job = arg;
	struct model *m = job->m;
	size_t i;

	while (!atomic_load(&m->pf_stop) &&
	       (i = atomic_fetch_add(&job->next, 1)) < job->n)
		warm_repo(m, job->nodes[i], PREFETCH_TAGS, PREFETCH_BLOB_MAX);
	if (atomic_fetch_sub(&job->workers, 1) == 1) {
		free(job->nodes);
		free(job);
	}
	pthread_mutex_lock(&m->lock);
	if (--m->pf_threads == 0)
		pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

void model_prefetch_kids(struct model *m, struct ns_node *node)
{
	struct prefetch_job *job;
	pthread_attr_t attr;
	unsigned k, started = 0;
	size_t i;

	if (!m->prefetch || m->offline)
		return;
	job = calloc(1, sizeof(*job));
	if (!job)
		return;
	job->m = m;
	pthread_mutex_lock(&m->lock);
	job->nodes = calloc(node->nkids, sizeof(*job->nodes));
	for (i = 0; job->nodes && i < node->nkids && job->n < m->prefetch; i++) {
		struct ns_node *kid = node->kids[i];

		/* Repositories listed before are warm or being read. */
		if (ns_is_repo(kid) && !(kid->repo && kid->repo->ever_listed))
			job->nodes[job->n++] = kid;
	}
	/* Each worker waits on one request at a time: twice -o parallel
	 * workers measured best on 2 cores (bench: 16 beat 8 and 32). */
	k = job->n < 2 * m->parallel ? (unsigned)job->n : 2 * m->parallel;
	m->pf_threads += k;
	pthread_mutex_unlock(&m->lock);
	if (k == 0) {
		free(job->nodes);
		free(job);
		return;
	}
	atomic_store(&job->workers, k);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (started = 0; started < k; started++) {
		pthread_t th;

		if (pthread_create(&th, &attr, prefetch_worker, job) != 0)
			break;
	}
	pthread_attr_destroy(&attr);
	if (started)
		log_debug("model: %s: warming %zu repositories with %u workers",
			  node->fullname[0] ? node->fullname : "/", job->n, started);
	if (started == k)
		return;
	/* Workers that never started give back their share. */
	pthread_mutex_lock(&m->lock);
	m->pf_threads -= k - started;
	if (m->pf_threads == 0)
		pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (atomic_fetch_sub(&job->workers, k - started) == k - started) {
		free(job->nodes);
		free(job);
	}
}

/* ---- read-ahead of a walk --------------------------------------------- */

/* What was taken for a repository of a walk (queued, running or done). */
enum { RA_NONE, RA_META, RA_CHARTS };

struct ra_walk {
	struct ns_node *ns;
	struct ns_node **kids; /* its repositories when listed, in that order */
	unsigned char *taken;  /* per kid: RA_NONE, RA_META or RA_CHARTS */
	size_t n;
	size_t pos;	    /* the kid entered last; SIZE_MAX: none yet */
	bool confirmed;	    /* two kids entered one after the other */
	unsigned long used; /* when last listed or entered (m's clock) */
};

static void walk_free(struct ra_walk *w)
{
	if (!w)
		return;
	free(w->kids);
	free(w->taken);
	free(w);
}

/* The walk of namespace ns, or NULL; lock held. */
static struct ra_walk *walk_of_locked(struct model *m, const struct ns_node *ns)
{
	size_t i;

	for (i = 0; ns && i < MODEL_READAHEAD_WALKS; i++)
		if (m->walks[i] && m->walks[i]->ns == ns)
			return m->walks[i];
	return NULL;
}

/* Namespace ns was listed: follow a walk of its repositories (one that is
 * followed already and lists as many goes on); lock held. */
static void walk_start_locked(struct model *m, struct ns_node *ns)
{
	struct ra_walk *w = walk_of_locked(m, ns);
	size_t i, n = 0, slot = 0;

	for (i = 0; i < ns->nkids; i++)
		if (ns_is_repo(ns->kids[i]) && ns_visible(ns->kids[i]))
			n++;
	if (w && w->n == n) {
		w->used = ++m->ra_clock;
		return;
	}
	if (n == 0)
		return;
	/* Its own slot (w NULL: a free one), else the one used longest ago. */
	slot = MODEL_READAHEAD_WALKS;
	for (i = 0; i < MODEL_READAHEAD_WALKS && slot == MODEL_READAHEAD_WALKS; i++)
		if (m->walks[i] == w)
			slot = i;
	if (slot == MODEL_READAHEAD_WALKS)
		for (slot = 0, i = 1; i < MODEL_READAHEAD_WALKS; i++)
			if (m->walks[i]->used < m->walks[slot]->used)
				slot = i;
	walk_free(m->walks[slot]);
	m->walks[slot] = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return;
	w->kids = calloc(n, sizeof(*w->kids));
	w->taken = calloc(n, 1);
	if (!w->kids || !w->taken) {
		walk_free(w);
		return;
	}
	for (i = 0; i < ns->nkids; i++)
		if (ns_is_repo(ns->kids[i]) && ns_visible(ns->kids[i]))
			w->kids[w->n++] = ns->kids[i];
	w->ns = ns;
	w->pos = SIZE_MAX;
	w->used = ++m->ra_clock;
	m->walks[slot] = w;
}

/* Repository node of walk w was entered; lock held. A kid right after the
 * one entered before (or one further: one the walk could not enter)
 * confirms the walk; any other jump starts it again. */
static void walk_enter_locked(struct model *m, struct ra_walk *w, struct ns_node *node)
{
	size_t i, from = w->pos == SIZE_MAX ? 0 : w->pos;

	for (i = from; i < w->n && w->kids[i] != node; i++)
		;
	if (i == w->n)
		for (i = 0; i < from && w->kids[i] != node; i++)
			;
	if (i == w->n || w->kids[i] != node)
		return;
	if (i == w->pos)
		return; /* listed again: the same place */
	w->confirmed = w->pos != SIZE_MAX && i > w->pos && i - w->pos <= 2;
	w->pos = i;
	if (w->taken[i] == RA_NONE)
		w->taken[i] = RA_META; /* the walk fetches it itself */
	w->used = ++m->ra_clock;
}

/* The next job of a walk, nearest its position first: charts (confirmed
 * walks), then metadata. Marks it taken; lock held. */
static struct ns_node *walk_job_locked(struct ra_walk *w, bool charts_pass, bool *charts)
{
	size_t i, end;

	if (w->pos == SIZE_MAX)
		return NULL;
	if (charts_pass) {
		if (!w->confirmed)
			return NULL;
		end = w->pos + MODEL_READAHEAD_CHART_REPOS;
		for (i = w->pos; i < w->n && i < end; i++) {
			if (w->taken[i] != RA_CHARTS) {
				w->taken[i] = RA_CHARTS;
				*charts = true;
				return w->kids[i];
			}
		}
		return NULL;
	}
	end = w->pos + 1 + MODEL_READAHEAD_REPOS;
	for (i = w->pos + 1; i < w->n && i < end; i++) {
		if (w->taken[i] == RA_NONE) {
			w->taken[i] = RA_META;
			*charts = false;
			return w->kids[i];
		}
	}
	return NULL;
}

/* The next job of every walk followed, the latest walk first; lock held. */
static struct ns_node *ra_job_locked(struct model *m, bool *charts)
{
	struct ns_node *node = NULL;
	int pass;
	size_t i;

	for (pass = 1; pass >= 0 && !node; pass--) {
		struct ra_walk *order[MODEL_READAHEAD_WALKS];
		size_t n = 0, j;

		for (i = 0; i < MODEL_READAHEAD_WALKS; i++) {
			if (!m->walks[i])
				continue;
			for (j = n++; j > 0 && order[j - 1]->used < m->walks[i]->used;
			     j--)
				order[j] = order[j - 1];
			order[j] = m->walks[i];
		}
		for (i = 0; i < n && !node; i++)
			node = walk_job_locked(order[i], pass == 1, charts);
	}
	return node;
}

static void *ra_worker(void *arg)
{
	struct model *m = arg;
	struct ns_node *node;
	bool charts;

	pthread_mutex_lock(&m->lock);
	while (!atomic_load(&m->pf_stop) && (node = ra_job_locked(m, &charts))) {
		pthread_mutex_unlock(&m->lock);
		warm_repo(m, node, charts ? MODEL_READAHEAD_CHARTS : 0,
			  MODEL_READAHEAD_CHART_MAX);
		pthread_mutex_lock(&m->lock);
	}
	m->ra_threads--;
	if (--m->pf_threads == 0)
		pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* How many jobs walk w has for a worker now, counting to max; lock held. */
static size_t walk_jobs(const struct ra_walk *w, size_t max)
{
	size_t i, n = 0;

	if (w->pos == SIZE_MAX)
		return 0;
	for (i = w->pos; w->confirmed && n < max && i < w->n &&
			 i < w->pos + MODEL_READAHEAD_CHART_REPOS;
	     i++)
		n += w->taken[i] != RA_CHARTS;
	for (i = w->pos + 1;
	     n < max && i < w->n && i < w->pos + 1 + MODEL_READAHEAD_REPOS; i++)
		n += w->taken[i] == RA_NONE;
	return n;
}

/* Start a worker per job waiting, up to MODEL_READAHEAD_THREADS running;
 * lock held. */
static void ra_workers_locked(struct model *m)
{
	pthread_attr_t attr;
	size_t i, jobs = 0;

	if (atomic_load(&m->pf_stop) || m->ra_threads >= MODEL_READAHEAD_THREADS)
		return;
	for (i = 0; i < MODEL_READAHEAD_WALKS; i++)
		if (m->walks[i])
			jobs += walk_jobs(m->walks[i], MODEL_READAHEAD_THREADS);
	if (!jobs)
		return;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Workers running take the jobs they find: start the others. */
	while (m->ra_threads < MODEL_READAHEAD_THREADS && jobs > 0) {
		pthread_t th;

		if (pthread_create(&th, &attr, ra_worker, m) != 0)
			break;
		m->ra_threads++;
		m->pf_threads++;
		jobs--;
	}
	pthread_attr_destroy(&attr);
}

void model_readahead_listed(struct model *m, struct ns_node *node)
{
	struct ra_walk *w;

	if (!m->readahead || m->offline)
		return;
	pthread_mutex_lock(&m->lock);
	if (node->nkids)
		walk_start_locked(m, node);
	w = ns_is_repo(node) ? walk_of_locked(m, node->parent) : NULL;
	if (w) {
		walk_enter_locked(m, w, node);
		ra_workers_locked(m);
	}
	pthread_mutex_unlock(&m->lock);
}

/* ---- refreshes of expired names ---------------------------------------- */

/* The flag that says a refresh of the job's name is queued or running. */
static bool *refresh_flag(struct model *m, enum model_refresh_kind kind,
			  struct ns_node *node, struct model_tag *t)
{
	switch (kind) {
	case MODEL_REFRESH_CATALOG:
		return &m->catalog_revalidating;
	case MODEL_REFRESH_REPO:
		return &node->repo->revalidating;
	default:
		return &t->revalidating;
	}
}

/* The job is done or dropped: its name may be queued again; lock held. */
static void job_free_locked(struct model *m, struct refresh_job *job)
{
	*refresh_flag(m, job->kind, job->node, job->t) = false;
	pthread_cond_broadcast(&m->cond); /* model_revalidate_locked waits */
	if (job->t)
		model_tag_unref_locked(job->t);
	free(job);
}

static void run_job(struct model *m, const struct refresh_job *job)
{
	switch (job->kind) {
	case MODEL_REFRESH_CATALOG:
		model_revalidate_catalog(m);
		break;
	case MODEL_REFRESH_REPO:
		model_revalidate_repo(m, job->node);
		break;
	case MODEL_REFRESH_TAG:
		model_revalidate_tag(m, job->node, job->t);
		break;
	}
}

static void *refresh_worker(void *arg)
{
	struct model *m = arg;
	struct refresh_job *job;

	pthread_mutex_lock(&m->lock);
	while (!atomic_load(&m->pf_stop) && (job = m->rq_head)) {
		m->rq_head = job->next;
		if (!m->rq_head)
			m->rq_tail = NULL;
		m->rq_len--;
		pthread_mutex_unlock(&m->lock);
		run_job(m, job);
		pthread_mutex_lock(&m->lock);
		job_free_locked(m, job);
	}
	if (--m->rq_threads == 0)
		pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* Drop every queued job; lock held. */
static void drop_queue_locked(struct model *m)
{
	struct refresh_job *job;

	while ((job = m->rq_head)) {
		m->rq_head = job->next;
		job_free_locked(m, job);
	}
	m->rq_tail = NULL;
	m->rq_len = 0;
}

/* Queue the job (see model_i.h): true if this call queued it. */
static bool revalidate_locked(struct model *m, enum model_refresh_kind kind,
			      struct ns_node *node, struct model_tag *t)
{
	bool *flag = refresh_flag(m, kind, node, t);
	struct refresh_job *job;
	pthread_attr_t attr;
	pthread_t th;
	int err;

	if (*flag || m->rq_len >= REFRESH_QUEUE_MAX || atomic_load(&m->pf_stop))
		return false;
	job = calloc(1, sizeof(*job));
	if (!job)
		return false;
	*job = (struct refresh_job){NULL, kind, node, t};
	if (t)
		t->refs++;
	*flag = true;
	if (m->rq_tail)
		m->rq_tail->next = job;
	else
		m->rq_head = job;
	m->rq_tail = job;
	m->rq_len++;
	if (m->rq_threads >= REFRESH_THREADS)
		return true;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&th, &attr, refresh_worker, m);
	pthread_attr_destroy(&attr);
	if (!err) {
		m->rq_threads++;
		return true;
	}
	/* No worker to run them: the names are asked for again later. */
	if (!m->rq_threads) {
		log_warn("model: cannot start a background refresh: %s", strerror(err));
		drop_queue_locked(m);
		return false;
	}
	return true;
}

void model_revalidate_locked(struct model *m, enum model_refresh_kind kind,
			     struct ns_node *node, struct model_tag *t)
{
	struct timespec until;
	bool *flag;

	if (!revalidate_locked(m, kind, node, t))
		return;
	/* A registry that answers within the wait keeps names exact to the
	 * ttl; one that does not costs this wait once per name and ttl. */
	flag = refresh_flag(m, kind, node, t);
	until = now_mono();
	until.tv_nsec += REFRESH_WAIT_MS * 1000000l;
	until.tv_sec += until.tv_nsec / 1000000000l;
	until.tv_nsec %= 1000000000l;
	while (*flag)
		if (pthread_cond_timedwait(&m->cond, &m->lock, &until) == ETIMEDOUT)
			break;
}

void model_prefetch_stop(struct model *m)
{
	size_t i;

	atomic_store(&m->pf_stop, true);
	pthread_mutex_lock(&m->lock);
	/* The mount is gone: a worker waiting on a stalled registry must not
	 * hold the daemon for the io_timeout. The client serves no one else
	 * any more. */
	if (m->pf_threads || m->rq_threads)
		oci_client_cancel(m->client);
	while (m->pf_threads || m->rq_threads)
		pthread_cond_wait(&m->cond, &m->lock);
	drop_queue_locked(m);
	for (i = 0; i < MODEL_READAHEAD_WALKS; i++) {
		walk_free(m->walks[i]);
		m->walks[i] = NULL;
	}
	pthread_mutex_unlock(&m->lock);
}
