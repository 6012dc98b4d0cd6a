#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/forward.h"
#include "core/forward_prec.h"
#include "core/parallel.h"
#include "core/rope.h"

/* The decoder layer in double (core/forward_impl.h). */
#define R double
#define SUF(n) n##_f64
#define GEMM cblas_dgemm
#define ROPE_ROWS rope_apply_rows
#include "core/forward_impl.h"

RfStatus fwd_layer_apply_f64(FwdState *s, const FwdLayer *l)
{
	return layer_f64(s, l);
}

void fwd_final_norm_f64(FwdState *s, const FwdNorm *n)
{
	apply_norm_f64(n, s->x, s->T, s->D);
}

void fwd_head_rows_f64(const FwdState *s, const void *rows, size_t n, double softcap,
		      void *out, size_t col, size_t V)
{
	head_f64(s, rows, n, softcap, out, col, V);
}

RfStatus fwd_mla_trace_f64(FwdState *s, const FwdMla *m, void *y, FwdMlaTrace *keep)
{
	return mla_attention_f64(s, m, s->x, y, keep);
}
