/*
 * http.c - the request core: one exchange with retries, the 401 round,
 * status -> errno, and the single log line per failure.
 */
#include "client/http_i.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mono.h"

/* An error answer is read for its message only: the rest is dropped. */
#define ERR_BODY_MAX (64u * 1024)
/* A 2xx answer kept in memory (tag lists, catalog pages) unless the request
 * names its own cap (manifests: OCI_MANIFEST_MAX; tokens: auth.c). */
#define DEFAULT_BODY_MAX (1u * 1024 * 1024)
#define MAX_RETRIES 3
#define RETRY_AFTER_CAP_MS 5000

/* The deadlines of one call (CLOCK_MONOTONIC ms), shared by its attempts,
 * its 401 round and the token requests made on its behalf. */
struct deadline {
	int64_t start;
	int64_t answer; /* an answer must begin: io_timeout + the known size */
	int64_t hard;	/* the call ends: io_timeout + the largest body it may get */
};

/* The deadline a call in progress on this thread gives the calls it makes
 * itself (a token request inside a 401 round), or 0. */
static _Thread_local int64_t call_until;

/* Why this thread's last request failed (http_last_cause). */
static _Thread_local char last_cause[HTTP_CAUSE_MAX];

char *http_last_cause(void)
{
	return last_cause;
}

/* State of one transfer attempt, shared with the curl callbacks. */
struct xfer {
	struct oci_client *c;
	const struct http_req *rq;
	struct http_resp *rs;
	const struct deadline *dl;
	size_t body_cap;
	uint64_t in_pos;
	uint64_t out_pos;  /* bytes of a 2xx body written into out_fd */
	bool err_body_cut; /* an error body reached ERR_BODY_MAX: not a failure */
	int err;	   /* set by a callback that aborted the transfer */
	const char *err_cause;
	char err_buf[288]; /* err_cause when it is formatted */
};

int64_t http_carry_ms(uint64_t bytes)
{
	/* Past 2^40 bytes (eight months at the rate) nothing changes. */
	if (bytes > (1ull << 40))
		bytes = 1ull << 40;
	return (int64_t)(bytes * 1000 / HTTP_MIN_RATE);
}

/* What the request itself says it carries: the blob it downloads, the
 * body it uploads. */
static uint64_t known_size(const struct http_req *rq)
{
	if (rq->out_fd >= 0)
		return rq->out_size;
	if (rq->in_fd >= 0)
		return rq->in_len;
	return rq->body_len;
}

/* The most a 2xx answer to rq may hold. */
static uint64_t ok_cap(const struct http_req *rq)
{
	if (rq->out_fd >= 0)
		return rq->out_size;
	return rq->max_body ? rq->max_body : DEFAULT_BODY_MAX;
}

void http_resp_clear(struct http_resp *rs)
{
	free(rs->body.data);
	free(rs->location);
	free(rs->link_next);
	free(rs->content_type);
	free(rs->docker_digest);
	free(rs->www_auth);
	memset(rs, 0, sizeof(*rs));
}

/* ---- curl callbacks ---------------------------------------------------- */

static char *header_value(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name), start, end;

	if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
		return NULL;
	start = n + 1;
	while (start < len && (line[start] == ' ' || line[start] == '\t'))
		start++;
	end = len;
	while (end > start && strchr(" \t\r\n", line[end - 1]))
		end--;
	return strndup(line + start, end - start);
}

/* ---- Link (RFC 8288) ---------------------------------------------------- */

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static bool is_link_tchar(char c)
{
	return c && !strchr(" \t,;=\"<>", c);
}

/* Skip a link-param value at p, a token or a quoted string (\-escapes);
 * *is_next tells whether one of its space-separated relation types is
 * "next" (section 3.3: rel="first next"). */
static const char *link_value(const char *p, bool *is_next)
{
	bool quoted = *p == '"', esc, end;
	char type[4];
	size_t n = 0;

	*is_next = false;
	if (quoted)
		p++;
	for (;; p++) {
		esc = quoted && *p == '\\' && p[1];
		if (esc)
			p++;
		end = !esc && (quoted ? !*p || *p == '"' : !is_link_tchar(*p));
		if (end || (!esc && (*p == ' ' || *p == '\t'))) {
			if (n == 4 && !strncasecmp(type, "next", 4))
				*is_next = true;
			n = 0;
			if (end)
				break;
			continue;
		}
		if (n < sizeof(type))
			type[n] = *p;
		n++;
	}
	if (quoted && *p == '"')
		p++;
	return p;
}

/* Skip to the comma that ends a link-value (commas in quoted strings do
 * not count). */
static const char *skip_link(const char *p)
{
	while (*p && *p != ',') {
		if (*p++ != '"')
			continue;
		while (*p && *p != '"')
			p += *p == '\\' && p[1] ? 2 : 1;
		if (*p)
			p++;
	}
	return p;
}

/* The target of the rel="next" entry of a Link header, or NULL. The value
 * is a comma-separated list of <target>; param=value... entries; only the
 * first rel of an entry counts (section 3.3). */
char *http_link_next(const char *v)
{
	const char *p = v, *lt, *gt, *name;
	bool next, is_next, seen_rel;
	size_t n;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			return NULL;
		if (*p != '<') {
			p = skip_link(p);
			continue;
		}
		lt = p;
		gt = strchr(lt, '>');
		if (!gt)
			return NULL;
		next = seen_rel = false;
		p = skip_ows(gt + 1);
		while (*p == ';') {
			name = p = skip_ows(p + 1);
			while (is_link_tchar(*p))
				p++;
			n = (size_t)(p - name);
			p = skip_ows(p);
			if (*p == '=') {
				p = skip_ows(link_value(skip_ows(p + 1), &is_next));
				if (n == 3 && !strncasecmp(name, "rel", 3) && !seen_rel) {
					next = is_next;
					seen_rel = true;
				}
			}
		}
		if (next)
			return strndup(lt + 1, (size_t)(gt - lt - 1));
		p = skip_link(p);
	}
}

static void set_str(char **slot, char *v)
{
	if (!v)
		return;
	free(*slot);
	*slot = v;
}

/* The best scheme a WWW-Authenticate value offers (AUTH_NONE: none usable). */
static int challenge_scheme(const char *v)
{
	struct challenge ch;
	int scheme;

	if (auth_parse_challenge(v, &ch))
		return AUTH_NONE;
	scheme = ch.scheme;
	auth_challenge_clear(&ch);
	return scheme;
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	struct http_resp *rs = x->rs;
	size_t len = size * n;
	char *v;

	if (len > 5 && !strncasecmp(buf, "HTTP/", 5)) {
		/* A new response (after a redirect or 100): forget the last.
		 * curl's line is not NUL-terminated, so parse a copy. */
		char line[32], *sp;
		snprintf(line, sizeof(line), "%.*s", (int)(len < 31 ? len : 31), buf);
		sp = strchr(line, ' ');
		http_resp_clear(rs);
		rs->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		x->body_cap = 0;
		return len;
	}
	if ((v = header_value(buf, len, "Location")))
		set_str(&rs->location, v);
	else if ((v = header_value(buf, len, "Content-Type")))
		set_str(&rs->content_type, v);
	else if ((v = header_value(buf, len, "Docker-Content-Digest")))
		set_str(&rs->docker_digest, v);
	else if ((v = header_value(buf, len, "OCI-Subject"))) {
		rs->oci_subject = true;
		free(v);
	} else if ((v = header_value(buf, len, "Link"))) {
		if (!rs->link_next)
			rs->link_next = http_link_next(v);
		free(v);
	} else if ((v = header_value(buf, len, "WWW-Authenticate"))) {
		int scheme = challenge_scheme(v);
		if (!rs->www_auth || scheme > rs->www_auth_scheme) {
			set_str(&rs->www_auth, v);
			rs->www_auth_scheme = scheme;
		} else {
			free(v);
		}
	} else if ((v = header_value(buf, len, "Retry-After"))) {
		char *end;
		long s = strtol(v, &end, 10);
		rs->retry_after = (end != v && *end == '\0' && s > 0) ? s : 0;
		free(v);
	}
	return len;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	struct http_resp *rs = x->rs;
	size_t len = size * n, limit;
	bool ok = rs->status >= 200 && rs->status < 300;
	char *nb;

	if (ok && x->rq->out_fd >= 0) {
		/* Not one byte past the descriptor's size reaches the file:
		 * a registry cannot fill the disk with an endless body. */
		if (len > x->rq->out_size - x->out_pos) {
			snprintf(x->err_buf, sizeof(x->err_buf),
				 "body longer than the %" PRIu64
				 " bytes its descriptor declares",
				 x->rq->out_size);
			x->err_cause = x->err_buf;
			x->err = -EIO;
			return 0;
		}
		x->out_pos += len;
		x->err = write_all(x->rq->out_fd, p, len);
		if (x->err) {
			/* Where and why: a long name is cut short so that
			 * the reason always fits. */
			snprintf(x->err_buf, sizeof(x->err_buf),
				 "cannot write the blob%s%.200s: %s",
				 x->rq->out_name ? " into " : "",
				 x->rq->out_name ? x->rq->out_name : "",
				 strerror(-x->err));
			x->err_cause = x->err_buf;
			return 0;
		}
		return len;
	}
	limit = ok ? (size_t)ok_cap(x->rq) : ERR_BODY_MAX;
	if (rs->body.len + len > limit) {
		if (ok) {
			x->err = -EIO;
			snprintf(x->err_buf, sizeof(x->err_buf),
				 "answer larger than its cap of %zu bytes", limit);
			x->err_cause = x->err_buf;
			return 0;
		}
		/* An error body is only read for its message: keep the start
		 * and end the transfer (perform_once knows it is no failure). */
		len = limit - rs->body.len;
		x->err_body_cut = true;
		if (!len)
			return 0;
	}
	if (rs->body.len + len + 1 > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 4096;
		while (cap < rs->body.len + len + 1)
			cap *= 2;
		nb = realloc(rs->body.data, cap);
		if (!nb) {
			x->err = -ENOMEM;
			x->err_cause = "out of memory";
			return 0;
		}
		rs->body.data = nb;
		x->body_cap = cap;
	}
	memcpy(rs->body.data + rs->body.len, p, len);
	rs->body.len += len;
	rs->body.data[rs->body.len] = '\0';
	return x->err_body_cut ? 0 : size * n;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	const struct http_req *rq = x->rq;
	uint64_t total = rq->in_fd >= 0 ? rq->in_len : rq->body_len;
	size_t want = size * n;
	ssize_t r;

	if (x->in_pos >= total)
		return 0;
	if (want > total - x->in_pos)
		want = (size_t)(total - x->in_pos);
	if (rq->in_fd < 0) {
		memcpy(p, (const char *)rq->body + x->in_pos, want);
		x->in_pos += want;
		return want;
	}
	do
		r = pread(rq->in_fd, p, want, (off_t)(rq->in_off + x->in_pos));
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		x->err = r < 0 ? -errno : -EIO;
		x->err_cause = r < 0 ? "cannot read the upload" : "upload file too short";
		return CURL_READFUNC_ABORT;
	}
	x->in_pos += (uint64_t)r;
	return (size_t)r;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
	struct xfer *x = ud;

	if (origin != SEEK_SET || off < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	x->in_pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

/* ---- one attempt ------------------------------------------------------- */

static int add_header(struct curl_slist **l, const char *name, const char *value)
{
	struct curl_slist *n;
	char *h;

	if (!value)
		return 0;
	if (asprintf(&h, "%s: %s", name, value) < 0)
		return -ENOMEM;
	n = curl_slist_append(*l, h);
	auth_free_secret(h);
	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

static int build_headers(const struct http_req *rq, const char *auth,
			 struct curl_slist **out)
{
	struct curl_slist *l = NULL, *n;
	int ret;

	/* Registries do not answer 100-continue reliably; wait for nothing. */
	n = curl_slist_append(NULL, "Expect:");
	if (!n)
		return -ENOMEM;
	l = n;
	ret = add_header(&l, "Accept", rq->accept);
	if (!ret)
		ret = add_header(&l, "Content-Type", rq->content_type);
	if (!ret && !rq->content_type && !strcmp(rq->method, "POST")) {
		/* Keep curl from labelling the empty POST as a form. */
		n = curl_slist_append(l, "Content-Type:");
		ret = n ? 0 : -ENOMEM;
		l = n ? n : l;
	}
	if (!ret)
		ret = add_header(&l, "Content-Range", rq->content_range);
	if (!ret && auth) {
		n = curl_slist_append(l, auth);
		ret = n ? 0 : -ENOMEM;
		l = n ? n : l;
	}
	if (ret) {
		curl_slist_free_all(l);
		return ret;
	}
	*out = l;
	return 0;
}

/* When the answer in flight must be whole: io_timeout from the call's
 * start plus what it may carry at HTTP_MIN_RATE, what it may carry being
 * the request's own size or the answer's, its declared length when it has
 * one under its cap. */
static int64_t body_deadline(const struct xfer *x, curl_off_t dltotal)
{
	bool ok = x->rs->status >= 200 && x->rs->status < 300;
	uint64_t carry = known_size(x->rq), cap = ok ? ok_cap(x->rq) : ERR_BODY_MAX;
	int64_t t;

	if (dltotal > 0 && (uint64_t)dltotal < cap)
		cap = (uint64_t)dltotal;
	if (cap > carry)
		carry = cap;
	t = x->dl->start + (int64_t)x->c->low_speed_time * 1000 + http_carry_ms(carry);
	return t < x->dl->hard ? t : x->dl->hard;
}

/* curl calls this about once a second and on every chunk: a cancelled
 * client aborts the transfer (CURLE_ABORTED_BY_CALLBACK), and so does a
 * call past its deadline, so a server trickling just above the low-speed
 * limit cannot hold a reader for long. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct xfer *x = arg;
	int64_t limit;

	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (atomic_load(&x->c->cancelled))
		return 1;
	limit = x->rs->status ? body_deadline(x, dltotal) : x->dl->answer;
	if (mono_ms() < limit)
		return 0;
	snprintf(x->err_buf, sizeof(x->err_buf),
		 "no whole answer within %.1f s (io_timeout %ld s, and the size "
		 "at %u KiB/s)",
		 (double)(limit - x->dl->start) / 1000.0, x->c->low_speed_time,
		 HTTP_MIN_RATE / 1024);
	x->err_cause = x->err_buf;
	x->err = -EIO;
	return 1;
}

static void set_common(struct oci_client *c, CURL *h, const struct http_req *rq,
		       struct xfer *x, int64_t left_ms)
{
	uint64_t most = ok_cap(rq) > ERR_BODY_MAX ? ok_cap(rq) : ERR_BODY_MAX;

	curl_easy_setopt(h, CURLOPT_URL, rq->url);
	/* libcurl's own bounds: the call's last moment, and an answer that
	 * declares a length no cap allows is refused before its body (a HEAD
	 * declares the length of what it does not send). */
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left_ms);
	if (strcmp(rq->method, "HEAD"))
		curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)most);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	/* HTTP/2 where TLS offers it (ALPN), and a request waits for a
	 * connection being set up that may carry it as a stream, rather than
	 * open one of its own. */
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->connect_timeout);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->low_speed_time);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "chartfs/" CHARTFS_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	tls_setup(c, h);
	if (rq->follow) {
		/* Without CURLOPT_UNRESTRICTED_AUTH curl drops Authorization
		 * (ours included) when a redirect changes host, port or
		 * scheme, so object storage never sees a registry token. */
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	}
}

static void set_method(CURL *h, const struct http_req *rq, struct xfer *x)
{
	const char *m = rq->method;

	if (!strcmp(m, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(m, "GET")) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (!strcmp(m, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(rq->body ? rq->body_len : 0));
	} else if (!strcmp(m, "PUT") || !strcmp(m, "PATCH")) {
		uint64_t len = rq->in_fd >= 0 ? rq->in_len : rq->body_len;
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
		if (strcmp(m, "PUT"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	}
}

static bool curl_transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return true;
	default:
		return false;
	}
}

/* Remember whether the registry's own answers come over HTTP/2, which
 * tells a listing how many requests it may keep in flight. */
static void note_version(struct oci_client *c, CURL *h, CURLcode rc)
{
	long version = 0;
	char *eff = NULL;

	if (rc != CURLE_OK)
		return;
	curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
	curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
	if (eff && url_same_origin(c, eff))
		atomic_store(&c->h2, version == CURL_HTTP_VERSION_2_0);
}

/* The protocol of an answer, for the debug line of a request. */
static const char *version_name(long version)
{
	switch (version) {
	case CURL_HTTP_VERSION_2_0:
		return "2";
	case CURL_HTTP_VERSION_1_1:
		return "1.1";
	case CURL_HTTP_VERSION_1_0:
		return "1.0";
	default:
		return "?";
	}
}

/* One exchange. 0 when an HTTP answer arrived (any status); else -errno
 * with the cause in rs->... via cause. */
static int perform_once(struct oci_client *c, const struct http_req *rq,
			struct http_resp *rs, const struct deadline *dl, const char *auth,
			CURLcode *rc_out, char *cause, size_t cause_len)
{
	struct xfer x = {.c = c, .rq = rq, .rs = rs, .dl = dl};
	int64_t left = dl->hard - mono_ms();
	char errbuf[CURL_ERROR_SIZE] = "", where[256];
	struct curl_slist *hdrs = NULL;
	curl_off_t up = 0, down = 0, us = 0;
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	CURL *h;
	int ret;

	http_resp_clear(rs);
	if (left <= 0) {
		*rc_out = CURLE_OPERATION_TIMEDOUT;
		snprintf(cause, cause_len, "no time left of the call's %.1f s",
			 (double)(dl->hard - dl->start) / 1000.0);
		return -EIO;
	}
	h = client_handle_get(c);
	if (!h)
		goto nomem;
	ret = build_headers(rq, auth, &hdrs);
	if (ret)
		goto nomem;
	set_common(c, h, rq, &x, left);
	set_method(h, rq, &x);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

	atomic_fetch_add(&c->requests, 1);
	rc = client_perform(c, h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
	note_version(c, h, rc);
	curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &down);
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &us);
	if (chartfs_log_level() >= LOG_DEBUG) {
		long version = 0, conns = 0;
		curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
		curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &conns);
		url_log_path(c, rq->url, where, sizeof(where));
		log_debug("client: %s %s -> %ld, %" PRId64 " bytes, %" PRId64
			  " ms, HTTP/%s%s",
			  rq->method, where, rc == CURLE_OK ? rs->status : -1L,
			  (int64_t)(up + down), (int64_t)(us / 1000),
			  version_name(version), conns ? ", new connection" : "");
	}
	/* Nothing may point at the stack buffer once we return. */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	client_handle_put(c, h);
	curl_slist_free_all(hdrs);
	if (rc == CURLE_WRITE_ERROR && x.err_body_cut && !x.err)
		rc = CURLE_OK;
	*rc_out = rc;
	if (x.err) {
		snprintf(cause, cause_len, "%s", x.err_cause);
		return x.err;
	}
	if (rc != CURLE_OK) {
		snprintf(cause, cause_len, "%s",
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
		return rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO;
	}
	return 0;
nomem:
	if (h)
		client_handle_put(c, h);
	*rc_out = rc;
	snprintf(cause, cause_len, "out of memory");
	return -ENOMEM;
}

/* Undo what a failed attempt wrote into out_fd; false if that is not
 * possible, in which case the caller must not retry. */
static bool rewind_out(const struct http_req *rq, off_t start)
{
	if (rq->out_fd < 0)
		return true;
	if (start < 0)
		return false;
	if (lseek(rq->out_fd, 0, SEEK_CUR) == start)
		return true;
	return ftruncate(rq->out_fd, start) == 0 &&
	       lseek(rq->out_fd, start, SEEK_SET) == start;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* perform_once with retries on what may pass: 408, 429, 5xx and
 * connection failures, while the call's deadline leaves time. A timeout is
 * not retried: it spent the time the call had. A PATCH is never repeated:
 * the registry may already hold part of the chunk. */
static int perform_retry(struct oci_client *c, const struct http_req *rq,
			 struct http_resp *rs, const struct deadline *dl,
			 const char *auth, char *cause, size_t cause_len)
{
	off_t start = rq->out_fd >= 0 ? lseek(rq->out_fd, 0, SEEK_CUR) : -1;
	bool retryable = strcmp(rq->method, "PATCH") != 0;
	CURLcode rc;
	int attempt, ret;
	long ms;

	for (attempt = 0;; attempt++) {
		if (atomic_load(&c->cancelled)) {
			snprintf(cause, cause_len, "the mount is going away");
			return -ECANCELED;
		}
		ret = perform_once(c, rq, rs, dl, auth, &rc, cause, cause_len);
		/* A mirror's retry is the next mirror or the origin. */
		if (c->is_mirror || (ret && !(ret == -EIO && curl_transient(rc))))
			return ret;
		if (!ret && rs->status != 408 && rs->status != 429 && rs->status < 500)
			return 0;
		if (!retryable || attempt == MAX_RETRIES || !rewind_out(rq, start))
			return ret;
		if (ret && rc == CURLE_OPERATION_TIMEDOUT)
			return ret;
		ms = 100L << attempt;
		if (!ret && rs->retry_after > 0)
			ms = rs->retry_after >= RETRY_AFTER_CAP_MS / 1000
				 ? RETRY_AFTER_CAP_MS
				 : rs->retry_after * 1000;
		if (mono_ms() + ms >= dl->answer)
			return ret;
		sleep_ms(ms);
	}
}

/* ---- status mapping ---------------------------------------------------- */

/* Copy s into out, keeping printable ASCII only: registry text goes into
 * the log and must not forge lines. */
static void clean_copy(char *out, size_t size, const char *s)
{
	size_t i = 0;

	for (; s && *s && i + 1 < size; s++)
		out[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	out[i] = '\0';
}

static void parse_error_body(struct http_resp *rs, char *msg, size_t msg_len)
{
	json_t *root, *e;
	const char *code, *m;

	msg[0] = '\0';
	if (!rs->body.len)
		return;
	root = json_loadb(rs->body.data, rs->body.len, 0, NULL);
	e = json_array_get(json_object_get(root, "errors"), 0);
	code = json_string_value(json_object_get(e, "code"));
	m = json_string_value(json_object_get(e, "message"));
	clean_copy(rs->errcode, sizeof(rs->errcode), code);
	clean_copy(msg, msg_len, m);
	json_decref(root);
}

static int status_errno(long st, const char *code)
{
	if (st >= 200 && st < 300)
		return 0;
	if (!strcmp(code, "UNSUPPORTED"))
		return -EOPNOTSUPP;
	switch (st) {
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 405:
		return -EOPNOTSUPP;
	case 400:
		return -EINVAL;
	case 429:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

static bool is_quiet(unsigned quiet, int err)
{
	return (quiet & HTTP_QUIET_ALL) ||
	       (err == -ENOENT && (quiet & HTTP_QUIET_ENOENT)) ||
	       (err == -EACCES && (quiet & HTTP_QUIET_EACCES)) ||
	       (err == -EOPNOTSUPP && (quiet & HTTP_QUIET_EOPNOTSUPP)) ||
	       (err == -EINVAL && (quiet & HTTP_QUIET_EINVAL));
}

/* The deadlines of a call starting now, within those of the call or the
 * listing it is made for. */
static void deadline_init(const struct oci_client *c, const struct http_req *rq,
			  struct deadline *dl)
{
	int64_t io = (int64_t)c->low_speed_time * 1000, outer = call_until;
	uint64_t known = known_size(rq), most = ok_cap(rq);

	if (most < ERR_BODY_MAX)
		most = ERR_BODY_MAX;
	if (most < known)
		most = known;
	dl->start = mono_ms();
	dl->answer = dl->start + io + http_carry_ms(known);
	dl->hard = dl->start + io + http_carry_ms(most);
	if (rq->until_ms && (!outer || rq->until_ms < outer))
		outer = rq->until_ms;
	if (outer && outer < dl->answer)
		dl->answer = outer;
	if (outer && outer < dl->hard)
		dl->hard = outer;
}

int http_request(struct oci_client *c, const struct http_req *rq, struct http_resp *rs)
{
	bool own = !rq->no_auth && url_same_origin(c, rq->url);
	char cause[320] = "", msg[200], where[256];
	int64_t saved = call_until;
	struct deadline dl;
	char *auth = NULL;
	int round, ret;

	memset(rs, 0, sizeof(*rs));
	deadline_init(c, rq, &dl);
	/* A token request on this call's behalf must leave it time. */
	call_until = dl.answer;
	for (round = 0;; round++) {
		bool sent;
		if (own) {
			ret = auth_header(c, rq->scope, &auth, cause, sizeof(cause));
			if (ret)
				goto out;
		}
		sent = auth != NULL;
		ret = perform_retry(c, rq, rs, &dl, auth ? auth : rq->authorization,
				    cause, sizeof(cause));
		auth_free_secret(auth);
		auth = NULL;
		if (ret || rs->status != 401 || !own || round == 1)
			break;
		ret = auth_challenge(c, rs->www_auth, rq->scope, sent, cause,
				     sizeof(cause));
		if (ret)
			goto out;
	}
	if (ret)
		goto out;
	msg[0] = '\0';
	if (rs->status < 200 || rs->status >= 300)
		parse_error_body(rs, msg, sizeof(msg));
	ret = status_errno(rs->status, rs->errcode);
	if (ret)
		snprintf(cause, sizeof(cause), "%ld%s%s%s%s", rs->status,
			 rs->errcode[0] ? " " : "", rs->errcode, msg[0] ? ": " : "", msg);
out:
	call_until = saved;
	if (ret == -EACCES && own)
		auth_denied_cause(c, rq->scope, cause, sizeof(cause));
	if (ret) {
		snprintf(rs->cause, sizeof(rs->cause), "%s", cause);
		snprintf(last_cause, sizeof(last_cause), "%s", cause);
		url_log_path(c, rq->url, where, sizeof(where));
		if (is_quiet(rq->quiet, ret) || c->is_mirror)
			log_debug("client: %s %s: %s", rq->method, where, cause);
		else
			log_warn("client: %s %s: %s", rq->method, where, cause);
	}
	return ret;
}
