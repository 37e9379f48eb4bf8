/* ops.c - the read operations by path: map paths onto the model (fs/ll.c
 * maps the kernel's inodes onto paths). */
#include "fs/chartfs_i.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "fs/inodes.h"
#include "model/verify.h"

void chartfs_fill_stat(struct chartfs *c, struct stat *st, bool dir, off_t size,
		       time_t mtime)
{

	memset(st, 0, sizeof(*st));
	st->st_mode = dir ? S_IFDIR | 0555 : S_IFREG | 0444;
	st->st_nlink = dir ? 2 : 1;
	st->st_uid = c->uid;
	st->st_gid = c->write_group ? c->write_gid : c->gid;
	st->st_size = size;
	st->st_blksize = 4096;
	st->st_blocks = (size + 511) / 512;
	st->st_mtime = st->st_ctime = st->st_atime = mtime;
}

/* The write bits of an entry a write is accepted on (a namespace or
 * repository to create in, a package to overwrite, a file being written):
 * the mounting user's, and -o write_group's (fs/ll_write.c: ll_may_write
 * admits exactly these callers). Chart contents and read-only mounts keep
 * none. */
static void add_write_bits(const struct chartfs *c, struct stat *st)
{
	if (!c->read_only)
		st->st_mode |= c->write_group ? 0220 : 0200;
}

static int route(struct chartfs *c, const char *path, struct model **m, const char **sub)
{
	size_t len;
	int ret;

	if (!c->hosts) {
		*m = c->model;
		*sub = path;
		return 0;
	}
	if (!strcmp(path, "/"))
		return CHARTFS_HOSTS_ROOT;
	len = strcspn(path + 1, "/");
	ret = hosts_get(c->hosts, path + 1, len, m);
	if (ret)
		return ret;
	*sub = path[1 + len] ? path + 1 + len : "/";
	return 0;
}

int chartfs_resolve(struct chartfs *c, const char *path, struct model **m,
		    struct path_res *r)
{
	const char *sub;
	int ret = route(c, path, m, &sub);

	return ret ? ret : model_resolve(*m, sub, r);
}

int chartfs_resolve_new(struct chartfs *c, const char *path, struct model **m,
			struct path_res *r)
{
	const char *sub;
	int ret;

	if (c->hosts && !strchr(path + 1, '/'))
		return -EPERM;
	ret = route(c, path, m, &sub);
	return ret ? ret : model_resolve_new(*m, sub, r);
}

/* Resolve path to a tag record (for PATH_TAG, PATH_PKG, PATH_IN_TAG).
 * With -o verify_key or -o keyring, a tag no key verifies is EACCES (its
 * verdict logged once by the model), and one whose signatures could not
 * be read EIO. */
int chartfs_get_tag(struct model *m, struct path_res *r, struct model_tag **t)
{
	struct sign_result v = {.verdict = SIGN_OK};
	int ret = model_tag_get(m, r->node, r->tag, t);

	if (ret)
		return ret;
	if ((r->kind != PATH_TAG && !(*t)->chart) ||
	    (r->kind == PATH_PROV && !(*t)->prov))
		ret = -ENOENT;
	else if (model_verifies(m))
		ret = model_tag_verify(m, r->node, *t, &v);
	if (ret && ret != -ENOENT && ret != -ENOMEM)
		ret = -EIO;
	else if (!ret && v.verdict != SIGN_OK)
		ret = -EACCES;
	if (ret) {
		model_tag_put(m, *t);
		*t = NULL;
	}
	return ret;
}

static time_t tag_mtime(struct model *m, const struct model_tag *t)
{
	return t->created ? t->created : model_start_time(m);
}

/* The real path of a file inside an unpacked chart. */
static int tree_file(struct model *m, struct path_res *r, struct model_tag *t, char *buf,
		     size_t len)
{
	const char *tree;
	int ret = model_tag_tree(m, r->node, t, &tree);

	if (ret)
		return ret;
	if ((size_t)snprintf(buf, len, "%s%s%s", tree, r->rest[0] ? "/" : "", r->rest) >=
	    len)
		return -ENAMETOOLONG;
	return 0;
}

/* The inode number of what a digest names: new when a tag moves. what is
 * "/rest" inside a tag ("/" for the tag directory) or ".tgz" for the
 * package. */
static ino_t digest_ino(const char *digest, const char *what)
{
	return inodes_ino(digest, what);
}

/* A file being written, asked about every time. */
static int upload_stat(struct chartfs *c, struct stat *st, off_t size, time_t mtime,
		       enum chartfs_life *life)
{
	chartfs_fill_stat(c, st, false, size, mtime);
	add_write_bits(c, st);
	*life = CHARTFS_LIFE_NOW;
	return 0;
}

static int registry_stat(struct chartfs *c, const char *path, struct stat *st,
			 enum chartfs_life *life);

int chartfs_stat(struct chartfs *c, const char *path, struct stat *st,
		 enum chartfs_life *life)
{
	struct upload *up;
	struct stat rst;
	int ret;

	*life = CHARTFS_LIFE_NAME;
	up = chartfs_upload_find(c, path);
	if (up && !up->closed) {
		ret = fstat(up->fd, &rst) < 0 ? -errno : 0;
		if (!ret)
			upload_stat(c, st, rst.st_size, rst.st_mtime, life);
		chartfs_upload_put(c, up);
		return ret;
	}
	/* A pushed upload lingers where the registry has nothing by its name
	 * (a temporary name, a package written into a namespace), or nothing
	 * a key of -o verify_key verifies (yet). */
	if (up) {
		ret = registry_stat(c, path, st, life);
		if (ret == -ENOENT || ret == -EACCES)
			ret = upload_stat(c, st, up->size, up->mtime, life);
		chartfs_upload_put(c, up);
		return ret;
	}
	return registry_stat(c, path, st, life);
}

/* What the registry has at path. */
static int registry_stat(struct chartfs *c, const char *path, struct stat *st,
			 enum chartfs_life *life)
{
	struct model_tag *t = NULL;
	struct model *m = NULL;
	struct path_res r;
	char real[4096];
	struct stat rst;
	int ret;

	ret = chartfs_resolve(c, path, &m, &r);
	if (ret == CHARTFS_HOSTS_ROOT) {
		chartfs_fill_stat(c, st, true, 0, c->start);
		return 0;
	}
	if (ret)
		return ret;
	if (r.kind == PATH_DIR) {
		chartfs_fill_stat(c, st, true, 0, model_start_time(m));
		add_write_bits(c, st);
		return 0;
	}
	ret = chartfs_get_tag(m, &r, &t);
	if (ret)
		return ret;
	switch (r.kind) {
	case PATH_TAG:
		chartfs_fill_stat(c, st, true, 0, tag_mtime(m, t));
		st->st_ino = digest_ino(t->digest, "/");
		*life = CHARTFS_LIFE_TAG;
		break;
	case PATH_PKG:
		chartfs_fill_stat(c, st, false, t->chart->size, tag_mtime(m, t));
		add_write_bits(c, st);
		st->st_ino = digest_ino(t->digest, ".tgz");
		break;
	case PATH_PROV:
		/* Writable as the package is: a cp of it replaces the layer. */
		chartfs_fill_stat(c, st, false, t->prov->size, tag_mtime(m, t));
		add_write_bits(c, st);
		st->st_ino = digest_ino(t->digest, ".tgz.prov");
		break;
	default:
		ret = tree_file(m, &r, t, real, sizeof(real));
		if (!ret && lstat(real, &rst) < 0)
			ret = -errno;
		if (ret)
			break;
		chartfs_fill_stat(c, st, S_ISDIR(rst.st_mode),
				  S_ISDIR(rst.st_mode) ? 0 : rst.st_size,
				  tag_mtime(m, t));
		if ((size_t)snprintf(real, sizeof(real), "/%s", r.rest) < sizeof(real))
			st->st_ino = digest_ino(t->digest, real);
		*life = CHARTFS_LIFE_FROZEN;
		break;
	}
	model_tag_put(m, t);
	return ret;
}

struct fill_ctx {
	struct chartfs *c;
	void *buf;
	chartfs_fill_fn filler;
};

static int fill_entry(void *arg, const struct model_entry *e)
{
	struct fill_ctx *f = arg;
	struct stat st;

	chartfs_fill_stat(f->c, &st, e->is_dir, e->size, e->mtime);
	/* A namespace or repository (no digest) or a package: not a tag. */
	if (!e->is_dir || !e->digest)
		add_write_bits(f->c, &st);
	if (e->digest)
		st.st_ino = digest_ino(e->digest, e->is_dir ? "/"
						  : e->prov ? ".tgz.prov"
							    : ".tgz");
	/* The attributes are complete (the manifests were fetched to list a
	 * repository), so `ls -l` needs no round trip per entry. */
	return f->filler(f->buf, e->name, &st,
			 e->digest && e->is_dir ? CHARTFS_LIFE_TAG : CHARTFS_LIFE_NAME)
		   ? -ENOMEM
		   : 0;
}

/* The root of an every-registry mount: one directory per host. */
static int fill_host(void *arg, const char *host)
{
	struct model_entry e = {host, true, 0, ((struct fill_ctx *)arg)->c->start,
				NULL, false};

	return fill_entry(arg, &e);
}

/* List a directory of an unpacked chart: rest is its path in the chart
 * ("" at the top), digest the tag's (for the inode numbers stat gives) and
 * mtime its time. The attributes are the ones chartfs_stat gives, complete
 * and frozen, so a READDIRPLUS spares the kernel one LOOKUP per file of a
 * chart walked the first time (400 of them in the benchmark's grep -r). */
static int list_real_dir(const char *real, const char *digest, const char *rest,
			 time_t mtime, struct fill_ctx *f)
{
	DIR *d = opendir(real);
	struct dirent *de;
	char what[4096];
	int ret = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct stat rst, st;
		int life = CHARTFS_LIFE_FROZEN;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &rst, AT_SYMLINK_NOFOLLOW) == 0) {
			chartfs_fill_stat(f->c, &st, S_ISDIR(rst.st_mode),
					  S_ISDIR(rst.st_mode) ? 0 : rst.st_size, mtime);
		} else {
			/* Evicted under us: the name, and a LOOKUP will tell. */
			st = (struct stat){.st_mode =
					       de->d_type == DT_DIR ? S_IFDIR : S_IFREG};
			life = CHARTFS_FILL_NAME_ONLY;
		}
		if ((size_t)snprintf(what, sizeof(what), "%s%s/%s", rest[0] ? "/" : "",
				     rest, de->d_name) < sizeof(what))
			st.st_ino = digest_ino(digest, what);
		else
			life = CHARTFS_FILL_NAME_ONLY;
		if (f->filler(f->buf, de->d_name, &st, life)) {
			ret = -ENOMEM;
			break;
		}
	}
	closedir(d);
	return ret;
}

int chartfs_readdir(struct chartfs *c, const char *path, void *buf,
		    chartfs_fill_fn filler)
{
	struct fill_ctx f = {c, buf, filler};
	struct model_tag *t = NULL;
	struct model *m = NULL;
	struct path_res r;
	char real[4096];
	int ret;

	ret = chartfs_resolve(c, path, &m, &r);
	if (ret < 0)
		return ret;
	if (ret == 0 && (r.kind == PATH_PKG || r.kind == PATH_PROV))
		return -ENOTDIR;
	if (filler(buf, ".", NULL, CHARTFS_FILL_NAME_ONLY) ||
	    filler(buf, "..", NULL, CHARTFS_FILL_NAME_ONLY))
		return -ENOMEM;
	if (ret == CHARTFS_HOSTS_ROOT)
		return hosts_list(c->hosts, fill_host, &f);
	if (r.kind == PATH_DIR)
		return model_list(m, r.node, fill_entry, &f);
	ret = chartfs_get_tag(m, &r, &t);
	if (ret)
		return ret;
	/* A tag that is not a chart (an image, a signature) is an empty dir. */
	if (t->chart) {
		ret = tree_file(m, &r, t, real, sizeof(real));
		if (!ret)
			ret = list_real_dir(real, t->digest, r.rest, tag_mtime(m, t), &f);
	}
	model_tag_put(m, t);
	return ret;
}

/* Open the cached provenance blob of t into *fd (fetched again if it was
 * evicted between the cache's answer and the open). */
static int prov_open(struct model *m, struct path_res *r, struct model_tag *t, int *fd)
{
	char blob[4096];
	int ret, tries;

	for (tries = 0; tries < 2; tries++) {
		ret = model_tag_prov(m, r->node, t, blob, sizeof(blob));
		if (ret)
			return ret;
		*fd = open(blob, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (*fd >= 0)
			return 0;
		if (errno != ENOENT)
			break;
	}
	return -errno;
}

int chartfs_open(struct chartfs *c, const char *path, struct fuse_file_info *fi)
{
	struct model_tag *t = NULL;
	struct model *m = NULL;
	struct path_res r;
	char real[4096];
	struct handle *h;
	int ret, fd = -1;

	ret = chartfs_resolve(c, path, &m, &r);
	if (ret == CHARTFS_HOSTS_ROOT)
		return -EISDIR;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		/* The name of a file being written, or pushed moments ago
		 * (the same cp again): a new file, as at its create. */
		if ((ret == -ENOENT || (!ret && r.kind == PATH_UNKNOWN)) &&
		    chartfs_upload_name(c, path))
			return chartfs_create(c, path, 0, fi);
		return ret ? ret : chartfs_open_write(c, path, m, &r, fi);
	}
	if (ret)
		return ret;
	if (r.kind == PATH_DIR || r.kind == PATH_TAG)
		return -EISDIR;
	ret = chartfs_get_tag(m, &r, &t);
	if (ret)
		return ret;
	if (r.kind == PATH_PKG) {
		fd = ret = model_tag_open_blob(m, r.node, t);
		ret = ret < 0 ? ret : 0;
	} else if (r.kind == PATH_PROV) {
		ret = prov_open(m, &r, t, &fd);
	} else {
		ret = tree_file(m, &r, t, real, sizeof(real));
		if (!ret)
			fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (!ret && fd < 0)
		ret = -errno;
	/* The daemon's shortage, not the caller's: EMFILE would send them
	 * looking at their own descriptors. */
	if (ret == -EMFILE || ret == -ENFILE) {
		log_warn("fs: open %s: the daemon is out of file descriptors: %s", path,
			 strerror(-ret));
		ret = -EIO;
	}
	model_tag_put(m, t);
	if (ret)
		return ret;
	h = chartfs_handle_new(c, fd, NULL);
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	/* Content under a digest never changes: keep the page cache across opens. */
	fi->keep_cache = 1;
	/* Nothing to do at close(2) for a read: spare the round trip. */
	fi->noflush = 1;
	return 0;
}

void chartfs_release(struct chartfs *c, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	if (h)
		chartfs_handle_free(c, h);
}
