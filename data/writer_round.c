#include "config.h"

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

/* The k = 2 or 4 little-endian bytes of v (a value of BF16 or F32) at out:
 * its float's bits, shifted down by 16 for BF16. */
static inline void put_float_bits(unsigned char *out, double v, int shift, size_t k)
{
	float f = (float)v;
	uint32_t b;
	memcpy(&b, &f, 4);
	b >>= shift;
	for (size_t j = 0; j < k; j++)
		out[j] = (unsigned char)(b >> (8 * j));
}

/* Little-endian bytes of n values already rounded to dtype t. */
static void encode(StoreDtype t, const double *v, size_t n, unsigned char *out)
{
	if (t == STORE_BF16 || t == STORE_F32) {
		int shift = t == STORE_BF16 ? 16 : 0;
		size_t k = t == STORE_BF16 ? 2 : 4;
		for (size_t i = 0; i < n; i++)
			put_float_bits(out + i * k, v[i], shift, k);
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

/* The rounding of m values x stored as v, added to rr, se and sv. */
static void rounding_add(WriterRounding *rr, double *se, double *sv, const double *v,
			 const double *x, size_t m)
{
	Lanes l;
	memset(&l, 0, sizeof l);
	size_t i = 0;
	for (; i + ROUND_LANES <= m; i += ROUND_LANES)
		for (size_t k = 0; k < ROUND_LANES; k++)
			lane_add(&l, k, v[i + k], x[i + k]);
	for (; i < m; i++)
		lane_add(&l, 0, v[i], x[i]);
	lanes_done(&l, rr, se, sv);
}

/* BF16 and F32 in one pass over the values: each rounded (as dtype_round
 * does), measured (as rounding_add) and encoded (as encode) while it is
 * in a register. The four passes this replaces (a copy, the rounding,
 * the measure, the encoding) were a fifth of a whole-model fold. */
static void round_float_bits(StoreDtype t, const double *x, size_t m, unsigned char *out,
			     WriterRounding *rr, double *se, double *sv)
{
	DtypeRounder rd = dtype_rounder(t);
	int shift = t == STORE_BF16 ? 16 : 0;
	size_t k = t == STORE_BF16 ? 2 : 4;
	Lanes l;
	memset(&l, 0, sizeof l);
	size_t i = 0;
	for (; i + ROUND_LANES <= m; i += ROUND_LANES)
		for (size_t j = 0; j < ROUND_LANES; j++) {
			double r = dtype_rounder_apply(&rd, x[i + j]);
			lane_add(&l, j, r, x[i + j]);
			put_float_bits(out + (i + j) * k, r, shift, k);
		}
	for (; i < m; i++) {
		double r = dtype_rounder_apply(&rd, x[i]);
		lane_add(&l, 0, r, x[i]);
		put_float_bits(out + i * k, r, shift, k);
	}
	lanes_done(&l, rr, se, sv);
}

void writer_round_floats(StoreDtype t, const double *x, size_t m, double *v,
			 unsigned char *out, WriterRounding *rr, double *se, double *sv)
{
	if (t == STORE_BF16 || t == STORE_F32) {
		round_float_bits(t, x, m, out, rr, se, sv);
		return;
	}
	memcpy(v, x, m * sizeof(double));
	dtype_round(t, v, m);
	rounding_add(rr, se, sv, v, x, m);
	encode(t, v, m, out);
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
		rounding_add(rr, se, sv, v, x, n);
	}
	free(f);
	return rc;
}
