#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "core/attention.h"
#include "core/layout_perm.h"
#include "core/levels.h"
#include "core/rng.h"
#include "core/rope.h"
#include "core/verify_impl.h"

/* Confirmation by evaluation: the three levels of SPEC 2.2 comparing A
 * and B directly, judged at the precision's tolerance or at what the
 * stored dtype's rounding alone causes. */

/* The relative error, level by level, that storing a's weights in a
 * dtype of unit roundoff u causes by itself: a against a copy whose every
 * weight moved by a random relative amount of at most u (deterministic).
 * A quantized part (qf[p] > 0, the Frobenius ratio of its quantization
 * bound) moves instead by a uniform amount of that part's rms bound, as
 * round-to-nearest errs. */
static RfStatus rounding_noise(const Layer *a, double u, const double *qf,
			       const double *x, size_t T, Precision prec, AttnKernel kernel,
			       const RopeTable *rope, double noise[LEVEL_COUNT])
{
	/* the small tensors copied, the four weights written moved in one
	 * pass over a's (at 8B scale a copy first was a third of the
	 * confirmation) */
	Layer p, shell = *a;
	shell.wq = shell.wk = shell.wv = shell.wo = NULL;
	RfStatus st = layer_copy(&p, &shell);
	if (st != RF_OK)
		return st;
	size_t D = a->shape.d_model, d = a->shape.head_dim;
	size_t nq = a->shape.n_heads * d, nk = a->shape.n_kv_heads * d;
	const double *src[4] = {a->wq, a->wk, a->wv, a->wo};
	double **dst[4] = {&p.wq, &p.wk, &p.wv, &p.wo};
	size_t n[4] = {nq * D, nk * D, nk * D, D * nq};
	for (int i = 0; i < 4; i++)
		if (!(*dst[i] = malloc((n[i] ? n[i] : 1) * sizeof(double)))) {
			layer_free(&p);
			return RF_ERR_NOMEM;
		}
	Rng rng;
	rng_seed(&rng, 0x5eed, 7);
	for (int i = 0; i < 4; i++) {
		const double *v = src[i];
		double *w = *dst[i];
		double rms = 0;
		for (size_t j = 0; qf[i] > 0 && j < n[i]; j++)
			rms += v[j] * v[j];
		double h = qf[i] > 0 ? qf[i] * sqrt(rms / (double)n[i]) : 0;
		for (size_t j = 0; j < n[i]; j++) {
			double r = 2.0 * rng_uniform(&rng) - 1.0;
			w[j] = qf[i] > 0 ? v[j] + h * r : v[j] * (1.0 + u * r);
		}
	}
	InvReport r;
	st = report_init(&r, T, a->shape.n_heads, a->shape.n_kv_heads, d,
			 a->rope.rotary_dim);
	if (st == RF_OK) {
		st = attention_compare_kernel(a, &p, x, T, prec, rope, kernel, &r);
		for (int l = 0; st == RF_OK && l < LEVEL_COUNT; l++)
			noise[l] = r.level[l].ref_max > 0
				? r.level[l].max_abs_err / r.level[l].ref_max
				: r.level[l].max_abs_err;
		report_done(&r);
	}
	layer_free(&p);
	return st;
}

RfStatus verify_confirm(const Layer *a, const Layer *b, VerifyVerdict *v,
			const double *x, size_t T, Precision prec,
			AttnKernel kernel, double tol, InvReport *rep)
{
	if (!verify_same_shape(&a->shape, &b->shape) || T == 0 || T > LAYER_MAX_SEQ)
		return RF_ERR_ARG;
	Layer conv;
	const Layer *bc = b;
	RfStatus st;
	if (b->rope.layout != a->rope.layout) {
		st = layout_convert(b, a->rope.layout, &conv);
		if (st != RF_OK)
			return st;
		bc = &conv;
	}
	st = report_init(rep, T, a->shape.n_heads, a->shape.n_kv_heads,
			 a->shape.head_dim, a->rope.rotary_dim);
	if (st != RF_OK)
		goto out;
	rep->precision = prec;
	RopeTable rope;
	st = rope_table_init(&rope, &a->rope, T);
	double noise[LEVEL_COUNT] = {0};
	if (st == RF_OK) {
		st = attention_compare_kernel(a, bc, x, T, prec, &rope, kernel, rep);
		/* a dtype coarser than float64 moves the outputs by far more
		 * than the compute precision: measure by how much */
		if (st == RF_OK && !(tol > 0) &&
		    (v->unit_roundoff > 0x1p-50 || v->quant_types))
			st = rounding_noise(a, v->unit_roundoff, v->quant_frob, x, T,
					    prec, kernel, &rope, noise);
		rope_table_done(&rope);
	}
	if (st != RF_OK) {
		report_done(rep);
		goto out;
	}
	if (!(tol > 0)) {
		tol = levels_default_tol(prec);
		for (int l = 0; l < LEVEL_COUNT; l++)  /* an overflow is no noise */
			if (isfinite(noise[l]) && 4.0 * noise[l] > tol)
				tol = 4.0 * noise[l];
	}
	v->confirm_tol = tol;
	FoldConfig cfg = fold_config_default();
	cfg.permute_heads = v->heads_permuted;
	/* B may be a fold that kept QK-norm-split pairs to 0 or pi */
	cfg.qk_norm_exact = true;
	levels_judge(rep, a, &cfg, tol);
out:
	if (bc != b)
		layer_free(&conv);
	return st;
}
