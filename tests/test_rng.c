#include "config.h"

#include "core/rng.h"
#include "tests/testutil.h"

/* The published definition of xoshiro256**: its first ten outputs from
 * the state {1, 2, 3, 4}, as the authors' (Blackman and Vigna) reference
 * code gives them. */
static const uint64_t want[10] = {
	11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL,
	1216172134540287360ULL, 607988272756665600ULL, 16172922978634559625ULL,
	8476171486693032832ULL, 10595114339597558777ULL, 2904607092377533576ULL,
};

static void test_xoshiro_reference(void **state)
{
	(void)state;
	Rng r = {{1, 2, 3, 4}};
	for (int i = 0; i < 10; i++)
		assert_true(rng_next(&r) == want[i]);
}

/* The side-by-side streams: a lane holding the state {1, 2, 3, 4} draws
 * the published outputs whatever the other lanes hold, each as the
 * uniform 2 (1 + (x >> 12) 2^-52) - 3 in [-1, 1); and seeding gives lane
 * k the scalar generator's state for stream * RNG_LANES + k. */
static void test_lanes(void **state)
{
	(void)state;
	RngLanes g;
	rng_lanes_seed(&g, 99, 5);
	for (size_t k = 0; k < RNG_LANES; k++) {
		Rng one;
		rng_seed(&one, 99, 5 * RNG_LANES + k);
		for (int w = 0; w < 4; w++)
			assert_true(g.s[w][k] == one.s[w]);
	}
	const size_t lane = 3;
	for (int w = 0; w < 4; w++)
		g.s[w][lane] = (uint64_t)w + 1;
	for (int i = 0; i < 10; i++) {
		double out[RNG_LANES];
		rng_lanes_signed(&g, out);
		double u = 2.0 * (1.0 + (double)(want[i] >> 12) * 0x1.0p-52) - 3.0;
		assert_true(out[lane] == u);
		for (size_t k = 0; k < RNG_LANES; k++)
			assert_true(out[k] >= -1.0 && out[k] < 1.0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xoshiro_reference),
		cmocka_unit_test(test_lanes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
