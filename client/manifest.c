/*
 * manifest.c - OCI/docker manifests and indexes into descriptors, and the
 * Helm chart rules on top of them.
 *
 * Everything parsed here comes from a registry: a descriptor whose digest
 * or size is malformed rejects the whole document, so later layers can put
 * digests into file names without checking again.
 */
#include "client/manifest.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "client/oci.h"

/* Media types end up in xattrs and logs: bound them and keep them plain. */
#define MEDIA_TYPE_MAX 255
/* The distribution spec's advice for whole repository names. */
#define REPO_NAME_MAX 255

static bool media_type_ok(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (*s < 0x20 || *s >= 0x7f || n >= MEDIA_TYPE_MAX)
			return false;
	return n > 0;
}

static void annotations_free(struct oci_annotation *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(a[i].key);
		free(a[i].value);
	}
	free(a);
}

static void descriptor_clear(struct oci_descriptor *d)
{
	free(d->media_type);
	d->media_type = NULL;
	annotations_free(d->annotations, d->n_annotations);
	d->annotations = NULL;
	d->n_annotations = 0;
}

/* Keep string-valued annotations of obj into *out (n of them); anything
 * else is not an annotation. */
static int parse_annotations(json_t *obj, struct oci_annotation **out, size_t *n)
{
	const char *key;
	json_t *v;
	size_t size;

	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return -EINVAL;
	size = json_object_size(obj);
	if (!size)
		return 0;
	*out = calloc(size, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	json_object_foreach(obj, key, v)
	{
		struct oci_annotation *a = &(*out)[*n];
		if (!json_is_string(v))
			continue;
		a->key = strdup(key);
		a->value = strdup(json_string_value(v));
		if (!a->key || !a->value) {
			free(a->key);
			free(a->value);
			a->key = a->value = NULL;
			return -ENOMEM;
		}
		(*n)++;
	}
	return 0;
}

static int parse_descriptor(json_t *o, struct oci_descriptor *d)
{
	const char *mt = json_string_value(json_object_get(o, "mediaType"));
	const char *dg = json_string_value(json_object_get(o, "digest"));
	json_t *size = json_object_get(o, "size");
	json_t *urls = json_object_get(o, "urls");

	if (!json_is_object(o) || !mt || !media_type_ok(mt) || !digest_valid(dg) ||
	    !json_is_integer(size) || json_integer_value(size) < 0)
		return -EINVAL;
	if (urls && !json_is_array(urls))
		return -EINVAL;
	d->media_type = strdup(mt);
	if (!d->media_type)
		return -ENOMEM;
	memcpy(d->digest, dg, strlen(dg) + 1);
	d->size = (int64_t)json_integer_value(size);
	d->has_urls = urls && json_array_size(urls) > 0;
	/* Lenient: a layer's annotations never made a manifest unreadable. */
	if (parse_annotations(json_object_get(o, "annotations"), &d->annotations,
			      &d->n_annotations) == -ENOMEM) {
		descriptor_clear(d);
		return -ENOMEM;
	}
	return 0;
}

static int parse_layers(json_t *arr, struct oci_manifest *m)
{
	json_t *v;
	size_t i, n;
	int ret;

	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return -EINVAL;
	n = json_array_size(arr);
	if (!n)
		return 0;
	m->layers = calloc(n, sizeof(*m->layers));
	if (!m->layers)
		return -ENOMEM;
	json_array_foreach(arr, i, v)
	{
		ret = parse_descriptor(v, &m->layers[i]);
		if (ret)
			return ret;
		m->n_layers++;
	}
	return 0;
}

static char *type_from_header(const char *ct)
{
	size_t n;

	if (!ct)
		return NULL;
	n = strcspn(ct, "; \t");
	return n ? strndup(ct, n) : NULL;
}

int oci_manifest_parse(const char *body, size_t len, const char *content_type,
		       struct oci_manifest **out)
{
	struct oci_manifest *m = NULL;
	json_t *root, *sv, *mt, *manifests, *config;
	int ret = -EINVAL;

	*out = NULL;
	if (!body)
		return -EINVAL;
	root = json_loadb(body, len, 0, NULL);
	if (!json_is_object(root))
		goto out;
	sv = json_object_get(root, "schemaVersion");
	if (sv && !(json_is_integer(sv) && json_integer_value(sv) == 2))
		goto out;
	mt = json_object_get(root, "mediaType");
	if (mt && !(json_is_string(mt) && media_type_ok(json_string_value(mt))))
		goto out;
	m = calloc(1, sizeof(*m));
	if (!m) {
		ret = -ENOMEM;
		goto out;
	}
	m->media_type =
	    mt ? strdup(json_string_value(mt)) : type_from_header(content_type);
	if (m->media_type && !media_type_ok(m->media_type)) {
		free(m->media_type);
		m->media_type = NULL;
	}
	manifests = json_object_get(root, "manifests");
	m->is_index =
	    manifests || (m->media_type && (!strcmp(m->media_type, OCI_MT_INDEX) ||
					    !strcmp(m->media_type, OCI_MT_DOCKER_LIST)));
	if (m->is_index) {
		ret = parse_layers(manifests, m);
	} else {
		config = json_object_get(root, "config");
		ret = 0;
		if (config) {
			ret = parse_descriptor(config, &m->config);
			m->has_config = ret == 0;
		}
		/* The short-lived OCI artifact manifest called them blobs. */
		if (!ret)
			ret = parse_layers(json_object_get(root, "layers")
					       ? json_object_get(root, "layers")
					       : json_object_get(root, "blobs"),
					   m);
	}
	if (!ret)
		ret = parse_annotations(json_object_get(root, "annotations"),
					&m->annotations, &m->n_annotations);
	if (!ret)
		*out = m;
out:
	if (ret)
		oci_manifest_free(m);
	json_decref(root);
	return ret;
}

void oci_manifest_free(struct oci_manifest *m)
{
	size_t i;

	if (!m)
		return;
	free(m->media_type);
	descriptor_clear(&m->config);
	for (i = 0; i < m->n_layers; i++)
		descriptor_clear(&m->layers[i]);
	free(m->layers);
	annotations_free(m->annotations, m->n_annotations);
	free(m);
}

static bool is_chart_type(const char *mt)
{
	return !strcmp(mt, HELM_MT_CHART) || !strcmp(mt, HELM_MT_CHART_LEGACY);
}

const struct oci_descriptor *oci_manifest_chart_layer(const struct oci_manifest *m)
{
	const struct oci_descriptor *found = NULL;
	size_t i;

	if (!m || m->is_index || !m->has_config ||
	    strcmp(m->config.media_type, HELM_MT_CONFIG) ||
	    m->config.size > OCI_CHART_CONFIG_MAX)
		return NULL;
	for (i = 0; i < m->n_layers; i++) {
		/* A size no chart can have makes the manifest a broken one. */
		if (!strcmp(m->layers[i].media_type, HELM_MT_PROV) &&
		    m->layers[i].size > OCI_PROV_LAYER_MAX)
			return NULL;
		if (!is_chart_type(m->layers[i].media_type))
			continue;
		if (m->layers[i].size > OCI_CHART_LAYER_MAX)
			return NULL;
		/* Two chart layers: which one helm would take is undefined. */
		if (found)
			return NULL;
		found = &m->layers[i];
	}
	return found && !found->has_urls ? found : NULL;
}

const struct oci_descriptor *oci_manifest_prov_layer(const struct oci_manifest *m)
{
	size_t i;

	if (!oci_manifest_chart_layer(m))
		return NULL;
	for (i = 0; i < m->n_layers; i++)
		if (!strcmp(m->layers[i].media_type, HELM_MT_PROV) &&
		    !m->layers[i].has_urls)
			return &m->layers[i];
	return NULL;
}

static const char *annotation_in(const struct oci_annotation *a, size_t n,
				 const char *key)
{
	size_t i;

	for (i = 0; key && i < n; i++)
		if (!strcmp(a[i].key, key))
			return a[i].value;
	return NULL;
}

const char *oci_manifest_annotation(const struct oci_manifest *m, const char *key)
{
	return m ? annotation_in(m->annotations, m->n_annotations, key) : NULL;
}

const char *oci_descriptor_annotation(const struct oci_descriptor *d, const char *key)
{
	return d ? annotation_in(d->annotations, d->n_annotations, key) : NULL;
}

static bool is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool oci_tag_valid(const char *tag)
{
	size_t i;

	if (!tag || !tag[0])
		return false;
	for (i = 0; tag[i]; i++) {
		char c = tag[i];
		bool word = (c >= 'A' && c <= 'Z') || is_alnum_lower(c) || c == '_';
		if (i >= 128 || !(word || (i > 0 && (c == '.' || c == '-'))))
			return false;
	}
	return true;
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*; returns its end,
 * or NULL if it does not match. */
static const char *component_end(const char *p)
{
	for (;;) {
		if (!is_alnum_lower(*p))
			return NULL;
		while (is_alnum_lower(*p))
			p++;
		if (*p == '.') {
			p++;
		} else if (*p == '_') {
			p += p[1] == '_' ? 2 : 1;
		} else if (*p == '-') {
			while (*p == '-')
				p++;
		} else {
			return p;
		}
	}
}

bool oci_repo_valid(const char *name)
{
	const char *p = name;

	if (!name || strlen(name) > REPO_NAME_MAX)
		return false;
	for (;;) {
		p = component_end(p);
		if (!p)
			return false;
		if (*p == '\0')
			return true;
		if (*p != '/')
			return false;
		p++;
	}
}
