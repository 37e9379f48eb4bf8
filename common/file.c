/*
 * file.c - a path into a fixed buffer, a small file into memory.
 */
#include "common/file.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int file_pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int file_read_fd(int fd, size_t max, char **out, size_t *len, struct stat *st)
{
	char *buf = NULL;
	size_t got = 0;
	ssize_t r;
	int ret = 0;

	*out = NULL;
	*len = 0;
	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EINVAL;
	if ((size_t)st->st_size > max)
		return -EFBIG;
	buf = malloc((size_t)st->st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (got < (size_t)st->st_size) {
		r = read(fd, buf + got, (size_t)st->st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			ret = -errno;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (ret) {
		free(buf);
		return ret;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}
