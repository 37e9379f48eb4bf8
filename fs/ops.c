/* ops.c - FUSE operations: map paths onto the model, errors onto errno. */
#include "fs/chartfs_i.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/log.h"

#define XATTR_ANN "user.oci.annotation."

static struct chartfs *ctx(void)
{
	return fuse_get_context()->private_data;
}

static void fill_stat(struct stat *st, bool dir, off_t size, time_t mtime)
{
	struct chartfs *c = ctx();

	memset(st, 0, sizeof(*st));
	st->st_mode = dir ? S_IFDIR | 0555 : S_IFREG | 0444;
	st->st_nlink = dir ? 2 : 1;
	st->st_uid = c->uid;
	st->st_gid = c->gid;
	st->st_size = size;
	st->st_blksize = 4096;
	st->st_blocks = (size + 511) / 512;
	st->st_mtime = st->st_ctime = st->st_atime = mtime;
}

/* Resolve path to a tag record (for PATH_TAG, PATH_PKG, PATH_IN_TAG). */
static int get_tag(struct chartfs *c, struct path_res *r, struct model_tag **t)
{
	int ret = model_tag_get(c->model, r->node, r->tag, t);

	if (ret)
		return ret;
	if (r->kind != PATH_TAG && !(*t)->chart) {
		model_tag_put(c->model, *t);
		*t = NULL;
		return -ENOENT;
	}
	return 0;
}

static time_t tag_mtime(struct chartfs *c, const struct model_tag *t)
{
	return t->created ? t->created : model_start_time(c->model);
}

/* The real path of a file inside an unpacked chart. */
static int tree_file(struct chartfs *c, struct path_res *r, struct model_tag *t,
		     char *buf, size_t len)
{
	const char *tree;
	int ret = model_tag_tree(c->model, r->node, t, &tree);

	if (ret)
		return ret;
	if ((size_t)snprintf(buf, len, "%s%s%s", tree, r->rest[0] ? "/" : "", r->rest) >=
	    len)
		return -ENAMETOOLONG;
	return 0;
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct chartfs *c = ctx();
	struct model_tag *t = NULL;
	struct path_res r;
	char real[4096];
	struct stat rst;
	int ret;

	(void)fi;
	ret = model_resolve(c->model, path, &r);
	if (ret)
		return ret;
	if (r.kind == PATH_DIR) {
		fill_stat(st, true, 0, model_start_time(c->model));
		return 0;
	}
	ret = get_tag(c, &r, &t);
	if (ret)
		return ret;
	switch (r.kind) {
	case PATH_TAG:
		fill_stat(st, true, 0, tag_mtime(c, t));
		break;
	case PATH_PKG:
		fill_stat(st, false, t->chart->size, tag_mtime(c, t));
		break;
	default:
		ret = tree_file(c, &r, t, real, sizeof(real));
		if (!ret && lstat(real, &rst) < 0)
			ret = -errno;
		if (!ret)
			fill_stat(st, S_ISDIR(rst.st_mode),
				  S_ISDIR(rst.st_mode) ? 0 : rst.st_size,
				  tag_mtime(c, t));
		break;
	}
	model_tag_put(c->model, t);
	return ret;
}

struct fill_ctx {
	void *buf;
	fuse_fill_dir_t filler;
};

static int fill_entry(void *arg, const struct model_entry *e)
{
	struct fill_ctx *f = arg;
	struct stat st;

	fill_stat(&st, e->is_dir, e->size, e->mtime);
	/* FILL_DIR_PLUS: the attributes are complete, so `ls -l` needs no
	 * getattr round trip per entry. */
	return f->filler(f->buf, e->name, &st, 0, FUSE_FILL_DIR_PLUS) ? -ENOMEM : 0;
}

static int list_real_dir(const char *real, time_t mtime, struct fill_ctx *f)
{
	DIR *d = opendir(real);
	struct dirent *de;
	int ret = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct model_entry e = {de->d_name, de->d_type == DT_DIR, 0, mtime};
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!e.is_dir &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			e.size = st.st_size;
		ret = fill_entry(f, &e);
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct chartfs *c = ctx();
	struct fill_ctx f = {buf, filler};
	struct model_tag *t = NULL;
	struct path_res r;
	char real[4096];
	int ret;

	(void)off;
	(void)fi;
	(void)flags;
	ret = model_resolve(c->model, path, &r);
	if (ret)
		return ret;
	if (r.kind == PATH_PKG)
		return -ENOTDIR;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if (r.kind == PATH_DIR)
		return model_list(c->model, r.node, fill_entry, &f);
	ret = get_tag(c, &r, &t);
	if (ret)
		return ret;
	/* A tag that is not a chart (an image, a signature) is an empty dir. */
	if (t->chart) {
		ret = tree_file(c, &r, t, real, sizeof(real));
		if (!ret)
			ret = list_real_dir(real, tag_mtime(c, t), &f);
	}
	model_tag_put(c->model, t);
	return ret;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct chartfs *c = ctx();
	struct model_tag *t = NULL;
	struct path_res r;
	const char *blob;
	char real[4096];
	int ret, fd = -1;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EROFS;
	ret = model_resolve(c->model, path, &r);
	if (ret)
		return ret;
	if (r.kind == PATH_DIR || r.kind == PATH_TAG)
		return -EISDIR;
	ret = get_tag(c, &r, &t);
	if (ret)
		return ret;
	if (r.kind == PATH_PKG) {
		ret = model_tag_blob(c->model, r.node, t, &blob);
		if (!ret)
			fd = open(blob, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	} else {
		ret = tree_file(c, &r, t, real, sizeof(real));
		if (!ret)
			fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (!ret && fd < 0)
		ret = -errno;
	model_tag_put(c->model, t);
	if (ret)
		return ret;
	fi->fh = (uint64_t)fd;
	/* Content under a digest never changes: keep the page cache across opens. */
	fi->keep_cache = 1;
	return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	ssize_t n;

	(void)path;
	do
		n = pread((int)fi->fh, buf, size, off);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : (int)n;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

static int op_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_namemax = 255;
	return 0;
}

/* ---- extended attributes ---------------------------------------------- */

/* Copy value into the caller's buffer with getxattr(2) semantics. */
static int xattr_value(const char *v, char *out, size_t size)
{
	size_t len = strlen(v);

	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(out, v, len);
	return (int)len;
}

struct xattr_list {
	char *out;
	size_t size, len;
};

static void xattr_add(struct xattr_list *l, const char *prefix, const char *name)
{
	size_t n = strlen(prefix) + strlen(name) + 1;

	if (l->size && l->len + n <= l->size)
		snprintf(l->out + l->len, n, "%s%s", prefix, name);
	l->len += n;
}

static int xattr_done(struct xattr_list *l)
{
	if (l->size && l->len > l->size)
		return -ERANGE;
	return (int)l->len;
}

static int root_xattr(struct chartfs *c, const char *name, char *out, size_t size,
		      struct xattr_list *list)
{
	char num[32];

	if (list) {
		xattr_add(list, "user.chartfs.", "registry");
		xattr_add(list, "user.chartfs.", "cache_dir");
		xattr_add(list, "user.chartfs.", "requests");
		return xattr_done(list);
	}
	if (!strcmp(name, "user.chartfs.registry"))
		return xattr_value(oci_client_base_url(c->client), out, size);
	if (!strcmp(name, "user.chartfs.cache_dir"))
		return xattr_value(c->cache_dir, out, size);
	if (!strcmp(name, "user.chartfs.requests")) {
		snprintf(num, sizeof(num), "%" PRIu64, oci_client_requests(c->client));
		return xattr_value(num, out, size);
	}
	return -ENODATA;
}

static int tag_xattr(const struct model_tag *t, const char *name, char *out, size_t size,
		     struct xattr_list *list)
{
	size_t i, n = t->man ? t->man->n_annotations : 0;

	if (list) {
		xattr_add(list, "user.oci.", "digest");
		xattr_add(list, "user.oci.", "media_type");
		for (i = 0; i < n; i++)
			xattr_add(list, XATTR_ANN, t->man->annotations[i].key);
		return xattr_done(list);
	}
	if (!strcmp(name, "user.oci.digest"))
		return xattr_value(t->digest, out, size);
	if (!strcmp(name, "user.oci.media_type"))
		return xattr_value(t->media_type, out, size);
	if (!strncmp(name, XATTR_ANN, strlen(XATTR_ANN))) {
		const char *v =
		    t->man ? oci_manifest_annotation(t->man, name + strlen(XATTR_ANN))
			   : NULL;
		if (v)
			return xattr_value(v, out, size);
	}
	return -ENODATA;
}

static int do_xattr(const char *path, const char *name, char *out, size_t size,
		    struct xattr_list *list)
{
	struct chartfs *c = ctx();
	struct model_tag *t = NULL;
	struct path_res r;
	int ret;

	ret = model_resolve(c->model, path, &r);
	if (ret)
		return ret;
	if (r.kind == PATH_DIR) {
		if (r.node->parent == NULL)
			return root_xattr(c, name, out, size, list);
		return list ? 0 : -ENODATA;
	}
	ret = get_tag(c, &r, &t);
	if (ret)
		return ret;
	if (r.kind == PATH_IN_TAG)
		ret = list ? 0 : -ENODATA;
	else
		ret = tag_xattr(t, name, out, size, list);
	model_tag_put(c->model, t);
	return ret;
}

static int op_getxattr(const char *path, const char *name, char *value, size_t size)
{
	return do_xattr(path, name, value, size, NULL);
}

static int op_listxattr(const char *path, char *list, size_t size)
{
	struct xattr_list l = {list, size, 0};

	return do_xattr(path, NULL, NULL, 0, &l);
}

/* ---- writes: refused until publishing exists --------------------------- */

static int op_mkdir(const char *path, mode_t mode)
{
	(void)path;
	(void)mode;
	return -EROFS;
}

static int op_unlink(const char *path)
{
	(void)path;
	return -EROFS;
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	(void)from;
	(void)to;
	(void)flags;
	return -EROFS;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)path;
	(void)mode;
	(void)fi;
	return -EROFS;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)path;
	(void)size;
	(void)fi;
	return -EROFS;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)path;
	(void)mode;
	(void)fi;
	return -EROFS;
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)path;
	(void)uid;
	(void)gid;
	(void)fi;
	return -EROFS;
}

static int op_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	(void)path;
	(void)tv;
	(void)fi;
	return -EROFS;
}

static int op_setxattr(const char *path, const char *name, const char *value, size_t size,
		       int flags)
{
	(void)path;
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	return -EROFS;
}

static int op_symlink(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return -EROFS;
}

static int op_removexattr(const char *path, const char *name)
{
	(void)path;
	(void)name;
	return -EROFS;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct chartfs *c = ctx();

	(void)conn;
	/* Names follow the ttl; the kernel may cache them that long. */
	cfg->entry_timeout = c->ttl;
	cfg->attr_timeout = c->ttl;
	cfg->negative_timeout = c->ttl < 5 ? c->ttl : 5;
	return c;
}

const struct fuse_operations chartfs_ops = {
    .init = op_init,
    .getattr = op_getattr,
    .readdir = op_readdir,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .statfs = op_statfs,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .mkdir = op_mkdir,
    .rmdir = op_unlink,
    .unlink = op_unlink,
    .rename = op_rename,
    .create = op_create,
    .truncate = op_truncate,
    .chmod = op_chmod,
    .chown = op_chown,
    .utimens = op_utimens,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
    .symlink = op_symlink,
    .link = op_symlink,
};
