/*
 * fuzz.h - what every libFuzzer target here shares.
 *
 * Each target defines LLVMFuzzerTestOneInput and frees everything it gets,
 * so a leak is reported as a bug. The same file links into a libFuzzer
 * binary (clang, -Dfuzz=true) and into replay_<target> (replay.c, any
 * compiler), which the normal test suite runs over the seed corpus.
 */
#ifndef CHARTFS_FUZZ_H
#define CHARTFS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Refused inputs log one line each: at millions of runs that drowns the
 * fuzzer's own output, so the log is off unless CHARTFS_FUZZ_LOG is set.
 * replay.c sets it, so the suite still formats every log line of the
 * corpus under the sanitizers. */
static inline void fuzz_init(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	chartfs_log_set_level(getenv("CHARTFS_FUZZ_LOG") ? LOG_DEBUG : LOG_CRIT);
}

/* A NUL-terminated copy: the parsers behind C strings read up to the NUL,
 * and the fuzzer's buffer has none. Embedded NULs simply end the string. */
static inline char *fuzz_strdup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return NULL;
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
