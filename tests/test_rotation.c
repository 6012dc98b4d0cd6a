#include "config.h"

#include "core/rope.h"
#include "core/rotation.h"
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
				if (commutator(R, &s, 16) < 1e-3)
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds_are_orthogonal),
		cmocka_unit_test(test_which_kinds_commute),
		cmocka_unit_test(test_layout_mismatch_commutes_elsewhere),
		cmocka_unit_test(test_pair_reflect_blocks),
		cmocka_unit_test(test_scale_pairs),
		cmocka_unit_test(test_pair_angles),
		cmocka_unit_test(test_reproducible),
		cmocka_unit_test(test_kind_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
