/*
 * unpack.h - helm's chart loader rules, applied to a .tgz with libarchive.
 *
 * Contract: pure with respect to process state (no umask, no cwd changes);
 * any thread. Only the gzip filter and tar formats are enabled.
 */
#ifndef CHARTFS_UNPACK_H
#define CHARTFS_UNPACK_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

/* Unpack the chart archive read from fd into the existing, empty directory
 * dirfd, stripping the top folder and applying every rule in blobcache.h.
 * Returns 0, -EIO with one log line "cache: <what>: <rule>" (what names the
 * archive for the log), or another -errno that is not logged (-ENOSPC: the
 * directory could not take the chart; the caller, which knows what
 * directory it is, reports it). On error the directory may hold partial
 * output: the caller removes it. */
int chart_unpack_fd(int fd, int dirfd, const char *what) WUR;

/* Validate a chart archive held in memory without writing anything (the
 * same rules; used by the fuzzer and by publish). On success *chart_yaml gets
 * a malloc'd copy of <top>/Chart.yaml (NUL-terminated) and *top the top
 * folder name, if the pointers are non-NULL. */
int chart_check_mem(const void *data, size_t len, char **chart_yaml, char **top) WUR;

#endif
