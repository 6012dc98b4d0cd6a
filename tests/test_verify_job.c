#include "config.h"

#include "tests/testutil.h"

#include "core/fold.h"
#include "data/fold_job.h"
#include "data/verify_job.h"
#include "tests/ckpt_fixtures.h"

/* The layer loop of verify over two checkpoints: a commuting fold of
 * every layer is equivalent in each (the theorem), a fold whose Q/K
 * rotation does not commute with RoPE breaks at the score level; the
 * caller sees each layer in order and may stop at the first break; layer
 * ranges and counts are checked. */

static char *dir;
static char in[4300];

static int setup(void **state)
{
	(void)state;
	dir = fx_tmpdir();
	if (!dir)
		return -1;
	fx_fold_gguf(dir, "a.gguf", "F32", in, sizeof in);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_rmtree(dir);
	free(dir);
	return 0;
}

/* in folded into dir/name (commutes dropped when broken), kept in f64. */
static void fold_into(const char *name, bool broken, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", dir, name);
	FoldJob j;
	memset(&j, 0, sizeof j);
	j.model_path = in;
	j.out = out;
	j.fold = fold_config_default();
	j.seed = 3;
	j.store_set = true;
	j.store = STORE_F64;
	if (broken)
		j.fold.dropped = ASSUME_COMMUTES;
	FoldOutcome r;
	char err[1024];
	if (fold_job_run(&j, &r, err, sizeof err))
		fail_msg("%s", err);
	fold_outcome_done(&r);
}

typedef struct {
	size_t calls, last_done;
	bool stop_at_break, reports;
} Seen;

static int on_layer(void *ctx, const VerifyLayerResult *r)
{
	Seen *s = ctx;
	s->calls++;
	assert_int_equal(r->done, s->calls);
	assert_int_equal(r->total, FX_FOLD_LAYERS);
	assert_int_equal(r->a->shape.d_model, fx_fold_shape.d_model);
	s->reports = s->reports || r->report;
	return s->stop_at_break && !r->verdict->equivalent;
}

static VerifyJob job(const char *b, Seen *s)
{
	VerifyJob j = {in, b, NULL, NULL, 0, false, PREC_F64, 8, 1, s, NULL, on_layer};
	return j;
}

static void test_fold_is_equivalent(void **state)
{
	(void)state;
	char out[4400], err[1024];
	fold_into("good.gguf", false, out, sizeof out);
	Seen s = {0};
	VerifyJob j = job(out, &s);
	j.confirm = true;
	VerifyOutcome r;
	if (verify_job_run(&j, &r, err, sizeof err))
		fail_msg("%s", err);
	assert_true(r.equivalent);
	assert_false(r.layer_counts_differ);
	assert_int_equal(r.compared, FX_FOLD_LAYERS);
	assert_int_equal(r.first_break, SIZE_MAX);
	assert_int_equal(s.calls, FX_FOLD_LAYERS);
	assert_true(s.reports);
}

static void test_broken_stops(void **state)
{
	(void)state;
	char out[4400], err[1024];
	fold_into("bad.gguf", true, out, sizeof out);
	Seen s = {0};
	VerifyJob j = job(out, &s);
	VerifyOutcome r;
	assert_int_equal(verify_job_run(&j, &r, err, sizeof err), 0);
	assert_false(r.equivalent);
	assert_int_equal(r.first_break, 0);
	assert_int_equal(s.calls, FX_FOLD_LAYERS);
	assert_false(s.reports);   /* no confirming evaluation asked */
	s = (Seen){0};
	s.stop_at_break = true;
	assert_int_equal(verify_job_run(&j, &r, err, sizeof err), 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(r.compared, 1);
}

static void test_ranges_and_counts(void **state)
{
	(void)state;
	char err[1024];
	VerifyJob j = {in, in, "5", NULL, 0, false, PREC_F64, 8, 1, NULL, NULL, NULL};
	VerifyOutcome r;
	assert_int_equal(verify_job_run(&j, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "--layers: '5' is outside the layers 0..1"));
	j.layers = "1";
	assert_int_equal(verify_job_run(&j, &r, err, sizeof err), 0);
	assert_true(r.equivalent);
	assert_int_equal(r.compared, 1);
	/* a one-layer llama2.c checkpoint against the two-layer GGUF */
	int32_t hdr[7] = {32, 24, 1, 4, 2, 8, 4};
	FxBuf b = {0};
	fx_llama2c(&b, hdr);
	fx_write(dir, "one.bin", b.p, b.n);
	fx_free(&b);
	char one[4400];
	snprintf(one, sizeof one, "%s/one.bin", dir);
	j.b = one;
	j.layers = NULL;
	assert_int_equal(verify_job_run(&j, &r, err, sizeof err), 0);
	assert_true(r.layer_counts_differ);
	assert_false(r.equivalent);
	assert_int_equal(r.layers_a, 2);
	assert_int_equal(r.layers_b, 1);
	assert_int_equal(r.compared, 0);
	j.b = "/nonexistent/b.gguf";
	assert_int_equal(verify_job_run(&j, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "/nonexistent/b.gguf"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fold_is_equivalent),
		cmocka_unit_test(test_broken_stops),
		cmocka_unit_test(test_ranges_and_counts),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
