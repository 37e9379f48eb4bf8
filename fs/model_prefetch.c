/*
 * model_prefetch.c - -o prefetch=N: when a namespace is listed, warm the
 * charts of up to N of its repositories in the background.
 *
 * A `grep -r` walks a tree one directory at a time, so a cold walk pays a
 * tag list, a manifest and a blob download, one after the other, per chart.
 * Listing a namespace is the hint that its repositories come next: workers
 * (twice -o parallel at most) fetch their tags, manifests and small chart blobs
 * and unpack them, while the walk proceeds; the single-flight of the blob
 * cache and of tag listings makes a reader that arrives first share the
 * download instead of repeating it. Off by default: a plain `ls` must not
 * download a registry.
 */
#include "fs/model_i.h"

#include <errno.h>
#include <stdlib.h>

#include "common/log.h"

/* Charts warmed per repository, and the largest blob worth it. */
#define PREFETCH_TAGS 16
#define PREFETCH_BLOB_MAX (1u << 20)

struct prefetch_job {
	struct model *m;
	struct ns_node **nodes; /* nodes live as long as the tree */
	size_t n;
	atomic_size_t next;
	atomic_uint workers; /* the last one out frees the job */
};

/* Fetch the tags, manifests and small chart trees of one repository. */
static void warm_repo(struct model *m, struct ns_node *node)
{
	struct model_tag *tags[PREFETCH_TAGS];
	const char *path;
	size_t n = 0, i;
	struct repo *r;

	if (model_refresh_tags(m, node) != 0 || model_refresh_manifests(m, node) != 0)
		return;
	model_snap_save_tags(m, node);
	pthread_mutex_lock(&m->lock);
	r = node->repo;
	for (i = 0; r && i < r->ntags && n < PREFETCH_TAGS; i++) {
		struct model_tag *t = r->tags[i];

		if (!t->chart || t->chart->size > PREFETCH_BLOB_MAX || t->tree_path)
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
			log_debug("fs: %s:%s: not warmed", node->fullname, tags[i]->tag);
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
		warm_repo(m, job->nodes[i]);
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
		log_debug("fs: %s: warming %zu repositories with %u workers",
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

void model_prefetch_stop(struct model *m)
{
	atomic_store(&m->pf_stop, true);
	pthread_mutex_lock(&m->lock);
	/* The mount is gone: a worker waiting on a stalled registry must not
	 * hold the daemon for the io_timeout. The client serves no one else
	 * any more. */
	if (m->pf_threads)
		oci_client_cancel(m->client);
	while (m->pf_threads)
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);
}
