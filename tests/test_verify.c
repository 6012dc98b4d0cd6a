#include "config.h"

#include "tests/testutil.h"

#include "core/dtype.h"
#include "core/fold.h"
#include "core/fold_inverse.h"
#include "core/layout_perm.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "core/rope.h"
#include "core/rotation_desc.h"
#include "core/verify.h"
#include "tests/layer_fixtures.h"
#include "tui/shared/findings_text.h"

/* ---- helpers ------------------------------------------------------------ */

/* The words of a break, for failure messages only: the tests assert on
 * codes and numbers (tests/test_findings_text.c holds the words). */
static const char *why_text(const VerifyVerdict *v)
{
	static char buf[FINDINGS_WHY_MAX];
	findings_verify_why(v, buf, sizeof buf);
	return buf;
}

/* The shapes under test (T and precision unused: verify compares weights,
 * and confirm() below takes its own 24 tokens). */
static const LayerCase shapes[] = {
	{32, 4, 4, 8, 8, 24, ROPE_HALF, false, PREC_F64},         /* MHA */
	{48, 8, 4, 16, 16, 24, ROPE_INTERLEAVED, true, PREC_F64}, /* GQA, biases */
	{40, 6, 2, 12, 8, 24, ROPE_HALF, true, PREC_F64},         /* GQA, partial rotary */
	{32, 4, 1, 8, 8, 24, ROPE_INTERLEAVED, false, PREC_F64},  /* MQA */
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

/* x and y hold the same n doubles bit for bit (both NULL or neither). */
static bool same_doubles(const double *x, const double *y, size_t n)
{
	return (!x && !y) || (x && y && memcmp(x, y, n * sizeof *x) == 0);
}

/* Whether two verdicts on the same pair agree on everything a reader of
 * them sees: the relation, the break with its numbers, the worst error
 * and the recovered relation. */
static bool same_verdict(const VerifyVerdict *x, const VerifyVerdict *y, const Layer *a)
{
	const Finding *f = &x->brk, *g = &y->brk;
	size_t H = a->shape.n_heads, G = a->shape.n_kv_heads, dd = a->shape.head_dim * a->shape.head_dim;
	bool plans = x->plan.rq && y->plan.rq;   /* both or neither must hold one */
	return x->equivalent == y->equivalent && x->relation == y->relation &&
	       x->rotated == y->rotated && x->heads_permuted == y->heads_permuted &&
	       x->layout_converted == y->layout_converted && x->rounded == y->rounded &&
	       x->vo_not_orthogonal == y->vo_not_orthogonal && x->max_err == y->max_err &&
	       x->why == y->why && f->code == g->code && f->level == g->level &&
	       f->group == g->group && f->head == g->head && f->other_head == g->other_head &&
	       !strcmp(f->tensor, g->tensor) && f->what == g->what && same_doubles(&f->err, &g->err, 1) &&
	       same_doubles(&f->tol, &g->tol, 1) && same_doubles(&f->norm, &g->norm, 1) &&
	       same_doubles(f->value, g->value, 2) && f->part == g->part && f->flag == g->flag &&
	       !memcmp(&x->comm, &y->comm, sizeof x->comm) &&
	       !x->plan.rq == !y->plan.rq && (!plans || (same_doubles(x->plan.rq, y->plan.rq, H * dd) &&
			   same_doubles(x->plan.rk, y->plan.rk, G * dd) &&
			   same_doubles(x->plan.rv, y->plan.rv, G * dd) &&
			   same_doubles(x->plan.ro, y->plan.ro, H * dd) &&
			   !memcmp(x->plan.perm, y->plan.perm, G * sizeof *x->plan.perm) &&
			   !memcmp(x->commuting, y->commuting, G * sizeof *x->commuting) &&
			   same_doubles(x->angles, y->angles, G * x->npairs)));
}

/* verify_layers on (a, b) with o, into v; then again with the kv groups
 * decided by 2, 3 and 8 workers, each of which must give v exactly
 * (core/verify.h: the verdict is the same for any count). BLAS is
 * single-threaded throughout, as the option asks. */
static void verify_opts(const Layer *a, const Layer *b, const VerifyOptions *o, VerifyVerdict *v)
{
	int saved = parallel_blas_single();
	VerifyOptions one = *o;
	one.threads = 1;
	assert_int_equal(verify_layers(a, b, &one, v), RF_OK);
	static const size_t counts[] = {2, 3, 8};
	for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
		VerifyOptions many = *o;
		many.threads = counts[k];
		VerifyVerdict w;
		assert_int_equal(verify_layers(a, b, &many, &w), RF_OK);
		if (!same_verdict(v, &w, a))
			fail_msg("%zu workers: equivalent=%d why=%s group=%zu head=%zu max_err=%.17g; "
				 "one: equivalent=%d why=%s group=%zu head=%zu max_err=%.17g",
				 counts[k], w.equivalent, verify_why_name(w.why), w.brk.group,
				 w.brk.head, w.max_err, v->equivalent, verify_why_name(v->why),
				 v->brk.group, v->brk.head, v->max_err);
		verify_verdict_free(&w);
	}
	parallel_blas_restore(saved);
}

static void verify(const Layer *a, const Layer *b, double u, VerifyVerdict *v)
{
	VerifyOptions o = {u, 0};
	verify_opts(a, b, &o, v);
}

static void assert_not_equivalent(const VerifyVerdict *v, VerifyWhy why)
{
	if (v->equivalent || v->why != why)
		fail_msg("expected break %s, got equivalent=%d why=%s: %s",
			 verify_why_name(why), v->equivalent, verify_why_name(v->why),
			 why_text(v));
}

/* The break's finding is code (what the words are chosen by). */
static void assert_finding(const VerifyVerdict *v, FindingCode code)
{
	if (v->brk.code != code)
		fail_msg("expected finding %s, got %s: %s", finding_code_name(code),
			 finding_code_name(v->brk.code), why_text(v));
}

/* Release a verdict and the two layers it compared. */
static void pair_done(VerifyVerdict *v, Layer *a, Layer *b)
{
	verify_verdict_free(v);
	layer_free(a);
	layer_free(b);
}

/* The confirmation on 24 seeded tokens, with keep (NULL: none). */
static void confirm_keep(const Layer *a, const Layer *b, VerifyVerdict *v,
			 VerifyScratch *keep, InvReport *rep)
{
	size_t T = 24;
	double *x = malloc(T * a->shape.d_model * sizeof(double));
	layer_random_input(5, T, a->shape.d_model, x);
	assert_int_equal(verify_confirm(a, b, v, x, T, PREC_F64, ATTN_KERNEL_AUTO, 0, 0,
					keep, rep), RF_OK);
	free(x);
}

static void confirm(const Layer *a, const Layer *b, VerifyVerdict *v,
		    InvReport *rep)
{
	confirm_keep(a, b, v, NULL, rep);
}

/* Two confirmations gave the same levels and tolerance, bit for bit. */
static void assert_same_confirm(const InvReport *x, double tx, const InvReport *y, double ty)
{
	assert_true(tx == ty);
	for (int l = 0; l < LEVEL_COUNT; l++) {
		assert_true(x->level[l].max_abs_err == y->level[l].max_abs_err);
		assert_true(x->level[l].ref_max == y->level[l].ref_max);
		assert_int_equal(x->level[l].holds, y->level[l].holds);
	}
}

/* ---- equivalent folds --------------------------------------------------- */

static void test_identical(void **state)
{
	(void)state;
	Layer a, b;
	lf_layer(&shapes[1], 1, &a);
	assert_int_equal(layer_copy(&b, &a), RF_OK);
	VerifyVerdict v;
	verify(&a, &b, 0, &v);
	assert_true(v.equivalent);
	assert_int_equal(v.relation, VERIFY_REL_IDENTICAL);
	assert_false(v.rotated || v.heads_permuted || v.rounded || v.layout_converted);
	assert_int_equal(v.brk.code, FIND_NONE);
	pair_done(&v, &a, &b);
}

static void test_commuting_fold_recovered(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSHAPES; s++) {
		Layer a, b;
		FoldPlan plan;
		lf_layer(&shapes[s], 10 + s, &a);
		FoldConfig cfg = fold_config_default();
		cfg.seed = 3 + s;
		lf_fold(&a, &cfg, &b, &plan);
		VerifyVerdict v;
		verify(&a, &b, 0, &v);
		if (!v.equivalent)
			fail_msg("shape %zu: %s", s, why_text(&v));
		assert_int_equal(v.relation, VERIFY_REL_COMMUTING_FOLD);
		assert_true(v.rotated);
		assert_false(v.heads_permuted || v.layout_converted || v.vo_not_orthogonal);
		size_t d = a.shape.head_dim, dd = d * d;
		for (size_t g = 0; g < a.shape.n_kv_heads; g++) {
			assert_true(v.commuting[g]);
			assert_le(tu_max_diff(v.plan.rk + g * dd, plan.rk + g * dd, dd), 1e-10);
			assert_le(tu_max_diff(v.plan.rv + g * dd, plan.rv + g * dd, dd), 1e-10);
			/* Angles as the plan's commuting rotation has them. */
			for (size_t i = 0; i < v.npairs; i++) {
				double want = rotation_pair_angle(plan.rk + g * dd, a.rope.layout,
								  a.rope.rotary_dim, d, i);
				assert_close(v.angles[g * v.npairs + i], want, 1e-10);
			}
		}
		for (size_t h = 0; h < a.shape.n_heads; h++)
			assert_le(tu_max_diff(v.plan.rq + h * dd, plan.rq + h * dd, dd), 1e-10);
		InvReport rep;
		confirm(&a, &b, &v, &rep);
		assert_true(report_ok(&rep));
		for (int lv = 0; lv < LEVEL_COUNT; lv++)
			assert_true(rep.level[lv].holds);
		report_done(&rep);
		fold_plan_free(&plan);
		pair_done(&v, &a, &b);
	}
}

static void test_permute_heads(void **state)
{
	(void)state;
	Layer a, b;
	FoldPlan plan;
	lf_layer(&shapes[1], 2, &a);
	FoldConfig cfg = fold_config_default();
	cfg.permute_heads = true;
	lf_fold(&a, &cfg, &b, &plan);
	VerifyVerdict v;
	verify(&a, &b, 0, &v);
	if (!v.equivalent)
		fail_msg("%s", why_text(&v));
	assert_true(v.heads_permuted);
	assert_int_equal(v.relation, VERIFY_REL_HEADS_PERMUTED);
	for (size_t g = 0; g < a.shape.n_kv_heads; g++)
		assert_int_equal(v.plan.perm[g], plan.perm[g]);
	assert_true(v.rotated);  /* a commuting fold with its groups moved */
	const size_t moved[4] = {1, 2, 3, 0};
	for (size_t g = 0; g < 4; g++)
		assert_int_equal(v.plan.perm[g], moved[g]);
	/* The recovered plan reproduces B. */
	Layer c;
	assert_int_equal(fold_apply(&a, &v.plan, &c), RF_OK);
	assert_le(tu_max_diff(c.wo, b.wo, a.shape.d_model * a.shape.n_heads * a.shape.head_dim), 1e-12);
	layer_free(&c);
	InvReport rep;
	confirm(&a, &b, &v, &rep);
	assert_true(rep.level[LEVEL_RESIDUAL].holds);
	assert_false(rep.level[LEVEL_HEAD].holds);  /* heads moved */
	assert_true(report_ok(&rep));
	report_done(&rep);
	fold_plan_free(&plan);
	pair_done(&v, &a, &b);
}

/* ---- dropped assumptions ------------------------------------------------ */

static void run_drop(const LayerCase *s, unsigned drop, RotKind kind, unsigned rotate,
		     VerifyVerdict *v, Layer *a, Layer *b)
{
	lf_layer(s, 7, a);
	FoldConfig cfg = fold_config_default();
	cfg.dropped = drop;
	cfg.kind = kind;
	cfg.rotate = rotate;
	lf_fold(a, &cfg, b, NULL);
	verify(a, b, 0, v);
}

static void test_drop_commutes(void **state)
{
	(void)state;
	Layer a, b;
	VerifyVerdict v;
	for (size_t s = 0; s < NSHAPES; s++) {
		run_drop(&shapes[s], ASSUME_COMMUTES, ROT_HAAR, PART_ALL, &v, &a, &b);
		assert_not_equivalent(&v, VERIFY_WHY_MIXES_PAIRS);
		assert_finding(&v, FIND_K_MIXES_PAIRS);
		assert_int_equal(v.brk.level, LEVEL_SCORE);
		assert_int_equal(v.brk.group, 0);
		assert_int_equal(v.brk.head, 0);
		assert_string_equal(v.brk.tensor, "W_k");
		assert_true(v.comm.n_mixed > 0);
		InvReport rep;
		confirm(&a, &b, &v, &rep);
		assert_false(rep.level[LEVEL_SCORE].holds);
		report_done(&rep);
		pair_done(&v, &a, &b);
	}
	/* pair-swap mixes pair 0 with pair 1 (and 2 with 3, ...). */
	run_drop(&shapes[1], ASSUME_COMMUTES, ROT_PAIR_SWAP, PART_ALL, &v, &a, &b);
	assert_not_equivalent(&v, VERIFY_WHY_MIXES_PAIRS);
	bool found01 = false;
	for (size_t k = 0; k < v.comm.n_mixed; k++)
		if (v.comm.mixed[k][0] == 0 && v.comm.mixed[k][1] == 1)
			found01 = true;
	assert_true(found01);
	assert_int_equal(v.comm.n_mixed_total, 4);  /* 8 pairs: (0,1) .. (6,7) */
	/* the pairs are named with their frequencies: w_0 = theta^0 = 1 */
	assert_int_equal(v.npairs, 8);
	assert_close(v.freqs[0], 1.0, 0);
	assert_close(v.freqs[1], pow(10000.0, -2.0 / 16), 1e-15);
	pair_done(&v, &a, &b);
	/* pair-reflect: a reflection in every pair. */
	run_drop(&shapes[0], ASSUME_COMMUTES, ROT_PAIR_REFLECT, PART_ALL, &v, &a, &b);
	assert_not_equivalent(&v, VERIFY_WHY_REFLECTION);
	assert_finding(&v, FIND_K_REFLECTS);
	assert_int_equal(v.comm.n_reflect_total, 4);
	assert_int_equal(v.comm.n_mixed, 0);
	assert_int_equal(v.comm.reflect[0], 0);
	pair_done(&v, &a, &b);
	/* layout-mismatch: commuting, in the other layout. */
	run_drop(&shapes[0], ASSUME_COMMUTES, ROT_LAYOUT_MISMATCH, PART_ALL, &v, &a, &b);
	assert_not_equivalent(&v, VERIFY_WHY_MIXES_PAIRS);
	assert_finding(&v, FIND_K_MIXES_PAIRS);
	assert_true(v.brk.flag);  /* it would commute in the other layout */
	assert_int_equal(v.rope_a.layout, ROPE_HALF);
	pair_done(&v, &a, &b);
}

static void test_drop_others(void **state)
{
	(void)state;
	Layer a, b;
	VerifyVerdict v;
	/* shared-qk: Q and K folded differently. */
	run_drop(&shapes[1], ASSUME_SHARED_QK, ROT_HAAR, PART_ALL, &v, &a, &b);
	assert_not_equivalent(&v, VERIFY_WHY_QK_DIFFER);
	assert_int_equal(v.brk.head, 0);
	assert_string_equal(v.brk.tensor, "W_q");
	assert_finding(&v, FIND_QK_DIFFER);
	assert_gt(v.brk.norm, 0.1);  /* ||R_q - R_k||: independent Haar draws */
	pair_done(&v, &a, &b);
	/* gqa-consistent: the second query head of group 0 differs. */
	run_drop(&shapes[1], ASSUME_GQA_CONSISTENT, ROT_HAAR, PART_ALL, &v, &a, &b);
	assert_not_equivalent(&v, VERIFY_WHY_GQA_DIFFER);
	assert_finding(&v, FIND_Q_GROUP_DIFFERS);
	assert_int_equal(v.brk.head, 1);
	assert_int_equal(v.brk.other_head, 0);
	assert_int_equal(v.brk.group, 0);
	pair_done(&v, &a, &b);
	/* rotate qkv without o. */
	run_drop(&shapes[2], 0, ROT_HAAR, PART_Q | PART_K | PART_V, &v, &a, &b);
	assert_not_equivalent(&v, VERIFY_WHY_O_NOT_ABSORBING);
	assert_int_equal(v.brk.level, LEVEL_HEAD);
	assert_int_equal(v.brk.head, 0);
	assert_finding(&v, FIND_O_UNCHANGED);  /* W_o as it was, W_v turned */
	InvReport rep;
	confirm(&a, &b, &v, &rep);
	assert_true(rep.level[LEVEL_SCORE].holds);
	assert_false(rep.level[LEVEL_HEAD].holds);
	report_done(&rep);
	pair_done(&v, &a, &b);
	/* o without v: O absorbs a rotation V does not carry. */
	run_drop(&shapes[0], 0, ROT_HAAR, PART_Q | PART_K | PART_O, &v, &a, &b);
	assert_not_equivalent(&v, VERIFY_WHY_O_NOT_ABSORBING);
	assert_finding(&v, FIND_O_OTHER_ROTATION);
	assert_gt(v.brk.norm, 0.1);   /* ||R_o - R_v||, R_v = I */
	assert_false(v.brk.flag);     /* V's map (I) is orthogonal */
	pair_done(&v, &a, &b);
	/* bias left behind. */
	run_drop(&shapes[1], ASSUME_BIAS, ROT_HAAR, PART_ALL, &v, &a, &b);
	assert_not_equivalent(&v, VERIFY_WHY_BIAS);
	assert_finding(&v, FIND_BK_LEFT);
	assert_string_equal(v.brk.tensor, "b_k");
	pair_done(&v, &a, &b);
	/* not orthogonal. */
	run_drop(&shapes[0], ASSUME_ORTHOGONAL, ROT_HAAR, PART_ALL, &v, &a, &b);
	assert_not_equivalent(&v, VERIFY_WHY_NOT_ORTHOGONAL);
	assert_finding(&v, FIND_K_NOT_ORTHOGONAL);
	assert_gt(v.brk.norm, 1e-3);  /* ||M^T M - I|| of the scaled rotation */
	pair_done(&v, &a, &b);
	/* v-same dropped is still an exact fold (V needs no commutation). */
	run_drop(&shapes[1], ASSUME_V_SAME | ASSUME_PER_HEAD, ROT_HAAR, PART_ALL, &v, &a, &b);
	if (!v.equivalent)
		fail_msg("%s", why_text(&v));
	pair_done(&v, &a, &b);
}

/* ---- tampering ---------------------------------------------------------- */

static void test_tamper(void **state)
{
	(void)state;
	const LayerCase *s = &shapes[1];  /* H 8, G 4, d 16, D 48 */
	size_t D = s->D, d = s->d, Hd = s->H * s->d;
	struct { const char *tensor; size_t head, group; LevelId lv; FindingCode code; } cases[] = {
		{"W_q", 5, 2, LEVEL_SCORE, FIND_Q_UNEXPLAINED},
		{"W_k", 2, 1, LEVEL_SCORE, FIND_K_UNEXPLAINED},
		{"W_v", 6, 3, LEVEL_HEAD, FIND_V_UNEXPLAINED},
		{"W_o", 3, 1, LEVEL_HEAD, FIND_O_UNEXPLAINED},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		Layer a, b;
		lf_layer(s, 4, &a);
		FoldConfig cfg = fold_config_default();
		lf_fold(&a, &cfg, &b, NULL);
		const char *t = cases[i].tensor;
		if (!strcmp(t, "W_q"))
			b.wq[(cases[i].head * d + 3) * D + 7] += 1e-3;
		else if (!strcmp(t, "W_k"))
			b.wk[(cases[i].group * d + 1) * D + 2] += 1e-3;
		else if (!strcmp(t, "W_v"))
			b.wv[(cases[i].group * d + 5) * D + 9] += 1e-3;
		else
			b.wo[11 * Hd + cases[i].head * d + 4] += 1e-3;
		VerifyVerdict v;
		verify(&a, &b, 0, &v);
		assert_not_equivalent(&v, VERIFY_WHY_UNEXPLAINED);
		assert_string_equal(v.brk.tensor, t);
		assert_int_equal(v.brk.group, cases[i].group);
		assert_int_equal(v.brk.level, cases[i].lv);
		if (!strcmp(t, "W_q") || !strcmp(t, "W_o"))
			assert_int_equal(v.brk.head, cases[i].head);
		assert_finding(&v, cases[i].code);
		assert_close(v.brk.tol, v.tol, 0);
		assert_gt(v.brk.err, v.tol);
		pair_done(&v, &a, &b);
	}
	/* b_o and a shape change. */
	Layer a, b;
	lf_layer(&shapes[1], 4, &a);
	assert_int_equal(layer_copy(&b, &a), RF_OK);
	b.bo[3] += 0.5;
	VerifyVerdict v;
	verify(&a, &b, 0, &v);
	assert_not_equivalent(&v, VERIFY_WHY_UNEXPLAINED);
	assert_string_equal(v.brk.tensor, "b_o");
	assert_int_equal(v.brk.level, LEVEL_RESIDUAL);
	assert_finding(&v, FIND_UNTOUCHED_DIFFERS);
	assert_int_equal(v.brk.group, FINDING_NONE);
	assert_int_equal(v.brk.head, FINDING_NONE);
	verify_verdict_free(&v);
	layer_free(&b);
	Layer c;
	lf_layer(&shapes[0], 4, &c);
	verify(&a, &c, 0, &v);
	assert_not_equivalent(&v, VERIFY_WHY_SHAPE);
	assert_finding(&v, FIND_SHAPES_DIFFER);
	assert_int_equal(v.shape_a.d_model, 48);
	assert_int_equal(v.shape_b.d_model, 32);
	verify_verdict_free(&v);
	layer_free(&a);
	layer_free(&c);
}

/* The layer-wide breaks and the ones left behind by a hand-made B. */
static void test_more_breaks(void **state)
{
	(void)state;
	const LayerCase *s = &shapes[1];  /* H 8, G 4, d 16, biases */
	Layer a, b;
	VerifyVerdict v;
	lf_layer(s, 6, &a);
	/* b_q kept while W_q turned: the first query head of group 0 */
	FoldConfig cfg = fold_config_default();
	lf_fold(&a, &cfg, &b, NULL);
	memcpy(b.bq, a.bq, s->H * s->d * sizeof(double));
	verify(&a, &b, 0, &v);
	assert_not_equivalent(&v, VERIFY_WHY_BIAS);
	assert_finding(&v, FIND_BQ_LEFT);
	assert_int_equal(v.brk.head, 0);
	assert_string_equal(v.brk.tensor, "b_q");
	verify_verdict_free(&v);
	layer_free(&b);
	/* b_o in only one of the two */
	assert_int_equal(layer_copy(&b, &a), RF_OK);
	free(b.bo);
	b.bo = NULL;
	verify(&a, &b, 0, &v);
	assert_not_equivalent(&v, VERIFY_WHY_UNEXPLAINED);
	assert_finding(&v, FIND_ONE_SIDED);
	assert_string_equal(v.brk.tensor, "b_o");
	assert_int_equal(v.brk.level, LEVEL_RESIDUAL);
	verify_verdict_free(&v);
	layer_free(&b);
	/* a fold with another score scale: 1/sqrt(d) = 0.25 against 0.5 */
	lf_fold(&a, &cfg, &b, NULL);
	b.score_scale = 0.5;
	verify(&a, &b, 0, &v);
	assert_not_equivalent(&v, VERIFY_WHY_SHAPE);
	assert_finding(&v, FIND_SCORE_SCALES_DIFFER);
	assert_close(v.brk.value[0], 0.25, 0);
	assert_close(v.brk.value[1], 0.5, 0);
	verify_verdict_free(&v);
	layer_free(&b);
	/* the same weights under another scale are not identical */
	assert_int_equal(layer_copy(&b, &a), RF_OK);
	b.score_scale = 0.5;
	verify(&a, &b, 0, &v);
	assert_not_equivalent(&v, VERIFY_WHY_SHAPE);
	assert_finding(&v, FIND_SCORE_SCALES_DIFFER);
	verify_verdict_free(&v);
	layer_free(&b);
	/* a value that is not a number */
	assert_int_equal(layer_copy(&b, &a), RF_OK);
	b.wq[3] = NAN;
	verify(&a, &b, 0, &v);
	assert_not_equivalent(&v, VERIFY_WHY_UNEXPLAINED);
	assert_finding(&v, FIND_NOT_FINITE);
	assert_non_null(v.brk.what);
	verify_verdict_free(&v);
	layer_free(&b);
	layer_free(&a);
	/* a per-head q-norm weight split within pair 0: the group's commuting
	 * rotation does not commute with it */
	LayerCase sn = shapes[0];
	lf_layer(&sn, 8, &a);
	lf_qk_norm(&a, true);
	size_t p0, p1;
	rope_pair_coords(sn.layout, sn.r, 0, &p0, &p1);
	a.q_norm[p1] = 1.5;
	lf_fold(&a, &cfg, &b, NULL);
	verify(&a, &b, 0, &v);
	assert_not_equivalent(&v, VERIFY_WHY_QK_NORM);
	assert_finding(&v, FIND_QK_NORM_BLOCKS);
	assert_int_equal(v.brk.part, 'q');
	assert_int_equal(v.brk.group, 0);
	verify_verdict_free(&v);
	layer_free(&b);
	layer_free(&a);
}

/* ---- layout conversions ------------------------------------------------- */

static void test_layout_perm_llama_cpp(void **state)
{
	(void)state;
	/* llama.cpp permute(w, n_head): half-split (j, j + d/2) -> (2j, 2j+1). */
	size_t src[16];
	layout_perm_rows(ROPE_HALF, ROPE_INTERLEAVED, 2, 8, 8, src);
	const size_t want[16] = {0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15};
	for (size_t i = 0; i < 16; i++)
		assert_int_equal(src[i], want[i]);
	size_t inv[16], back[16];
	layout_perm_invert(src, 16, inv);
	layout_perm_rows(ROPE_INTERLEAVED, ROPE_HALF, 2, 8, 8, back);
	for (size_t i = 0; i < 16; i++)
		assert_int_equal(back[i], inv[i]);
}

static void test_layout_conversion(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSHAPES; s++) {
		Layer a, b;
		lf_layer(&shapes[s], 20 + s, &a);
		RopeLayout other = a.rope.layout == ROPE_HALF ? ROPE_INTERLEAVED : ROPE_HALF;
		assert_int_equal(layout_convert(&a, other, &b), RF_OK);
		VerifyVerdict v;
		verify(&a, &b, 0, &v);
		if (!v.equivalent)
			fail_msg("shape %zu: %s", s, why_text(&v));
		assert_int_equal(v.relation, VERIFY_REL_LAYOUT);
		assert_true(v.layout_converted);
		assert_int_equal(v.rope_b.layout, other);
		assert_false(v.rotated);
		InvReport rep;
		confirm(&a, &b, &v, &rep);
		assert_true(report_ok(&rep));
		report_done(&rep);
		verify_verdict_free(&v);
		/* A fold, then the conversion. */
		Layer f, fb;
		FoldConfig cfg = fold_config_default();
		lf_fold(&a, &cfg, &f, NULL);
		assert_int_equal(layout_convert(&f, other, &fb), RF_OK);
		verify(&a, &fb, 0, &v);
		assert_true(v.equivalent);
		assert_int_equal(v.relation, VERIFY_REL_LAYOUT);
		assert_true(v.layout_converted && v.rotated);
		verify_verdict_free(&v);
		layer_free(&f);
		layer_free(&fb);
		layer_free(&a);
		layer_free(&b);
	}
}

static void test_broken_conversions(void **state)
{
	(void)state;
	const LayerCase *s = &shapes[1];  /* GQA, H 8, G 4, d 16 */
	Layer hf, a, b;
	VerifyVerdict v;
	LayerCase sh = *s;
	sh.layout = ROPE_HALF;
	lf_layer(&sh, 30, &hf);
	size_t nk = sh.G * sh.d * sh.D;
	/* K left unpermuted. */
	assert_int_equal(layout_convert(&hf, ROPE_INTERLEAVED, &b), RF_OK);
	memcpy(b.wk, hf.wk, nk * sizeof(double));
	memcpy(b.bk, hf.bk, sh.G * sh.d * sizeof(double));
	verify(&hf, &b, 0, &v);
	assert_not_equivalent(&v, VERIFY_WHY_CONV_MISSED_K);
	assert_finding(&v, FIND_CONV_MISSED_K);
	verify_verdict_free(&v);
	layer_free(&b);
	/* K permuted with n_head = H. */
	assert_int_equal(layout_convert(&hf, ROPE_INTERLEAVED, &b), RF_OK);
	assert_int_equal(layout_convert_k_wrong_heads(&hf, ROPE_HALF, &a), RF_OK);
	memcpy(b.wk, a.wk, nk * sizeof(double));
	memcpy(b.bk, a.bk, sh.G * sh.d * sizeof(double));
	layer_free(&a);
	verify(&hf, &b, 0, &v);
	assert_not_equivalent(&v, VERIFY_WHY_CONV_K_HEADS);
	assert_finding(&v, FIND_CONV_K_QUERY_HEADS);
	assert_int_equal(v.shape_b.n_heads, 8);
	assert_int_equal(v.shape_b.n_kv_heads, 4);
	verify_verdict_free(&v);
	layer_free(&b);
	/* Neither permuted, layout relabelled. */
	assert_int_equal(layer_copy(&b, &hf), RF_OK);
	b.rope.layout = ROPE_INTERLEAVED;
	verify(&hf, &b, 0, &v);
	assert_not_equivalent(&v, VERIFY_WHY_CONV_MISSED_QK);
	assert_finding(&v, FIND_CONV_MISSED_QK);
	verify_verdict_free(&v);
	layer_free(&b);
	/* Rows permuted, label left as it was. */
	assert_int_equal(layout_convert(&hf, ROPE_INTERLEAVED, &b), RF_OK);
	b.rope.layout = ROPE_HALF;
	verify(&hf, &b, 0, &v);
	assert_not_equivalent(&v, VERIFY_WHY_CONV_UNLABELLED);
	assert_finding(&v, FIND_CONV_UNLABELLED);
	verify_verdict_free(&v);
	layer_free(&b);
	layer_free(&hf);
}

/* ---- rounding ----------------------------------------------------------- */

static void round_layer(Layer *l, StoreDtype t)
{
	size_t D = l->shape.d_model, H = l->shape.n_heads;
	size_t G = l->shape.n_kv_heads, d = l->shape.head_dim;
	dtype_round(t, l->wq, H * d * D);
	dtype_round(t, l->wk, G * d * D);
	dtype_round(t, l->wv, G * d * D);
	dtype_round(t, l->wo, D * H * d);
	if (l->bq) {
		dtype_round(t, l->bq, H * d);
		dtype_round(t, l->bk, G * d);
		dtype_round(t, l->bv, G * d);
	}
	if (l->bo)
		dtype_round(t, l->bo, D);
}

static void test_dtype_round(void **state)
{
	(void)state;
	double v[] = {1.0 + 0x1p-8, 1.0 + 3 * 0x1p-8, -1.0 - 0x1p-9, 0x1p-130, 3.0e38, 0x1p-135};
	dtype_round(STORE_BF16, v, 6);
	assert_true(v[0] == 1.0);               /* tie to even */
	assert_true(v[1] == 1.0 + 0x1p-6);      /* tie to even, upwards */
	assert_true(v[2] == -1.0);
	assert_true(v[3] == 0x1p-130);          /* subnormal, representable */
	assert_true(v[5] == 0.0);               /* below half the least subnormal */
	assert_true(isfinite(v[4]) && fabs(v[4] - 3.0e38) <= 3.0e38 * 0x1p-8);
	double h[] = {65520.0, 65519.0, 0x1p-25, 0x1.8p-24};
	dtype_round(STORE_F16, h, 4);
	assert_true(isinf(h[0]));
	assert_true(h[1] == 65504.0);
	assert_true(h[2] == 0.0);               /* tie to even at the bottom */
	assert_true(h[3] == 0x1p-23);
	double f = 1.0 + 0x1p-30;
	dtype_round(STORE_F32, &f, 1);
	assert_true(f == 1.0);
	assert_close(dtype_unit_roundoff(STORE_BF16), 0x1p-8, 0);
	assert_string_equal(dtype_name_of_roundoff(0x1p-8), "bf16");
	assert_string_equal(dtype_name_of_roundoff(0x1p-24), "f32");
}

static void test_bf16_rounding(void **state)
{
	(void)state;
	Layer a, b;
	lf_layer(&shapes[2], 40, &a);
	assert_int_equal(layer_copy(&b, &a), RF_OK);
	round_layer(&b, STORE_BF16);
	VerifyVerdict v;
	verify(&a, &b, dtype_unit_roundoff(STORE_BF16), &v);
	if (!v.equivalent)
		fail_msg("%s", why_text(&v));
	assert_int_equal(v.relation, VERIFY_REL_ROUNDING);
	assert_true(v.rounded && !v.rotated);
	assert_close(v.unit_roundoff, 0x1p-8, 0);
	verify_verdict_free(&v);
	/* At float64's roundoff the same copy is not equal. */
	verify(&a, &b, 0, &v);
	assert_false(v.equivalent);
	verify_verdict_free(&v);
	layer_free(&b);
	/* A bf16 checkpoint folded and stored back in bf16. */
	round_layer(&a, STORE_BF16);
	FoldConfig cfg = fold_config_default();
	lf_fold(&a, &cfg, &b, NULL);
	round_layer(&b, STORE_BF16);
	verify(&a, &b, dtype_unit_roundoff(STORE_BF16), &v);
	if (!v.equivalent)
		fail_msg("%s", why_text(&v));
	assert_true(v.rotated);
	assert_int_equal(v.relation, VERIFY_REL_COMMUTING_FOLD);
	InvReport rep;
	confirm(&a, &b, &v, &rep);
	assert_true(report_ok(&rep));
	double tol = v.confirm_tol;
	/* The rounding noise's copy kept from call to call, then made in
	 * the buffers of the caller's b (a copy here: it is overwritten),
	 * changes no number. */
	VerifyScratch keep;
	memset(&keep, 0, sizeof keep);
	for (int k = 0; k < 3; k++) {
		Layer bc;
		assert_int_equal(layer_copy(&bc, &b), RF_OK);
		keep.spare = k == 2 ? &bc : NULL;
		InvReport r2;
		confirm_keep(&a, &bc, &v, &keep, &r2);
		assert_same_confirm(&rep, tol, &r2, v.confirm_tol);
		/* k = 2: bc now holds A moved by at most its roundoff */
		assert_true(k < 2 ? keep.noise.wq != NULL
				  : fabs(bc.wq[0] - a.wq[0]) <= 0x1p-8 * fabs(a.wq[0]));
		report_done(&r2);
		layer_free(&bc);
	}
	verify_scratch_free(&keep);
	report_done(&rep);
	verify_verdict_free(&v);
	/* A Haar fold is still refused at bf16 tolerance. */
	layer_free(&b);
	cfg.dropped = ASSUME_COMMUTES;
	lf_fold(&a, &cfg, &b, NULL);
	round_layer(&b, STORE_BF16);
	verify(&a, &b, dtype_unit_roundoff(STORE_BF16), &v);
	assert_not_equivalent(&v, VERIFY_WHY_MIXES_PAIRS);
	pair_done(&v, &a, &b);
}

/* Move every entry of w (n) by a uniform amount of at most h times its rms,
 * as round-to-nearest on a grid does. */
static void quant_noise(double *w, size_t n, double h, uint64_t seed)
{
	Rng r;
	double ss = 0;
	rng_seed(&r, seed, 3);
	for (size_t i = 0; i < n; i++)
		ss += w[i] * w[i];
	double a = h * sqrt(ss / (double)n);
	for (size_t i = 0; i < n; i++)
		w[i] += a * (2 * rng_uniform(&r) - 1);
}

/* Each part is judged at its own quantization bound: a commuting fold whose
 * W_v carries a few percent of quantization noise is a fold when W_v's
 * bound covers it, and not when the bound is another part's; a
 * non-commuting fold breaks at any such bound. */
static void test_quant_parts(void **state)
{
	(void)state;
	Layer a, b;
	lf_layer(&shapes[2], 41, &a);
	FoldConfig cfg = fold_config_default();
	lf_fold(&a, &cfg, &b, NULL);
	size_t nk = b.shape.n_kv_heads * b.shape.head_dim * b.shape.d_model;
	quant_noise(b.wv, nk, 0.04, 9);
	VerifyOptions o = {0x1p-53, 0, {0, 0, 0.1, 0}, {0, 0, 0.04, 0}, 1u << STORE_Q4_K};
	VerifyVerdict v;
	verify_opts(&a, &b, &o, &v);
	if (!v.equivalent)
		fail_msg("%s", why_text(&v));
	assert_true(v.rotated);
	assert_true(v.part_tol[VERIFY_V] > 0.1 && v.part_tol[VERIFY_K] < 1e-9);
	assert_true(v.max_err > 1e-3);
	InvReport rep;
	confirm(&a, &b, &v, &rep);
	assert_true(report_ok(&rep));
	assert_true(v.confirm_tol > 1e-3);
	report_done(&rep);
	char rel[FINDINGS_RELATION_MAX];
	findings_verify_relation(&v, rel, sizeof rel);
	assert_string_equal(rel, "commuting fold, up to Q4_K quantization");
	verify_verdict_free(&v);
	/* the same bound on W_k instead: W_v is unexplained */
	VerifyOptions ok = {0x1p-53, 0, {0, 0.1, 0, 0}, {0, 0.04, 0, 0}, 1u << STORE_Q4_K};
	verify_opts(&a, &b, &ok, &v);
	assert_not_equivalent(&v, VERIFY_WHY_UNEXPLAINED);
	assert_string_equal(v.brk.tensor, "W_v");
	verify_verdict_free(&v);
	layer_free(&b);
	/* a rotation mixing pairs is no quantization */
	cfg.dropped = ASSUME_COMMUTES;
	lf_fold(&a, &cfg, &b, NULL);
	VerifyOptions all = {0x1p-53, 0, {0.1, 0.1, 0.1, 0.1}, {0.04, 0.04, 0.04, 0.04},
			     1u << STORE_Q4_K};
	verify_opts(&a, &b, &all, &v);
	assert_not_equivalent(&v, VERIFY_WHY_MIXES_PAIRS);
	verify_verdict_free(&v);
	layer_free(&a);
	layer_free(&b);
}

/* The class a verdict reports (what its tolerance had to allow for): a
 * copy and a float64 fold hold within float64's roundoff, a bf16 copy needs
 * bf16's rounding, W_v's quantization noise its bound, a rotation mixing
 * pairs breaks at any of them. */
static void test_within(void **state)
{
	(void)state;
	Layer a, b;
	VerifyVerdict v;
	lf_layer(&shapes[2], 42, &a);
	assert_int_equal(layer_copy(&b, &a), RF_OK);
	verify(&a, &b, 0, &v);
	assert_int_equal(verify_verdict_within(&v), VERIFY_WITHIN_EXACT);
	assert_string_equal(verify_within_name(verify_verdict_within(&v)), "holds");
	verify_verdict_free(&v);
	round_layer(&b, STORE_BF16);
	verify(&a, &b, dtype_unit_roundoff(STORE_BF16), &v);
	assert_int_equal(verify_verdict_within(&v), VERIFY_WITHIN_ROUNDING);
	assert_string_equal(verify_within_name(VERIFY_WITHIN_ROUNDING), "within dtype rounding");
	verify_verdict_free(&v);
	layer_free(&b);
	FoldConfig cfg = fold_config_default();
	lf_fold(&a, &cfg, &b, NULL);
	verify(&a, &b, 0, &v);
	assert_true(v.rotated && v.max_err > 0);
	assert_int_equal(verify_verdict_within(&v), VERIFY_WITHIN_EXACT);
	verify_verdict_free(&v);
	size_t nk = b.shape.n_kv_heads * b.shape.head_dim * b.shape.d_model;
	quant_noise(b.wv, nk, 0.04, 9);
	VerifyOptions o = {.unit_roundoff = 0x1p-53, .quant = {0, 0, 0.1, 0},
			   .quant_frob = {0, 0, 0.04, 0}, .quant_types = 1u << STORE_Q4_K};
	verify_opts(&a, &b, &o, &v);
	assert_true(v.equivalent && v.max_err > v.tol);
	assert_int_equal(verify_verdict_within(&v), VERIFY_WITHIN_QUANT);
	assert_string_equal(verify_within_name(VERIFY_WITHIN_QUANT), "within quantization");
	verify_verdict_free(&v);
	layer_free(&b);
	cfg.dropped = ASSUME_COMMUTES;
	lf_fold(&a, &cfg, &b, NULL);
	verify(&a, &b, dtype_unit_roundoff(STORE_BF16), &v);
	assert_int_equal(verify_verdict_within(&v), VERIFY_WITHIN_BREAKS);
	assert_string_equal(verify_within_name(VERIFY_WITHIN_BREAKS), "breaks");
	pair_done(&v, &a, &b);
}

/* Each kv group is judged at its own quantization bound (VerifyOptions.
 * quant_group): a commuting fold whose group 2 carries 4% of W_v noise is
 * a fold when group 2's bound covers it, and breaks at group 2, in W_v,
 * when the bound is group 1's; decided by 1 to 8 workers alike
 * (verify_opts). */
static void test_quant_groups(void **state)
{
	(void)state;
	const LayerCase *s = &shapes[1];   /* G = 4 */
	size_t G = s->G, d = s->d, D = s->D;
	Layer a, b;
	VerifyVerdict v;
	lf_layer(s, 43, &a);
	FoldConfig cfg = fold_config_default();
	lf_fold(&a, &cfg, &b, NULL);
	quant_noise(b.wv + 2 * d * D, d * D, 0.04, 11);
	double qg[VERIFY_PARTS * 2 * G];
	for (size_t covered = 1; covered <= 2; covered++) {
		memset(qg, 0, sizeof qg);
		qg[(VERIFY_V * 2 + 1) * G + covered] = 0.1;   /* B's W_v bound of one group */
		VerifyOptions o = {.unit_roundoff = 0x1p-53, .quant = {0, 0, 0.1, 0},
				   .quant_frob = {0, 0, 0.04, 0}, .quant_types = 1u << STORE_Q4_K,
				   .quant_group = qg};
		verify_opts(&a, &b, &o, &v);
		if (covered == 2) {
			assert_true(v.equivalent && v.max_err > v.tol);
		} else {
			assert_false(v.equivalent);
			assert_int_equal(v.brk.group, 2);
			assert_string_equal(v.brk.tensor, "W_v");
		}
		verify_verdict_free(&v);
	}
	layer_free(&a);
	layer_free(&b);
}

/* ---- undo and descriptions ---------------------------------------------- */

static void test_plan_inverse(void **state)
{
	(void)state;
	Layer a, b, c;
	FoldPlan plan, inv;
	lf_layer(&shapes[1], 50, &a);
	FoldConfig cfg = fold_config_default();
	cfg.permute_heads = true;
	cfg.dropped = ASSUME_V_SAME;
	lf_fold(&a, &cfg, &b, &plan);
	assert_int_equal(fold_inverse_plan(&plan, &inv), RF_OK);
	assert_int_equal(fold_apply(&b, &inv, &c), RF_OK);
	size_t D = a.shape.d_model, H = a.shape.n_heads, G = a.shape.n_kv_heads;
	size_t d = a.shape.head_dim;
	assert_le(tu_max_diff(c.wq, a.wq, H * d * D), 1e-13);
	assert_le(tu_max_diff(c.wk, a.wk, G * d * D), 1e-13);
	assert_le(tu_max_diff(c.wv, a.wv, G * d * D), 1e-13);
	assert_le(tu_max_diff(c.wo, a.wo, D * H * d), 1e-13);
	assert_le(tu_max_diff(c.bk, a.bk, G * d), 1e-13);
	layer_free(&b);
	layer_free(&c);
	/* Bit for bit: a bf16 original, the fold kept in f32, undone, rounded
	 * back to bf16. */
	round_layer(&a, STORE_BF16);
	assert_int_equal(fold_apply(&a, &plan, &b), RF_OK);
	round_layer(&b, STORE_F32);
	assert_int_equal(fold_apply(&b, &inv, &c), RF_OK);
	round_layer(&c, STORE_BF16);
	assert_memory_equal(c.wq, a.wq, H * d * D * sizeof(double));
	assert_memory_equal(c.wk, a.wk, G * d * D * sizeof(double));
	assert_memory_equal(c.wv, a.wv, G * d * D * sizeof(double));
	assert_memory_equal(c.wo, a.wo, D * H * d * sizeof(double));
	fold_plan_free(&plan);
	fold_plan_free(&inv);
	layer_free(&a);
	layer_free(&b);
	layer_free(&c);
}

static void test_rotation_desc(void **state)
{
	(void)state;
	RopeSpec rope = rope_spec_default(12);
	rope.rotary_dim = 8;
	Rng rng;
	rng_seed(&rng, 9, 0);
	double R[144], R2[144];
	assert_int_equal(rotation_make(ROT_COMMUTING, &rope, 12, &rng, R), RF_OK);
	RotationDesc desc;
	assert_int_equal(rotation_describe(R, &rope, 12, 1e-12, &desc), RF_OK);
	assert_true(desc.commuting);
	assert_non_null(desc.angles);
	assert_non_null(desc.tail);
	rotation_rebuild(&desc, &rope, 12, R2);
	assert_le(tu_max_diff(R, R2, 144), 1e-15);
	rotation_desc_free(&desc);
	assert_int_equal(rotation_make(ROT_HAAR, &rope, 12, &rng, R), RF_OK);
	assert_int_equal(rotation_describe(R, &rope, 12, 1e-12, &desc), RF_OK);
	assert_false(desc.commuting);
	assert_non_null(desc.matrix);
	rotation_rebuild(&desc, &rope, 12, R2);
	assert_le(tu_max_diff(R, R2, 144), 0);
	rotation_desc_free(&desc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identical),
		cmocka_unit_test(test_commuting_fold_recovered),
		cmocka_unit_test(test_permute_heads),
		cmocka_unit_test(test_drop_commutes),
		cmocka_unit_test(test_drop_others),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_more_breaks),
		cmocka_unit_test(test_layout_perm_llama_cpp),
		cmocka_unit_test(test_layout_conversion),
		cmocka_unit_test(test_broken_conversions),
		cmocka_unit_test(test_dtype_round),
		cmocka_unit_test(test_bf16_rounding),
		cmocka_unit_test(test_quant_parts),
		cmocka_unit_test(test_within),
		cmocka_unit_test(test_quant_groups),
		cmocka_unit_test(test_plan_inverse),
		cmocka_unit_test(test_rotation_desc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
