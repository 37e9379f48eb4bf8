/*
 * hosts.h - every registry under one mount: the first directory level is a
 * registry host, each with its own client and model, made on first use.
 *
 *   /                                  the hosts (config.json's and visited)
 *   /ghcr.io/acme/charts/x/1.0.0/...   host ghcr.io, then the usual path model
 *
 * A name is tried as a host only if it looks like one the way docker tells a
 * registry from a repository: it has a '.' or a ':' (a port), or it is
 * "localhost". Anything else (.git, autorun.inf, a typo) is ENOENT without a
 * DNS lookup. A host is pinged once when first used; a host that does not
 * answer as a registry is remembered for a few seconds (ENOENT, or the
 * error), then tried again.
 *
 * Contract:
 * - Threads: all functions are thread-safe; a host being set up (DNS, TLS,
 *   ping, a credential helper) blocks only the lookups of that same host.
 * - Models returned stay valid until hosts_free: a host is never dropped.
 * - Errors: 0 or -errno.
 * - No FUSE here.
 */
#ifndef CHARTFS_HOSTS_H
#define CHARTFS_HOSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/blobcache.h"
#include "client/oci.h"
#include "common/compiler.h"
#include "model/model.h"

struct hosts;

struct hosts_opts {
	/* The client settings every host shares (registry, credentials unset:
	 * each host finds its own in the config files). */
	struct oci_client_opts client;
	const char *registry_config;  /* -o registry_config, or NULL */
	const char *plain_http_hosts; /* "a,b:5000": hosts spoken to over HTTP */
	struct model_opts model;      /* prefix unset */
	/* -o mirror: "ORIGIN=SPEC,...;..." (client/mirror.h), or NULL. */
	const char *mirror;
};

/* Make the client for one registry (co) and check that it answers as one
 * (GET /v2/; not when offline). Anonymous, a challenge is an answer:
 * public repositories may still be readable, the rest is EACCES. With
 * credentials (from creds_source, for the log line), a refusal is -EACCES:
 * they are wrong, and a mount that looked empty would hide it. On failure
 * *out is NULL and one log line names the registry and the cause. Used for
 * the one-registry mount too. */
int hosts_connect(const struct oci_client_opts *co, bool offline,
		  const char *creds_source, struct oci_client **out) WUR;

/* Copies what it needs of o; the cache is shared by every host. */
int hosts_new(const struct hosts_opts *o, struct blobcache *bc, struct hosts **out) WUR;
void hosts_free(struct hosts *h);

/* The model of host name[0..len) (set up on first use). -ENOENT for a name
 * that is no host or a host that is not a registry. */
int hosts_get(struct hosts *h, const char *name, size_t len, struct model **out) WUR;

/* Call fill for each host the root lists, in sorted order: those named in
 * the credentials config plus those visited. Stops at fill's first error. */
int hosts_list(struct hosts *h, int (*fill)(void *arg, const char *host), void *arg) WUR;

/* Requests sent by every host's client (the root's user.chartfs.requests). */
uint64_t hosts_requests(struct hosts *h);

/* Async-signal-safe: every model forgets its names at its next use (SIGHUP). */
void hosts_forget_soon(struct hosts *h);
/* Read every ready host's credentials again (SIGHUP, from a thread that
 * may block: credential helpers run here). */
void hosts_reload_creds(struct hosts *h);

#endif
