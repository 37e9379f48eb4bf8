/*
 * fuzz_creds.c - docker-format config.json files (client/creds.c): the
 * auths entries (base64 "auth", username/password, identitytoken), the
 * credHelpers and credsStore names, and how keys name hosts.
 *
 * Input: the text of a config.json. It is looked up for a few hosts through
 * oci_creds_parse_json, which runs no helper (oci_creds_from_json would
 * spawn docker-credential-<name> for a credHelpers or credsStore entry).
 * The input is also matched as a key against those hosts, and as a host.
 */
#include "tests/fuzz/fuzz.h"

#include <strings.h>

#include "client/creds.h"

static const char *const hosts[] = {
    "ghcr.io", "127.0.0.1:5000", "registry-1.docker.io", "docker.io", "index.docker.io",
};

/* The keys a lookup of host may match (besides Docker Hub's aliases):
 * host, then the end or a path, after an optional http:// or https://. */
static bool key_may_match(const char *key, const char *host)
{
	size_t n = strlen(host);

	if (!strncasecmp(key, "http://", 7))
		key += 7;
	else if (!strncasecmp(key, "https://", 8))
		key += 8;
	return !strncasecmp(key, host, n) && (!key[n] || key[n] == '/');
}

static void check_lookup(const uint8_t *data, size_t size, const char *host)
{
	struct oci_creds c;
	char *helpers[2];
	int ret;

	ret = oci_creds_parse_json((const char *)data, size, "fuzz.json", host, helpers,
				   &c);
	if (ret == 0) {
		/* A match has a secret and says where it came from. */
		if ((!c.password && !c.identity_token) || !c.source[0])
			abort();
	} else if (c.username || c.password || c.identity_token) {
		abort();
	}
	if ((helpers[0] && !helpers[0][0]) || (helpers[1] && !helpers[1][0]))
		abort();
	free(helpers[0]);
	free(helpers[1]);
	oci_creds_clear(&c);
}

static void check_key(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		bool m = oci_creds_key_matches(key, hosts[i]);
		if (m != oci_creds_key_matches(hosts[i], key))
			abort();
		if (m && i < 2 && !key_may_match(key, hosts[i]))
			abort();
	}
	/* The input as a host: the server a helper would be asked for. */
	if (!oci_creds_server(key))
		abort();
	(void)oci_creds_key_matches(key, key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *key;
	size_t i;

	fuzz_init();
	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		check_lookup(data, size, hosts[i]);
	key = fuzz_strdup(data, size);
	if (!key)
		return 0;
	check_key(key);
	free(key);
	return 0;
}
