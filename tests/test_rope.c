#include "config.h"

#include "core/rope.h"
#include "core/rng.h"
#include "tests/testutil.h"

/* (Theta_m q) . (Theta_n k) == q^T Theta_(n-m) k, through the table path
 * rope_apply_rows and the explicit matrix path rope_theta_matrix. */
static void check_relative_position(RopeLayout layout, size_t d, size_t r,
				    RopeScalingKind sk)
{
	RopeSpec spec = rope_spec_default(d);
	spec.layout = layout;
	spec.rotary_dim = r;
	spec.scaling.kind = sk;
	spec.scaling.factor = sk == ROPE_SCALING_NONE ? 0 : 4.0;
	size_t T = 40;
	RopeTable tab;
	assert_int_equal(rope_table_init(&tab, &spec, T), RF_OK);
	double af = rope_attention_factor(&spec);
	Rng rng;
	rng_seed(&rng, 7, 0);
	double *q = malloc(T * d * sizeof(double)), *k = malloc(T * d * sizeof(double));
	double *q0 = malloc(d * sizeof(double)), *k0 = malloc(d * sizeof(double));
	double *Th = malloc(d * d * sizeof(double));
	for (size_t i = 0; i < d; i++) {
		q0[i] = rng_normal(&rng);
		k0[i] = rng_normal(&rng);
	}
	for (size_t t = 0; t < T; t++) {
		memcpy(q + t * d, q0, d * sizeof(double));
		memcpy(k + t * d, k0, d * sizeof(double));
	}
	rope_apply_rows(&tab, T, 1, d, q, d);
	rope_apply_rows(&tab, T, 1, d, k, d);
	/* Coordinates past r are untouched. */
	for (size_t t = 0; t < T; t++)
		for (size_t i = r; i < d; i++)
			assert_true(q[t * d + i] == q0[i]);
	for (size_t m = 0; m < T; m += 3)
		for (size_t n = 0; n < T; n += 5) {
			double lhs = 0, rhs = 0;
			for (size_t i = 0; i < d; i++)
				lhs += q[m * d + i] * k[n * d + i];
			rope_theta_matrix(tab.freqs, layout, r, d, (double)n - (double)m, Th);
			for (size_t i = 0; i < d; i++) {
				double s = 0;
				for (size_t j = 0; j < d; j++)
					s += Th[i * d + j] * k0[j];
				rhs += q0[i] * s;
			}
			if (af == 1.0)
				assert_close(lhs, rhs, 1e-12 * (1 + fabs(rhs)));
		}
	free(q);
	free(k);
	free(q0);
	free(k0);
	free(Th);
	rope_table_done(&tab);
}

static void test_relative_position_half(void **state)
{
	(void)state;
	check_relative_position(ROPE_HALF, 16, 16, ROPE_SCALING_NONE);
	check_relative_position(ROPE_HALF, 24, 8, ROPE_SCALING_NONE);
	check_relative_position(ROPE_HALF, 32, 32, ROPE_SCALING_LLAMA3);
}

static void test_relative_position_interleaved(void **state)
{
	(void)state;
	check_relative_position(ROPE_INTERLEAVED, 16, 16, ROPE_SCALING_NONE);
	check_relative_position(ROPE_INTERLEAVED, 24, 8, ROPE_SCALING_NONE);
	check_relative_position(ROPE_INTERLEAVED, 32, 32, ROPE_SCALING_LINEAR);
	check_relative_position(ROPE_INTERLEAVED, 32, 16, ROPE_SCALING_NTK);
}

static void test_pair_coords(void **state)
{
	(void)state;
	size_t a, b;
	rope_pair_coords(ROPE_INTERLEAVED, 8, 3, &a, &b);
	assert_int_equal(a, 6);
	assert_int_equal(b, 7);
	rope_pair_coords(ROPE_HALF, 8, 3, &a, &b);
	assert_int_equal(a, 3);
	assert_int_equal(b, 7);
	rope_pair_coords(ROPE_HALF, 8, 0, &a, &b);
	assert_int_equal(a, 0);
	assert_int_equal(b, 4);
	/* rope_coord_pair inverts it; past the rotary dim is pair r/2 */
	for (int layout = 0; layout < 2; layout++) {
		for (size_t i = 0; i < 4; i++) {
			rope_pair_coords((RopeLayout)layout, 8, i, &a, &b);
			assert_int_equal(rope_coord_pair((RopeLayout)layout, 8, a), i);
			assert_int_equal(rope_coord_pair((RopeLayout)layout, 8, b), i);
		}
		assert_int_equal(rope_coord_pair((RopeLayout)layout, 8, 9), 4);
	}
}

/* Theta_m^T Theta_n = Theta_(n-m), and Theta is orthogonal. */
static void test_theta_group_law(void **state)
{
	(void)state;
	size_t d = 12, r = 8;
	RopeSpec spec = rope_spec_default(d);
	spec.rotary_dim = r;
	double f[4], Tm[144], Tn[144], Td[144], P[144], TmT[144];
	assert_int_equal(rope_frequencies(&spec, f), RF_OK);
	for (int layout = 0; layout < 2; layout++) {
		rope_theta_matrix(f, (RopeLayout)layout, r, d, 5, Tm);
		rope_theta_matrix(f, (RopeLayout)layout, r, d, 9, Tn);
		rope_theta_matrix(f, (RopeLayout)layout, r, d, 4, Td);
		for (size_t i = 0; i < d; i++)
			for (size_t j = 0; j < d; j++)
				TmT[i * d + j] = Tm[j * d + i];
		tu_matmul(TmT, Tn, P, d);
		assert_true(tu_max_diff(P, Td, d * d) < 1e-14);
		assert_true(tu_ortho_defect(Tm, d) < 1e-14);
	}
}

static void test_frequencies_plain(void **state)
{
	(void)state;
	RopeSpec spec = rope_spec_default(8);
	spec.theta = 10000;
	double f[4];
	assert_int_equal(rope_frequencies(&spec, f), RF_OK);
	assert_close(f[0], 1.0, 0);
	assert_close(f[1], 0.1, 1e-15);
	assert_close(f[2], 0.01, 1e-16);
	assert_close(f[3], 0.001, 1e-17);
	spec.scaling.kind = ROPE_SCALING_LINEAR;
	spec.scaling.factor = 4;
	assert_int_equal(rope_frequencies(&spec, f), RF_OK);
	assert_close(f[1], 0.025, 1e-16);
}

/* llama3: short wavelengths unchanged, long ones divided by the factor,
 * the band between smoothly interpolated (monotone). */
static void test_frequencies_llama3(void **state)
{
	(void)state;
	RopeSpec spec = rope_spec_default(128);
	spec.theta = 500000;
	spec.scaling.kind = ROPE_SCALING_LLAMA3;
	spec.scaling.factor = 8;
	double f[64], g[64];
	assert_int_equal(rope_frequencies(&spec, f), RF_OK);
	RopeSpec plain = spec;
	plain.scaling.kind = ROPE_SCALING_NONE;
	assert_int_equal(rope_frequencies(&plain, g), RF_OK);
	for (size_t i = 0; i < 64; i++) {
		double wl = 2 * M_PI / g[i];
		if (wl < 8192.0 / 4)
			assert_close(f[i], g[i], 0);
		else if (wl > 8192.0)
			assert_close(f[i], g[i] / 8, 1e-18);
		else {
			assert_true(f[i] < g[i] && f[i] > g[i] / 8);
		}
		if (i)
			assert_true(f[i] < f[i - 1]);
	}
}

/* YaRN: the fastest pairs keep their frequency, the slowest are
 * interpolated by the factor, and cos/sin get 0.1 ln(s) + 1. */
static void test_frequencies_yarn(void **state)
{
	(void)state;
	RopeSpec spec = rope_spec_default(64);
	spec.scaling.kind = ROPE_SCALING_YARN;
	spec.scaling.factor = 4;
	double f[32], g[32];
	assert_int_equal(rope_frequencies(&spec, f), RF_OK);
	RopeSpec plain = spec;
	plain.scaling.kind = ROPE_SCALING_NONE;
	rope_frequencies(&plain, g);
	assert_close(f[0], g[0], 1e-15);
	assert_close(f[31], g[31] / 4, 1e-18);
	assert_close(rope_attention_factor(&spec), 0.1 * log(4.0) + 1.0, 1e-15);
}

/* A Phi-3-style longrope spec: theta 10^4 over r = 8, so the unscaled
 * frequencies are 10^-i, i = 0..3; the switch at 16 positions and
 * max / original = 64 / 16 = 4, as tests/family_fixtures.py's phi3-longrope. */
static RopeSpec longrope_spec(void)
{
	static const double shortf[4] = {1.0, 1.25, 1.5, 2.0}, longf[4] = {1.0, 2.0, 4.0, 8.0};
	RopeSpec spec = rope_spec_default(16);
	spec.rotary_dim = 8;
	spec.scaling.kind = ROPE_SCALING_LONGROPE;
	spec.scaling.factor = 4;
	spec.scaling.original_max_pos = 16;
	spec.scaling.n_pairs = 4;
	memcpy(spec.scaling.factors, shortf, sizeof shortf);
	memcpy(spec.scaling.long_factors, longf, sizeof longf);
	return spec;
}

/* HF's _compute_longrope_parameters: inv_freq = 1 / (ext * theta^(2i/r)),
 * ext = short_factor while max(position_ids) + 1 <= original, long_factor
 * past it; attention factor sqrt(1 + ln(factor) / ln(original)) =
 * sqrt(1 + ln 4 / ln 16) = sqrt(1.5) on both sides of the switch. */
static void test_frequencies_longrope(void **state)
{
	(void)state;
	RopeSpec spec = longrope_spec();
	const double want_short[4] = {1.0, 0.08, 0.01 / 1.5, 0.0005};
	const double want_long[4] = {1.0, 0.05, 0.0025, 0.000125};
	double f[4];
	assert_int_equal(rope_spec_check(&spec, 16, NULL), RF_OK);
	assert_int_equal(rope_frequencies_at(&spec, 16, f), RF_OK);
	for (size_t i = 0; i < 4; i++)
		assert_close(f[i], want_short[i], 1e-17);
	assert_false(rope_uses_long_factors(&spec, 16));
	assert_true(rope_uses_long_factors(&spec, 17));
	assert_int_equal(rope_frequencies_at(&spec, 17, f), RF_OK);
	for (size_t i = 0; i < 4; i++)
		assert_close(f[i], want_long[i], 1e-17);
	/* no length: the short factors, as HF's inv_freq at load time */
	assert_int_equal(rope_frequencies(&spec, f), RF_OK);
	assert_close(f[1], 0.08, 1e-17);
	assert_close(rope_attention_factor(&spec), sqrt(1.5), 1e-15);
	/* the tables: cos and sin of p w_i, times the attention factor */
	RopeTable t;
	assert_int_equal(rope_table_init(&t, &spec, 20), RF_OK);
	assert_close(t.cos[19 * 4 + 1], cos(19 * 0.05) * sqrt(1.5), 1e-15);
	assert_close(t.sin[3 * 4 + 2], sin(3 * 0.0025) * sqrt(1.5), 1e-15);
	rope_table_done(&t);
	assert_int_equal(rope_table_init(&t, &spec, 16), RF_OK);
	assert_close(t.sin[15 * 4 + 1], sin(15 * 0.08) * sqrt(1.5), 1e-15);
	rope_table_done(&t);
	/* a given attention factor wins; factor <= 1 means none */
	spec.scaling.attention_factor = 1.25;
	assert_close(rope_attention_factor(&spec), 1.25, 0);
	spec.scaling.attention_factor = 0;
	spec.scaling.factor = 1;
	assert_close(rope_attention_factor(&spec), 1.0, 0);
	/* a table that does not fit the rotary dim, or a factor that is not
	 * a positive number, is refused */
	spec = longrope_spec();
	spec.rotary_dim = 16;
	const char *why = NULL;
	assert_int_equal(rope_spec_check(&spec, 16, &why), RF_ERR_ARG);
	assert_non_null(strstr(why, "one factor per pair"));
	double g[8];
	assert_int_equal(rope_frequencies(&spec, g), RF_ERR_ARG);
	spec = longrope_spec();
	spec.scaling.long_factors[2] = -1;
	assert_int_equal(rope_spec_check(&spec, 16, &why), RF_ERR_ARG);
	spec = longrope_spec();
	spec.scaling.original_max_pos = 0;
	assert_int_equal(rope_spec_check(&spec, 16, &why), RF_ERR_ARG);
}

/* HF's _compute_dynamic_ntk_parameters with max_position_embeddings L:
 * the default frequencies while T <= L, then the base theta (factor T / L
 * - (factor - 1))^(r / (r - 2)); without L (the --rope-scaling flag) the
 * full stretch factor^(r / (r - 2)). Here theta 10^4, r = 8, factor 2,
 * L = 16: at T = 32 the base is 10^4 3^(4/3). */
static void test_frequencies_dynamic(void **state)
{
	(void)state;
	RopeSpec spec = rope_spec_default(8);
	spec.scaling.kind = ROPE_SCALING_NTK;
	spec.scaling.factor = 2;
	spec.scaling.original_max_pos = 16;
	double f[4];
	assert_int_equal(rope_frequencies_at(&spec, 16, f), RF_OK);
	for (size_t i = 0; i < 4; i++)
		assert_close(f[i], pow(10.0, -(double)i), 1e-17);
	assert_int_equal(rope_frequencies_at(&spec, 32, f), RF_OK);
	double base = 1e4 * pow(3.0, 4.0 / 3.0);
	for (size_t i = 0; i < 4; i++)
		assert_close(f[i], pow(base, -2.0 * (double)i / 8.0), 1e-16);
	spec.scaling.original_max_pos = 0;
	assert_int_equal(rope_frequencies_at(&spec, 8, f), RF_OK);
	assert_close(f[1], pow(1e4 * pow(2.0, 4.0 / 3.0), -0.25), 1e-16);
}

/* llama.cpp's llama3 conversion stores, per pair, the factor f_i with
 * w_i / f_i equal to HF's llama3 frequency (convert_hf_to_gguf.py: 1 for
 * wavelengths below original / high_freq_factor, factor above
 * original / low_freq_factor, 1 / ((1 - smooth) / factor + smooth)
 * between); ggml divides the angle p w_i by it. The factors written that
 * way must reproduce the llama3 rule. */
static void test_frequencies_rope_freqs(void **state)
{
	(void)state;
	RopeSpec l3 = rope_spec_default(128);
	l3.theta = 500000;
	l3.scaling.kind = ROPE_SCALING_LLAMA3;
	l3.scaling.factor = 8;
	l3.scaling.low_freq_factor = 1;
	l3.scaling.high_freq_factor = 4;
	l3.scaling.original_max_pos = 8192;
	RopeSpec ff = rope_spec_default(128);
	ff.theta = 500000;
	ff.scaling.kind = ROPE_SCALING_FREQ_FACTORS;
	ff.scaling.factor = 1;
	ff.scaling.n_pairs = 64;
	for (size_t i = 0; i < 64; i++) {
		double w = pow(500000.0, -2.0 * (double)i / 128.0), wl = 2 * M_PI / w;
		double smooth = (8192.0 / wl - 1.0) / (4.0 - 1.0);
		ff.scaling.factors[i] = wl < 8192.0 / 4 ? 1.0 : wl > 8192.0 ? 8.0
				       : 1.0 / ((1.0 - smooth) / 8.0 + smooth);
	}
	assert_int_equal(rope_spec_check(&ff, 128, NULL), RF_OK);
	double a[64], b[64];
	assert_int_equal(rope_frequencies(&l3, a), RF_OK);
	assert_int_equal(rope_frequencies_at(&ff, 1000000, b), RF_OK);
	for (size_t i = 0; i < 64; i++)
		assert_close(b[i], a[i], 1e-15 * a[i]);
	assert_close(rope_attention_factor(&ff), 1.0, 0);
	char buf[32];
	rope_scaling_format(&ff.scaling, buf, sizeof buf);
	assert_string_equal(buf, "rope_freqs");
	RopeSpec lr = longrope_spec();
	rope_scaling_format(&lr.scaling, buf, sizeof buf);
	assert_string_equal(buf, "longrope");
	/* equal specs, and a spec differing only in one table entry */
	RopeSpec g = ff;
	assert_true(rope_spec_equal(&ff, &g));
	g.scaling.factors[63] *= 2;
	assert_false(rope_spec_equal(&ff, &g));
	assert_false(rope_spec_equal(&ff, &l3));
}

static void test_parsers(void **state)
{
	(void)state;
	RopeScaling s;
	RopeLayout l;
	char buf[32];
	assert_int_equal(rope_scaling_parse("none", &s), 0);
	assert_int_equal(s.kind, ROPE_SCALING_NONE);
	assert_int_equal(rope_scaling_parse("yarn:4", &s), 0);
	assert_int_equal(s.kind, ROPE_SCALING_YARN);
	rope_scaling_format(&s, buf, sizeof buf);
	assert_string_equal(buf, "yarn:4");
	assert_int_equal(rope_scaling_parse("llama3:8", &s), 0);
	assert_int_equal(rope_scaling_parse("linear", &s), -1);
	assert_int_equal(rope_scaling_parse("cubic:2", &s), -1);
	/* F from 1 (HF's rules) to 1e6, both ends included, in decimal */
	assert_int_equal(rope_scaling_parse("linear:1", &s), 0);
	assert_int_equal(rope_scaling_parse("ntk:1e6", &s), 0);
	assert_int_equal(rope_scaling_parse("ntk:1000001", &s), -2);
	assert_int_equal(rope_scaling_parse("yarn:1e308", &s), -2);
	assert_int_equal(rope_scaling_parse("llama3:0.999", &s), -2);
	assert_int_equal(rope_scaling_parse("linear:0", &s), -2);
	assert_int_equal(rope_scaling_parse("linear:-2", &s), -2);
	assert_int_equal(rope_scaling_parse("linear:x", &s), -2);
	assert_int_equal(rope_scaling_parse("linear:", &s), -2);
	assert_int_equal(rope_scaling_parse("yarn:0x10", &s), -2);
	assert_int_equal(rope_scaling_parse("yarn: 4", &s), -2);
	assert_int_equal(rope_scaling_parse("yarn:4 ", &s), -2);
	assert_int_equal(rope_scaling_parse("yarn:inf", &s), -2);
	assert_int_equal(rope_scaling_parse("yarn:nan", &s), -2);
	assert_int_equal(rope_layout_parse("half", &l), 0);
	assert_int_equal(l, ROPE_HALF);
	assert_int_equal(rope_layout_parse("interleaved", &l), 0);
	assert_int_equal(l, ROPE_INTERLEAVED);
	assert_int_equal(rope_layout_parse("diagonal", &l), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relative_position_half),
		cmocka_unit_test(test_relative_position_interleaved),
		cmocka_unit_test(test_pair_coords),
		cmocka_unit_test(test_theta_group_law),
		cmocka_unit_test(test_frequencies_plain),
		cmocka_unit_test(test_frequencies_llama3),
		cmocka_unit_test(test_frequencies_yarn),
		cmocka_unit_test(test_frequencies_longrope),
		cmocka_unit_test(test_frequencies_rope_freqs),
		cmocka_unit_test(test_frequencies_dynamic),
		cmocka_unit_test(test_parsers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
