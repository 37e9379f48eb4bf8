/*
 * mirror.c - reads through pull-through mirrors, in order, then the origin
 * (the contract is in mirror.h).
 *
 * Each mirror is a client of its own (its host's credentials, pool and
 * tokens), asked for PREFIX/<repo>. The origin's client holds the set and
 * routes its public reads here; the *_here functions of oci.c ask one
 * client and never route, so nothing here loops.
 */
#include "client/mirror.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client/creds.h"
#include "client/http_i.h"
#include "client/manifest.h"
#include "common/digest.h"
#include "common/log.h"
#include "common/strv.h"
#include "common/mono.h"

/* A host as a registry address may name it ("host[:port]"). */
#define MIRROR_HOST_MAX 255

struct mirror {
	struct oci_client *client;
	char *prefix; /* PREFIX, or NULL */
	char *name;   /* "host[:port][/prefix]": log lines, user.chartfs.source */
	/* CLOCK_MONOTONIC ms before which it is not asked (back-off). */
	atomic_int_fast64_t skip_until;
	atomic_bool down;      /* its failure was said; its return will be */
	atomic_bool lack_said; /* the line about a 404 the origin answered */
};

struct mirror_pin {
	char *repo;
	int64_t until; /* CLOCK_MONOTONIC ms */
};

struct mirror_set {
	struct mirror m[MIRRORS_MAX];
	size_t n;
	int64_t pin_ms;
	pthread_mutex_t pin_lock;
	struct mirror_pin pins[MIRROR_PINS_MAX];
	size_t npins;
};

/* ---- specs ------------------------------------------------------------- */

struct spec {
	char host[MIRROR_HOST_MAX + 1];
	char prefix[MIRROR_HOST_MAX + 1]; /* "" when none */
	bool http;			  /* given as http:// */
};

static bool host_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || strchr(".-:[]_", ch);
}

/* Parse "[http://|https://]HOST[:PORT][/PREFIX]" (s[0..len)). */
static int spec_parse(const char *s, size_t len, struct spec *out)
{
	const char *host, *slash;
	size_t hlen, plen;

	memset(out, 0, sizeof(*out));
	if (len >= 7 && !strncmp(s, "http://", 7)) {
		out->http = true;
		s += 7;
		len -= 7;
	} else if (len >= 8 && !strncmp(s, "https://", 8)) {
		s += 8;
		len -= 8;
	}
	while (len && s[len - 1] == '/')
		len--;
	host = s;
	slash = memchr(s, '/', len);
	hlen = slash ? (size_t)(slash - s) : len;
	plen = slash ? len - hlen - 1 : 0;
	if (hlen == 0 || hlen > MIRROR_HOST_MAX || plen > MIRROR_HOST_MAX)
		return -EINVAL;
	for (size_t i = 0; i < hlen; i++)
		if (!host_char_ok(host[i]))
			return -EINVAL;
	memcpy(out->host, host, hlen);
	if (plen) {
		memcpy(out->prefix, slash + 1, plen);
		if (!oci_repo_valid(out->prefix))
			return -EINVAL;
	}
	return 0;
}

/* Split one entry "[ORIGIN=]SPEC,SPEC" into its origin (olen 0: none) and
 * its specs. */
static void entry_split(const char *e, size_t len, size_t *olen, const char **specs,
			size_t *slen)
{
	const char *eq = memchr(e, '=', len);

	*olen = eq ? (size_t)(eq - e) : 0;
	*specs = eq ? eq + 1 : e;
	*slen = len - (size_t)(*specs - e);
}

/* Check the comma-separated specs s[0..len): 0, or -EINVAL (said). */
static int specs_check(const char *s, size_t len, const char *entry, size_t elen)
{
	size_t n = 0;
	struct spec sp;

	while (len) {
		size_t k = strcspn(s, ",;");

		k = k < len ? k : len;
		if (spec_parse(s, k, &sp) != 0) {
			fprintf(stderr,
				"chartfs: -o mirror=%.*s: '%.*s' is no "
				"[http://]HOST[:PORT][/PREFIX]\n",
				(int)elen, entry, (int)k, s);
			return -EINVAL;
		}
		if (++n > MIRRORS_MAX) {
			fprintf(stderr,
				"chartfs: -o mirror=%.*s: more than %d mirrors for one "
				"registry (MIRRORS_MAX)\n",
				(int)elen, entry, MIRRORS_MAX);
			return -EINVAL;
		}
		s += k;
		len -= k;
		if (len) {
			s++;
			len--;
		}
	}
	return 0;
}

int oci_mirror_check(const char *all, const char *registry)
{
	const char *e = all;

	while (e && *e) {
		size_t len = strcspn(e, ";"), olen, slen;
		const char *specs;

		entry_split(e, len, &olen, &specs, &slen);
		if (len && !slen) {
			fprintf(stderr, "chartfs: -o mirror=%.*s names no mirror\n",
				(int)len, e);
			return -EINVAL;
		}
		if (!registry && len && !olen) {
			fprintf(stderr,
				"chartfs: -o mirror=%.*s: an every-registry mount needs "
				"the registry the mirror is for: -o mirror=ORIGIN=%.*s\n",
				(int)len, e, (int)len, e);
			return -EINVAL;
		}
		if (registry && olen &&
		    (strlen(registry) != olen || strncasecmp(registry, e, olen))) {
			fprintf(stderr,
				"chartfs: -o mirror=%.*s is for %.*s, which this mount "
				"does not show (it shows %s)\n",
				(int)len, e, (int)olen, e, registry);
			return -EINVAL;
		}
		if (len && specs_check(specs, slen, e, len) != 0)
			return -EINVAL;
		e += len;
		if (*e == ';')
			e++;
	}
	return 0;
}

char *oci_mirror_specs_for(const char *all, const char *registry)
{
	const char *e = all;
	char *out = strdup(""), *more;

	while (out && e && *e) {
		size_t len = strcspn(e, ";"), olen, slen;
		const char *specs;

		entry_split(e, len, &olen, &specs, &slen);
		if (slen && (!olen || (strlen(registry) == olen &&
				       !strncasecmp(registry, e, olen)))) {
			if (asprintf(&more, "%s%s%.*s", out, *out ? "," : "", (int)slen,
				     specs) < 0)
				more = NULL;
			free(out);
			out = more;
		}
		e += len;
		if (*e == ';')
			e++;
	}
	return out;
}

/* ---- set-up ------------------------------------------------------------ */

/* The client of one mirror, with its host's own credentials. */
static int mirror_client(const struct spec *sp, const struct oci_client_opts *base,
			 const struct oci_mirror_opts *mo, struct oci_client **out)
{
	struct oci_client_opts co = *base;
	struct oci_creds cr = {0};
	int ret;

	ret = oci_creds_lookup(sp->host, mo->registry_config, &cr);
	if (ret && ret != -ENOENT) {
		log_err("chartfs: mirror %s: cannot read its credentials: %s", sp->host,
			strerror(-ret));
		goto out;
	}
	if (!ret)
		log_info("chartfs: credentials for mirror %s from %s", sp->host,
			 cr.source);
	co.registry = sp->host;
	co.plain_http = sp->http || strv_csv_has(mo->plain_http_hosts, sp->host);
	co.username = cr.username;
	co.password = cr.password;
	co.identity_token = cr.identity_token;
	ret = oci_client_new(&co, out);
	if (!ret)
		(*out)->is_mirror = true;
out:
	oci_creds_clear(&cr);
	return ret;
}

static int mirror_add(struct mirror_set *s, const struct spec *sp,
		      const struct oci_client_opts *base,
		      const struct oci_mirror_opts *mo)
{
	struct mirror *mi = &s->m[s->n];
	int ret;

	ret = mirror_client(sp, base, mo, &mi->client);
	if (ret)
		return ret;
	s->n++;
	if (sp->prefix[0] && !(mi->prefix = strdup(sp->prefix)))
		return -ENOMEM;
	if (asprintf(&mi->name, "%s%s%s", sp->host, sp->prefix[0] ? "/" : "",
		     sp->prefix) < 0) {
		mi->name = NULL;
		return -ENOMEM;
	}
	atomic_init(&mi->skip_until, 0);
	atomic_init(&mi->down, false);
	atomic_init(&mi->lack_said, false);
	return 0;
}

int oci_mirrors_setup(struct oci_client *origin, const struct oci_client_opts *base,
		      const struct oci_mirror_opts *mo)
{
	const char *p = mo->specs;
	struct mirror_set *s;
	struct spec sp;
	int ret = 0;

	if (!p || !*p)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->pin_lock, NULL);
	s->pin_ms = 1000ll * (mo->pin_s > MIRROR_PIN_S ? mo->pin_s : MIRROR_PIN_S);
	while (*p && !ret) {
		size_t k = strcspn(p, ",;");

		if (s->n == MIRRORS_MAX || spec_parse(p, k, &sp) != 0) {
			log_err("chartfs: -o mirror: '%.*s' is no "
				"[http://]HOST[:PORT][/PREFIX], or one too many",
				(int)k, p);
			ret = -EINVAL;
			break;
		}
		ret = mirror_add(s, &sp, base, mo);
		p += k;
		if (*p)
			p++;
	}
	if (ret) {
		mirror_set_free(s);
		return ret;
	}
	for (size_t i = 0; i < s->n; i++)
		log_info("chartfs: %s reads through mirror %s%s", origin->registry,
			 s->m[i].name, i + 1 < s->n ? " first" : "");
	origin->mirrors = s;
	return 0;
}

void mirror_set_free(struct mirror_set *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++) {
		oci_client_free(s->m[i].client);
		free(s->m[i].prefix);
		free(s->m[i].name);
	}
	for (i = 0; i < s->npins; i++)
		free(s->pins[i].repo);
	pthread_mutex_destroy(&s->pin_lock);
	free(s);
}

void mirror_set_cancel(struct mirror_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		oci_client_cancel(s->m[i].client);
}

uint64_t mirror_set_requests(const struct mirror_set *s)
{
	uint64_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += oci_client_requests(s->m[i].client);
	return n;
}

void oci_mirrors_reload_creds(struct oci_client *origin, const char *registry_config)
{
	struct mirror_set *s = origin->mirrors;

	for (size_t i = 0; s && i < s->n; i++) {
		struct oci_client *mc = s->m[i].client;
		struct oci_creds cr = {0};
		int ret = oci_creds_lookup(mc->registry, registry_config, &cr);

		if (ret == -ENOENT)
			ret = 0;
		if (!ret)
			ret = oci_client_set_creds(mc, cr.username, cr.password,
						   cr.identity_token);
		if (ret)
			log_warn("chartfs: mirror %s: cannot read its credentials again: "
				 "%s",
				 mc->registry, strerror(-ret));
		oci_creds_clear(&cr);
	}
}

/* ---- pins: names of repositories this mount wrote come from the origin - */

void mirror_note_write(struct oci_client *c, const char *repo)
{
	struct mirror_set *s = c->mirrors;
	int64_t now = mono_ms();
	struct mirror_pin *slot = NULL;
	size_t i;

	pthread_mutex_lock(&s->pin_lock);
	for (i = 0; i < s->npins; i++) {
		if (!strcmp(s->pins[i].repo, repo)) {
			s->pins[i].until = now + s->pin_ms;
			goto out;
		}
		/* An expired pin, or else the one that ends first. */
		if (!slot || s->pins[i].until < slot->until)
			slot = &s->pins[i];
	}
	if (s->npins < MIRROR_PINS_MAX)
		slot = &s->pins[s->npins];
	else if (slot->until > now)
		log_debug("client: more than %d repositories pinned to %s "
			  "(MIRROR_PINS_MAX): the oldest pin goes",
			  MIRROR_PINS_MAX, c->registry);
	{
		char *copy = strdup(repo);

		if (!copy)
			goto out; /* the mirror's answer, at worst a ttl late */
		if (slot == &s->pins[s->npins])
			s->npins++;
		else
			free(slot->repo);
		slot->repo = copy;
		slot->until = now + s->pin_ms;
	}
out:
	pthread_mutex_unlock(&s->pin_lock);
}

static bool pinned(struct mirror_set *s, const char *repo)
{
	int64_t now = mono_ms();
	bool ret = false;

	pthread_mutex_lock(&s->pin_lock);
	for (size_t i = 0; i < s->npins && !ret; i++)
		ret = s->pins[i].until > now && !strcmp(s->pins[i].repo, repo);
	pthread_mutex_unlock(&s->pin_lock);
	return ret;
}

/* ---- health ------------------------------------------------------------ */

static bool usable(struct mirror *mi)
{
	return mono_ms() >= atomic_load(&mi->skip_until);
}

/* The mirror answered: said once after it had failed. */
static void answered(struct mirror *mi)
{
	if (atomic_exchange(&mi->down, false))
		log_notice("client: mirror %s answers again; reading from it", mi->name);
}

/* The mirror failed with err: skipped for MIRROR_BACKOFF_MS, and said
 * once until it answers again. A 404 is an answer, not a failure. */
static void failed(const struct oci_client *c, struct mirror *mi, int err,
		   const char *cause)
{
	const struct mirror_set *s = c->mirrors;
	const char *next = c->registry;

	if (err == -ENOENT) {
		answered(mi);
		return;
	}
	atomic_store(&mi->skip_until, mono_ms() + MIRROR_BACKOFF_MS);
	if (atomic_exchange(&mi->down, true))
		return;
	if (mi + 1 < s->m + s->n)
		next = mi[1].name;
	log_warn("client: mirror %s failed (%s); reading from %s%s for %d s", mi->name,
		 cause && *cause ? cause : strerror(-err), next,
		 next == c->registry ? "" : " (then the origin)",
		 MIRROR_BACKOFF_MS / 1000);
}

/* The origin had what the mirror answered 404 for: said once a mount, as
 * a mirror set up with the wrong prefix answers everything so. */
static void lacked(const struct oci_client *c, struct mirror *mi, const char *repo)
{
	if (!atomic_exchange(&mi->lack_said, true))
		log_notice("client: mirror %s has no %s, which %s has: read from %s "
			   "(a wrong PREFIX?); said once",
			   mi->name, repo, c->registry, c->registry);
}

/* Errors the origin would meet too, or that end the call: no fallback. A
 * blob's write into the cache that failed is one. */
static bool final_err(int err)
{
	switch (err) {
	case -ECANCELED:
	case -ENOMEM:
	case -ENOSPC:
	case -EDQUOT:
	case -EFBIG:
	case -EROFS:
	case -EBADF:
	case -EMFILE:
	case -ENFILE:
		return true;
	default:
		return false;
	}
}

/* The name of repo on mirror mi (malloc'd), or NULL. */
static char *mirror_repo(const struct mirror *mi, const char *repo)
{
	char *s;

	if (asprintf(&s, "%s%s%s", mi->prefix ? mi->prefix : "", mi->prefix ? "/" : "",
		     repo) < 0)
		return NULL;
	return s;
}

/* ---- routing ----------------------------------------------------------- */

/* One read asked of a client: a mirror's (from_mirror) or the origin's. */
typedef int (*ask_fn)(void *arg, struct oci_client *c, const char *repo,
		      bool from_mirror);

/* Ask each usable mirror in order, then the origin; by_name reads (tag
 * lists, manifests by tag) of a pinned repository ask the origin only.
 * *source gets who answered. */
static int route(struct oci_client *c, const char *repo, bool by_name, ask_fn ask,
		 void *arg, const char **source)
{
	struct mirror_set *s = c->mirrors;
	struct mirror *lacking = NULL;
	char *cause = http_last_cause();
	size_t i, n = by_name && pinned(s, repo) ? 0 : s->n;
	int ret;

	for (i = 0; i < n; i++) {
		struct mirror *mi = &s->m[i];
		char *name;

		if (!usable(mi))
			continue;
		name = mirror_repo(mi, repo);
		if (!name)
			return -ENOMEM;
		cause[0] = '\0';
		ret = ask(arg, mi->client, name, true);
		free(name);
		if (!ret) {
			answered(mi);
			*source = mi->name;
			return 0;
		}
		if (final_err(ret))
			return ret;
		failed(c, mi, ret, cause);
		if (ret == -ENOENT && !lacking)
			lacking = mi;
	}
	ret = ask(arg, c, repo, false);
	*source = c->registry;
	if (!ret && lacking)
		lacked(c, lacking, repo);
	return ret;
}

static int ask_tags(void *arg, struct oci_client *c, const char *repo, bool from_mirror)
{
	(void)from_mirror;
	return oci_tags_here(c, repo, arg);
}

int mirror_tags(struct oci_client *c, const char *repo, struct strv *out)
{
	const char *source;

	return route(c, repo, true, ask_tags, out, &source);
}

struct manifest_arg {
	const char *ref;
	struct oci_fetched *out;
};

static int ask_manifest(void *arg, struct oci_client *c, const char *repo,
			bool from_mirror)
{
	struct manifest_arg *a = arg;

	(void)from_mirror;
	return oci_manifest_get_here(c, repo, a->ref, a->out);
}

int mirror_manifest_get(struct oci_client *c, const char *repo, const char *ref,
			struct oci_fetched *out)
{
	struct manifest_arg a = {ref, out};
	const char *source = NULL;
	int ret;

	ret = route(c, repo, !digest_valid(ref), ask_manifest, &a, &source);
	out->err = ret;
	if (!ret)
		out->source = source;
	return ret;
}

struct blob_arg {
	const char *digest;
	uint64_t size;
	int fd;
	const char *where;
};

/* Empty fd again for the next try. */
static int cut_back(int fd)
{
	return ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0 ? 0 : -errno;
}

/* A mirror's blob must hash to its digest before anyone reads it. */
static int check_blob(const struct blob_arg *a, const char *mirror)
{
	char got[DIGEST_STR_MAX], *cause = http_last_cause();
	long long len = 0;
	int ret = digest_fd(a->fd, got, &len);

	if (ret)
		return ret == -ENOMEM ? ret : -EIO;
	if ((uint64_t)len == a->size && !strcmp(got, a->digest))
		return 0;
	snprintf(cause, HTTP_CAUSE_MAX, "blob %s came as %lld bytes hashing to %s",
		 a->digest, len, got);
	log_debug("client: mirror %s: %s", mirror, cause);
	return -EIO;
}

static int ask_blob(void *arg, struct oci_client *c, const char *repo, bool from_mirror)
{
	struct blob_arg *a = arg;
	int ret = oci_blob_get_here(c, repo, a->digest, a->size, a->fd, a->where);

	if (!ret && from_mirror)
		ret = check_blob(a, c->registry);
	/* What a mirror wrote goes before the next one writes; if it cannot
	 * go, nothing else may be tried. */
	if (ret && from_mirror && cut_back(a->fd) != 0)
		ret = -EBADF;
	return ret;
}

int mirror_blob_get(struct oci_client *c, const char *repo, const char *digest,
		    uint64_t size, int fd, const char *where)
{
	struct blob_arg a = {digest, size, fd, where};
	const char *source;

	/* Only a file it can check whole takes a mirror's bytes. */
	if (lseek(fd, 0, SEEK_CUR) != 0)
		return oci_blob_get_here(c, repo, digest, size, fd, where);
	return route(c, repo, false, ask_blob, &a, &source);
}

/* ---- many manifests at once -------------------------------------------- */

/* Ask mirror mi for the refs of pending (indices into refs, *np of them)
 * at once; those it answers, or fails for good, leave pending. lack gets
 * mi for each ref it answered 404, unless another mirror did first. */
static int many_from_mirror(struct oci_client *c, struct mirror *mi, const char *repo,
			    const char *const *refs, size_t *pending, size_t *np,
			    unsigned max_parallel, struct oci_fetched *results,
			    struct mirror **lack)
{
	const size_t total = *np;
	const char **sub = calloc(total, sizeof(*sub));
	struct oci_fetched *got = calloc(total, sizeof(*got));
	char *name = mirror_repo(mi, repo);
	size_t i, k = 0;
	int ret = -ENOMEM, err = 0;
	bool ok = false;

	if (!sub || !got || !name)
		goto out;
	for (i = 0; i < *np; i++)
		sub[i] = refs[pending[i]];
	ret = oci_manifest_get_many_here(mi->client, name, sub, *np, max_parallel, got);
	if (ret)
		goto out;
	for (i = 0; i < *np; i++) {
		size_t at = pending[i];

		if (!got[i].err || final_err(got[i].err)) {
			oci_fetched_clear(&results[at]);
			results[at] = got[i];
			got[i] = (struct oci_fetched){0};
			if (!results[at].err)
				results[at].source = mi->name;
			ok = ok || !results[at].err;
			continue;
		}
		if (got[i].err == -ENOENT && !lack[at])
			lack[at] = mi;
		else if (got[i].err != -ENOENT && !err)
			err = got[i].err;
		pending[k++] = at;
	}
	*np = k;
	if (err)
		failed(c, mi, err, NULL);
	else if (ok || k)
		answered(mi);
out:
	for (i = 0; got && i < total; i++)
		oci_fetched_clear(&got[i]);
	free(got);
	free(sub);
	free(name);
	return ret;
}

int mirror_manifest_get_many(struct oci_client *c, const char *repo,
			     const char *const *refs, size_t n, unsigned max_parallel,
			     struct oci_fetched *results)
{
	struct mirror_set *s = c->mirrors;
	size_t *pending = calloc(n ? n : 1, sizeof(*pending)), np = n, i, m;
	const char **sub = calloc(n ? n : 1, sizeof(*sub));
	struct oci_fetched *got = calloc(n ? n : 1, sizeof(*got));
	struct mirror **lack = calloc(n ? n : 1, sizeof(*lack));
	int ret = -ENOMEM;

	if (!pending || !sub || !got || !lack)
		goto out;
	for (i = 0; i < n; i++)
		pending[i] = i;
	/* A listing asks by tag: a pinned repository asks the origin. */
	for (m = 0; m < s->n && np && !pinned(s, repo); m++) {
		if (!usable(&s->m[m]))
			continue;
		ret = many_from_mirror(c, &s->m[m], repo, refs, pending, &np,
				       max_parallel, results, lack);
		if (ret)
			goto out;
	}
	for (i = 0; i < np; i++)
		sub[i] = refs[pending[i]];
	ret = np ? oci_manifest_get_many_here(c, repo, sub, np, max_parallel, got) : 0;
	for (i = 0; !ret && i < np; i++) {
		size_t at = pending[i];

		oci_fetched_clear(&results[at]);
		results[at] = got[i];
		got[i] = (struct oci_fetched){0};
		if (!results[at].err && lack[at])
			lacked(c, lack[at], repo);
	}
out:
	for (i = 0; got && i < n; i++)
		oci_fetched_clear(&got[i]);
	free(got);
	free(sub);
	free(pending);
	free(lack);
	return ret;
}
