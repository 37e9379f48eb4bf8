/*
 * blobcache.h - the content-addressed local store: blobs by digest and chart
 * trees unpacked from them.
 *
 * Layout under the cache directory (shared safely by several daemons of one
 * user: everything is written to a temp name and renamed into place):
 *   blobs/sha256/<hex>      verified blob bytes (mode 0444)
 *   trees/sha256/<hex>/     the chart of blob <hex>, its top folder stripped
 *   tmp/                    partial downloads, unpacks, and publish spools
 *
 * A daemon holds an flock on each temp file and unpack directory of its own
 * for as long as it has it open; blobcache_new removes those of tmp/ that
 * no daemon holds (leftovers of a killed one, at once), and other temp
 * entries after 24 hours.
 *
 * Contract:
 * - Threads: every function is thread-safe. Fetches and unpacks are
 *   single-flight per digest: concurrent callers for the same cold digest
 *   wait for one download / one unpack and share its result.
 * - A miss is not an error: blobcache_get() calls the fetch callback, checks
 *   the bytes' sha256 (and size when known) and only then renames them into
 *   place. A mismatch is -EIO and nothing is kept. An entry found corrupt on
 *   disk is removed and fetched again.
 * - Digests that are not "sha256:<64 lowercase hex>" are -EINVAL and never
 *   reach a file name.
 * - Unpacking follows helm's loader: gzip + tar only; the first path component
 *   is stripped; absolute paths, "..", drive letters, backslash tricks, links,
 *   devices, FIFOs are refused; at most CHART_MAX_TOTAL bytes decompressed and
 *   CHART_MAX_FILE per file. A refused chart is -EIO with one log line naming
 *   the rule, and leaves nothing in trees/. Files are written 0444, dirs 0555,
 *   with openat(O_CREAT|O_EXCL|O_NOFOLLOW), never with archive_write_disk.
 * - Paths returned are absolute and stay valid while the daemon runs.
 */
#ifndef CHARTFS_BLOBCACHE_H
#define CHARTFS_BLOBCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define CHART_MAX_TOTAL (100ll * 1024 * 1024) /* helm MaxDecompressedChartSize */
#define CHART_MAX_FILE (5ll * 1024 * 1024)    /* helm MaxDecompressedFileSize */

struct blobcache;

/* Write the blob's bytes to fd (a fresh, empty temp file). 0 or -errno,
 * with one log line for a failure, a write into fd that failed included
 * (that line names the cache: blobcache_dir()). */
typedef int (*blobcache_fetch_fn)(void *arg, int fd);

/* Open (creating) the store rooted at dir. */
int blobcache_new(const char *dir, struct blobcache **out) WUR;
void blobcache_free(struct blobcache *bc);
/* The root directory. */
const char *blobcache_dir(const struct blobcache *bc);

/* Ensure blob digest is stored; path gets its file name. size < 0 when
 * unknown. fetch may be NULL to only look (then a miss is -ENOENT). A
 * failure to store it (-ENOSPC: the cache's disk is full) is returned as it
 * is, with one log line naming the cache directory and the reason. */
int blobcache_get(struct blobcache *bc, const char *digest, int64_t size,
		  blobcache_fetch_fn fetch, void *arg, char *path, size_t pathlen) WUR;

/* Store a buffer under its digest (e.g. a manifest), verifying it. */
int blobcache_put(struct blobcache *bc, const char *digest, const void *data,
		  size_t len) WUR;

/* Ensure the chart in (already stored) blob digest is unpacked; path gets
 * the tree's root directory. -EIO for a chart that breaks a rule; -ENOENT
 * when the blob is not stored; any other failure (-ENOSPC) as it is, with
 * one log line naming the cache directory and the reason. */
int blobcache_tree(struct blobcache *bc, const char *digest, char *path,
		   size_t pathlen) WUR;

/* What max_bytes counts for each file, directory and link of the store
 * (blobs, and every entry of a tree): its size rounded up to a
 * BLOBCACHE_BLOCK, at least one, never less than the blocks it takes, plus
 * BLOBCACHE_ENTRY_COST for its inode and name. A chart of 20,000 empty
 * files counts 20,000 * 4.5 KiB (90 MB), what it costs a file system. */
#define BLOBCACHE_BLOCK 4096
#define BLOBCACHE_ENTRY_COST 512

struct stat;

/* The bytes one entry of the store counts (the rule above). */
uint64_t blobcache_cost(const struct stat *st);

/* -o cache_max when not given: 1 GiB. */
#define BLOBCACHE_MAX_DEFAULT (1ull << 30)

/* Bound the store to max_bytes (0: unbounded, the default): after new
 * content, least recently used blobs and trees are removed (cache/evict.c),
 * each counted by blobcache_cost. */
void blobcache_set_max(struct blobcache *bc, uint64_t max_bytes);
/* Mark digest's blob and tree as used now (for the eviction order). */
void blobcache_touch(struct blobcache *bc, const char *digest);

/* Blob lookups answered from the store (hits) and fetched (misses) since
 * the store was opened, for the root xattrs. */
void blobcache_stats(const struct blobcache *bc, uint64_t *hits, uint64_t *misses);

/* Create an empty temp file under tmp/ for spooling writes; returns its fd
 * (>= 0) and its path, or -errno. The caller unlinks or adopts it, and
 * keeps fd open while it needs the file: once fd is closed, a daemon
 * starting on this cache dir may remove it. */
int blobcache_spool(struct blobcache *bc, char *path, size_t pathlen) WUR;

/* Move a verified temp file into the store as blob digest (for publishes):
 * checks its sha256, renames it. */
int blobcache_adopt(struct blobcache *bc, const char *digest, const char *tmppath) WUR;

#endif
