/*
 * test_cache.c - the blob store and the chart unpacker, without a mount or a
 * network. Hostile archives are built in memory with libarchive's writer
 * (test_cache_i.h), never with archive_write_disk: only the code under test
 * writes trees.
 */
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

#include "cache/blobcache.h"
#include "cache/unpack.h"
#include "common/digest.h"
#include "tests/unit/tap.h"
#include "tests/unit/test_cache_i.h"

#define YAML "apiVersion: v2\nname: mychart\nversion: 0.1.0\n"

static char work[64];

/* Both entry points must refuse b with -EIO. */
static void refused(struct buf b, const char *what)
{
	char dir[128], *yaml = NULL, *top = NULL;
	int r1 = chart_check_mem(b.p, b.len, &yaml, &top);
	int r2 = unpack_buf(work, &b, dir, sizeof(dir));

	ok(r1 == -EIO && r2 == -EIO && !yaml && !top, "refused: %s (%d, %d)", what, r1,
	   r2);
	rm_rf(dir);
	free_buf(&b);
}

/* Both entry points accept b; the tree is left in dir. */
static bool accepted(struct buf b, const char *what, char *dir, size_t dirlen)
{
	char *yaml = NULL, *top = NULL;
	int r1 = chart_check_mem(b.p, b.len, &yaml, &top);
	int r2 = unpack_buf(work, &b, dir, dirlen);

	ok(r1 == 0 && r2 == 0, "accepted: %s (%d, %d)", what, r1, r2);
	free(yaml);
	free(top);
	free_buf(&b);
	return r1 == 0 && r2 == 0;
}

#define CY                                                                               \
	{                                                                                \
		.name = "mychart/Chart.yaml", .data = YAML                               \
	}
#define N(a) (sizeof(a) / sizeof((a)[0]))
#define BAD(kind, what, ...)                                                             \
	do {                                                                             \
		const struct ent e_[] = {__VA_ARGS__};                                   \
		refused(build(e_, N(e_), kind), what);                                   \
	} while (0)

static void test_good(void)
{
	const struct ent ents[] = {
	    {.name = "mychart/", .type = AE_IFDIR},
	    CY,
	    {.name = "mychart/templates/x.yaml", .data = "kind: x\n"},
	    {.name = "mychart/charts/sub/Chart.yaml", .data = "name: sub\n"},
	    {.name = "mychart/a/./b//c.txt", .data = "c"},
	    {.name = "mychart/empty", .size = 0},
	    {.name = "mychart/big", .size = CHART_MAX_FILE},
	};
	struct buf b = build(ents, N(ents), TGZ);
	char dir[128], *yaml = NULL, *top = NULL, *s;
	int ret = chart_check_mem(b.p, b.len, &yaml, &top);

	ok(ret == 0 && yaml && !strcmp(yaml, YAML) && top && !strcmp(top, "mychart"),
	   "check_mem: Chart.yaml and top folder");
	free(yaml);
	free(top);
	ok(unpack_buf(work, &b, dir, sizeof(dir)) == 0, "good chart unpacks");
	s = slurp(dir, "Chart.yaml");
	ok(s && !strcmp(s, YAML), "top folder stripped, Chart.yaml at the root");
	free(s);
	ok(mode_of(dir, "mychart") == (mode_t)-1, "no top folder left");
	ok(mode_of(dir, "Chart.yaml") == (S_IFREG | 0444), "file 0444");
	ok(mode_of(dir, "templates/x.yaml") == (S_IFREG | 0444), "setuid dropped");
	ok(mode_of(dir, "templates") == (S_IFDIR | 0555), "dir 0555");
	ok(mode_of(dir, "charts/sub") == (S_IFDIR | 0555) &&
	       mode_of(dir, "charts/sub/Chart.yaml") == (S_IFREG | 0444),
	   "subchart");
	ok(mode_of(dir, "a/b/c.txt") == (S_IFREG | 0444), "'.' and empty components");
	ok(mode_of(dir, "big") == (S_IFREG | 0444), "exactly 5 MiB is allowed");
	ok(count_entries(dir) == 6, "nothing else in the tree");
	rm_rf(dir);
	/* The same chart with a corrupt CRC, then with garbage after the gzip
	 * stream: the tar reader stops at its end marker and libarchive never
	 * checks the gzip trailer, so unpack_sink.c does (zlib's crc32). */
	{
		struct buf c = {malloc(b.len), b.len};

		memcpy(c.p, b.p, b.len);
		c.p[c.len - 8] ^= 1;
		refused(c, "gzip CRC mismatch");
	}
	b.p = realloc(b.p, b.len + 16);
	memcpy(b.p + b.len, "garbage garbage!", 16);
	b.len += 16;
	refused(b, "trailing garbage after the gzip stream");
}

static void test_good_variants(void)
{
	char dir[128], name[400], *s;
	const struct ent dot[] = {{.name = "./Chart.yaml", .data = YAML}};
	const struct ent bs[] = {{.name = "mychart\\Chart.yaml", .data = YAML},
				 {.name = "mychart\\t\\x.yaml", .data = "x"}};
	struct ent lng[] = {CY, {.name = name, .data = "long"}};

	/* helm strips "." like any top folder: `tar -C mychart .` works. */
	if (accepted(build(dot, 1, TGZ), "top folder \".\"", dir, sizeof(dir)))
		ok(mode_of(dir, "Chart.yaml") == (S_IFREG | 0444), "./Chart.yaml");
	rm_rf(dir);
	if (accepted(build(bs, 2, TGZ), "backslash separators", dir, sizeof(dir)))
		ok(mode_of(dir, "t/x.yaml") == (S_IFREG | 0444),
		   "backslashes normalised");
	rm_rf(dir);
	snprintf(name, sizeof(name), "mychart/%0200d/%0150d", 1, 2);
	if (accepted(build(lng, 2, GNUTGZ), "gnutar long name", dir, sizeof(dir))) {
		s = slurp(dir, name + 8);
		ok(s && !strcmp(s, "long"), "long name content");
		free(s);
	}
	rm_rf(dir);
	lng[1].name = "mychart/templates/\xc3\xa9t\xc3\xa9.yaml";
	if (accepted(build(lng, 2, TGZ), "non-ASCII pax name", dir, sizeof(dir)))
		ok(mode_of(dir, lng[1].name + 8) == (S_IFREG | 0444), "UTF-8 name kept");
	rm_rf(dir);
}

static void test_names(void)
{
	char lcomp[300], lpath[4200];

	BAD(TGZ, "../x", CY, {.name = "../x", .data = "x"});
	BAD(TGZ, "a/../../x", CY, {.name = "mychart/../../x", .data = "x"});
	BAD(TGZ, "a/b/../c (any .. component)", CY,
	    {.name = "mychart/b/../c", .data = "x"});
	BAD(TGZ, "/etc/x", CY, {.name = "/etc/x", .data = "x"});
	BAD(TGZ, "C:/x", CY, {.name = "C:/x", .data = "x"});
	BAD(TGZ, "mychart/C:/x", CY, {.name = "mychart/C:/x", .data = "x"});
	BAD(TGZ, "a\\..\\..\\x", CY, {.name = "mychart\\..\\..\\x", .data = "x"});
	BAD(TGZ, "mixed / and \\", CY, {.name = "mychart/a\\b", .data = "x"});
	BAD(TGZ, "a name that cleans to .", CY, {.name = "mychart/./.", .data = "x"});
	BAD(TGZ, "Chart.yaml at the root", {.name = "Chart.yaml", .data = YAML});
	BAD(TGZ, "a file at the root", {.name = "values.yaml", .data = "x"}, CY);
	BAD(TGZ, "two top folders", CY, {.name = "other/values.yaml", .data = "x"});
	BAD(TGZ, "a top directory entry of another folder", CY,
	    {.name = "other/", .type = AE_IFDIR});
	BAD(TGZ, "no Chart.yaml", {.name = "mychart/values.yaml", .data = "x"});
	BAD(TGZ, "Chart.yaml only in a subfolder",
	    {.name = "mychart/sub/Chart.yaml", .data = YAML});
	BAD(TGZ, "duplicate path", CY, {.name = "mychart/v", .data = "1"},
	    {.name = "mychart/v", .data = "2"});
	BAD(TGZ, "duplicate once cleaned", CY, {.name = "mychart/v", .data = "1"},
	    {.name = "mychart/./v", .data = "2"});
	BAD(TGZ, "file then directory", CY, {.name = "mychart/a", .data = "1"},
	    {.name = "mychart/a/b", .data = "2"});
	BAD(TGZ, "directory then file", CY, {.name = "mychart/a/b", .data = "1"},
	    {.name = "mychart/a", .data = "2"});
	memset(lcomp, 'c', sizeof(lcomp));
	memcpy(lcomp, "mychart/", 8);
	lcomp[8 + 256] = '\0';
	BAD(TGZ, "a component over 255 bytes", CY, {.name = lcomp, .data = "x"});
	lcomp[8 + 255] = '\0';
	{
		const struct ent e[] = {CY, {.name = lcomp, .data = "x"}};
		char dir[128];

		accepted(build(e, 2, TGZ), "a component of 255 bytes", dir, sizeof(dir));
		rm_rf(dir);
	}
	memset(lpath, 'p', sizeof(lpath) - 1);
	lpath[sizeof(lpath) - 1] = '\0';
	for (size_t i = 7; i < sizeof(lpath) - 1; i += 100)
		lpath[i] = '/';
	BAD(TGZ, "a path over 4096 bytes", CY, {.name = lpath, .data = "x"});
}

static void test_types(void)
{
	BAD(TGZ, "symlink", CY,
	    {.name = "mychart/l", .type = AE_IFLNK, .link = "/etc/passwd"});
	BAD(TGZ, "hardlink", CY,
	    {.name = "mychart/h", .link = "mychart/Chart.yaml", .hard = true});
	BAD(TGZ, "FIFO", CY, {.name = "mychart/f", .type = AE_IFIFO});
	BAD(TGZ, "char device", CY, {.name = "mychart/c", .type = AE_IFCHR});
	BAD(TGZ, "block device", CY, {.name = "mychart/b", .type = AE_IFBLK});
	BAD(TGZ, "a file over 5 MiB", CY,
	    {.name = "mychart/big", .size = CHART_MAX_FILE + 1});
}

static void test_total(void)
{
	struct ent ents[23] = {CY};
	char names[22][32];
	struct timespec t0, t1;
	size_t i;

	for (i = 0; i < 21; i++) {
		snprintf(names[i], sizeof(names[i]), "mychart/z%zu", i);
		ents[i + 1] = (struct ent){.name = names[i], .size = CHART_MAX_FILE};
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	BAD(TGZ, "over 100 MiB in total", ents[0], ents[1], ents[2], ents[3], ents[4],
	    ents[5], ents[6], ents[7], ents[8], ents[9], ents[10], ents[11], ents[12],
	    ents[13], ents[14], ents[15], ents[16], ents[17], ents[18], ents[19],
	    ents[20], ents[21]);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ok(t1.tv_sec - t0.tv_sec < 60, "refused in %lds", (long)(t1.tv_sec - t0.tv_sec));
}

static void test_streams(void)
{
	const struct ent good[] = {CY, {.name = "mychart/v", .size = 1000}};
	const struct ent none[] = {{0}};
	struct buf tar = build(good, 2, TAR), b;
	char dir[128];

	b = gzip_bytes(tar.p, 512 * 3 + 100); /* header says 1000, 100 there */
	refused(b, "data shorter than its header says");
	refused(build(good, 2, TAR), "plain tar, no gzip");
	b = gzip_bytes(tar.p, tar.len);
	refused(gzip_bytes(b.p, b.len), "gzip inside gzip");
	accepted(b, "the same tgz, once", dir, sizeof(dir));
	rm_rf(dir);
	free_buf(&tar);
	b = build(good, 2, TGZ);
	b.len /= 2;
	refused(b, "truncated gzip");
	refused(build(none, 0, TGZ), "empty tar");
	refused((struct buf){calloc(1, 1), 0}, "zero bytes");
	refused(build(good, 2, ZIP), "zip posing as tgz");
	b.p = (unsigned char *)strdup("apiVersion: v2\nname: x\nversion: 1.0.0\n");
	b.len = strlen((char *)b.p);
	refused(b, "plain text posing as tgz");
	b = build(good, 2, TGZ);
	b.p[20] ^= 0xff; /* inside the deflate stream */
	refused(b, "corrupt deflate data");
}

/* ---- the store ----------------------------------------------------------- */

struct fetch_arg {
	const void *data;
	size_t len;
	atomic_int calls;
	int delay_ms;
};

static int fetch_cb(void *arg, int fd)
{
	struct fetch_arg *f = arg;

	atomic_fetch_add(&f->calls, 1);
	if (f->delay_ms)
		nanosleep(&(struct timespec){0, f->delay_ms * 1000000L}, NULL);
	return write(fd, f->data, f->len) == (ssize_t)f->len ? 0 : -EIO;
}

static void digest_of(const void *p, size_t len, char d[DIGEST_STR_MAX])
{
	if (digest_buf(p, len, d))
		abort();
}

struct thread_arg {
	struct blobcache *bc;
	const char *digest;
	struct fetch_arg *f;
	int ret;
	char path[4096];
	bool tree;
};

static void *get_thread(void *p)
{
	struct thread_arg *t = p;

	if (t->tree)
		t->ret = blobcache_tree(t->bc, t->digest, t->path, sizeof(t->path));
	else
		t->ret = blobcache_get(t->bc, t->digest, (int64_t)t->f->len, fetch_cb,
				       t->f, t->path, sizeof(t->path));
	return NULL;
}

/* Run 8 threads doing the same get or tree; true if all agree and pass. */
static bool run8(struct blobcache *bc, const char *digest, struct fetch_arg *f, bool tree)
{
	struct thread_arg t[8];
	bool all = true;
	int i;

	for (i = 0; i < 8; i++)
		t[i] =
		    (struct thread_arg){.bc = bc, .digest = digest, .f = f, .tree = tree};
	pthread_t th[8];
	for (i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, get_thread, &t[i]);
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		all = all && t[i].ret == 0 && !strcmp(t[i].path, t[0].path);
	}
	return all;
}

static void test_blobs(struct blobcache *bc)
{
	static const char data[] = "hello, blob";
	char d[DIGEST_STR_MAX], other[DIGEST_STR_MAX], path[4096], tmp[4096], exp[4096];
	struct fetch_arg f = {.data = data, .len = sizeof(data) - 1};
	struct fetch_arg wrong = {.data = "other bytes", .len = 11};
	struct stat st;
	int fd;

	digest_of(data, f.len, d);
	digest_of("x", 1, other);
	snprintf(tmp, sizeof(tmp), "%s/tmp", blobcache_dir(bc));
	ok(blobcache_dir(bc)[0] == '/', "cache dir is absolute");
	ok(blobcache_get(bc, d, -1, NULL, NULL, path, sizeof(path)) == -ENOENT,
	   "a look-up miss is -ENOENT");
	ok(blobcache_get(bc, other, 1, fetch_cb, &wrong, path, sizeof(path)) == -EIO,
	   "wrong bytes: -EIO");
	ok(blobcache_get(bc, d, (int64_t)f.len + 1, fetch_cb, &f, path, sizeof(path)) ==
	       -EIO,
	   "size mismatch: -EIO");
	ok(lstat(path, &st) < 0 && count_entries(tmp) == 0,
	   "nothing kept in blobs/, tmp/ clean");
	f.calls = 0;
	ok(blobcache_get(bc, d, (int64_t)f.len, fetch_cb, &f, path, sizeof(path)) == 0,
	   "get with the right bytes");
	snprintf(exp, sizeof(exp), "%s/blobs/sha256/%s", blobcache_dir(bc), d + 7);
	ok(!strcmp(path, exp) && lstat(path, &st) == 0 &&
	       st.st_mode == (S_IFREG | 0444) && st.st_size == (off_t)f.len,
	   "stored at blobs/sha256/<hex>, 0444");
	ok(blobcache_get(bc, d, (int64_t)f.len, fetch_cb, &f, path, sizeof(path)) == 0 &&
	       blobcache_get(bc, d, -1, NULL, NULL, path, sizeof(path)) == 0 &&
	       f.calls == 1,
	   "second get does not fetch");
	ok(blobcache_get(bc, "sha256:ABC", 1, fetch_cb, &f, path, sizeof(path)) ==
		   -EINVAL &&
	       blobcache_get(bc, "sha256:../../../../etc/passwd", 1, fetch_cb, &f, path,
			     sizeof(path)) == -EINVAL &&
	       blobcache_get(bc, "md5:d41d8cd98f00b204e9800998ecf8427e", 1, fetch_cb, &f,
			     path, sizeof(path)) == -EINVAL &&
	       blobcache_tree(bc, "sha256:x", path, sizeof(path)) == -EINVAL &&
	       blobcache_put(bc, "sha256:", "", 0) == -EINVAL && f.calls == 1,
	   "invalid digests: -EINVAL, fetch never called");

	/* Damage found by size: removed and fetched again. */
	if (blobcache_get(bc, d, -1, NULL, NULL, path, sizeof(path)))
		abort();
	chmod(path, 0644);
	fd = open(path, O_WRONLY | O_APPEND);
	ok(fd >= 0 && write(fd, "!", 1) == 1, "damage a stored blob");
	close(fd);
	ok(blobcache_get(bc, d, -1, fetch_cb, &f, path, sizeof(path)) == 0 &&
	       f.calls == 1,
	   "size unknown: no re-hash, no re-fetch (documented)");
	ok(blobcache_get(bc, d, (int64_t)f.len, fetch_cb, &f, path, sizeof(path)) == 0 &&
	       f.calls == 2 && lstat(path, &st) == 0 && st.st_size == (off_t)f.len,
	   "wrong size on disk: fetched again");

	/* 8 threads, one cold digest, one fetch. */
	struct fetch_arg slow = {"slow blob", 9, 0, 200};
	digest_of(slow.data, slow.len, other);
	ok(run8(bc, other, &slow, false) && slow.calls == 1,
	   "8 concurrent gets fetch once (%d)", slow.calls);

	/* put */
	digest_of("manifest", 8, other);
	ok(blobcache_put(bc, other, "manifesx", 8) == -EIO &&
	       blobcache_get(bc, other, -1, NULL, NULL, path, sizeof(path)) == -ENOENT,
	   "put of wrong bytes: -EIO, nothing stored");
	ok(blobcache_put(bc, other, "manifest", 8) == 0 &&
	       blobcache_get(bc, other, 8, NULL, NULL, path, sizeof(path)) == 0 &&
	       blobcache_put(bc, other, "manifest", 8) == 0,
	   "put stores, and again is fine");

	/* spool + adopt */
	digest_of("published", 9, other);
	fd = blobcache_spool(bc, tmp, sizeof(tmp));
	ok(fd >= 0 && write(fd, "publishex", 9) == 9, "spool");
	ok(blobcache_adopt(bc, other, tmp) == -EIO && lstat(tmp, &st) == 0,
	   "adopt of wrong bytes: -EIO, spool left to the caller");
	ok(pwrite(fd, "d", 1, 8) == 1 && blobcache_adopt(bc, other, tmp) == 0 &&
	       lstat(tmp, &st) < 0 &&
	       blobcache_get(bc, other, 9, NULL, NULL, path, sizeof(path)) == 0,
	   "adopt moves the spool into the store");
	close(fd);
	ok(blobcache_adopt(bc, other, "/etc/passwd") == -EINVAL,
	   "adopt refuses a file outside tmp/");
}

static void test_trees(struct blobcache *bc)
{
	const struct ent good[] = {CY, {.name = "mychart/templates/x.yaml", .data = "x"}};
	const struct ent bad[] = {CY,
				  {.name = "mychart/l", .type = AE_IFLNK, .link = "/"}};
	struct buf g = build(good, 2, TGZ), b = build(bad, 2, TGZ);
	char dg[DIGEST_STR_MAX], db[DIGEST_STR_MAX], p1[4096], p2[4096], tmp[4096];
	struct stat s1, s2;
	struct fetch_arg f = {.data = g.p, .len = g.len};
	int fd;

	digest_of(g.p, g.len, dg);
	digest_of(b.p, b.len, db);
	snprintf(tmp, sizeof(tmp), "%s/tmp", blobcache_dir(bc));
	ok(blobcache_tree(bc, dg, p1, sizeof(p1)) == -ENOENT, "tree of a missing blob");
	ok(blobcache_put(bc, dg, g.p, g.len) == 0 &&
	       blobcache_put(bc, db, b.p, b.len) == 0,
	   "put two charts");
	ok(blobcache_tree(bc, dg, p1, sizeof(p1)) == 0 && stat(p1, &s1) == 0 &&
	       s1.st_mode == (S_IFDIR | 0555),
	   "tree made, root 0555");
	ok(blobcache_tree(bc, dg, p2, sizeof(p2)) == 0 && !strcmp(p1, p2) &&
	       stat(p2, &s2) == 0 && s1.st_ino == s2.st_ino,
	   "tree twice: same path, unpacked once");
	ok(mode_of(p1, "templates/x.yaml") == (S_IFREG | 0444), "tree content");
	/* A symlink planted where the chart's tree goes is replaced. */
	rm_rf(p1);
	ok(symlink(work, p1) == 0 && blobcache_tree(bc, dg, p1, sizeof(p1)) == 0 &&
	       lstat(p1, &s1) == 0 && S_ISDIR(s1.st_mode) && lstat(work, &s2) == 0 &&
	       s2.st_mode == (S_IFDIR | 0700),
	   "a symlink at the tree path is replaced, not followed");
	ok(blobcache_tree(bc, db, p2, sizeof(p2)) == -EIO && lstat(p2, &s2) < 0 &&
	       count_entries(tmp) == 0,
	   "refused chart: -EIO, nothing in trees/, tmp/ clean");

	/* Same size, other bytes: caught when a tree is made, then refetched. */
	rm_rf(p1);
	ok(blobcache_get(bc, dg, -1, NULL, NULL, p2, sizeof(p2)) == 0, "blob there");
	chmod(p2, 0644);
	fd = open(p2, O_WRONLY);
	ok(fd >= 0 && pwrite(fd, "\0", 1, 100) == 1, "corrupt it in place");
	close(fd);
	ok(blobcache_tree(bc, dg, p1, sizeof(p1)) == -EIO && lstat(p2, &s2) < 0,
	   "tree detects the damage and removes the blob");
	ok(blobcache_get(bc, dg, (int64_t)g.len, fetch_cb, &f, p2, sizeof(p2)) == 0 &&
	       f.calls == 1 && run8(bc, dg, NULL, true),
	   "refetched; 8 concurrent trees agree");
	free_buf(&g);
	free_buf(&b);
}

static void test_stale_tmp(void)
{
	const struct timespec old[2] = {{time(NULL) - 3 * 86400, 0},
					{time(NULL) - 3 * 86400, 0}};
	char cache[128];
	struct blobcache *bc;
	struct stat st;
	int w = open(work, O_RDONLY | O_DIRECTORY), held;

	snprintf(cache, sizeof(cache), "%s/stale", work);
	if (blobcache_new(cache, &bc))
		abort();
	blobcache_free(bc);
	/* An old unpack with a 0555 subdirectory, an old and a fresh file,
	 * and an old symlink to a directory that must survive. */
	mkdirat(w, "stale/tmp/tree-old", 0700);
	mkdirat(w, "stale/tmp/tree-old/sub", 0700);
	close(openat(w, "stale/tmp/tree-old/sub/f", O_WRONLY | O_CREAT, 0444));
	fchmodat(w, "stale/tmp/tree-old/sub", 0555, 0);
	close(openat(w, "stale/tmp/blob-old", O_WRONLY | O_CREAT, 0600));
	/* Fresh: one no daemon holds (a killed one's), one a daemon holds
	 * (locked), and a kind that is not locked (kept for 24 hours). */
	close(openat(w, "stale/tmp/spool-dead", O_WRONLY | O_CREAT, 0600));
	held = openat(w, "stale/tmp/blob-new", O_WRONLY | O_CREAT, 0600);
	if (held < 0 || flock(held, LOCK_EX) < 0)
		abort();
	close(openat(w, "stale/tmp/meta-new", O_WRONLY | O_CREAT, 0600));
	mkdirat(w, "canary", 0700);
	close(openat(w, "canary/f", O_WRONLY | O_CREAT, 0600));
	if (symlinkat(work, w, "stale/tmp/link-old") < 0)
		abort();
	utimensat(w, "stale/tmp/tree-old", old, 0);
	utimensat(w, "stale/tmp/blob-old", old, 0);
	utimensat(w, "stale/tmp/blob-new", old, 0); /* held: kept, however old */
	utimensat(w, "stale/tmp/link-old", old, AT_SYMLINK_NOFOLLOW);
	ok(blobcache_new(cache, &bc) == 0, "reopen the cache");
	blobcache_free(bc);
	snprintf(cache, sizeof(cache), "%s/stale/tmp", work);
	ok(fstatat(w, "stale/tmp/blob-new", &st, 0) == 0 &&
	       fstatat(w, "stale/tmp/meta-new", &st, 0) == 0 && count_entries(cache) == 2,
	   "old and unheld tmp leftovers removed; held and fresh unlocked kinds kept");
	close(held);
	ok(fstatat(w, "canary/f", &st, 0) == 0,
	   "a symlink in tmp/ is removed, not followed");
	close(w);
}

int main(void)
{
	struct blobcache *bc;
	char cache[128];

	snprintf(work, sizeof(work), "/tmp/test_cache-XXXXXX");
	if (!mkdtemp(work))
		return 1;
	test_good();
	test_good_variants();
	test_names();
	test_types();
	test_streams();
	test_total();
	snprintf(cache, sizeof(cache), "%s/cache", work);
	ok(blobcache_new(cache, &bc) == 0, "blobcache_new");
	test_blobs(bc);
	test_trees(bc);
	blobcache_free(bc);
	test_stale_tmp();
	rm_rf(work);
	return tap_done();
}
