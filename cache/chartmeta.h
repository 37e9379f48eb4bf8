/*
 * chartmeta.h - a chart's Chart.yaml as helm push sees it: the config blob
 * (json.Marshal of helm's chart.Metadata) and the manifest annotations.
 *
 * Contract: no global state; any thread; a struct chartmeta is immutable
 * after chartmeta_parse() and may be read from several threads at once.
 * Every string returned points into the struct (valid until chartmeta_free)
 * unless it is documented as malloc'd. Fallible functions return 0 or
 * -errno: -EINVAL for input helm would refuse (one log_info line
 * "chartmeta: <reason>"), -ENOMEM.
 *
 * The parse mirrors helm 3.17/4.1 (sigs.k8s.io/yaml over go-yaml v2, then
 * encoding/json, then Metadata.Validate()): YAML 1.1 scalars (`appVersion:
 * 1.0` becomes "1", `name: n` becomes "false"), case-insensitive field
 * names, null leaves a field alone, sanitized strings (Unicode spaces become
 * ' ', non-printable runes are dropped), apiVersion defaults to "v1".
 * Only the first YAML document is read. It also refuses what helm push
 * itself would fail on later: a name that is not one OCI path component
 * ([a-z0-9]+ joined by '.', '_', '__' or '-'s) and a tag over 128 bytes.
 * Known differences from helm, all refused or rare: a NUL in a string is
 * refused (helm keeps it in annotations), a !!binary scalar stays base64
 * text, and more than 2^20 decoded values (alias fan-out) are refused.
 * Layout: chartmeta_yaml.c (go-yaml), chartmeta_decode.c (sigs.k8s.io/yaml
 * + encoding/json), chartmeta_go.c (Go formatting), chartmeta.c (helm).
 */
#ifndef CHARTFS_CHARTMETA_H
#define CHARTFS_CHARTMETA_H

#include <stdbool.h>
#include <stddef.h>

#include "common/compiler.h"
#include "common/strv.h"

struct chartmeta;

/* Parse Chart.yaml (len bytes, need not be NUL-terminated). */
int chartmeta_parse(const char *yaml, size_t len, struct chartmeta **out) WUR;

void chartmeta_free(struct chartmeta *m);

const char *chartmeta_name(const struct chartmeta *m);
const char *chartmeta_version(const struct chartmeta *m);

/* The OCI tag helm push uses: the version with '+' replaced by '_'
 * (malloc'd, NUL-terminated). */
int chartmeta_tag(const struct chartmeta *m, char **tag) WUR;

/* helm's config blob, byte for byte (malloc'd, NUL-terminated, *len bytes
 * without the NUL). */
int chartmeta_config_json(const struct chartmeta *m, char **json, size_t *len) WUR;

/* helm's manifest annotations, sorted by key, appended to keys/values
 * (pairs at the same index). created is the RFC 3339 "created" value (helm
 * >= 3.17 uses the .tgz mtime in UTC, e.g. "2024-05-01T10:00:00Z"). The
 * generated org.opencontainers.image.* values are dropped when blank;
 * Chart.yaml annotations are copied as is, even when empty, and override
 * the generated ones except title and version. On error keys/values may
 * hold partial output: the caller frees them. */
int chartmeta_annotations(const struct chartmeta *m, const char *created,
			  struct strv *keys, struct strv *values) WUR;

/* Masterminds semver NewVersion(), which helm package/push apply to the
 * chart version: an optional 'v', one to three numeric parts (leading zeros
 * allowed, each < 2^64), then -prerelease and +build identifiers
 * ([0-9A-Za-z-]+, dot separated; numeric prerelease ones without a leading
 * zero). */
bool chartmeta_semver_valid(const char *v);
#endif
