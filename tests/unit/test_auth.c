/*
 * test_auth.c - where credentials may go: the origin test (scheme, host and
 * port), the error a challenge names, and that a Basic challenge holds for
 * its own scope only. No network: a Basic challenge needs no token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/http_i.h"
#include "client/oci.h"
#include "tests/unit/tap.h"

static void origin_is(const char *a, const char *b, bool want)
{
	bool got = url_origin_eq(a, b);

	ok(got == want && url_origin_eq(b, a) == want, "%s vs %s: %s", a, b,
	   want ? "one origin" : "two origins");
}

static void test_origins(void)
{
	origin_is("http://127.0.0.1:5000", "http://127.0.0.1:5000/token", true);
	origin_is("http://127.0.0.1:5000", "http://127.0.0.1:5001/token", false);
	origin_is("http://127.0.0.1:5000", "https://127.0.0.1:5000/token", false);
	origin_is("http://reg.example", "http://reg.example:80/v2/", true);
	origin_is("https://reg.example", "https://reg.example:443/v2/", true);
	origin_is("https://reg.example", "http://reg.example/v2/", false);
	origin_is("https://REG.example", "https://reg.EXAMPLE/token", true);
	origin_is("https://reg.example", "https://auth.reg.example/token", false);
	origin_is("https://reg.example", "https://u:p@reg.example/token", false);
	origin_is("http://[::1]:5000", "http://[::1]:5000/token", true);
	origin_is("http://[::1]:5000", "http://[::1]:5001/token", false);
	origin_is("https://reg.example", "not a url", false);
	origin_is("https://reg.example", "", false);
}

static void test_challenge_error(void)
{
	struct challenge ch;

	ok(auth_parse_challenge(
	       "Bearer realm=\"https://auth/token\",service=\"s\","
	       "scope=\"registry:catalog:*\",error=\"insufficient_scope\"",
	       &ch) == 0 &&
	       ch.error && !strcmp(ch.error, "insufficient_scope") && ch.scope &&
	       !strcmp(ch.scope, "registry:catalog:*"),
	   "a challenge's error is kept");
	auth_challenge_clear(&ch);
	ok(auth_parse_challenge("Bearer realm=\"https://auth/token\"", &ch) == 0 &&
	       !ch.error,
	   "no error: none kept");
	auth_challenge_clear(&ch);
}

/* auth_header(scope): "Basic" when it sends the password, "none" when it
 * sends nothing. */
static const char *header_for(struct oci_client *c, const char *scope)
{
	char why[256] = "", *hdr = NULL;
	const char *what = "error";

	if (auth_header(c, scope, &hdr, why, sizeof(why)) == 0)
		what = !hdr					    ? "none"
		       : !strncmp(hdr, "Authorization: Basic ", 21) ? "Basic"
								    : "other";
	auth_free_secret(hdr);
	return what;
}

static void test_basic_per_scope(void)
{
	struct oci_client_opts o = {.registry = "127.0.0.1:1",
				    .plain_http = true,
				    .username = "alice",
				    .password = "pw"};
	struct oci_client *c = NULL;
	char why[256], scope[64];
	int i;

	if (oci_client_new(&o, &c) != 0) {
		ok(false, "client");
		return;
	}
	ok(auth_challenge(c, "Basic realm=\"harbor\"", "registry:catalog:*", false, why,
			  sizeof(why)) == 0,
	   "a Basic challenge on the catalog: retry with credentials");
	ok(!strcmp(header_for(c, "registry:catalog:*"), "Basic"),
	   "the catalog gets the password");
	ok(!strcmp(header_for(c, "repository:a/b:pull"), "none"),
	   "another scope does not (it follows the registry's default)");
	ok(auth_challenge(c, "Basic realm=\"harbor\"", "registry:catalog:*", true, why,
			  sizeof(why)) == -EACCES &&
	       strstr(why, "refused"),
	   "Basic sent and challenged again: refused (%s)", why);
	/* The root speaks for the registry (docker's ping does the same). */
	ok(auth_challenge(c, "Basic realm=\"r\"", NULL, false, why, sizeof(why)) == 0,
	   "a Basic challenge on /v2/");
	ok(!strcmp(header_for(c, "repository:a/b:pull"), "Basic"),
	   "then every scope not challenged yet gets the password");
	oci_client_free(c);

	/* What scopes are remembered is bounded: the oldest fall back to the
	 * default. */
	if (oci_client_new(&o, &c) != 0) {
		ok(false, "client");
		return;
	}
	for (i = 0; i < 100; i++) {
		snprintf(scope, sizeof(scope), "repository:r%d:pull", i);
		if (auth_challenge(c, "Basic realm=r", scope, false, why, sizeof(why)))
			break;
	}
	ok(i == 100, "100 scopes challenged");
	ok(!strcmp(header_for(c, "repository:r99:pull"), "Basic") &&
	       !strcmp(header_for(c, "repository:r0:pull"), "none"),
	   "the newest scope is remembered, the oldest forgotten");
	oci_client_free(c);
}

int main(void)
{
	test_origins();
	test_challenge_error();
	test_basic_per_scope();
	return tap_done();
}
