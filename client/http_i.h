/*
 * http_i.h - the request core shared by the client's files: one HTTP exchange
 * with retries, the 401 challenge flow, error mapping and logging.
 *
 * Contract: http_request() returns 0 for a 2xx answer, else -errno, and logs
 * the failure once ("client: METHOD /path: cause") unless the caller asked
 * for that errno to be quiet. Credentials are only attached to URLs on the
 * registry's own origin. struct http_resp is owned by the caller
 * (http_resp_clear).
 *
 * struct oci_client is defined here, not in client.c, because every file of
 * the client reads it: oci.h hands it out opaque, and this header is where
 * its files meet. Each function below carries the prefix of the file that
 * defines it (client_, http_, url_, auth_, tls_).
 */
#ifndef CHARTFS_HTTP_I_H
#define CHARTFS_HTTP_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>

#include "client/oci.h"

#define HTTP_POOL_MAX 16
/* Idle connections the client's multi handle keeps, per pooled handle (the
 * registry, and the object store a blob redirects to): with HTTP_POOL_MAX
 * handles, at most 32 idle descriptors. */
#define HTTP_HANDLE_CONNS 2
/* Streams one listing keeps in flight over HTTP/2, where they share one
 * connection: HTTP_H2_FANOUT per -o parallel, at most HTTP_H2_STREAMS
 * (libcurl's own default for one connection). */
#define HTTP_H2_STREAMS 100
#define HTTP_H2_FANOUT 16
/* How long the thread driving the multi handle sleeps at most between two
 * looks at its transfers (progress callbacks, deadlines, cancellation). */
#define HTTP_POLL_MS 1000
/* The slowest average rate a transfer may keep: every call ends by
 * io_timeout plus what it may carry (its declared size, or its body cap) at
 * this rate, across its retries and token requests. */
#define HTTP_MIN_RATE (64u * 1024)

struct auth_scope;
struct auth_creds;
struct client_job;

struct oci_client {
	char *registry;
	char *base; /* "scheme://host[:port]" */
	bool plain_http;
	bool insecure;
	char *ca_file;
	char *cert_file;
	char *key_file;
	/* Basic credentials or an identity token (auth.c): swapped whole by
	 * oci_client_set_creds under auth_lock; never logged. */
	struct auth_creds *creds;
	unsigned creds_gen; /* bumped at each swap: older tokens are not kept */
	char *certs_d_ca;   /* certs.d/<host>/ca.crt, or NULL */
	long connect_timeout;
	long low_speed_time;

	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	/* Every transfer runs in this one multi handle, so its connection cache
	 * is the client's: one HTTP/2 connection per host carries the parallel
	 * requests as streams, and HTTP/1.1 connections are kept alive there.
	 * No thread of its own drives it: one of the callers waiting on a
	 * transfer does (client.c), and hands that over when its own ends. */
	CURLM *multi;
	pthread_mutex_t io_lock;
	struct client_job *jobs; /* handed in and not done (io_lock) */
	bool driving;		 /* a caller drives the multi handle (io_lock) */
	atomic_bool h2;		 /* the registry's last answer came over HTTP/2 */

	/* Idle easy handles, reset and reused (their connections live in the
	 * multi handle's cache). */
	pthread_mutex_t pool_lock;
	CURL *pool[HTTP_POOL_MAX];
	size_t n_pool;
	size_t pool_max; /* HTTP_POOL_MAX, less under a low descriptor limit */

	/* Auth state (auth.c). The default for a scope not challenged yet:
	 * what the registry's root (/v2/) asked for, or the last Bearer realm.
	 * Per scope: what its own challenge asked for, and its token. */
	pthread_mutex_t auth_lock;
	int auth_scheme;
	char *auth_realm;
	char *auth_service;
	struct auth_scope *scopes;
	atomic_bool realm_refused_logged; /* the clear-text realm line, once */

	atomic_uint_fast64_t requests;
	atomic_bool cancelled; /* oci_client_cancel: every transfer ends now */

	/* mirror.c: the mirrors reads try first (set up once, or NULL), and
	 * whether this is a mirror's client (one attempt per request, its
	 * failures logged at debug: the mirror layer says them once). */
	struct mirror_set *mirrors;
	bool is_mirror;
};

/* Errnos a caller expects and handles itself: logged at debug only. */
enum {
	HTTP_QUIET_ENOENT = 1 << 0,
	HTTP_QUIET_EACCES = 1 << 1,
	HTTP_QUIET_EOPNOTSUPP = 1 << 2,
	HTTP_QUIET_EINVAL = 1 << 3,
	HTTP_QUIET_ALL = 1 << 4, /* the caller reports rs->cause itself */
};

struct http_req {
	const char *method; /* GET HEAD POST PUT PATCH DELETE */
	const char *url;    /* absolute */
	const char *scope;  /* auth scope, or NULL (ping) */
	bool no_auth;	    /* the token request itself */
	const char *accept;
	const char *content_type;
	const char *content_range;
	const char *authorization; /* preset header value (token request only) */
	/* Body from memory, or from in_fd (pread at in_off, in_len bytes). */
	const void *body;
	size_t body_len;
	int in_fd; /* -1 when unused */
	uint64_t in_off;
	uint64_t in_len;
	/* A 2xx body is streamed into out_fd when >= 0, else kept in memory up
	 * to max_body bytes (0: 1 MiB). */
	int out_fd;
	const char *out_name; /* what out_fd is, for the line of a failed write */
	size_t max_body;
	bool follow; /* follow redirects (GET/HEAD only) */
	unsigned quiet;
	/* With out_fd: the exact size the descriptor declares. A body one
	 * byte longer is -EIO and nothing past out_size is ever written. */
	uint64_t out_size;
	/* CLOCK_MONOTONIC ms by which the call must end whatever it carries
	 * (a listing's deadline), or 0. */
	int64_t until_ms;
};

struct http_resp {
	long status;
	struct oci_buf body;
	char *location;
	char *link_next;
	char *content_type;
	char *docker_digest;
	/* An OCI-Subject header came: the registry processed a pushed
	 * manifest's subject (it has the referrers API). */
	bool oci_subject;
	/* The most useful WWW-Authenticate value seen (one offering Bearer over
	 * one offering Basic over anything else), and the best scheme in it. */
	char *www_auth;
	int www_auth_scheme;
	long retry_after;
	char errcode[48]; /* first code of an OCI error body */
	char cause[320];  /* why it failed, as logged */
};

/* client.c: an easy handle, reset; and back. */
CURL *client_handle_get(struct oci_client *c);
void client_handle_put(struct oci_client *c, CURL *h);
/* Run h to its end in the client's multi handle, as curl_easy_perform
 * would, blocking the calling thread (which may drive other callers'
 * transfers meanwhile: h's callbacks may run on another thread). A
 * cancelled client ends it with CURLE_ABORTED_BY_CALLBACK. */
CURLcode client_perform(struct oci_client *c, CURL *h);
/* Whether the registry answers over HTTP/2, as far as the last answer
 * tells (false before any). */
bool client_multiplexed(const struct oci_client *c);

int http_request(struct oci_client *c, const struct http_req *rq,
		 struct http_resp *rs) WUR;
/* How long bytes take at HTTP_MIN_RATE, in ms (saturating). */
int64_t http_carry_ms(uint64_t bytes);
void http_resp_clear(struct http_resp *rs);

/* An empty request: no body, no output fd. */
#define HTTP_REQ_INIT                                                                    \
	{                                                                                \
		.in_fd = -1, .out_fd = -1                                                \
	}

/* http.c */
/* The target of the rel="next" entry of a Link header (malloc'd), or NULL.
 * Not static so tests/fuzz/fuzz_headers.c can reach it. */
char *http_link_next(const char *v);
/* Why the last http_request of this thread failed, as it was logged: a
 * buffer of the thread's (HTTP_CAUSE_MAX bytes), which a caller may empty
 * before a call to tell whether the call's failure came from a request. */
#define HTTP_CAUSE_MAX 320
char *http_last_cause(void);

/* oci.c: the reads below ask c itself, never its mirrors (mirror.c routes
 * the public ones). */
int oci_tags_here(struct oci_client *c, const char *repo, struct strv *out) WUR;
int oci_manifest_get_here(struct oci_client *c, const char *repo, const char *ref,
			  struct oci_fetched *out) WUR;
int oci_manifest_get_many_here(struct oci_client *c, const char *repo,
			       const char *const *refs, size_t n, unsigned max_parallel,
			       struct oci_fetched *results) WUR;
int oci_blob_get_here(struct oci_client *c, const char *repo, const char *digest,
		      uint64_t size, int fd, const char *where) WUR;

/* mirror.c: the reads of a client with mirrors, and its upkeep. */
struct mirror_set;
int mirror_tags(struct oci_client *c, const char *repo, struct strv *out) WUR;
int mirror_manifest_get(struct oci_client *c, const char *repo, const char *ref,
			struct oci_fetched *out) WUR;
int mirror_manifest_get_many(struct oci_client *c, const char *repo,
			     const char *const *refs, size_t n, unsigned max_parallel,
			     struct oci_fetched *results) WUR;
int mirror_blob_get(struct oci_client *c, const char *repo, const char *digest,
		    uint64_t size, int fd, const char *where) WUR;
/* c is about to change repo (a manifest put or delete): its names come
 * from the origin for the pin time. */
void mirror_note_write(struct oci_client *c, const char *repo);
void mirror_set_free(struct mirror_set *s);
void mirror_set_cancel(struct mirror_set *s);
uint64_t mirror_set_requests(const struct mirror_set *s);

/* url.c */
/* ref resolved against base (RFC 3986) into *out; -EPERM if same_origin is asked
 * and it leaves the registry's origin, -EINVAL if it is not http(s). */
int url_resolve(const struct oci_client *c, const char *base, const char *ref,
		bool same_origin, char **out) WUR;
/* True iff a and b are one origin (RFC 6454): same scheme, host and port
 * (an omitted port is the scheme's default), and neither names a user.
 * Every "is this the same place" question of the client asks this. */
bool url_origin_eq(const char *a, const char *b);
/* url_origin_eq(the registry's base, url). */
bool url_same_origin(const struct oci_client *c, const char *url);
/* The part of url that may be logged: the path, and the host if foreign. */
void url_log_path(const struct oci_client *c, const char *url, char *buf, size_t size);
/* Percent-encode s for a query value. */
char *url_escape(const char *s);

/* auth.c */
enum { AUTH_NONE, AUTH_BASIC, AUTH_BEARER };
/* One parsed WWW-Authenticate challenge. */
struct challenge {
	int scheme;
	char *realm;
	char *service;
	char *scope;
	char *error; /* e.g. "insufficient_scope" (RFC 6750 section 3.1) */
};
/* Parse a header value, which may list several challenges (RFC 7235
 * section 4.1): the first Bearer one, else the first Basic one. 0, -EINVAL
 * (neither offered) or -ENOMEM; free with auth_challenge_clear. Not static so
 * tests/fuzz/fuzz_headers.c can reach them. */
int auth_parse_challenge(const char *h, struct challenge *ch) WUR;
void auth_challenge_clear(struct challenge *ch);
/* The Authorization header for a request in scope ("Authorization: ..."),
 * or NULL in *hdr when nothing is known to be needed. May fetch a token. */
int auth_header(struct oci_client *c, const char *scope, char **hdr, char *why,
		size_t why_len) WUR;
/* Learn from a 401: obtain what the retry needs, or -EACCES with why. */
int auth_challenge(struct oci_client *c, const char *www_auth, const char *scope,
		   bool sent_credentials, char *why, size_t why_len) WUR;
void auth_free(struct oci_client *c);
/* Set c's first credentials (at creation): 0 or -ENOMEM. */
int auth_creds_init(struct oci_client *c, const char *username, const char *password,
		    const char *identity_token) WUR;
/* Append the registry and the scope to why: the one line a refused
 * request logs says who refused what (never with a secret). */
void auth_denied_cause(const struct oci_client *c, const char *scope, char *why,
		       size_t why_len);
/* Overwrite then free a secret. */
void auth_free_secret(char *s);

/* tls.c */
/* The per-host convention of docker and helm: ${CHARTFS_CERTS_D:-
 * /etc/docker/certs.d}/<host>/ca.crt, client.cert and client.key, for
 * what the options leave unset. 0 or -errno. */
int tls_certs_d(struct oci_client *c) WUR;
/* Check that the TLS files exist and are readable, logging which is not. */
int tls_check_files(const struct oci_client *c) WUR;
/* Verification, extra CAs and the client certificate on one handle. */
void tls_setup(struct oci_client *c, CURL *h);

#endif
