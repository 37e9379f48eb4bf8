/*
 * evict.c - keep the store under -o cache_max: least recently used first.
 *
 * Recency is the entry's mtime, which blobcache_touch() moves to now when a
 * mount starts using a blob or tree; stores shared by several daemons agree
 * on it without any lock. Removing is safe for readers: a file already open
 * stays readable, and a mount that finds a tree gone fetches it again. A
 * tree leaves trees/ in one rename before it is removed, so that no reader
 * (or daemon) ever takes a half-removed tree for a whole one. What
 * was just made (keep) is never removed, so a chart larger than the bound is
 * still served. The store's tree removal lives here too.
 */
#include "cache/blobcache_i.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/file.h"
#include "common/log.h"

/* ---- removal that never follows a symlink ------------------------------ */

/* Make each directory writable again before its entries go (trees are made
 * 0555). Opened with O_NOFOLLOW: a symlink is never chmod'ed through. */
static int unlock_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	int fd;

	(void)st;
	(void)ftw;
	if (flag != FTW_D)
		return 0;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		if (fchmod(fd, 0700) < 0)
			log_debug("cache: chmod %s: %s", path, strerror(errno));
		close(fd);
	}
	return 0;
}

/* nftw passes no argument: the first failure of this thread's removal. */
static _Thread_local int rm_err;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT) {
		log_debug("cache: remove %s: %s", path, strerror(errno));
		if (!rm_err)
			rm_err = -errno;
	}
	return 0;
}

/* Remove a directory tree (FTW_PHYS: links are removed, not followed).
 * Paths stay under PATH_MAX: the cache directory and chart paths are
 * bounded (BLOBCACHE_MAX_DIR, CHART_MAX_PATH). Whatever nftw could not
 * reach shows as the tree still being there. */
int blobcache_rm_tree(const char *path)
{
	struct stat st;

	rm_err = 0;
	nftw(path, unlock_entry, 16, FTW_PHYS);
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (lstat(path, &st) == 0 || errno != ENOENT) {
		log_warn("cache: cannot remove %s: %s", path,
			 strerror(rm_err ? -rm_err : ENOTEMPTY));
		return rm_err ? rm_err : -ENOTEMPTY;
	}
	return 0;
}

/* ---- eviction ------------------------------------------------------------ */

struct entry {
	char path[4096];
	uint64_t size;
	time_t used;
	bool tree;
};

uint64_t blobcache_cost(const struct stat *st)
{
	uint64_t size = st->st_size > 0 ? (uint64_t)st->st_size : 0;
	uint64_t blocks = (uint64_t)st->st_blocks * 512;
	uint64_t rounded =
	    (size + BLOBCACHE_BLOCK - 1) / BLOBCACHE_BLOCK * BLOBCACHE_BLOCK;

	/* An empty file takes an inode and a name, and file systems give
	 * each a block or more: 100,000 of them count as much as they cost,
	 * not as nothing. */
	if (rounded < BLOBCACHE_BLOCK)
		rounded = BLOBCACHE_BLOCK;
	return (blocks > rounded ? blocks : rounded) + BLOBCACHE_ENTRY_COST;
}

static _Thread_local uint64_t tree_bytes;

static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	/* FTW_NS: no stat to count, and the entry is counted as one block. */
	tree_bytes +=
	    flag == FTW_NS ? BLOBCACHE_BLOCK + BLOBCACHE_ENTRY_COST : blobcache_cost(st);
	return 0;
}

/* Append every entry of dir/kind/sha256 to *v. */
static int scan(const char *dir, const char *kind, struct entry **v, size_t *n,
		size_t *cap)
{
	char path[4096];
	struct dirent *de;
	struct stat st;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s/sha256", dir, kind);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct entry *e;

		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (*n == *cap) {
			size_t c = *cap ? *cap * 2 : 64;
			struct entry *nv = realloc(*v, c * sizeof(**v));
			if (!nv)
				break;
			*v = nv;
			*cap = c;
		}
		e = &(*v)[*n];
		if (file_pathf(e->path, sizeof(e->path), "%s/%s", path, de->d_name))
			continue;
		(*n)++;
		e->used = st.st_mtime;
		e->tree = S_ISDIR(st.st_mode);
		if (e->tree) {
			tree_bytes = 0;
			nftw(e->path, add_size, 16, FTW_PHYS);
			e->size = tree_bytes;
		} else {
			e->size = blobcache_cost(&st);
		}
	}
	closedir(d);
	return 0;
}

/* Whether the directory open at fd is still the one at path: when another
 * daemon moved it away first (to remove it), its mode is no longer ours to
 * restore. */
static bool still_at(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* Move the tree at path out of trees/ (to a fresh name in tmp/), then
 * remove it: 0 once it is gone, or -errno. Left over in tmp/, it is
 * removed by a later start (its mtime is its last use, so it is old). */
static int evict_tree(struct blobcache *bc, const char *path)
{
	char tmp[4096];
	int fd = -1, ret = 0;

	ret = file_pathf(tmp, sizeof(tmp), "%s/tmp/evict-XXXXXX", bc->dir);
	if (ret)
		return ret;
	if (!mkdtemp(tmp))
		return -errno;
	/* Moving a directory to another parent rewrites its "..", so it must
	 * be writable (trees are 0555). The rename replaces the empty
	 * directory mkdtemp made, so the name cannot be taken meanwhile. */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchmod(fd, 0700) < 0 || rename(path, tmp) < 0) {
		ret = -errno;
		if (fd >= 0 && still_at(fd, path))
			fchmod(fd, 0555);
		rmdir(tmp);
		goto out;
	}
	ret = blobcache_rm_tree(tmp);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int by_use(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return (x->used > y->used) - (x->used < y->used);
}

void blobcache_evict(struct blobcache *bc, const char *keep)
{
	struct entry *v = NULL;
	size_t n = 0, cap = 0, i;
	uint64_t total = 0, added;
	struct stat st;
	int ret;

	if (!bc->max_bytes)
		return;
	if (lstat(keep, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		tree_bytes = 0;
		nftw(keep, add_size, 16, FTW_PHYS);
		added = tree_bytes;
	} else {
		added = blobcache_cost(&st);
	}
	pthread_mutex_lock(&bc->evict_lock);
	/* Scanning walks every tree: do it only when the running estimate says
	 * the bound may be passed (other daemons' additions are seen then). */
	if (bc->scanned && bc->approx_total + added <= bc->max_bytes) {
		bc->approx_total += added;
		goto out;
	}
	if (scan(bc->dir, "blobs", &v, &n, &cap) || scan(bc->dir, "trees", &v, &n, &cap))
		goto out;
	for (i = 0; i < n; i++)
		total += v[i].size;
	bc->scanned = true;
	bc->approx_total = total;
	if (total <= bc->max_bytes)
		goto out;
	qsort(v, n, sizeof(*v), by_use);
	for (i = 0; i < n && total > bc->max_bytes; i++) {
		if (!strcmp(v[i].path, keep))
			continue;
		/* Counted off only once gone: what stays still takes space.
		 * Gone already (-ENOENT) is gone: another daemon sharing the
		 * store evicted it, and counting it would make us evict
		 * twice as much. */
		ret = v[i].tree ? evict_tree(bc, v[i].path)
				: (unlink(v[i].path) < 0 ? -errno : 0);
		if (ret && ret != -ENOENT)
			continue;
		log_debug("cache: evicted %s (%llu bytes)", v[i].path,
			  (unsigned long long)v[i].size);
		total -= v[i].size;
	}
	bc->approx_total = total;
out:
	pthread_mutex_unlock(&bc->evict_lock);
	free(v);
}

void blobcache_set_max(struct blobcache *bc, uint64_t max_bytes)
{
	bc->max_bytes = max_bytes;
}

void blobcache_touch(struct blobcache *bc, const char *digest)
{
	char path[4096];

	if (!bc->max_bytes || !digest_valid(digest))
		return;
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", bc->dir, digest_hex(digest));
	utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW);
	snprintf(path, sizeof(path), "%s/trees/sha256/%s", bc->dir, digest_hex(digest));
	utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW);
}
