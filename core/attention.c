#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/attention.h"
#include "core/engine/engine.h"
#include "core/parallel.h"

/* Whether this CPU runs the fused AVX-512 output kernel. */
bool attention_kernel_fused(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#else
	return false;
#endif
}

/* The engine of one precision behind its table of entry points
 * (core/engine/engine.h). */
struct AttnEngine {
	const EngineOps *ops;
	void *impl;
	size_t threads;
};

/* A new engine into *out, taking over prev's big buffers when prev is of
 * the same precision (prev is not closed here). */
static RfStatus engine_open(const Layer *a, const double *x, size_t T, Precision prec,
			    const RopeTable *rope, size_t threads, size_t cache_bytes,
			    AttnKernel kernel, AttnEngine *prev, AttnEngine **out)
{
	*out = NULL;
	if (T == 0 || rope->seq < T)
		return RF_ERR_ARG;
	AttnEngine *e = calloc(1, sizeof *e);
	if (!e)
		return RF_ERR_NOMEM;
	e->ops = prec == PREC_F32 ? &engine_ops_f32 : &engine_ops_f64;
	e->threads = threads ? threads : parallel_default_threads();
	bool fused = kernel == ATTN_KERNEL_AUTO && attention_kernel_fused();
	RfStatus st = e->ops->open(a, x, T, rope, e->threads, cache_bytes, fused,
				   prev && prev->ops == e->ops ? prev->impl : NULL, &e->impl);
	if (st != RF_OK) {
		free(e);
		return st;
	}
	*out = e;
	return RF_OK;
}

RfStatus attention_engine_new(const Layer *a, const double *x, size_t T,
			      Precision prec, const RopeTable *rope,
			      size_t threads, size_t cache_bytes,
			      AttnKernel kernel, AttnEngine **out)
{
	return engine_open(a, x, T, prec, rope, threads, cache_bytes, kernel, NULL, out);
}

RfStatus attention_engine_renew(AttnEngine **e, const Layer *a, const double *x, size_t T,
				Precision prec, const RopeTable *rope, size_t threads,
				size_t cache_bytes, AttnKernel kernel)
{
	AttnEngine *next;
	RfStatus st = engine_open(a, x, T, prec, rope, threads, cache_bytes, kernel, *e, &next);
	attention_engine_free(*e);
	*e = next;
	return st;
}

RfStatus attention_engine_run(AttnEngine *e, const Layer *src,
			      const FoldPlan *plan, const FoldChanges *c,
			      InvReport *rep)
{
	return e->ops->run(e->impl, src, plan, c, rep);
}

void attention_engine_reset(AttnEngine *e)
{
	e->ops->reset(e->impl);
}

double attention_engine_flops(const AttnEngine *e)
{
	return e->ops->flops(e->impl);
}

void attention_engine_seconds(const AttnEngine *e, double sec[ATTN_PHASE_COUNT])
{
	e->ops->seconds(e->impl, sec);
}

size_t attention_engine_threads(const AttnEngine *e)
{
	return e->threads;
}

void attention_engine_free(AttnEngine *e)
{
	if (!e)
		return;
	e->ops->close(e->impl);
	free(e);
}

/* Per side: the projections x W_q^T, x W_k^T, x W_v^T (2 T D (H+2G) d);
 * per head the causal score and context blocks (row block i of size b
 * against its first (i+1) b keys: 2 b (i+1) b d each); every head's
 * output O_h = C_h W_o,h^T (2 T d D). Both sides, so twice that; and the
 * fold of every block, R W_q,h, R W_k,g, R W_v,g, W_o,h R^T (2 d d D
 * each). */
double attention_cold_flops(const LayerShape *s, size_t T)
{
	double D = (double)s->d_model, H = (double)s->n_heads;
	double G = (double)s->n_kv_heads, d = (double)s->head_dim;
	double proj = 2.0 * (double)T * D * (H + 2.0 * G) * d;
	double causal = 0;
	for (size_t r0 = 0; r0 < T; r0 += SCORE_BLOCK) {
		size_t r1 = r0 + SCORE_BLOCK < T ? r0 + SCORE_BLOCK : T;
		causal += 2.0 * (double)(r1 - r0) * (double)r1 * d;
	}
	double heads = H * 2.0 * causal;           /* scores and contexts */
	double out = H * 2.0 * (double)T * d * D;  /* O_h of every head */
	double fold = 2.0 * d * d * D * (2.0 * H + 2.0 * G);
	return 2.0 * (proj + heads + out) + fold;
}

RfStatus attention_compare(const Layer *a, const Layer *b, const double *x,
			   size_t T, Precision prec, const RopeTable *rope,
			   InvReport *rep)
{
	return attention_compare_kernel(a, b, x, T, prec, rope, ATTN_KERNEL_AUTO,
					rep);
}

RfStatus attention_compare_kernel(const Layer *a, const Layer *b,
				  const double *x, size_t T, Precision prec,
				  const RopeTable *rope, AttnKernel kernel,
				  InvReport *rep)
{
	AttnEngine *e;
	FoldChanges c;
	RfStatus st = fold_changes_init(&c, a->shape.n_heads, a->shape.n_kv_heads);
	if (st != RF_OK)
		return st;
	st = attention_engine_new(a, x, T, prec, rope, 0, 0, kernel, &e);
	if (st == RF_OK) {
		st = attention_engine_run(e, b, NULL, &c, rep);
		attention_engine_free(e);
	}
	fold_changes_done(&c);
	return st;
}

/* ======================= one side, plainly ============================= */

/* RMS-normalise groups of each row (per head when per_head). */
static void plain_qk_norm(double *x, size_t T, size_t nheads, size_t d,
			  const double *w, bool per_head, double eps)
{
	size_t n = per_head ? d : nheads * d, groups = per_head ? nheads : 1;
	for (size_t t = 0; t < T; t++)
		for (size_t g = 0; g < groups; g++) {
			double *v = x + t * nheads * d + g * n, ss = 0.0;
			for (size_t i = 0; i < n; i++)
				ss += v[i] * v[i];
			double inv = 1.0 / sqrt(ss / (double)n + eps);
			for (size_t i = 0; i < n; i++)
				v[i] = v[i] * inv * w[i];
		}
}

/* q (T x H*d), k and v (T x G*d) of x as attention_forward computes
 * them: projections, biases, QK-norm, and RoPE on q and k (v NULL: not
 * computed). */
static void project_qkv(const Layer *l, const double *x, size_t T, const RopeTable *rope,
			double *q, double *k, double *v)
{
	size_t D = l->shape.d_model, H = l->shape.n_heads;
	size_t G = l->shape.n_kv_heads, d = l->shape.head_dim;
	size_t nq = H * d, nk = G * d;
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)nq,
		    (int)D, 1, x, (int)D, l->wq, (int)D, 0, q, (int)nq);
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)nk,
		    (int)D, 1, x, (int)D, l->wk, (int)D, 0, k, (int)nk);
	if (v)
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)nk,
			    (int)D, 1, x, (int)D, l->wv, (int)D, 0, v, (int)nk);
	for (size_t t = 0; t < T; t++) {
		for (size_t i = 0; l->bq && i < nq; i++)
			q[t * nq + i] += l->bq[i];
		for (size_t i = 0; l->bk && i < nk; i++)
			k[t * nk + i] += l->bk[i];
		for (size_t i = 0; v && l->bv && i < nk; i++)
			v[t * nk + i] += l->bv[i];
	}
	if (l->q_norm)
		plain_qk_norm(q, T, H, d, l->q_norm, l->qk_norm_per_head, l->qk_norm_eps);
	if (l->k_norm)
		plain_qk_norm(k, T, G, d, l->k_norm, l->qk_norm_per_head, l->qk_norm_eps);
	rope_apply_rows(rope, T, H, d, q, nq);
	rope_apply_rows(rope, T, G, d, k, nk);
}

RfStatus attention_forward_qk(const Layer *l, const double *x, size_t T,
			      const RopeTable *rope, double *q, double *k)
{
	if (T == 0 || rope->seq < T)
		return RF_ERR_ARG;
	project_qkv(l, x, T, rope, q, k, NULL);
	return RF_OK;
}

RfStatus attention_forward(const Layer *l, const double *x, size_t T,
			   const RopeTable *rope, double *y, size_t h,
			   double *scores)
{
	size_t D = l->shape.d_model, H = l->shape.n_heads;
	size_t G = l->shape.n_kv_heads, d = l->shape.head_dim, hpg = H / G;
	size_t nq = H * d, nk = G * d;
	if (T == 0 || rope->seq < T)
		return RF_ERR_ARG;
	double *buf = malloc((T * nq + 2 * T * nk + T * T + T * nq) * sizeof(double));
	if (!buf)
		return RF_ERR_NOMEM;
	double *q = buf, *k = q + T * nq, *v = k + T * nk, *S = v + T * nk;
	double *C = S + T * T;
	project_qkv(l, x, T, rope, q, k, v);
	double scale = layer_score_scale(l);
	for (size_t hh = 0; hh < H; hh++) {
		size_t g = hh / hpg;
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T,
			    (int)d, scale, q + hh * d, (int)nq, k + g * d, (int)nk,
			    0, S, (int)T);
		for (size_t m = 0; m < T; m++) {
			double *row = S + m * T, mx = row[0], sum = 0;
			if (scores && hh == h)
				for (size_t n = 0; n < T; n++)
					scores[m * T + n] = n <= m ? row[n] : 0.0;
			/* the soft-cap, then the window: keys lo..m */
			size_t lo = layer_first_key(l, m);
			for (size_t n = lo; l->attn_softcap > 0 && n <= m; n++)
				row[n] = l->attn_softcap * tanh(row[n] / l->attn_softcap);
			mx = row[lo];
			for (size_t n = lo + 1; n <= m; n++)
				mx = row[n] > mx ? row[n] : mx;
			for (size_t n = lo; n <= m; n++)
				sum += row[n] = exp(row[n] - mx);
			for (size_t n = 0; n < T; n++)
				row[n] = n >= lo && n <= m ? row[n] / sum : 0.0;
		}
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)d,
			    (int)T, 1, S, (int)T, v + g * d, (int)nk, 0, C + hh * d,
			    (int)nq);
	}
	/* y = x + concat_h(C_h) W_o^T + b_o */
	for (size_t t = 0; t < T; t++)
		for (size_t c = 0; c < D; c++)
			y[t * D + c] = x[t * D + c] + (l->bo ? l->bo[c] : 0.0);
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)D,
		    (int)nq, 1, C, (int)nq, l->wo, (int)nq, 1, y, (int)D);
	free(buf);
	return RF_OK;
}
