/*
 * unpack.c - helm's chart loader rules over libarchive (the walker).
 *
 * The rules mirror helm's pkg/chart/loader/archive.go, so that what we serve
 * is what helm would load: the first path component is stripped whatever it
 * is (helm accepts "./Chart.yaml"), backslash names are normalised, and
 * absolute paths (also "top//x", absolute once "top" is cut), "..", drive
 * letters ("c:/x", not a file named "c:") and a file directly at the
 * archive root are refused. Directory entries are not created: helm skips
 * them, so an empty directory in the archive is not part of the chart. They
 * are still checked, but not by the rules helm applies to files only (a
 * path starting with "..", "top//x") nor by our depth bound.
 *
 * We are stricter than helm wherever helm would load something we could not
 * serve the same way, because a chart is served whole or not at all:
 * - links, devices, FIFOs and sockets refuse the chart (helm would read a
 *   symlink as an empty file);
 * - duplicate paths refuse the chart (helm keeps both entries in its file
 *   list and whichever one a consumer reads first wins: we cannot mirror
 *   that with one file, and "second wins" would silently serve half);
 * - entries under two different top folders refuse the chart (helm strips
 *   both and merges them);
 * - names mixing '/' and '\' refuse the chart (helm then splits on '\' only,
 *   so "a/b\c" loses "a/b": never what the author meant);
 * - any ".." component is refused, even one that cleans away ("a/../b"),
 *   and, as helm does for files (strings.HasPrefix of the cleaned path), so
 *   is a file path below the top folder starting with ".." ("x/..a");
 * - libarchive warnings (malformed headers it skipped) refuse the chart;
 * - entries, path length (1 KiB), depth (64 components), component length,
 *   total name bytes and the directories the files need (10,000) are capped
 *   so that a hostile archive cannot exhaust memory, inodes or time, and
 *   every tree stays removable by path (see unpack_i.h).
 * Sizes are counted on the data actually read, but a header that announces
 * more than a limit is refused at once: its data is either that large or
 * truncated, and either way refused, so there is no need to inflate it.
 */
#include "cache/unpack.h"

#include <archive_entry.h>
#include <errno.h>
#include <locale.h>
#include <search.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/blobcache.h"
#include "cache/unpack_i.h"
#include "common/log.h"
#include "common/strv.h"

#define MAX_ENTRIES 100000
#define MAX_PATH CHART_MAX_PATH
#define MAX_COMPONENT 255
/* Sum of the kept file path lengths (for the duplicate check). */
#define MAX_NAME_BYTES (16 << 20)
#define READ_BUF 65536

struct walk {
	struct archive *a;
	struct chart_sink *s;
	char top[MAX_COMPONENT + 1];
	bool have_top;
	bool have_chart_yaml;
	unsigned entries;
	long long total;
	size_t name_bytes;
	struct strv paths; /* every file path, checked for duplicates at the end */
	void *dirs;	   /* tsearch tree of the directories the files need */
	unsigned ndirs;
	const char *rule;
	char msg[256]; /* rule plus the (sanitised) entry name */
	char *buf;
};

int chart_refuse(const char *what, const char *rule)
{
	log_warn("cache: %s: %s", what, rule);
	return -EIO;
}

/* Name the entry in the refusal; it is hostile input, so no control bytes
 * reach the log and it is cut short. */
static const char *refuse_entry(struct walk *w, const char *rule, const char *name)
{
	size_t n, i;

	n = (size_t)snprintf(w->msg, sizeof(w->msg), "%s: \"%.100s\"", rule, name);
	if (n >= sizeof(w->msg))
		n = sizeof(w->msg) - 1;
	for (i = strlen(rule) + 3; i + 1 < n; i++)
		if ((unsigned char)w->msg[i] < 0x20 || w->msg[i] == 0x7f)
			w->msg[i] = '?';
	return w->msg;
}

static bool is_drive(const char *s)
{
	return ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) &&
	       s[1] == ':';
}

/*
 * Apply the naming rules to raw. On success top gets the first component,
 * rel the cleaned path below it ("" for the top folder itself) and *nested
 * whether there was anything after the first component at all. Returns the
 * rule broken, or NULL. A directory entry (dir) creates nothing, and helm
 * skips it before any check: the rules helm has for files only, and our
 * depth bound, are not applied to it.
 */
static const char *check_name(const char *raw, bool dir, char *top, char *rel,
			      bool *nested)
{
	char buf[MAX_PATH + 1], *p, *comp, *save = NULL, *out = rel;
	size_t len = strlen(raw), ntop;
	bool drive = false;
	unsigned depth = 0;

	if (len == 0)
		return "empty name";
	if (len > MAX_PATH)
		return "path too long";
	memcpy(buf, raw, len + 1);
	if (strchr(buf, '\\')) {
		if (strchr(buf, '/'))
			return "mixed / and \\ separators";
		for (p = buf; *p; p++)
			if (*p == '\\')
				*p = '/';
	}
	if (buf[0] == '/')
		return "absolute path";
	if (is_drive(buf))
		return "drive letter path";
	ntop = strcspn(buf, "/");
	if (ntop > MAX_COMPONENT)
		return "path component too long";
	memcpy(top, buf, ntop);
	top[ntop] = '\0';
	if (!strcmp(top, ".."))
		return "parent directory reference";
	*nested = buf[ntop] == '/';
	*out = '\0';
	if (!*nested)
		return NULL;
	/* helm: path.IsAbs of what follows the top folder ("top//x") */
	if (!dir && buf[ntop + 1] == '/')
		return "absolute path";
	for (comp = strtok_r(buf + ntop + 1, "/", &save); comp;
	     comp = strtok_r(NULL, "/", &save)) {
		size_t clen = strlen(comp);

		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, ".."))
			return "parent directory reference";
		if (clen > MAX_COMPONENT)
			return "path component too long";
		/* helm: ^[a-zA-Z]:/ on the cleaned path: a file named "c:"
		 * is fine, "c:/x" is not. */
		if (out == rel)
			drive = is_drive(comp) && comp[2] == '\0';
		else if (drive)
			return "drive letter path";
		/* helm: strings.HasPrefix(path.Clean(rest), "..") */
		if (!dir && out == rel && !strncmp(comp, "..", 2))
			return "parent directory reference";
		if (!dir && ++depth > CHART_MAX_DEPTH)
			return "path too deep";
		if (out != rel)
			*out++ = '/';
		memcpy(out, comp, clen);
		out += clen;
		*out = '\0';
	}
	return NULL;
}

/* Check an entry's name and type; rel gets its path for a regular file and
 * is "" for a directory (nothing to create). */
static const char *check_entry(struct walk *w, struct archive_entry *e, char *rel)
{
	const char *name = archive_entry_pathname(e);
	char top[MAX_COMPONENT + 1];
	const char *rule;
	bool nested = false;
	mode_t type = archive_entry_filetype(e);

	if (!name)
		name = archive_entry_pathname_utf8(e);
	if (!name)
		return "entry without a name";
	rule = check_name(name, type == AE_IFDIR, top, rel, &nested);
	if (rule)
		return refuse_entry(w, rule, name);
	if (!w->have_top) {
		memcpy(w->top, top, sizeof(top));
		w->have_top = true;
	} else if (strcmp(w->top, top) != 0) {
		return refuse_entry(w, "more than one top folder", name);
	}
	if (archive_entry_hardlink(e))
		return refuse_entry(w, "hard link", name);
	if (type == AE_IFLNK || archive_entry_symlink(e))
		return refuse_entry(w, "symbolic link", name);
	if (type == AE_IFDIR) {
		rel[0] = '\0';
		return NULL;
	}
	if (type != AE_IFREG)
		return refuse_entry(w, "device, FIFO, socket or other irregular file",
				    name);
	if (!nested)
		return refuse_entry(w,
				    !strcmp(top, "Chart.yaml")
					? "Chart.yaml not in a top folder"
					: "file outside a top folder",
				    name);
	if (!rel[0])
		return refuse_entry(w, "path is empty once cleaned", name);
	/* Announced sizes first: no need to inflate what is refused anyway. */
	if (archive_entry_size_is_set(e)) {
		long long size = archive_entry_size(e);

		if (size > CHART_MAX_FILE)
			return refuse_entry(w, "file over helm's 5 MiB limit", name);
		if (w->total + size > CHART_MAX_TOTAL)
			return "over helm's 100 MiB decompressed chart limit";
	}
	return NULL;
}

static int remember(struct walk *w, const char *rel)
{
	size_t len = strlen(rel);

	if (w->name_bytes + len > MAX_NAME_BYTES) {
		w->rule = "too much path data";
		return -EIO;
	}
	if (strv_push(&w->paths, rel))
		return -ENOMEM;
	w->name_bytes += len;
	return 0;
}

/* Order with '/' below every other byte, so that "a" is followed directly
 * by "a/..." (before "a-b") and a file/directory clash lands next to it. */
int chart_path_cmp(const void *x, const void *y)
{
	const unsigned char *a = *(const unsigned char *const *)x;
	const unsigned char *b = *(const unsigned char *const *)y;

	for (;; a++, b++) {
		int ca = *a == '/' ? 1 : *a ? *a + 1 : 0;
		int cb = *b == '/' ? 1 : *b ? *b + 1 : 0;

		if (ca != cb || !ca)
			return ca - cb;
	}
}

/* The same rule the directory sink enforces with O_EXCL, for every sink. */
static const char *check_duplicates(struct walk *w)
{
	size_t i;

	qsort(w->paths.v, w->paths.n, sizeof(*w->paths.v), chart_path_cmp);
	for (i = 1; i < w->paths.n; i++) {
		const char *a = w->paths.v[i - 1], *b = w->paths.v[i];
		size_t len = strlen(a);

		if (!strcmp(a, b) || (!strncmp(a, b, len) && b[len] == '/'))
			return refuse_entry(w, "duplicate or conflicting path", b);
	}
	return NULL;
}

static int dir_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * Count the directories the file at rel needs that no earlier file did:
 * exactly what the directory sink creates, counted here so that the memory
 * check refuses the same charts, before the sink makes any of them. An
 * ancestor of a known directory is known, so the walk up stops at the first
 * one and a file in a known directory costs one look-up. A balanced tree,
 * not a hash: hostile names cannot make the look-ups slow.
 */
static int count_dirs(struct walk *w, const char *rel)
{
	char buf[MAX_PATH + 1], *slash, *key;

	snprintf(buf, sizeof(buf), "%s", rel);
	while ((slash = strrchr(buf, '/'))) {
		*slash = '\0';
		if (tfind(buf, &w->dirs, dir_cmp))
			return 0;
		if (++w->ndirs > CHART_MAX_DIRS) {
			w->rule = "too many directories";
			return -EIO;
		}
		key = strdup(buf);
		if (!key)
			return -ENOMEM;
		if (!tsearch(key, &w->dirs, dir_cmp)) {
			free(key);
			return -ENOMEM;
		}
	}
	return 0;
}

/* Copy one file's data into the sink, counting what is actually read. */
static int copy_data(struct walk *w, const char *rel)
{
	long long size = 0;
	int ret = 0;

	for (;;) {
		la_ssize_t n = archive_read_data(w->a, w->buf, READ_BUF);

		if (n == 0)
			break;
		if (n < 0) {
			const char *err = archive_error_string(w->a);

			w->rule = refuse_entry(w, err ? err : "corrupt data", rel);
			return -EIO;
		}
		size += n;
		w->total += n;
		if (size > CHART_MAX_FILE) {
			w->rule = refuse_entry(w, "file over helm's 5 MiB limit", rel);
			return -EIO;
		}
		if (w->total > CHART_MAX_TOTAL) {
			w->rule = "over helm's 100 MiB decompressed chart limit";
			return -EIO;
		}
		ret = w->s->write(w->s, w->buf, (size_t)n);
		if (ret)
			return ret;
	}
	return 0;
}

/* One entry: 0, -EIO with w->rule set, or a system error. */
static int walk_entry(struct walk *w, struct archive_entry *e)
{
	char rel[MAX_PATH + 1];
	int ret, cret;

	/* Only now is the filter stack known. helm reads gzip, exactly once:
	 * a plain tar or a gzip inside a gzip is not a chart for helm. */
	if (archive_filter_count(w->a) != 2 ||
	    archive_filter_code(w->a, 0) != ARCHIVE_FILTER_GZIP) {
		w->rule = "not a gzip-compressed tar archive";
		return -EIO;
	}
	if (++w->entries > MAX_ENTRIES) {
		w->rule = "too many entries";
		return -EIO;
	}
	w->rule = check_entry(w, e, rel);
	if (w->rule)
		return -EIO;
	if (!rel[0])
		return 0; /* a directory entry */
	if (!strcmp(rel, "Chart.yaml"))
		w->have_chart_yaml = true;
	ret = count_dirs(w, rel);
	if (ret)
		return ret;
	ret = remember(w, rel);
	if (ret)
		return ret;
	ret = w->s->open(w->s, rel);
	if (ret == -EEXIST || ret == -ENOTDIR || ret == -EISDIR)
		w->rule = refuse_entry(w, "duplicate or conflicting path", rel);
	if (ret)
		return w->rule ? -EIO : ret;
	ret = copy_data(w, rel);
	cret = w->s->close(w->s);
	return ret ? ret : cret;
}

int chart_walk(struct archive *a, struct chart_sink *s, const char *what, char **top)
{
	struct walk w = {.a = a, .s = s};
	struct archive_entry *e;
	locale_t utf8, old = (locale_t)0;
	int ret = 0, r;

	w.buf = malloc(READ_BUF);
	if (!w.buf)
		return -ENOMEM;
	/* pax names are UTF-8 and libarchive converts them to the thread's
	 * locale, which is "C" in the daemon: a chart with a non-ASCII name
	 * would fail with a warning. This thread reads them as UTF-8 bytes,
	 * which is what helm writes, and the process locale is untouched. */
	utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (utf8)
		old = uselocale(utf8);
	for (;;) {
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK) {
			const char *err = archive_error_string(a);

			w.rule = err ? err : "corrupt archive";
			ret = -EIO;
			goto out;
		}
		ret = walk_entry(&w, e);
		if (ret)
			goto out;
	}
	if (!w.entries)
		w.rule = "empty archive";
	else if (!w.have_chart_yaml)
		w.rule = "no Chart.yaml";
	else
		w.rule = check_duplicates(&w);
	if (w.rule) {
		ret = -EIO;
		goto out;
	}
	ret = s->finish(s);
	if (!ret && top) {
		*top = strdup(w.top);
		if (!*top)
			ret = -ENOMEM;
	}
out:
	/* -EIO is always logged here, so that a caller can tell. Any other
	 * failure (the sink's: a full disk, no memory) is the caller's to
	 * report: it knows where the files were going. */
	if (ret == -EIO && w.rule)
		ret = chart_refuse(what, w.rule);
	else if (ret == -EIO)
		log_warn("cache: %s: cannot unpack: %s", what, strerror(-ret));
	if (utf8) {
		uselocale(old);
		freelocale(utf8);
	}
	strv_free(&w.paths);
	tdestroy(w.dirs, free);
	free(w.buf);
	return ret;
}
