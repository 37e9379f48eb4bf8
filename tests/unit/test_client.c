/*
 * test_client.c - the OCI client against a real registry (distribution),
 * whose "host:port" is in CHARTFS_TEST_REGISTRY (plain http); first the
 * response headers it parses itself (WWW-Authenticate, Link), which need none.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/http_i.h"
#include "client/manifest.h"
#include "client/oci.h"
#include "common/digest.h"
#include "common/log.h"
#include "tests/unit/tap.h"

struct blob {
	int fd;
	char digest[DIGEST_STR_MAX];
	long long size;
};

static int make_blob(struct blob *b, size_t size, unsigned seed)
{
	char buf[65536];
	size_t done = 0, i;

	b->fd = memfd_create("blob", MFD_CLOEXEC);
	if (b->fd < 0)
		return -errno;
	srand(seed);
	while (done < size) {
		size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);
		for (i = 0; i < n; i++)
			buf[i] = (char)(rand() & 0xff);
		if (write(b->fd, buf, n) != (ssize_t)n)
			return -EIO;
		done += n;
	}
	return digest_fd(b->fd, b->digest, &b->size);
}

static bool has(const struct strv *sv, const char *s)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return true;
	return false;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A port nothing listens on: bind one, then close it. */
static int closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static void test_dead_registry(void)
{
	struct oci_client_opts o = {.plain_http = true, .connect_timeout = 2};
	struct oci_client *c = NULL;
	struct strv tags = {0};
	char addr[64];
	double t0;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", closed_port());
	o.registry = addr;
	if (oci_client_new(&o, &c) != 0) {
		ok(0, "client for a closed port");
		return;
	}
	t0 = now_s();
	ok(oci_ping(c) == -EIO, "closed port: ping is EIO");
	ok(oci_tags(c, "a/b", &tags) == -EIO && tags.n == 0, "closed port: tags is EIO");
	ok(now_s() - t0 < 5, "closed port fails quickly (%.2f s)", now_s() - t0);
	oci_client_free(c);

	o.registry = "bad/host";
	ok(oci_client_new(&o, &c) == -EINVAL && c == NULL,
	   "registry with a path refused");
}

static char *helm_manifest(const struct blob *cfg, const struct blob *layer,
			   const char *title)
{
	char *m = NULL;

	if (asprintf(
		&m,
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\","
		"\"size\":%lld},\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
		"\"size\":%lld}],\"annotations\":{\"org.opencontainers.image.title\":"
		"\"%s\"}}",
		HELM_MT_CONFIG, cfg->digest, cfg->size, HELM_MT_CHART, layer->digest,
		layer->size, title) < 0)
		return NULL;
	return m;
}

/* auth_parse_challenge(h) picks scheme with realm and service (NULL: none). */
static void challenge_is(const char *h, int scheme, const char *realm,
			 const char *service)
{
	struct challenge ch;
	int ret = auth_parse_challenge(h, &ch);

	if (!scheme) {
		ok(ret == -EINVAL && !ch.realm, "WWW-Authenticate: %s -> none (got %d)",
		   h, ret);
		return;
	}
	ok(ret == 0 && ch.scheme == scheme &&
	       (realm ? ch.realm && !strcmp(ch.realm, realm) : !ch.realm) &&
	       (service ? ch.service && !strcmp(ch.service, service) : !ch.service),
	   "WWW-Authenticate: %s -> %s realm %s service %s (got %d: %d %s %s)", h,
	   scheme == AUTH_BEARER ? "Bearer" : "Basic", realm ? realm : "none",
	   service ? service : "none", ret, ch.scheme, ch.realm ? ch.realm : "none",
	   ch.service ? ch.service : "none");
	auth_challenge_clear(&ch);
}

static void test_challenges(void)
{
	challenge_is("Basic realm=\"Registry Realm\"", AUTH_BASIC, "Registry Realm",
		     NULL);
	challenge_is("Bearer realm=\"https://a/token\",service=\"s\",scope=\"x:y:pull\"",
		     AUTH_BEARER, "https://a/token", "s");
	/* Several challenges in one header (RFC 7235 section 4.1). */
	challenge_is("Basic realm=\"x\", Bearer realm=\"https://a/token\",service=\"s\"",
		     AUTH_BEARER, "https://a/token", "s");
	challenge_is("Bearer realm=\"https://a/t\", Basic realm=\"x\"", AUTH_BEARER,
		     "https://a/t", NULL);
	challenge_is("Negotiate, Basic realm=\"r\"", AUTH_BASIC, "r", NULL);
	challenge_is("Negotiate abc==, Basic realm=r", AUTH_BASIC, "r", NULL);
	challenge_is(
	    "Newauth realm=\"apps\", type=1, title=\"Login\", Basic realm=\"simple\"",
	    AUTH_BASIC, "simple", NULL);
	challenge_is("Newauth realm=\"a, Bearer realm=b\", Basic realm=c", AUTH_BASIC,
		     "c", NULL);
	challenge_is("Basic, Bearer", AUTH_BEARER, NULL, NULL);
	challenge_is("bearer   realm = \"https://a/t\" ,  service=reg ,,", AUTH_BEARER,
		     "https://a/t", "reg");
	challenge_is(
	    "Bearer realm=\"https://a/t\",service=s, Bearer realm=\"https://b/t\"",
	    AUTH_BEARER, "https://a/t", "s");
	challenge_is("Negotiate", 0, NULL, NULL);
	challenge_is("Basicx realm=a, Bearerx realm=b", 0, NULL, NULL);
	challenge_is("realm=\"https://a/t\", \"Bearer\"", 0, NULL, NULL);
	challenge_is("", 0, NULL, NULL);
}

/* http_link_next(v) is want (NULL: no next page). */
static void link_is(const char *v, const char *want)
{
	char *got = http_link_next(v);

	ok(want ? got && !strcmp(got, want) : got == NULL, "Link: %s -> %s (got %s)", v,
	   want ? want : "none", got ? got : "none");
	free(got);
}

static void test_links(void)
{
	link_is("</v2/_catalog?last=b&n=2>; rel=\"next\"", "/v2/_catalog?last=b&n=2");
	/* Several relation types in one rel (RFC 8288 section 3.3). */
	link_is("</v2/t/tags/list?last=1.0>; rel=\"first next\"",
		"/v2/t/tags/list?last=1.0");
	link_is("</a>; rel=\"next last\"", "/a");
	link_is("</a>; rel=\"nextpage\"", NULL);
	/* Several links in one header, separated by commas. */
	link_is("</a>; rel=\"prev\", </b?x=1,2>; rel=next; title=\"t\"", "/b?x=1,2");
	link_is("</a>; rel=\"prev\",</b>;rel=\"first next\", </c>; rel=next", "/b");
	link_is("</a>; title=\"x, </b>; rel=next\", </c>; rel=prev", NULL);
	link_is("</a>; title=\"x rel=next\"; rel=prev", NULL);
	link_is("</a> ; rel = \"next\"", "/a");
	/* Only the first rel of a link counts. */
	link_is("</a>; rel=prev; rel=next", NULL);
	link_is("</a>; rel=next; rel=prev", "/a");
	link_is("</a>; rel=\"ne\\xt\"", "/a");
	link_is("garbage, </a>; rel=next", "/a");
	link_is("</a; rel=next", NULL);
	link_is("", NULL);
}

int main(void)
{
	const char *reg = getenv("CHARTFS_TEST_REGISTRY");
	struct oci_client_opts o = {.plain_http = true};
	struct oci_client *c = NULL;
	struct blob cfg = {.fd = -1}, layer = {.fd = -1}, big = {.fd = -1};
	struct oci_fetched f = {0}, many[4];
	struct oci_manifest *man = NULL;
	struct strv sv = {0};
	const char *refs[4] = {"0.1.0", "0.2.0", "latest", "nope"};
	char repo[64], other[64], *m1 = NULL, *m2 = NULL, d1[DIGEST_STR_MAX];
	char d2[DIGEST_STR_MAX], head[DIGEST_STR_MAX], got[DIGEST_STR_MAX];
	long long got_size = 0;
	int out = -1, ret;
	size_t i;

	test_challenges();
	test_links();
	if (!reg || !reg[0]) {
		ok(1, "# SKIP no registry");
		return tap_done();
	}
	chartfs_log_set_level(getenv("CHARTFS_TEST_DEBUG") ? LOG_DEBUG : LOG_WARNING);
	snprintf(repo, sizeof(repo), "chartfs-test/c%d", (int)getpid());
	snprintf(other, sizeof(other), "chartfs-test/never-%d", (int)getpid());
	o.registry = reg;
	ok(oci_client_new(&o, &c) == 0, "client for %s", reg);
	if (!c)
		return tap_done();
	ok(!strncmp(oci_client_base_url(c), "http://", 7) &&
	       !strcmp(oci_client_base_url(c) + 7, reg),
	   "base url %s", oci_client_base_url(c));
	ok(oci_ping(c) == 0, "ping");

	ok(make_blob(&cfg, 117, 1) == 0 && make_blob(&layer, 3000, 2) == 0 &&
	       make_blob(&big, 2 * 8 * 1024 * 1024 + 12345, 3) == 0,
	   "test blobs made");
	ok(oci_blob_exists(c, repo, cfg.digest) == -ENOENT, "blob absent before upload");
	ok(oci_blob_upload(c, repo, cfg.digest, cfg.fd, (uint64_t)cfg.size) == 0,
	   "small blob uploaded (monolithic)");
	ok(oci_blob_upload(c, repo, layer.digest, layer.fd, (uint64_t)layer.size) == 0,
	   "layer uploaded");
	ok(oci_blob_upload(c, repo, big.digest, big.fd, (uint64_t)big.size) == 0,
	   "large blob uploaded (chunked)");
	ok(oci_blob_exists(c, repo, cfg.digest) == 0 &&
	       oci_blob_exists(c, repo, big.digest) == 0,
	   "uploaded blobs exist");
	ok(oci_blob_upload(c, repo, cfg.digest, layer.fd, (uint64_t)layer.size) ==
	       -EINVAL,
	   "upload with the wrong digest is EINVAL");

	m1 = helm_manifest(&cfg, &layer, "one");
	m2 = helm_manifest(&cfg, &big, "two");
	ok(m1 && m2 && digest_buf(m1, strlen(m1), d1) == 0 &&
	       digest_buf(m2, strlen(m2), d2) == 0,
	   "manifests built");
	ok(oci_manifest_put(c, repo, "0.1.0", OCI_MT_MANIFEST, m1, strlen(m1)) == 0,
	   "manifest put under 0.1.0");
	ok(oci_manifest_put(c, repo, "0.2.0", OCI_MT_MANIFEST, m2, strlen(m2)) == 0,
	   "manifest put under 0.2.0");
	ok(oci_manifest_put(c, repo, "latest", OCI_MT_MANIFEST, m2, strlen(m2)) == 0,
	   "manifest put under latest");
	{
		char *dangling = helm_manifest(&cfg, &cfg, "x");
		char *p = dangling ? strstr(dangling, cfg.digest) : NULL;
		if (p)
			p = strstr(p + 1, cfg.digest);
		if (p)
			memset(p + 7, 'e', 64);
		ok(p && oci_manifest_put(c, repo, "bad", OCI_MT_MANIFEST, dangling,
					 strlen(dangling)) == -EINVAL,
		   "manifest naming a missing blob is EINVAL");
		free(dangling);
	}

	ret = oci_catalog(c, &sv);
	ok(ret == 0 && has(&sv, repo), "catalog lists %s (%zu names)", repo, sv.n);
	strv_free(&sv);
	ret = oci_tags(c, repo, &sv);
	ok(ret == 0 && sv.n == 3 && has(&sv, "0.1.0") && has(&sv, "0.2.0") &&
	       has(&sv, "latest"),
	   "tags listed");
	strv_free(&sv);
	ok(oci_tags(c, other, &sv) == -ENOENT && sv.n == 0,
	   "tags of an unknown repo: ENOENT");

	ok(oci_manifest_get(c, repo, "0.1.0", &f) == 0 && f.err == 0,
	   "manifest get by tag");
	ok(f.body.data && f.body.len == strlen(m1) &&
	       !memcmp(f.body.data, m1, f.body.len),
	   "body is verbatim");
	ok(!strcmp(f.digest, d1), "digest of the body");
	ok(!strcmp(f.media_type, OCI_MT_MANIFEST), "media type %s", f.media_type);
	ok(oci_manifest_parse(f.body.data, f.body.len, f.media_type, &man) == 0 &&
	       oci_manifest_chart_layer(man) &&
	       !strcmp(oci_manifest_chart_layer(man)->digest, layer.digest),
	   "fetched manifest is a chart");
	oci_manifest_free(man);
	oci_fetched_clear(&f);
	ok(oci_manifest_get(c, repo, d2, &f) == 0 && !strcmp(f.digest, d2),
	   "manifest get by digest");
	oci_fetched_clear(&f);
	ok(oci_manifest_head(c, repo, "0.2.0", head) == 0 && !strcmp(head, d2),
	   "manifest head");
	ok(oci_manifest_head(c, repo, "nope", head) == -ENOENT, "head of a missing tag");
	ok(oci_manifest_get(c, repo, "../x", &f) == -EINVAL && f.err == -EINVAL,
	   "invalid reference refused");
	ok(oci_manifest_get(c, "../etc", "x", &f) == -EINVAL,
	   "invalid repository refused");

	memset(many, 0xa5, sizeof(many));
	ok(oci_manifest_get_many(c, repo, refs, 4, 3, many) == 0, "get_many");
	ok(many[0].err == 0 && !strcmp(many[0].digest, d1), "get_many 0.1.0");
	ok(many[1].err == 0 && !strcmp(many[1].digest, d2), "get_many 0.2.0");
	ok(many[2].err == 0 && !strcmp(many[2].digest, d2) &&
	       many[2].body.len == strlen(m2),
	   "get_many latest");
	ok(many[3].err == -ENOENT && many[3].body.data == NULL, "get_many missing tag");
	for (i = 0; i < 4; i++)
		oci_fetched_clear(&many[i]);
	{
		/* More references than threads: the pool and share under load. */
		const char *lots[24];
		struct oci_fetched res[24];
		size_t good = 0;
		for (i = 0; i < 24; i++)
			lots[i] = refs[i % 4];
		ok(oci_manifest_get_many(c, repo, lots, 24, 8, res) == 0,
		   "get_many, 8 threads");
		for (i = 0; i < 24; i++) {
			good += i % 4 == 3 ? res[i].err == -ENOENT
					   : res[i].err == 0 &&
						 !strcmp(res[i].digest, i % 4 ? d2 : d1);
			oci_fetched_clear(&res[i]);
		}
		ok(good == 24, "every parallel result is right (%zu of 24)", good);
		ok(oci_manifest_get_many(c, repo, refs, 2, 0, res) == 0 &&
		       res[0].err == 0 && res[1].err == 0,
		   "get_many with max_parallel 0 runs serially");
		oci_fetched_clear(&res[0]);
		oci_fetched_clear(&res[1]);
	}

	out = memfd_create("out", MFD_CLOEXEC);
	ok(out >= 0 &&
	       oci_blob_get_into(c, repo, big.digest, (uint64_t)big.size, out, NULL) == 0,
	   "large blob streamed");
	ok(digest_fd(out, got, &got_size) == 0 && !strcmp(got, big.digest) &&
	       got_size == big.size,
	   "streamed blob has the right sha256 and size");
	if (out >= 0)
		close(out);
	/* A body longer than its descriptor: EIO, and not one byte past the
	 * declared size is written (issue 14). */
	out = memfd_create("out", MFD_CLOEXEC);
	ok(out >= 0 && oci_blob_get_into(c, repo, big.digest, (uint64_t)big.size - 1, out,
					 NULL) == -EIO,
	   "blob longer than its declared size: EIO");
	ok(out >= 0 && lseek(out, 0, SEEK_END) <= (off_t)big.size - 1,
	   "nothing past the declared size written (%lld bytes)",
	   out >= 0 ? (long long)lseek(out, 0, SEEK_END) : -1LL);
	if (out >= 0)
		close(out);
	out = memfd_create("out", MFD_CLOEXEC);
	ok(out >= 0 && oci_blob_get_into(c, repo, cfg.digest, 0, out, NULL) == -EIO &&
	       lseek(out, 0, SEEK_END) == 0,
	   "a blob declared empty gets no byte");
	if (out >= 0)
		close(out);
	out = memfd_create("out", MFD_CLOEXEC);
	ok(out >= 0 && write(out, "xy", 2) == 2 &&
	       oci_blob_get_into(c, repo, cfg.digest, (uint64_t)cfg.size, out, NULL) == 0,
	   "small blob streamed after existing bytes");
	ok(digest_fd(out, got, &got_size) == 0 && got_size == cfg.size + 2,
	   "written from the current offset");
	ok(oci_blob_get_into(
	       c, repo,
	       "sha256:"
	       "0000000000000000000000000000000000000000000000000000000000000000",
	       10, out, NULL) == -ENOENT,
	   "missing blob: ENOENT");
	if (out >= 0)
		close(out);

	ret = oci_manifest_delete(c, repo, "0.1.0");
	ok(ret == -EINVAL || ret == 0, "delete by tag: %d (distribution 2.8: EINVAL)",
	   ret);
	ok(oci_manifest_delete(c, repo, d2) == 0, "delete by digest");
	ok(oci_manifest_get(c, repo, d2, &f) == -ENOENT,
	   "deleted manifest: ENOENT by digest");
	ok(oci_manifest_get(c, repo, "latest", &f) == -ENOENT,
	   "deleted manifest: ENOENT by tag");
	ok(oci_manifest_delete(c, repo, d2) == -ENOENT, "second delete: ENOENT");
	ret = oci_tags(c, repo, &sv);
	ok(ret == 0 && !has(&sv, "latest") && !has(&sv, "0.2.0"),
	   "tags gone after delete");
	strv_free(&sv);
	ok(oci_client_requests(c) > 20, "request counter: %llu",
	   (unsigned long long)oci_client_requests(c));

	test_dead_registry();

	free(m1);
	free(m2);
	close(cfg.fd);
	close(layer.fd);
	close(big.fd);
	oci_client_free(c);
	return tap_done();
}
