/* test_http.c - the response headers chartfs parses itself: Link (RFC 8288). */
#include <stdlib.h>
#include <string.h>

#include "client/http_i.h"
#include "tests/unit/tap.h"

/* http_link_next(v) is want (NULL: no next page). */
static void link_is(const char *v, const char *want)
{
	char *got = http_link_next(v);

	ok(want ? got && !strcmp(got, want) : got == NULL, "Link: %s -> %s (got %s)", v,
	   want ? want : "none", got ? got : "none");
	free(got);
}

/* The time a size takes at HTTP_MIN_RATE, which deadlines add to
 * io_timeout (issue 14). */
static void test_carry(void)
{
	ok(http_carry_ms(0) == 0, "nothing to carry: no time");
	ok(http_carry_ms(HTTP_MIN_RATE) == 1000, "64 KiB: one second");
	ok(http_carry_ms(100ull << 20) == 1600 * 1000,
	   "a 100 MiB chart: 1600 s (%lld ms)", (long long)http_carry_ms(100ull << 20));
	ok(http_carry_ms(1ull << 50) == http_carry_ms(1ull << 40) &&
	       http_carry_ms(UINT64_MAX) == http_carry_ms(1ull << 40) &&
	       http_carry_ms(1ull << 40) > 0,
	   "absurd sizes saturate instead of overflowing");
}

int main(void)
{
	test_carry();
	link_is("</v2/_catalog?last=b&n=2>; rel=\"next\"", "/v2/_catalog?last=b&n=2");
	link_is("</v2/x/tags/list?last=1>; rel=next", "/v2/x/tags/list?last=1");
	link_is("</a>; rel=\"prev\", </b>; rel=\"next\"", "/b");
	/* Several relation types in one value (RFC 8288 section 3.3). */
	link_is("</c>; rel=\"first next\"", "/c");
	link_is("</d>; rel=\"next last\"", "/d");
	link_is("</e>; REL=\"NEXT\"", "/e");
	link_is("</f>; rel=\"nextpage\"", NULL);
	link_is("</g>; rel=\"first last\"", NULL);
	link_is("</h>; xrel=\"next\"", NULL);
	link_is("</i>; title=\"rel=next\"; rel=prev", NULL);
	link_is("no link at all", NULL);
	link_is("<unterminated; rel=next", NULL);
	return tap_done();
}
