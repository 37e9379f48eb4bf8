/*
 * referrers.c - what signature checks read from a registry beyond charts:
 * the OCI 1.1 referrers API, and small blobs (signature payloads,
 * Sigstore bundles) into memory.
 *
 * Built on the same call preamble as oci.c's endpoints (oci_i.h); names
 * are validated before they become part of a URL.
 */
#include "client/oci_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/manifest.h"
#include "common/log.h"

int oci_referrers(struct oci_client *c, const char *repo, const char *digest,
		  const char *artifact_type, struct oci_buf *out)
{
	struct http_resp rs = {0};
	struct oci_manifest *idx = NULL;
	char *q = NULL;
	struct call k;
	int ret;

	*out = (struct oci_buf){0};
	ret = oci_check_args("referrers", repo, digest, true);
	if (ret)
		return ret;
	if (artifact_type && !(q = url_escape(artifact_type)))
		return -ENOMEM;
	ret = oci_call_init(&k, c, "GET", repo, "pull", "/v2/%s/referrers/%s%s%s", repo,
			    digest, q ? "?artifactType=" : "", q ? q : "");
	free(q);
	if (ret)
		return ret;
	k.rq.accept = OCI_MT_INDEX;
	k.rq.max_body = OCI_REFERRERS_MAX;
	k.rq.follow = true;
	/* A registry without the API says so in one of these ways; the
	 * caller falls back to the tag schema, which is no failure. */
	k.rq.quiet = HTTP_QUIET_ENOENT | HTTP_QUIET_EOPNOTSUPP | HTTP_QUIET_EINVAL;
	ret = oci_call_send(c, &k, &rs);
	if (ret == -ENOENT || ret == -EOPNOTSUPP || ret == -EINVAL) {
		log_debug("client: GET /v2/%s/referrers/%s: %s: no referrers API", repo,
			  digest, rs.cause);
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (ret)
		goto out;
	/* A 200 that is no image index (a web page a proxy made up) is no
	 * referrers API either. */
	if (oci_manifest_parse(rs.body.data ? rs.body.data : "", rs.body.len,
			       OCI_MT_INDEX, &idx) != 0 ||
	    !idx->is_index) {
		log_debug("client: GET /v2/%s/referrers/%s: the answer is no image "
			  "index: no referrers API",
			  repo, digest);
		ret = -EOPNOTSUPP;
		goto out;
	}
	*out = rs.body;
	rs.body = (struct oci_buf){0};
out:
	oci_manifest_free(idx);
	http_resp_clear(&rs);
	return ret;
}

int oci_blob_get_mem(struct oci_client *c, const char *repo, const char *digest,
		     uint64_t size, struct oci_buf *out)
{
	struct http_resp rs = {0};
	char got[DIGEST_STR_MAX];
	struct call k;
	int ret;

	*out = (struct oci_buf){0};
	ret = oci_check_args("blob", repo, digest, true);
	if (ret)
		return ret;
	if (size > OCI_BLOB_MEM_MAX)
		return -EFBIG;
	ret = oci_call_init(&k, c, "GET", repo, "pull", "/v2/%s/blobs/%s", repo, digest);
	if (ret)
		return ret;
	/* One byte past the declared size ends the transfer (-EIO). */
	k.rq.max_body = size ? (size_t)size : 1;
	k.rq.follow = true;
	ret = oci_call_send(c, &k, &rs);
	if (ret)
		goto out;
	ret = digest_buf(rs.body.data ? rs.body.data : "", rs.body.len, got);
	if (ret)
		goto out;
	if (rs.body.len != size || strcmp(got, digest)) {
		log_warn("client: GET /v2/%s/blobs/%s: body does not match its %s", repo,
			 digest, rs.body.len != size ? "size" : "digest");
		ret = -EIO;
		goto out;
	}
	if (!rs.body.data) {
		rs.body.data = strdup("");
		if (!rs.body.data) {
			ret = -ENOMEM;
			goto out;
		}
	}
	*out = rs.body;
	rs.body = (struct oci_buf){0};
out:
	http_resp_clear(&rs);
	return ret;
}
