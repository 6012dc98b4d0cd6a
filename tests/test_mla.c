#include "config.h"

#include "core/finding.h"
#include "core/mla.h"
#include "core/mla_fold.h"
#include "core/mla_inv.h"
#include "core/rope.h"
#include "tests/testutil.h"

/* Shapes: DeepSeek-V2-like (q through a latent, dv = dn), q_proj (V2-Lite)
 * with dv != dn, and one head (the rope part's kv group is then the head). */
static const MlaShape LORA = {32, 4, 12, 16, 8, 8, 8};
static const MlaShape QPROJ = {24, 3, 0, 10, 6, 4, 10};
static const MlaShape ONE = {16, 1, 0, 8, 4, 6, 4};

static void make(const MlaShape *s, RopeLayout layout, MlaLayer *l, double **x, size_t T)
{
	RopeSpec r = rope_spec_default(s->qk_rope_dim);
	r.layout = layout;
	assert_int_equal(mla_random(l, s, &r, 5), RF_OK);
	*x = malloc(T * s->d_model * sizeof(double));
	assert_non_null(*x);
	layer_random_input(9, T, s->d_model, *x);
}

/* Evaluate cfg; the verdicts must be as given and follow the prediction. */
static void expect(const MlaShape *s, const FoldConfig *cfg, bool sc, bool hd, bool rs,
		   const char *what)
{
	MlaLayer l;
	double *x;
	make(s, ROPE_INTERLEAVED, &l, &x, 12);
	EvalOptions eo = {.seq = 12, .precision = PREC_F64};
	InvReport rep;
	assert_int_equal(mla_evaluate(&l, x, &eo, cfg, &rep), RF_OK);
	bool want[3] = {sc, hd, rs};
	for (int i = 0; i < LEVEL_COUNT; i++) {
		if (rep.level[i].holds != want[i])
			fail_msg("%s: %s level %s (rel err %.3g)", what, level_name((LevelId)i),
				 rep.level[i].holds ? "holds" : "breaks", rep.level[i].max_rel_err);
		/* a guaranteed level must hold; a break must not be guaranteed */
		if (rep.level[i].guaranteed && !rep.level[i].holds)
			fail_msg("%s: %s level guaranteed but breaks", what,
				 level_name((LevelId)i));
	}
	report_done(&rep);
	mla_free(&l);
	free(x);
}

static FoldConfig drop(unsigned bits)
{
	FoldConfig c = fold_config_default();
	c.dropped = bits;
	c.seed = 3;
	return c;
}

static void test_default_holds(void **state)
{
	(void)state;
	FoldConfig c = drop(0);
	expect(&LORA, &c, true, true, true, "lora default");
	expect(&QPROJ, &c, true, true, true, "q_proj default");
	expect(&ONE, &c, true, true, true, "one head default");
}

/* The nope part takes any orthogonal A_h per head, the rope part one
 * commuting P: the default draws exactly that, so a break here would be
 * a wrong reading of the theorem. The toggles that stay free: */
static void test_free_relaxations(void **state)
{
	(void)state;
	FoldConfig c = drop(ASSUME_PER_HEAD);
	expect(&LORA, &c, true, true, true, "per-head dropped");
	c = drop(ASSUME_V_SAME);
	expect(&LORA, &c, true, true, true, "v-same dropped");
	expect(&QPROJ, &c, true, true, true, "v-same dropped, dv != dn");
	c = drop(ASSUME_BIAS);
	expect(&LORA, &c, true, true, true, "bias dropped (no biases)");
	/* one query head: gqa-consistent has nothing to relax */
	c = drop(ASSUME_GQA_CONSISTENT);
	expect(&ONE, &c, true, true, true, "gqa-consistent dropped, H = 1");
}

static void test_breaks(void **state)
{
	(void)state;
	unsigned bits[] = {ASSUME_COMMUTES, ASSUME_SHARED_QK, ASSUME_GQA_CONSISTENT,
			   ASSUME_ORTHOGONAL};
	const char *names[] = {"commutes", "shared-qk", "gqa-consistent", "orthogonal"};
	for (size_t i = 0; i < 4; i++) {
		FoldConfig c = drop(bits[i]);
		MlaLayer l;
		double *x;
		make(&LORA, ROPE_INTERLEAVED, &l, &x, 12);
		EvalOptions eo = {.seq = 12, .precision = PREC_F64};
		InvReport rep;
		assert_int_equal(mla_evaluate(&l, x, &eo, &c, &rep), RF_OK);
		if (rep.level[LEVEL_SCORE].holds || rep.level[LEVEL_SCORE].guaranteed)
			fail_msg("%s dropped: scores should break, unguaranteed", names[i]);
		if (rep.level[LEVEL_RESIDUAL].holds)
			fail_msg("%s dropped: the residual should break", names[i]);
		report_done(&rep);
		mla_free(&l);
		free(x);
	}
}

/* shared-qk dropped on the nope part alone breaks the scores: K's own
 * A'_h against Q's A_h, with P shared. Built by hand from a plan. */
static void test_nope_needs_shared_qk(void **state)
{
	(void)state;
	MlaLayer l, f;
	double *x;
	make(&LORA, ROPE_INTERLEAVED, &l, &x, 8);
	FoldConfig c = drop(0);
	MlaPlan p, p2;
	assert_int_equal(mla_plan_build(&l, &c, &p), RF_OK);
	c.seed = 77;
	assert_int_equal(mla_plan_build(&l, &c, &p2), RF_OK);
	size_t nn = p.nope * p.nope;
	memcpy(p.rk_nope, p2.rk_nope, p.n_heads * nn * sizeof(double));
	assert_int_equal(mla_fold_apply(&l, &p, &f), RF_OK);
	MlaSide a, b;
	assert_int_equal(mla_forward(&l, x, 8, &a), RF_OK);
	assert_int_equal(mla_forward(&f, x, 8, &b), RF_OK);
	size_t n = 8 * LORA.n_heads * LORA.v_head_dim;
	assert_gt(tu_max_diff(a.ctx, b.ctx, n), 1e-3);
	/* ... while a per-head A_h shared by q and k (and P on both) holds */
	mla_free(&f);
	mla_side_done(&b);
	memcpy(p.rk_nope, p.rq_nope, p.n_heads * nn * sizeof(double));
	assert_int_equal(mla_fold_apply(&l, &p, &f), RF_OK);
	assert_int_equal(mla_forward(&f, x, 8, &b), RF_OK);
	assert_le(tu_max_diff(a.y, b.y, 8 * LORA.d_model), 1e-12);
	mla_side_done(&a);
	mla_side_done(&b);
	mla_plan_free(&p);
	mla_plan_free(&p2);
	mla_free(&f);
	mla_free(&l);
	free(x);
}

static void test_blocks(void **state)
{
	(void)state;
	FoldConfig c = drop(0);
	c.permute_heads = true;
	expect(&LORA, &c, false, false, true, "permute-heads");
	c = drop(0);
	c.rotate = PART_Q | PART_K;
	expect(&LORA, &c, true, true, true, "rotate qk");
	c.rotate = PART_Q | PART_K | PART_V;
	expect(&LORA, &c, true, false, false, "rotate qkv");
	c.rotate = PART_Q;
	expect(&QPROJ, &c, false, false, false, "rotate q");
}

static void test_layout_mismatch(void **state)
{
	(void)state;
	FoldConfig c = drop(ASSUME_COMMUTES);
	c.kind = ROT_LAYOUT_MISMATCH;
	expect(&LORA, &c, false, false, false, "layout-mismatch kind");
	c = drop(0);
	c.layout_set = true;
	c.layout = ROPE_HALF;   /* the layer is interleaved */
	expect(&LORA, &c, false, false, false, "fold built for the other layout");
}

/* The findings name the cause: Q/K rotated apart for shared-qk. */
static void test_findings(void **state)
{
	(void)state;
	MlaLayer l;
	double *x;
	make(&LORA, ROPE_INTERLEAVED, &l, &x, 12);
	EvalOptions eo = {.seq = 12, .precision = PREC_F64};
	FoldConfig c = drop(ASSUME_SHARED_QK);
	InvReport rep;
	assert_int_equal(mla_evaluate(&l, x, &eo, &c, &rep), RF_OK);
	bool qk = false;
	for (size_t i = 0; i < rep.n_findings; i++)
		qk |= rep.findings[i].code == FIND_QK_ROTATED_APART;
	assert_true(qk);
	report_done(&rep);
	c = drop(ASSUME_COMMUTES);
	c.kind = ROT_PAIR_SWAP;
	assert_int_equal(mla_evaluate(&l, x, &eo, &c, &rep), RF_OK);
	bool mixed = false;
	for (size_t i = 0; i < rep.n_findings; i++)
		mixed |= rep.findings[i].code == FIND_PAIRS_MIXED;
	assert_true(mixed);
	assert_gt(rep.diag.comm_max, 1e-3);
	report_done(&rep);
	/* float32: the same finding, and a fold that holds holds at float's
	 * rounding (each side computed in float) */
	eo.precision = PREC_F32;
	assert_int_equal(mla_evaluate(&l, x, &eo, &c, &rep), RF_OK);
	assert_int_equal(rep.precision, PREC_F32);
	mixed = false;
	for (size_t i = 0; i < rep.n_findings; i++)
		mixed |= rep.findings[i].code == FIND_PAIRS_MIXED;
	assert_true(mixed);
	report_done(&rep);
	c = fold_config_default();
	assert_int_equal(mla_evaluate(&l, x, &eo, &c, &rep), RF_OK);
	for (int i = 0; i < LEVEL_COUNT; i++) {
		assert_true(rep.level[i].holds);
		assert_le(rep.level[i].max_rel_err, 1e-5);
		assert_gt(rep.level[i].max_rel_err, 1e-9);   /* float's rounding, not double's */
	}
	report_done(&rep);
	mla_free(&l);
	free(x);
}

static void test_mscale(void **state)
{
	(void)state;
	assert_close(mla_yarn_mscale(1.0, 0.707), 1.0, 0);
	assert_close(mla_yarn_mscale(40.0, 0.707), 0.1 * 0.707 * log(40.0) + 1.0, 1e-15);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_holds),
		cmocka_unit_test(test_free_relaxations),
		cmocka_unit_test(test_breaks),
		cmocka_unit_test(test_nope_needs_shared_qk),
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_layout_mismatch),
		cmocka_unit_test(test_findings),
		cmocka_unit_test(test_mscale),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
