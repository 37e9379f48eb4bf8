/* keys.c - PEM keys for -o verify_key and -o sign_key, with OpenSSL. */
#include "sign/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/digest.h"
#include "common/file.h"
#include "common/log.h"
#include "common/strv.h"
#include "sign/sign_i.h"

/* A key file is a few PEM blocks (cosign's are under 200 bytes); anything
 * this large is not one. */
#define SIGN_KEYFILE_MAX (1024u * 1024)
/* The keys one mount trusts, all files together: each signature is tried
 * against each key without a hint, so the set stays small. */
#define SIGN_KEYS_MAX 64

/* Read path whole (NUL-terminated); st gets its fstat. */
static int read_file(const char *path, char **text, size_t *len, struct stat *st)
{
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	ret = file_read_fd(fd, SIGN_KEYFILE_MAX, text, len, st);
	close(fd);
	return ret;
}

static const char *read_error(int err)
{
	return err == -EFBIG ? "larger than 1 MiB" : strerror(-err);
}

/* Append pk (taken) to k, with its names. */
static int keys_push(struct sign_keys *k, EVP_PKEY *pk)
{
	struct sign_pub *v;
	int ret;

	v = realloc(k->v, (k->n + 1) * sizeof(*v));
	if (!v) {
		EVP_PKEY_free(pk);
		return -ENOMEM;
	}
	k->v = v;
	memset(&v[k->n], 0, sizeof(v[k->n]));
	v[k->n].pk = pk;
	ret = sign_pub_names(pk, &v[k->n]);
	if (ret) {
		EVP_PKEY_free(pk);
		return ret;
	}
	k->n++;
	return 0;
}

/* Is the error PEM_read_bio left the end of the text? */
static bool pem_at_end(void)
{
	unsigned long e = ERR_peek_last_error();

	return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

/* One "PUBLIC KEY" block's DER into k (the found'th key of path). */
static int keys_der(struct sign_keys *k, const char *path, size_t found,
		    const unsigned char *der, long len)
{
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &der, len);
	const char *why;

	if (!pk) {
		log_err("sign: verify_key %s: PEM public key %zu does not parse", path,
			found);
		return -EINVAL;
	}
	if ((why = sign_pkey_unsupported(pk))) {
		log_err("sign: verify_key %s: key %zu is %s", path, found, why);
		EVP_PKEY_free(pk);
		return -EINVAL;
	}
	if (k->n >= SIGN_KEYS_MAX) {
		log_err("sign: verify_key %s: more than %d keys in all", path,
			SIGN_KEYS_MAX);
		EVP_PKEY_free(pk);
		return -EINVAL;
	}
	return keys_push(k, pk);
}

/* The public keys of one PEM text into k. Blocks of other kinds (a
 * certificate next to the key) are passed over, as OpenSSL's own readers
 * do; PEM_read_bio is used because OpenSSL 3's PEM_read_bio_PUBKEY ends a
 * text and fails on a broken key with the same error. */
static int keys_parse(struct sign_keys *k, const char *path, const char *text, size_t len)
{
	BIO *bio = BIO_new_mem_buf(text, (int)len);
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	size_t found = 0;
	long dlen = 0;
	int ret = 0;

	if (!bio)
		return -ENOMEM;
	ERR_clear_error();
	while (!ret && PEM_read_bio(bio, &name, &header, &der, &dlen) == 1) {
		if (!strcmp(name, PEM_STRING_PUBLIC))
			ret = keys_der(k, path, ++found, der, dlen);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
	}
	if (!ret && !pem_at_end()) {
		log_err("sign: verify_key %s: PEM block after key %zu does not parse",
			path, found);
		ret = -EINVAL;
	} else if (!ret && !found) {
		log_err("sign: verify_key %s: holds no PEM public key", path);
		ret = -EINVAL;
	}
	ERR_clear_error();
	BIO_free(bio);
	return ret;
}

static int keys_file(struct sign_keys *k, const char *path)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int ret;

	ret = read_file(path, &text, &len, &st);
	if (ret) {
		log_err("sign: verify_key %s: %s", path, read_error(ret));
		return ret;
	}
	ret = keys_parse(k, path, text, len);
	free(text);
	return ret;
}

/* The set's id: sha256 over its sorted, distinct fingerprints, one a line. */
static int keys_id(struct sign_keys *k)
{
	struct strv fprs = {0};
	char *joined = NULL;
	size_t i, len = 0;
	int ret = 0;

	for (i = 0; i < k->n && !ret; i++)
		ret = strv_push(&fprs, k->v[i].fpr);
	if (ret)
		goto out;
	strv_sort_uniq(&fprs);
	joined = malloc(fprs.n * SIGN_FPR_MAX + 1);
	if (!joined) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < fprs.n; i++) {
		size_t n = strlen(fprs.v[i]);
		memcpy(joined + len, fprs.v[i], n);
		len += n;
		joined[len++] = '\n';
	}
	ret = digest_buf(joined, len, k->id);
out:
	free(joined);
	strv_free(&fprs);
	return ret;
}

int sign_keys_load(const char *paths, struct sign_keys **out)
{
	struct sign_keys *k;
	char *copy = NULL, *save = NULL, *p;
	int ret = 0;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	copy = strdup(paths ? paths : "");
	if (!k || !copy) {
		ret = -ENOMEM;
		goto out;
	}
	for (p = strtok_r(copy, ":", &save); p && !ret; p = strtok_r(NULL, ":", &save))
		ret = keys_file(k, p);
	if (!ret && !k->n) {
		log_err("sign: verify_key names no file");
		ret = -EINVAL;
	}
	if (!ret)
		ret = keys_id(k);
out:
	free(copy);
	if (ret)
		sign_keys_free(k);
	else
		*out = k;
	return ret;
}

void sign_keys_free(struct sign_keys *k)
{
	size_t i;

	if (!k)
		return;
	for (i = 0; i < k->n; i++)
		EVP_PKEY_free(k->v[i].pk);
	free(k->v);
	free(k);
}

size_t sign_keys_count(const struct sign_keys *k)
{
	return k ? k->n : 0;
}

const char *sign_keys_id(const struct sign_keys *k)
{
	return k ? k->id : "";
}

/* Never prompt for a passphrase: a daemon has no terminal to ask on. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

/* Why text is no key chartfs reads, for the formats it can name. */
static const char *privkey_format_error(const char *text)
{
	if (strstr(text, "ENCRYPTED SIGSTORE PRIVATE KEY") ||
	    strstr(text, "ENCRYPTED COSIGN PRIVATE KEY"))
		return "is cosign's encrypted key format, which chartfs does not read: "
		       "use an "
		       "unencrypted PKCS#8 PEM key (cosign import-key-pair takes the "
		       "same key)";
	if (strstr(text, "BEGIN ENCRYPTED PRIVATE KEY"))
		return "is encrypted: chartfs takes an unencrypted PKCS#8 PEM key";
	return "holds no PEM private key that parses";
}

/* The file's owner and mode, as for password_file: the key signs in the
 * mounting user's name, so only that user may be able to read or change it. */
static int privkey_perms(const char *path, const struct stat *st)
{
	if (st->st_uid != geteuid()) {
		log_err(
		    "sign: sign_key %s is owned by uid %u, not by the mounting user (%u)",
		    path, (unsigned)st->st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st->st_mode & (S_IRWXG | S_IRWXO)) {
		log_err("sign: sign_key %s is accessible by group or others (mode %04o): "
			"chmod 600 it",
			path, (unsigned)(st->st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* Parse text (the whole file) into the one private key it holds. */
static int privkey_parse(const char *path, const char *text, size_t len, EVP_PKEY **pk)
{
	BIO *bio = BIO_new_mem_buf(text, (int)len);
	const char *why;
	int ret = 0;

	if (!bio)
		return -ENOMEM;
	*pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	ERR_clear_error();
	BIO_free(bio);
	if (!*pk) {
		log_err("sign: sign_key %s %s", path, privkey_format_error(text));
		ret = -EINVAL;
	} else if ((why = sign_pkey_unsupported(*pk))) {
		log_err("sign: sign_key %s is %s", path, why);
		EVP_PKEY_free(*pk);
		*pk = NULL;
		ret = -EINVAL;
	}
	return ret;
}

int sign_key_load(const char *path, struct sign_key **out)
{
	struct sign_key *k = NULL;
	EVP_PKEY *pk = NULL;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int ret;

	*out = NULL;
	ret = read_file(path, &text, &len, &st);
	if (ret) {
		log_err("sign: sign_key %s: %s", path, read_error(ret));
		return ret;
	}
	ret = privkey_perms(path, &st);
	if (!ret)
		ret = privkey_parse(path, text, len, &pk);
	if (!ret && !(k = calloc(1, sizeof(*k))))
		ret = -ENOMEM;
	if (!ret) {
		k->pub.pk = pk;
		pk = NULL;
		ret = sign_pub_names(k->pub.pk, &k->pub);
	}
	explicit_bzero(text, len);
	free(text);
	EVP_PKEY_free(pk);
	if (ret)
		sign_key_free(k);
	else
		*out = k;
	return ret;
}

void sign_key_free(struct sign_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pub.pk);
	free(k);
}

const char *sign_key_fpr(const struct sign_key *k)
{
	return k ? k->pub.fpr : "";
}
