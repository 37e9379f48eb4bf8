/*
 * chartmeta_decode.c - go-yaml values into helm's chart.Metadata the way
 * sigs.k8s.io/yaml and encoding/json do it: numbers and bools landing in
 * string fields are formatted as Go formats them (floats as float32), keys
 * are met in sorted order with the last duplicate winning, field names
 * match case-insensitively, null leaves a field alone.
 */
#include "cache/chartmeta_i.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

/* ----------------------------------------- sigs.k8s.io/yaml + encoding/json */

enum ft { T_STR, T_BOOL, T_STRV, T_ANN, T_MAINT, T_DEPS, T_ANY };

struct field {
	const char *name;
	enum ft t;
	size_t off;
};

/* A map key the way sigs.k8s.io/yaml turns it into a JSON key. */
static int key_string(const struct gv *k, char **out)
{
	char buf[64];

	switch (k->k) {
	case G_STR:
		*out = strdup(k->s);
		break;
	case G_INT:
		snprintf(buf, sizeof(buf), "%" PRId64, k->i);
		*out = strdup(buf);
		break;
	case G_BOOL:
		*out = strdup(k->b ? "true" : "false");
		break;
	case G_FLOAT:
		cm_fmt_g32(buf, k->f);
		*out = strdup(!strcmp(buf, "+Inf")   ? ".inf"
			      : !strcmp(buf, "-Inf") ? "-.inf"
			      : !strcmp(buf, "NaN")  ? ".nan"
						     : buf);
		break;
	default:
		return cm_bad("Chart.yaml: unsupported map key", NULL);
	}
	return *out ? 0 : -ENOMEM;
}

/* A mapping's pairs under their JSON keys, sorted, the last duplicate
 * winning: the order encoding/json meets them in (json.Marshal sorts). */
static int map_pairs(const struct gv *m, struct kvs *out)
{
	char *k = NULL;
	int r;

	*out = (struct kvs){0};
	for (size_t i = 0; i < m->n; i++) {
		r = key_string(m->kid[2 * i], &k);
		if (!r)
			r = cm_kvs_add(out, k, NULL, m->kid[2 * i + 1]);
		if (r) {
			cm_kvs_free(out);
			return r;
		}
	}
	cm_kvs_normalize(out);
	return 0;
}

/* A value landing in a Go string field: 1 for null (json leaves the field
 * as it is), else 0 and a malloc'd string. */
static int to_string(const struct gv *v, char **out)
{
	char buf[64];

	switch (v->k) {
	case G_NULL:
		return 1;
	case G_STR:
		*out = strdup(v->s);
		return *out ? 0 : -ENOMEM;
	case G_BOOL:
		snprintf(buf, sizeof(buf), "%s", v->b ? "true" : "false");
		break;
	case G_INT:
		snprintf(buf, sizeof(buf), "%" PRId64, v->i);
		break;
	case G_UINT:
		snprintf(buf, sizeof(buf), "%" PRIu64, v->u);
		break;
	case G_FLOAT:
		cm_fmt_g32(buf, v->f);
		break;
	default:
		return cm_bad("Chart.yaml: a list or mapping where a string belongs",
			      NULL);
	}
	*out = strdup(buf);
	return *out ? 0 : -ENOMEM;
}

/* import-values: []interface{}, so numbers went through float64. */
static int render_any(struct chartmeta *m, struct buf *b, const struct gv *v)
{
	struct kvs kv;
	char num[64];
	size_t i;
	int r = 0;

	if (++m->visits > CM_MAX_VISITS)
		return cm_bad("Chart.yaml: too many (aliased) values", NULL);
	switch (v->k) {
	case G_NULL:
	case G_BOOL:
		cm_bputs(b, v->k == G_NULL ? "null" : v->b ? "true" : "false");
		break;
	case G_INT:
	case G_UINT:
	case G_FLOAT:
		if (v->k == G_FLOAT && !isfinite(v->f))
			return cm_bad("Chart.yaml: .inf or .nan in import-values", NULL);
		cm_fmt_json(num, v->k == G_INT	  ? (double)v->i
				 : v->k == G_UINT ? (double)v->u
						  : v->f);
		cm_bputs(b, num);
		break;
	case G_STR:
		cm_jstr(b, v->s);
		break;
	case G_SEQ:
		cm_bputs(b, "[");
		for (i = 0; i < v->n && !r; i++) {
			cm_bputs(b, i ? "," : "");
			r = render_any(m, b, v->kid[i]);
		}
		cm_bputs(b, "]");
		break;
	case G_MAP:
		if ((r = map_pairs(v, &kv)))
			return r;
		cm_bputs(b, "{");
		for (i = 0; i < kv.n && !r; i++) {
			cm_bputs(b, i ? "," : "");
			cm_jstr(b, kv.v[i].k);
			cm_bputs(b, ":");
			r = render_any(m, b, kv.v[i].g);
		}
		cm_bputs(b, "}");
		cm_kvs_free(&kv);
		break;
	}
	return r;
}

void cm_free_list(struct list *l, bool deps)
{
	for (size_t i = 0; i < l->n; i++) {
		struct maint *mt = &((struct maint *)l->v)[i];
		struct dep *d = &((struct dep *)l->v)[i];

		if (!deps) {
			free(mt->name);
			free(mt->email);
			free(mt->url);
			continue;
		}
		free(d->name);
		free(d->version);
		free(d->repository);
		free(d->condition);
		free(d->alias);
		free(d->imports);
		strv_free(&d->tags);
	}
	free(l->v);
	*l = (struct list){0};
}

#define F(n, t, s, m)                                                                    \
	{                                                                                \
		n, t, offsetof(struct s, m)                                              \
	}
static const struct field maint_fields[] = {
    F("name", T_STR, maint, name),
    F("email", T_STR, maint, email),
    F("url", T_STR, maint, url),
};
static const struct field dep_fields[] = {
    F("name", T_STR, dep, name),
    F("version", T_STR, dep, version),
    F("repository", T_STR, dep, repository),
    F("condition", T_STR, dep, condition),
    F("tags", T_STRV, dep, tags),
    F("enabled", T_BOOL, dep, enabled),
    F("import-values", T_ANY, dep, imports),
    F("alias", T_STR, dep, alias),
};
static const struct field meta_fields[] = {
    F("name", T_STR, chartmeta, name),
    F("home", T_STR, chartmeta, home),
    F("sources", T_STRV, chartmeta, sources),
    F("version", T_STR, chartmeta, version),
    F("description", T_STR, chartmeta, description),
    F("keywords", T_STRV, chartmeta, keywords),
    F("maintainers", T_MAINT, chartmeta, maint),
    F("icon", T_STR, chartmeta, icon),
    F("apiVersion", T_STR, chartmeta, api_version),
    F("condition", T_STR, chartmeta, condition),
    F("tags", T_STR, chartmeta, tags),
    F("appVersion", T_STR, chartmeta, app_version),
    F("deprecated", T_BOOL, chartmeta, deprecated),
    F("annotations", T_ANN, chartmeta, ann),
    F("kubeVersion", T_STR, chartmeta, kube_version),
    F("dependencies", T_DEPS, chartmeta, deps),
    F("type", T_STR, chartmeta, type),
};
#undef F
#define NF(a) (sizeof(a) / sizeof(*(a)))

static int decode_struct(struct chartmeta *m, const struct gv *v, const struct field *f,
			 size_t nf, void *base);

static int decode_strv(const struct gv *g, struct strv *sv, const char *name)
{
	struct strv nv = {0};
	char *s;
	int r;

	if (g->k == G_NULL) {
		strv_free(sv);
		return 0;
	}
	if (g->k != G_SEQ)
		return cm_bad("Chart.yaml: not a list", name);
	for (size_t i = 0; i < g->n; i++) {
		r = to_string(g->kid[i], &s);
		if (r == 1)
			r = strv_push(&nv, "");
		else if (!r)
			r = strv_push_owned(&nv, s);
		if (r) {
			strv_free(&nv);
			return r;
		}
	}
	strv_free(sv);
	*sv = nv;
	return 0;
}

static int decode_ann(const struct gv *g, struct kvs *a)
{
	struct kvs kv;
	char *s;
	int r = 0;

	if (g->k == G_NULL) {
		cm_kvs_free(a);
		return 0;
	}
	if (g->k != G_MAP)
		return cm_bad("Chart.yaml: not a mapping", "annotations");
	if ((r = map_pairs(g, &kv)))
		return r;
	/* encoding/json adds to a map it already holds. */
	for (size_t i = 0; i < kv.n && !r; i++) {
		r = to_string(kv.v[i].g, &s);
		if (r == 1)
			r = 0, s = strdup("");
		if (!r)
			r = cm_kvs_add(a, strdup(kv.v[i].k), s, NULL);
	}
	cm_kvs_free(&kv);
	cm_kvs_normalize(a);
	return r;
}

/* []*Maintainer or []*Dependency: a null element is a nil pointer, which
 * Validate() refuses. */
static int decode_list(struct chartmeta *m, const struct gv *g, bool deps, struct list *l)
{
	const char *what = deps ? "dependencies" : "maintainers";
	size_t sz = deps ? sizeof(struct dep) : sizeof(struct maint), i;
	struct list nl = {0};
	int r = 0;

	if (g->k != G_NULL && g->k != G_SEQ)
		return cm_bad("Chart.yaml: not a list", what);
	if (g->k == G_SEQ && g->n) {
		nl.v = calloc(g->n, sz);
		if (!nl.v)
			return -ENOMEM;
		nl.n = g->n;
	}
	for (i = 0; i < nl.n && !r; i++) {
		if (g->kid[i]->k == G_NULL)
			r = cm_bad(what, "must not contain empty or null nodes");
		else if (deps)
			r = decode_struct(m, g->kid[i], dep_fields, NF(dep_fields),
					  &((struct dep *)nl.v)[i]);
		else
			r = decode_struct(m, g->kid[i], maint_fields, NF(maint_fields),
					  &((struct maint *)nl.v)[i]);
	}
	cm_free_list(r ? &nl : l, deps);
	if (!r)
		*l = nl;
	return r;
}

static int decode_field(struct chartmeta *m, const struct field *f, const struct gv *g,
			void *p)
{
	struct buf b = {0};
	char *s;
	int r;

	if (++m->visits > CM_MAX_VISITS)
		return cm_bad("Chart.yaml: too many (aliased) values", NULL);
	switch (f->t) {
	case T_STR:
		r = to_string(g, &s);
		if (r)
			return r == 1 ? 0 : r;
		free(*(char **)p);
		*(char **)p = s;
		return 0;
	case T_BOOL:
		if (g->k != G_NULL && g->k != G_BOOL)
			return cm_bad("Chart.yaml: not a bool", f->name);
		if (g->k == G_BOOL)
			*(bool *)p = g->b;
		return 0;
	case T_STRV:
		return decode_strv(g, p, f->name);
	case T_ANN:
		return decode_ann(g, p);
	case T_MAINT:
	case T_DEPS:
		return decode_list(m, g, f->t == T_DEPS, p);
	case T_ANY:
		if (g->k != G_NULL && g->k != G_SEQ)
			return cm_bad("Chart.yaml: not a list", f->name);
		if (g->k == G_SEQ && g->n) {
			r = render_any(m, &b, g);
			if (!r && b.oom)
				r = -ENOMEM;
			if (r) {
				free(b.p);
				return r;
			}
		}
		free(*(char **)p);
		*(char **)p = b.p;
		return 0;
	}
	return -EINVAL;
}

/* encoding/json into a struct: exact name first, else case-insensitive;
 * unknown keys are ignored; null leaves the struct alone. */
static int decode_struct(struct chartmeta *m, const struct gv *v, const struct field *f,
			 size_t nf, void *base)
{
	struct kvs kv;
	size_t i, j;
	int r = 0;

	if (v->k == G_NULL)
		return 0;
	if (v->k != G_MAP)
		return cm_bad("Chart.yaml: not a mapping where one belongs", NULL);
	if ((r = map_pairs(v, &kv)))
		return r;
	for (i = 0; i < kv.n && !r; i++) {
		const struct field *fd = NULL;

		for (j = 0; j < nf && !fd; j++)
			if (!strcmp(f[j].name, kv.v[i].k))
				fd = &f[j];
		for (j = 0; j < nf && !fd; j++)
			if (!strcasecmp(f[j].name, kv.v[i].k))
				fd = &f[j];
		if (fd)
			r = decode_field(m, fd, kv.v[i].g, (char *)base + fd->off);
	}
	cm_kvs_free(&kv);
	return r;
}

int cm_decode(struct chartmeta *m, const struct gv *root)
{
	return root ? decode_struct(m, root, meta_fields, NF(meta_fields), m) : 0;
}
