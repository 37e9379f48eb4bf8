/*
 * unpack_sink.c - where the walker's files go: a directory (written with
 * openat, never archive_write_disk, which changes the process umask in
 * libarchive 3.6.2) or memory (only Chart.yaml is kept).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cache/unpack.h"
#include "cache/blobcache.h"
#include "cache/unpack_i.h"
#include "common/file.h"
#include "common/log.h"
#include "common/strv.h"

#define MAX_PATH CHART_MAX_PATH

/* ---- writing into a directory ----------------------------------------- */

struct dir_sink {
	struct chart_sink s;
	int root; /* the caller's directory */
	/* The last parent directory opened: tar entries come grouped by
	 * directory, so this saves walking the path again for each file. */
	int parent;
	char parent_path[MAX_PATH + 1];
	int fd; /* the file being written, or -1 */
	/* Directories we created, made 0555 at the end: at most
	 * CHART_MAX_DIRS, as the walker counts them before each open. */
	struct strv dirs;
};

static int record_dir(struct dir_sink *d, const char *path, size_t len)
{
	return strv_push_owned(&d->dirs, strndup(path, len));
}

/*
 * Open directory path below the root one component at a time with
 * O_NOFOLLOW, so that no symlink is ever traversed (none can exist: we made
 * every entry, but the cache directory is not ours alone). Missing
 * components are made (0700 while we write: we alone use them).
 * Returns an fd or -errno; -ENOTDIR when a component is not a directory.
 */
static int open_dir(struct dir_sink *d, const char *path)
{
	char buf[MAX_PATH + 1], *comp, *save = NULL;
	int cur = d->root, next, ret;

	ret = file_pathf(buf, sizeof(buf), "%s", path);
	if (ret)
		return ret;
	for (comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		if (mkdirat(cur, comp, 0700) == 0) {
			ret = record_dir(d, path, (size_t)(comp - buf) + strlen(comp));
			if (ret)
				goto fail;
		} else if (errno != EEXIST) {
			ret = -errno;
			goto fail;
		}
		next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			ret = errno == ELOOP ? -ENOTDIR : -errno;
			goto fail;
		}
		if (cur != d->root)
			close(cur);
		cur = next;
	}
	return cur == d->root ? dup(cur) : cur;
fail:
	if (cur != d->root)
		close(cur);
	return ret;
}

static int dir_open(struct chart_sink *s, const char *path)
{
	struct dir_sink *d = (struct dir_sink *)s;
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	size_t plen = slash ? (size_t)(slash - path) : 0;
	int pfd = d->root;

	if (plen) {
		if (d->parent < 0 || strlen(d->parent_path) != plen ||
		    memcmp(d->parent_path, path, plen) != 0) {
			if (d->parent >= 0)
				close(d->parent);
			d->parent = -1;
			memcpy(d->parent_path, path, plen);
			d->parent_path[plen] = '\0';
			d->parent = open_dir(d, d->parent_path);
			if (d->parent < 0) {
				int ret = d->parent;

				d->parent = -1;
				return ret;
			}
		}
		pfd = d->parent;
	}
	d->fd =
	    openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	return d->fd < 0 ? -errno : 0;
}

static int dir_write(struct chart_sink *s, const void *buf, size_t len)
{
	struct dir_sink *d = (struct dir_sink *)s;
	const char *p = buf;

	while (len) {
		ssize_t n = write(d->fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int dir_close(struct chart_sink *s)
{
	struct dir_sink *d = (struct dir_sink *)s;
	int ret = 0;

	if (d->fd < 0)
		return 0;
	/* Served read-only whatever the archive said: no setuid, no +w. */
	if (fchmod(d->fd, 0444) < 0)
		ret = -errno;
	if (close(d->fd) < 0 && !ret)
		ret = -errno;
	d->fd = -1;
	return ret;
}

/* Whether path is below the directory dir (of length len). */
static bool below(const char *path, const char *dir, size_t len)
{
	return !strncmp(path, dir, len) && path[len] == '/';
}

/*
 * Directories become 0555 only now that every file is in (the root is the
 * caller's: it must stay writable to be renamed into place). In depth-first
 * order each directory's parent is still open on a stack (every directory
 * below the root is ours, so each parent was recorded): one openat per
 * directory, never a walk from the root, and at most CHART_MAX_DEPTH fds.
 */
static int dir_finish(struct chart_sink *s)
{
	struct dir_sink *d = (struct dir_sink *)s;
	int fds[CHART_MAX_DEPTH];
	size_t lens[CHART_MAX_DEPTH], top = 0, i;
	const char *paths[CHART_MAX_DEPTH];
	int ret = 0;

	if (d->dirs.n) /* dirs is NULL then, which qsort may not take */
		qsort(d->dirs.v, d->dirs.n, sizeof(*d->dirs.v), chart_path_cmp);
	for (i = 0; i < d->dirs.n; i++) {
		const char *p = d->dirs.v[i], *name;
		int fd;

		while (top && !below(p, paths[top - 1], lens[top - 1]))
			close(fds[--top]);
		name = top ? p + lens[top - 1] + 1 : p;
		/* Its parent was not recorded (cannot happen: every directory
		 * below the root is ours), or deeper than the walker allows. */
		if (strchr(name, '/') || top == CHART_MAX_DEPTH) {
			ret = -EIO;
			goto out;
		}
		fd = openat(top ? fds[top - 1] : d->root, name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			ret = -errno;
			goto out;
		}
		if (fchmod(fd, 0555) < 0) {
			ret = -errno;
			close(fd);
			goto out;
		}
		fds[top] = fd;
		paths[top] = p;
		lens[top++] = strlen(p);
	}
out:
	while (top)
		close(fds[--top]);
	return ret;
}

/* The tar reader stops at the end-of-archive marker, so nothing checks the
 * gzip trailer. Decompress the whole stream once more (raw format) and
 * compare its CRC-32 and length with the trailer, the last 8 bytes of the
 * file: a corrupt stream, or bytes after the gzip member (helm writes one
 * member), is refused rather than served. The read is bounded, so data
 * hidden after the tar end cannot be made into a bomb. */
static int check_gzip_stream(struct archive *raw, const unsigned char trailer[8],
			     const char *what)
{
	const size_t bufsz = 65536;
	struct archive_entry *e;
	unsigned long long total = 0;
	uLong crc = crc32(0L, Z_NULL, 0);
	uint32_t want_crc, want_len;
	la_ssize_t n;
	unsigned char *b = malloc(bufsz);

	if (!b)
		return -ENOMEM;
	if (archive_read_next_header(raw, &e) != ARCHIVE_OK) {
		free(b);
		return chart_refuse(what, "unreadable gzip stream");
	}
	while ((n = archive_read_data(raw, b, bufsz)) > 0) {
		crc = crc32(crc, b, (uInt)n);
		total += (unsigned long long)n;
		if (total > (unsigned long long)CHART_MAX_TOTAL + (1u << 20)) {
			free(b);
			return chart_refuse(what, "data after the tar archive");
		}
	}
	free(b);
	if (n < 0) {
		const char *err = archive_error_string(raw);
		return chart_refuse(what, err ? err : "corrupt gzip stream");
	}
	want_crc = (uint32_t)trailer[0] | (uint32_t)trailer[1] << 8 |
		   (uint32_t)trailer[2] << 16 | (uint32_t)trailer[3] << 24;
	want_len = (uint32_t)trailer[4] | (uint32_t)trailer[5] << 8 |
		   (uint32_t)trailer[6] << 16 | (uint32_t)trailer[7] << 24;
	if ((uint32_t)crc != want_crc || (uint32_t)total != want_len)
		return chart_refuse(
		    what, "gzip CRC or length mismatch, or data after the stream");
	return 0;
}

/* A reader of gzip and one format: tar for the package, raw for the gzip
 * stream whose trailer is checked. Only what helm reads: never *_all,
 * which would open zip, rar, 7z, and every other parser libarchive has. */
static struct archive *reader_new(int (*format)(struct archive *))
{
	struct archive *a = archive_read_new();

	if (a && (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
		  format(a) != ARCHIVE_OK)) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

int chart_unpack_fd(int fd, int dirfd, const char *what)
{
	struct dir_sink d = {
	    .s = {dir_open, dir_write, dir_close, dir_finish},
	    .root = dirfd,
	    .parent = -1,
	    .fd = -1,
	};
	struct archive *a = reader_new(archive_read_support_format_tar);
	int ret;

	if (!a)
		return -ENOMEM;
	if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
		const char *err = archive_error_string(a);

		ret = chart_refuse(what, err ? err : "unreadable archive");
		goto out;
	}
	ret = chart_walk(a, &d.s, what, NULL);
	if (!ret) {
		struct archive *raw = reader_new(archive_read_support_format_raw);

		unsigned char trailer[8];
		struct stat st;

		if (!raw)
			ret = -ENOMEM;
		else if (fstat(fd, &st) < 0 || st.st_size < 18 ||
			 pread(fd, trailer, 8, st.st_size - 8) != 8 ||
			 lseek(fd, 0, SEEK_SET) < 0 ||
			 archive_read_open_fd(raw, fd, 65536) != ARCHIVE_OK)
			ret = chart_refuse(what, "unreadable gzip stream");
		else
			ret = check_gzip_stream(raw, trailer, what);
		archive_read_free(raw);
	}
out:
	if (d.fd >= 0)
		close(d.fd);
	if (d.parent >= 0)
		close(d.parent);
	strv_free(&d.dirs);
	archive_read_free(a);
	return ret;
}

/* ---- checking in memory ------------------------------------------------ */

struct mem_sink {
	struct chart_sink s;
	bool in_yaml;
	char *yaml;
	size_t len;
};

static int mem_open(struct chart_sink *s, const char *path)
{
	struct mem_sink *m = (struct mem_sink *)s;

	m->in_yaml = !strcmp(path, "Chart.yaml");
	if (m->in_yaml)
		m->len = 0; /* a second one is a duplicate: refused anyway */
	return 0;
}

static int mem_write(struct chart_sink *s, const void *buf, size_t len)
{
	struct mem_sink *m = (struct mem_sink *)s;
	char *y;

	if (!m->in_yaml)
		return 0;
	y = realloc(m->yaml, m->len + len + 1);
	if (!y)
		return -ENOMEM;
	memcpy(y + m->len, buf, len);
	m->len += len;
	y[m->len] = '\0';
	m->yaml = y;
	return 0;
}

static int mem_close(struct chart_sink *s)
{
	((struct mem_sink *)s)->in_yaml = false;
	return 0;
}

static int mem_finish(struct chart_sink *s)
{
	struct mem_sink *m = (struct mem_sink *)s;

	/* An empty Chart.yaml is present, with nothing to parse. */
	if (!m->yaml) {
		m->yaml = strdup("");
		if (!m->yaml)
			return -ENOMEM;
	}
	return 0;
}

int chart_check_mem(const void *data, size_t len, char **chart_yaml, char **top)
{
	struct mem_sink m = {.s = {mem_open, mem_write, mem_close, mem_finish}};
	struct archive *a = reader_new(archive_read_support_format_tar);
	char *t = NULL;
	int ret;

	if (chart_yaml)
		*chart_yaml = NULL;
	if (top)
		*top = NULL;
	if (!a)
		return -ENOMEM;
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
		const char *err = archive_error_string(a);

		ret = chart_refuse("package", err ? err : "unreadable archive");
		goto out;
	}
	ret = chart_walk(a, &m.s, "package", &t);
	if (ret)
		goto out;
	{
		struct archive *raw = reader_new(archive_read_support_format_raw);

		if (!raw)
			ret = -ENOMEM;
		else if (len < 18 ||
			 archive_read_open_memory(raw, data, len) != ARCHIVE_OK)
			ret = chart_refuse("package", "unreadable gzip stream");
		else
			ret = check_gzip_stream(
			    raw, (const unsigned char *)data + len - 8, "package");
		archive_read_free(raw);
		if (ret)
			goto out;
	}
	if (chart_yaml) {
		*chart_yaml = m.yaml;
		m.yaml = NULL;
	}
	if (top) {
		*top = t;
		t = NULL;
	}
out:
	if (ret && ret != -EIO)
		log_warn("cache: package: cannot unpack: %s", strerror(-ret));
	free(t);
	free(m.yaml);
	archive_read_free(a);
	return ret;
}
