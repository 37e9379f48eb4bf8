/* test_creds.c - config.json parsing, key matching, the credential helper
 * protocol and password files (client/creds.c, client/credhelper.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/creds.h"
#include "tap.h"

#define HOST "reg.example:5000"

static int from(const char *json, const char *host, struct oci_creds *c)
{
	return oci_creds_from_json(json, strlen(json), "test.json", host, c);
}

static void test_keys(void)
{
	ok(oci_creds_key_matches("reg.example:5000", HOST), "bare host:port");
	ok(oci_creds_key_matches("https://reg.example:5000", HOST), "with scheme");
	ok(oci_creds_key_matches("https://REG.example:5000/v1/", HOST),
	   "scheme, path, case");
	ok(!oci_creds_key_matches("reg.example", HOST), "a port is part of the host");
	ok(!oci_creds_key_matches("reg.example:50000", HOST), "no prefix match");
	ok(!oci_creds_key_matches("evil.reg.example:5000", HOST), "no suffix match");
	ok(oci_creds_key_matches("HTTP://reg.example:5000", HOST), "http:// prefix");
	/* Only a leading http:// or https:// is a scheme, as for docker. */
	ok(!oci_creds_key_matches("evil.example/x://reg.example:5000", HOST),
	   "no \"://\" further in the key");
	ok(!oci_creds_key_matches("oci://reg.example:5000", HOST), "no other scheme");
	ok(!oci_creds_key_matches("https://user@reg.example:5000", HOST), "no user info");
	{
		char key[400];
		memset(key, 'a', sizeof(key) - 1);
		key[sizeof(key) - 1] = '\0';
		ok(!oci_creds_key_matches(key, key + 50), "overlong names never match");
	}
	ok(oci_creds_key_matches("https://index.docker.io/v1/", "docker.io"),
	   "docker.io");
	ok(oci_creds_key_matches("https://index.docker.io/v1/", "registry-1.docker.io"),
	   "registry-1.docker.io");
	ok(!strcmp(oci_creds_server("registry-1.docker.io"),
		   "https://index.docker.io/v1/"),
	   "helpers are asked for Docker Hub's legacy name");
	ok(!strcmp(oci_creds_server(HOST), HOST), "and for the host otherwise");
}

static void test_json(void)
{
	struct oci_creds c;
	int ret;

	/* "alice:pa:ss" */
	ret = from("{\"auths\":{\"https://reg.example:5000/v1/\":{\"auth\":"
		   "\"YWxpY2U6cGE6c3M=\"}}}",
		   HOST, &c);
	ok(ret == 0 && !strcmp(c.username, "alice") && !strcmp(c.password, "pa:ss"),
	   "auth is base64 user:password, split at the first colon");
	ok(strstr(c.source, "test.json") != NULL, "source names the file");
	oci_creds_clear(&c);

	ret = from(
	    "{\"auths\":{\"reg.example:5000\":{\"username\":\"u\",\"password\":\"p\"}}}",
	    HOST, &c);
	ok(ret == 0 && !strcmp(c.username, "u") && !strcmp(c.password, "p"),
	   "username and password fields");
	oci_creds_clear(&c);

	ret = from("{\"auths\":{\"reg.example:5000\":{\"auth\":\"dTo=\","
		   "\"identitytoken\":\"rt\"}}}",
		   HOST, &c);
	ok(ret == 0 && !strcmp(c.identity_token, "rt") && !strcmp(c.username, "u"),
	   "identitytoken kept with the user name");
	oci_creds_clear(&c);

	ret = from("{\"auths\":{\"other:5000\":{\"auth\":\"dTpw\"}}}", HOST, &c);
	ok(ret == -ENOENT, "another host: no match");
	ret = from("{\"auths\":{\"reg.example:5000\":{}}}", HOST, &c);
	ok(ret == -ENOENT, "an empty entry (docker with a credsStore) is no match");
	ret = from("{\"auths\":{\"reg.example:5000\":{\"auth\":\"!!!!\"}}}", HOST, &c);
	ok(ret == -EINVAL, "bad base64 is an error");
	ret =
	    from("{\"auths\":{\"reg.example:5000\":{\"auth\":\"dXNlcg==\"}}}", HOST, &c);
	ok(ret == -EINVAL, "auth without a colon is an error");
	ret = from("[1,2", HOST, &c);
	ok(ret == -EINVAL, "not JSON");
	ret = from("{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"dTpw\"}}}",
		   "docker.io", &c);
	ok(ret == 0 && !strcmp(c.password, "p"), "Docker Hub's key");
	oci_creds_clear(&c);
}

static int parse(const char *json, char *helpers[2], struct oci_creds *c)
{
	return oci_creds_parse_json(json, strlen(json), "test.json", HOST, helpers, c);
}

static void free_helpers(char *helpers[2])
{
	free(helpers[0]);
	free(helpers[1]);
}

/* oci_creds_parse_json: what from_json would do, without running helpers. */
static void test_parse_only(void)
{
	struct oci_creds c;
	char *h[2];
	int ret;

	ret = parse("[\"credsStore\"]", h, &c);
	ok(ret == -EINVAL && !h[0] && !h[1], "parse only: not an object");
	ret = parse("{\"credHelpers\":{\"https://reg.example:5000\":\"h\"},"
		    "\"credsStore\":\"s\",\"auths\":{\"" HOST "\":{\"auth\":\"dTpw\"}}}",
		    h, &c);
	ok(ret == 0 && h[0] && !strcmp(h[0], "h") && h[1] && !strcmp(h[1], "s") &&
	       !strcmp(c.username, "u") && !strcmp(c.password, "p"),
	   "parse only: the helpers named, in order, and the auths entry");
	free_helpers(h);
	oci_creds_clear(&c);
	ret = parse("{\"credHelpers\":{\"other\":\"h\"},\"credsStore\":\"\"}", h, &c);
	ok(ret == -ENOENT && !h[0] && !h[1] && !c.username,
	   "parse only: another host's helper, an empty store, no auths");
	ret = parse("{\"credsStore\":\"s\",\"auths\":{\"" HOST "\":{\"auth\":\"!!!!\"}}}",
		    h, &c);
	ok(ret == -EINVAL && !h[0] && h[1] && !strcmp(h[1], "s") && !c.username,
	   "parse only: a bad auths entry still names the store");
	free_helpers(h);
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	return chmod(path, mode);
}

static void test_helpers(void)
{
	char cwd[512], path[1200];
	struct oci_creds c;
	const char *old = getenv("PATH");
	int ret;

	if (!getcwd(cwd, sizeof(cwd)) || mkdir("bin", 0755) < 0 ||
	    write_file(
		"bin/docker-credential-t",
		"#!/bin/sh\nread -r s\n"
		"case \"$s\" in\n"
		"reg.example:5000) echo '{\"Username\":\"u\",\"Secret\":\"s\"}';;\n"
		"tok.example) echo '{\"Username\":\"<token>\",\"Secret\":\"rt\"}';;\n"
		"slow.example) sleep 5;;\n"
		"*) echo 'credentials not found'; exit 1;;\nesac\n",
		0755) < 0) {
		ok(0, "cannot set up a helper");
		return;
	}
	snprintf(path, sizeof(path), "%s/bin:%s", cwd, old ? old : "/usr/bin:/bin");
	setenv("PATH", path, 1);

	ret = oci_creds_helper("t", HOST, 5000, &c);
	ok(ret == 0 && !strcmp(c.username, "u") && !strcmp(c.password, "s"),
	   "helper answer: Username and Secret");
	oci_creds_clear(&c);
	ret = oci_creds_helper("t", "tok.example", 5000, &c);
	ok(ret == 0 && !c.username && !strcmp(c.identity_token, "rt"),
	   "<token> user: the Secret is an identity token");
	oci_creds_clear(&c);
	ok(oci_creds_helper("t", "none.example", 5000, &c) == -ENOENT,
	   "non-zero exit: not found");
	ok(oci_creds_helper("missing", HOST, 5000, &c) == -ENOENT,
	   "missing helper: not found");
	ok(oci_creds_helper("../t", HOST, 5000, &c) == -EINVAL,
	   "no paths as helper names");
	ok(oci_creds_helper("t", "slow.example", 300, &c) == -ETIMEDOUT,
	   "a hanging helper is killed at the timeout");

	ret = from("{\"credHelpers\":{\"reg.example:5000\":\"t\"},"
		   "\"auths\":{\"reg.example:5000\":{\"auth\":\"eDp5\"}}}",
		   HOST, &c);
	ok(ret == 0 && !strcmp(c.password, "s"), "credHelpers before auths");
	oci_creds_clear(&c);
	ret = from(
	    "{\"credsStore\":\"t\",\"auths\":{\"other.example\":{\"auth\":\"eDp5\"}}}",
	    "other.example", &c);
	ok(ret == 0 && !strcmp(c.password, "y"), "a store without the host: auths");
	oci_creds_clear(&c);
	setenv("PATH", old ? old : "/usr/bin:/bin", 1);
}

static void test_password_file(void)
{
	char *pw = NULL;

	write_file("pw", "secret\n", 0600);
	ok(oci_creds_password_file("pw", &pw) == 0 && !strcmp(pw, "secret"),
	   "one trailing newline stripped");
	free(pw);
	write_file("pw", "secret\n\n", 0600);
	ok(oci_creds_password_file("pw", &pw) == 0 && !strcmp(pw, "secret\n"),
	   "only one");
	free(pw);
	write_file("pw", "secret", 0640);
	ok(oci_creds_password_file("pw", &pw) == -EACCES && !pw,
	   "group-readable file refused");
	write_file("pw", "secret", 0604);
	ok(oci_creds_password_file("pw", &pw) == -EACCES, "world-readable file refused");
	ok(oci_creds_password_file("nope", &pw) == -ENOENT, "missing file");
}

static void test_lookup_order(void)
{
	char cwd[512], a[600], b[600];
	struct oci_creds c;
	int ret;

	if (!getcwd(cwd, sizeof(cwd)))
		return;
	mkdir("helm", 0700);
	mkdir("docker", 0700);
	snprintf(a, sizeof(a), "%s/helm/config.json", cwd);
	snprintf(b, sizeof(b), "%s/docker", cwd);
	write_file(a, "{\"auths\":{\"h1\":{\"auth\":\"aDpo\"}}}", 0600);
	write_file("docker/config.json",
		   "{\"auths\":{\"h1\":{\"auth\":\"ZDpk\"},\"h2\":{\"auth\":\"ZDpk\"}}}",
		   0600);
	setenv("HELM_REGISTRY_CONFIG", a, 1);
	setenv("DOCKER_CONFIG", b, 1);
	setenv("HOME", cwd, 1);
	unsetenv("HELM_CONFIG_HOME");
	unsetenv("XDG_CONFIG_HOME");
	ret = oci_creds_lookup("h1", NULL, &c);
	ok(ret == 0 && !strcmp(c.username, "h"), "helm's file first");
	oci_creds_clear(&c);
	ret = oci_creds_lookup("h2", NULL, &c);
	ok(ret == 0 && !strcmp(c.username, "d"), "then docker's");
	oci_creds_clear(&c);
	ok(oci_creds_lookup("h3", NULL, &c) == -ENOENT, "else anonymous");
	ret = oci_creds_lookup("h2", "docker/config.json", &c);
	ok(ret == 0 && !strcmp(c.username, "d"), "-o registry_config first");
	oci_creds_clear(&c);
	ok(oci_creds_lookup("h2", "missing.json", &c) == -EINVAL,
	   "a missing -o registry_config is an error");
}

int main(void)
{
	char dir[] = "/tmp/test_creds.XXXXXX";

	if (!mkdtemp(dir) || chdir(dir) < 0) {
		ok(0, "temp dir");
		return tap_done();
	}
	test_keys();
	test_json();
	test_parse_only();
	test_helpers();
	test_password_file();
	test_lookup_order();
	return tap_done();
}
