/*
 * oci.h - the OCI distribution API over libcurl: catalog, tags, manifests,
 * blobs, uploads and deletes against one registry host.
 *
 * Contract:
 * - Threads: one oci_client is shared by every thread, and calls may run
 *   concurrently. Every transfer runs in the client's one curl multi handle,
 *   whose connection cache is the client's (HTTP/2 streams share one
 *   connection per host); DNS and TLS sessions are in a curl share handle.
 *   Each call blocks its thread until it ends, and may meanwhile run other
 *   calls' transfers (client.c). No lock is held across network I/O on the
 *   caller's behalf.
 * - Errors: every fallible function returns 0 or -errno, converted once here
 *   from CURLcode and HTTP status: 404/NAME_UNKNOWN/MANIFEST_UNKNOWN -> -ENOENT,
 *   401/403 -> -EACCES, 405/UNSUPPORTED -> -EOPNOTSUPP, 400 -> -EINVAL,
 *   connect/timeout/5xx/short or corrupt body -> -EIO, 429 -> -EAGAIN after
 *   retries. Each failure is logged once here ("client: GET <path>: <cause>").
 * - Ownership: outputs (struct oci_buf, struct strv) belong to the caller.
 * - Nothing here knows about FUSE or the cache; blobs are streamed to a file
 *   descriptor the caller provides.
 * - Credentials never appear in logs.
 * - Time: every call ends by io_timeout (the low_speed_time option) plus
 *   what it may carry at HTTP_MIN_RATE (64 KiB/s): a blob's declared size,
 *   an upload's length, or the cap of the answer (OCI_MANIFEST_MAX, 1 MiB
 *   for a listing page or a token, 64 KiB for an error), counted from the
 *   call's start across its retries and token requests; until an answer
 *   begins, only io_timeout plus the known size counts, so a stalled
 *   registry costs one io_timeout per call. A listing is one call: it ends
 *   by io_timeout plus what its pages carried (and one more page's cap) at
 *   that rate.
 */
#ifndef CHARTFS_OCI_H
#define CHARTFS_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "common/digest.h"
#include "common/strv.h"

/* Media types chartfs understands. */
#define OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MT_ARTIFACT "application/vnd.oci.artifact.manifest.v1+json"
#define OCI_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define HELM_MT_CONFIG "application/vnd.cncf.helm.config.v1+json"
#define HELM_MT_CHART "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
#define HELM_MT_CHART_LEGACY "application/tar+gzip"
#define HELM_MT_PROV "application/vnd.cncf.helm.chart.provenance.v1.prov"

/* Largest manifest accepted (distribution's own limit). */
#define OCI_MANIFEST_MAX (4u * 1024 * 1024)

struct oci_client;

/* -o connect_timeout and -o io_timeout when not given (seconds). */
#define OCI_CONNECT_TIMEOUT_DEFAULT 10
#define OCI_IO_TIMEOUT_DEFAULT 30

struct oci_client_opts {
	const char *registry;  /* "host[:port]", no scheme, no path */
	bool plain_http;       /* http:// instead of https:// */
	bool insecure;	       /* skip TLS verification */
	const char *ca_file;   /* extra CA bundle, or NULL */
	const char *cert_file; /* client certificate (mTLS), or NULL */
	const char *key_file;  /* its key, or NULL */
	const char *username;  /* basic credentials, or NULL for anonymous */
	const char *password;  /* ...; never logged */
	/* An OAuth2 refresh token (docker's "identitytoken"), POSTed to a
	 * bearer realm; or NULL. Never logged. */
	const char *identity_token;
	long connect_timeout; /* seconds; 0: OCI_CONNECT_TIMEOUT_DEFAULT */
	long low_speed_time;  /* seconds below 1 KiB/s before EIO; 0: the default */
};

struct oci_buf {
	char *data; /* NUL-terminated for convenience; len excludes the NUL */
	size_t len;
};

/* Result of one manifest fetch. */
struct oci_fetched {
	int err;		     /* 0 or -errno for this reference */
	struct oci_buf body;	     /* the manifest bytes, verbatim */
	char media_type[128];	     /* Content-Type without parameters */
	char digest[DIGEST_STR_MAX]; /* sha256 of body (verified) */
	/* Who served it: the registry's or a mirror's "host[:port][/prefix]"
	 * (client/mirror.h), a string that lives as long as the client. */
	const char *source;
};

/* Create a client; copies every string in opts. */
int oci_client_new(const struct oci_client_opts *opts, struct oci_client **out) WUR;
void oci_client_free(struct oci_client *c);
/* Replace c's credentials (NULLs: anonymous), as when they were read again
 * (SIGHUP): requests from now on use them, and tokens got with the old
 * ones are forgotten. Thread-safe. 0 or -ENOMEM (the old ones stay). */
int oci_client_set_creds(struct oci_client *c, const char *username, const char *password,
			 const char *identity_token) WUR;
/* "https://host:port" (no trailing slash), for messages and xattrs. */
const char *oci_client_base_url(const struct oci_client *c);

/* GET /v2/: 0 when the registry answers as a registry (200, or 401 with a
 * challenge we can satisfy), else -errno with one log line. */
int oci_ping(struct oci_client *c) WUR;

/* Every repository name from /v2/_catalog, following Link headers.
 * -EOPNOTSUPP when the registry refuses the catalog (401/403/404/405). */
int oci_catalog(struct oci_client *c, struct strv *out) WUR;

/* Every tag of repo, following Link headers; -ENOENT if the repo is unknown. */
int oci_tags(struct oci_client *c, const char *repo, struct strv *out) WUR;

/* GET a manifest by tag or digest with the OCI and docker Accept types.
 * The body's sha256 is checked against ref when ref is a digest and against
 * Docker-Content-Digest when present; bodies over OCI_MANIFEST_MAX are -EIO. */
int oci_manifest_get(struct oci_client *c, const char *repo, const char *ref,
		     struct oci_fetched *out) WUR;
/* Fetch several references of one repo concurrently (at most max_parallel in
 * flight). Each result has its own err; returns 0 unless nothing could run. */
int oci_manifest_get_many(struct oci_client *c, const char *repo, const char *const *refs,
			  size_t n, unsigned max_parallel,
			  struct oci_fetched *results) WUR;
/* Release the body of a fetched result. */
void oci_fetched_clear(struct oci_fetched *f);

/* HEAD a manifest: its digest (0), -ENOENT when absent. */
int oci_manifest_head(struct oci_client *c, const char *repo, const char *ref,
		      char digest[DIGEST_STR_MAX]) WUR;

/* Stream a blob of the declared size into fd (written from its current
 * offset, following redirects without forwarding credentials). A body
 * longer than size is -EIO and nothing past size is written. Does not
 * verify the digest: the cache does, as it writes. where names fd (e.g.
 * "the cache /var/cache/chartfs", or NULL) in the one log line of a failed
 * write into it, which gives the reason too: "client: GET <path>: cannot
 * write the blob into <where>: No space left on device". That failure is
 * the write's -errno (-ENOSPC), as it is. */
int oci_blob_get_into(struct oci_client *c, const char *repo, const char *digest,
		      uint64_t size, int fd, const char *where) WUR;

/* HEAD a blob: 0 if present, -ENOENT if not. */
int oci_blob_exists(struct oci_client *c, const char *repo, const char *digest) WUR;

/* Upload size bytes read from fd (from offset 0) as blob digest: POST, then
 * PUT (monolithic) or PATCH chunks + PUT for large blobs. */
int oci_blob_upload(struct oci_client *c, const char *repo, const char *digest, int fd,
		    uint64_t size) WUR;

/* PUT a manifest under ref (tag or digest) with the given Content-Type. */
int oci_manifest_put(struct oci_client *c, const char *repo, const char *ref,
		     const char *media_type, const void *body, size_t len) WUR;
/* The same for a manifest with a subject: *subject says whether the
 * registry answered with an OCI-Subject header, i.e. it keeps the
 * referrers itself (distribution-spec "Pushing Manifests with Subject");
 * without one, the pusher updates the referrers tag schema. */
int oci_manifest_put_subject(struct oci_client *c, const char *repo, const char *ref,
			     const char *media_type, const void *body, size_t len,
			     bool *subject) WUR;

/* DELETE a manifest by tag or digest. -EINVAL when the registry refuses a tag
 * (distribution 2.8: 400 DIGEST_INVALID), -EOPNOTSUPP when deletes are
 * disabled (405). */
int oci_manifest_delete(struct oci_client *c, const char *repo, const char *ref) WUR;

/* End every transfer in flight and refuse new ones (-ECANCELED): for a
 * daemon that exits while background work waits on a stalled registry.
 * Thread-safe; cannot be undone. */
void oci_client_cancel(struct oci_client *c);

/* Counters since the client was made (for the root xattrs and benchmarks). */
uint64_t oci_client_requests(const struct oci_client *c);

/* ---- referrers and small blobs (client/referrers.c) --------------------- */

/* The largest referrers answer read (an index of referrer descriptors). */
#define OCI_REFERRERS_MAX (1u * 1024 * 1024)
/* The largest blob oci_blob_get_mem reads; callers cap lower. */
#define OCI_BLOB_MEM_MAX (4u * 1024 * 1024)

/* GET /v2/<repo>/referrers/<digest>[?artifactType=...]: the image index
 * bytes (at most OCI_REFERRERS_MAX) into out. A registry without the
 * referrers API (404, as distribution 2.8 answers; 405; 400; or a 200 that
 * is no image index) is -EOPNOTSUPP, logged at debug only: the caller
 * falls back to the referrers tag schema (tag sha256-<hex>, read with
 * oci_manifest_get). An index the registry did not filter may list other
 * artifact types: the caller filters again. */
int oci_referrers(struct oci_client *c, const char *repo, const char *digest,
		  const char *artifact_type, struct oci_buf *out) WUR;

/* GET a small blob of the declared size into memory (out, NUL-terminated).
 * Its sha256 and length are checked: other bytes are -EIO (one log line),
 * a size over OCI_BLOB_MEM_MAX -EFBIG. */
int oci_blob_get_mem(struct oci_client *c, const char *repo, const char *digest,
		     uint64_t size, struct oci_buf *out) WUR;

#endif
