/*
 * unpack.c - helm's chart loader rules over libarchive, writing with openat.
 *
 * The rules mirror helm's pkg/chart/loader/archive.go so that the tree equals
 * what `helm pull --untar` writes: directory entries are skipped (helm never
 * creates empty directories), the first path component is stripped whatever
 * it is, backslash-separated names are normalised, and a cleaned name that is
 * absolute, empty, starts with "..", or looks like a drive path is refused.
 * We are stricter where helm would still accept something we cannot serve
 * safely: links, devices and FIFOs, duplicate paths, and over-long names.
 */
#include "cache/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/blobcache.h"
#include "common/log.h"

#define MAX_ENTRIES 100000
#define MAX_PATH 4096
#define MAX_COMPONENT 255

/* Where the walker sends each accepted file. */
struct sink {
	int (*open)(struct sink *s, const char *path);
	int (*write)(struct sink *s, const void *buf, size_t len);
	int (*close)(struct sink *s);
};

/* Clean n in place like Go's path.Clean for a relative path. */
static void clean_path(char *n)
{
	char *comps[MAX_PATH / 2 + 1];
	size_t nc = 0, i;
	char *save = NULL, *tok, *out;
	char buf[MAX_PATH + 1];

	snprintf(buf, sizeof(buf), "%s", n);
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..") && nc && strcmp(comps[nc - 1], "..")) {
			nc--;
			continue;
		}
		comps[nc++] = tok;
	}
	out = n;
	for (i = 0; i < nc; i++) {
		size_t len = strlen(comps[i]);
		if (i)
			*out++ = '/';
		memmove(out, comps[i], len);
		out += len;
	}
	if (nc == 0)
		*out++ = '.';
	*out = '\0';
}

/* Apply helm's naming rules to an entry name; on success out holds the
 * cleaned relative path. Returns the rule broken, or NULL. */
static const char *chart_name(const char *name, char *out, size_t outlen,
			      bool *is_chart_yaml_root)
{
	char delim = strchr(name, '\\') ? '\\' : '/';
	const char *rest = strchr(name, delim);
	size_t first = rest ? (size_t)(rest - name) : strlen(name);
	char *p;

	*is_chart_yaml_root = first == 10 && !strncmp(name, "Chart.yaml", 10);
	if (strlen(name) > MAX_PATH)
		return "path too long";
	snprintf(out, outlen, "%s", rest ? rest + 1 : "");
	for (p = out; *p; p++)
		if (*p == delim)
			*p = '/';
	if (out[0] == '/')
		return "absolute path";
	clean_path(out);
	if (!strcmp(out, "."))
		return "empty path";
	if (!strncmp(out, "..", 2))
		return "path outside the chart";
	if (((out[0] >= 'a' && out[0] <= 'z') || (out[0] >= 'A' && out[0] <= 'Z')) &&
	    out[1] == ':' && out[2] == '/')
		return "drive letter path";
	if (*is_chart_yaml_root)
		return "Chart.yaml not in a top folder";
	for (p = out; *p;) {
		size_t len = strcspn(p, "/");
		if (len > MAX_COMPONENT)
			return "path component too long";
		p += len;
		if (*p)
			p++;
	}
	return NULL;
}

/* Walk every entry of an opened archive, enforcing the rules. */
static int walk(struct archive *a, struct sink *s, const char *what)
{
	static const size_t bufsz = 65536;
	struct archive_entry *e;
	long long total = 0;
	char path[MAX_PATH + 1];
	const char *rule = NULL;
	bool have_chart_yaml = false;
	char *buf = malloc(bufsz);
	unsigned entries = 0;
	int ret = 0, r;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		const char *name;
		bool root_yaml;
		long long size = 0;
		mode_t type;

		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			rule = archive_error_string(a) ? archive_error_string(a)
						       : "corrupt archive";
			goto refuse;
		}
		if (archive_filter_code(a, 0) != ARCHIVE_FILTER_GZIP) {
			rule = "not gzip-compressed";
			goto refuse;
		}
		if (++entries > MAX_ENTRIES) {
			rule = "too many entries";
			goto refuse;
		}
		name = archive_entry_pathname(e);
		type = archive_entry_filetype(e);
		if (!name) {
			rule = "entry without a name";
			goto refuse;
		}
		/* helm skips directory entries and creates parents as needed. */
		if (type == AE_IFDIR)
			continue;
		if (archive_entry_hardlink(e) || type != AE_IFREG) {
			rule = "link, device or other irregular file";
			goto refuse;
		}
		rule = chart_name(name, path, sizeof(path), &root_yaml);
		if (rule)
			goto refuse;
		if (!strcmp(path, "Chart.yaml"))
			have_chart_yaml = true;
		ret = s->open(s, path);
		if (ret == -EEXIST) {
			rule = "duplicate path";
			goto refuse;
		}
		if (ret == -ENOTDIR || ret == -EISDIR) {
			rule = "path is both a file and a directory";
			goto refuse;
		}
		if (ret)
			goto out;
		for (;;) {
			la_ssize_t n = archive_read_data(a, buf, bufsz);
			if (n == 0)
				break;
			if (n < 0) {
				rule = archive_error_string(a) ? archive_error_string(a)
							       : "corrupt data";
				s->close(s);
				goto refuse;
			}
			size += n;
			total += n;
			if (size > CHART_MAX_FILE) {
				rule = "a file is over helm's 5 MiB limit";
				s->close(s);
				goto refuse;
			}
			if (total > CHART_MAX_TOTAL) {
				rule = "over helm's 100 MiB decompressed limit";
				s->close(s);
				goto refuse;
			}
			ret = s->write(s, buf, (size_t)n);
			if (ret) {
				s->close(s);
				goto out;
			}
		}
		ret = s->close(s);
		if (ret)
			goto out;
	}
	if (!have_chart_yaml) {
		rule = entries ? "no Chart.yaml in the top folder" : "empty archive";
		goto refuse;
	}
	goto out;
refuse:
	log_warn("cache: %s: refused: %s", what, rule);
	ret = -EIO;
out:
	free(buf);
	return ret;
}

static struct archive *reader_new(void)
{
	struct archive *a = archive_read_new();

	/* Only what helm reads: never *_all, which would open zip, rar, 7z... */
	if (a && (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
		  archive_read_support_format_tar(a) != ARCHIVE_OK)) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* ---- writing into a directory ----------------------------------------- */

struct dir_sink {
	struct sink s;
	int dirfd;
	int fd;
};

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
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

/* Create path below dirfd, one component at a time, never following a
 * symlink (none can exist: we made every entry, but be sure). */
static int dir_open(struct sink *s, const char *path)
{
	struct dir_sink *d = (struct dir_sink *)s;
	char buf[MAX_PATH + 1], *p = buf, *slash;
	int cur = d->dirfd, next, ret = 0;

	snprintf(buf, sizeof(buf), "%s", path);
	while ((slash = strchr(p, '/'))) {
		*slash = '\0';
		if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST) {
			ret = -errno;
			goto out;
		}
		next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			ret = errno == ELOOP ? -ENOTDIR : -errno;
			goto out;
		}
		if (cur != d->dirfd)
			close(cur);
		cur = next;
		p = slash + 1;
	}
	d->fd =
	    openat(cur, p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (d->fd < 0)
		ret = -errno;
out:
	if (cur != d->dirfd)
		close(cur);
	return ret;
}

static int dir_write(struct sink *s, const void *buf, size_t len)
{
	return write_all(((struct dir_sink *)s)->fd, buf, len);
}

static int dir_close(struct sink *s)
{
	struct dir_sink *d = (struct dir_sink *)s;
	int ret = 0;

	if (d->fd < 0)
		return 0;
	/* Served read-only whatever the archive said (no setuid, no +w). */
	if (fchmod(d->fd, 0444) < 0)
		ret = -errno;
	if (close(d->fd) < 0 && !ret)
		ret = -errno;
	d->fd = -1;
	return ret;
}

int chart_unpack_fd(int fd, int dirfd, const char *what)
{
	struct dir_sink d = {{dir_open, dir_write, dir_close}, dirfd, -1};
	struct archive *a = reader_new();
	int ret;

	if (!a)
		return -ENOMEM;
	if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
		log_warn("cache: %s: refused: %s", what, archive_error_string(a));
		ret = -EIO;
		goto out;
	}
	ret = walk(a, &d.s, what);
out:
	archive_read_free(a);
	return ret;
}

/* ---- checking in memory ------------------------------------------------ */

struct mem_sink {
	struct sink s;
	bool in_yaml;
	char *yaml;
	size_t len;
	struct mem_path {
		struct mem_path *next;
		char path[];
	} * seen; /* for duplicate detection */
};

static int mem_open(struct sink *s, const char *path)
{
	struct mem_sink *m = (struct mem_sink *)s;
	struct mem_path *p;

	for (p = m->seen; p; p = p->next)
		if (!strcmp(p->path, path))
			return -EEXIST;
	p = malloc(sizeof(*p) + strlen(path) + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p->path, path, strlen(path) + 1);
	p->next = m->seen;
	m->seen = p;
	m->in_yaml = !strcmp(path, "Chart.yaml");
	return 0;
}

static int mem_write(struct sink *s, const void *buf, size_t len)
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

static int mem_close(struct sink *s)
{
	((struct mem_sink *)s)->in_yaml = false;
	return 0;
}

int chart_check_mem(const void *data, size_t len, char **chart_yaml, char **top)
{
	struct mem_sink m = {{mem_open, mem_write, mem_close}, false, NULL, 0, NULL};
	struct archive *a = reader_new();
	struct archive_entry *e;
	int ret;

	if (!a)
		return -ENOMEM;
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
		ret = -EIO;
		goto out;
	}
	ret = walk(a, &m.s, "package");
	if (ret)
		goto out;
	if (!m.yaml) {
		/* An empty Chart.yaml: present but nothing to parse. */
		m.yaml = strdup("");
		if (!m.yaml) {
			ret = -ENOMEM;
			goto out;
		}
	}
	if (top) {
		/* The top folder: the first component of the first entry. */
		archive_read_free(a);
		a = reader_new();
		*top = NULL;
		if (a && archive_read_open_memory(a, data, len) == ARCHIVE_OK &&
		    archive_read_next_header(a, &e) == ARCHIVE_OK)
			*top = strndup(archive_entry_pathname(e),
				       strcspn(archive_entry_pathname(e), "/\\"));
		if (!*top) {
			ret = -ENOMEM;
			goto out;
		}
	}
	if (chart_yaml) {
		*chart_yaml = m.yaml;
		m.yaml = NULL;
	}
out:
	while (m.seen) {
		struct mem_path *n = m.seen->next;
		free(m.seen);
		m.seen = n;
	}
	free(m.yaml);
	archive_read_free(a);
	return ret;
}
