#include "config.h"

/* Writes the fuzz seed corpus with the tests' own fixture writers:
 * OUT/gguf/, OUT/safetensors/, OUT/llama2c/, small valid files of each
 * format (several dtypes, every ggml block quantization, biases, fused
 * qkv, what the families add) that the fuzzer mutates. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dtype.h"
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
	/* ggml's block quantizations, one seed per type: a 2-layer model with
	 * its attention weights and embeddings in the type (D = 32 for the
	 * 32-element blocks; D = 256, H = G = 1, d = 8 for the 256-element
	 * ones, W_o in F16 as its rows are 8 long), and a Q4_K_M-style
	 * mixture (q, k Q4_K; v, embeddings Q6_K). Small, for -max_len. */
	for (int qt = 0; qt <= STORE_COUNT; qt++) {
		bool mix = qt == STORE_COUNT;
		StoreDtype q = mix ? STORE_Q4_K : (StoreDtype)qt;
		if (!dtype_is_block(q))
			continue;
		bool big = dtype_block(q) == 256;
		LayerShape qs = big ? (LayerShape){256, 1, 1, 8} : s;
		Layer ql[2];
		static double qemb[4 * 256];
		for (size_t i = 0; i < 4 * qs.d_model; i++)
			qemb[i] = 0.01 * (double)(i % 89) - 0.4;
		fx_layer(&ql[0], &qs, false, 3);
		fx_layer(&ql[1], &qs, false, 4);
		size_t nt = fx_llama_tensors(ql, 2, qemb, 4, "gguf", dtype_name(q), t);
		for (size_t k = 0; k < nt; k++) {
			if (big && strstr(t[k].name, "attn_output"))
				t[k].dtype = "F16";
			if (mix && (strstr(t[k].name, "attn_v") || strstr(t[k].name, "token_embd")))
				t[k].dtype = "Q6_K";
		}
		char a[4][64];
		const char *keys[] = {"block_count", "embedding_length", "attention.head_count",
				      "attention.head_count_kv"};
		double vals[] = {2, (double)qs.d_model, (double)qs.n_heads, (double)qs.n_kv_heads};
		FxKv kv[7] = {{"general.architecture", 's', "llama", 0}};
		for (int k = 0; k < 4; k++) {
			snprintf(a[k], sizeof a[k], "llama.%s", keys[k]);
			kv[1 + k] = (FxKv){a[k], 'u', NULL, vals[k]};
		}
		kv[5] = (FxKv){"llama.rope.dimension_count", 'u', NULL, 8};
		kv[6] = (FxKv){"llama.attention.key_length", 'u', NULL, 8};
		FxBuf b = {0};
		fx_gguf(&b, 3, kv, 7, t, nt, 0);
		char name[40];
		snprintf(name, sizeof name, "seed-blocks-%s.gguf", mix ? "Q4_K_M" : dtype_name(q));
		put(out, "gguf", name, &b);
		fx_free(&b);
		layer_free(&ql[0]);
		layer_free(&ql[1]);
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
	/* DeepSeek MLA (deepseek2): q_proj, the shared k_pe, kv_b, one layer */
	static double w[256];
	for (size_t i = 0; i < 256; i++)
		w[i] = (double)((i * 37) % 17) / 16.0 - 0.5;
	FxTensor mt[] = {{"blk.0.attn_norm.weight", "F32", 1, {16, 0, 0, 0}, w},
			 {"blk.0.attn_q.weight", "F32", 2, {12, 16, 0, 0}, w},
			 {"blk.0.attn_kv_a_mqa.weight", "F32", 2, {10, 16, 0, 0}, w},
			 {"blk.0.attn_kv_a_norm.weight", "F32", 1, {8, 0, 0, 0}, w},
			 {"blk.0.attn_kv_b.weight", "F32", 2, {16, 8, 0, 0}, w},
			 {"blk.0.attn_output.weight", "F32", 2, {16, 8, 0, 0}, w}};
	FxKv mla[] = {{"general.architecture", 's', "deepseek2", 0},
		      {"deepseek2.block_count", 'u', NULL, 1},
		      {"deepseek2.embedding_length", 'u', NULL, 16},
		      {"deepseek2.attention.head_count", 'u', NULL, 2},
		      {"deepseek2.attention.head_count_kv", 'u', NULL, 2},
		      {"deepseek2.attention.key_length", 'u', NULL, 6},
		      {"deepseek2.attention.value_length", 'u', NULL, 4},
		      {"deepseek2.rope.dimension_count", 'u', NULL, 2},
		      {"deepseek2.attention.kv_lora_rank", 'u', NULL, 8}};
	fx_gguf(&b, 3, mla, sizeof mla / sizeof mla[0], mt, sizeof mt / sizeof mt[0], 0);
	put(out, "gguf", "seed-deepseek2.gguf", &b);
	fx_free(&b);
	/* the same as llama.cpp's newer conversions write it: kv_b split into
	 * attn_k_b [H, Lkv, dn] and attn_v_b [H, dv, Lkv], the _mla keys */
	mt[4] = (FxTensor){"blk.0.attn_k_b.weight", "F32", 3, {2, 8, 4, 0}, w};
	FxTensor ms[7];
	memcpy(ms, mt, sizeof mt);
	ms[6] = (FxTensor){"blk.0.attn_v_b.weight", "F32", 3, {2, 4, 8, 0}, w + 3};
	FxKv mls[] = {{"general.architecture", 's', "deepseek2", 0},
		      {"deepseek2.block_count", 'u', NULL, 1},
		      {"deepseek2.embedding_length", 'u', NULL, 16},
		      {"deepseek2.attention.head_count", 'u', NULL, 2},
		      {"deepseek2.attention.head_count_kv", 'u', NULL, 1},
		      {"deepseek2.attention.key_length", 'u', NULL, 10},
		      {"deepseek2.attention.value_length", 'u', NULL, 8},
		      {"deepseek2.attention.key_length_mla", 'u', NULL, 6},
		      {"deepseek2.attention.value_length_mla", 'u', NULL, 4},
		      {"deepseek2.rope.dimension_count", 'u', NULL, 2},
		      {"deepseek2.attention.kv_lora_rank", 'u', NULL, 8}};
	fx_gguf(&b, 3, mls, sizeof mls / sizeof mls[0], ms, 7, 0);
	put(out, "gguf", "seed-deepseek2-split.gguf", &b);
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
