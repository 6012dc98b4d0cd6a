#include "config.h"

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz/fuzz_common.h"

/* libFuzzer target: the same readers through a real file (model_open on a
 * memfd's /proc/self/fd path): the regular-file open, sniffing from the
 * first bytes, headers and tensors read with pread. Seeds: the GGUF and
 * llama2.c corpora (a safetensors file needs a config.json beside it). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t done = 0;
	while (done < size) {
		ssize_t k = write(fd, data + done, size - done);
		if (k <= 0)
			break;
		done += (size_t)k;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	Model *m;
	char err[512];
	if (done == size && model_open(path, &m, err, sizeof err) == 0) {
		fuzz_read_model(m);
		model_close(m);
	}
	close(fd);
	return 0;
}
