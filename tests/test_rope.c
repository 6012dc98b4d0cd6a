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
		cmocka_unit_test(test_parsers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
