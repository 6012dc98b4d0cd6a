#include "config.h"

#include "tests/testutil.h"

#include "data/default_model.h"
#include "data/model.h"
#include "data/workload.h"

/* What an evaluation runs on, built from a plain spec: a seeded random
 * layer (reproducible, of the spec's shape), a checkpoint's layer with its
 * own shape and RoPE (only the given RoPE fields override it), token
 * embeddings through the layer's RMSNorm (x / sqrt(mean(x^2) + eps) * w,
 * the Llama definition, computed here by hand), and one clear message
 * naming the flag at fault for every bad spec. */

static WorkloadSpec random_spec(void)
{
	WorkloadSpec s;
	memset(&s, 0, sizeof s);
	s.shape = (LayerShape){32, 4, 2, 8};
	s.rope.spec = rope_spec_default(8);
	s.seq = 6;
	s.seed = 5;
	return s;
}

static void default_spec(WorkloadSpec *s, char *path, size_t len)
{
	char err[512];
	memset(s, 0, sizeof *s);
	if (default_model_path(getenv("ROPEFOLD_DATADIR"), path, len, err, sizeof err))
		fail_msg("%s", err);
	s->model_path = path;
	s->default_model = true;
	s->layer = 1;
	s->seq = 4;
	s->seed = 1;
}

static void test_random(void **state)
{
	(void)state;
	WorkloadSpec s = random_spec();
	Workload a, b;
	char err[512];
	assert_int_equal(workload_build(&s, &a, err, sizeof err), 0);
	assert_int_equal(workload_build(&s, &b, err, sizeof err), 0);
	assert_string_equal(a.source, "random");
	assert_int_equal(a.seq, 6);
	assert_int_equal(a.layer.shape.n_kv_heads, 2);
	assert_null(a.layer.bq);
	assert_le(tu_max_diff(a.layer.wq, b.layer.wq, 32 * 32), 0);
	assert_le(tu_max_diff(a.x, b.x, 6 * 32), 0);
	workload_done(&b);
	s.seed = 6;
	s.with_bias = true;
	assert_int_equal(workload_build(&s, &b, err, sizeof err), 0);
	assert_non_null(b.layer.bq);
	assert_gt(tu_max_diff(a.layer.wq, b.layer.wq, 32 * 32), 0);
	workload_done(&a);
	workload_done(&b);
}

static int opened_calls;
static void count_open(void *ctx)
{
	(void)ctx;
	opened_calls++;
}

static void test_checkpoint(void **state)
{
	(void)state;
	WorkloadSpec s;
	char path[4096], err[512];
	default_spec(&s, path, sizeof path);
	s.opened = count_open;
	s.rope.spec.theta = 500;
	s.rope.spec.layout = ROPE_INTERLEAVED;
	s.rope.theta = true;
	s.rope.layout = true;
	Workload w;
	opened_calls = 0;
	assert_int_equal(workload_build(&s, &w, err, sizeof err), 0);
	assert_int_equal(opened_calls, 1);
	assert_string_equal(w.source, "default");
	assert_int_equal(w.layer_index, 1);
	assert_int_equal(w.layer.shape.d_model, 64);
	/* theta given: the checkpoint's is overridden; the layout stays the
	 * checkpoint's (its runtime's), the fold is built for the given one */
	assert_close(w.layer.rope.theta, 500, 0);
	assert_int_equal(w.layer.rope.layout, ROPE_HALF);
	FoldConfig cfg = fold_config_default();
	workload_fold_config(&w, &cfg);
	assert_true(cfg.layout_set);
	assert_int_equal(cfg.layout, ROPE_INTERLEAVED);
	workload_done(&w);
}

/* --tokens 3,0,127 on the default model: the rows are the embeddings of
 * those ids through the layer's RMSNorm. */
static void test_embed(void **state)
{
	(void)state;
	WorkloadSpec s;
	char path[4096], err[512];
	default_spec(&s, path, sizeof path);
	s.embed = true;
	s.tokens = "3,0,127";
	s.seq = 3;
	Workload w;
	assert_int_equal(workload_build(&s, &w, err, sizeof err), 0);
	assert_int_equal(w.seq, 3);
	Model *m;
	assert_int_equal(model_open(path, &m, err, sizeof err), 0);
	size_t D = 64, ids[3] = {3, 0, 127};
	double emb[3 * 64];
	assert_int_equal(model_load_embeddings(m, ids, 3, emb, err, sizeof err), 0);
	model_close(m);
	for (size_t t = 0; t < 3; t++) {
		double ss = 0;
		for (size_t i = 0; i < D; i++)
			ss += emb[t * D + i] * emb[t * D + i];
		double inv = 1.0 / sqrt(ss / (double)D + w.layer.norm_eps);
		for (size_t i = 0; i < D; i++)
			assert_close(w.x[t * D + i], emb[t * D + i] * inv * w.layer.attn_norm[i],
				     1e-12);
	}
	workload_done(&w);
}

static void expect_error(const WorkloadSpec *s, const char *want)
{
	Workload w;
	char err[512] = "";
	assert_int_equal(workload_build(s, &w, err, sizeof err), -1);
	if (!strstr(err, want))
		fail_msg("error '%s' does not say '%s'", err, want);
}

static void test_errors(void **state)
{
	(void)state;
	WorkloadSpec s = random_spec();
	s.embed = true;
	expect_error(&s, "--input: 'embed' needs --model");
	char path[4096];
	default_spec(&s, path, sizeof path);
	s.layer = 2;
	expect_error(&s, "--layer: layer 2 is out of range");
	s.layer = 0;
	s.embed = true;
	s.tokens = "1,128";
	expect_error(&s, "--tokens: token id 128 is out of range (vocab 128)");
	s.embed = false;
	s.rope.spec.rotary_dim = 32;
	s.rope.rotary_dim = true;
	expect_error(&s, "--rotary-dim: 32 exceeds the head dim 16 of default");
	s = random_spec();
	s.model_path = "/nonexistent/model.safetensors";
	expect_error(&s, "/nonexistent/model.safetensors");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_checkpoint),
		cmocka_unit_test(test_embed),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
