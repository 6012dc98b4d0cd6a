#include "config.h"

#include <dirent.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

#include "core/dtype.h"
#include "core/fold.h"
#include "data/fold_job.h"
#include "data/model.h"
#include "data/sidecar.h"
#include "tests/ckpt_fixtures.h"

/* The fold/undo pipeline through its one call, as the fold CLI and the
 * explorer's :export make it: what the outcome says (layers, seeds, the
 * undo's bit-for-bit verdict, against the bytes and the sidecar the run
 * wrote), the hooks a front end sees it by, and the refusals, each with
 * nothing left behind. */

typedef struct {
	char *dir;
	char in[4300], out[4300], back[4300], sc[4400];
} Fx;

static int setup(void **state)
{
	Fx *f = calloc(1, sizeof *f);
	f->dir = fx_tmpdir();
	if (!f->dir)
		return -1;
	snprintf(f->out, sizeof f->out, "%s/out", f->dir);
	snprintf(f->back, sizeof f->back, "%s/back", f->dir);
	snprintf(f->sc, sizeof f->sc, "%s/out/fold.json", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	Fx *f = *state;
	fx_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static FoldJob job(const char *in, const char *out)
{
	FoldJob j;
	memset(&j, 0, sizeof j);
	j.model_path = in;
	j.out = out;
	j.fold = fold_config_default();
	j.fold.qk_norm_exact = true;
	j.seed = 7;
	return j;
}

static bool same_file(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool eq = fa && fb;
	while (eq) {
		int x = getc(fa), y = getc(fb);
		eq = x == y;
		if (x == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return eq;
}

static size_t entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	return n;
}

/* A BF16 HF folder folded into F32 and undone: the outcome's layers and
 * seeds are those the sidecar records, and the undo restores the original
 * bytes, which its outcome says (decided by the recorded checksums). */
static void test_fold_and_undo(void **state)
{
	Fx *f = *state;
	fx_fold_hf(f->dir, "in", "BF16", false, f->in, sizeof f->in);
	FoldJob j = job(f->in, f->out);
	j.store_set = true;
	j.store = STORE_F32;
	FoldOutcome r;
	char err[1024];
	if (fold_job_run(&j, &r, err, sizeof err))
		fail_msg("%s", err);
	assert_false(r.undo);
	assert_int_equal(r.format, MODEL_FMT_SAFETENSORS);
	assert_int_equal(r.nlayers, FX_FOLD_LAYERS);
	assert_string_equal(r.sidecar, f->sc);
	assert_close(r.unit_roundoff, dtype_unit_roundoff(STORE_F32), 0);
	assert_le(r.max_rel_rounding, dtype_unit_roundoff(STORE_F32));
	json_error_t je;
	json_t *doc = json_load_file(f->sc, 0, &je);
	assert_non_null(doc);
	json_t *ls = json_object_get(doc, "layers");
	assert_int_equal(json_array_size(ls), FX_FOLD_LAYERS);
	for (size_t k = 0; k < r.nlayers; k++) {
		json_t *l = json_array_get(ls, k);
		assert_int_equal(r.layers[k].layer, k);
		assert_int_equal(json_integer_value(json_object_get(l, "layer")), k);
		assert_int_equal(json_integer_value(json_object_get(l, "seed")),
				 (json_int_t)r.layers[k].seed);
		assert_true(r.layers[k].seed != 7);   /* per layer, derived from 7 */
	}
	assert_true(r.layers[0].seed != r.layers[1].seed);
	assert_string_equal(json_string_value(json_object_get(doc, "dtype")), "f32");
	json_decref(doc);
	uint64_t seeds[FX_FOLD_LAYERS] = {r.layers[0].seed, r.layers[1].seed};
	fold_outcome_done(&r);

	FoldJob u = job(f->out, f->back);
	u.undo = f->sc;
	if (fold_job_run(&u, &r, err, sizeof err))
		fail_msg("%s", err);
	assert_true(r.undo);
	assert_true(r.checksums);
	assert_true(r.bit_for_bit);
	assert_false(r.sidecar_removed);
	assert_int_equal(r.nlayers, FX_FOLD_LAYERS);
	for (size_t k = 0; k < r.nlayers; k++) {
		assert_true(r.layers[k].seed_known);
		assert_int_equal(r.layers[k].seed, seeds[k]);
		assert_true(r.layers[k].bit_for_bit);
	}
	fold_outcome_done(&r);
	char a[4500], b[4500];
	snprintf(a, sizeof a, "%s/model.safetensors", f->in);
	snprintf(b, sizeof b, "%s/model.safetensors", f->back);
	assert_true(same_file(a, b));
	snprintf(b, sizeof b, "%s/fold.json", f->back);
	assert_int_equal(access(b, F_OK), -1);   /* an undo writes no sidecar */
}

/* The explorer's rotations: every layer drawn from fold.seed itself; one
 * layer chosen by its index. */
static void test_seed_as_is(void **state)
{
	Fx *f = *state;
	fx_fold_gguf(f->dir, "m.gguf", "F32", f->in, sizeof f->in);
	snprintf(f->out, sizeof f->out, "%s/o.gguf", f->dir);
	FoldJob j = job(f->in, f->out);
	j.seed_as_is = true;
	j.fold.seed = 11;
	j.layers = "1";
	FoldOutcome r;
	char err[1024];
	if (fold_job_run(&j, &r, err, sizeof err))
		fail_msg("%s", err);
	assert_int_equal(r.format, MODEL_FMT_GGUF);
	assert_int_equal(r.nlayers, 1);
	assert_int_equal(r.layers[0].layer, 1);
	assert_int_equal(r.layers[0].seed, 11);
	fold_outcome_done(&r);
	snprintf(f->sc, sizeof f->sc, "%s.fold.json", f->out);
	assert_int_equal(access(f->sc, F_OK), 0);
}

typedef struct {
	int opened, started, layers, published;
	size_t fail_at;      /* layer_done fails here (0: never) */
	bool fail_publish;
} Seen;

static void on_opened(void *ctx, const ModelInfo *info)
{
	Seen *s = ctx;
	s->opened++;
	assert_int_equal(info->n_layers, FX_FOLD_LAYERS);
}

static void on_started(void *ctx)
{
	((Seen *)ctx)->started++;
}

static int on_layer(void *ctx, size_t done, size_t total, char *err, size_t errlen)
{
	Seen *s = ctx;
	assert_int_equal(total, FX_FOLD_LAYERS);
	assert_int_equal(done, (size_t)++s->layers);
	if (done == s->fail_at) {
		snprintf(err, errlen, "stopped after %zu", done);
		return -1;
	}
	return 0;
}

static int on_publish(void *ctx, char *err, size_t errlen)
{
	Seen *s = ctx;
	s->published++;
	if (s->fail_publish) {
		snprintf(err, errlen, "not now");
		return -1;
	}
	return 0;
}

/* The hooks, in order; a hook that fails stops the run with its line, and
 * nothing is left in the output's folder. */
static void test_hooks(void **state)
{
	Fx *f = *state;
	char sub[4200];
	snprintf(sub, sizeof sub, "%s/h", f->dir);
	mkdir(sub, 0755);
	fx_fold_gguf(sub, "m.gguf", "F32", f->in, sizeof f->in);
	snprintf(f->out, sizeof f->out, "%s/o.gguf", sub);
	Seen s = {0};
	FoldJob j = job(f->in, f->out);
	j.hooks = (FoldHooks){&s, on_opened, on_started, on_layer, on_publish, &s};
	FoldOutcome r;
	char err[1024];
	s.fail_at = 1;
	assert_int_equal(fold_job_run(&j, &r, err, sizeof err), -1);
	fold_outcome_done(&r);
	assert_string_equal(err, "stopped after 1");
	assert_int_equal(s.opened, 1);
	assert_int_equal(s.started, 1);
	assert_int_equal(s.published, 0);
	assert_int_equal(entries(sub), 1);   /* only the input */
	s = (Seen){0};
	s.fail_publish = true;
	assert_int_equal(fold_job_run(&j, &r, err, sizeof err), -1);
	fold_outcome_done(&r);
	assert_string_equal(err, "not now");
	assert_int_equal(s.layers, FX_FOLD_LAYERS);
	assert_int_equal(s.published, 1);
	assert_int_equal(entries(sub), 1);
	s = (Seen){0};
	assert_int_equal(fold_job_run(&j, &r, err, sizeof err), 0);
	fold_outcome_done(&r);
	assert_int_equal(s.published, 1);
	assert_int_equal(entries(sub), 3);   /* input, output, sidecar */
	/* an existing output: refused with the caller's hint */
	j.replace_hint = "say please";
	assert_int_equal(fold_job_run(&j, &r, err, sizeof err), -1);
	fold_outcome_done(&r);
	assert_non_null(strstr(err, "exists (say please)"));
	j.force = true;
	s = (Seen){0};
	assert_int_equal(fold_job_run(&j, &r, err, sizeof err), 0);
	fold_outcome_done(&r);
}

static void expect_refusal(const FoldJob *j, const char *want)
{
	FoldOutcome r;
	char err[1024] = "";
	assert_int_equal(fold_job_run(j, &r, err, sizeof err), -1);
	fold_outcome_done(&r);
	if (!strstr(err, want))
		fail_msg("error '%s' does not say '%s'", err, want);
}

static void test_refusals(void **state)
{
	Fx *f = *state;
	fx_fold_gguf(f->dir, "m.gguf", "F32", f->in, sizeof f->in);
	snprintf(f->out, sizeof f->out, "%s/r.gguf", f->dir);
	FoldJob j = job(f->in, NULL);
	expect_refusal(&j, "a checkpoint and an output path are needed");
	j = job(f->in, f->out);
	j.layers = "2";
	expect_refusal(&j, "--layers: '2' is outside the layers 0..1");
	j.layers_flag = "--layer";
	expect_refusal(&j, "--layer: '2' is outside");
	j = job(f->in, f->out);
	j.rope.spec.rotary_dim = 10;
	j.rope.rotary_dim = true;
	expect_refusal(&j, "--rotary-dim: 10 exceeds the head dim 8");
	j = job(f->in, f->in);
	j.force = true;
	expect_refusal(&j, "is a file this run reads");
	j = job(f->in, f->out);
	j.undo = "/nonexistent/fold.json";
	expect_refusal(&j, "/nonexistent/fold.json");
	assert_int_equal(access(f->out, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fold_and_undo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seed_as_is, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hooks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
