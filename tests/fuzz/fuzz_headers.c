/*
 * fuzz_headers.c - the response headers a registry controls that chartfs
 * parses itself: WWW-Authenticate challenges (auth.c) and Link headers
 * (http.c), each followed by what the client does with the result (the
 * realm's host check and the next page resolved against the registry).
 *
 * Input: one header value; every input goes through both parsers (they are
 * cheap, and the seeds of one are interesting noise for the other).
 */
#include "tests/fuzz/fuzz.h"

#include <strings.h>

#include "client/http_i.h"

#define BASE "http://127.0.0.1:5000"
#define PAGE BASE "/v2/_catalog?n=100"

/* Does the first challenge of v name the Bearer scheme? */
static bool starts_bearer(const char *v)
{
	v += strspn(v, " \t,");
	return !strncasecmp(v, "Bearer", 6) && (!v[6] || strchr(" \t,", v[6]));
}

static void check_challenge(const char *v, const struct oci_client *c)
{
	struct challenge ch;
	char *s;

	if (auth_parse_challenge(v, &ch) != 0)
		return;
	if (ch.scheme != AUTH_BASIC && ch.scheme != AUTH_BEARER)
		abort();
	/* The scheme is one the header names, and Bearer when it leads. */
	if (!strcasestr(v, ch.scheme == AUTH_BEARER ? "bearer" : "basic"))
		abort();
	if (ch.scheme != AUTH_BEARER && starts_bearer(v))
		abort();
	if (ch.realm) {
		/* Where a secret may go: one origin test, symmetric. */
		if (url_same_origin(c, ch.realm) != url_origin_eq(ch.realm, c->base))
			abort();
		if (url_resolve(c, PAGE, ch.realm, false, &s) == 0)
			free(s);
	}
	/* service and scope go into the token URL's query. */
	if (ch.service && (s = url_escape(ch.service)))
		free(s);
	if (ch.scope && (s = url_escape(ch.scope)))
		free(s);
	auth_challenge_clear(&ch);
}

static void check_link(const char *v, const struct oci_client *c)
{
	char *next = http_link_next(v), *url = NULL;
	char path[256];

	if (!next)
		return;
	/* The target is what stands between < and the first >. */
	if (strchr(next, '>') || !strstr(v, next))
		abort();
	/* What oci.c does with the next page: resolve, same origin only. */
	if (url_resolve(c, PAGE, next, true, &url) == 0) {
		if (!url_same_origin(c, url))
			abort();
		url_log_path(c, url, path, sizeof(path));
		free(url);
	}
	free(next);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char registry[] = "127.0.0.1:5000", base[] = BASE;
	struct oci_client c = {.registry = registry, .base = base, .plain_http = true};
	char *v;

	fuzz_init();
	v = fuzz_strdup(data, size);
	if (!v)
		return 0;
	check_challenge(v, &c);
	check_link(v, &c);
	free(v);
	return 0;
}
