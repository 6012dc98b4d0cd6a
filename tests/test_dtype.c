#include "config.h"

#include <float.h>

#include "tests/testutil.h"

#include "core/dtype.h"
#include "data/ggml_types.h"

/* The storage-type table against the formats' own definitions: IEEE 754
 * binary64/32/16 and bfloat16 (8 significand bits, float32's exponent),
 * ggml's block layouts (ggml-common.h's block structs: QK4_0 = QK4_1 =
 * QK5_0 = QK5_1 = QK8_0 = QK4_NL = 32 elements, QK_K = 256 for the
 * K-quants and IQ4_XS) and ggml's enum ggml_type ids (F32 0, F16 1, Q4_0
 * 2, Q4_1 3, Q5_0 6, Q5_1 7, Q8_0 8, Q2_K 10 .. Q8_K 15, IQ2_XXS 16,
 * IQ4_NL 20, IQ4_XS 23, F64 28, BF16 30). */

static void test_names(void **state)
{
	(void)state;
	const char *names[] = {"F64",  "F32",  "F16",  "BF16", "Q4_0", "Q4_1",
			       "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K",
			       "Q5_K", "Q6_K", "Q8_K", "IQ4_NL", "IQ4_XS"};
	const char *lower[] = {"f64",  "f32",  "f16",  "bf16", "q4_0", "q4_1",
			       "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k",
			       "q5_k", "q6_k", "q8_k", "iq4_nl", "iq4_xs"};
	assert_int_equal(sizeof names / sizeof names[0], STORE_COUNT);
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
	char buf[192];
	dtype_list(buf, sizeof buf, false);
	assert_string_equal(buf, "F64, F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, "
			    "Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS");
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
	assert_true(dtype_is_block(STORE_Q4_K));
	assert_false(dtype_is_block(STORE_F16));
	assert_false(dtype_is_block(STORE_UNSUPPORTED));
	/* ggml-common.h: ggml_half is 2 bytes, QK_K / 16 = 16 sub-blocks of
	 * 16 and K_SCALE_SIZE = 12 bytes of 6-bit scales and mins */
	const struct {
		StoreDtype t;
		size_t block, bytes;
	} blocks[] = {
		{STORE_Q4_0, 32, 2 + 16},                      /* d, qs[16] */
		{STORE_Q4_1, 32, 2 + 2 + 16},                  /* d, m, qs[16] */
		{STORE_Q5_0, 32, 2 + 4 + 16},                  /* d, qh[4], qs[16] */
		{STORE_Q5_1, 32, 2 + 2 + 4 + 16},              /* d, m, qh[4], qs[16] */
		{STORE_Q8_0, 32, 2 + 32},                      /* d, qs[32] */
		{STORE_Q2_K, 256, 16 + 64 + 2 + 2},            /* scales, qs, d, dmin */
		{STORE_Q3_K, 256, 32 + 64 + 12 + 2},           /* hmask, qs, scales, d */
		{STORE_Q4_K, 256, 2 + 2 + 12 + 128},           /* d, dmin, scales, qs */
		{STORE_Q5_K, 256, 2 + 2 + 12 + 32 + 128},      /* d, dmin, scales, qh, qs */
		{STORE_Q6_K, 256, 128 + 64 + 16 + 2},          /* ql, qh, scales, d */
		{STORE_Q8_K, 256, 4 + 256 + 2 * 16},           /* f32 d, qs, bsums */
		{STORE_IQ4_NL, 32, 2 + 16},                    /* d, qs[16] */
		{STORE_IQ4_XS, 256, 2 + 2 + 4 + 128},          /* d, scales_h, scales_l, qs */
	};
	for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
		assert_int_equal(dtype_block(blocks[i].t), blocks[i].block);
		assert_int_equal(dtype_block_bytes(blocks[i].t), blocks[i].bytes);
	}
}

static void test_ggml_ids(void **state)
{
	(void)state;
	const struct {
		unsigned id;
		StoreDtype t;
	} known[] = {{0, STORE_F32},   {1, STORE_F16},     {2, STORE_Q4_0},    {3, STORE_Q4_1},
		     {6, STORE_Q5_0},  {7, STORE_Q5_1},    {8, STORE_Q8_0},    {10, STORE_Q2_K},
		     {11, STORE_Q3_K}, {12, STORE_Q4_K},   {13, STORE_Q5_K},   {14, STORE_Q6_K},
		     {15, STORE_Q8_K}, {20, STORE_IQ4_NL}, {23, STORE_IQ4_XS}, {28, STORE_F64},
		     {30, STORE_BF16}};
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
	/* IQ2_XXS (16), which ropefold does not decode: 256 elements in 66
	 * bytes (ggml-common.h block_iq2_xxs: d, qs[QK_K / 8] of uint16) */
	GgmlType g;
	assert_true(ggml_type_of(16, &g));
	assert_int_equal(g.dtype, STORE_UNSUPPORTED);
	assert_string_equal(g.name, "IQ2_XXS");
	assert_int_equal(g.block, 256);
	assert_int_equal(g.block_bytes, 2 + 2 * 32);
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
	assert_close(dtype_unit_roundoff(STORE_Q8_0), 1.0 / 254, 0);
	assert_close(dtype_unit_roundoff(STORE_Q4_K), 1.0 / 15, 0);
	assert_close(dtype_quant_step(STORE_Q6_K), 1.0 / 32, 0);
	assert_close(dtype_quant_step(STORE_F16), 0, 0);
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

/* Rounding to a float type against its definitions: for f32 and f16 the
 * compiler's conversions (IEEE 754 round to nearest, ties to even, with
 * subnormals and overflow to infinity); for bf16 (8 significant bits, f32's
 * exponent range) the nearest multiple of the quantum 2^(e - 7), ties to
 * even, written out here. Values spread over exponents from below f16's
 * subnormals to above its largest, and the ties and overflows by hand. */
static double bf16_ref(double x)
{
	if (x == 0 || !isfinite(x))
		return x;
	int e = ilogb(x) < -126 ? -126 : ilogb(x);
	double q = ldexp(1.0, e - 7), r = nearbyint(x / q) * q;
	return fabs(r) > 0x1.fep127 ? copysign(INFINITY, x) : r;
}

static void test_round_definitions(void **state)
{
	(void)state;
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < 200000; i++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		double m = 1.0 + (double)(s >> 11) * 0x1p-53;   /* [1, 2): every bit random */
		int e = (int)((s >> 3) % 60) - 40;               /* 2^-40 .. 2^19 */
		double x = ldexp((s & 1) ? -m : m, e);
		if (i % 7 == 0)   /* a tie or near-tie for bf16: low bits cleared */
			x = ldexp(ldexp(rint(ldexp(m, 8)), -8), e);
		double f = x, h = x, b = x;
		dtype_round(STORE_F32, &f, 1);
		assert_true(f == (double)(float)x);
		dtype_round(STORE_BF16, &b, 1);
		assert_true(b == bf16_ref(x));
		dtype_round(STORE_F16, &h, 1);
#ifdef __FLT16_MAX__
		assert_true(h == (double)(_Float16)x);
#else
		(void)h;
#endif
	}
	double t[] = {1.0 + 0x1p-8, 1.0 + 3 * 0x1p-8, 0x1p128 * (1 - 0x1p-10), -0x1.ffp127,
		      65519.0, 65520.0, 0x1p-25, 0x1.8p-24};
	double want_bf[] = {1.0, 1.0 + 0x1p-6, INFINITY, -INFINITY};
	for (int i = 0; i < 4; i++) {
		double v = t[i];
		dtype_round(STORE_BF16, &v, 1);
		assert_true(v == want_bf[i]);
	}
	double want_h[] = {65504.0, INFINITY, 0.0, 0x1p-23};  /* 2^-25 ties to 0; 1.5 * 2^-24 to even 2^-23 */
	for (int i = 0; i < 4; i++) {
		double v = t[4 + i];
		dtype_round(STORE_F16, &v, 1);
		assert_true(v == want_h[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_ggml_ids),
		cmocka_unit_test(test_roundoff),
		cmocka_unit_test(test_gaps),
		cmocka_unit_test(test_round_definitions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
