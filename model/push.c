/* push.c - helm push and tag delete, over the client and the cache. */
#include "model/push.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/chartmeta.h"
#include "cache/unpack.h"
#include "common/log.h"
#include "model/push_sign.h"
#include "model/timefmt.h"
#include "model/verify.h"

struct blob {
	const char *media_type;
	char digest[DIGEST_STR_MAX];
	uint64_t size;
	int fd;
};

/* Upload a blob unless the registry already has it (helm does the same). */
static int push_blob(struct oci_client *c, const char *repo, const struct blob *b)
{
	int ret = oci_blob_exists(c, repo, b->digest);

	if (ret == 0)
		return 0;
	if (ret != -ENOENT)
		return ret;
	return oci_blob_upload(c, repo, b->digest, b->fd, b->size);
}

static json_t *descriptor(const struct blob *b)
{
	return json_pack("{s:s, s:s, s:I}", "mediaType", b->media_type, "digest",
			 b->digest, "size", (json_int_t)b->size);
}

/* The manifest helm writes: no top-level mediaType, layers sorted by digest,
 * annotations sorted by key (json_dumps with JSON_SORT_KEYS would reorder
 * the top level too, so the map is built in order). */
static char *build_manifest(const struct blob *config, struct blob *layers,
			    size_t nlayers, const struct strv *keys,
			    const struct strv *values)
{
	json_t *root = json_object(), *arr = json_array(), *ann = json_object();
	char *out = NULL;
	size_t i, j;

	if (!root || !arr || !ann)
		goto out;
	for (i = 1; i < nlayers; i++)
		for (j = i; j > 0 && strcmp(layers[j - 1].digest, layers[j].digest) > 0;
		     j--) {
			struct blob t = layers[j];
			layers[j] = layers[j - 1];
			layers[j - 1] = t;
		}
	for (i = 0; i < nlayers; i++)
		json_array_append_new(arr, descriptor(&layers[i]));
	for (i = 0; i < keys->n; i++)
		json_object_set_new(ann, keys->v[i], json_string(values->v[i]));
	json_object_set_new(root, "schemaVersion", json_integer(2));
	json_object_set_new(root, "config", descriptor(config));
	json_object_set(root, "layers", arr);
	if (keys->n)
		json_object_set(root, "annotations", ann);
	out = json_dumps(root, JSON_COMPACT);
out:
	json_decref(root);
	json_decref(arr);
	json_decref(ann);
	return out;
}

/* "<dir>/<name>" unless dir's last segment already is the chart's name
 * (helm push's rule: oci://host/ns + chart web -> ns/web). */
static char *target_repo(const struct ns_node *dir, const char *name)
{
	char *s = NULL;

	if (dir->parent && !strcmp(dir->name, name))
		return strdup(dir->fullname);
	if (asprintf(&s, "%s%s%s", dir->fullname, dir->fullname[0] ? "/" : "", name) < 0)
		return NULL;
	return s;
}

struct pkg {
	void *map;
	size_t len;
	struct chartmeta *meta;
	char *tag;
	char *repo_full; /* below the mount root */
};

static void pkg_clear(struct pkg *p)
{
	if (p->map)
		munmap(p->map, p->len);
	chartmeta_free(p->meta);
	free(p->tag);
	free(p->repo_full);
}

/* Check the spooled file is a chart helm would accept, and name it. */
static int read_package(struct ns_node *dir, int fd, struct pkg *p)
{
	char *yaml = NULL, *top = NULL, *c;
	struct stat st;
	int ret;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size == 0 || st.st_size > PUSH_PACKAGE_MAX) {
		log_warn("model: push into /%s: %lld bytes is not a chart package",
			 dir->fullname, (long long)st.st_size);
		return -EINVAL;
	}
	p->len = (size_t)st.st_size;
	p->map = mmap(NULL, p->len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p->map == MAP_FAILED) {
		p->map = NULL;
		return -errno;
	}
	ret = chart_check_mem(p->map, p->len, &yaml, &top);
	if (ret) {
		log_warn("model: push into /%s: not a valid chart package",
			 dir->fullname);
		ret = -EINVAL;
		goto out;
	}
	ret = chartmeta_parse(yaml, strlen(yaml), &p->meta);
	if (ret) {
		log_warn("model: push into /%s: Chart.yaml lacks a valid name or SemVer "
			 "version",
			 dir->fullname);
		ret = -EINVAL;
		goto out;
	}
	p->tag = strdup(chartmeta_version(p->meta));
	p->repo_full = target_repo(dir, chartmeta_name(p->meta));
	if (!p->tag || !p->repo_full) {
		ret = -ENOMEM;
		goto out;
	}
	for (c = p->tag; *c; c++)
		if (*c == '+')
			*c = '_';
	if (!oci_tag_valid(p->tag) || !oci_repo_valid(p->repo_full)) {
		log_warn("model: push into /%s: %s:%s is not a valid OCI reference",
			 dir->fullname, p->repo_full, p->tag);
		ret = -EINVAL;
	}
out:
	free(yaml);
	free(top);
	return ret;
}

/* Where a provenance file waits for the chart it signs: named by the
 * chart's digest, so no state is kept in memory and a later cp finds it. */
static int pending_prov_path(struct model *m, const char *chart_digest, char *buf,
			     size_t len)
{
	if ((size_t)snprintf(buf, len, "%s/tmp/prov-%s",
			     blobcache_dir(model_blobcache(m)),
			     digest_hex(chart_digest)) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int open_pending_prov(struct model *m, const char *chart_digest, char *buf,
			     size_t len)
{
	int fd;

	if (pending_prov_path(m, chart_digest, buf, len))
		return -1;
	fd = open(buf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd;
}

/* -o immutable: only a sure "not there" lets the push go on. */
static int absent_or_refuse(struct oci_client *c, const char *repo, const char *tag)
{
	char digest[DIGEST_STR_MAX];
	int ret = oci_manifest_head(c, repo, tag, digest);

	if (ret == 0) {
		log_warn("model: push %s:%s: the tag exists and the mount is immutable",
			 repo, tag);
		return -EEXIST;
	}
	if (ret != -ENOENT) {
		log_warn("model: push %s:%s: cannot tell whether the tag exists: %s",
			 repo, tag, strerror(-ret));
		return ret;
	}
	return 0;
}

/* The config blob helm makes of Chart.yaml's metadata, in a memfd
 * (config->fd, the caller's to close) with its digest and size. */
static int make_config(const struct chartmeta *meta, struct blob *config)
{
	char *json = NULL;
	size_t len;
	int ret = chartmeta_config_json(meta, &json, &len);

	if (ret)
		return ret;
	ret = digest_buf(json, len, config->digest);
	if (ret)
		goto out;
	config->size = len;
	config->fd = memfd_create("chartfs-config", MFD_CLOEXEC);
	if (config->fd < 0)
		ret = -errno;
	else if (write(config->fd, json, len) != (ssize_t)len)
		ret = -EIO; /* a memfd write of a few bytes: short only in theory */
out:
	free(json);
	return ret;
}

/* A manifest this mount just pushed (and signed, with -o sign_key): a
 * lookup between the manifest and its signature may have concluded "no
 * signature"; that verdict must not hide the chart for the ttl. */
static void forget_verdict(struct model *m, struct ns_node *node, const char *manifest)
{
	char digest[DIGEST_STR_MAX];

	if (digest_buf(manifest, strlen(manifest), digest) == 0)
		model_verify_forget(m, node, digest);
}

/* Blobs first: a manifest is only PUT once everything it names is there,
 * so a failed upload leaves no tag behind. */
static int send_chart(struct oci_client *c, const char *repo, const char *tag,
		      const struct blob *layers, size_t nlayers,
		      const struct blob *config, const char *manifest)
{
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < nlayers; i++)
		ret = push_blob(c, repo, &layers[i]);
	if (!ret)
		ret = push_blob(c, repo, config);
	if (!ret)
		ret = oci_manifest_put(c, repo, tag, OCI_MT_MANIFEST, manifest,
				       strlen(manifest));
	if (ret)
		log_warn("model: push %s:%s failed: %s", repo, tag, strerror(-ret));
	return ret;
}

int push_chart(struct model *m, struct ns_node *dir, int fd, const char *spool_path,
	       bool immutable, struct push_signer *signer)
{
	struct oci_client *c = model_client(m);
	struct pkg p = {0};
	struct blob config = {HELM_MT_CONFIG, {0}, 0, -1};
	struct blob layer = {HELM_MT_CHART, {0}, 0, fd};
	struct blob prov = {HELM_MT_PROV, {0}, 0, -1};
	struct blob layers[2];
	size_t nlayers;
	char prov_path[4096];
	struct strv keys = {0}, values = {0};
	struct ns_node *node;
	char *repo = NULL, *manifest = NULL;
	char created[32], what[512];
	bool kept = false;
	long long size;
	int ret;

	ret = read_package(dir, fd, &p);
	if (ret)
		goto out;
	/* The repository joins the tree once its manifest is in: a failed
	 * push (a registry down) must not leave an empty one listed. */
	repo = model_full_name(m, p.repo_full);
	if (!repo) {
		ret = -ENOMEM;
		goto out;
	}
	ret = immutable ? absent_or_refuse(c, repo, p.tag) : 0;
	if (ret)
		goto out;
	ret = digest_fd(fd, layer.digest, &size);
	if (ret)
		goto out;
	layer.size = (uint64_t)size;
	ret = make_config(p.meta, &config);
	if (ret)
		goto out;
	timefmt_rfc3339(time(NULL), created, sizeof(created));
	ret = chartmeta_annotations(p.meta, created, &keys, &values);
	if (ret)
		goto out;
	layers[0] = layer;
	nlayers = 1;
	prov.fd = open_pending_prov(m, layer.digest, prov_path, sizeof(prov_path));
	if (prov.fd >= 0) {
		ret = digest_fd(prov.fd, prov.digest, &size);
		if (ret)
			goto out;
		prov.size = (uint64_t)size;
		layers[nlayers++] = prov;
	}
	manifest = build_manifest(&config, layers, nlayers, &keys, &values);
	if (!manifest) {
		ret = -ENOMEM;
		goto out;
	}
	ret = send_chart(c, repo, p.tag, layers, nlayers, &config, manifest);
	if (ret)
		goto out;
	log_info("model: pushed %s:%s (%s)", repo, p.tag, layer.digest);
	/* Signed before the tag is shown: a mount that verifies must not
	 * see it, and remember it, unsigned. A failure leaves the chart
	 * pushed (shown, cached) and the close -EIO. */
	snprintf(what, sizeof(what), "%s:%s", repo, p.tag);
	if (signer)
		ret =
		    push_sign_manifest(signer, c, repo, what, manifest, strlen(manifest));
	if (model_add_repo(m, p.repo_full, &node) == 0) {
		model_changed(m, node);
		forget_verdict(m, node, manifest);
	}
	/* The bytes are verified and ours: keep them as the cached blob. */
	if (blobcache_adopt(model_blobcache(m), layer.digest, spool_path) == 0)
		kept = true;
	else
		log_debug("model: could not keep %s in the cache", layer.digest);
	if (prov.fd >= 0)
		unlink(prov_path);
out:
	if (!kept)
		unlink(spool_path);
	if (prov.fd >= 0)
		close(prov.fd);
	if (config.fd >= 0)
		close(config.fd);
	strv_free(&keys);
	strv_free(&values);
	free(manifest);
	free(repo);
	pkg_clear(&p);
	return ret;
}

/* The model does not fetch the tags signing tools add (cosign's
 * sha256-<hex>[.sig], hidden from listings), so model_digest_shared counts
 * them as sharing the digest: every signed chart would be EBUSY. Ask the
 * registry where each points instead; one that cannot be told stays. */
static int drop_signature_tags(struct oci_client *c, const char *repo, const char *digest,
			       struct strv *others)
{
	struct strv kept = {0};
	char d[DIGEST_STR_MAX];
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < others->n; i++) {
		const char *t = others->v[i];
		int err = path_is_signature_tag(t) ? oci_manifest_head(c, repo, t, d) : 0;

		if (path_is_signature_tag(t) &&
		    (err == -ENOENT || (!err && strcmp(d, digest))))
			continue;
		ret = strv_push(&kept, t);
	}
	strv_free(others);
	*others = kept;
	return ret;
}

int push_delete(struct model *m, struct ns_node *node, const char *tag)
{
	struct oci_client *c = model_client(m);
	struct model_tag *t = NULL;
	char digest[DIGEST_STR_MAX];
	char *repo = model_repo_name(m, node);
	struct strv others = {0};
	int ret;

	if (!repo)
		return -ENOMEM;
	/* OCI 1.1 tag delete first: zot and distribution v3 untag. */
	ret = oci_manifest_delete(c, repo, tag);
	if (ret != -EINVAL && ret != -EOPNOTSUPP)
		goto out;
	/* distribution 2.8 and Harbor only delete by digest, which removes
	 * every tag pointing there: refuse when that is more than asked. */
	ret = model_tag_get(m, node, tag, &t);
	if (ret)
		goto out;
	memcpy(digest, t->digest, sizeof(digest));
	model_tag_put(m, t);
	ret = model_digest_shared(m, node, tag, digest, &others);
	if (!ret)
		ret = drop_signature_tags(c, repo, digest, &others);
	if (ret)
		goto out;
	if (others.n) {
		char names[512];

		strv_join(&others, ", ", names, sizeof(names));
		log_warn("model: delete %s:%s refused: the registry can only delete by "
			 "digest, and %s %s share its manifest %s",
			 repo, tag, others.n > 1 ? "tags" : "tag", names, digest);
		ret = -EBUSY;
		goto out;
	}
	ret = oci_manifest_delete(c, repo, digest);
	if (ret == -EOPNOTSUPP) {
		log_warn("model: delete %s:%s: the registry has deletes disabled", repo,
			 tag);
		ret = -EPERM;
	}
	/* The manifest itself is gone (not only a tag, as above): so is what
	 * its signatures sign. Their tag schema index goes with it. */
	if (!ret)
		push_sign_forget(c, repo, digest);
out:
	if (!ret)
		log_info("model: deleted %s:%s", repo, tag);
	model_changed(m, node);
	strv_free(&others);
	free(repo);
	return ret;
}

/* What a helm provenance file says: the chart's Chart.yaml and digest. */
struct prov_info {
	struct chartmeta *meta;
	char chart_digest[DIGEST_STR_MAX];
};

/* Parse a clearsigned .prov: the signed text is Chart.yaml, "...", then a
 * "files:" map of the package name to its sha256 (helm pkg/provenance). */
static int parse_prov(const char *text, struct prov_info *p)
{
	const char *body = strstr(text, "\n\n"), *end, *files, *d;
	char *yaml = NULL, *o;
	const char *line;
	int ret = -EINVAL;

	if (strncmp(text, "-----BEGIN PGP SIGNED MESSAGE-----", 34) || !body)
		return -EINVAL;
	body += 2;
	end = strstr(body, "\n...\n");
	if (!end)
		return -EINVAL;
	files = strstr(end, "\nfiles:\n");
	d = files ? strstr(files, "sha256:") : NULL;
	if (!d || (size_t)(strlen(d)) < 71)
		return -EINVAL;
	memcpy(p->chart_digest, d, 71);
	p->chart_digest[71] = '\0';
	if (!digest_valid(p->chart_digest))
		return -EINVAL;
	yaml = malloc((size_t)(end - body) + 2);
	if (!yaml)
		return -ENOMEM;
	/* Undo the clearsign dash-escaping of lines that start with '-'. */
	o = yaml;
	for (line = body; line < end + 1;) {
		const char *nl = memchr(line, '\n', (size_t)(end + 1 - line));
		size_t len = nl ? (size_t)(nl - line + 1) : (size_t)(end + 1 - line);
		if (len >= 2 && line[0] == '-' && line[1] == ' ') {
			line += 2;
			len -= 2;
		}
		memcpy(o, line, len);
		o += len;
		line += len;
	}
	*o = '\0';
	ret = chartmeta_parse(yaml, (size_t)(o - yaml), &p->meta);
	free(yaml);
	return ret;
}

/* Add (or replace) the provenance layer in a chart's manifest. */
static char *manifest_with_prov(const struct oci_fetched *f, const struct blob *prov)
{
	json_t *root = json_loadb(f->body.data, f->body.len, 0, NULL), *layers, *l;
	struct blob sorted[16];
	size_t i, n = 0;
	char *out = NULL;

	layers = root ? json_object_get(root, "layers") : NULL;
	if (!json_is_array(layers) || json_array_size(layers) >= 15)
		goto out;
	json_array_foreach(layers, i, l)
	{
		const char *mt = json_string_value(json_object_get(l, "mediaType"));
		const char *dg = json_string_value(json_object_get(l, "digest"));
		if (!mt || !dg || !digest_valid(dg) || !strcmp(mt, HELM_MT_PROV))
			continue;
		sorted[n] = (struct blob){mt, {0}, 0, -1};
		snprintf(sorted[n].digest, sizeof(sorted[n].digest), "%s", dg);
		sorted[n++].size =
		    (uint64_t)json_integer_value(json_object_get(l, "size"));
	}
	sorted[n++] = *prov;
	for (i = 1; i < n; i++)
		for (size_t j = i;
		     j > 0 && strcmp(sorted[j - 1].digest, sorted[j].digest) > 0; j--) {
			struct blob t = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	layers = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(layers, descriptor(&sorted[i]));
	/* Replacing the value keeps the key's place in the object. */
	json_object_set_new(root, "layers", layers);
	out = json_dumps(root, JSON_COMPACT);
out:
	json_decref(root);
	return out;
}

/* The spool of a .prov upload: its digest and size into prov, its text
 * (NUL-terminated, the caller's) into *text. -EINVAL for a size no
 * provenance file has. */
static int read_prov(int fd, struct blob *prov, char **text)
{
	struct stat st;
	long long size;
	ssize_t n;
	int ret;

	*text = NULL;
	/* The size first: a sparse file is not worth hashing to refuse. */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0 || st.st_size > PUSH_PROV_MAX)
		return -EINVAL;
	ret = digest_fd(fd, prov->digest, &size);
	if (ret)
		return ret;
	if (size != st.st_size)
		return -EIO;
	prov->size = (uint64_t)size;
	*text = calloc(1, (size_t)size + 1);
	if (!*text)
		return -ENOMEM;
	n = pread(fd, *text, (size_t)size, 0);
	if (n != size) {
		free(*text);
		*text = NULL;
		return n < 0 ? -errno : -EIO;
	}
	return 0;
}

int push_prov(struct model *m, struct ns_node *dir, int fd, const char *spool_path,
	      struct push_signer *signer)
{
	struct oci_client *c = model_client(m);
	struct prov_info p = {0};
	struct oci_fetched f = {0};
	struct oci_manifest *man = NULL;
	const struct oci_descriptor *chart;
	struct blob prov = {HELM_MT_PROV, {0}, 0, fd};
	struct ns_node *node;
	char *text = NULL, *repo_full = NULL, *repo = NULL, *tag = NULL, *manifest = NULL;
	char pending[4096], what[512];
	bool kept = false;
	int ret;

	ret = read_prov(fd, &prov, &text);
	if (ret == -EINVAL)
		goto refuse;
	if (ret)
		goto out;
	ret = parse_prov(text, &p);
	if (ret)
		goto refuse;
	repo_full = target_repo(dir, chartmeta_name(p.meta));
	ret = chartmeta_tag(p.meta, &tag);
	if (ret || !repo_full)
		goto refuse;
	repo = model_full_name(m, repo_full);
	if (!repo) {
		ret = -ENOMEM;
		goto out;
	}
	ret = oci_manifest_get(c, repo, tag, &f);
	if (!ret)
		ret = oci_manifest_parse(f.body.data, f.body.len, f.media_type, &man);
	if (ret && ret != -ENOENT) {
		/* Unreachable or refused is not "not there yet": say so. */
		log_warn("model: %s:%s: cannot add provenance: %s", repo, tag,
			 strerror(-ret));
		goto out;
	}
	chart = ret ? NULL : oci_manifest_chart_layer(man);
	if (!chart || strcmp(chart->digest, p.chart_digest)) {
		/* The chart is not there yet: it takes this file along when it
		 * is copied in (helm push of the pair). */
		ret = pending_prov_path(m, p.chart_digest, pending, sizeof(pending));
		if (!ret && rename(spool_path, pending) < 0)
			ret = -errno;
		if (!ret) {
			kept = true;
			log_info(
			    "model: %s:%s: provenance kept until its chart is copied in",
			    repo, tag);
		}
		goto out;
	}
	manifest = manifest_with_prov(&f, &prov);
	if (!manifest) {
		ret = -EIO;
		goto out;
	}
	ret = push_blob(c, repo, &prov);
	if (!ret)
		ret = oci_manifest_put(c, repo, tag, OCI_MT_MANIFEST, manifest,
				       strlen(manifest));
	if (!ret)
		log_info("model: %s:%s: provenance added", repo, tag);
	/* A new manifest: signed as a chart's own push is. */
	if (!ret && signer) {
		snprintf(what, sizeof(what), "%s:%s", repo, tag);
		ret =
		    push_sign_manifest(signer, c, repo, what, manifest, strlen(manifest));
	}
	/* The manifest may have changed, even when the answer was lost. */
	if (model_add_repo(m, repo_full, &node) == 0) {
		model_changed(m, node);
		forget_verdict(m, node, manifest);
	}
	goto out;
refuse:
	log_warn("model: push into /%s: not a helm provenance file", dir->fullname);
	ret = -EINVAL;
out:
	if (!kept)
		unlink(spool_path);
	oci_manifest_free(man);
	oci_fetched_clear(&f);
	chartmeta_free(p.meta);
	free(text);
	free(repo_full);
	free(repo);
	free(tag);
	free(manifest);
	return ret;
}
