#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/attention.h"

/* ======================= float64 ======================================= */
#define REAL double
#define REAL_IS_DOUBLE 1
#define GEMM cblas_dgemm
#define ROPE_ROWS rope_apply_rows
#define FN(name) name##_f64
#include "core/attention_impl.h"
#undef REAL
#undef REAL_IS_DOUBLE
#undef GEMM
#undef ROPE_ROWS
#undef FN

/* ======================= float32 ======================================= */
#define REAL float
#define REAL_IS_DOUBLE 0
#define GEMM cblas_sgemm
#define ROPE_ROWS rope_apply_rows_f
#define FN(name) name##_f32
#include "core/attention_impl.h"
#undef REAL
#undef REAL_IS_DOUBLE
#undef GEMM
#undef ROPE_ROWS
#undef FN

RfStatus attention_compare(const Layer *a, const Layer *b, const double *x,
			   size_t T, Precision prec, const RopeTable *rope,
			   InvReport *rep)
{
	if (T == 0 || rope->seq < T)
		return RF_ERR_ARG;
	if (prec == PREC_F32)
		return compare_f32(a, b, x, T, rope, rep);
	return compare_f64(a, b, x, T, rope, rep);
}

RfStatus attention_forward(const Layer *l, const double *x, size_t T,
			   const RopeTable *rope, double *y, size_t h,
			   double *scores)
{
	size_t D = l->shape.d_model, H = l->shape.n_heads;
	size_t G = l->shape.n_kv_heads, d = l->shape.head_dim;
	Weights_f64 w;
	weights_init_f64(&w, l);
	size_t nq = T * H * d, nk = T * G * d, TT = T * T, TD = T * D;
	double *buf = malloc((nq + 2 * nk + TT + T * d + TD) * sizeof(double));
	if (!buf)
		return RF_ERR_NOMEM;
	double *q = buf, *k = q + nq, *v = k + nk, *S = v + nk, *C = S + TT;
	double *O = C + T * d;
	project_f64(l, &w, x, T, rope, q, k, v);
	for (size_t i = 0; i < TD; i++)
		y[i] = x[i] + (w.bo ? w.bo[i % D] : 0.0);
	for (size_t hh = 0; hh < H; hh++) {
		scores_f64(l, q, k, T, hh, S);
		if (scores && hh == h)
			for (size_t m = 0; m < T; m++)
				for (size_t n = 0; n < T; n++)
					scores[m * T + n] = n <= m ? S[m * T + n] : 0.0;
		head_output_f64(l, &w, v, T, hh, S, C, O);
		for (size_t i = 0; i < TD; i++)
			y[i] += O[i];
	}
	free(buf);
	return RF_OK;
}
