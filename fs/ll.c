/* ll.c - the kernel's inodes over chartfs's path operations (see ll.h). */
#include "fs/ll_i.h"

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

/* The node a request names. */
struct inodes_node *ll_req_node(fuse_req_t req, fuse_ino_t ino)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);

	return inodes_get(ll->inodes, ino);
}

double ll_timeout(const struct chartfs_ll *ll, enum chartfs_life life)
{
	switch (life) {
	case CHARTFS_LIFE_FROZEN:
		return FOREVER;
	case CHARTFS_LIFE_NOW:
		return 0;
	default:
		return ll->c->ttl;
	}
}

/* How long a name missing under a repository or namespace stays missing
 * for the kernel: the daemon asks the registry again for such a name once
 * a second (MODEL_MISS_INTERVAL_MS), so a tag or repository pushed
 * elsewhere opens at once; the kernel must not hide it longer. */
#define NEGATIVE_NAME_S 1.0

/* How long a name missing under dir stays missing for the kernel. */
static double negative_timeout(const struct chartfs_ll *ll, const struct inodes_node *dir)
{
	if (dir->life == CHARTFS_LIFE_TAG || dir->life == CHARTFS_LIFE_FROZEN)
		return FOREVER;
	return ll->c->ttl < NEGATIVE_NAME_S ? ll->c->ttl : NEGATIVE_NAME_S;
}

/* Answer a LOOKUP, CREATE or MKDIR with path's node (e->attr filled). */
void ll_reply_entry(struct chartfs_ll *ll, fuse_req_t req, const char *path,
		    struct fuse_entry_param *e, enum chartfs_life life,
		    struct fuse_file_info *fi)
{
	struct inodes_node *n = inodes_ref(ll->inodes, path, &e->attr, life);

	if (!n) {
		if (fi)
			chartfs_release(ll->c, fi);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	e->ino = inodes_id(ll->inodes, n);
	e->entry_timeout = e->attr_timeout = ll_timeout(ll, life);
	/* Not delivered (the call was interrupted): the kernel holds no
	 * reference, so neither may we. */
	if ((fi ? fuse_reply_create(req, e, fi) : fuse_reply_entry(req, e)) != 0) {
		if (fi)
			chartfs_release(ll->c, fi);
		inodes_forget(ll->inodes, n, 1);
	}
}

/* path of parent/name into *out, or answer the request with the error. */
bool ll_child_path(fuse_req_t req, fuse_ino_t parent, const char *name, char **out)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	int ret = inodes_join(inodes_get(ll->inodes, parent)->path, name, out);

	if (ret)
		fuse_reply_err(req, -ret);
	return ret == 0;
}

static void ll_init(void *data, struct fuse_conn_info *conn)
{
	struct chartfs_ll *ll = data;

	/* Without OPEN a read costs the kernel no round trip at open and
	 * none at close on a read-only mount (FLUSH is ENOSYS there). A
	 * writable mount keeps OPEN: once OPEN is ENOSYS the kernel sends
	 * none for writes either, and a package overwritten with no handle
	 * has no RELEASE to end its upload, nor any way to tell one writer's
	 * close from another's (a reader's close in the same process, a
	 * child's exit) or to report a failed push to the close that matters.
	 * Reads there are OPEN with noflush, and RELEASE. */
	ll->no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) && ll->c->read_only;
	/* With ttl 0 every listing is asked anew, which OPENDIR can say. */
	ll->no_opendir = ll->c->ttl > 0 && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
	inodes_cache_listings(ll->inodes, ll->no_opendir);
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	struct fuse_entry_param e = {0};
	enum chartfs_life life;
	char *path;
	int ret;

	if (!ll_child_path(req, parent, name, &path))
		return;
	ret = chartfs_stat(ll_ctx(req), path, &e.attr, &life);
	if (ret == -ENOENT) {
		/* ino 0: the kernel keeps the miss for entry_timeout. */
		e.entry_timeout = negative_timeout(ll, inodes_get(ll->inodes, parent));
		fuse_reply_entry(req, &e);
	} else if (ret) {
		fuse_reply_err(req, -ret);
	} else {
		/* A host seen for the first time joins the root's listing. */
		if (parent == FUSE_ROOT_ID && ll->c->hosts &&
		    !inodes_known(ll->inodes, path))
			inodes_inval_dirs(ll->inodes, path);
		ll_reply_entry(ll, req, path, &e, life, NULL);
	}
	free(path);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);

	inodes_forget(ll->inodes, inodes_get(ll->inodes, ino), nlookup);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	size_t i;

	for (i = 0; i < count; i++)
		inodes_forget(ll->inodes, inodes_get(ll->inodes, f[i].ino), f[i].nlookup);
	fuse_reply_none(req);
}

void ll_reply_attr(fuse_req_t req, struct inodes_node *n)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	enum chartfs_life life;
	struct stat st;
	int ret = chartfs_stat(ll_ctx(req), n->path, &st, &life);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	/* The inode keeps its number; a moved tag is a new inode at the next
	 * lookup. */
	st.st_ino = n->st_ino;
	fuse_reply_attr(req, &st, ll_timeout(ll, life));
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	ll_reply_attr(req, ll_req_node(req, ino));
}

/* The inode number of an entry the listing left without one. */
static ino_t dent_ino(const struct inodes_node *dir, const char *name)
{
	char *path;
	ino_t ino;

	if (!strcmp(name, "."))
		return dir->st_ino;
	if (inodes_join(dir->path, name, &path))
		return 2;
	ino = inodes_path_ino(path);
	free(path);
	return ino;
}

/* dir's listing, gathered now, with every inode number set. */
static int gather(struct chartfs *c, const struct inodes_node *dir,
		  struct inodes_listing **out)
{
	struct inodes_listing *l = inodes_listing_new();
	size_t i;
	int ret;

	if (!l)
		return -ENOMEM;
	ret = chartfs_readdir(c, dir->path, l, inodes_listing_add);
	for (i = 0; !ret && i < l->n; i++)
		if (!l->v[i].st.st_ino)
			l->v[i].st.st_ino = dent_ino(dir, l->names + l->v[i].name);
	if (ret)
		inodes_listing_put(l);
	else
		*out = l;
	return ret;
}

/*
 * The listing a read at off serves, with a reference: gathered once per
 * listing pass and kept on the node for the reads that follow (the kernel
 * reads a large directory in chunks of a few dozen entries; gathering it
 * for each chunk made a listing quadratic). A pass starts at offset 0,
 * where a listing that follows the ttl is gathered anew; a chart's
 * directories never change, so theirs is reused. A later offset whose
 * listing is gone (ended, evicted, invalidated) gathers it again.
 */
static int pass_listing(struct chartfs_ll *ll, struct inodes_node *dir, off_t off,
			struct inodes_listing **out)
{
	bool frozen = dir->life == CHARTFS_LIFE_FROZEN || dir->life == CHARTFS_LIFE_TAG;
	struct inodes_listing *l = NULL;
	int ret;

	if (off > 0 || frozen)
		l = inodes_listing_get(ll->inodes, dir);
	if (l) {
		*out = l;
		return 0;
	}
	ret = gather(ll->c, dir, &l);
	if (ret)
		return ret;
	inodes_listing_keep(ll->inodes, dir, l);
	atomic_store(&dir->nlisted, l->n);
	*out = l;
	return 0;
}

/* Entry i of l into buf (room bytes): its length, past room when it did not
 * fit. With plus, the entry's node gets a reference, put in *ref. */
static size_t add_entry(fuse_req_t req, struct inodes_node *dir,
			const struct inodes_listing *l, size_t i, bool plus, char *buf,
			size_t room, struct inodes_node **ref, int *err)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	const struct inodes_dent *d = &l->v[i];
	const char *name = l->names + d->name;
	struct fuse_entry_param e = {.attr = d->st};
	char *path;
	size_t len;

	*ref = NULL;
	if (!plus)
		return fuse_add_direntry(req, buf, room, name, &d->st, (off_t)i + 1);
	/* Attributes only where they are complete; ino 0 tells the kernel to
	 * make no inode of the entry. */
	if (d->life != CHARTFS_FILL_NAME_ONLY) {
		*err = inodes_join(dir->path, name, &path);
		if (*err)
			return 0;
		*ref = inodes_ref(ll->inodes, path, &e.attr, (enum chartfs_life)d->life);
		free(path);
		if (!*ref) {
			*err = -ENOMEM;
			return 0;
		}
		e.ino = inodes_id(ll->inodes, *ref);
		e.entry_timeout = e.attr_timeout =
		    ll_timeout(ll, (enum chartfs_life)d->life);
	}
	len = fuse_add_direntry_plus(req, buf, room, name, &e, (off_t)i + 1);
	if (*ref && len > room) {
		inodes_forget(ll->inodes, *ref, 1);
		*ref = NULL;
	}
	return len;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	struct inodes_node *dir = inodes_get(ll->inodes, ino);
	struct inodes_listing *l = NULL;
	struct inodes_node **refs = NULL;
	size_t i, used = 0, nrefs = 0, len;
	char *buf = NULL;
	int ret = 0;

	/* The kernel asks once more past the end of every listing, to learn
	 * it is the end; the pass's listing is gone by then (below): answer
	 * from its count instead of gathering it again. */
	if (off > 0 && atomic_load(&dir->nlisted) &&
	    (size_t)off >= atomic_load(&dir->nlisted) &&
	    !(l = inodes_listing_get(ll->inodes, dir))) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (!l)
		ret = pass_listing(ll, dir, off, &l);
	if (ret)
		goto out;
	buf = malloc(size);
	/* At most one entry per 24 bytes (a name's header) fits. */
	refs = plus ? calloc(size / 24 + 1, sizeof(*refs)) : NULL;
	if (!buf || (plus && !refs)) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = off < 0 ? 0 : (size_t)off; i < l->n; i++) {
		struct inodes_node *n;

		len = add_entry(req, dir, l, i, plus, buf + used, size - used, &n, &ret);
		if (ret)
			goto out;
		if (len > size - used)
			break;
		if (n)
			refs[nrefs++] = n;
		used += len;
	}
	/* The pass has its last entry: its listing is kept no more. */
	if (i >= l->n)
		inodes_listing_done(ll->inodes, dir, l);
	if (off <= 0)
		inodes_listed(ll->inodes, dir);
	if (fuse_reply_buf(req, buf, used) != 0)
		for (i = 0; i < nrefs; i++)
			inodes_forget(ll->inodes, refs[i], 1);
	nrefs = 0;
out:
	if (ret) {
		for (i = 0; i < nrefs; i++)
			inodes_forget(ll->inodes, refs[i], 1);
		fuse_reply_err(req, -ret);
	}
	inodes_listing_put(l);
	free(refs);
	free(buf);
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
	struct inodes_node *n = inodes_get(ll->inodes, ino);

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
	struct inodes_node *n;
	int ret;

	/* ENOSYS: the kernel stops sending OPEN and RELEASE and keeps the page
	 * cache; reads then open the cached file themselves. */
	if (ll->no_open && (fi->flags & O_ACCMODE) == O_RDONLY) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* A file inside a chart, opened for reading: it is in the cache
	 * already (its directory was listed from the unpacked tree) and
	 * never changes, and a warm read never reaches us (page cache). No
	 * handle: a READ opens the cached file itself (ll_read). */
	n = inodes_get(ll->inodes, ino);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		ret = ll_may_write(req, "open for writing", n->path);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
	}
	if (n->life == CHARTFS_LIFE_FROZEN && (fi->flags & O_ACCMODE) == O_RDONLY &&
	    !(fi->flags & O_TRUNC)) {
		fi->fh = 0;
		fi->keep_cache = 1;
		fi->noflush = 1;
		fuse_reply_open(req, fi);
		return;
	}
	ret = chartfs_open(ll->c, n->path, fi);
	if (ret)
		fuse_reply_err(req, -ret);
	else if (fuse_reply_open(req, fi) != 0)
		chartfs_release(ll->c, fi); /* req is gone: ll, not ll_ctx(req) */
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	struct fuse_file_info once = {.flags = O_RDONLY};
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int ret;

	/* No handle (the kernel sends no OPEN, see ll_init): one for this
	 * read alone. */
	if (!h) {
		ret = chartfs_open(ll_ctx(req), inodes_get(ll->inodes, ino)->path, &once);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		h = (struct handle *)(uintptr_t)once.fh;
	}
	/* Straight from the cached file: libfuse reads it (or splices). */
	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY;
	bv.buf[0].fd = h->fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
	chartfs_release(ll->c, &once); /* req is gone: ll, not ll_ctx(req) */
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	chartfs_release(ll_ctx(req), fi);
	fuse_reply_err(req, 0);
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

/* getxattr of name, or listxattr when name is NULL. */
static void do_xattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	const char *path = ll_req_node(req, ino)->path;
	char *buf = size ? malloc(size) : NULL;

	if (size && !buf)
		fuse_reply_err(req, ENOMEM);
	else
		reply_xattr(req, size,
			    name ? chartfs_getxattr(ll_ctx(req), path, name, buf, size)
				 : chartfs_listxattr(ll_ctx(req), path, buf, size),
			    buf);
	free(buf);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	do_xattr(req, ino, name, size);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	do_xattr(req, ino, NULL, size);
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
    .access = ll_access,
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

int chartfs_ll_new(struct chartfs *c, struct fuse_args *args, struct chartfs_ll **out)
{
	struct chartfs_ll *ll = calloc(1, sizeof(*ll));
	int ret;

	if (!ll)
		return -ENOMEM;
	ll->c = c;
	ret = inodes_new(c->ttl, &ll->inodes);
	if (ret)
		goto out;
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
	return inodes_start(ll->inodes, ll->se);
}

void chartfs_ll_forget_listings(struct chartfs_ll *ll)
{
	inodes_forget_listings(ll->inodes);
}

void chartfs_ll_free(struct chartfs_ll *ll)
{
	if (!ll)
		return;
	/* The sweeper first: it may be sending on the session. */
	inodes_free(ll->inodes);
	if (ll->se) {
		if (ll->mounted)
			fuse_session_unmount(ll->se);
		fuse_session_destroy(ll->se);
	}
	free(ll);
}
