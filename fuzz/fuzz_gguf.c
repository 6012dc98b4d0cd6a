#include "config.h"

#include "fuzz/fuzz_common.h"

/* libFuzzer target: the GGUF reader (metadata, tensor infos, alignment,
 * F32/F16/BF16 and every ggml block quantization's conversion). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_one(data, size, NULL);
	return 0;
}
