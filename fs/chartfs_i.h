/* chartfs_i.h - the daemon's shared context (private to fs/). */
#ifndef CHARTFS_I_H
#define CHARTFS_I_H

#define FUSE_USE_VERSION 314
#include <fuse.h>
#include <sys/types.h>

#include "cache/blobcache.h"
#include "client/oci.h"
#include "fs/model.h"

struct chartfs {
	struct oci_client *client;
	struct blobcache *bc;
	struct model *model;
	unsigned ttl;
	uid_t uid;
	gid_t gid;
	char *cache_dir;
};

/* The FUSE operations (fs/ops.c). */
extern const struct fuse_operations chartfs_ops;

#endif
