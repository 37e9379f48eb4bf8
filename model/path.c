/* path.c - the namespace tree and path classification (no FUSE, no I/O). */
#include "model/path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/manifest.h"

static struct ns_node *node_new(struct ns_node *parent, const char *name, size_t len)
{
	struct ns_node *n = calloc(1, sizeof(*n));
	size_t plen;

	if (!n)
		return NULL;
	n->name = strndup(name, len);
	plen = parent && parent->fullname[0] ? strlen(parent->fullname) + 1 : 0;
	n->fullname = malloc(plen + len + 1);
	if (!n->name || !n->fullname) {
		free(n->name);
		free(n->fullname);
		free(n);
		return NULL;
	}
	if (plen) {
		memcpy(n->fullname, parent->fullname, plen - 1);
		n->fullname[plen - 1] = '/';
	}
	memcpy(n->fullname + plen, name, len);
	n->fullname[plen + len] = '\0';
	n->parent = parent;
	return n;
}

struct ns_node *ns_tree_new(void)
{
	return node_new(NULL, "", 0);
}

void ns_tree_free(struct ns_node *root)
{
	size_t i;

	if (!root)
		return;
	for (i = 0; i < root->nkids; i++)
		ns_tree_free(root->kids[i]);
	free(root->kids);
	free(root->name);
	free(root->fullname);
	free(root);
}

/* Binary search: index of name, or where it would be inserted. */
static size_t kid_pos(const struct ns_node *n, const char *name, size_t len, bool *found)
{
	size_t lo = 0, hi = n->nkids;

	*found = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *k = n->kids[mid]->name;
		int c = strncmp(k, name, len);
		if (c == 0 && k[len] != '\0')
			c = 1;
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct ns_node *child_n(const struct ns_node *n, const char *name, size_t len)
{
	bool found;
	size_t pos = kid_pos(n, name, len, &found);

	return found ? n->kids[pos] : NULL;
}

struct ns_node *ns_child(const struct ns_node *n, const char *name)
{
	return child_n(n, name, strlen(name));
}

struct ns_node *ns_insert(struct ns_node *root, const char *repo)
{
	struct ns_node *n = root;
	const char *p = repo;

	if (!oci_repo_valid(repo))
		return NULL;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		bool found;
		size_t pos = kid_pos(n, p, len, &found);

		if (!found) {
			struct ns_node *kid;
			if (n->nkids == n->capkids) {
				size_t cap = n->capkids ? n->capkids * 2 : 4;
				struct ns_node **k = realloc(n->kids, cap * sizeof(*k));
				if (!k)
					return NULL;
				n->kids = k;
				n->capkids = cap;
			}
			kid = node_new(n, p, len);
			if (!kid)
				return NULL;
			memmove(n->kids + pos + 1, n->kids + pos,
				(n->nkids - pos) * sizeof(*n->kids));
			n->kids[pos] = kid;
			n->nkids++;
		}
		n = n->kids[pos];
		p += len;
		if (*p == '/')
			p++;
	}
	return n;
}

bool ns_is_repo(const struct ns_node *n)
{
	return n->repo && (n->in_catalog || n->known);
}

bool ns_visible(const struct ns_node *n)
{
	size_t i;

	if (!n->parent || ns_is_repo(n) || n->known)
		return true;
	for (i = 0; i < n->nkids; i++)
		if (ns_visible(n->kids[i]))
			return true;
	return false;
}

void ns_clear_catalog(struct ns_node *root)
{
	size_t i;

	root->in_catalog = false;
	for (i = 0; i < root->nkids; i++)
		ns_clear_catalog(root->kids[i]);
}

bool path_pkg_tag(const char *last, const char *name, char *tag, size_t tagsz)
{
	size_t llen = strlen(last), nlen = strlen(name), tlen;

	if (nlen <= llen + 1 + 4 || strncmp(name, last, llen) != 0 || name[llen] != '-')
		return false;
	if (strcmp(name + nlen - 4, ".tgz") != 0)
		return false;
	tlen = nlen - llen - 1 - 4;
	if (tlen + 1 > tagsz)
		return false;
	memcpy(tag, name + llen + 1, tlen);
	tag[tlen] = '\0';
	return oci_tag_valid(tag);
}

bool path_prov_tag(const char *last, const char *name, char *tag, size_t tagsz)
{
	size_t nlen = strlen(name);
	char pkg[256];

	if (nlen <= 5 || nlen - 5 >= sizeof(pkg) || strcmp(name + nlen - 5, ".prov") != 0)
		return false;
	memcpy(pkg, name, nlen - 5);
	pkg[nlen - 5] = '\0';
	return path_pkg_tag(last, pkg, tag, tagsz);
}

int path_resolve(struct ns_node *root, const char *path, struct path_res *res)
{
	struct ns_node *n = root;
	const char *p = path;

	memset(res, 0, sizeof(*res));
	while (*p == '/')
		p++;
	for (;;) {
		const char *slash;
		size_t len;
		struct ns_node *kid;

		if (!*p) {
			res->kind = PATH_DIR;
			res->node = n;
			return 0;
		}
		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		kid = child_n(n, p, len);
		if (kid && ns_visible(kid)) {
			n = kid;
			p += len;
			while (*p == '/')
				p++;
			continue;
		}
		res->node = n;
		res->rest = p;
		res->seg = p;
		if (!ns_is_repo(n)) {
			res->kind = PATH_UNKNOWN;
			return 0;
		}
		if (len > 128)
			return -ENAMETOOLONG;
		if (!slash && path_pkg_tag(n->name, p, res->tag, sizeof(res->tag))) {
			res->kind = PATH_PKG;
			return 0;
		}
		if (!slash && path_prov_tag(n->name, p, res->tag, sizeof(res->tag))) {
			res->kind = PATH_PROV;
			return 0;
		}
		memcpy(res->tag, p, len);
		res->tag[len] = '\0';
		/* A name that can be no tag is no path below it either; alone,
		 * it may be a file being copied in under a temporary name
		 * (rsync's .web-1.0.0.tgz.XXXXXX), which the caller tells. */
		if (!oci_tag_valid(res->tag) && !slash) {
			res->tag[0] = '\0';
			res->kind = PATH_UNKNOWN;
			return 0;
		}
		if (!oci_tag_valid(res->tag))
			return -ENOENT;
		p += len;
		while (*p == '/')
			p++;
		res->rest = p;
		res->kind = *p ? PATH_IN_TAG : PATH_TAG;
		return 0;
	}
}

bool path_is_signature_tag(const char *tag)
{
	size_t i;

	if (strncmp(tag, "sha256-", 7) != 0)
		return false;
	for (i = 7; i < 71; i++)
		if (!((tag[i] >= '0' && tag[i] <= '9') ||
		      (tag[i] >= 'a' && tag[i] <= 'f')))
			return false;
	tag += 71;
	return !*tag || !strcmp(tag, ".sig") || !strcmp(tag, ".att") ||
	       !strcmp(tag, ".sbom");
}
