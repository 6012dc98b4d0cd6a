#include "config.h"

#include "core/attention.h"
#include "core/finding.h"
#include "core/fold_changes.h"
#include "core/levels.h"
#include "core/session.h"
#include "tests/layer_fixtures.h"
#include "tests/testutil.h"

/* A session's toggles reuse cached work; every evaluation must still be
 * exactly what a fresh evaluation of the same configuration reports. */

static const LayerCase GQA = {64, 6, 2, 16, 16, 37, ROPE_HALF, true, PREC_F64};

/* The case's layer and input, both from seed 23. */
static void make(const LayerCase *s, Layer *l, double **x)
{
	lf_layer(s, 23, l);
	*x = lf_input(s, 23);
}

static void same_array(const double *a, const double *b, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			fail_msg("%s[%zu]: %.17g != %.17g", what, i, a[i], b[i]);
}

/* Two explanations: the same findings in the same order, every number
 * to the last bit. */
static void same_findings(const InvReport *a, const InvReport *b, const char *what)
{
	if (a->n_findings != b->n_findings)
		fail_msg("%s: %zu findings vs %zu", what, a->n_findings, b->n_findings);
	for (size_t i = 0; i < a->n_findings; i++) {
		const Finding *x = &a->findings[i], *y = &b->findings[i];
		double dx[6] = {x->err, x->tol, x->norm, x->value[0], x->value[1], x->eps};
		double dy[6] = {y->err, y->tol, y->norm, y->value[0], y->value[1], y->eps};
		size_t zx[10] = {x->group, x->head, x->other_head, x->m, x->n, x->coord,
				 x->offset, x->pair_i, x->pair_j, x->seq};
		size_t zy[10] = {y->group, y->head, y->other_head, y->m, y->n, y->coord,
				 y->offset, y->pair_i, y->pair_j, y->seq};
		if (x->code != y->code || x->level != y->level || x->part != y->part ||
		    x->flag != y->flag || x->levels != y->levels ||
		    x->overflows != y->overflows || x->side != y->side ||
		    x->precision != y->precision || x->layout[0] != y->layout[0] ||
		    x->layout[1] != y->layout[1] || strcmp(x->tensor, y->tensor) ||
		    x->what != y->what || memcmp(dx, dy, sizeof dx) || memcmp(zx, zy, sizeof zx))
			fail_msg("%s: finding %zu differs (%s vs %s)", what, i,
				 finding_code_name(x->code), finding_code_name(y->code));
	}
}

/* Two reports must agree to the last bit, field by field. */
static void same_report(const InvReport *a, const InvReport *b, const char *what)
{
	for (int i = 0; i < LEVEL_COUNT; i++) {
		const LevelResult *x = &a->level[i], *y = &b->level[i];
		if (x->max_abs_err != y->max_abs_err || x->ref_max != y->ref_max ||
		    x->holds != y->holds || x->guaranteed != y->guaranteed ||
		    x->worst_head != y->worst_head || x->worst_m != y->worst_m ||
		    x->worst_n != y->worst_n || x->worst_coord != y->worst_coord)
			fail_msg("%s: %s level differs (%.17g vs %.17g, worst %zu/%zu/%zu/%zu "
				 "vs %zu/%zu/%zu/%zu)", what, level_name((LevelId)i),
				 x->max_abs_err, y->max_abs_err, x->worst_head, x->worst_m,
				 x->worst_n, x->worst_coord, y->worst_head, y->worst_m,
				 y->worst_n, y->worst_coord);
	}
	same_array(a->by_offset, b->by_offset, a->seq, "by_offset");
	same_array(a->by_offset_ref, b->by_offset_ref, a->seq, "by_offset_ref");
	same_array(a->head_rel_err, b->head_rel_err, a->n_heads, "head_rel_err");
	same_array(a->score_rel_err, b->score_rel_err, a->n_heads, "score_rel_err");
	same_array(a->heat, b->heat, a->n_heads * a->heat_bins * a->heat_bins, "heat");
	same_findings(a, b, what);
}

static FoldConfig cfg_drop(unsigned drop)
{
	return lf_config(PART_ALL, drop);
}

/* A walk through toggles as a user makes them in the TUI. */
static void walk(const LayerCase *s, size_t threads)
{
	Layer l;
	double *x;
	make(s, &l, &x);
	FoldConfig steps[14];
	size_t n = 0;
	steps[n++] = cfg_drop(0);
	steps[n++] = cfg_drop(ASSUME_V_SAME);
	steps[n++] = cfg_drop(0);
	steps[n++] = cfg_drop(ASSUME_SHARED_QK);
	steps[n++] = cfg_drop(ASSUME_SHARED_QK | ASSUME_V_SAME);
	steps[n++] = cfg_drop(ASSUME_COMMUTES);
	steps[n++] = cfg_drop(ASSUME_GQA_CONSISTENT);
	steps[n++] = cfg_drop(ASSUME_BIAS);
	steps[n++] = cfg_drop(ASSUME_ORTHOGONAL);
	steps[n] = cfg_drop(0);
	steps[n++].permute_heads = true;
	steps[n] = cfg_drop(0);
	steps[n++].rotate = PART_Q | PART_K | PART_V;
	steps[n] = cfg_drop(0);
	steps[n++].rotate = PART_V | PART_O;
	steps[n] = cfg_drop(0);
	steps[n++].rotate = 0;
	steps[n++] = cfg_drop(ASSUME_PER_HEAD);
	EvalOptions eo = {.seq = s->T, .precision = s->prec, .threads = threads};
	InvSession *ses;
	assert_int_equal(inv_session_new(&l, x, &eo, &ses), RF_OK);
	for (size_t i = 0; i < n; i++) {
		InvReport a, b;
		char what[64];
		snprintf(what, sizeof what, "step %zu (threads %zu)", i, threads);
		assert_int_equal(inv_session_evaluate(ses, &steps[i], &a), RF_OK);
		EvalOptions fresh = eo;
		fresh.threads = 1;
		assert_int_equal(inv_evaluate(&l, x, &fresh, &steps[i], &b), RF_OK);
		same_report(&a, &b, what);
		/* the folded layer is the one fold_apply builds */
		Layer f;
		lf_fold(&l, &steps[i], &f, NULL);
		const Layer *g = inv_session_folded(ses);
		assert_non_null(g);
		size_t D = s->D, H = s->H, G = s->G, d = s->d;
		assert_true(tu_max_diff(f.wq, g->wq, H * d * D) <= 1e-15);
		assert_true(tu_max_diff(f.wk, g->wk, G * d * D) <= 1e-15);
		assert_true(tu_max_diff(f.wv, g->wv, G * d * D) <= 1e-15);
		assert_true(tu_max_diff(f.wo, g->wo, D * H * d) <= 1e-15);
		assert_true(tu_max_diff(f.bq, g->bq, H * d) <= 1e-15);
		layer_free(&f);
		report_done(&a);
		report_done(&b);
	}
	/* reset: the next evaluation is cold and still the same */
	inv_session_reset(ses);
	InvReport a, b;
	assert_int_equal(inv_session_evaluate(ses, &steps[1], &a), RF_OK);
	assert_int_equal(inv_evaluate(&l, x, &eo, &steps[1], &b), RF_OK);
	same_report(&a, &b, "after reset");
	assert_true(inv_session_flops(ses) > 0);
	report_done(&a);
	report_done(&b);
	inv_session_free(ses);
	free(x);
	layer_free(&l);
}

static void test_toggles_f64(void **state)
{
	(void)state;
	walk(&GQA, 1);
	walk(&GQA, 3);
}

static void test_toggles_f32(void **state)
{
	(void)state;
	LayerCase s = GQA;
	s.prec = PREC_F32;
	walk(&s, 2);
}

/* A whole-row QK-norm mixes every head: a toggle of some heads must still
 * recompute all of them. */
static void test_toggles_layer_qk_norm(void **state)
{
	(void)state;
	LayerCase s = GQA;
	Layer l;
	double *x;
	make(&s, &l, &x);
	lf_qk_norm(&l, false);
	for (size_t i = 0; i < s.H * s.d; i++)
		l.q_norm[i] = 1.0 + 0.01 * (double)(i % 3);
	EvalOptions eo = {.seq = s.T, .precision = PREC_F64, .threads = 2};
	InvSession *ses;
	assert_int_equal(inv_session_new(&l, x, &eo, &ses), RF_OK);
	unsigned drops[] = {0, ASSUME_GQA_CONSISTENT, 0, ASSUME_SHARED_QK};
	for (size_t i = 0; i < 4; i++) {
		FoldConfig c = cfg_drop(drops[i]);
		InvReport a, b;
		assert_int_equal(inv_session_evaluate(ses, &c, &a), RF_OK);
		assert_int_equal(inv_evaluate(&l, x, &eo, &c, &b), RF_OK);
		same_report(&a, &b, "layer QK-norm");
		report_done(&a);
		report_done(&b);
	}
	inv_session_free(ses);
	free(x);
	layer_free(&l);
}

/* With the original's per-head outputs cached for none, some or all
 * heads, the engine reports the same. */
static void test_output_cache_sizes(void **state)
{
	(void)state;
	LayerCase s = GQA;
	LfSetup f;
	lf_setup(&s, 23, &f);
	FoldConfig c0 = cfg_drop(0), c1 = cfg_drop(ASSUME_V_SAME);
	FoldPlan p0, p1;
	Layer f0, f1;
	lf_fold(&f.l, &c0, &f0, &p0);
	lf_fold(&f.l, &c1, &f1, &p1);
	FoldChanges ch;
	assert_int_equal(fold_changes_init(&ch, s.H, s.G), RF_OK);
	size_t head_bytes = s.T * s.D * sizeof(double);
	size_t budgets[] = {0, head_bytes, 4 * head_bytes, 100 * head_bytes};
	InvReport ref[2];
	for (size_t bi = 0; bi < 4; bi++) {
		AttnEngine *e;
		assert_int_equal(attention_engine_new(&f.l, f.x, s.T, PREC_F64, &f.rope, 2,
						      budgets[bi], ATTN_KERNEL_AUTO, &e),
				 RF_OK);
		for (int k = 0; k < 2; k++) {
			InvReport r;
			lf_report(&s, &r);
			fold_changes_diff(&ch, &f.l, k ? &p1 : &p0, k ? &p0 : NULL);
			assert_int_equal(attention_engine_run(e, &f.l, k ? &p1 : &p0, &ch, &r), RF_OK);
			if (bi == 0)
				ref[k] = r;
			else {
				same_array(&r.level[0].max_abs_err, &ref[k].level[0].max_abs_err, 1, "score");
				same_array(&r.level[1].max_abs_err, &ref[k].level[1].max_abs_err, 1, "head");
				same_array(&r.level[2].max_abs_err, &ref[k].level[2].max_abs_err, 1, "resid");
				same_array(r.head_rel_err, ref[k].head_rel_err, s.H, "head_rel_err");
				assert_int_equal(r.level[1].worst_coord, ref[k].level[1].worst_coord);
				report_done(&r);
			}
		}
		attention_engine_free(e);
	}
	report_done(&ref[0]);
	report_done(&ref[1]);
	fold_changes_done(&ch);
	fold_plan_free(&p0);
	fold_plan_free(&p1);
	layer_free(&f0);
	layer_free(&f1);
	lf_setup_done(&f);
}

/* An engine renewed for another layer (attention_engine_renew, taking
 * over the last engine's buffers, which still hold that layer's float
 * copies, per-head outputs and scratch) reports exactly what a fresh
 * engine without an output cache on that layer does, over two runs (the
 * second one reads the original's outputs from the cache when there is
 * one), in either precision, and also from an engine of the other
 * precision. */
static void test_engine_renew(void **state)
{
	(void)state;
	LayerCase s = GQA;
	LfSetup f1, f2;
	lf_setup(&s, 23, &f1);
	lf_setup(&s, 24, &f2);
	FoldConfig c = cfg_drop(ASSUME_COMMUTES);   /* every level breaks: errors to compare */
	FoldConfig c3 = lf_config(PART_Q | PART_K | PART_O, ASSUME_COMMUTES);
	Layer g1, g2, g3;
	lf_fold(&f1.l, &c, &g1, NULL);
	lf_fold(&f2.l, &c, &g2, NULL);
	lf_fold(&f2.l, &c3, &g3, NULL);
	const Layer *runs[2] = {&g2, &g3};
	FoldChanges ch;
	assert_int_equal(fold_changes_init(&ch, s.H, s.G), RF_OK);
	static const Precision precs[] = {PREC_F32, PREC_F64};
	/* no cache, and every head's O_h (float64's size holds float32's) */
	size_t caches[2] = {0, s.H * s.T * s.D * sizeof(double)};
	for (int pi = 0; pi < 2; pi++)
		for (int from = 0; from < 2; from++)
			for (int ci = 0; ci < 2; ci++) {
				Precision p = precs[pi], q = precs[pi ^ from];   /* q: the engine renewed */
				AttnEngine *fresh, *e;
				InvReport ref[2], r;
				assert_int_equal(attention_engine_new(&f2.l, f2.x, s.T, p, &f2.rope, 2, 0,
								      ATTN_KERNEL_AUTO, &fresh), RF_OK);
				for (int k = 0; k < 2; k++) {
					lf_report(&s, &ref[k]);
					fold_changes_all(&ch);
					assert_int_equal(attention_engine_run(fresh, runs[k], NULL, &ch,
									      &ref[k]), RF_OK);
				}
				attention_engine_free(fresh);
				assert_int_equal(attention_engine_new(&f1.l, f1.x, s.T, q, &f1.rope, 2,
								      caches[ci], ATTN_KERNEL_AUTO, &e),
						 RF_OK);
				for (int k = 0; k < 2; k++) {   /* the cache filled with layer 1's */
					lf_report(&s, &r);
					fold_changes_all(&ch);
					assert_int_equal(attention_engine_run(e, k ? &f1.l : &g1, NULL, &ch,
									      &r), RF_OK);
					report_done(&r);
				}
				assert_int_equal(attention_engine_renew(&e, &f2.l, f2.x, s.T, p, &f2.rope,
									2, caches[ci], ATTN_KERNEL_AUTO),
						 RF_OK);
				for (int k = 0; k < 2; k++) {
					lf_report(&s, &r);
					fold_changes_all(&ch);
					assert_int_equal(attention_engine_run(e, runs[k], NULL, &ch, &r),
							 RF_OK);
					assert_true(ref[k].level[0].max_abs_err > 1e-3);
					for (int l = 0; l < LEVEL_COUNT; l++) {
						same_array(&r.level[l].max_abs_err,
							   &ref[k].level[l].max_abs_err, 1, "level");
						same_array(&r.level[l].ref_max, &ref[k].level[l].ref_max,
							   1, "ref_max");
					}
					same_array(r.head_rel_err, ref[k].head_rel_err, s.H,
						   "head_rel_err");
					report_done(&r);
					report_done(&ref[k]);
				}
				attention_engine_free(e);
			}
	fold_changes_done(&ch);
	layer_free(&g1);
	layer_free(&g2);
	layer_free(&g3);
	lf_setup_done(&f1);
	lf_setup_done(&f2);
}

/* The engine folds per head as it goes; evaluating the layer fold_apply
 * built as it is must agree to rounding (float64: the products differ
 * only in the order of their sums). */
static void test_engine_folds_like_fold_apply(void **state)
{
	(void)state;
	LayerCase s = GQA;
	LfSetup f;
	lf_setup(&s, 23, &f);
	FoldConfig c = cfg_drop(ASSUME_COMMUTES);
	c.permute_heads = true;
	FoldPlan p;
	Layer g;
	lf_fold(&f.l, &c, &g, &p);
	FoldChanges ch;
	assert_int_equal(fold_changes_init(&ch, s.H, s.G), RF_OK);
	InvReport r[2];
	for (int k = 0; k < 2; k++) {
		AttnEngine *e;
		assert_int_equal(attention_engine_new(&f.l, f.x, s.T, PREC_F64, &f.rope, 2, 0,
						      ATTN_KERNEL_AUTO, &e), RF_OK);
		lf_report(&s, &r[k]);
		assert_int_equal(attention_engine_run(e, k ? &g : &f.l, k ? NULL : &p, &ch,
						      &r[k]), RF_OK);
		attention_engine_free(e);
	}
	for (int i = 0; i < LEVEL_COUNT; i++) {
		double a = r[0].level[i].max_abs_err, b = r[1].level[i].max_abs_err;
		assert_true(a > 1e-3);  /* commutes dropped: every level breaks */
		assert_true(fabs(a - b) <= 1e-12 * (1 + a));
		assert_true(r[0].level[i].ref_max == r[1].level[i].ref_max);
	}
	for (size_t h = 0; h < s.H; h++)
		assert_true(fabs(r[0].head_rel_err[h] - r[1].head_rel_err[h]) <=
			    1e-12 * (1 + r[0].head_rel_err[h]));
	report_done(&r[0]);
	report_done(&r[1]);
	fold_changes_done(&ch);
	fold_plan_free(&p);
	layer_free(&g);
	lf_setup_done(&f);
}

/* Two reports of the same evaluation by different product orders: every
 * error within tol of the level's reference, references within tol, the
 * same verdicts, and the same worst place wherever a level really breaks. */
static void near_report(const InvReport *a, const InvReport *b, double tol,
			const char *what)
{
	for (int i = 0; i < LEVEL_COUNT; i++) {
		const LevelResult *x = &a->level[i], *y = &b->level[i];
		double ref = x->ref_max > 0 ? x->ref_max : 1;
		if (fabs(x->max_abs_err - y->max_abs_err) > tol * ref ||
		    fabs(x->ref_max - y->ref_max) > tol * ref || x->holds != y->holds)
			fail_msg("%s: %s level: %.17g vs %.17g (ref %.17g vs %.17g)", what,
				 level_name((LevelId)i), x->max_abs_err, y->max_abs_err,
				 x->ref_max, y->ref_max);
		/* two heads whose worst errors tie to rounding (already
		 * checked equal within tol) may swap places */
		bool tie = i == LEVEL_HEAD && x->worst_head != y->worst_head;
		if (x->max_abs_err > 1e-3 * ref && !tie &&
		    (x->worst_head != y->worst_head || x->worst_m != y->worst_m ||
		     x->worst_n != y->worst_n || x->worst_coord != y->worst_coord))
			fail_msg("%s: %s level breaks at %zu/%zu/%zu/%zu vs %zu/%zu/%zu/%zu",
				 what, level_name((LevelId)i), x->worst_head, x->worst_m,
				 x->worst_n, x->worst_coord, y->worst_head, y->worst_m,
				 y->worst_n, y->worst_coord);
	}
	for (size_t h = 0; h < a->n_heads; h++)
		if (fabs(a->head_rel_err[h] - b->head_rel_err[h]) > tol)
			fail_msg("%s: head %zu: %.17g vs %.17g", what, h,
				 a->head_rel_err[h], b->head_rel_err[h]);
	same_array(a->score_rel_err, b->score_rel_err, a->n_heads, "score_rel_err");
}

/* The fused output kernel (where the CPU has it) and the library-GEMM path
 * report the same evaluations, toggles included, on shapes whose tokens
 * and coordinates leave partial tiles and panels. */
static void test_fused_kernel_matches_gemm(void **state)
{
	(void)state;
	if (!attention_kernel_fused())
		print_message("no AVX-512 here: both runs take the GEMM path\n");
	const LayerCase shapes[] = {
		GQA,
		{100, 5, 5, 20, 20, 13, ROPE_HALF, false, PREC_F64},
		{72, 4, 2, 8, 8, 9, ROPE_HALF, true, PREC_F32},
		{200, 8, 2, 24, 16, 70, ROPE_HALF, true, PREC_F64},
	};
	unsigned drops[] = {0, ASSUME_COMMUTES, ASSUME_V_SAME, ASSUME_PER_HEAD,
			    ASSUME_ORTHOGONAL, 0};
	for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
		const LayerCase *s = &shapes[si];
		Layer l;
		double *x;
		make(s, &l, &x);
		EvalOptions eo = {.seq = s->T, .precision = s->prec, .threads = 2,
				  .kernel = ATTN_KERNEL_BLAS};
		InvSession *ses[2];
		assert_int_equal(inv_session_new(&l, x, &eo, &ses[0]), RF_OK);
		eo.kernel = ATTN_KERNEL_AUTO;
		assert_int_equal(inv_session_new(&l, x, &eo, &ses[1]), RF_OK);
		double tol = s->prec == PREC_F32 ? 1e-5 : 1e-13;
		for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
			FoldConfig c = cfg_drop(drops[i]);
			c.permute_heads = i == 5;
			InvReport r[2];
			for (int k = 0; k < 2; k++)
				assert_int_equal(inv_session_evaluate(ses[k], &c, &r[k]), RF_OK);
			char what[64];
			snprintf(what, sizeof what, "shape %zu step %zu", si, i);
			near_report(&r[0], &r[1], tol, what);
			if (drops[i] == ASSUME_COMMUTES)  /* a real break was compared */
				assert_true(r[0].level[LEVEL_HEAD].max_abs_err >
					    1e-3 * r[0].level[LEVEL_HEAD].ref_max);
			report_done(&r[0]);
			report_done(&r[1]);
		}
		inv_session_free(ses[0]);
		inv_session_free(ses[1]);
		free(x);
		layer_free(&l);
	}
}

/* ---- overflow -------------------------------------------------------------
 * A compared value that is not a finite number is a verdict of its own
 * (LevelResult.overflow), never a silent "holds": NaN must not vanish from
 * a max. Both kernel paths, both precisions; the expected places follow
 * from where the crafted weights put Inf, the sides from which layer has
 * them. */

/* Compare a with b by kernel k and judge. */
static void compare_by(AttnKernel k, const Layer *a, const Layer *b,
		       const double *x, size_t T, Precision prec, InvReport *rep)
{
	RopeTable rope;
	assert_int_equal(rope_table_init(&rope, &a->rope, T), RF_OK);
	assert_int_equal(report_init(rep, T, a->shape.n_heads, a->shape.n_kv_heads,
				     a->shape.head_dim, a->rope.rotary_dim), RF_OK);
	rep->precision = prec;
	assert_int_equal(attention_compare_kernel(a, b, x, T, prec, &rope, k, rep),
			 RF_OK);
	FoldConfig cfg = fold_config_default();
	levels_judge(rep, a, &cfg, levels_default_tol(prec));
	rope_table_done(&rope);
}

static void expect_overflow(const InvReport *rep, LevelId id, unsigned side,
			    size_t head, size_t m, size_t n_or_coord, const char *what)
{
	const LevelResult *L = &rep->level[id];
	size_t got = id == LEVEL_SCORE ? L->worst_n : L->worst_coord;
	if (L->overflow != side || L->holds || !isinf(L->max_rel_err) ||
	    (id != LEVEL_RESIDUAL && L->worst_head != head) || L->worst_m != m ||
	    got != n_or_coord)
		fail_msg("%s: %s level overflow %u at head %zu (%zu, %zu), holds %d; "
			 "expected overflow %u at head %zu (%zu, %zu)", what,
			 level_name(id), L->overflow, L->worst_head, L->worst_m, got,
			 L->holds, side, head, m, n_or_coord);
}

static void expect_finite(const InvReport *rep, LevelId id, bool holds,
			  const char *what)
{
	const LevelResult *L = &rep->level[id];
	if (L->overflow || L->holds != holds || !isfinite(L->max_rel_err))
		fail_msg("%s: %s level overflow %u, holds %d, rel err %.3g; expected "
			 "finite and holds %d", what, level_name(id), L->overflow,
			 L->holds, L->max_rel_err, holds);
}

static void test_overflow_is_a_verdict(void **state)
{
	(void)state;
	const LayerCase s = {72, 4, 2, 8, 8, 9, ROPE_HALF, true, PREC_F64};
	const AttnKernel kernels[2] = {ATTN_KERNEL_BLAS, ATTN_KERNEL_AUTO};
	size_t D = s.D, nq = s.H * s.d, nk = s.G * s.d, c = 37;
	for (int ki = 0; ki < 2; ki++) {
		const char *kn = ki == 0 ? "blas" : "fused";
		char what[96];
		Layer a, b;
		double *x;
		InvReport r;
		/* Q and K times 1e20: every score near 1e40, beyond float32,
		 * on both sides; all that follows is NaN. float64 holds it. */
		make(&s, &a, &x);
		for (size_t i = 0; i < nq * D; i++)
			a.wq[i] *= 1e20;
		for (size_t i = 0; i < nk * D; i++)
			a.wk[i] *= 1e20;
		snprintf(what, sizeof what, "%s: scores past float32", kn);
		compare_by(kernels[ki], &a, &a, x, s.T, PREC_F32, &r);
		unsigned both = OVERFLOW_ORIGINAL | OVERFLOW_FOLDED;
		expect_overflow(&r, LEVEL_SCORE, both, 0, 0, 0, what);
		expect_overflow(&r, LEVEL_HEAD, both, 0, 0, 0, what);
		expect_overflow(&r, LEVEL_RESIDUAL, both, 0, 0, 0, what);
		assert_false(report_ok(&r));
		report_done(&r);
		compare_by(kernels[ki], &a, &a, x, s.T, PREC_F64, &r);
		for (int i = 0; i < LEVEL_COUNT; i++)
			expect_finite(&r, (LevelId)i, true, "scores past float32, in float64");
		report_done(&r);
		/* ... and times 1e160 more, past float64 too */
		for (size_t i = 0; i < nq * D; i++)
			a.wq[i] *= 1e140;
		for (size_t i = 0; i < nk * D; i++)
			a.wk[i] *= 1e140;
		snprintf(what, sizeof what, "%s: scores past float64", kn);
		compare_by(kernels[ki], &a, &a, x, s.T, PREC_F64, &r);
		expect_overflow(&r, LEVEL_SCORE, both, 0, 0, 0, what);
		expect_overflow(&r, LEVEL_RESIDUAL, both, 0, 0, 0, what);
		report_done(&r);
		layer_free(&a);
		free(x);

		/* Only the folded side: b's row c of W_o is 1e39, Inf as a
		 * float, so every head's O_h is non-finite in coordinate c
		 * from token 0 on; scores are untouched. */
		make(&s, &a, &x);
		assert_int_equal(layer_copy(&b, &a), RF_OK);
		for (size_t j = 0; j < nq; j++)
			b.wo[c * nq + j] = 1e39;
		snprintf(what, sizeof what, "%s: folded outputs past float32", kn);
		compare_by(kernels[ki], &a, &b, x, s.T, PREC_F32, &r);
		expect_finite(&r, LEVEL_SCORE, true, what);
		expect_overflow(&r, LEVEL_HEAD, OVERFLOW_FOLDED, 0, 0, c, what);
		expect_overflow(&r, LEVEL_RESIDUAL, OVERFLOW_FOLDED, 0, 0, c, what);
		report_done(&r);
		compare_by(kernels[ki], &a, &b, x, s.T, PREC_F64, &r);
		expect_finite(&r, LEVEL_HEAD, false, "folded outputs past float32, in float64");
		report_done(&r);

		/* The difference alone: v_0 = 1.5 from its bias, so head 0's
		 * coordinate c is 1.5 t on one side and -1.5 t on the other.
		 * t = 1e308: both finite in float64, their difference not.
		 * t = 2e38 in float32: both finite, the difference too in
		 * double, as the comparison takes it on both paths. */
		for (size_t j = 0; j < D; j++)
			a.wv[j] = 0;
		a.bv[0] = 1.5;
		for (size_t j = 0; j < nq; j++)
			a.wo[c * nq + j] = 0;
		layer_free(&b);
		for (int pi = 0; pi < 2; pi++) {
			double t = pi ? 2e38 : 1e308;
			a.wo[c * nq] = t;
			assert_int_equal(layer_copy(&b, &a), RF_OK);
			b.wo[c * nq] = -t;
			Precision p = pi ? PREC_F32 : PREC_F64;
			snprintf(what, sizeof what, "%s: a difference past %s", kn,
				 pi ? "float32" : "float64");
			compare_by(kernels[ki], &a, &b, x, s.T, p, &r);
			if (p == PREC_F64) {
				expect_overflow(&r, LEVEL_HEAD, OVERFLOW_DIFFERENCE, 0, 0, c, what);
				expect_overflow(&r, LEVEL_RESIDUAL, OVERFLOW_DIFFERENCE, 0, 0, c,
						what);
			} else {
				expect_finite(&r, LEVEL_HEAD, false, what);
				assert_gt(r.level[LEVEL_HEAD].max_abs_err, 3.4e38);
			}
			report_done(&r);
			layer_free(&b);
		}
		layer_free(&a);
		free(x);
	}
}

/* The explorer's session keeps per-head results a toggle does not touch:
 * an overflow found once stays reported while those heads are reused. */
static void test_overflow_survives_toggles(void **state)
{
	(void)state;
	const LayerCase s = {72, 4, 2, 8, 8, 9, ROPE_HALF, true, PREC_F32};
	Layer l;
	double *x;
	make(&s, &l, &x);
	for (size_t i = 0; i < s.H * s.d * s.D; i++)
		l.wq[i] *= 1e20;
	for (size_t i = 0; i < s.G * s.d * s.D; i++)
		l.wk[i] *= 1e20;
	EvalOptions eo = {.seq = s.T, .precision = PREC_F32, .threads = 2};
	InvSession *ses;
	assert_int_equal(inv_session_new(&l, x, &eo, &ses), RF_OK);
	unsigned drops[] = {0, ASSUME_V_SAME, 0, ASSUME_COMMUTES};
	for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
		FoldConfig c = cfg_drop(drops[i]);
		InvReport a, b;
		assert_int_equal(inv_session_evaluate(ses, &c, &a), RF_OK);
		EvalOptions fresh = eo;
		fresh.threads = 1;
		assert_int_equal(inv_evaluate(&l, x, &fresh, &c, &b), RF_OK);
		for (int k = 0; k < LEVEL_COUNT; k++) {
			assert_true(a.level[k].overflow != 0);
			assert_int_equal(a.level[k].overflow, b.level[k].overflow);
		}
		same_report(&a, &b, "overflow toggles");
		report_done(&a);
		report_done(&b);
	}
	inv_session_free(ses);
	free(x);
	layer_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_toggles_f64),
		cmocka_unit_test(test_toggles_f32),
		cmocka_unit_test(test_toggles_layer_qk_norm),
		cmocka_unit_test(test_output_cache_sizes),
		cmocka_unit_test(test_engine_folds_like_fold_apply),
		cmocka_unit_test(test_fused_kernel_matches_gemm),
		cmocka_unit_test(test_overflow_is_a_verdict),
		cmocka_unit_test(test_overflow_survives_toggles),
		cmocka_unit_test(test_engine_renew),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
