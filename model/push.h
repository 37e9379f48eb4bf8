/*
 * push.h - the write path: push a chart package as `helm push` does, and
 * delete a tag as `oras manifest delete` does.
 *
 * Contract: thread-safe (state lives in the model and the registry); no FUSE
 * here. Errors are -errno with one log line saying why: -EINVAL for a file
 * that is not a valid chart package (nothing is pushed), -EACCES when the
 * registry refuses, -EIO when it fails; a failed blob upload never leads to
 * a manifest, so no tag appears half-made. -EEXIST when immutable and the
 * tag exists, -EBUSY when a delete would remove other tags too, -EPERM when
 * the registry has deletes disabled.
 */
#ifndef CHARTFS_PUSH_H
#define CHARTFS_PUSH_H

#include <stdbool.h>

#include "cache/blobcache.h"
#include "common/compiler.h"
#include "model/model.h"
#include "model/push_sign.h"

/* The largest package and provenance file a push accepts: helm refuses
 * archives whose content passes CHART_MAX_TOTAL, so the packed file can be
 * no bigger in practice; writes past these are EFBIG. */
#define PUSH_PACKAGE_MAX CHART_MAX_TOTAL
#define PUSH_PROV_MAX (1024 * 1024)

/* Push the chart package held in file fd (at spool_path, nobody else's:
 * a snapshot) that was written into directory dir; the new tag is listed at
 * once. On return the file at spool_path is gone: moved into the blob cache
 * on success, else removed. With a signer (-o sign_key, else NULL), the new
 * manifest is signed too (model/push_sign.h): a failed signature is -EIO
 * with the chart pushed. */
int push_chart(struct model *m, struct ns_node *dir, int fd, const char *spool_path,
	       bool immutable, struct push_signer *signer) WUR;

/* A helm provenance file (<chart>.tgz.prov) written into dir: added to
 * its chart's manifest as helm's provenance layer, now if the chart is in
 * the registry, or when the chart is copied in later (only when the
 * registry says the chart's tag is not there: other errors fail). As for
 * push_chart, the file at spool_path is gone on return, and a signer signs
 * the new manifest. */
int push_prov(struct model *m, struct ns_node *dir, int fd, const char *spool_path,
	      struct push_signer *signer) WUR;

/* Delete tag of repository node. */
int push_delete(struct model *m, struct ns_node *node, const char *tag) WUR;

#endif
