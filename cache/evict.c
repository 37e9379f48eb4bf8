/*
 * evict.c - keep the store under -o cache_max: least recently used first.
 *
 * Recency is the entry's mtime, which blobcache_touch() moves to now when a
 * mount starts using a blob or tree; stores shared by several daemons agree
 * on it without any lock. Removing is safe for readers: a file already open
 * stays readable, and a mount that finds a tree gone fetches it again. What
 * was just made (keep) is never removed, so a chart larger than the bound is
 * still served.
 */
#include "cache/blobcache_i.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/log.h"

struct entry {
	char path[4096];
	uint64_t size;
	time_t used;
	bool tree;
};

static _Thread_local uint64_t tree_bytes;

static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)flag;
	(void)ftw;
	tree_bytes += (uint64_t)st->st_blocks * 512;
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
		if ((size_t)snprintf(e->path, sizeof(e->path), "%s/%s", path,
				     de->d_name) >= sizeof(e->path))
			continue;
		(*n)++;
		e->used = st.st_mtime;
		e->tree = S_ISDIR(st.st_mode);
		if (e->tree) {
			tree_bytes = 0;
			nftw(e->path, add_size, 16, FTW_PHYS);
			e->size = tree_bytes;
		} else {
			e->size = (uint64_t)st.st_blocks * 512;
		}
	}
	closedir(d);
	return 0;
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
	uint64_t total = 0;

	struct stat st;
	uint64_t added;

	if (!bc->max_bytes)
		return;
	if (lstat(keep, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		tree_bytes = 0;
		nftw(keep, add_size, 16, FTW_PHYS);
		added = tree_bytes;
	} else {
		added = (uint64_t)st.st_blocks * 512;
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
		if (v[i].tree)
			blobcache_rm_tree(v[i].path);
		else if (unlink(v[i].path) < 0)
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
