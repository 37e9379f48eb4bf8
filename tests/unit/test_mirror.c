/* test_mirror.c - the -o mirror grammar (client/mirror.h): which entries a
 * mount takes, and which it refuses before anything is asked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/mirror.h"
#include "tap.h"

/* oci_mirror_specs_for, compared with want and freed. */
static int specs_are(const char *all, const char *registry, const char *want)
{
	char *got = oci_mirror_specs_for(all, registry);
	int same = got && !strcmp(got, want);

	if (!same)
		printf("# specs_for(\"%s\", %s) = \"%s\", want \"%s\"\n", all, registry,
		       got ? got : "(null)", want);
	free(got);
	return same;
}

int main(void)
{
	/* Kept quiet: oci_mirror_check says what is wrong on stderr. */
	if (!freopen("/dev/null", "w", stderr))
		return 1;

	ok(oci_mirror_check("m.example:5000", "ghcr.io") == 0, "a bare mirror");
	ok(oci_mirror_check("http://127.0.0.1:5001,https://m.example/proxy-ghcr/x",
			    "ghcr.io") == 0,
	   "schemes, a port, a nested prefix, two mirrors");
	ok(oci_mirror_check("ghcr.io=m.example/ghcr", "ghcr.io") == 0,
	   "ORIGIN= naming the mount's registry");
	ok(oci_mirror_check("GHCR.io=m.example", "ghcr.io") == 0, "hosts ignore case");
	ok(oci_mirror_check("ghcr.io=a.example;quay.io=b.example,c.example", NULL) == 0,
	   "every-registry mount: one entry per origin");
	ok(oci_mirror_check("m.example/", "ghcr.io") == 0, "a trailing slash");

	ok(oci_mirror_check("quay.io=m.example", "ghcr.io") != 0,
	   "an origin the mount does not show");
	ok(oci_mirror_check("m.example", NULL) != 0,
	   "every-registry mount: no origin named");
	ok(oci_mirror_check("ghcr.io=", NULL) != 0, "an origin without mirrors");
	ok(oci_mirror_check("m example", "ghcr.io") != 0, "a space in the host");
	ok(oci_mirror_check("m.example/Upper", "ghcr.io") != 0,
	   "a prefix that is no repository name");
	ok(oci_mirror_check("m.example/a//b", "ghcr.io") != 0, "an empty component");
	ok(oci_mirror_check("http:///x", "ghcr.io") != 0, "no host");
	ok(oci_mirror_check("a.x,b.x,c.x,d.x,e.x,f.x,g.x,h.x", "ghcr.io") == 0,
	   "MIRRORS_MAX mirrors");
	ok(oci_mirror_check("a.x,b.x,c.x,d.x,e.x,f.x,g.x,h.x,i.x", "ghcr.io") != 0,
	   "one more than MIRRORS_MAX");

	ok(specs_are("m.example", "ghcr.io", "m.example"), "one-registry mount");
	ok(specs_are("ghcr.io=a.x/p;quay.io=b.x;ghcr.io=c.x", "ghcr.io", "a.x/p,c.x"),
	   "the entries of one origin, in order");
	ok(specs_are("ghcr.io=a.x;quay.io=b.x", "docker.io", ""),
	   "none for another host");
	ok(specs_are("", "ghcr.io", ""), "nothing");
	return tap_done();
}
