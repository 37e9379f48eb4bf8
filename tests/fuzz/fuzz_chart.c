/*
 * fuzz_chart.c - chart .tgz bytes through the unpacker's rules, in memory
 * (chart_check_mem: the same walk chart_unpack_fd does, with helm's size
 * limits, but nothing written), then its Chart.yaml through chartmeta as
 * publish does.
 *
 * libFuzzer's byte mutations mostly break the gzip stream, so the tar
 * parsing and the path rules behind it would barely be reached: the fuzz
 * build (CHARTFS_LIBFUZZER) adds a custom mutator that inflates the input,
 * mutates the tar and deflates it again (a quarter of the time it mutates
 * the raw bytes instead, for the gzip layer itself).
 */
#include "tests/fuzz/fuzz.h"

#include "cache/chartmeta.h"
#include "cache/unpack.h"

#ifdef CHARTFS_LIBFUZZER
#include <zlib.h>

#define TAR_MAX (256u * 1024)

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed);

/* zlib in gzip mode (windowBits 16 + 15). in -> out, or 0 on failure. */
static size_t gz(bool compress, const uint8_t *in, size_t in_len, uint8_t *out,
		 size_t out_max)
{
	z_stream z = {0};
	size_t n = 0;
	int ret;

	if ((compress
		 ? deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY)
		 : inflateInit2(&z, 16 + MAX_WBITS)) != Z_OK)
		return 0;
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)in_len;
	z.next_out = out;
	z.avail_out = (uInt)out_max;
	ret = compress ? deflate(&z, Z_FINISH) : inflate(&z, Z_FINISH);
	if (ret == Z_STREAM_END)
		n = out_max - z.avail_out;
	if (compress)
		deflateEnd(&z);
	else
		inflateEnd(&z);
	return n;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	static uint8_t tar[TAR_MAX];
	size_t n, z;

	if (seed % 4 == 0 || !(n = gz(false, data, size, tar, sizeof(tar))))
		return LLVMFuzzerMutate(data, size, max_size);
	n = LLVMFuzzerMutate(tar, n, sizeof(tar));
	z = gz(true, tar, n, data, max_size);
	return z ? z : LLVMFuzzerMutate(data, size, max_size);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *yaml = NULL, *top = NULL;
	struct chartmeta *meta = NULL;
	int ret;

	fuzz_init();
	ret = chart_check_mem(data, size, &yaml, &top);
	if (ret) {
		/* Refused: an errno, and nothing handed back. */
		if (yaml || top || ret > 0)
			abort();
		return 0;
	}
	if (!yaml || !top || !*top || strchr(top, '/'))
		abort();
	if (chartmeta_parse(yaml, strlen(yaml), &meta) == 0)
		chartmeta_free(meta);
	free(yaml);
	free(top);
	return 0;
}
