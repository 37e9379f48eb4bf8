/*
 * model.h - what the mount knows of the registry, and how fresh it is.
 *
 * The model joins the path tree (model/path.h), the registry client and the blob
 * cache: it refreshes the catalog, tag lists and tag->manifest mappings when
 * they are older than the ttl, and fetches and unpacks charts on demand.
 * Everything addressed by digest is immutable and kept; only names follow
 * the ttl. A name that expired is refreshed by one background request per
 * name; unless the answer comes within a short wait, the previous one is
 * served until it does (stale-while-revalidate). A name never fetched, or forgotten
 * (SIGHUP, a push or delete through the mount), waits for the registry. A refresh that
 * fails with a network error keeps serving what was known (stale-if-error) and logs once.
 *
 * Contract:
 * - Threads: all functions are thread-safe. One model lock guards the tree
 *   and the tag tables; it is never held across network or disk I/O.
 * - Tag records (struct model_tag) are reference counted and immutable once
 *   published, except tree_path/blob_path which are set once under the lock.
 *   Every model_tag_get() needs a model_tag_put().
 * - Errors: 0 or -errno; a miss in the registry is -ENOENT.
 * - No FUSE here: fs/ops.c maps these calls onto FUSE.
 */
#ifndef CHARTFS_MODEL_H
#define CHARTFS_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "client/manifest.h"
#include "client/oci.h"
#include "cache/blobcache.h"
#include "common/compiler.h"
#include "model/path.h"

struct model;
struct verifier; /* model/verify.h */

/* What a tag keeps of its manifest, in one allocation (tags come by the
 * thousand): the descriptors and strings below point into the record
 * itself and live as long as it does. The manifest's JSON is not kept. */
struct model_tag {
	int refs; /* guarded by the model lock */
	char *tag;
	char digest[DIGEST_STR_MAX]; /* manifest digest */
	const char *media_type;	     /* the manifest's media type, or "" */
	/* Its manifest was fetched and understood; else the fields below are
	 * empty and it is asked again. */
	bool has_manifest;
	bool blob_stale;       /* the cached blob went bad: ask the cache again */
	bool tree_stale;       /* the unpacked tree went away: unpack again */
	bool revalidating;     /* a background refresh is queued or running (lock) */
	int64_t manifest_size; /* bytes of the manifest */
	const struct oci_descriptor *chart; /* its chart layer, or NULL */
	const struct oci_descriptor *prov;  /* a chart's provenance layer, or NULL */
	time_t created;			    /* org.opencontainers.image.created, or 0 */
	/* The manifest's annotations (up to MODEL_TAG_ANNOTATIONS_MAX bytes),
	 * packed "key\0value\0" n_annotations times: read them with
	 * model_tag_annotation() and model_tag_annotation_at(). */
	const char *annotations;
	size_t n_annotations;
	struct timespec checked; /* when tag->digest was last confirmed */
	char *blob_path;	 /* set once the chart blob is cached */
	char *tree_path;	 /* set once the chart is unpacked */
	/* Who served the manifest (oci_fetched.source: a string the client
	 * owns), NULL: the cache dir. */
	const char *source;
};

/* Annotations a tag keeps, keys and values with their NULs: helm writes a
 * few hundred bytes; a manifest with more keeps the first ones that fit
 * (shown as xattrs; the created date is read before). */
#define MODEL_TAG_ANNOTATIONS_MAX 4096

/* The value of t's annotation key, or NULL. */
const char *model_tag_annotation(const struct model_tag *t, const char *key);
/* The key of t's annotation i (< t->n_annotations), its value into *value. */
const char *model_tag_annotation_at(const struct model_tag *t, size_t i,
				    const char **value);

/* One entry of a directory listing. */
struct model_entry {
	const char *name;
	bool is_dir;
	off_t size;
	time_t mtime;
	const char *digest; /* a tag's manifest digest (tag dir and package) */
	bool prov;	    /* a package's provenance file */
};
typedef int (*model_fill_fn)(void *arg, const struct model_entry *e);

/* A name missing from a repository or namespace that was listed within
 * the ttl asks the registry again (a tag or repository pushed elsewhere
 * opens at once), at most this often per directory. */
#define MODEL_MISS_INTERVAL_MS 1000

/* The daemon's malloc (mallopt, set by fs/main.c): arenas (M_ARENA_MAX),
 * and the size from which a block is mapped on its own, returned to the
 * system when freed (M_MMAP_THRESHOLD, fixed: glibc's grows to 32 MiB once
 * a large block was freed). glibc's defaults, 8 arenas per core and the
 * growing threshold, left the freed pages of a listing's documents and
 * grown arrays in the daemon: 20 MiB of VmRSS after listing 4,000 tags,
 * against 13 with these. */
#define MODEL_MALLOC_ARENAS 2
#define MODEL_MALLOC_MMAP_MIN (64 * 1024)

/* -o ttl and -o parallel when not given. */
#define MODEL_TTL_DEFAULT 30
#define MODEL_PARALLEL_DEFAULT 8

/* Read-ahead of a walk (model_prefetch.c; on unless -o readahead=0). A
 * namespace listed, then one of its repositories listed (entered) is a
 * walk's first step: the tags and manifests of the next
 * MODEL_READAHEAD_REPOS repositories are fetched. A second repository
 * entered right after the first (grep -r, find, diff -r) confirms it: the
 * charts of the repository entered and of those after it, up to
 * MODEL_READAHEAD_CHART_REPOS in all, are fetched and unpacked too (at most
 * MODEL_READAHEAD_CHARTS per repository, none over
 * MODEL_READAHEAD_CHART_MAX bytes). The windows move with the walk; at most
 * MODEL_READAHEAD_THREADS requests are in flight, and
 * MODEL_READAHEAD_WALKS walks are followed at once (the oldest is
 * dropped). A namespace listed alone (ls, ls -l) fetches nothing. */
#define MODEL_READAHEAD_REPOS 32
#define MODEL_READAHEAD_CHART_REPOS 8
#define MODEL_READAHEAD_CHARTS 8
#define MODEL_READAHEAD_CHART_MAX (1u << 20)
#define MODEL_READAHEAD_THREADS 16
#define MODEL_READAHEAD_WALKS 4

struct model_opts {
	const char *prefix;   /* repository prefix scoping the mount, or NULL */
	unsigned ttl;	      /* seconds names are trusted */
	unsigned parallel;    /* manifests fetched at once when listing */
	bool show_signatures; /* list sha256-<hex>.sig/.att/.sbom tags too */
	bool offline;	      /* serve only what the cache holds, never ask */
	unsigned prefetch;    /* warm this many repositories of a listed namespace */
	/* -o verify_key, -o keyring: only what they verify is shown (shared
	 * by every model of the mount, owned by its maker), or NULL. */
	struct verifier *verify;
	bool no_readahead; /* -o readahead=0: follow no walk (see above) */
};

int model_new(const struct model_opts *o, struct oci_client *client, struct blobcache *bc,
	      struct model **out) WUR;
void model_free(struct model *m);
/* When the mount started (mtime of plain directories). */
time_t model_start_time(const struct model *m);

/* Classify a path, refreshing the catalog when stale and probing names the
 * catalog cannot tell (registries that refuse it). */
int model_resolve(struct model *m, const char *path, struct path_res *res) WUR;
/* The same without probing: for a name about to be created. */
int model_resolve_new(struct model *m, const char *path, struct path_res *res) WUR;

/* List a directory node: its visible kids and, for a repository, one dir
 * per tag and one .tgz per chart tag (manifests fetched in parallel). */
int model_list(struct model *m, struct ns_node *node, model_fill_fn fill, void *arg) WUR;

/* The record for tag of repository node, fetched if absent or stale. */
int model_tag_get(struct model *m, struct ns_node *node, const char *tag,
		  struct model_tag **out) WUR;
void model_tag_put(struct model *m, struct model_tag *t);

/* Path of the cached chart blob of t (fetching it). -ENOENT if no chart. */
int model_tag_blob(struct model *m, struct ns_node *node, struct model_tag *t,
		   const char **path) WUR;
/* Path of the cached provenance blob of t (fetching and verifying it),
 * into buf (len bytes). -ENOENT if none. */
int model_tag_prov(struct model *m, struct ns_node *node, struct model_tag *t, char *buf,
		   size_t len) WUR;
/* Path of the unpacked chart of t (fetching and unpacking it; made again
 * when it was evicted, here or by another daemon sharing the cache). */
int model_tag_tree(struct model *m, struct ns_node *node, struct model_tag *t,
		   const char **path) WUR;
/* The cached chart blob of t opened for reading (fetched, or fetched again
 * when it was evicted): the fd (the caller's), or -errno. */
int model_tag_open_blob(struct model *m, struct ns_node *node, struct model_tag *t) WUR;

/* The registry-side name of a repository node (prefix applied). Caller frees. */
char *model_repo_name(const struct model *m, const struct ns_node *node);
/* The same for a repository name below the mount root ("a/b"), whether or
 * not the tree has a node for it (a push names its target before it
 * exists). Caller frees. */
char *model_full_name(const struct model *m, const char *fullname);

/* Forget every name (catalog, tags, tag->digest) so the next access asks
 * the registry again (SIGHUP, and after a push or delete). node NULL
 * means everything. */
void model_invalidate(struct model *m, struct ns_node *node);
/* This mount changed node's repository (a push, a delete): model_invalidate
 * it, and forget its snapshot in the cache dir, which a remount within the
 * ttl would otherwise trust. */
void model_changed(struct model *m, struct ns_node *node);

/* Async-signal-safe: ask for model_invalidate(m, NULL) at the next access
 * (SIGHUP). */
void model_forget_soon(struct model *m);

/* How many tags a repository node lists (refreshed when stale); -ENOENT
 * for a plain namespace. */
int model_tag_count(struct model *m, struct ns_node *node);

/* The client and cache the model was made with (for push.c). */
struct oci_client *model_client(const struct model *m);
struct blobcache *model_blobcache(const struct model *m);

/* Make "dir/name" a local namespace directory (mkdir): registries have no
 * empty namespaces, so it lasts as long as the mount. -EEXIST if shown. */
int model_mkdir(struct model *m, struct ns_node *dir, const char *name) WUR;
/* rmdir of node: 0 if mkdir made it and nothing was pushed below it (it
 * is no longer shown), -ENOTEMPTY if something shown is below it, -EROFS
 * for what the registry has. */
int model_rmdir(struct model *m, struct ns_node *node) WUR;
/* Whether node is a repository holding tags (refreshed when stale): a
 * name in it is a tag, so mkdir there would fake one. */
bool model_holds_tags(struct model *m, struct ns_node *node);
/* Note a repository that now exists (after a push succeeded, never before:
 * a failed push leaves no trace): it is listed at once and its tags are
 * asked again on the next access. */
int model_add_repo(struct model *m, const char *fullname, struct ns_node **out) WUR;
/* After re-reading node's tags and manifests: the tags other than tag
 * that point at digest, into *others (before a delete by digest, which
 * removes them all); a tag whose manifest could not be read is one. */
int model_digest_shared(struct model *m, struct ns_node *node, const char *tag,
			const char *digest, struct strv *others) WUR;

#endif
