/*
 * creds.h - registry credentials found the way helm and docker find them:
 * config.json files (auths, credHelpers, credsStore), credential helpers,
 * and a password file.
 *
 * Contract:
 * - Lookup order, first match wins: -o registry_config=FILE,
 *   $HELM_REGISTRY_CONFIG, $HELM_CONFIG_HOME/registry/config.json,
 *   ${XDG_CONFIG_HOME:-~/.config}/helm/registry/config.json,
 *   $DOCKER_CONFIG/config.json, ~/.docker/config.json. Missing files are
 *   skipped (except an explicit registry_config). Within one file:
 *   credHelpers[host], then credsStore, then auths.
 * - Helpers run as docker-credential-<name> get, without a shell, with the
 *   server on stdin and a timeout; a non-zero exit means "not found".
 * - Errors: 0 found, -ENOENT nothing matched (anonymous), -EACCES a file
 *   whose mode is unsafe, -EINVAL a malformed file or value, -ENOMEM.
 *   Failures are logged once, never with a secret.
 * - Ownership: struct oci_creds belongs to the caller (oci_creds_clear
 *   wipes the secrets).
 */
#ifndef CHARTFS_CREDS_H
#define CHARTFS_CREDS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/compiler.h"
#include "common/strv.h"

#define OCI_CREDS_HELPER_TIMEOUT_MS 10000

struct oci_creds {
	char *username;	      /* or NULL */
	char *password;	      /* or NULL; never logged */
	char *identity_token; /* an OAuth2 refresh token, or NULL; never logged */
	char source[320];     /* where they came from, for log lines */
};

/* Look up credentials for host ("host[:port]"); registry_config may be NULL. */
int oci_creds_lookup(const char *host, const char *registry_config,
		     struct oci_creds *out) WUR;
void oci_creds_clear(struct oci_creds *c);

/* Append every key of auths and credHelpers in the config files (lookup
 * order, the keys verbatim: "https://index.docker.io/v1/", "host:5000").
 * Unreadable or malformed files are skipped. */
int oci_creds_hosts(const char *registry_config, struct strv *out) WUR;

/* Look host up in one config.json text (path is for messages). -ENOENT when
 * the file does not name the host. */
int oci_creds_from_json(const char *text, size_t len, const char *path, const char *host,
			struct oci_creds *out) WUR;

/* oci_creds_from_json without running anything (tests, the fuzzer):
 * helpers[0] and helpers[1] get the names it would run first, credHelpers[host]
 * and credsStore (malloc'd, or NULL), and out the auths entry for host.
 * Returns what the auths lookup does. The caller frees both helpers whatever
 * it returns. */
int oci_creds_parse_json(const char *text, size_t len, const char *path, const char *host,
			 char *helpers[2], struct oci_creds *out) WUR;

/* True iff a config.json key ("https://host/v1/", "host", "host:5000")
 * names host: an http:// or https:// prefix and a path are ignored, as
 * docker does; Docker Hub's aliases all match https://index.docker.io/v1/. */
bool oci_creds_key_matches(const char *key, const char *host);

/* The server name a credential helper is asked for: host, or
 * "https://index.docker.io/v1/" for Docker Hub. Static storage or host. */
const char *oci_creds_server(const char *host);

/* Run docker-credential-<name> get for server; -ENOENT when it has nothing
 * (non-zero exit, or the program is missing), -ETIMEDOUT after timeout_ms. */
int oci_creds_helper(const char *name, const char *server, int timeout_ms,
		     struct oci_creds *out) WUR;

/* Read a password file: no group or other permissions, at most 4 KiB, one
 * trailing newline stripped. */
int oci_creds_password_file(const char *path, char **out) WUR;

#endif
