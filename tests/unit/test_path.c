/* test_path.c - the path model: tree building and path classification. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "model/path.h"
#include "model/timefmt.h"
#include "tests/unit/tap.h"

/* Mark a node as a catalog repository (the model would attach data). */
static struct ns_node *repo(struct ns_node *root, const char *name)
{
	static struct repo *dummy = (struct repo *)&dummy;
	struct ns_node *n = ns_insert(root, name);

	n->repo = dummy;
	n->in_catalog = true;
	return n;
}

static void test_tree(void)
{
	struct ns_node *root = ns_tree_new();
	struct ns_node *web, *test;
	struct path_res r;

	web = repo(root, "charts/test/web");
	test = repo(root, "charts/test");
	repo(root, "other/app");
	ok(ns_insert(root, "Bad/Name") == NULL, "uppercase repository names are refused");
	ok(ns_insert(root, "a//b") == NULL, "empty components are refused");
	ok(root->nkids == 2 && !strcmp(root->kids[0]->name, "charts") &&
	       !strcmp(root->kids[1]->name, "other"),
	   "root lists charts and other, sorted");
	ok(ns_child(ns_child(root, "charts"), "test") == test,
	   "intermediate node reused");
	ok(!strcmp(web->fullname, "charts/test/web"), "fullname joins segments");
	ok(!ns_is_repo(ns_child(root, "charts")) && ns_visible(ns_child(root, "charts")),
	   "a namespace is visible but not a repository");

	ok(path_resolve(root, "/", &r) == 0 && r.kind == PATH_DIR && r.node == root,
	   "root");
	ok(path_resolve(root, "/charts/test", &r) == 0 && r.kind == PATH_DIR &&
	       r.node == test,
	   "namespace and repository at once is a dir");
	ok(path_resolve(root, "/charts/test/web", &r) == 0 && r.kind == PATH_DIR &&
	       r.node == web,
	   "a kid repository wins over a tag of the same name");
	ok(path_resolve(root, "/charts/test/0.1.0", &r) == 0 && r.kind == PATH_TAG &&
	       r.node == test && !strcmp(r.tag, "0.1.0"),
	   "tag dir in a repository that is also a namespace");
	ok(path_resolve(root, "/charts/test/web/web-0.2.0.tgz", &r) == 0 &&
	       r.kind == PATH_PKG && !strcmp(r.tag, "0.2.0"),
	   "package file names its tag");
	ok(path_resolve(root, "/charts/test/web/web-1.0.0-rc.1.tgz", &r) == 0 &&
	       r.kind == PATH_PKG && !strcmp(r.tag, "1.0.0-rc.1"),
	   "pre-release tag with dashes");
	ok(path_resolve(root, "/charts/test/web/web-0.2.0.tgz.prov", &r) == 0 &&
	       r.kind == PATH_PROV && r.node == web && !strcmp(r.tag, "0.2.0"),
	   "provenance file names its tag");
	ok(path_resolve(root, "/charts/test/web/web-0.2.0.tgz.prov/x", &r) == 0 &&
	       r.kind == PATH_IN_TAG,
	   "a provenance name with a path below is a (missing) tag name");
	ok(path_resolve(root, "/charts/test/web/0.2.0/templates/x.yaml", &r) == 0 &&
	       r.kind == PATH_IN_TAG && !strcmp(r.tag, "0.2.0") &&
	       !strcmp(r.rest, "templates/x.yaml"),
	   "file inside a tag");
	ok(path_resolve(root, "/nope", &r) == 0 && r.kind == PATH_UNKNOWN &&
	       r.node == root && !strcmp(r.rest, "nope"),
	   "unknown name under a namespace");
	ok(path_resolve(root, "/charts/test/web/.hidden", &r) == 0 &&
	       r.kind == PATH_UNKNOWN && !strcmp(r.rest, ".hidden"),
	   "a name that can be no tag is unknown (a temporary file's, maybe)");
	ok(path_resolve(root, "/charts/test/web/.hidden/x", &r) == -ENOENT,
	   "a path below a name that can be no tag is ENOENT");
	ok(path_resolve(root, "/charts/test/web/other-0.1.0.tgz", &r) == 0 &&
	       r.kind == PATH_TAG,
	   "a package of another name is just a (missing) tag name");
	ns_tree_free(root);
}

static void test_pkg(void)
{
	char tag[129];

	ok(path_pkg_tag("web", "web-0.1.0.tgz", tag, sizeof(tag)) &&
	       !strcmp(tag, "0.1.0"),
	   "web-0.1.0.tgz");
	ok(!path_pkg_tag("web", "web-.tgz", tag, sizeof(tag)), "empty tag");
	ok(!path_pkg_tag("web", "web0.1.0.tgz", tag, sizeof(tag)), "missing dash");
	ok(!path_pkg_tag("web", "web-0.1.0.tar.gz", tag, sizeof(tag)), "other suffix");
	ok(path_pkg_tag("web", "web-1.0.0_build.1.tgz", tag, sizeof(tag)) &&
	       !strcmp(tag, "1.0.0_build.1"),
	   "build metadata tag (+ written as _)");
	ok(path_prov_tag("web", "web-0.1.0.tgz.prov", tag, sizeof(tag)) &&
	       !strcmp(tag, "0.1.0"),
	   "web-0.1.0.tgz.prov");
	ok(!path_prov_tag("web", "web-0.1.0.tgz", tag, sizeof(tag)), "no .prov suffix");
	ok(!path_prov_tag("web", "web-0.1.0.prov", tag, sizeof(tag)),
	   "no .tgz before it");
	ok(!path_prov_tag("web", ".prov", tag, sizeof(tag)), "nothing before .prov");
	ok(!path_prov_tag("web", "other-0.1.0.tgz.prov", tag, sizeof(tag)),
	   "another chart's provenance");
}

static void test_signatures(void)
{
	const char *hex =
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char tag[129];

	snprintf(tag, sizeof(tag), "sha256-%s.sig", hex);
	ok(path_is_signature_tag(tag), "cosign signature tag");
	snprintf(tag, sizeof(tag), "sha256-%s.att", hex);
	ok(path_is_signature_tag(tag), "attestation tag");
	snprintf(tag, sizeof(tag), "sha256-%s", hex);
	ok(path_is_signature_tag(tag), "referrers fallback tag");
	snprintf(tag, sizeof(tag), "sha256-%s.tgz", hex);
	ok(!path_is_signature_tag(tag), "other suffix is a normal tag");
	ok(!path_is_signature_tag("sha256-abc.sig"), "short digest is a normal tag");
	ok(!path_is_signature_tag("1.0.0"), "a version");
}

static void test_time(void)
{
	ok(timefmt_parse_rfc3339("1970-01-01T00:00:10Z") == 10, "UTC");
	ok(timefmt_parse_rfc3339("2024-05-01T12:00:00.123456789+02:00") ==
	       timefmt_parse_rfc3339("2024-05-01T10:00:00Z"),
	   "fraction and offset");
	ok(timefmt_parse_rfc3339("yesterday") == 0, "garbage is 0");
	ok(timefmt_parse_rfc3339("2024-05-01T10:00:00") == 0, "no zone is refused");
}

int main(void)
{
	test_tree();
	test_pkg();
	test_signatures();
	test_time();
	return tap_done();
}
