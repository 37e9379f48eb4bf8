/*
 * log.h - the one log module of chartfs.
 *
 * Contract: thread-safe (each message is one write(2) or one syslog(3) call).
 * Messages go to stderr until the daemon detaches; from then on to the file
 * chartfs_log_open_file() opened (-o log_file), else to syslog(LOG_DAEMON,
 * ident "chartfs") once chartfs_log_detach() is called.
 * Messages above the configured level are dropped before formatting.
 * Every message starts with its component, e.g. "client: GET /v2/x: 404".
 * Never log a secret (password, token, Authorization header).
 */
#ifndef CHARTFS_LOG_H
#define CHARTFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

#include "common/compiler.h"

/* Set the highest level that is emitted (LOG_ERR .. LOG_DEBUG). */
void chartfs_log_set_level(int level);
/* Current level, so callers can skip building expensive debug text. */
int chartfs_log_level(void);
/* Open path for appending (0600, created if missing) as the destination
 * that replaces stderr once chartfs_log_detach() is called: 0 or -errno. */
int chartfs_log_open_file(const char *path) WUR;
/* After daemonizing: to the file opened above, else to syslog. */
void chartfs_log_detach(void);
/* Is there a syslog socket to log to once detached? */
bool chartfs_log_have_syslog(void);
/* Emit one message; a trailing newline is added if missing. */
void chartfs_log(int level, const char *fmt, ...) PRINTF_LIKE(2, 3);

#define log_err(...) chartfs_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) chartfs_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) chartfs_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) chartfs_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                   \
	do {                                                                             \
		if (chartfs_log_level() >= LOG_DEBUG)                                    \
			chartfs_log(LOG_DEBUG, __VA_ARGS__);                             \
	} while (0)

#endif
