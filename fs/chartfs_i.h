/* chartfs_i.h - the daemon's shared context and helpers (private to fs/). */
#ifndef CHARTFS_I_H
#define CHARTFS_I_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "cache/blobcache.h"
#include "client/oci.h"
#include "model/hosts.h"
#include "model/model.h"
#include "model/push_sign.h"

/* A file being written into the mount: a chart on its way to the registry. */
struct upload {
	struct upload *next;
	char *path;	     /* the FUSE path it was created as */
	struct model *model; /* the registry it goes to */
	struct ns_node *dir; /* the directory it was written into */
	int fd;		     /* spool file in the cache's tmp/ */
	char spool[4096];
	size_t max; /* the largest file that could be published */
	int refs;   /* open handles */
	/* lock: the spool's bytes and the fields below; held by writes and
	 * for a whole push, so a push sees one state and pushes serialize. */
	pthread_mutex_t lock;
	bool dirty;	    /* written since the last push */
	int write_err;	    /* -errno of a failed spool write: flush fails with it */
	int push_err;	    /* the last push's result, for closes with nothing new */
	bool refused_empty; /* that push found the file empty: said at the end */
	/* Set once, under c->up_lock, when the last handle of an upload that
	 * was pushed closes: its spool is gone and it lingers by name only
	 * (see upload.c), with the size and time it closed with. */
	bool closed;
	time_t expires; /* CLOCK_MONOTONIC seconds: when it stops lingering */
	off_t size;
	time_t mtime;
};

/* What fi->fh points at for every open file; listed in c->handles, so
 * what the kernel never released (a RELEASE still queued when the mount
 * went away is dropped by the kernel) is freed at exit. */
struct handle {
	struct handle *prev, *next; /* c->handles, under c->up_lock */
	int fd;
	struct upload *up; /* NULL for reads */
};

struct chartfs {
	struct oci_client *client; /* one registry: its client and model; */
	struct model *model;
	struct hosts *hosts; /* or every registry, a host per first segment */
	time_t start;	     /* when the mount started */
	struct blobcache *bc;
	unsigned ttl;
	bool immutable; /* -o immutable: never replace an existing tag */
	bool read_only; /* -o ro: no writes, so no file handles either */
	uid_t uid;	/* the mounting user: the only one who may write, */
	gid_t gid;
	bool write_group; /* with -o write_group's members, */
	gid_t write_gid;  /* this group (fs/ll_write.c: ll_may_write) */
	char *cache_dir;
	pthread_mutex_t up_lock;
	struct upload *uploads;
	struct handle *handles;
	/* -o sign_key, or NULL: pushes go unsigned. */
	struct push_signer *signer;
};

/* How long the kernel may trust an entry (fs/ll.c turns it into timeouts). */
enum chartfs_life {
	CHARTFS_LIFE_NAME,   /* a name that follows the ttl (dirs, packages) */
	CHARTFS_LIFE_TAG,    /* a tag directory: its name follows the ttl, what
				is under it is frozen (it is a new inode when the
				tag moves to another digest) */
	CHARTFS_LIFE_FROZEN, /* inside a chart: never changes */
	CHARTFS_LIFE_NOW,    /* a file being written: ask every time */
};

/* One directory entry for chartfs_readdir's filler. st is NULL for "." and
 * ".."; with life CHARTFS_FILL_NAME_ONLY it gives only the type, else it is
 * complete (st_ino 0: derive one from the path) and life says how long. */
#define CHARTFS_FILL_NAME_ONLY (-1)
typedef int (*chartfs_fill_fn)(void *buf, const char *name, const struct stat *st,
			       int life);

/* chartfs_resolve's answer for the root of an every-registry mount, which
 * no model serves (it lists hosts). */
#define CHARTFS_HOSTS_ROOT 1

/* Find the model that serves path and resolve path there: a one-registry
 * mount's model, or the model of the host that path's first segment names
 * (set up on first use). CHARTFS_HOSTS_ROOT, 0 or -errno. */
int chartfs_resolve(struct chartfs *c, const char *path, struct model **m,
		    struct path_res *r) WUR;
/* The same for a name about to be created (no probing); -EPERM for a name
 * in the root of an every-registry mount (a host is no directory to make). */
int chartfs_resolve_new(struct chartfs *c, const char *path, struct model **m,
			struct path_res *r) WUR;

/* Attributes of a synthetic entry: dirs 0555 / files 0444, owned by the
 * mounting user (and -o write_group's group). fs/ops.c adds the write bits
 * where a write is accepted (namespaces, repositories, packages and files
 * being written, on read-write mounts): 0755 / 0644, 0775 / 0664 with
 * -o write_group. */
void chartfs_fill_stat(struct chartfs *c, struct stat *st, bool dir, off_t size,
		       time_t mtime);
/* The tag record a resolved path names (the chart is required unless the
 * path is the tag directory itself). */
int chartfs_get_tag(struct model *m, struct path_res *r, struct model_tag **t) WUR;
/* upload.c. The upload for path, open or lingering (up->closed), with a
 * reference taken, or NULL. */
struct upload *chartfs_upload_find(struct chartfs *c, const char *path);
/* Drop a reference to an upload; the last one removes its spool file, and
 * the upload too unless it was pushed (then it lingers, see upload.c). */
void chartfs_upload_put(struct chartfs *c, struct upload *up);
/* Give up (a reference held) the name to: the rename of a file being
 * written, or of one that lingers, within its directory. 0 or -ENOMEM. */
int chartfs_upload_rename(struct chartfs *c, struct upload *up, const char *to) WUR;
/* Forget a lingering upload (rm of a temporary name): no tag is touched. */
void chartfs_upload_drop(struct chartfs *c, struct upload *up);
/* A listed handle for fd (a reference to up, if any, is the caller's,
 * passed on), or NULL (ENOMEM). */
struct handle *chartfs_handle_new(struct chartfs *c, int fd, struct upload *up);
/* Unlist h and free it: its fd closed, or its upload's reference dropped. */
void chartfs_handle_free(struct chartfs *c, struct handle *h);
/* Free every handle and upload left at unmount. */
void chartfs_upload_free_all(struct chartfs *c);
/* Take up off the list (c->up_lock held); no-op when off it already. */
void chartfs_upload_unlist_locked(struct chartfs *c, struct upload *up);
/* A new listed upload of path into dir with a spool file, one reference
 * for the caller (*out). */
int chartfs_upload_new(struct chartfs *c, const char *path, struct model *m,
		       struct ns_node *dir, struct upload **out) WUR;
/* A private copy of up's spool (up->lock held) at a new temp path: its fd,
 * or -errno (logged). */
int chartfs_upload_snapshot(struct chartfs *c, struct upload *up, char *path,
			    size_t len) WUR;

/* Operations, by file: path based, on mount c (no global: fs/ll.c passes
 * the mount its session was made for), 0 / a count or -errno; fs/ll.c
 * calls them for the kernel's requests. ops.c: */
int chartfs_stat(struct chartfs *c, const char *path, struct stat *st,
		 enum chartfs_life *life) WUR;
int chartfs_readdir(struct chartfs *c, const char *path, void *buf,
		    chartfs_fill_fn filler) WUR;
int chartfs_open(struct chartfs *c, const char *path, struct fuse_file_info *fi) WUR;
/* A close of a handle: cannot fail. */
void chartfs_release(struct chartfs *c, struct fuse_file_info *fi);
/* xattr.c, ops_write.c: */
int chartfs_getxattr(struct chartfs *c, const char *path, const char *name, char *value,
		     size_t size) WUR;
int chartfs_listxattr(struct chartfs *c, const char *path, char *list, size_t size) WUR;
int chartfs_create(struct chartfs *c, const char *path, mode_t mode,
		   struct fuse_file_info *fi) WUR;
/* Is path the name of an upload, open or lingering? */
bool chartfs_upload_name(struct chartfs *c, const char *path);
int chartfs_open_write(struct chartfs *c, const char *path, struct model *m,
		       struct path_res *r, struct fuse_file_info *fi) WUR;
/* Writes need the handle OPEN or CREATE gave (read-write mounts always
 * get OPEN, see fs/ll.c). */
int chartfs_write(const char *path, const char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi) WUR;
/* A close: pushes what was written; *pushed says whether it tried. */
int chartfs_flush(struct chartfs *c, struct fuse_file_info *fi, bool *pushed) WUR;
/* ftruncate through a write handle, or truncate(2) of a file being
 * written (found by path); fi may be NULL. */
int chartfs_truncate(struct chartfs *c, const char *path, off_t size,
		     struct fuse_file_info *fi) WUR;
int chartfs_mkdir(struct chartfs *c, const char *path, mode_t mode) WUR;
int chartfs_unlink(struct chartfs *c, const char *path) WUR;
int chartfs_rmdir(struct chartfs *c, const char *path) WUR;
int chartfs_rename(struct chartfs *c, const char *from, const char *to,
		   unsigned int flags) WUR;
int chartfs_chmod(struct chartfs *c, const char *path, mode_t mode,
		  struct fuse_file_info *fi) WUR;
int chartfs_chown(struct chartfs *c, const char *path, uid_t uid, gid_t gid,
		  struct fuse_file_info *fi) WUR;
int chartfs_utimens(struct chartfs *c, const char *path, const struct timespec tv[2],
		    struct fuse_file_info *fi) WUR;
int chartfs_setxattr(struct chartfs *c, const char *path, const char *name,
		     const char *value, size_t size, int flags) WUR;
int chartfs_removexattr(struct chartfs *c, const char *path, const char *name) WUR;
int chartfs_symlink(struct chartfs *c, const char *from, const char *to) WUR;

#endif
