#include "config.h"

#include "tests/testutil.h"

#include "data/mla_model.h"
#include "data/model.h"
#include "tests/ckpt_fixtures.h"

/* DeepSeek MLA checkpoints as data/mla_model.c reads them, in memory:
 * GGUF deepseek2 (q through a latent, and q_proj) and an HF safetensors
 * file with its config.json text; the dims, every tensor's values, and the
 * refusals. (tests/mla.sh holds the attention to a NumPy reference.) */

enum { D = 16, H = 2, LQ = 6, LKV = 8, DN = 4, DR = 2, DV = 4 };
static double w[512];

static void values(void)
{
	for (size_t i = 0; i < 512; i++)
		w[i] = (double)((i * 37) % 29) / 16.0 - 0.75;   /* exact in F32 */
}

/* How the fixture stores kv_b: attn_kv_b; split as llama.cpp's converter
 * does (attn_k_b [H, LKV, DN], attn_v_b [H, DV, LKV], the _mla keys); the
 * pair flattened to 2-D (refused). */
enum { KVB_WHOLE, KVB_SPLIT, KVB_FLAT };

/* The layer-0 tensors of a deepseek2 GGUF; q_lora: through q_a/q_b. */
static size_t gguf_tensors(FxTensor *t, bool q_lora, int absorbed)
{
	size_t n = 0;
	t[n++] = (FxTensor){"blk.0.attn_norm.weight", "F32", 1, {D}, w};
	if (q_lora) {
		t[n++] = (FxTensor){"blk.0.attn_q_a.weight", "F32", 2, {LQ, D}, w};
		t[n++] = (FxTensor){"blk.0.attn_q_a_norm.weight", "F32", 1, {LQ}, w + 7};
		t[n++] = (FxTensor){"blk.0.attn_q_b.weight", "F32", 2, {H * (DN + DR), LQ}, w + 3};
	} else {
		t[n++] = (FxTensor){"blk.0.attn_q.weight", "F32", 2, {H * (DN + DR), D}, w + 3};
	}
	t[n++] = (FxTensor){"blk.0.attn_kv_a_mqa.weight", "F32", 2, {LKV + DR, D}, w + 5};
	t[n++] = (FxTensor){"blk.0.attn_kv_a_norm.weight", "F32", 1, {LKV}, w + 11};
	if (absorbed == KVB_SPLIT) {
		t[n++] = (FxTensor){"blk.0.attn_k_b.weight", "F32", 3, {H, LKV, DN}, w + 13};
		t[n++] = (FxTensor){"blk.0.attn_v_b.weight", "F32", 3, {H, DV, LKV}, w + 19};
	} else if (absorbed == KVB_FLAT) {
		t[n++] = (FxTensor){"blk.0.attn_k_b.weight", "F32", 2, {H * LKV, DN}, w};
		t[n++] = (FxTensor){"blk.0.attn_v_b.weight", "F32", 2, {H * DV, LKV}, w};
	} else {
		t[n++] = (FxTensor){"blk.0.attn_kv_b.weight", "F32", 2, {H * (DN + DV), LKV}, w + 13};
	}
	t[n++] = (FxTensor){"blk.0.attn_output.weight", "F32", 2, {D, H * DV}, w + 17};
	return n;
}

/* The file in b (fx_free it after model_close: the model reads from it). */
static int open_gguf(bool q_lora, int absorbed, bool with_kv_lora, FxBuf *b, Model **m,
		     char *err, size_t errlen)
{
	FxTensor t[12];
	size_t nt = gguf_tensors(t, q_lora, absorbed);
	bool split = absorbed != KVB_WHOLE;
	/* the split layout's converter: key_length and value_length are the
	 * cached latent's (LKV + DR, LKV), the heads' under the _mla keys */
	FxKv kv[14] = {{"general.architecture", 's', "deepseek2", 0},
		       {"deepseek2.block_count", 'u', NULL, 1},
		       {"deepseek2.embedding_length", 'u', NULL, D},
		       {"deepseek2.attention.head_count", 'u', NULL, H},
		       {"deepseek2.attention.head_count_kv", 'u', NULL, split ? 1 : H},
		       {"deepseek2.attention.key_length", 'u', NULL, split ? LKV + DR : DN + DR},
		       {"deepseek2.attention.value_length", 'u', NULL, split ? LKV : DV},
		       {"deepseek2.rope.dimension_count", 'u', NULL, DR}};
	size_t nkv = 8;
	if (split) {
		kv[nkv++] = (FxKv){"deepseek2.attention.key_length_mla", 'u', NULL, DN + DR};
		kv[nkv++] = (FxKv){"deepseek2.attention.value_length_mla", 'u', NULL, DV};
	}
	if (with_kv_lora)
		kv[nkv++] = (FxKv){"deepseek2.attention.kv_lora_rank", 'u', NULL, LKV};
	if (q_lora)
		kv[nkv++] = (FxKv){"deepseek2.attention.q_lora_rank", 'u', NULL, LQ};
	memset(b, 0, sizeof *b);
	fx_gguf(b, 3, kv, nkv, t, nt, 0);
	return model_open_memory(b->p, b->n, NULL, "ds.gguf", m, err, errlen);
}

static void test_gguf_dims_and_values(void **state)
{
	(void)state;
	for (int ql = 0; ql < 2; ql++) {
		Model *m;
		FxBuf b;
		char err[1024];
		if (open_gguf(ql, KVB_WHOLE, true, &b, &m, err, sizeof err))
			fail_msg("open: %s", err);
		const ModelInfo *in = model_info(m);
		assert_true(in->mla);
		assert_int_equal(in->mla_shape.kv_lora_rank, LKV);
		assert_int_equal(in->mla_shape.q_lora_rank, ql ? LQ : 0);
		assert_int_equal(in->mla_shape.qk_nope_dim, DN);
		assert_int_equal(in->mla_shape.qk_rope_dim, DR);
		assert_int_equal(in->mla_shape.v_head_dim, DV);
		assert_int_equal(in->shape.n_kv_heads, 1);
		assert_int_equal(in->rope.layout, ROPE_INTERLEAVED);
		assert_close(in->mla_score_scale, 1.0 / sqrt((double)(DN + DR)), 1e-15);
		MlaLayer l;
		if (model_load_mla_layer(m, 0, &l, err, sizeof err))
			fail_msg("load: %s", err);
		assert_close(l.kv_b[0], w[13], 0);
		assert_close(l.kv_a[(LKV + DR) * D - 1], w[5 + (LKV + DR) * D - 1], 0);
		assert_close(l.wo[D * H * DV - 1], w[17 + D * H * DV - 1], 0);
		assert_close(l.q_b[1], w[4], 0);
		assert_true(ql ? l.q_a != NULL : l.q_a == NULL);
		assert_close(l.attn_norm[3], w[3], 0);
		Layer std;
		assert_int_equal(model_load_layer(m, 0, &std, err, sizeof err), -1);
		assert_non_null(strstr(err, "multi-head latent attention"));
		mla_free(&l);
		model_close(m);
		fx_free(&b);
	}
}

static void test_gguf_refusals(void **state)
{
	(void)state;
	Model *m;
	FxBuf b;
	char err[1024];
	assert_int_equal(open_gguf(true, KVB_WHOLE, false, &b, &m, err, sizeof err), -1);
	assert_non_null(strstr(err, "deepseek2.attention.kv_lora_rank is missing"));
	assert_non_null(strstr(err, "layer 0 holds"));
	fx_free(&b);
	/* the pair flattened to 2-D: not the converter's shapes */
	assert_int_equal(open_gguf(true, KVB_FLAT, true, &b, &m, err, sizeof err), -1);
	assert_non_null(strstr(err, "attn_k_b.weight: shape [16, 4], but the MLA dims"));
	assert_non_null(strstr(err, "give [2, 8, 4]"));
	fx_free(&b);
}

/* llama.cpp's split kv_b: kv_b rebuilt per head as the converter cut it
 * (view [H, DN + DV, LKV], split at DN, k part transposed): kv_b row
 * h*(DN+DV) + j, column c is k_b[h][c][j] for j < DN and v_b[h][j-DN][c]
 * after; and cut again, the same tensors. */
static void test_gguf_split_kv_b(void **state)
{
	(void)state;
	Model *m;
	FxBuf b;
	char err[1024];
	if (open_gguf(true, KVB_SPLIT, true, &b, &m, err, sizeof err))
		fail_msg("open: %s", err);
	const ModelInfo *in = model_info(m);
	assert_int_equal(in->mla_shape.qk_nope_dim, DN);
	assert_int_equal(in->mla_shape.v_head_dim, DV);
	assert_int_equal(in->mla_kv_b, MLA_KV_B_SPLIT);
	MlaLayer l;
	if (model_load_mla_layer(m, 0, &l, err, sizeof err))
		fail_msg("load: %s", err);
	const double *kb = w + 13, *vb = w + 19;
	for (size_t h = 0; h < H; h++)
		for (size_t c = 0; c < LKV; c++) {
			for (size_t j = 0; j < DN; j++)
				assert_close(l.kv_b[(h * (DN + DV) + j) * LKV + c],
					     kb[(h * LKV + c) * DN + j], 0);
			for (size_t j = 0; j < DV; j++)
				assert_close(l.kv_b[(h * (DN + DV) + DN + j) * LKV + c],
					     vb[(h * DV + j) * LKV + c], 0);
		}
	double buf[H * LKV * DN];
	assert_int_equal(mla_values_max(&l.shape), H * LKV * DN);
	const double *k2 = mla_values(&l, MLA_T_K_B, buf);
	for (size_t e = 0; e < H * LKV * DN; e++)
		assert_close(k2[e], kb[e], 0);
	const double *v2 = mla_values(&l, MLA_T_V_B, buf);
	for (size_t e = 0; e < H * DV * LKV; e++)
		assert_close(v2[e], vb[e], 0);
	mla_free(&l);
	model_close(m);
	fx_free(&b);
}

static void test_hf_config(void **state)
{
	(void)state;
	FxTensor t[] = {
		{"model.layers.0.self_attn.q_proj.weight", "F32", 2, {H * (DN + DR), D}, w},
		{"model.layers.0.self_attn.kv_a_proj_with_mqa.weight", "F32", 2, {LKV + DR, D}, w},
		{"model.layers.0.self_attn.kv_a_layernorm.weight", "F32", 1, {LKV}, w},
		{"model.layers.0.self_attn.kv_b_proj.weight", "F32", 2, {H * (DN + DV), LKV}, w},
		{"model.layers.0.self_attn.o_proj.weight", "F32", 2, {D, H * DV}, w}};
	FxBuf b = {0};
	fx_safetensors(&b, t, 5);
	char cfg[1024];
	/* yarn with DeepSeek's mscale keys, and rope_interleave false (V3) */
	snprintf(cfg, sizeof cfg,
		 "{\"model_type\": \"deepseek_v3\", \"hidden_size\": %d, "
		 "\"num_attention_heads\": %d, \"num_hidden_layers\": 1, \"q_lora_rank\": null, "
		 "\"kv_lora_rank\": %d, \"qk_nope_head_dim\": %d, \"qk_rope_head_dim\": %d, "
		 "\"v_head_dim\": %d, \"rope_interleave\": false, \"rope_scaling\": {\"type\": "
		 "\"yarn\", \"factor\": 40, \"original_max_position_embeddings\": 4096, "
		 "\"mscale\": 1.0, \"mscale_all_dim\": 0.707}}", D, H, LKV, DN, DR, DV);
	Model *m;
	char err[1024];
	if (model_open_memory(b.p, b.n, cfg, "ds", &m, err, sizeof err))
		fail_msg("open: %s", err);
	const ModelInfo *in = model_info(m);
	assert_true(in->mla);
	assert_int_equal(in->mla_shape.q_lora_rank, 0);
	assert_int_equal(in->rope.layout, ROPE_HALF);
	double ms = 0.1 * 0.707 * log(40.0) + 1.0;
	assert_close(in->mla_score_scale, ms * ms / sqrt((double)(DN + DR)), 1e-14);
	/* cos and sin times mscale(40, 1) / mscale(40, 0.707) */
	assert_close(in->rope.scaling.attention_factor, (0.1 * log(40.0) + 1.0) / ms, 1e-14);
	model_close(m);
	fx_free(&b);
	/* a missing dim is named */
	fx_safetensors(&b, t, 5);
	snprintf(cfg, sizeof cfg,
		 "{\"model_type\": \"deepseek_v2\", \"hidden_size\": %d, "
		 "\"num_attention_heads\": %d, \"num_hidden_layers\": 1, \"kv_lora_rank\": %d, "
		 "\"qk_nope_head_dim\": %d, \"v_head_dim\": %d}", D, H, LKV, DN, DV);
	assert_int_equal(model_open_memory(b.p, b.n, cfg, "ds", &m, err, sizeof err), -1);
	assert_non_null(strstr(err, "qk_rope_head_dim is missing"));
	fx_free(&b);
}

int main(void)
{
	values();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gguf_dims_and_values),
		cmocka_unit_test(test_gguf_refusals),
		cmocka_unit_test(test_gguf_split_kv_b),
		cmocka_unit_test(test_hf_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
