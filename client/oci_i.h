/*
 * oci_i.h - private to client/: the preamble every registry endpoint
 * shares (oci.c, referrers.c). A call owns its URL and token scope until
 * oci_call_send() frees them.
 */
#ifndef CHARTFS_OCI_I_H
#define CHARTFS_OCI_I_H

#include <stdbool.h>

#include "client/http_i.h"

/* One endpoint's request and the URL and token scope it owns. */
struct call {
	struct http_req rq;
	char *url;
	char *scope;
};

/* k->rq for method on the registry's base + the formatted path, in the
 * token scope of actions on repo (no scope when repo is NULL). 0, or
 * -ENOMEM with nothing left to free. */
int oci_call_init(struct call *k, const struct oci_client *c, const char *method,
		  const char *repo, const char *actions, const char *fmt, ...)
    PRINTF_LIKE(6, 7) WUR;
/* Send k and free what it owns. The answer is left in *rs for the caller
 * to clear, or dropped when rs is NULL. */
int oci_call_send(struct oci_client *c, struct call *k, struct http_resp *rs) WUR;
/* Refuse a repository, tag or digest that would not make a well-formed
 * API path (ref must be a digest when ref_is_digest): -EINVAL, logged. */
int oci_check_args(const char *op, const char *repo, const char *ref,
		   bool ref_is_digest) WUR;

#endif
