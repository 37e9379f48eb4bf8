/* ll_i.h - what fs/ll.c and fs/ll_write.c share (private to them). */
#ifndef CHARTFS_LL_I_H
#define CHARTFS_LL_I_H

#include "fs/inodes.h"
#include "fs/ll.h"

struct chartfs_ll {
	struct chartfs *c;
	struct fuse_session *se;
	struct inodes *inodes;
	bool mounted;
	bool no_open;	 /* OPEN answered ENOSYS (read-only mounts) */
	bool no_opendir; /* OPENDIR answered ENOSYS: the kernel keeps listings */
};

/* The mount a request is for; only until the request is answered (a
 * reply frees it). */
static inline struct chartfs *ll_ctx(fuse_req_t req)
{
	return ((struct chartfs_ll *)fuse_req_userdata(req))->c;
}

/* The node a request names. */
struct inodes_node *ll_req_node(fuse_req_t req, fuse_ino_t ino);
/* The kernel's entry and attribute timeout for an entry of this life. */
double ll_timeout(const struct chartfs_ll *ll, enum chartfs_life life);
/* Answer a LOOKUP, CREATE (fi set: its handle is released if the answer
 * cannot be given) or MKDIR with path's node; e->attr is filled. */
void ll_reply_entry(struct chartfs_ll *ll, fuse_req_t req, const char *path,
		    struct fuse_entry_param *e, enum chartfs_life life,
		    struct fuse_file_info *fi);
/* Answer with n's attributes, asked anew. */
void ll_reply_attr(fuse_req_t req, struct inodes_node *n);
/* parent's path "/" name into *out (malloc'd), or answer req with the
 * error and return false. */
bool ll_child_path(fuse_req_t req, fuse_ino_t parent, const char *name, char **out);

/* Whether req's caller may make a write (what, e.g. "unlink", to path):
 * 0, or -EACCES with one log line naming the caller's uid and path. Every
 * write acts on the registry with the mounting user's credentials, so it
 * is that user's (c->uid) alone, or also -o write_group's members; reads
 * stay open to whoever the kernel admits (allow_other, allow_root). Root
 * is no exception: it is refused on another user's mount as anyone is.
 * Called once, first, by every request that changes something (and OPEN
 * for writing); a handle it admitted is not asked again at FLUSH or
 * RELEASE. */
int ll_may_write(fuse_req_t req, const char *what, const char *path);
/* access(2) and chdir: what the modes say for this caller (the kernel
 * checks none itself: no default_permissions), so `test -w` is false where
 * a write would be refused. W_OK and X_OK only cost a stat. */
void ll_access(fuse_req_t req, fuse_ino_t ino, int mask);

/* The requests that change something (fs/ll_write.c). */
void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi);
void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags);
void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags);
void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
