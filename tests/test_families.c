#include "config.h"

#include "tests/testutil.h"

#include "core/rope.h"
#include "data/model.h"
#include "tests/ckpt_fixtures.h"

/* What the families add beyond Llama's layer, as the readers resolve it
 * per layer: GGUF's rope_freqs and longrope factor tensors (applied as
 * llama.cpp applies them), Gemma 2/3's windows, layer periods, local base
 * and soft-caps (llama.cpp's keys and defaults), Qwen2-VL's M-RoPE
 * sections, the experts of an MoE arch and their routers; and the HF
 * config rules tests/families.sh does not reach (class defaults, null).
 * Bad values: one line naming the file and the key or tensor. */

static const LayerShape SHAPE = {32, 4, 2, 8};
enum { VOCAB = 40, NL = 3, MAXT = 64 };

static Layer ref[NL];
static double emb[VOCAB * 32];
static double router[8 * 32];

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < NL; i++)
		fx_layer(&ref[i], &SHAPE, false, 41 + i);
	for (size_t i = 0; i < VOCAB * 32; i++)
		emb[i] = (float)(0.01 * (double)((i * 7) % 89) - 0.4);
	for (size_t i = 0; i < 8 * 32; i++)
		router[i] = (float)(0.01 * (double)(i % 13));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < NL; i++)
		layer_free(&ref[i]);
	return 0;
}

/* ---- GGUF ----------------------------------------------------------------- */

/* A GGUF of arch a with NL layers, the shape keys, then extra keys and
 * extra tensors. */
typedef struct {
	FxKv kv[32];
	size_t nkv;
	char keys[32][80];
	FxTensor t[MAXT];
	size_t nt;
} Gg;

static void gg_init(Gg *g, const char *a)
{
	memset(g, 0, sizeof *g);
	g->kv[g->nkv++] = (FxKv){"general.architecture", 's', a, 0};
	const char *suf[] = {"block_count", "embedding_length", "attention.head_count",
			     "attention.head_count_kv"};
	double val[] = {NL, 32, 4, 2};
	for (size_t i = 0; i < 4; i++) {
		snprintf(g->keys[g->nkv], 80, "%s.%s", a, suf[i]);
		g->kv[g->nkv] = (FxKv){g->keys[g->nkv], 'u', NULL, val[i]};
		g->nkv++;
	}
	g->nt = fx_llama_tensors(ref, NL, emb, VOCAB, "gguf", "F32", g->t);
}

/* Add key arch.suffix (or suffix itself when arch is NULL). */
static void gg_kv(Gg *g, const char *arch, const char *suffix, char type, const char *s,
		  double num)
{
	if (arch)
		snprintf(g->keys[g->nkv], 80, "%s.%s", arch, suffix);
	else
		snprintf(g->keys[g->nkv], 80, "%s", suffix);
	g->kv[g->nkv] = (FxKv){g->keys[g->nkv], type, s, num};
	g->nkv++;
}

static void gg_tensor(Gg *g, const char *name, const char *dtype, size_t rows, size_t cols,
		      const double *v)
{
	g->t[g->nt++] = (FxTensor){name, dtype, cols ? 2u : 1u, {rows, cols, 0, 0}, v};
}

static Model *gg_open(const Gg *g, FxBuf *b)
{
	memset(b, 0, sizeof *b);
	fx_gguf(b, 3, g->kv, g->nkv, g->t, g->nt, 0);
	Model *m = NULL;
	char err[512] = "";
	if (model_open_memory(b->p, b->n, NULL, "fam.gguf", &m, err, sizeof err))
		fail_msg("model_open_memory: %s", err);
	return m;
}

static void gg_fails(const Gg *g, const char *want)
{
	FxBuf b = {0};
	fx_gguf(&b, 3, g->kv, g->nkv, g->t, g->nt, 0);
	Model *m = NULL;
	char err[512] = "";
	if (model_open_memory(b.p, b.n, NULL, "fam.gguf", &m, err, sizeof err) == 0) {
		model_close(m);
		fail_msg("accepted a bad GGUF (wanted '%s')", want);
	}
	if (!strstr(err, want) || !strstr(err, "fam.gguf"))
		fail_msg("error '%s' does not mention '%s' and the file", err, want);
	assert_null(strchr(err, '\n'));
	fx_free(&b);
}

static void load(Model *m, size_t i, Layer *l)
{
	char err[256];
	if (model_load_layer(m, i, l, err, sizeof err))
		fail_msg("model_load_layer %zu: %s", i, err);
}

/* llama.cpp's Llama 3.1 conversions: rope_freqs.weight, n_rot/2 factors,
 * divide the frequencies (ggml: theta / freq_factor). */
static void test_gguf_rope_freqs(void **state)
{
	(void)state;
	static const double ff[4] = {1, 2, 4, 8};
	Gg g;
	gg_init(&g, "llama");
	gg_tensor(&g, "rope_freqs.weight", "F32", 4, 0, ff);
	FxBuf b;
	Model *m = gg_open(&g, &b);
	const ModelInfo *in = model_info(m);
	assert_int_equal(in->rope.scaling.kind, ROPE_SCALING_FREQ_FACTORS);
	assert_int_equal(in->rope.scaling.n_pairs, 4);
	assert_string_equal(in->rope_table, "tensor rope_freqs.weight");
	Layer l;
	load(m, 2, &l);
	double w[4];
	assert_int_equal(rope_frequencies_at(&l.rope, 1000, w), RF_OK);
	const double want[4] = {1.0, 0.05, 0.0025, 0.000125};   /* 10^-i / f_i */
	for (size_t i = 0; i < 4; i++)
		assert_close(w[i], want[i], 1e-17);
	layer_free(&l);
	model_close(m);
	fx_free(&b);

	gg_init(&g, "llama");
	gg_tensor(&g, "rope_freqs.weight", "F32", 3, 0, ff);
	gg_fails(&g, "tensor rope_freqs.weight: 3 factors, but rotary dim 8 has 4 pairs");
	gg_init(&g, "llama");
	gg_tensor(&g, "rope_freqs.weight", "BF16", 4, 0, ff);
	gg_fails(&g, "tensor rope_freqs.weight: shape [4] of BF16 (must be one F32 row");
	static const double neg[4] = {1, -2, 4, 8};
	gg_init(&g, "llama");
	gg_tensor(&g, "rope_freqs.weight", "F32", 4, 0, neg);
	gg_fails(&g, "tensor rope_freqs.weight: entry 1 is -2");
	gg_init(&g, "llama");
	gg_tensor(&g, "rope_freqs.weight", "F32", 4, 0, ff);
	gg_kv(&g, "llama", "rope.scaling.type", 's', "linear", 0);
	gg_kv(&g, "llama", "rope.scaling.factor", 'f', NULL, 2);
	gg_fails(&g, "rope_freqs.weight and a linear rope scaling");
}

/* Phi-3 conversions: rope_factors_short/long.weight with
 * rope.scaling.original_context_length and attn_factor. */
static void test_gguf_longrope(void **state)
{
	(void)state;
	static const double sh[4] = {1, 1.25, 1.5, 2}, lo[4] = {1, 2, 4, 8};
	Gg g;
	gg_init(&g, "phi3");
	gg_tensor(&g, "rope_factors_short.weight", "F32", 4, 0, sh);
	gg_tensor(&g, "rope_factors_long.weight", "F32", 4, 0, lo);
	gg_kv(&g, "phi3", "rope.scaling.original_context_length", 'u', NULL, 16);
	gg_kv(&g, "phi3", "rope.scaling.attn_factor", 'f', NULL, 1.25);
	FxBuf b;
	Model *m = gg_open(&g, &b);
	const RopeSpec *r = &model_info(m)->rope;
	assert_int_equal(r->layout, ROPE_HALF);
	assert_int_equal(r->scaling.kind, ROPE_SCALING_LONGROPE);
	assert_close(rope_attention_factor(r), 1.25, 0);
	double w[4];
	assert_int_equal(rope_frequencies_at(r, 16, w), RF_OK);
	assert_close(w[1], 0.08, 1e-17);
	assert_int_equal(rope_frequencies_at(r, 17, w), RF_OK);
	assert_close(w[1], 0.05, 1e-17);
	model_close(m);
	fx_free(&b);

	gg_init(&g, "phi3");
	gg_tensor(&g, "rope_factors_short.weight", "F32", 4, 0, sh);
	gg_kv(&g, "phi3", "rope.scaling.original_context_length", 'u', NULL, 16);
	gg_fails(&g, "tensor rope_factors_short.weight without rope_factors_long.weight");
	gg_init(&g, "phi3");
	gg_kv(&g, "phi3", "rope.scaling.type", 's', "longrope", 0);
	gg_fails(&g, "metadata phi3.rope.scaling.type 'longrope' without the tensors");
	gg_init(&g, "phi3");
	gg_tensor(&g, "rope_factors_short.weight", "F32", 4, 0, sh);
	gg_tensor(&g, "rope_factors_long.weight", "F32", 4, 0, lo);
	gg_fails(&g, "phi3.rope.scaling.original_context_length missing");
	gg_init(&g, "phi3");
	gg_tensor(&g, "rope_factors_short.weight", "F32", 4, 0, sh);
	gg_tensor(&g, "rope_factors_long.weight", "F32", 3, 0, lo);
	gg_kv(&g, "phi3", "rope.scaling.original_context_length", 'u', NULL, 16);
	gg_fails(&g, "tensor rope_factors_long.weight: 3 factors, but rope_factors_short.weight has 4");
}

/* The sliding kind and window of every layer of m against want (1 =
 * sliding), and the per-layer window the loaded Layer carries. */
static void assert_windows(Model *m, const int *want, size_t window)
{
	for (size_t i = 0; i < NL; i++) {
		ModelLayerKind k;
		assert_int_equal(model_layer_kind(m, i, &k), 0);
		assert_int_equal(k.sliding, want[i]);
		assert_int_equal(k.sliding_window, want[i] ? window : 0);
		Layer l;
		load(m, i, &l);
		assert_int_equal(l.sliding_window, want[i] ? window : 0);
		layer_free(&l);
	}
}

/* llama.cpp's gemma2: window (4096 when absent) on every other layer from
 * layer 0, soft-caps 50 and 30 unless the file says. */
static void test_gguf_gemma2(void **state)
{
	(void)state;
	Gg g;
	gg_init(&g, "gemma2");
	gg_kv(&g, "gemma2", "attention.sliding_window", 'u', NULL, 8);
	gg_kv(&g, "gemma2", "attn_logit_softcapping", 'f', NULL, 4);
	gg_kv(&g, "gemma2", "final_logit_softcapping", 'f', NULL, 5);
	FxBuf b;
	Model *m = gg_open(&g, &b);
	const int alt[NL] = {1, 0, 1};
	assert_windows(m, alt, 8);
	assert_close(model_info(m)->attn_softcap, 4, 0);
	assert_close(model_info(m)->final_softcap, 5, 0);
	Layer l;
	load(m, 1, &l);
	assert_close(l.attn_softcap, 4, 0);
	assert_close(l.rope.theta, 10000, 0);
	layer_free(&l);
	model_close(m);
	fx_free(&b);

	gg_init(&g, "gemma2");
	m = gg_open(&g, &b);
	assert_windows(m, alt, 4096);
	assert_close(model_info(m)->attn_softcap, 50, 0);
	assert_close(model_info(m)->final_softcap, 30, 0);
	model_close(m);
	fx_free(&b);

	gg_init(&g, "gemma2");
	gg_kv(&g, "gemma2", "attn_logit_softcapping", 'f', NULL, -4);
	gg_fails(&g, "metadata gemma2.attn_logit_softcapping: bad value -4");
	gg_init(&g, "gemma2");
	gg_kv(&g, "gemma2", "attention.sliding_window", 's', "eight", 0);
	gg_fails(&g, "metadata gemma2.attention.sliding_window: bad value type string");
}

/* llama.cpp's gemma3: local layers (period 6 unless
 * attention.sliding_window_pattern says, a period or one entry per layer)
 * take rope.freq_base_swa (10000) without scaling; global ones the base
 * and its linear scaling. No window, no local layers. */
static void test_gguf_gemma3(void **state)
{
	(void)state;
	Gg g;
	gg_init(&g, "gemma3");
	gg_kv(&g, "gemma3", "attention.sliding_window", 'u', NULL, 8);
	gg_kv(&g, "gemma3", "rope.freq_base", 'f', NULL, 1e6);
	gg_kv(&g, "gemma3", "rope.scaling.type", 's', "linear", 0);
	gg_kv(&g, "gemma3", "rope.scaling.factor", 'f', NULL, 8);
	gg_kv(&g, "gemma3", "attention.sliding_window_pattern", 'u', NULL, 3);
	FxBuf b;
	Model *m = gg_open(&g, &b);
	const int p3[NL] = {1, 1, 0};
	assert_windows(m, p3, 8);
	assert_close(model_info(m)->theta_local, 10000, 0);
	for (size_t i = 0; i < NL; i++) {
		Layer l;
		load(m, i, &l);
		assert_close(l.rope.theta, p3[i] ? 10000 : 1e6, 0);
		assert_int_equal(l.rope.scaling.kind, p3[i] ? ROPE_SCALING_NONE : ROPE_SCALING_LINEAR);
		assert_close(l.score_scale, 0, 0);   /* 1/sqrt(head_dim): not the 27B shape */
		layer_free(&l);
	}
	model_close(m);
	fx_free(&b);

	/* the default period 6: every one of 3 layers is local */
	gg_init(&g, "gemma3");
	gg_kv(&g, "gemma3", "attention.sliding_window", 'u', NULL, 8);
	gg_kv(&g, "gemma3", "rope.freq_base_swa", 'f', NULL, 5000);
	m = gg_open(&g, &b);
	const int all[NL] = {1, 1, 1};
	assert_windows(m, all, 8);
	assert_close(model_info(m)->theta_local, 5000, 0);
	model_close(m);
	fx_free(&b);

	/* one entry per layer */
	gg_init(&g, "gemma3");
	gg_kv(&g, "gemma3", "attention.sliding_window", 'u', NULL, 8);
	gg_kv(&g, "gemma3", "attention.sliding_window_pattern", 'U', "0,1,0", 0);
	m = gg_open(&g, &b);
	const int mid[NL] = {0, 1, 0};
	assert_windows(m, mid, 8);
	model_close(m);
	fx_free(&b);

	/* a window of 0: none, as llama.cpp reads it */
	gg_init(&g, "gemma3");
	gg_kv(&g, "gemma3", "attention.sliding_window", 'u', NULL, 0);
	m = gg_open(&g, &b);
	const int zero[NL] = {0, 0, 0};
	assert_windows(m, zero, 0);
	model_close(m);
	fx_free(&b);

	/* no window: no local layers */
	gg_init(&g, "gemma3");
	m = gg_open(&g, &b);
	const int none[NL] = {0, 0, 0};
	assert_windows(m, none, 0);
	assert_close(model_info(m)->theta_local, 0, 0);
	model_close(m);
	fx_free(&b);

	gg_init(&g, "gemma3");
	gg_kv(&g, "gemma3", "attention.sliding_window", 'u', NULL, 8);
	gg_kv(&g, "gemma3", "attention.sliding_window_pattern", 'U', "0,1", 0);
	gg_fails(&g, "metadata gemma3.attention.sliding_window_pattern: bad value (2 entries, but "
		     "block_count is 3)");
	gg_init(&g, "gemma3");
	gg_kv(&g, "gemma3", "attention.sliding_window", 'u', NULL, 8);
	gg_kv(&g, "gemma3", "attention.sliding_window_pattern", 's', "6", 0);
	gg_fails(&g, "metadata gemma3.attention.sliding_window_pattern: bad value (must be a period");
	gg_init(&g, "gemma3");
	gg_kv(&g, "gemma3", "rope.freq_base_swa", 'f', NULL, -1);
	gg_fails(&g, "metadata gemma3.rope.freq_base_swa: bad value -1");
}

/* Qwen2-VL: rope.dimension_sections [t, h, w, 0] in pairs. */
static void test_gguf_mrope(void **state)
{
	(void)state;
	Gg g;
	gg_init(&g, "qwen2vl");
	gg_kv(&g, "qwen2vl", "rope.dimension_sections", 'U', "1,1,2,0", 0);
	FxBuf b;
	Model *m = gg_open(&g, &b);
	const ModelInfo *in = model_info(m);
	assert_int_equal(in->rope.layout, ROPE_HALF);
	assert_int_equal(in->mrope_section[0], 1);
	assert_int_equal(in->mrope_section[1], 1);
	assert_int_equal(in->mrope_section[2], 2);
	assert_string_equal(in->note, "");
	model_close(m);
	fx_free(&b);
	gg_init(&g, "qwen2vl");
	gg_kv(&g, "qwen2vl", "rope.dimension_sections", 'U', "1,1,1,0", 0);
	gg_fails(&g, "rope.dimension_sections [1, 1, 1] sums to 3 pairs, but rotary dim 8 has 4");
	gg_init(&g, "qwen2vl");
	gg_kv(&g, "qwen2vl", "rope.dimension_sections", 'U', "1,1,2,4", 0);
	gg_fails(&g, "metadata qwen2vl.rope.dimension_sections: bad value [1, 1, 2, 4]");
	gg_init(&g, "qwen2vl");
	gg_kv(&g, "qwen2vl", "rope.dimension_sections", 'u', NULL, 4);
	gg_fails(&g, "metadata qwen2vl.rope.dimension_sections: bad value (must be an array");
}

/* An MoE arch: expert_count, expert_used_count, the router
 * blk.N.ffn_gate_inp.weight [experts, D] marks the sparse layers. */
static void test_gguf_experts(void **state)
{
	(void)state;
	Gg g;
	gg_init(&g, "qwen2moe");
	gg_kv(&g, "qwen2moe", "expert_count", 'u', NULL, 8);
	gg_kv(&g, "qwen2moe", "expert_used_count", 'u', NULL, 2);
	gg_kv(&g, "qwen2moe", "expert_feed_forward_length", 'u', NULL, 16);
	gg_kv(&g, "qwen2moe", "expert_shared_feed_forward_length", 'u', NULL, 24);
	gg_tensor(&g, "blk.1.ffn_gate_inp.weight", "F32", 8, 32, router);
	gg_tensor(&g, "blk.2.ffn_gate_inp.weight", "F32", 8, 32, router);
	FxBuf b;
	Model *m = gg_open(&g, &b);
	const ModelMoe *e = &model_info(m)->moe;
	assert_int_equal(e->n_experts, 8);
	assert_int_equal(e->experts_per_tok, 2);
	assert_false(e->norm_topk_prob);     /* llama.cpp's qwen2moe */
	assert_int_equal(e->expert_ff, 16);
	assert_int_equal(e->shared_expert_ff, 24);
	assert_int_equal(e->n_sparse, 2);
	assert_string_equal(e->router, ".ffn_gate_inp.weight");
	for (size_t i = 0; i < NL; i++) {
		ModelLayerKind k;
		model_layer_kind(m, i, &k);
		assert_int_equal(k.sparse, i > 0);
	}
	model_close(m);
	fx_free(&b);

	/* Mixtral is arch llama; it renormalises, as Qwen3-MoE does */
	gg_init(&g, "llama");
	gg_kv(&g, "llama", "expert_count", 'u', NULL, 8);
	gg_kv(&g, "llama", "expert_used_count", 'u', NULL, 2);
	for (size_t i = 0; i < NL; i++) {
		static char names[NL][40];
		snprintf(names[i], sizeof names[i], "blk.%zu.ffn_gate_inp.weight", i);
		gg_tensor(&g, names[i], "F32", 8, 32, router);
	}
	m = gg_open(&g, &b);
	assert_true(model_info(m)->moe.norm_topk_prob);
	assert_int_equal(model_info(m)->moe.n_sparse, NL);
	model_close(m);
	fx_free(&b);
	gg_kv(&g, "llama", "expert_weights_norm", 'b', NULL, 0);
	m = gg_open(&g, &b);
	assert_false(model_info(m)->moe.norm_topk_prob);
	model_close(m);
	fx_free(&b);

	/* expert_count 0, as some converters write for dense models */
	gg_init(&g, "llama");
	gg_kv(&g, "llama", "expert_count", 'u', NULL, 0);
	gg_kv(&g, "llama", "expert_used_count", 'u', NULL, 0);
	m = gg_open(&g, &b);
	assert_int_equal(model_info(m)->moe.n_experts, 0);
	model_close(m);
	fx_free(&b);

	gg_init(&g, "qwen2moe");
	gg_kv(&g, "qwen2moe", "expert_count", 'u', NULL, 8);
	gg_kv(&g, "qwen2moe", "expert_used_count", 'u', NULL, 9);
	gg_fails(&g, "metadata qwen2moe.expert_used_count: bad value 9 (must be from 1 to "
		     "expert_count 8)");
	gg_init(&g, "qwen2moe");
	gg_kv(&g, "qwen2moe", "expert_count", 'u', NULL, 8);
	gg_fails(&g, "metadata qwen2moe.expert_used_count missing");
	gg_init(&g, "qwen2moe");
	gg_kv(&g, "qwen2moe", "expert_count", 'u', NULL, 8);
	gg_kv(&g, "qwen2moe", "expert_used_count", 'u', NULL, 2);
	gg_kv(&g, "qwen2moe", "expert_weights_norm", 'u', NULL, 1);
	gg_fails(&g, "metadata qwen2moe.expert_weights_norm: bad value type uint32 (must be a bool)");
	gg_init(&g, "qwen2moe");
	gg_kv(&g, "qwen2moe", "expert_count", 'u', NULL, 8);
	gg_kv(&g, "qwen2moe", "expert_used_count", 'u', NULL, 2);
	gg_tensor(&g, "blk.1.ffn_gate_inp.weight", "F32", 4, 32, router);
	gg_fails(&g, "tensor blk.1.ffn_gate_inp.weight: shape [4, 32], but GGUF metadata gives "
		     "[8, 32] (experts, D)");
}

/* yarn's beta keys, read as HF's beta_fast and beta_slow. */
static void test_gguf_yarn(void **state)
{
	(void)state;
	Gg g;
	gg_init(&g, "llama");
	gg_kv(&g, "llama", "rope.scaling.type", 's', "yarn", 0);
	gg_kv(&g, "llama", "rope.scaling.factor", 'f', NULL, 4);
	gg_kv(&g, "llama", "rope.scaling.yarn_beta_fast", 'f', NULL, 16);
	gg_kv(&g, "llama", "rope.scaling.yarn_beta_slow", 'f', NULL, 2);
	FxBuf b;
	Model *m = gg_open(&g, &b);
	const RopeScaling *s = &model_info(m)->rope.scaling;
	assert_int_equal(s->kind, ROPE_SCALING_YARN);
	assert_close(s->beta_fast, 16, 0);
	assert_close(s->beta_slow, 2, 0);
	model_close(m);
	fx_free(&b);
	gg_kv(&g, "llama", "rope.scaling.yarn_beta_slow", 'f', NULL, -2);
	g.kv[g.nkv - 2] = g.kv[g.nkv - 1];   /* replace the good one */
	g.nkv--;
	gg_fails(&g, "metadata llama.rope.scaling.yarn_beta_slow: bad value -2");
}

/* ---- HF configs --------------------------------------------------------- */

static Model *hf_open(const char *dir, const char *model_type, const char *extra,
		      const FxTensor *more, size_t nmore)
{
	FxTensor t[MAXT];
	size_t nt = fx_llama_tensors(ref, NL, emb, VOCAB, "hf", "F32", t);
	for (size_t i = 0; i < nmore; i++)
		t[nt++] = more[i];
	FxBuf b = {0};
	fx_safetensors(&b, t, nt);
	assert_int_equal(fx_write(dir, "model.safetensors", b.p, b.n), 0);
	fx_free(&b);
	char cfg[2048];
	fx_hf_config(cfg, sizeof cfg, model_type, &SHAPE, NL, VOCAB, extra);
	assert_int_equal(fx_write(dir, "config.json", cfg, strlen(cfg)), 0);
	Model *m = NULL;
	char err[512] = "";
	if (model_open(dir, &m, err, sizeof err))
		fail_msg("model_open(%s): %s", model_type, err);
	return m;
}

/* Gemma2Config's class defaults: soft-caps 50 and 30 and window 4096 when
 * absent, none when null; query_pre_attn_scalar 256. Qwen2's window only
 * with use_sliding_window, from max_window_layers on; layer_types wins
 * over the rules. */
static void test_hf_rules(void **state)
{
	(void)state;
	char *dir = fx_tmpdir();
	assert_non_null(dir);
	Model *m = hf_open(dir, "gemma2", "", NULL, 0);
	const int alt[NL] = {1, 0, 1};
	assert_windows(m, alt, 4096);
	assert_close(model_info(m)->attn_softcap, 50, 0);
	assert_close(model_info(m)->final_softcap, 30, 0);
	Layer l;
	load(m, 0, &l);
	assert_close(l.score_scale, 1.0 / 16, 0);
	layer_free(&l);
	model_close(m);
	m = hf_open(dir, "gemma2", ", \"attn_logit_softcapping\": null, "
		    "\"final_logit_softcapping\": null, \"sliding_window\": 6", NULL, 0);
	assert_windows(m, alt, 6);
	assert_close(model_info(m)->attn_softcap, 0, 0);
	assert_close(model_info(m)->final_softcap, 0, 0);
	model_close(m);

	const int none[NL] = {0, 0, 0}, late[NL] = {0, 1, 1}, first[NL] = {1, 0, 0};
	m = hf_open(dir, "qwen2", ", \"sliding_window\": 4, \"use_sliding_window\": false, "
		    "\"max_window_layers\": 1", NULL, 0);
	assert_windows(m, none, 0);
	model_close(m);
	m = hf_open(dir, "qwen2", ", \"sliding_window\": 4, \"use_sliding_window\": true, "
		    "\"max_window_layers\": 1", NULL, 0);
	assert_windows(m, late, 4);
	model_close(m);
	m = hf_open(dir, "qwen2", ", \"sliding_window\": 4, \"use_sliding_window\": true, "
		    "\"max_window_layers\": 1, \"layer_types\": [\"sliding_attention\", "
		    "\"full_attention\", \"full_attention\"]", NULL, 0);
	assert_windows(m, first, 4);
	model_close(m);
	/* Llama has no sliding window in HF's code: the key is not applied */
	m = hf_open(dir, "llama", ", \"sliding_window\": 4", NULL, 0);
	assert_windows(m, none, 0);
	model_close(m);

	/* Gemma 3: no layer_types, the default period 6; local RoPE base */
	m = hf_open(dir, "gemma3_text", ", \"sliding_window\": 4, \"rope_theta\": 1e6, "
		    "\"rope_local_base_freq\": 10000", NULL, 0);
	const int all[NL] = {1, 1, 1};
	assert_windows(m, all, 4);
	load(m, 2, &l);
	assert_close(l.rope.theta, 10000, 0);
	layer_free(&l);
	model_close(m);

	/* Mixtral: every layer sparse, its routers; one missing is named */
	FxTensor r[NL];
	static char names[NL][64];
	for (size_t i = 0; i < NL; i++) {
		snprintf(names[i], sizeof names[i], "model.layers.%zu.block_sparse_moe.gate.weight", i);
		r[i] = (FxTensor){names[i], "F32", 2, {8, 32, 0, 0}, router};
	}
	m = hf_open(dir, "mixtral", ", \"num_local_experts\": 8, \"num_experts_per_tok\": 2, "
		    "\"intermediate_size\": 64, \"norm_topk_prob\": false", r, NL);
	const ModelMoe *e = &model_info(m)->moe;
	assert_int_equal(e->n_sparse, NL);
	assert_true(e->norm_topk_prob);   /* Mixtral always renormalises */
	assert_int_equal(e->expert_ff, 64);
	assert_string_equal(e->router, ".block_sparse_moe.gate.weight");
	model_close(m);
	FxTensor t[MAXT];
	size_t nt = fx_llama_tensors(ref, NL, emb, VOCAB, "hf", "F32", t);
	t[nt++] = r[0];
	t[nt++] = r[1];
	FxBuf b = {0};
	fx_safetensors(&b, t, nt);
	fx_write(dir, "model.safetensors", b.p, b.n);
	fx_free(&b);
	char cfg[1024];
	fx_hf_config(cfg, sizeof cfg, "mixtral", &SHAPE, NL, VOCAB,
		     ", \"num_local_experts\": 8, \"num_experts_per_tok\": 2");
	fx_write(dir, "config.json", cfg, strlen(cfg));
	char err[512] = "";
	assert_int_equal(model_open(dir, &m, err, sizeof err), -1);
	if (!strstr(err, "layer 2: config.json gives 8 experts, but the router "
			 "model.layers.2.block_sparse_moe.gate.weight is missing"))
		fail_msg("error: %s", err);
	fx_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gguf_rope_freqs),
		cmocka_unit_test(test_gguf_longrope),
		cmocka_unit_test(test_gguf_gemma2),
		cmocka_unit_test(test_gguf_gemma3),
		cmocka_unit_test(test_gguf_mrope),
		cmocka_unit_test(test_gguf_experts),
		cmocka_unit_test(test_gguf_yarn),
		cmocka_unit_test(test_hf_rules),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
