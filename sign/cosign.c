/* cosign.c - STUB until issue 17's core makes bundles. */
#include "sign/cosign.h"

#include <errno.h>
#include <string.h>

int cosign_bundle_make(const struct sign_key *k, const char *manifest_digest,
		       struct oci_buf *out)
{
	(void)k, (void)manifest_digest, (void)out;
	return -ENOSYS;
}
int cosign_referrer_manifest(const char *bundle_digest, uint64_t bundle_size,
			     const char *subject_mt, const char *subject_digest,
			     uint64_t subject_size, struct oci_buf *out)
{
	(void)bundle_digest, (void)bundle_size, (void)subject_mt, (void)subject_digest;
	(void)subject_size, (void)out;
	return -ENOSYS;
}
int cosign_index_add(const void *index, size_t index_len, const void *manifest,
		     size_t manifest_len, struct oci_buf *out)
{
	(void)index, (void)index_len, (void)manifest, (void)manifest_len, (void)out;
	return -ENOSYS;
}
int cosign_index_bundles(const void *index, size_t len, struct strv *out)
{
	(void)index, (void)len, (void)out;
	return -ENOSYS;
}
