#include "config.h"

#include "tests/testutil.h"

#include "core/attention.h"
#include "core/fold.h"
#include "tests/layer_fixtures.h"

/* The engine's comparison (attention_compare) against the plain one-side
 * pass (attention_forward), which follows SPEC 2.2 term by term: the
 * score level is the largest |S_a - S_b| over heads and causal entries,
 * the head level the largest |O_h,a - O_h,b| with O_h = C_h W_o,h^T, the
 * residual level the largest |y_a - y_b|. Each is recomputed here from
 * attention_forward's outputs alone: the scores it returns per head, and
 * O_h as y - x - b_o of a copy of the layer whose W_o keeps head h's
 * columns only. */

static const LayerCase MHA = {32, 4, 4, 8, 8, 19, ROPE_INTERLEAVED, false, PREC_F64};
static const LayerCase GQA = {48, 6, 2, 16, 12, 23, ROPE_HALF, true, PREC_F64};

/* y (T x D) of l on x, and head h's causal scores into S (T x T) when S
 * is not NULL. */
static void forward(const Layer *l, const double *x, const RopeTable *rope,
		    size_t T, double *y, size_t h, double *S)
{
	assert_int_equal(attention_forward(l, x, T, rope, y, h, S), RF_OK);
}

/* O_h = C_h W_o,h^T (T x D) of l on x: the forward pass with every other
 * head's W_o columns zeroed, less x and b_o. */
static void head_output(const Layer *l, const double *x, const RopeTable *rope,
			size_t T, size_t h, double *O)
{
	Layer m;
	size_t D = l->shape.d_model, d = l->shape.head_dim;
	size_t nq = l->shape.n_heads * d;
	assert_int_equal(layer_copy(&m, l), RF_OK);
	for (size_t c = 0; c < D; c++)
		for (size_t j = 0; j < nq; j++)
			if (j / d != h)
				m.wo[c * nq + j] = 0;
	forward(&m, x, rope, T, O, 0, NULL);
	for (size_t t = 0; t < T; t++)
		for (size_t c = 0; c < D; c++)
			O[t * D + c] -= x[t * D + c] + (l->bo ? l->bo[c] : 0);
	layer_free(&m);
}

/* The three levels' max errors and references recomputed from the plain
 * pass: err[level], ref[level] (the original's max |S|, max |O_h| and
 * max |y - x - b_o|, as report.h defines them). */
static void plain_levels(const Layer *a, const Layer *b, const double *x,
			 const RopeTable *rope, size_t T,
			 double err[LEVEL_COUNT], double ref[LEVEL_COUNT])
{
	size_t D = a->shape.d_model, H = a->shape.n_heads;
	double *ya = malloc(T * D * sizeof(double)), *yb = malloc(T * D * sizeof(double));
	double *sa = malloc(T * T * sizeof(double)), *sb = malloc(T * T * sizeof(double));
	assert_true(ya && yb && sa && sb);
	for (int i = 0; i < LEVEL_COUNT; i++)
		err[i] = ref[i] = 0;
	for (size_t h = 0; h < H; h++) {
		forward(a, x, rope, T, ya, h, sa);
		forward(b, x, rope, T, yb, h, sb);
		for (size_t m = 0; m < T; m++)
			for (size_t n = 0; n <= m; n++) {
				double e = fabs(sa[m * T + n] - sb[m * T + n]);
				err[LEVEL_SCORE] = e > err[LEVEL_SCORE] ? e : err[LEVEL_SCORE];
				double r = fabs(sa[m * T + n]);
				ref[LEVEL_SCORE] = r > ref[LEVEL_SCORE] ? r : ref[LEVEL_SCORE];
			}
		head_output(a, x, rope, T, h, ya);
		head_output(b, x, rope, T, h, yb);
		for (size_t i = 0; i < T * D; i++) {
			double e = fabs(ya[i] - yb[i]), r = fabs(ya[i]);
			err[LEVEL_HEAD] = e > err[LEVEL_HEAD] ? e : err[LEVEL_HEAD];
			ref[LEVEL_HEAD] = r > ref[LEVEL_HEAD] ? r : ref[LEVEL_HEAD];
		}
	}
	forward(a, x, rope, T, ya, 0, NULL);
	forward(b, x, rope, T, yb, 0, NULL);
	for (size_t t = 0; t < T; t++)
		for (size_t c = 0; c < D; c++) {
			size_t i = t * D + c;
			double e = fabs(ya[i] - yb[i]);
			double r = fabs(ya[i] - x[i] - (a->bo ? a->bo[c] : 0));
			err[LEVEL_RESIDUAL] = e > err[LEVEL_RESIDUAL] ? e : err[LEVEL_RESIDUAL];
			ref[LEVEL_RESIDUAL] = r > ref[LEVEL_RESIDUAL] ? r : ref[LEVEL_RESIDUAL];
		}
	free(ya); free(yb); free(sa); free(sb);
}

#define ALL_BREAK ((1u << LEVEL_SCORE) | (1u << LEVEL_HEAD) | (1u << LEVEL_RESIDUAL))

/* attention_compare's levels against plain_levels, for b a fold of the
 * case's layer by cfg, with the output kernel k; the levels of the bits
 * of breaks (1 << LevelId) must show a real error, the others rounding. */
static void compare_masked(const LayerCase *c, const FoldConfig *cfg, AttnKernel k,
			   unsigned breaks, size_t window, double cap)
{
	LfSetup f;
	lf_setup(c, 41, &f);
	f.l.sliding_window = window;
	f.l.attn_softcap = cap;
	Layer b;
	lf_fold(&f.l, cfg, &b, NULL);
	InvReport rep;
	lf_report(c, &rep);
	assert_int_equal(attention_compare_kernel(&f.l, &b, f.x, c->T, c->prec,
						  &f.rope, k, &rep), RF_OK);
	double err[LEVEL_COUNT], ref[LEVEL_COUNT];
	plain_levels(&f.l, &b, f.x, &f.rope, c->T, err, ref);
	for (int i = 0; i < LEVEL_COUNT; i++) {
		const LevelResult *L = &rep.level[i];
		/* both ways compute the same sums in other orders (float32:
		 * the engine's rounding against the plain float64 pass) */
		double tol = (c->prec == PREC_F32 ? 1e-4 : 1e-11) * (1 + ref[i]);
		if (fabs(L->max_abs_err - err[i]) > tol || fabs(L->ref_max - ref[i]) > tol)
			fail_msg("%s level: engine %.17g (ref %.17g), plain %.17g (ref %.17g)",
				 level_name((LevelId)i), L->max_abs_err, L->ref_max, err[i],
				 ref[i]);
		if (breaks & (1u << i))
			assert_gt(err[i], 1e-6 * ref[i]);
		else
			assert_le(err[i], 1e-11 * ref[i]);
		assert_int_equal(L->overflow, 0);
	}
	report_done(&rep);
	layer_free(&b);
	lf_setup_done(&f);
}

static void compare_case(const LayerCase *c, const FoldConfig *cfg, AttnKernel k,
			 unsigned breaks)
{
	compare_masked(c, cfg, k, breaks, 0, 0);
}

/* An exact fold: every level's error is rounding (the residual's also
 * with heads permuted), and both ways agree. */
static void test_exact_fold(void **state)
{
	(void)state;
	FoldConfig cfg = lf_config(PART_ALL, 0);
	compare_case(&MHA, &cfg, ATTN_KERNEL_AUTO, 0);
	compare_case(&GQA, &cfg, ATTN_KERNEL_AUTO, 0);
	/* heads permuted: each folded head is another original head, so
	 * head by head the scores and outputs differ; their sum does not */
	cfg.permute_heads = true;
	compare_case(&GQA, &cfg, ATTN_KERNEL_BLAS,
		     (1u << LEVEL_SCORE) | (1u << LEVEL_HEAD));
}

/* Broken folds (SPEC 2.1's assumptions dropped): real errors, the same
 * numbers both ways. */
static void test_broken_folds(void **state)
{
	(void)state;
	const unsigned drops[] = {ASSUME_COMMUTES, ASSUME_SHARED_QK, ASSUME_ORTHOGONAL};
	for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
		FoldConfig cfg = lf_config(PART_ALL, drops[i]);
		compare_case(&MHA, &cfg, ATTN_KERNEL_BLAS, ALL_BREAK);
		compare_case(&GQA, &cfg, ATTN_KERNEL_AUTO, ALL_BREAK);
	}
	/* Q, K and O without V: the scores hold, and W_o undoes a rotation V
	 * never had, so the head and residual levels break. */
	FoldConfig cfg = lf_config(PART_Q | PART_K | PART_O, 0);
	compare_case(&GQA, &cfg, ATTN_KERNEL_AUTO,
		     (1u << LEVEL_HEAD) | (1u << LEVEL_RESIDUAL));
}

/* The worst locations the engine names hold its max error. */
static void test_worst_locations(void **state)
{
	(void)state;
	const LayerCase *c = &GQA;
	LfSetup f;
	lf_setup(c, 43, &f);
	FoldConfig cfg = lf_config(PART_ALL, ASSUME_COMMUTES);
	Layer b;
	lf_fold(&f.l, &cfg, &b, NULL);
	InvReport rep;
	lf_report(c, &rep);
	assert_int_equal(attention_compare(&f.l, &b, f.x, c->T, PREC_F64, &f.rope, &rep),
			 RF_OK);
	size_t T = c->T, D = c->D;
	double *ya = malloc(T * D * sizeof(double)), *yb = malloc(T * D * sizeof(double));
	double *sa = malloc(T * T * sizeof(double)), *sb = malloc(T * T * sizeof(double));
	assert_true(ya && yb && sa && sb);
	const LevelResult *ls = &rep.level[LEVEL_SCORE];
	size_t h = ls->worst_head, m = ls->worst_m, n = ls->worst_n;
	assert_true(h < c->H && n <= m && m < T);
	forward(&f.l, f.x, &f.rope, T, ya, h, sa);
	forward(&b, f.x, &f.rope, T, yb, h, sb);
	assert_close(fabs(sa[m * T + n] - sb[m * T + n]), ls->max_abs_err,
		     1e-11 * (1 + ls->max_abs_err));
	const LevelResult *lh = &rep.level[LEVEL_HEAD];
	head_output(&f.l, f.x, &f.rope, T, lh->worst_head, ya);
	head_output(&b, f.x, &f.rope, T, lh->worst_head, yb);
	size_t i = lh->worst_m * D + lh->worst_coord;
	assert_close(fabs(ya[i] - yb[i]), lh->max_abs_err, 1e-11 * (1 + lh->max_abs_err));
	const LevelResult *lr = &rep.level[LEVEL_RESIDUAL];
	forward(&f.l, f.x, &f.rope, T, ya, 0, NULL);
	forward(&b, f.x, &f.rope, T, yb, 0, NULL);
	i = lr->worst_m * D + lr->worst_coord;
	assert_close(fabs(ya[i] - yb[i]), lr->max_abs_err, 1e-11 * (1 + lr->max_abs_err));
	free(ya); free(yb); free(sa); free(sb);
	report_done(&rep);
	layer_free(&b);
	lf_setup_done(&f);
}

/* A sliding window (shorter than T, with rows both inside and past it)
 * and a score soft-cap: the engine, in both precisions and with both
 * output kernels, against the plain pass; exact folds still hold. */
static void test_window_softcap(void **state)
{
	(void)state;
	LayerCase f32 = GQA;
	f32.prec = PREC_F32;
	const size_t windows[] = {1, 5, 0, 5};
	const double caps[] = {0, 0, 2.5, 2.5};
	for (size_t i = 0; i < 4; i++) {
		FoldConfig cfg = lf_config(PART_ALL, 0);
		compare_masked(&MHA, &cfg, ATTN_KERNEL_AUTO, 0, windows[i], caps[i]);
		compare_masked(&GQA, &cfg, ATTN_KERNEL_BLAS, 0, windows[i], caps[i]);
		compare_masked(&f32, &cfg, ATTN_KERNEL_AUTO, 0, windows[i], caps[i]);
		cfg.permute_heads = true;
		compare_masked(&GQA, &cfg, ATTN_KERNEL_AUTO,
			       (1u << LEVEL_SCORE) | (1u << LEVEL_HEAD), windows[i], caps[i]);
		/* non-commuting: the scores break; under a window of 1 each
		 * token reads its own value only, so the outputs hold */
		unsigned br = windows[i] == 1 ? 1u << LEVEL_SCORE : ALL_BREAK;
		cfg = lf_config(PART_ALL, ASSUME_COMMUTES);
		compare_masked(&GQA, &cfg, ATTN_KERNEL_BLAS, br, windows[i], caps[i]);
		compare_masked(&f32, &cfg, ATTN_KERNEL_BLAS, br, windows[i], caps[i]);
	}
}

/* attention_forward against the definitions written out here (HF's
 * Mistral/Gemma 2 masks: key n visible from query m iff m - W < n <= m;
 * Gemma 2's cap: s -> c tanh(s / c) before the mask and softmax), on a
 * layer with identity weights and no rotation: y_m = x_m + sum_n P_mn x_n
 * with s_mn = x_m . x_n / sqrt(d). */
static void test_forward_definition(void **state)
{
	(void)state;
	enum { D = 4, T = 7 };
	LayerShape sh = {D, 1, 1, D};
	Layer l;
	assert_int_equal(layer_alloc(&l, &sh, 0), RF_OK);
	l.rope = rope_spec_default(D);
	l.rope.rotary_dim = 0;
	for (size_t i = 0; i < D * D; i++)
		l.wq[i] = l.wk[i] = l.wv[i] = l.wo[i] = i / D == i % D;
	RopeTable rope;
	assert_int_equal(rope_table_init(&rope, &l.rope, T), RF_OK);
	double x[T * D], y[T * D], S[T * T];
	for (size_t i = 0; i < T * D; i++)
		x[i] = sin(1.7 * (double)i + 0.3) * 2.0;
	const size_t windows[] = {0, 1, 3, T, T + 4};
	const double caps[] = {0, 0.7, 30};
	for (size_t wi = 0; wi < 5; wi++)
		for (size_t ci = 0; ci < 3; ci++) {
			size_t W = windows[wi];
			double cap = caps[ci];
			l.sliding_window = W;
			l.attn_softcap = cap;
			assert_int_equal(attention_forward(&l, x, T, &rope, y, 0, S), RF_OK);
			for (size_t m = 0; m < T; m++) {
				double p[T], sum = 0, mx = -INFINITY;
				for (size_t n = 0; n < T; n++) {
					double s = 0;
					for (size_t c = 0; c < D; c++)
						s += x[m * D + c] * x[n * D + c];
					s /= sqrt((double)D);
					/* the raw scores come back unmasked, uncapped */
					if (n <= m)
						assert_close(S[m * T + n], s, 1e-12);
					if (cap > 0)
						s = cap * tanh(s / cap);
					bool seen = n <= m && (!W || (double)m - (double)W < (double)n);
					p[n] = seen ? s : -INFINITY;
					mx = seen && s > mx ? s : mx;
				}
				for (size_t n = 0; n < T; n++)
					sum += p[n] = p[n] == -INFINITY ? 0 : exp(p[n] - mx);
				for (size_t c = 0; c < D; c++) {
					double want = x[m * D + c];
					for (size_t n = 0; n < T; n++)
						want += p[n] / sum * x[n * D + c];
					assert_close(y[m * D + c], want, 1e-12);
				}
			}
		}
	/* window 1: each token sees itself only, y = 2 x */
	l.sliding_window = 1;
	l.attn_softcap = 0;
	assert_int_equal(attention_forward(&l, x, T, &rope, y, 0, NULL), RF_OK);
	for (size_t i = 0; i < T * D; i++)
		assert_close(y[i], 2 * x[i], 1e-12);
	rope_table_done(&rope);
	layer_free(&l);
}

/* The flops of a first run: SPEC's products counted by hand for a tiny
 * shape, one score block (T <= 128). */
static void test_cold_flops(void **state)
{
	(void)state;
	LayerShape s = {8, 2, 1, 4};
	double T = 3, D = 8, H = 2, G = 1, d = 4;
	double proj = 2 * T * D * (H + 2 * G) * d;
	double heads = H * 2 * (2 * T * T * d);    /* scores and contexts */
	double out = H * 2 * T * d * D;
	double fold = 2 * d * d * D * (2 * H + 2 * G);
	assert_close(attention_cold_flops(&s, 3), 2 * (proj + heads + out) + fold, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_fold),
		cmocka_unit_test(test_broken_folds),
		cmocka_unit_test(test_worst_locations),
		cmocka_unit_test(test_cold_flops),
		cmocka_unit_test(test_window_softcap),
		cmocka_unit_test(test_forward_definition),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
