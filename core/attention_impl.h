/* The evaluation engine, written once for both precisions. Included by
 * attention.c with REAL, REAL_IS_DOUBLE, GEMM and FN(name) defined.
 *
 * One run compares the original layer a with its fold: the layer src
 * (usually a itself) with a FoldPlan's rotations folded in, head by head,
 * into small scratch blocks, so the folded side is evaluated from folded
 * weights as a runtime would, without a second copy of the layer:
 *
 *   C  float only, cold runs: a's weights converted to float once.
 *   P  projections     q, k, v of both sides. The original's as a few
 *                      wide GEMMs x W^T; the folded side's per chunk of
 *                      heads: W'_h = R_h W_h into the worker's scratch,
 *                      then x W'^T. Then bias, QK-norm and RoPE from the
 *                      tables, row blocks.
 *   S  heads           per query head, on one worker: scores of both sides
 *                      (causal row blocks only), the score comparison, the
 *                      fused mask + softmax, and the contexts C_h = P v_g.
 *   O  outputs         per block of model coordinates (all tokens), on one
 *                      worker, head after head: the folded block
 *                      W'_o,h^T = R_o,h W_o,h^T of those coordinates, both
 *                      sides' O_h = C_h W_o,h^T, compared while in cache
 *                      and summed into the attention update U = sum_h O_h
 *                      (in head order, whatever the threads), then the
 *                      residual y = x + U + b_o compared. U is not a second
 *                      output projection: it is the sum the head level
 *                      computes anyway.
 *
 * What does not change across runs is kept: the original side's
 * projections, contexts, U and (as memory allows) every O_h; and the
 * folded side's projections, contexts and per-head results of the heads a
 * toggle did not touch. */

/* Per-worker scratch: one arena, carved differently by each phase. */
typedef struct {
	REAL *arena;            /* arena_n entries */
	size_t arena_n;
	double *boref;          /* T: the original's max |score| by offset,
				 * reversed (index T-1-offset) */
	double *evrow;          /* T: one row's score errors */
	double *h_err, *h_ref;  /* H: head-level partials of this worker */
	size_t *h_idx;          /* H: m * D + c of the worker's worst */
	unsigned *h_ovf;        /* H: OVERFLOW_* bits there (error +Inf) */
	double r_err, r_ref;    /* residual partials */
	size_t r_idx;
	unsigned r_ovf;
	double flops;
	double fold_sec;        /* seconds spent folding in this phase */
} FN(Worker);

/* Small tensors of one side in the compute precision. */
typedef struct {
	REAL *bq, *bk, *bv, *bo, *qn, *kn;
} FN(Small);

/* A float conversion task: n entries. */
typedef struct {
	const double *src;
	REAL *dst;
	size_t n;
} FN(ConvTask);

struct FN(Engine) {
	const Layer *a;
	const RopeTable *rope;
	size_t T, D, H, G, d, hpg, nq, nk, B, nworkers;
	size_t tb, nc;              /* outputs: token chunk, coordinate block */
	size_t fold_heads;          /* heads folded per projection task */
	const REAL *x;              /* T x D input (float: own copy) */
	REAL *x_own;
	/* the weights in the compute precision: W_q (H*d x D), W_k, W_v
	 * (G*d x D), W_o (D x H*d) */
	const REAL *wa[4];          /* of a (float: own copies, wa_own) */
	REAL *wa_own[4];
	const REAL *ws[4];          /* of this run's src */
	REAL *ws_own[4];            /* float copies when src is not a */
	size_t wsize[4];            /* entries of each */
	FN(Small) sm_a, sm_b;
	double *small64;            /* nq + 2 nk: folded biases in double */
	REAL *qa, *ka, *va;         /* T x nq, T x nk, T x nk (after RoPE) */
	REAL *qb, *kb, *vb;
	REAL *ca, *cb;              /* T x nq contexts */
	bool outk;                  /* outputs by the fused kernel */
	REAL *cpa, *cpb;            /* H x rows x d: contexts packed for it */
	size_t cp_rows;
	REAL *ua;                   /* T x D: U of the original */
	REAL *ocache;               /* n_ocache x T x D: O_h of the original */
	size_t n_ocache;
	REAL *pcache;               /* H x T x T: the folded side's P_h (causal
				     * row blocks), NULL when the budget is short */
	FN(Worker) *w;
	/* per-head results, kept for heads a toggle does not touch */
	double *s_err, *s_ref;      /* H */
	size_t *s_m, *s_n;          /* H */
	unsigned *s_ovf;            /* H: OVERFLOW_* bits at (s_m, s_n) */
	double *byoff;              /* H x T */
	double *byoff_ref;          /* T: max |score| of the original */
	double *heat;               /* H x B x B */
	double *heatd;              /* H x B: bin b's m = n entries alone */
	double *h_err, *h_ref;      /* H */
	size_t *h_idx;              /* H */
	unsigned *h_ovf;            /* H */
	double r_err, r_ref;
	size_t r_idx;
	unsigned r_ovf;
	bool orig_ready;            /* the original side's caches are valid */
	bool results_valid;         /* the per-head results are valid */
	/* this run's plan */
	const Layer *b;             /* src: the folded side's shape, norms, b_o */
	const FoldPlan *plan;       /* NULL: src as it is */
	bool *q_chg, *k_chg, *v_chg, *o_chg;   /* projections (H, G, G), W_o (H) */
	bool *s_chg, *c_chg;                   /* scores, contexts (H) */
	TaskQueue queue;
	struct FN(ProjTask) *ptask;
	size_t n_ptask, max_ptask;
	FN(ConvTask) *ctask;
	size_t n_ctask, max_ctask;
	size_t n_cblocks;           /* output coordinate blocks */
	size_t *heads;              /* H: the heads of phase S */
	size_t n_heads_run;
	double flops;
	double sec[ATTN_PHASE_COUNT];  /* wall-clock seconds of the last run */
};

typedef struct FN(ProjTask) {
	int side;                   /* 0: original, 1: folded */
	int part;                   /* 0 q, 1 k, 2 v */
	size_t h0, nh;              /* heads (part 0) or kv groups h0 .. h0+nh-1 */
} FN(ProjTask);

/* |a - b| as the comparisons take it: a NaN difference (a side
 * overflowed: Inf - Inf, 0 Inf, or a NaN carried along) counts as an
 * infinite error, so an overflow wins every max and the first place it
 * wins names it. */
static inline double FN(err_of)(double a, double b)
{
	double e = fabs(a - b);
	return e == e ? e : INFINITY;
}

/* Where a compared pair is not finite: OVERFLOW_* bits, for an error that
 * err_of made +Inf. */
static unsigned FN(ovf_side)(double a, double b)
{
	unsigned s = (isfinite(a) ? 0 : OVERFLOW_ORIGINAL) |
		     (isfinite(b) ? 0 : OVERFLOW_FOLDED);
	return s ? s : OVERFLOW_DIFFERENCE;
}

#include "core/outk_impl.h"

static void *FN(zalloc)(size_t n, size_t size, bool *ok)
{
	void *p = ws_calloc(n * size > 0 ? n * size : 1);
	if (!p)
		*ok = false;
	return p;
}

/* Byte sizes of the engine's buffers, so free can unmap what alloc mapped. */
static size_t FN(proj_bytes)(const struct FN(Engine) *e, size_t cols)
{
	return e->T * cols * sizeof(REAL);
}

/* Entries of a worker's arena: the largest of the phases' carvings. */
static size_t FN(arena_entries)(const struct FN(Engine) *e)
{
	size_t T = e->T, D = e->D, d = e->d, nc = e->nc, tb = e->tb;
	size_t proj = e->fold_heads * d * D + d * d;
	size_t heads = 2 * T * T + (e->outk ? T * d : 0);
	size_t out = d * nc + 2 * tb * nc + 2 * T * nc + d * d;
	if (e->outk) {
		size_t k = 3 * d * OUTK_SUB + 2 * T * nc + d * d +
			   FN(outk_rows)(d) * d;
		out = out > k ? out : k;
	}
	size_t n = proj > heads ? proj : heads;
	return n > out ? n : out;
}

static void FN(engine_free)(struct FN(Engine) *e)
{
	if (!e)
		return;
	size_t T = e->T, D = e->D, H = e->H;
	ws_free(e->x_own, T * D * sizeof(REAL));
	for (int i = 0; i < 4; i++) {
		ws_free(e->wa_own[i], e->wsize[i] * sizeof(REAL));
		ws_free(e->ws_own[i], e->wsize[i] * sizeof(REAL));
	}
	FN(Small) *sm[2] = {&e->sm_a, &e->sm_b};
	for (int s = 0; s < 2; s++) {
		ws_free(sm[s]->bq, e->nq * sizeof(REAL));
		ws_free(sm[s]->bk, e->nk * sizeof(REAL));
		ws_free(sm[s]->bv, e->nk * sizeof(REAL));
		ws_free(sm[s]->bo, D * sizeof(REAL));
		ws_free(sm[s]->qn, e->nq * sizeof(REAL));
		ws_free(sm[s]->kn, e->nk * sizeof(REAL));
	}
	free(e->small64);
	ws_free(e->qa, FN(proj_bytes)(e, e->nq));
	ws_free(e->ka, FN(proj_bytes)(e, e->nk));
	ws_free(e->va, FN(proj_bytes)(e, e->nk));
	ws_free(e->qb, FN(proj_bytes)(e, e->nq));
	ws_free(e->kb, FN(proj_bytes)(e, e->nk));
	ws_free(e->vb, FN(proj_bytes)(e, e->nk));
	ws_free(e->ca, FN(proj_bytes)(e, e->nq));
	ws_free(e->cb, FN(proj_bytes)(e, e->nq));
	ws_free(e->cpa, H * e->cp_rows * e->d * sizeof(REAL));
	ws_free(e->cpb, H * e->cp_rows * e->d * sizeof(REAL));
	ws_free(e->ua, T * D * sizeof(REAL));
	ws_free(e->ocache, e->n_ocache * T * D * sizeof(REAL));
	ws_free(e->pcache, H * T * T * sizeof(REAL));
	if (e->w) {
		for (size_t i = 0; i < e->nworkers; i++) {
			FN(Worker) *w = &e->w[i];
			ws_free(w->arena, w->arena_n * sizeof(REAL));
			free(w->h_err);
			free(w->h_ref);
			free(w->h_idx);
			free(w->h_ovf);
			free(w->boref);
			free(w->evrow);
		}
		free(e->w);
	}
	free(e->s_err); free(e->s_ref); free(e->s_m); free(e->s_n); free(e->s_ovf);
	ws_free(e->byoff, H * T * sizeof(double));
	free(e->byoff_ref);
	ws_free(e->heat, H * e->B * e->B * sizeof(double));
	free(e->heatd);
	free(e->h_err); free(e->h_ref); free(e->h_idx); free(e->h_ovf);
	free(e->q_chg); free(e->k_chg); free(e->v_chg); free(e->o_chg);
	free(e->s_chg); free(e->c_chg);
	free(e->ptask);
	free(e->ctask);
	free(e->heads);
	free(e);
}

/* The coordinate block of the output phase: at most OUT_NC, and small
 * enough that every worker gets at least two blocks. */
static size_t FN(pick_nc)(size_t D, size_t nworkers)
{
	size_t nc = D < OUT_NC ? D : OUT_NC;
	while (nc > 64 && (D + nc - 1) / nc < 2 * nworkers)
		nc /= 2;
	return nc;
}

static RfStatus FN(engine_new)(const Layer *a, const double *x64, size_t T,
			       const RopeTable *rope, size_t nworkers,
			       size_t ocache_bytes, struct FN(Engine) **out)
{
	struct FN(Engine) *e = calloc(1, sizeof *e);
	bool ok = e != NULL;
	*out = NULL;
	if (!ok)
		return RF_ERR_NOMEM;
	size_t D = a->shape.d_model, H = a->shape.n_heads;
	size_t G = a->shape.n_kv_heads, d = a->shape.head_dim;
	e->a = a;
	e->rope = rope;
	e->T = T; e->D = D; e->H = H; e->G = G; e->d = d;
	e->hpg = H / G;
	e->nq = H * d;
	e->nk = G * d;
	e->B = T < 64 ? T : 64;
	e->nworkers = nworkers ? nworkers : 1;
	e->tb = T < OUT_TB ? T : OUT_TB;
	e->nc = FN(pick_nc)(D, e->nworkers);
	e->fold_heads = FOLD_COLS / d ? FOLD_COLS / d : 1;
	size_t nq = e->nq, nk = e->nk;
	e->wsize[0] = nq * D;
	e->wsize[1] = e->wsize[2] = nk * D;
	e->wsize[3] = D * nq;
#if REAL_IS_DOUBLE
	e->x = x64;
	e->wa[0] = a->wq; e->wa[1] = a->wk; e->wa[2] = a->wv; e->wa[3] = a->wo;
#else
	e->x_own = FN(zalloc)(T * D, sizeof(REAL), &ok);
	if (ok)
		for (size_t i = 0; i < T * D; i++)
			e->x_own[i] = (REAL)x64[i];
	e->x = e->x_own;
	for (int i = 0; i < 4; i++) {
		e->wa_own[i] = FN(zalloc)(e->wsize[i], sizeof(REAL), &ok);
		e->wa[i] = e->wa_own[i];
	}
#endif
	FN(Small) *sm[2] = {&e->sm_a, &e->sm_b};
	for (int s = 0; s < 2; s++) {
		sm[s]->bq = FN(zalloc)(nq, sizeof(REAL), &ok);
		sm[s]->bk = FN(zalloc)(nk, sizeof(REAL), &ok);
		sm[s]->bv = FN(zalloc)(nk, sizeof(REAL), &ok);
		sm[s]->bo = FN(zalloc)(D, sizeof(REAL), &ok);
		sm[s]->qn = FN(zalloc)(nq, sizeof(REAL), &ok);
		sm[s]->kn = FN(zalloc)(nk, sizeof(REAL), &ok);
	}
	e->small64 = calloc(2 * nq + 3 * nk, sizeof(double));
	if (!e->small64)
		ok = false;
	e->qa = FN(zalloc)(T, nq * sizeof(REAL), &ok);
	e->ka = FN(zalloc)(T, nk * sizeof(REAL), &ok);
	e->va = FN(zalloc)(T, nk * sizeof(REAL), &ok);
	e->qb = FN(zalloc)(T, nq * sizeof(REAL), &ok);
	e->kb = FN(zalloc)(T, nk * sizeof(REAL), &ok);
	e->vb = FN(zalloc)(T, nk * sizeof(REAL), &ok);
#ifdef OUTK
	e->outk = attention_kernel_fused();
	if (e->outk) {
		/* the kernel reads the contexts packed, and only so */
		e->cp_rows = FN(outk_rows)(T);
		e->cpa = FN(zalloc)(H * e->cp_rows, d * sizeof(REAL), &ok);
		e->cpb = FN(zalloc)(H * e->cp_rows, d * sizeof(REAL), &ok);
	}
#endif
	if (!e->outk) {
		e->ca = FN(zalloc)(T, nq * sizeof(REAL), &ok);
		e->cb = FN(zalloc)(T, nq * sizeof(REAL), &ok);
	}
	e->ua = FN(zalloc)(T * D, sizeof(REAL), &ok);
	/* As many heads' O_h as the budget holds. */
	size_t per_head = T * D * sizeof(REAL);
	e->n_ocache = per_head ? ocache_bytes / per_head : 0;
	if (e->n_ocache > H)
		e->n_ocache = H;
	if (e->n_ocache) {
		e->ocache = ws_alloc(e->n_ocache * per_head);
		if (!e->ocache)
			e->n_ocache = 0;  /* no cache: recompute instead */
	}
	/* With every O_h cached, the folded side's attention probabilities
	 * too, when the budget holds them: a toggle that changes only V
	 * then reuses them. */
	size_t pbytes = H * T * T * sizeof(REAL);
	if (e->n_ocache == H && ocache_bytes - H * per_head >= pbytes)
		e->pcache = ws_alloc(pbytes);  /* NULL: recompute instead */
	e->w = calloc(e->nworkers, sizeof(FN(Worker)));
	if (!e->w)
		ok = false;
	size_t arena = FN(arena_entries)(e);
	for (size_t i = 0; ok && i < e->nworkers; i++) {
		FN(Worker) *w = &e->w[i];
		w->arena = ws_alloc(arena * sizeof(REAL));
		w->arena_n = arena;
		w->h_err = calloc(H, sizeof(double));
		w->h_ref = calloc(H, sizeof(double));
		w->h_idx = calloc(H, sizeof(size_t));
		w->h_ovf = calloc(H, sizeof(unsigned));
		w->boref = calloc(T, sizeof(double));
		w->evrow = calloc(T, sizeof(double));
		if (!w->arena || !w->h_err || !w->h_ref || !w->h_idx || !w->h_ovf ||
		    !w->boref || !w->evrow)
			ok = false;
	}
	e->s_err = calloc(H, sizeof(double));
	e->s_ref = calloc(H, sizeof(double));
	e->s_m = calloc(H, sizeof(size_t));
	e->s_n = calloc(H, sizeof(size_t));
	e->s_ovf = calloc(H, sizeof(unsigned));
	e->byoff = FN(zalloc)(H * T, sizeof(double), &ok);
	e->byoff_ref = calloc(T, sizeof(double));
	e->heat = FN(zalloc)(H * e->B * e->B, sizeof(double), &ok);
	e->heatd = calloc(H * e->B + 1, sizeof(double));
	ok = ok && e->heatd;
	e->h_err = calloc(H, sizeof(double));
	e->h_ref = calloc(H, sizeof(double));
	e->h_idx = calloc(H, sizeof(size_t));
	e->h_ovf = calloc(H, sizeof(unsigned));
	e->q_chg = calloc(H, sizeof(bool));
	e->o_chg = calloc(H, sizeof(bool));
	e->s_chg = calloc(H, sizeof(bool));
	e->c_chg = calloc(H, sizeof(bool));
	e->k_chg = calloc(G, sizeof(bool));
	e->v_chg = calloc(G, sizeof(bool));
	e->heads = calloc(H, sizeof(size_t));
	/* projection tasks: at most one per head or group and side */
	e->max_ptask = 2 * (H + 2 * G) + 8;
	e->ptask = calloc(e->max_ptask, sizeof(FN(ProjTask)));
	/* conversion tasks: chunks of the 4 weights of both layers */
	e->max_ctask = 2 * (4 + (nq * D + 2 * nk * D + D * nq) / CONV_CHUNK) + 8;
	e->ctask = calloc(e->max_ctask, sizeof(FN(ConvTask)));
	if (!e->s_err || !e->s_ref || !e->s_m || !e->s_n || !e->s_ovf ||
	    !e->byoff_ref || !e->h_err || !e->h_ref || !e->h_idx || !e->h_ovf ||
	    !e->q_chg || !e->o_chg ||
	    !e->s_chg || !e->c_chg || !e->k_chg || !e->v_chg || !e->heads ||
	    !e->ptask || !e->ctask)
		ok = false;
	if (!ok) {
		FN(engine_free)(e);
		return RF_ERR_NOMEM;
	}
	*out = e;
	return RF_OK;
}

/* ======================= phase C and P: weights, projections ============= */

static void FN(convert)(REAL *dst, const double *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (REAL)src[i];
}

#if !REAL_IS_DOUBLE
/* Queue the float conversion of n entries in chunks. */
static void FN(add_conv)(struct FN(Engine) *e, const double *src, REAL *dst,
			 size_t n)
{
	for (size_t i = 0; i < n; i += CONV_CHUNK)
		if (e->n_ctask < e->max_ctask)
			e->ctask[e->n_ctask++] = (FN(ConvTask)){
				src + i, dst + i, n - i < CONV_CHUNK ? n - i : CONV_CHUNK};
}
#endif

/* Fill a side's small tensors in the compute precision. */
static void FN(small_fill)(FN(Small) *sm, const Layer *l, size_t nq, size_t nk,
			   size_t D, size_t d)
{
	if (l->bq) FN(convert)(sm->bq, l->bq, nq);
	if (l->bk) FN(convert)(sm->bk, l->bk, nk);
	if (l->bv) FN(convert)(sm->bv, l->bv, nk);
	if (l->bo) FN(convert)(sm->bo, l->bo, D);
	if (l->q_norm) FN(convert)(sm->qn, l->q_norm, l->qk_norm_per_head ? d : nq);
	if (l->k_norm) FN(convert)(sm->kn, l->k_norm, l->qk_norm_per_head ? d : nk);
}

/* The original head of folded query head h, and of folded kv group g. */
static size_t FN(src_head)(const struct FN(Engine) *e, size_t h)
{
	if (!e->plan)
		return h;
	return e->plan->perm[h / e->hpg] * e->hpg + h % e->hpg;
}

static size_t FN(src_group)(const struct FN(Engine) *e, size_t g)
{
	return e->plan ? e->plan->perm[g] : g;
}

/* The folded side's small tensors: biases rotated (in double, as
 * fold_apply does) and moved with their heads, layer-wide QK-norm
 * weights moved with their heads. */
static void FN(small_fold)(struct FN(Engine) *e)
{
	const Layer *l = e->b;
	const FoldPlan *p = e->plan;
	size_t d = e->d, dd = d * d, H = e->H, G = e->G, nq = e->nq, nk = e->nk;
	if (!p) {
		FN(small_fill)(&e->sm_b, l, nq, nk, e->D, d);
		return;
	}
	double *bq = e->small64, *bk = bq + nq, *bv = bk + nk;
	double *qn = bv + nk, *kn = qn + nq;
	for (size_t h = 0; h < H; h++) {
		size_t oh = FN(src_head)(e, h);
		if (l->bq)
			fold_bias(p->rq + oh * dd, l->bq + oh * d, bq + h * d, d,
				     p->rotate_bias);
		if (l->q_norm && !l->qk_norm_per_head)
			memcpy(qn + h * d, l->q_norm + oh * d, d * sizeof(double));
	}
	for (size_t g = 0; g < G; g++) {
		size_t og = FN(src_group)(e, g);
		if (l->bk)
			fold_bias(p->rk + og * dd, l->bk + og * d, bk + g * d, d,
				     p->rotate_bias);
		if (l->bv)
			fold_bias(p->rv + og * dd, l->bv + og * d, bv + g * d, d,
				     p->rotate_bias);
		if (l->k_norm && !l->qk_norm_per_head)
			memcpy(kn + g * d, l->k_norm + og * d, d * sizeof(double));
	}
	FN(Small) *sm = &e->sm_b;
	if (l->bq) FN(convert)(sm->bq, bq, nq);
	if (l->bk) FN(convert)(sm->bk, bk, nk);
	if (l->bv) FN(convert)(sm->bv, bv, nk);
	if (l->bo) FN(convert)(sm->bo, l->bo, e->D);
	if (l->q_norm)
		FN(convert)(sm->qn, l->qk_norm_per_head ? l->q_norm : qn,
			    l->qk_norm_per_head ? d : nq);
	if (l->k_norm)
		FN(convert)(sm->kn, l->qk_norm_per_head ? l->k_norm : kn,
			    l->qk_norm_per_head ? d : nk);
}

static void FN(add_ptask)(struct FN(Engine) *e, int side, int part, size_t h0,
			  size_t nh)
{
	if (e->n_ptask < e->max_ptask)
		e->ptask[e->n_ptask++] = (FN(ProjTask)){side, part, h0, nh};
}

/* Chunks of at most chunk flagged heads of one projection. */
static void FN(plan_part)(struct FN(Engine) *e, int side, int part,
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
		FN(add_ptask)(e, side, part, h, end - h);
		h = end;
	}
}

/* R (d x d) of the plan in the compute precision: the plan's own matrix
 * in float64, a float copy in scratch in float32. */
static const REAL *FN(rot)(const double *R, size_t d, REAL *scratch)
{
#if REAL_IS_DOUBLE
	(void)d;
	(void)scratch;
	return R;
#else
	FN(convert)(scratch, R, d * d);
	return scratch;
#endif
}

/* The rotation of folded head (part 0) or group (parts 1, 2) i. */
static const double *FN(plan_rot)(const struct FN(Engine) *e, int part, size_t i)
{
	size_t dd = e->d * e->d;
	if (part == 0)
		return e->plan->rq + FN(src_head)(e, i) * dd;
	return (part == 1 ? e->plan->rk : e->plan->rv) + FN(src_group)(e, i) * dd;
}

static void FN(proj_task)(struct FN(Engine) *e, FN(Worker) *w,
			  const FN(ProjTask) *t)
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
			size_t si = p == 0 ? FN(src_head)(e, i) : FN(src_group)(e, i);
			const REAL *R = FN(rot)(FN(plan_rot)(e, p, i), d, rf);
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
static void FN(norm_group)(REAL *v, size_t n, const REAL *wt, double eps)
{
	double ss = 0.0;
	for (size_t i = 0; i < n; i++)
		ss += (double)v[i] * (double)v[i];
	REAL inv = (REAL)(1.0 / sqrt(ss / (double)n + eps));
	for (size_t i = 0; i < n; i++)
		v[i] = v[i] * inv * wt[i];
}

/* Rotate one head of the row at position p: (a, b) -> (a c - b s, a s + b c). */
static void FN(rope_head)(const RopeTable *t, size_t p, REAL *v)
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
static void FN(post_part)(const struct FN(Engine) *e, const Layer *l,
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
						FN(norm_group)(row + h * d, d, norm, l->qk_norm_eps);
			} else if (flag[0]) {
				/* a whole-row norm: every head is flagged or none */
				FN(norm_group)(row, ld, norm, l->qk_norm_eps);
			}
		}
		if (rope && e->rope->npairs)
			for (size_t h = 0; h < nheads; h++)
				if (flag[h])
					FN(rope_head)(e->rope, t, row + h * d);
	}
}

/* ======================= vector helpers ================================== */

/* The hot loops of the comparison, VLANES entries at a time with GCC/clang
 * vector extensions (and AVX-512 and AVX2 clones picked at load time on
 * x86-64).
 * Differences are taken in double, where the difference of two floats is
 * exact, and taken as err_of does (a NaN is +Inf): the same results as
 * plain loops. */
#if defined(__GNUC__)
typedef REAL FN(V4) __attribute__((vector_size(VLANES * sizeof(REAL))));
typedef double FN(V4d) __attribute__((vector_size(VLANES * 8)));
typedef long long FN(V4m) __attribute__((vector_size(VLANES * 8)));
#define VEC4 1
#define V4_LOAD(dst, p)                                                  \
	do {                                                             \
		FN(V4) t_;                                               \
		memcpy(&t_, (p), sizeof t_);                             \
		dst = __builtin_convertvector(t_, FN(V4d));              \
	} while (0)
#define V4_ABS(v) ((FN(V4d))((FN(V4m))(v) & ((FN(V4m)){0} + INT64_MAX)))
#define V4_MAX(m, e)                                                     \
	do {                                                             \
		FN(V4m) gt_ = (e) > (m);                                 \
		m = (FN(V4d))(((FN(V4m))(e) & gt_) | ((FN(V4m))(m) & ~gt_)); \
	} while (0)
#define V4_ADD_TO(u, b)                                                  \
	do {                                                             \
		FN(V4) x_, y_;                                           \
		memcpy(&x_, (u), sizeof x_);                             \
		memcpy(&y_, (b), sizeof y_);                             \
		x_ += y_;                                                \
		memcpy((u), &x_, sizeof x_);                             \
	} while (0)
#if defined(__x86_64__) && !defined(__clang__) && defined(__linux__)
#define HOT_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef HOT_CLONES
#define HOT_CLONES
#endif

#ifdef VEC4
/* err_of, VLANES at a time: NaN lanes of *e become +Inf. */
static inline void FN(v4_nan_inf)(FN(V4d) *e)
{
	FN(V4m) num = *e == *e;
	FN(V4d) inf = (FN(V4d)){0} + INFINITY;
	*e = (FN(V4d))(((FN(V4m))*e & num) | ((FN(V4m))inf & ~num));
}
#endif

/* ======================= phase S: heads ================================== */

/* S[r0:r1, 0:r1] = scale q_h k_g^T for causal row blocks. */
static void FN(scores)(const struct FN(Engine) *e, FN(Worker) *w,
		       const REAL *q, const REAL *k, size_t h, REAL scale, REAL *S)
{
	size_t T = e->T, d = e->d, g = h / e->hpg;
	for (size_t r0 = 0; r0 < T; r0 += SCORE_BLOCK) {
		size_t r1 = r0 + SCORE_BLOCK < T ? r0 + SCORE_BLOCK : T;
		GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0),
		     (int)r1, (int)d, scale, q + r0 * e->nq + h * d, (int)e->nq,
		     k + g * d, (int)e->nk, 0, S + r0 * T, (int)T);
		w->flops += 2.0 * (double)(r1 - r0) * (double)r1 * (double)d;
	}
}

#ifdef VEC4
/* exp(x), VLANES at a time: x = k ln2 + r with |r| <= ln2/2 (Cody-Waite),
 * exp(r) by its degree-13 Taylor polynomial (truncation below 1e-17
 * relative, so within an ulp or two of exp()), times 2^k from the
 * exponent bits; 0 below -708, where exp() is subnormal or zero. */
static inline void FN(vexp)(FN(V4d) *xp)
{
	FN(V4d) x = *xp;
	const double shift = 6755399441055744.0;  /* 1.5 * 2^52: rounds to int */
	FN(V4m) under = x < -708.0;
	FN(V4d) lo = (FN(V4d)){0} - 708.0;
	x = (FN(V4d))(((FN(V4m))x & ~under) | ((FN(V4m))lo & under));
	FN(V4d) kd = x * 1.44269504088896338700 + shift;
	FN(V4m) ki = (FN(V4m))kd - (FN(V4m))((FN(V4d)){0} + shift);
	kd -= shift;
	FN(V4d) r = x - kd * 6.93147180369123816490e-01;
	r = r - kd * 1.90821492927058770002e-10;
	FN(V4d) p = (FN(V4d)){0} + 1.0 / 6227020800.0;
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
	FN(V4d) scale = (FN(V4d))((ki + 1023) << 52);
	*xp = (FN(V4d))((FN(V4m))(p * scale) & ~under);
}
#endif

/* Row softmax over its n first entries in place, max subtracted. */
HOT_CLONES
static void FN(softmax_row)(REAL *row, size_t n)
{
	REAL mx = row[0];
	for (size_t j = 1; j < n; j++)
		if (row[j] > mx)
			mx = row[j];
	double sum = 0;
	size_t j = 0;
#ifdef VEC4
	FN(V4d) vs = {0};
	for (; j + VLANES <= n; j += VLANES) {
		FN(V4) t;
		memcpy(&t, row + j, sizeof t);
		t -= mx;
		FN(V4d) x = __builtin_convertvector(t, FN(V4d));
		FN(vexp)(&x);
		vs += x;
		t = __builtin_convertvector(x, FN(V4));
		memcpy(row + j, &t, sizeof t);
	}
	if (j < n) {
		FN(V4d) x;
		for (size_t i = 0; i < VLANES; i++)  /* past the end: exp -> 0 */
			x[i] = j + i < n ? (double)(row[j + i] - mx) : -1000.0;
		FN(vexp)(&x);
		vs += x;
		for (size_t i = 0; j + i < n; i++)
			row[j + i] = (REAL)x[i];
	}
	for (size_t i = 0; i < VLANES; i++)
		sum += vs[i];
#else
	for (; j < n; j++) {
		row[j] = (REAL)exp((double)(row[j] - mx));
		sum += row[j];
	}
#endif
	REAL inv = (REAL)(1 / sum);
	for (j = 0; j < n; j++)
		row[j] *= inv;
}

/* Causal softmax of S in place (row m over n <= m, max subtracted, zeros
 * to the end of its row block), then C_h = P v_g (T x d, leading
 * dimension ldc), causal row blocks. */
static void FN(softmax_context)(const struct FN(Engine) *e, FN(Worker) *w,
				REAL *S, const REAL *v, size_t h, REAL *C,
				size_t ldc, bool softmax)
{
	size_t T = e->T, d = e->d, g = h / e->hpg;
	for (size_t r0 = 0; r0 < T; r0 += SCORE_BLOCK) {
		size_t r1 = r0 + SCORE_BLOCK < T ? r0 + SCORE_BLOCK : T;
		for (size_t m = r0; softmax && m < r1; m++) {
			REAL *row = S + m * T;
			FN(softmax_row)(row, m + 1);
			for (size_t n = m + 1; n < r1; n++)
				row[n] = 0;
		}
		GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0),
		     (int)d, (int)r1, 1, S + r0 * T, (int)T, v + g * d, (int)e->nk,
		     0, C + r0 * ldc, (int)ldc);
		w->flops += 2.0 * (double)(r1 - r0) * (double)r1 * (double)d;
	}
}

/* ev_j = |a_j - b_j| and br_j = max(br_j, ev_j) over n entries; returns
 * max_j ev_j. */
HOT_CLONES
static double FN(row_diff)(const REAL *a, const REAL *b, size_t n, double *ev,
			   double *br)
{
	double m = 0;
	size_t j = 0;
#ifdef VEC4
	FN(V4d) vm = {0};
	for (; j + VLANES <= n; j += VLANES) {
		FN(V4d) x, y, o;
		V4_LOAD(x, a + j);
		V4_LOAD(y, b + j);
		FN(V4d) e = V4_ABS(x - y);
		FN(v4_nan_inf)(&e);
		V4_MAX(vm, e);
		memcpy(ev + j, &e, sizeof e);
		memcpy(&o, br + j, sizeof o);
		V4_MAX(o, e);
		memcpy(br + j, &o, sizeof o);
	}
	for (int i = 0; i < VLANES; i++)
		if (vm[i] > m)
			m = vm[i];
#endif
	for (; j < n; j++) {
		double e = FN(err_of)((double)a[j], (double)b[j]);
		ev[j] = e;
		if (e > m)
			m = e;
		if (e > br[j])
			br[j] = e;
	}
	return m;
}

/* br_j = max(br_j, |a_j|) over n entries; returns max_j |a_j|. */
HOT_CLONES
static double FN(row_ref)(const REAL *a, size_t n, double *br)
{
	double m = 0;
	size_t j = 0;
#ifdef VEC4
	FN(V4d) vm = {0};
	for (; j + VLANES <= n; j += VLANES) {
		FN(V4d) x, o;
		V4_LOAD(x, a + j);
		FN(V4d) e = V4_ABS(x);
		V4_MAX(vm, e);
		memcpy(&o, br + j, sizeof o);
		V4_MAX(o, e);
		memcpy(br + j, &o, sizeof o);
	}
	for (int i = 0; i < VLANES; i++)
		if (vm[i] > m)
			m = vm[i];
#endif
	for (; j < n; j++) {
		double e = fabs((double)a[j]);
		if (e > m)
			m = e;
		if (e > br[j])
			br[j] = e;
	}
	return m;
}

/* Compare head h's scores: per-head max error and its first location, the
 * error by offset, the heat bins; and, the first time, the original's
 * magnitudes, by offset into the worker's boref. Row m's offsets m - n
 * run backwards, so both by-offset arrays are kept reversed (index
 * T-1-offset) while rows are swept: each row is then one forward run. */
static void FN(score_compare)(struct FN(Engine) *e, FN(Worker) *w, size_t h,
			      const REAL *Sa, const REAL *Sb, bool with_ref)
{
	size_t T = e->T, B = e->B;
	double *byoff = e->byoff + h * T, *ev = w->evrow;
	double *heat = e->heat + h * B * B;
	double err = 0, ref = 0;
	size_t wm = 0, wn = 0;
	unsigned ovf = 0;
	for (size_t i = 0; i < T; i++)
		byoff[i] = 0;
	for (size_t i = 0; i < B * B; i++)
		heat[i] = -1.0;
	double *heatd = e->heatd + h * B;
	for (size_t i = 0; i < B; i++)
		heatd[i] = -1.0;
	for (size_t m = 0; m < T; m++) {
		const REAL *ra = Sa + m * T, *rb = Sb + m * T;
		double *hrow = heat + (m * B / T) * B;
		size_t n = m + 1;
		double rmax = FN(row_diff)(ra, rb, n, ev, byoff + (T - 1 - m));
		if (ev[m] > heatd[m * B / T])   /* the exact diagonal, apart */
			heatd[m * B / T] = ev[m];
		if (rmax > err) {
			size_t j = 0;
			while (j < n && ev[j] != rmax)
				j++;
			err = rmax;
			wm = m;
			wn = j;
			/* the first non-finite score of the head, row-major */
			if (isinf(err) && j < n)
				ovf = FN(ovf_side)((double)ra[j], (double)rb[j]);
		}
		/* key n falls in bin n B / T: bin b holds keys
		 * ceil(b T / B) .. ceil((b+1) T / B) - 1 */
		for (size_t b = 0; b < B; b++) {
			size_t lo = (b * T + B - 1) / B, hi = ((b + 1) * T + B - 1) / B;
			if (lo >= n)
				break;
			if (hi > n)
				hi = n;
			double bm = hrow[b];
			for (size_t j = lo; j < hi; j++)
				bm = ev[j] > bm ? ev[j] : bm;
			hrow[b] = bm;
		}
		if (with_ref) {
			double rv = FN(row_ref)(ra, n, w->boref + (T - 1 - m));
			if (rv > ref)
				ref = rv;
		}
	}
	for (size_t i = 0, j = T - 1; i < j; i++, j--) {
		double t = byoff[i];
		byoff[i] = byoff[j];
		byoff[j] = t;
	}
	e->s_err[h] = err;
	e->s_m[h] = wm;
	e->s_n[h] = wn;
	e->s_ovf[h] = ovf;
	if (with_ref)
		e->s_ref[h] = ref;
}

/* ======================= phase O: outputs ================================ */


/* max_j |a_j - b_j| over n entries, and u_j += b_j. */
HOT_CLONES
static double FN(diff_max_add)(const REAL *a, const REAL *b, REAL *u, size_t n)
{
	double m = 0;
	size_t j = 0;
#ifdef VEC4
	FN(V4d) vm = {0};
	for (; j + VLANES <= n; j += VLANES) {
		FN(V4d) x, y;
		V4_LOAD(x, a + j);
		V4_LOAD(y, b + j);
		FN(V4d) e = V4_ABS(x - y);
		FN(v4_nan_inf)(&e);
		V4_MAX(vm, e);
		V4_ADD_TO(u + j, b + j);
	}
	for (int i = 0; i < VLANES; i++)
		if (vm[i] > m)
			m = vm[i];
#endif
	for (; j < n; j++) {
		double ev = FN(err_of)((double)a[j], (double)b[j]);
		if (ev > m)
			m = ev;
		u[j] += b[j];
	}
	return m;
}

/* c_j = a_j over n entries, with streaming stores where c is aligned:
 * c is the output cache, read only by later runs, so writing it around
 * the caches saves the read for ownership and keeps the tiles in L2.
 * (The caller fences before the run ends.) */
static void FN(stream_copy)(REAL *c, const REAL *a, size_t n)
{
	size_t j = 0;
#if defined(__SSE2__)
	const size_t step = 16 / sizeof(REAL);
	if ((uintptr_t)c % 16 == 0)
		for (; j + step <= n; j += step)
#if REAL_IS_DOUBLE
			_mm_stream_pd(c + j, _mm_loadu_pd(a + j));
#else
			_mm_stream_ps(c + j, _mm_loadu_ps(a + j));
#endif
#endif
	if (j < n)
		memcpy(c + j, a + j, (n - j) * sizeof(REAL));
}

/* A first run's compare in one pass: max_j |a_j - b_j| (returned) and
 * max_j |a_j| (*ref) over n entries, ub_j += b_j and ua_j += a_j. */
HOT_CLONES
static double FN(diff_ref_add)(const REAL *a, const REAL *b, REAL *ua,
			       REAL *ub, size_t n, double *ref)
{
	double m = 0, r = 0;
	size_t j = 0;
#ifdef VEC4
	FN(V4d) vm = {0}, vr = {0};
	for (; j + VLANES <= n; j += VLANES) {
		FN(V4d) x, y;
		V4_LOAD(x, a + j);
		V4_LOAD(y, b + j);
		FN(V4d) e = V4_ABS(x - y);
		FN(v4_nan_inf)(&e);
		V4_MAX(vm, e);
		FN(V4d) f = V4_ABS(x);
		V4_MAX(vr, f);
		V4_ADD_TO(ub + j, b + j);
		V4_ADD_TO(ua + j, a + j);
	}
	for (int i = 0; i < VLANES; i++) {
		if (vm[i] > m)
			m = vm[i];
		if (vr[i] > r)
			r = vr[i];
	}
#endif
	for (; j < n; j++) {
		double ev = FN(err_of)((double)a[j], (double)b[j]);
		double rv = fabs((double)a[j]);
		if (ev > m)
			m = ev;
		if (rv > r)
			r = rv;
		ub[j] += b[j];
		ua[j] += a[j];
	}
	*ref = r;
	return m;
}

/* The first j with err_of(a_j, b_j) == target. */
static size_t FN(diff_find)(const REAL *a, const REAL *b, size_t n, double target)
{
	for (size_t j = 0; j < n; j++)
		if (FN(err_of)((double)a[j], (double)b[j]) == target)
			return j;
	return 0;
}

/* Compare one head's outputs on rows r0 .. r0+nr-1 of a coordinate block
 * (oa with leading dimension lda, ob with nc), add them into the update
 * blocks ua, ub (T x nc), and keep the worker's worst; on a first run,
 * copy oa to store (nr x nc) when not NULL, while it is in cache. */
static void FN(out_compare)(struct FN(Engine) *e, FN(Worker) *w, size_t h,
			    size_t r0, size_t nr, size_t c0, size_t nc,
			    const REAL *oa, size_t lda, const REAL *ob,
			    REAL *ua, REAL *ub, bool first, REAL *store)
{
	size_t D = e->D;
	double err = w->h_err[h], ref = w->h_ref[h];
	size_t idx = w->h_idx[h];
	unsigned ovf = w->h_ovf[h];
	for (size_t i = 0; i < nr; i++) {
		const REAL *ra = oa + i * lda, *rb = ob + i * nc;
		double row_err, rv = 0;
		if (first) {
			/* one pass over the row; the cache copy while it is in L1 */
			row_err = FN(diff_ref_add)(ra, rb, ua + (r0 + i) * nc,
						   ub + (r0 + i) * nc, nc, &rv);
			if (store)
				FN(stream_copy)(store + i * nc, ra, nc);
			if (rv > ref)
				ref = rv;
		} else {
			row_err = FN(diff_max_add)(ra, rb, ub + (r0 + i) * nc, nc);
		}
		if (row_err > 0 && row_err >= err) {
			size_t j = FN(diff_find)(ra, rb, nc, row_err);
			size_t at = (r0 + i) * D + c0 + j;
			if (row_err > err || at < idx) {
				err = row_err;
				idx = at;
				ovf = isinf(err) ? FN(ovf_side)(ra[j], rb[j]) : 0;
			}
		}
	}
	w->h_err[h] = err;
	w->h_ref[h] = ref;
	w->h_idx[h] = idx;
	w->h_ovf[h] = ovf;
}

/* Coordinates c0 .. c0+nc-1 of every token: each head's outputs of both
 * sides, compared and summed in head order, then the residual. */
static void FN(out_residual)(struct FN(Engine) *e, FN(Worker) *w, size_t c0,
			     size_t nc, const REAL *ua, const REAL *ub, bool first);

static void FN(out_block)(struct FN(Engine) *e, FN(Worker) *w, size_t blk)
{
	size_t T = e->T, D = e->D, H = e->H, d = e->d, nq = e->nq, tb = e->tb;
	size_t c0 = blk * e->nc, nc = D - c0 < e->nc ? D - c0 : e->nc;
	bool first = !e->orig_ready;
	/* arena: the W'_o,h^T block (d x nc), O tiles (tb x nc) of both
	 * sides, the update blocks (T x nc) of both sides, a float rotation
	 * (d x d) */
	REAL *wt = w->arena, *oa_t = wt + d * nc;
	REAL *ob_t = oa_t + tb * nc;
	REAL *ua = ob_t + tb * nc, *ub = ua + T * nc, *rf = ub + T * nc;
	const REAL *woa = e->wa[3], *wob = e->ws[3];
	if (first)
		memset(ua, 0, T * nc * sizeof(REAL));
	memset(ub, 0, T * nc * sizeof(REAL));
	for (size_t h = 0; h < H; h++) {
		size_t oh = FN(src_head)(e, h);
		if (e->plan) {
			/* W'_o,h^T for these coordinates: R_o W_o,oh[c0.., :]^T */
			double t0 = timer_now();
			const REAL *R = FN(rot)(e->plan->ro + oh * d * d, d, rf);
			GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)nc,
			     (int)d, 1, R, (int)d, wob + c0 * nq + oh * d, (int)nq, 0,
			     wt, (int)nc);
			w->flops += 2.0 * (double)d * (double)d * (double)nc;
			w->fold_sec += timer_now() - t0;
		}
		bool fresh = first || h >= e->n_ocache;
		for (size_t r0 = 0; r0 < T; r0 += tb) {
			size_t nr = T - r0 < tb ? T - r0 : tb;
			/* cached O_h: the block of coordinates c0.. is T x nc,
			 * contiguous, at h T D + c0 T */
			REAL *slot = h < e->n_ocache
				? e->ocache + h * T * D + c0 * T + r0 * nc : NULL;
			/* a first run multiplies into the scratch tile, in cache,
			 * and the compare copies it to the slot */
			REAL *oa = fresh || !slot ? oa_t : slot;
			if (fresh) {
				/* O_h = C_h W_o,h^T straight from W_o's rows: no
				 * transposed copy of the block */
				GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr,
				     (int)nc, (int)d, 1, e->ca + r0 * nq + h * d, (int)nq,
				     woa + c0 * nq + h * d, (int)nq, 0, oa, (int)nc);
				w->flops += 2.0 * (double)nr * (double)nc * (double)d;
			}
			if (e->plan)
				GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr,
				     (int)nc, (int)d, 1, e->cb + r0 * nq + h * d, (int)nq,
				     wt, (int)nc, 0, ob_t, (int)nc);
			else
				GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr,
				     (int)nc, (int)d, 1, e->cb + r0 * nq + h * d, (int)nq,
				     wob + c0 * nq + h * d, (int)nq, 0, ob_t, (int)nc);
			w->flops += 2.0 * (double)nr * (double)nc * (double)d;
			FN(out_compare)(e, w, h, r0, nr, c0, nc, oa, nc, ob_t, ua, ub,
					first, fresh ? slot : NULL);
		}
	}
	FN(out_residual)(e, w, c0, nc, ua, ub, first);
}

/* The residual y = x + U + b_o of both sides on coordinates c0 .. c0+nc-1
 * (update blocks ua, ub: T x nc; on a first run ua becomes the cached
 * U); the reference is U alone. */
static void FN(out_residual)(struct FN(Engine) *e, FN(Worker) *w, size_t c0,
			     size_t nc, const REAL *ua, const REAL *ub, bool first)
{
	size_t T = e->T, D = e->D;
	const REAL *boa = e->a->bo ? e->sm_a.bo : NULL;
	const REAL *bob = e->b->bo ? e->sm_b.bo : NULL;
	for (size_t t = 0; t < T; t++) {
		REAL *uc = e->ua + t * D + c0;
		const REAL *uat = ua + t * nc;
		if (first)
			memcpy(uc, uat, nc * sizeof(REAL));
		const REAL *xr = e->x + t * D + c0, *ubt = ub + t * nc;
		for (size_t j = 0; j < nc; j++) {
			size_t c = c0 + j;
			REAL ya = xr[j] + uc[j] + (boa ? boa[c] : 0);
			REAL yb = xr[j] + ubt[j] + (bob ? bob[c] : 0);
			double ev = FN(err_of)((double)ya, (double)yb);
			double rv = fabs((double)uc[j]);
			size_t at = t * D + c;
			if (rv > w->r_ref)
				w->r_ref = rv;
			if (ev > w->r_err || (ev == w->r_err && ev > 0 && at < w->r_idx)) {
				w->r_err = ev;
				w->r_idx = at;
				w->r_ovf = isinf(ev) ? FN(ovf_side)(ya, yb) : 0;
			}
		}
	}
#if defined(__SSE2__)
	if (first)
		_mm_sfence();  /* the cache's streaming stores are done */
#endif
}

#ifdef OUTK
/* out_block by the fused kernel: per head, per column sub-block, both
 * sides' W_o panels (the folded side's folded into panel form straight
 * from the source head's: R_o W_o,src^T), then every token's tiles
 * compared and summed in registers. */
static void FN(out_block_k)(struct FN(Engine) *e, FN(Worker) *w, size_t blk)
{
	size_t T = e->T, D = e->D, H = e->H, d = e->d, nq = e->nq;
	size_t c0 = blk * e->nc, nc = D - c0 < e->nc ? D - c0 : e->nc;
	size_t cp = e->cp_rows * d;
	bool first = !e->orig_ready;
	/* arena: panels of a sub-block (d x OUTK_SUB each) of the original,
	 * the folded side and the folded side's source, the update blocks
	 * (T x nc), a float rotation (d x d) and R packed (rows(d) x d) */
	REAL *pa = w->arena, *pb = pa + d * OUTK_SUB, *ps = pb + d * OUTK_SUB;
	REAL *ua = ps + d * OUTK_SUB, *ub = ua + T * nc, *rf = ub + T * nc;
	REAL *rp = rf + d * d;
	const REAL *woa = e->wa[3], *wob = e->ws[3];
	if (first)
		memset(ua, 0, T * nc * sizeof(REAL));
	memset(ub, 0, T * nc * sizeof(REAL));
	for (size_t h = 0; h < H; h++) {
		size_t oh = FN(src_head)(e, h);
		bool fresh = first || h >= e->n_ocache;
		if (e->plan) {
			const REAL *R = FN(rot)(e->plan->ro + oh * d * d, d, rf);
			FN(outk_pack_ctx)(rp, R, d, d, d);
		}
		REAL *slot = h < e->n_ocache ? e->ocache + h * T * D + c0 * T : NULL;
		FN(OutkHead) s = {
			.T = T, .D = D, .nc = nc, .c0 = c0, .first = first,
			.ua = ua, .ub = ub, .store = fresh ? slot : NULL,
			.cached = fresh ? NULL : slot,
			.err = w->h_err[h], .ref = w->h_ref[h], .idx = w->h_idx[h],
			.ovf = w->h_ovf[h],
		};
		for (size_t j0 = 0; j0 < nc; j0 += OUTK_SUB) {
			size_t n = nc - j0 < OUTK_SUB ? nc - j0 : OUTK_SUB;
			if (fresh)
				FN(outk_pack_rows)(pa, woa + (c0 + j0) * nq + h * d, nq,
						   n, d);
			/* the folded side's source panels: the original's when
			 * they are the same weights */
			const REAL *src = pa;
			if (!fresh || wob != woa || oh != h) {
				FN(outk_pack_rows)(ps, wob + (c0 + j0) * nq + oh * d, nq,
						   n, d);
				src = ps;
			}
			if (e->plan) {
				double t0 = timer_now();
				FN(outk_fold_panels)(pb, rp, src, n, d);
				w->flops += 2.0 * (double)d * (double)d * (double)n;
				w->fold_sec += timer_now() - t0;
			}
			FN(outk_head_cols)(&s, e->cpa + h * cp, e->cpb + h * cp, pa,
					   e->plan ? pb : src, j0, n, d);
		}
		w->flops += 2.0 * (double)T * (double)nc * (double)d * (fresh ? 2 : 1);
		w->h_err[h] = s.err;
		w->h_ref[h] = s.ref;
		w->h_idx[h] = s.idx;
		w->h_ovf[h] = s.ovf;
	}
	FN(out_residual)(e, w, c0, nc, ua, ub, first);
}
#endif

/* ======================= the run ========================================= */

typedef enum {
	FN(PH_CONV) = ATTN_PHASE_FOLD,  /* float: counted with the fold */
	FN(PH_PROJ) = ATTN_PHASE_PROJ,
	FN(PH_POST) = ATTN_PHASE_POST,
	FN(PH_HEADS) = ATTN_PHASE_HEADS,
	FN(PH_OUT) = ATTN_PHASE_OUT
} FN(Phase);

typedef struct {
	struct FN(Engine) *e;
	FN(Phase) phase;
} FN(Job);

static void FN(post_rows)(struct FN(Engine) *e, size_t r0, size_t r1)
{
	const Layer *a = e->a, *b = e->b;
	for (int side = 0; side < 2; side++) {
		if (side == 0 && e->orig_ready)
			continue;
		const Layer *l = side ? b : a;
		const FN(Small) *sm = side ? &e->sm_b : &e->sm_a;
		REAL *q = side ? e->qb : e->qa, *k = side ? e->kb : e->ka;
		REAL *v = side ? e->vb : e->va;
		const bool *qf = e->q_chg, *kf = e->k_chg, *vf = e->v_chg;
		FN(post_part)(e, l, q, e->H, qf, l->bq ? sm->bq : NULL, sm->qn,
			      l->q_norm, true, r0, r1);
		FN(post_part)(e, l, k, e->G, kf, l->bk ? sm->bk : NULL, sm->kn,
			      l->k_norm, true, r0, r1);
		FN(post_part)(e, l, v, e->G, vf, l->bv ? sm->bv : NULL, NULL,
			      NULL, false, r0, r1);
	}
}

static void FN(head_task)(struct FN(Engine) *e, FN(Worker) *w, size_t h)
{
	REAL scale = (REAL)layer_score_scale(e->a);
	bool first = !e->orig_ready;
	bool cmp = e->s_chg[h];
	size_t TT = e->T * e->T;
	/* T x T each; the folded side's in its cache slot when there is one */
	REAL *sa = w->arena, *sb = e->pcache ? e->pcache + h * TT : sa + TT;
	/* the cached P_h is current when the scores did not change */
	bool reuse = e->pcache && !first && !cmp;
	if (first || cmp)
		FN(scores)(e, w, e->qa, e->ka, h, scale, sa);
	if (!reuse)
		FN(scores)(e, w, e->qb, e->kb, h, (REAL)layer_score_scale(e->b), sb);
	if (cmp)
		FN(score_compare)(e, w, h, sa, sb, first);
#ifdef OUTK
	if (e->outk) {
		/* C_h into scratch after the scores, then packed for the
		 * output kernel: no T x nq context buffers */
		size_t d = e->d, cp = e->cp_rows * d;
		REAL *ch = w->arena + 2 * TT;
		if (first) {
			FN(softmax_context)(e, w, sa, e->va, h, ch, d, true);
			FN(outk_pack_ctx)(e->cpa + h * cp, ch, d, e->T, d);
		}
		FN(softmax_context)(e, w, sb, e->vb, h, ch, d, !reuse);
		FN(outk_pack_ctx)(e->cpb + h * cp, ch, d, e->T, d);
		return;
	}
#endif
	if (first)
		FN(softmax_context)(e, w, sa, e->va, h, e->ca + h * e->d, e->nq,
				    true);
	FN(softmax_context)(e, w, sb, e->vb, h, e->cb + h * e->d, e->nq, !reuse);
}

static void FN(worker_main)(void *ctx, size_t wi)
{
	FN(Job) *j = ctx;
	struct FN(Engine) *e = j->e;
	FN(Worker) *w = &e->w[wi];
	for (size_t t; (t = task_queue_next(&e->queue)) != (size_t)-1;) {
		switch (j->phase) {
		case FN(PH_CONV): {
			const FN(ConvTask) *c = &e->ctask[t];
			FN(convert)(c->dst, c->src, c->n);
			break;
		}
		case FN(PH_PROJ):
			FN(proj_task)(e, w, &e->ptask[t]);
			break;
		case FN(PH_POST): {
			size_t r0 = t * POST_ROWS;
			size_t r1 = r0 + POST_ROWS < e->T ? r0 + POST_ROWS : e->T;
			FN(post_rows)(e, r0, r1);
			break;
		}
		case FN(PH_HEADS):
			FN(head_task)(e, w, e->heads[t]);
			break;
		case FN(PH_OUT):
#ifdef OUTK
			if (e->outk) {
				FN(out_block_k)(e, w, t);
				break;
			}
#endif
			FN(out_block)(e, w, t);
			break;
		}
	}
}

static RfStatus FN(phase)(struct FN(Engine) *e, FN(Phase) ph, size_t ntasks)
{
	if (ntasks == 0)
		return RF_OK;
	FN(Job) j = {e, ph};
	task_queue_init(&e->queue, ntasks);
	size_t nw = e->nworkers < ntasks ? e->nworkers : ntasks;
	for (size_t i = 0; i < e->nworkers; i++)
		e->w[i].fold_sec = 0;
	double t0 = timer_now();
	RfStatus st = parallel_run(nw, FN(worker_main), &j);
	double sec = timer_now() - t0, fold = 0;
	/* the folding inside a phase is reported as the fold's, by the
	 * workers' average share */
	for (size_t i = 0; i < e->nworkers; i++)
		fold += e->w[i].fold_sec;
	fold /= (double)nw;
	if (fold > sec)
		fold = sec;
	e->sec[ph] += sec - fold;
	e->sec[ATTN_PHASE_FOLD] += fold;
	return st;
}

/* Decide what this run recomputes from what changed in the folded layer. */
static void FN(plan_run)(struct FN(Engine) *e, const FoldChanges *c)
{
	size_t H = e->H, G = e->G, hpg = e->hpg;
	bool all = !e->results_valid || !e->orig_ready;
	bool anyq = false, anyk = false;
	for (size_t h = 0; h < H; h++) {
		e->q_chg[h] = all || c->q[h];
		e->o_chg[h] = all || c->o[h];
		anyq |= e->q_chg[h];
	}
	for (size_t g = 0; g < G; g++) {
		e->k_chg[g] = all || c->k[g];
		e->v_chg[g] = all || c->v[g];
		anyk |= e->k_chg[g];
	}
	/* A norm over the whole row mixes every head. */
	if (e->b->q_norm && !e->b->qk_norm_per_head && anyq)
		for (size_t h = 0; h < H; h++)
			e->q_chg[h] = true;
	if (e->b->k_norm && !e->b->qk_norm_per_head && anyk)
		for (size_t g = 0; g < G; g++)
			e->k_chg[g] = true;
	for (size_t h = 0; h < H; h++) {
		size_t g = h / hpg;
		e->s_chg[h] = e->q_chg[h] || e->k_chg[g];
		e->c_chg[h] = e->s_chg[h] || e->v_chg[g];
	}
}

static RfStatus FN(engine_run)(struct FN(Engine) *e, const Layer *b,
			       const FoldPlan *plan, const FoldChanges *c,
			       InvReport *rep)
{
	size_t T = e->T, D = e->D, H = e->H, G = e->G, B = e->B;
	RfStatus st = RF_OK;
	e->b = b;
	e->plan = plan;
	e->flops = 0;
	for (int i = 0; i < ATTN_PHASE_COUNT; i++)
		e->sec[i] = 0;
	for (size_t i = 0; i < e->nworkers; i++)
		e->w[i].flops = 0;
	FN(plan_run)(e, c);
	bool first = !e->orig_ready;
	int saved = parallel_blas_single();

	/* ---- C: the weights in the compute precision ---------------------- */
	const double *wsrc[4] = {b->wq, b->wk, b->wv, b->wo};
	e->n_ctask = 0;
#if REAL_IS_DOUBLE
	for (int i = 0; i < 4; i++)
		e->ws[i] = wsrc[i];
#else
	if (first) {
		const double *wa64[4] = {e->a->wq, e->a->wk, e->a->wv, e->a->wo};
		for (int i = 0; i < 4; i++)
			FN(add_conv)(e, wa64[i], e->wa_own[i], e->wsize[i]);
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
			FN(add_conv)(e, wsrc[i], e->ws_own[i], e->wsize[i]);
		e->ws[i] = e->ws_own[i];
	}
#endif
	if (st == RF_OK)
		st = FN(phase)(e, FN(PH_CONV), e->n_ctask);

	/* ---- P: projections -------------------------------------------- */
	FN(small_fold)(e);
	e->n_ptask = 0;
	if (first) {
		FN(small_fill)(&e->sm_a, e->a, e->nq, e->nk, D, e->d);
		bool *t = e->s_chg;  /* scratch: all true on a first run */
		size_t wide = PROJ_CHUNK / e->d;
		FN(plan_part)(e, 0, 0, t, H, wide);
		FN(plan_part)(e, 0, 1, t, G, wide);
		FN(plan_part)(e, 0, 2, t, G, wide);
	}
	size_t chunk = plan ? e->fold_heads : PROJ_CHUNK / e->d;
	FN(plan_part)(e, 1, 0, e->q_chg, H, chunk);
	FN(plan_part)(e, 1, 1, e->k_chg, G, chunk);
	FN(plan_part)(e, 1, 2, e->v_chg, G, chunk);
	if (st == RF_OK)
		st = FN(phase)(e, FN(PH_PROJ), e->n_ptask);
	bool any_post = first;
	for (size_t h = 0; h < H; h++)
		any_post |= e->q_chg[h];
	for (size_t g = 0; g < G; g++)
		any_post |= e->k_chg[g] || e->v_chg[g];
	if (st == RF_OK && any_post)
		st = FN(phase)(e, FN(PH_POST), (T + POST_ROWS - 1) / POST_ROWS);

	/* ---- S: heads ---------------------------------------------------- */
	e->n_heads_run = 0;
	bool any_ctx = false;
	for (size_t h = 0; h < H; h++)
		if (e->c_chg[h]) {
			e->heads[e->n_heads_run++] = h;
			any_ctx = true;
		}
	if (first)
		for (size_t i = 0; i < e->nworkers; i++)
			memset(e->w[i].boref, 0, T * sizeof(double));
	if (st == RF_OK)
		st = FN(phase)(e, FN(PH_HEADS), e->n_heads_run);
	if (st == RF_OK && first) {
		/* the original's score magnitude by offset, over every head */
		for (size_t i = 0; i < T; i++) {
			double m = 0;
			for (size_t k = 0; k < e->nworkers; k++)
				if (e->w[k].boref[T - 1 - i] > m)
					m = e->w[k].boref[T - 1 - i];
			e->byoff_ref[i] = m;
		}
	}

	/* ---- O: output tiles -------------------------------------------- */
	bool any_o = any_ctx || first;
	for (size_t h = 0; h < H; h++)
		any_o |= e->o_chg[h];
	if (st == RF_OK && any_o) {
		for (size_t i = 0; i < e->nworkers; i++) {
			FN(Worker) *w = &e->w[i];
			for (size_t h = 0; h < H; h++) {
				w->h_err[h] = 0;
				w->h_idx[h] = 0;
				w->h_ref[h] = 0;
				w->h_ovf[h] = 0;
			}
			w->r_err = w->r_ref = 0;
			w->r_idx = 0;
			w->r_ovf = 0;
		}
		e->n_cblocks = (D + e->nc - 1) / e->nc;
		st = FN(phase)(e, FN(PH_OUT), e->n_cblocks);
		if (st == RF_OK) {
			/* merge the workers' partials: max, then first location */
			for (size_t h = 0; h < H; h++) {
				double err = 0, ref = 0;
				size_t idx = 0;
				unsigned ovf = 0;
				for (size_t i = 0; i < e->nworkers; i++) {
					FN(Worker) *w = &e->w[i];
					if (w->h_err[h] > err ||
					    (w->h_err[h] == err && err > 0 && w->h_idx[h] < idx)) {
						err = w->h_err[h];
						idx = w->h_idx[h];
						ovf = w->h_ovf[h];
					}
					if (w->h_ref[h] > ref)
						ref = w->h_ref[h];
				}
				e->h_err[h] = err;
				e->h_idx[h] = idx;
				e->h_ovf[h] = ovf;
				if (first)
					e->h_ref[h] = ref;
			}
			double err = 0, ref = 0;
			size_t idx = 0;
			unsigned ovf = 0;
			for (size_t i = 0; i < e->nworkers; i++) {
				FN(Worker) *w = &e->w[i];
				if (w->r_err > err || (w->r_err == err && err > 0 && w->r_idx < idx)) {
					err = w->r_err;
					idx = w->r_idx;
					ovf = w->r_ovf;
				}
				if (w->r_ref > ref)
					ref = w->r_ref;
			}
			e->r_err = err;
			e->r_idx = idx;
			e->r_ref = ref;
			e->r_ovf = ovf;
		}
	}
	parallel_blas_restore(saved);
	for (size_t i = 0; i < e->nworkers; i++)
		e->flops += e->w[i].flops;
	if (st != RF_OK) {
		e->orig_ready = e->results_valid = false;
		return st;
	}
	e->orig_ready = true;
	e->results_valid = true;

	/* ---- the report, from the per-head results ----------------------- */
	LevelResult *ls = &rep->level[LEVEL_SCORE], *lh = &rep->level[LEVEL_HEAD];
	LevelResult *lr = &rep->level[LEVEL_RESIDUAL];
	ls->max_abs_err = e->s_err[0];
	ls->worst_head = 0;
	ls->worst_m = e->s_m[0];
	ls->worst_n = e->s_n[0];
	ls->ref_max = 0;
	lh->max_abs_err = 0;
	lh->ref_max = 0;
	for (size_t i = 0; i < T; i++) {
		rep->by_offset[i] = 0;
		rep->by_offset_ref[i] = e->byoff_ref[i];
	}
	for (size_t h = 0; h < H; h++) {
		if (e->s_err[h] > ls->max_abs_err) {
			ls->max_abs_err = e->s_err[h];
			ls->worst_head = h;
			ls->worst_m = e->s_m[h];
			ls->worst_n = e->s_n[h];
		}
		if (e->s_ref[h] > ls->ref_max)
			ls->ref_max = e->s_ref[h];
		const double *bo = e->byoff + h * T;
		for (size_t i = 0; i < T; i++)
			if (bo[i] > rep->by_offset[i])
				rep->by_offset[i] = bo[i];
		rep->score_rel_err[h] = e->s_ref[h] > 0 && !isinf(e->s_err[h])
			? e->s_err[h] / e->s_ref[h] : e->s_err[h];
		if (e->h_err[h] > lh->max_abs_err) {
			lh->max_abs_err = e->h_err[h];
			lh->worst_head = h;
			lh->worst_m = e->h_idx[h] / D;
			lh->worst_coord = e->h_idx[h] % D;
		}
		if (e->h_ref[h] > lh->ref_max)
			lh->ref_max = e->h_ref[h];
		rep->head_rel_err[h] = e->h_ref[h] > 0 && !isinf(e->h_err[h])
			? e->h_err[h] / e->h_ref[h] : e->h_err[h];
	}
	if (rep->heat_bins == B)
		memcpy(rep->heat, e->heat, H * B * B * sizeof(double));
	if (rep->heat_bins == B && rep->heat_diag)
		memcpy(rep->heat_diag, e->heatd, H * B * sizeof(double));
	lr->max_abs_err = e->r_err;
	lr->ref_max = e->r_ref;
	lr->worst_m = e->r_idx / D;
	lr->worst_coord = e->r_idx % D;
	/* an infinite error is an overflow; the worst location is its first */
	ls->overflow = isinf(ls->max_abs_err) ? e->s_ovf[ls->worst_head] : 0;
	lh->overflow = isinf(lh->max_abs_err) ? e->h_ovf[lh->worst_head] : 0;
	lr->overflow = isinf(lr->max_abs_err) ? e->r_ovf : 0;
	return RF_OK;
}
