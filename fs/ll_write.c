/* ll_write.c - the kernel's requests that change something: cp publishes,
 * rm deletes, mkdir makes a namespace (fs/ops_write.c does the work). */
#include "fs/ll_i.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"

/* The groups a caller's membership in -o write_group is looked up in at
 * once; more take one more look. */
#define CALLER_GROUPS 64

/* Whether the caller of req belongs to -o write_group: its gid, else its
 * supplementary groups (read by libfuse from /proc, so only when the gid
 * alone does not tell). */
static bool in_write_group(const struct chartfs *c, fuse_req_t req,
			   const struct fuse_ctx *ctx)
{
	gid_t some[CALLER_GROUPS], *v = some;
	bool found = false;
	int i, n;

	if (!c->write_group)
		return false;
	if (ctx->gid == c->write_gid)
		return true;
	n = fuse_req_getgroups(req, CALLER_GROUPS, some);
	if (n > CALLER_GROUPS) {
		v = malloc((size_t)n * sizeof(*v));
		n = v ? fuse_req_getgroups(req, n, v) : -ENOMEM;
	}
	/* Unknown (the caller is gone, or in another pid namespace): not a
	 * member. */
	for (i = 0; i < n; i++)
		found = found || v[i] == c->write_gid;
	if (v != some)
		free(v);
	return found;
}

/* The longest part of a refused path the log line shows. */
#define LOGGED_PATH_MAX 512

/* path as the log may show it: the caller chose its names, so a control
 * character (a newline starting a forged log line) is shown as '?'. */
static void loggable(const char *path, char *out, size_t len)
{
	size_t i;

	for (i = 0; path[i] && i + 1 < len; i++)
		out[i] = (unsigned char)path[i] < 0x20 || path[i] == 0x7f ? '?' : path[i];
	out[i] = '\0';
}

/* Whether req's caller may write through this mount at all. */
static bool caller_may_write(const struct chartfs *c, fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	return ctx->uid == c->uid || in_write_group(c, req, ctx);
}

int ll_may_write(fuse_req_t req, const char *what, const char *path)
{
	const struct chartfs *c = ((struct chartfs_ll *)fuse_req_userdata(req))->c;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char shown[LOGGED_PATH_MAX];

	if (caller_may_write(c, req))
		return 0;
	loggable(path, shown, sizeof(shown));
	if (c->write_group)
		log_warn("fs: %s %s by uid %u refused: only uid %u and group %u write "
			 "through this mount",
			 what, shown, (unsigned)ctx->uid, (unsigned)c->uid,
			 (unsigned)c->write_gid);
	else
		log_warn("fs: %s %s by uid %u refused: only uid %u (the mounting user) "
			 "writes through this mount (see -o write_group)",
			 what, shown, (unsigned)ctx->uid, (unsigned)c->uid);
	return -EACCES;
}

void ll_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	const struct chartfs *c = ((struct chartfs_ll *)fuse_req_userdata(req))->c;
	enum chartfs_life life;
	struct stat st;
	int ret = 0;

	/* Every entry is readable by all, and a directory searchable. */
	if (mask & (W_OK | X_OK)) {
		ret = chartfs_stat(ll_ctx(req), ll_req_node(req, ino)->path, &st, &life);
		if (!ret && (mask & X_OK) && !(st.st_mode & 0111))
			ret = -EACCES;
		/* A question, not a write: no log line. */
		if (!ret && (mask & W_OK) &&
		    (!(st.st_mode & 0222) || !caller_may_write(c, req)))
			ret = -EACCES;
	}
	fuse_reply_err(req, -ret);
}

void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	struct inodes_node *n = ll_req_node(req, ino);
	int ret = ll_may_write(req, "setattr", n->path);

	if (!ret && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		ret = chartfs_chown(ll_ctx(req), n->path, attr->st_uid, attr->st_gid, fi);
	if (!ret && (to_set & FUSE_SET_ATTR_SIZE))
		ret = chartfs_truncate(ll_ctx(req), n->path, attr->st_size, fi);
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
		ret = chartfs_utimens(ll_ctx(req), n->path, tv, fi);
	}
	if (!ret && (to_set & FUSE_SET_ATTR_MODE))
		ret = chartfs_chmod(ll_ctx(req), n->path, attr->st_mode, fi);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		ll_reply_attr(req, n);
}

void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi)
{
	const char *path = ll_req_node(req, ino)->path;
	int ret = ll_may_write(req, "write", path);

	if (!ret)
		ret = chartfs_write(path, buf, size, off, fi);

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
	int ret = chartfs_flush(ll_ctx(req), fi, &pushed);

	/* A push adds a tag directory, maybe repositories above it; so does
	 * one that fails after its manifest (an unsigned chart is in). */
	if (pushed)
		inodes_inval_dirs(ll->inodes, path);
	/* It may replace a tag the kernel holds under its old digest, in the
	 * file's directory (the repository) or a kid (a namespace's): dropped
	 * before the reply close(2) waits for. */
	if (pushed)
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
		ret = chartfs_stat(ll_ctx(req), path, &e.attr, &life);
		if (ret && fi)
			chartfs_release(ll_ctx(req), fi);
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

	int ret;

	if (!ll_child_path(req, parent, name, &path))
		return;
	ret = ll_may_write(req, "create", path);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_made(req, path, chartfs_create(ll_ctx(req), path, mode, fi), fi);
	free(path);
}

void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	char *path;

	int ret;

	if (!ll_child_path(req, parent, name, &path))
		return;
	ret = ll_may_write(req, "mkdir", path);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_made(req, path, chartfs_mkdir(ll_ctx(req), path, mode), NULL);
	free(path);
}

/* Answer with what op (called what) says of parent/name. */
static void reply_name_op(fuse_req_t req, fuse_ino_t parent, const char *name,
			  const char *what,
			  int (*op)(struct chartfs *c, const char *path))
{
	char *path;
	int ret;

	if (!ll_child_path(req, parent, name, &path))
		return;
	ret = ll_may_write(req, what, path);
	fuse_reply_err(req, -(ret ? ret : op(ll_ctx(req), path)));
	free(path);
}

void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct chartfs_ll *ll = fuse_req_userdata(req);
	char *path;
	int ret;

	if (!ll_child_path(req, parent, name, &path))
		return;
	ret = ll_may_write(req, "unlink", path);
	if (!ret)
		ret = chartfs_unlink(ll_ctx(req), path);
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
	reply_name_op(req, parent, name, "rmdir", chartfs_rmdir);
}

void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags)
{
	char *from, *to;
	int ret;

	if (!ll_child_path(req, parent, name, &from))
		return;
	if (ll_child_path(req, newparent, newname, &to)) {
		ret = ll_may_write(req, "rename", from);
		fuse_reply_err(
		    req, -(ret ? ret : chartfs_rename(ll_ctx(req), from, to, flags)));
		free(to);
	}
	free(from);
}

void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	char *path;
	int ret;

	if (!ll_child_path(req, parent, name, &path))
		return;
	ret = ll_may_write(req, "symlink", path);
	fuse_reply_err(req, -(ret ? ret : chartfs_symlink(ll_ctx(req), link, path)));
	free(path);
}

void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	char *path;
	int ret;

	if (!ll_child_path(req, newparent, newname, &path))
		return;
	ret = ll_may_write(req, "link", path);
	fuse_reply_err(req, -(ret ? ret
				  : chartfs_symlink(ll_ctx(req),
						    ll_req_node(req, ino)->path, path)));
	free(path);
}

void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags)
{
	const char *path = ll_req_node(req, ino)->path;
	int ret = ll_may_write(req, "setxattr", path);

	fuse_reply_err(
	    req,
	    -(ret ? ret : chartfs_setxattr(ll_ctx(req), path, name, value, size, flags)));
}

void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	const char *path = ll_req_node(req, ino)->path;
	int ret = ll_may_write(req, "removexattr", path);

	fuse_reply_err(req, -(ret ? ret : chartfs_removexattr(ll_ctx(req), path, name)));
}
