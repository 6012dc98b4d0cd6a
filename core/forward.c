#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/forward.h"
#include "core/forward_prec.h"

size_t fwd_elem_size(FwdPrecision p)
{
	return p == FWD_F32 ? sizeof(float) : sizeof(double);
}

RfStatus fwd_state_init(FwdState *s, FwdPrecision prec, size_t T, size_t D, size_t nthreads)
{
	memset(s, 0, sizeof *s);
	if (!T || !D || T > LAYER_MAX_SEQ || D > LAYER_MAX_DIM)
		return RF_ERR_ARG;
	s->prec = prec;
	s->T = T;
	s->D = D;
	s->nthreads = nthreads ? nthreads : 1;
	s->x = calloc(T * D, fwd_elem_size(prec));
	return s->x ? RF_OK : RF_ERR_NOMEM;
}

void fwd_state_embed(FwdState *s, const double *emb)
{
	size_t n = s->T * s->D;
	if (s->prec == FWD_F64) {
		memcpy(s->x, emb, n * sizeof(double));
		return;
	}
	float *x = s->x;
	for (size_t i = 0; i < n; i++)
		x[i] = (float)emb[i];
}

RfStatus fwd_layer_apply(FwdState *s, const FwdLayer *l)
{
	const char *why;
	if (l->mla && (mla_shape_check(&l->mla->shape, &why) != RF_OK ||
		       l->mla->shape.d_model != s->D ||
		       l->mla->rope.rotary_dim != l->mla->shape.qk_rope_dim))
		return RF_ERR_ARG;
	if (!l->mla && (l->shape.n_kv_heads == 0 || l->shape.n_heads % l->shape.n_kv_heads))
		return RF_ERR_ARG;
	if (l->moe.n_experts && (!l->moe.top_k || l->moe.top_k > l->moe.n_experts))
		return RF_ERR_ARG;
	if (l->moe.n_experts && l->moe.route &&
	    moe_route_check(l->moe.route, l->moe.n_experts, l->moe.top_k, &why) != RF_OK)
		return RF_ERR_ARG;
	return s->prec == FWD_F32 ? fwd_layer_apply_f32(s, l) : fwd_layer_apply_f64(s, l);
}

RfStatus fwd_final_norm(FwdState *s, const FwdNorm *n)
{
	if (s->prec == FWD_F32)
		fwd_final_norm_f32(s, n);
	else
		fwd_final_norm_f64(s, n);
	return RF_OK;
}

void fwd_head_rows(const FwdState *s, const void *rows, size_t n, double softcap, void *out,
		   size_t col, size_t V)
{
	if (s->prec == FWD_F32)
		fwd_head_rows_f32(s, rows, n, softcap, out, col, V);
	else
		fwd_head_rows_f64(s, rows, n, softcap, out, col, V);
}

void fwd_state_done(FwdState *s)
{
	if (s->have_rope)
		rope_table_done(&s->rope);
	free(s->x);
	free(s->mlp_h);
	memset(s, 0, sizeof *s);
}

RfStatus fwd_mla_trace(FwdState *s, const FwdMla *m, FwdMlaTrace *out)
{
	const char *why;
	memset(out, 0, sizeof *out);
	if (mla_shape_check(&m->shape, &why) != RF_OK || m->shape.d_model != s->D)
		return RF_ERR_ARG;
	void *y = malloc(s->T * s->D * fwd_elem_size(s->prec));
	if (!y)
		return RF_ERR_NOMEM;
	RfStatus rc = s->prec == FWD_F32 ? fwd_mla_trace_f32(s, m, y, out)
					 : fwd_mla_trace_f64(s, m, y, out);
	if (rc != RF_OK) {
		free(y);
		return rc;
	}
	out->y = y;
	return RF_OK;
}
