/*
 * inodes.h - the kernel's inodes for fs/ll.c: FUSE node ids mapped to paths,
 * counted by the kernel's lookups, and the sweeper that drops the kernel's
 * cached listings of names that follow the ttl.
 *
 * Contract:
 * - A node is a path the kernel was given (LOOKUP, READDIRPLUS, CREATE,
 *   MKDIR) and keeps until FORGET brings its count to 0. Its path, st_ino
 *   and life are read without a lock: path and st_ino never change, life
 *   is a hint. A path whose st_ino changes (a tag moved to another digest)
 *   gets a new node; the old one lives on, unfindable by path, until the
 *   kernel forgets it.
 * - Threads: every function is thread-safe; one lock guards the table, the
 *   ring of listed directories and the ring of all nodes, and is never held
 *   while calling the kernel (invalidations are sent after it is dropped).
 * - A directory's listing is gathered once per listing pass (fs/ll.c) and
 *   kept on its node, served by offset to the reads that follow: an
 *   immutable snapshot, shared by counted references, so concurrent readers
 *   at different offsets each read a whole listing even while another pass
 *   swaps in a new one. A kept listing is dropped at the end of its pass, at
 *   FORGET, when the directory may have changed (inodes_inval_dirs, the
 *   sweeper), and, oldest first, when the kept ones pass
 *   INODES_LISTINGS_MAX bytes.
 * - Errors: 0 or -errno; inodes_ref gives NULL when out of memory.
 */
#ifndef CHARTFS_INODES_H
#define CHARTFS_INODES_H

#include <stdatomic.h>

#include "fs/chartfs_i.h"

/* What the listings kept between the reads of their passes may hold in
 * all, in bytes (about 160 bytes an entry: 400,000 entries). The newest
 * is kept whatever its size. */
#define INODES_LISTINGS_MAX (64u << 20)

/* One entry of a listing: its name is at names + name. */
struct inodes_dent {
	struct stat st; /* st_ino set before the listing is kept (fs/ll.c) */
	size_t name;
	int life; /* CHARTFS_FILL_NAME_ONLY or an enum chartfs_life */
};

/* A directory's listing, immutable once kept (inodes_listing_keep). */
struct inodes_listing {
	atomic_uint refs; /* private */
	size_t n, cap;
	struct inodes_dent *v;
	char *names;
	size_t names_len, names_cap;
};

struct inodes_node {
	struct inodes_node *hnext;	   /* private: hash chain, while hashed */
	struct inodes_node *lnext, *lprev; /* private: the listed ring */
	struct inodes_node *anext, *aprev; /* private: the ring of all nodes */
	uint64_t nlookup;		   /* private: the kernel's references */
	bool hashed;			   /* private: findable by path */
	struct timespec listed_at;	   /* private: listing given to the kernel */
	ino_t st_ino;			   /* the inode number stat(2) shows */
	enum chartfs_life life;		   /* how long the kernel trusts it */
	struct inodes_node *knext, *kprev; /* private: the kept ring */
	struct inodes_listing *kept;	   /* private: its listing, between reads */
	atomic_size_t nlisted; /* entries of its last whole listing (fs/ll.c) */
	char path[];	       /* "/" for the root */
};

struct inodes;

/* An empty table (the root only) for a mount with this ttl. */
int inodes_new(double ttl, struct inodes **out) WUR;
/* Stop the sweeper and free every node. NULL is fine. */
void inodes_free(struct inodes *t);
/* The kernel keeps listings (OPENDIR answered ENOSYS): the sweeper and
 * inodes_inval_dirs must drop those that change. */
void inodes_cache_listings(struct inodes *t, bool on);
/* Start the sweeper, which sends its invalidations on se. */
int inodes_start(struct inodes *t, struct fuse_session *se) WUR;

/* The node of a node id the kernel holds, and back. */
struct inodes_node *inodes_get(struct inodes *t, fuse_ino_t ino);
fuse_ino_t inodes_id(struct inodes *t, struct inodes_node *n);
/* path's node with one more kernel reference, made (or remade: see above)
 * as needed; sets st->st_ino where it is 0 (derived from the path). */
struct inodes_node *inodes_ref(struct inodes *t, const char *path, struct stat *st,
			       enum chartfs_life life);
/* Drop count kernel references; the last one frees the node. */
void inodes_forget(struct inodes *t, struct inodes_node *n, uint64_t count);
/* Has the kernel been given path's node? */
bool inodes_known(struct inodes *t, const char *path);

/* dir's listing went into the kernel's cache (when it follows the ttl, the
 * sweeper drops it once it is older than the ttl). */
void inodes_listed(struct inodes *t, struct inodes_node *dir);
/* A change this daemon made under path (a push, a new host): drop the
 * kernel's listings of path's parent and every directory above, now. */
void inodes_inval_dirs(struct inodes *t, const char *path);
/* A push or delete this daemon made at path: drop the kernel's entries
 * (and cached listings) of names that follow the registry at most depth
 * components below path's directory, so that a re-pushed tag shows its
 * new tree at once. Sent by a thread of its own (the kernel takes
 * directory locks for it, which a request may hold: an UNLINK holds its
 * directory's until answered); with wait, the caller waits for it, at
 * most 2 s (INVAL_WAIT_SECONDS). */
void inodes_inval_beside(struct inodes *t, const char *path, unsigned depth, bool wait);
/* Async-signal-safe: drop every cached listing at once (SIGHUP). */
void inodes_forget_listings(struct inodes *t);

/* An empty listing with one reference, or NULL when out of memory. */
struct inodes_listing *inodes_listing_new(void);
/* Append an entry (a chartfs_fill_fn: buf is the listing); st NULL is a
 * directory known by name only ("." and ".."). */
int inodes_listing_add(void *buf, const char *name, const struct stat *st, int life);
/* Drop a reference; the last one frees the listing. NULL is fine. */
void inodes_listing_put(struct inodes_listing *l);
/* dir's kept listing with a reference for the caller, or NULL. */
struct inodes_listing *inodes_listing_get(struct inodes *t, struct inodes_node *dir);
/* Keep l (complete: no entry is added after) as dir's listing for the
 * reads that follow, in place of the one kept before; the table takes its
 * own reference. */
void inodes_listing_keep(struct inodes *t, struct inodes_node *dir,
			 struct inodes_listing *l);
/* The pass that read l reached its end: dir keeps l no more (a listing
 * swapped in meanwhile stays). */
void inodes_listing_done(struct inodes *t, struct inodes_node *dir,
			 struct inodes_listing *l);

/* A stable inode number from the string a then b (FNV-1a): the same across
 * mounts and daemons. Never 0 (none) or 1 (the root). */
ino_t inodes_ino(const char *a, const char *b);
/* The inode number of a path no digest names. */
ino_t inodes_path_ino(const char *path);
/* dir "/" name, malloc'd, or -ENAMETOOLONG / -ENOMEM. */
int inodes_join(const char *dir, const char *name, char **out) WUR;

#endif
