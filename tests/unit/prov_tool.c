/*
 * prov-tool.c - check one helm provenance against a keyring with
 * sign/prov.c, for tests/test_prov_verify.py.
 *
 *   prov-tool [-w WORKDIR] [-t THREADS] KEYRING PROVFILE PKGNAME PKGDIGEST
 *
 * prints "keyring <id>", "verdict <SIGN_* name>", "mech <mech or ->",
 * "fpr <fpr or ->". With -t, THREADS threads check the same bytes at once
 * against the one loaded keyring and must agree. Exit 0 with a verdict,
 * 1 when prov_verify failed (-errno), 2 on bad usage or an unloadable
 * keyring, 3 when threads disagree.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/manifest.h"
#include "common/file.h"
#include "sign/prov.h"

#define TOOL_MAX_THREADS 64
/* Read past the layer's cap to show what prov_verify does with more. */
#define TOOL_PROV_READ_MAX (4 * OCI_PROV_LAYER_MAX)

struct job {
	const struct prov_keyring *kr;
	const char *prov;
	size_t len;
	const char *name, *digest;
	struct sign_result r;
	int ret;
};

static const char *verdict_name(enum sign_verdict v)
{
	switch (v) {
	case SIGN_OK:
		return "SIGN_OK";
	case SIGN_NONE:
		return "SIGN_NONE";
	case SIGN_WRONG_KEY:
		return "SIGN_WRONG_KEY";
	case SIGN_OTHER_DIGEST:
		return "SIGN_OTHER_DIGEST";
	case SIGN_BAD_SIG:
		return "SIGN_BAD_SIG";
	case SIGN_BROKEN:
		return "SIGN_BROKEN";
	}
	return "?";
}

static void *run_job(void *arg)
{
	struct job *j = arg;

	j->ret = prov_verify(j->kr, j->prov, j->len, j->name, j->digest, &j->r);
	return NULL;
}

static int read_prov(const char *path, char **buf, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = file_read_fd(fd, TOOL_PROV_READ_MAX, buf, len, &st);
	close(fd);
	return ret;
}

static bool same(const struct job *a, const struct job *b)
{
	return a->ret == b->ret && a->r.verdict == b->r.verdict &&
	       a->r.mech == b->r.mech && !strcmp(a->r.fpr, b->r.fpr);
}

static int check(const struct prov_keyring *kr, const char *prov, size_t len, char **argv,
		 long nthreads)
{
	struct job jobs[TOOL_MAX_THREADS];
	pthread_t tid[TOOL_MAX_THREADS];
	long i, started = 0;
	int rc = 0;

	for (i = 0; i < nthreads; i++)
		jobs[i] = (struct job){kr, prov, len, argv[2], argv[3], {0}, 0};
	if (nthreads == 1) {
		run_job(&jobs[0]);
	} else {
		for (; started < nthreads; started++)
			if (pthread_create(&tid[started], NULL, run_job, &jobs[started]))
				break;
		for (i = 0; i < started; i++)
			pthread_join(tid[i], NULL);
		if (started < nthreads) {
			fprintf(stderr, "prov-tool: cannot start %ld threads\n",
				nthreads);
			return 2;
		}
		for (i = 1; i < nthreads; i++)
			if (!same(&jobs[0], &jobs[i]))
				rc = 3;
	}
	if (jobs[0].ret) {
		printf("error %s\n", strerror(-jobs[0].ret));
		return rc ? rc : 1;
	}
	printf("verdict %s\nmech %s\nfpr %s\n", verdict_name(jobs[0].r.verdict),
	       jobs[0].r.mech ? jobs[0].r.mech : "-",
	       jobs[0].r.fpr[0] ? jobs[0].r.fpr : "-");
	return rc;
}

int main(int argc, char **argv)
{
	const char *workdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct prov_keyring *kr = NULL;
	long nthreads = 1;
	char *prov = NULL, *end;
	size_t len = 0;
	int opt, ret, rc;

	while ((opt = getopt(argc, argv, "w:t:")) != -1) {
		if (opt == 'w') {
			workdir = optarg;
		} else if (opt == 't') {
			nthreads = strtol(optarg, &end, 10);
			if (*end || nthreads < 1 || nthreads > TOOL_MAX_THREADS)
				return 2;
		} else {
			return 2;
		}
	}
	if (argc - optind != 4) {
		fprintf(stderr,
			"usage: prov-tool [-w WORKDIR] [-t THREADS] KEYRING PROVFILE "
			"PKGNAME PKGDIGEST\n");
		return 2;
	}
	argv += optind;
	if (prov_init())
		return 2;
	ret = read_prov(argv[1], &prov, &len);
	if (ret) {
		fprintf(stderr, "prov-tool: %s: %s\n", argv[1], strerror(-ret));
		return 2;
	}
	if (prov_keyring_load(argv[0], workdir, &kr)) {
		free(prov);
		return 2;
	}
	printf("keyring %s\n", prov_keyring_id(kr));
	/* gpgme forks: nothing buffered may be written twice. */
	fflush(stdout);
	rc = check(kr, prov, len, argv, nthreads);
	prov_keyring_free(kr);
	free(prov);
	return rc;
}
