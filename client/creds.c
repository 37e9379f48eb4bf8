/*
 * creds.c - credentials from docker-format config.json files, in the order
 * helm and docker read them, and from a password file.
 *
 * File text holds secrets: it is wiped once parsed. Messages name files
 * and helpers, never values.
 */
#include "client/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/oci.h"
#include "common/file.h"
#include "common/log.h"

#define CONFIG_MAX (1u * 1024 * 1024)
#define PASSWORD_MAX 4096
#define HOST_MAX 300
#define DOCKER_HUB "index.docker.io"
#define DOCKER_HUB_SERVER "https://index.docker.io/v1/"

static void free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void oci_creds_clear(struct oci_creds *c)
{
	free(c->username);
	free_secret(c->password);
	free_secret(c->identity_token);
	memset(c, 0, sizeof(*c));
}

/* ---- keys --------------------------------------------------------------- */

/* The host[:port] a key or host names, lower-cased, with Docker Hub's
 * aliases folded into one name; "" when there is none. As docker and helm
 * (oras) match keys: an http:// or https:// prefix is dropped, then the
 * path. A name too long for buf is no name (never a truncated match). */
static void canon_host(const char *s, char *buf, size_t size)
{
	const char *p = s;
	size_t n, i;

	if (!strncasecmp(p, "http://", 7))
		p += 7;
	else if (!strncasecmp(p, "https://", 8))
		p += 8;
	n = strcspn(p, "/");
	if (n >= size)
		n = 0;
	for (i = 0; i < n; i++)
		buf[i] = (p[i] >= 'A' && p[i] <= 'Z') ? (char)(p[i] - 'A' + 'a') : p[i];
	buf[n] = '\0';
	if (!strcmp(buf, "docker.io") || !strcmp(buf, "registry-1.docker.io"))
		snprintf(buf, size, "%s", DOCKER_HUB);
}

bool oci_creds_key_matches(const char *key, const char *host)
{
	char a[HOST_MAX], b[HOST_MAX];

	canon_host(key, a, sizeof(a));
	canon_host(host, b, sizeof(b));
	return a[0] && !strcmp(a, b);
}

const char *oci_creds_server(const char *host)
{
	char h[HOST_MAX];

	canon_host(host, h, sizeof(h));
	return strcmp(h, DOCKER_HUB) ? host : DOCKER_HUB_SERVER;
}

/* The member of obj keyed by host: an exact key first, as docker does. */
static json_t *find_host(json_t *obj, const char *host, const char **key_out)
{
	const char *key;
	json_t *v;

	*key_out = host;
	if (!json_is_object(obj))
		return NULL;
	v = json_object_get(obj, host);
	if (v)
		return v;
	json_object_foreach(obj, key, v)
	{
		if (oci_creds_key_matches(key, host)) {
			*key_out = key;
			return v;
		}
	}
	return NULL;
}

/* ---- config.json -------------------------------------------------------- */

static int dup_field(json_t *entry, const char *name, char **out)
{
	const char *s = json_string_value(json_object_get(entry, name));

	if (!s || !s[0])
		return 0;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* "auth": base64 of "user:password". */
static int decode_auth(const char *b64, const char *path, struct oci_creds *out)
{
	size_t len = strlen(b64), pad = 0;
	unsigned char *raw;
	char *colon;
	int n, ret = 0;

	if (len % 4 || len > PASSWORD_MAX * 2) {
		log_err("creds: %s: an \"auth\" value is not base64", path);
		return -EINVAL;
	}
	raw = malloc(len / 4 * 3 + 1);
	if (!raw)
		return -ENOMEM;
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
	while (pad < 2 && len > pad && b64[len - 1 - pad] == '=')
		pad++;
	if (n < 0 || (size_t)n < pad) {
		log_err("creds: %s: an \"auth\" value is not base64", path);
		ret = -EINVAL;
		goto out;
	}
	n -= (int)pad;
	raw[n] = '\0';
	colon = memchr(raw, ':', (size_t)n);
	if (!colon || strlen((char *)raw) != (size_t)n) {
		log_err("creds: %s: an \"auth\" value is not user:password", path);
		ret = -EINVAL;
		goto out;
	}
	*colon = '\0';
	free(out->username);
	free_secret(out->password);
	out->username = strdup((char *)raw);
	out->password = strdup(colon + 1);
	if (!out->username || !out->password)
		ret = -ENOMEM;
out:
	explicit_bzero(raw, len / 4 * 3 + 1);
	free(raw);
	return ret;
}

static int from_entry(json_t *entry, const char *path, const char *key,
		      struct oci_creds *out)
{
	const char *auth = json_string_value(json_object_get(entry, "auth"));
	int ret = 0;

	if (auth && auth[0])
		ret = decode_auth(auth, path, out);
	if (!ret && !out->username)
		ret = dup_field(entry, "username", &out->username);
	if (!ret && !out->password)
		ret = dup_field(entry, "password", &out->password);
	if (!ret)
		ret = dup_field(entry, "identitytoken", &out->identity_token);
	if (ret) {
		oci_creds_clear(out);
		return ret;
	}
	/* docker writes empty entries next to a credsStore: not a match. */
	if (!out->password && !out->identity_token) {
		oci_creds_clear(out);
		return -ENOENT;
	}
	snprintf(out->source, sizeof(out->source), "%s (auths \"%s\")", path, key);
	return 0;
}

static int run_helper(const char *name, const char *host, const char *path,
		      const char *what, struct oci_creds *out)
{
	int ret = oci_creds_helper(name, oci_creds_server(host),
				   OCI_CREDS_HELPER_TIMEOUT_MS, out);

	if (!ret) {
		snprintf(out->source, sizeof(out->source),
			 "docker-credential-%s (%s in %s)", name, what, path);
		return 0;
	}
	/* A helper that fails does not hide the entries that follow it. */
	if (ret != -ENOENT && ret != -ENOMEM)
		ret = -ENOENT;
	return ret;
}

/* The text of a config.json as a JSON object, or NULL (logged). */
static json_t *load_config(const char *text, size_t len, const char *path)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, 0, &jerr);

	if (json_is_object(root))
		return root;
	/* jerr.text quotes no input, only the position. */
	if (root)
		log_err("creds: %s: not a JSON object", path);
	else
		log_err("creds: %s: not JSON (line %d)", path, jerr.line);
	json_decref(root);
	return NULL;
}

/* The helpers root names for host, in the order they are asked:
 * credHelpers[host], then credsStore (NULL when absent or empty). */
static void helper_names(json_t *root, const char *host, const char *names[2])
{
	const char *key;
	size_t i;

	names[0] = json_string_value(
	    find_host(json_object_get(root, "credHelpers"), host, &key));
	names[1] = json_string_value(json_object_get(root, "credsStore"));
	for (i = 0; i < 2; i++)
		if (names[i] && !names[i][0])
			names[i] = NULL;
}

/* The auths entry of root for host. */
static int from_auths(json_t *root, const char *path, const char *host,
		      struct oci_creds *out)
{
	const char *key;
	json_t *v = find_host(json_object_get(root, "auths"), host, &key);

	return json_is_object(v) ? from_entry(v, path, key, out) : -ENOENT;
}

int oci_creds_from_json(const char *text, size_t len, const char *path, const char *host,
			struct oci_creds *out)
{
	static const char *const what[2] = {"credHelpers", "credsStore"};
	const char *names[2];
	json_t *root;
	size_t i;
	int ret = -ENOENT;

	memset(out, 0, sizeof(*out));
	root = load_config(text, len, path);
	if (!root)
		return -EINVAL;
	helper_names(root, host, names);
	for (i = 0; i < 2 && ret == -ENOENT; i++)
		if (names[i])
			ret = run_helper(names[i], host, path, what[i], out);
	if (ret == -ENOENT)
		ret = from_auths(root, path, host, out);
	json_decref(root);
	return ret;
}

int oci_creds_parse_json(const char *text, size_t len, const char *path, const char *host,
			 char *helpers[2], struct oci_creds *out)
{
	const char *names[2];
	json_t *root;
	size_t i;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	helpers[0] = helpers[1] = NULL;
	root = load_config(text, len, path);
	if (!root)
		return -EINVAL;
	helper_names(root, host, names);
	for (i = 0; i < 2 && !ret; i++)
		if (names[i] && !(helpers[i] = strdup(names[i])))
			ret = -ENOMEM;
	if (!ret)
		ret = from_auths(root, path, host, out);
	json_decref(root);
	return ret;
}

/* Read a regular file of at most max bytes into a NUL-terminated buffer;
 * mode_out gets its permission bits. */
static int read_small(const char *path, size_t max, char **out, size_t *len,
		      mode_t *mode_out)
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	ret = file_read_fd(fd, max, out, len, &st);
	if (!ret)
		*mode_out = st.st_mode & 07777;
	close(fd);
	return ret;
}

static int lookup_file(const char *path, const char *host, bool must_exist,
		       struct oci_creds *out)
{
	char *text = NULL;
	size_t len = 0;
	mode_t mode;
	int ret;

	ret = read_small(path, CONFIG_MAX, &text, &len, &mode);
	if (ret == -ENOENT && !must_exist)
		return -ENOENT;
	if (ret) {
		log_err("creds: cannot read %s: %s", path, strerror(-ret));
		return ret == -ENOENT ? -EINVAL : ret;
	}
	ret = oci_creds_from_json(text, len, path, host, out);
	explicit_bzero(text, len);
	free(text);
	return ret;
}

/* Append dir + tail to the candidate list, unless it is already there. */
static int add_path(char **paths, size_t *n, const char *dir, const char *tail)
{
	char *p;
	size_t i;

	if (!dir || !dir[0])
		return 0;
	if (asprintf(&p, "%s%s", dir, tail) < 0)
		return -ENOMEM;
	for (i = 0; i < *n; i++) {
		if (!strcmp(paths[i], p)) {
			free(p);
			return 0;
		}
	}
	paths[(*n)++] = p;
	return 0;
}

/* The config files after -o registry_config, in lookup order (at most 5;
 * the caller frees each). */
static int config_paths(char **paths, size_t *n)
{
	const char *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");
	char *xdg_home = NULL;
	int ret;

	*n = 0;
	if ((!xdg || !xdg[0]) && home && home[0] &&
	    asprintf(&xdg_home, "%s/.config", home) < 0)
		return -ENOMEM;
	ret = add_path(paths, n, getenv("HELM_REGISTRY_CONFIG"), "");
	if (!ret)
		ret = add_path(paths, n, getenv("HELM_CONFIG_HOME"),
			       "/registry/config.json");
	if (!ret)
		ret = add_path(paths, n, xdg && xdg[0] ? xdg : xdg_home,
			       "/helm/registry/config.json");
	if (!ret)
		ret = add_path(paths, n, getenv("DOCKER_CONFIG"), "/config.json");
	if (!ret)
		ret = add_path(paths, n, home, "/.docker/config.json");
	free(xdg_home);
	return ret;
}

int oci_creds_lookup(const char *host, const char *registry_config, struct oci_creds *out)
{
	char *paths[8] = {0};
	size_t n = 0, i;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (registry_config) {
		ret = lookup_file(registry_config, host, true, out);
		if (ret != -ENOENT)
			return ret;
	}
	ret = config_paths(paths, &n);
	for (i = 0; !ret && i < n; i++) {
		ret = lookup_file(paths[i], host, false, out);
		/* A broken file is reported, then the next one is tried. */
		if (ret == -EINVAL || ret == -EFBIG || ret == -EACCES || ret == -EISDIR)
			ret = -ENOENT;
		if (ret == -ENOENT)
			ret = 0;
		else
			break;
	}
	if (!ret && i == n)
		ret = -ENOENT;
	for (i = 0; i < n; i++)
		free(paths[i]);
	return ret;
}

/* Append the keys of one config.json's auths and credHelpers. */
static int keys_of_file(const char *path, struct strv *out)
{
	const char *sections[] = {"auths", "credHelpers"}, *key;
	json_t *root, *v;
	char *text = NULL;
	size_t len = 0, i;
	mode_t mode;
	int ret;

	ret = read_small(path, CONFIG_MAX, &text, &len, &mode);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	root = json_loadb(text, len, 0, NULL);
	explicit_bzero(text, len);
	free(text);
	for (i = 0; i < 2 && !ret; i++) {
		json_object_foreach(json_object_get(root, sections[i]), key, v)
		{
			(void)v;
			ret = strv_push(out, key);
			if (ret)
				break;
		}
	}
	json_decref(root);
	return ret;
}

int oci_creds_hosts(const char *registry_config, struct strv *out)
{
	char *paths[8] = {0};
	size_t n = 0, i;
	int ret = 0;

	if (registry_config)
		ret = keys_of_file(registry_config, out);
	if (!ret)
		ret = config_paths(paths, &n);
	/* An unreadable file names no host; the others still do. */
	for (i = 0; !ret && i < n; i++)
		if (keys_of_file(paths[i], out) == -ENOMEM)
			ret = -ENOMEM;
	for (i = 0; i < n; i++)
		free(paths[i]);
	return ret;
}

int oci_creds_password_file(const char *path, char **out)
{
	char *text = NULL;
	size_t len = 0;
	mode_t mode;
	int ret;

	*out = NULL;
	ret = read_small(path, PASSWORD_MAX, &text, &len, &mode);
	if (ret) {
		log_err("creds: cannot read -o password_file=%s: %s", path,
			ret == -EFBIG ? "larger than 4 KiB" : strerror(-ret));
		return ret;
	}
	if (mode & (S_IRWXG | S_IRWXO)) {
		log_err("creds: -o password_file=%s is accessible by group or others "
			"(mode %04o): chmod 600 it",
			path, (unsigned)mode);
		explicit_bzero(text, len);
		free(text);
		return -EACCES;
	}
	if (len && text[len - 1] == '\n')
		text[--len] = '\0';
	if (len && text[len - 1] == '\r')
		text[--len] = '\0';
	if (strlen(text) != len) {
		log_err("creds: -o password_file=%s holds a NUL byte", path);
		explicit_bzero(text, len);
		free(text);
		return -EINVAL;
	}
	*out = text;
	return 0;
}
