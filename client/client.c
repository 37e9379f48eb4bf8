/*
 * client.c - the client object: options, the curl share handle and the
 * pool of idle easy handles.
 *
 * The share handle holds DNS and TLS sessions only. libcurl documents that
 * a shared connection cache must not be used by concurrent threads (curl
 * KNOWN_BUGS, issues #4915 and #13347), so keep-alive comes instead from a
 * pool of idle easy handles, each keeping its own live connections.
 */
#include "client/http_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/log.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	struct oci_client *c = ud;

	(void)h;
	(void)access;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	struct oci_client *c = ud;

	(void)h;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_locks[data]);
}

/* A registry is "host[:port]": anything else could smuggle a path,
 * credentials or a second URL into every request. */
static bool registry_valid(const char *r)
{
	size_t i, len = r ? strlen(r) : 0;

	if (len == 0 || len > 255)
		return false;
	for (i = 0; i < len; i++) {
		char ch = r[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr(".-:[]_", ch)))
			return false;
	}
	return true;
}

/* Idle handles to keep: HTTP_POOL_MAX, or fewer when the descriptor limit
 * is low, so that idle connections (HTTP_HANDLE_CONNS each) never hold
 * more than an eighth of the descriptors the daemon may open. */
static size_t pool_size(void)
{
	struct rlimit rl;
	rlim_t n;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return HTTP_POOL_MAX;
	n = rl.rlim_cur / 8 / HTTP_HANDLE_CONNS;
	if (n < 1)
		return 1;
	return n < HTTP_POOL_MAX ? (size_t)n : HTTP_POOL_MAX;
}

static char *dup_opt(const char *s, bool *fail)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*fail = true;
	return d;
}

int oci_client_new(const struct oci_client_opts *opts, struct oci_client **out)
{
	struct oci_client *c;
	bool fail = false;
	int i, ret;

	*out = NULL;
	if (!registry_valid(opts->registry)) {
		log_err("client: invalid registry address \"%s\"",
			opts->registry ? opts->registry : "");
		return -EINVAL;
	}
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		log_err("client: curl_global_init: %s", curl_easy_strerror(global_rc));
		return -EIO;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	pthread_mutex_init(&c->pool_lock, NULL);
	pthread_mutex_init(&c->auth_lock, NULL);
	atomic_init(&c->requests, 0);
	c->pool_max = pool_size();
	c->plain_http = opts->plain_http;
	c->insecure = opts->insecure;
	c->connect_timeout = opts->connect_timeout > 0 ? opts->connect_timeout
						       : OCI_CONNECT_TIMEOUT_DEFAULT;
	c->low_speed_time =
	    opts->low_speed_time > 0 ? opts->low_speed_time : OCI_IO_TIMEOUT_DEFAULT;
	c->registry = dup_opt(opts->registry, &fail);
	c->ca_file = dup_opt(opts->ca_file, &fail);
	c->cert_file = dup_opt(opts->cert_file, &fail);
	c->key_file = dup_opt(opts->key_file, &fail);
	if (auth_creds_init(c, opts->username, opts->password, opts->identity_token))
		fail = true;
	if (asprintf(&c->base, "%s://%s", c->plain_http ? "http" : "https",
		     opts->registry) < 0) {
		c->base = NULL;
		fail = true;
	}
	c->share = curl_share_init();
	if (fail || !c->share)
		goto nomem;
	/* A missing certificate file is the user's typo: say so now rather
	 * than failing every request with a TLS error. */
	ret = tls_check_files(c);
	if (!ret && !c->plain_http)
		ret = tls_certs_d(c);
	if (ret) {
		oci_client_free(c);
		return ret;
	}
	if (curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) ||
	    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) ||
	    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION))
		goto nomem;
	*out = c;
	return 0;
nomem:
	oci_client_free(c);
	return -ENOMEM;
}

void oci_client_free(struct oci_client *c)
{
	size_t i;

	if (!c)
		return;
	mirror_set_free(c->mirrors);
	for (i = 0; i < c->n_pool; i++)
		curl_easy_cleanup(c->pool[i]);
	if (c->share)
		curl_share_cleanup(c->share);
	auth_free(c);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->pool_lock);
	pthread_mutex_destroy(&c->auth_lock);
	free(c->registry);
	free(c->base);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->certs_d_ca);
	free(c);
}

const char *oci_client_base_url(const struct oci_client *c)
{
	return c->base;
}

void oci_client_cancel(struct oci_client *c)
{
	atomic_store(&c->cancelled, true);
	if (c->mirrors)
		mirror_set_cancel(c->mirrors);
}

uint64_t oci_client_requests(const struct oci_client *c)
{
	uint64_t n = atomic_load(&((struct oci_client *)c)->requests);

	return c->mirrors ? n + mirror_set_requests(c->mirrors) : n;
}

CURL *client_handle_get(struct oci_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->pool_lock);
	if (c->n_pool)
		h = c->pool[--c->n_pool];
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

void client_handle_put(struct oci_client *c, CURL *h)
{
	pthread_mutex_lock(&c->pool_lock);
	if (c->n_pool < c->pool_max) {
		c->pool[c->n_pool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}
