/*
 * tls.c - TLS settings of the client: verification, extra CA files added
 * to the system trust store, client certificates, and docker's per-host
 * certs.d directory.
 *
 * Extra CAs go into each new SSL_CTX's store (CURLOPT_SSL_CTX_FUNCTION)
 * instead of CURLOPT_CAINFO, because CAINFO replaces the system store and
 * -o ca_file and certs.d/<host>/ca.crt both mean "trust this one too".
 */
#include "client/http_i.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

#define CERTS_D_DEFAULT "/etc/docker/certs.d"

/* The path dir/host/name if that file is readable, else NULL in *out. */
static int certs_d_file(const char *dir, const char *host, const char *name, char **out)
{
	*out = NULL;
	if (asprintf(out, "%s/%s/%s", dir, host, name) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	if (access(*out, R_OK) != 0) {
		free(*out);
		*out = NULL;
	}
	return 0;
}

int tls_certs_d(struct oci_client *c)
{
	const char *dir = getenv("CHARTFS_CERTS_D");
	char *cert = NULL, *key = NULL;
	int ret;

	if (!dir || !dir[0])
		dir = CERTS_D_DEFAULT;
	ret = certs_d_file(dir, c->registry, "ca.crt", &c->certs_d_ca);
	if (!ret && !c->cert_file) {
		ret = certs_d_file(dir, c->registry, "client.cert", &cert);
		if (!ret)
			ret = certs_d_file(dir, c->registry, "client.key", &key);
		/* A certificate is only usable with its key. */
		if (!ret && cert && key) {
			c->cert_file = cert;
			c->key_file = key;
			cert = key = NULL;
			log_info("client: client certificate from %s/%s", dir,
				 c->registry);
		} else if (!ret && (cert || key)) {
			log_warn("client: %s/%s has client.cert or client.key but "
				 "not both: ignored",
				 dir, c->registry);
		}
	}
	if (c->certs_d_ca)
		log_info("client: trusting %s too", c->certs_d_ca);
	free(cert);
	free(key);
	return ret;
}

int tls_check_files(const struct oci_client *c)
{
	const char *what[] = {"ca_file", "cert_file", "key_file"};
	const char *files[] = {c->ca_file, c->cert_file, c->key_file};
	size_t i;

	for (i = 0; i < 3; i++) {
		if (files[i] && access(files[i], R_OK) != 0) {
			int err = errno;
			log_err("client: -o %s=%s: %s", what[i], files[i], strerror(err));
			return -err;
		}
	}
	if (c->key_file && !c->cert_file) {
		log_err("client: -o key_file needs -o cert_file");
		return -EINVAL;
	}
	return 0;
}

static int add_cas(X509_STORE *st, const char *file)
{
	if (!file)
		return 0;
	if (X509_STORE_load_file(st, file) != 1) {
		ERR_clear_error();
		return -EINVAL;
	}
	return 0;
}

static CURLcode on_ssl_ctx(CURL *h, void *ssl_ctx, void *ud)
{
	struct oci_client *c = ud;
	X509_STORE *st = SSL_CTX_get_cert_store(ssl_ctx);

	(void)h;
	if (!st || add_cas(st, c->ca_file) || add_cas(st, c->certs_d_ca))
		return CURLE_SSL_CACERT_BADFILE;
	return CURLE_OK;
}

void tls_setup(struct oci_client *c, CURL *h)
{
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->ca_file || c->certs_d_ca) {
		curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, c);
	}
	if (c->cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
	if (c->key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
}
