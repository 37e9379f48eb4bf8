/*
 * meta.h - small documents kept by key with the time they were fetched.
 *
 * Names (a registry's catalog, a repository's tag -> digest map) are only
 * trusted for the ttl; keeping them on disk with their fetch time lets a
 * remount within the ttl answer without asking the registry again, exactly
 * as the mount that fetched them would have.
 *
 * Contract: thread-safe (each document is written to a temp file and renamed
 * into place); keys are hashed into file names under <cache>/meta/, so any
 * string is a valid key. A document older than max_age is a miss (-ENOENT),
 * as is one that was never stored.
 */
#ifndef CHARTFS_META_H
#define CHARTFS_META_H

#include <stddef.h>

#include "cache/blobcache.h"
#include "common/compiler.h"

/* Store text under key, timestamped now. */
int meta_put(struct blobcache *bc, const char *key, const char *text, size_t len) WUR;

/* The text stored under key if it is at most max_age seconds old: *text is
 * malloc'd and NUL-terminated, *age gets its age in seconds. */
int meta_get(struct blobcache *bc, const char *key, unsigned max_age, char **text,
	     size_t *len, unsigned *age) WUR;

/* Forget what is stored under key (0 also when nothing was). */
int meta_drop(struct blobcache *bc, const char *key);

#endif
