/* sign_tool.c - sign/'s functions from the command line, so that
 * tests/test_sign_formats.py can check them against implementations
 * chartfs did not write (Python cryptography, the Sigstore JS libraries).
 * Built by meson, never installed.
 *
 *   sign-tool keys PATHS                  count, id, then "fpr hint" per key
 *   sign-tool key PRIVKEY                 the signing key's fingerprint
 *   sign-tool verify-simple KEYS DIGEST PAYLOAD SIG_B64
 *   sign-tool verify-bundle KEYS DIGEST BUNDLE
 *                                         "<verdict> [mech fpr]"
 *   sign-tool make-bundle PRIVKEY DIGEST  the bundle on stdout
 *   sign-tool referrer BUNDLE_DIGEST BUNDLE_SIZE SUBJECT_MT SUBJECT_DIGEST SUBJECT_SIZE
 *   sign-tool index-add INDEX|- MANIFEST  the new index on stdout
 *   sign-tool index-bundles INDEX         one digest a line
 *
 * Files are read whole; "-" as INDEX is no index. Exit 0, or 2 with
 * "error <errno>" on stdout when a function fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strv.h"
#include "sign/cosign.h"
#include "sign/keys.h"
#include "sign/sign_i.h"

static const char *verdict_name(enum sign_verdict v)
{
	static const char *const names[] = {"ok",	    "none",    "wrong_key",
					    "other_digest", "bad_sig", "broken"};
	return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}

static int slurp(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (!f)
		return -errno;
	do {
		if (n == cap) {
			char *b = realloc(buf, (cap = cap ? 2 * cap : 4096) + 1);
			if (!b) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = b;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r);
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int fail(int ret)
{
	printf("error %d\n", -ret);
	return 2;
}

static void print_result(const struct sign_result *r)
{
	if (r->verdict == SIGN_OK)
		printf("%s %s %s\n", verdict_name(r->verdict), r->mech, r->fpr);
	else
		printf("%s\n", verdict_name(r->verdict));
}

static int cmd_keys(char **argv)
{
	struct sign_keys *k;
	size_t i;
	int ret = sign_keys_load(argv[0], &k);

	if (ret)
		return fail(ret);
	printf("count %zu\nid %s\n", sign_keys_count(k), sign_keys_id(k));
	for (i = 0; i < k->n; i++)
		printf("%s %s\n", k->v[i].fpr, k->v[i].hint);
	sign_keys_free(k);
	return 0;
}

static int cmd_key(char **argv)
{
	struct sign_key *k;
	int ret = sign_key_load(argv[0], &k);

	if (ret)
		return fail(ret);
	printf("%s\n", sign_key_fpr(k));
	sign_key_free(k);
	return 0;
}

static int cmd_verify(char **argv, bool bundle)
{
	struct sign_keys *k = NULL;
	struct sign_result r;
	char *data = NULL;
	size_t len = 0;
	int ret;

	ret = sign_keys_load(argv[0], &k);
	if (!ret)
		ret = slurp(argv[2], &data, &len);
	if (!ret && bundle)
		ret = cosign_bundle_verify(k, argv[1], data, len, &r);
	else if (!ret)
		ret = cosign_simple_verify(k, argv[1], data, len, argv[3], &r);
	free(data);
	sign_keys_free(k);
	if (ret)
		return fail(ret);
	print_result(&r);
	return 0;
}

static int cmd_make_bundle(char **argv)
{
	struct sign_key *k;
	struct oci_buf out = {0};
	int ret = sign_key_load(argv[0], &k);

	if (!ret)
		ret = cosign_bundle_make(k, argv[1], &out);
	sign_key_free(k);
	if (ret)
		return fail(ret);
	fwrite(out.data, 1, out.len, stdout);
	free(out.data);
	return 0;
}

static int cmd_referrer(char **argv)
{
	struct oci_buf out = {0};
	int ret;

	ret = cosign_referrer_manifest(argv[0], strtoull(argv[1], NULL, 10), argv[2],
				       argv[3], strtoull(argv[4], NULL, 10), &out);
	if (ret)
		return fail(ret);
	fwrite(out.data, 1, out.len, stdout);
	free(out.data);
	return 0;
}

static int cmd_index_add(char **argv)
{
	struct oci_buf out = {0};
	char *index = NULL, *man = NULL;
	size_t ilen = 0, mlen = 0;
	int ret = 0;

	if (strcmp(argv[0], "-") != 0)
		ret = slurp(argv[0], &index, &ilen);
	if (!ret)
		ret = slurp(argv[1], &man, &mlen);
	if (!ret)
		ret = cosign_index_add(index, ilen, man, mlen, &out);
	free(index);
	free(man);
	if (ret)
		return fail(ret);
	fwrite(out.data, 1, out.len, stdout);
	free(out.data);
	return 0;
}

static int cmd_index_bundles(char **argv)
{
	struct strv sv = {0};
	char *index = NULL;
	size_t len = 0, i;
	int ret;

	ret = slurp(argv[0], &index, &len);
	if (!ret)
		ret = cosign_index_bundles(index, len, &sv);
	free(index);
	for (i = 0; !ret && i < sv.n; i++)
		printf("%s\n", sv.v[i]);
	strv_free(&sv);
	return ret ? fail(ret) : 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int args;
	} cmds[] = {{"keys", 1},	  {"key", 1},	       {"verify-simple", 4},
		    {"verify-bundle", 3}, {"make-bundle", 2},  {"referrer", 5},
		    {"index-add", 2},	  {"index-bundles", 1}};
	size_t i;

	for (i = 0; argc > 1 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name) && argc == cmds[i].args + 2)
			break;
	if (argc < 2 || i == sizeof(cmds) / sizeof(cmds[0])) {
		fprintf(stderr, "usage: see tests/unit/sign_tool.c\n");
		return 64;
	}
	argv += 2;
	switch (i) {
	case 0:
		return cmd_keys(argv);
	case 1:
		return cmd_key(argv);
	case 2:
		return cmd_verify(argv, false);
	case 3:
		return cmd_verify(argv, true);
	case 4:
		return cmd_make_bundle(argv);
	case 5:
		return cmd_referrer(argv);
	case 6:
		return cmd_index_add(argv);
	default:
		return cmd_index_bundles(argv);
	}
}
