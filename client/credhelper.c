/*
 * credhelper.c - docker credential helpers: run docker-credential-<name> get
 * (found on PATH, no shell), write the server name to its stdin, read
 * {"ServerURL","Username","Secret"} from its stdout, within a deadline.
 *
 * stdin is a socketpair so a helper that exits without reading cannot
 * raise SIGPIPE in chartfs (send with MSG_NOSIGNAL). The helper's stderr
 * goes to /dev/null: helpers may print secrets in debug output.
 */
#include "client/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mono.h"

#define ANSWER_MAX (64u * 1024)

extern char **environ;

/* A helper name becomes part of a program name looked up on PATH: a slash
 * would make it a path instead. */
static bool name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (!n || n > 64)
		return false;
	for (i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("._-", ch)))
			return false;
	}
	return name[0] != '.';
}

/* Read fd until EOF, the size limit or the deadline. */
static int read_answer(int fd, int64_t deadline, char *buf, size_t cap, size_t *len)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t r;
	int left;

	*len = 0;
	for (;;) {
		left = (int)(deadline - mono_ms());
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		r = read(fd, buf + *len, cap - 1 - *len);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		*len += (size_t)r;
		if (*len == cap - 1)
			return -EFBIG;
	}
	buf[*len] = '\0';
	return 0;
}

/* Wait for pid until the deadline, then kill it; its exit status or -1. */
static int reap(pid_t pid, int64_t deadline, bool kill_now)
{
	int status = 0;
	pid_t r;

	if (kill_now)
		kill(pid, SIGKILL);
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -1;
		if (r == 0 && mono_ms() >= deadline) {
			kill(pid, SIGKILL);
			deadline = mono_ms() + 60000;
		}
		if (r == 0) {
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int parse_answer(const char *buf, size_t len, const char *prog,
			struct oci_creds *out)
{
	json_t *root = json_loadb(buf, len, 0, NULL);
	const char *user = json_string_value(json_object_get(root, "Username"));
	const char *secret = json_string_value(json_object_get(root, "Secret"));
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (!secret || !secret[0]) {
		log_warn("creds: %s answered without a Secret", prog);
		ret = -ENOENT;
		goto out;
	}
	/* docker's convention: the user "<token>" marks an identity token. */
	if (user && !strcmp(user, "<token>")) {
		out->identity_token = strdup(secret);
		ret = out->identity_token ? 0 : -ENOMEM;
	} else {
		out->username = strdup(user ? user : "");
		out->password = strdup(secret);
		ret = out->username && out->password ? 0 : -ENOMEM;
	}
	if (ret)
		oci_creds_clear(out);
out:
	json_decref(root);
	return ret;
}

/* Run "prog get" with its stdin on the socket in[1], its stdout on the
 * pipe outp[1] and its stderr on /dev/null (the caller closes in and outp
 * either way; the child's ends are closed here once it runs). *pid is the
 * child, or -1. A helper that cannot run is -ENOENT: no credentials. */
static int spawn_helper(char *prog, int in[2], int outp[2], pid_t *pid)
{
	char *argv[] = {prog, (char *)"get", NULL};
	posix_spawn_file_actions_t fa;
	int ret;

	*pid = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 ||
	    pipe2(outp, O_CLOEXEC) < 0)
		return -errno;
	ret = -posix_spawn_file_actions_init(&fa);
	if (ret)
		return ret;
	ret = -posix_spawn_file_actions_adddup2(&fa, in[1], 0);
	if (!ret)
		ret = -posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	if (!ret)
		ret = -posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (!ret)
		ret = -posix_spawnp(pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (ret) {
		*pid = -1;
		if (ret == -ENOENT)
			log_warn("creds: %s is not on PATH", prog);
		else
			log_warn("creds: cannot run %s: %s", prog, strerror(-ret));
		return -ENOENT;
	}
	close(in[1]);
	close(outp[1]);
	in[1] = outp[1] = -1;
	return 0;
}

int oci_creds_helper(const char *name, const char *server, int timeout_ms,
		     struct oci_creds *out)
{
	char prog[96], *buf = NULL;
	int in[2] = {-1, -1}, outp[2] = {-1, -1}, ret, st;
	int64_t deadline = mono_ms() + timeout_ms;
	size_t len = 0, slen = strlen(server);
	pid_t pid = -1;

	memset(out, 0, sizeof(*out));
	if (!name_ok(name)) {
		log_err("creds: credential helper name \"%s\" is not a plain name", name);
		return -EINVAL;
	}
	snprintf(prog, sizeof(prog), "docker-credential-%s", name);
	buf = malloc(ANSWER_MAX);
	if (!buf)
		return -ENOMEM;
	ret = spawn_helper(prog, in, outp, &pid);
	if (ret)
		goto out;
	/* The server name is short: it fits the socket buffer at once. */
	if (send(in[0], server, slen, MSG_NOSIGNAL) != (ssize_t)slen)
		log_debug("creds: %s did not take its input", prog);
	shutdown(in[0], SHUT_WR);
	ret = read_answer(outp[0], deadline, buf, ANSWER_MAX, &len);
	st = reap(pid, deadline, ret != 0);
	pid = -1;
	if (ret == -ETIMEDOUT) {
		log_warn("creds: %s get: no answer within %d ms, killed", prog,
			 timeout_ms);
		goto out;
	}
	if (ret) {
		log_warn("creds: %s get: %s", prog,
			 ret == -EFBIG ? "answer too large" : strerror(-ret));
		goto out;
	}
	if (st != 0) {
		/* "credentials not found" is how helpers say "anonymous". */
		log_debug("creds: %s get: exit %d, no credentials for %s", prog, st,
			  server);
		ret = -ENOENT;
		goto out;
	}
	ret = parse_answer(buf, len, prog, out);
out:
	if (pid > 0)
		reap(pid, deadline, true);
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (outp[i] >= 0)
			close(outp[i]);
	}
	explicit_bzero(buf, ANSWER_MAX);
	free(buf);
	return ret;
}
