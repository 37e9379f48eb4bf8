/* blobcache_i.h - private to cache/blobcache.c and cache/evict.c. */
#ifndef CHARTFS_BLOBCACHE_I_H
#define CHARTFS_BLOBCACHE_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache/blobcache.h"

struct flight;

struct blobcache {
	char *dir;
	pthread_mutex_t lock;
	struct flight *flights;
	atomic_uint_fast64_t hits, misses; /* blobcache_get() answers */
	uint64_t max_bytes;		   /* 0: unbounded */
	pthread_mutex_t evict_lock;	   /* one eviction scan at a time */
	uint64_t approx_total; /* store size at the last scan, plus what came since */
	bool scanned;	       /* approx_total is known */
};

/* The longest cache directory (its real path) we take: with a chart path of
 * at most CHART_MAX_PATH bytes below tmp/tree-XXXXXX/, every path in the
 * store stays under PATH_MAX, so nftw can remove any tree we make. */
#define BLOBCACHE_MAX_DIR 2048

/* Remove a directory tree without following links (trees are made 0555):
 * 0 once it is gone, or -errno (logged). */
int blobcache_rm_tree(const char *path);
/* After new content at keep: if the store is over its bound, remove the
 * least recently used blobs and trees (never keep itself). */
void blobcache_evict(struct blobcache *bc, const char *keep);

#endif
