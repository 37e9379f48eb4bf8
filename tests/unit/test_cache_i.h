/*
 * test_cache_i.h - helpers of test_cache.c: hostile archives built in memory
 * with libarchive's writer, and small file-system probes.
 */
#ifndef CHARTFS_TEST_CACHE_I_H
#define CHARTFS_TEST_CACHE_I_H

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cache/unpack.h"

#define MiB (1024ll * 1024)

struct buf {
	unsigned char *p;
	size_t len;
};

/* One archive entry: a regular file unless type says otherwise; data NULL
 * means size zero bytes. */
struct ent {
	const char *name;
	const char *data;
	long long size;
	mode_t type;
	const char *link; /* symlink target, or hardlink target with hard */
	bool hard;
};

enum kind { TGZ, TAR, ZIP, GNUTGZ };

static inline void free_buf(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
}

static inline struct buf build(const struct ent *ents, size_t n, enum kind kind)
{
	static const char zeros[65536];
	struct buf b = {malloc(8 * MiB), 0};
	struct archive *a = archive_write_new();
	size_t i;

	if (kind == TGZ || kind == GNUTGZ)
		archive_write_add_filter_gzip(a);
	if (kind == ZIP)
		archive_write_set_format_zip(a);
	else if (kind == GNUTGZ)
		archive_write_set_format_gnutar(a);
	else
		archive_write_set_format_pax_restricted(a);
	/* The writer needs a UTF-8 locale for non-ASCII names; the code under
	 * test runs in the C locale, like the daemon. */
	setlocale(LC_CTYPE, "C.UTF-8");
	if (archive_write_open_memory(a, b.p, 8 * MiB, &b.len) != ARCHIVE_OK)
		abort();
	for (i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		const struct ent *x = &ents[i];
		long long size = x->data ? (long long)strlen(x->data) : x->size;
		mode_t type = x->type ? x->type : AE_IFREG;

		archive_entry_set_pathname(e, x->name);
		archive_entry_set_filetype(e, type);
		archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 04755);
		if (x->link && x->hard)
			archive_entry_set_hardlink(e, x->link);
		else if (x->link)
			archive_entry_set_symlink(e, x->link);
		if (type == AE_IFCHR)
			archive_entry_set_rdev(e, makedev(1, 3));
		if (type == AE_IFREG && !x->link)
			archive_entry_set_size(e, size);
		if (archive_write_header(a, e) != ARCHIVE_OK) {
			fprintf(stderr, "build %s: %s\n", x->name,
				archive_error_string(a));
			abort();
		}
		if (x->data)
			archive_write_data(a, x->data, strlen(x->data));
		else
			for (long long left = type == AE_IFREG ? size : 0; left > 0;
			     left -= (long long)sizeof(zeros))
				archive_write_data(a, zeros,
						   left < (long long)sizeof(zeros)
						       ? (size_t)left
						       : sizeof(zeros));
		archive_entry_free(e);
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		abort();
	archive_write_free(a);
	setlocale(LC_CTYPE, "C");
	return b;
}

/* gzip arbitrary bytes (a hand-damaged tar, or a .tgz again). */
static inline struct buf gzip_bytes(const void *data, size_t len)
{
	struct buf b = {malloc(len + 65536), 0};
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();

	archive_write_add_filter_gzip(a);
	archive_write_set_format_raw(a);
	archive_write_open_memory(a, b.p, len + 65536, &b.len);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_pathname(e, "x");
	archive_entry_set_size(e, (la_int64_t)len);
	archive_write_header(a, e);
	archive_write_data(a, data, len);
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(e);
	return b;
}

static inline int unlock_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)f;
	if (flag == FTW_D)
		chmod(p, st->st_mode | 0700);
	return 0;
}

static inline int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static inline void rm_rf(const char *path)
{
	nftw(path, unlock_cb, 16, FTW_PHYS);
	nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static inline mode_t mode_of(const char *dir, const char *rel)
{
	char p[4096];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return lstat(p, &st) < 0 ? (mode_t)-1 : st.st_mode;
}

static inline char *slurp(const char *dir, const char *rel)
{
	char p[4096], *s = calloc(1, 4096);
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	fd = open(p, O_RDONLY);
	if (fd < 0 || read(fd, s, 4095) < 0) {
		free(s);
		s = NULL;
	}
	if (fd >= 0)
		close(fd);
	return s;
}

/* Unpack b into the fresh directory out (work/u-N): chart_unpack_fd's
 * result. The archive goes through a file, as the store feeds it. */
static inline int unpack_buf(const char *work, const struct buf *b, char *out,
			     size_t outlen)
{
	static int seq;
	char file[128];
	int fd, dfd, ret;

	snprintf(file, sizeof(file), "%s/in-%d.tgz", work, seq);
	snprintf(out, outlen, "%s/u-%d", work, seq++);
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, b->p, b->len) != (ssize_t)b->len || mkdir(out, 0700))
		abort();
	lseek(fd, 0, SEEK_SET);
	dfd = open(out, O_RDONLY | O_DIRECTORY);
	ret = chart_unpack_fd(fd, dfd, "test");
	close(dfd);
	close(fd);
	unlink(file);
	return ret;
}

#endif
