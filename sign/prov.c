/*
 * prov.c - helm provenance checked with gpgme against a keyring imported
 * into a private GnuPG home, then the signed text's files: entry read with
 * libyaml.
 *
 * The private home holds a gpg.conf that keeps gpg from starting any
 * daemon (no-autostart: public-key verification needs no gpg-agent) and
 * from looking keys up anywhere but the home (no auto-key-retrieve, no
 * auto-key-import), with trust-model always: the keyring is the trust, as
 * in helm, and no trustdb is written while several threads verify.
 */
#include "sign/prov.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gpgme.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>

#include "client/manifest.h"
#include "common/digest.h"
#include "common/file.h"
#include "common/log.h"

/* The gpgme that Debian 12 ships; older ones lack nothing we use, but
 * this is what the tests ran against. */
#define PROV_GPGME_MIN "1.18.0"

#define CLEAR_BEGIN "-----BEGIN PGP SIGNED MESSAGE-----"
#define CLEAR_END "\n-----END PGP SIGNATURE-----"
/* helm's separator between Chart.yaml and the files: document (YAML's
 * document end marker: "---" cannot start a clear-signed line). */
#define DOC_SEP "\n...\n"

static const char gpg_conf[] = "no-autostart\n"
			       "trust-model always\n"
			       "no-auto-key-retrieve\n"
			       "no-auto-key-import\n"
			       "no-auto-check-trustdb\n";

/* Homes a concurrent cleaner removed before we locked them (see
 * home_make), made again at most this many times. */
#define HOME_TRIES 3

struct prov_keyring {
	char home[PATH_MAX];
	int home_fd; /* holds the home's flock while the keyring lives */
	char id[DIGEST_STR_MAX];
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_err;

static void init_gpgme(void)
{
	gpgme_error_t e;

	if (!gpgme_check_version(PROV_GPGME_MIN)) {
		log_err("prov: gpgme %s or newer is needed (have %s)", PROV_GPGME_MIN,
			gpgme_check_version(NULL));
		init_err = -ENOSYS;
		return;
	}
	e = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
	if (e) {
		log_err("prov: no usable gpg for gpgme (is gnupg installed?)");
		init_err = -ENOSYS;
	}
}

int prov_init(void)
{
	pthread_once(&init_once, init_gpgme);
	return init_err;
}

/* -errno of a gpgme error: its errno when it is a system error, else EIO. */
static int gerr(gpgme_error_t e)
{
	int x = gpgme_err_code_to_errno(gpgme_err_code(e));

	return x ? -x : -EIO;
}

static const char *gstr(gpgme_error_t e, char *buf, size_t size)
{
	if (gpgme_strerror_r(e, buf, size))
		snprintf(buf, size, "gpgme error %u", (unsigned)gpgme_err_code(e));
	return buf;
}

static int ctx_new(const char *home, gpgme_ctx_t *out)
{
	gpgme_ctx_t ctx = NULL;
	gpgme_error_t e;
	char msg[128];

	e = gpgme_new(&ctx);
	if (!e)
		e = gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP);
	if (!e)
		e = gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP, NULL, home);
	if (e) {
		log_err("prov: gpgme context: %s", gstr(e, msg, sizeof(msg)));
		gpgme_release(ctx);
		return gerr(e);
	}
	gpgme_set_offline(ctx, 1);
	*out = ctx;
	return 0;
}

/* ------------------------------------------------------ the private home */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* gpg-agent or dirmngr should never run for the home (no-autostart), but a
 * gpg that started one anyway must not outlive the keyring: gpgconf stops
 * whatever serves this home. It is waited for (gpgme_op_spawn does not
 * wait), so no process is left when the keyring is gone. Failures only
 * cost a log line. */
static void home_stop_daemons(const char *home)
{
	const char *gpgconf = gpgme_get_dirinfo("gpgconf-name");
	char *const argv[] = {"gpgconf", "--homedir", (char *)home,
			      "--kill",	 "all",	      NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int err, st;

	if (!gpgconf || posix_spawn_file_actions_init(&fa))
		return;
	err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!err)
		err = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (!err)
		err = posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (!err)
		err = posix_spawn(&pid, gpgconf, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err) {
		log_warn("prov: cannot run %s: %s", gpgconf, strerror(err));
		return;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			log_warn("prov: waiting for gpgconf: %s", strerror(errno));
			return;
		}
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		log_warn("prov: gpgconf --kill all for %s failed", home);
}

static void home_remove(const char *home)
{
	home_stop_daemons(home);
	if (nftw(home, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		log_warn("prov: cannot remove %s: %s", home, strerror(errno));
}

static int write_all(int fd, const char *s, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* mkdtemp makes the home 0700, as gpg wants it. It is locked (flock) for
 * as long as the keyring lives, so a cleaner of workdir that skips what a
 * running daemon holds (cache/blobcache.c's leftovers rule) leaves it; one
 * that removed it between mkdtemp and the lock leaves it unlinked
 * (st_nlink 0), and another is made. */
static int home_lock(const char *workdir, char *home, size_t size, int *fd)
{
	struct stat st;
	int i, ret = -ENOENT;

	for (i = 0; i < HOME_TRIES && ret == -ENOENT; i++) {
		ret = file_pathf(home, size, "%s/gnupg-XXXXXX", workdir);
		if (ret || !mkdtemp(home)) {
			ret = ret ? ret : -errno;
			home[0] = '\0'; /* nothing of ours to remove */
			break;
		}
		*fd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (*fd < 0) {
			ret = -errno;
			break;
		}
		while ((ret = flock(*fd, LOCK_EX) < 0 ? -errno : 0) == -EINTR)
			;
		if (ret == -ENOLCK || ret == -EOPNOTSUPP)
			ret = 0; /* no flock there: the cleaner's age rule applies */
		if (!ret && fstat(*fd, &st) < 0)
			ret = -errno;
		else if (!ret && st.st_nlink == 0)
			ret = -ENOENT;
		if (ret == -ENOENT) {
			close(*fd);
			*fd = -1;
		}
	}
	if (ret)
		log_err("prov: cannot make a GnuPG home in %s: %s", workdir,
			strerror(-ret));
	return ret;
}

/* The home, with a gpg.conf written before any gpg runs there. */
static int home_make(const char *workdir, char *home, size_t size, int *fd)
{
	char conf[PATH_MAX];
	int cfd, ret;

	ret = home_lock(workdir, home, size, fd);
	if (ret)
		return ret;
	ret = file_pathf(conf, sizeof(conf), "%s/gpg.conf", home);
	if (ret)
		goto out;
	cfd = open(conf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (cfd < 0) {
		ret = -errno;
		goto out;
	}
	ret = write_all(cfd, gpg_conf, sizeof(gpg_conf) - 1);
	if (close(cfd) < 0 && !ret)
		ret = -errno;
out:
	if (ret)
		log_err("prov: cannot write %s/gpg.conf: %s", home, strerror(-ret));
	return ret;
}

/* ---------------------------------------------------------- the keyring */

/* Import the keyring's public keys. A file with secret keys is refused:
 * importing them needs gpg-agent and would copy secret material to disk,
 * and a verifier has no use for them (`gpg --export` gives the public
 * keyring). */
static int import_keys(const char *home, const char *path, const char *buf, size_t len)
{
	gpgme_ctx_t ctx = NULL;
	gpgme_data_t d = NULL;
	gpgme_import_result_t res;
	gpgme_error_t e;
	char msg[128];
	int ret;

	ret = ctx_new(home, &ctx);
	if (ret)
		return ret;
	e = gpgme_data_new_from_mem(&d, buf, len, 0);
	if (!e)
		e = gpgme_op_import(ctx, d);
	res = gpgme_op_import_result(ctx);
	if (res && res->secret_read > 0) {
		log_err("keyring %s: holds secret keys; give the public keyring "
			"(gpg --export)",
			path);
		ret = -EINVAL;
	} else if (e && gpgme_err_code_to_errno(gpgme_err_code(e))) {
		log_err("keyring %s: %s", path, gstr(e, msg, sizeof(msg)));
		ret = gerr(e);
	} else if (e || !res || res->imported + res->unchanged == 0) {
		log_err("keyring %s: no OpenPGP public key in it", path);
		ret = -EINVAL;
	}
	gpgme_data_release(d);
	gpgme_release(ctx);
	return ret;
}

static int read_keyring(const char *path, char **buf, size_t *len)
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_err("keyring %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = file_read_fd(fd, PROV_KEYRING_MAX, buf, len, &st);
	close(fd);
	if (ret == -EFBIG)
		log_err("keyring %s: over %d bytes", path, PROV_KEYRING_MAX);
	else if (ret)
		log_err("keyring %s: %s", path, strerror(-ret));
	return ret;
}

int prov_keyring_load(const char *path, const char *workdir, struct prov_keyring **out)
{
	struct prov_keyring *kr = NULL;
	char *buf = NULL;
	size_t len = 0;
	int ret;

	*out = NULL;
	ret = prov_init();
	if (ret)
		return ret;
	ret = read_keyring(path, &buf, &len);
	if (ret)
		goto out;
	kr = calloc(1, sizeof(*kr));
	if (!kr) {
		ret = -ENOMEM;
		goto out;
	}
	kr->home_fd = -1;
	ret = digest_buf(buf, len, kr->id);
	if (ret) {
		log_err("keyring %s: cannot digest: %s", path, strerror(-ret));
		goto out;
	}
	ret = home_make(workdir, kr->home, sizeof(kr->home), &kr->home_fd);
	if (!ret)
		ret = import_keys(kr->home, path, buf, len);
out:
	free(buf);
	if (ret) {
		prov_keyring_free(kr);
		return ret;
	}
	*out = kr;
	return 0;
}

void prov_keyring_free(struct prov_keyring *kr)
{
	if (!kr)
		return;
	if (kr->home[0])
		home_remove(kr->home);
	if (kr->home_fd >= 0)
		close(kr->home_fd);
	free(kr);
}

const char *prov_keyring_id(const struct prov_keyring *kr)
{
	return kr->id;
}

/* ------------------------------------------------ the signed files: map */

struct files_scan {
	yaml_parser_t p;
	yaml_event_t ev;
	bool have_ev;
};

static bool scan_next(struct files_scan *s)
{
	if (s->have_ev)
		yaml_event_delete(&s->ev);
	s->have_ev = yaml_parser_parse(&s->p, &s->ev) != 0;
	return s->have_ev;
}

/* Skip the node whose first event is current; false on a parse error. */
static bool scan_skip(struct files_scan *s)
{
	size_t depth = 0;

	do {
		switch (s->ev.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			depth++;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_ALIAS_EVENT:
			break;
		default:
			return false;
		}
		if (!depth)
			return true;
	} while (scan_next(s));
	return false;
}

static bool scalar_is(const yaml_event_t *ev, const char *s)
{
	size_t n = strlen(s);

	return ev->data.scalar.length == n && !memcmp(ev->data.scalar.value, s, n);
}

/* A null "files:" (go-yaml decodes it as no map) names no package. */
static bool scalar_null(const yaml_event_t *ev)
{
	return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (scalar_is(ev, "") || scalar_is(ev, "~") || scalar_is(ev, "null"));
}

/* The files: mapping (current event: its start): OTHER_DIGEST unless the
 * one entry for name is digest; a value that is not a scalar, or a name
 * given twice, is BROKEN (go-yaml refuses both). */
static enum sign_verdict scan_files(struct files_scan *s, const char *name,
				    const char *digest, bool *found)
{
	enum sign_verdict v = SIGN_OTHER_DIGEST;
	bool mine;

	while (scan_next(s) && s->ev.type != YAML_MAPPING_END_EVENT) {
		if (s->ev.type != YAML_SCALAR_EVENT)
			return SIGN_BROKEN;
		mine = scalar_is(&s->ev, name);
		if (mine && *found)
			return SIGN_BROKEN;
		*found |= mine;
		if (!scan_next(s) || s->ev.type != YAML_SCALAR_EVENT)
			return SIGN_BROKEN;
		if (mine && scalar_is(&s->ev, digest))
			v = SIGN_OK;
	}
	return s->have_ev ? v : SIGN_BROKEN;
}

/* The document after "...": a mapping whose files: maps package names to
 * "sha256:<hex>" (helm's SumCollection). */
static enum sign_verdict scan_sums(struct files_scan *s, const char *name,
				   const char *digest)
{
	enum sign_verdict v = SIGN_OTHER_DIGEST;
	bool seen_files = false, found = false;

	if (!scan_next(s) || s->ev.type != YAML_STREAM_START_EVENT || !scan_next(s))
		return SIGN_BROKEN;
	if (s->ev.type == YAML_STREAM_END_EVENT)
		return SIGN_OTHER_DIGEST;
	if (s->ev.type != YAML_DOCUMENT_START_EVENT || !scan_next(s) ||
	    s->ev.type != YAML_MAPPING_START_EVENT)
		return SIGN_BROKEN;
	while (scan_next(s) && s->ev.type != YAML_MAPPING_END_EVENT) {
		bool is_files =
		    s->ev.type == YAML_SCALAR_EVENT && scalar_is(&s->ev, "files");

		if (s->ev.type != YAML_SCALAR_EVENT || (is_files && seen_files))
			return SIGN_BROKEN;
		seen_files |= is_files;
		if (!scan_next(s))
			return SIGN_BROKEN;
		if (!is_files) {
			if (!scan_skip(s))
				return SIGN_BROKEN;
		} else if (s->ev.type == YAML_MAPPING_START_EVENT) {
			v = scan_files(s, name, digest, &found);
			if (v == SIGN_BROKEN)
				return v;
		} else if (s->ev.type != YAML_SCALAR_EVENT || !scalar_null(&s->ev)) {
			return SIGN_BROKEN;
		}
	}
	return s->have_ev ? v : SIGN_BROKEN;
}

static bool yaml_wellformed(const char *text, size_t len)
{
	struct files_scan s = {0};
	bool ok = false;

	if (!yaml_parser_initialize(&s.p))
		return false;
	yaml_parser_set_input_string(&s.p, (const unsigned char *)text, len);
	while (scan_next(&s))
		if (s.ev.type == YAML_STREAM_END_EVENT) {
			ok = true;
			break;
		}
	if (s.have_ev)
		yaml_event_delete(&s.ev);
	yaml_parser_delete(&s.p);
	return ok;
}

/* helm's parseMessageBlock: the text splits at "\n...\n" into Chart.yaml
 * and the sums; both must be YAML. */
static enum sign_verdict files_verdict(const char *text, size_t len, const char *name,
				       const char *digest)
{
	const char *sep = memmem(text, len, DOC_SEP, strlen(DOC_SEP));
	const char *sums, *end;
	struct files_scan s = {0};
	enum sign_verdict v;

	if (!sep || !yaml_wellformed(text, (size_t)(sep - text)))
		return SIGN_BROKEN;
	sums = sep + strlen(DOC_SEP);
	end = memmem(sums, len - (size_t)(sums - text), DOC_SEP, strlen(DOC_SEP));
	if (!end)
		end = text + len;
	if (!yaml_parser_initialize(&s.p))
		return SIGN_BROKEN;
	yaml_parser_set_input_string(&s.p, (const unsigned char *)sums,
				     (size_t)(end - sums));
	v = scan_sums(&s, name, digest);
	if (s.have_ev)
		yaml_event_delete(&s.ev);
	yaml_parser_delete(&s.p);
	return v;
}

/* -------------------------------------------------------- the signature */

/* The first clear-signed block, from its BEGIN line (at the start or after
 * a newline, as helm's clearsign.Decode finds it) through its END line:
 * *len 0 when there is none. Only that block is given to gpg, so its
 * signatures all cover the one text we read, whatever follows it. */
static const char *clear_block(const char *buf, size_t len, size_t *out)
{
	const char *b = NULL, *e, *nl;
	size_t blen = strlen(CLEAR_BEGIN);

	*out = 0;
	if (len >= blen && !memcmp(buf, CLEAR_BEGIN, blen)) {
		b = buf;
	} else {
		b = memmem(buf, len, "\n" CLEAR_BEGIN, blen + 1);
		b = b ? b + 1 : NULL;
	}
	if (!b || (size_t)(b - buf) + blen >= len || (b[blen] != '\n' && b[blen] != '\r'))
		return NULL;
	e = memmem(b, len - (size_t)(b - buf), CLEAR_END, strlen(CLEAR_END));
	if (!e)
		return NULL;
	e += strlen(CLEAR_END);
	nl = memchr(e, '\n', len - (size_t)(e - buf));
	e = nl ? nl + 1 : buf + len;
	*out = (size_t)(e - b);
	return b;
}

static enum sign_verdict sig_verdict(gpgme_signature_t s)
{
	switch (gpgme_err_code(s->status)) {
	case GPG_ERR_NO_ERROR:
		return s->wrong_key_usage || (s->summary & GPGME_SIGSUM_RED)
			   ? SIGN_BAD_SIG
			   : SIGN_OK;
	case GPG_ERR_NO_PUBKEY:
		return SIGN_WRONG_KEY;
	case GPG_ERR_BAD_SIGNATURE:
	case GPG_ERR_SIG_EXPIRED:
	case GPG_ERR_KEY_EXPIRED:
	case GPG_ERR_CERT_REVOKED:
		return SIGN_BAD_SIG;
	default:
		return SIGN_BROKEN;
	}
}

/* Several signatures on one block all sign its text: one good one is
 * enough; else the most specific failure. */
static int sig_rank(enum sign_verdict v)
{
	return v == SIGN_OK ? 3 : v == SIGN_BAD_SIG ? 2 : v == SIGN_WRONG_KEY ? 1 : 0;
}

static enum sign_verdict sigs_verdict(gpgme_verify_result_t res, gpgme_signature_t *good)
{
	enum sign_verdict best = SIGN_BROKEN, v;
	gpgme_signature_t s;

	*good = NULL;
	for (s = res ? res->signatures : NULL; s; s = s->next) {
		v = sig_verdict(s);
		if (v == SIGN_OK && !*good)
			*good = s;
		if (sig_rank(v) > sig_rank(best))
			best = v;
	}
	return best;
}

/* The signing key's primary fingerprint (sig->fpr may be a subkey's). */
static int signer_fpr(gpgme_ctx_t ctx, gpgme_signature_t s, struct sign_result *r)
{
	gpgme_key_t key = NULL;
	const char *fpr = s->fpr;
	int ret = 0;

	if (!gpgme_get_key(ctx, s->fpr, &key, 0) && key && key->fpr)
		fpr = key->fpr;
	if (!fpr || file_pathf(r->fpr, sizeof(r->fpr), "openpgp:%s", fpr)) {
		log_info("prov: signing key fingerprint %s does not fit",
			 fpr ? fpr : "(none)");
		r->fpr[0] = '\0';
		ret = -EINVAL;
	}
	gpgme_key_unref(key);
	return ret;
}

/* gpg found no signature it could read: the provenance is broken. An error
 * of the system (no memory, no gpg to run) is the caller's -errno. */
static int verify_failed(gpgme_error_t e)
{
	char msg[128];

	if (gpgme_err_code_to_errno(gpgme_err_code(e)) == 0 &&
	    gpgme_err_code(e) != GPG_ERR_INV_ENGINE &&
	    gpgme_err_code(e) != GPG_ERR_NOT_IMPLEMENTED) {
		log_debug("prov: no readable signature: %s", gstr(e, msg, sizeof(msg)));
		return 0;
	}
	log_err("prov: gpg verify: %s", gstr(e, msg, sizeof(msg)));
	return gerr(e);
}

int prov_verify(const struct prov_keyring *kr, const void *prov, size_t len,
		const char *pkg_name, const char *pkg_digest, struct sign_result *r)
{
	gpgme_ctx_t ctx = NULL;
	gpgme_data_t sig = NULL, plain = NULL;
	gpgme_signature_t good;
	gpgme_error_t e;
	const char *block;
	char *text = NULL;
	size_t blen = 0, tlen = 0;
	char msg[128];
	int ret = 0;

	memset(r, 0, sizeof(*r));
	r->verdict = SIGN_BROKEN;
	block = len <= OCI_PROV_LAYER_MAX ? clear_block(prov, len, &blen) : NULL;
	if (!block)
		return 0;
	ret = ctx_new(kr->home, &ctx);
	if (ret)
		return ret;
	e = gpgme_data_new_from_mem(&sig, block, blen, 0);
	if (!e)
		e = gpgme_data_new(&plain);
	if (e) {
		log_err("prov: gpgme data: %s", gstr(e, msg, sizeof(msg)));
		ret = gerr(e);
		goto out;
	}
	e = gpgme_op_verify(ctx, sig, NULL, plain);
	if (e) {
		ret = verify_failed(e);
		goto out;
	}
	r->verdict = sigs_verdict(gpgme_op_verify_result(ctx), &good);
	if (r->verdict != SIGN_OK)
		goto out;
	if (signer_fpr(ctx, good, r)) {
		r->verdict = SIGN_BROKEN;
		goto out;
	}
	text = gpgme_data_release_and_get_mem(plain, &tlen);
	plain = NULL;
	r->verdict = text ? files_verdict(text, tlen, pkg_name, pkg_digest) : SIGN_BROKEN;
	if (r->verdict == SIGN_OK)
		r->mech = SIGN_MECH_HELM_PROV;
	else
		r->fpr[0] = '\0';
out:
	gpgme_free(text);
	gpgme_data_release(plain);
	gpgme_data_release(sig);
	gpgme_release(ctx);
	return ret;
}
