#include "config.h"

#include <math.h>

#include "core/attention.h"
#include "core/fold.h"
#include "core/procrustes.h"
#include "core/rope.h"
#include "core/rotation.h"
#include "core/rows_rotate.h"
#include "core/session.h"
#include "tests/testutil.h"

/* ||R Theta_1 - Theta_1 R||_max for the spec's frequencies. */
static double commutator(const double *R, const RopeSpec *spec, size_t d)
{
	double f[64], Th[64 * 64], A[64 * 64], B[64 * 64];
	rope_frequencies(spec, f);
	rope_theta_matrix(f, spec->layout, spec->rotary_dim, d, 1.0, Th);
	tu_matmul(R, Th, A, d);
	tu_matmul(Th, R, B, d);
	return tu_max_diff(A, B, d * d);
}

static RopeSpec spec_of(RopeLayout layout, size_t d, size_t r)
{
	RopeSpec s = rope_spec_default(d);
	s.layout = layout;
	s.rotary_dim = r;
	return s;
}

static void test_kinds_are_orthogonal(void **state)
{
	(void)state;
	double R[32 * 32];
	Rng rng;
	rng_seed(&rng, 3, 0);
	for (int layout = 0; layout < 2; layout++)
		for (int k = 0; k < ROT_KIND_COUNT; k++) {
			size_t dims[] = {16, 24, 32};
			for (size_t di = 0; di < 3; di++) {
				RopeSpec s = spec_of((RopeLayout)layout, dims[di], dims[di] - 8);
				assert_int_equal(rotation_make((RotKind)k, &s, dims[di], &rng, R), RF_OK);
				if (tu_ortho_defect(R, dims[di]) > 1e-13)
					fail_msg("kind %s d=%zu not orthogonal",
						 rotation_kind_name((RotKind)k), dims[di]);
			}
		}
}

/* Only the commuting kind commutes with RoPE in the layer's layout; the
 * other kinds break it (for head dims with several pairs). */
static void test_which_kinds_commute(void **state)
{
	(void)state;
	double R[32 * 32];
	Rng rng;
	rng_seed(&rng, 5, 0);
	for (int layout = 0; layout < 2; layout++) {
		for (size_t r = 8; r <= 16; r += 8) {
			RopeSpec s = spec_of((RopeLayout)layout, 16, r);
			rotation_make(ROT_COMMUTING, &s, 16, &rng, R);
			assert_true(commutator(R, &s, 16) < 1e-14);
			for (int k = ROT_HAAR; k < ROT_KIND_COUNT; k++) {
				rotation_make((RotKind)k, &s, 16, &rng, R);
				/* pair-mix breaks by design only by its EPS */
				if (commutator(R, &s, 16) < (k == ROT_PAIR_MIX ? 1e-5 : 1e-3))
					fail_msg("kind %s commutes (layout %d, r %zu)",
						 rotation_kind_name((RotKind)k), layout, r);
			}
		}
	}
}

/* A layout-mismatched rotation commutes in the other layout. */
static void test_layout_mismatch_commutes_elsewhere(void **state)
{
	(void)state;
	double R[16 * 16];
	Rng rng;
	rng_seed(&rng, 9, 0);
	RopeSpec half = spec_of(ROPE_HALF, 16, 16);
	RopeSpec inter = spec_of(ROPE_INTERLEAVED, 16, 16);
	rotation_make(ROT_LAYOUT_MISMATCH, &half, 16, &rng, R);
	assert_true(commutator(R, &inter, 16) < 1e-14);
	assert_true(commutator(R, &half, 16) > 1e-3);
}

/* Pair reflections have det -1 inside every pair. */
static void test_pair_reflect_blocks(void **state)
{
	(void)state;
	double R[8 * 8];
	Rng rng;
	rng_seed(&rng, 11, 0);
	RopeSpec s = spec_of(ROPE_INTERLEAVED, 8, 8);
	rotation_make(ROT_PAIR_REFLECT, &s, 8, &rng, R);
	for (size_t i = 0; i < 4; i++) {
		size_t a = 2 * i, b = 2 * i + 1;
		double det = R[a * 8 + a] * R[b * 8 + b] - R[a * 8 + b] * R[b * 8 + a];
		assert_close(det, -1.0, 1e-14);
	}
}

/* Scaling pairs keeps commutation but breaks orthogonality. */
static void test_scale_pairs(void **state)
{
	(void)state;
	double R[16 * 16];
	Rng rng;
	rng_seed(&rng, 13, 0);
	RopeSpec s = spec_of(ROPE_HALF, 16, 12);
	rotation_make(ROT_COMMUTING, &s, 16, &rng, R);
	rotation_scale_pairs(&s, 16, &rng, R);
	assert_true(commutator(R, &s, 16) < 1e-14);
	assert_gt(tu_ortho_defect(R, 16), 0.1);
}

/* Angles survive a round trip through the matrix. */
static void test_pair_angles(void **state)
{
	(void)state;
	double ang[4] = {0.3, -1.2, 2.9, -3.0}, R[10 * 10];
	for (int layout = 0; layout < 2; layout++) {
		rotation_commuting((RopeLayout)layout, 8, 10, ang, R);
		for (size_t i = 0; i < 4; i++)
			assert_close(rotation_pair_angle(R, (RopeLayout)layout, 8, 10, i),
				     ang[i], 1e-15);
	}
}

/* The same seed draws the same rotation. */
static void test_reproducible(void **state)
{
	(void)state;
	double A[16 * 16], B[16 * 16];
	Rng r1, r2;
	rng_seed(&r1, 42, 3);
	rng_seed(&r2, 42, 3);
	RopeSpec s = spec_of(ROPE_HALF, 16, 16);
	rotation_make(ROT_HAAR, &s, 16, &r1, A);
	rotation_make(ROT_HAAR, &s, 16, &r2, B);
	assert_memory_equal(A, B, sizeof A);
}

/* ---- QK-norm pins ---------------------------------------------------------- */

/* Pinned pairs become exactly +-I (the sign of the drawn cosine), the
 * others keep their angles, a pinned tail becomes its diagonal's signs. */
static void test_pin_pairs(void **state)
{
	(void)state;
	enum { D = 14, R = 10, NP = R / 2 };
	const unsigned char pin[NP] = {0, 1, 1, 0, 1};
	for (int layout = 0; layout < 2; layout++) {
		double A[D * D], B[D * D];
		Rng rng;
		rng_seed(&rng, 3, (uint64_t)layout);
		RopeSpec s = spec_of((RopeLayout)layout, D, R);
		assert_int_equal(rotation_make(ROT_COMMUTING, &s, D, &rng, A), RF_OK);
		memcpy(B, A, sizeof A);
		rotation_pin_pairs(s.layout, R, D, pin, true, B);
		for (size_t i = 0; i < NP; i++) {
			size_t a, b;
			rope_pair_coords(s.layout, R, i, &a, &b);
			if (!pin[i]) {
				assert_true(A[a * D + a] == B[a * D + a] && A[a * D + b] == B[a * D + b] &&
					    A[b * D + a] == B[b * D + a] && A[b * D + b] == B[b * D + b]);
				continue;
			}
			double v = A[a * D + a] < 0 ? -1.0 : 1.0;
			assert_true(B[a * D + a] == v && B[b * D + b] == v);
			assert_true(B[a * D + b] == 0.0 && B[b * D + a] == 0.0);
		}
		for (size_t i = R; i < D; i++)
			for (size_t j = R; j < D; j++) {
				double want = i != j ? 0.0 : A[i * D + i] < 0 ? -1.0 : 1.0;
				assert_true(B[i * D + j] == want);
			}
		assert_true(commutator(B, &s, D) < 1e-14);
		assert_true(tu_ortho_defect(B, D) < 1e-14);
	}
}

/* A layer with learned QK-norm weights that differ in chosen pairs. */
typedef struct {
	size_t D, H, G, d, r;
	RopeLayout layout;
	bool per_head;            /* d entries shared by heads, else H*d, G*d */
	size_t q_head, q_pair;    /* q-norm of this head differs in this pair */
	size_t k_group, k_pair;   /* k-norm of this group differs in this pair */
	bool k_tail;              /* k-norm varies on the non-rotary coordinates */
} QkCase;

static void make_qk_layer(const QkCase *c, bool split, Layer *l)
{
	LayerShape s = {c->D, c->H, c->G, c->d};
	RopeSpec r = spec_of(c->layout, c->d, c->r);
	assert_int_equal(layer_random(l, &s, &r, true, 23), RF_OK);
	size_t nq = c->per_head ? c->d : c->H * c->d, nk = c->per_head ? c->d : c->G * c->d;
	l->q_norm = malloc(nq * sizeof(double));
	l->k_norm = malloc(nk * sizeof(double));
	l->qk_norm_per_head = c->per_head;
	l->qk_norm_eps = 1e-6;
	/* Equal within every pair: weight 1 + pair / 8 (+ a head offset). */
	for (size_t k = 0; k < nq + nk; k++) {
		size_t n = k < nq ? k : k - nq, j = n % c->d;
		size_t pair = c->r ? rope_coord_pair(c->layout, c->r, j) : 0;
		double w = 1.0 + 0.125 * (double)pair + 0.01 * (double)(n / c->d);
		if (k < nq)
			l->q_norm[n] = w;
		else
			l->k_norm[n] = w;
	}
	if (!split)
		return;
	size_t a, b;
	rope_pair_coords(c->layout, c->r, c->q_pair, &a, &b);
	l->q_norm[(c->per_head ? 0 : c->q_head * c->d) + b] += 0.5;
	rope_pair_coords(c->layout, c->r, c->k_pair, &a, &b);
	l->k_norm[(c->per_head ? 0 : c->k_group * c->d) + a] -= 0.25;
	if (c->k_tail)
		l->k_norm[(c->per_head ? 0 : c->k_group * c->d) + c->d - 1] += 0.375;
}

/* Whether group g's rotations must hold pair i (the case's splits). */
static bool case_pins(const QkCase *c, size_t g, size_t i, bool one_r)
{
	size_t hpg = c->H / c->G;
	bool q = i == c->q_pair && (c->per_head || one_r || c->q_head / hpg == g);
	bool k = i == c->k_pair && (c->per_head || one_r || c->k_group == g);
	return q || k;
}

/* One pair block of R (d x d) against the unrestricted draw R0: held to
 * +-I with R0's cosine sign when pinned, else bit for bit R0's. Returns
 * true when the block turns by a visible angle (not 0, not pi). */
static bool check_block(const double *R, const double *R0, const QkCase *c, size_t i,
			bool pinned)
{
	size_t d = c->d, a, b;
	rope_pair_coords(c->layout, c->r, i, &a, &b);
	if (pinned) {
		double v = R0[a * d + a] < 0 ? -1.0 : 1.0;
		if (!(R[a * d + a] == v && R[b * d + b] == v && R[a * d + b] == 0.0 &&
		      R[b * d + a] == 0.0))
			fail_msg("pair %zu: not held to %g I: [[%g, %g], [%g, %g]]", i, v,
				 R[a * d + a], R[a * d + b], R[b * d + a], R[b * d + b]);
		return false;
	}
	if (!(R[a * d + a] == R0[a * d + a] && R[b * d + a] == R0[b * d + a] &&
	      R[a * d + b] == R0[a * d + b] && R[b * d + b] == R0[b * d + b]))
		fail_msg("pair %zu: its angle changed although its weights are equal", i);
	return fabs(R[b * d + a]) > 1e-3;
}

/* Every level of cfg's fold, two ways: the engine (inv_evaluate) and
 * attention_compare on the fold_apply'ed layer. Returns the worst
 * relative error. */
static double fold_error(const Layer *l, const FoldConfig *cfg)
{
	enum { T = 12 };
	size_t D = l->shape.d_model;
	double *x = malloc(T * D * sizeof(double));
	layer_random_input(9, T, D, x);
	EvalOptions eo = {.seq = T, .precision = PREC_F64, .tol = 0};
	InvReport rep;
	assert_int_equal(inv_evaluate(l, x, &eo, cfg, &rep), RF_OK);
	double worst = 0;
	for (int k = 0; k < LEVEL_COUNT; k++)
		if (rep.level[k].max_rel_err > worst)
			worst = rep.level[k].max_rel_err;
	report_done(&rep);
	FoldPlan plan;
	Layer f;
	RopeTable rt;
	assert_int_equal(fold_plan_build(l, cfg, &plan), RF_OK);
	assert_int_equal(fold_apply(l, &plan, &f), RF_OK);
	assert_int_equal(rope_table_init(&rt, &l->rope, T), RF_OK);
	assert_int_equal(report_init(&rep, T, l->shape.n_heads, l->shape.n_kv_heads,
				     l->shape.head_dim, l->rope.rotary_dim), RF_OK);
	assert_int_equal(attention_compare(l, &f, x, T, PREC_F64, &rt, &rep), RF_OK);
	for (int k = 0; k < LEVEL_COUNT; k++) {
		const LevelResult *L = &rep.level[k];
		double e = L->ref_max > 0 ? L->max_abs_err / L->ref_max : L->max_abs_err;
		if (e > worst)
			worst = e;
	}
	report_done(&rep);
	rope_table_done(&rt);
	layer_free(&f);
	fold_plan_free(&plan);
	free(x);
	return worst;
}

static void check_qk_case(const QkCase *c, unsigned dropped)
{
	Layer l;
	make_qk_layer(c, true, &l);
	size_t H = c->H, G = c->G, d = c->d, dd = d * d, hpg = H / G, np = c->r / 2;
	bool one_r = dropped & ASSUME_PER_HEAD;
	FoldConfig cfg = fold_config_default(), free_cfg;
	cfg.seed = 31;
	cfg.dropped = dropped;
	free_cfg = cfg;
	cfg.qk_norm_exact = true;
	FoldPlan p, p0;
	assert_int_equal(fold_plan_build(&l, &cfg, &p), RF_OK);
	assert_int_equal(fold_plan_build(&l, &free_cfg, &p0), RF_OK);
	size_t visible = 0, want_pinned = 0;
	for (size_t i = 0; i < np; i++) {
		bool any = false;
		for (size_t g = 0; g < G; g++) {
			bool pin = case_pins(c, g, i, one_r);
			any = any || pin;
			for (size_t j = 0; j < hpg; j++)
				visible += check_block(p.rq + (g * hpg + j) * dd,
						       p0.rq + (g * hpg + j) * dd, c, i, pin);
			check_block(p.rk + g * dd, p0.rk + g * dd, c, i, pin);
		}
		want_pinned += any;
	}
	assert_int_equal(p.qk_norm_pinned, want_pinned);
	assert_int_equal(p0.qk_norm_pinned, 0);
	assert_true(visible >= H);          /* the other pairs turn freely */
	/* The non-rotary block: sign flips where the k-norm varies there. */
	assert_int_equal(p.qk_norm_tail_pinned, c->k_tail);
	for (size_t g = 0; g < G && c->r < d; g++) {
		bool pinned = c->k_tail && (c->per_head || one_r || g == c->k_group);
		const double *R = p.rk + g * dd;
		for (size_t i = c->r; i < d; i++)
			for (size_t j = c->r; j < d; j++) {
				bool diag = i == j && fabs(R[i * d + j]) == 1.0;
				if (pinned && !(diag || (i != j && R[i * d + j] == 0.0)))
					fail_msg("group %zu: the non-rotary block is not a diagonal "
						 "of signs", g);
				if (!pinned && R[i * d + j] != p0.rk[g * dd + i * d + j])
					fail_msg("group %zu: the non-rotary block changed", g);
			}
	}
	/* V keeps carrying the group's Q rotation (v-same), O absorbs it. */
	if (!(dropped & ASSUME_V_SAME))
		for (size_t g = 0; g < G; g++)
			assert_memory_equal(p.rv + g * dd, p.rq + g * hpg * dd, dd * sizeof(double));
	fold_plan_free(&p);
	fold_plan_free(&p0);
	/* Exact with the pins, every level; broken without them. */
	assert_le(fold_error(&l, &cfg), 1e-13);
	assert_gt(fold_error(&l, &free_cfg), 1e-3);
	layer_free(&l);
	/* Weights equal within every pair: nothing pinned, the same draw. */
	make_qk_layer(c, false, &l);
	assert_int_equal(fold_plan_build(&l, &cfg, &p), RF_OK);
	assert_int_equal(fold_plan_build(&l, &free_cfg, &p0), RF_OK);
	assert_int_equal(p.qk_norm_pinned, 0);
	assert_false(p.qk_norm_tail_pinned);
	assert_memory_equal(p.rq, p0.rq, H * dd * sizeof(double));
	assert_memory_equal(p.rk, p0.rk, G * dd * sizeof(double));
	fold_plan_free(&p);
	fold_plan_free(&p0);
	assert_le(fold_error(&l, &free_cfg), 1e-13);
	layer_free(&l);
}

/* Qwen3-style: one q-norm and one k-norm weight of d entries for all
 * heads, GQA, half-split pairs. */
static void test_qk_norm_exact_per_head(void **state)
{
	(void)state;
	QkCase c = {48, 4, 2, 16, 16, ROPE_HALF, true, 0, 2, 0, 5, false};
	check_qk_case(&c, 0);
	check_qk_case(&c, ASSUME_V_SAME);
}

/* OLMo2-style: weights over all heads (H*d, G*d), interleaved pairs: each
 * group holds only the pairs its own heads' weights split. */
static void test_qk_norm_exact_layer_wide(void **state)
{
	(void)state;
	QkCase c = {64, 6, 2, 16, 16, ROPE_INTERLEAVED, false, 4, 3, 0, 6, false};
	check_qk_case(&c, 0);
	check_qk_case(&c, ASSUME_PER_HEAD);     /* one R: the union of the pins */
}

/* Partial rotary: a k-norm that varies on the non-rotary coordinates
 * turns the Haar block there into sign flips. */
static void test_qk_norm_exact_partial(void **state)
{
	(void)state;
	QkCase c = {40, 4, 2, 20, 12, ROPE_HALF, false, 1, 4, 1, 1, true};
	check_qk_case(&c, 0);
	QkCase p = c;
	p.per_head = true;
	check_qk_case(&p, 0);
}

static void test_kind_names(void **state)
{
	(void)state;
	RotKind k;
	for (int i = 0; i < ROT_KIND_COUNT; i++) {
		assert_int_equal(rotation_kind_parse(rotation_kind_name((RotKind)i), &k), 0);
		assert_int_equal(k, i);
	}
	assert_int_equal(rotation_kind_parse("householder", &k), -1);
}

/* procrustes_ortho_defect, ||R^T R - I||_F, against closed forms: zero
 * (to rounding) for a Haar draw of a head's size, |c^2 - 1| sqrt(d) for a
 * multiple c R of a rotation, sqrt(2 a^2 + a^4) for the shear I + a e_0
 * e_1^T (R^T R - I has a, a off the diagonal and a^2 on it), 0 at d = 0. */
static void test_ortho_defect(void **state)
{
	(void)state;
	enum { D = 128 };
	static double R[D * D];
	Rng rng;
	rng_seed(&rng, 17, 0);
	assert_int_equal(rotation_haar(D, &rng, R), RF_OK);
	assert_true(procrustes_ortho_defect(R, D) < 1e-12);
	assert_true(fabs(procrustes_ortho_defect(R, D) - tu_ortho_defect(R, D)) < 1e-12);
	const double c = 1.001;
	for (size_t i = 0; i < D * D; i++)
		R[i] *= c;
	double want = (c * c - 1.0) * sqrt((double)D);
	assert_true(fabs(procrustes_ortho_defect(R, D) - want) < 1e-12 * want + 1e-13);
	const double a = 0.3;
	double S[9] = {1, a, 0, 0, 1, 0, 0, 0, 1};
	want = sqrt(2 * a * a + a * a * a * a);
	assert_true(fabs(procrustes_ortho_defect(S, 3) - want) < 1e-15);
	assert_true(procrustes_ortho_defect(S, 0) == 0.0);
}

/* rows_rotate is the product R in, and cols_rotate in R^T, by their
 * definition (sums over k of R[i][k] in[k][c], or of in[r][k] R[j][k],
 * taken here in long double): for the rotations a fold draws (commuting
 * in either layout: two nonzeros a row, the pair loops; pair swaps; a
 * sparse R of one to four nonzeros a row; Haar and Hadamard, dense, to
 * BLAS), on blocks whose leading dimensions exceed their width. */
static void test_rows_rotate(void **state)
{
	(void)state;
	const size_t d = 16, n = 37, ldi = 41, ldo = 39;
	double R[16 * 16], in[16 * 41], out[16 * 39];
	Rng rng;
	rng_seed(&rng, 77, 0);
	for (size_t i = 0; i < d * ldi; i++)
		in[i] = rng_normal(&rng);
	RopeSpec rope = rope_spec_default(d);
	for (int kind = 0; kind < 9; kind++) {
		if (kind < 5) {
			/* commuting in the half layout and (mismatched) in the
			 * interleaved one: the pair loops of both */
			static const RotKind k[] = {ROT_COMMUTING, ROT_LAYOUT_MISMATCH,
						    ROT_PAIR_SWAP, ROT_HAAR, ROT_HADAMARD};
			assert_int_equal(rotation_make(k[kind], &rope, d, &rng, R), RF_OK);
		} else {
			/* kind - 4 nonzeros in row i (1..4), zero rows for 8 */
			size_t m = kind < 8 ? (size_t)kind - 4 : 0;
			for (size_t i = 0; i < d * d; i++)
				R[i] = 0;
			for (size_t i = 0; i < d; i++)
				for (size_t k = 0; k < m; k++)
					R[i * d + (i + 5 * k) % d] = rng_normal(&rng);
		}
		for (size_t i = 0; i < d * ldo; i++)
			out[i] = NAN;
		rows_rotate(R, d, in, ldi, n, out, ldo);
		for (size_t i = 0; i < d; i++)
			for (size_t c = 0; c < ldo; c++) {
				if (c >= n) {
					assert_true(isnan(out[i * ldo + c]));   /* untouched */
					continue;
				}
				long double s = 0;
				for (size_t k = 0; k < d; k++)
					s += (long double)R[i * d + k] * in[k * ldi + c];
				assert_close(out[i * ldo + c], (double)s, 1e-14);
			}
		/* the columns: out (2 x d, ld ldc) = in (2 x d, ld ldc) R^T */
		const size_t ldc = 19;
		double oc[2 * 19];
		for (size_t i = 0; i < 2 * ldc; i++)
			oc[i] = NAN;
		cols_rotate(R, d, in, ldc, 2, oc, ldc);
		for (size_t r = 0; r < 2; r++)
			for (size_t j = 0; j < ldc; j++) {
				if (j >= d) {
					assert_true(isnan(oc[r * ldc + j]));
					continue;
				}
				long double s = 0;
				for (size_t k = 0; k < d; k++)
					s += (long double)in[r * ldc + k] * R[j * d + k];
				assert_close(oc[r * ldc + j], (double)s, 1e-14);
			}
	}
}

/* The larger of ||X - Y||_F / ||Y||_F and max|X - Y| / max|Y|, by its
 * definition in long double. */
static double rel_diff_def(const double *X, const double *Y, size_t n)
{
	long double dn = 0, yn = 0, dm = 0, ym = 0;
	for (size_t i = 0; i < n; i++) {
		long double e = (long double)X[i] - Y[i];
		dn += e * e;
		yn += (long double)Y[i] * Y[i];
		dm = fabsl(e) > dm ? fabsl(e) : dm;
		ym = fabsl((long double)Y[i]) > ym ? fabsl((long double)Y[i]) : ym;
	}
	long double fr = sqrtl(dn / yn), mr = dm / ym;
	return (double)(fr > mr ? fr : mr);
}

/* The reference a residual is taken against: the product prod (rows x
 * w) moved by 1e-3 normal noise, into B (ld ldb, NaN past w, which no
 * residual may read) and Bd (the same values, ld w). */
static void moved_reference(const double *prod, size_t rows, size_t w, size_t ldb, Rng *rng,
			    double *B, double *Bd)
{
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < ldb; c++) {
			B[r * ldb + c] = c < w ? prod[r * w + c] + 1e-3 * rng_normal(rng) : NAN;
			if (c < w)
				Bd[r * w + c] = B[r * ldb + c];
		}
}

/* One residual case: R (d x d) applied to in (ld ldi; n its product's
 * rows_rotate/cols_rotate count), the definition's product prod (rows x
 * w), and B, Bd, scratch as moved_reference and the residual take them. */
typedef struct {
	const double *R;
	size_t d;
	const double *in;
	size_t ldi, n;
	const double *prod;
	size_t rows, w, ldb;
	double *B, *Bd, *scratch;
} DiffCase;

typedef void (*DiffFn)(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		       const double *B, size_t ldb, double *scratch, RelDiff *acc);
typedef void (*RotFn)(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		      double *out, size_t ldo);

/* diff's residual against prod moved is the definition's (long double)
 * and, to the bit, the one of rot's stored product. */
static void residual_agrees(const DiffCase *c, DiffFn diff, RotFn rot, Rng *rng)
{
	moved_reference(c->prod, c->rows, c->w, c->ldb, rng, c->B, c->Bd);
	RelDiff acc;
	rel_diff_start(&acc);
	diff(c->R, c->d, c->in, c->ldi, c->n, c->B, c->ldb, c->scratch, &acc);
	double e = rel_diff_result(&acc);
	assert_close(e, rel_diff_def(c->prod, c->Bd, c->rows * c->w), 1e-12);
	rot(c->R, c->d, c->in, c->ldi, c->n, c->scratch, c->w);
	assert_true(e == procrustes_rel_diff(c->scratch, c->w, c->B, c->ldb, c->rows, c->w));
}

/* rows_rotate_diff: the residual of R in against B, made row by row and
 * never stored, is the definition's (long double) and, to the bit, the
 * one of the product rows_rotate stores: for the rotations a fold draws
 * (commuting: rows of two nonzeros, made and compared in one pass; dense
 * ones to BLAS), sparse rows of one to four nonzeros, zero rows, and B
 * with a leading dimension past its width. */
static void test_rotate_diff(void **state)
{
	(void)state;
	enum { d = 16, n = 37, ldi = 41, ldb = 43 };
	static double in[d * ldi], R[d * d], prod[d * n], B[d * ldb], Bd[d * n],
		scratch[d * n];
	Rng rng;
	rng_seed(&rng, 79, 0);
	for (size_t i = 0; i < d * ldi; i++)
		in[i] = rng_normal(&rng);
	RopeSpec rope = rope_spec_default(d);
	static const RotKind k[] = {ROT_COMMUTING, ROT_LAYOUT_MISMATCH, ROT_PAIR_SWAP, ROT_HAAR,
				    ROT_HADAMARD};
	for (int kind = 0; kind < 9; kind++) {
		if (kind < 5) {
			assert_int_equal(rotation_make(k[kind], &rope, d, &rng, R), RF_OK);
		} else {
			size_t m = kind < 8 ? (size_t)kind - 4 : 0;   /* 1..3, then zero rows */
			for (size_t i = 0; i < d * d; i++)
				R[i] = 0;
			for (size_t i = 0; i < d; i++)
				for (size_t j = 0; j < (i % 2 ? m : m + 1); j++)
					R[i * d + (i + 5 * j) % d] = rng_normal(&rng);
		}
		for (size_t i = 0; i < d; i++)
			for (size_t c = 0; c < n; c++) {
				long double sum = 0;
				for (size_t j = 0; j < d; j++)
					sum += (long double)R[i * d + j] * in[j * ldi + c];
				prod[i * n + c] = (double)sum;
			}
		DiffCase c = {R, d, in, ldi, n, prod, d, n, ldb, B, Bd, scratch};
		residual_agrees(&c, rows_rotate_diff, rows_rotate, &rng);
	}
}

/* cols_rotate_diff: the residual of in R^T against B likewise, for head
 * dims whose halves are whole chunks of the sums' lanes (16: the pair
 * loops compare as they go) and not (12: through scratch), in both RoPE
 * layouts, sparse and dense R, more rows than one block. */
static void cols_diff_case(size_t d, RopeLayout layout, uint64_t seed)
{
	enum { DMAX = 16, nc = 70, ldi = 21, ldb = 23 };
	static double in[nc * ldi], R[DMAX * DMAX], prod[nc * DMAX], B[nc * ldb],
		Bd[nc * DMAX], scratch[nc * DMAX];
	Rng rng;
	rng_seed(&rng, seed, 0);
	for (size_t i = 0; i < nc * ldi; i++)
		in[i] = rng_normal(&rng);
	RopeSpec rope = rope_spec_default(d);
	rope.layout = layout;
	static const RotKind k[] = {ROT_COMMUTING, ROT_LAYOUT_MISMATCH, ROT_PAIR_SWAP, ROT_HAAR,
				    ROT_HADAMARD};
	for (size_t kind = 0; kind < sizeof k / sizeof k[0]; kind++) {
		if (k[kind] == ROT_HADAMARD && (d & (d - 1)))
			continue;   /* a power of two only */
		assert_int_equal(rotation_make(k[kind], &rope, d, &rng, R), RF_OK);
		for (size_t r = 0; r < nc; r++)
			for (size_t j = 0; j < d; j++) {
				long double sum = 0;
				for (size_t q = 0; q < d; q++)
					sum += (long double)in[r * ldi + q] * R[j * d + q];
				prod[r * d + j] = (double)sum;
			}
		DiffCase c = {R, d, in, ldi, nc, prod, nc, d, ldb, B, Bd, scratch};
		residual_agrees(&c, cols_rotate_diff, cols_rotate, &rng);
	}
}

static void test_cols_rotate_diff(void **state)
{
	(void)state;
	cols_diff_case(16, ROPE_HALF, 80);
	cols_diff_case(16, ROPE_INTERLEAVED, 81);
	cols_diff_case(12, ROPE_HALF, 82);
	cols_diff_case(12, ROPE_INTERLEAVED, 83);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds_are_orthogonal),
		cmocka_unit_test(test_rows_rotate),
		cmocka_unit_test(test_rotate_diff),
		cmocka_unit_test(test_cols_rotate_diff),
		cmocka_unit_test(test_ortho_defect),
		cmocka_unit_test(test_which_kinds_commute),
		cmocka_unit_test(test_layout_mismatch_commutes_elsewhere),
		cmocka_unit_test(test_pair_reflect_blocks),
		cmocka_unit_test(test_scale_pairs),
		cmocka_unit_test(test_pair_angles),
		cmocka_unit_test(test_reproducible),
		cmocka_unit_test(test_kind_names),
		cmocka_unit_test(test_pin_pairs),
		cmocka_unit_test(test_qk_norm_exact_per_head),
		cmocka_unit_test(test_qk_norm_exact_layer_wide),
		cmocka_unit_test(test_qk_norm_exact_partial),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
