/* ll_write.c - the kernel's requests that change something: cp publishes,
 * rm deletes, mkdir makes a namespace (fs/write.c does the work). */
#include "fs/ll_i.h"

#include <errno.h>
#include <stdlib.h>

void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	struct inodes_node *n = ll_req_node(req, ino);
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
		ll_reply_attr(req, n);
}

void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	int ret = chartfs_write(inodes_get(ll->inodes, ino)->path, buf, size, off, fi);

	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, (size_t)ret);
}

void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	const char *path = inodes_get(ll->inodes, ino)->path;
	bool pushed;
	int ret = chartfs_flush(fi, &pushed);

	/* A push adds a tag directory, maybe repositories above it. */
	if (!ret && pushed)
		inodes_inval_dirs(ll->inodes, path);
	/* It may replace a tag the kernel holds under its old digest, in the
	 * file's directory (the repository) or a kid (a namespace's): dropped
	 * before the reply close(2) waits for. */
	if (!ret && pushed)
		inodes_inval_beside(ll->inodes, path, 2, true);
	fuse_reply_err(req, -ret);
}

/* Answer a CREATE (fi set) or MKDIR whose work gave ret with the new
 * entry; a handle that cannot be answered is released. */
static void reply_made(fuse_req_t req, const char *path, int ret,
		       struct fuse_file_info *fi)
{
	struct fuse_entry_param e = {0};
	enum chartfs_life life;

	if (!ret) {
		ret = chartfs_stat(path, &e.attr, &life);
		if (ret && fi)
			(void)chartfs_release(fi);
	}
	if (ret)
		fuse_reply_err(req, -ret);
	else
		ll_reply_entry(fuse_req_userdata(req), req, path, &e, life, fi);
}

void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	char *path;

	if (!ll_child_path(req, parent, name, &path))
		return;
	reply_made(req, path, chartfs_create(path, mode, fi), fi);
	free(path);
}

void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	char *path;

	if (!ll_child_path(req, parent, name, &path))
		return;
	reply_made(req, path, chartfs_mkdir(path, mode), NULL);
	free(path);
}

/* Answer with what op says of parent/name. */
static void reply_name_op(fuse_req_t req, fuse_ino_t parent, const char *name,
			  int (*op)(const char *path))
{
	char *path;

	if (!ll_child_path(req, parent, name, &path))
		return;
	fuse_reply_err(req, -op(path));
	free(path);
}

void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	char *path;
	int ret;

	if (!ll_child_path(req, parent, name, &path))
		return;
	ret = chartfs_unlink(path);
	/* The deleted tag's directory, which the kernel may hold for the ttl:
	 * dropped once this UNLINK, which holds the directory's lock, is
	 * answered (no wait here). */
	if (!ret)
		inodes_inval_beside(ll->inodes, path, 1, false);
	fuse_reply_err(req, -ret);
	free(path);
}

void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_name_op(req, parent, name, chartfs_rmdir);
}

void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags)
{
	char *from, *to;

	if (!ll_child_path(req, parent, name, &from))
		return;
	if (ll_child_path(req, newparent, newname, &to)) {
		fuse_reply_err(req, -chartfs_rename(from, to, flags));
		free(to);
	}
	free(from);
}

void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	char *path;

	if (!ll_child_path(req, parent, name, &path))
		return;
	fuse_reply_err(req, -chartfs_symlink(link, path));
	free(path);
}

void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	char *path;

	if (!ll_child_path(req, newparent, newname, &path))
		return;
	fuse_reply_err(req, -chartfs_symlink(inodes_get(ll->inodes, ino)->path, path));
	free(path);
}

void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);

	fuse_reply_err(req, -chartfs_setxattr(inodes_get(ll->inodes, ino)->path, name,
					      value, size, flags));
}

void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);

	fuse_reply_err(req,
		       -chartfs_removexattr(inodes_get(ll->inodes, ino)->path, name));
}
