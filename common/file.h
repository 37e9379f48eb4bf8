/*
 * file.h - small file-system helpers every layer repeated: a path formatted
 * into a fixed buffer, and a small file read whole.
 *
 * Contract: thread-safe (no shared state); 0 or -errno, nothing logged:
 * the caller knows what the path was for.
 */
#ifndef CHARTFS_FILE_H
#define CHARTFS_FILE_H

#include <stddef.h>
#include <sys/stat.h>

#include "common/compiler.h"

/* snprintf into buf (size bytes): 0, or -ENAMETOOLONG when the result does
 * not fit (buf then holds a truncated string no caller may use). */
int file_pathf(char *buf, size_t size, const char *fmt, ...) PRINTF_LIKE(3, 4) WUR;

/* Read the regular file open at fd, of at most max bytes, into a malloc'd
 * NUL-terminated *out of *len bytes; *st is its fstat. A file that shrinks
 * while read gives what it held (*len < st->st_size). -EINVAL when it is not
 * a regular file, -EFBIG when it is over max, -ENOMEM, or read(2)'s -errno. */
int file_read_fd(int fd, size_t max, char **out, size_t *len, struct stat *st) WUR;

#endif
