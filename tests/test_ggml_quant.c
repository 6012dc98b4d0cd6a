#include "config.h"

#include "tests/testutil.h"

#include "core/rng.h"
#include "data/ggml_quant_impl.h"
#include "data/infile.h"
#include "data/model.h"
#include "data/model_tensors.h"
#include "data/tensor.h"
#include "tests/ckpt_fixtures.h"

/* ggml's block quantizations: blocks crafted byte by byte against values
 * worked out by hand from ggml's definitions (ggml-common.h's layouts,
 * ggml-quants.c's dequantize_row_*: float arithmetic, d from f16), the
 * layouts' pack/unpack, the f16 conversions, the quantizers' round trip
 * (every input inside its stored value's rounding cell), tensor_read over
 * whole and split blocks, and GGUF's bad input. */

static void put16(unsigned char *b, size_t at, uint16_t h)
{
	b[at] = (unsigned char)h;
	b[at + 1] = (unsigned char)(h >> 8);
}

/* Element e of one block of type t. */
static double elem(StoreDtype t, const unsigned char *b, size_t e)
{
	float v[GQ_MAX_BLOCK];
	ggml_quant_dequantize(t, b, 1, v);
	return v[e];
}

enum {
	H_1 = 0x3c00, H_HALF = 0x3800, H_QUARTER = 0x3400, H_2 = 0x4000, H_MHALF = 0xb800,
	H_16TH = 0x2c00, H_8TH = 0x3000, H_1024 = 0x6400, H_M16 = 0xcc00
};

static void test_blocks_by_hand(void **state)
{
	(void)state;
	unsigned char b[GQ_MAX_BYTES];

	/* Q4_0: d = -0.5; qs[3] = 0x5a: element 3 = 10 - 8 -> -1, element 19
	 * = 5 - 8 -> 1.5. */
	memset(b, 0, sizeof b);
	put16(b, 0, H_MHALF);
	b[2 + 3] = 0x5a;
	assert_true(elem(STORE_Q4_0, b, 3) == -1.0 && elem(STORE_Q4_0, b, 19) == 1.5);

	/* Q4_1 rounds in float: d = 2^-11 (1 + 2^-10) (f16 0x1001), m = 1024,
	 * q = 15: 15 d = 15 2^-11 + 15 2^-21 is exact, but 1024 + 15 d needs
	 * 32 bits; float keeps 1024 + 60 2^-13 (the ulp at 1024 is 2^-13). */
	memset(b, 0, sizeof b);
	put16(b, 0, 0x1001);
	put16(b, 2, H_1024);
	b[4] = 0x0f;
	double exact = 1024.0 + 15 * ldexp(1, -11) + 15 * ldexp(1, -21);
	assert_true(elem(STORE_Q4_1, b, 0) == 1024.0 + 60 * ldexp(1, -13));
	assert_true(elem(STORE_Q4_1, b, 0) != exact);
	assert_true(elem(STORE_Q4_1, b, 16) == 1024.0);

	/* Q5_0: d = 0.25; qh bit 20; qs[4] = 0x30: element 20 = (3 | 16) - 16
	 * -> 0.75, element 4 = 0 - 16 -> -4. */
	memset(b, 0, sizeof b);
	put16(b, 0, H_QUARTER);
	b[2 + 2] = 0x10;           /* qh byte 2, bit 4: bit 20 */
	b[6 + 4] = 0x30;
	assert_true(elem(STORE_Q5_0, b, 20) == 0.75 && elem(STORE_Q5_0, b, 4) == -4.0);

	/* Q5_1: d = 1, m = -16, every bit set: q = 31 -> 15. */
	memset(b, 0xff, sizeof b);
	put16(b, 0, H_1);
	put16(b, 2, H_M16);
	for (size_t e = 0; e < 32; e++)
		assert_true(elem(STORE_Q5_1, b, e) == 15.0);

	/* Q8_0: d = 2^-4; qs[31] = 127, qs[0] = -127. */
	memset(b, 0, sizeof b);
	put16(b, 0, H_16TH);
	b[2 + 31] = 0x7f;
	b[2] = 0x81;
	assert_true(elem(STORE_Q8_0, b, 31) == 7.9375 && elem(STORE_Q8_0, b, 0) == -7.9375);

	/* Q2_K: element 229 = 128 + 3 * 32 + 5 takes bits 6-7 of qs[32 + 5]
	 * and scales[229 / 16 = 14] = 0x5a (scale 10, min 5); d = 0.5, dmin
	 * = 0.25: 0.5 * 10 * 3 - 0.25 * 5. Element 101 (qs[5], scales[6] = 0)
	 * is 0. */
	memset(b, 0, sizeof b);
	b[14] = 0x5a;
	b[16 + 37] = 0xc0;
	put16(b, 80, H_HALF);
	put16(b, 82, H_QUARTER);
	assert_true(elem(STORE_Q2_K, b, 229) == 13.75 && elem(STORE_Q2_K, b, 101) == 0.0);
	assert_true(elem(STORE_Q2_K, b, 230) == -1.25);   /* code 0: - dmin * 5 */

	/* Q3_K: scale 13's low nibble is the high nibble of byte 5 (7), its
	 * top bits bits 6-7 of byte 9 (2): 39, level 7. Element 210 = 128 + 2
	 * * 32 + 18: low bits 4-5 of qs[32 + 18] (2), high bit 6 of hmask[18]
	 * set: level 2; d = 0.5 -> 7. Element 211: hmask clear, 0 - 4 -> -14. */
	memset(b, 0, sizeof b);
	b[96 + 5] = 0x70;
	b[96 + 9] = 0x80;
	b[32 + 50] = 0x20;
	b[18] = 0x40;
	put16(b, 108, H_HALF);
	assert_true(elem(STORE_Q3_K, b, 210) == 7.0 && elem(STORE_Q3_K, b, 211) == -14.0);

	/* Q4_K: scale 6 = (s[10] & 15) | (s[2] >> 6) << 4 = 12 | 48 = 60, min
	 * 6 = (s[10] >> 4) | (s[6] >> 6) << 4 = 3 | 16 = 19; element 200
	 * (sub-block 6) is the low nibble of qs[96 + 8] (11); d = 0.25, dmin =
	 * 0.5: 0.25 * 60 * 11 - 0.5 * 19. Element 232 (high nibble, sub-block
	 * 7, all zero) is 0. */
	memset(b, 0, sizeof b);
	put16(b, 0, H_QUARTER);
	put16(b, 2, H_HALF);
	b[4 + 10] = 0x3c;
	b[4 + 2] = 0xc0;
	b[4 + 6] = 0x40;
	b[16 + 104] = 0x0b;
	assert_true(elem(STORE_Q4_K, b, 200) == 155.5 && elem(STORE_Q4_K, b, 232) == 0.0);

	/* Q5_K: element 170 (sub-block 5) is the high nibble of qs[64 + 10]
	 * (9) plus 16 from bit 5 of qh[10]; scale 5 = (s[9] & 15) | (s[1] >> 6)
	 * << 4 = 17, min 5 = s[9] >> 4 = 2; d = 1, dmin = 2: 17 * 25 - 4. */
	memset(b, 0, sizeof b);
	put16(b, 0, H_1);
	put16(b, 2, H_2);
	b[4 + 9] = 0x21;
	b[4 + 1] = 0x40;
	b[48 + 74] = 0x90;
	b[16 + 10] = 0x20;
	assert_true(elem(STORE_Q5_K, b, 170) == 421.0);

	/* Q6_K: element 231 = 128 + 3 * 32 + 7: low nibble ql[64 + 7 + 32] >>
	 * 4 (13), top bits qh[32 + 7] >> 6 (1): 29 - 32 = -3; scales[14] =
	 * 100, d = 0.5: -150. */
	memset(b, 0, sizeof b);
	b[103] = 0xd0;
	b[128 + 39] = 0x40;
	b[192 + 14] = 100;
	put16(b, 208, H_HALF);
	assert_true(elem(STORE_Q6_K, b, 231) == -150.0);

	/* Q8_K: d = 0.1f = 13421773 2^-27, q = 3: 40265319 2^-27 needs 26
	 * bits, float rounds it to 40265320 2^-27. */
	memset(b, 0, sizeof b);
	float d01 = 0.1f;
	memcpy(b, &d01, 4);
	b[4 + 9] = 3;
	assert_true(elem(STORE_Q8_K, b, 9) == ldexp(40265320.0, -27));

	/* IQ4_NL: d = 2, qs[7] = 0x4b: element 7 = kvalues[11] = 38 -> 76,
	 * element 23 = kvalues[4] = -49 -> -98. */
	memset(b, 0, sizeof b);
	put16(b, 0, H_2);
	b[2 + 7] = 0x4b;
	assert_true(elem(STORE_IQ4_NL, b, 7) == 76.0 && elem(STORE_IQ4_NL, b, 23) == -98.0);

	/* IQ4_XS: sub-block 7's scale = (scales_l[3] >> 4) | (scales_h >> 14)
	 * << 4 = 63, level 31; d = 1/8: 3.875; element 241 = 224 + 16 + 1 is
	 * the high nibble of qs[16 * 7 + 1] (15): kvalues[15] = 113. */
	memset(b, 0, sizeof b);
	put16(b, 0, H_8TH);
	put16(b, 2, 0xc000);
	b[4 + 3] = 0xf0;
	b[8 + 113] = 0xf0;
	assert_true(elem(STORE_IQ4_XS, b, 241) == 3.875 * 113);
}

/* unpack then pack gives the bytes back (Q8_K's bsums: recomputed). */
static void test_layouts_round_trip(void **state)
{
	(void)state;
	Rng r;
	rng_seed(&r, 5, 0);
	for (int t = 0; t < STORE_COUNT; t++) {
		if (!dtype_is_block((StoreDtype)t))
			continue;
		StoreDtype q = (StoreDtype)t;
		/* the decoder's block buffers hold every block type */
		assert_true(dtype_block(q) <= GQ_MAX_BLOCK && dtype_block_bytes(q) <= GQ_MAX_BYTES);
		for (int rep = 0; rep < 50; rep++) {
			unsigned char b[GQ_MAX_BYTES], c[GQ_MAX_BYTES];
			for (size_t i = 0; i < dtype_block_bytes(q); i++)
				b[i] = (unsigned char)(rng_next(&r) >> 24);
			QFields f;
			ggml_quant_unpack(q, b, &f);
			ggml_quant_pack(q, &f, c);
			size_t n = t == STORE_Q8_K ? 260 : dtype_block_bytes(q);
			if (memcmp(b, c, n))
				fail_msg("%s: pack(unpack(b)) != b", dtype_name(q));
		}
		StoreDtype back;
		assert_true(dtype_parse(dtype_name(q), &back) == 0 && back == q);
	}
	StoreDtype q;
	assert_true(dtype_parse("q4_k", &q) == 0 && q == STORE_Q4_K);
	assert_false(dtype_parse("Q4_2", &q) == 0);
}

static void test_f16(void **state)
{
	(void)state;
	assert_true(ggml_quant_f16_to_f32(0x3c00) == 1.0f);
	assert_true(ggml_quant_f16_to_f32(0x0001) == ldexpf(1, -24));
	assert_true(ggml_quant_f16_to_f32(0x7bff) == 65504.0f);
	assert_true(isinf(ggml_quant_f16_to_f32(0xfc00)) && ggml_quant_f16_to_f32(0xfc00) < 0);
	assert_true(isnan(ggml_quant_f16_to_f32(0x7c01)));
	assert_true(signbit(ggml_quant_f16_to_f32(0x8000)));
	assert_int_equal(ggml_quant_f32_to_f16(65519.0f), 0x7bff);
	assert_int_equal(ggml_quant_f32_to_f16(65520.0f), 0x7c00);     /* tie to even: inf */
	assert_int_equal(ggml_quant_f32_to_f16(ldexpf(1, -25)), 0x0000); /* tie to even: 0 */
	assert_int_equal(ggml_quant_f32_to_f16(ldexpf(3, -26)), 0x0001);
	assert_int_equal(ggml_quant_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);
	assert_int_equal(ggml_quant_f32_to_f16(1.0f + ldexpf(3, -11)), 0x3c02);
	assert_int_equal(ggml_quant_f32_to_f16(-2.0f), 0xc000);
	assert_int_equal(ggml_quant_f32_to_f16(ldexpf(1023, -24)), 0x03ff);
	assert_int_equal(ggml_quant_f32_to_f16(ldexpf(2047, -25)), 0x0400); /* rounds up to normal */
	assert_int_equal(ggml_quant_f32_to_f16(NAN) & 0x7e00, 0x7e00);
	/* Every half survives the round trip. */
	for (unsigned h = 0; h < 65536; h++)
		if ((h & 0x7c00) != 0x7c00 || !(h & 0x3ff))
			assert_int_equal(ggml_quant_f32_to_f16(ggml_quant_f16_to_f32((uint16_t)h)), h);
}

/* Seeded inputs of several kinds, n of them. */
static void inputs(Rng *r, int kind, float *x, size_t n)
{
	double scale = pow(10, 3 * rng_uniform(r) - 2);
	for (size_t i = 0; i < n; i++) {
		double v;
		switch (kind) {
		case 0: v = rng_normal(r); break;
		case 1: v = rng_uniform(r) - 0.3; break;
		case 2: v = rng_normal(r) / (fabs(rng_normal(r)) + 0.05); break;   /* heavy tails */
		case 3: v = i % 17 == 3 ? 20 * rng_normal(r) : 0.0; break;         /* sparse */
		case 4: v = 0.37; break;
		case 5: v = 1e-9 * rng_normal(r); break;                           /* tiny */
		case 6: v = rng_normal(r) * pow(10, -3.0 * (double)(i / 16 % 4)); break;
		default: v = fabs(rng_normal(r)) + 3; break;                       /* offset */
		}
		x[i] = (float)(kind == 4 || kind == 5 ? v : v * scale);
	}
}

/* Quantize, dequantize: every input inside its value's cell; the cells of
 * interior codes as wide as the grid's step (no wider than needed). */
static void test_quantize_round_trip(void **state)
{
	(void)state;
	enum { N = 4096 };
	static float x[N], v[N];
	static unsigned char qb[N / 256 * GQ_MAX_BYTES];
	static double lo[N], hi[N];
	Rng r;
	rng_seed(&r, 11, 0);
	for (int t = 0; t < STORE_COUNT; t++) {
		if (!dtype_is_block((StoreDtype)t))
			continue;
		StoreDtype q = (StoreDtype)t;
		size_t nb = N / dtype_block(q);
		double worst = 0;
		for (int kind = 0; kind < 8; kind++) {
			for (int rep = 0; rep < 3; rep++) {
				inputs(&r, kind, x, N);
				assert_int_equal(ggml_quant_quantize(q, x, nb, qb), 0);
				ggml_quant_dequantize(q, qb, nb, v);
				ggml_quant_cells(q, qb, nb, lo, hi);
				double step = ggml_quant_max_step(q, qb, nb);
				for (size_t i = 0; i < N; i++) {
					double e = (double)x[i] - (double)v[i];
					if (e < -lo[i] || e > hi[i])
						fail_msg("%s, inputs %d: x %.9g stored as %.9g, outside [-%g, %g]",
							 dtype_name(q), kind, x[i], v[i], lo[i], hi[i]);
					if (isfinite(lo[i]) && isfinite(hi[i]) && step > 0)
						worst = fmax(worst, (lo[i] + hi[i]) / step);
				}
			}
		}
		/* An interior cell spans about one step: the step plus the
		 * f16-scale slack of the types that round on the f32 scale (up
		 * to 128 half-ulps of d on each side for Q8_0, 2 * 128 * 2^-11 =
		 * 12.5% of d; Q4_1/Q5_1 add half an ulp of their min, which can
		 * be large beside a small step). The
		 * K-quants' zero-step sub-blocks and IQ4's uneven table gaps
		 * have wider cells. */
		double allowed = t == STORE_Q4_1 || t == STORE_Q5_1 ? 1.25 : t == STORE_Q8_0 ? 1.13 : 1.1;
		if (dtype_block(q) == 32 && t != STORE_IQ4_NL && worst > allowed)
			fail_msg("%s: a cell %.3f steps wide (at most %.2f)", dtype_name(q), worst, allowed);
	}
	/* Nothing sensible to store: NaN, infinity, a scale past f16. */
	float bad[256] = {0};
	unsigned char out[GQ_MAX_BYTES];
	bad[7] = NAN;
	assert_int_equal(ggml_quant_quantize(STORE_Q4_K, bad, 1, out), -1);
	bad[7] = INFINITY;
	assert_int_equal(ggml_quant_quantize(STORE_Q8_0, bad, 1, out), -1);
	bad[7] = 1e30f;
	assert_int_equal(ggml_quant_quantize(STORE_Q8_0, bad, 1, out), -1);
	assert_int_equal(ggml_quant_quantize(STORE_Q6_K, bad, 1, out), -1);
}

/* The error bound of every block (ggml_quant_bound) holds the quantizers'
 * actual error, largest and Frobenius, on every kind of input; on normal
 * inputs its largest is within the format's step of core/dtype.c (the
 * grid step over the block's largest magnitude) times the block's largest
 * input, up to the stored scales' rounding (and Q3_K's refined scale). */
static void test_quant_bound(void **state)
{
	(void)state;
	enum { N = 4096 };
	static float x[N], v[N];
	static unsigned char qb[N / 32 * GQ_MAX_BYTES];
	Rng r;
	rng_seed(&r, 13, 0);
	for (int t = 0; t < STORE_COUNT; t++) {
		if (!dtype_is_block((StoreDtype)t))
			continue;
		StoreDtype q = (StoreDtype)t;
		size_t B = dtype_block(q), nb = N / B;
		double worst = 0;
		for (int kind = 0; kind < 8; kind++) {
			inputs(&r, kind, x, N);
			assert_int_equal(ggml_quant_quantize(q, x, nb, qb), 0);
			ggml_quant_dequantize(q, qb, nb, v);
			for (size_t k = 0; k < nb; k++) {
				double ss = 0, mx = 0, es = 0, em = 0, am = 0;
				ggml_quant_bound(q, qb + k * dtype_block_bytes(q), 1, &ss, &mx);
				for (size_t i = k * B; i < (k + 1) * B; i++) {
					double e = fabs((double)x[i] - (double)v[i]);
					es += e * e;
					em = fmax(em, e);
					am = fmax(am, fabs((double)x[i]));
				}
				if (em > mx || sqrt(es) > sqrt(ss))
					fail_msg("%s, inputs %d, block %zu: error %g (Frobenius %g) past the "
						 "bound %g (%g)", dtype_name(q), kind, k, em, sqrt(es), mx,
						 sqrt(ss));
				if (kind == 0 && mx / (dtype_quant_step(q) * am) > worst)
					worst = mx / (dtype_quant_step(q) * am);
			}
		}
		/* measured: within 1.07 of the table but for Q3_K (1.25) */
		double allowed = q == STORE_Q3_K ? 1.3 : 1.1;
		if (worst > allowed)
			fail_msg("%s: a block's bound %.3f times the format's step (at most %.2f)",
				 dtype_name(q), worst, allowed);
	}
}

/* A Q8_0 cell by hand: d = 0.5, q = 3 stored as 1.5; the quantizer's d
 * lay within half an f16 ulp (2^-12) of 0.5, which moves 1.5 by 3 2^-12. */
static void test_cells_by_hand(void **state)
{
	(void)state;
	unsigned char b[34] = {0};
	put16(b, 0, H_HALF);
	b[2] = 3;
	b[3] = 0x81;   /* -127 */
	b[4] = 0x80;   /* -128: the end of the grid */
	double lo[32], hi[32];
	ggml_quant_cells(STORE_Q8_0, b, 1, lo, hi);
	double slack = (3 + 1) * ldexp(1, -12);
	assert_close(lo[0], 0.25 + slack, 1e-6);
	assert_close(hi[0], 0.25 + slack, 1e-6);
	assert_true(isinf(lo[2]) && isfinite(hi[2]));
	assert_close(ggml_quant_max_step(STORE_Q8_0, b, 1), 0.5, 0);
}

/* A TensorRef over memory holding nb blocks of type dt. */
static void mem_tensor(TensorRef *t, InFile *f, const unsigned char *p, size_t nb, StoreDtype q)
{
	assert_int_equal(infile_wrap(f, "mem.gguf", p, nb * dtype_block_bytes(q)), 0);
	memset(t, 0, sizeof *t);
	t->name = (char *)"w";
	t->dtype = q;
	snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtype_name(q));
	t->ndim = 1;
	t->shape[0] = t->nelem = nb * dtype_block(q);
	t->src = f;
	t->nbytes = nb * dtype_block_bytes(q);
	t->file = f->path;
}

/* tensor_read of Q4_K blocks: the hand-made block of test_blocks_by_hand
 * as block 1 of 3, read whole, in ranges that split blocks, and as float;
 * a NaN scale in block 2 refused when (and only when) it is read. */
static void test_tensor_read(void **state)
{
	(void)state;
	static unsigned char p[3 * 144];
	static float x[512];
	Rng r;
	rng_seed(&r, 3, 0);
	for (size_t i = 0; i < 512; i++)
		x[i] = (float)rng_normal(&r);
	assert_int_equal(ggml_quant_quantize(STORE_Q4_K, x, 2, p), 0);
	memcpy(p + 2 * 144, p, 144);
	memset(p + 144, 0, 144);       /* block 1: by hand */
	put16(p + 144, 0, H_QUARTER);
	put16(p + 144, 2, H_HALF);
	p[144 + 4 + 10] = 0x3c;
	p[144 + 4 + 2] = 0xc0;
	p[144 + 4 + 6] = 0x40;
	p[144 + 16 + 104] = 0x0b;
	InFile f;
	TensorRef t;
	mem_tensor(&t, &f, p, 3, STORE_Q4_K);
	assert_int_equal(dtype_block(STORE_Q4_K), 256);
	size_t bytes;
	assert_true(dtype_bytes(STORE_Q4_K, 768, &bytes) && bytes == 3 * 144);
	assert_false(dtype_bytes(STORE_Q4_K, 100, &bytes));
	static double all[768], part[768];
	static float fl[768];
	char err[256];
	assert_int_equal(tensor_read(&t, 0, 768, all, err, sizeof err), 0);
	assert_true(all[256 + 200] == 155.5);
	size_t cuts[] = {0, 5, 255, 257, 300, 512, 700, 768};
	for (size_t k = 0; k + 1 < sizeof cuts / sizeof cuts[0]; k++)
		assert_int_equal(tensor_read(&t, cuts[k], cuts[k + 1] - cuts[k], part + cuts[k], err,
					     sizeof err), 0);
	assert_memory_equal(all, part, sizeof all);
	assert_int_equal(tensor_read_float(&t, 0, 768, fl, err, sizeof err), 0);
	for (size_t i = 0; i < 768; i++)
		assert_true((double)fl[i] == all[i]);
	assert_int_equal(tensor_read_float(&t, 250, 10, fl, err, sizeof err), 0);
	assert_true((double)fl[0] == all[250] && (double)fl[9] == all[259]);

	put16(p + 2 * 144, 0, 0x7e00);  /* block 2: d NaN */
	assert_int_equal(tensor_read(&t, 0, 512, part, err, sizeof err), 0);
	assert_int_equal(tensor_read(&t, 0, 768, part, err, sizeof err), -1);
	assert_non_null(strstr(err, "mem.gguf: tensor w: Q4_K block 2 (offset 288) has a NaN or "
				    "infinite scale d"));
	assert_null(strchr(err, '\n'));
	assert_int_equal(tensor_read_float(&t, 600, 1, fl, err, sizeof err), -1);
	put16(p + 2 * 144, 0, H_1);
	put16(p + 2 * 144, 2, 0xfc00);  /* dmin -inf */
	assert_int_equal(tensor_read(&t, 700, 3, part, err, sizeof err), -1);
	assert_non_null(strstr(err, "scale dmin"));
	infile_close(&f);
}

/* ---- GGUF ----------------------------------------------------------------------- */

static const LayerShape QSHAPE = {256, 4, 2, 64};

static size_t qkv(FxKv *kv)
{
	size_t n = 0;
	kv[n++] = (FxKv){"general.architecture", 's', "llama", 0};
	kv[n++] = (FxKv){"llama.block_count", 'u', NULL, 1};
	kv[n++] = (FxKv){"llama.embedding_length", 'u', NULL, 256};
	kv[n++] = (FxKv){"llama.attention.head_count", 'u', NULL, 4};
	kv[n++] = (FxKv){"llama.attention.head_count_kv", 'u', NULL, 2};
	kv[n++] = (FxKv){"llama.rope.dimension_count", 'u', NULL, 64};
	return n;
}

static int open_mem(const FxBuf *b, Model **m, char *err, size_t errlen)
{
	return model_open_memory(b->p, b->n, NULL, "q.gguf", m, err, errlen);
}

/* A Q4_K_M-style layer: q, k, o in Q4_K, v in Q6_K, the norm F32. Loaded
 * weights are the stored blocks' values; each is within its cell of the
 * weight it was quantized from. */
static void test_gguf_layer(void **state)
{
	(void)state;
	Layer l;
	fx_layer(&l, &QSHAPE, false, 21);
	FxTensor t[8];
	size_t nt = fx_llama_tensors(&l, 1, NULL, 0, "gguf", "Q4_K", t);
	for (size_t i = 0; i < nt; i++)
		if (strstr(t[i].name, "attn_v"))
			t[i].dtype = "Q6_K";
	FxKv kv[8];
	size_t nkv = qkv(kv);
	FxBuf b = {0};
	fx_gguf(&b, 3, kv, nkv, t, nt, 0);
	Model *m;
	char err[512];
	if (open_mem(&b, &m, err, sizeof err))
		fail_msg("%s", err);
	const ModelInfo *in = model_info(m);
	assert_int_equal(in->dtype, STORE_Q4_K);
	assert_int_equal(in->dtypes.n, 3);
	assert_string_equal(in->dtypes.v[0].name, "Q4_K");
	assert_int_equal(in->dtypes.v[0].count, 3);
	assert_string_equal(in->attn_dtypes[2].v[0].name, "Q6_K");
	assert_int_equal(in->dtypes.total, 5);
	Layer got;
	if (model_load_layer(m, 0, &got, err, sizeof err))
		fail_msg("%s", err);
	const double *want[] = {l.wq, l.wk, l.wv, l.wo}, *have[] = {got.wq, got.wk, got.wv, got.wo};
	size_t n[] = {256 * 256, 128 * 256, 128 * 256, 256 * 256};
	StoreDtype ty[] = {STORE_Q4_K, STORE_Q4_K, STORE_Q6_K, STORE_Q4_K};
	for (int k = 0; k < 4; k++) {
		size_t nb = n[k] / 256, bytes = dtype_block_bytes(ty[k]);
		float *x = malloc(n[k] * sizeof *x), *v = malloc(n[k] * sizeof *v);
		unsigned char *q = malloc(nb * bytes);
		double *lo = malloc(n[k] * sizeof *lo), *hi = malloc(n[k] * sizeof *hi);
		for (size_t i = 0; i < n[k]; i++)
			x[i] = (float)want[k][i];
		assert_int_equal(ggml_quant_quantize(ty[k], x, nb, q), 0);
		ggml_quant_dequantize(ty[k], q, nb, v);
		ggml_quant_cells(ty[k], q, nb, lo, hi);
		for (size_t i = 0; i < n[k]; i++) {
			assert_true(have[k][i] == (double)v[i]);
			double e = want[k][i] - have[k][i];
			assert_true(e >= -lo[i] && e <= hi[i]);
		}
		free(x);
		free(v);
		free(q);
		free(lo);
		free(hi);
	}
	layer_free(&got);
	model_close(m);
	fx_free(&b);
	layer_free(&l);
}

static void open_fails(const FxBuf *b, const char *want)
{
	Model *m;
	char err[512] = "";
	if (!open_mem(b, &m, err, sizeof err)) {
		model_close(m);
		fail_msg("accepted a bad GGUF (wanted '%s')", want);
	}
	if (!strstr(err, want))
		fail_msg("error '%s' does not mention '%s'", err, want);
	assert_null(strchr(err, '\n'));
}

/* Offset of the tensor info of name (after its name's bytes). */
static size_t info_at(const FxBuf *b, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 8; i + n <= b->n; i++)
		if (!memcmp(b->p + i, name, n) && b->p[i - 8] == n)
			return i + n;
	fail_msg("%s not in the file", name);
	return 0;
}

static void test_gguf_bad_input(void **state)
{
	(void)state;
	Layer l;
	fx_layer(&l, &QSHAPE, false, 22);
	FxTensor t[8];
	size_t nt = fx_llama_tensors(&l, 1, NULL, 0, "gguf", "Q4_K", t);
	FxKv kv[8];
	size_t nkv = qkv(kv);
	char err[512];
	Model *m;

	/* An infinite d in attn_k's block 2: opens (no weight is read), the
	 * layer is refused naming tensor, block and offset. */
	static unsigned char kraw[128 * 256 / 256 * 144];
	float *x = malloc(128 * 256 * sizeof *x);
	for (size_t i = 0; i < 128 * 256; i++)
		x[i] = (float)l.wk[i];
	assert_int_equal(ggml_quant_quantize(STORE_Q4_K, x, 128, kraw), 0);
	free(x);
	put16(kraw, 2 * 144, 0x7c00);
	FxRaw raw = {"blk.0.attn_k.weight", kraw, sizeof kraw};
	FxBuf b = {0};
	fx_gguf_raw(&b, 3, kv, nkv, t, nt, 0, &raw, 1);
	if (open_mem(&b, &m, err, sizeof err))
		fail_msg("%s", err);
	Layer got;
	assert_int_equal(model_load_layer(m, 0, &got, err, sizeof err), -1);
	assert_non_null(strstr(err, "tensor blk.0.attn_k.weight: Q4_K block 2 (offset"));
	assert_non_null(strstr(err, "NaN or infinite scale d"));
	assert_null(strchr(err, '\n'));
	model_close(m);
	fx_free(&b);

	/* A row that is not a multiple of the block. */
	static double extra[2 * 288];
	unsigned char eraw[2 * 144] = {0};
	t[nt] = (FxTensor){"extra.weight", "Q4_K", 2, {2, 288, 0, 0}, extra};
	FxRaw er = {"extra.weight", eraw, sizeof eraw};
	fx_gguf_raw(&b, 3, kv, nkv, t, nt + 1, 0, &er, 1);
	open_fails(&b, "tensor extra.weight: row length 288 not a multiple of Q4_K's block of 256");
	fx_free(&b);

	/* An unknown type id (31: removed from GGUF by ggml) and a known one
	 * that does not convert (IQ2_XXS, 16: its geometry checked, the read
	 * refused with the types that do). */
	fx_gguf(&b, 3, kv, nkv, t, nt, 0);
	size_t at = info_at(&b, "blk.0.attn_q.weight") + 4 + 2 * 8;
	b.p[at] = 31;
	open_fails(&b, "unknown tensor type 31");
	b.p[at] = 16;
	open_fails(&b, "blk.0.attn_q.weight: dtype IQ2_XXS is not supported (F64, F32, F16, "
		   "BF16, Q4_0, Q4_1");
	fx_free(&b);

	/* A truncated block: the file ends inside the last tensor's data. */
	fx_gguf(&b, 3, kv, nkv, t, nt, 0);
	b.n -= 100;
	open_fails(&b, "runs past the end of the file");
	fx_free(&b);
	layer_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocks_by_hand),
		cmocka_unit_test(test_layouts_round_trip),
		cmocka_unit_test(test_f16),
		cmocka_unit_test(test_quantize_round_trip),
		cmocka_unit_test(test_cells_by_hand),
		cmocka_unit_test(test_quant_bound),
		cmocka_unit_test(test_tensor_read),
		cmocka_unit_test(test_gguf_layer),
		cmocka_unit_test(test_gguf_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
