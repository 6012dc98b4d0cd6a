#ifndef ROPEFOLD_CORE_ENGINE_VEC_H
#define ROPEFOLD_CORE_ENGINE_VEC_H

#include "core/clones.h"

/* ======================= vector helpers ================================== */

/* The hot loops of the comparison, VLANES entries at a time with GCC/clang
 * vector extensions (and AVX-512 and AVX2 clones picked at load time on
 * x86-64).
 * Differences are taken in double, where the difference of two floats is
 * exact, and taken as err_of does (a NaN is +Inf): the same results as
 * plain loops. */
#if defined(__GNUC__)
typedef REAL V4 __attribute__((vector_size(VLANES * sizeof(REAL))));
typedef double V4d __attribute__((vector_size(VLANES * 8)));
typedef long long V4m __attribute__((vector_size(VLANES * 8)));
#define VEC4 1
#define V4_LOAD(dst, p)                                                 \
	do {                                                            \
		V4 t_;                                                  \
		memcpy(&t_, (p), sizeof t_);                            \
		dst = __builtin_convertvector(t_, V4d);                 \
	} while (0)
#define V4_ABS(v) ((V4d)((V4m)(v) & ((V4m){0} + INT64_MAX)))
#define V4_MAX(m, e)                                                    \
	do {                                                            \
		V4m gt_ = (e) > (m);                                    \
		m = (V4d)(((V4m)(e) & gt_) | ((V4m)(m) & ~gt_));        \
	} while (0)
#define V4_ADD_TO(u, b)                                                 \
	do {                                                            \
		V4 x_, y_;                                              \
		memcpy(&x_, (u), sizeof x_);                            \
		memcpy(&y_, (b), sizeof y_);                            \
		x_ += y_;                                               \
		memcpy((u), &x_, sizeof x_);                            \
	} while (0)
#endif

#ifdef VEC4
/* err_of, VLANES at a time: NaN lanes of *e become +Inf. */
static inline void v4_nan_inf(V4d *e)
{
	V4m num = *e == *e;
	V4d inf = (V4d){0} + INFINITY;
	*e = (V4d)(((V4m)*e & num) | ((V4m)inf & ~num));
}
#endif

#ifdef VEC4
/* exp(x), VLANES at a time: x = k ln2 + r with |r| <= ln2/2 (Cody-Waite),
 * exp(r) by its degree-13 Taylor polynomial (truncation below 1e-17
 * relative, so within an ulp or two of exp()), times 2^k from the
 * exponent bits; 0 below -708, where exp() is subnormal or zero. */
static inline void vexp(V4d *xp)
{
	V4d x = *xp;
	const double shift = 6755399441055744.0;  /* 1.5 * 2^52: rounds to int */
	V4m under = x < -708.0;
	V4d lo = (V4d){0} - 708.0;
	x = (V4d)(((V4m)x & ~under) | ((V4m)lo & under));
	V4d kd = x * 1.44269504088896338700 + shift;
	V4m ki = (V4m)kd - (V4m)((V4d){0} + shift);
	kd -= shift;
	V4d r = x - kd * 6.93147180369123816490e-01;
	r = r - kd * 1.90821492927058770002e-10;
	V4d p = (V4d){0} + 1.0 / 6227020800.0;
	p = p * r + 1.0 / 479001600.0;
	p = p * r + 1.0 / 39916800.0;
	p = p * r + 1.0 / 3628800.0;
	p = p * r + 1.0 / 362880.0;
	p = p * r + 1.0 / 40320.0;
	p = p * r + 1.0 / 5040.0;
	p = p * r + 1.0 / 720.0;
	p = p * r + 1.0 / 120.0;
	p = p * r + 1.0 / 24.0;
	p = p * r + 1.0 / 6.0;
	p = p * r + 0.5;
	p = p * r + 1.0;
	p = p * r + 1.0;
	V4d scale = (V4d)((ki + 1023) << 52);
	*xp = (V4d)((V4m)(p * scale) & ~under);
}
#endif

#endif
