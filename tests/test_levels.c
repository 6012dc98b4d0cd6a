#include "config.h"

#include "core/attention.h"
#include "core/diagnose.h"
#include "core/finding.h"
#include "core/levels.h"
#include "core/rope.h"
#include "core/rotation.h"
#include "core/session.h"
#include "tests/layer_fixtures.h"
#include "tests/testutil.h"
#include "tui/shared/findings_text.h"

static const LayerCase MHA = {48, 4, 4, 16, 16, 24, ROPE_HALF, false, PREC_F64};
static const LayerCase GQA = {64, 6, 2, 16, 16, 24, ROPE_INTERLEAVED, true, PREC_F64};
static const LayerCase PARTIAL = {40, 4, 2, 20, 12, 20, ROPE_HALF, true, PREC_F64};

/* The words of a report's explanation, for failure messages only: the
 * tests assert on findings (tests/test_findings_text.c holds the words). */
static const char *explain_text(const InvReport *rep)
{
	static char buf[FINDINGS_EXPLAIN_MAX];
	findings_explain(rep, buf, sizeof buf);
	return buf;
}

/* How many findings of code the explanation tells. */
static size_t count_findings(const InvReport *rep, FindingCode code)
{
	size_t n = 0;
	for (size_t i = 0; i < rep->n_findings; i++)
		n += rep->findings[i].code == code;
	return n;
}

/* The first finding of code; fails when there is none. */
static const Finding *expect_finding(const InvReport *rep, FindingCode code)
{
	for (size_t i = 0; i < rep->n_findings; i++)
		if (rep->findings[i].code == code)
			return &rep->findings[i];
	fail_msg("no %s finding in: %s", finding_code_name(code), explain_text(rep));
	return NULL;
}

/* Evaluate cfg on a fresh layer and input of the case (seed 17). */
static void run_case(const LayerCase *c, const FoldConfig *cfg, InvReport *rep)
{
	lf_evaluate(c, 17, cfg, 0, rep);
}

/* The verdicts must follow the predictions for a generic random layer. */
static void expect_levels(const InvReport *rep, bool s, bool h, bool r,
			  const char *what)
{
	bool want[3] = {s, h, r};
	for (int i = 0; i < LEVEL_COUNT; i++)
		if (rep->level[i].holds != want[i])
			fail_msg("%s: %s level %s (rel err %.3g), expected it to %s", what,
				 level_name((LevelId)i), rep->level[i].holds ? "holds" : "breaks",
				 rep->level[i].max_rel_err, want[i] ? "hold" : "break");
}

static void expect_guaranteed(const InvReport *rep, bool s, bool h, bool r,
			      const char *what)
{
	bool want[3] = {s, h, r};
	for (int i = 0; i < LEVEL_COUNT; i++)
		if (rep->level[i].guaranteed != want[i])
			fail_msg("%s: %s level guaranteed=%d, expected %d", what,
				 level_name((LevelId)i), rep->level[i].guaranteed, want[i]);
}

/* ---- everything held ------------------------------------------------------ */

static void check_all_hold(const LayerCase *c, const char *what)
{
	FoldConfig cfg = lf_config(PART_ALL, 0);
	InvReport rep;
	run_case(c, &cfg, &rep);
	expect_guaranteed(&rep, true, true, true, what);
	expect_levels(&rep, true, true, true, what);
	for (int i = 0; i < LEVEL_COUNT; i++)
		assert_le(rep.level[i].max_rel_err, 1e-12);
	assert_true(report_ok(&rep));
	report_done(&rep);
}

static void test_all_held_mha(void **state)
{
	(void)state;
	check_all_hold(&MHA, "MHA");
}

static void test_all_held_gqa_bias(void **state)
{
	(void)state;
	check_all_hold(&GQA, "GQA with biases");
}

static void test_all_held_partial_rotary(void **state)
{
	(void)state;
	check_all_hold(&PARTIAL, "partial rotary");
	LayerCase c = PARTIAL;
	c.layout = ROPE_INTERLEAVED;
	c.r = 2;
	check_all_hold(&c, "one rotary pair");
}

/* ---- each assumption dropped ------------------------------------------- */

/* For a GQA layer with biases every assumption matters. Expected verdicts
 * per dropped assumption (score, head, residual). */
static void test_each_assumption(void **state)
{
	(void)state;
	static const struct {
		unsigned drop;
		bool s, h, r;
	} rows[] = {
		{ASSUME_ORTHOGONAL, false, false, false},
		{ASSUME_COMMUTES, false, false, false},
		{ASSUME_SHARED_QK, false, false, false},
		{ASSUME_PER_HEAD, true, true, true},
		{ASSUME_GQA_CONSISTENT, false, false, false},
		{ASSUME_V_SAME, true, true, true},
		{ASSUME_BIAS, false, false, false},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		FoldConfig cfg = lf_config(PART_ALL, rows[i].drop);
		InvReport rep;
		char what[64];
		snprintf(what, sizeof what, "drop %s", fold_assumption_name(i));
		run_case(&GQA, &cfg, &rep);
		expect_guaranteed(&rep, rows[i].s, rows[i].h, rows[i].r, what);
		expect_levels(&rep, rows[i].s, rows[i].h, rows[i].r, what);
		report_done(&rep);
	}
}

/* Under MHA, gqa-consistent and bias (no biases) have no effect. */
static void test_assumptions_without_effect(void **state)
{
	(void)state;
	FoldConfig cfg = lf_config(PART_ALL, ASSUME_GQA_CONSISTENT | ASSUME_BIAS);
	InvReport rep;
	run_case(&MHA, &cfg, &rep);
	expect_guaranteed(&rep, true, true, true, "MHA, no bias");
	expect_levels(&rep, true, true, true, "MHA, no bias");
	report_done(&rep);
}

/* Every kind of non-commuting R breaks all three levels. */
static void test_every_kind_breaks(void **state)
{
	(void)state;
	for (int k = ROT_HAAR; k < ROT_KIND_COUNT; k++) {
		FoldConfig cfg = lf_config(PART_ALL, ASSUME_COMMUTES);
		cfg.kind = (RotKind)k;
		InvReport rep;
		run_case(&GQA, &cfg, &rep);
		expect_guaranteed(&rep, false, false, false, rotation_kind_name((RotKind)k));
		expect_levels(&rep, false, false, false, rotation_kind_name((RotKind)k));
		report_done(&rep);
	}
}

/* ---- the 16 rotate sets ------------------------------------------------ */

static void test_all_rotate_sets(void **state)
{
	(void)state;
	const LayerCase *cases[] = {&MHA, &GQA, &PARTIAL};
	for (size_t ci = 0; ci < 3; ci++)
		for (unsigned set = 0; set < 16; set++) {
			bool q = set & PART_Q, k = set & PART_K;
			bool v = set & PART_V, o = set & PART_O;
			bool S = q == k, VO = v == o;
			FoldConfig cfg = lf_config(set, 0);
			InvReport rep;
			char what[64], letters[8];
			fold_rotate_format(set, letters, sizeof letters);
			snprintf(what, sizeof what, "case %zu rotate %s", ci, letters);
			run_case(cases[ci], &cfg, &rep);
			expect_guaranteed(&rep, S, S && VO, S && VO, what);
			expect_levels(&rep, S, S && VO, S && VO, what);
			report_done(&rep);
		}
}

/* ---- facts worth showing -------------------------------------------------- */

/* A shared non-commuting orthogonal R leaves the diagonal m = n exact and
 * breaks every other offset. */
static void test_diagonal_survives(void **state)
{
	(void)state;
	FoldConfig cfg = lf_config(PART_ALL, ASSUME_COMMUTES);
	InvReport rep;
	run_case(&MHA, &cfg, &rep);
	assert_le(rep.by_offset[0], 1e-12 * rep.level[LEVEL_SCORE].ref_max);
	for (size_t off = 1; off < rep.seq; off++)
		assert_gt(rep.by_offset[off], 1e-6 * rep.level[LEVEL_SCORE].ref_max);
	assert_true(rep.level[LEVEL_SCORE].worst_m != rep.level[LEVEL_SCORE].worst_n);
	expect_finding(&rep, FIND_DIAGONAL_SURVIVES);
	const Finding *f = expect_finding(&rep, FIND_SCORES_WORST);
	assert_int_equal(f->m, rep.level[LEVEL_SCORE].worst_m);
	assert_int_equal(f->offset, f->m - f->n);
	f = expect_finding(&rep, FIND_PAIRS_MIXED);
	assert_true(f->pair_i < f->pair_j);
	report_done(&rep);
}

/* Permuting heads: head-wise comparisons break, the residual does not. */
static void test_permute_heads(void **state)
{
	(void)state;
	FoldConfig cfg = lf_config(PART_ALL, 0);
	cfg.permute_heads = true;
	InvReport rep;
	run_case(&GQA, &cfg, &rep);
	expect_guaranteed(&rep, false, false, true, "permute-heads");
	expect_levels(&rep, false, false, true, "permute-heads");
	assert_le(rep.level[LEVEL_RESIDUAL].max_rel_err, 1e-12);
	assert_true(rep.diag.heads_permuted);
	assert_true(expect_finding(&rep, FIND_HEADS_PERMUTED)->flag);  /* residual holds */
	assert_int_equal(count_findings(&rep, FIND_GUARANTEE_BROKEN), 0);
	assert_true(report_ok(&rep));
	report_done(&rep);
}

/* T = 1: only the diagonal is compared, so any orthogonal R holds at all
 * levels; the report says the level holds without a guarantee. */
static void test_single_token(void **state)
{
	(void)state;
	LayerCase c = GQA;
	c.T = 1;
	FoldConfig cfg = lf_config(PART_ALL, ASSUME_COMMUTES);
	InvReport rep;
	run_case(&c, &cfg, &rep);
	expect_guaranteed(&rep, false, false, false, "T=1");
	expect_levels(&rep, true, true, true, "T=1");
	assert_int_equal(count_findings(&rep, FIND_HOLDS_UNGUARANTEED), 3);
	for (size_t i = 0; i < rep.n_findings; i++)
		if (rep.findings[i].code == FIND_HOLDS_UNGUARANTEED)
			assert_int_equal(rep.findings[i].seq, 1);
	report_done(&rep);
}

/* Only roundoff is called exact: with a tolerance raised far above it, a
 * non-commuting fold holds at every level but is not called exact, and
 * the worst error quoted is the worst of the three levels. */
static void test_raised_tolerance_not_exact(void **state)
{
	(void)state;
	InvReport rep;
	FoldConfig exact = fold_config_default();
	run_case(&GQA, &exact, &rep);
	assert_int_equal(rep.findings[0].code, FIND_EXACT_REWRITE);
	assert_le(rep.findings[0].eps, 1e4);
	report_done(&rep);

	FoldConfig cfg = lf_config(PART_ALL, ASSUME_COMMUTES);
	lf_evaluate(&GQA, 17, &cfg, 100, &rep);
	expect_levels(&rep, true, true, true, "tol 100");
	assert_int_equal(count_findings(&rep, FIND_EXACT_REWRITE), 0);
	const Finding *f = expect_finding(&rep, FIND_HOLDS_WITHIN_TOL);
	double worst = rep.level[LEVEL_SCORE].max_rel_err;
	for (int i = 1; i < LEVEL_COUNT; i++)
		if (rep.level[i].max_rel_err > worst)
			worst = rep.level[i].max_rel_err;
	assert_true(f->err == worst);
	assert_gt(f->eps, 1e4);
	assert_close(f->tol, 100, 0);
	report_done(&rep);
}

/* V needs no commutation: a Haar R_v absorbed by O is exact. */
static void test_v_needs_no_commutation(void **state)
{
	(void)state;
	FoldConfig cfg = lf_config(PART_V | PART_O, ASSUME_V_SAME | ASSUME_COMMUTES);
	InvReport rep;
	run_case(&GQA, &cfg, &rep);
	expect_levels(&rep, true, true, true, "rotate vo, Haar");
	report_done(&rep);
}

/* Rotating V without O breaks the head level, and the explanation says O. */
static void test_o_must_absorb(void **state)
{
	(void)state;
	FoldConfig cfg = lf_config(PART_Q | PART_K | PART_V, 0);
	InvReport rep;
	run_case(&MHA, &cfg, &rep);
	expect_levels(&rep, true, false, false, "rotate qkv");
	/* said once, though head and residual both break for it */
	assert_int_equal(count_findings(&rep, FIND_V_WITHOUT_O), 1);
	const Finding *f = expect_finding(&rep, FIND_HEADS_WORST);
	assert_int_equal(f->head, rep.level[LEVEL_HEAD].worst_head);
	/* not guaranteed, so no bug: exit status 0 */
	assert_true(report_ok(&rep));
	report_done(&rep);
}

/* float32 shows its roundoff floor: far above float64's, within 1e-3. */
static void test_float32_floor(void **state)
{
	(void)state;
	LayerCase c = GQA;
	c.prec = PREC_F32;
	FoldConfig cfg = lf_config(PART_ALL, 0);
	InvReport rep;
	run_case(&c, &cfg, &rep);
	expect_levels(&rep, true, true, true, "f32");
	for (int i = 0; i < LEVEL_COUNT; i++) {
		assert_gt(rep.level[i].max_rel_err, 1e-9);
		assert_le(rep.level[i].max_rel_err, 1e-4);
		assert_le(rep.level[i].eps_units, 1000);
	}
	assert_close(rep.tol, 1e-3, 0);
	report_done(&rep);
}

/* A fold built for the other layout (a checkpoint whose --rope is
 * overridden) breaks every level, and is predicted to (its R_q, R_k do not
 * commute with the layer's RoPE pairs): no level is guaranteed, so no
 * "bug". Built for the layer's own, it holds, as guaranteed. */
static void test_fold_layout_override(void **state)
{
	(void)state;
	FoldConfig cfg = lf_config(PART_ALL, 0);
	cfg.layout_set = true;
	cfg.layout = GQA.layout == ROPE_HALF ? ROPE_INTERLEAVED : ROPE_HALF;
	InvReport rep;
	run_case(&GQA, &cfg, &rep);
	expect_levels(&rep, false, false, false, "fold for the other layout");
	expect_guaranteed(&rep, false, false, false, "fold for the other layout");
	assert_true(report_ok(&rep));
	assert_gt(rep.diag.comm_max, 0.1);
	const Finding *f = expect_finding(&rep, FIND_FOLD_LAYOUT);
	assert_int_equal(f->layout[0], cfg.layout);
	assert_int_equal(f->layout[1], GQA.layout);
	report_done(&rep);
	cfg.layout = GQA.layout;
	run_case(&GQA, &cfg, &rep);
	expect_levels(&rep, true, true, true, "fold for its own layout");
	expect_guaranteed(&rep, true, true, true, "fold for its own layout");
	report_done(&rep);
}

/* Reproducible: the same seed gives the same errors to the last bit. */
static void test_reproducible(void **state)
{
	(void)state;
	FoldConfig cfg = lf_config(PART_ALL, ASSUME_COMMUTES);
	InvReport a, b;
	run_case(&GQA, &cfg, &a);
	run_case(&GQA, &cfg, &b);
	for (int i = 0; i < LEVEL_COUNT; i++)
		assert_true(a.level[i].max_abs_err == b.level[i].max_abs_err);
	report_done(&a);
	report_done(&b);
}

/* The one-side forward pass agrees with the comparison's residual. */
static void test_forward_matches(void **state)
{
	(void)state;
	const LayerCase *c = &GQA;
	Layer l, f;
	lf_layer(c, 3, &l);
	FoldConfig cfg = lf_config(PART_ALL, 0);
	lf_fold(&l, &cfg, &f, NULL);
	size_t T = c->T, D = c->D;
	double *x = lf_input(c, 3);
	double *ya = malloc(T * D * sizeof(double)), *yb = malloc(T * D * sizeof(double));
	double *sa = malloc(T * T * sizeof(double)), *sb = malloc(T * T * sizeof(double));
	RopeTable tab;
	rope_table_init(&tab, &l.rope, T);
	attention_forward(&l, x, T, &tab, ya, 1, sa);
	attention_forward(&f, x, T, &tab, yb, 1, sb);
	assert_le(tu_max_diff(ya, yb, T * D), 1e-12);
	assert_le(tu_max_diff(sa, sb, T * T), 1e-12);
	/* the folded weights really changed */
	assert_gt(tu_max_diff(l.wq, f.wq, 10), 1e-3);
	free(x); free(ya); free(yb); free(sa); free(sb);
	rope_table_done(&tab);
	layer_free(&l);
	layer_free(&f);
}

/* ---- QK-norm ----------------------------------------------------------- */

/* Evaluate the default fold on the case's layer with per-head QK-norm
 * weights qn, kn (d each). */
static void run_with_norms(const LayerCase *c, const double *qn, const double *kn,
			   InvReport *rep)
{
	Layer l;
	lf_layer(c, 5, &l);
	lf_qk_norm(&l, true);
	memcpy(l.q_norm, qn, c->d * sizeof(double));
	memcpy(l.k_norm, kn, c->d * sizeof(double));
	FoldConfig cfg = lf_config(PART_ALL, 0);
	lf_evaluate_layer(&l, c, 5, &cfg, 0, rep);
	layer_free(&l);
}

static void run_qk_norm(bool split, InvReport *rep)
{
	LayerCase c = MHA;
	double qn[64], kn[64];
	Rng rng;
	rng_seed(&rng, 1, 9);
	for (size_t i = 0; i < c.d / 2; i++) {
		size_t a, b;
		rope_pair_coords(c.layout, c.r, i, &a, &b);
		qn[a] = qn[b] = 0.5 + rng_uniform(&rng);
		kn[a] = kn[b] = 0.5 + rng_uniform(&rng);
		if (split)
			qn[b] += 0.5;
	}
	run_with_norms(&c, qn, kn, rep);
}

static void test_qk_norm_pairs(void **state)
{
	(void)state;
	InvReport rep;
	run_qk_norm(false, &rep);
	expect_guaranteed(&rep, true, true, true, "QK-norm equal in pairs");
	expect_levels(&rep, true, true, true, "QK-norm equal in pairs");
	report_done(&rep);
	run_qk_norm(true, &rep);
	expect_guaranteed(&rep, false, false, false, "QK-norm split");
	expect_levels(&rep, false, false, false, "QK-norm split");
	assert_gt(rep.diag.qk_norm_pair_defect, 0.4);
	assert_true(expect_finding(&rep, FIND_QK_NORM_SPLITS_PAIR)->norm ==
		    rep.diag.qk_norm_pair_defect);
	report_done(&rep);
}

/* Partial rotary: a commuting R may turn the non-rotary coordinates by
 * any orthogonal block, so a QK-norm weight that varies there (while equal
 * within every pair) breaks the scores too, and the score level is not
 * guaranteed; a constant tail is fine. */
static void run_qk_norm_tail(bool vary, InvReport *rep)
{
	LayerCase c = PARTIAL;
	double qn[64], kn[64];
	for (size_t j = 0; j < c.d; j++)
		qn[j] = kn[j] = 1.0;
	for (size_t i = 0; i < c.r / 2; i++) {
		size_t a, b;
		rope_pair_coords(c.layout, c.r, i, &a, &b);
		qn[a] = qn[b] = 0.7 + 0.05 * (double)i;
	}
	if (vary)
		qn[c.d - 1] = 1.6;  /* a non-rotary coordinate */
	run_with_norms(&c, qn, kn, rep);
}

static void test_qk_norm_nonrotary(void **state)
{
	(void)state;
	InvReport rep;
	run_qk_norm_tail(false, &rep);
	expect_guaranteed(&rep, true, true, true, "QK-norm constant tail");
	expect_levels(&rep, true, true, true, "QK-norm constant tail");
	report_done(&rep);
	run_qk_norm_tail(true, &rep);
	expect_guaranteed(&rep, false, false, false, "QK-norm varying tail");
	expect_levels(&rep, false, false, false, "QK-norm varying tail");
	report_done(&rep);
}

/* ---- diagnostics ------------------------------------------------------- */

/* A rotation mixing only the two slowest pairs: the commutator is tiny and
 * the break offset is about 1 / |w_i - w_j|, far beyond T. */
static void test_slow_pair_mixing(void **state)
{
	(void)state;
	LayerCase c = MHA;
	Layer l;
	lf_layer(&c, 2, &l);
	size_t d = c.d, np = c.r / 2;
	FoldConfig cfg = lf_config(PART_ALL, ASSUME_COMMUTES);
	FoldPlan plan;
	assert_int_equal(fold_plan_build(&l, &cfg, &plan), RF_OK);
	/* R: identity except a 45-degree turn of pair np-2 into pair np-1,
	 * the same on both coordinates (so each block is conformal). */
	double *R = plan.rq;
	memset(R, 0, d * d * sizeof(double));
	for (size_t i = 0; i < d; i++)
		R[i * d + i] = 1;
	size_t a1, b1, a2, b2;
	rope_pair_coords(c.layout, c.r, np - 2, &a1, &b1);
	rope_pair_coords(c.layout, c.r, np - 1, &a2, &b2);
	double s = sqrt(0.5);
	R[a1 * d + a1] = s; R[a1 * d + a2] = -s;
	R[a2 * d + a1] = s; R[a2 * d + a2] = s;
	R[b1 * d + b1] = s; R[b1 * d + b2] = -s;
	R[b2 * d + b1] = s; R[b2 * d + b2] = s;
	for (size_t h = 1; h < c.H; h++)
		memcpy(plan.rq + h * d * d, R, d * d * sizeof(double));
	for (size_t g = 0; g < c.G; g++)
		memcpy(plan.rk + g * d * d, R, d * d * sizeof(double));
	InvReport rep;
	assert_int_equal(report_init(&rep, c.T, c.H, c.G, d, c.r), RF_OK);
	assert_int_equal(diagnose_plan(&l, &cfg, &plan, &rep), RF_OK);
	double f[8];
	rope_frequencies(&l.rope, f);
	double want = ceil(1.0 / fabs(f[np - 2] - f[np - 1]));
	assert_close((double)rep.diag.break_offset, want, 1.0);
	assert_gt((double)rep.diag.break_offset, 1000);
	assert_int_equal(rep.diag.mix_head, 0);
	assert_int_equal(rep.diag.mix_i, np - 2);
	assert_int_equal(rep.diag.mix_j, np - 1);
	assert_le(rep.diag.comm_q[0], 1e-3);
	assert_gt(rep.diag.comm_q[0], 1e-6);
	report_done(&rep);
	fold_plan_free(&plan);
	layer_free(&l);
}

/* The diagnostics name the right cause for each broken configuration. */
static void test_diagnostics_name_causes(void **state)
{
	(void)state;
	InvReport rep;
	FoldConfig cfg = lf_config(PART_ALL, ASSUME_SHARED_QK);
	run_case(&GQA, &cfg, &rep);
	assert_gt(rep.diag.qk_mismatch, 0.1);
	const Finding *f = expect_finding(&rep, FIND_QK_ROTATED_APART);
	assert_true(f->norm == rep.diag.qk_mismatch);
	assert_int_equal(f->head, rep.diag.qk_mismatch_head);
	report_done(&rep);

	cfg = lf_config(PART_ALL, ASSUME_GQA_CONSISTENT);
	run_case(&GQA, &cfg, &rep);
	assert_gt(rep.diag.gqa_mismatch, 0.1);
	f = expect_finding(&rep, FIND_GROUP_ROTATED_APART);
	assert_int_equal(f->head, rep.diag.gqa_mismatch_head);
	assert_true(f->head % (GQA.H / GQA.G) != 0);  /* not a group's first head */
	report_done(&rep);

	cfg = lf_config(PART_ALL, ASSUME_ORTHOGONAL);
	run_case(&GQA, &cfg, &rep);
	assert_gt(rep.diag.ortho_defect, 0.1);
	assert_gt(rep.diag.vo_mismatch, 0.1);
	f = expect_finding(&rep, FIND_R_NOT_ORTHOGONAL);
	assert_true(f->part == 'q' || f->part == 'k');
	assert_gt(f->norm, 0.1);
	report_done(&rep);

	cfg = lf_config(PART_ALL, ASSUME_BIAS);
	run_case(&GQA, &cfg, &rep);
	assert_true(rep.diag.qk_bias_unrotated);
	assert_true(rep.diag.v_bias_unrotated);
	expect_finding(&rep, FIND_QK_BIAS_UNROTATED);
	report_done(&rep);

	cfg = lf_config(PART_ALL, ASSUME_COMMUTES);
	cfg.kind = ROT_PAIR_REFLECT;
	run_case(&GQA, &cfg, &rep);
	f = expect_finding(&rep, FIND_PAIR_NOT_ROTATION);
	assert_true(f->pair_i < GQA.r / 2);  /* a reflection inside a rotary pair */
	report_done(&rep);

	cfg = lf_config(PART_ALL, 0);
	run_case(&GQA, &cfg, &rep);
	assert_le(rep.diag.comm_max, 1e-12);
	assert_le(rep.diag.ortho_defect, 1e-12);
	assert_le(rep.diag.vo_mismatch, 1e-12);
	assert_int_equal(rep.diag.break_offset, 0);
	report_done(&rep);
}

/* The prediction rules, straight from SPEC 2.2, over every rotate set and
 * every single dropped assumption on a GQA layer with biases. */
static void test_prediction_table(void **state)
{
	(void)state;
	Layer l;
	lf_layer(&GQA, 1, &l);
	for (unsigned set = 0; set < 16; set++)
		for (unsigned a = 0; a <= ASSUME_COUNT; a++)
			for (int perm = 0; perm < 2; perm++) {
				unsigned drop = a < ASSUME_COUNT ? 1u << a : 0;
				FoldConfig cfg = lf_config(set, drop);
				cfg.permute_heads = perm;
				bool q = set & PART_Q, k = set & PART_K;
				bool v = set & PART_V, o = set & PART_O;
				bool S = q == k;
				if (S && q)
					S = !(drop & (ASSUME_ORTHOGONAL | ASSUME_COMMUTES |
						      ASSUME_SHARED_QK | ASSUME_GQA_CONSISTENT |
						      ASSUME_BIAS));
				bool VO = v == o;
				if (VO && v)
					VO = !(drop & (ASSUME_ORTHOGONAL | ASSUME_BIAS));
				bool g[3];
				levels_predict(&l, &cfg, g);
				assert_int_equal(g[LEVEL_SCORE], S && !perm);
				assert_int_equal(g[LEVEL_HEAD], S && !perm && VO);
				assert_int_equal(g[LEVEL_RESIDUAL], S && VO);
			}
	layer_free(&l);
}

/* ---- overflow --------------------------------------------------------------
 * Values past the compute precision are a verdict of their own: never
 * "holds", never a NaN error; the exit status follows the guarantee. */

/* Evaluate cfg on the MHA case with W_q, W_k scaled by sqk and W_v by sv. */
static void run_scaled(Precision prec, double sqk, double sv, const FoldConfig *cfg,
		       InvReport *rep)
{
	LayerCase c = MHA;
	c.prec = prec;
	Layer l;
	lf_layer(&c, 17, &l);
	size_t nq = c.H * c.d * c.D, nk = c.G * c.d * c.D;
	for (size_t i = 0; i < nq; i++)
		l.wq[i] *= sqk;
	for (size_t i = 0; i < nk; i++) {
		l.wk[i] *= sqk;
		l.wv[i] *= sv;
	}
	lf_evaluate_layer(&l, &c, 17, cfg, 0, rep);
	layer_free(&l);
}

static void expect_overflows(const InvReport *rep, bool s, bool h, bool r,
			     const char *what)
{
	bool want[3] = {s, h, r};
	for (int i = 0; i < LEVEL_COUNT; i++) {
		const LevelResult *L = &rep->level[i];
		if ((L->overflow != 0) != want[i] || (want[i] && (L->holds || !isinf(L->max_rel_err))))
			fail_msg("%s: %s level overflow %u holds %d rel err %.3g, expected "
				 "overflow %d", what, level_name((LevelId)i), L->overflow,
				 L->holds, L->max_rel_err, want[i]);
	}
}

static void test_overflow_verdicts(void **state)
{
	(void)state;
	FoldConfig all = lf_config(PART_ALL, 0);
	FoldConfig nc = lf_config(PART_ALL, ASSUME_COMMUTES);
	InvReport rep;
	/* scores near 1e40: past float32 on both sides, everything after
	 * them too; a guaranteed level affected: not ok */
	run_scaled(PREC_F32, 1e20, 1, &all, &rep);
	expect_overflows(&rep, true, true, true, "f32 scores");
	assert_int_equal(rep.level[LEVEL_SCORE].overflow, OVERFLOW_ORIGINAL | OVERFLOW_FOLDED);
	assert_false(report_ok(&rep));
	/* told: where first, which levels follow, and that nothing is confirmed */
	assert_int_equal(rep.n_findings, 3);
	const Finding *f = &rep.findings[0];
	assert_int_equal(f->code, FIND_OVERFLOW);
	assert_int_equal(f->level, LEVEL_SCORE);
	assert_int_equal(f->side, OVERFLOW_ORIGINAL | OVERFLOW_FOLDED);
	assert_int_equal(f->precision, PREC_F32);
	assert_int_equal(rep.findings[1].code, FIND_OVERFLOW_ALSO);
	assert_int_equal(rep.findings[1].overflows, 1u << LEVEL_HEAD | 1u << LEVEL_RESIDUAL);
	assert_int_equal(rep.findings[2].code, FIND_OVERFLOW_UNCONFIRMED);
	assert_true(rep.findings[2].flag);  /* a guaranteed level */
	report_done(&rep);
	/* the same layer in float64: exact */
	run_scaled(PREC_F64, 1e20, 1, &all, &rep);
	expect_overflows(&rep, false, false, false, "f64 scores");
	expect_levels(&rep, true, true, true, "f64 scores");
	report_done(&rep);
	/* nothing guaranteed: an overflow, but no failure */
	run_scaled(PREC_F32, 1e20, 1, &nc, &rep);
	expect_guaranteed(&rep, false, false, false, "f32 scores, commutes dropped");
	expect_overflows(&rep, true, true, true, "f32 scores, commutes dropped");
	assert_true(report_ok(&rep));
	assert_false(expect_finding(&rep, FIND_OVERFLOW_UNCONFIRMED)->flag);
	report_done(&rep);
	/* v past float32: the scores hold, the outputs overflow */
	run_scaled(PREC_F32, 1, 1e39, &all, &rep);
	expect_overflows(&rep, false, true, true, "f32 values");
	expect_levels(&rep, true, false, false, "f32 values");
	assert_false(report_ok(&rep));
	f = expect_finding(&rep, FIND_VERDICTS);
	assert_int_equal(f->levels, 1u << LEVEL_SCORE);
	assert_int_equal(f->overflows, 1u << LEVEL_HEAD | 1u << LEVEL_RESIDUAL);
	assert_int_equal(expect_finding(&rep, FIND_OVERFLOW)->level, LEVEL_HEAD);
	assert_int_equal(expect_finding(&rep, FIND_OVERFLOW_ALSO)->overflows,
			 1u << LEVEL_RESIDUAL);
	report_done(&rep);
	/* float64 has its limit too */
	run_scaled(PREC_F64, 1e160, 1, &all, &rep);
	expect_overflows(&rep, true, true, true, "f64 scores near 1e320");
	assert_false(report_ok(&rep));
	report_done(&rep);
}

/* levels_judge on raw errors: an infinite error is an overflow (of the
 * difference, when the engine named no side), whatever the tolerance. */
static void test_overflow_judged(void **state)
{
	(void)state;
	Layer l;
	lf_layer(&MHA, 1, &l);
	InvReport rep;
	assert_int_equal(report_init(&rep, 4, MHA.H, MHA.G, MHA.d, MHA.r), RF_OK);
	rep.level[LEVEL_SCORE].max_abs_err = INFINITY;
	rep.level[LEVEL_SCORE].ref_max = 1;
	rep.level[LEVEL_HEAD].max_abs_err = INFINITY;
	rep.level[LEVEL_HEAD].ref_max = INFINITY;
	rep.level[LEVEL_HEAD].overflow = OVERFLOW_FOLDED;
	rep.level[LEVEL_RESIDUAL].max_abs_err = 1e-300;
	rep.level[LEVEL_RESIDUAL].ref_max = 1;
	FoldConfig cfg = lf_config(PART_ALL, 0);
	levels_judge(&rep, &l, &cfg, 1e6);
	assert_int_equal(rep.level[LEVEL_SCORE].overflow, OVERFLOW_DIFFERENCE);
	assert_int_equal(rep.level[LEVEL_HEAD].overflow, OVERFLOW_FOLDED);
	assert_int_equal(rep.level[LEVEL_RESIDUAL].overflow, 0);
	for (int i = 0; i < 2; i++) {
		assert_false(rep.level[i].holds);
		assert_true(isinf(rep.level[i].max_rel_err) && isinf(rep.level[i].eps_units));
	}
	assert_true(rep.level[LEVEL_RESIDUAL].holds);
	assert_false(report_ok(&rep));
	report_done(&rep);
	layer_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_held_mha),
		cmocka_unit_test(test_all_held_gqa_bias),
		cmocka_unit_test(test_all_held_partial_rotary),
		cmocka_unit_test(test_each_assumption),
		cmocka_unit_test(test_assumptions_without_effect),
		cmocka_unit_test(test_every_kind_breaks),
		cmocka_unit_test(test_all_rotate_sets),
		cmocka_unit_test(test_diagonal_survives),
		cmocka_unit_test(test_permute_heads),
		cmocka_unit_test(test_single_token),
		cmocka_unit_test(test_raised_tolerance_not_exact),
		cmocka_unit_test(test_v_needs_no_commutation),
		cmocka_unit_test(test_o_must_absorb),
		cmocka_unit_test(test_float32_floor),
		cmocka_unit_test(test_fold_layout_override),
		cmocka_unit_test(test_reproducible),
		cmocka_unit_test(test_forward_matches),
		cmocka_unit_test(test_qk_norm_pairs),
		cmocka_unit_test(test_qk_norm_nonrotary),
		cmocka_unit_test(test_slow_pair_mixing),
		cmocka_unit_test(test_diagnostics_name_causes),
		cmocka_unit_test(test_prediction_table),
		cmocka_unit_test(test_overflow_verdicts),
		cmocka_unit_test(test_overflow_judged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
