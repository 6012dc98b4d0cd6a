#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/clones.h"
#include "core/dtype.h"

/* Every fact about a storage type, once. prec is the significand bits
 * with the implicit one (a float's unit roundoff is 2^-prec), emin and
 * emax the exponents of the smallest and largest normal float. step is a
 * block quantization's largest grid step over the largest magnitude its
 * block (or sub-block, for the K-quants and IQ4_XS) holds, as ggml's
 * quantizers choose the scale (ggml-quants.c, quantize_row_*_ref):
 *
 *   Q4_0   d = max / -8, levels -8..7            step |d| = amax / 8
 *   Q4_1   d = (max - min) / 15, levels 0..15    step <= 2 amax / 15
 *   Q5_0   d = max / -16, levels -16..15         amax / 16
 *   Q5_1   d = (max - min) / 31                  2 amax / 31
 *   Q8_0   d = amax / 127, levels -127..127      amax / 127
 *   Q2_K   sub-blocks of 16: a 4-bit scale and min, levels 0..3
 *          (make_qkx2_quants: max - min over 3)  2 amax / 3
 *   Q3_K   sub-blocks of 16: a 6-bit signed scale, levels -4..3
 *          (make_q3_quants: amax / 4)            amax / 4
 *   Q4_K   sub-blocks of 32: 6-bit scale and min, levels 0..15  2 amax / 15
 *   Q5_K   the same with levels 0..31            2 amax / 31
 *   Q6_K   sub-blocks of 16: an 8-bit scale, levels -32..31
 *          (make_qx_quants: amax / 32)           amax / 32
 *   Q8_K   d = amax / 127                        amax / 127
 *   IQ4_NL d = max / -127, the non-linear levels kvalues_iq4nl, whose
 *   IQ4_XS widest gap is 24 (89 to 113)          24 amax / 127
 *
 * (the f16, 4-, 6- and 8-bit rounding of the stored scales moves these
 * by up to 7%, and make_q3_quants' least-squares refinement Q3_K's by up
 * to 25%, as tests/test_ggml_quant.c measures; the data-dependent bound
 * of one tensor, from its stored scales, is data/quant_bound.c's). Rounding to the nearest level errs by
 * half a step: dtype_unit_roundoff. The quantizers clamp at the grid's
 * ends, where the error can reach a whole step (Q4_0's top code 7 d takes
 * inputs up to 8 d). */
static const struct {
	const char *name, *lower;
	bool is_float;
	size_t block, block_bytes;
	int prec, emin, emax;
	double step;
} dtypes[STORE_COUNT] = {
	[STORE_F64] = {"F64", "f64", true, 1, 8, 53, -1022, 1023},
	[STORE_F32] = {"F32", "f32", true, 1, 4, 24, -126, 127},
	[STORE_F16] = {"F16", "f16", true, 1, 2, 11, -14, 15},
	[STORE_BF16] = {"BF16", "bf16", true, 1, 2, 8, -126, 127},
	/* ggml-common.h's block structs: elements and bytes per block */
	[STORE_Q4_0] = {"Q4_0", "q4_0", false, 32, 18, 0, 0, 0, 1.0 / 8},
	[STORE_Q4_1] = {"Q4_1", "q4_1", false, 32, 20, 0, 0, 0, 2.0 / 15},
	[STORE_Q5_0] = {"Q5_0", "q5_0", false, 32, 22, 0, 0, 0, 1.0 / 16},
	[STORE_Q5_1] = {"Q5_1", "q5_1", false, 32, 24, 0, 0, 0, 2.0 / 31},
	[STORE_Q8_0] = {"Q8_0", "q8_0", false, 32, 34, 0, 0, 0, 1.0 / 127},
	[STORE_Q2_K] = {"Q2_K", "q2_k", false, 256, 84, 0, 0, 0, 2.0 / 3},
	[STORE_Q3_K] = {"Q3_K", "q3_k", false, 256, 110, 0, 0, 0, 1.0 / 4},
	[STORE_Q4_K] = {"Q4_K", "q4_k", false, 256, 144, 0, 0, 0, 2.0 / 15},
	[STORE_Q5_K] = {"Q5_K", "q5_k", false, 256, 176, 0, 0, 0, 2.0 / 31},
	[STORE_Q6_K] = {"Q6_K", "q6_k", false, 256, 210, 0, 0, 0, 1.0 / 32},
	[STORE_Q8_K] = {"Q8_K", "q8_k", false, 256, 292, 0, 0, 0, 1.0 / 127},
	[STORE_IQ4_NL] = {"IQ4_NL", "iq4_nl", false, 32, 18, 0, 0, 0, 24.0 / 127},
	[STORE_IQ4_XS] = {"IQ4_XS", "iq4_xs", false, 256, 136, 0, 0, 0, 24.0 / 127},
};

static bool known(StoreDtype t)
{
	return (unsigned)t < STORE_COUNT;
}

const char *dtype_name(StoreDtype t)
{
	return known(t) ? dtypes[t].name : "?";
}

const char *dtype_lower_name(StoreDtype t)
{
	return known(t) ? dtypes[t].lower : "?";
}

int dtype_parse(const char *s, StoreDtype *out)
{
	for (int t = 0; t < STORE_COUNT; t++)
		if (!strcasecmp(s, dtypes[t].name)) {
			*out = (StoreDtype)t;
			return 0;
		}
	return -1;
}

void dtype_list(char *buf, size_t len, bool floats_only)
{
	size_t k = 0;
	if (len)
		buf[0] = '\0';
	for (int t = 0; t < STORE_COUNT && k < len; t++) {
		if (floats_only && !dtypes[t].is_float)
			continue;
		int n = snprintf(buf + k, len - k, "%s%s", k ? ", " : "", dtypes[t].name);
		k += n > 0 ? (size_t)n : 0;
	}
}

bool dtype_is_float(StoreDtype t)
{
	return known(t) && dtypes[t].is_float;
}

bool dtype_is_block(StoreDtype t)
{
	return known(t) && !dtypes[t].is_float;
}

size_t dtype_block(StoreDtype t)
{
	return known(t) ? dtypes[t].block : 0;
}

size_t dtype_block_bytes(StoreDtype t)
{
	return known(t) ? dtypes[t].block_bytes : 0;
}

bool dtype_bytes(StoreDtype t, size_t n, size_t *bytes)
{
	if (!known(t) || n % dtypes[t].block)
		return false;
	return !__builtin_mul_overflow(n / dtypes[t].block, dtypes[t].block_bytes, bytes);
}

double dtype_unit_roundoff(StoreDtype t)
{
	if (known(t) && !dtypes[t].is_float)
		return dtypes[t].step / 2;
	/* a type ropefold cannot read: the coarsest float step it tolerates */
	return ldexp(1.0, -(known(t) ? dtypes[t].prec : dtypes[STORE_BF16].prec));
}

double dtype_quant_step(StoreDtype t)
{
	return known(t) && !dtypes[t].is_float ? dtypes[t].step : 0;
}

const char *dtype_name_of_roundoff(double u)
{
	int best = STORE_F64;
	double bd = INFINITY;
	for (int t = 0; t < STORE_COUNT; t++) {
		if (!dtypes[t].is_float)
			continue;
		double dist = fabs(log2(u > 0 ? u : 1e-300) + dtypes[t].prec);
		if (dist < bd) {
			bd = dist;
			best = t;
		}
	}
	return dtypes[best].lower;
}

/* dtype_round's parameters for a float type t. */
typedef struct {
	bool round;           /* false for F64 and the non-float types: unchanged */
	int drop;             /* 53 - p: the significand bits dropped */
	uint64_t half, keep;  /* half the dropped part less one; the kept bits */
	uint64_t lo, hi;      /* the bit patterns of t's smallest normal and of
			       * its largest finite value */
	double maxv;          /* t's largest finite value */
	int prec, emin;
} Rounder;

static Rounder rounder(StoreDtype t)
{
	Rounder r;
	memset(&r, 0, sizeof r);
	if (!dtype_is_float(t) || t == STORE_F64)
		return r;
	r.round = true;
	r.prec = dtypes[t].prec;
	r.emin = dtypes[t].emin;
	/* Largest finite value: (2 - 2^(1-p)) 2^emax. */
	r.maxv = ldexp(2.0 - ldexp(1.0, 1 - r.prec), dtypes[t].emax);
	r.drop = 53 - r.prec;
	r.half = ((uint64_t)1 << (r.drop - 1)) - 1;
	r.keep = ~(((uint64_t)1 << r.drop) - 1);
	r.lo = (uint64_t)(r.emin + 1023) << 52;
	memcpy(&r.hi, &r.maxv, sizeof r.hi);
	return r;
}

/* A double of magnitude 2^emin .. maxv rounds to p significant bits on
 * its bit pattern: add half the dropped part (less one, plus the kept
 * last bit: ties to even) and clear it; a carry moves into the exponent
 * as rounding up to the next power of two should, and cannot pass maxv.
 * The same value as round_rest's rint, without four libm calls. */
static inline uint64_t round_bits(const Rounder *r, uint64_t u)
{
	return (u + r->half + ((u >> r->drop) & 1)) & r->keep;
}

/* Whether u, a double's bits, is in round_bits' range: a magnitude from
 * 2^emin to maxv (one unsigned compare, no branch). */
static inline bool in_bit_range(const Rounder *r, uint64_t u)
{
	uint64_t mag = u & ~((uint64_t)1 << 63);
	return mag - r->lo <= r->hi - r->lo;
}

/* Any other value: zero, a subnormal of t, beyond maxv, NaN, infinity. */
static double round_rest(const Rounder *r, double x)
{
	if (x == 0.0 || !isfinite(x))
		return x;
	int e = ilogb(x);
	if (e < r->emin)
		e = r->emin;  /* subnormal: fixed quantum 2^(emin - p + 1) */
	/* x / quantum is exact in double; rint rounds ties to even. */
	double q = rint(ldexp(x, r->prec - 1 - e));
	double y = ldexp(q, e - (r->prec - 1));
	return fabs(y) > r->maxv ? copysign(INFINITY, x) : y;
}

/* Values rounded a block at a time: a block whose every value is in the
 * bit pattern's range (told without a branch) is rounded without one, so
 * the loop vectorizes; a block with another value goes value by value.
 * On an 8B fold's 1.3 G values: 1.0 ns a value, against 3.8 for a test
 * per value. */
enum { ROUND_BLOCK = 256 };


/* A whole block: nonzero when a value lies outside the bit pattern's range
 * (then nothing is stored), else every value rounded into o. A constant
 * trip count, and an AVX2 clone (core/clones.h: the baseline lacks the
 * 64-bit compare the check needs): 2.5 times the speed. */
HOT_CLONES
static uint64_t round_whole_block(const Rounder *rp, const double *x, double *o)
{
	const Rounder r = *rp;
	uint64_t outside = 0;
	for (size_t i = 0; i < ROUND_BLOCK; i++) {
		uint64_t u;
		memcpy(&u, &x[i], sizeof u);
		outside |= (uint64_t)!in_bit_range(&r, u);
	}
	if (outside)
		return outside;
	for (size_t i = 0; i < ROUND_BLOCK; i++) {
		uint64_t u;
		memcpy(&u, &x[i], sizeof u);
		u = round_bits(&r, u);
		memcpy(&o[i], &u, sizeof u);
	}
	return 0;
}

void dtype_round_into(StoreDtype t, const double *x, size_t n, double *out)
{
	Rounder r = rounder(t);
	if (!r.round) {
		if (out != x)
			memmove(out, x, n * sizeof(double));
		return;
	}
	for (size_t i0 = 0; i0 < n; i0 += ROUND_BLOCK) {
		size_t m = n - i0 < ROUND_BLOCK ? n - i0 : ROUND_BLOCK;
		const double *xb = x + i0;
		double *ob = out + i0;
		if (m == ROUND_BLOCK && !round_whole_block(&r, xb, ob))
			continue;
		/* a part block, or one with another value: value by value */
		for (size_t i = 0; i < m; i++) {
			double v = xb[i];
			uint64_t u;
			memcpy(&u, &v, sizeof u);
			if (!in_bit_range(&r, u)) {
				ob[i] = round_rest(&r, v);
				continue;
			}
			u = round_bits(&r, u);
			memcpy(&ob[i], &u, sizeof u);
		}
	}
}

void dtype_round(StoreDtype t, double *v, size_t n)
{
	dtype_round_into(t, v, n, v);
}

void dtype_gaps(StoreDtype t, double g, double *up, double *dn)
{
	StoreDtype f = dtype_is_float(t) ? t : STORE_F64;
	int p = dtypes[f].prec, emin = dtypes[f].emin;
	double a = fabs(g);
	if (a == 0) {
		*up = *dn = ldexp(1.0, emin - p + 1);
		return;
	}
	int e = ilogb(a);
	if (e < emin)
		e = emin;
	double away = ldexp(1.0, e - p + 1);
	double toward = a == ldexp(1.0, e) && e > emin ? away / 2 : away;
	*up = g > 0 ? away : toward;
	*dn = g > 0 ? toward : away;
}
