/*
 * fuzz_manifest.c - manifest and index JSON from a registry into
 * descriptors, then the Helm chart rules on top of them.
 *
 * Input: the response body. An input that starts with "Content-Type: "
 * takes that first line as the header (the parser falls back to it when
 * the body names no mediaType); any other input is a body without one.
 */
#include "tests/fuzz/fuzz.h"

#include "client/manifest.h"

#define CT_PREFIX "Content-Type: "

static const char *const keys[] = {
    "org.opencontainers.image.created",
    "org.opencontainers.image.title",
    "org.opencontainers.image.version",
    "",
};

static void check_descriptor(const struct oci_descriptor *d)
{
	/* Whatever the parser accepted must be a plain, bounded string: later
	 * layers put these into file names and xattrs without checking. */
	if (!d)
		return;
	if (!digest_valid(d->digest) || d->size < 0 || !d->media_type ||
	    strlen(d->media_type) > 255)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	char *ct = NULL;
	struct oci_manifest *m = NULL;
	size_t i;

	fuzz_init();
	if (size >= strlen(CT_PREFIX) && !memcmp(data, CT_PREFIX, strlen(CT_PREFIX))) {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t n = nl ? (size_t)(nl - data) : size;

		ct = fuzz_strdup(data + strlen(CT_PREFIX), n - strlen(CT_PREFIX));
		if (!ct)
			return 0;
		body += nl ? n + 1 : n;
		size -= nl ? n + 1 : n;
	}
	if (oci_manifest_parse(body, size, ct, &m) == 0) {
		if (m->has_config)
			check_descriptor(&m->config);
		for (i = 0; i < m->n_layers; i++)
			check_descriptor(&m->layers[i]);
		check_descriptor(oci_manifest_chart_layer(m));
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			(void)oci_manifest_annotation(m, keys[i]);
		for (i = 0; i < m->n_annotations; i++) {
			/* Tag and repository names come out of annotations and
			 * index entries too: run the validators on them. */
			(void)oci_tag_valid(m->annotations[i].value);
			(void)oci_repo_valid(m->annotations[i].value);
			if (oci_manifest_annotation(m, m->annotations[i].key) == NULL)
				abort();
		}
		oci_manifest_free(m);
	} else if (m) {
		abort(); /* a failed parse hands back nothing */
	}
	free(ct);
	return 0;
}
