/*
 * auth.c - registry authentication: WWW-Authenticate parsing, Basic
 * credentials, and Bearer tokens fetched from the realm and cached per scope.
 *
 * What a challenge asks for is remembered for its scope (the endpoint a
 * request is for), so later requests send credentials at once instead of
 * paying a 401 each. One endpoint asking for Basic (Harbor's catalog) does
 * not put the password on the others: a scope not challenged yet follows
 * the registry's default, which only the registry's root (/v2/) sets to
 * Basic, as docker's ping does, while any Bearer challenge makes its realm
 * the default (a token is scoped; a password is not).
 * Network I/O (token fetches) never happens under auth_lock.
 */
#include "client/http_i.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "common/mono.h"

#define TOKEN_MAX (64u * 1024)
#define TOKEN_RESP_MAX (1u * 1024 * 1024)
/* Scopes whose challenge and token are remembered; the oldest go first and
 * then follow the default again. */
#define AUTH_SCOPES_KEPT 64

/* A set of credentials: immutable once made, shared by reference, so a
 * token fetch in flight keeps the set it started with while
 * oci_client_set_creds swaps in another. */
struct auth_creds {
	atomic_int refs;
	char *username; /* Basic, or NULL */
	char *password;
	char *identity_token; /* an OAuth2 refresh token, or NULL */
};

struct auth_scope {
	struct auth_scope *next;
	char *key;   /* the request's scope; "" for none */
	int scheme;  /* AUTH_BASIC or AUTH_BEARER */
	char *realm; /* Bearer: where its tokens come from */
	char *service;
	char *token;	   /* Bearer: the last token, or NULL */
	char *asked;	   /* the scopes that token was asked for */
	long long expires; /* CLOCK_MONOTONIC seconds */
};

void auth_free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static void scope_forget_token(struct auth_scope *e)
{
	auth_free_secret(e->token);
	free(e->asked);
	e->token = e->asked = NULL;
	e->expires = 0;
}

static void scope_free(struct auth_scope *e)
{
	scope_forget_token(e);
	free(e->key);
	free(e->realm);
	free(e->service);
	free(e);
}

static void creds_put(struct auth_creds *cr)
{
	if (!cr || atomic_fetch_sub(&cr->refs, 1) != 1)
		return;
	free(cr->username);
	auth_free_secret(cr->password);
	auth_free_secret(cr->identity_token);
	free(cr);
}

static int creds_new(const char *username, const char *password,
		     const char *identity_token, struct auth_creds **out)
{
	struct auth_creds *cr = calloc(1, sizeof(*cr));

	if (!cr)
		return -ENOMEM;
	atomic_init(&cr->refs, 1);
	cr->username = username ? strdup(username) : NULL;
	cr->password = password ? strdup(password) : NULL;
	cr->identity_token = identity_token ? strdup(identity_token) : NULL;
	if ((username && !cr->username) || (password && !cr->password) ||
	    (identity_token && !cr->identity_token)) {
		creds_put(cr);
		return -ENOMEM;
	}
	*out = cr;
	return 0;
}

/* The credentials in force, with a reference, and their generation. */
static struct auth_creds *creds_get(struct oci_client *c, unsigned *gen)
{
	struct auth_creds *cr;

	pthread_mutex_lock(&c->auth_lock);
	cr = c->creds;
	atomic_fetch_add(&cr->refs, 1);
	if (gen)
		*gen = c->creds_gen;
	pthread_mutex_unlock(&c->auth_lock);
	return cr;
}

int auth_creds_init(struct oci_client *c, const char *username, const char *password,
		    const char *identity_token)
{
	return creds_new(username, password, identity_token, &c->creds);
}

int oci_client_set_creds(struct oci_client *c, const char *username, const char *password,
			 const char *identity_token)
{
	struct auth_creds *cr, *old;
	struct auth_scope *e;
	int ret = creds_new(username, password, identity_token, &cr);

	if (ret)
		return ret;
	pthread_mutex_lock(&c->auth_lock);
	old = c->creds;
	c->creds = cr;
	c->creds_gen++;
	/* A token says what the old credentials were granted. */
	for (e = c->scopes; e; e = e->next)
		scope_forget_token(e);
	pthread_mutex_unlock(&c->auth_lock);
	creds_put(old);
	return 0;
}

void auth_free(struct oci_client *c)
{
	struct auth_scope *e, *next;

	for (e = c->scopes; e; e = next) {
		next = e->next;
		scope_free(e);
	}
	c->scopes = NULL;
	free(c->auth_realm);
	free(c->auth_service);
	c->auth_realm = c->auth_service = NULL;
	creds_put(c->creds);
	c->creds = NULL;
}

/* ---- WWW-Authenticate -------------------------------------------------- */

void auth_challenge_clear(struct challenge *ch)
{
	free(ch->realm);
	free(ch->service);
	free(ch->scope);
	free(ch->error);
	memset(ch, 0, sizeof(*ch));
}

static bool is_tchar(char ch)
{
	return ch && !strchr(" \t,=\"", ch);
}

/* One auth-param value, token or quoted-string (with \-escapes), from *p. */
static char *param_value(const char **p)
{
	const char *s = *p;
	size_t n = 0;
	char *v;

	if (*s != '"') {
		while (is_tchar(s[n]))
			n++;
		*p = s + n;
		return strndup(s, n);
	}
	s++;
	v = malloc(strlen(s) + 1);
	if (!v)
		return NULL;
	while (*s && *s != '"') {
		if (*s == '\\' && s[1])
			s++;
		v[n++] = *s++;
	}
	v[n] = '\0';
	*p = *s ? s + 1 : s;
	return v;
}

/* The scheme a challenge names: its token is n bytes at s. */
static int scheme_of(const char *s, size_t n)
{
	if (n == 6 && !strncasecmp(s, "Bearer", 6))
		return AUTH_BEARER;
	if (n == 5 && !strncasecmp(s, "Basic", 5))
		return AUTH_BASIC;
	return AUTH_NONE;
}

static bool is_token68(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("-._~+/", c));
}

/* Skip a token68 credential after a scheme ("Negotiate abc=="): it ends
 * the challenge, so it must be followed by a comma or the end. */
static const char *skip_token68(const char *p)
{
	const char *q = p;

	while (is_token68(*q))
		q++;
	if (q == p)
		return p;
	while (*q == '=')
		q++;
	while (*q == ' ' || *q == '\t')
		q++;
	return !*q || *q == ',' ? q : p;
}

/* The auth-params of one challenge from *p, up to the next challenge or
 * the end; kept in ch when ch is not NULL. */
static int parse_params(const char **p, struct challenge *ch)
{
	const char *s = *p, *key;
	size_t klen;

	for (;;) {
		char *v, **slot = NULL;
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		/* Either key=value, or the scheme of the next challenge. */
		*p = s;
		key = s;
		while (is_tchar(*s))
			s++;
		klen = (size_t)(s - key);
		while (*s == ' ' || *s == '\t')
			s++;
		if (!klen || *s != '=')
			return 0;
		s++;
		while (*s == ' ' || *s == '\t')
			s++;
		v = param_value(&s);
		if (!v)
			return -ENOMEM;
		if (ch && klen == 5 && !strncasecmp(key, "realm", 5))
			slot = &ch->realm;
		else if (ch && klen == 7 && !strncasecmp(key, "service", 7))
			slot = &ch->service;
		else if (ch && klen == 5 && !strncasecmp(key, "scope", 5))
			slot = &ch->scope;
		else if (ch && klen == 5 && !strncasecmp(key, "error", 5))
			slot = &ch->error;
		if (slot) {
			free(*slot);
			*slot = v;
		} else {
			free(v);
		}
	}
}

/* A header may list several challenges (RFC 7235 section 4.1: Basic
 * realm="x", Bearer realm="...",service="..."): the first Bearer one is
 * kept, else the first Basic one. Anything else is skipped. */
int auth_parse_challenge(const char *h, struct challenge *ch)
{
	struct challenge cur;
	const char *p = h, *name;
	int scheme, ret = 0;

	memset(ch, 0, sizeof(*ch));
	while (!ret && ch->scheme != AUTH_BEARER) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		name = p;
		while (is_tchar(*p))
			p++;
		if (p == name || *p == '=') {
			/* A stray "=value" or quoted string: no challenge. */
			char *v;
			if (*p == '=')
				p++;
			v = param_value(&p);
			ret = v ? 0 : -ENOMEM;
			free(v);
			continue;
		}
		scheme = scheme_of(name, (size_t)(p - name));
		while (*p == ' ' || *p == '\t')
			p++;
		p = skip_token68(p);
		memset(&cur, 0, sizeof(cur));
		cur.scheme = scheme;
		/* Only a better challenge than the one kept is worth keeping. */
		ret = parse_params(&p, scheme > ch->scheme ? &cur : NULL);
		if (!ret && scheme > ch->scheme) {
			auth_challenge_clear(ch);
			*ch = cur;
		} else {
			auth_challenge_clear(&cur);
		}
	}
	if (ret) {
		auth_challenge_clear(ch);
		return ret;
	}
	return ch->scheme == AUTH_NONE ? -EINVAL : 0;
}

/* ---- credentials ------------------------------------------------------- */

static char *base64(const char *s)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *in = (const unsigned char *)s;
	size_t len = strlen(s), i, j = 0;
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (!out)
		return NULL;
	for (i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[j++] = tab[(v >> 18) & 63];
		out[j++] = tab[(v >> 12) & 63];
		out[j++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[j++] = i + 2 < len ? tab[v & 63] : '=';
	}
	out[j] = '\0';
	return out;
}

static char *basic_header(const struct auth_creds *cr)
{
	char *pair = NULL, *b64, *hdr = NULL;

	if (asprintf(&pair, "%s:%s", cr->username, cr->password ? cr->password : "") < 0)
		return NULL;
	b64 = base64(pair);
	auth_free_secret(pair);
	if (b64 && asprintf(&hdr, "Authorization: Basic %s", b64) < 0)
		hdr = NULL;
	auth_free_secret(b64);
	return hdr;
}

static char *bearer_header(const char *token)
{
	char *hdr;

	if (asprintf(&hdr, "Authorization: Bearer %s", token) < 0)
		return NULL;
	return hdr;
}

/* ---- per-scope state ---------------------------------------------------- */

/* One token request: the realm asked, for what, and the scope it is kept
 * under. */
struct token_req {
	const char *realm; /* as the challenge gave it */
	const char *service;
	const char *asked;		/* space-separated scopes, or NULL */
	const char *key;		/* the request's scope; "" for none */
	const char *where;		/* the realm as it may be logged */
	const struct auth_creds *creds; /* what the fetch may send */
	unsigned gen;			/* their generation (store_token) */
};

/* The entry of key, or NULL; lock held. */
static struct auth_scope *scope_find_locked(struct oci_client *c, const char *key)
{
	struct auth_scope *e;

	for (e = c->scopes; e; e = e->next)
		if (!strcmp(e->key, key))
			return e;
	return NULL;
}

/* The entry of key, made if there is none, first in the list (the oldest
 * beyond AUTH_SCOPES_KEPT are dropped); NULL without memory. Lock held. */
static struct auth_scope *scope_get_locked(struct oci_client *c, const char *key)
{
	struct auth_scope **pp, *e = NULL;
	size_t n = 0;

	for (pp = &c->scopes; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->key, key)) {
			e = *pp;
			*pp = e->next;
			break;
		}
	}
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (e && !(e->key = strdup(key))) {
			free(e);
			e = NULL;
		}
		if (!e)
			return NULL;
	}
	e->next = c->scopes;
	c->scopes = e;
	for (pp = &c->scopes; *pp; pp = &(*pp)->next) {
		if (++n > AUTH_SCOPES_KEPT) {
			struct auth_scope *rest = *pp;
			*pp = NULL;
			while (rest) {
				struct auth_scope *next = rest->next;
				scope_free(rest);
				rest = next;
			}
			break;
		}
	}
	return e;
}

/* Replace *slot with a copy of v (NULL stays NULL); -ENOMEM keeps *slot. */
static int set_copy(char **slot, const char *v)
{
	char *d = NULL;

	if (v && !(d = strdup(v)))
		return -ENOMEM;
	free(*slot);
	*slot = d;
	return 0;
}

/* Key's endpoint asked for scheme (with realm and service for Bearer): its
 * token, if any, is forgotten. Lock held. */
static int scope_set_locked(struct oci_client *c, const char *key, int scheme,
			    const char *realm, const char *service)
{
	struct auth_scope *e = scope_get_locked(c, key);

	if (!e || set_copy(&e->realm, realm) || set_copy(&e->service, service))
		return -ENOMEM;
	e->scheme = scheme;
	scope_forget_token(e);
	return 0;
}

/* Keep a token for key: it came from realm for the scopes asked. */
static void store_token(struct oci_client *c, const struct token_req *tr,
			const char *value, long expires_in)
{
	struct auth_scope *e;
	char *tok = strdup(value), *asked = strdup(tr->asked ? tr->asked : "");

	pthread_mutex_lock(&c->auth_lock);
	/* Credentials swapped during the fetch: this token is the old ones'. */
	e = tok && asked && tr->gen == c->creds_gen ? scope_get_locked(c, tr->key) : NULL;
	if (e && !set_copy(&e->realm, tr->realm) && !set_copy(&e->service, tr->service)) {
		scope_forget_token(e);
		e->scheme = AUTH_BEARER;
		e->token = tok;
		e->asked = asked;
		/* Renew a little early so a token does not expire in flight. */
		e->expires = mono_s() + expires_in - (expires_in >= 20 ? 10 : 1);
		tok = asked = NULL;
	}
	pthread_mutex_unlock(&c->auth_lock);
	auth_free_secret(tok);
	free(asked);
}

/* Does the space-separated list have name every scope in want names? */
static bool scopes_cover(const char *have, const char *want)
{
	const char *w = want ? want : "";

	while (*w) {
		size_t n = strcspn(w, " "), m;
		const char *h = have ? have : "";
		bool found = false;
		while (n && *h && !found) {
			m = strcspn(h, " ");
			found = m == n && !strncmp(h, w, n);
			h += m;
			while (*h == ' ')
				h++;
		}
		if (n && !found)
			return false;
		w += n;
		while (*w == ' ')
			w++;
	}
	return true;
}

/* The realm URL with service and one scope= per space-separated scope. */
static char *token_url(const char *realm, const char *service, const char *scopes)
{
	char *url = strdup(realm), *next, *esc;
	const char *p = scopes ? scopes : "";
	bool first = !strchr(realm, '?');

	if (url && service && service[0]) {
		esc = url_escape(service);
		if (!esc ||
		    asprintf(&next, "%s%cservice=%s", url, first ? '?' : '&', esc) < 0)
			next = NULL;
		free(esc);
		free(url);
		url = next;
		first = false;
	}
	while (url && *p) {
		size_t n = strcspn(p, " ");
		char *one = n ? strndup(p, n) : NULL;
		if (n) {
			esc = one ? url_escape(one) : NULL;
			if (!esc || asprintf(&next, "%s%cscope=%s", url,
					     first ? '?' : '&', esc) < 0)
				next = NULL;
			free(esc);
			free(one);
			free(url);
			url = next;
			first = false;
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	return url;
}

static bool token_ok(const char *t)
{
	size_t n = 0;

	for (; t && *t; t++, n++)
		if (*t <= 0x20 || *t >= 0x7f || n >= TOKEN_MAX)
			return false;
	return n > 0;
}

/* May a secret go to url? Over TLS, or to the registry's own origin (its
 * user chose clear text there with plain_http); never in clear text to
 * another origin, another port of the same host included. */
static bool secret_ok(struct oci_client *c, const char *url, const char *where)
{
	if (!strncasecmp(url, "https://", 8) || url_same_origin(c, url))
		return true;
	if (!atomic_exchange(&c->realm_refused_logged, true))
		log_notice("client: token realm %s is plain http on another origin than "
			   "the registry: asking it without credentials",
			   where);
	return false;
}

/* The OAuth2 form for an identity token (distribution's token spec):
 * several scopes go space-separated into one scope field. */
static char *refresh_form(const struct auth_creds *cr, const char *service,
			  const char *scopes)
{
	char *svc = url_escape(service ? service : "");
	char *scp = url_escape(scopes ? scopes : "");
	char *tok = url_escape(cr->identity_token);
	char *form = NULL;

	if (svc && scp && tok &&
	    asprintf(&form,
		     "grant_type=refresh_token&refresh_token=%s&service=%s&scope=%s"
		     "&client_id=chartfs",
		     tok, svc, scp) < 0)
		form = NULL;
	free(svc);
	free(scp);
	auth_free_secret(tok);
	return form;
}

/* Store the token of a realm's answer; its header in *hdr when hdr is set
 * (a token may expire the moment it is stored). */
static int take_token(struct oci_client *c, const struct http_resp *rs,
		      const struct token_req *tr, char **hdr, char *why, size_t why_len)
{
	json_t *root =
	    json_loadb(rs->body.data ? rs->body.data : "", rs->body.len, 0, NULL);
	const char *tok = json_string_value(json_object_get(root, "token"));
	long expires = 60;
	json_t *v;
	int ret = 0;

	if (!tok || !tok[0])
		tok = json_string_value(json_object_get(root, "access_token"));
	v = json_object_get(root, "expires_in");
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    json_integer_value(v) < 365L * 86400)
		expires = (long)json_integer_value(v);
	if (token_ok(tok)) {
		store_token(c, tr, tok, expires);
		if (hdr) {
			*hdr = bearer_header(tok);
			ret = *hdr ? 0 : -ENOMEM;
		}
	} else {
		snprintf(why, why_len, "token from %s: no usable token in the answer",
			 tr->where);
		ret = -EACCES;
	}
	json_decref(root);
	return ret;
}

/* POST the identity token to the realm (resolved: url); -ENOENT when the
 * realm only speaks GET (404), so the caller falls back. */
static int post_token(struct oci_client *c, const char *url, const struct token_req *tr,
		      char **hdr, char *why, size_t why_len)
{
	struct http_req rq = HTTP_REQ_INIT;
	struct http_resp rs = {0};
	char *form = refresh_form(tr->creds, tr->service, tr->asked);
	int ret;

	if (!form)
		return -ENOMEM;
	rq.method = "POST";
	rq.url = url;
	rq.no_auth = true;
	rq.content_type = "application/x-www-form-urlencoded";
	rq.body = form;
	rq.body_len = strlen(form);
	rq.max_body = TOKEN_RESP_MAX;
	rq.quiet = HTTP_QUIET_ALL;
	ret = http_request(c, &rq, &rs);
	if (ret == -ENOENT) {
		log_debug("client: token realm %s has no OAuth2 POST: using GET",
			  tr->where);
	} else if (ret) {
		snprintf(why, why_len, "token from %s (identity token): %s", tr->where,
			 rs.cause);
		ret = ret == -EACCES || ret == -EINVAL ? -EACCES : ret;
	} else {
		ret = take_token(c, &rs, tr, hdr, why, why_len);
	}
	if (rs.body.data)
		explicit_bzero(rs.body.data, rs.body.len);
	http_resp_clear(&rs);
	auth_free_secret(form);
	return ret;
}

/* Get a token for scopes asked from realm and keep it under key: POST
 * with the identity token if there is one, else (or on 404) GET with basic
 * credentials or anonymously. */
static int fetch_token(struct oci_client *c, const char *realm, const char *service,
		       const char *asked, const char *key, char **hdr, char *why,
		       size_t why_len)
{
	struct http_req rq = HTTP_REQ_INIT;
	struct http_resp rs = {0};
	struct token_req tr = {realm, service, asked, key, NULL, NULL, 0};
	struct auth_creds *cr;
	char *url = NULL, *basic = NULL, where[256];
	int ret;

	ret = url_resolve(c, realm, realm, false, &url);
	if (ret) {
		snprintf(why, why_len, "401 with an unusable token realm");
		return -EACCES;
	}
	url_log_path(c, url, where, sizeof(where));
	tr.where = where;
	tr.creds = cr = creds_get(c, &tr.gen);
	if (cr->identity_token && secret_ok(c, url, where)) {
		ret = post_token(c, url, &tr, hdr, why, why_len);
		if (ret != -ENOENT)
			goto out;
	}
	free(url);
	url = token_url(realm, service, asked);
	if (!url) {
		ret = -ENOMEM;
		goto out;
	}
	if (cr->username && secret_ok(c, url, where) && !(basic = basic_header(cr))) {
		ret = -ENOMEM;
		goto out;
	}
	rq.method = "GET";
	rq.url = url;
	rq.no_auth = true;
	rq.authorization = basic;
	rq.max_body = TOKEN_RESP_MAX;
	rq.quiet = HTTP_QUIET_ALL;
	ret = http_request(c, &rq, &rs);
	if (ret) {
		snprintf(why, why_len, "token from %s: %s", where, rs.cause);
		ret = ret == -EACCES || ret == -ENOENT || ret == -EINVAL ? -EACCES : ret;
		goto out;
	}
	ret = take_token(c, &rs, &tr, hdr, why, why_len);
out:
	if (rs.body.data)
		explicit_bzero(rs.body.data, rs.body.len);
	http_resp_clear(&rs);
	auth_free_secret(basic);
	free(url);
	creds_put(cr);
	return ret;
}

int auth_header(struct oci_client *c, const char *scope, char **hdr, char *why,
		size_t why_len)
{
	const char *key = scope ? scope : "";
	char *realm = NULL, *service = NULL;
	const char *r, *sv;
	struct auth_scope *e;
	int scheme, ret = 0;

	*hdr = NULL;
	pthread_mutex_lock(&c->auth_lock);
	/* What this scope's endpoint asked for, else the registry's default. */
	e = scope_find_locked(c, key);
	if (e && e->scheme == AUTH_NONE)
		e = NULL; /* half made when memory ran out */
	scheme = e ? e->scheme : c->auth_scheme;
	r = e ? e->realm : c->auth_realm;
	sv = e ? e->service : c->auth_service;
	if (scheme == AUTH_BASIC && c->creds->username) {
		*hdr = basic_header(c->creds);
		ret = *hdr ? 0 : -ENOMEM;
	} else if (scheme == AUTH_BEARER && e && e->token && e->expires > mono_s()) {
		*hdr = bearer_header(e->token);
		ret = *hdr ? 0 : -ENOMEM;
	} else if (scheme == AUTH_BEARER && r) {
		realm = strdup(r);
		service = sv ? strdup(sv) : NULL;
		ret = !realm || (sv && !service) ? -ENOMEM : 0;
	}
	pthread_mutex_unlock(&c->auth_lock);
	if (ret || !realm)
		goto out;
	/* The registry wants tokens: get one now rather than after a 401. */
	ret = fetch_token(c, realm, service, scope, key, hdr, why, why_len);
out:
	if (ret == -ENOMEM)
		snprintf(why, why_len, "out of memory");
	free(realm);
	free(service);
	return ret;
}

/* A Basic challenge: for its own scope only, unless it came from the
 * registry's root (scope NULL), which speaks for the whole registry. */
static int challenge_basic(struct oci_client *c, const char *scope, bool sent, char *why,
			   size_t why_len)
{
	const char *key = scope ? scope : "";
	struct auth_scope *e;
	bool has_user;
	int was, ret;

	pthread_mutex_lock(&c->auth_lock);
	has_user = c->creds->username != NULL;
	e = scope_find_locked(c, key);
	was = e ? e->scheme : c->auth_scheme;
	ret = scope_set_locked(c, key, AUTH_BASIC, NULL, NULL);
	if (!scope)
		c->auth_scheme = AUTH_BASIC;
	pthread_mutex_unlock(&c->auth_lock);
	if (ret) {
		snprintf(why, why_len, "out of memory");
	} else if (!has_user) {
		snprintf(why, why_len, "401: the registry wants credentials");
		ret = -EACCES;
	} else if (sent && was == AUTH_BASIC) {
		snprintf(why, why_len, "401: credentials refused");
		ret = -EACCES;
	}
	return ret;
}

/* A Bearer challenge: its realm becomes the scope's and the default, and a
 * token for what it names is fetched; unless the token just sent was
 * already asked for all of that and the registry says insufficient_scope
 * (Docker Hub's catalog): a fresh one from the same realm cannot do better. */
static int challenge_bearer(struct oci_client *c, const struct challenge *ch,
			    const char *scope, bool sent, char *why, size_t why_len)
{
	const char *key = scope ? scope : "";
	const char *asked = ch->scope && ch->scope[0] ? ch->scope : scope;
	bool hopeless;
	struct auth_scope *e;
	int ret = 0;

	pthread_mutex_lock(&c->auth_lock);
	e = scope_find_locked(c, key);
	hopeless = sent && ch->error && !strcmp(ch->error, "insufficient_scope") && e &&
		   e->scheme == AUTH_BEARER && e->realm && !strcmp(e->realm, ch->realm) &&
		   e->asked && scopes_cover(e->asked, asked);
	if (!hopeless) {
		c->auth_scheme = AUTH_BEARER;
		if (set_copy(&c->auth_realm, ch->realm) ||
		    set_copy(&c->auth_service, ch->service) ||
		    scope_set_locked(c, key, AUTH_BEARER, ch->realm, ch->service))
			ret = -ENOMEM;
	}
	pthread_mutex_unlock(&c->auth_lock);
	if (hopeless) {
		snprintf(why, why_len,
			 "401 insufficient_scope: the token for %s does not grant it",
			 asked && asked[0] ? asked : "no scope");
		return -EACCES;
	}
	if (ret) {
		snprintf(why, why_len, "out of memory");
		return ret;
	}
	/* The registry knows best what the request needs (e.g. delete). */
	return fetch_token(c, ch->realm, ch->service, asked, key, NULL, why, why_len);
}

int auth_challenge(struct oci_client *c, const char *www_auth, const char *scope,
		   bool sent_credentials, char *why, size_t why_len)
{
	struct challenge ch;
	int ret;

	if (!www_auth) {
		snprintf(why, why_len, "401 without a challenge");
		return -EACCES;
	}
	ret = auth_parse_challenge(www_auth, &ch);
	if (ret) {
		snprintf(why, why_len, "401 with an unsupported challenge");
		return ret == -ENOMEM ? ret : -EACCES;
	}
	if (ch.scheme == AUTH_BASIC) {
		ret = challenge_basic(c, scope, sent_credentials, why, why_len);
	} else if (!ch.realm || !ch.realm[0]) {
		snprintf(why, why_len, "401: bearer challenge without a realm");
		ret = -EACCES;
	} else {
		ret = challenge_bearer(c, &ch, scope, sent_credentials, why, why_len);
	}
	auth_challenge_clear(&ch);
	return ret;
}

void auth_denied_cause(const struct oci_client *c, const char *scope, char *why,
		       size_t why_len)
{
	size_t n = strlen(why);

	if (n + 1 < why_len)
		snprintf(why + n, why_len - n, " (registry %s, scope %s)", c->registry,
			 scope && scope[0] ? scope : "none");
}
