/*
 * blobcache.c - blobs by digest and charts unpacked from them.
 *
 * Verification happens once, when bytes enter the store: a blob is hashed as
 * it is committed, and a tree is only ever made from a committed blob. On
 * later opens only the size is checked against the descriptor (a full re-hash
 * per open would cost more than the download it saves); a blob found with the
 * wrong size is removed and fetched again.
 */
#include "cache/blobcache.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/unpack.h"
#include "common/digest.h"
#include "common/log.h"

/* Temp files older than this are leftovers of a killed daemon. */
#define STALE_TMP_SECONDS (24 * 3600)

/* One fetch or unpack in progress; followers wait for the leader. */
struct flight {
	struct flight *next;
	char key[80];
	int refs;
	bool done;
	int ret;
};

struct blobcache {
	char *dir;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct flight *flights;
};

static int mkdir_one(const char *dir, const char *sub)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s%s", dir, sub);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 ? 0 : 0;
	unlink(path);
	return 0;
}

/* Remove a directory tree without following symlinks. */
static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int clean_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (ftw->level == 1 && st->st_mtime < time(NULL) - STALE_TMP_SECONDS) {
		if (flag == FTW_D || flag == FTW_DP)
			rm_tree(path);
		else
			unlink(path);
	}
	return 0;
}

int blobcache_new(const char *dir, struct blobcache **out)
{
	static const char *const subs[] = {"",	     "/blobs",	      "/blobs/sha256",
					   "/trees", "/trees/sha256", "/tmp"};
	struct blobcache *bc;
	char tmp[4096];
	size_t i;
	int ret;

	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		ret = mkdir_one(dir, subs[i]);
		if (ret) {
			log_err("cache: cannot create %s%s: %s", dir, subs[i],
				strerror(-ret));
			return ret;
		}
	}
	bc = calloc(1, sizeof(*bc));
	if (!bc || !(bc->dir = strdup(dir))) {
		free(bc);
		return -ENOMEM;
	}
	pthread_mutex_init(&bc->lock, NULL);
	pthread_cond_init(&bc->cond, NULL);
	/* Other daemons may share this cache: only old leftovers go. */
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	nftw(tmp, clean_entry, 16, FTW_PHYS);
	*out = bc;
	return 0;
}

void blobcache_free(struct blobcache *bc)
{
	if (!bc)
		return;
	pthread_mutex_destroy(&bc->lock);
	pthread_cond_destroy(&bc->cond);
	free(bc->dir);
	free(bc);
}

const char *blobcache_dir(const struct blobcache *bc)
{
	return bc->dir;
}

/* Join a flight for key: true if the caller leads (must call flight_end),
 * false if it waited for another leader whose result is in *ret. */
static bool flight_begin(struct blobcache *bc, const char *key, struct flight **fp,
			 int *ret)
{
	struct flight *f;

	pthread_mutex_lock(&bc->lock);
	for (f = bc->flights; f; f = f->next)
		if (!strcmp(f->key, key))
			break;
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f) {
			pthread_mutex_unlock(&bc->lock);
			*ret = -ENOMEM;
			*fp = NULL;
			return false;
		}
		snprintf(f->key, sizeof(f->key), "%s", key);
		f->refs = 1;
		f->next = bc->flights;
		bc->flights = f;
		pthread_mutex_unlock(&bc->lock);
		*fp = f;
		return true;
	}
	f->refs++;
	while (!f->done)
		pthread_cond_wait(&bc->cond, &bc->lock);
	*ret = f->ret;
	if (--f->refs == 0)
		free(f);
	pthread_mutex_unlock(&bc->lock);
	*fp = NULL;
	return false;
}

static void flight_end(struct blobcache *bc, struct flight *f, int ret)
{
	struct flight **pp;

	pthread_mutex_lock(&bc->lock);
	for (pp = &bc->flights; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	f->done = true;
	f->ret = ret;
	pthread_cond_broadcast(&bc->cond);
	if (--f->refs == 0)
		free(f);
	pthread_mutex_unlock(&bc->lock);
}

static int blob_path(struct blobcache *bc, const char *digest, char *path, size_t len)
{
	if (!digest_valid(digest))
		return -EINVAL;
	if ((size_t)snprintf(path, len, "%s/blobs/sha256/%s", bc->dir,
			     digest_hex(digest)) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* 0 if a stored blob is present (with the expected size when known). */
static int blob_present(const char *path, int64_t size)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (size >= 0 && st.st_size != size)) {
		log_warn(
		    "cache: %s is damaged (size %lld, expected %lld): fetching again",
		    path, (long long)st.st_size, (long long)size);
		unlink(path);
		return -ENOENT;
	}
	return 0;
}

/* Verify the temp file holds digest (and size), then rename it into place. */
static int commit(const char *tmp, int fd, const char *digest, int64_t size,
		  const char *path)
{
	char got[DIGEST_STR_MAX];
	long long len;
	int ret = digest_fd(fd, got, &len);

	if (ret)
		return ret;
	if (strcmp(got, digest) != 0) {
		log_warn("cache: blob %s: content does not match its digest (got %s)",
			 digest, got);
		return -EIO;
	}
	if (size >= 0 && len != size) {
		log_warn("cache: blob %s: %lld bytes, the descriptor says %lld", digest,
			 len, (long long)size);
		return -EIO;
	}
	if (fchmod(fd, 0444) < 0 || rename(tmp, path) < 0)
		return -errno;
	return 0;
}

static int tmp_file(struct blobcache *bc, const char *prefix, char *path, size_t len)
{
	int fd;

	if ((size_t)snprintf(path, len, "%s/tmp/%s-XXXXXX", bc->dir, prefix) >= len)
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int blobcache_get(struct blobcache *bc, const char *digest, int64_t size,
		  blobcache_fetch_fn fetch, void *arg, char *path, size_t pathlen)
{
	char key[80], tmp[4096];
	struct flight *f;
	int ret, fd;

	ret = blob_path(bc, digest, path, pathlen);
	if (ret)
		return ret;
	if (blob_present(path, size) == 0)
		return 0;
	if (!fetch)
		return -ENOENT;
	snprintf(key, sizeof(key), "b:%s", digest_hex(digest));
	if (!flight_begin(bc, key, &f, &ret))
		return ret ? ret : blob_present(path, size);
	/* Another daemon sharing the cache may have stored it meanwhile. */
	if (blob_present(path, size) == 0) {
		ret = 0;
		goto out;
	}
	fd = tmp_file(bc, "blob", tmp, sizeof(tmp));
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	ret = fetch(arg, fd);
	if (!ret)
		ret = commit(tmp, fd, digest, size, path);
	if (ret)
		unlink(tmp);
	close(fd);
out:
	flight_end(bc, f, ret);
	return ret;
}

int blobcache_put(struct blobcache *bc, const char *digest, const void *data, size_t len)
{
	char path[4096], tmp[4096];
	const char *p = data;
	size_t left = len;
	int ret, fd;

	ret = blob_path(bc, digest, path, sizeof(path));
	if (ret)
		return ret;
	if (blob_present(path, (int64_t)len) == 0)
		return 0;
	fd = tmp_file(bc, "put", tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	ret = commit(tmp, fd, digest, (int64_t)len, path);
out:
	if (ret)
		unlink(tmp);
	close(fd);
	return ret;
}

int blobcache_tree(struct blobcache *bc, const char *digest, char *path, size_t pathlen)
{
	char blob[4096], tmp[4096], key[80];
	struct flight *f;
	struct stat st;
	int ret, fd = -1, dirfd = -1;

	if (!digest_valid(digest))
		return -EINVAL;
	if ((size_t)snprintf(path, pathlen, "%s/trees/sha256/%s", bc->dir,
			     digest_hex(digest)) >= pathlen)
		return -ENAMETOOLONG;
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	snprintf(key, sizeof(key), "t:%s", digest_hex(digest));
	if (!flight_begin(bc, key, &f, &ret))
		return ret;
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		ret = 0;
		goto out;
	}
	ret = blob_path(bc, digest, blob, sizeof(blob));
	if (ret)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s/tmp/tree-XXXXXX", bc->dir);
	if (!mkdtemp(tmp)) {
		ret = -errno;
		goto out;
	}
	fd = open(blob, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	dirfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || dirfd < 0)
		ret = -errno;
	else
		ret = chart_unpack_fd(fd, dirfd, digest);
	/* A tree appears whole or not at all: rename is atomic. */
	if (!ret && rename(tmp, path) < 0 && errno != EEXIST && errno != ENOTEMPTY)
		ret = -errno;
	rm_tree(tmp);
out:
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	flight_end(bc, f, ret);
	return ret;
}

int blobcache_spool(struct blobcache *bc, char *path, size_t pathlen)
{
	return tmp_file(bc, "spool", path, pathlen);
}

int blobcache_adopt(struct blobcache *bc, const char *digest, const char *tmppath)
{
	char path[4096];
	int ret, fd;

	ret = blob_path(bc, digest, path, sizeof(path));
	if (ret)
		return ret;
	if (blob_present(path, -1) == 0)
		return 0;
	fd = open(tmppath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	ret = commit(tmppath, fd, digest, -1, path);
	close(fd);
	return ret;
}
