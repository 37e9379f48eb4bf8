/* keys.c - STUB until issue 17's core lands: every load fails. */
#include "sign/keys.h"

#include <errno.h>
#include <stddef.h>

int sign_keys_load(const char *paths, struct sign_keys **out)
{
	(void)paths;
	*out = NULL;
	return -ENOSYS;
}
void sign_keys_free(struct sign_keys *k)
{
	(void)k;
}
size_t sign_keys_count(const struct sign_keys *k)
{
	(void)k;
	return 0;
}
const char *sign_keys_id(const struct sign_keys *k)
{
	(void)k;
	return "";
}
int sign_key_load(const char *path, struct sign_key **out)
{
	(void)path;
	*out = NULL;
	return -ENOSYS;
}
void sign_key_free(struct sign_key *k)
{
	(void)k;
}
const char *sign_key_fpr(const struct sign_key *k)
{
	(void)k;
	return "";
}
