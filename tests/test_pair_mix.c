#include "config.h"

#include <float.h>

#include "core/fold.h"
#include "core/pair_mix.h"
#include "core/report.h"
#include "core/rope.h"
#include "core/rotation.h"
#include "tests/layer_fixtures.h"
#include "tests/testutil.h"

/* The pair-mix:EPS kind against its math (and, last, the heatmap's
 * diagonal kept apart, which the plots of the same issue rely on). R = C M(EPS), C commuting and M
 * turning pair 2k into pair 2k+1 by EPS. On the complex coordinates of
 * such a block Theta_p = diag(e^(i a), e^(i b)) with a = w_i p, b = w_j p,
 * M = [[c, -s], [s, c]] (real), and
 *     Theta_p M - M Theta_p = s (e^(i a) - e^(i b)) [[0, -1], [-1, 0]]
 * up to sign per entry, so its spectral norm is 2 |s| |sin((a - b) / 2)|
 * and, written as a real matrix, its Frobenius norm twice that. The
 * numbers below come from products of the matrices ropefold builds,
 * compared with these closed forms. */

#define D 16

/* A = R Theta_p - Theta_p R (d x d) for the spec's frequencies. */
static void commutator_at(const double *R, const RopeSpec *spec, size_t d, double p,
			  double *A)
{
	double f[D], Th[D * D], X[D * D], Y[D * D];
	rope_frequencies(spec, f);
	rope_theta_matrix(f, spec->layout, spec->rotary_dim, d, p, Th);
	tu_matmul(R, Th, X, d);
	tu_matmul(Th, R, Y, d);
	for (size_t i = 0; i < d * d; i++)
		A[i] = X[i] - Y[i];
}

static double frobenius(const double *A, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += A[i] * A[i];
	return sqrt(s);
}

/* The largest singular value of A (d x d) by power iteration on A^T A. */
static double spectral(const double *A, size_t d)
{
	double v[D], w[D], u[D];
	for (size_t i = 0; i < d; i++)
		v[i] = 1.0 + 0.1 * (double)i;
	double sigma = 0;
	for (int it = 0; it < 3000; it++) {
		for (size_t i = 0; i < d; i++) {
			w[i] = 0;
			for (size_t j = 0; j < d; j++)
				w[i] += A[i * d + j] * v[j];
		}
		for (size_t j = 0; j < d; j++) {
			u[j] = 0;
			for (size_t i = 0; i < d; i++)
				u[j] += A[i * d + j] * w[i];
		}
		double n = 0;
		for (size_t j = 0; j < d; j++)
			n += u[j] * u[j];
		n = sqrt(n);
		if (!(n > 0))
			return 0;
		for (size_t j = 0; j < d; j++)
			v[j] = u[j] / n;
		sigma = sqrt(n);
	}
	return sigma;
}

static RopeSpec spec_of(RopeLayout layout, size_t r)
{
	RopeSpec s = rope_spec_default(D);
	s.layout = layout;
	s.rotary_dim = r;
	return s;
}

static void make(RopeSpec *s, double eps, uint64_t seed, double *R)
{
	Rng rng;
	rng_seed(&rng, seed, 0);
	assert_int_equal(rotation_make_eps(ROT_PAIR_MIX, s, D, eps, &rng, R), RF_OK);
}

/* Orthogonal; exact at offset 0; the Frobenius norm of the commutator is
 * the closed form at every offset, both layouts, with and without a
 * non-rotary block. */
static void test_growth_closed_form(void **state)
{
	(void)state;
	double R[D * D], A[D * D], f[D];
	size_t rs[] = {16, 12};
	double epss[] = {1e-2, 1e-5, 0.3};
	for (int layout = 0; layout < 2; layout++)
		for (size_t ri = 0; ri < 2; ri++)
			for (size_t ei = 0; ei < 3; ei++) {
				RopeSpec s = spec_of((RopeLayout)layout, rs[ri]);
				double eps = epss[ei];
				make(&s, eps, 5, R);
				assert_le(tu_ortho_defect(R, D), 1e-13);
				rope_frequencies(&s, f);
				size_t np = rs[ri] / 2;
				for (double p = 0; p <= 40; p += 1) {
					commutator_at(R, &s, D, p, A);
					double want2 = 0;
					for (size_t i = 0; i + 1 < np; i += 2) {
						double b = 4.0 * sin(eps) * sin((f[i] - f[i + 1]) * p / 2);
						want2 += b * b;
					}
					assert_close(frobenius(A, D * D), sqrt(want2), 1e-12);
				}
			}
}

/* pair_mix_growth is the spectral norm of the commutator. */
static void test_growth_is_spectral_norm(void **state)
{
	(void)state;
	double R[D * D], A[D * D], f[D];
	RopeSpec s = spec_of(ROPE_HALF, 16);
	rope_frequencies(&s, f);
	double eps = 1e-3;
	make(&s, eps, 9, R);
	double ps[] = {0, 1, 2, 3, 5, 17, 100, 1234};
	for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
		commutator_at(R, &s, D, ps[k], A);
		double g = pair_mix_growth(f, 8, eps, ps[k]);
		assert_close(spectral(A, D), g, 1e-6 * eps + 1e-15);
	}
}

/* Grows with |w_i - w_j| * offset * EPS while that is small, then
 * saturates at 2 sin EPS. */
static void test_growth_linear_then_saturates(void **state)
{
	(void)state;
	double f[D];
	RopeSpec s = spec_of(ROPE_INTERLEAVED, 16);
	rope_frequencies(&s, f);
	double dw_max = 0, dw_min = 1e300;
	for (size_t i = 0; i + 1 < 8; i += 2) {
		double dw = fabs(f[i] - f[i + 1]);
		dw_max = dw > dw_max ? dw : dw_max;
		dw_min = dw < dw_min ? dw : dw_min;
	}
	double eps = 1e-6;
	assert_close(pair_mix_growth(f, 8, eps, 0), 0, 0);
	/* at offset 0.01 every block is in its linear regime */
	assert_close(pair_mix_growth(f, 8, eps, 0.01) / (eps * dw_max * 0.01), 1.0, 1e-4);
	/* doubling a small offset doubles the error; ten times EPS, ten times */
	double g1 = pair_mix_growth(f, 8, eps, 0.05);
	assert_close(pair_mix_growth(f, 8, eps, 0.1) / g1, 2.0, 1e-3);
	assert_close(pair_mix_growth(f, 8, 10 * eps, 0.05) / g1, 10.0, 1e-4);
	double top = 0;
	for (double p = 0; p < 20000; p += 1) {
		double g = pair_mix_growth(f, 8, eps, p);
		assert_le(g, 2 * sin(eps) * (1 + 1e-12));
		top = g > top ? g : top;
	}
	assert_gt(top, 1.99 * sin(eps));
	(void)dw_min;
}

/* The predicted break offset: the first offset at which the spectral
 * norm of the real commutator passes the tolerance, found by a scan of
 * the matrices; none when 2 sin EPS stays below it. */
static void test_break_offset(void **state)
{
	(void)state;
	double R[D * D], A[D * D], f[D];
	RopeSpec s = spec_of(ROPE_HALF, 16);
	rope_frequencies(&s, f);
	struct { double eps, tol; } rows[] = {
		{1e-9, 1e-9}, {6e-10, 1e-9}, {1e-3, 1e-9}, {1e-11, 1e-11 * 1.9},
		{1e-4, 1e-4 * 1.999}, {1e-12, 1e-13},
	};
	for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
		make(&s, rows[k].eps, 3, R);
		size_t want = 0;
		for (size_t p = 1; p < 5000 && !want; p++) {
			commutator_at(R, &s, D, (double)p, A);
			if (spectral(A, D) > rows[k].tol * (1 + 1e-6))
				want = p;
		}
		size_t got = pair_mix_break_offset(f, 8, rows[k].eps, rows[k].tol);
		if (got != want)
			fail_msg("eps %g tol %g: predicted %zu, the matrices pass tol at %zu",
				 rows[k].eps, rows[k].tol, got, want);
	}
	/* saturation below the tolerance: never */
	assert_int_equal(pair_mix_break_offset(f, 8, 1e-10, 1e-9), 0);
	/* a slow pair alone: the break moves out as 1 / EPS */
	double slow[2] = {1e-3, 0.9e-3};
	size_t b1 = pair_mix_break_offset(slow, 2, 1e-6, 1e-9);
	size_t b2 = pair_mix_break_offset(slow, 2, 1e-7, 1e-9);
	assert_close((double)b1, 1e-9 / (1e-6 * 1e-4), 1.0);
	assert_close((double)b2, 1e-9 / (1e-7 * 1e-4), 1.0);
}

/* The whole engine: the score error of a pair-mix fold is roundoff at
 * offset 0, scales with EPS off it, grows over the first offsets, and
 * the report carries the prediction. */
static void test_engine_scores(void **state)
{
	(void)state;
	LayerCase c = {64, 4, 4, 16, 16, 32, ROPE_HALF, false, PREC_F64};
	double top[2] = {0, 0};
	double epss[2] = {1e-4, 1e-5};
	for (int k = 0; k < 2; k++) {
		FoldConfig cfg = lf_config(PART_ALL, ASSUME_COMMUTES);
		cfg.kind = ROT_PAIR_MIX;
		cfg.mix_eps = epss[k];
		InvReport rep;
		lf_evaluate(&c, 11, &cfg, 0, &rep);
		double ref = rep.level[LEVEL_SCORE].ref_max;
		assert_le(rep.by_offset[0] / ref, 100 * DBL_EPSILON);
		for (size_t p = 1; p < c.T; p++)
			top[k] = rep.by_offset[p] > top[k] ? rep.by_offset[p] : top[k];
		assert_gt(rep.by_offset[4], rep.by_offset[1]);
		assert_close(rep.diag.mix_eps, epss[k], 0);
		double f[8];
		RopeSpec s = spec_of(ROPE_HALF, 16);
		rope_frequencies(&s, f);
		assert_int_equal(rep.diag.mix_break,
				 pair_mix_break_offset(f, 8, epss[k], rep.tol));
		report_done(&rep);
	}
	assert_close(top[0] / top[1], 10.0, 0.05);
	/* commutes held: no pair-mix prediction */
	FoldConfig held = lf_config(PART_ALL, 0);
	held.kind = ROT_PAIR_MIX;
	InvReport rep;
	lf_evaluate(&c, 11, &held, 0, &rep);
	assert_close(rep.diag.mix_eps, 0, 0);
	report_done(&rep);
}

/* The heatmap's pooling keeps the exact diagonal apart: at T = 256 a
 * diagonal bin holds four tokens, and its m = n entries alone (heat_diag)
 * are the diagonal's error (offset 0), while the whole bin is not. */
static void test_heat_diagonal_apart(void **state)
{
	(void)state;
	LayerCase c = {64, 4, 4, 16, 16, 256, ROPE_HALF, false, PREC_F64};
	FoldConfig cfg = lf_config(PART_ALL, ASSUME_COMMUTES);   /* Haar */
	InvReport rep;
	lf_evaluate(&c, 3, &cfg, 0, &rep);
	size_t B = rep.heat_bins;
	assert_int_equal(B, 64);
	double ref = rep.level[LEVEL_SCORE].ref_max;
	for (size_t h = 0; h < c.H; h++)
		for (size_t b = 0; b < B; b++) {
			double d = rep.heat_diag[h * B + b], whole = rep.heat[(h * B + b) * B + b];
			assert_le(d, rep.by_offset[0]);
			assert_le(d / ref, 1e-13);
			assert_gt(whole / ref, 1e-3);
		}
	report_done(&rep);
}

/* The name round-trips; bad strengths are refused. */
static void test_parse(void **state)
{
	(void)state;
	RotKind k = ROT_HAAR;
	double eps = 7;
	assert_int_equal(rotation_kind_parse_eps("pair-mix:1e-3", &k, &eps), 0);
	assert_int_equal(k, ROT_PAIR_MIX);
	assert_close(eps, 1e-3, 0);
	char buf[48];
	rotation_kind_format(k, eps, buf, sizeof buf);
	assert_string_equal(buf, "pair-mix:0.001");
	eps = 0.5;
	assert_int_equal(rotation_kind_parse_eps("pair-mix", &k, &eps), 0);
	assert_close(eps, 0.5, 0);
	const char *bad[] = {"pair-mix:", "pair-mix:0", "pair-mix:2", "pair-mix:-1e-3",
			     "pair-mix:0x1p-3", "pair-mix:inf", "pair-mix:nan", "haar:1e-3",
			     "pair-mix:1e-3x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (!rotation_kind_parse_eps(bad[i], &k, &eps))
			fail_msg("'%s' was accepted", bad[i]);
	assert_int_equal(rotation_kind_parse_eps("haar", &k, &eps), 0);
	assert_int_equal(k, ROT_HAAR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_growth_closed_form),
		cmocka_unit_test(test_growth_is_spectral_norm),
		cmocka_unit_test(test_growth_linear_then_saturates),
		cmocka_unit_test(test_break_offset),
		cmocka_unit_test(test_engine_scores),
		cmocka_unit_test(test_heat_diagonal_apart),
		cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
