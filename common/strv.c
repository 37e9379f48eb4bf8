/* strv.c - owned string vectors. */
#include "common/strv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int strv_push_owned(struct strv *sv, char *s)
{
	if (!s)
		return -ENOMEM;
	if (sv->n == sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 16;
		char **v = realloc(sv->v, cap * sizeof(*v));
		if (!v) {
			free(s);
			return -ENOMEM;
		}
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = s;
	return 0;
}

int strv_push(struct strv *sv, const char *s)
{
	return strv_push_owned(sv, strdup(s));
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort_uniq(struct strv *sv)
{
	size_t i, j = 0;

	if (sv->n < 2)
		return;
	qsort(sv->v, sv->n, sizeof(*sv->v), cmp);
	for (i = 1; i < sv->n; i++) {
		if (strcmp(sv->v[i], sv->v[j]) == 0)
			free(sv->v[i]);
		else
			sv->v[++j] = sv->v[i];
	}
	sv->n = j + 1;
}

void strv_free(struct strv *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}

void strv_join(const struct strv *sv, const char *sep, char *buf, size_t len)
{
	size_t i, used = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < sv->n; i++) {
		n = snprintf(buf + used, len - used, "%s%s", i ? sep : "", sv->v[i]);
		if (n < 0 || (size_t)n >= len - used) {
			/* Cut: mark it, where there is room for the mark. */
			if (len >= 4)
				memcpy(buf + len - 4, "...", 4);
			return;
		}
		used += (size_t)n;
	}
}

bool strv_csv_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	const char *p = list;

	while (p && *p) {
		size_t k = strcspn(p, ",");

		if (k == n && !strncmp(p, item, n))
			return true;
		p += k;
		if (*p == ',')
			p++;
	}
	return false;
}
