/*
 * manifest.h - parse OCI image manifests and indexes into descriptors, and
 * decide what is a Helm chart.
 *
 * Contract: pure functions, any thread; the parsed struct is owned by the
 * caller (oci_manifest_free). Malformed input (bad JSON, digests that are not
 * sha256:<64 hex>, negative sizes, nesting too deep) is -EINVAL; nothing
 * invalid is passed on.
 */
#ifndef CHARTFS_MANIFEST_H
#define CHARTFS_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "common/digest.h"

struct oci_annotation {
	char *key;
	char *value;
};

struct oci_descriptor {
	char *media_type;
	char digest[DIGEST_STR_MAX];
	int64_t size;
	bool has_urls; /* foreign layer: never fetched */
	/* The descriptor's own string annotations (cosign's signature rides
	 * on a layer's); anything but a string map is left out. */
	struct oci_annotation *annotations;
	size_t n_annotations;
};

struct oci_manifest {
	char *media_type; /* top-level mediaType, or the Content-Type, or NULL */
	bool is_index;	  /* an image index / manifest list */
	bool has_config;
	struct oci_descriptor config;
	struct oci_descriptor *layers; /* for an index: its manifests */
	size_t n_layers;
	struct oci_annotation *annotations;
	size_t n_annotations;
};

/* Parse body (len bytes). content_type may be NULL. */
int oci_manifest_parse(const char *body, size_t len, const char *content_type,
		       struct oci_manifest **out) WUR;
void oci_manifest_free(struct oci_manifest *m);

/* The largest sizes a chart's descriptors may declare: the chart layer as
 * helm's limit on a whole chart (100 MiB; the cache refuses more anyway),
 * a provenance file as a push through the mount takes it (1 MiB), the
 * config as a manifest (OCI_MANIFEST_MAX). A manifest declaring more can
 * never be served: it is not a chart (no 1 PB package in `ls -l`). */
#define OCI_CHART_LAYER_MAX (100ll * 1024 * 1024)
#define OCI_PROV_LAYER_MAX (1ll * 1024 * 1024)
#define OCI_CHART_CONFIG_MAX (4ll * 1024 * 1024)

/* The chart layer of a Helm chart manifest (config type helm, exactly one
 * chart content layer, not foreign, every size within the bounds above),
 * or NULL if this is not a chart. */
const struct oci_descriptor *oci_manifest_chart_layer(const struct oci_manifest *m);
/* The provenance layer of a chart, or NULL. */
const struct oci_descriptor *oci_manifest_prov_layer(const struct oci_manifest *m);
/* Value of an annotation, or NULL. */
const char *oci_manifest_annotation(const struct oci_manifest *m, const char *key);
/* Value of a descriptor's own annotation, or NULL. */
const char *oci_descriptor_annotation(const struct oci_descriptor *d, const char *key);

/* True iff tag matches [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
bool oci_tag_valid(const char *tag);
/* True iff name is a valid repository name per the distribution spec:
 * components [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by '/'. */
bool oci_repo_valid(const char *name);

#endif
