/*
 * test_chartmeta.c - Chart.yaml to helm's config blob and annotations,
 * compared byte for byte with what helm 3.17.2 and 4.1.4 pushed (see
 * tests/unit/data/chartmeta/README.md). Data directory: $CHARTFS_TEST_DATA
 * (default "tests/unit/data") + "/chartmeta".
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/chartmeta.h"
#include "common/log.h"
#include "common/strv.h"
#include "tests/unit/tap.h"

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	char *buf = NULL;
	long n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
			*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static int parse_str(const char *yaml, struct chartmeta **m)
{
	return chartmeta_parse(yaml, strlen(yaml), m);
}

/* The config blob of yaml, or NULL when it is refused. */
static char *config_of(const char *yaml)
{
	struct chartmeta *m;
	char *json = NULL;
	size_t len;

	if (parse_str(yaml, &m))
		return NULL;
	if (chartmeta_config_json(m, &json, &len))
		json = NULL;
	chartmeta_free(m);
	return json;
}

/* Every NAME.yaml: refuse-* must be refused, the others must produce
 * NAME.json exactly. */
static void test_fixtures(const char *dir)
{
	struct strv names = {0};
	struct dirent *e;
	DIR *d = opendir(dir);

	ok(d != NULL, "open %s", dir);
	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n > 5 && !strcmp(e->d_name + n - 5, ".yaml") &&
		    strv_push(&names, e->d_name))
			break;
	}
	closedir(d);
	strv_sort_uniq(&names);
	ok(names.n >= 40, "%zu fixtures", names.n);
	for (size_t i = 0; i < names.n; i++) {
		char jname[512], *yaml, *want = NULL, *got = NULL;
		size_t ylen = 0, wlen = 0, glen = 0;
		struct chartmeta *m = NULL;
		int r;

		yaml = slurp(dir, names.v[i], &ylen);
		r = yaml ? chartmeta_parse(yaml, ylen, &m) : -ENOENT;
		if (!strncmp(names.v[i], "refuse-", 7)) {
			ok(r == -EINVAL && !m, "%s is refused like helm does",
			   names.v[i]);
		} else {
			snprintf(jname, sizeof(jname), "%.*s.json",
				 (int)(strlen(names.v[i]) - 5), names.v[i]);
			want = slurp(dir, jname, &wlen);
			if (!r && chartmeta_config_json(m, &got, &glen))
				got = NULL;
			ok(want && got && glen == wlen && !memcmp(got, want, wlen),
			   "%s: config blob equals helm's", names.v[i]);
			if (got && want && (glen != wlen || memcmp(got, want, wlen)))
				printf("# got  %s\n# want %s\n", got, want);
		}
		chartmeta_free(m);
		free(yaml);
		free(want);
		free(got);
	}
	strv_free(&names);
}

static void test_annotations(const char *dir)
{
	struct strv k = {0}, v = {0};
	struct chartmeta *m = NULL;
	size_t ylen, wlen, i;
	char *yaml = slurp(dir, "full.yaml", &ylen);
	char *want = slurp(dir, "full.annotations", &wlen);
	char line[4096], *got = NULL;
	size_t glen = 0;
	FILE *f;
	bool created = false;

	ok(yaml && want && !chartmeta_parse(yaml, ylen, &m), "full.yaml parses");
	if (!m)
		goto out;
	ok(!chartmeta_annotations(m, "2024-05-01T10:00:00Z", &k, &v) && k.n == v.n,
	   "annotations");
	/* helm's manifest, less "created" (its time), as key=value lines. */
	f = open_memstream(&got, &glen);
	for (i = 0; f && i < k.n; i++) {
		if (!strcmp(k.v[i], "org.opencontainers.image.created"))
			created = !strcmp(v.v[i], "2024-05-01T10:00:00Z");
		else
			fprintf(f, "%s=%s\n", k.v[i], v.v[i]);
	}
	if (f)
		fclose(f);
	ok(created, "created is the given time");
	ok(got && glen == wlen && !memcmp(got, want, wlen), "annotations equal helm's");
	for (i = 1; i < k.n; i++)
		if (strcmp(k.v[i - 1], k.v[i]) >= 0)
			break;
	ok(i >= k.n, "annotations sorted by key");
	free(got);
	strv_free(&k);
	strv_free(&v);
	chartmeta_free(m);

	/* Blank generated values are dropped, chart ones kept even empty. */
	m = NULL;
	snprintf(line, sizeof(line),
		 "apiVersion: v2\nname: x\nversion: 1.0.0+b.1\n"
		 "description: \"\\t \"\nannotations: {e: \"\"}\n");
	ok(!parse_str(line, &m), "blank description parses");
	ok(m && !chartmeta_annotations(m, " ", &k, &v), "annotations of blank fields");
	ok(k.n == 3 && !strcmp(k.v[0], "e") && !strcmp(v.v[0], "") &&
	       !strcmp(k.v[1], "org.opencontainers.image.title") &&
	       !strcmp(v.v[2], "1.0.0+b.1"),
	   "only e, title and version");
	strv_free(&k);
	strv_free(&v);
	chartmeta_free(m);
out:
	free(yaml);
	free(want);
}

static void test_semver(void)
{
	static const struct {
		const char *v;
		bool loose;
	} t[] = {
	    {"1.2.3", true},
	    {"0.0.0", true},
	    {"1.2.3-rc.1+build.5", true},
	    {"1.2.3-0a", true},
	    {"1.2.3-a-b.--", true},
	    {"v1.2.3", true},
	    {"1.2", true},
	    {"1", true},
	    {"01.2.3", true},
	    {"1.2.3+001", true},
	    {"1.2.3-01", false},
	    {"1.2.3-", false},
	    {"1.2.3+", false},
	    {"1.2.3-a..b", false},
	    {"1.2.3.4", false},
	    {"V1.2.3", false},
	    {"", false},
	    {"v", false},
	    {"1..3", false},
	    {"18446744073709551615.0.0", true},
	    {"18446744073709551616.0.0", false},
	    {"1.2.3-é", false},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		ok(chartmeta_semver_valid(t[i].v) == t[i].loose, "NewVersion(\"%s\") %s",
		   t[i].v, t[i].loose ? "accepts" : "refuses");
	}
}

static void test_api(void)
{
	struct chartmeta *m = NULL;
	char *s = NULL, big[8192];
	size_t i;
	int n;

	ok(!parse_str("apiVersion: v2\nname: a.b_c--d\nversion: 1.0.0-rc.1+x.y\n", &m),
	   "parse");
	ok(m && !strcmp(chartmeta_name(m), "a.b_c--d") &&
	       !strcmp(chartmeta_version(m), "1.0.0-rc.1+x.y"),
	   "name and version");
	ok(m && !chartmeta_tag(m, &s) && !strcmp(s, "1.0.0-rc.1_x.y"),
	   "tag: + becomes _");
	free(s);
	chartmeta_free(m);
	chartmeta_free(NULL);

	m = (struct chartmeta *)1;
	ok(parse_str("a: [", &m) == -EINVAL && !m, "not YAML: -EINVAL, *out NULL");
	ok(parse_str("name: \"a\\0b\"\nversion: 1.0.0\n", &m) == -EINVAL, "NUL refused");
	ok(parse_str("name: x\xff\nversion: 1.0.0\n", &m) == -EINVAL,
	   "invalid UTF-8 refused");
	ok(parse_str("name: x\nversion: 1.0.0\nlol: *nope\n", &m) == -EINVAL,
	   "unknown alias refused");

	/* Deep nesting and alias fan-out are bounded. */
	memset(big, '[', 2000);
	memcpy(big + 2000, "\n", 2);
	ok(parse_str(big, &m) == -EINVAL, "2000 nested lists refused");
	n = snprintf(big, sizeof(big),
		     "name: x\nversion: 1.0.0\na0: &a0 [1,1,1,1,1,1,1,1,1,1]\n");
	for (i = 1; i < 8; i++)
		n += snprintf(
		    big + n, sizeof(big) - (size_t)n,
		    "a%zu: &a%zu [*a%zu,*a%zu,*a%zu,*a%zu,*a%zu,*a%zu,*a%zu,*a%zu,*a%zu,"
		    "*a%zu]\n",
		    i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
		    i - 1);
	snprintf(big + n, sizeof(big) - (size_t)n,
		 "dependencies: [{name: d, import-values: *a7}]\n");
	ok(parse_str(big, &m) == -EINVAL, "10^8 aliased values refused");
	ok(!parse_str("name: x\nversion: 1.0.0\nl: &l [a, b]\nkeywords: *l\n", &m),
	   "a small alias is fine");
	chartmeta_free(m);

	/* YAML 1.1 through sigs.k8s.io/yaml: "n" is false, floats via float32. */
	s = config_of(
	    "name: y\nversion: 1.0.0\nappVersion: 0.1\ntags: n\ncondition: 1e100\n");
	ok(s && !strcmp(
		    s,
		    "{\"name\":\"true\",\"version\":\"1.0.0\",\"apiVersion\":\"v1\","
		    "\"condition\":\"+Inf\",\"tags\":\"false\",\"appVersion\":\"0.1\"}"),
	   "YAML 1.1 scalars in string fields: %s", s ? s : "(refused)");
	free(s);
}

int main(void)
{
	const char *env = getenv("CHARTFS_TEST_DATA");
	char dir[4096];

	chartfs_log_set_level(LOG_ERR);
	snprintf(dir, sizeof(dir), "%s/chartmeta", env && *env ? env : "tests/unit/data");
	test_fixtures(dir);
	test_annotations(dir);
	test_semver();
	test_api();
	return tap_done();
}
