#include "config.h"

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

#include "core/dtype.h"
#include "data/default_model.h"
#include "data/model.h"
#include "tests/ckpt_fixtures.h"

/* model.c: format detection from content, the built-in default, the
 * regression inputs in tests/bad/, and the shared real checkpoints. */

static const char *srcdir(void)
{
	const char *s = getenv("SRCDIR");
	return s && *s ? s : ABS_TOP_SRCDIR;
}

/* The shared checkpoints folder, or NULL when absent. */
static const char *shared_models(char *buf, size_t len)
{
	const char *env = getenv("ROPEFOLD_SHARED_MODELS");
	struct stat st;
	if (env && *env)
		snprintf(buf, len, "%s", env);
	else
		snprintf(buf, len, "%s/../shared/models", srcdir());
	return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? buf : NULL;
}

static void test_detect_from_content(void **state)
{
	(void)state;
	char *dir = fx_tmpdir();
	assert_non_null(dir);
	LayerShape s = {32, 4, 2, 8};
	Layer ref;
	fx_layer(&ref, &s, false, 3);
	FxTensor t[16];
	/* A GGUF and a llama2.c file with misleading names. */
	size_t nt = fx_llama_tensors(&ref, 1, NULL, 0, "gguf", "F32", t);
	FxKv kv[] = {{"general.architecture", 's', "llama", 0},
		     {"llama.block_count", 'u', NULL, 1},
		     {"llama.embedding_length", 'u', NULL, 32},
		     {"llama.attention.head_count", 'u', NULL, 4},
		     {"llama.attention.head_count_kv", 'u', NULL, 2}};
	FxBuf b = {0};
	fx_gguf(&b, 3, kv, 5, t, nt, 0);
	fx_write(dir, "model.bin", b.p, b.n);
	fx_free(&b);
	int32_t h[7] = {16, 24, 1, 4, 4, 8, 4};
	fx_llama2c(&b, h);
	fx_write(dir, "weights.gguf", b.p, b.n);
	fx_free(&b);
	char p[4200], err[512];
	Model *m;
	snprintf(p, sizeof p, "%s/model.bin", dir);
	assert_int_equal(model_open(p, &m, err, sizeof err), 0);
	assert_int_equal(model_info(m)->format, MODEL_FMT_GGUF);
	assert_string_equal(model_format_name(model_info(m)->format), "gguf");
	model_close(m);
	snprintf(p, sizeof p, "%s/weights.gguf", dir);
	assert_int_equal(model_open(p, &m, err, sizeof err), 0);
	assert_int_equal(model_info(m)->format, MODEL_FMT_LLAMA2C);
	model_close(m);
	/* Missing paths and folders without a checkpoint. */
	snprintf(p, sizeof p, "%s/nope", dir);
	assert_int_not_equal(model_open(p, &m, err, sizeof err), 0);
	assert_non_null(strstr(err, "No such file"));
	assert_int_not_equal(model_open(dir, &m, err, sizeof err), 0);
	assert_non_null(strstr(err, "without config.json"));
	char cfg[512];
	fx_hf_config(cfg, sizeof cfg, "llama", &s, 1, 8, "");
	fx_write(dir, "config.json", cfg, strlen(cfg));
	snprintf(p, sizeof p, "%s/model.bin", dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/weights.gguf", dir);
	unlink(p);
	assert_int_not_equal(model_open(dir, &m, err, sizeof err), 0);
	assert_non_null(strstr(err, "no model.safetensors"));
	/* Any *.safetensors in the folder will do. */
	nt = fx_llama_tensors(&ref, 1, NULL, 0, "hf", "F32", t);
	fx_safetensors(&b, t, nt);
	fx_write(dir, "weights.safetensors", b.p, b.n);
	fx_free(&b);
	assert_int_equal(model_open(dir, &m, err, sizeof err), 0);
	assert_int_equal(model_info(m)->format, MODEL_FMT_SAFETENSORS);
	model_close(m);
	layer_free(&ref);
	fx_rmtree(dir);
	free(dir);
}

/* In memory, a config.json means safetensors (as a *.safetensors name
 * does on disk): a broken header gets a safetensors message, not a
 * llama2.c one; without it the same bytes go to the llama2.c reader. */
static void test_memory_format(void **state)
{
	(void)state;
	static const unsigned char zero_len[16] = {0, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
	const char *cfg = "{\"hidden_size\": 8, \"num_attention_heads\": 2, "
			  "\"num_hidden_layers\": 1}";
	Model *m;
	char err[512];
	assert_int_not_equal(model_open_memory(zero_len, sizeof zero_len, cfg, "w", &m, err,
					       sizeof err), 0);
	assert_non_null(strstr(err, "w: offset 0: header length 0 is too short for a JSON object"));
	assert_int_not_equal(model_open_memory(zero_len, sizeof zero_len, NULL, "w", &m, err,
					       sizeof err), 0);
	assert_non_null(strstr(err, "llama2.c"));
}

static void test_default_model(void **state)
{
	(void)state;
	Layer l;
	char err[512], path[4096];
	setenv("ROPEFOLD_DATADIR", "/nonexistent", 1);
	assert_int_equal(default_model_path(getenv("ROPEFOLD_DATADIR"), path, sizeof path, err,
					    sizeof err), 0);
	assert_non_null(strstr(path, "default-model"));
	unsetenv("ROPEFOLD_DATADIR");
	if (default_model_load(getenv("ROPEFOLD_DATADIR"), &l, err, sizeof err))
		fail_msg("%s", err);
	assert_int_equal(l.shape.d_model, 64);
	assert_int_equal(l.shape.n_heads, 4);
	assert_int_equal(l.shape.n_kv_heads, 2);
	assert_int_equal(l.shape.head_dim, 16);
	assert_int_equal(l.rope.layout, ROPE_HALF);
	assert_non_null(l.attn_norm);
	layer_free(&l);
	Model *m;
	assert_int_equal(model_open(path, &m, err, sizeof err), 0);
	assert_int_equal(model_info(m)->vocab, 128);
	model_close(m);
}

/* Every regression input kept from fuzzing is rejected or read without
 * a crash (the sanitizer build turns any overrun into a failure). */
static void test_bad_regressions(void **state)
{
	(void)state;
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/tests/bad", srcdir());
	DIR *d = opendir(dir);
	if (!d)
		fail_msg("%s: the regression inputs are missing", dir);
	struct dirent *e;
	size_t n = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strstr(e->d_name, ".md"))
			continue;
		char p[8400], err[512];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		Model *m;
		if (model_open(p, &m, err, sizeof err) == 0) {
			Layer l;
			for (size_t i = 0; i < model_info(m)->n_layers && i < 4; i++)
				if (model_load_layer(m, i, &l, err, sizeof err) == 0)
					layer_free(&l);
			model_close(m);
		} else {
			assert_null(strchr(err, '\n'));
			assert_true(strlen(err) > 0);
		}
		n++;
	}
	closedir(d);
	print_message("replayed %zu regression inputs\n", n);
}

static Model *open_shared(const char *dir, const char *name)
{
	char p[4200], err[512];
	Model *m;
	snprintf(p, sizeof p, "%s/%s", dir, name);
	if (model_open(p, &m, err, sizeof err))
		fail_msg("%s", err);
	return m;
}

/* stories260K as llama2.c .bin and as GGUF: identical attention tensors of
 * every layer, identical embeddings, both interleaved. */
static void test_shared_stories(void **state)
{
	(void)state;
	char buf[4096];
	const char *dir = shared_models(buf, sizeof buf);
	if (!dir) {
		print_message("shared models not found: skipping\n");
		skip();
	}
	Model *a = open_shared(dir, "stories260K.bin"), *b = open_shared(dir, "stories260K.gguf");
	const ModelInfo *ia = model_info(a), *ib = model_info(b);
	assert_int_equal(ia->n_layers, 5);
	assert_int_equal(ib->n_layers, 5);
	assert_int_equal(ia->rope.layout, ROPE_INTERLEAVED);
	assert_int_equal(ib->rope.layout, ROPE_INTERLEAVED);
	assert_int_equal(ia->shape.n_kv_heads, 4);
	assert_int_equal(ib->shape.head_dim, 8);
	assert_close(ib->rope.theta, 10000, 0);
	for (size_t i = 0; i < 5; i++) {
		Layer la, lb;
		char err[512];
		assert_int_equal(model_load_layer(a, i, &la, err, sizeof err), 0);
		assert_int_equal(model_load_layer(b, i, &lb, err, sizeof err), 0);
		assert_true(tu_max_diff(la.wq, lb.wq, 64 * 64) == 0);
		assert_true(tu_max_diff(la.wk, lb.wk, 32 * 64) == 0);
		assert_true(tu_max_diff(la.wv, lb.wv, 32 * 64) == 0);
		assert_true(tu_max_diff(la.wo, lb.wo, 64 * 64) == 0);
		assert_true(tu_max_diff(la.attn_norm, lb.attn_norm, 64) == 0);
		layer_free(&la);
		layer_free(&lb);
	}
	size_t tok[3] = {1, 100, 511};
	double ea[3 * 64], eb[3 * 64];
	char err[512];
	assert_int_equal(model_load_embeddings(a, tok, 3, ea, err, sizeof err), 0);
	assert_int_equal(model_load_embeddings(b, tok, 3, eb, err, sizeof err), 0);
	assert_true(tu_max_diff(ea, eb, 3 * 64) == 0);
	model_close(a);
	model_close(b);
}

/* The HF tiny llama: half-split, BF16, GQA, untied head. */
static void test_shared_hf(void **state)
{
	(void)state;
	char buf[4096];
	const char *dir = shared_models(buf, sizeof buf);
	if (!dir) {
		print_message("shared models not found: skipping\n");
		skip();
	}
	Model *m = open_shared(dir, "tiny_llama_hf");
	const ModelInfo *in = model_info(m);
	assert_int_equal(in->rope.layout, ROPE_HALF);
	assert_string_equal(dtype_name(in->dtype), "BF16");
	assert_int_equal(in->shape.d_model, 96);
	assert_int_equal(in->shape.n_heads, 4);
	assert_int_equal(in->shape.n_kv_heads, 2);
	assert_int_equal(in->shape.head_dim, 24);
	assert_int_equal(in->vocab, 112);
	Layer l;
	char err[512];
	assert_int_equal(model_load_layer(m, 1, &l, err, sizeof err), 0);
	assert_true(layer_is_finite(&l, NULL));
	layer_free(&l);
	model_close(m);
}

/* layer_is_finite scans its tensors in blocks: a NaN or an Inf anywhere
 * (first value, a block's last and next value, the last value, a bias
 * shorter than a block) is found and its tensor named, while the largest
 * and smallest finite doubles are not mistaken for one. */
static void test_layer_is_finite(void **state)
{
	(void)state;
	LayerShape s = {128, 4, 2, 32};        /* wq: 16384 values, 4 blocks */
	RopeSpec r = rope_spec_default(32);
	Layer l;
	assert_int_equal(layer_random(&l, &s, &r, true, 11), RF_OK);
	assert_true(layer_is_finite(&l, NULL));
	size_t nq = 4 * 32 * 128, nk = 2 * 32 * 128;
	struct {
		double *t;
		size_t at;
		const char *name;
	} cases[] = {
		{l.wq, 0, "q weight"},      {l.wq, 4095, "q weight"},
		{l.wq, 4096, "q weight"},   {l.wq, nq - 1, "q weight"},
		{l.wk, nk / 2 + 7, "k weight"}, {l.wv, nk - 1, "v weight"},
		{l.wo, 12345, "o weight"},  {l.bq, 127, "q bias"},
		{l.bo, 0, "o bias"},
	};
	const double bad[] = {NAN, -NAN, INFINITY, -INFINITY};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
			double keep = cases[i].t[cases[i].at];
			cases[i].t[cases[i].at] = bad[k];
			const char *name = NULL;
			assert_false(layer_is_finite(&l, &name));
			assert_string_equal(name, cases[i].name);
			cases[i].t[cases[i].at] = keep;
		}
	const double fine[] = {DBL_MAX, -DBL_MAX, DBL_MIN, 4.9e-324, -0.0};
	for (size_t k = 0; k < sizeof fine / sizeof fine[0]; k++) {
		l.wq[4096] = fine[k];
		assert_true(layer_is_finite(&l, NULL));
	}
	layer_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect_from_content),
		cmocka_unit_test(test_memory_format),
		cmocka_unit_test(test_default_model),
		cmocka_unit_test(test_bad_regressions),
		cmocka_unit_test(test_layer_is_finite),
		cmocka_unit_test(test_shared_stories),
		cmocka_unit_test(test_shared_hf),
	};
	/* cmocka 1.1.5 reports a skip() as "not ok ... # SKIP", which the TAP
	 * driver counts as a failure: leave the shared-model cases out of the
	 * plan instead, and say so. */
	char buf[4096];
	size_t n = sizeof tests / sizeof tests[0];
	if (!shared_models(buf, sizeof buf)) {
		printf("# no shared models at %s ($ROPEFOLD_SHARED_MODELS, else "
		       "$SRCDIR/../shared/models): skipping test_shared_stories and "
		       "test_shared_hf\n", buf);
		n -= 2;
	}
	return _cmocka_run_group_tests("tests", tests, n, NULL, NULL);
}
