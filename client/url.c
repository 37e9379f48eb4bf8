/*
 * url.c - URL helpers for the request core: resolving Location and Link
 * targets, deciding whether two URLs are one origin (scheme, host and port:
 * only the registry's own origin gets its credentials), and what of a URL
 * may be logged.
 */
#include "client/http_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct origin {
	char *scheme;
	char *host;
	char *port;
	char *user;
};

static void origin_clear(struct origin *o)
{
	curl_free(o->scheme);
	curl_free(o->host);
	curl_free(o->port);
	curl_free(o->user);
	memset(o, 0, sizeof(*o));
}

static int origin_of(const char *url, struct origin *o)
{
	CURLU *u = curl_url();
	int ret = -EINVAL;

	memset(o, 0, sizeof(*o));
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &o->scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &o->host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &o->port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	/* Absent is the normal case; only its presence matters. */
	if (curl_url_get(u, CURLUPART_USER, &o->user, 0) != CURLUE_OK)
		o->user = NULL;
	ret = 0;
out:
	if (ret)
		origin_clear(o);
	curl_url_cleanup(u);
	return ret;
}

static bool origin_eq(const struct origin *a, const struct origin *b)
{
	return !strcasecmp(a->scheme, b->scheme) && !strcasecmp(a->host, b->host) &&
	       !strcmp(a->port, b->port);
}

bool url_origin_eq(const char *a, const char *b)
{
	struct origin oa, ob;
	bool same = false;

	if (origin_of(a, &oa))
		return false;
	if (!origin_of(b, &ob)) {
		/* A URL naming a user is never "ours": credentials of its own. */
		same = origin_eq(&oa, &ob) && !oa.user && !ob.user;
		origin_clear(&ob);
	}
	origin_clear(&oa);
	return same;
}

bool url_same_origin(const struct oci_client *c, const char *url)
{
	return url_origin_eq(c->base, url);
}

int url_resolve(const struct oci_client *c, const char *base, const char *ref,
		bool same_origin, char **out)
{
	CURLU *u = curl_url();
	struct origin o = {0};
	char *s = NULL;
	int ret = -EINVAL;

	*out = NULL;
	if (!u)
		return -ENOMEM;
	/* Setting a relative URL on a handle holding one resolves it. */
	if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_URL, ref, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK)
		goto out;
	if (origin_of(s, &o))
		goto out;
	if ((strcasecmp(o.scheme, "http") && strcasecmp(o.scheme, "https")) || o.user)
		goto out;
	if (same_origin && !url_same_origin(c, s)) {
		ret = -EPERM;
		goto out;
	}
	*out = strdup(s);
	ret = *out ? 0 : -ENOMEM;
out:
	origin_clear(&o);
	curl_free(s);
	curl_url_cleanup(u);
	return ret;
}

void url_log_path(const struct oci_client *c, const char *url, char *buf, size_t size)
{
	CURLU *u = curl_url();
	char *path = NULL, *host = NULL;

	snprintf(buf, size, "(unparsable URL)");
	if (!u)
		return;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
		/* The query is left out: upload URLs carry signed state. */
		if (url_same_origin(c, url) ||
		    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
			snprintf(buf, size, "%s", path);
		else
			snprintf(buf, size, "%s%s", host, path);
	}
	curl_free(path);
	curl_free(host);
	curl_url_cleanup(u);
}

char *url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, j = 0, len = strlen(s);
	char *out = malloc(3 * len + 1);

	if (!out)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch)) {
			out[j++] = (char)ch;
		} else {
			out[j++] = '%';
			out[j++] = hex[ch >> 4];
			out[j++] = hex[ch & 15];
		}
	}
	out[j] = '\0';
	return out;
}
