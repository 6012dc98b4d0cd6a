#include "config.h"

#include "fuzz/fuzz_common.h"

/* libFuzzer target: the llama2.c .bin reader (header checks, layout). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_one(data, size, NULL);
	return 0;
}
