/*
 * fuzz_chartmeta.c - Chart.yaml into helm's config blob and manifest
 * annotations (chartmeta_parse, chartmeta_config_json,
 * chartmeta_annotations, chartmeta_tag), as push and the mount do.
 */
#include "tests/fuzz/fuzz.h"

#include <jansson.h>

#include "cache/chartmeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chartmeta *m = NULL;
	struct strv keys = {0}, values = {0};
	char *json = NULL, *tag = NULL;
	size_t len = 0;

	fuzz_init();
	/* The input need not be NUL-terminated: the contract says so. */
	if (chartmeta_parse((const char *)data, size, &m) != 0)
		return 0;
	if (!chartmeta_name(m) || !chartmeta_version(m))
		abort();
	if (chartmeta_config_json(m, &json, &len) == 0) {
		/* helm's config blob must be JSON a registry accepts (Go may
		 * print integers wider than jansson's json_int_t). */
		json_t *j = json_loadb(json, len, JSON_DECODE_INT_AS_REAL, NULL);
		if (!j || strlen(json) != len)
			abort();
		json_decref(j);
		free(json);
	}
	if (chartmeta_annotations(m, "2024-05-01T10:00:00Z", &keys, &values) == 0 &&
	    keys.n != values.n)
		abort();
	strv_free(&keys);
	strv_free(&values);
	if (chartmeta_tag(m, &tag) == 0) {
		if (strchr(tag, '+'))
			abort();
		free(tag);
	}
	chartmeta_free(m);
	return 0;
}
