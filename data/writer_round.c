#include "config.h"

#include <endian.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "data/ggml_quant.h"
#include "data/writer_impl.h"

/* Values into a dtype's stored bytes: rounded (or block-quantized), the
 * rounding measured, and encoded little-endian. */

/* IEEE half bits of a double already representable as a half. */
static uint16_t half_bits(double v)
{
	uint16_t sign = signbit(v) ? 0x8000 : 0;
	double a = fabs(v);
	if (a == 0)
		return sign;
	if (isinf(a))
		return sign | 0x7c00;
	if (isnan(a))
		return 0x7e00;
	int e;
	frexp(a, &e);  /* a = m 2^e, m in [0.5, 1) */
	if (e - 1 < -14)
		return sign | (uint16_t)ldexp(a, 24);   /* subnormal: a / 2^-24 */
	uint16_t mant = (uint16_t)(ldexp(a, -(e - 1)) * 1024.0 - 1024.0);
	return sign | (uint16_t)((e - 1 + 15) << 10) | mant;
}

/* Little-endian bytes of n values already rounded to dtype t. */
static void encode(StoreDtype t, const double *v, size_t n, unsigned char *out)
{
	if (t == STORE_BF16 || t == STORE_F32) {
		/* the float's bits, or their top half: one loop each, without
		 * branches */
		for (size_t i = 0; i < n; i++) {
			float f = (float)v[i];
			uint32_t b;
			memcpy(&b, &f, 4);
			if (t == STORE_BF16) {
				uint16_t h = htole16((uint16_t)(b >> 16));
				memcpy(out + 2 * i, &h, 2);
			} else {
				b = htole32(b);
				memcpy(out + 4 * i, &b, 4);
			}
		}
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t u = 0;
		size_t k = 2;
		if (t == STORE_F64) {
			memcpy(&u, &v[i], 8);
			k = 8;
		} else {
			u = half_bits(v[i]);
		}
		for (size_t j = 0; j < k; j++)
			out[i * k + j] = (unsigned char)(u >> (8 * j));
	}
}

/* The rounding's measures in eight independent lanes, combined at the
 * end, so that a loop over the values is not one chain of dependent adds
 * (it was 13% of a whole-model fold): lane k takes values i = k mod 8 of
 * each whole group of eight, lane 0 the tail. An overflow's infinite
 * error is kept by the maximum (`e <= max` fails only for a larger e). */
enum { ROUND_LANES = 8 };

typedef struct {
	double me[ROUND_LANES], ma[ROUND_LANES];   /* max error, max |value| */
	double s1[ROUND_LANES], s2[ROUND_LANES];   /* sums of their squares */
} Lanes;

/* Value x stored as r, into lane k. */
static inline void lane_add(Lanes *l, size_t k, double r, double x)
{
	double e = fabs(r - x), a = fabs(x);
	l->me[k] = e <= l->me[k] ? l->me[k] : e;
	l->ma[k] = a > l->ma[k] ? a : l->ma[k];
	l->s1[k] += e * e;
	l->s2[k] += a * a;
}

/* Values x stored as v (n of them, n a multiple of eight unless it ends
 * the run), into the lanes: kept in locals meanwhile, which the compiler
 * holds in registers. */
static void lanes_add(Lanes *lanes, const double *v, const double *x, size_t n)
{
	Lanes l = *lanes;
	size_t i = 0;
	for (; i + ROUND_LANES <= n; i += ROUND_LANES)
		for (size_t k = 0; k < ROUND_LANES; k++)
			lane_add(&l, k, v[i + k], x[i + k]);
	for (; i < n; i++)
		lane_add(&l, 0, v[i], x[i]);
	*lanes = l;
}

/* The lanes into rr (maxima) and the sums of squares se (errors) and sv
 * (values) its Frobenius norms come from. */
static void lanes_done(const Lanes *l, WriterRounding *rr, double *se, double *sv)
{
	for (size_t k = 0; k < ROUND_LANES; k++) {
		if (!(l->me[k] <= rr->max_abs_err))
			rr->max_abs_err = l->me[k];
		if (l->ma[k] > rr->max_abs)
			rr->max_abs = l->ma[k];
		*se += l->s1[k];
		*sv += l->s2[k];
	}
}

/* Values rounded, measured and encoded a block at a time, the block's
 * doubles staying in the L1 cache between the three passes: one loop
 * doing all three per value spilled its registers and was slower. */
enum { PASS_BLOCK = 512 };

void writer_round_floats(StoreDtype t, const double *x, size_t m, unsigned char *out,
			 WriterRounding *rr, double *se, double *sv)
{
	double v[PASS_BLOCK];   /* one block's rounded values */
	Lanes l;
	memset(&l, 0, sizeof l);
	size_t esz = dtype_block_bytes(t);
	for (size_t i0 = 0; i0 < m; i0 += PASS_BLOCK) {
		size_t n = m - i0 < PASS_BLOCK ? m - i0 : PASS_BLOCK;
		dtype_round_into(t, x + i0, n, v);
		lanes_add(&l, v, x + i0, n);
		encode(t, v, n, out + i0 * esz);
	}
	lanes_done(&l, rr, se, sv);
}

int writer_round_blocks(StoreDtype t, const double *x, size_t n, double *v,
			unsigned char *out, WriterRounding *rr, double *se, double *sv)
{
	float *f = malloc((n ? n : 1) * sizeof(float));
	if (!f)
		return -1;
	for (size_t i = 0; i < n; i++)
		f[i] = (float)x[i];
	int rc = ggml_quant_quantize(t, f, n / dtype_block(t), out);
	if (!rc) {
		ggml_quant_dequantize(t, out, n / dtype_block(t), f);
		for (size_t i = 0; i < n; i++)
			v[i] = f[i];
		Lanes l;
		memset(&l, 0, sizeof l);
		lanes_add(&l, v, x, n);
		lanes_done(&l, rr, se, sv);
	}
	free(f);
	return rc;
}
