/* log.c - stderr, a file or syslog, one call per message. */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = LOG_NOTICE;
static atomic_bool log_syslog = false;
static int file_fd = -1;		/* -o log_file, opened before detaching */
static atomic_bool log_to_file = false; /* ...and written to once detached */

void chartfs_log_set_level(int level)
{
	atomic_store(&log_level, level);
}

int chartfs_log_level(void)
{
	return atomic_load(&log_level);
}

/* Switch output from stderr to syslog (after daemonizing). */
static void chartfs_log_use_syslog(void)
{
	openlog("chartfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&log_syslog, true);
}

int chartfs_log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);

	if (fd < 0)
		return -errno;
	if (file_fd >= 0)
		close(file_fd);
	file_fd = fd;
	return 0;
}

void chartfs_log_detach(void)
{
	if (file_fd >= 0)
		atomic_store(&log_to_file, true);
	else
		chartfs_log_use_syslog();
}

bool chartfs_log_have_syslog(void)
{
	struct stat st;

	return stat("/dev/log", &st) == 0 && S_ISSOCK(st.st_mode);
}

/* A line of the log file starts as syslog's would: when, who. */
static size_t file_prefix(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;
	int m;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	m = snprintf(buf + n, len - n, " chartfs[%d]: ", (int)getpid());
	return m < 0 || (size_t)m >= len - n ? n : n + (size_t)m;
}

static void chartfs_vlog(int level, const char *fmt, va_list ap)
{
	char buf[2048];
	bool to_file = atomic_load(&log_to_file);
	size_t at = 0;
	int n;

	if (level > atomic_load(&log_level))
		return;
	if (to_file)
		at = file_prefix(buf, 64);
	n = vsnprintf(buf + at, sizeof(buf) - 1 - at, fmt, ap);
	if (n < 0)
		return;
	n += (int)at;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	/* Drop a trailing newline; syslog adds its own, stderr gets one below. */
	while (n > (int)at && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	if (!to_file && atomic_load(&log_syslog)) {
		syslog(level, "%s", buf);
		return;
	}
	buf[n] = '\n';
	/* One write(2) keeps lines from concurrent threads whole. */
	if (write(to_file ? file_fd : STDERR_FILENO, buf, (size_t)n + 1) < 0)
		return;
}

void chartfs_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	chartfs_vlog(level, fmt, ap);
	va_end(ap);
}
