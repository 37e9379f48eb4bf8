/* ops_write.c - the path operations that change something: cp pushes,
 * rm deletes, mkdir makes a namespace. */
#include "fs/chartfs_i.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "model/push.h"

/* The directory a new name at path would be created in, or -errno. */
static int new_entry_dir(struct chartfs *c, const char *path, struct model **m,
			 struct path_res *r, struct ns_node **dir)
{
	int ret = chartfs_resolve_new(c, path, m, r);

	if (ret)
		return ret;
	switch (r->kind) {
	case PATH_DIR:
		return -EEXIST;
	case PATH_IN_TAG:
		/* A chart's content is the registry's, addressed by digest. */
		return -EROFS;
	case PATH_UNKNOWN:
		if (strchr(r->rest, '/'))
			return -ENOENT;
		/* fall through */
	default:
		*dir = r->node;
		return 0;
	}
}

static int start_upload(struct chartfs *c, const char *path, struct model *m,
			struct ns_node *dir, struct fuse_file_info *fi)
{
	struct handle *h;
	struct upload *up;
	int ret = chartfs_upload_new(c, path, m, dir, &up);

	if (ret)
		return ret;
	h = chartfs_handle_new(c, up->fd, up);
	if (!h) {
		chartfs_upload_put(c, up);
		return -ENOMEM;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	return 0;
}

/* Overwriting an existing package is a push of the new bytes (helm push
 * replaces the tag too): 0. Anything else exists and is read-only. */
static int overwritable(const struct path_res *r)
{
	if (r->kind == PATH_PKG || r->kind == PATH_PROV)
		return 0;
	return r->kind == PATH_DIR || r->kind == PATH_TAG ? -EISDIR : -EROFS;
}

int chartfs_create(struct chartfs *c, const char *path, mode_t mode,
		   struct fuse_file_info *fi)
{
	struct ns_node *dir;
	struct model *m;
	struct path_res r;
	int ret;

	(void)mode;
	ret = new_entry_dir(c, path, &m, &r, &dir);
	if (ret)
		return ret;
	return start_upload(c, path, m, dir, fi);
}

int chartfs_open_write(struct chartfs *c, const char *path, struct model *m,
		       struct path_res *r, struct fuse_file_info *fi)
{
	int ret = overwritable(r);

	return ret ? ret : start_upload(c, path, m, r->node, fi);
}

bool chartfs_upload_name(struct chartfs *c, const char *path)
{
	struct upload *up = chartfs_upload_find(c, path);

	if (up)
		chartfs_upload_put(c, up);
	return up != NULL;
}

int chartfs_write(const char *path, const char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct upload *up = h ? h->up : NULL;
	ssize_t n;
	int ret;

	/* No OPEN came (a read-only mount: the kernel refuses writes there
	 * first), or a read handle. */
	if (!up) {
		log_debug("fs: write to %s without a write handle", path);
		return -EBADF;
	}
	pthread_mutex_lock(&up->lock);
	/* Past what could be published: refused now, not after filling the
	 * cache's disk. */
	if (off < 0 || (uint64_t)off + size > up->max) {
		/* Nor is what came before it published: a prefix of a .prov
		 * could pass for one, and the close says why it failed. */
		ret = up->write_err = -EFBIG;
		goto out;
	}
	do
		n = pwrite(up->fd, buf, size, off);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		/* The spool now lacks bytes the writer sent (the cache's
		 * disk is full): no push of it, ever. Said once per file. */
		ret = -errno;
		if (!up->write_err)
			log_warn("fs: write to %s: cannot spool it in the cache (%s): %s",
				 up->path, up->spool, strerror(-ret));
		up->write_err = ret;
	} else {
		up->dirty = true;
		ret = (int)n;
	}
out:
	pthread_mutex_unlock(&up->lock);
	return ret;
}

/* A provenance file is clear-signed text, a chart package gzip: told
 * apart by their first bytes, since a temporary name (rsync's
 * .x.tgz.prov.XXXXXX, helm's x.tgz.prov123) says nothing. */
static bool is_prov(int fd)
{
	static const char head[] = "-----BEGIN PGP SIGNED MESSAGE-----";
	char buf[sizeof(head) - 1];

	return pread(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) &&
	       !memcmp(buf, head, sizeof(buf));
}

/* Push what up holds, if it changed since the last push; a close with
 * nothing new gets the last push's result. */
static int push_upload(struct chartfs *c, struct upload *up, bool *pushed)
{
	char snap[4096];
	struct stat st;
	int fd, ret;

	pthread_mutex_lock(&up->lock);
	/* A write was lost: every close fails with its errno (already
	 * logged), and nothing is published. */
	if (up->write_err) {
		ret = up->write_err;
		up->refused_empty = false;
		goto out;
	}
	if (!up->dirty) {
		ret = up->push_err;
		goto out;
	}
	/* Empty: this close fails, but the warning waits for the last one
	 * (chartfs_upload_put): a shell's `cat x > pkg.tgz` closes the fd it
	 * opened, after dup2, before cat writes a byte. */
	up->refused_empty = fstat(up->fd, &st) == 0 && st.st_size == 0;
	if (up->refused_empty) {
		log_debug("fs: %s: empty at this close: nothing to publish yet",
			  up->path);
		up->dirty = false;
		ret = up->push_err = -EINVAL;
		goto out;
	}
	/* Push at flush so cp sees the result in close(2). */
	fd = chartfs_upload_snapshot(c, up, snap, sizeof(snap));
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	up->dirty = false;
	*pushed = true;
	if (is_prov(fd))
		ret = push_prov(up->model, up->dir, fd, snap, c->signer);
	else
		ret = push_chart(up->model, up->dir, fd, snap, c->immutable, c->signer);
	close(fd);
	up->push_err = ret;
out:
	pthread_mutex_unlock(&up->lock);
	return ret;
}

int chartfs_flush(struct chartfs *c, struct fuse_file_info *fi, bool *pushed)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	*pushed = false;
	/* A read-only mount has nothing to push: ENOSYS stops the kernel
	 * sending FLUSH at all (its files have no OPEN, hence no noflush). */
	if (c->read_only)
		return -ENOSYS;
	/* A read's close (reads are opened noflush; a directory's or an
	 * interrupted open's may still come): nothing to do. */
	if (!h || !h->up)
		return 0;
	return push_upload(c, h->up, pushed);
}

int chartfs_truncate(struct chartfs *c, const char *path, off_t size,
		     struct fuse_file_info *fi)
{
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	struct upload *up = h ? h->up : NULL;
	int ret;

	if (h && !up)
		return -EROFS;
	/* truncate(2) by path: only a file being written can change. */
	if (!h) {
		up = chartfs_upload_find(c, path);
		if (!up)
			return -EROFS;
		if (up->closed) {
			chartfs_upload_put(c, up);
			return -EROFS;
		}
	}
	pthread_mutex_lock(&up->lock);
	if (size < 0 || (uint64_t)size > up->max) {
		ret = -EFBIG;
	} else {
		ret = ftruncate(up->fd, size) < 0 ? -errno : 0;
		/* Emptied: what a failed write lost is gone, the file starts over. */
		if (!ret && size == 0)
			up->write_err = 0;
		up->dirty = true;
	}
	pthread_mutex_unlock(&up->lock);
	if (!h)
		chartfs_upload_put(c, up);
	return ret;
}

int chartfs_mkdir(struct chartfs *c, const char *path, mode_t mode)
{
	struct model_tag *t;
	struct ns_node *dir;
	struct model *m;
	struct path_res r;
	const char *name = strrchr(path, '/') + 1;
	int ret;

	(void)mode;
	ret = new_entry_dir(c, path, &m, &r, &dir);
	if (ret)
		return ret;
	if (r.kind == PATH_PKG || r.kind == PATH_PROV)
		return -EEXIST;
	if (r.kind == PATH_TAG) {
		ret = model_tag_get(m, r.node, r.tag, &t);
		if (ret == 0) {
			model_tag_put(m, t);
			return -EEXIST;
		}
		if (ret != -ENOENT)
			return ret;
		/* A directory in a repository is a tag: an empty one would look
		 * like a chart the registry does not have (cp -r of a chart's
		 * source), so only a push makes one. */
		if (model_holds_tags(m, r.node)) {
			log_warn("fs: mkdir %s refused: a directory in repository /%s "
				 "would be a tag; copy a packaged chart (.tgz) instead",
				 path, r.node->fullname);
			return -EPERM;
		}
	}
	return model_mkdir(m, dir, name);
}

/* rm of a name only an upload has: a lingering one is forgotten (its push
 * stands: the tag is deleted by its package's own name); one still open is
 * refused, as its close will push it. */
static int unlink_upload(struct chartfs *c, const char *path)
{
	struct upload *up = chartfs_upload_find(c, path);

	if (!up)
		return -ENOENT;
	if (!up->closed) {
		chartfs_upload_put(c, up);
		return -EBUSY;
	}
	chartfs_upload_drop(c, up);
	return 0;
}

int chartfs_unlink(struct chartfs *c, const char *path)
{
	struct model *m;
	struct path_res r;
	int ret;

	ret = chartfs_resolve(c, path, &m, &r);
	if (ret == CHARTFS_HOSTS_ROOT)
		return -EISDIR;
	if (ret == -ENOENT)
		return unlink_upload(c, path);
	if (ret)
		return ret;
	switch (r.kind) {
	case PATH_PKG:
		return push_delete(m, r.node, r.tag);
	case PATH_UNKNOWN:
		return unlink_upload(c, path);
	case PATH_DIR:
	case PATH_TAG:
		return -EISDIR;
	default:
		return -EROFS;
	}
}

/* Only a directory mkdir made, that never received a chart, goes: the
 * registry has no empty namespaces to delete, nor a way to delete a
 * repository but tag by tag (rm of its packages). */
int chartfs_rmdir(struct chartfs *c, const char *path)
{
	struct model *m;
	struct path_res r;
	int ret;

	ret = chartfs_resolve_new(c, path, &m, &r);
	if (ret == -EPERM || ret > 0) /* a host of an every-registry mount */
		return -EROFS;
	if (ret)
		return ret;
	switch (r.kind) {
	case PATH_DIR:
		return model_rmdir(m, r.node);
	case PATH_PKG:
	case PATH_PROV:
		return -ENOTDIR;
	case PATH_UNKNOWN:
		return -ENOENT;
	default:
		return -EROFS;
	}
}

/* Do a and b name entries of one directory? */
static bool same_dir(const char *a, const char *b)
{
	size_t la = (size_t)(strrchr(a, '/') - a), lb = (size_t)(strrchr(b, '/') - b);

	return la == lb && !memcmp(a, b, la);
}

/* A file being written, or pushed moments ago, may take another name in
 * its directory: rsync, helm pull -d and helm package -d write a temporary
 * name and rename it into place. The push goes by Chart.yaml, never by the
 * file's name, so nothing in the registry changes, and a package already
 * at the new name (the one just pushed) stays. A retag would be the rename
 * of a package; not offered. */
int chartfs_rename(struct chartfs *c, const char *from, const char *to,
		   unsigned int flags)
{
	struct upload *up;
	struct model *m;
	struct path_res r;
	int ret;

	if (flags & RENAME_EXCHANGE || !same_dir(from, to))
		return -EROFS;
	up = chartfs_upload_find(c, from);
	if (!up)
		return -EROFS;
	ret = chartfs_resolve(c, to, &m, &r);
	if (ret > 0) /* the root of an every-registry mount */
		ret = -EROFS;
	else if (ret == 0 && (r.kind == PATH_DIR || r.kind == PATH_TAG))
		ret = -EISDIR;
	else if (ret == 0 && r.kind == PATH_IN_TAG)
		ret = -EROFS;
	else if (ret == 0 || ret == -ENOENT)
		ret = chartfs_upload_rename(c, up, to);
	chartfs_upload_put(c, up);
	return ret;
}

/* Attribute changes are accepted (and ignored) on files being written, so
 * `cp -p` and `install` work; elsewhere the registry decides. */
static int setattr_result(struct chartfs *c, const char *path, struct fuse_file_info *fi)
{
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL; /* may be 0 */
	struct upload *up;

	if (h && h->up)
		return 0;
	up = chartfs_upload_find(c, path);
	if (!up)
		return -EROFS;
	chartfs_upload_put(c, up);
	return 0;
}

int chartfs_chmod(struct chartfs *c, const char *path, mode_t mode,
		  struct fuse_file_info *fi)
{
	(void)mode;
	return setattr_result(c, path, fi);
}

int chartfs_chown(struct chartfs *c, const char *path, uid_t uid, gid_t gid,
		  struct fuse_file_info *fi)
{
	(void)uid;
	(void)gid;
	return setattr_result(c, path, fi);
}

int chartfs_utimens(struct chartfs *c, const char *path, const struct timespec tv[2],
		    struct fuse_file_info *fi)
{
	(void)tv;
	return setattr_result(c, path, fi);
}

/* Extended attributes cannot be set: there are no ACLs here at all, and a
 * file being written keeps none (cp -p, cp -a and install then carry on,
 * as on any filesystem without them); elsewhere the registry decides. */
static int xattr_result(struct chartfs *c, const char *path, const char *name)
{
	struct upload *up;

	if (!strncmp(name, "system.posix_acl_", 17))
		return -EOPNOTSUPP;
	up = chartfs_upload_find(c, path);
	if (!up)
		return -EROFS;
	chartfs_upload_put(c, up);
	return -EOPNOTSUPP;
}

int chartfs_setxattr(struct chartfs *c, const char *path, const char *name,
		     const char *value, size_t size, int flags)
{
	(void)value;
	(void)size;
	(void)flags;
	return xattr_result(c, path, name);
}

int chartfs_removexattr(struct chartfs *c, const char *path, const char *name)
{
	return xattr_result(c, path, name);
}

int chartfs_symlink(struct chartfs *c, const char *from, const char *to)
{
	(void)c;
	(void)from;
	(void)to;
	return -EROFS;
}
