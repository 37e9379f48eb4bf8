/* log.c - stderr or syslog, one call per message. */
#include "common/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int log_level = LOG_NOTICE;
static atomic_bool log_syslog = false;

void chartfs_log_set_level(int level)
{
	atomic_store(&log_level, level);
}

int chartfs_log_level(void)
{
	return atomic_load(&log_level);
}

void chartfs_log_use_syslog(void)
{
	openlog("chartfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&log_syslog, true);
}

void chartfs_vlog(int level, const char *fmt, va_list ap)
{
	char buf[2048];
	int n;

	if (level > atomic_load(&log_level))
		return;
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	/* Drop a trailing newline; syslog adds its own, stderr gets one below. */
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	if (atomic_load(&log_syslog)) {
		syslog(level, "%s", buf);
		return;
	}
	buf[n] = '\n';
	/* One write(2) keeps lines from concurrent threads whole. */
	if (write(STDERR_FILENO, buf, (size_t)n + 1) < 0)
		return;
}

void chartfs_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	chartfs_vlog(level, fmt, ap);
	va_end(ap);
}
