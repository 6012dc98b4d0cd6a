#include "config.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/fold_changes.h"
#include "core/parallel.h"
#include "core/workspace.h"

RfStatus fold_changes_init(FoldChanges *c, size_t n_heads, size_t n_kv_heads)
{
	memset(c, 0, sizeof *c);
	c->n_heads = n_heads;
	c->n_kv_heads = n_kv_heads;
	c->q = calloc(n_heads, sizeof(bool));
	c->o = calloc(n_heads, sizeof(bool));
	c->k = calloc(n_kv_heads, sizeof(bool));
	c->v = calloc(n_kv_heads, sizeof(bool));
	if (!c->q || !c->o || !c->k || !c->v) {
		fold_changes_done(c);
		return RF_ERR_NOMEM;
	}
	fold_changes_all(c);
	return RF_OK;
}

void fold_changes_done(FoldChanges *c)
{
	free(c->q);
	free(c->k);
	free(c->v);
	free(c->o);
	memset(c, 0, sizeof *c);
}

void fold_changes_all(FoldChanges *c)
{
	for (size_t h = 0; h < c->n_heads; h++)
		c->q[h] = c->o[h] = true;
	for (size_t g = 0; g < c->n_kv_heads; g++)
		c->k[g] = c->v[g] = true;
	c->any = true;
}

static bool same(const double *a, const double *b, size_t n)
{
	return memcmp(a, b, n * sizeof(double)) == 0;
}

void fold_changes_diff(FoldChanges *c, const Layer *src, const FoldPlan *plan,
		       const FoldPlan *prev)
{
	size_t H = c->n_heads, G = c->n_kv_heads, hpg = H / G;
	size_t d = src->shape.head_dim, dd = d * d;
	if (!prev) {
		fold_changes_all(c);
		return;
	}
	bool bias_flip = plan->rotate_bias != prev->rotate_bias;
	c->any = false;
	for (size_t g = 0; g < G; g++) {
		size_t og = plan->perm[g];
		bool moved = og != prev->perm[g];
		c->k[g] = moved || (bias_flip && src->bk) ||
			  !same(plan->rk + og * dd, prev->rk + og * dd, dd);
		c->v[g] = moved || (bias_flip && src->bv) ||
			  !same(plan->rv + og * dd, prev->rv + og * dd, dd);
		c->any |= c->k[g] || c->v[g];
		for (size_t j = 0; j < hpg; j++) {
			size_t h = g * hpg + j, oh = og * hpg + j;
			c->q[h] = moved || (bias_flip && src->bq) ||
				  !same(plan->rq + oh * dd, prev->rq + oh * dd, dd);
			c->o[h] = moved ||
				  !same(plan->ro + oh * dd, prev->ro + oh * dd, dd);
			c->any |= c->q[h] || c->o[h];
		}
	}
}

/* ---- the persistent folded layer ---------------------------------------- */

typedef struct {
	double **dst;
	const double *src;
	size_t n;
} TensorRef;

static size_t layer_tensors(Layer *dst, const Layer *src, TensorRef *t)
{
	size_t D = src->shape.d_model, H = src->shape.n_heads;
	size_t G = src->shape.n_kv_heads, d = src->shape.head_dim;
	size_t nq = src->qk_norm_per_head ? d : H * d;
	size_t nk = src->qk_norm_per_head ? d : G * d;
	TensorRef all[] = {
		{&dst->wq, src->wq, H * d * D}, {&dst->wk, src->wk, G * d * D},
		{&dst->wv, src->wv, G * d * D}, {&dst->wo, src->wo, D * H * d},
		{&dst->bq, src->bq, H * d},     {&dst->bk, src->bk, G * d},
		{&dst->bv, src->bv, G * d},     {&dst->bo, src->bo, D},
		{&dst->q_norm, src->q_norm, nq}, {&dst->k_norm, src->k_norm, nk},
		{&dst->attn_norm, src->attn_norm, D},
		{&dst->attn_norm_bias, src->attn_norm_bias, D},
	};
	memcpy(t, all, sizeof all);
	return sizeof all / sizeof all[0];
}

RfStatus refold_layer_alloc(Layer *dst, const Layer *src)
{
	TensorRef t[12];
	*dst = *src;
	size_t n = layer_tensors(dst, src, t);
	for (size_t i = 0; i < n; i++)
		*t[i].dst = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!t[i].src)
			continue;
		*t[i].dst = ws_alloc(t[i].n * sizeof(double));
		if (!*t[i].dst) {
			refold_layer_free(dst);
			return RF_ERR_NOMEM;
		}
		/* Biases and norms: copied once; the fold overwrites the ones
		 * it changes. The weights are written by the first fold. */
		if (i >= 4)
			memcpy(*t[i].dst, t[i].src, t[i].n * sizeof(double));
	}
	return RF_OK;
}

void refold_layer_free(Layer *dst)
{
	TensorRef t[12];
	size_t n = layer_tensors(dst, dst, t);
	for (size_t i = 0; i < n; i++)
		ws_free(*t[i].dst, t[i].n * sizeof(double));
	memset(dst, 0, sizeof *dst);
}

/* ---- folding the flagged blocks ------------------------------------------ */

/* A task: one query head (Q rows, O block) or one kv group (K, V rows). */
typedef struct {
	const Layer *src;
	const FoldPlan *plan;
	const FoldChanges *c;
	Layer *dst;
	TaskQueue queue;
} RefoldJob;

/* rows_out (d x D) = R (d x d) rows_in (d x D). */
static void rotate_rows(const double *R, const double *in, double *out,
			size_t d, size_t D)
{
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)D,
		    (int)d, 1.0, R, (int)d, in, (int)D, 0.0, out, (int)D);
}

static void refold_task(RefoldJob *j, size_t task)
{
	const Layer *src = j->src;
	const FoldPlan *p = j->plan;
	Layer *dst = j->dst;
	size_t D = src->shape.d_model, H = src->shape.n_heads;
	size_t G = src->shape.n_kv_heads, d = src->shape.head_dim;
	size_t dd = d * d, hpg = H / G, dD = d * D;
	if (task < H) {
		size_t h = task, g = h / hpg, oh = p->perm[g] * hpg + h % hpg;
		if (j->c->q[h]) {
			rotate_rows(p->rq + oh * dd, src->wq + oh * dD,
				    dst->wq + h * dD, d, D);
			if (src->bq)
				fold_bias(p->rq + oh * dd, src->bq + oh * d,
					  dst->bq + h * d, d, p->rotate_bias);
			if (src->q_norm && !src->qk_norm_per_head)
				memcpy(dst->q_norm + h * d, src->q_norm + oh * d,
				       d * sizeof(double));
		}
		if (j->c->o[h])
			/* W_o,h' = W_o,oh ro^T: D x d times (d x d)^T. */
			cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)D,
				    (int)d, (int)d, 1.0, src->wo + oh * d, (int)(H * d),
				    p->ro + oh * dd, (int)d, 0.0, dst->wo + h * d,
				    (int)(H * d));
		return;
	}
	size_t g = task - H, og = p->perm[g];
	if (j->c->k[g]) {
		rotate_rows(p->rk + og * dd, src->wk + og * dD, dst->wk + g * dD, d, D);
		if (src->bk)
			fold_bias(p->rk + og * dd, src->bk + og * d, dst->bk + g * d,
				  d, p->rotate_bias);
		if (src->k_norm && !src->qk_norm_per_head)
			memcpy(dst->k_norm + g * d, src->k_norm + og * d,
			       d * sizeof(double));
	}
	if (j->c->v[g]) {
		rotate_rows(p->rv + og * dd, src->wv + og * dD, dst->wv + g * dD, d, D);
		if (src->bv)
			fold_bias(p->rv + og * dd, src->bv + og * d, dst->bv + g * d,
				  d, p->rotate_bias);
	}
}

static void refold_worker(void *ctx, size_t worker)
{
	RefoldJob *j = ctx;
	(void)worker;
	for (size_t t; (t = task_queue_next(&j->queue)) != (size_t)-1;)
		refold_task(j, t);
}

RfStatus refold_apply(const Layer *src, const FoldPlan *plan,
		      const FoldChanges *c, Layer *dst, size_t nworkers)
{
	if (!c->any)
		return RF_OK;
	RefoldJob j = {src, plan, c, dst, {0}};
	task_queue_init(&j.queue, src->shape.n_heads + src->shape.n_kv_heads);
	int saved = parallel_blas_single();
	RfStatus st = parallel_run(nworkers, refold_worker, &j);
	parallel_blas_restore(saved);
	return st;
}

double refold_flops(const Layer *src, const FoldChanges *c)
{
	double D = (double)src->shape.d_model, d = (double)src->shape.head_dim;
	double per = 2.0 * d * d * D;  /* one d x d times d x D product */
	double n = 0;
	for (size_t h = 0; h < c->n_heads; h++)
		n += (double)c->q[h] + (double)c->o[h];
	for (size_t g = 0; g < c->n_kv_heads; g++)
		n += (double)c->k[g] + (double)c->v[g];
	return n * per;
}
