/*
 * strv.h - a growable, owned vector of strings.
 *
 * Contract: not thread-safe; the vector owns every string in it; an empty
 * vector is { NULL, 0, 0 } and needs no free.
 */
#ifndef CHARTFS_STRV_H
#define CHARTFS_STRV_H

#include <stdbool.h>
#include <stddef.h>

#include "common/compiler.h"

struct strv {
	char **v;
	size_t n;
	size_t cap;
};

/* Append a copy of s. */
int strv_push(struct strv *sv, const char *s) WUR;
/* Append s, taking ownership (freed on failure). */
int strv_push_owned(struct strv *sv, char *s) WUR;
/* Sort and remove duplicates. */
void strv_sort_uniq(struct strv *sv);
/* The strings joined by sep into buf (size len > 0), always terminated;
 * what does not fit ends in "...". */
void strv_join(const struct strv *sv, const char *sep, char *buf, size_t len);
/* Whether item is one of the names of list, a comma-separated string as
 * options give it ("a,b:5000"); a NULL list names nothing. */
bool strv_csv_has(const char *list, const char *item);
/* Free all strings and the array; leaves sv empty. */
void strv_free(struct strv *sv);

#endif
