/*
 * oci.c - the distribution API calls, built on the request core in http.c.
 *
 * Every name and reference is validated before it becomes part of a URL, so
 * nothing a user types or a registry lists can change the path asked for.
 */
#include "client/oci_i.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/manifest.h"
#include "common/log.h"
#include "common/mono.h"

/* Chunk of a large upload, and the largest monolithic PUT. */
#define UPLOAD_CHUNK (8ull * 1024 * 1024)
/* Pages of a listing before giving up on a registry that pages forever. */
#define PAGES_MAX 10000
/* All pages of one listing together: past this, the listing is -EIO. */
#define LISTING_MAX (32u * 1024 * 1024)
/* A listing's page, in memory (DEFAULT_BODY_MAX in http.c). */
#define LISTING_PAGE_MAX (1u * 1024 * 1024)

static const char accept_manifests[] =
    OCI_MT_MANIFEST ", " OCI_MT_INDEX ", " OCI_MT_DOCKER_MANIFEST ", " OCI_MT_DOCKER_LIST
		    ", " OCI_MT_ARTIFACT;

/* The registry's base + the formatted path (malloc'd), or NULL. */
static char *endpoint_vurl(const struct oci_client *c, const char *fmt, va_list ap)
    PRINTF_LIKE(2, 0);
static char *endpoint_vurl(const struct oci_client *c, const char *fmt, va_list ap)
{
	char *path = NULL, *url = NULL;

	if (vasprintf(&path, fmt, ap) < 0)
		return NULL;
	if (asprintf(&url, "%s%s", c->base, path) < 0)
		url = NULL;
	free(path);
	return url;
}

static char *endpoint_url(const struct oci_client *c, const char *fmt, ...)
    PRINTF_LIKE(2, 3);
static char *endpoint_url(const struct oci_client *c, const char *fmt, ...)
{
	va_list ap;
	char *url;

	va_start(ap, fmt);
	url = endpoint_vurl(c, fmt, ap);
	va_end(ap);
	return url;
}

static char *scope_for(const char *repo, const char *actions)
{
	char *s;

	if (asprintf(&s, "repository:%s:%s", repo, actions) < 0)
		return NULL;
	return s;
}

static bool ref_valid(const char *ref)
{
	return ref && (oci_tag_valid(ref) || digest_valid(ref));
}

/* Refuse names that would not make a well-formed API path. */
int oci_check_args(const char *op, const char *repo, const char *ref, bool ref_is_digest)
{
	if (!repo || !oci_repo_valid(repo)) {
		log_warn("client: %s: refusing an invalid repository name", op);
		return -EINVAL;
	}
	if (ref && !(ref_is_digest ? digest_valid(ref) : ref_valid(ref))) {
		log_warn("client: %s %s: refusing an invalid reference", op, repo);
		return -EINVAL;
	}
	return 0;
}

int oci_call_init(struct call *k, const struct oci_client *c, const char *method,
		  const char *repo, const char *actions, const char *fmt, ...)
{
	va_list ap;

	*k = (struct call){.rq = HTTP_REQ_INIT};
	va_start(ap, fmt);
	k->url = endpoint_vurl(c, fmt, ap);
	va_end(ap);
	if (k->url && repo)
		k->scope = scope_for(repo, actions);
	if (!k->url || (repo && !k->scope)) {
		free(k->url);
		*k = (struct call){.rq = HTTP_REQ_INIT};
		return -ENOMEM;
	}
	k->rq.method = method;
	k->rq.url = k->url;
	k->rq.scope = k->scope;
	return 0;
}

int oci_call_send(struct oci_client *c, struct call *k, struct http_resp *rs)
{
	struct http_resp dropped = {0};
	int ret = http_request(c, &k->rq, rs ? rs : &dropped);

	http_resp_clear(&dropped);
	free(k->url);
	free(k->scope);
	*k = (struct call){.rq = HTTP_REQ_INIT};
	return ret;
}

int oci_ping(struct oci_client *c)
{
	struct call k;
	int ret = oci_call_init(&k, c, "GET", NULL, NULL, "/v2/");

	return ret ? ret : oci_call_send(c, &k, NULL);
}

/* ---- listings ---------------------------------------------------------- */

/* Append the strings of body[key] that pass valid(); null is empty. */
static int parse_names(const struct oci_client *c, const char *url,
		       const struct http_resp *rs, const char *key,
		       bool (*valid)(const char *), struct strv *out)
{
	json_t *root, *arr, *v;
	char where[256];
	size_t i;
	int ret = 0;

	root = json_loadb(rs->body.data ? rs->body.data : "", rs->body.len, 0, NULL);
	arr = json_object_get(root, key);
	if (!json_is_object(root) || (arr && !json_is_array(arr) && !json_is_null(arr))) {
		url_log_path(c, url, where, sizeof(where));
		log_warn("client: GET %s: answer is not a JSON %s list", where, key);
		ret = -EIO;
		goto out;
	}
	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(v);
		if (!s || !valid(s)) {
			log_debug("client: skipping an invalid name in a %s list", key);
			continue;
		}
		ret = strv_push(out, s);
		if (ret)
			goto out;
	}
out:
	json_decref(root);
	return ret;
}

static bool seen_before(const struct strv *seen, const char *url)
{
	size_t i;

	for (i = 0; i < seen->n; i++)
		if (!strcmp(seen->v[i], url))
			return true;
	return false;
}

/* Why a listing ends before its last page, or NULL to go on: a page asked
 * for before (a Link cycle, A -> B -> A), too many pages, too many bytes. */
static const char *listing_end(const struct strv *seen, const char *next, size_t bytes)
{
	if (seen_before(seen, next))
		return "its Link goes back to a page already read";
	if (seen->n >= PAGES_MAX)
		return "more than 10000 pages (PAGES_MAX)";
	if (bytes > LISTING_MAX)
		return "larger than its cap of 32 MiB (LISTING_MAX)";
	return NULL;
}

/* GET url and every page its Link headers name. url is consumed; *rs
 * holds the failed answer on error. The listing is one transfer as far as
 * time goes: it ends by io_timeout plus what it has carried and its next
 * page's cap at HTTP_MIN_RATE. A page asked for twice ends it with what it
 * has gathered (one log line); so do PAGES_MAX pages; LISTING_MAX bytes
 * are -EIO. */
static int list_paged(struct oci_client *c, char *url, const char *scope, const char *key,
		      unsigned quiet, bool (*valid)(const char *), struct strv *out,
		      struct http_resp *rs)
{
	struct strv names = {0}, seen = {0};
	int64_t start = mono_ms(), io = (int64_t)c->low_speed_time * 1000;
	const char *why = NULL;
	char *next = NULL, where[256];
	size_t bytes = 0;
	int ret = 0;

	memset(rs, 0, sizeof(*rs));
	while (url) {
		struct http_req rq = HTTP_REQ_INIT;
		rq.method = "GET";
		rq.url = url;
		rq.scope = scope;
		rq.accept = "application/json";
		rq.quiet = quiet;
		rq.follow = true;
		rq.max_body = LISTING_PAGE_MAX;
		rq.until_ms = start + io + http_carry_ms(bytes + LISTING_PAGE_MAX);
		http_resp_clear(rs);
		ret = strv_push(&seen, url);
		if (!ret)
			ret = http_request(c, &rq, rs);
		if (!ret)
			ret = parse_names(c, url, rs, key, valid, &names);
		if (ret || !rs->link_next)
			break;
		bytes += rs->body.len;
		ret = url_resolve(c, url, rs->link_next, true, &next);
		if (ret) {
			url_log_path(c, url, where, sizeof(where));
			log_warn("client: GET %s: refusing a Link to another place",
				 where);
			ret = -EIO;
			break;
		}
		free(url);
		url = next;
		next = NULL;
		why = listing_end(&seen, url, bytes);
		if (why)
			break;
	}
	if (why) {
		url_log_path(c, url, where, sizeof(where));
		log_warn(
		    "client: GET %s: listing ended after %zu pages and %zu names: %s",
		    where, seen.n, names.n, why);
		if (bytes > LISTING_MAX)
			ret = -EIO;
	}
	free(url);
	strv_free(&seen);
	if (ret) {
		strv_free(&names);
		return ret;
	}
	*out = names;
	return 0;
}

static bool repo_name_ok(const char *s)
{
	return oci_repo_valid(s);
}

static bool tag_name_ok(const char *s)
{
	return oci_tag_valid(s);
}

int oci_catalog(struct oci_client *c, struct strv *out)
{
	const unsigned quiet = HTTP_QUIET_EACCES | HTTP_QUIET_ENOENT |
			       HTTP_QUIET_EOPNOTSUPP | HTTP_QUIET_EINVAL;
	const char *scope = "registry:catalog:*";
	struct http_resp rs = {0};
	char *url = endpoint_url(c, "/v2/_catalog?n=1000");
	int ret;

	*out = (struct strv){0};
	if (!url)
		return -ENOMEM;
	ret = list_paged(c, url, scope, "repositories", quiet, repo_name_ok, out, &rs);
	if (ret == -EINVAL) {
		/* A registry with a smaller page limit: let it choose. */
		http_resp_clear(&rs);
		url = endpoint_url(c, "/v2/_catalog");
		ret = url ? list_paged(c, url, scope, "repositories", quiet, repo_name_ok,
				       out, &rs)
			  : -ENOMEM;
	}
	if (ret == -EACCES || ret == -ENOENT || ret == -EOPNOTSUPP || ret == -EINVAL) {
		log_notice("client: GET /v2/_catalog: %s: the registry does not list "
			   "its repositories",
			   rs.cause);
		ret = -EOPNOTSUPP;
	}
	http_resp_clear(&rs);
	return ret;
}

int oci_tags(struct oci_client *c, const char *repo, struct strv *out)
{
	return c->mirrors ? mirror_tags(c, repo, out) : oci_tags_here(c, repo, out);
}

int oci_tags_here(struct oci_client *c, const char *repo, struct strv *out)
{
	struct http_resp rs = {0};
	char *url, *scope;
	int ret;

	*out = (struct strv){0};
	ret = oci_check_args("tags", repo, NULL, false);
	if (ret)
		return ret;
	url = endpoint_url(c, "/v2/%s/tags/list?n=1000", repo);
	scope = scope_for(repo, "pull");
	if (!url || !scope) {
		free(url);
		free(scope);
		return -ENOMEM;
	}
	/* A 404 is how a namespace that is not a repository answers. */
	ret = list_paged(c, url, scope, "tags", HTTP_QUIET_ENOENT, tag_name_ok, out, &rs);
	http_resp_clear(&rs);
	free(scope);
	return ret;
}

/* ---- manifests --------------------------------------------------------- */

static void media_type_of(const char *content_type, char *out, size_t size)
{
	size_t n;

	out[0] = '\0';
	if (!content_type)
		return;
	n = strcspn(content_type, "; \t");
	if (n < size)
		snprintf(out, size, "%.*s", (int)n, content_type);
}

/* GET or HEAD one manifest; the request and answer for the caller. */
static int manifest_req(struct oci_client *c, const char *method, const char *repo,
			const char *ref, struct http_resp *rs)
{
	struct call k;
	int ret;

	memset(rs, 0, sizeof(*rs));
	ret =
	    oci_call_init(&k, c, method, repo, "pull", "/v2/%s/manifests/%s", repo, ref);
	if (ret)
		return ret;
	k.rq.accept = accept_manifests;
	k.rq.max_body = OCI_MANIFEST_MAX;
	k.rq.follow = true;
	k.rq.quiet = HTTP_QUIET_ENOENT;
	return oci_call_send(c, &k, rs);
}

int oci_manifest_get(struct oci_client *c, const char *repo, const char *ref,
		     struct oci_fetched *out)
{
	return c->mirrors ? mirror_manifest_get(c, repo, ref, out)
			  : oci_manifest_get_here(c, repo, ref, out);
}

int oci_manifest_get_here(struct oci_client *c, const char *repo, const char *ref,
			  struct oci_fetched *out)
{
	struct http_resp rs = {0};
	const char *why = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = oci_check_args("manifest", repo, ref, false);
	if (ret)
		goto out;
	ret = manifest_req(c, "GET", repo, ref, &rs);
	if (ret)
		goto out;
	ret = digest_buf(rs.body.data ? rs.body.data : "", rs.body.len, out->digest);
	if (ret)
		goto out;
	if (digest_valid(ref) && strcmp(ref, out->digest))
		why = "body does not match the digest asked for";
	else if (rs.docker_digest && digest_valid(rs.docker_digest) &&
		 strcmp(rs.docker_digest, out->digest))
		why = "body does not match Docker-Content-Digest";
	if (why) {
		log_warn("client: GET /v2/%s/manifests/%s: %s", repo, ref, why);
		ret = -EIO;
		goto out;
	}
	media_type_of(rs.content_type, out->media_type, sizeof(out->media_type));
	if (!rs.body.data) {
		rs.body.data = strdup("");
		if (!rs.body.data) {
			ret = -ENOMEM;
			goto out;
		}
	}
	out->body = rs.body;
	out->source = c->registry;
	rs.body = (struct oci_buf){0};
out:
	http_resp_clear(&rs);
	if (ret)
		out->digest[0] = '\0';
	out->err = ret;
	return ret;
}

void oci_fetched_clear(struct oci_fetched *f)
{
	free(f->body.data);
	f->body = (struct oci_buf){0};
}

struct many {
	struct oci_client *c;
	const char *repo;
	const char *const *refs;
	size_t n;
	struct oci_fetched *res;
	atomic_size_t next;
};

static void *many_worker(void *arg)
{
	struct many *m = arg;
	size_t i;

	while ((i = atomic_fetch_add(&m->next, 1)) < m->n)
		m->res[i].err =
		    oci_manifest_get_here(m->c, m->repo, m->refs[i], &m->res[i]);
	return NULL;
}

/* Requests one listing keeps in flight: max_parallel connections' worth
 * over HTTP/1.1; over HTTP/2, where they are streams of one connection and
 * cost the registry no connection each, HTTP_H2_FANOUT times as many, at
 * most HTTP_H2_STREAMS. */
static size_t many_width(const struct oci_client *c, size_t n, unsigned max_parallel)
{
	size_t w = max_parallel ? max_parallel : 1;

	if (client_multiplexed(c)) {
		w *= HTTP_H2_FANOUT;
		if (w > HTTP_H2_STREAMS)
			w = HTTP_H2_STREAMS;
	}
	return w < n ? w : n;
}

int oci_manifest_get_many(struct oci_client *c, const char *repo, const char *const *refs,
			  size_t n, unsigned max_parallel, struct oci_fetched *results)
{
	return c->mirrors
		   ? mirror_manifest_get_many(c, repo, refs, n, max_parallel, results)
		   : oci_manifest_get_many_here(c, repo, refs, n, max_parallel, results);
}

int oci_manifest_get_many_here(struct oci_client *c, const char *repo,
			       const char *const *refs, size_t n, unsigned max_parallel,
			       struct oci_fetched *results)
{
	struct many m = {c, repo, refs, n, results, 0};
	size_t extra = 0, started = 0, i;
	pthread_t *th = NULL;

	if (!n)
		return 0;
	/* Each worker blocks on one request while the client's multi handle
	 * carries them all (over HTTP/2, on one connection). */
	extra = many_width(c, n, max_parallel) - 1;
	if (extra)
		th = calloc(extra, sizeof(*th));
	for (i = 0; th && i < extra; i++, started++)
		if (pthread_create(&th[i], NULL, many_worker, &m) != 0)
			break;
	/* The caller works too, so something always runs. */
	many_worker(&m);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
	return 0;
}

int oci_manifest_head(struct oci_client *c, const char *repo, const char *ref,
		      char digest[DIGEST_STR_MAX])
{
	struct oci_fetched f = {0};
	struct http_resp rs = {0};
	int ret;

	digest[0] = '\0';
	ret = oci_check_args("manifest", repo, ref, false);
	if (ret)
		return ret;
	ret = manifest_req(c, "HEAD", repo, ref, &rs);
	if (!ret && rs.docker_digest && digest_valid(rs.docker_digest))
		snprintf(digest, DIGEST_STR_MAX, "%s", rs.docker_digest);
	else if (!ret && digest_valid(ref))
		snprintf(digest, DIGEST_STR_MAX, "%s", ref);
	http_resp_clear(&rs);
	if (ret || digest[0])
		return ret;
	/* No usable digest header: hash the body ourselves. */
	ret = oci_manifest_get_here(c, repo, ref, &f);
	if (!ret)
		memcpy(digest, f.digest, DIGEST_STR_MAX);
	oci_fetched_clear(&f);
	return ret;
}

int oci_manifest_put(struct oci_client *c, const char *repo, const char *ref,
		     const char *media_type, const void *body, size_t len)
{
	bool subject;

	return oci_manifest_put_subject(c, repo, ref, media_type, body, len, &subject);
}

int oci_manifest_put_subject(struct oci_client *c, const char *repo, const char *ref,
			     const char *media_type, const void *body, size_t len,
			     bool *subject)
{
	struct http_resp rs = {0};
	struct call k;
	int ret;

	*subject = false;

	ret = oci_check_args("manifest put", repo, ref, false);
	if (ret)
		return ret;
	if (!media_type || !body || len > OCI_MANIFEST_MAX)
		return -EINVAL;
	ret = oci_call_init(&k, c, "PUT", repo, "pull,push", "/v2/%s/manifests/%s", repo,
			    ref);
	if (ret)
		return ret;
	if (c->mirrors)
		mirror_note_write(c, repo);
	k.rq.content_type = media_type;
	k.rq.body = body;
	k.rq.body_len = len;
	ret = oci_call_send(c, &k, &rs);
	*subject = !ret && rs.oci_subject;
	http_resp_clear(&rs);
	return ret;
}

int oci_manifest_delete(struct oci_client *c, const char *repo, const char *ref)
{
	struct call k;
	int ret;

	ret = oci_check_args("manifest delete", repo, ref, false);
	if (ret)
		return ret;
	ret = oci_call_init(&k, c, "DELETE", repo, "delete", "/v2/%s/manifests/%s", repo,
			    ref);
	if (ret)
		return ret;
	if (c->mirrors)
		mirror_note_write(c, repo);
	/* The caller falls back (tag -> digest) or explains itself. */
	k.rq.quiet = HTTP_QUIET_EOPNOTSUPP;
	if (!digest_valid(ref))
		k.rq.quiet |= HTTP_QUIET_EINVAL;
	return oci_call_send(c, &k, NULL);
}

/* ---- blobs ------------------------------------------------------------- */

static int blob_req(struct oci_client *c, const char *method, const char *repo,
		    const char *digest, uint64_t size, int fd, const char *where,
		    unsigned quiet)
{
	struct call k;
	int ret;

	ret = oci_check_args("blob", repo, digest, true);
	if (ret)
		return ret;
	ret = oci_call_init(&k, c, method, repo, "pull", "/v2/%s/blobs/%s", repo, digest);
	if (ret)
		return ret;
	k.rq.out_fd = fd;
	k.rq.out_size = size;
	k.rq.out_name = where;
	k.rq.follow = true;
	k.rq.quiet = quiet;
	return oci_call_send(c, &k, NULL);
}

int oci_blob_get_into(struct oci_client *c, const char *repo, const char *digest,
		      uint64_t size, int fd, const char *where)
{
	if (fd < 0)
		return -EBADF;
	return c->mirrors ? mirror_blob_get(c, repo, digest, size, fd, where)
			  : oci_blob_get_here(c, repo, digest, size, fd, where);
}

int oci_blob_get_here(struct oci_client *c, const char *repo, const char *digest,
		      uint64_t size, int fd, const char *where)
{
	return blob_req(c, "GET", repo, digest, size, fd, where, 0);
}

int oci_blob_exists(struct oci_client *c, const char *repo, const char *digest)
{
	return blob_req(c, "HEAD", repo, digest, 0, -1, NULL, HTTP_QUIET_ENOENT);
}

/* One upload step against *loc; on success *loc becomes the next
 * Location the registry gave (or stays). */
static int upload_step(struct oci_client *c, const char *method, char **loc,
		       const char *scope, bool need_location, struct http_req *rq)
{
	struct http_resp rs = {0};
	char *next = NULL;
	int ret;

	rq->method = method;
	rq->url = *loc;
	rq->scope = scope;
	ret = http_request(c, rq, &rs);
	if (!ret && !rs.location && need_location) {
		log_warn("client: %s upload: answer %ld without a Location", method,
			 rs.status);
		ret = -EIO;
	} else if (!ret && rs.location) {
		/* Uploads may move to another host; credentials stay behind
		 * (http_request only sends them to the registry's origin). */
		ret = url_resolve(c, *loc, rs.location, false, &next);
		if (ret) {
			log_warn("client: %s upload: unusable Location", method);
			ret = -EIO;
		} else {
			free(*loc);
			*loc = next;
		}
	}
	http_resp_clear(&rs);
	return ret;
}

static char *with_digest(const char *loc, const char *digest)
{
	char *s;

	if (asprintf(&s, "%s%cdigest=%s", loc, strchr(loc, '?') ? '&' : '?', digest) < 0)
		return NULL;
	return s;
}

int oci_blob_upload(struct oci_client *c, const char *repo, const char *digest, int fd,
		    uint64_t size)
{
	struct http_req rq = HTTP_REQ_INIT;
	char *loc = NULL, *put = NULL, *scope = NULL, range[64];
	bool started = false;
	uint64_t off;
	int ret;

	ret = oci_check_args("blob upload", repo, digest, true);
	if (ret)
		return ret;
	loc = endpoint_url(c, "/v2/%s/blobs/uploads/", repo);
	scope = scope_for(repo, "pull,push");
	ret = -ENOMEM;
	if (!loc || !scope)
		goto out;
	ret = upload_step(c, "POST", &loc, scope, true, &rq);
	if (ret)
		goto out;
	started = true;
	rq.content_type = "application/octet-stream";
	rq.in_fd = fd;
	for (off = 0; size > UPLOAD_CHUNK && off < size; off += UPLOAD_CHUNK) {
		uint64_t len = size - off < UPLOAD_CHUNK ? size - off : UPLOAD_CHUNK;
		snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)off,
			 (unsigned long long)(off + len - 1));
		rq.content_range = range;
		rq.in_off = off;
		rq.in_len = len;
		ret = upload_step(c, "PATCH", &loc, scope, true, &rq);
		if (ret)
			goto out;
	}
	/* Small blobs go in the PUT itself; large ones end with an empty one. */
	rq.content_range = NULL;
	rq.in_off = 0;
	rq.in_len = size > UPLOAD_CHUNK ? 0 : size;
	put = with_digest(loc, digest);
	ret = put ? upload_step(c, "PUT", &put, scope, false, &rq) : -ENOMEM;
out:
	if (ret && started) {
		/* Best effort: let the registry drop the half-done upload. */
		struct http_req del = HTTP_REQ_INIT;
		struct http_resp rs = {0};
		del.method = "DELETE";
		del.url = loc;
		del.scope = scope;
		del.quiet = HTTP_QUIET_ALL;
		if (http_request(c, &del, &rs))
			log_debug("client: could not cancel an upload");
		http_resp_clear(&rs);
	}
	free(put);
	free(loc);
	free(scope);
	return ret;
}
