/*
 * blobcache.c - blobs by digest and charts unpacked from them.
 *
 * Verification happens when bytes enter the store: a blob is hashed before
 * it is renamed into place, and a tree is only made from a blob that hashes
 * right at that moment (it is read whole for the unpack anyway). On later
 * opens only the size is checked against the descriptor: a full re-hash per
 * open would cost as much as the download it saves. A blob found with
 * another size than the descriptor's is hashed: altered bytes (or not a
 * regular file) are removed and fetched again, but verified bytes stay and
 * only that request fails, since the size is a registry's word and the blob
 * may serve other registries. One with the right size but altered bytes is
 * caught when a tree is made from it, removed, and fetched again on the
 * next get.
 */
#include "cache/blobcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/blobcache_i.h"
#include "cache/unpack.h"
#include "common/digest.h"
#include "common/file.h"
#include "common/log.h"

/* Temp entries of the kinds no daemon locks (see clean_tmp) older than this
 * are leftovers of a killed daemon; younger ones may be another daemon's. */
#define STALE_TMP_SECONDS (24 * 3600)
/* Fresh temp names tried when daemons starting meanwhile take them away. */
#define TMP_TRIES 3
#define PATH_LEN 4096

/* One fetch or unpack in progress; followers wait for the leader. */
struct flight {
	struct flight *next;
	char key[80];
	pthread_cond_t done_cond;
	int refs;
	bool done;
	int ret;
};

/* Temp entries a daemon holds a lock on (flock) for as long as it has them
 * open (tmp_file, tmp_dir; and the private GnuPG home of -o keyring,
 * sign/prov.c): one that no one holds is a leftover of a killed daemon,
 * whatever its age, since daemons sharing the cache dir hold theirs. Other
 * entries (meta, evict, pending provenance) keep the age rule. */
static bool locked_kind(const char *name)
{
	static const char *const kinds[] = {"blob-", "put-", "spool-", "tree-", "gnupg-"};
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strncmp(name, kinds[i], strlen(kinds[i])))
			return true;
	return false;
}

enum tmp_state { TMP_UNKNOWN, TMP_HELD, TMP_FREE };

/* Does a daemon hold entry name (in tmp/, dfd), of a locked kind? When no
 * one does (TMP_FREE), *fd keeps the lock while the caller removes it.
 * TMP_UNKNOWN: it cannot be told (no flock there): the age rule decides. */
static enum tmp_state tmp_holder(int dfd, const char *name, int *fd)
{
	*fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (*fd < 0)
		return TMP_UNKNOWN;
	if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
		return TMP_FREE;
	close(*fd);
	*fd = -1;
	return errno == EWOULDBLOCK ? TMP_HELD : TMP_UNKNOWN;
}

/* Remove the leftovers in tmp/: entries of the locked kinds no running
 * daemon holds, and old ones no lock tells about (another daemon's fresh
 * ones stay). */
static void clean_tmp(const char *dir)
{
	char path[PATH_LEN];
	time_t old = time(NULL) - STALE_TMP_SECONDS;
	enum tmp_state state;
	struct dirent *de;
	struct stat st;
	size_t removed = 0;
	int fd;
	DIR *d;

	snprintf(path, sizeof(path), "%s/tmp", dir);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		fd = -1;
		state = locked_kind(de->d_name) && !S_ISLNK(st.st_mode)
			    ? tmp_holder(dirfd(d), de->d_name, &fd)
			    : TMP_UNKNOWN;
		if (state == TMP_HELD || (state == TMP_UNKNOWN && st.st_mtime >= old))
			continue;
		snprintf(path, sizeof(path), "%s/tmp/%s", dir, de->d_name);
		if (S_ISDIR(st.st_mode) ? blobcache_rm_tree(path) == 0
					: unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	if (removed)
		log_info("cache: removed %zu leftovers of stopped daemons from %s/tmp",
			 removed, dir);
}

/* Lock a fresh temp entry for as long as fd is open (see clean_tmp).
 * -ENOENT when a daemon starting meanwhile removed it before the lock was
 * taken: the caller makes another. Without flock (some network
 * filesystems) the age rule alone applies. */
static int hold_tmp(int fd)
{
	struct stat st;

	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return 0;
	if (fstat(fd, &st) < 0)
		return -errno;
	return st.st_nlink == 0 ? -ENOENT : 0;
}

/* ---- the store ----------------------------------------------------------- */

int blobcache_new(const char *dir, struct blobcache **out)
{
	static const char *const subs[] = {"/blobs", "/blobs/sha256", "/trees",
					   "/trees/sha256", "/tmp"};
	struct blobcache *bc = NULL;
	char path[PATH_LEN];
	struct stat st;
	size_t i;
	int ret;

	/* The root may be a symlink the user chose; what is below is ours. */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		goto fail;
	}
	bc = calloc(1, sizeof(*bc));
	if (!bc) {
		ret = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&bc->lock, NULL);
	pthread_mutex_init(&bc->evict_lock, NULL);
	/* Absolute, so that returned paths stay valid whatever the cwd. */
	bc->dir = realpath(dir, NULL);
	if (!bc->dir) {
		ret = -errno;
		goto fail;
	}
	if (strlen(bc->dir) > BLOBCACHE_MAX_DIR) {
		ret = -ENAMETOOLONG;
		goto fail;
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		ret = file_pathf(path, sizeof(path), "%s%s", bc->dir, subs[i]);
		if (ret)
			goto fail;
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			ret = -errno;
			goto fail;
		}
		if (lstat(path, &st) < 0) {
			ret = -errno;
			goto fail;
		}
		if (!S_ISDIR(st.st_mode)) {
			ret = -ENOTDIR;
			goto fail;
		}
	}
	clean_tmp(bc->dir);
	*out = bc;
	return 0;
fail:
	log_err("cache: cannot use %s: %s", dir, strerror(-ret));
	if (bc) {
		free(bc->dir);
		pthread_mutex_destroy(&bc->lock);
		pthread_mutex_destroy(&bc->evict_lock);
		free(bc);
	}
	return ret;
}

void blobcache_free(struct blobcache *bc)
{
	if (!bc)
		return;
	pthread_mutex_destroy(&bc->lock);
	free(bc->dir);
	pthread_mutex_destroy(&bc->evict_lock);
	free(bc);
}

const char *blobcache_dir(const struct blobcache *bc)
{
	return bc->dir;
}

/* ---- single flight ------------------------------------------------------ */

static void flight_put(struct flight *f)
{
	if (--f->refs == 0) {
		pthread_cond_destroy(&f->done_cond);
		free(f);
	}
}

/* Join the flight for key: true if the caller leads (and must call
 * flight_end), false if it waited for another leader (its result in *ret).
 * Only the table lock is shared; waiting is per key. */
static bool flight_begin(struct blobcache *bc, const char *key, struct flight **fp,
			 int *ret)
{
	struct flight *f;

	*fp = NULL;
	pthread_mutex_lock(&bc->lock);
	for (f = bc->flights; f; f = f->next)
		if (!strcmp(f->key, key))
			break;
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f) {
			pthread_mutex_unlock(&bc->lock);
			*ret = -ENOMEM;
			return false;
		}
		snprintf(f->key, sizeof(f->key), "%s", key);
		pthread_cond_init(&f->done_cond, NULL);
		f->refs = 1;
		f->next = bc->flights;
		bc->flights = f;
		pthread_mutex_unlock(&bc->lock);
		*fp = f;
		return true;
	}
	f->refs++;
	while (!f->done)
		pthread_cond_wait(&f->done_cond, &bc->lock);
	*ret = f->ret;
	flight_put(f);
	pthread_mutex_unlock(&bc->lock);
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
	pthread_cond_broadcast(&f->done_cond);
	flight_put(f);
	pthread_mutex_unlock(&bc->lock);
}

/* ---- blobs --------------------------------------------------------------- */

/* The one log line of a failure of the store itself, as opposed to what it
 * was given: the cache directory and the reason (a full disk, a quota). */
static int store_failed(const struct blobcache *bc, const char *what, const char *digest,
			int err)
{
	log_warn("cache: cannot %s %s in %s: %s", what, digest, bc->dir, strerror(-err));
	return err;
}

static int blob_path(struct blobcache *bc, const char *digest, char *path, size_t len)
{
	if (!digest_valid(digest))
		return -EINVAL;
	return file_pathf(path, len, "%s/blobs/sha256/%s", bc->dir, digest_hex(digest));
}

/*
 * 0 if the blob is stored (with the expected size when known). Another
 * size is checked by hash: a damaged entry is removed so that the caller
 * fetches it again (-ENOENT); verified bytes are kept and this request fails
 * (-EIO): the size comes from a registry's descriptor, and a hostile one
 * must not make us delete a blob that other registries share.
 */
static int blob_present(const char *path, const char *digest, int64_t size)
{
	char got[DIGEST_STR_MAX] = "";
	struct stat st;
	int fd, ret;

	if (lstat(path, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && (size < 0 || st.st_size == size))
		return 0;
	if (S_ISREG(st.st_mode)) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return -errno;
		ret = digest_fd(fd, got, NULL);
		close(fd);
		if (ret)
			return ret;
		if (!strcmp(got, digest)) {
			log_warn("cache: blob %s: %lld bytes, the descriptor says %lld",
				 digest, (long long)st.st_size, (long long)size);
			return -EIO;
		}
	}
	log_warn("cache: %s is damaged (size %lld, expected %lld): removing it", path,
		 (long long)st.st_size, (long long)size);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return -ENOENT;
}

/* Rename tmp to path unless path exists: then another daemon stored the
 * same verified bytes first, and ours are discarded. */
static int store_file(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST) {
		unlink(tmp);
		return 0;
	}
	/* A filesystem without RENAME_NOREPLACE: replacing identical verified
	 * bytes atomically is just as good. */
	if ((errno == EINVAL || errno == ENOSYS) && rename(tmp, path) == 0)
		return 0;
	return -errno;
}

/* Verify the temp file holds digest (and size), then move it into place.
 * Every failure is logged. */
static int commit(struct blobcache *bc, const char *tmp, int fd, const char *digest,
		  int64_t size, const char *path)
{
	char got[DIGEST_STR_MAX];
	long long len;
	int ret = digest_fd(fd, got, &len);

	if (ret)
		return store_failed(bc, "read blob", digest, ret);
	if (size >= 0 && len != size) {
		log_warn("cache: blob %s: %lld bytes, the descriptor says %lld", digest,
			 len, (long long)size);
		return -EIO;
	}
	if (strcmp(got, digest) != 0) {
		log_warn("cache: blob %s: content does not match its digest (got %s)",
			 digest, got);
		return -EIO;
	}
	if (fchmod(fd, 0444) < 0)
		return store_failed(bc, "store blob", digest, -errno);
	ret = store_file(tmp, path);
	return ret ? store_failed(bc, "store blob", digest, ret) : 0;
}

/* A new temp file tmp/<prefix>-XXXXXX, locked while its fd is open. */
static int tmp_file(struct blobcache *bc, const char *prefix, char *path, size_t len)
{
	int fd, ret, tries;

	for (tries = 0; tries < TMP_TRIES; tries++) {
		ret = file_pathf(path, len, "%s/tmp/%s-XXXXXX", bc->dir, prefix);
		if (ret)
			return ret;
		fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0)
			return -errno;
		ret = hold_tmp(fd);
		if (!ret)
			return fd;
		close(fd);
		if (ret != -ENOENT) {
			unlink(path);
			return ret;
		}
	}
	return -EAGAIN;
}

/* A new temp directory tmp/<prefix>-XXXXXX, opened (*dfd) and locked while
 * *dfd is open. */
static int tmp_dir(struct blobcache *bc, const char *prefix, char *path, size_t len,
		   int *dfd)
{
	int ret, tries;

	for (tries = 0; tries < TMP_TRIES; tries++) {
		ret = file_pathf(path, len, "%s/tmp/%s-XXXXXX", bc->dir, prefix);
		if (ret)
			return ret;
		if (!mkdtemp(path))
			return -errno;
		*dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (*dfd < 0) {
			ret = -errno;
			rmdir(path);
			return ret;
		}
		ret = hold_tmp(*dfd);
		if (!ret)
			return 0;
		close(*dfd);
		*dfd = -1;
		if (ret != -ENOENT) {
			rmdir(path);
			return ret;
		}
	}
	return -EAGAIN;
}

/* The leader's part of blobcache_get: fetch into tmp/, verify, commit.
 * Every failure is logged once: the fetcher's (a write into fd that
 * failed included) by the fetcher, the rest here. */
static int lead_fetch(struct blobcache *bc, const char *digest, int64_t size,
		      blobcache_fetch_fn fetch, void *arg, const char *path)
{
	char tmp[PATH_LEN];
	int ret, fd;

	fd = tmp_file(bc, "blob", tmp, sizeof(tmp));
	if (fd < 0)
		return store_failed(bc, "store blob", digest, fd);
	ret = fetch(arg, fd);
	if (!ret)
		ret = commit(bc, tmp, fd, digest, size, path);
	if (ret)
		unlink(tmp);
	close(fd);
	return ret;
}

int blobcache_get(struct blobcache *bc, const char *digest, int64_t size,
		  blobcache_fetch_fn fetch, void *arg, char *path, size_t pathlen)
{
	struct flight *f;
	char key[80];
	int ret;

	ret = blob_path(bc, digest, path, pathlen);
	if (ret)
		return ret;
	ret = blob_present(path, digest, size);
	if (ret == 0) {
		if (fetch)
			atomic_fetch_add(&bc->hits, 1);
		return 0;
	}
	if (!fetch || ret != -ENOENT)
		return ret;
	atomic_fetch_add(&bc->misses, 1);
	snprintf(key, sizeof(key), "b:%s", digest_hex(digest));
	if (!flight_begin(bc, key, &f, &ret))
		return ret;
	/* A leader before us, or another daemon, may have stored it. */
	ret = blob_present(path, digest, size);
	if (ret == -ENOENT)
		ret = lead_fetch(bc, digest, size, fetch, arg, path);
	flight_end(bc, f, ret);
	if (!ret)
		blobcache_evict(bc, path);
	return ret;
}

void blobcache_stats(const struct blobcache *bc, uint64_t *hits, uint64_t *misses)
{
	*hits = atomic_load(&bc->hits);
	*misses = atomic_load(&bc->misses);
}

int blobcache_put(struct blobcache *bc, const char *digest, const void *data, size_t len)
{
	char path[PATH_LEN], tmp[PATH_LEN], got[DIGEST_STR_MAX];
	const char *p = data;
	size_t left = len;
	int ret, fd;

	ret = blob_path(bc, digest, path, sizeof(path));
	if (ret)
		return ret;
	ret = digest_buf(data, len, got);
	if (ret)
		return ret;
	if (strcmp(got, digest) != 0) {
		log_warn("cache: put %s: content does not match its digest", digest);
		return -EIO;
	}
	if (blob_present(path, digest, (int64_t)len) == 0)
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
	ret = commit(bc, tmp, fd, digest, (int64_t)len, path);
out:
	if (ret)
		unlink(tmp);
	close(fd);
	return ret;
}

int blobcache_spool(struct blobcache *bc, char *path, size_t pathlen)
{
	return tmp_file(bc, "spool", path, pathlen);
}

int blobcache_adopt(struct blobcache *bc, const char *digest, const char *tmppath)
{
	char path[PATH_LEN], prefix[PATH_LEN];
	size_t plen;
	int ret, fd;

	ret = blob_path(bc, digest, path, sizeof(path));
	if (ret)
		return ret;
	/* Only our own spools: never rename an arbitrary file into the store. */
	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s/tmp/", bc->dir);
	if (strncmp(tmppath, prefix, plen) != 0 || strchr(tmppath + plen, '/'))
		return -EINVAL;
	fd = open(tmppath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	ret = commit(bc, tmppath, fd, digest, -1, path);
	close(fd);
	return ret;
}

/* ---- trees --------------------------------------------------------------- */

/* The leader's part of blobcache_tree: verify the blob, unpack it into a
 * fresh directory in tmp/, rename that into place. Every failure but a
 * missing blob is logged once. */
static int make_tree(struct blobcache *bc, const char *digest, const char *path)
{
	char blob[PATH_LEN], tmp[PATH_LEN], got[DIGEST_STR_MAX];
	int ret, fd = -1, dfd = -1;
	bool made = false, logged = false;

	ret = blob_path(bc, digest, blob, sizeof(blob));
	if (ret)
		return ret;
	fd = open(blob, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		ret = -errno;
		if (ret != -ENOENT) /* not there: the caller's to say */
			store_failed(bc, "unpack chart", digest, ret);
		return ret;
	}
	ret = digest_fd(fd, got, NULL);
	if (ret)
		goto out;
	if (strcmp(got, digest) != 0) {
		log_warn("cache: %s is damaged (sha256 %s): removing it", blob, got);
		unlink(blob);
		ret = -EIO;
		logged = true;
		goto out;
	}
	ret = tmp_dir(bc, "tree", tmp, sizeof(tmp), &dfd);
	if (ret)
		goto out;
	made = true;
	ret = chart_unpack_fd(fd, dfd, digest);
	if (ret) {
		/* A refused chart is logged; the directory's failure (a
		 * full disk) is ours to report. */
		logged = ret == -EIO;
		goto out;
	}
	/* A tree appears whole or not at all. If one is there already,
	 * another daemon won the race with the same content: drop ours. */
	ret = rename(tmp, path) < 0 ? -errno : 0;
	/* Not a directory there (a stray file or symlink): not a tree of
	 * ours, so it goes (unlink never follows a symlink). */
	if (ret == -ENOTDIR && unlink(path) == 0)
		ret = rename(tmp, path) < 0 ? -errno : 0;
	if (ret) {
		ret = (ret == -EEXIST || ret == -ENOTEMPTY) ? 0 : ret;
		goto out;
	}
	made = false;
	/* Only now: a 0555 directory cannot be moved to another parent. */
	if (fchmod(dfd, 0555) < 0)
		ret = -errno;
out:
	if (ret && !logged)
		store_failed(bc, "unpack chart", digest, ret);
	if (made)
		blobcache_rm_tree(tmp);
	if (dfd >= 0)
		close(dfd);
	close(fd);
	return ret;
}

static bool tree_present(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int blobcache_tree(struct blobcache *bc, const char *digest, char *path, size_t pathlen)
{
	struct flight *f;
	char key[80];
	int ret;

	if (!digest_valid(digest))
		return -EINVAL;
	ret =
	    file_pathf(path, pathlen, "%s/trees/sha256/%s", bc->dir, digest_hex(digest));
	if (ret)
		return ret;
	if (tree_present(path))
		return 0;
	snprintf(key, sizeof(key), "t:%s", digest_hex(digest));
	if (!flight_begin(bc, key, &f, &ret))
		return ret;
	ret = tree_present(path) ? 0 : make_tree(bc, digest, path);
	flight_end(bc, f, ret);
	if (!ret)
		blobcache_evict(bc, path);
	return ret;
}
