/* xattr.c - registry metadata as extended attributes. */
#include "fs/chartfs_i.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "model/verify.h"

#define XATTR_ANN "user.oci.annotation."
#define XATTR_VERIFIED "user.chartfs.verified"

/* Copy value into the caller's buffer with getxattr(2) semantics. */
static int xattr_value(const char *v, char *out, size_t size)
{
	size_t len = strlen(v);

	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(out, v, len);
	return (int)len;
}

struct xattr_list {
	char *out;
	size_t size, len;
};

static void xattr_add(struct xattr_list *l, const char *prefix, const char *name)
{
	size_t n = strlen(prefix) + strlen(name) + 1;

	if (l->size && l->len + n <= l->size)
		snprintf(l->out + l->len, n, "%s%s", prefix, name);
	l->len += n;
}

static int xattr_done(struct xattr_list *l)
{
	if (l->size && l->len > l->size)
		return -ERANGE;
	return (int)l->len;
}

/* The root of a registry (m), or of an every-registry mount (m NULL: no
 * registry of its own, the requests of all hosts). */
static int root_xattr(struct chartfs *c, struct model *m, const char *name, char *out,
		      size_t size, struct xattr_list *list)
{
	uint64_t hits, misses, requests;
	char num[32];

	if (list) {
		if (m)
			xattr_add(list, "user.chartfs.", "registry");
		xattr_add(list, "user.chartfs.", "cache_dir");
		xattr_add(list, "user.chartfs.", "requests");
		xattr_add(list, "user.chartfs.", "cache_hits");
		xattr_add(list, "user.chartfs.", "cache_misses");
		return xattr_done(list);
	}
	if (m && !strcmp(name, "user.chartfs.registry"))
		return xattr_value(oci_client_base_url(model_client(m)), out, size);
	if (!strcmp(name, "user.chartfs.cache_dir"))
		return xattr_value(c->cache_dir, out, size);
	if (!strcmp(name, "user.chartfs.requests")) {
		requests =
		    m ? oci_client_requests(model_client(m)) : hosts_requests(c->hosts);
		snprintf(num, sizeof(num), "%" PRIu64, requests);
		return xattr_value(num, out, size);
	}
	blobcache_stats(c->bc, &hits, &misses);
	if (!strcmp(name, "user.chartfs.cache_hits") ||
	    !strcmp(name, "user.chartfs.cache_misses")) {
		snprintf(num, sizeof(num), "%" PRIu64,
			 !strcmp(name, "user.chartfs.cache_hits") ? hits : misses);
		return xattr_value(num, out, size);
	}
	return -ENODATA;
}

/* A repository directory tells how many tags it has (listed ones). */
static int repo_xattr(struct model *m, struct ns_node *node, const char *name, char *out,
		      size_t size, struct xattr_list *list)
{
	char num[32];
	int n = model_tag_count(m, node);

	if (n < 0)
		return list ? 0 : -ENODATA;
	if (list) {
		xattr_add(list, "user.oci.", "tag_count");
		return xattr_done(list);
	}
	if (strcmp(name, "user.oci.tag_count"))
		return -ENODATA;
	snprintf(num, sizeof(num), "%d", n);
	return xattr_value(num, out, size);
}

static int tag_xattr(const struct model_tag *t, bool is_dir, const char *name, char *out,
		     size_t size, struct xattr_list *list)
{
	const char *value;
	size_t i;

	if (list) {
		xattr_add(list, "user.oci.", "digest");
		xattr_add(list, "user.oci.", "media_type");
		if (is_dir)
			xattr_add(list, "user.chartfs.", "source");
		for (i = 0; i < t->n_annotations; i++)
			xattr_add(list, XATTR_ANN, model_tag_annotation_at(t, i, &value));
		return xattr_done(list);
	}
	if (!strcmp(name, "user.oci.digest"))
		return xattr_value(t->digest, out, size);
	if (!strcmp(name, "user.oci.media_type"))
		return xattr_value(t->media_type, out, size);
	/* Who served the manifest: the registry, a mirror (-o mirror), or
	 * an earlier mount through the cache dir. */
	if (is_dir && !strcmp(name, "user.chartfs.source"))
		return xattr_value(t->source ? t->source : "cache", out, size);
	if (!strncmp(name, XATTR_ANN, strlen(XATTR_ANN))) {
		value = model_tag_annotation(t, name + strlen(XATTR_ANN));
		if (value)
			return xattr_value(value, out, size);
	}
	return -ENODATA;
}

/* user.chartfs.verified (-o verify_key, -o keyring): what verified the
 * tag, "<mechanism> <key fingerprint>"; in a listing, with the rest. */
static int verified_xattr(struct model *m, struct path_res *r, struct model_tag *t,
			  char *out, size_t size, struct xattr_list *list)
{
	struct sign_result v;
	char value[128];
	int ret = model_tag_verify(m, r->node, t, &v);

	if (list) {
		if (!ret && v.mech)
			xattr_add(list, "", XATTR_VERIFIED);
		return tag_xattr(t, r->kind == PATH_TAG, NULL, NULL, 0, list);
	}
	if (ret)
		return ret == -ENOMEM ? ret : -EIO;
	/* A signature tag is shown unverified: nothing signs signatures. */
	if (v.verdict != SIGN_OK || !v.mech)
		return -ENODATA;
	snprintf(value, sizeof(value), "%s %s", v.mech, v.fpr);
	return xattr_value(value, out, size);
}

static int do_xattr(struct chartfs *c, const char *path, const char *name, char *out,
		    size_t size, struct xattr_list *list)
{
	struct model_tag *t = NULL;
	struct model *m = NULL;
	struct path_res r;
	int ret;

	ret = chartfs_resolve(c, path, &m, &r);
	if (ret == CHARTFS_HOSTS_ROOT)
		return root_xattr(c, NULL, name, out, size, list);
	if (ret)
		return ret;
	if (r.kind == PATH_DIR) {
		if (r.node->parent == NULL)
			return root_xattr(c, m, name, out, size, list);
		return repo_xattr(m, r.node, name, out, size, list);
	}
	ret = chartfs_get_tag(m, &r, &t);
	if (ret)
		return ret;
	if (r.kind == PATH_IN_TAG)
		ret = list ? 0 : -ENODATA;
	else if (model_verifies(m) && (list || !strcmp(name, XATTR_VERIFIED)))
		ret = verified_xattr(m, &r, t, out, size, list);
	else
		ret = tag_xattr(t, r.kind == PATH_TAG, name, out, size, list);
	model_tag_put(m, t);
	return ret;
}

int chartfs_getxattr(struct chartfs *c, const char *path, const char *name, char *value,
		     size_t size)
{
	/* Every attribute here is user.*; ls -l asks each entry for
	 * security.selinux and system.posix_acl_*, which need not resolve the
	 * path (nor refresh a tag whose ttl has run out). */
	if (strncmp(name, "user.", 5) != 0)
		return -ENODATA;
	return do_xattr(c, path, name, value, size, NULL);
}

int chartfs_listxattr(struct chartfs *c, const char *path, char *list, size_t size)
{
	struct xattr_list l = {list, size, 0};

	return do_xattr(c, path, NULL, NULL, 0, &l);
}
