#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/vocab.h"

/* libFuzzer target: the token-text readers (data/vocab.c) on a real file.
 * The first byte picks the reader, the rest is the file: 0 a GGUF's
 * tokenizer.ggml.tokens (vocab.c scans the GGUF header itself), 1 an HF
 * folder's tokenizer.json, 2 a llama2.c tokenizer (tok512.bin) beside a
 * .bin. Every piece read is then decoded and shown, as logits would. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One folder for the whole run: the files are rewritten at each input. */
static const char *fuzz_dir(void)
{
	static char dir[64];
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/tmp/ropefold-fuzz-vocab.XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	return dir;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const char *const file[3] = {"model.gguf", "tokenizer.json", "tok512.bin"};
	static const ModelFormat format[3] = {MODEL_FMT_GGUF, MODEL_FMT_SAFETENSORS,
					      MODEL_FMT_LLAMA2C};
	unsigned k = data[0] % 3;
	char path[128], model[128];
	snprintf(path, sizeof path, "%s/%s", fuzz_dir(), file[k]);
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	size_t n = fwrite(data + 1, 1, size - 1, f);
	if (fclose(f) != 0 || n != size - 1)
		return 0;
	/* what vocab_load is given: the GGUF itself, the folder, the .bin */
	if (k == 0)
		snprintf(model, sizeof model, "%s", path);
	else if (k == 1)
		snprintf(model, sizeof model, "%s", fuzz_dir());
	else
		snprintf(model, sizeof model, "%s/model.bin", fuzz_dir());
	Vocab v;
	char err[512];
	if (vocab_load(model, format[k], &v, err, sizeof err) == 0) {
		char buf[256];
		for (size_t id = 0; id < v.n && id < 4096; id++) {
			vocab_decode(&v, id ? id - 1 : 0, id, buf, 0, sizeof buf);
			vocab_token_text(&v, id, buf, sizeof buf);
		}
		vocab_free(&v);
	}
	unlink(path);
	return 0;
}
