/*
 * ll.h - chartfs on libfuse's low-level API: the kernel's inodes mapped onto
 * the path operations of ops.c, write.c and xattr.c.
 *
 * Why not libfuse's high-level API: it needs a handle for every open
 * directory (OPENDIR and RELEASEDIR on every walk), does not pass
 * cache_readdir on, and gives one timeout to every entry. Here:
 * - an inode is a path the kernel looked up (counted until FORGET); a name
 *   whose stable st_ino changed (a tag moved to another digest) gets a new
 *   inode, so the kernel drops all it cached under the old one;
 * - what is inside a chart is cached by the kernel for good: entries,
 *   attributes, missing names, pages and listings. Names above follow the
 *   ttl; files being written are asked for every time;
 * - with ttl > 0, OPENDIR is answered ENOSYS, so the kernel keeps every
 *   listing; a listing that follows the ttl is dropped from the kernel's
 *   cache by a sweeper thread once it is older than the ttl (or at SIGHUP);
 * - on a read-only mount OPEN is answered ENOSYS too: no OPEN or RELEASE
 *   per file, and the page cache is kept.
 *
 * Threads: the session loop may run many threads; the inode table has its
 * own lock, never held across a path operation. The sweeper thread starts
 * in chartfs_ll_start (after fuse_daemonize, which forks).
 */
#ifndef CHARTFS_LL_H
#define CHARTFS_LL_H

#include "fs/chartfs_i.h"

struct chartfs_ll;

/* A session for c with the FUSE options in args (not mounted yet). */
int chartfs_ll_new(struct chartfs *c, struct fuse_args *args,
		   struct chartfs_ll **out) WUR;
/* Free what chartfs_ll_new made: stops the sweeper, unmounts if mounted,
 * destroys the session, forgets every inode. NULL is fine. */
void chartfs_ll_free(struct chartfs_ll *ll);
/* The session, to mount, loop and install signal handlers on. */
struct fuse_session *chartfs_ll_session(struct chartfs_ll *ll);
/* Mount on mountpoint (before daemonizing: the command returns ready). */
int chartfs_ll_mount(struct chartfs_ll *ll, const char *mountpoint) WUR;
/* Start the sweeper thread (after daemonizing). */
int chartfs_ll_start(struct chartfs_ll *ll) WUR;
/* Async-signal-safe: drop every listing the kernel keeps at the sweeper's
 * next turn (SIGHUP, "forget names"). */
void chartfs_ll_forget_listings(struct chartfs_ll *ll);

#endif
