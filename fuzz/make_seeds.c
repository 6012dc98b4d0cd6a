#include "config.h"

/* Writes the fuzz seed corpus with the tests' own fixture writers:
 * OUT/gguf/, OUT/safetensors/, OUT/llama2c/, small valid files of each
 * format (several dtypes, biases, fused qkv) that the fuzzer mutates. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/ckpt_fixtures.h"

static void put(const char *out, const char *sub, const char *name, const FxBuf *b)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/%s", out, sub);
	mkdir(dir, 0777);
	if (fx_write(dir, name, b->p, b->n)) {
		fprintf(stderr, "make_seeds: cannot write %s/%s\n", dir, name);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_seeds OUTDIR\n");
		return 2;
	}
	const char *out = argv[1];
	mkdir(out, 0777);
	LayerShape s = {32, 4, 2, 8};
	Layer ly[2];
	static double emb[40 * 32];
	for (size_t i = 0; i < 40 * 32; i++)
		emb[i] = (float)(0.01 * (double)(i % 89) - 0.4);
	fx_layer(&ly[0], &s, true, 1);
	fx_layer(&ly[1], &s, true, 2);
	FxTensor t[64];
	const char *dts[] = {"F32", "F16", "BF16", "Q8_0", "Q4_0"};
	for (size_t d = 0; d < 5; d++) {
		size_t nt = fx_llama_tensors(ly, 2, emb, 40, "gguf", dts[d], t);
		FxKv kv[] = {{"general.architecture", 's', d % 2 ? "qwen2" : "llama", 0},
			     {d % 2 ? "qwen2.block_count" : "llama.block_count", 'u', NULL, 2},
			     {d % 2 ? "qwen2.embedding_length" : "llama.embedding_length", 'u', NULL, 32},
			     {d % 2 ? "qwen2.attention.head_count" : "llama.attention.head_count", 'u',
			      NULL, 4},
			     {d % 2 ? "qwen2.attention.head_count_kv" : "llama.attention.head_count_kv",
			      'u', NULL, 2},
			     {d % 2 ? "qwen2.rope.freq_base" : "llama.rope.freq_base", 'f', NULL, 1e4},
			     {"tokenizer.ggml.tokens", 'A', "ab", 3}};
		FxBuf b = {0};
		fx_gguf(&b, d == 2 ? 2 : 3, kv, 7, t, nt, d == 3 ? 64 : 0);
		char name[32];
		snprintf(name, sizeof name, "seed-%s.gguf", dts[d]);
		put(out, "gguf", name, &b);
		fx_free(&b);
		if (d < 3) {
			nt = fx_llama_tensors(ly, 2, emb, 40, "hf", dts[d], t);
			fx_safetensors(&b, t, nt);
			snprintf(name, sizeof name, "seed-%s.safetensors", dts[d]);
			put(out, "safetensors", name, &b);
			fx_free(&b);
		}
	}
	/* What the families add: Gemma 3's window, per-layer period and local
	 * base with rope_freqs; Qwen2-MoE's experts and a router; Qwen2-VL's
	 * sections (the arrays and tensors their readers walk). */
	static const double ff[4] = {1, 2, 4, 8};
	static double router[4 * 32];
	size_t nt = fx_llama_tensors(ly, 2, emb, 40, "gguf", "F32", t);
	t[nt++] = (FxTensor){"rope_freqs.weight", "F32", 1, {4, 0, 0, 0}, ff};
	FxKv g3[] = {{"general.architecture", 's', "gemma3", 0},
		     {"gemma3.block_count", 'u', NULL, 2},
		     {"gemma3.embedding_length", 'u', NULL, 32},
		     {"gemma3.attention.head_count", 'u', NULL, 4},
		     {"gemma3.attention.head_count_kv", 'u', NULL, 2},
		     {"gemma3.attention.sliding_window", 'u', NULL, 8},
		     {"gemma3.attention.sliding_window_pattern", 'U', "1,0", 0},
		     {"gemma3.rope.freq_base_swa", 'f', NULL, 1e4},
		     {"gemma3.final_logit_softcapping", 'f', NULL, 30}};
	FxBuf b = {0};
	fx_gguf(&b, 3, g3, sizeof g3 / sizeof g3[0], t, nt, 0);
	put(out, "gguf", "seed-gemma3.gguf", &b);
	fx_free(&b);
	nt = fx_llama_tensors(ly, 2, emb, 40, "gguf", "F32", t);
	t[nt++] = (FxTensor){"blk.1.ffn_gate_inp.weight", "F32", 2, {4, 32, 0, 0}, router};
	FxKv moe[] = {{"general.architecture", 's', "qwen2moe", 0},
		      {"qwen2moe.block_count", 'u', NULL, 2},
		      {"qwen2moe.embedding_length", 'u', NULL, 32},
		      {"qwen2moe.attention.head_count", 'u', NULL, 4},
		      {"qwen2moe.attention.head_count_kv", 'u', NULL, 2},
		      {"qwen2moe.expert_count", 'u', NULL, 4},
		      {"qwen2moe.expert_used_count", 'u', NULL, 2},
		      {"qwen2moe.expert_weights_norm", 'b', NULL, 1},
		      {"qwen2moe.rope.dimension_sections", 'U', "1,1,2,0", 0}};
	fx_gguf(&b, 3, moe, sizeof moe / sizeof moe[0], t, nt, 0);
	put(out, "gguf", "seed-moe.gguf", &b);
	fx_free(&b);
	int32_t h1[7] = {16, 24, 2, 4, 2, 10, 6}, h2[7] = {8, 8, 1, 2, 2, -6, 2};
	fx_llama2c(&b, h1);
	put(out, "llama2c", "seed-tied.bin", &b);
	fx_free(&b);
	fx_llama2c(&b, h2);
	put(out, "llama2c", "seed-untied.bin", &b);
	fx_free(&b);
	layer_free(&ly[0]);
	layer_free(&ly[1]);
	return 0;
}
