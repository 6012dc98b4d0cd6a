#include "config.h"

#include <float.h>

#include "tests/testutil.h"

#include "core/dtype.h"
#include "data/ggml_types.h"

/* The storage-type table against the formats' own definitions: IEEE 754
 * binary64/32/16 and bfloat16 (8 significand bits, float32's exponent),
 * ggml's block layouts (ggml-common.h: block_q8_0 is an f16 scale and 32
 * int8, block_q4_0 an f16 scale and 16 bytes of nibbles, QK8_0 = QK4_0 =
 * 32) and ggml's enum ggml_type ids (F32 0, F16 1, Q4_0 2, Q8_0 8, F64 28,
 * BF16 30). */

static void test_names(void **state)
{
	(void)state;
	const char *names[] = {"F64", "F32", "F16", "BF16", "Q8_0", "Q4_0"};
	const char *lower[] = {"f64", "f32", "f16", "bf16", "q8_0", "q4_0"};
	for (int t = 0; t < STORE_COUNT; t++) {
		StoreDtype p;
		assert_string_equal(dtype_name((StoreDtype)t), names[t]);
		assert_string_equal(dtype_lower_name((StoreDtype)t), lower[t]);
		assert_int_equal(dtype_parse(names[t], &p), 0);
		assert_int_equal(p, t);
		assert_int_equal(dtype_parse(lower[t], &p), 0);
		assert_int_equal(p, t);
	}
	StoreDtype p;
	assert_int_equal(dtype_parse("Bf16", &p), 0);
	assert_int_equal(p, STORE_BF16);
	assert_int_equal(dtype_parse("I8", &p), -1);
	assert_int_equal(dtype_parse("keep", &p), -1);
	assert_string_equal(dtype_name(STORE_UNSUPPORTED), "?");
	char buf[128];
	dtype_list(buf, sizeof buf, false);
	assert_string_equal(buf, "F64, F32, F16, BF16, Q8_0, Q4_0");
	dtype_list(buf, sizeof buf, true);
	assert_string_equal(buf, "F64, F32, F16, BF16");
}

static void test_geometry(void **state)
{
	(void)state;
	size_t b;
	assert_true(dtype_bytes(STORE_F64, 3, &b) && b == 24);
	assert_true(dtype_bytes(STORE_F32, 3, &b) && b == 12);
	assert_true(dtype_bytes(STORE_F16, 3, &b) && b == 6);
	assert_true(dtype_bytes(STORE_BF16, 3, &b) && b == 6);
	assert_true(dtype_bytes(STORE_Q8_0, 64, &b) && b == 2 * (2 + 32));
	assert_true(dtype_bytes(STORE_Q4_0, 64, &b) && b == 2 * (2 + 16));
	assert_false(dtype_bytes(STORE_Q8_0, 33, &b));          /* a partial block */
	assert_false(dtype_bytes(STORE_F64, SIZE_MAX / 4, &b)); /* overflow */
	assert_false(dtype_bytes(STORE_UNSUPPORTED, 1, &b));
	assert_int_equal(dtype_block(STORE_Q4_0), 32);
	assert_int_equal(dtype_block(STORE_BF16), 1);
	assert_true(dtype_is_float(STORE_BF16));
	assert_false(dtype_is_float(STORE_Q8_0));
	assert_false(dtype_is_float(STORE_UNSUPPORTED));
}

static void test_ggml_ids(void **state)
{
	(void)state;
	const struct {
		unsigned id;
		StoreDtype t;
	} known[] = {{0, STORE_F32}, {1, STORE_F16}, {2, STORE_Q4_0},
		     {8, STORE_Q8_0}, {28, STORE_F64}, {30, STORE_BF16}};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		GgmlType g;
		unsigned id;
		assert_true(ggml_type_of(known[i].id, &g));
		assert_int_equal(g.dtype, known[i].t);
		assert_string_equal(g.name, dtype_name(known[i].t));
		assert_int_equal(g.block, dtype_block(known[i].t));
		assert_int_equal(g.block_bytes, dtype_block_bytes(known[i].t));
		assert_true(ggml_type_id(known[i].t, &id));
		assert_int_equal(id, known[i].id);
	}
	/* Q6_K (14): 256 elements in 210 bytes (ggml-common.h block_q6_K) */
	GgmlType g;
	assert_true(ggml_type_of(14, &g));
	assert_int_equal(g.dtype, STORE_UNSUPPORTED);
	assert_string_equal(g.name, "Q6_K");
	assert_int_equal(g.block, 256);
	assert_int_equal(g.block_bytes, 210);
	assert_false(ggml_type_of(4, &g));   /* Q4_2, removed from ggml */
	unsigned id;
	assert_false(ggml_type_id(STORE_UNSUPPORTED, &id));
}

static void test_roundoff(void **state)
{
	(void)state;
	assert_close(dtype_unit_roundoff(STORE_F64), DBL_EPSILON / 2, 0);
	assert_close(dtype_unit_roundoff(STORE_F32), FLT_EPSILON / 2, 0);
	assert_close(dtype_unit_roundoff(STORE_F16), 0x1p-11, 0);
	assert_close(dtype_unit_roundoff(STORE_BF16), 0x1p-8, 0);
	assert_close(dtype_unit_roundoff(STORE_Q8_0), 0x1p-8, 0);
	assert_string_equal(dtype_name_of_roundoff(0x1p-11), "f16");
	assert_string_equal(dtype_name_of_roundoff(0x1p-53), "f64");
}

/* The gaps to a float's neighbours, from the formats' definitions. */
static void test_gaps(void **state)
{
	(void)state;
	double up, dn;
	dtype_gaps(STORE_F32, 1.0, &up, &dn);   /* 1 + 2^-23 above, 1 - 2^-24 below */
	assert_close(up, 0x1p-23, 0);
	assert_close(dn, 0x1p-24, 0);
	dtype_gaps(STORE_F32, -1.0, &up, &dn);  /* mirrored */
	assert_close(up, 0x1p-24, 0);
	assert_close(dn, 0x1p-23, 0);
	dtype_gaps(STORE_BF16, 3.0, &up, &dn);  /* 3 = 1.5 * 2: spacing 2^(1-7) */
	assert_close(up, 0x1p-6, 0);
	assert_close(dn, 0x1p-6, 0);
	dtype_gaps(STORE_F16, 0.0, &up, &dn);   /* the smallest subnormal, 2^-24 */
	assert_close(up, 0x1p-24, 0);
	assert_close(dn, 0x1p-24, 0);
	dtype_gaps(STORE_F16, 0x1p-14, &up, &dn);  /* the smallest normal: no halving */
	assert_close(up, 0x1p-24, 0);
	assert_close(dn, 0x1p-24, 0);
	dtype_gaps(STORE_F64, 1.0, &up, &dn);
	assert_close(up, DBL_EPSILON, 0);
	assert_close(dn, DBL_EPSILON / 2, 0);
	/* a value between two bf16 neighbours rounds to the nearer one */
	double v = 1.0 + 0x1p-8 + 0x1p-12;
	dtype_round(STORE_BF16, &v, 1);
	assert_close(v, 1.0 + 0x1p-7, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_ggml_ids),
		cmocka_unit_test(test_roundoff),
		cmocka_unit_test(test_gaps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
