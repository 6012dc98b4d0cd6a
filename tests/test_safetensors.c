#include "config.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "tests/testutil.h"

#include "core/dtype.h"
#include "data/model.h"
#include "tests/ckpt_fixtures.h"

/* safetensors reader: single files with config.json beside them, HF
 * folders, sharded folders, every dtype, the HF families, bad input. */

static const LayerShape SHAPE = {32, 4, 2, 8};
enum { VOCAB = 40, NL = 2 };

typedef struct {
	char *dir;
	Layer ref[NL];
	double emb[VOCAB * 32];
} Fx;

static int fx_setup(void **state)
{
	Fx *f = calloc(1, sizeof *f);
	f->dir = fx_tmpdir();
	assert_non_null(f->dir);
	for (size_t i = 0; i < NL; i++)
		fx_layer(&f->ref[i], &SHAPE, false, 11 + i);
	for (size_t i = 0; i < VOCAB * 32; i++)
		f->emb[i] = (float)(0.01 * (double)((i * 37) % 101) - 0.5);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	Fx *f = *state;
	fx_rmtree(f->dir);
	free(f->dir);
	for (size_t i = 0; i < NL; i++)
		layer_free(&f->ref[i]);
	free(f);
	return 0;
}

/* Write model.safetensors + config.json into f->dir from tensors. */
static void write_folder(Fx *f, const FxTensor *t, size_t nt, const char *config)
{
	FxBuf b = {0};
	fx_safetensors(&b, t, nt);
	assert_int_equal(fx_write(f->dir, "model.safetensors", b.p, b.n), 0);
	fx_free(&b);
	assert_int_equal(fx_write(f->dir, "config.json", config, strlen(config)), 0);
}

/* The NL layers l (and f's embeddings) as an HF folder of model type
 * arch, stored in dtype, config.json given extra keys. */
static void write_layers(Fx *f, const Layer *l, const char *arch, const char *dtype,
			 const char *extra)
{
	FxTensor t[64];
	size_t nt = fx_llama_tensors(l, NL, f->emb, VOCAB, "hf", dtype, t);
	char cfg[1024];
	fx_hf_config(cfg, sizeof cfg, arch, &SHAPE, NL, VOCAB, extra);
	write_folder(f, t, nt, cfg);
}

static void write_llama(Fx *f, const char *dtype, const char *extra)
{
	write_layers(f, f->ref, "llama", dtype, extra);
}

static Model *open_ok(const char *path)
{
	Model *m = NULL;
	char err[512] = "";
	if (model_open(path, &m, err, sizeof err))
		fail_msg("model_open(%s): %s", path, err);
	return m;
}

/* model_open must fail with an error mentioning want. */
static void open_fails(const char *path, const char *want)
{
	Model *m = NULL;
	char err[512] = "";
	if (model_open(path, &m, err, sizeof err) == 0) {
		model_close(m);
		fail_msg("model_open(%s) accepted a bad checkpoint (wanted '%s')", path, want);
	}
	if (!strstr(err, want))
		fail_msg("error '%s' does not mention '%s'", err, want);
	assert_null(m);
	assert_null(strchr(err, '\n'));
}

static void assert_layer_equal(const Layer *a, const Layer *b)
{
	size_t D = a->shape.d_model, Hd = a->shape.n_heads * a->shape.head_dim;
	size_t Gd = a->shape.n_kv_heads * a->shape.head_dim;
	assert_int_equal(a->shape.n_heads, b->shape.n_heads);
	assert_int_equal(a->shape.n_kv_heads, b->shape.n_kv_heads);
	assert_true(tu_max_diff(a->wq, b->wq, Hd * D) == 0);
	assert_true(tu_max_diff(a->wk, b->wk, Gd * D) == 0);
	assert_true(tu_max_diff(a->wv, b->wv, Gd * D) == 0);
	assert_true(tu_max_diff(a->wo, b->wo, D * Hd) == 0);
	if (b->attn_norm) {
		assert_non_null(a->attn_norm);
		assert_true(tu_max_diff(a->attn_norm, b->attn_norm, D) == 0);
	}
}

static void test_folder_f32(void **state)
{
	Fx *f = *state;
	write_llama(f, "F32", "");
	Model *m = open_ok(f->dir);
	const ModelInfo *in = model_info(m);
	assert_int_equal(in->format, MODEL_FMT_SAFETENSORS);
	assert_string_equal(in->arch, "llama");
	assert_int_equal(in->n_layers, NL);
	assert_int_equal(in->shape.d_model, 32);
	assert_int_equal(in->shape.n_kv_heads, 2);
	assert_int_equal(in->rope.layout, ROPE_HALF);
	assert_int_equal(in->vocab, VOCAB);
	assert_string_equal(dtype_name(in->dtype), "F32");
	assert_string_equal(in->tensor_q, "model.layers.0.self_attn.q_proj.weight");
	assert_false(in->biases);
	for (size_t i = 0; i < NL; i++) {
		Layer l;
		char err[256];
		assert_int_equal(model_load_layer(m, i, &l, err, sizeof err), 0);
		assert_layer_equal(&l, &f->ref[i]);
		assert_close(l.norm_eps, 1e-6, 0);
		layer_free(&l);
	}
	size_t tok[3] = {0, 7, VOCAB - 1};
	double e[3 * 32];
	char err[256];
	assert_int_equal(model_load_embeddings(m, tok, 3, e, err, sizeof err), 0);
	assert_true(tu_max_diff(e + 32, f->emb + 7 * 32, 32) == 0);
	tok[1] = VOCAB;
	assert_int_not_equal(model_load_embeddings(m, tok, 3, e, err, sizeof err), 0);
	assert_non_null(strstr(err, "out of range"));
	Layer l;
	assert_int_not_equal(model_load_layer(m, NL, &l, err, sizeof err), 0);
	assert_non_null(strstr(err, "layers"));
	model_close(m);
	/* The file itself, with config.json beside it. */
	char p[4200];
	snprintf(p, sizeof p, "%s/model.safetensors", f->dir);
	m = open_ok(p);
	assert_int_equal(model_info(m)->n_layers, NL);
	model_close(m);
}

/* Every float dtype converts exactly. */
static void test_dtypes_exact(void **state)
{
	Fx *f = *state;
	const char *dts[] = {"F64", "F16", "BF16"};
	for (size_t k = 0; k < 3; k++) {
		Layer ref[NL];
		for (size_t i = 0; i < NL; i++) {
			layer_copy(&ref[i], &f->ref[i]);
			size_t D = 32, n = D * D;
			double *t[] = {ref[i].wq, ref[i].wo, ref[i].attn_norm};
			size_t nn[] = {n, n, D};
			for (size_t j = 0; j < 3; j++) {
				if (k == 1)
					fx_round_f16(t[j], nn[j]);
				if (k == 2)
					fx_round_bf16(t[j], nn[j]);
			}
			if (k == 1) {
				fx_round_f16(ref[i].wk, 16 * D);
				fx_round_f16(ref[i].wv, 16 * D);
			}
			if (k == 2) {
				fx_round_bf16(ref[i].wk, 16 * D);
				fx_round_bf16(ref[i].wv, 16 * D);
			}
		}
		write_layers(f, ref, "mistral", dts[k], "");
		Model *m = open_ok(f->dir);
		assert_string_equal(dtype_name(model_info(m)->dtype), dts[k]);
		Layer l;
		char err[256];
		assert_int_equal(model_load_layer(m, 1, &l, err, sizeof err), 0);
		assert_layer_equal(&l, &ref[1]);
		layer_free(&l);
		model_close(m);
		for (size_t i = 0; i < NL; i++)
			layer_free(&ref[i]);
	}
}

/* The reader tells NaN and Inf by their stored bits, in each dtype's own
 * exponent field (IEEE 754: all ones), while it converts: one in a large
 * weight or a small norm is refused and named, and the largest finite
 * value and the smallest subnormal of the dtype load as numbers. */
static void test_nonfinite_dtypes(void **state)
{
	Fx *f = *state;
	const char *dts[] = {"F64", "F32", "F16", "BF16"};
	/* the largest finite value of each (IEEE 754 binary64/32/16 and
	 * bfloat16: (2 - 2^-p) 2^emax), and its smallest subnormal */
	const double big[] = {DBL_MAX, FLT_MAX, 65504.0, 0x1.fep127};
	const double tiny[] = {0x1p-1074, 0x1p-149, 0x1p-24, 0x1p-133};
	const double bad[] = {NAN, INFINITY, -INFINITY};
	for (size_t k = 0; k < 4; k++) {
		for (size_t b = 0; b < 4; b++) {
			Layer l1;
			layer_copy(&l1, &f->ref[1]);
			const char *want = NULL;
			if (b < 3) {
				/* a weight's last value, or the input norm's */
				if (b == 1) {
					l1.attn_norm[3] = bad[b];
					want = "layer 1: NaN or Inf in the input norm";
				} else {
					l1.wq[32 * 32 - 1] = bad[b];
					want = "layer 1: NaN or Inf in the q weight";
				}
			} else {
				l1.wo[5] = big[k];
				l1.wo[6] = -big[k];
				l1.wk[9] = tiny[k];
			}
			Layer pair[2] = {f->ref[0], l1};
			write_layers(f, pair, "llama", dts[k], "");
			Model *m = open_ok(f->dir);
			Layer l;
			char err[256];
			int rc = model_load_layer(m, 1, &l, err, sizeof err);
			if (want) {
				assert_int_not_equal(rc, 0);
				assert_non_null(strstr(err, want));
			} else {
				assert_int_equal(rc, 0);
				assert_true(l.wo[5] == big[k] && l.wo[6] == -big[k]);
				assert_true(l.wk[9] == tiny[k]);
				layer_free(&l);
			}
			model_close(m);
			layer_free(&l1);
		}
	}
}

/* Two shards and the index; a tensor listed but absent is an error. */
static void test_sharded(void **state)
{
	Fx *f = *state;
	FxTensor t[64];
	size_t nt = fx_llama_tensors(f->ref, NL, f->emb, VOCAB, "hf", "BF16", t);
	/* BF16 of the F32 reference is not exact: round the reference. */
	Layer ref;
	layer_copy(&ref, &f->ref[1]);
	fx_round_bf16(ref.wq, 32 * 32);
	fx_round_bf16(ref.wk, 16 * 32);
	fx_round_bf16(ref.wv, 16 * 32);
	fx_round_bf16(ref.wo, 32 * 32);
	fx_round_bf16(ref.attn_norm, 32);
	size_t half = nt / 2;
	FxBuf a = {0}, b = {0};
	fx_safetensors(&a, t, half);
	fx_safetensors(&b, t + half, nt - half);
	fx_write(f->dir, "model-00001-of-00002.safetensors", a.p, a.n);
	fx_write(f->dir, "model-00002-of-00002.safetensors", b.p, b.n);
	fx_free(&a);
	fx_free(&b);
	char idx[8192];
	size_t k = (size_t)snprintf(idx, sizeof idx, "{\"metadata\": {}, \"weight_map\": {");
	for (size_t i = 0; i < nt; i++)
		k += (size_t)snprintf(idx + k, sizeof idx - k, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"",
				      i ? ", " : "", t[i].name, i < half ? 1 : 2);
	snprintf(idx + k, sizeof idx - k, "}}");
	fx_write(f->dir, "model.safetensors.index.json", idx, strlen(idx));
	char cfg[1024];
	fx_hf_config(cfg, sizeof cfg, "llama", &SHAPE, NL, VOCAB, "");
	fx_write(f->dir, "config.json", cfg, strlen(cfg));
	Model *m = open_ok(f->dir);
	Layer l;
	char err[256];
	assert_int_equal(model_load_layer(m, 1, &l, err, sizeof err), 0);
	assert_layer_equal(&l, &ref);
	layer_free(&l);
	model_close(m);
	layer_free(&ref);
	/* An index naming a tensor no shard has. */
	char bad[8300];
	snprintf(bad, sizeof bad, "%.*s, \"ghost.weight\": \"model-00001-of-00002.safetensors\"}}",
		 (int)(strlen(idx) - 2), idx);
	fx_write(f->dir, "model.safetensors.index.json", bad, strlen(bad));
	open_fails(f->dir, "ghost.weight");
	/* A shard path escaping the folder. */
	snprintf(bad, sizeof bad, "{\"weight_map\": {\"a\": \"../x.safetensors\"}}");
	fx_write(f->dir, "model.safetensors.index.json", bad, strlen(bad));
	open_fails(f->dir, "refusing");
	char p[4200];
	snprintf(p, sizeof p, "%s/model.safetensors.index.json", f->dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", f->dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", f->dir);
	unlink(p);
}

/* Scaling rules from config.json. */
static void test_rope_scaling(void **state)
{
	Fx *f = *state;
	static const struct {
		const char *extra;
		RopeScalingKind kind;
		double factor;
	} c[] = {
		{", \"rope_theta\": 500000, \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, "
		 "\"low_freq_factor\": 1, \"high_freq_factor\": 4, \"original_max_position_embeddings\": 8192}",
		 ROPE_SCALING_LLAMA3, 8},
		{", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}", ROPE_SCALING_LINEAR, 2},
		{", \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 4}", ROPE_SCALING_NTK, 4},
		{", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": 32768}",
		 ROPE_SCALING_YARN, 4},
	};
	for (size_t i = 0; i < 4; i++) {
		write_llama(f, "F32", c[i].extra);
		Model *m = open_ok(f->dir);
		const ModelInfo *in = model_info(m);
		assert_int_equal(in->rope.scaling.kind, c[i].kind);
		assert_close(in->rope.scaling.factor, c[i].factor, 0);
		if (i == 0) {
			assert_close(in->rope.theta, 500000, 0);
			assert_close(in->rope.scaling.original_max_pos, 8192, 0);
			assert_close(in->rope.scaling.high_freq_factor, 4, 0);
		}
		if (i == 3)
			assert_close(in->rope.scaling.original_max_pos, 32768, 0);
		model_close(m);
	}
	/* longrope is read (tests/families.sh, test_families.c); without its
	 * factors it is named, as is a rule ropefold does not know */
	write_llama(f, "F32", ", \"rope_scaling\": {\"type\": \"longrope\", \"factor\": 4}");
	open_fails(f->dir, "config.json: rope_scaling.short_factor: missing (longrope needs one "
			   "factor per rotary pair)");
	write_llama(f, "F32", ", \"rope_scaling\": {\"type\": \"cubic\", \"factor\": 4}");
	open_fails(f->dir, "rope_scaling type 'cubic' is not supported (linear, dynamic, yarn, "
			   "llama3, longrope)");
}

/* Qwen2 biases, Qwen3 per-head QK-norm, OLMo2 full QK-norm, Gemma. */
static void test_families(void **state)
{
	Fx *f = *state;
	Layer ref;
	fx_layer(&ref, &SHAPE, true, 5);
	FxTensor t[64];
	size_t nt = fx_llama_tensors(&ref, 1, NULL, 0, "hf", "F32", t);
	char cfg[1024];
	fx_hf_config(cfg, sizeof cfg, "qwen2", &SHAPE, 1, VOCAB, ", \"rope_theta\": 1000000.0");
	write_folder(f, t, nt, cfg);
	Model *m = open_ok(f->dir);
	assert_true(model_info(m)->biases);
	assert_int_equal(model_info(m)->vocab, 0);
	assert_close(model_info(m)->rope.theta, 1e6, 0);
	Layer l;
	char err[256];
	assert_int_equal(model_load_layer(m, 0, &l, err, sizeof err), 0);
	assert_non_null(l.bq);
	assert_true(tu_max_diff(l.bq, ref.bq, 32) == 0);
	assert_true(tu_max_diff(l.bk, ref.bk, 16) == 0);
	assert_true(tu_max_diff(l.bv, ref.bv, 16) == 0);
	layer_free(&l);
	model_close(m);

	/* QK-norm per head (Qwen3, d entries) and over all heads (OLMo2). */
	double qn[32], kn[16];
	for (size_t i = 0; i < 32; i++)
		qn[i] = 1.0 + 0.125 * (double)(i % 5);
	for (size_t i = 0; i < 16; i++)
		kn[i] = 0.5 + 0.25 * (double)(i % 3);
	for (int olmo = 0; olmo < 2; olmo++) {
		size_t n = nt;
		t[n++] = (FxTensor){"model.layers.0.self_attn.q_norm.weight", "F32", 1,
				    {olmo ? 32u : 8u, 0, 0, 0}, qn};
		t[n++] = (FxTensor){"model.layers.0.self_attn.k_norm.weight", "F32", 1,
				    {olmo ? 16u : 8u, 0, 0, 0}, kn};
		fx_hf_config(cfg, sizeof cfg, olmo ? "olmo2" : "qwen3", &SHAPE, 1, VOCAB, "");
		write_folder(f, t, n, cfg);
		m = open_ok(f->dir);
		assert_true(model_info(m)->qk_norm);
		assert_int_equal(model_load_layer(m, 0, &l, err, sizeof err), 0);
		assert_int_equal(l.qk_norm_per_head, !olmo);
		assert_true(tu_max_diff(l.q_norm, qn, olmo ? 32 : 8) == 0);
		assert_true(tu_max_diff(l.k_norm, kn, olmo ? 16 : 8) == 0);
		layer_free(&l);
		model_close(m);
	}

	/* Gemma: norm weight stored as w means 1 + w; score scale from
	 * query_pre_attn_scalar; embeddings times sqrt(D). */
	nt = fx_llama_tensors(f->ref, NL, f->emb, VOCAB, "hf", "F32", t);
	fx_hf_config(cfg, sizeof cfg, "gemma2", &SHAPE, NL, VOCAB, ", \"query_pre_attn_scalar\": 64");
	write_folder(f, t, nt, cfg);
	m = open_ok(f->dir);
	assert_int_equal(model_load_layer(m, 0, &l, err, sizeof err), 0);
	assert_close(l.attn_norm[3], 1.0 + f->ref[0].attn_norm[3], 0);
	assert_close(l.score_scale, 0.125, 0);
	size_t tok = 2;
	double e[32];
	assert_int_equal(model_load_embeddings(m, &tok, 1, e, err, sizeof err), 0);
	assert_close(e[5], f->emb[2 * 32 + 5] * sqrt(32.0), 1e-15);
	layer_free(&l);
	model_close(m);
	layer_free(&ref);
}

/* Phi-3 fused qkv_proj with partial rotary; GPT-NeoX per-head fused
 * query_key_value with rotary_pct, LayerNorm with bias, dense bias. */
static void test_fused(void **state)
{
	Fx *f = *state;
	LayerShape s = {32, 4, 4, 8};
	Layer ref;
	fx_layer(&ref, &s, true, 21);
	size_t D = 32, Hd = 32;
	double qkv[3 * 32 * 32], bqkv[96], nb[32];
	/* Phi-3 order: [q; k; v]. */
	memcpy(qkv, ref.wq, Hd * D * sizeof(double));
	memcpy(qkv + Hd * D, ref.wk, Hd * D * sizeof(double));
	memcpy(qkv + 2 * Hd * D, ref.wv, Hd * D * sizeof(double));
	FxTensor t[8] = {
		{"model.layers.0.self_attn.qkv_proj.weight", "F32", 2, {96, 32, 0, 0}, qkv},
		{"model.layers.0.self_attn.o_proj.weight", "F32", 2, {32, 32, 0, 0}, ref.wo},
		{"model.layers.0.input_layernorm.weight", "F32", 1, {32, 0, 0, 0}, ref.attn_norm},
	};
	char cfg[1024];
	fx_hf_config(cfg, sizeof cfg, "phi3", &s, 1, VOCAB, ", \"partial_rotary_factor\": 0.5");
	write_folder(f, t, 3, cfg);
	Model *m = open_ok(f->dir);
	assert_true(model_info(m)->fused_qkv);
	assert_int_equal(model_info(m)->rope.rotary_dim, 4);
	Layer l;
	char err[256];
	assert_int_equal(model_load_layer(m, 0, &l, err, sizeof err), 0);
	assert_layer_equal(&l, &ref);
	layer_free(&l);
	model_close(m);

	/* NeoX: per head h rows [q_h; k_h; v_h]. */
	for (size_t h = 0; h < 4; h++)
		for (size_t j = 0; j < 3; j++) {
			const double *src[3] = {ref.wq, ref.wk, ref.wv};
			const double *bsrc[3] = {ref.bq, ref.bk, ref.bv};
			memcpy(qkv + (h * 3 + j) * 8 * D, src[j] + h * 8 * D, 8 * D * sizeof(double));
			memcpy(bqkv + (h * 3 + j) * 8, bsrc[j] + h * 8, 8 * sizeof(double));
		}
	for (size_t i = 0; i < 32; i++)
		nb[i] = 0.03125 * (double)i;
	FxTensor u[6] = {
		{"gpt_neox.layers.0.attention.query_key_value.weight", "F32", 2, {96, 32, 0, 0}, qkv},
		{"gpt_neox.layers.0.attention.query_key_value.bias", "F32", 1, {96, 0, 0, 0}, bqkv},
		{"gpt_neox.layers.0.attention.dense.weight", "F32", 2, {32, 32, 0, 0}, ref.wo},
		{"gpt_neox.layers.0.attention.dense.bias", "F32", 1, {32, 0, 0, 0}, ref.bo},
		{"gpt_neox.layers.0.input_layernorm.weight", "F32", 1, {32, 0, 0, 0}, ref.attn_norm},
		{"gpt_neox.layers.0.input_layernorm.bias", "F32", 1, {32, 0, 0, 0}, nb},
	};
	snprintf(cfg, sizeof cfg, "{\"model_type\": \"gpt_neox\", \"hidden_size\": 32, "
		 "\"num_attention_heads\": 4, \"num_hidden_layers\": 1, \"rotary_pct\": 0.25, "
		 "\"rotary_emb_base\": 10000, \"layer_norm_eps\": 1e-5}");
	write_folder(f, u, 6, cfg);
	m = open_ok(f->dir);
	const ModelInfo *in = model_info(m);
	assert_int_equal(in->rope.rotary_dim, 2);
	assert_int_equal(in->rope.layout, ROPE_HALF);
	assert_true(in->biases);
	assert_true(in->o_bias);
	assert_int_equal(model_load_layer(m, 0, &l, err, sizeof err), 0);
	assert_layer_equal(&l, &ref);
	assert_true(tu_max_diff(l.bk, ref.bk, 32) == 0);
	assert_true(tu_max_diff(l.bo, ref.bo, 32) == 0);
	assert_int_equal(l.attn_norm_kind, NORM_LAYER);
	assert_true(tu_max_diff(l.attn_norm_bias, nb, 32) == 0);
	layer_free(&l);
	model_close(m);
	layer_free(&ref);
}

/* Raw bytes as model.safetensors beside a good config.json. */
static void write_raw(Fx *f, const void *p, size_t n)
{
	char cfg[1024];
	fx_hf_config(cfg, sizeof cfg, "llama", &SHAPE, NL, VOCAB, "");
	fx_write(f->dir, "config.json", cfg, strlen(cfg));
	fx_write(f->dir, "model.safetensors", p, n);
}

static void raw_header(Fx *f, const char *json, size_t extra_data, uint64_t claimed)
{
	FxBuf b = {0};
	fx_u64(&b, claimed ? claimed : strlen(json));
	fx_put(&b, json, strlen(json));
	for (size_t i = 0; i < extra_data; i++)
		fx_put(&b, "\0", 1);
	write_raw(f, b.p, b.n);
	fx_free(&b);
}

static void test_bad_input(void **state)
{
	Fx *f = *state;
	write_raw(f, "", 0);
	open_fails(f->dir, "empty file");
	raw_header(f, "{\"a\": 1}", 0, 1000);
	open_fails(f->dir, "past the end");
	raw_header(f, "{\"a\": 1}", 0, (uint64_t)1 << 40);
	open_fails(f->dir, "absurd");
	raw_header(f, "{not json at all}", 0, 0);
	open_fails(f->dir, "not JSON");
	raw_header(f, "{\"w\": {\"dtype\": \"Q3\", \"shape\": [2], \"data_offsets\": [0, 2]}}", 2, 0);
	open_fails(f->dir, "unknown dtype 'Q3'");
	raw_header(f, "{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8, 0);
	open_fails(f->dir, "need 12 bytes");
	raw_header(f, "{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8, 0);
	open_fails(f->dir, "past the end");
	raw_header(f, "{\"w\": {\"dtype\": \"F32\", \"shape\": [4000000000, 4000000000, 4000000000], "
		   "\"data_offsets\": [0, 16]}}", 16, 0);
	open_fails(f->dir, "bad shape");
	raw_header(f, "{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, 0);
	open_fails(f->dir, "bad shape");
	raw_header(f, "[1, 2]", 0, 0);
	open_fails(f->dir, "not a JSON object");
	FxBuf tr = {0};
	fx_put(&tr, "\x10\0\0", 3);
	write_raw(f, tr.p, tr.n);
	fx_free(&tr);
	open_fails(f->dir, "safetensors");  /* too short for any header */

	/* A good file with one tensor's shape disagreeing with config.json. */
	FxTensor t[64];
	size_t nt = fx_llama_tensors(f->ref, NL, f->emb, VOCAB, "hf", "F32", t);
	LayerShape wrong = {32, 8, 2, 4};
	char cfg[1024];
	fx_hf_config(cfg, sizeof cfg, "llama", &wrong, NL, VOCAB, "");
	write_folder(f, t, nt, cfg);
	open_fails(f->dir, "k_proj.weight: shape [16, 32], but config.json gives [8, 32]");
	/* Missing config keys, bad JSON in config.json, no config.json. */
	write_folder(f, t, nt, "{\"hidden_size\": 32, \"num_hidden_layers\": 2}");
	open_fails(f->dir, "missing or bad key 'num_attention_heads'");
	write_folder(f, t, nt, "{\"hidden_size\": 32,");
	open_fails(f->dir, "config.json");
	fx_hf_config(cfg, sizeof cfg, "llama", &SHAPE, 3, VOCAB, "");
	write_folder(f, t, nt, cfg);
	open_fails(f->dir, "model.layers.2.self_attn.q_proj.weight is missing");
	char p[4200];
	snprintf(p, sizeof p, "%s/config.json", f->dir);
	unlink(p);
	open_fails(f->dir, "without config.json");
	snprintf(p, sizeof p, "%s/model.safetensors", f->dir);
	open_fails(p, "no config.json beside");

	/* Unknown family: the message lists what was found. */
	double w[4] = {1, 2, 3, 4};
	FxTensor odd[1] = {{"transformer.h.0.attn.c_attn.weight", "F32", 2, {2, 2, 0, 0}, w}};
	fx_hf_config(cfg, sizeof cfg, "gpt2", &SHAPE, NL, VOCAB, "");
	write_folder(f, odd, 1, cfg);
	open_fails(f->dir, "unknown model family (arch 'gpt2')");
	open_fails(f->dir, "transformer.h.0.attn.c_attn.weight");

	/* NaN in the chosen layer: open works, load names the tensor. */
	Layer bad;
	layer_copy(&bad, &f->ref[1]);
	bad.wv[7] = NAN;
	Layer pair[2] = {f->ref[0], bad};
	write_layers(f, pair, "llama", "F32", "");
	Model *m = open_ok(f->dir);
	Layer l;
	char err[256];
	assert_int_equal(model_load_layer(m, 0, &l, err, sizeof err), 0);
	layer_free(&l);
	assert_int_not_equal(model_load_layer(m, 1, &l, err, sizeof err), 0);
	assert_non_null(strstr(err, "layer 1: NaN or Inf in the v weight"));
	model_close(m);
	layer_free(&bad);
}

/* The header and data buffer of a safetensors file as JSON and bytes. */
typedef struct {
	json_t *hdr;
	const unsigned char *data;
	size_t n;
} StParts;

static StParts st_split(const FxBuf *b)
{
	StParts s;
	uint64_t len = 0;
	for (int i = 7; i >= 0; i--)
		len = len << 8 | b->p[i];
	json_error_t je;
	s.hdr = json_loadb((const char *)b->p + 8, (size_t)len, 0, &je);
	assert_non_null(s.hdr);
	s.data = b->p + 8 + len;
	s.n = b->n - 8 - (size_t)len;
	return s;
}

/* model.safetensors from a header, lead (written before the JSON text
 * and counted in the length), trail (after it, counted only when
 * count_trail) and data; config.json for the llama fixture beside it. */
static void st_join(Fx *f, json_t *hdr, const char *lead, const char *trail, bool count_trail,
		    const unsigned char *data, size_t n)
{
	char *text = json_dumps(hdr, JSON_COMPACT);
	size_t hl = strlen(lead) + strlen(text) + (count_trail ? strlen(trail) : 0);
	FxBuf b = {0};
	fx_u64(&b, hl);
	fx_put(&b, lead, strlen(lead));
	fx_put(&b, text, strlen(text));
	fx_put(&b, trail, strlen(trail));
	fx_put(&b, data, n);
	write_raw(f, b.p, b.n);
	fx_free(&b);
	free(text);
}

/* The good llama fixture as split parts (caller frees hdr and buf). */
static StParts llama_parts(Fx *f, FxBuf *buf)
{
	FxTensor t[64];
	size_t nt = fx_llama_tensors(f->ref, NL, f->emb, VOCAB, "hf", "F32", t);
	memset(buf, 0, sizeof *buf);
	fx_safetensors(buf, t, nt);
	return st_split(buf);
}

/* Opening the folder and the file itself must fail alike. */
static void both_fail(Fx *f, const char *want)
{
	char p[4200];
	open_fails(f->dir, want);
	snprintf(p, sizeof p, "%s/model.safetensors", f->dir);
	open_fails(p, want);
	Model *m = NULL;
	char err[512];
	assert_int_not_equal(model_open(p, &m, err, sizeof err), 0);
	if (strstr(err, "llama2.c"))
		fail_msg("a safetensors file judged as llama2.c: %s", err);
}

/* JSON may start with whitespace: such a header is still safetensors, in
 * a folder, as the file itself and under any name. A header that is not
 * an object, or too short for one, gets a safetensors message for the
 * folder and the file alike (it once fell through to the llama2.c reader,
 * or was reported as format llama2c). */
static void test_header_start(void **state)
{
	Fx *f = *state;
	FxBuf buf;
	StParts s = llama_parts(f, &buf);
	st_join(f, s.hdr, " \n\t ", "", false, s.data, s.n);
	Model *m = open_ok(f->dir);
	assert_int_equal(model_info(m)->format, MODEL_FMT_SAFETENSORS);
	assert_int_equal(model_info(m)->n_layers, NL);
	model_close(m);
	char p[4200], q[4200];
	snprintf(p, sizeof p, "%s/model.safetensors", f->dir);
	m = open_ok(p);
	assert_int_equal(model_info(m)->format, MODEL_FMT_SAFETENSORS);
	model_close(m);
	snprintf(q, sizeof q, "%s/weights.bin", f->dir);
	assert_int_equal(rename(p, q), 0);
	m = open_ok(q);
	assert_int_equal(model_info(m)->format, MODEL_FMT_SAFETENSORS);
	model_close(m);
	unlink(q);
	json_decref(s.hdr);
	fx_free(&buf);

	static const struct {
		const char *hdr, *want;
	} bad[] = {
		{"[1,2]", "model.safetensors: offset 8: header is not a JSON object"},
		{"\"abc\"", "offset 8: header is not a JSON object"},
		{"null", "offset 8: header is not a JSON object"},
		{"12345678", "offset 8: header is not a JSON object"},
		{"  [{}]", "offset 10: header is not a JSON object"},
		{"        ", "offset 16: header is not a JSON object"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		raw_header(f, bad[i].hdr, 16, 0);
		both_fail(f, bad[i].want);
	}
	/* Header lengths 0 and 1 (the byte after it a '{' or not). */
	FxBuf b = {0};
	fx_u64(&b, 0);
	fx_put(&b, "{\"a\": 1}", 8);
	write_raw(f, b.p, b.n);
	both_fail(f, "offset 0: header length 0 is too short for a JSON object");
	b.p[0] = 1;
	write_raw(f, b.p, b.n);
	both_fail(f, "offset 0: header length 1 is too short for a JSON object");
	fx_free(&b);
}

/* The tensors must tile the data buffer exactly: overlaps (naming both),
 * holes, trailing bytes and a header length one short are refused with
 * the offset; a tensor deleted from the header is reported as missing. */
static void test_data_cover(void **state)
{
	Fx *f = *state;
	FxBuf buf;
	StParts s = llama_parts(f, &buf);
	const char *Q = "model.layers.0.self_attn.q_proj.weight";
	const char *K = "model.layers.0.self_attn.k_proj.weight";
	/* The untouched parts read back. */
	st_join(f, s.hdr, "", "", false, s.data, s.n);
	model_close(open_ok(f->dir));

	/* k_proj pointed at q_proj's bytes (sizes still agree with shapes). */
	json_t *h = json_deep_copy(s.hdr);
	json_t *qo = json_object_get(json_object_get(h, Q), "data_offsets");
	json_t *ko = json_object_get(json_object_get(h, K), "data_offsets");
	json_int_t qb = json_integer_value(json_array_get(qo, 0));
	json_int_t kn = json_integer_value(json_array_get(ko, 1)) -
			json_integer_value(json_array_get(ko, 0));
	json_array_set_new(ko, 0, json_integer(qb));
	json_array_set_new(ko, 1, json_integer(qb + kn));
	st_join(f, h, "", "", false, s.data, s.n);
	both_fail(f, "tensors model.layers.0.self_attn.k_proj.weight and "
		  "model.layers.0.self_attn.q_proj.weight overlap");
	json_decref(h);

	/* Trailing bytes. */
	unsigned char *more = calloc(s.n + 4, 1);
	memcpy(more, s.data, s.n);
	st_join(f, s.hdr, "", "", false, more, s.n + 4);
	char want[256];
	char *text = json_dumps(s.hdr, JSON_COMPACT);
	size_t end = 8 + strlen(text) + s.n;
	snprintf(want, sizeof want, "offset %zu: 4 bytes after the last tensor's data not covered",
		 end);
	both_fail(f, want);
	/* A header length one short: its last byte (a space) becomes the
	 * first data byte and every tensor reads one byte early. */
	st_join(f, s.hdr, "", " ", false, s.data, s.n);
	snprintf(want, sizeof want, "offset %zu: 1 byte after the last tensor's data not covered",
		 end);
	both_fail(f, want);
	free(text);
	free(more);

	/* A hole: the (optional) layer-0 norm taken out of the header. */
	h = json_deep_copy(s.hdr);
	json_object_del(h, "model.layers.0.input_layernorm.weight");
	st_join(f, h, "", "", false, s.data, s.n);
	both_fail(f, "128 bytes before tensor model.layers.0.self_attn.q_proj.weight not covered");
	json_decref(h);

	/* A required tensor taken out of a later layer's header entry: the
	 * missing tensor is named, not the hole it leaves. */
	h = json_deep_copy(s.hdr);
	json_object_del(h, "model.layers.1.self_attn.v_proj.weight");
	st_join(f, h, "", "", false, s.data, s.n);
	both_fail(f, "layer 1: tensor model.layers.1.self_attn.v_proj.weight is missing");
	json_decref(h);
	json_decref(s.hdr);
	fx_free(&buf);
}

/* Every layer is checked when the checkpoint opens (names and shapes, no
 * data read), so info, check and fold refuse a later layer's missing or
 * misshapen tensor alike, naming the file and the tensor. */
static void test_later_layers(void **state)
{
	Fx *f = *state;
	FxTensor t[64], u[64];
	size_t nt = fx_llama_tensors(f->ref, NL, f->emb, VOCAB, "hf", "F32", t), k = 0;
	for (size_t i = 0; i < nt; i++)
		if (strcmp(t[i].name, "model.layers.1.self_attn.v_proj.weight"))
			u[k++] = t[i];
	char cfg[1024];
	fx_hf_config(cfg, sizeof cfg, "llama", &SHAPE, NL, VOCAB, "");
	write_folder(f, u, k, cfg);
	char want[4400];
	snprintf(want, sizeof want, "%s: layer 1: tensor model.layers.1.self_attn.v_proj.weight "
		 "is missing", f->dir);
	open_fails(f->dir, want);
	/* Layer 1's o_proj transposed. */
	memcpy(u, t, nt * sizeof t[0]);
	for (size_t i = 0; i < nt; i++)
		if (!strcmp(u[i].name, "model.layers.1.self_attn.o_proj.weight"))
			u[i].shape[0] = 16, u[i].shape[1] = 64;
	write_folder(f, u, nt, cfg);
	open_fails(f->dir, "model.layers.1.self_attn.o_proj.weight: shape [16, 64]");
}

/* Index text for tensors t[0..nt): t[i] in shard[i] (NULL: unlisted). */
static void write_index(Fx *f, const FxTensor *t, size_t nt, const char *const *shard)
{
	json_t *wm = json_object();
	for (size_t i = 0; i < nt; i++)
		if (shard[i])
			json_object_set_new(wm, t[i].name, json_string(shard[i]));
	json_t *root = json_pack("{s:{}, s:o}", "metadata", "weight_map", wm);
	char *text = json_dumps(root, JSON_COMPACT);
	fx_write(f->dir, "model.safetensors.index.json", text, strlen(text));
	free(text);
	json_decref(root);
}

/* A tensor in two shards (with or without an index) is refused, as are an
 * index naming the wrong shard and a shard tensor the index omits. */
static void test_shards_agree(void **state)
{
	Fx *f = *state;
	FxTensor t[64];
	size_t nt = fx_llama_tensors(f->ref, NL, f->emb, VOCAB, "hf", "F32", t);
	char cfg[1024];
	fx_hf_config(cfg, sizeof cfg, "llama", &SHAPE, NL, VOCAB, "");
	fx_write(f->dir, "config.json", cfg, strlen(cfg));
	static const char *A = "model-00001-of-00002.safetensors";
	static const char *B = "model-00002-of-00002.safetensors";
	size_t half = nt / 2;
	/* Shard B also holds shard A's first attention tensor (t[2], q_proj
	 * of layer 0). */
	FxTensor tb[64];
	memcpy(tb, t + half, (nt - half) * sizeof t[0]);
	tb[nt - half] = t[2];
	assert_string_equal(t[2].name, "model.layers.0.self_attn.q_proj.weight");
	FxBuf a = {0}, b = {0}, b2 = {0};
	fx_safetensors(&a, t, half);
	fx_safetensors(&b, t + half, nt - half);
	fx_safetensors(&b2, tb, nt - half + 1);
	fx_write(f->dir, A, a.p, a.n);
	fx_write(f->dir, B, b2.p, b2.n);
	char want[4400];
	snprintf(want, sizeof want, "%s/%s: duplicate tensor %s (also in %s/%s)", f->dir, B,
		 t[2].name, f->dir, A);
	open_fails(f->dir, want);   /* no index: every *.safetensors */
	const char *sh[64];
	for (size_t i = 0; i < nt; i++)
		sh[i] = i < half ? A : B;
	write_index(f, t, nt, sh);
	open_fails(f->dir, want);
	/* The plain split reads; then the index disagrees with the shards. */
	fx_write(f->dir, B, b.p, b.n);
	model_close(open_ok(f->dir));
	sh[2] = B;
	write_index(f, t, nt, sh);
	snprintf(want, sizeof want, "model.safetensors.index.json: tensor %s is listed in "
		 "weight_map under shard %s, but it is in %s/%s", t[2].name, B, f->dir, A);
	open_fails(f->dir, want);
	sh[2] = NULL;
	write_index(f, t, nt, sh);
	snprintf(want, sizeof want, "model.safetensors.index.json: tensor %s of shard %s/%s is "
		 "not listed in weight_map", t[2].name, f->dir, A);
	open_fails(f->dir, want);
	char p[4200];
	const char *gone[] = {"model.safetensors.index.json", A, B};
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/%s", f->dir, gone[i]);
		unlink(p);
	}
	fx_free(&a);
	fx_free(&b);
	fx_free(&b2);
}

/* A config key that is present with a bad value or type is an error
 * naming the key, never replaced by the default; absent and null keys
 * keep the defaults. */
static void test_config_values(void **state)
{
	Fx *f = *state;
	static const struct {
		const char *extra, *want;
	} bad[] = {
		{", \"rope_theta\": -5", "config.json: rope_theta: bad value -5"},
		{", \"rope_theta\": 0", "config.json: rope_theta: bad value 0"},
		{", \"rope_theta\": \"1e4\"", "rope_theta: bad value of type string"},
		{", \"rotary_emb_base\": -1", "rotary_emb_base: bad value -1"},
		{", \"partial_rotary_factor\": -0.5", "partial_rotary_factor: bad value -0.5 (must be in (0, 1])"},
		{", \"partial_rotary_factor\": 1.5", "partial_rotary_factor: bad value 1.5"},
		{", \"rotary_pct\": 0", "rotary_pct: bad value 0"},
		{", \"layer_norm_eps\": -1", "layer_norm_eps: bad value -1"},
		{", \"query_pre_attn_scalar\": 0", "query_pre_attn_scalar: bad value 0"},
		{", \"rope_local_base_freq\": -10000", "rope_local_base_freq: bad value -10000"},
		{", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4, "
		 "\"high_freq_factor\": 1}", "rope_scaling.high_freq_factor: bad value 1"},
		{", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, "
		 "\"original_max_position_embeddings\": 0}",
		 "rope_scaling.original_max_position_embeddings: bad value 0"},
		{", \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4, \"beta_fast\": -32}",
		 "rope_scaling.beta_fast: bad value -32"},
		{", \"rope_scaling\": {\"type\": \"linear\", \"factor\": -2}",
		 "rope_scaling.factor: bad value -2"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_llama(f, "F32", bad[i].extra);
		open_fails(f->dir, bad[i].want);
	}
	/* rms_norm_eps itself (the fixture's config sets it to 1e-6). */
	FxTensor t[64];
	size_t nt = fx_llama_tensors(f->ref, NL, f->emb, VOCAB, "hf", "F32", t);
	const char *cfg = "{\"model_type\": \"llama\", \"hidden_size\": 32, "
			  "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
			  "\"num_hidden_layers\": 2, \"rms_norm_eps\": -1}";
	write_folder(f, t, nt, cfg);
	open_fails(f->dir, "rms_norm_eps: bad value -1");
	/* Absent or null: the defaults. */
	cfg = "{\"model_type\": \"llama\", \"hidden_size\": 32, \"num_attention_heads\": 4, "
	      "\"num_key_value_heads\": 2, \"num_hidden_layers\": 2, \"rope_theta\": null}";
	write_folder(f, t, nt, cfg);
	Model *m = open_ok(f->dir);
	assert_close(model_info(m)->rope.theta, 10000, 0);
	assert_int_equal(model_info(m)->rope.rotary_dim, 8);
	Layer l;
	char err[256];
	assert_int_equal(model_load_layer(m, 0, &l, err, sizeof err), 0);
	assert_close(l.norm_eps, 1e-5, 0);
	layer_free(&l);
	model_close(m);
}

/* config.json's vocab_size against the embedding and an untied lm_head:
 * HF's embedding is nn.Embedding(vocab_size, hidden_size) and lm_head
 * nn.Linear(hidden_size, vocab_size), weight [vocab_size, hidden_size]. */
static void test_vocab_agrees(void **state)
{
	Fx *f = *state;
	FxTensor t[64];
	size_t nt = fx_llama_tensors(f->ref, NL, f->emb, VOCAB, "hf", "F32", t);
	char cfg[1024];
	fx_hf_config(cfg, sizeof cfg, "llama", &SHAPE, NL, 1000000000000, "");
	write_folder(f, t, nt, cfg);
	open_fails(f->dir, "tensor model.embed_tokens.weight: 40 rows, but config.json gives "
			   "vocab_size 1000000000000");
	/* an untied lm_head: right, too many rows, too few columns */
	double *head = calloc((VOCAB + 1) * 32, sizeof(double));
	t[nt] = (FxTensor){"lm_head.weight", "F32", 2, {VOCAB, 32, 0, 0}, head};
	fx_hf_config(cfg, sizeof cfg, "llama", &SHAPE, NL, VOCAB, "");
	write_folder(f, t, nt + 1, cfg);
	model_close(open_ok(f->dir));
	t[nt].shape[0] = VOCAB + 1;
	write_folder(f, t, nt + 1, cfg);
	open_fails(f->dir, "tensor lm_head.weight: 41 rows, but config.json gives vocab_size 40");
	t[nt].shape[0] = VOCAB;
	t[nt].shape[1] = 16;
	write_folder(f, t, nt + 1, cfg);
	open_fails(f->dir, "tensor lm_head.weight: shape [40, 16], but config.json gives [vocab, 32]");
	/* without vocab_size, the lm_head must match the embeddings */
	t[nt].shape[0] = VOCAB + 1;
	t[nt].shape[1] = 32;
	fx_hf_config(cfg, sizeof cfg, "llama", &SHAPE, NL, VOCAB, "");
	char *v = strstr(cfg, "\"vocab_size\"");
	memmove(v, strchr(v, ',') + 2, strlen(strchr(v, ',') + 2) + 1);
	write_folder(f, t, nt + 1, cfg);
	open_fails(f->dir, "tensor lm_head.weight: 41 rows, but the embeddings "
			   "model.embed_tokens.weight have 40");
	free(head);
}

/* A model_type ropefold does not know is read as its tensor names say,
 * with a note naming every assumption; a known one has no note. */
static void test_unknown_model_type(void **state)
{
	Fx *f = *state;
	write_llama(f, "F32", "");
	Model *m = open_ok(f->dir);
	assert_string_equal(model_info(m)->note, "");
	model_close(m);
	FxTensor t[64];
	size_t nt = fx_llama_tensors(f->ref, NL, f->emb, VOCAB, "hf", "F32", t);
	char cfg[1024];
	fx_hf_config(cfg, sizeof cfg, "zzz", &SHAPE, NL, VOCAB, "");
	write_folder(f, t, nt, cfg);
	m = open_ok(f->dir);
	const char *note = model_info(m)->note;
	assert_non_null(strstr(note, "config.json: model_type 'zzz' is not a family ropefold knows"));
	assert_non_null(strstr(note, "'hf' scheme (model.layers.0.self_attn.q_proj.weight)"));
	assert_non_null(strstr(note, "RoPE pairs half-split (HF rotate_half)"));
	assert_non_null(strstr(note, "theta 10000 (not given)"));
	assert_null(strchr(note, '\n'));
	assert_int_equal(model_info(m)->rope.layout, ROPE_HALF);
	model_close(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_folder_f32, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_dtypes_exact, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_nonfinite_dtypes, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sharded, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rope_scaling, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_families, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_fused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_header_start, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_data_cover, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_later_layers, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_shards_agree, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_config_values, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_vocab_agrees, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_model_type, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
