/*
 * chartmeta_yaml.c - a YAML document as go-yaml v2 decodes it into
 * interface{}: YAML 1.1 scalars (yes/no/on/off/y/n are bools, 010 is
 * octal, 1_000 is 1000), merge keys, aliases; only the first document.
 */
#include "cache/chartmeta_i.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/log.h"

#define MAX_DEPTH 512

struct anchor {
	char *name;
	struct gv *v;
};

struct ld {
	yaml_parser_t p;
	struct cm_doc *d;
	struct anchor *anc;
	size_t nanc;
};

/* strconv.ParseUint(s, 0, 64) on a string without underscores. */
static bool go_parse_uint(const char *s, uint64_t *out)
{
	unsigned base = 10, dv;
	uint64_t v = 0;

	if (!*s)
		return false;
	if (s[0] == '0') {
		char c = (char)(s[1] | 0x20);
		bool pfx = s[1] && s[2] && (c == 'b' || c == 'o' || c == 'x');

		base = !pfx ? 8 : c == 'b' ? 2 : c == 'o' ? 8 : 16;
		s += pfx ? 2 : 1;
	}
	for (; *s; s++) {
		char c = (char)(*s | 0x20);

		if (*s >= '0' && *s <= '9')
			dv = (unsigned)(*s - '0');
		else if (c >= 'a' && c <= 'z')
			dv = (unsigned)(c - 'a' + 10);
		else
			return false;
		if (dv >= base || v > (UINT64_MAX - dv) / base)
			return false;
		v = v * base + dv;
	}
	*out = v;
	return true;
}

static bool float_syntax(const char *s)
{
	const char *p = s + (*s == '+' || *s == '-');
	size_t a = strspn(p, "0123456789"), b = 0;

	if (p[a] == '.')
		b = strspn(p + a + 1, "0123456789");
	if (a == 0 && b == 0)
		return false;
	p += a + (p[a] == '.' ? 1 + b : 0);
	if (*p == 'e' || *p == 'E') {
		p += 1 + (p[1] == '+' || p[1] == '-');
		if (!strspn(p, "0123456789"))
			return false;
		p += strspn(p, "0123456789");
	}
	return *p == '\0';
}

/* go-yaml v2's resolve() for an untagged plain scalar (timestamps stay
 * strings when decoded into interface{}, so they need no case here). */
static int resolve_plain(struct gv *v, const char *s, size_t len, bool *is_str)
{
	static const char *const tv[] = {"y",	 "Y",	 "yes", "Yes", "YES", "true",
					 "True", "TRUE", "on",	"On",  "ON"};
	static const char *const fv[] = {"n",	  "N",	   "no",  "No",	 "NO", "false",
					 "False", "FALSE", "off", "Off", "OFF"};
	static const char *const nv[] = {"", "~", "null", "Null", "NULL"};
	char *plain, *w;
	size_t i;
	uint64_t u;

	*is_str = false;
	if (strlen(s) != len)
		goto str;
	for (i = 0; i < sizeof(nv) / sizeof(*nv); i++)
		if (!strcmp(s, nv[i]))
			return v->k = G_NULL, 0;
	for (i = 0; i < sizeof(tv) / sizeof(*tv); i++) {
		if (!strcmp(s, tv[i]) || !strcmp(s, fv[i])) {
			v->k = G_BOOL;
			v->b = !strcmp(s, tv[i]);
			return 0;
		}
	}
	if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN"))
		return v->k = G_FLOAT, v->f = NAN, 0;
	for (i = 0; i < 3; i++) {
		static const char *const inf[] = {".inf", ".Inf", ".INF"};

		if (!strcmp(s, inf[i]) ||
		    ((s[0] == '+' || s[0] == '-') && !strcmp(s + 1, inf[i]))) {
			v->k = G_FLOAT;
			v->f = s[0] == '-' ? -INFINITY : INFINITY;
			return 0;
		}
	}
	if (s[0] == '.' && s[1] >= '0' && s[1] <= '9' && float_syntax(s)) {
		v->k = G_FLOAT;
		v->f = strtod(s, NULL);
		return 0;
	}
	if (!strchr("+-0123456789", s[0]))
		goto str;
	plain = malloc(len + 1);
	if (!plain)
		return -ENOMEM;
	for (w = plain, i = 0; i < len; i++)
		if (s[i] != '_')
			*w++ = s[i];
	*w = '\0';
	w = plain + (plain[0] == '+' || plain[0] == '-');
	if (go_parse_uint(w, &u) &&
	    (plain[0] == '-' ? u <= (uint64_t)INT64_MAX + 1 : u <= INT64_MAX)) {
		v->k = G_INT;
		v->i = plain[0] == '-' ? (int64_t)(0 - u) : (int64_t)u;
	} else if (w == plain && go_parse_uint(plain, &u)) {
		v->k = G_UINT;
		v->u = u;
	} else if (float_syntax(plain) && !isinf(strtod(plain, NULL))) {
		v->k = G_FLOAT;
		v->f = strtod(plain, NULL);
	}
	free(plain);
	if (v->k != G_STR)
		return 0;
str:
	*is_str = true;
	return 0;
}

/* ------------------------------------------------------------ YAML load */

static struct gv *gv_new(struct ld *l, enum gk k)
{
	struct gv *v = calloc(1, sizeof(*v));

	if (v) {
		v->k = k;
		v->chain = l->d->chain;
		l->d->chain = v;
	}
	return v;
}

static int gv_push(struct gv *v, struct gv *x)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4;
		struct gv **kid = realloc(v->kid, cap * sizeof(*kid));

		if (!kid)
			return -ENOMEM;
		v->kid = kid;
		v->cap = cap;
	}
	v->kid[v->n++] = x;
	return 0;
}

static int next_event(struct ld *l, yaml_event_t *ev)
{
	char where[64];

	if (yaml_parser_parse(&l->p, ev))
		return 0;
	snprintf(where, sizeof(where), " (line %zu)", l->p.problem_mark.line + 1);
	log_info("chartmeta: Chart.yaml is not YAML: %s%s", cm_nz(l->p.problem), where);
	return -EINVAL;
}

static int scalar(struct ld *l, const yaml_event_t *ev, struct gv **out)
{
	const char *tag = (const char *)ev->data.scalar.tag;
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	struct gv *v = gv_new(l, G_STR);
	bool is_str = true;
	const char *t;
	int r;

	if (!v)
		return -ENOMEM;
	/* Go strings may hold NUL, ours are C strings: refuse (helm keeps it
	 * only in annotations, apiVersion and import-values). */
	if (memchr(s, '\0', len))
		return cm_bad("Chart.yaml: NUL in a string is not supported", NULL);
	/* Untagged plain scalars are resolved; quoted ones and unknown tags
	 * are strings; the core tags resolve and must agree. */
	t = tag && !strncmp(tag, "tag:yaml.org,2002:", 18) ? tag + 18 : NULL;
	if ((!tag && ev->data.scalar.plain_implicit) ||
	    (t && strcmp(t, "str") && strcmp(t, "timestamp") && strcmp(t, "binary"))) {
		r = resolve_plain(v, s, len, &is_str);
		if (r)
			return r;
		if (t && v->k == G_INT && !strcmp(t, "float")) {
			v->k = G_FLOAT;
			v->f = (double)v->i;
		}
		if (t &&
		    (is_str || strcmp(t, (const char *[]){"null", "bool", "int", "int",
							  "float"}[v->k - G_NULL])))
			return cm_bad("Chart.yaml: scalar does not match its tag", tag);
	}
	if (is_str) {
		v->k = G_STR;
		v->s = strndup(s, len);
		if (!v->s)
			return -ENOMEM;
		v->n = len;
	}
	*out = v;
	return 0;
}

static int load(struct ld *l, yaml_event_t *ev, unsigned depth, struct gv **out);

/* go-yaml's merge key: splice in the mapping, or each mapping of a list with
 * the first one winning; keys written later in the mapping win over it. */
static int merge_into(struct gv *v, const struct gv *x)
{
	const struct gv *const *src =
	    x->k == G_SEQ ? (const struct gv *const *)x->kid : &x;
	size_t i, j, ns = x->k == G_SEQ ? x->n : 1;
	int r;

	for (i = ns; i-- > 0;) {
		if (src[i]->k != G_MAP)
			return cm_bad("Chart.yaml: merge key with a non-mapping", NULL);
		for (j = 0; j < 2 * src[i]->n; j++)
			if ((r = gv_push(v, src[i]->kid[j])))
				return r;
	}
	return 0;
}

/* The body of a sequence or mapping, up to its end event. */
static int load_kids(struct ld *l, struct gv *v, unsigned depth)
{
	bool want_key = v->k == G_MAP, merge = false;
	struct gv *x, *key = NULL;
	yaml_event_t ev;
	int r;

	for (;;) {
		if ((r = next_event(l, &ev)))
			return r;
		if (ev.type == YAML_SEQUENCE_END_EVENT ||
		    ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (want_key)
			merge = ev.type == YAML_SCALAR_EVENT &&
				ev.data.scalar.plain_implicit && !ev.data.scalar.tag &&
				!strcmp((const char *)ev.data.scalar.value, "<<");
		r = load(l, &ev, depth + 1, &x);
		yaml_event_delete(&ev);
		if (r)
			return r;
		if (v->k == G_SEQ) {
			r = gv_push(v, x);
		} else if (want_key) {
			key = x;
		} else if (merge) {
			r = merge_into(v, x);
		} else {
			r = gv_push(v, key);
			if (!r)
				r = gv_push(v, x);
		}
		if (r)
			return r;
		if (v->k == G_MAP)
			want_key = !want_key;
	}
}

static int load(struct ld *l, yaml_event_t *ev, unsigned depth, struct gv **out)
{
	const char *anchor = NULL;
	struct gv *v = NULL;
	size_t i;
	int r;

	if (depth > MAX_DEPTH)
		return cm_bad("Chart.yaml: nested too deeply", NULL);
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		for (i = l->nanc; i-- > 0;) {
			if (!strcmp(l->anc[i].name,
				    (const char *)ev->data.alias.anchor)) {
				*out = l->anc[i].v;
				return 0;
			}
		}
		return cm_bad("Chart.yaml: unknown anchor",
			      (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		anchor = (const char *)ev->data.scalar.anchor;
		r = scalar(l, ev, &v);
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		anchor = ev->type == YAML_SEQUENCE_START_EVENT
			     ? (const char *)ev->data.sequence_start.anchor
			     : (const char *)ev->data.mapping_start.anchor;
		v = gv_new(l, ev->type == YAML_SEQUENCE_START_EVENT ? G_SEQ : G_MAP);
		r = v ? load_kids(l, v, depth) : -ENOMEM;
		if (!r && v->k == G_MAP)
			v->n /= 2;
		break;
	default:
		return cm_bad("Chart.yaml: unexpected YAML event", NULL);
	}
	if (r)
		return r;
	/* Registered once complete, so a node cannot contain itself. */
	if (anchor) {
		struct anchor *a = realloc(l->anc, (l->nanc + 1) * sizeof(*a));

		if (!a)
			return -ENOMEM;
		l->anc = a;
		a[l->nanc].name = strdup(anchor);
		if (!a[l->nanc].name)
			return -ENOMEM;
		a[l->nanc++].v = v;
	}
	*out = v;
	return 0;
}

int cm_yaml_load(const char *yaml, size_t len, struct cm_doc *d)
{
	struct ld l = {.d = d};
	yaml_event_t ev;
	size_t k;
	int r = 0, i;

	d->root = NULL;
	if (!yaml_parser_initialize(&l.p))
		return -ENOMEM;
	yaml_parser_set_input_string(&l.p, (const unsigned char *)yaml, len);
	/* Stream start, document start (or stream end: an empty file is
	 * null), the root node, document end; later documents are not read. */
	for (i = 0; i < 4 && !r; i++) {
		if ((r = next_event(&l, &ev)))
			break;
		if (i == 1 && ev.type == YAML_STREAM_END_EVENT)
			i = 3;
		else if (i == 2)
			r = load(&l, &ev, 0, &d->root);
		yaml_event_delete(&ev);
	}
	for (k = 0; k < l.nanc; k++)
		free(l.anc[k].name);
	free(l.anc);
	yaml_parser_delete(&l.p);
	return r;
}

void cm_yaml_free(struct cm_doc *d)
{
	while (d->chain) {
		struct gv *n = d->chain->chain;

		free(d->chain->s);
		free(d->chain->kid);
		free(d->chain);
		d->chain = n;
	}
	d->root = NULL;
}
