/* prov.c - STUB until issue 17's provenance check lands. */
#include "sign/prov.h"

#include <errno.h>
#include <string.h>

int prov_keyring_load(const char *path, const char *workdir, struct prov_keyring **out)
{
	(void)path, (void)workdir;
	*out = NULL;
	return -ENOSYS;
}
void prov_keyring_free(struct prov_keyring *kr)
{
	(void)kr;
}
const char *prov_keyring_id(const struct prov_keyring *kr)
{
	(void)kr;
	return "";
}
int prov_verify(const struct prov_keyring *kr, const void *prov, size_t len,
		const char *pkg_name, const char *pkg_digest, struct sign_result *r)
{
	(void)kr, (void)prov, (void)len, (void)pkg_name, (void)pkg_digest;
	memset(r, 0, sizeof(*r));
	r->verdict = SIGN_BROKEN;
	return 0;
}
