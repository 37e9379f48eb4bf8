/* hosts.c - every registry under one mount: a client and a model per host. */
#include "model/hosts.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/creds.h"
#include "client/mirror.h"
#include "common/log.h"
#include "common/mono.h"
#include "common/strv.h"

/* How long a host that is no registry stays ENOENT before it is tried again. */
#define HOSTS_RETRY_SECONDS 10
#define HOST_NAME_MAX_LEN 261 /* 253 for the name, ":" and a port */

enum site_state { SITE_SETUP, SITE_READY, SITE_FAILED };

struct site {
	struct site *next;
	char *name;
	enum site_state state;
	int err;	  /* SITE_FAILED: what lookups get */
	time_t failed_at; /* SITE_FAILED: when (CLOCK_MONOTONIC seconds) */
	unsigned forgot;  /* the SIGHUP generation this model has seen */
	struct oci_client *client;
	struct model *model;
};

struct hosts {
	struct hosts_opts o;
	char *registry_config, *plain_http_hosts, *mirror, *ca_file, *cert_file,
	    *key_file;
	struct blobcache *bc;
	pthread_mutex_t lock;
	pthread_cond_t setup_done;
	struct site *sites;
	atomic_uint hup; /* bumped by SIGHUP */
};

/* Docker's rule for telling a registry host from a repository name: a '.'
 * or a ':' in it, or "localhost". Lower case only, so one host is one
 * directory; IPv6 literals in brackets. */
static bool looks_like_host(const char *s, size_t len)
{
	bool dot_or_colon = false;
	size_t i;

	if (len == 0 || len > HOST_NAME_MAX_LEN || s[0] == '.' || s[0] == '-' ||
	    s[0] == ':')
		return false;
	if (len == 9 && !strncmp(s, "localhost", 9))
		return true;
	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (ch == '.' || ch == ':')
			dot_or_colon = true;
		else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			   ch == '-' || ch == '[' || ch == ']'))
			return false;
	}
	return dot_or_colon && s[len - 1] != '.' && s[len - 1] != ':';
}

int hosts_new(const struct hosts_opts *o, struct blobcache *bc, struct hosts **out)
{
	struct hosts *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (!h)
		return -ENOMEM;
	h->o = *o;
	h->bc = bc;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->setup_done, NULL);
#define DUP(field, src)                                                                  \
	do {                                                                             \
		if ((src) && !(h->field = strdup(src)))                                  \
			goto nomem;                                                      \
	} while (0)
	DUP(registry_config, o->registry_config);
	DUP(plain_http_hosts, o->plain_http_hosts);
	DUP(mirror, o->mirror);
	DUP(ca_file, o->client.ca_file);
	DUP(cert_file, o->client.cert_file);
	DUP(key_file, o->client.key_file);
#undef DUP
	h->o.registry_config = h->registry_config;
	h->o.plain_http_hosts = h->plain_http_hosts;
	h->o.mirror = h->mirror;
	h->o.client.ca_file = h->ca_file;
	h->o.client.cert_file = h->cert_file;
	h->o.client.key_file = h->key_file;
	h->o.client.registry = NULL;
	h->o.client.username = h->o.client.password = h->o.client.identity_token = NULL;
	h->o.model.prefix = NULL;
	*out = h;
	return 0;
nomem:
	hosts_free(h);
	return -ENOMEM;
}

void hosts_free(struct hosts *h)
{
	struct site *s, *next;

	if (!h)
		return;
	for (s = h->sites; s; s = next) {
		next = s->next;
		model_free(s->model);
		oci_client_free(s->client);
		free(s->name);
		free(s);
	}
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->setup_done);
	free(h->registry_config);
	free(h->plain_http_hosts);
	free(h->mirror);
	free(h->ca_file);
	free(h->cert_file);
	free(h->key_file);
	free(h);
}

int hosts_connect(const struct oci_client_opts *co, bool offline,
		  const char *creds_source, struct oci_client **out)
{
	bool creds = co->username || co->identity_token;
	int ret = oci_client_new(co, out);

	if (ret) {
		log_err("chartfs: cannot set up the client for %s: %s", co->registry,
			strerror(-ret));
		return ret;
	}
	ret = offline ? 0 : oci_ping(*out);
	if (ret == -EACCES && creds) {
		log_err("chartfs: %s refused the credentials from %s: correct them there "
			"(helm registry login %s)",
			oci_client_base_url(*out), creds_source ? creds_source : "?",
			co->registry);
	} else if (ret == -EACCES) {
		log_warn("chartfs: %s refused anonymous access: what needs credentials "
			 "fails with EACCES",
			 oci_client_base_url(*out));
		ret = 0;
	}
	if (ret == -EACCES) {
		oci_client_free(*out);
		*out = NULL;
	} else if (ret) {
		log_err("chartfs: %s does not answer as an OCI registry: %s",
			oci_client_base_url(*out), strerror(-ret));
		oci_client_free(*out);
		*out = NULL;
	}
	return ret;
}

/* The mirrors -o mirror names for host s (ORIGIN=...), in front of its
 * client. */
static int site_mirrors(struct hosts *h, struct site *s, const struct oci_client_opts *co)
{
	struct oci_mirror_opts mo = {.registry_config = h->o.registry_config,
				     .plain_http_hosts = h->o.plain_http_hosts,
				     .pin_s = h->o.model.ttl};
	char *specs;
	int ret;

	if (!h->o.mirror)
		return 0;
	specs = oci_mirror_specs_for(h->o.mirror, s->name);
	if (!specs)
		return -ENOMEM;
	mo.specs = specs;
	ret = oci_mirrors_setup(s->client, co, &mo);
	free(specs);
	return ret;
}

/* Make the client and model of a new host; the lock is not held (DNS, TLS,
 * a credential helper and the ping take time). */
static int site_setup(struct hosts *h, struct site *s)
{
	struct oci_client_opts co = h->o.client;
	struct oci_creds cr = {0};
	int ret;

	ret = oci_creds_lookup(s->name, h->o.registry_config, &cr);
	if (ret == -ENOENT) {
		log_info("chartfs: no credentials for %s: anonymous", s->name);
	} else if (ret) {
		log_warn("chartfs: %s: cannot read its credentials: %s", s->name,
			 strerror(-ret));
		goto out;
	} else {
		log_info("chartfs: credentials for %s from %s", s->name, cr.source);
	}
	co.registry = s->name;
	co.plain_http = co.plain_http || strv_csv_has(h->o.plain_http_hosts, s->name);
	co.username = cr.username;
	co.password = cr.password;
	co.identity_token = cr.identity_token;
	ret = hosts_connect(&co, h->o.model.offline, cr.source, &s->client);
	if (ret) {
		/* Said why above; lookups get ENOENT until the retry. */
		if (ret != -ENOMEM)
			ret = -ENOENT;
		goto out;
	}
	if (!h->o.model.offline)
		ret = site_mirrors(h, s, &co);
	if (!ret)
		ret = model_new(&h->o.model, s->client, h->bc, &s->model);
out:
	oci_creds_clear(&cr);
	if (ret) {
		model_free(s->model);
		s->model = NULL;
		oci_client_free(s->client);
		s->client = NULL;
	}
	return ret;
}

int hosts_get(struct hosts *h, const char *name, size_t len, struct model **out)
{
	struct site *s;
	int ret;

	*out = NULL;
	if (!looks_like_host(name, len))
		return -ENOENT;
	pthread_mutex_lock(&h->lock);
	for (s = h->sites; s; s = s->next)
		if (strlen(s->name) == len && !strncmp(s->name, name, len))
			break;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || !(s->name = strndup(name, len))) {
			free(s);
			pthread_mutex_unlock(&h->lock);
			return -ENOMEM;
		}
		s->state = SITE_FAILED; /* set up below */
		s->next = h->sites;
		h->sites = s;
	}
	while (s->state == SITE_SETUP)
		pthread_cond_wait(&h->setup_done, &h->lock);
	if (s->state == SITE_FAILED &&
	    (s->failed_at == 0 || mono_s() - s->failed_at >= HOSTS_RETRY_SECONDS)) {
		/* One thread sets the host up; the others wait for it. */
		s->state = SITE_SETUP;
		s->forgot = atomic_load(&h->hup);
		pthread_mutex_unlock(&h->lock);
		ret = site_setup(h, s);
		pthread_mutex_lock(&h->lock);
		s->state = ret ? SITE_FAILED : SITE_READY;
		s->err = ret;
		s->failed_at = ret ? mono_s() : 0;
		pthread_cond_broadcast(&h->setup_done);
	}
	if (s->state == SITE_READY) {
		unsigned hup = atomic_load(&h->hup);

		if (s->forgot != hup) {
			s->forgot = hup;
			model_forget_soon(s->model);
		}
		*out = s->model;
		ret = 0;
	} else {
		ret = s->err;
	}
	pthread_mutex_unlock(&h->lock);
	return ret;
}

/* The host a config.json key names, as the root lists it. */
static int add_config_host(struct strv *sv, const char *key)
{
	const char *p = strstr(key, "://");
	size_t n;
	char buf[HOST_NAME_MAX_LEN + 1];

	p = p ? p + 3 : key;
	n = strcspn(p, "/");
	if (n == 0 || n > HOST_NAME_MAX_LEN)
		return 0;
	memcpy(buf, p, n);
	buf[n] = '\0';
	/* Docker Hub's credentials are keyed by its index; its API is here. */
	if (!strcmp(buf, "index.docker.io") || !strcmp(buf, "docker.io"))
		snprintf(buf, sizeof(buf), "registry-1.docker.io");
	if (!looks_like_host(buf, strlen(buf)))
		return 0;
	return strv_push(sv, buf);
}

int hosts_list(struct hosts *h, int (*fill)(void *arg, const char *host), void *arg)
{
	struct strv keys = {0}, names = {0};
	struct site *s;
	size_t i;
	int ret = 0;

	/* Read each time: a `helm registry login` after mounting shows up. */
	if (oci_creds_hosts(h->o.registry_config, &keys) == 0)
		for (i = 0; i < keys.n && !ret; i++)
			ret = add_config_host(&names, keys.v[i]);
	pthread_mutex_lock(&h->lock);
	for (s = h->sites; s && !ret; s = s->next)
		if (s->state == SITE_READY)
			ret = strv_push(&names, s->name);
	pthread_mutex_unlock(&h->lock);
	if (ret)
		goto out;
	strv_sort_uniq(&names);
	for (i = 0; i < names.n && !ret; i++)
		ret = fill(arg, names.v[i]);
out:
	strv_free(&keys);
	strv_free(&names);
	return ret;
}

uint64_t hosts_requests(struct hosts *h)
{
	uint64_t n = 0;
	struct site *s;

	pthread_mutex_lock(&h->lock);
	for (s = h->sites; s; s = s->next)
		if (s->state == SITE_READY)
			n += oci_client_requests(s->client);
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* Look up host's credentials again and give them to its client. */
static void reload_one(struct hosts *h, const char *host, struct oci_client *client)
{
	struct oci_creds cr = {0};
	int ret = oci_creds_lookup(host, h->o.registry_config, &cr);

	if (ret == -ENOENT)
		ret = 0;
	if (!ret)
		ret = oci_client_set_creds(client, cr.username, cr.password,
					   cr.identity_token);
	if (!ret)
		oci_mirrors_reload_creds(client, h->o.registry_config);
	if (ret)
		log_warn("chartfs: %s: cannot read its credentials again: %s", host,
			 strerror(-ret));
	else
		log_notice("chartfs: %s: credentials %s%s", host,
			   cr.source[0] ? "from " : "(none: anonymous)", cr.source);
	oci_creds_clear(&cr);
}

void hosts_reload_creds(struct hosts *h)
{
	struct strv names = {0};
	struct oci_client **clients = NULL;
	struct site *s;
	size_t i, n = 0;

	/* Credential helpers take time: none runs under the lock. Clients
	 * live as long as h, so they outlive the lock. */
	pthread_mutex_lock(&h->lock);
	for (s = h->sites; s; s = s->next)
		n += s->state == SITE_READY;
	clients = calloc(n ? n : 1, sizeof(*clients));
	n = 0;
	for (s = h->sites; clients && s; s = s->next)
		if (s->state == SITE_READY && strv_push(&names, s->name) == 0)
			clients[n++] = s->client;
	pthread_mutex_unlock(&h->lock);
	for (i = 0; i < n; i++)
		reload_one(h, names.v[i], clients[i]);
	free(clients);
	strv_free(&names);
}

void hosts_forget_soon(struct hosts *h)
{
	atomic_fetch_add(&h->hup, 1);
}
