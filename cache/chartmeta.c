/*
 * chartmeta.c - helm's Metadata.Validate(), config blob and manifest
 * annotations, and Masterminds semver's version checks.
 */
#include "cache/chartmeta_i.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* ------------------------------------------------------------ validation */

/* One OCI repository path component, [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*:
 * helm push builds <ns>/<name>:<tag> and fails on anything else. */
static bool oci_component(const char *p)
{
	for (;;) {
		size_t a = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789");

		if (!a)
			return false;
		p += a;
		if (!*p)
			return true;
		if (*p == '.')
			p++;
		else if (*p == '_')
			p += p[1] == '_' ? 2 : 1;
		else if (*p == '-')
			p += strspn(p, "-");
		else
			return false;
	}
}

static bool alias_ok(const char *s)
{
	return *s && !s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "0123456789_-")];
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Metadata.Validate() plus what helm push refuses later. */
static int validate(struct chartmeta *m)
{
	char **s[] = {&m->name,	     &m->description, &m->home,	       &m->icon,
		      &m->condition, &m->tags,	      &m->app_version, &m->kube_version};
	const char **keys;
	size_t i;
	int r = 0;

	for (i = 0; i < sizeof(s) / sizeof(*s) && !r; i++)
		r = cm_sanitize(s[i]);
	for (i = 0; i < m->sources.n && !r; i++)
		r = cm_sanitize(&m->sources.v[i]);
	for (i = 0; i < m->keywords.n && !r; i++)
		r = cm_sanitize(&m->keywords.v[i]);
	if (r)
		return r;
	if (!*cm_nz(m->name))
		return cm_bad("chart name is required", NULL);
	if (!oci_component(m->name))
		return cm_bad("chart name is not an OCI repository name", m->name);
	if (!*cm_nz(m->version))
		return cm_bad("chart version is required", NULL);
	if (!chartmeta_semver_valid(m->version))
		return cm_bad("chart version is not SemVer", m->version);
	if (strlen(m->version) > 128)
		return cm_bad("chart version is too long for an OCI tag", NULL);
	if (m->type && *m->type && strcmp(m->type, "application") &&
	    strcmp(m->type, "library"))
		return cm_bad("chart type must be application or library", m->type);
	for (i = 0; i < m->maint.n && !r; i++) {
		r = cm_sanitize(&MAINT(m, i)->name);
		r = r ? r : cm_sanitize(&MAINT(m, i)->email);
		r = r ? r : cm_sanitize(&MAINT(m, i)->url);
	}
	for (i = 0; i < m->deps.n && !r; i++) {
		struct dep *d = DEP(m, i);

		r = cm_sanitize(&d->name);
		r = r ? r : cm_sanitize(&d->version);
		r = r ? r : cm_sanitize(&d->repository);
		r = r ? r : cm_sanitize(&d->condition);
		for (size_t j = 0; j < d->tags.n && !r; j++)
			r = cm_sanitize(&d->tags.v[j]);
		if (!r && d->alias && *d->alias && !alias_ok(d->alias))
			r = cm_bad("dependency alias has disallowed characters",
				   d->alias);
	}
	if (r || m->deps.n < 2)
		return r;
	keys = malloc(m->deps.n * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (i = 0; i < m->deps.n; i++)
		keys[i] =
		    *cm_nz(DEP(m, i)->alias) ? DEP(m, i)->alias : cm_nz(DEP(m, i)->name);
	qsort(keys, m->deps.n, sizeof(*keys), key_cmp);
	for (i = 1; i < m->deps.n && !r; i++)
		if (!strcmp(keys[i - 1], keys[i]))
			r = cm_bad("more than one dependency with name or alias",
				   keys[i]);
	free(keys);
	return r;
}

/* ------------------------------------------------------------------- API */

static int parse_doc(struct chartmeta *m, const char *yaml, size_t len)
{
	struct cm_doc d = {0};
	int r = cm_yaml_load(yaml, len, &d);

	if (!r)
		r = cm_decode(m, d.root);
	cm_yaml_free(&d);
	return r;
}

int chartmeta_parse(const char *yaml, size_t len, struct chartmeta **out)
{
	struct chartmeta *m = calloc(1, sizeof(*m));
	int r;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	r = parse_doc(m, yaml, len);
	/* helm's loader: charts without apiVersion are helm 2 ("v1") charts. */
	if (!r && !*cm_nz(m->api_version)) {
		free(m->api_version);
		m->api_version = strdup("v1");
		r = m->api_version ? 0 : -ENOMEM;
	}
	if (!r)
		r = validate(m);
	if (r) {
		chartmeta_free(m);
		return r;
	}
	*out = m;
	return 0;
}

void chartmeta_free(struct chartmeta *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->home);
	free(m->version);
	free(m->description);
	free(m->icon);
	free(m->api_version);
	free(m->condition);
	free(m->tags);
	free(m->app_version);
	free(m->kube_version);
	free(m->type);
	strv_free(&m->sources);
	strv_free(&m->keywords);
	cm_free_list(&m->maint, false);
	cm_free_list(&m->deps, true);
	cm_kvs_free(&m->ann);
	free(m);
}

const char *chartmeta_name(const struct chartmeta *m)
{
	return m->name;
}

const char *chartmeta_version(const struct chartmeta *m)
{
	return m->version;
}

int chartmeta_tag(const struct chartmeta *m, char **tag)
{
	char *p;

	*tag = strdup(m->version);
	if (!*tag)
		return -ENOMEM;
	for (p = *tag; (p = strchr(p, '+'));)
		*p = '_';
	return 0;
}

/* "key": for the next member of an object. */
static void jkey(struct buf *b, bool *first, const char *k)
{
	cm_bputs(b, *first ? "\"" : ",\"");
	cm_bputs(b, k);
	cm_bputs(b, "\":");
	*first = false;
}

/* An omitempty string member. */
static void jopt(struct buf *b, bool *first, const char *k, const char *v)
{
	if (v && *v) {
		jkey(b, first, k);
		cm_jstr(b, v);
	}
}

static void jlist(struct buf *b, bool *first, const char *k, const struct strv *sv)
{
	if (!sv->n)
		return;
	jkey(b, first, k);
	for (size_t i = 0; i < sv->n; i++) {
		cm_bputs(b, i ? "," : "[");
		cm_jstr(b, sv->v[i]);
	}
	cm_bputs(b, "]");
}

/* json.Marshal(chart.Metadata): struct order, omitempty, sorted map. */
int chartmeta_config_json(const struct chartmeta *m, char **json, size_t *len)
{
	struct buf b = {0};
	bool first = true, f;
	size_t i;

	cm_bputs(&b, "{");
	jopt(&b, &first, "name", m->name);
	jopt(&b, &first, "home", m->home);
	jlist(&b, &first, "sources", &m->sources);
	jopt(&b, &first, "version", m->version);
	jopt(&b, &first, "description", m->description);
	jlist(&b, &first, "keywords", &m->keywords);
	for (i = 0; i < m->maint.n; i++) {
		if (!i)
			jkey(&b, &first, "maintainers");
		cm_bputs(&b, i ? ",{" : "[{");
		f = true;
		jopt(&b, &f, "name", MAINT(m, i)->name);
		jopt(&b, &f, "email", MAINT(m, i)->email);
		jopt(&b, &f, "url", MAINT(m, i)->url);
		cm_bputs(&b, i + 1 == m->maint.n ? "}]" : "}");
	}
	jopt(&b, &first, "icon", m->icon);
	jopt(&b, &first, "apiVersion", m->api_version);
	jopt(&b, &first, "condition", m->condition);
	jopt(&b, &first, "tags", m->tags);
	jopt(&b, &first, "appVersion", m->app_version);
	if (m->deprecated)
		jkey(&b, &first, "deprecated"), cm_bputs(&b, "true");
	for (i = 0; i < m->ann.n; i++) {
		if (!i)
			jkey(&b, &first, "annotations");
		cm_bputs(&b, i ? "," : "{");
		cm_jstr(&b, m->ann.v[i].k);
		cm_bputs(&b, ":");
		cm_jstr(&b, m->ann.v[i].s);
		cm_bputs(&b, i + 1 == m->ann.n ? "}" : "");
	}
	jopt(&b, &first, "kubeVersion", m->kube_version);
	for (i = 0; i < m->deps.n; i++) {
		const struct dep *d = DEP(m, i);

		if (!i)
			jkey(&b, &first, "dependencies");
		cm_bputs(&b, i ? ",{\"name\":" : "[{\"name\":");
		cm_jstr(&b, cm_nz(d->name));
		f = false;
		jopt(&b, &f, "version", d->version);
		cm_bputs(&b, ",\"repository\":");
		cm_jstr(&b, cm_nz(d->repository));
		jopt(&b, &f, "condition", d->condition);
		jlist(&b, &f, "tags", &d->tags);
		if (d->enabled)
			cm_bputs(&b, ",\"enabled\":true");
		if (d->imports)
			cm_bputs(&b, ",\"import-values\":"), cm_bputs(&b, d->imports);
		jopt(&b, &f, "alias", d->alias);
		cm_bputs(&b, i + 1 == m->deps.n ? "}]" : "}");
	}
	jopt(&b, &first, "type", m->type);
	cm_bputs(&b, "}");
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*json = b.p;
	*len = b.n;
	return 0;
}

/* strings.TrimSpace(s) == "" */
static bool blank(const char *str)
{
	const unsigned char *s = (const unsigned char *)cm_nz(str);
	int size;

	for (; *s; s += size)
		if (!cm_is_space(cm_rune(s, &size)))
			return false;
	return true;
}

#define OCI "org.opencontainers.image."

static int add_gen(struct kvs *a, const char *key, const char *v)
{
	return blank(v) ? 0 : cm_kvs_add(a, strdup(key), strdup(v), NULL);
}

int chartmeta_annotations(const struct chartmeta *m, const char *created,
			  struct strv *keys, struct strv *values)
{
	struct kvs a = {0};
	struct buf au = {0};
	size_t i;
	int r;

	/* "Name (email), Name2": helm writes the separators even around an
	 * empty name. */
	for (i = 0; i < m->maint.n; i++) {
		const struct maint *mt = MAINT(m, i);

		cm_bputs(&au, cm_nz(mt->name));
		if (*cm_nz(mt->email))
			cm_bputs(&au, " ("), cm_bputs(&au, mt->email), cm_bputs(&au, ")");
		cm_bputs(&au, i + 1 < m->maint.n ? ", " : "");
	}
	r = au.oom ? -ENOMEM : 0;
	r = r ? r : add_gen(&a, OCI "description", m->description);
	r = r ? r : add_gen(&a, OCI "title", m->name);
	r = r ? r : add_gen(&a, OCI "version", m->version);
	r = r ? r : add_gen(&a, OCI "url", m->home);
	r = r ? r : add_gen(&a, OCI "created", created);
	r = r ? r : add_gen(&a, OCI "source", m->sources.n ? m->sources.v[0] : NULL);
	r = r ? r : add_gen(&a, OCI "authors", au.p);
	/* Chart annotations win, empty or not, except over title and version. */
	for (i = 0; i < m->ann.n && !r; i++) {
		const struct kv *kv = &m->ann.v[i];

		if (strcmp(kv->k, OCI "title") && strcmp(kv->k, OCI "version"))
			r = cm_kvs_add(&a, strdup(kv->k), strdup(kv->s), NULL);
	}
	if (!r)
		cm_kvs_normalize(&a);
	for (i = 0; i < a.n && !r; i++) {
		r = strv_push(keys, a.v[i].k);
		r = r ? r : strv_push(values, a.v[i].s);
	}
	free(au.p);
	cm_kvs_free(&a);
	return r;
}

/* -------------------------------------------------------------- SemVer */

static bool digits(const char *s, size_t n)
{
	return n && strspn(s, "0123456789") >= n;
}

static bool fits_u64(const char *s, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		if (v > (UINT64_MAX - (unsigned)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return true;
}

/* Dot separated [0-9A-Za-z-]+; in a prerelease a numeric one has no
 * leading zero. */
static bool idents(const char *s, size_t n, bool pre)
{
	size_t i = 0, j;

	for (;;) {
		for (j = i; j < n && s[j] != '.'; j++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789-",
				    s[j]) ||
			    !s[j])
				return false;
		if (j == i || (pre && j - i > 1 && s[i] == '0' && digits(s + i, j - i)))
			return false;
		if (j == n)
			return true;
		i = j + 1;
	}
}

/* Split off +build and -prerelease, checking them; returns the core length. */
static bool split_semver(const char *s, size_t *core)
{
	size_t n = strlen(s);
	const char *plus = memchr(s, '+', n), *dash;

	if (plus && !idents(plus + 1, n - (size_t)(plus + 1 - s), false))
		return false;
	n = plus ? (size_t)(plus - s) : n;
	dash = memchr(s, '-', n);
	if (dash && !idents(dash + 1, n - (size_t)(dash + 1 - s), true))
		return false;
	*core = dash ? (size_t)(dash - s) : n;
	return true;
}

bool chartmeta_semver_valid(const char *v)
{
	const char *s = v + (v[0] == 'v');
	size_t core, i = 0, j, segs = 0;

	if (!split_semver(s, &core))
		return false;
	for (;;) {
		for (j = i; j < core && s[j] != '.'; j++)
			;
		if (!digits(s + i, j - i) || !fits_u64(s + i, j - i) || ++segs > 3)
			return false;
		if (j == core)
			return true;
		i = j + 1;
	}
}
