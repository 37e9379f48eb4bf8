/*
 * unpack_i.h - the rule walker shared by chart_unpack_fd() and
 * chart_check_mem(): every rule lives in the walker, the sinks only store.
 */
#ifndef CHARTFS_UNPACK_I_H
#define CHARTFS_UNPACK_I_H

#include <archive.h>
#include <stddef.h>

#include "common/compiler.h"

/* Bounds on what a chart may make us create, shared by the walker and the
 * directory sink. A path of at most CHART_MAX_PATH bytes below a cache
 * directory of at most BLOBCACHE_MAX_DIR bytes stays well under PATH_MAX,
 * so every tree can be walked and removed by path; depth and directory
 * count bound the inodes and the work a hostile archive can cost. */
#define CHART_MAX_PATH 1024
#define CHART_MAX_DEPTH 64 /* components below the top folder */
#define CHART_MAX_DIRS 10000

/* Where the walker sends each accepted regular file. Paths are cleaned,
 * relative to the chart root (top folder stripped) and already checked. */
struct chart_sink {
	/* Start a new file (creating its parent directories as needed). */
	int (*open)(struct chart_sink *s, const char *path);
	int (*write)(struct chart_sink *s, const void *buf, size_t len);
	int (*close)(struct chart_sink *s);
	/* Every entry passed: finish (e.g. fix directory modes). */
	int (*finish)(struct chart_sink *s);
};

/* qsort order of paths with '/' below every other byte: a directory is
 * followed directly by everything below it (depth-first order). */
int chart_path_cmp(const void *x, const void *y);

/* Log the one refusal line and return -EIO. */
int chart_refuse(const char *what, const char *rule) WUR;

/* Walk an opened archive, applying every rule and feeding the sink. A sink
 * error -EEXIST / -ENOTDIR is a duplicate or conflicting path (-EIO); other
 * sink errors are returned as they are. -EIO (a refused chart, or the
 * sink's) is logged once here; any other -errno is not logged: the caller
 * knows where the files were going and says so. On success *top (if
 * non-NULL) gets a malloc'd copy of the top folder name. */
int chart_walk(struct archive *a, struct chart_sink *s, const char *what, char **top) WUR;

#endif
