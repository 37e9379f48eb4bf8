/*
 * mirror.h - pull-through mirrors in front of a registry: reads go to the
 * first mirror that answers, writes and the catalog to the registry (the
 * origin).
 *
 * A mirror is the CNCF distribution registry in proxy mode
 * (proxy.remoteurl), a Harbor proxy-cache project (its name is the PREFIX)
 * or zot with its sync extension: anything that serves the origin's
 * repositories under PREFIX/<repo> through the distribution API.
 *
 * Contract:
 * - Set up once, before the client is shared (oci_mirrors_setup); from then
 *   on the origin's client routes by itself: oci_tags, oci_manifest_get,
 *   oci_manifest_get_many and oci_blob_get_into on the origin's client try
 *   each mirror in order, then the origin. The catalog, oci_ping,
 *   oci_manifest_head (asked before a push only), oci_blob_exists and every
 *   write go to the origin only: a pull-through mirror's catalog lists only
 *   what it has cached, and a mirror takes no pushes.
 * - What makes a read go on to the next mirror, then the origin: no
 *   connection, a timeout, a 5xx or 429, 401/403 (the mirror's own
 *   credentials), any other refusal, a 404 (the origin may have what the
 *   mirror lacks), and a blob whose bytes do not hash to its digest. A
 *   mirror that failed otherwise than with a 404 is skipped for
 *   MIRROR_BACKOFF_MS, so a dead mirror costs one failed request, not one
 *   per read; one log line when it fails over, one when it answers again.
 *   A mirror's client makes one attempt per request (the origin is its
 *   retry) and logs its own failures at debug level.
 * - A mirror is trusted with bytes only: a manifest by digest is checked
 *   against it (oci_manifest_get), and a blob read from a mirror is hashed
 *   before the call returns; on a mismatch the file is cut back and the
 *   blob read from the next mirror or the origin. A blob is taken from a
 *   mirror only into an empty file (offset 0), which it can check whole;
 *   otherwise it comes from the origin. A manifest by tag carries no
 *   digest to check: it follows the ttl as the origin's does.
 * - A repository this client wrote to (a manifest put or delete) reads its
 *   tag list and manifests by tag from the origin for the pin time given
 *   at setup (at least MIRROR_PIN_S), counted from the last write: a
 *   mirror's tag list may lag the origin by its own cache time, and the
 *   mount must show its own push or delete at once. At most
 *   MIRROR_PINS_MAX repositories are pinned; the oldest pin goes first.
 * - Credentials: each mirror's from its host's own entry in the
 *   credentials config, never the origin's; read again by
 *   oci_mirrors_reload_creds (SIGHUP).
 * - Threads: everything is thread-safe once set up; no lock is held
 *   across a request.
 * - Errors: 0 or -errno, one log line per failure.
 */
#ifndef CHARTFS_MIRROR_H
#define CHARTFS_MIRROR_H

#include <stdbool.h>

#include "client/oci.h"
#include "common/compiler.h"

/* Mirrors one registry may have. */
#define MIRRORS_MAX 8
/* How long a mirror that failed is skipped (ms). */
#define MIRROR_BACKOFF_MS 30000
/* The least time a repository written through the mount reads its names
 * from the origin (s); the ttl when longer. */
#define MIRROR_PIN_S 60
/* Repositories pinned to the origin at once. */
#define MIRROR_PINS_MAX 256

struct oci_mirror_opts {
	/* "[http://]HOST[:PORT][/PREFIX],..." in the order they are tried. */
	const char *specs;
	const char *registry_config;  /* -o registry_config, or NULL */
	const char *plain_http_hosts; /* "a,b:5000": mirrors spoken to over HTTP */
	unsigned pin_s;		      /* see above; MIRROR_PIN_S when less */
};

/* Put the mirrors of mo->specs in front of origin's reads. base gives the
 * TLS files and timeouts each mirror's client shares with the origin's
 * (registry and credentials are each mirror's own). 0, or -EINVAL for a
 * spec that names no mirror (one line), -ENOMEM. Called once, before
 * origin is used by more than one thread. */
int oci_mirrors_setup(struct oci_client *origin, const struct oci_client_opts *base,
		      const struct oci_mirror_opts *mo) WUR;

/* The -o mirror values: entries joined by ';', each "SPEC[,SPEC...]" (the
 * mirrors of a one-registry mount) or "ORIGIN=SPEC[,SPEC...]" (those of
 * ORIGIN, the only form an every-registry mount takes). Check every entry
 * (registry: the one-registry mount's host, or NULL for every registry):
 * 0, or -EINVAL with one line to stderr naming what is wrong. */
int oci_mirror_check(const char *all, const char *registry) WUR;
/* The specs for registry from all (malloc'd, "" when none), or NULL when
 * out of memory. */
char *oci_mirror_specs_for(const char *all, const char *registry);

/* Read every mirror's credentials again (SIGHUP). */
void oci_mirrors_reload_creds(struct oci_client *origin, const char *registry_config);

#endif
