/*
 * test_cache_limits.c - the bounds that keep a hostile chart cheap and the
 * store removable: path length and depth, the directories a chart makes,
 * the cache directory's length, eviction, and a descriptor size that lies
 * about a verified blob. test_cache.c has the rest of the rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/blobcache.h"
#include "cache/blobcache_i.h"
#include "cache/unpack.h"
#include "common/digest.h"
#include "tests/unit/tap.h"
#include "tests/unit/test_cache_i.h"

#define YAML "apiVersion: v2\nname: mychart\nversion: 0.1.0\n"
#define CY                                                                               \
	{                                                                                \
		.name = "mychart/Chart.yaml", .data = YAML                               \
	}

static char work[64];

/* Both entry points give the same answer (0 or -EIO); the unpacked tree is
 * left in dir for the caller to look at and remove. */
static int both(struct buf b, const char *what, char *dir, size_t dirlen, int want)
{
	char *yaml = NULL, *top = NULL;
	int r1 = chart_check_mem(b.p, b.len, &yaml, &top);
	int r2 = unpack_buf(work, &b, dir, dirlen);

	ok(r1 == want && r2 == want, "%s: %s (%d, %d)", want ? "refused" : "accepted",
	   what, r1, r2);
	free(yaml);
	free(top);
	free_buf(&b);
	return r2;
}

/* "mychart/<branch>/d/.../d/f" in out (of at least 256 bytes): depth
 * directories, depth + 1 components below the top folder. */
static void deep_name(char *out, const char *branch, int depth)
{
	size_t len = (size_t)snprintf(out, 256, "mychart/%s", branch);
	int i;

	for (i = 1; i < depth; i++)
		len += (size_t)snprintf(out + len, 256 - len, "/d");
	snprintf(out + len, 256 - len, "/f");
}

static void test_paths(void)
{
	char name[2048], dir[128];
	struct ent e[2] = {CY, {.name = name, .data = "x"}};
	size_t i;

	/* 1024 bytes in all, 255-byte components: the longest path taken. */
	memset(name, 'p', 1024);
	name[1024] = '\0';
	memcpy(name, "mychart/", 8);
	for (i = 8 + 255; i < 1024; i += 256)
		name[i] = '/';
	if (!both(build(e, 2, TGZ), "a path of 1024 bytes", dir, sizeof(dir), 0))
		ok(mode_of(dir, name + 8) == (S_IFREG | 0444), "its file is there");
	rm_rf(dir);
	name[1024] = 'q';
	name[1025] = '\0';
	both(build(e, 2, TGZ), "a path of 1025 bytes", dir, sizeof(dir), -EIO);
	rm_rf(dir);

	/* 64 components below the top folder, then 65. */
	deep_name(name, "b", 63);
	if (!both(build(e, 2, TGZ), "64 components", dir, sizeof(dir), 0))
		ok(mode_of(dir, name + 8) == (S_IFREG | 0444), "the deep file is there");
	rm_rf(dir);
	deep_name(name, "b", 64);
	both(build(e, 2, TGZ), "65 components", dir, sizeof(dir), -EIO);
	rm_rf(dir);

	/* helm refuses a cleaned path that starts with "..", not a later
	 * component that does. */
	e[1].name = "mychart/..foo";
	both(build(e, 2, TGZ), "mychart/..foo", dir, sizeof(dir), -EIO);
	rm_rf(dir);
	e[1].name = "mychart/./..foo/x";
	both(build(e, 2, TGZ), "mychart/./..foo/x", dir, sizeof(dir), -EIO);
	rm_rf(dir);
	e[1].name = "mychart/a/..foo";
	if (!both(build(e, 2, TGZ), "mychart/a/..foo", dir, sizeof(dir), 0))
		ok(mode_of(dir, "a/..foo") == (S_IFREG | 0444), "a/..foo kept");
	rm_rf(dir);
	/* helm skips directory entries before any check: nothing made. */
	e[1] = (struct ent){.name = "mychart/..foo/", .type = AE_IFDIR};
	if (!both(build(e, 2, TGZ), "a directory entry mychart/..foo/", dir, sizeof(dir),
		  0))
		ok(count_entries(dir) == 1, "only Chart.yaml made");
	rm_rf(dir);
	/* helm: path.IsAbs("/x") once the top folder is cut off */
	e[1] = (struct ent){.name = "mychart//x", .data = "x"};
	both(build(e, 2, TGZ), "mychart//x", dir, sizeof(dir), -EIO);
	rm_rf(dir);
	/* helm's ^[a-zA-Z]:/ wants the slash: a file named "c:" is fine. */
	e[1].name = "mychart/c:";
	if (!both(build(e, 2, TGZ), "a file named c:", dir, sizeof(dir), 0))
		ok(mode_of(dir, "c:") == (S_IFREG | 0444), "c: kept");
	rm_rf(dir);
	e[1].name = "mychart/c:foo/x";
	both(build(e, 2, TGZ), "mychart/c:foo/x", dir, sizeof(dir), 0);
	rm_rf(dir);
	e[1].name = "mychart/./c:/./x";
	both(build(e, 2, TGZ), "mychart/./c:/./x", dir, sizeof(dir), -EIO);
	rm_rf(dir);
}

/* n files: "mychart/<i>/d/.../f", each depth directories deep. */
static struct buf many(int n, int depth)
{
	struct ent *e = calloc((size_t)n + 1, sizeof(*e));
	char *names = malloc((size_t)n * 256), branch[16];
	struct buf b;
	int i;

	e[0] = (struct ent)CY;
	for (i = 0; i < n; i++) {
		snprintf(branch, sizeof(branch), "%05d", i);
		deep_name(names + (size_t)i * 256, branch, depth);
		e[i + 1] = (struct ent){.name = names + (size_t)i * 256, .data = "x"};
	}
	b = build(e, (size_t)n + 1, TGZ);
	free(names);
	free(e);
	return b;
}

static void test_dirs(void)
{
	char dir[128], name[256], branch[16], *yaml = NULL, *top = NULL;
	struct buf b;
	int i, wrong = 0;

	/* Deep branches side by side ("00001/d" sorts after "00000/d/d"):
	 * every directory gets 0555 in one pass. */
	if (!both(many(16, 63), "16 files 64 deep", dir, sizeof(dir), 0)) {
		for (i = 0; i < 16; i++) {
			snprintf(branch, sizeof(branch), "%05d", i);
			wrong += mode_of(dir, branch) != (S_IFDIR | 0555);
			deep_name(name, branch, 63);
			*strrchr(name, '/') = '\0';
			wrong += mode_of(dir, name + 8) != (S_IFDIR | 0555);
		}
		ok(!wrong, "every directory 0555, deepest included");
	}
	rm_rf(dir);

	/* The directories themselves cost the time here (ext4 inode
	 * allocation), which is why they are bounded. */
	both(many(10000, 1), "10,000 directories", dir, sizeof(dir), 0);
	rm_rf(dir);
	both(many(10001, 1), "10,001 directories", dir, sizeof(dir), -EIO);
	/* Chart.yaml and the first 10,000 directories: the walker refuses
	 * before the sink makes the next one. */
	ok(count_entries(dir) <= 10001, "no more than 10,000 directories made (%d)",
	   count_entries(dir) - 1);
	rm_rf(dir);
	/* The reported case: 2000 files 10 deep asked for 20,000 directories
	 * (counted nested; the sink shares the count, see above). */
	b = many(2000, 10);
	ok(chart_check_mem(b.p, b.len, &yaml, &top) == -EIO,
	   "refused: 2000 files 10 deep (20,000 directories)");
	free(yaml);
	free(top);
	free_buf(&b);
}

/* Make work/<n bytes of path> (components of at most 200 bytes). */
static void long_dir(char *out, size_t n)
{
	size_t len = strlen(work);

	snprintf(out, n + 1, "%s", work);
	while (len < n) {
		size_t k = n - len - 1 > 200 ? 200 : n - len - 1;

		out[len++] = '/';
		memset(out + len, 'c', k);
		len += k;
		out[len] = '\0';
		if (mkdir(out, 0700) < 0 && errno != EEXIST)
			abort();
	}
}

static void digest_of(const void *p, size_t len, char d[DIGEST_STR_MAX])
{
	if (digest_buf(p, len, d))
		abort();
}

static int fetch_cb(void *arg, int fd)
{
	(*(int *)arg)++;
	return write(fd, "hello, blob", 11) == 11 ? 0 : -EIO;
}

static void test_store(void)
{
	char cache[4200], p1[4200], p2[4200], tmp[4200], name[1100], d1[DIGEST_STR_MAX],
	    d2[DIGEST_STR_MAX];
	struct ent e[2] = {CY, {.name = name, .data = "x"}};
	struct blobcache *bc = NULL;
	struct buf b1, b2;
	struct stat st;
	int calls = 0;
	size_t i;

	snprintf(cache, sizeof(cache), "%s/no/such/parent/cache", work);
	ok(blobcache_new(cache, &bc) == -ENOENT && !bc,
	   "missing parent: -ENOENT, no crash");
	long_dir(cache, BLOBCACHE_MAX_DIR + 1);
	ok(blobcache_new(cache, &bc) == -ENAMETOOLONG,
	   "cache dir over 2048 bytes refused");
	*strrchr(cache, '/') = '\0';
	long_dir(cache, BLOBCACHE_MAX_DIR);
	if (blobcache_new(cache, &bc))
		abort();
	ok(strlen(blobcache_dir(bc)) == BLOBCACHE_MAX_DIR,
	   "cache dir of 2048 bytes taken");

	/* Two charts with 1024-byte paths under it: trees made and evicted
	 * whole, nothing left in tmp/. */
	memset(name, 'p', 1024);
	name[1024] = '\0';
	memcpy(name, "mychart/", 8);
	for (i = 8 + 255; i < 1024; i += 256)
		name[i] = '/';
	b1 = build(e, 2, TGZ);
	name[1023] = 'q';
	b2 = build(e, 2, TGZ);
	name[1023] = 'p';
	digest_of(b1.p, b1.len, d1);
	digest_of(b2.p, b2.len, d2);
	snprintf(tmp, sizeof(tmp), "%s/tmp", blobcache_dir(bc));
	ok(blobcache_put(bc, d1, b1.p, b1.len) == 0 &&
	       blobcache_put(bc, d2, b2.p, b2.len) == 0 &&
	       blobcache_tree(bc, d1, p1, sizeof(p1)) == 0 &&
	       mode_of(p1, name + 8) == (S_IFREG | 0444),
	   "long paths below a long cache dir unpack");
	blobcache_set_max(bc, 1);
	ok(blobcache_tree(bc, d2, p2, sizeof(p2)) == 0 && lstat(p1, &st) < 0 &&
	       errno == ENOENT && mode_of(p2, "") == (S_IFDIR | 0555) &&
	       count_entries(tmp) == 0,
	   "evicted tree gone whole (via tmp/), the new one kept, tmp/ clean");
	blobcache_set_max(bc, 0);
	free_buf(&b1);
	free_buf(&b2);

	/* A descriptor size that lies does not remove a verified blob. */
	digest_of("hello, blob", 11, d1);
	ok(blobcache_get(bc, d1, 11, fetch_cb, &calls, p1, sizeof(p1)) == 0 && calls == 1,
	   "blob stored");
	ok(blobcache_get(bc, d1, 12, fetch_cb, &calls, p1, sizeof(p1)) == -EIO &&
	       blobcache_get(bc, d1, 10, NULL, NULL, p1, sizeof(p1)) == -EIO &&
	       calls == 1 && lstat(p1, &st) == 0 && st.st_size == 11,
	   "wrong descriptor size: -EIO, verified blob kept, not fetched");
	ok(blobcache_get(bc, d1, 11, NULL, NULL, p1, sizeof(p1)) == 0,
	   "the right size still finds it");
	blobcache_free(bc);
}

/* What cache_max counts: each entry its size rounded up to a block, at
 * least one, plus its inode; a chart of empty files is no longer free. */
static void test_accounting(void)
{
	char cache[256], path[256], p1[4200], p2[4200], d1[DIGEST_STR_MAX],
	    d2[DIGEST_STR_MAX];
	struct ent *e = calloc(301, sizeof(*e));
	char *names = malloc(300 * 32);
	struct timespec old[2] = {{.tv_sec = 1000}, {.tv_sec = 1000}};
	struct blobcache *bc = NULL;
	struct buf b1, b2;
	struct stat st;
	int fd, i;

	snprintf(path, sizeof(path), "%s/sized", work);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	if (fd < 0 || fstat(fd, &st) < 0)
		abort();
	ok(blobcache_cost(&st) == BLOBCACHE_BLOCK + BLOBCACHE_ENTRY_COST,
	   "an empty file counts one block and its inode");
	if (ftruncate(fd, 5000) < 0 || fstat(fd, &st) < 0)
		abort();
	close(fd);
	ok(blobcache_cost(&st) >= 2 * BLOBCACHE_BLOCK + BLOBCACHE_ENTRY_COST,
	   "5000 bytes count two blocks");
	if (stat(work, &st) < 0)
		abort();
	ok(blobcache_cost(&st) >= BLOBCACHE_BLOCK + BLOBCACHE_ENTRY_COST,
	   "a directory counts at least one block");

	/* A chart of 300 empty files counts 1.35 MB: past a bound of 1 MiB,
	 * it evicts the older chart (never itself). */
	snprintf(cache, sizeof(cache), "%s/acct", work);
	if (mkdir(cache, 0700) < 0 || blobcache_new(cache, &bc))
		abort();
	e[0] = (struct ent)CY;
	e[1] = (struct ent){.name = "mychart/a.yaml", .data = "x"};
	b1 = build(e, 2, TGZ);
	for (i = 0; i < 300; i++) {
		snprintf(names + i * 32, 32, "mychart/templates/f%03d", i);
		e[i + 1] = (struct ent){.name = names + i * 32, .data = ""};
	}
	b2 = build(e, 301, TGZ);
	digest_of(b1.p, b1.len, d1);
	digest_of(b2.p, b2.len, d2);
	blobcache_set_max(bc, 1 << 20);
	ok(blobcache_put(bc, d1, b1.p, b1.len) == 0 &&
	       blobcache_tree(bc, d1, p1, sizeof(p1)) == 0,
	   "a small chart unpacked under a bound of 1 MiB");
	utimensat(AT_FDCWD, p1, old, AT_SYMLINK_NOFOLLOW);
	ok(blobcache_put(bc, d2, b2.p, b2.len) == 0 &&
	       blobcache_tree(bc, d2, p2, sizeof(p2)) == 0 && lstat(p1, &st) < 0 &&
	       errno == ENOENT && lstat(p2, &st) == 0,
	   "300 empty files pass 1 MiB: the older tree evicted, the new one kept");
	blobcache_free(bc);
	free_buf(&b1);
	free_buf(&b2);
	free(names);
	free(e);
}

int main(void)
{
	/* tmpfs where there is one: on ext4, making thousands of directories
	 * right after removing thousands costs seconds of inode scanning
	 * (recently_deleted), and this test does little else. */
	snprintf(work, sizeof(work), "%s/test_cache_limits-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(work))
		return 1;
	test_paths();
	test_dirs();
	test_store();
	test_accounting();
	rm_rf(work);
	return tap_done();
}
