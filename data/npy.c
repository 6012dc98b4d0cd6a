#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "data/npy.h"

/* The header: magic, version 1.0, a little-endian uint16 length, then the
 * dict padded with spaces and a newline so that the data starts at a
 * multiple of 64 bytes (NumPy's own alignment). */
static size_t npy_header(char *h, size_t len, size_t rows, size_t cols)
{
	char dict[128];
	int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, "
			 "'shape': (%zu, %zu), }", rows, cols);
	size_t total = 10 + (size_t)n + 1;
	total = (total + 63) / 64 * 64;
	if (total > len)
		return 0;
	size_t hl = total - 10;
	memcpy(h, "\x93NUMPY\x01\x00", 8);
	h[8] = (char)(hl & 0xff);
	h[9] = (char)(hl >> 8);
	memset(h + 10, ' ', hl);
	memcpy(h + 10, dict, (size_t)n);
	h[total - 1] = '\n';
	return total;
}

int npy_write_f32(const char *path, const float *v, size_t rows, size_t cols, char *err,
		  size_t errlen)
{
	char h[256], tmp[4200];
	size_t hn = npy_header(h, sizeof h, rows, cols);
	snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
	FILE *f = hn ? fopen(tmp, "wbx") : NULL;
	if (!f) {
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
		return -1;
	}
	bool ok = fwrite(h, 1, hn, f) == hn;
	/* '<f4': each value's bits little-endian whatever the machine's order */
	unsigned char buf[4096];
	size_t n = rows * cols, k = 0;
	for (size_t i = 0; i < n && ok; i++) {
		uint32_t u;
		memcpy(&u, &v[i], 4);
		for (int b = 0; b < 4; b++)
			buf[k++] = (unsigned char)(u >> (8 * b));
		if (k == sizeof buf || i + 1 == n) {
			ok = fwrite(buf, 1, k, f) == k;
			k = 0;
		}
	}
	ok = (fflush(f) == 0) && ok;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path)) {
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}
