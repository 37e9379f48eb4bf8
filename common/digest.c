/* digest.c - sha256 digests with OpenSSL's EVP interface. */
#include "common/digest.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

struct digest_ctx {
	EVP_MD_CTX *md;
};

bool digest_valid(const char *d)
{
	size_t i;

	if (!d || strncmp(d, "sha256:", 7) != 0)
		return false;
	d += 7;
	for (i = 0; i < 64; i++) {
		char c = d[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return d[64] == '\0';
}

const char *digest_hex(const char *d)
{
	return d + 7;
}

/* OpenSSL 3 looks EVP_sha256() up in its provider tables at every init
 * (an implicit fetch, with locks): a third of a remount's daemon time went
 * there. Fetched once, for the life of the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int digest_init(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md ? 0 : -ENOSYS;
}

static void digest_ctx_free(struct digest_ctx *ctx)
{
	if (!ctx)
		return;
	EVP_MD_CTX_free(ctx->md);
	free(ctx);
}

/* Streaming sha256, or NULL on allocation failure. */
static struct digest_ctx *digest_ctx_new(void)
{
	struct digest_ctx *ctx;

	if (digest_init() != 0)
		return NULL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return NULL;
	ctx->md = EVP_MD_CTX_new();
	if (!ctx->md || EVP_DigestInit_ex(ctx->md, sha256_md, NULL) != 1) {
		digest_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

static void digest_ctx_update(struct digest_ctx *ctx, const void *data, size_t len)
{
	EVP_DigestUpdate(ctx->md, data, len);
}

/* Writes "sha256:..." into out and resets nothing: call _free after. */
static void digest_ctx_final(struct digest_ctx *ctx, char out[DIGEST_STR_MAX])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	EVP_DigestFinal_ex(ctx->md, md, &len);
	memcpy(out, "sha256:", 7);
	for (i = 0; i < len && i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[7 + 64] = '\0';
}

int digest_buf(const void *data, size_t len, char out[DIGEST_STR_MAX])
{
	struct digest_ctx *ctx = digest_ctx_new();

	if (!ctx)
		return -ENOMEM;
	digest_ctx_update(ctx, data, len);
	digest_ctx_final(ctx, out);
	digest_ctx_free(ctx);
	return 0;
}

int digest_fd(int fd, char out[DIGEST_STR_MAX], long long *size)
{
	struct digest_ctx *ctx = digest_ctx_new();
	char buf[65536];
	long long off = 0;
	int ret = 0;

	if (!ctx)
		return -ENOMEM;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		digest_ctx_update(ctx, buf, (size_t)n);
		off += n;
	}
	digest_ctx_final(ctx, out);
	if (size)
		*size = off;
out:
	digest_ctx_free(ctx);
	return ret;
}
