#include "config.h"

#include "fuzz/fuzz_common.h"

/* libFuzzer target: the safetensors reader (header length, JSON header,
 * dtypes, shapes against byte ranges) with a fixed config.json matching
 * the seed corpus (D 32, 4 heads, 2 kv heads, head dim 8, 2 layers). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config_json[] =
	"{\"model_type\": \"llama\", \"hidden_size\": 32, \"num_attention_heads\": 4, "
	"\"num_key_value_heads\": 2, \"head_dim\": 8, \"num_hidden_layers\": 2, "
	"\"vocab_size\": 40}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_one(data, size, config_json);
	return 0;
}
