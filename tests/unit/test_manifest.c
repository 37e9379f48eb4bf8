/* test_manifest.c - manifest parsing, chart detection and name grammar. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/manifest.h"
#include "client/oci.h"
#include "tests/unit/tap.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

#define DESC(mt, d, size)                                                                \
	"{\"mediaType\":\"" mt "\",\"digest\":\"" d "\",\"size\":" #size "}"
#define HELM_CONFIG DESC(HELM_MT_CONFIG, D1, 117)
#define CHART_LAYER DESC(HELM_MT_CHART, D2, 3421)

static int parse(const char *json, const char *ct, struct oci_manifest **m)
{
	return oci_manifest_parse(json, strlen(json), ct, m);
}

/* Parse a manifest made of a config and a layer list; true if a chart. */
static bool chart_with(const char *config, const char *layers)
{
	struct oci_manifest *m = NULL;
	char *json = NULL;
	bool chart = false;

	if (asprintf(&json, "{\"schemaVersion\":2,\"config\":%s,\"layers\":[%s]}", config,
		     layers) < 0)
		return false;
	if (parse(json, OCI_MT_MANIFEST, &m) == 0)
		chart = oci_manifest_chart_layer(m) != NULL;
	oci_manifest_free(m);
	free(json);
	return chart;
}

static int einval(const char *json)
{
	struct oci_manifest *m = NULL;
	int ret = parse(json, NULL, &m);

	oci_manifest_free(m);
	return ret == -EINVAL && m == NULL;
}

static void test_helm(void)
{
	const char *json =
	    "{\"schemaVersion\":2,\"config\":" HELM_CONFIG ",\"layers\":[" CHART_LAYER
	    "," DESC(HELM_MT_PROV, D3,
		     12) "],\"annotations\":{"
			 "\"org.opencontainers.image.title\":\"demo\","
			 "\"org.opencontainers.image.created\":\"2024-01-02T03:04:05Z\","
			 "\"weird\":{\"nested\":[1,2,3]},\"n\":5}}";
	const struct oci_descriptor *chart;
	struct oci_manifest *m = NULL;

	ok(parse(json, OCI_MT_MANIFEST "; charset=utf-8", &m) == 0,
	   "helm manifest parses");
	if (!m)
		return;
	ok(m->media_type && !strcmp(m->media_type, OCI_MT_MANIFEST),
	   "media type from Content-Type without parameters");
	ok(!m->is_index && m->has_config, "a manifest with a config");
	ok(!strcmp(m->config.media_type, HELM_MT_CONFIG) &&
	       !strcmp(m->config.digest, D1) && m->config.size == 117,
	   "config descriptor");
	ok(m->n_layers == 2, "two layers");
	chart = oci_manifest_chart_layer(m);
	ok(chart && !strcmp(chart->digest, D2) && chart->size == 3421,
	   "chart layer found");
	ok(!strcmp(m->layers[1].digest, D3) &&
	       !strcmp(m->layers[1].media_type, HELM_MT_PROV),
	   "provenance layer parsed");
	ok(oci_manifest_annotation(m, "org.opencontainers.image.title") &&
	       !strcmp(oci_manifest_annotation(m, "org.opencontainers.image.title"),
		       "demo"),
	   "annotation value");
	ok(m->n_annotations == 2 && !oci_manifest_annotation(m, "weird") &&
	       !oci_manifest_annotation(m, "n"),
	   "only string annotations are kept");
	ok(!oci_manifest_annotation(m, "missing"), "absent annotation is NULL");
	oci_manifest_free(m);

	ok(parse(json, NULL, &m) == 0 && m->media_type == NULL,
	   "no mediaType and no Content-Type gives NULL");
	oci_manifest_free(m);
}

static void test_docker_and_index(void)
{
	const char *docker =
	    "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_DOCKER_MANIFEST
	    "\",\"config\":" DESC(
		"application/vnd.docker.container.image.v1+json", D1,
		1469) ",\"layers\":[" DESC("application/"
					   "vnd.docker.image.rootfs.diff.tar.gzip",
					   D2, 2811478) "]}";
	const char *index = "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_INDEX
			    "\",\"manifests\":[{\"mediaType\":\"" OCI_MT_MANIFEST
			    "\",\"digest\":\"" D1 "\",\"size\":7143,\"platform\":{"
			    "\"architecture\":\"amd64\",\"os\":\"linux\"}}," DESC(
				OCI_MT_MANIFEST, D2, 7682) "]}";
	const char *list_no_mt = "{\"schemaVersion\":2,\"manifests\":[]}";
	struct oci_manifest *m = NULL;

	ok(parse(docker, "text/plain", &m) == 0, "docker manifest parses");
	ok(m && !strcmp(m->media_type, OCI_MT_DOCKER_MANIFEST),
	   "top-level mediaType wins over Content-Type");
	ok(m && m->n_layers == 1 && m->layers[0].size == 2811478, "docker layer");
	ok(!oci_manifest_chart_layer(m), "an image is not a chart");
	oci_manifest_free(m);
	m = NULL;

	ok(parse(index, NULL, &m) == 0, "index parses");
	ok(m && m->is_index && !m->has_config && m->n_layers == 2 &&
	       !strcmp(m->layers[1].digest, D2),
	   "index entries are its layers");
	ok(!oci_manifest_chart_layer(m), "an index is not a chart");
	oci_manifest_free(m);
	m = NULL;

	ok(parse(list_no_mt, OCI_MT_DOCKER_LIST, &m) == 0 && m->is_index && !m->n_layers,
	   "empty index");
	oci_manifest_free(m);
	m = NULL;
	ok(parse("{\"schemaVersion\":2,\"config\":" HELM_CONFIG "}", NULL, &m) == 0 &&
	       m->n_layers == 0 && !oci_manifest_chart_layer(m),
	   "no layers at all");
	oci_manifest_free(m);
	m = NULL;
	ok(parse("{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_ARTIFACT
		 "\",\"artifactType\":\"x\",\"blobs\":[" CHART_LAYER "]}",
		 NULL, &m) == 0 &&
	       m->n_layers == 1,
	   "artifact manifest blobs are layers");
	oci_manifest_free(m);
}

static void test_bad(void)
{
	static const char *bad_digests[] = {
	    "sha256:../x",
	    "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    "sha256:111111111111111111111111111111111111111111111111111111111111111",
	    "sha256:11111111111111111111111111111111111111111111111111111111111111111",
	    "md5:d41d8cd98f00b204e9800998ecf8427e",
	    "sha512:"
	    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d"
	    "85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
	    "",
	};
	char *deep, json[512];
	size_t i, depth = 5000;

	for (i = 0; i < sizeof(bad_digests) / sizeof(*bad_digests); i++) {
		snprintf(json, sizeof(json),
			 "{\"schemaVersion\":2,\"config\":" HELM_CONFIG
			 ",\"layers\":[{\"mediaType\":\"" HELM_MT_CHART
			 "\",\"digest\":\"%s\",\"size\":1}]}",
			 bad_digests[i]);
		ok(einval(json), "bad layer digest \"%.20s...\" rejected",
		   bad_digests[i]);
	}
	ok(einval("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" HELM_MT_CONFIG
		  "\",\"digest\":\"sha256:../../etc/passwd\",\"size\":1}}"),
	   "bad config digest rejected");
	ok(einval("{\"schemaVersion\":2,\"layers\":[{\"digest\":\"" D1
		  "\",\"size\":1}]}"),
	   "layer without mediaType");
	ok(einval(
	       "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"a/b\",\"size\":1}]}"),
	   "layer without digest");
	ok(einval(
	       "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
	       "\"}]}"),
	   "layer without size");
	ok(einval("{\"schemaVersion\":2,\"layers\":[" DESC("a/b", D1, -1) "]}"),
	   "negative size");
	ok(einval("{\"schemaVersion\":2,\"layers\":[" DESC("a/b", D1, "12") "]}"),
	   "size as a string");
	ok(einval("{\"schemaVersion\":2,\"layers\":[" DESC("a/b", D1, 1.5) "]}"),
	   "fractional size");
	ok(einval("{\"schemaVersion\":2,\"layers\":[" DESC("a/b", D1,
							   99999999999999999999999) "]}"),
	   "size beyond 64 bits");
	ok(einval("{\"schemaVersion\":2,\"layers\":[" DESC("a\\nb", D1, 1) "]}"),
	   "control character in a media type");
	ok(einval("{\"schemaVersion\":2,\"layers\":{}}"), "layers is not an array");
	ok(einval("{\"schemaVersion\":2,\"layers\":[\"x\"]}"), "layer is not an object");
	ok(einval(
	       "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
	       "\",\"size\":1,\"urls\":\"http://x\"}]}"),
	   "urls is not an array");
	ok(einval("{\"schemaVersion\":2,\"annotations\":[]}"),
	   "annotations not an object");
	ok(einval("{\"schemaVersion\":1,\"name\":\"x\"}"), "schema 1 rejected");
	ok(einval("{\"schemaVersion\":\"2\"}"), "schemaVersion as a string rejected");
	ok(einval("[]"), "array root");
	ok(einval("\"x\""), "string root");
	ok(einval(""), "empty body");
	ok(einval("{\"schemaVersion\":2"), "truncated JSON");
	ok(einval("{\"schemaVersion\":2} trailing"), "trailing garbage");
	ok(einval("{\"schemaVersion\":2,\"mediaType\":5}"), "mediaType not a string");

	deep = malloc(2 * depth + 64);
	if (deep) {
		size_t n = 0;
		n += (size_t)snprintf(deep, 64, "{\"junk\":");
		for (i = 0; i < depth; i++)
			deep[n++] = '[';
		for (i = 0; i < depth; i++)
			deep[n++] = ']';
		deep[n++] = '}';
		deep[n] = '\0';
		ok(einval(deep), "nesting too deep rejected");
		free(deep);
	}
	{
		struct oci_manifest *m = NULL;
		const char *junk =
		    "{\"schemaVersion\":2,\"junk\":[[[{\"a\":[1,{\"b\":null}]}]]],"
		    "\"config\":" HELM_CONFIG ",\"layers\":[" CHART_LAYER "]}";
		ok(parse(junk, NULL, &m) == 0 && oci_manifest_chart_layer(m),
		   "unknown nested fields are ignored");
		oci_manifest_free(m);
	}
	{
		struct oci_manifest *m = (struct oci_manifest *)1;
		ok(oci_manifest_parse(NULL, 0, NULL, &m) == -EINVAL && m == NULL,
		   "NULL body");
	}
}

static void test_chart_rules(void)
{
	const char *legacy = DESC(HELM_MT_CHART_LEGACY, D2, 10);
	const char *prov = DESC(HELM_MT_PROV, D3, 10);
	const char *foreign = "{\"mediaType\":\"" HELM_MT_CHART "\",\"digest\":\"" D2
			      "\",\"size\":10,\"urls\":[\"https://elsewhere/x.tgz\"]}";
	const char *other_cfg = DESC("application/vnd.oci.image.config.v1+json", D1, 2);
	char two[512], with_prov[512], legacy_prov[512];

	snprintf(two, sizeof(two), "%s,%s", CHART_LAYER, legacy);
	snprintf(with_prov, sizeof(with_prov), "%s,%s", prov, CHART_LAYER);
	snprintf(legacy_prov, sizeof(legacy_prov), "%s,%s", legacy, prov);

	ok(chart_with(HELM_CONFIG, CHART_LAYER), "helm config + chart layer is a chart");
	ok(chart_with(HELM_CONFIG, legacy),
	   "legacy application/tar+gzip layer is a chart");
	ok(chart_with(HELM_CONFIG, with_prov), "chart with provenance first is a chart");
	ok(chart_with(HELM_CONFIG, legacy_prov), "legacy chart with provenance");
	ok(!chart_with(HELM_CONFIG, ""), "zero chart layers: not a chart");
	ok(!chart_with(HELM_CONFIG, prov), "only provenance: not a chart");
	ok(!chart_with(HELM_CONFIG, two), "two chart layers: not a chart");
	ok(!chart_with(HELM_CONFIG, foreign), "foreign (urls) chart layer: not a chart");
	ok(!chart_with(other_cfg, CHART_LAYER), "image config: not a chart");
	ok(!oci_manifest_chart_layer(NULL), "NULL manifest");
}

/* Sizes no chart can have (issue 14): the manifest is not a chart. */
static void test_absurd_sizes(void)
{
	ok(chart_with(HELM_CONFIG, DESC(HELM_MT_CHART, D2, 104857600)),
	   "a chart layer of exactly OCI_CHART_LAYER_MAX is a chart");
	ok(!chart_with(HELM_CONFIG, DESC(HELM_MT_CHART, D2, 104857601)),
	   "a chart layer one byte over OCI_CHART_LAYER_MAX: not a chart");
	ok(!chart_with(HELM_CONFIG, DESC(HELM_MT_CHART, D2, 1125899906842624)),
	   "a chart layer of 2^50 bytes: not a chart");
	ok(!chart_with(HELM_CONFIG, DESC(HELM_MT_CHART_LEGACY, D2, 1125899906842624)),
	   "a legacy chart layer of 2^50 bytes: not a chart");
	ok(chart_with(HELM_CONFIG, CHART_LAYER "," DESC(HELM_MT_PROV, D3, 1048576)),
	   "a provenance file of 1 MiB is a chart's");
	ok(!chart_with(HELM_CONFIG, CHART_LAYER "," DESC(HELM_MT_PROV, D3, 1048577)),
	   "a provenance file over OCI_PROV_LAYER_MAX: not a chart");
	ok(!chart_with(DESC(HELM_MT_CONFIG, D1, 1125899906842624), CHART_LAYER),
	   "a config of 2^50 bytes: not a chart");
	ok(chart_with(HELM_CONFIG,
		      CHART_LAYER "," DESC("application/x-other", D3, 1125899906842624)),
	   "an unknown layer's size is not the chart's business");
}

static void test_names(void)
{
	char long_tag[200], long_repo[300];
	size_t i;

	ok(oci_tag_valid("1.0.0") && oci_tag_valid("latest") && oci_tag_valid("_x") &&
	       oci_tag_valid("v1.2.3-rc.1_build.5") && oci_tag_valid("A") &&
	       oci_tag_valid("0"),
	   "ordinary tags are valid");
	ok(!oci_tag_valid(NULL) && !oci_tag_valid(""), "empty tag");
	ok(!oci_tag_valid(".x") && !oci_tag_valid("-x"), "tag starting with . or -");
	ok(!oci_tag_valid("1.0.0+build") && !oci_tag_valid("a/b") &&
	       !oci_tag_valid("a b") && !oci_tag_valid("a:b") && !oci_tag_valid("..") &&
	       !oci_tag_valid("é"),
	   "tags with forbidden characters");
	memset(long_tag, 'a', sizeof(long_tag));
	long_tag[128] = '\0';
	ok(oci_tag_valid(long_tag), "128-character tag");
	long_tag[128] = 'a';
	long_tag[129] = '\0';
	ok(!oci_tag_valid(long_tag), "129-character tag");

	ok(oci_repo_valid("a") && oci_repo_valid("charts/test/helm-oci-test") &&
	       oci_repo_valid("a.b") && oci_repo_valid("a_b") && oci_repo_valid("a__b") &&
	       oci_repo_valid("a-b") && oci_repo_valid("a---b") &&
	       oci_repo_valid("0/1/2") && oci_repo_valid("library/ubuntu.v2_x-y"),
	   "ordinary repository names are valid");
	ok(!oci_repo_valid(NULL) && !oci_repo_valid(""), "empty name");
	ok(!oci_repo_valid("A") && !oci_repo_valid("a/B"), "upper case");
	ok(!oci_repo_valid("a___b") && !oci_repo_valid("a..b") &&
	       !oci_repo_valid("a._b") && !oci_repo_valid("a-.b") &&
	       !oci_repo_valid("a_-b"),
	   "bad separators");
	ok(!oci_repo_valid("-a") && !oci_repo_valid("a-") && !oci_repo_valid(".a") &&
	       !oci_repo_valid("a.") && !oci_repo_valid("_a") && !oci_repo_valid("a_"),
	   "separators at the ends");
	ok(!oci_repo_valid("/a") && !oci_repo_valid("a/") && !oci_repo_valid("a//b") &&
	       !oci_repo_valid("../a") && !oci_repo_valid("a/../b") &&
	       !oci_repo_valid("a/./b"),
	   "empty and dot components");
	ok(!oci_repo_valid("a b") && !oci_repo_valid("a:5000/b") &&
	       !oci_repo_valid("a?b") && !oci_repo_valid("a%2fb"),
	   "other characters");
	for (i = 0; i < 255; i++)
		long_repo[i] = i % 2 ? '/' : 'a';
	long_repo[254] = 'a';
	long_repo[255] = '\0';
	ok(oci_repo_valid(long_repo), "255-character name");
	long_repo[255] = 'b';
	long_repo[256] = '\0';
	ok(!oci_repo_valid(long_repo), "256-character name");
}

/* cosign's tag scheme: the signature is a layer's own annotation; a layer
 * whose annotations are no string map keeps the manifest readable. */
static void test_layer_annotations(void)
{
	const char *json = "{\"schemaVersion\":2,\"config\":" DESC(
	    OCI_MT_MANIFEST, D1,
	    2) ","
	       "\"layers\":[{\"mediaType\":\"application/x\",\"digest\":\"" D2 "\","
	       "\"size\":5,\"annotations\":{\"dev.cosignproject.cosign/signature\":"
	       "\"MEUC\",\"n\":1}},"
	       "{\"mediaType\":\"application/x\",\"digest\":\"" D3 "\",\"size\":5,"
	       "\"annotations\":[1]}]}";
	struct oci_manifest *m = NULL;

	ok(parse(json, OCI_MT_MANIFEST, &m) == 0 && m->n_layers == 2,
	   "layers with annotations parse");
	ok(m &&
	       oci_descriptor_annotation(&m->layers[0],
					 "dev.cosignproject.cosign/signature") &&
	       !strcmp(oci_descriptor_annotation(&m->layers[0],
						 "dev.cosignproject.cosign/signature"),
		       "MEUC"),
	   "a layer's annotation is read");
	ok(m && m->layers[0].n_annotations == 1 &&
	       !oci_descriptor_annotation(&m->layers[0], "n"),
	   "only a layer's string annotations are kept");
	ok(m && m->layers[1].n_annotations == 0 &&
	       !oci_descriptor_annotation(&m->layers[1], "x"),
	   "annotations that are no map are none");
	ok(!oci_manifest_annotation(m, "dev.cosignproject.cosign/signature"),
	   "a layer's annotation is not the manifest's");
	oci_manifest_free(m);
}

int main(void)
{
	test_helm();
	test_layer_annotations();
	test_docker_and_index();
	test_bad();
	test_chart_rules();
	test_absurd_sizes();
	test_names();
	return tap_done();
}
