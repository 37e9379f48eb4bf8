/*
 * referrers.c - what signature checks read from a registry beyond charts:
 * the OCI 1.1 referrers API, and small blobs (signature payloads,
 * Sigstore bundles) into memory.
 *
 * Built on the request core in http.c as oci.c's calls are; names are
 * validated before they become part of a URL.
 */
#include "client/http_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/manifest.h"
#include "common/log.h"

/* Refuse a repository or digest that would not make a well-formed path. */
static int check_names(const char *op, const char *repo, const char *digest)
{
	if (!repo || !oci_repo_valid(repo)) {
		log_warn("client: %s: refusing an invalid repository name", op);
		return -EINVAL;
	}
	if (!digest_valid(digest)) {
		log_warn("client: %s %s: refusing an invalid digest", op, repo);
		return -EINVAL;
	}
	return 0;
}

/* The URL of the referrers of digest, filtered by artifact_type (or not). */
static char *referrers_url(const struct oci_client *c, const char *repo,
			   const char *digest, const char *artifact_type)
{
	char *url = NULL, *q = NULL;
	int n;

	if (artifact_type) {
		q = url_escape(artifact_type);
		if (!q)
			return NULL;
	}
	n = asprintf(&url, "%s/v2/%s/referrers/%s%s%s", c->base, repo, digest,
		     q ? "?artifactType=" : "", q ? q : "");
	free(q);
	return n < 0 ? NULL : url;
}

int oci_referrers(struct oci_client *c, const char *repo, const char *digest,
		  const char *artifact_type, struct oci_buf *out)
{
	struct http_req rq = HTTP_REQ_INIT;
	struct http_resp rs = {0};
	struct oci_manifest *idx = NULL;
	char *url = NULL, *scope = NULL;
	int ret;

	*out = (struct oci_buf){0};
	ret = check_names("referrers", repo, digest);
	if (ret)
		return ret;
	url = referrers_url(c, repo, digest, artifact_type);
	if (!url || asprintf(&scope, "repository:%s:pull", repo) < 0) {
		scope = NULL;
		ret = -ENOMEM;
		goto out;
	}
	rq.method = "GET";
	rq.url = url;
	rq.scope = scope;
	rq.accept = OCI_MT_INDEX;
	rq.max_body = OCI_REFERRERS_MAX;
	rq.follow = true;
	/* A registry without the API says so in one of these ways; the
	 * caller falls back to the tag schema, which is no failure. */
	rq.quiet = HTTP_QUIET_ENOENT | HTTP_QUIET_EOPNOTSUPP | HTTP_QUIET_EINVAL;
	ret = http_request(c, &rq, &rs);
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
	free(url);
	free(scope);
	return ret;
}

int oci_blob_get_mem(struct oci_client *c, const char *repo, const char *digest,
		     uint64_t size, struct oci_buf *out)
{
	struct http_req rq = HTTP_REQ_INIT;
	struct http_resp rs = {0};
	char *url = NULL, *scope = NULL, got[DIGEST_STR_MAX];
	int ret;

	*out = (struct oci_buf){0};
	ret = check_names("blob", repo, digest);
	if (ret)
		return ret;
	if (size > OCI_BLOB_MEM_MAX)
		return -EFBIG;
	if (asprintf(&url, "%s/v2/%s/blobs/%s", c->base, repo, digest) < 0)
		url = NULL;
	if (!url || asprintf(&scope, "repository:%s:pull", repo) < 0) {
		scope = NULL;
		ret = -ENOMEM;
		goto out;
	}
	rq.method = "GET";
	rq.url = url;
	rq.scope = scope;
	/* One byte past the declared size ends the transfer (-EIO). */
	rq.max_body = size ? (size_t)size : 1;
	rq.follow = true;
	ret = http_request(c, &rq, &rs);
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
	free(url);
	free(scope);
	return ret;
}
