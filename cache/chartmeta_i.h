/*
 * chartmeta_i.h - internals shared by the chartmeta files; not an API.
 *
 * chartmeta_yaml.c: what go-yaml v2 makes of the bytes (untyped values).
 * chartmeta_decode.c: what sigs.k8s.io/yaml + encoding/json make of those
 *   values in helm's chart.Metadata struct.
 * chartmeta_go.c: Go's formatting: strconv floats, JSON strings,
 *   unicode.IsSpace/IsPrint (helm's sanitizeString).
 * chartmeta.c: Metadata.Validate(), the config blob, the annotations.
 * Same contract as chartmeta.h: no global state, any thread.
 */
#ifndef CHARTFS_CHARTMETA_INT_H
#define CHARTFS_CHARTMETA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/chartmeta.h"
#include "common/compiler.h"
#include "common/strv.h"

#define CM_MAX_VISITS (1u << 20) /* bounds alias fan-out ("billion laughs") */

enum gk { G_NULL, G_BOOL, G_INT, G_UINT, G_FLOAT, G_STR, G_SEQ, G_MAP };

/* One go-yaml v2 value. Aliases share nodes, so the tree is a DAG; every
 * node sits on its document's chain and is freed from there. */
struct gv {
	enum gk k;
	bool b;
	int64_t i;
	uint64_t u;
	double f;
	char *s;
	struct gv **kid; /* G_SEQ: n values; G_MAP: n (key, value) pairs */
	size_t n, cap;
	struct gv *chain;
};

/* A parsed YAML document: the first one of the stream, as yaml.Unmarshal. */
struct cm_doc {
	struct gv *root; /* NULL for an empty stream */
	struct gv *chain;
};

/* A key/value pair; ord keeps document order so the last duplicate wins. */
struct kv {
	char *k;
	char *s;
	const struct gv *g;
	size_t ord;
};

struct kvs {
	struct kv *v;
	size_t n, cap;
};

struct maint {
	char *name, *email, *url;
};

struct dep {
	char *name, *version, *repository, *condition, *alias;
	struct strv tags;
	bool enabled;
	char *imports; /* import-values rendered as JSON, NULL when empty */
};

struct list {
	void *v; /* struct maint or struct dep */
	size_t n;
};

struct chartmeta {
	char *name, *home, *version, *description, *icon, *api_version;
	char *condition, *tags, *app_version, *kube_version, *type;
	struct strv sources, keywords;
	struct list maint, deps;
	bool deprecated;
	struct kvs ann;
	unsigned visits; /* decode work, against CM_MAX_VISITS */
};

/* The i-th maintainer or dependency of m. */
#define MAINT(m, i) (&((struct maint *)(m)->maint.v)[i])
#define DEP(m, i) (&((struct dep *)(m)->deps.v)[i])

struct buf {
	char *p;
	size_t n, cap;
	bool oom; /* set once an allocation failed; the text is then cut */
};

/* Log "chartmeta: what: detail" at LOG_INFO and return -EINVAL. */
int cm_bad(const char *what, const char *detail);
const char *cm_nz(const char *s); /* NULL as "" */

/* Append a pair taking k and s (freed on failure); g is borrowed. */
int cm_kvs_add(struct kvs *a, char *k, char *s, const struct gv *g) WUR;
void cm_kvs_free(struct kvs *a);
/* Sort by key, keeping the last of equal keys (Go map assignment). */
void cm_kvs_normalize(struct kvs *a);

/* strconv.FormatFloat(d, 'g', -1, 32) into o (>= 32 bytes). */
void cm_fmt_g32(char *o, double d);
/* encoding/json's float64 text for a finite d into o (>= 32 bytes). */
void cm_fmt_json(char *o, double d);

void cm_bputs(struct buf *b, const char *s);
/* One rune like utf8.DecodeRuneInString: -1 (size 1) when invalid. */
int32_t cm_rune(const unsigned char *s, int *size);
/* A JSON string as encoding/json writes it (HTML-safe, Go >= 1.22). */
void cm_jstr(struct buf *b, const char *s);
bool cm_is_space(int32_t r); /* unicode.IsSpace */
/* helm's sanitizeString on *sp (replaced; NULL stays NULL). */
int cm_sanitize(char **sp) WUR;

/* Parse the first YAML document of yaml into d (free with cm_yaml_free,
 * also after an error). */
int cm_yaml_load(const char *yaml, size_t len, struct cm_doc *d) WUR;
void cm_yaml_free(struct cm_doc *d);

/* Decode a document into m the way sigs.k8s.io/yaml + encoding/json do. */
int cm_decode(struct chartmeta *m, const struct gv *root) WUR;
void cm_free_list(struct list *l, bool deps);

#endif
