/* ll.c - the kernel's inodes over chartfs's path operations (see ll.h). */
#include "fs/ll.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* "For good" for the kernel: a year, renewed at every lookup. */
#define FOREVER (86400.0 * 365)

struct node {
	struct node *hnext;	       /* hash chain, while hashed */
	struct node *lnext, *lprev;    /* ll->listed, while listed */
	struct node *anext, *aprev;    /* ll->all: every node but the root */
	uint64_t nlookup;	       /* the kernel's references */
	ino_t st_ino;		       /* the inode number stat(2) shows */
	enum chartfs_life life;	       /* how long the kernel trusts it */
	bool hashed;		       /* findable by path (not replaced) */
	struct timespec listed_at;     /* its listing went into the kernel */
	char path[];
};

struct chartfs_ll {
	struct chartfs *c;
	struct fuse_session *se;
	bool mounted;
	bool no_open;	 /* OPEN answered ENOSYS (read-only mounts) */
	bool no_opendir; /* OPENDIR answered ENOSYS: the kernel keeps listings */
	double ttl;

	pthread_mutex_t lock; /* the table and the listed ring */
	struct node **buckets;
	size_t nbuckets, count;
	struct node *root;
	struct node listed; /* ring of directories whose listing follows the ttl */
	struct node all;    /* ring of every node, replaced ones included */

	pthread_t sweeper;
	bool sweeping, stop;
	int wake[2]; /* a pipe that wakes the sweeper */
	volatile sig_atomic_t forget_listings;
};

static uint64_t fnv(const char *s, uint64_t h)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* The inode number of a path that no digest names (plain directories,
 * hosts): stable across mounts. Never 0 (none) or 1 (the root). */
static ino_t path_ino(const char *path)
{
	uint64_t h = fnv(path, fnv("path:", 1469598103934665603ull));

	return h > 1 ? (ino_t)h : (ino_t)(h + 2);
}

static struct node *ino_node(struct chartfs_ll *ll, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? ll->root : (struct node *)(uintptr_t)ino;
}

static fuse_ino_t node_ino(struct chartfs_ll *ll, struct node *n)
{
	return n == ll->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

static double timeout(const struct chartfs_ll *ll, enum chartfs_life life)
{
	switch (life) {
	case CHARTFS_LIFE_FROZEN:
		return FOREVER;
	case CHARTFS_LIFE_NOW:
		return 0;
	default:
		return ll->ttl;
	}
}

/* How long a name missing under dir stays missing for the kernel. */
static double negative_timeout(const struct chartfs_ll *ll, const struct node *dir)
{
	if (dir->life == CHARTFS_LIFE_TAG || dir->life == CHARTFS_LIFE_FROZEN)
		return FOREVER;
	return ll->ttl < 5 ? ll->ttl : 5;
}

static int join(const char *dir, const char *name, char **out)
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
static size_t bucket_n(const struct chartfs_ll *ll, const char *path, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)path[i]) * 1099511628211ull;
	return h & (ll->nbuckets - 1);
}

static size_t bucket(const struct chartfs_ll *ll, const char *path)
{
	return bucket_n(ll, path, strlen(path));
}

static void unlist_locked(struct node *n)
{
	if (!n->lnext)
		return;
	n->lnext->lprev = n->lprev;
	n->lprev->lnext = n->lnext;
	n->lnext = n->lprev = NULL;
}

static void unhash_locked(struct chartfs_ll *ll, struct node *n)
{
	struct node **pp;

	if (!n->hashed)
		return;
	for (pp = &ll->buckets[bucket(ll, n->path)]; *pp; pp = &(*pp)->hnext)
		if (*pp == n) {
			*pp = n->hnext;
			break;
		}
	n->hashed = false;
	ll->count--;
}

/* Double the table when it fills; a failed grow only makes chains longer. */
static void grow_locked(struct chartfs_ll *ll)
{
	size_t i, old = ll->nbuckets;
	struct node **b = calloc(old * 2, sizeof(*b));
	struct node **ob = ll->buckets;

	if (!b)
		return;
	ll->buckets = b;
	ll->nbuckets = old * 2;
	for (i = 0; i < old; i++)
		while (ob[i]) {
			struct node *n = ob[i];
			size_t k = bucket(ll, n->path);

			ob[i] = n->hnext;
			n->hnext = b[k];
			b[k] = n;
		}
	free(ob);
}

/*
 * The node for path with one more kernel reference, made if needed. The
 * attributes st are the path's now: a known path whose inode number changed
 * (its tag moved to another digest) gets a new node, so the kernel sees a
 * new inode and drops what it cached under the old one. st->st_ino is set
 * where the path operation left it 0.
 */
static struct node *node_ref(struct chartfs_ll *ll, const char *path, struct stat *st,
			     enum chartfs_life life)
{
	struct node *n;
	size_t len;

	if (!strcmp(path, "/")) {
		st->st_ino = FUSE_ROOT_ID;
		pthread_mutex_lock(&ll->lock);
		ll->root->nlookup++;
		pthread_mutex_unlock(&ll->lock);
		return ll->root;
	}
	if (!st->st_ino)
		st->st_ino = path_ino(path);
	pthread_mutex_lock(&ll->lock);
	for (n = ll->buckets[bucket(ll, path)]; n; n = n->hnext)
		if (!strcmp(n->path, path))
			break;
	if (n && n->st_ino != st->st_ino) {
		unhash_locked(ll, n);
		n = NULL;
	}
	if (!n) {
		len = strlen(path);
		n = calloc(1, sizeof(*n) + len + 1);
		if (!n)
			goto out;
		memcpy(n->path, path, len + 1);
		n->st_ino = st->st_ino;
		if (ll->count >= ll->nbuckets * 2)
			grow_locked(ll);
		n->hnext = ll->buckets[bucket(ll, path)];
		ll->buckets[bucket(ll, path)] = n;
		n->hashed = true;
		ll->count++;
		n->anext = &ll->all;
		n->aprev = ll->all.aprev;
		ll->all.aprev->anext = n;
		ll->all.aprev = n;
	}
	n->life = life;
	n->nlookup++;
out:
	pthread_mutex_unlock(&ll->lock);
	return n;
}

/* Has the kernel been given path's node? */
static bool node_known(struct chartfs_ll *ll, const char *path)
{
	struct node *n;

	pthread_mutex_lock(&ll->lock);
	for (n = ll->buckets[bucket(ll, path)]; n; n = n->hnext)
		if (!strcmp(n->path, path))
			break;
	pthread_mutex_unlock(&ll->lock);
	return n != NULL;
}

/* Drop count kernel references; the last one frees the node. */
static void node_forget(struct chartfs_ll *ll, struct node *n, uint64_t count)
{
	pthread_mutex_lock(&ll->lock);
	n->nlookup = count < n->nlookup ? n->nlookup - count : 0;
	if (n->nlookup || n == ll->root) {
		pthread_mutex_unlock(&ll->lock);
		return;
	}
	unhash_locked(ll, n);
	unlist_locked(n);
	n->anext->aprev = n->aprev;
	n->aprev->anext = n->anext;
	pthread_mutex_unlock(&ll->lock);
	free(n);
}

/*
 * A listing changed by what this daemon did (a push, a first visit to a
 * host): drop the kernel's cached listings of path's directories, from its
 * parent up to the root, before the request that changed them is answered.
 * Safe inside a request: invalidating a directory's pages takes no lock
 * that a FUSE request holds while it waits for us.
 */
static void inval_dirs(struct chartfs_ll *ll, const char *path)
{
	fuse_ino_t inos[64];
	size_t i, n = 0, len = strlen(path);
	struct node *d;

	if (!ll->no_opendir)
		return; /* listings that follow the ttl are not cached */
	pthread_mutex_lock(&ll->lock);
	while (len > 0 && n < 64) {
		while (len > 0 && path[len - 1] != '/')
			len--;
		if (len > 1)
			len--; /* "/a/b/" -> "/a/b" */
		if (len <= 1) {
			inos[n++] = FUSE_ROOT_ID;
			break;
		}
		for (d = ll->buckets[bucket_n(ll, path, len)]; d; d = d->hnext)
			if (!strncmp(d->path, path, len) && !d->path[len])
				break;
		if (d) {
			unlist_locked(d);
			inos[n++] = node_ino(ll, d);
		}
	}
	pthread_mutex_unlock(&ll->lock);
	for (i = 0; i < n; i++)
		fuse_lowlevel_notify_inval_inode(ll->se, inos[i], 0, 0);
}

/* Answer a LOOKUP, CREATE or MKDIR with path's node (e->attr filled). */
static void reply_entry(struct chartfs_ll *ll, fuse_req_t req, const char *path,
			struct fuse_entry_param *e, enum chartfs_life life,
			struct fuse_file_info *fi)
{
	struct node *n = node_ref(ll, path, &e->attr, life);

	if (!n) {
		if (fi)
			(void)chartfs_release(fi);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	e->ino = node_ino(ll, n);
	e->entry_timeout = e->attr_timeout = timeout(ll, life);
	/* Not delivered (the call was interrupted): the kernel holds no
	 * reference, so neither may we. */
	if ((fi ? fuse_reply_create(req, e, fi) : fuse_reply_entry(req, e)) != 0) {
		if (fi)
			(void)chartfs_release(fi);
		node_forget(ll, n, 1);
	}
}

/* path of parent/name into *out, or answer the request with the error. */
static bool child_path(fuse_req_t req, fuse_ino_t parent, const char *name, char **out)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	int ret = join(ino_node(ll, parent)->path, name, out);

	if (ret)
		fuse_reply_err(req, -ret);
	return ret == 0;
}

static void ll_init(void *data, struct fuse_conn_info *conn)
{
	struct chartfs_ll *ll = data;

	/* Only a read-only mount does without OPEN: a file written needs its
	 * handle, and no RELEASE would come for it. */
	ll->no_open = ll->c->read_only && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT);
	/* With ttl 0 every listing is asked anew, which OPENDIR can say. */
	ll->no_opendir = ll->ttl > 0 && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	struct fuse_entry_param e = {0};
	enum chartfs_life life;
	char *path;
	int ret;

	if (!child_path(req, parent, name, &path))
		return;
	ret = chartfs_stat(path, &e.attr, &life);
	if (ret == -ENOENT) {
		/* ino 0: the kernel keeps the miss for entry_timeout. */
		e.entry_timeout = negative_timeout(ll, ino_node(ll, parent));
		fuse_reply_entry(req, &e);
	} else if (ret) {
		fuse_reply_err(req, -ret);
	} else {
		/* A host seen for the first time joins the root's listing. */
		if (parent == FUSE_ROOT_ID && ll->c->hosts && !node_known(ll, path))
			inval_dirs(ll, path);
		reply_entry(ll, req, path, &e, life, NULL);
	}
	free(path);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);

	node_forget(ll, ino_node(ll, ino), nlookup);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	size_t i;

	for (i = 0; i < count; i++)
		node_forget(ll, ino_node(ll, f[i].ino), f[i].nlookup);
	fuse_reply_none(req);
}

static void reply_attr(fuse_req_t req, struct node *n)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	enum chartfs_life life;
	struct stat st;
	int ret = chartfs_stat(n->path, &st, &life);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	/* The inode keeps its number; a moved tag is a new inode at the next
	 * lookup. */
	st.st_ino = n == ll->root ? FUSE_ROOT_ID : n->st_ino;
	fuse_reply_attr(req, &st, timeout(ll, life));
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	reply_attr(req, ino_node(fuse_req_userdata(req), ino));
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct node *n = ino_node(fuse_req_userdata(req), ino);
	int ret = 0;

	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		ret = chartfs_chown(n->path, attr->st_uid, attr->st_gid, fi);
	if (!ret && (to_set & FUSE_SET_ATTR_SIZE))
		ret = chartfs_truncate(n->path, attr->st_size, fi);
	if (!ret && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec tv[2] = {attr->st_atim, attr->st_mtim};

		if (!(to_set & FUSE_SET_ATTR_ATIME))
			tv[0].tv_nsec = UTIME_OMIT;
		else if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		if (!(to_set & FUSE_SET_ATTR_MTIME))
			tv[1].tv_nsec = UTIME_OMIT;
		else if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		ret = chartfs_utimens(n->path, tv, fi);
	}
	if (!ret && (to_set & FUSE_SET_ATTR_MODE))
		ret = chartfs_chmod(n->path, attr->st_mode, fi);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_attr(req, n);
}

/* A directory listing, gathered whole for each READDIR (no handle keeps
 * it: the kernel caches listings itself). */
struct dent {
	char *name;
	struct stat st;
	int life; /* CHARTFS_FILL_NAME_ONLY or an enum chartfs_life */
};

struct listing {
	struct dent *v;
	size_t n, cap;
};

static int gather(void *buf, const char *name, const struct stat *st, int life)
{
	struct listing *l = buf;
	struct dent *d;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct dent *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	d = &l->v[l->n];
	d->name = strdup(name);
	if (!d->name)
		return -ENOMEM;
	if (st)
		d->st = *st;
	else
		d->st = (struct stat){.st_mode = S_IFDIR};
	d->life = life;
	l->n++;
	return 0;
}

static void listing_free(struct listing *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
}

/* A listing that follows the ttl went into the kernel's cache: the sweeper
 * drops it from there once it is older than the ttl. */
static void note_listed(struct chartfs_ll *ll, struct node *dir)
{
	if (!ll->no_opendir || dir->life == CHARTFS_LIFE_TAG ||
	    dir->life == CHARTFS_LIFE_FROZEN)
		return;
	pthread_mutex_lock(&ll->lock);
	clock_gettime(CLOCK_MONOTONIC, &dir->listed_at);
	if (!dir->lnext) {
		dir->lnext = &ll->listed;
		dir->lprev = ll->listed.lprev;
		ll->listed.lprev->lnext = dir;
		ll->listed.lprev = dir;
	}
	pthread_mutex_unlock(&ll->lock);
}

/* The inode number of an entry the listing left without one. */
static ino_t dent_ino(const struct node *dir, const struct dent *d)
{
	char *path;
	ino_t ino;

	if (d->st.st_ino)
		return d->st.st_ino;
	if (!strcmp(d->name, "."))
		return dir->st_ino;
	if (join(dir->path, d->name, &path))
		return 2;
	ino = path_ino(path);
	free(path);
	return ino;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	struct node *dir = ino_node(ll, ino);
	struct listing l = {0};
	struct node **refs = NULL;
	size_t i, used = 0, nrefs = 0;
	char *buf = NULL, *path = NULL;
	int ret;

	ret = chartfs_readdir(dir->path, &l, gather);
	if (ret)
		goto out;
	buf = malloc(size);
	refs = calloc(l.n ? l.n : 1, sizeof(*refs));
	if (!buf || !refs) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = off < 0 ? 0 : (size_t)off; i < l.n; i++) {
		struct dent *d = &l.v[i];
		size_t room = size - used, len;

		d->st.st_ino = dent_ino(dir, d);
		if (!plus) {
			len = fuse_add_direntry(req, buf + used, room, d->name, &d->st,
						(off_t)i + 1);
		} else {
			struct fuse_entry_param e = {.attr = d->st};
			struct node *n = NULL;

			/* Attributes only where they are complete; ino 0 tells
			 * the kernel to make no inode of the entry. */
			if (d->life != CHARTFS_FILL_NAME_ONLY) {
				ret = join(dir->path, d->name, &path);
				if (ret)
					goto out;
				n = node_ref(ll, path, &e.attr, (enum chartfs_life)d->life);
				free(path);
				path = NULL;
				if (!n) {
					ret = -ENOMEM;
					goto out;
				}
				e.ino = node_ino(ll, n);
				e.entry_timeout = e.attr_timeout =
				    timeout(ll, (enum chartfs_life)d->life);
			}
			len = fuse_add_direntry_plus(req, buf + used, room, d->name, &e,
						     (off_t)i + 1);
			if (n && len > room)
				node_forget(ll, n, 1);
			else if (n)
				refs[nrefs++] = n;
		}
		if (len > room)
			break;
		used += len;
	}
	if (off <= 0)
		note_listed(ll, dir);
	if (fuse_reply_buf(req, buf, used) != 0)
		for (i = 0; i < nrefs; i++)
			node_forget(ll, refs[i], 1);
	nrefs = 0;
out:
	if (ret) {
		for (i = 0; i < nrefs; i++)
			node_forget(ll, refs[i], 1);
		fuse_reply_err(req, -ret);
	}
	free(refs);
	free(buf);
	listing_free(&l);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	struct node *n = ino_node(ll, ino);

	/* ENOSYS: the kernel sends no OPENDIR or RELEASEDIR again and caches
	 * every listing (the sweeper keeps those that follow the ttl fresh). */
	if (ll->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* Without it (ttl 0), at least a chart's directories stay cached. */
	if (n->life == CHARTFS_LIFE_TAG || n->life == CHARTFS_LIFE_FROZEN) {
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	}
	fuse_reply_open(req, fi);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	int ret;

	/* ENOSYS: the kernel stops sending OPEN and RELEASE and keeps the page
	 * cache; reads then open the cached file themselves. */
	if (ll->no_open && (fi->flags & O_ACCMODE) == O_RDONLY) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ret = chartfs_open(ino_node(ll, ino)->path, fi);
	if (ret)
		fuse_reply_err(req, -ret);
	else if (fuse_reply_open(req, fi) != 0)
		(void)chartfs_release(fi);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	char *buf;
	int ret;

	if (h) {
		/* Straight from the cached file: libfuse reads it (or splices). */
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY;
		bv.buf[0].fd = h->fd;
		bv.buf[0].pos = off;
		fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = chartfs_read(ino_node(ll, ino)->path, buf, size, off, fi);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, buf, (size_t)ret);
	free(buf);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	int ret = chartfs_write(ino_node(ll, ino)->path, buf, size, off, fi);

	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, (size_t)ret);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	const char *path = ino_node(ll, ino)->path;
	int ret = chartfs_flush(path, fi);

	/* A push adds a tag directory, maybe repositories above it. */
	if (!ret && h && h->up)
		inval_dirs(ll, path);
	fuse_reply_err(req, -ret);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -chartfs_release(fi));
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	struct fuse_entry_param e = {0};
	enum chartfs_life life;
	char *path;
	int ret;

	if (!child_path(req, parent, name, &path))
		return;
	ret = chartfs_create(path, mode, fi);
	if (!ret) {
		ret = chartfs_stat(path, &e.attr, &life);
		if (ret)
			(void)chartfs_release(fi);
	}
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_entry(ll, req, path, &e, life, fi);
	free(path);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	struct fuse_entry_param e = {0};
	enum chartfs_life life;
	char *path;
	int ret;

	if (!child_path(req, parent, name, &path))
		return;
	ret = chartfs_mkdir(path, mode);
	if (!ret)
		ret = chartfs_stat(path, &e.attr, &life);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_entry(ll, req, path, &e, life, NULL);
	free(path);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char *path;

	if (!child_path(req, parent, name, &path))
		return;
	fuse_reply_err(req, -chartfs_unlink(path));
	free(path);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char *path;

	if (!child_path(req, parent, name, &path))
		return;
	fuse_reply_err(req, -chartfs_rmdir(path));
	free(path);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	char *from, *to;

	if (!child_path(req, parent, name, &from))
		return;
	if (child_path(req, newparent, newname, &to)) {
		fuse_reply_err(req, -chartfs_rename(from, to, flags));
		free(to);
	}
	free(from);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	char *path;

	if (!child_path(req, parent, name, &path))
		return;
	fuse_reply_err(req, -chartfs_symlink(link, path));
	free(path);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	char *path;

	if (!child_path(req, newparent, newname, &path))
		return;
	fuse_reply_err(req, -chartfs_symlink(ino_node(ll, ino)->path, path));
	free(path);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = {.f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255};

	(void)ino;
	fuse_reply_statfs(req, &sv);
}

/* The two-step xattr protocol: size 0 asks for the length only. */
static void reply_xattr(fuse_req_t req, size_t size, int ret, const char *buf)
{
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else if (!size)
		fuse_reply_xattr(req, (size_t)ret);
	else
		fuse_reply_buf(req, buf, (size_t)ret);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	char *buf = size ? malloc(size) : NULL;

	if (size && !buf)
		fuse_reply_err(req, ENOMEM);
	else
		reply_xattr(req, size,
			    chartfs_getxattr(ino_node(ll, ino)->path, name, buf, size), buf);
	free(buf);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	char *buf = size ? malloc(size) : NULL;

	if (size && !buf)
		fuse_reply_err(req, ENOMEM);
	else
		reply_xattr(req, size, chartfs_listxattr(ino_node(ll, ino)->path, buf, size),
			    buf);
	free(buf);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);

	fuse_reply_err(req,
		       -chartfs_setxattr(ino_node(ll, ino)->path, name, value, size, flags));
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);

	fuse_reply_err(req, -chartfs_removexattr(ino_node(ll, ino)->path, name));
}

/* No .poll: libfuse answers ENOSYS and the kernel treats files as always
 * ready, which they are. */
static const struct fuse_lowlevel_ops ll_ops = {
    .init = ll_init,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = ll_getattr,
    .setattr = ll_setattr,
    .opendir = ll_opendir,
    .readdir = ll_readdir,
    .readdirplus = ll_readdirplus,
    .releasedir = ll_releasedir,
    .open = ll_open,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_flush,
    .release = ll_release,
    .create = ll_create,
    .mkdir = ll_mkdir,
    .unlink = ll_unlink,
    .rmdir = ll_rmdir,
    .rename = ll_rename,
    .symlink = ll_symlink,
    .link = ll_link,
    .statfs = ll_statfs,
    .getxattr = ll_getxattr,
    .listxattr = ll_listxattr,
    .setxattr = ll_setxattr,
    .removexattr = ll_removexattr,
};

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
	struct chartfs_ll *ll = arg;
	struct pollfd pfd = {.fd = ll->wake[0], .events = POLLIN};
	fuse_ino_t batch[64];
	struct timespec now;
	char drain[64];
	double wait;
	size_t i, n;
	bool all;

	pthread_mutex_lock(&ll->lock);
	while (!ll->stop) {
		all = ll->forget_listings;
		ll->forget_listings = 0;
		do {
			struct node *d, *next;

			clock_gettime(CLOCK_MONOTONIC, &now);
			n = 0;
			wait = 1;
			for (d = ll->listed.lnext; d != &ll->listed && n < 64; d = next) {
				double age = since(&now, &d->listed_at);

				next = d->lnext;
				if (!all && age < ll->ttl) {
					if (ll->ttl - age < wait)
						wait = ll->ttl - age;
					continue;
				}
				unlist_locked(d);
				batch[n++] = node_ino(ll, d);
			}
			/* Outside the lock: the kernel may call back with requests
			 * that need it. A node forgotten meanwhile only makes the
			 * kernel answer ENOENT. */
			pthread_mutex_unlock(&ll->lock);
			for (i = 0; i < n; i++)
				fuse_lowlevel_notify_inval_inode(ll->se, batch[i], 0, 0);
			pthread_mutex_lock(&ll->lock);
		} while (n == 64 && !ll->stop);
		if (ll->stop)
			break;
		/* The pipe wakes it early: SIGHUP (from a signal handler, where
		 * a condition variable cannot be used) and chartfs_ll_free. */
		pthread_mutex_unlock(&ll->lock);
		if (poll(&pfd, 1, (int)(wait * 1000) + 1) > 0)
			while (read(ll->wake[0], drain, sizeof(drain)) > 0)
				;
		pthread_mutex_lock(&ll->lock);
	}
	pthread_mutex_unlock(&ll->lock);
	return NULL;
}

int chartfs_ll_new(struct chartfs *c, struct fuse_args *args, struct chartfs_ll **out)
{
	struct chartfs_ll *ll = calloc(1, sizeof(*ll));
	int ret = -ENOMEM;

	if (!ll)
		return -ENOMEM;
	ll->c = c;
	ll->ttl = c->ttl;
	pthread_mutex_init(&ll->lock, NULL);
	ll->wake[0] = ll->wake[1] = -1;
	ll->listed.lnext = ll->listed.lprev = &ll->listed;
	ll->all.anext = ll->all.aprev = &ll->all;
	ll->nbuckets = 1024;
	ll->buckets = calloc(ll->nbuckets, sizeof(*ll->buckets));
	ll->root = calloc(1, sizeof(*ll->root) + 2);
	if (!ll->buckets || !ll->root)
		goto out;
	if (pipe2(ll->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		ret = -errno;
		goto out;
	}
	memcpy(ll->root->path, "/", 2);
	ll->root->st_ino = FUSE_ROOT_ID;
	ll->root->nlookup = 1;
	chartfs_self = c;
	ll->se = fuse_session_new(args, &ll_ops, sizeof(ll_ops), ll);
	ret = ll->se ? 0 : -EINVAL;
out:
	if (ret)
		chartfs_ll_free(ll);
	else
		*out = ll;
	return ret;
}

struct fuse_session *chartfs_ll_session(struct chartfs_ll *ll)
{
	return ll->se;
}

int chartfs_ll_mount(struct chartfs_ll *ll, const char *mountpoint)
{
	if (fuse_session_mount(ll->se, mountpoint) != 0)
		return -EIO;
	ll->mounted = true;
	return 0;
}

int chartfs_ll_start(struct chartfs_ll *ll)
{
	int ret = pthread_create(&ll->sweeper, NULL, sweep, ll);

	if (ret)
		return -ret;
	ll->sweeping = true;
	return 0;
}

void chartfs_ll_forget_listings(struct chartfs_ll *ll)
{
	int saved = errno;

	ll->forget_listings = 1;
	(void)!write(ll->wake[1], "h", 1);
	errno = saved;
}

void chartfs_ll_free(struct chartfs_ll *ll)
{
	if (!ll)
		return;
	if (ll->sweeping) {
		pthread_mutex_lock(&ll->lock);
		ll->stop = true;
		pthread_mutex_unlock(&ll->lock);
		(void)!write(ll->wake[1], "s", 1);
		pthread_join(ll->sweeper, NULL);
	}
	if (ll->se) {
		if (ll->mounted)
			fuse_session_unmount(ll->se);
		fuse_session_destroy(ll->se);
	}
	/* The kernel sends no FORGET once the mount is gone. */
	while (ll->all.anext && ll->all.anext != &ll->all) {
		struct node *n = ll->all.anext;

		ll->all.anext = n->anext;
		free(n);
	}
	free(ll->buckets);
	free(ll->root);
	if (ll->wake[0] >= 0) {
		close(ll->wake[0]);
		close(ll->wake[1]);
	}
	pthread_mutex_destroy(&ll->lock);
	free(ll);
}
