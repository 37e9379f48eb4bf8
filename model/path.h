/*
 * path.h - the path model: how mount paths map onto registry names.
 *
 *   /                              the mount root (REGISTRY[/PREFIX])
 *   /a/b                           namespace and/or repository directory
 *   /a/b/<tag>/                    a tag: the unpacked chart (or empty)
 *   /a/b/<tag>/templates/x.yaml    a file inside the chart
 *   /a/b/b-<tag>.tgz               the chart layer blob of <tag>
 *   /a/b/b-<tag>.tgz.prov          its provenance layer, if it has one
 *
 * Repository names form a tree of nodes (struct ns_node), one per path
 * segment; a node may be a namespace (it has children), a repository, or
 * both. Nodes are never freed while the tree lives, so pointers to them stay
 * valid without reference counts; a node that leaves the catalog is only
 * hidden.
 *
 * Contract: the tree is not thread-safe; the caller (model/model.c) serialises
 * access with its own lock. Nothing here does I/O.
 */
#ifndef CHARTFS_PATH_H
#define CHARTFS_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/compiler.h"

struct repo;

struct ns_node {
	char *name;	/* this segment */
	char *fullname; /* repository name relative to the registry root */
	struct ns_node *parent;
	struct ns_node **kids; /* sorted by name */
	size_t nkids, capkids;
	bool in_catalog;       /* listed by the last catalog refresh */
	bool known;	       /* found by a probe, a push or mkdir: stays listed */
	bool made;	       /* made by mkdir, in memory only: rmdir may remove it */
	struct timespec asked; /* when a name missing below made the registry be
				* asked (model/model.c; CLOCK_MONOTONIC) */
	struct repo *repo;     /* model data (model/model.c) when a repository, or NULL */
};

/* A new root node (name "", fullname ""). */
struct ns_node *ns_tree_new(void);
/* Free a whole tree; repo data must be freed by the caller first. */
void ns_tree_free(struct ns_node *root);
/* Find the child called name, or NULL. */
struct ns_node *ns_child(const struct ns_node *n, const char *name);
/* Find or create the node for a repository name "a/b/c" below root
 * (creating the intermediate namespace nodes). NULL on ENOMEM or an
 * invalid name. */
struct ns_node *ns_insert(struct ns_node *root, const char *repo);
/* True if the node itself is a repository shown in listings. */
bool ns_is_repo(const struct ns_node *n);
/* True if the node is shown at all: it is a repository, or has a shown kid. */
bool ns_visible(const struct ns_node *n);
/* Clear in_catalog on every node (before applying a new catalog). */
void ns_clear_catalog(struct ns_node *root);

/* What a path names once the tree walk stops. */
enum path_kind {
	PATH_DIR,     /* root, namespace or repository: node */
	PATH_TAG,     /* node's tag dir: tag */
	PATH_PKG,     /* node's <repo>-<tag>.tgz: tag */
	PATH_PROV,    /* node's <repo>-<tag>.tgz.prov: tag (helm's provenance) */
	PATH_IN_TAG,  /* inside node's tag: tag, rest = "templates/x.yaml" */
	PATH_UNKNOWN, /* a child of node that the tree does not know: rest */
};

struct path_res {
	enum path_kind kind;
	struct ns_node *node;
	char tag[129];
	const char *rest; /* points into the path given to path_resolve */
	const char *seg;  /* the first name below node (where the walk stopped) */
};

/* Walk path (absolute, as FUSE gives it) down the tree. Never fails: a name
 * the tree lacks gives PATH_UNKNOWN with rest at that name; under a repo
 * node it gives PATH_TAG / PATH_PKG / PATH_IN_TAG by the name's shape,
 * without checking that the tag exists (the model does), and PATH_UNKNOWN
 * for a last name there that can be no tag (a temporary file's). Returns
 * -ENAMETOOLONG for a tag over 128 characters and -ENOENT for a path below
 * a name that can be no tag. */
int path_resolve(struct ns_node *root, const char *path, struct path_res *res) WUR;

/* If name is "<last>-<tag>.tgz" for repository segment last, copy the tag
 * into tag (size tagsz) and return true. */
/* path_prov_tag: the same for "<last>-<tag>.tgz.prov". */
bool path_prov_tag(const char *last, const char *name, char *tag, size_t tagsz);
bool path_pkg_tag(const char *last, const char *name, char *tag, size_t tagsz);

/* True for the tags signing tools attach to an image or chart:
 * "sha256-<64 hex>" optionally followed by ".sig", ".att" or ".sbom"
 * (cosign's naming); listings hide them unless asked. */
bool path_is_signature_tag(const char *tag);

#endif
