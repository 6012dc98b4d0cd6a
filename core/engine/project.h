#ifndef ROPEFOLD_CORE_ENGINE_PROJECT_H
#define ROPEFOLD_CORE_ENGINE_PROJECT_H

/* ======================= phase C and P: weights, projections ============= */

static void convert(REAL *dst, const double *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (REAL)src[i];
}

#if !REAL_IS_DOUBLE
/* Queue the float conversion of n entries in chunks. */
static void add_conv(Engine *e, const double *src, REAL *dst,
		     size_t n)
{
	for (size_t i = 0; i < n; i += CONV_CHUNK)
		if (e->n_ctask < e->max_ctask)
			e->ctask[e->n_ctask++] = (ConvTask){
				src + i, dst + i, n - i < CONV_CHUNK ? n - i : CONV_CHUNK};
}
#endif

/* Fill a side's small tensors in the compute precision. */
static void small_fill(Small *sm, const Layer *l, size_t nq, size_t nk,
		       size_t D, size_t d)
{
	if (l->bq) convert(sm->bq, l->bq, nq);
	if (l->bk) convert(sm->bk, l->bk, nk);
	if (l->bv) convert(sm->bv, l->bv, nk);
	if (l->bo) convert(sm->bo, l->bo, D);
	if (l->q_norm) convert(sm->qn, l->q_norm, l->qk_norm_per_head ? d : nq);
	if (l->k_norm) convert(sm->kn, l->k_norm, l->qk_norm_per_head ? d : nk);
}

/* The original head of folded query head h, and of folded kv group g. */
static size_t src_head(const Engine *e, size_t h)
{
	if (!e->plan)
		return h;
	return e->plan->perm[h / e->hpg] * e->hpg + h % e->hpg;
}

static size_t src_group(const Engine *e, size_t g)
{
	return e->plan ? e->plan->perm[g] : g;
}

/* The folded side's small tensors: biases rotated (in double, as
 * fold_apply does) and moved with their heads, layer-wide QK-norm
 * weights moved with their heads. */
static void small_fold(Engine *e)
{
	const Layer *l = e->b;
	const FoldPlan *p = e->plan;
	size_t d = e->d, dd = d * d, H = e->H, G = e->G, nq = e->nq, nk = e->nk;
	if (!p) {
		small_fill(&e->sm_b, l, nq, nk, e->D, d);
		return;
	}
	double *bq = e->small64, *bk = bq + nq, *bv = bk + nk;
	double *qn = bv + nk, *kn = qn + nq;
	for (size_t h = 0; h < H; h++) {
		size_t oh = src_head(e, h);
		if (l->bq)
			fold_bias(p->rq + oh * dd, l->bq + oh * d, bq + h * d, d,
				  p->rotate_bias);
		if (l->q_norm && !l->qk_norm_per_head)
			memcpy(qn + h * d, l->q_norm + oh * d, d * sizeof(double));
	}
	for (size_t g = 0; g < G; g++) {
		size_t og = src_group(e, g);
		if (l->bk)
			fold_bias(p->rk + og * dd, l->bk + og * d, bk + g * d, d,
				  p->rotate_bias);
		if (l->bv)
			fold_bias(p->rv + og * dd, l->bv + og * d, bv + g * d, d,
				  p->rotate_bias);
		if (l->k_norm && !l->qk_norm_per_head)
			memcpy(kn + g * d, l->k_norm + og * d, d * sizeof(double));
	}
	Small *sm = &e->sm_b;
	if (l->bq) convert(sm->bq, bq, nq);
	if (l->bk) convert(sm->bk, bk, nk);
	if (l->bv) convert(sm->bv, bv, nk);
	if (l->bo) convert(sm->bo, l->bo, e->D);
	if (l->q_norm)
		convert(sm->qn, l->qk_norm_per_head ? l->q_norm : qn,
			l->qk_norm_per_head ? d : nq);
	if (l->k_norm)
		convert(sm->kn, l->qk_norm_per_head ? l->k_norm : kn,
			l->qk_norm_per_head ? d : nk);
}

static void add_ptask(Engine *e, int side, int part, size_t h0,
		      size_t nh)
{
	if (e->n_ptask < e->max_ptask)
		e->ptask[e->n_ptask++] = (ProjTask){side, part, h0, nh};
}

/* Chunks of at most chunk flagged heads of one projection. */
static void plan_part(Engine *e, int side, int part,
		      const bool *flag, size_t nheads, size_t chunk)
{
	if (chunk == 0)
		chunk = 1;
	for (size_t h = 0; h < nheads;) {
		if (!flag[h]) {
			h++;
			continue;
		}
		size_t end = h;
		while (end < nheads && flag[end] && end - h < chunk)
			end++;
		add_ptask(e, side, part, h, end - h);
		h = end;
	}
}

/* Phase C's tasks: the weights of this run's src in the compute precision
 * (float64: src's own), and on a first run a's (float32: converted). */
static RfStatus plan_conversion(Engine *e, bool first)
{
	const Layer *b = e->b;
	const double *wsrc[4] = {b->wq, b->wk, b->wv, b->wo};
	RfStatus st = RF_OK;
	e->n_ctask = 0;
#if REAL_IS_DOUBLE
	(void)first;
	for (int i = 0; i < 4; i++)
		e->ws[i] = wsrc[i];
#else
	if (first) {
		const double *wa64[4] = {e->a->wq, e->a->wk, e->a->wv, e->a->wo};
		for (int i = 0; i < 4; i++)
			add_conv(e, wa64[i], e->wa_own[i], e->wsize[i]);
	}
	for (int i = 0; i < 4; i++) {
		if (b == e->a) {
			e->ws[i] = e->wa[i];
			continue;
		}
		/* another layer than a (a one-shot comparison): its own copy */
		if (!e->ws_own[i])
			e->ws_own[i] = ws_alloc(e->wsize[i] * sizeof(REAL));
		if (!e->ws_own[i])
			st = RF_ERR_NOMEM;
		else
			add_conv(e, wsrc[i], e->ws_own[i], e->wsize[i]);
		e->ws[i] = e->ws_own[i];
	}
#endif
	return st;
}

/* R (d x d) of the plan in the compute precision: the plan's own matrix
 * in float64, a float copy in scratch in float32. */
static const REAL *rot(const double *R, size_t d, REAL *scratch)
{
#if REAL_IS_DOUBLE
	(void)d;
	(void)scratch;
	return R;
#else
	convert(scratch, R, d * d);
	return scratch;
#endif
}

/* The rotation of folded head (part 0) or group (parts 1, 2) i. */
static const double *plan_rot(const Engine *e, int part, size_t i)
{
	size_t dd = e->d * e->d;
	if (part == 0)
		return e->plan->rq + src_head(e, i) * dd;
	return (part == 1 ? e->plan->rk : e->plan->rv) + src_group(e, i) * dd;
}

static void proj_task(Engine *e, Worker *w,
		      const ProjTask *t)
{
	size_t T = e->T, D = e->D, d = e->d, dD = d * D;
	int p = t->part;
	const REAL *W = (t->side ? e->ws : e->wa)[p];
	REAL *out = t->side ? (p == 0 ? e->qb : p == 1 ? e->kb : e->vb)
			    : (p == 0 ? e->qa : p == 1 ? e->ka : e->va);
	size_t ld = p == 0 ? e->nq : e->nk, ncols = t->nh * d;
	const REAL *Wp = W + t->h0 * dD;
	if (t->side && e->plan) {
		/* W'_i = R_i W_src(i), d x D each, into the worker's scratch */
		double t0 = timer_now();
		REAL *wf = w->arena, *rf = wf + e->fold_heads * dD;
		for (size_t j = 0; j < t->nh; j++) {
			size_t i = t->h0 + j;
			size_t si = p == 0 ? src_head(e, i) : src_group(e, i);
			const REAL *R = rot(plan_rot(e, p, i), d, rf);
			GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)D,
			     (int)d, 1, R, (int)d, W + si * dD, (int)D, 0, wf + j * dD,
			     (int)D);
		}
		w->flops += 2.0 * (double)(t->nh * d) * (double)d * (double)D;
		w->fold_sec += timer_now() - t0;
		Wp = wf;
	}
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)ncols,
	     (int)D, 1, e->x, (int)D, Wp, (int)D, 0, out + t->h0 * d, (int)ld);
	w->flops += 2.0 * (double)T * (double)ncols * (double)D;
}

/* RMS-normalise groups of n entries of a row, times weight wt. */
static void norm_group(REAL *v, size_t n, const REAL *wt, double eps)
{
	double ss = 0.0;
	for (size_t i = 0; i < n; i++)
		ss += (double)v[i] * (double)v[i];
	REAL inv = (REAL)(1.0 / sqrt(ss / (double)n + eps));
	for (size_t i = 0; i < n; i++)
		v[i] = v[i] * inv * wt[i];
}

/* Rotate one head of the row at position p: (a, b) -> (a c - b s, a s + b c). */
static void rope_head(const RopeTable *t, size_t p, REAL *v)
{
	size_t np = t->npairs, half = t->rotary_dim / 2;
#if REAL_IS_DOUBLE
	const double *c = t->cos + p * np, *s = t->sin + p * np;
#else
	const float *c = t->cos_f + p * np, *s = t->sin_f + p * np;
#endif
	if (t->layout == ROPE_INTERLEAVED) {
		for (size_t i = 0; i < np; i++) {
			REAL a = v[2 * i], b = v[2 * i + 1];
			v[2 * i] = a * c[i] - b * s[i];
			v[2 * i + 1] = a * s[i] + b * c[i];
		}
	} else {
		for (size_t i = 0; i < np; i++) {
			REAL a = v[i], b = v[i + half];
			v[i] = a * c[i] - b * s[i];
			v[i + half] = a * s[i] + b * c[i];
		}
	}
}

/* Bias, QK-norm and RoPE of the flagged heads of one projection, rows
 * r0 .. r1-1. */
static void post_part(const Engine *e, const Layer *l,
		      REAL *x, size_t nheads, const bool *flag,
		      const REAL *bias, const REAL *norm,
		      const double *has_norm, bool rope, size_t r0, size_t r1)
{
	size_t d = e->d, ld = nheads * d;
	for (size_t t = r0; t < r1; t++) {
		REAL *row = x + t * ld;
		if (bias)
			for (size_t h = 0; h < nheads; h++)
				if (flag[h])
					for (size_t i = 0; i < d; i++)
						row[h * d + i] += bias[h * d + i];
		if (has_norm) {
			if (l->qk_norm_per_head) {
				for (size_t h = 0; h < nheads; h++)
					if (flag[h])
						norm_group(row + h * d, d, norm, l->qk_norm_eps);
			} else if (flag[0]) {
				/* a whole-row norm: every head is flagged or none */
				norm_group(row, ld, norm, l->qk_norm_eps);
			}
		}
		if (rope && e->rope->npairs)
			for (size_t h = 0; h < nheads; h++)
				if (flag[h])
					rope_head(e->rope, t, row + h * d);
	}
}

static void post_rows(Engine *e, size_t r0, size_t r1)
{
	const Layer *a = e->a, *b = e->b;
	for (int side = 0; side < 2; side++) {
		if (side == 0 && e->orig_ready)
			continue;
		const Layer *l = side ? b : a;
		const Small *sm = side ? &e->sm_b : &e->sm_a;
		REAL *q = side ? e->qb : e->qa, *k = side ? e->kb : e->ka;
		REAL *v = side ? e->vb : e->va;
		const bool *qf = e->q_chg, *kf = e->k_chg, *vf = e->v_chg;
		post_part(e, l, q, e->H, qf, l->bq ? sm->bq : NULL, sm->qn,
			  l->q_norm, true, r0, r1);
		post_part(e, l, k, e->G, kf, l->bk ? sm->bk : NULL, sm->kn,
			  l->k_norm, true, r0, r1);
		post_part(e, l, v, e->G, vf, l->bv ? sm->bv : NULL, NULL,
			  NULL, false, r0, r1);
	}
}

/* Phase P's tasks: the folded side's small tensors, and the projections
 * of the flagged heads and groups (on a first run the original's too, in
 * wide chunks). Whether bias/norm/RoPE rows have anything to do. */
static bool plan_projections(Engine *e, bool first)
{
	size_t H = e->H, G = e->G;
	small_fold(e);
	e->n_ptask = 0;
	if (first) {
		small_fill(&e->sm_a, e->a, e->nq, e->nk, e->D, e->d);
		bool *t = e->s_chg;  /* scratch: all true on a first run */
		size_t wide = PROJ_CHUNK / e->d;
		plan_part(e, 0, 0, t, H, wide);
		plan_part(e, 0, 1, t, G, wide);
		plan_part(e, 0, 2, t, G, wide);
	}
	size_t chunk = e->plan ? e->fold_heads : PROJ_CHUNK / e->d;
	plan_part(e, 1, 0, e->q_chg, H, chunk);
	plan_part(e, 1, 1, e->k_chg, G, chunk);
	plan_part(e, 1, 2, e->v_chg, G, chunk);
	bool any_post = first;
	for (size_t h = 0; h < H; h++)
		any_post |= e->q_chg[h];
	for (size_t g = 0; g < G; g++)
		any_post |= e->k_chg[g] || e->v_chg[g];
	return any_post;
}

#endif
