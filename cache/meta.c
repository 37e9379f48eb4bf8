/* meta.c - timestamped documents under <cache>/meta/, named by sha256(key). */
#include "cache/meta.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/file.h"

/* Documents are small (a tag map); refuse anything absurd on read. */
#define META_MAX (16u * 1024 * 1024)

static int meta_path(struct blobcache *bc, const char *key, char *buf, size_t len)
{
	char d[DIGEST_STR_MAX];
	int ret = digest_buf(key, strlen(key), d);

	if (ret)
		return ret;
	return file_pathf(buf, len, "%s/meta/%s", blobcache_dir(bc), digest_hex(d));
}

int meta_put(struct blobcache *bc, const char *key, const char *text, size_t len)
{
	char path[4096], tmp[4096];
	size_t off = 0;
	int ret, fd;

	ret = meta_path(bc, key, path, sizeof(path));
	if (ret)
		return ret;
	snprintf(tmp, sizeof(tmp), "%s/meta", blobcache_dir(bc));
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(tmp, sizeof(tmp), "%s/tmp/meta-XXXXXX", blobcache_dir(bc));
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		off += (size_t)n;
	}
	/* The file's mtime is the fetch time: no clock inside the document. */
	if (rename(tmp, path) < 0)
		ret = -errno;
out:
	close(fd);
	if (ret)
		unlink(tmp);
	return ret;
}

int meta_get(struct blobcache *bc, const char *key, unsigned max_age, char **text,
	     size_t *len, unsigned *age)
{
	char path[4096];
	struct stat st;
	time_t now = time(NULL);
	char *buf = NULL;
	size_t n = 0;
	int ret, fd;

	ret = meta_path(bc, key, path, sizeof(path));
	if (ret)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -ENOENT;
	/* Whatever is wrong with a document (gone, stale, cut short, not a
	 * file), it is not there: the caller asks the registry instead. */
	ret = file_read_fd(fd, META_MAX, &buf, &n, &st);
	if (ret == -ENOMEM)
		goto out;
	if (ret || (off_t)n != st.st_size || st.st_mtime > now ||
	    now - st.st_mtime >= (time_t)max_age) {
		ret = -ENOENT;
		goto out;
	}
	*text = buf;
	*len = n;
	*age = (unsigned)(now - st.st_mtime);
	buf = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}

int meta_drop(struct blobcache *bc, const char *key)
{
	char path[4096];
	int ret = meta_path(bc, key, path, sizeof(path));

	if (ret)
		return ret;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}
