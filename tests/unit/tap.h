/* tap.h - a tiny TAP emitter for the C unit tests (no framework needed). */
#ifndef CHARTFS_TAP_H
#define CHARTFS_TAP_H

#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed;

#define ok(cond, ...)                                                                    \
	do {                                                                             \
		tap_n++;                                                                 \
		if (cond) {                                                              \
			printf("ok %d - ", tap_n);                                       \
		} else {                                                                 \
			tap_failed++;                                                    \
			printf("not ok %d - %s:%d: ", tap_n, __FILE__, __LINE__);        \
		}                                                                        \
		printf(__VA_ARGS__);                                                     \
		printf("\n");                                                            \
		fflush(stdout);                                                          \
	} while (0)

/* Call at the end of main: prints the plan and the exit status. */
static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	if (tap_failed)
		printf("# %d of %d failed\n", tap_failed, tap_n);
	return tap_failed ? 1 : 0;
}

#endif
