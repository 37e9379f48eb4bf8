/* main.c - command line, mount, daemonize, serve. */
#include "fs/chartfs_i.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/creds.h"
#include "client/mirror.h"
#include "common/digest.h"
#include "common/file.h"
#include "common/fdlimit.h"
#include "common/log.h"
#include "fs/ll.h"
#include "model/verify.h"

struct options {
	char *registry;	  /* REGISTRY[/PREFIX] as given, or NULL: every registry */
	char *mountpoint; /* the second bare argument (or the only one) */
	char *plain_http_hosts;
	char *mirror;  /* -o mirror values joined by ';' (client/mirror.h) */
	int last_list; /* the list option a bare host continues (KEY_*), or 0 */
	int plain_http;
	int insecure;
	int immutable;
	int ro;
	int show_signatures;
	int offline;
	char *cache_dir;
	char *ttl;
	char *parallel;
	char *prefetch;
	char *readahead;
	char *connect_timeout;
	char *cache_max;
	char *io_timeout;
	char *ca_file;
	char *cert_file;
	char *key_file;
	char *registry_config;
	char *username;
	char *password_file;
	char *log_file;
	char *write_group;
	char *sign_key;
	char *verify_key;
	char *keyring;
	int nonopts;
};

/* Keys of options that opt_proc handles; 0 is none (last_list unset). */
enum { KEY_PLAIN_HTTP_HOSTS = 1, KEY_MIRROR };

#define OPT(t, p)                                                                        \
	{                                                                                \
		t, offsetof(struct options, p), 1                                        \
	}
/* clang-format off */
static const struct fuse_opt chartfs_opts[] = {
	OPT("plain_http", plain_http),
	FUSE_OPT_KEY("plain_http_hosts=", KEY_PLAIN_HTTP_HOSTS),
	FUSE_OPT_KEY("mirror=", KEY_MIRROR),
	OPT("insecure", insecure),
	OPT("immutable", immutable),
	OPT("ro", ro),
	OPT("show_signatures", show_signatures),
	OPT("offline", offline),
	OPT("cache_dir=%s", cache_dir),
	OPT("cache_max=%s", cache_max),
	OPT("ttl=%s", ttl),
	OPT("parallel=%s", parallel),
	OPT("prefetch=%s", prefetch),
	OPT("readahead=%s", readahead),
	OPT("connect_timeout=%s", connect_timeout),
	OPT("io_timeout=%s", io_timeout),
	OPT("ca_file=%s", ca_file),
	OPT("cert_file=%s", cert_file),
	OPT("key_file=%s", key_file),
	OPT("registry_config=%s", registry_config),
	OPT("username=%s", username),
	OPT("password_file=%s", password_file),
	OPT("log_file=%s", log_file),
	OPT("write_group=%s", write_group),
	OPT("sign_key=%s", sign_key),
	OPT("verify_key=%s", verify_key),
	OPT("keyring=%s", keyring),
	FUSE_OPT_END,
};

#define STR_(x) #x
#define STR(x) STR_(x)

/* One line per option: the man page test reads these. */
static const char *const help_lines[] = {
	"    -o plain_http          talk HTTP instead of HTTPS",
	"    -o plain_http_hosts=H,H  talk HTTP to hosts H (every-registry mount, mirrors)",
	"    -o mirror=HOST[/PREFIX],...  read through these pull-through mirrors first (ORIGIN=HOST[/PREFIX] per registry)",
	"    -o insecure            do not verify the registry's TLS certificate",
	"    -o ca_file=FILE        trust the CA certificates in FILE too",
	"    -o cert_file=FILE      client certificate for mutual TLS",
	"    -o key_file=FILE       key of the client certificate",
	"    -o registry_config=FILE  read credentials from this config.json first",
	"    -o username=NAME       log in as NAME (with -o password_file)",
	"    -o password_file=FILE  the password, from a file only its owner can read",
	"    -o cache_dir=DIR       blob cache (default ${XDG_CACHE_HOME:-~/.cache}/chartfs)",
	"    -o cache_max=SIZE      evict least recently used charts beyond SIZE (default 1G; K/M/G; 0: no bound)",
	"    -o ttl=SECONDS         trust tag lists and tag digests this long (default " STR(MODEL_TTL_DEFAULT) ")",
	"    -o parallel=N          manifests fetched at once when listing (default " STR(MODEL_PARALLEL_DEFAULT) ")",
	"    -o prefetch=N          warm N repositories of a listed namespace in the background (default 0)",
	"    -o readahead=0         do not fetch ahead of a walk (grep -r, find) of a namespace (default 1)",
	"    -o connect_timeout=S   give up connecting after S seconds (default " STR(OCI_CONNECT_TIMEOUT_DEFAULT) ")",
	"    -o io_timeout=S        give up when under 1 KiB/s for S seconds (default " STR(OCI_IO_TIMEOUT_DEFAULT) ")",
	"    -o immutable           refuse to replace an existing tag (EEXIST)",
	"    -o show_signatures     list sha256-<digest>.sig/.att/.sbom tags too",
	"    -o offline             serve only what the cache holds; never ask the registry",
	"    -o ro                  read-only mount: no publishing or deleting",
	"    -o log_file=FILE       once detached, log to FILE instead of syslog",
	"    -o write_group=GROUP   members of GROUP (a name or gid) may write too (default: only the mounting user)",
	"    -o sign_key=FILE       sign every chart pushed with this private key (PKCS#8 PEM), as cosign does",
	"    -o verify_key=FILE[:FILE]  show only charts a cosign signature by one of these public keys covers",
	"    -o keyring=FILE        show only charts whose helm provenance this OpenPGP keyring verifies",
};
/* clang-format on */

static void usage(const char *prog)
{
	size_t i;

	printf(
	    "usage: %s [options] REGISTRY[/PREFIX] MOUNTPOINT\n"
	    "       %s [options] MOUNTPOINT   (every registry, a directory per host)\n\n"
	    "Show a Helm chart OCI registry as directories and files.\n\n"
	    "chartfs options:\n",
	    prog, prog);
	for (i = 0; i < sizeof(help_lines) / sizeof(help_lines[0]); i++)
		printf("%s\n", help_lines[i]);
	printf(
	    "\n"
	    "Messages go to stderr with -f or -d; once detached, to -o log_file, else\n"
	    "to syslog (where there is no /dev/log, as in most containers, chartfs\n"
	    "says so at start: use -o log_file or -f there).\n\n");
}

/* Options that /etc/fstab and systemd give mount(8), not the filesystem:
 * accepted and ignored, as other FUSE filesystems do. */
static bool mount_only_option(const char *arg)
{
	static const char *const ignored[] = {"_netdev",  "noauto",  "auto",   "nofail",
					      "defaults", "user",    "nouser", "users",
					      "rw",	  "comment", NULL};
	size_t i;

	if (!strncmp(arg, "x-", 2) || !strncmp(arg, "comment=", 8))
		return true;
	for (i = 0; ignored[i]; i++)
		if (!strcmp(arg, ignored[i]))
			return true;
	return false;
}

/* Add one or more comma-separated items to a list option, sep between. */
static int add_to_list(char **list, const char *items, const char *sep)
{
	char *s;

	if (asprintf(&s, "%s%s%s", *list ? *list : "", *list ? sep : "", items) < 0)
		return -1;
	free(*list);
	*list = s;
	return 0;
}

static int add_plain_http_hosts(struct options *o, const char *hosts)
{
	o->last_list = KEY_PLAIN_HTTP_HOSTS;
	return add_to_list(&o->plain_http_hosts, hosts, ",");
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct options *o = data;

	(void)outargs;
	if (key == KEY_PLAIN_HTTP_HOSTS)
		return add_plain_http_hosts(o, arg + strlen("plain_http_hosts="));
	if (key == KEY_MIRROR) {
		/* Each -o mirror= is an entry of its own (its own origin). */
		o->last_list = KEY_MIRROR;
		return add_to_list(&o->mirror, arg + strlen("mirror="), ";");
	}
	/* -o plain_http_hosts=a,b reaches here as "plain_http_hosts=a" and "b"
	 * (-o splits at commas): a bare name shaped like a host continues the
	 * list given last. The options may also be repeated. */
	if (key == FUSE_OPT_KEY_OPT && o->last_list == KEY_PLAIN_HTTP_HOSTS &&
	    !strchr(arg, '=') && strpbrk(arg, ".:"))
		return add_plain_http_hosts(o, arg);
	if (key == FUSE_OPT_KEY_OPT && o->last_list == KEY_MIRROR && !strchr(arg, '=') &&
	    strpbrk(arg, ".:"))
		return add_to_list(&o->mirror, arg, ",");
	if (key == FUSE_OPT_KEY_OPT && mount_only_option(arg))
		return 0;
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	/* REGISTRY MOUNTPOINT, or MOUNTPOINT alone: kept here and the mount
	 * point handed to fuse_parse_cmdline once all are seen. */
	if (o->nonopts++ == 0) {
		o->registry = strdup(arg);
		return o->registry ? 0 : -1;
	}
	if (o->nonopts == 2) {
		o->mountpoint = strdup(arg);
		return o->mountpoint ? 0 : -1;
	}
	fprintf(stderr, "chartfs: unexpected argument '%s'\n", arg);
	return -1;
}

/* Parse an unsigned option value; -EINVAL if it is not a number in range. */
static int parse_uint(const char *name, const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max) {
		fprintf(stderr, "chartfs: -o %s=%s: not a number from 0 to %u\n", name, s,
			max);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/* Parse "512M"-style sizes (K, M, G, T: powers of 1024). */
static int parse_size(const char *name, const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	const char *u;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s ||
	    (*end && (end[1] || !(u = strchr(units, *end & ~0x20))))) {
		fprintf(stderr, "chartfs: -o %s=%s: not a size (e.g. 512M, 2G)\n", name,
			s);
		return -EINVAL;
	}
	if (*end)
		v <<= 10 * (unsigned)(u - units + 1);
	*out = v;
	return 0;
}

/* -o write_group=GROUP: a group name, else a number (a gid /etc/group
 * may not name). Resolved once, at start: the group a write is checked
 * against must not change under a running mount. */
static int parse_write_group(const char *s, gid_t *out)
{
	struct group *g = getgrnam(s);
	unsigned long v;
	char *end;

	if (g) {
		*out = g->gr_gid;
		return 0;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s >= '0' && *s <= '9' && !errno && !*end && v < (gid_t)-1) {
		*out = (gid_t)v;
		return 0;
	}
	fprintf(stderr, "chartfs: -o write_group=%s: no such group\n", s);
	return -EINVAL;
}

/* Split "[scheme://]host[:port][/prefix]" into host and prefix. */
static int split_registry(char *arg, struct options *o, char **host, char **prefix)
{
	char *p = arg, *slash;
	size_t len;

	if (!strncmp(p, "oci://", 6)) {
		p += 6;
	} else if (!strncmp(p, "https://", 8)) {
		p += 8;
	} else if (!strncmp(p, "http://", 7)) {
		p += 7;
		o->plain_http = 1;
	}
	len = strlen(p);
	while (len && p[len - 1] == '/')
		p[--len] = '\0';
	slash = strchr(p, '/');
	if (slash)
		*slash++ = '\0';
	if (!*p) {
		fprintf(stderr, "chartfs: '%s' names no registry host\n", arg);
		return -EINVAL;
	}
	*host = p;
	*prefix = slash && *slash ? slash : NULL;
	return 0;
}

static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	char *p;

	if (file_pathf(buf, sizeof(buf), "%s", dir) != 0)
		return -ENAMETOOLONG;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static char *default_cache_dir(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char *s = NULL;

	if (xdg && *xdg) {
		if (asprintf(&s, "%s/chartfs", xdg) < 0)
			return NULL;
	} else if (asprintf(&s, "%s/.cache/chartfs", home && *home ? home : "/tmp") < 0) {
		return NULL;
	}
	return s;
}

/* Credentials for host: -o username + password_file, else the config
 * files helm and docker use, else none (anonymous). */
static int find_creds(const struct options *o, const char *host, struct oci_creds *cr)
{
	int ret;

	memset(cr, 0, sizeof(*cr));
	if (!o->username != !o->password_file) {
		fprintf(stderr,
			"chartfs: -o username and -o password_file go together\n");
		return -EINVAL;
	}
	if (o->username) {
		cr->username = strdup(o->username);
		if (!cr->username)
			return -ENOMEM;
		ret = oci_creds_password_file(o->password_file, &cr->password);
		if (ret)
			oci_creds_clear(cr);
		else
			snprintf(cr->source, sizeof(cr->source), "-o username");
		return ret;
	}
	ret = oci_creds_lookup(host, o->registry_config, cr);
	if (ret == -ENOENT) {
		log_info("chartfs: no credentials for %s: anonymous", host);
		return 0;
	}
	return ret;
}

static struct model *hup_model;
static struct hosts *hup_hosts;
static struct chartfs_ll *hup_ll;

/* SIGHUP forgets names and reads the credentials again: not in the
 * handler (files, credential helpers), but in the reloader thread, which it
 * wakes. */
static sem_t hup_sem;
static atomic_bool hup_stop;

static void on_sighup(int sig)
{
	(void)sig;
	sem_post(&hup_sem);
}

/* Forget every name, so the next access asks the registry. */
static void forget_names(void)
{
	if (hup_model)
		model_forget_soon(hup_model);
	if (hup_hosts)
		hosts_forget_soon(hup_hosts);
	if (hup_ll)
		chartfs_ll_forget_listings(hup_ll);
}

struct reloader {
	const struct options *o;
	const char *host; /* a one-registry mount's, or NULL */
	struct chartfs *c;
	struct verifier *verify; /* -o verify_key, -o keyring, or NULL */
	pthread_t thread;
	bool started;
};

/* One registry's credentials, read again as at the start. */
static void reload_registry_creds(const struct reloader *r)
{
	struct oci_creds creds = {0};
	int ret = find_creds(r->o, r->host, &creds);

	if (!ret)
		ret = oci_client_set_creds(r->c->client, creds.username, creds.password,
					   creds.identity_token);
	if (!ret)
		oci_mirrors_reload_creds(r->c->client, r->o->registry_config);
	if (ret)
		log_warn("chartfs: SIGHUP: cannot read the credentials for %s again: %s",
			 r->host, strerror(-ret));
	else
		log_notice("chartfs: SIGHUP: credentials for %s %s%s", r->host,
			   creds.source[0] ? "from " : "(none: anonymous)", creds.source);
	oci_creds_clear(&creds);
}

static void *reloader_main(void *arg)
{
	struct reloader *r = arg;

	for (;;) {
		while (sem_wait(&hup_sem) != 0 && errno == EINTR)
			;
		if (atomic_load(&hup_stop))
			return NULL;
		/* Credentials first: names asked again after the forget must
		 * be asked with them, or a refusal by the old ones is what
		 * the next access learns. */
		if (r->c->hosts)
			hosts_reload_creds(r->c->hosts);
		else if (r->c->client && !r->o->offline)
			reload_registry_creds(r);
		if (r->c->signer)
			push_signer_reload(r->c->signer);
		/* The keys too, before the listings are forgotten: what is
		 * listed next is checked with the new ones. */
		if (r->verify)
			(void)!verify_reload(r->verify);
		forget_names();
	}
}

static int reloader_start(struct reloader *r)
{
	if (sem_init(&hup_sem, 0, 0) != 0)
		return -errno;
	r->started = pthread_create(&r->thread, NULL, reloader_main, r) == 0;
	return r->started ? 0 : -EAGAIN;
}

static void reloader_stop(struct reloader *r)
{
	if (!r->started)
		return;
	atomic_store(&hup_stop, true);
	sem_post(&hup_sem);
	pthread_join(r->thread, NULL);
	r->started = false;
}

/* The mirrors of a one-registry mount (-o mirror), in front of client:
 * each with its own credentials, the TLS files and timeouts of copts. */
static int setup_mirrors(const struct options *o, const char *host,
			 const struct oci_client_opts *copts, unsigned ttl,
			 struct oci_client *client)
{
	struct oci_mirror_opts mo = {.registry_config = o->registry_config,
				     .plain_http_hosts = o->plain_http_hosts,
				     .pin_s = ttl};
	char *specs;
	int ret;

	if (!o->mirror)
		return 0;
	specs = oci_mirror_specs_for(o->mirror, host);
	if (!specs)
		return -ENOMEM;
	mo.specs = specs;
	ret = oci_mirrors_setup(client, copts, &mo);
	free(specs);
	return ret;
}

/* The client and model of a one-registry mount. The registry is pinged
 * first, so a typo or a dead registry is an error the user sees rather
 * than an empty mount. */
static int setup_registry(const struct options *o, const char *host,
			  struct oci_client_opts copts, const struct model_opts *mopts,
			  struct chartfs *c)
{
	struct oci_creds creds = {0};
	int err;

	if (find_creds(o, host, &creds) != 0) {
		fprintf(stderr, "chartfs: cannot read the credentials for %s\n", host);
		return -EINVAL;
	}
	if (creds.source[0])
		log_info("chartfs: credentials for %s from %s", host, creds.source);
	copts.registry = host;
	copts.username = creds.username;
	copts.password = creds.password;
	copts.identity_token = creds.identity_token;
	err = hosts_connect(&copts, o->offline, creds.source, &c->client);
	/* The client keeps its own copies: wipe ours now. */
	oci_creds_clear(&creds);
	if (!err && !o->offline)
		err = setup_mirrors(o, host, &copts, mopts->ttl, c->client);
	return err ? err : model_new(mopts, c->client, c->bc, &c->model);
}

/* Every registry under one mount: hosts are set up as they are named. */
static int setup_hosts(const struct options *o, const struct oci_client_opts *copts,
		       const struct model_opts *mopts, struct chartfs *c)
{
	struct hosts_opts ho = {.client = *copts,
				.registry_config = o->registry_config,
				.plain_http_hosts = o->plain_http_hosts,
				.mirror = o->mirror,
				.model = *mopts};

	if (o->username || o->password_file) {
		fprintf(stderr, "chartfs: -o username and -o password_file name one "
				"registry: give it (REGISTRY MOUNTPOINT)\n");
		return -EINVAL;
	}
	return hosts_new(&ho, c->bc, &c->hosts);
}

static bool warn_no_syslog;

/* Where messages go once the daemon detaches: said before it does, so a
 * user without syslog learns where to look. */
static int setup_log(const struct options *o, int foreground)
{
	int ret;

	if (o->log_file) {
		ret = chartfs_log_open_file(o->log_file);
		if (ret)
			fprintf(stderr, "chartfs: -o log_file=%s: %s\n", o->log_file,
				strerror(-ret));
		return ret;
	}
	/* Said once the mount is made, right before detaching. */
	warn_no_syslog = !foreground && !chartfs_log_have_syslog();
	return 0;
}

/* "fuse: unknown option(s): `-o password=s3cret,x -y'": libfuse echoes
 * each option whole, values and all. Say their names only, in one line. */
static void say_unknown_options(const char *list)
{
	char names[512] = "", *copy = strdup(list), *tok, *save = NULL;
	size_t used = 0;

	for (tok = copy ? strtok_r(copy, " ',", &save) : NULL; tok;
	     tok = strtok_r(NULL, " ',", &save)) {
		int n;

		if (!strcmp(tok, "-o"))
			continue;
		if (!strncmp(tok, "-o", 2))
			tok += 2;
		tok[strcspn(tok, "=")] = '\0';
		n = snprintf(names + used, sizeof(names) - used, "%s%s", used ? ", " : "",
			     tok);
		if (n < 0 || (size_t)n >= sizeof(names) - used)
			break;
		used += (size_t)n;
	}
	free(copy);
	log_err("chartfs: unknown option%s: %s (see chartfs --help)",
		strchr(names, ',') ? "s" : "", names);
}

/* libfuse's messages go through our log module too. libfuse writes some
 * lines in pieces (the unknown-options one in three): pieces are kept
 * until the newline that ends their line. Its lines start with "fuse: "
 * already, or are given that prefix. */
static void fuse_log_adapter(enum fuse_log_level level, const char *fmt, va_list ap)
{
	static const char unknown[] = "fuse: unknown option(s): `";
	static _Thread_local char line[1024];
	static _Thread_local size_t len;
	int n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);

	if (n < 0)
		return;
	len = (size_t)n >= sizeof(line) - len ? sizeof(line) - 1 : len + (size_t)n;
	if (len < sizeof(line) - 1 && (!len || line[len - 1] != '\n'))
		return;
	while (len && line[len - 1] == '\n')
		line[--len] = '\0';
	if (!strncmp(line, unknown, sizeof(unknown) - 1))
		say_unknown_options(line + sizeof(unknown) - 1);
	else
		chartfs_log((int)level, "%s%s",
			    strncmp(line, "fuse: ", 6) ? "fuse: " : "", line);
	len = 0;
}

/* The mount point: an existing directory, and not a live chartfs mount
 * already (the kernel would stack a second one on it silently). Read
 * from /proc/self/mountinfo, which asks no filesystem (a hung mount
 * would hang a stat of it). */
static int check_mountpoint(const char *mnt)
{
	char abs[PATH_MAX], line[4096];
	struct stat st;
	FILE *f;
	int ret = 0;

	if (mnt[0] == '/' ? file_pathf(abs, sizeof(abs), "%s", mnt) != 0
			  : !getcwd(line, sizeof(line)) ||
				file_pathf(abs, sizeof(abs), "%s/%s", line, mnt) != 0)
		return -ENAMETOOLONG;
	while (strlen(abs) > 1 && abs[strlen(abs) - 1] == '/')
		abs[strlen(abs) - 1] = '\0';
	f = fopen("/proc/self/mountinfo", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char point[4096], type[256];

		/* "id parent maj:min root point opts [tags] - type source ..." */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1 &&
		    sscanf(strstr(line, " - ") ? strstr(line, " - ") : "", " - %255s",
			   type) == 1 &&
		    !strcmp(point, abs) && !strcmp(type, "fuse.chartfs")) {
			fprintf(
			    stderr,
			    "chartfs: %s is a chartfs mount already: unmount it first "
			    "(fusermount3 -u %s)\n",
			    mnt, mnt);
			ret = -EBUSY;
			break;
		}
	}
	if (f)
		fclose(f);
	if (!ret && stat(mnt, &st) != 0) {
		ret = -errno;
		fprintf(stderr, "chartfs: mount point %s: %s\n", mnt, strerror(errno));
	} else if (!ret && !S_ISDIR(st.st_mode)) {
		ret = -ENOTDIR;
		fprintf(stderr, "chartfs: mount point %s is not a directory\n", mnt);
	}
	return ret;
}

/* Everything one run of chartfs holds, from parsing to the end. */
struct run {
	struct fuse_args args;
	struct fuse_cmdline_opts fopts;
	struct options o;
	struct chartfs c;
	struct chartfs_ll *ll;
	struct fuse_loop_config *lcfg;
	struct reloader reloader;
	struct verifier *verify;
	char *host, *prefix, *fsname;
	/* The numbers the options give, each default written once, here. */
	unsigned ttl, parallel, connect_timeout, io_timeout, prefetch, readahead;
	uint64_t cache_max;
};

/* Numeric options, after fuse_parse_cmdline: 0, or -EINVAL (said). */
static int parse_numbers(struct run *r)
{
	struct options *o = &r->o;

	r->ttl = MODEL_TTL_DEFAULT;
	r->parallel = MODEL_PARALLEL_DEFAULT;
	r->connect_timeout = OCI_CONNECT_TIMEOUT_DEFAULT;
	r->io_timeout = OCI_IO_TIMEOUT_DEFAULT;
	r->prefetch = 0;
	r->readahead = 1;
	r->cache_max = BLOBCACHE_MAX_DEFAULT;
	if ((o->ttl && parse_uint("ttl", o->ttl, 86400 * 365, &r->ttl)) ||
	    (o->parallel && parse_uint("parallel", o->parallel, 64, &r->parallel)) ||
	    (o->prefetch && parse_uint("prefetch", o->prefetch, 100000, &r->prefetch)) ||
	    (o->readahead && parse_uint("readahead", o->readahead, 1, &r->readahead)) ||
	    (o->connect_timeout && parse_uint("connect_timeout", o->connect_timeout, 3600,
					      &r->connect_timeout)) ||
	    (o->io_timeout &&
	     parse_uint("io_timeout", o->io_timeout, 3600, &r->io_timeout)) ||
	    (o->cache_max && parse_size("cache_max", o->cache_max, &r->cache_max)))
		return -EINVAL;
	return 0;
}

/* The command line: 0 to go on, 1 when done (--help, --version), or
 * -errno (said). */
static int parse_args(struct run *r, const char *prog)
{
	struct options *o = &r->o;

	if (fuse_opt_parse(&r->args, o, chartfs_opts, opt_proc) != 0)
		return -EINVAL;
	/* One bare argument: the mount point of an every-registry mount. So is
	 * the source "none" (fstab needs one) or "oci://". */
	if (o->registry && !o->mountpoint) {
		o->mountpoint = o->registry;
		o->registry = NULL;
	} else if (o->registry &&
		   (!strcmp(o->registry, "none") || !strcmp(o->registry, "oci://"))) {
		free(o->registry);
		o->registry = NULL;
	}
	if ((o->mountpoint && fuse_opt_add_arg(&r->args, o->mountpoint) != 0) ||
	    fuse_parse_cmdline(&r->args, &r->fopts) != 0)
		return -EINVAL;
	if (r->fopts.show_help) {
		usage(prog);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		return 1;
	}
	if (r->fopts.show_version) {
		printf("chartfs version %s\n", CHARTFS_VERSION);
		printf("FUSE library version %s\n", fuse_pkgversion());
		/* It runs fusermount3, which writes straight to our stdout. */
		fflush(stdout);
		fuse_lowlevel_version();
		return 1;
	}
	if (!r->fopts.mountpoint) {
		fprintf(stderr,
			"usage: %s [options] [REGISTRY[/PREFIX]] MOUNTPOINT\n"
			"       %s --help\n",
			prog, prog);
		return -EINVAL;
	}
	chartfs_log_set_level(r->fopts.debug ? LOG_DEBUG : LOG_NOTICE);
	if ((o->registry && split_registry(o->registry, o, &r->host, &r->prefix) != 0) ||
	    parse_numbers(r) != 0 || setup_log(o, r->fopts.foreground) != 0 ||
	    (o->mirror && oci_mirror_check(o->mirror, r->host) != 0) ||
	    (o->write_group && parse_write_group(o->write_group, &r->c.write_gid) != 0))
		return -EINVAL;
	r->c.write_group = o->write_group != NULL;
	return 0;
}

/* The FUSE session, made first: libfuse refuses an unknown option here,
 * before a cache directory is made or the registry is asked anything. */
static int build_session(struct run *r)
{
	struct chartfs *c = &r->c;

	c->ttl = r->ttl;
	c->immutable = r->o.immutable;
	/* Offline, nothing could be pushed: the mount is read-only. */
	c->read_only = r->o.ro || r->o.offline;
	pthread_mutex_init(&c->up_lock, NULL);
	c->uid = getuid();
	c->gid = getgid();
	/* "ro" was taken out of the arguments to see it: the kernel needs it
	 * too. Access times mean nothing here, and without noatime the kernel
	 * drops a file's cached attributes after every read, which costs a
	 * GETATTR round trip per file read (a third of a warm grep's). */
	if ((c->read_only && fuse_opt_add_arg(&r->args, "-oro") != 0) ||
	    fuse_opt_add_arg(&r->args, "-onoatime") != 0)
		return -ENOMEM;
	if (asprintf(&r->fsname, "-ofsname=%s%s%s,subtype=chartfs",
		     r->host ? r->host : "chartfs", r->prefix ? "/" : "",
		     r->prefix ? r->prefix : "") < 0) {
		r->fsname = NULL;
		return -ENOMEM;
	}
	if (fuse_opt_add_arg(&r->args, r->fsname) != 0)
		return -ENOMEM;
	if (chartfs_ll_new(c, &r->args, &r->ll) != 0)
		return -EINVAL;
	return check_mountpoint(r->fopts.mountpoint);
}

/* -o verify_key and -o keyring, read before the registry is asked
 * anything: a key file that does not load fails the mount (its one line
 * said by the loader, on stderr). Offline, no signature could be read. */
static int setup_verify(struct run *r)
{
	const struct options *o = &r->o;
	char tmp[PATH_MAX];

	if (!o->verify_key && !o->keyring)
		return 0;
	if (o->offline) {
		fprintf(stderr, "chartfs: -o offline cannot check signatures: give it "
				"without -o verify_key and -o keyring\n");
		return -EINVAL;
	}
	/* The keyring's GnuPG home goes with the cache's temp entries: held
	 * (flock) while the daemon runs, removed by the next one after a
	 * kill. */
	if (file_pathf(tmp, sizeof(tmp), "%s/tmp", blobcache_dir(r->c.bc)) != 0)
		return -ENAMETOOLONG;
	return verify_new(o->verify_key, o->keyring, tmp, r->ttl, &r->verify) ? -EINVAL
									      : 0;
}

/* The cache directory, then the registry (or every registry) behind it. */
static int build_registry(struct run *r)
{
	struct chartfs *c = &r->c;
	const struct options *o = &r->o;
	struct oci_client_opts copts = {
	    .plain_http = o->plain_http,
	    .insecure = o->insecure,
	    .ca_file = o->ca_file,
	    .cert_file = o->cert_file,
	    .key_file = o->key_file,
	    .connect_timeout = (long)r->connect_timeout,
	    .low_speed_time = (long)r->io_timeout,
	};
	struct model_opts mopts = {.prefix = r->prefix,
				   .ttl = r->ttl,
				   .parallel = r->parallel,
				   .show_signatures = o->show_signatures,
				   .offline = o->offline,
				   .prefetch = r->prefetch,
				   .no_readahead = !r->readahead};
	int ret;

	c->cache_dir = o->cache_dir ? strdup(o->cache_dir) : default_cache_dir();
	if (!c->cache_dir || mkdir_p(c->cache_dir) != 0) {
		fprintf(stderr, "chartfs: cannot create cache directory %s: %s\n",
			c->cache_dir ? c->cache_dir : "?", strerror(errno));
		return -EIO;
	}
	if (digest_init() != 0) {
		fprintf(stderr,
			"chartfs: OpenSSL offers no sha256, which every digest needs\n");
		return -EIO;
	}
	/* Before the registry is asked anything; sign_key_load says why. */
	if (o->sign_key && push_signer_new(o->sign_key, &c->signer) != 0)
		return -EINVAL;
	if (blobcache_new(c->cache_dir, &c->bc) != 0) {
		fprintf(stderr, "chartfs: cannot open cache directory %s\n",
			c->cache_dir);
		return -EIO;
	}
	blobcache_set_max(c->bc, r->cache_max);
	ret = setup_verify(r);
	if (ret)
		return ret;
	mopts.verify = r->verify;
	if (o->insecure)
		log_warn("chartfs: -o insecure: the registry's TLS certificate is not "
			 "verified");
	if (r->host ? setup_registry(o, r->host, copts, &mopts, c) != 0
		    : setup_hosts(o, &copts, &mopts, c) != 0)
		return -EIO;
	c->start = time(NULL);
	return 0;
}

/* The session loop, in as many threads as the FUSE options say. */
static int loop(struct run *r, struct fuse_session *se)
{
	const struct fuse_cmdline_opts *f = &r->fopts;

	if (f->singlethread)
		return fuse_session_loop(se);
	r->lcfg = fuse_loop_cfg_create();
	if (!r->lcfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(r->lcfg, (unsigned)f->clone_fd);
	if (f->max_idle_threads <= 100000)
		fuse_loop_cfg_set_idle_threads(r->lcfg, f->max_idle_threads);
	/* Unset, libfuse 3.14 reports UINT_MAX and warns if passed on. */
	if (f->max_threads && f->max_threads <= 100000)
		fuse_loop_cfg_set_max_threads(r->lcfg, f->max_threads);
	return fuse_session_loop_mt(se, r->lcfg);
}

/* Mount, detach, and serve until unmounted: the exit status. */
static int serve(struct run *r)
{
	struct fuse_session *se = chartfs_ll_session(r->ll);
	struct sigaction sa = {.sa_handler = on_sighup};
	int ret;

	/* Mount first, then detach: the command returns with the mount ready. */
	if (chartfs_ll_mount(r->ll, r->fopts.mountpoint) != 0)
		return 1;
	if (warn_no_syslog)
		fprintf(stderr,
			"chartfs: no syslog here (/dev/log): what the daemon logs "
			"is lost; use -o log_file=FILE or -f\n");
	if (fuse_daemonize(r->fopts.foreground) != 0)
		return 1;
	if (!r->fopts.foreground)
		chartfs_log_detach();
	if (chartfs_ll_start(r->ll) != 0 || fuse_set_signal_handlers(se) != 0)
		return 1;
	/* libfuse ends the session on SIGHUP; here it means "forget names and
	 * read the credentials again", like a daemon re-reading its state. */
	hup_model = r->c.model;
	hup_hosts = r->c.hosts;
	hup_ll = r->ll;
	r->reloader = (struct reloader){
	    .o = &r->o, .host = r->host, .c = &r->c, .verify = r->verify};
	ret = reloader_start(&r->reloader);
	if (!ret) {
		sigemptyset(&sa.sa_mask);
		sigaction(SIGHUP, &sa, NULL);
		log_info("chartfs: %s mounted on %s",
			 r->c.client ? oci_client_base_url(r->c.client)
				     : "every registry",
			 r->fopts.mountpoint);
		ret = loop(r, se);
	}
	fuse_remove_signal_handlers(se);
	return ret ? 1 : 0;
}

static void options_free(struct options *o)
{
	char **owned[] = {
	    &o->registry,  &o->mountpoint,	&o->plain_http_hosts, &o->cache_dir,
	    &o->ttl,	   &o->parallel,	&o->prefetch,	      &o->connect_timeout,
	    &o->cache_max, &o->io_timeout,	&o->ca_file,	      &o->cert_file,
	    &o->key_file,  &o->registry_config, &o->username,	      &o->password_file,
	    &o->log_file,  &o->write_group,	&o->sign_key,	      &o->verify_key,
	    &o->keyring,   &o->mirror};
	size_t i;

	for (i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
		free(*owned[i]);
		*owned[i] = NULL;
	}
	free(o->readahead);
	o->readahead = NULL;
}

static void run_free(struct run *r)
{
	reloader_stop(&r->reloader);
	hup_ll = NULL;
	chartfs_ll_free(r->ll);
	fuse_loop_cfg_destroy(r->lcfg);
	hosts_free(r->c.hosts);
	chartfs_upload_free_all(&r->c);
	model_free(r->c.model);
	push_signer_free(r->c.signer);
	verify_free(r->verify);
	oci_client_free(r->c.client);
	blobcache_free(r->c.bc);
	free(r->c.cache_dir);
	free(r->fsname);
	free(r->fopts.mountpoint);
	options_free(&r->o);
	fuse_opt_free_args(&r->args);
}

int main(int argc, char *argv[])
{
	struct run r = {.args = FUSE_ARGS_INIT(argc, argv)};
	int ret;

	/* Few malloc arenas, before any thread, and large blocks mapped on
	 * their own: a big listing otherwise leaves megabytes of freed pages
	 * in the daemon (see MODEL_MALLOC_ARENAS). */
	mallopt(M_ARENA_MAX, MODEL_MALLOC_ARENAS);
	mallopt(M_MMAP_THRESHOLD, MODEL_MALLOC_MMAP_MIN);
	fuse_set_log_func(fuse_log_adapter);
	ret = parse_args(&r, argv[0]);
	if (ret == 0) {
		/* Before the client sizes its connection pool by the limit. */
		fdlimit_raise();
		ret = build_session(&r);
	}
	if (ret == 0)
		ret = build_registry(&r);
	if (ret == 0)
		ret = serve(&r);
	else
		ret = ret == 1 ? 0 : 1;
	run_free(&r);
	return ret;
}
