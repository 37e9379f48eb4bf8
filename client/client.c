/*
 * client.c - the client object: options, the curl share handle, the multi
 * handle every transfer runs in, and the pool of idle easy handles.
 *
 * One connection cache for the client is what lets HTTP/2 carry parallel
 * requests as streams of one connection. A share handle cannot give that:
 * libcurl documents that a shared connection cache must not be used by
 * concurrent threads (curl KNOWN_BUGS, issues #4915 and #13347), and
 * separate curl_easy_perform calls do not multiplex on one connection: with
 * libcurl 7.88, 8 threads sharing CURL_LOCK_DATA_CONNECT made 80 requests
 * to an HTTP/2 registry over 74 connections, and with CURLOPT_PIPEWAIT
 * they hung, each polling for a connection another thread drove. So
 * every transfer is handed to the client's multi handle (CURLPIPE_MULTIPLEX,
 * CURLOPT_PIPEWAIT) and its caller waits. Rather than a thread of its own,
 * which a fork (the daemon detaching after its first request) would lose,
 * one of the waiting callers drives the multi handle ("the driver") and,
 * when its own transfer ends, hands the driving to another waiter. A single
 * request thus costs no thread switch, as with curl_easy_perform.
 * The share handle keeps DNS and TLS sessions.
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

/* One transfer handed to the multi handle, on its caller's stack. */
struct client_job {
	CURL *h;
	CURLcode rc;
	bool added; /* in the multi handle (only the driver reads or sets it) */
	bool done;
	bool lead; /* this job's caller is to drive the multi handle */
	pthread_cond_t cv;
	struct client_job *prev, *next;
};

/* The multi handle's settings: multiplex where offered, wait for a
 * connection that may multiplex rather than open another, and keep as many
 * idle connections as the pool of handles would. */
static int multi_setup(struct oci_client *c)
{
	c->multi = curl_multi_init();
	if (!c->multi)
		return -ENOMEM;
	if (curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) ||
	    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
			      (long)(c->pool_max * HTTP_HANDLE_CONNS)))
		return -ENOMEM;
	return 0;
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
	pthread_mutex_init(&c->io_lock, NULL);
	atomic_init(&c->requests, 0);
	atomic_init(&c->h2, false);
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
	if (fail || !c->share || multi_setup(c))
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
	/* The multi handle first: its connections use the shared sessions. */
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->share)
		curl_share_cleanup(c->share);
	auth_free(c);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->pool_lock);
	pthread_mutex_destroy(&c->auth_lock);
	pthread_mutex_destroy(&c->io_lock);
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
	/* The driver, asleep in curl_multi_poll, ends every transfer. */
	curl_multi_wakeup(c->multi);
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

bool client_multiplexed(const struct oci_client *c)
{
	return atomic_load(&((struct oci_client *)c)->h2);
}

/* ---- the multi handle ---------------------------------------------------- */

/* j ends with rc: out of the list, and its caller woken. io_lock held. */
static void job_finish(struct oci_client *c, struct client_job *j, CURLcode rc)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		c->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->prev = j->next = NULL;
	j->rc = rc;
	j->done = true;
	pthread_cond_signal(&j->cv);
}

/* Add the jobs handed in since the last look; on a cancelled client, end
 * every job instead, whatever state its transfer is in. io_lock held. */
static void jobs_admit(struct oci_client *c)
{
	bool cancel = atomic_load(&c->cancelled);
	struct client_job *j = c->jobs, *next;

	for (; j; j = next) {
		next = j->next;
		if (cancel) {
			if (j->added)
				curl_multi_remove_handle(c->multi, j->h);
			job_finish(c, j, CURLE_ABORTED_BY_CALLBACK);
		} else if (!j->added) {
			if (curl_multi_add_handle(c->multi, j->h) == CURLM_OK)
				j->added = true;
			else
				job_finish(c, j, CURLE_OUT_OF_MEMORY);
		}
	}
}

/* End the jobs whose transfers are over. */
static void jobs_reap(struct oci_client *c)
{
	struct client_job *j;
	CURLMsg *msg;
	CURLcode rc;
	char *priv;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		priv = NULL;
		rc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		j = (struct client_job *)(void *)priv;
		/* msg is freed by the removal: read it all first. */
		curl_multi_remove_handle(c->multi, msg->easy_handle);
		if (!j)
			continue;
		pthread_mutex_lock(&c->io_lock);
		job_finish(c, j, rc);
		pthread_mutex_unlock(&c->io_lock);
	}
}

/* Drive the multi handle until me is done, then hand the driving to the
 * caller of a job still running, if any. Only the driver calls into the
 * multi handle (but for curl_multi_wakeup), so curl's callbacks for every
 * transfer run here, one at a time. */
static void drive(struct oci_client *c, struct client_job *me)
{
	int running;

	for (;;) {
		pthread_mutex_lock(&c->io_lock);
		jobs_admit(c);
		pthread_mutex_unlock(&c->io_lock);
		if (me->done)
			break;
		curl_multi_perform(c->multi, &running);
		jobs_reap(c);
		if (me->done)
			break;
		curl_multi_poll(c->multi, NULL, 0, HTTP_POLL_MS, NULL);
	}
	pthread_mutex_lock(&c->io_lock);
	c->driving = c->jobs != NULL;
	if (c->jobs) {
		c->jobs->lead = true;
		pthread_cond_signal(&c->jobs->cv);
	}
	pthread_mutex_unlock(&c->io_lock);
}

CURLcode client_perform(struct oci_client *c, CURL *h)
{
	struct client_job j = {.h = h};

	if (atomic_load(&c->cancelled))
		return CURLE_ABORTED_BY_CALLBACK;
	pthread_cond_init(&j.cv, NULL);
	curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)&j);
	pthread_mutex_lock(&c->io_lock);
	j.next = c->jobs;
	if (c->jobs)
		c->jobs->prev = &j;
	c->jobs = &j;
	if (c->driving) {
		curl_multi_wakeup(c->multi);
	} else {
		c->driving = true;
		j.lead = true;
	}
	while (!j.done) {
		if (j.lead) {
			pthread_mutex_unlock(&c->io_lock);
			drive(c, &j);
			pthread_mutex_lock(&c->io_lock);
		} else {
			pthread_cond_wait(&j.cv, &c->io_lock);
		}
	}
	pthread_mutex_unlock(&c->io_lock);
	pthread_cond_destroy(&j.cv);
	curl_easy_setopt(h, CURLOPT_PRIVATE, NULL);
	return j.rc;
}
