/*
 * upload.c - files being written into the mount: the list of uploads, their
 * spool files and the snapshot a push reads.
 *
 * An upload is shared by reference by its handles (and, briefly, by a
 * truncate(2) that found it by path). c->up_lock guards the list and the
 * counts; up->lock the spool's bytes and state.
 *
 * Copy tools set a file's mode and times, or rename their temporary name
 * into place, by path after closing it: cp -p, install, Python's
 * shutil.copy2, rsync, helm pull -d. A registry has neither modes nor times
 * nor names of its own for a package, so once the last handle of a pushed
 * upload closes, the upload lingers, by name only, for UPLOAD_LINGER_S:
 * stat finds it (as a plain file, never in a listing), chmod, chown and
 * utimens succeed without changing anything, and a rename within its
 * directory moves the name. At most UPLOAD_LINGER_MAX linger at once.
 */
#include "fs/chartfs_i.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mono.h"
#include "model/push.h"

#define UPLOAD_LINGER_S 30
#define UPLOAD_LINGER_MAX 256

static void upload_free(struct upload *up)
{
	pthread_mutex_destroy(&up->lock);
	free(up->path);
	free(up);
}

/* Take the uploads that stopped lingering off the list (c->up_lock held)
 * into *dead, to be freed once the lock is dropped: those past their time,
 * and the oldest beyond UPLOAD_LINGER_MAX (the list is newest first). */
static void reap_locked(struct chartfs *c, struct upload **dead)
{
	struct upload **pp = &c->uploads, *up;
	time_t now = mono_s();
	size_t lingering = 0;

	while ((up = *pp)) {
		if (up->closed && up->refs == 0 &&
		    (up->expires <= now || ++lingering > UPLOAD_LINGER_MAX)) {
			*pp = up->next;
			up->next = *dead;
			*dead = up;
		} else {
			pp = &up->next;
		}
	}
}

static void free_dead(struct upload *dead)
{
	struct upload *next;

	for (; dead; dead = next) {
		next = dead->next;
		upload_free(dead);
	}
}

struct upload *chartfs_upload_find(struct chartfs *c, const char *path)
{
	struct upload *up, *dead = NULL;

	pthread_mutex_lock(&c->up_lock);
	reap_locked(c, &dead);
	for (up = c->uploads; up; up = up->next)
		if (!strcmp(up->path, path))
			break;
	if (up)
		up->refs++;
	pthread_mutex_unlock(&c->up_lock);
	free_dead(dead);
	return up;
}

/* Take up off the list of uploads (lock held); no-op when off it already. */
void chartfs_upload_unlist_locked(struct chartfs *c, struct upload *up)
{
	struct upload **pp;

	for (pp = &c->uploads; *pp; pp = &(*pp)->next)
		if (*pp == up) {
			*pp = up->next;
			break;
		}
}

void chartfs_upload_put(struct chartfs *c, struct upload *up)
{
	bool linger;
	struct stat st;

	pthread_mutex_lock(&c->up_lock);
	/* A lingering upload is freed by reap_locked, not by its finders. */
	if (--up->refs > 0 || up->closed) {
		pthread_mutex_unlock(&c->up_lock);
		return;
	}
	/* Pushed, and nothing written since: the tools' chmod, utimens or
	 * rename that follow this close are about a published package. */
	linger = !up->dirty && !up->push_err && !up->write_err && fstat(up->fd, &st) == 0;
	if (linger) {
		up->closed = true;
		up->expires = mono_s() + UPLOAD_LINGER_S;
		up->size = st.st_size;
		up->mtime = st.st_mtime;
	} else {
		chartfs_upload_unlist_locked(c, up);
	}
	pthread_mutex_unlock(&c->up_lock);
	if (up->refused_empty)
		log_warn("fs: %s: closed empty: nothing published", up->path);
	close(up->fd);
	up->fd = -1;
	/* Pushes work on snapshots: the spool is always ours to remove. */
	unlink(up->spool);
	if (!linger)
		upload_free(up);
}

int chartfs_upload_rename(struct chartfs *c, struct upload *up, const char *to)
{
	char *s = strdup(to), *old;

	if (!s)
		return -ENOMEM;
	/* up->lock too: a push reads the name (its kind, its log lines). */
	pthread_mutex_lock(&up->lock);
	pthread_mutex_lock(&c->up_lock);
	old = up->path;
	up->path = s;
	pthread_mutex_unlock(&c->up_lock);
	pthread_mutex_unlock(&up->lock);
	free(old);
	return 0;
}

void chartfs_upload_drop(struct chartfs *c, struct upload *up)
{
	pthread_mutex_lock(&c->up_lock);
	up->expires = 0;
	pthread_mutex_unlock(&c->up_lock);
	chartfs_upload_put(c, up);
}

struct handle *chartfs_handle_new(struct chartfs *c, int fd, struct upload *up)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->fd = fd;
	h->up = up;
	pthread_mutex_lock(&c->up_lock);
	h->next = c->handles;
	if (h->next)
		h->next->prev = h;
	c->handles = h;
	pthread_mutex_unlock(&c->up_lock);
	return h;
}

void chartfs_handle_free(struct chartfs *c, struct handle *h)
{
	pthread_mutex_lock(&c->up_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		c->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&c->up_lock);
	if (h->up)
		chartfs_upload_put(c, h->up);
	else
		close(h->fd);
	free(h);
}

void chartfs_upload_free_all(struct chartfs *c)
{
	struct upload *up, *next;
	struct handle *h, *hnext;

	/* An upload's fd is closed with its upload below. */
	for (h = c->handles; h; h = hnext) {
		hnext = h->next;
		if (!h->up)
			close(h->fd);
		free(h);
	}
	c->handles = NULL;

	for (up = c->uploads; up; up = next) {
		next = up->next;
		if (up->fd >= 0) {
			close(up->fd);
			unlink(up->spool);
		}
		upload_free(up);
	}
	c->uploads = NULL;
}

/* A new upload of path into dir, listed, with one reference (*out). */
int chartfs_upload_new(struct chartfs *c, const char *path, struct model *m,
		       struct ns_node *dir, struct upload **out)
{
	struct upload *up = calloc(1, sizeof(*up)), *dead = NULL;
	size_t len = strlen(path);
	int ret;

	if (!up || !(up->path = strdup(path))) {
		ret = -ENOMEM;
		goto fail;
	}
	/* Spool to the cache directory, not memory: charts can be large and
	 * the bytes become the cached blob once pushed. */
	up->fd = blobcache_spool(c->bc, up->spool, sizeof(up->spool));
	if (up->fd < 0) {
		ret = up->fd;
		log_warn("fs: %s: cannot make a spool file in the cache %s: %s", path,
			 blobcache_dir(c->bc), strerror(-ret));
		goto fail;
	}
	up->model = m;
	up->dir = dir;
	up->max = len > 5 && !strcmp(path + len - 5, ".prov") ? PUSH_PROV_MAX
							      : PUSH_PACKAGE_MAX;
	up->refs = 1;
	/* Even an empty file is a publish attempt: it must fail at close. */
	up->dirty = true;
	pthread_mutex_init(&up->lock, NULL);
	pthread_mutex_lock(&c->up_lock);
	up->next = c->uploads;
	c->uploads = up;
	reap_locked(c, &dead);
	pthread_mutex_unlock(&c->up_lock);
	free_dead(dead);
	*out = up;
	return 0;
fail:
	if (up)
		free(up->path);
	free(up);
	return ret;
}

/* Copy the spool (up->lock held) into a new temp file at path: what is
 * pushed, and kept as the cached blob, must not change under the push (a
 * write or truncate meanwhile, through another handle) nor after it. */
int chartfs_upload_snapshot(struct chartfs *c, struct upload *up, char *path, size_t len)
{
	char buf[65536];
	off_t in = 0, out = 0;
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	if (fstat(up->fd, &st) < 0)
		return -errno;
	fd = blobcache_spool(c->bc, path, len);
	if (fd < 0)
		return fd;
	while (in < st.st_size) {
		n = copy_file_range(up->fd, &in, fd, &out, (size_t)(st.st_size - in), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS ||
			      errno == EINVAL)) {
			/* No in-kernel copy here: by hand. */
			n = pread(up->fd, buf, sizeof(buf), in);
			if (n > 0 && pwrite(fd, buf, (size_t)n, out) != n)
				n = -1;
			if (n > 0) {
				in += n;
				out += n;
			}
		}
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			log_warn("fs: %s: cannot copy the spool for its push: %s",
				 up->path, strerror(-ret));
			close(fd);
			unlink(path);
			return ret;
		}
	}
	return fd;
}
