/* pkey.c - the OpenSSL primitives cosign's formats need: key kinds and
 * names, signing and verifying, base64, the DSSE pre-authentication
 * encoding. */
#include "sign/sign_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* The curves cosign generates and verifies, by OpenSSL's group names. */
#define CURVE_P256 "prime256v1"
#define CURVE_P384 "secp384r1"
#define RSA_MIN_BITS 2048

static bool is_p384(EVP_PKEY *pk)
{
	char name[64];

	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC)
		return false;
	if (EVP_PKEY_get_group_name(pk, name, sizeof(name), NULL) != 1)
		return false;
	return strcmp(name, CURVE_P384) == 0;
}

const char *sign_pkey_unsupported(EVP_PKEY *pk)
{
	char name[64];

	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(pk, name, sizeof(name), NULL) != 1)
			return "an ECDSA key of unknown curve";
		if (strcmp(name, CURVE_P256) != 0 && strcmp(name, CURVE_P384) != 0)
			return "an ECDSA key on a curve other than P-256 and P-384";
		return NULL;
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pk) < RSA_MIN_BITS)
			return "an RSA key under 2048 bits";
		return NULL;
	case EVP_PKEY_ED25519:
		return NULL;
	default:
		return "not an ECDSA, RSA or Ed25519 key";
	}
}

int sign_pub_names(EVP_PKEY *pk, struct sign_pub *out)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char *b64 = NULL;
	int len, ret = 0;

	len = i2d_PUBKEY(pk, &der);
	if (len <= 0)
		return -EINVAL;
	if (EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(out->fpr, "sha256:", 7);
	for (i = 0; i < mdlen; i++)
		snprintf(out->fpr + 7 + 2 * i, 3, "%02x", md[i]);
	ret = sign_b64_encode(md, mdlen, &b64);
	if (ret)
		goto out;
	if (strlen(b64) >= sizeof(out->hint)) {
		ret = -EINVAL;
		goto out;
	}
	memcpy(out->hint, b64, strlen(b64) + 1);
out:
	free(b64);
	OPENSSL_free(der);
	return ret;
}

/* One verification with one digest (NULL: the key's own, Ed25519). */
static bool verify_md(EVP_PKEY *pk, const EVP_MD *md, const void *data, size_t len,
		      const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool good = false;

	if (!ctx)
		return false;
	if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk) == 1)
		good = EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
	EVP_MD_CTX_free(ctx);
	return good;
}

bool sign_pkey_verify(EVP_PKEY *pk, const void *data, size_t len,
		      const unsigned char *sig, size_t siglen)
{
	bool good = false;

	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_EC:
		/* cosign v3 signs with a P-384 key's own hash (sigstore's
		 * default), cosign v2 and sigstore-js use SHA-256 for every
		 * curve: either is the key holder's signature. */
		if (is_p384(pk))
			good = verify_md(pk, EVP_sha384(), data, len, sig, siglen);
		if (!good)
			good = verify_md(pk, EVP_sha256(), data, len, sig, siglen);
		break;
	case EVP_PKEY_RSA:
		good = verify_md(pk, EVP_sha256(), data, len, sig, siglen);
		break;
	case EVP_PKEY_ED25519:
		good = verify_md(pk, NULL, data, len, sig, siglen);
		break;
	default:
		break;
	}
	/* A failed verification leaves OpenSSL's error queue filled: it is
	 * a verdict here, not an error for whoever looks next. */
	ERR_clear_error();
	return good;
}

int sign_pkey_sign(EVP_PKEY *pk, const void *data, size_t len, unsigned char **sig,
		   size_t *siglen)
{
	const EVP_MD *md = NULL;
	EVP_MD_CTX *ctx = NULL;
	unsigned char *buf = NULL;
	size_t n = 0;
	int ret = -EINVAL;

	*sig = NULL;
	*siglen = 0;
	/* SHA-256 for every curve: `cosign verify --key` checks with SHA-256
	 * unless told otherwise, and so does sigstore-js. */
	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519)
		md = EVP_sha256();
	ctx = EVP_MD_CTX_new();
	if (!ctx) {
		ret = -ENOMEM;
		goto out;
	}
	if (EVP_DigestSignInit(ctx, NULL, md, NULL, pk) != 1 ||
	    EVP_DigestSign(ctx, NULL, &n, data, len) != 1)
		goto out;
	buf = malloc(n ? n : 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	if (EVP_DigestSign(ctx, buf, &n, data, len) != 1)
		goto out;
	*sig = buf;
	*siglen = n;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ret;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int sign_b64_decode(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
	unsigned char *buf;
	size_t pad = 0, i;
	int n;

	*out = NULL;
	*outlen = 0;
	/* Padding is required, as Go's StdEncoding (cosign) writes it. */
	if (len % 4)
		return -EINVAL;
	while (pad < 2 && pad < len && s[len - 1 - pad] == '=')
		pad++;
	for (i = 0; i < len - pad; i++)
		if (!b64_char(s[i]))
			return -EINVAL;
	buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	n = len ? EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len) : 0;
	if (n < 0 || (size_t)n < pad) {
		free(buf);
		return -EINVAL;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	*outlen = (size_t)n - pad;
	buf[*outlen] = '\0';
	*out = buf;
	return 0;
}

int sign_b64_encode(const void *data, size_t len, char **out)
{
	size_t n = (len + 2) / 3 * 4;
	char *buf;

	*out = NULL;
	if (len > (size_t)1 << 30)
		return -EINVAL;
	buf = malloc(n + 1);
	if (!buf)
		return -ENOMEM;
	EVP_EncodeBlock((unsigned char *)buf, data, (int)len);
	buf[n] = '\0';
	*out = buf;
	return 0;
}

int sign_dsse_pae(const char *type, const void *payload, size_t len, unsigned char **out,
		  size_t *outlen)
{
	size_t tlen = strlen(type), hlen, cap;
	unsigned char *buf;
	int n;

	*out = NULL;
	*outlen = 0;
	cap = tlen + len + 64;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	n = snprintf((char *)buf, cap, "DSSEv1 %zu %s %zu ", tlen, type, len);
	if (n < 0 || (size_t)n >= cap) {
		free(buf);
		return -EINVAL;
	}
	hlen = (size_t)n;
	memcpy(buf + hlen, payload, len);
	*out = buf;
	*outlen = hlen + len;
	return 0;
}
