/* compiler.h - attributes shared by every layer. */
#ifndef CHARTFS_COMPILER_H
#define CHARTFS_COMPILER_H

/* Fallible functions return 0 or -errno; ignoring that is always a bug. */
#define WUR __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

#endif
