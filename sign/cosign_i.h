/*
 * cosign_i.h - names the cosign files share inside sign/ (not part of the
 * contract between helpers).
 */
#ifndef CHARTFS_SIGN_COSIGN_I_H
#define CHARTFS_SIGN_COSIGN_I_H

#include <jansson.h>

#include "client/oci.h"
#include "common/compiler.h"

/* The DSSE payload type cosign signs images (and charts) with. */
#define COSIGN_MT_INTOTO "application/vnd.in-toto+json"
#define INTOTO_STATEMENT_V1 "https://in-toto.io/Statement/v1"
#define INTOTO_STATEMENT_V01 "https://in-toto.io/Statement/v0.1"

/* The bundles cosign_index_bundles lists for one chart (the newest): each
 * costs the model a blob fetch, and cosign makes one per signing. */
#define COSIGN_BUNDLES_MAX 32

/* json_dumps(root, JSON_COMPACT) into out; -ENOMEM. root stays the caller's. */
int cosign_json_out(json_t *root, struct oci_buf *out) WUR;

#endif
