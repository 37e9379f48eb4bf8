/* inodes.c - the kernel's inodes and the listing sweeper (see inodes.h). */
#include "fs/inodes.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct inodes {
	struct fuse_session *se; /* where invalidations go */
	double ttl;
	bool cache_listings; /* the kernel keeps listings (no OPENDIR) */

	pthread_mutex_t lock;
	struct inodes_node **buckets;
	size_t nbuckets, count;
	struct inodes_node *root;
	struct inodes_node listed; /* directories whose listing follows the ttl */
	struct inodes_node all;	   /* every node but the root, replaced ones too */
	struct inodes_node kept;   /* nodes keeping a listing, oldest first */
	size_t kept_bytes;	   /* what their listings hold */

	pthread_t sweeper;
	bool sweeping, stop;
	int wake[2]; /* a pipe that wakes the sweeper */
	volatile sig_atomic_t forget_listings;

	/* Entries to drop after a push or delete (inodes_inval_beside), sent
	 * by their own thread: the kernel takes directory locks to drop an
	 * entry, which a request waiting for this daemon may hold. Under lock;
	 * iq_cond says a job came or was done. */
	pthread_t invalidator;
	bool invalidating;
	pthread_cond_t iq_cond;
	struct inval_job *iq_head, *iq_tail;
	uint64_t iq_queued, iq_done;
};

#define FNV_BASIS 1469598103934665603ull

/* FNV-1a of len bytes of s, continuing from h. */
static uint64_t fnv(const char *s, size_t len, uint64_t h)
{
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

ino_t inodes_ino(const char *a, const char *b)
{
	uint64_t h = fnv(b, strlen(b), fnv(a, strlen(a), FNV_BASIS));

	/* 0 means "none" to fs/ll.c and 1 is the root. */
	return h > 1 ? (ino_t)h : (ino_t)(h + 2);
}

ino_t inodes_path_ino(const char *path)
{
	return inodes_ino("path:", path);
}

struct inodes_node *inodes_get(struct inodes *t, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? t->root : (struct inodes_node *)(uintptr_t)ino;
}

fuse_ino_t inodes_id(struct inodes *t, struct inodes_node *n)
{
	return n == t->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

int inodes_join(const char *dir, const char *name, char **out)
{
	size_t dl = strlen(dir), nl = strlen(name);
	char *p;

	if (dl == 1) /* the root, "/" */
		dl = 0;
	if (dl + nl + 2 > 4096)
		return -ENAMETOOLONG;
	p = malloc(dl + nl + 2);
	if (!p)
		return -ENOMEM;
	memcpy(p, dir, dl);
	p[dl] = '/';
	memcpy(p + dl + 1, name, nl + 1);
	*out = p;
	return 0;
}

/* The bucket of the first len bytes of path. */
static size_t bucket_n(const struct inodes *t, const char *path, size_t len)
{
	return fnv(path, len, FNV_BASIS) & (t->nbuckets - 1);
}

static size_t bucket(const struct inodes *t, const char *path)
{
	return bucket_n(t, path, strlen(path));
}

static void unlist_locked(struct inodes_node *n)
{
	if (!n->lnext)
		return;
	n->lnext->lprev = n->lprev;
	n->lprev->lnext = n->lnext;
	n->lnext = n->lprev = NULL;
}

static void unhash_locked(struct inodes *t, struct inodes_node *n)
{
	struct inodes_node **pp;

	if (!n->hashed)
		return;
	for (pp = &t->buckets[bucket(t, n->path)]; *pp; pp = &(*pp)->hnext)
		if (*pp == n) {
			*pp = n->hnext;
			break;
		}
	n->hashed = false;
	t->count--;
}

/* Double the table when it fills; a failed grow only makes chains longer. */
static void grow_locked(struct inodes *t)
{
	size_t i, old = t->nbuckets;
	struct inodes_node **b = calloc(old * 2, sizeof(*b));
	struct inodes_node **ob = t->buckets;

	if (!b)
		return;
	t->buckets = b;
	t->nbuckets = old * 2;
	for (i = 0; i < old; i++)
		while (ob[i]) {
			struct inodes_node *n = ob[i];
			size_t k = bucket(t, n->path);

			ob[i] = n->hnext;
			n->hnext = b[k];
			b[k] = n;
		}
	free(ob);
}

/* ---- listings ----------------------------------------------------------- */

struct inodes_listing *inodes_listing_new(void)
{
	struct inodes_listing *l = calloc(1, sizeof(*l));

	if (l)
		atomic_init(&l->refs, 1);
	return l;
}

int inodes_listing_add(void *buf, const char *name, const struct stat *st, int life)
{
	struct inodes_listing *l = buf;
	size_t len = strlen(name) + 1;
	struct inodes_dent *d;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct inodes_dent *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (l->names_cap - l->names_len < len) {
		size_t cap = l->names_cap ? l->names_cap * 2 : 1024;
		char *names;

		while (cap - l->names_len < len)
			cap *= 2;
		names = realloc(l->names, cap);
		if (!names)
			return -ENOMEM;
		l->names = names;
		l->names_cap = cap;
	}
	d = &l->v[l->n++];
	d->name = l->names_len;
	memcpy(l->names + l->names_len, name, len);
	l->names_len += len;
	if (st)
		d->st = *st;
	else
		d->st = (struct stat){.st_mode = S_IFDIR};
	d->life = life;
	return 0;
}

void inodes_listing_put(struct inodes_listing *l)
{
	if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	free(l->v);
	free(l->names);
	free(l);
}

static size_t listing_bytes(const struct inodes_listing *l)
{
	return sizeof(*l) + l->cap * sizeof(*l->v) + l->names_cap;
}

/* n keeps its listing no more; the reference goes to *put (dropped by the
 * caller once the lock is released: freeing 100,000 entries takes a while). */
static void unkeep_locked(struct inodes *t, struct inodes_node *n,
			  struct inodes_listing **put)
{
	*put = n->kept;
	if (!n->kept)
		return;
	t->kept_bytes -= listing_bytes(n->kept);
	n->kept = NULL;
	n->knext->kprev = n->kprev;
	n->kprev->knext = n->knext;
	n->knext = n->kprev = NULL;
}

struct inodes_listing *inodes_listing_get(struct inodes *t, struct inodes_node *dir)
{
	struct inodes_listing *l;

	pthread_mutex_lock(&t->lock);
	l = dir->kept;
	if (l)
		atomic_fetch_add(&l->refs, 1);
	pthread_mutex_unlock(&t->lock);
	return l;
}

void inodes_listing_keep(struct inodes *t, struct inodes_node *dir,
			 struct inodes_listing *l)
{
	struct inodes_listing *old, *extra[8];
	size_t i, n = 0;

	atomic_fetch_add(&l->refs, 1);
	pthread_mutex_lock(&t->lock);
	unkeep_locked(t, dir, &old);
	dir->kept = l;
	t->kept_bytes += listing_bytes(l);
	dir->knext = &t->kept;
	dir->kprev = t->kept.kprev;
	t->kept.kprev->knext = dir;
	t->kept.kprev = dir;
	/* Over the bound: the oldest go (a pass that still needed one gathers
	 * it again), never the one just kept. */
	while (t->kept_bytes > INODES_LISTINGS_MAX && t->kept.knext != dir && n < 8)
		unkeep_locked(t, t->kept.knext, &extra[n++]);
	pthread_mutex_unlock(&t->lock);
	inodes_listing_put(old);
	for (i = 0; i < n; i++)
		inodes_listing_put(extra[i]);
}

void inodes_listing_done(struct inodes *t, struct inodes_node *dir,
			 struct inodes_listing *l)
{
	struct inodes_listing *old = NULL;

	pthread_mutex_lock(&t->lock);
	if (dir->kept == l)
		unkeep_locked(t, dir, &old);
	pthread_mutex_unlock(&t->lock);
	inodes_listing_put(old);
}

/*
 * The node for path with one more kernel reference, made if needed. The
 * attributes st are the path's now: a known path whose inode number changed
 * (its tag moved to another digest) gets a new node, so the kernel sees a
 * new inode and drops what it cached under the old one. st->st_ino is set
 * where the path operation left it 0.
 */
struct inodes_node *inodes_ref(struct inodes *t, const char *path, struct stat *st,
			       enum chartfs_life life)
{
	struct inodes_node *n;
	size_t len;

	if (!strcmp(path, "/")) {
		st->st_ino = FUSE_ROOT_ID;
		pthread_mutex_lock(&t->lock);
		t->root->nlookup++;
		pthread_mutex_unlock(&t->lock);
		return t->root;
	}
	if (!st->st_ino)
		st->st_ino = inodes_path_ino(path);
	pthread_mutex_lock(&t->lock);
	for (n = t->buckets[bucket(t, path)]; n; n = n->hnext)
		if (!strcmp(n->path, path))
			break;
	if (n && n->st_ino != st->st_ino) {
		unhash_locked(t, n);
		n = NULL;
	}
	if (!n) {
		len = strlen(path);
		n = calloc(1, sizeof(*n) + len + 1);
		if (!n)
			goto out;
		memcpy(n->path, path, len + 1);
		n->st_ino = st->st_ino;
		if (t->count >= t->nbuckets * 2)
			grow_locked(t);
		n->hnext = t->buckets[bucket(t, path)];
		t->buckets[bucket(t, path)] = n;
		n->hashed = true;
		t->count++;
		n->anext = &t->all;
		n->aprev = t->all.aprev;
		t->all.aprev->anext = n;
		t->all.aprev = n;
	}
	n->life = life;
	n->nlookup++;
out:
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* Has the kernel been given path's node? */
bool inodes_known(struct inodes *t, const char *path)
{
	struct inodes_node *n;

	pthread_mutex_lock(&t->lock);
	for (n = t->buckets[bucket(t, path)]; n; n = n->hnext)
		if (!strcmp(n->path, path))
			break;
	pthread_mutex_unlock(&t->lock);
	return n != NULL;
}

/* Drop count kernel references; the last one frees the node. */
void inodes_forget(struct inodes *t, struct inodes_node *n, uint64_t count)
{
	struct inodes_listing *kept;

	pthread_mutex_lock(&t->lock);
	n->nlookup = count < n->nlookup ? n->nlookup - count : 0;
	if (n->nlookup || n == t->root) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	unhash_locked(t, n);
	unlist_locked(n);
	unkeep_locked(t, n, &kept);
	n->anext->aprev = n->aprev;
	n->aprev->anext = n->anext;
	pthread_mutex_unlock(&t->lock);
	inodes_listing_put(kept);
	free(n);
}

/*
 * A listing changed by what this daemon did (a push, a first visit to a
 * host): drop the kernel's cached listings of path's directories, from its
 * parent up to the root, before the request that changed them is answered.
 * Safe inside a request: invalidating a directory's pages takes no lock
 * that a FUSE request holds while it waits for us.
 */
void inodes_inval_dirs(struct inodes *t, const char *path)
{
	struct inodes_listing *puts[64];
	fuse_ino_t inos[64];
	size_t i, n = 0, nputs = 0, len = strlen(path);
	struct inodes_node *d;

	pthread_mutex_lock(&t->lock);
	while (len > 0 && n < 64) {
		while (len > 0 && path[len - 1] != '/')
			len--;
		if (len > 1)
			len--; /* "/a/b/" -> "/a/b" */
		if (len <= 1) {
			unkeep_locked(t, t->root, &puts[nputs++]);
			inos[n++] = FUSE_ROOT_ID;
			break;
		}
		for (d = t->buckets[bucket_n(t, path, len)]; d; d = d->hnext)
			if (!strncmp(d->path, path, len) && !d->path[len])
				break;
		if (d) {
			/* A listing kept for a pass is gathered again. */
			unkeep_locked(t, d, &puts[nputs++]);
			unlist_locked(d);
			inos[n++] = inodes_id(t, d);
		}
	}
	pthread_mutex_unlock(&t->lock);
	for (i = 0; i < nputs; i++)
		inodes_listing_put(puts[i]);
	/* Listings that follow the ttl are not cached by the kernel. */
	for (i = 0; t->cache_listings && i < n; i++)
		fuse_lowlevel_notify_inval_inode(t->se, inos[i], 0, 0);
}

/* How long a push waits for the kernel to drop its entries before its
 * FLUSH is answered anyway (a request holding a lock the kernel needs for
 * that waits for a daemon thread); the entries go as soon as it can. */
#define INVAL_WAIT_SECONDS 2

/* A directory whose entries to drop (inodes_inval_beside). */
struct inval_job {
	struct inval_job *next;
	size_t dlen;
	unsigned depth;
	char dir[];
};

/* One kernel entry to drop: name in directory parent. */
struct inval_entry {
	fuse_ino_t parent;
	char *name;
};

/* How many components path has below the first dlen bytes of dir (its
 * prefix; 0 bytes for the root), or 0 if it is not below it. */
static unsigned depth_below(const char *dir, size_t dlen, const char *path)
{
	unsigned depth = 0;

	if (strncmp(path, dir, dlen) != 0 || path[dlen] != '/' || !path[dlen + 1])
		return 0;
	for (path += dlen; *path; path++)
		depth += *path == '/';
	return depth;
}

/* The hashed node of the first len bytes of path; lock held. */
static struct inodes_node *find_n_locked(struct inodes *t, const char *path, size_t len)
{
	struct inodes_node *d;

	if (len == 0 || (len == 1 && path[0] == '/'))
		return t->root;
	for (d = t->buckets[bucket_n(t, path, len)]; d; d = d->hnext)
		if (!strncmp(d->path, path, len) && !d->path[len])
			return d;
	return NULL;
}

/* Collect the entries below the first dlen bytes of dir (at most depth
 * components down) whose names follow the registry, and unlist the cached
 * listings among them into dirs (at most *ndirs); lock held. */
static size_t collect_below_locked(struct inodes *t, const char *dir, size_t dlen,
				   unsigned depth, struct inval_entry **out,
				   fuse_ino_t *dirs, size_t *ndirs)
{
	size_t n = 0, cap = 0, maxdirs = *ndirs;
	struct inodes_node *e, *parent;
	struct inval_entry *v = NULL, *nv;
	const char *slash;
	unsigned d;

	*ndirs = 0;
	for (e = t->all.anext; e && e != &t->all; e = e->anext) {
		d = depth_below(dir, dlen, e->path);
		if (!e->hashed || d == 0 || d > depth ||
		    (e->life != CHARTFS_LIFE_NAME && e->life != CHARTFS_LIFE_TAG))
			continue;
		if (e->lnext && *ndirs < maxdirs) {
			unlist_locked(e);
			dirs[(*ndirs)++] = inodes_id(t, e);
		}
		slash = strrchr(e->path, '/');
		parent = find_n_locked(t, e->path, (size_t)(slash - e->path));
		if (!parent)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[n].name = strdup(slash + 1);
		if (!v[n].name)
			break;
		v[n++].parent = inodes_id(t, parent);
	}
	*out = v;
	return n;
}

/*
 * This daemon changed what the registry holds below dir (a push, a delete):
 * the kernel's entries there (tag directories, packages, repositories, at
 * most depth components down) may name what was there before, whose inode
 * numbers derive from the old digests, and would be trusted for the ttl.
 * Drop them, and the cached listings among them, so that the next lookup
 * asks. The kernel takes each directory's lock to drop an entry: this runs
 * on the invalidator thread, never on one that answers requests.
 */
static void inval_below(struct inodes *t, const char *dir, size_t dlen, unsigned depth)
{
	struct inval_entry *v = NULL;
	fuse_ino_t dirs[64];
	size_t i, n, ndirs = 64;

	if (!t->se)
		return;
	pthread_mutex_lock(&t->lock);
	n = collect_below_locked(t, dir, dlen, depth, &v, dirs, &ndirs);
	pthread_mutex_unlock(&t->lock);
	/* A name the kernel no longer holds is answered ENOENT: nothing to do. */
	for (i = 0; i < n; i++) {
		(void)fuse_lowlevel_notify_inval_entry(t->se, v[i].parent, v[i].name,
						       strlen(v[i].name));
		free(v[i].name);
	}
	free(v);
	if (t->cache_listings)
		for (i = 0; i < ndirs; i++)
			fuse_lowlevel_notify_inval_inode(t->se, dirs[i], 0, 0);
}

/* Run the jobs of inodes_inval_beside, one at a time, until inodes_free. */
static void *invalidator(void *arg)
{
	struct inodes *t = arg;
	struct inval_job *job;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		while (!t->stop && !t->iq_head)
			pthread_cond_wait(&t->iq_cond, &t->lock);
		job = t->iq_head;
		if (!job)
			break;
		t->iq_head = job->next;
		if (!t->iq_head)
			t->iq_tail = NULL;
		pthread_mutex_unlock(&t->lock);
		inval_below(t, job->dir, job->dlen, job->depth);
		free(job);
		pthread_mutex_lock(&t->lock);
		t->iq_done++;
		pthread_cond_broadcast(&t->iq_cond);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* Queue the entries below the first dlen bytes of dir for the invalidator
 * and, with wait, wait for it (at most INVAL_WAIT_SECONDS). */
static void queue_inval(struct inodes *t, const char *dir, size_t dlen, unsigned depth,
			bool wait)
{
	struct inval_job *job = malloc(sizeof(*job) + dlen + 1);
	struct timespec until;
	uint64_t ticket;

	if (!job || !t->se) {
		free(job);
		return;
	}
	memcpy(job->dir, dir, dlen);
	job->dir[dlen] = '\0';
	job->dlen = dlen;
	job->depth = depth;
	job->next = NULL;
	pthread_mutex_lock(&t->lock);
	if (!t->invalidating) {
		if (pthread_create(&t->invalidator, NULL, invalidator, t) != 0) {
			pthread_mutex_unlock(&t->lock);
			free(job);
			return; /* the ttl still applies */
		}
		t->invalidating = true;
	}
	if (t->iq_tail)
		t->iq_tail->next = job;
	else
		t->iq_head = job;
	t->iq_tail = job;
	ticket = ++t->iq_queued;
	pthread_cond_broadcast(&t->iq_cond);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += INVAL_WAIT_SECONDS;
	while (wait && t->iq_done < ticket)
		if (pthread_cond_timedwait(&t->iq_cond, &t->lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&t->lock);
}

void inodes_inval_beside(struct inodes *t, const char *path, unsigned depth, bool wait)
{
	const char *slash = strrchr(path, '/');

	queue_inval(t, path, slash ? (size_t)(slash - path) : 0, depth, wait);
}

/* A listing that follows the ttl went into the kernel's cache: the sweeper
 * drops it from there once it is older than the ttl. */
void inodes_listed(struct inodes *t, struct inodes_node *dir)
{
	if (!t->cache_listings || dir->life == CHARTFS_LIFE_TAG ||
	    dir->life == CHARTFS_LIFE_FROZEN)
		return;
	pthread_mutex_lock(&t->lock);
	clock_gettime(CLOCK_MONOTONIC, &dir->listed_at);
	if (!dir->lnext) {
		dir->lnext = &t->listed;
		dir->lprev = t->listed.lprev;
		t->listed.lprev->lnext = dir;
		t->listed.lprev = dir;
	}
	pthread_mutex_unlock(&t->lock);
}

static double since(const struct timespec *now, const struct timespec *then)
{
	return (double)(now->tv_sec - then->tv_sec) +
	       (double)(now->tv_nsec - then->tv_nsec) / 1e9;
}

/* Drop from the kernel's cache the listings older than the ttl (all of
 * them after SIGHUP), waking when the oldest one is due (at least once a
 * second, for SIGHUP). */
static void *sweep(void *arg)
{
	struct inodes *t = arg;
	struct pollfd pfd = {.fd = t->wake[0], .events = POLLIN};
	struct inodes_listing *puts[64];
	fuse_ino_t batch[64];
	struct timespec now;
	char drain[64];
	double wait;
	size_t i, n;
	bool all;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		all = t->forget_listings;
		t->forget_listings = 0;
		do {
			struct inodes_node *d, *next;

			clock_gettime(CLOCK_MONOTONIC, &now);
			n = 0;
			wait = 1;
			for (d = t->listed.lnext; d != &t->listed && n < 64; d = next) {
				double age = since(&now, &d->listed_at);

				next = d->lnext;
				if (!all && age < t->ttl) {
					if (t->ttl - age < wait)
						wait = t->ttl - age;
					continue;
				}
				unlist_locked(d);
				unkeep_locked(t, d, &puts[n]);
				batch[n++] = inodes_id(t, d);
			}
			/* Outside the lock: the kernel may call back with requests
			 * that need it. A node forgotten meanwhile only makes the
			 * kernel answer ENOENT. */
			pthread_mutex_unlock(&t->lock);
			for (i = 0; i < n; i++) {
				inodes_listing_put(puts[i]);
				fuse_lowlevel_notify_inval_inode(t->se, batch[i], 0, 0);
			}
			pthread_mutex_lock(&t->lock);
		} while (n == 64 && !t->stop);
		if (t->stop)
			break;
		/* The pipe wakes it early: SIGHUP (from a signal handler, where
		 * a condition variable cannot be used) and inodes_free. */
		pthread_mutex_unlock(&t->lock);
		if (poll(&pfd, 1, (int)(wait * 1000) + 1) > 0)
			while (read(t->wake[0], drain, sizeof(drain)) > 0)
				;
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

void inodes_forget_listings(struct inodes *t)
{
	int saved = errno;

	t->forget_listings = 1;
	(void)!write(t->wake[1], "h", 1);
	errno = saved;
}

int inodes_new(double ttl, struct inodes **out)
{
	struct inodes *t = calloc(1, sizeof(*t));
	pthread_condattr_t ca;
	int ret = -ENOMEM;

	if (!t)
		return -ENOMEM;
	t->ttl = ttl;
	pthread_mutex_init(&t->lock, NULL);
	/* Pushes wait for the invalidator with a deadline on this clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->iq_cond, &ca);
	pthread_condattr_destroy(&ca);
	t->wake[0] = t->wake[1] = -1;
	t->listed.lnext = t->listed.lprev = &t->listed;
	t->all.anext = t->all.aprev = &t->all;
	t->kept.knext = t->kept.kprev = &t->kept;
	t->nbuckets = 1024;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	t->root = calloc(1, sizeof(*t->root) + 2);
	if (!t->buckets || !t->root)
		goto out;
	memcpy(t->root->path, "/", 2);
	t->root->st_ino = FUSE_ROOT_ID;
	t->root->nlookup = 1;
	ret = pipe2(t->wake, O_CLOEXEC | O_NONBLOCK) ? -errno : 0;
out:
	if (ret)
		inodes_free(t);
	else
		*out = t;
	return ret;
}

void inodes_cache_listings(struct inodes *t, bool on)
{
	t->cache_listings = on;
}

int inodes_start(struct inodes *t, struct fuse_session *se)
{
	int ret;

	t->se = se;
	ret = pthread_create(&t->sweeper, NULL, sweep, t);
	if (ret)
		return -ret;
	t->sweeping = true;
	return 0;
}

void inodes_free(struct inodes *t)
{
	struct inval_job *job;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->iq_cond);
	pthread_mutex_unlock(&t->lock);
	if (t->sweeping) {
		(void)!write(t->wake[1], "s", 1);
		pthread_join(t->sweeper, NULL);
	}
	if (t->invalidating)
		pthread_join(t->invalidator, NULL);
	while ((job = t->iq_head)) {
		t->iq_head = job->next;
		free(job);
	}
	pthread_cond_destroy(&t->iq_cond);
	/* The kernel sends no FORGET once the mount is gone. */
	while (t->kept.knext && t->kept.knext != &t->kept) {
		struct inodes_listing *l;

		unkeep_locked(t, t->kept.knext, &l);
		inodes_listing_put(l);
	}
	while (t->all.anext && t->all.anext != &t->all) {
		struct inodes_node *n = t->all.anext;

		t->all.anext = n->anext;
		free(n);
	}
	free(t->buckets);
	free(t->root);
	if (t->wake[0] >= 0) {
		close(t->wake[0]);
		close(t->wake[1]);
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}
