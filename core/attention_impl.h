/* The evaluation engine, written once for both precisions. Included by
 * attention.c with REAL, REAL_IS_DOUBLE, GEMM and FN(name) defined.
 *
 * One run compares the original layer a with a folded layer b on x:
 *
 *   P  projections     q, k, v of both sides: x W^T as a few wide GEMMs
 *                      (column chunks shared out to the workers), then
 *                      bias, QK-norm and RoPE from the tables, row blocks.
 *   S  heads           per query head, on one worker: scores of both sides
 *                      (causal row blocks only), the score comparison, the
 *                      fused mask + softmax, and the contexts C_h = P v_g.
 *   O  output tiles    per (token block x output block) tile, on one
 *                      worker: every head's O_h = C_h W_o,h^T of both sides
 *                      for the tile, compared while in cache and summed
 *                      into the attention update U = sum_h O_h, then the
 *                      residual y = x + U + b_o compared. U is not a second
 *                      output projection: it is the sum the head level
 *                      computes anyway.
 *
 * What does not change across runs is kept: the original side's
 * projections, contexts, U and (as memory allows) every O_h; and the
 * folded side's projections, contexts and per-head results of the heads a
 * toggle did not touch. */

/* Per-worker scratch. */
typedef struct {
	REAL *sa, *sb;          /* T x T scores of one head, both sides */
	REAL *oa, *ob;          /* TB x DC output tiles */
	REAL *ua, *ub;          /* TB x DC attention update tiles */
	REAL *wconv;            /* CONV_ROWS x D converted weights (float) */
	double *boref;          /* T: the original's max |score| by offset */
	double *h_err, *h_ref;  /* H: head-level partials of this worker */
	size_t *h_idx;          /* H: m * D + c of the worker's worst */
	double r_err, r_ref;    /* residual partials */
	size_t r_idx;
	double flops;
} FN(Worker);

/* Small tensors of one side in the compute precision. */
typedef struct {
	REAL *bq, *bk, *bv, *bo, *qn, *kn;
} FN(Small);

struct FN(Engine) {
	const Layer *a;
	const RopeTable *rope;
	size_t T, D, H, G, d, hpg, nq, nk, B, nworkers;
	size_t tb, dc;              /* output tile */
	const REAL *x;              /* T x D input (float: own copy) */
	REAL *x_own;
	const REAL *wo_a, *wo_b;    /* D x (H*d) in the compute precision */
	REAL *wo_a_own, *wo_b_own;  /* float copies */
	FN(Small) sm_a, sm_b;
	REAL *qa, *ka, *va;         /* T x nq, T x nk, T x nk (after RoPE) */
	REAL *qb, *kb, *vb;
	REAL *ca, *cb;              /* T x nq contexts */
	REAL *ua;                   /* T x D: U of the original */
	REAL *ocache;               /* n_ocache x T x D: O_h of the original */
	size_t n_ocache;
	FN(Worker) *w;
	/* per-head results, kept for heads a toggle does not touch */
	double *s_err, *s_ref;      /* H */
	size_t *s_m, *s_n;          /* H */
	double *byoff;              /* H x T */
	double *byoff_ref;          /* T: max |score| of the original */
	double *heat;               /* H x B x B */
	double *h_err, *h_ref;      /* H */
	size_t *h_idx;              /* H */
	double r_err, r_ref;
	size_t r_idx;
	bool orig_ready;            /* the original side's caches are valid */
	bool results_valid;         /* the per-head results are valid */
	/* this run's plan */
	const Layer *b;
	bool *q_chg, *k_chg, *v_chg, *o_chg;   /* projections (H, G, G), W_o (H) */
	bool *s_chg, *c_chg;                   /* scores, contexts (H) */
	TaskQueue queue;
	struct FN(ProjTask) *ptask;
	size_t n_ptask, max_ptask;
	size_t n_tiles_r, n_tiles_c;
	size_t *heads;              /* H: the heads of phase S */
	size_t n_heads_run;
	double flops;
	double sec[ATTN_PHASE_COUNT];  /* wall-clock seconds of the last run */
	/* for the f32 weight conversion of phase P */
	const double *conv_src[2][3];
};

typedef struct FN(ProjTask) {
	int side;                   /* 0: original, 1: folded */
	int part;                   /* 0 q, 1 k, 2 v, 3: convert W_o block */
	size_t col0, ncols;         /* output columns (part 3: head index) */
} FN(ProjTask);

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

static void FN(engine_free)(struct FN(Engine) *e)
{
	if (!e)
		return;
	size_t T = e->T, D = e->D, H = e->H, TT = T * T;
	ws_free(e->x_own, T * D * sizeof(REAL));
	ws_free(e->wo_a_own, D * e->nq * sizeof(REAL));
	ws_free(e->wo_b_own, D * e->nq * sizeof(REAL));
	FN(Small) *sm[2] = {&e->sm_a, &e->sm_b};
	for (int s = 0; s < 2; s++) {
		ws_free(sm[s]->bq, e->nq * sizeof(REAL));
		ws_free(sm[s]->bk, e->nk * sizeof(REAL));
		ws_free(sm[s]->bv, e->nk * sizeof(REAL));
		ws_free(sm[s]->bo, D * sizeof(REAL));
		ws_free(sm[s]->qn, e->nq * sizeof(REAL));
		ws_free(sm[s]->kn, e->nk * sizeof(REAL));
	}
	ws_free(e->qa, FN(proj_bytes)(e, e->nq));
	ws_free(e->ka, FN(proj_bytes)(e, e->nk));
	ws_free(e->va, FN(proj_bytes)(e, e->nk));
	ws_free(e->qb, FN(proj_bytes)(e, e->nq));
	ws_free(e->kb, FN(proj_bytes)(e, e->nk));
	ws_free(e->vb, FN(proj_bytes)(e, e->nk));
	ws_free(e->ca, FN(proj_bytes)(e, e->nq));
	ws_free(e->cb, FN(proj_bytes)(e, e->nq));
	ws_free(e->ua, T * D * sizeof(REAL));
	ws_free(e->ocache, e->n_ocache * T * D * sizeof(REAL));
	if (e->w) {
		size_t tile = e->tb * e->dc;
		for (size_t i = 0; i < e->nworkers; i++) {
			FN(Worker) *w = &e->w[i];
			ws_free(w->sa, TT * sizeof(REAL));
			ws_free(w->sb, TT * sizeof(REAL));
			ws_free(w->oa, tile * sizeof(REAL));
			ws_free(w->ob, tile * sizeof(REAL));
			ws_free(w->ua, tile * sizeof(REAL));
			ws_free(w->ub, tile * sizeof(REAL));
			ws_free(w->wconv, (REAL_IS_DOUBLE ? 1 : CONV_ROWS * D) * sizeof(REAL));
			free(w->h_err);
			free(w->h_ref);
			free(w->h_idx);
			free(w->boref);
		}
		free(e->w);
	}
	free(e->s_err); free(e->s_ref); free(e->s_m); free(e->s_n);
	ws_free(e->byoff, H * T * sizeof(double));
	free(e->byoff_ref);
	ws_free(e->heat, H * e->B * e->B * sizeof(double));
	free(e->h_err); free(e->h_ref); free(e->h_idx);
	free(e->q_chg); free(e->k_chg); free(e->v_chg); free(e->o_chg);
	free(e->s_chg); free(e->c_chg);
	free(e->ptask);
	free(e->heads);
	free(e);
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
	e->dc = D < OUT_DC ? D : OUT_DC;
	size_t nq = e->nq, nk = e->nk, TT = T * T;
#if REAL_IS_DOUBLE
	e->x = x64;
	e->wo_a = a->wo;
#else
	e->x_own = FN(zalloc)(T * D, sizeof(REAL), &ok);
	e->wo_a_own = FN(zalloc)(D * nq, sizeof(REAL), &ok);
	e->wo_b_own = FN(zalloc)(D * nq, sizeof(REAL), &ok);
	if (ok)
		for (size_t i = 0; i < T * D; i++)
			e->x_own[i] = (REAL)x64[i];
	e->x = e->x_own;
	e->wo_a = e->wo_a_own;
	e->wo_b = e->wo_b_own;
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
	e->qa = FN(zalloc)(T, nq * sizeof(REAL), &ok);
	e->ka = FN(zalloc)(T, nk * sizeof(REAL), &ok);
	e->va = FN(zalloc)(T, nk * sizeof(REAL), &ok);
	e->qb = FN(zalloc)(T, nq * sizeof(REAL), &ok);
	e->kb = FN(zalloc)(T, nk * sizeof(REAL), &ok);
	e->vb = FN(zalloc)(T, nk * sizeof(REAL), &ok);
	e->ca = FN(zalloc)(T, nq * sizeof(REAL), &ok);
	e->cb = FN(zalloc)(T, nq * sizeof(REAL), &ok);
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
	e->w = calloc(e->nworkers, sizeof(FN(Worker)));
	if (!e->w)
		ok = false;
	size_t tile = e->tb * e->dc;
	for (size_t i = 0; ok && i < e->nworkers; i++) {
		FN(Worker) *w = &e->w[i];
		w->sa = FN(zalloc)(TT, sizeof(REAL), &ok);
		w->sb = FN(zalloc)(TT, sizeof(REAL), &ok);
		w->oa = FN(zalloc)(tile, sizeof(REAL), &ok);
		w->ob = FN(zalloc)(tile, sizeof(REAL), &ok);
		w->ua = FN(zalloc)(tile, sizeof(REAL), &ok);
		w->ub = FN(zalloc)(tile, sizeof(REAL), &ok);
		w->wconv = FN(zalloc)(REAL_IS_DOUBLE ? 1 : CONV_ROWS * D, sizeof(REAL), &ok);
		w->h_err = calloc(H, sizeof(double));
		w->h_ref = calloc(H, sizeof(double));
		w->h_idx = calloc(H, sizeof(size_t));
		w->boref = calloc(T, sizeof(double));
		if (!w->h_err || !w->h_ref || !w->h_idx || !w->boref)
			ok = false;
	}
	e->s_err = calloc(H, sizeof(double));
	e->s_ref = calloc(H, sizeof(double));
	e->s_m = calloc(H, sizeof(size_t));
	e->s_n = calloc(H, sizeof(size_t));
	e->byoff = FN(zalloc)(H * T, sizeof(double), &ok);
	e->byoff_ref = calloc(T, sizeof(double));
	e->heat = FN(zalloc)(H * e->B * e->B, sizeof(double), &ok);
	e->h_err = calloc(H, sizeof(double));
	e->h_ref = calloc(H, sizeof(double));
	e->h_idx = calloc(H, sizeof(size_t));
	e->q_chg = calloc(H, sizeof(bool));
	e->o_chg = calloc(H, sizeof(bool));
	e->s_chg = calloc(H, sizeof(bool));
	e->c_chg = calloc(H, sizeof(bool));
	e->k_chg = calloc(G, sizeof(bool));
	e->v_chg = calloc(G, sizeof(bool));
	e->heads = calloc(H, sizeof(size_t));
	/* projection tasks: chunks of both sides, plus the W_o blocks */
	e->max_ptask = 2 * (H + 2 * G) + 2 * H + 8;  /* at most one per head */
	e->ptask = calloc(e->max_ptask, sizeof(FN(ProjTask)));
	if (!e->s_err || !e->s_ref || !e->s_m || !e->s_n || !e->byoff_ref ||
	    !e->h_err || !e->h_ref || !e->h_idx || !e->q_chg || !e->o_chg ||
	    !e->s_chg || !e->c_chg || !e->k_chg || !e->v_chg || !e->heads ||
	    !e->ptask)
		ok = false;
	if (!ok) {
		FN(engine_free)(e);
		return RF_ERR_NOMEM;
	}
	*out = e;
	return RF_OK;
}

/* ======================= phase P: projections ============================ */

static void FN(convert)(REAL *dst, const double *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (REAL)src[i];
}

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

static void FN(add_ptask)(struct FN(Engine) *e, int side, int part, size_t c0,
			  size_t n)
{
	if (e->n_ptask < e->max_ptask)
		e->ptask[e->n_ptask++] = (FN(ProjTask)){side, part, c0, n};
}

/* Chunks of the flagged heads (width d each) of one projection. */
static void FN(plan_part)(struct FN(Engine) *e, int side, int part,
			  const bool *flag, size_t nheads)
{
	size_t d = e->d, chunk = PROJ_CHUNK / d;
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
		FN(add_ptask)(e, side, part, h * d, (end - h) * d);
		h = end;
	}
}

static void FN(proj_task)(struct FN(Engine) *e, FN(Worker) *w,
			  const FN(ProjTask) *t)
{
	size_t T = e->T, D = e->D, d = e->d, H = e->H;
	const Layer *l = t->side ? e->b : e->a;
	if (t->part == 3) {
		/* float: convert W_o's column block h of the folded layer */
		REAL *dst = (REAL *)(t->side ? e->wo_b : e->wo_a);
		size_t h = t->col0, ld = H * d;
		for (size_t r = 0; r < D; r++)
			FN(convert)(dst + r * ld + h * d, l->wo + r * ld + h * d, d);
		return;
	}
	const double *W = t->part == 0 ? l->wq : t->part == 1 ? l->wk : l->wv;
	REAL *out = t->side ? (t->part == 0 ? e->qb : t->part == 1 ? e->kb : e->vb)
			    : (t->part == 0 ? e->qa : t->part == 1 ? e->ka : e->va);
	size_t ld = t->part == 0 ? e->nq : e->nk;
#if REAL_IS_DOUBLE
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)t->ncols,
	     (int)D, 1, e->x, (int)D, W + t->col0 * D, (int)D, 0,
	     out + t->col0, (int)ld);
#else
	for (size_t c = 0; c < t->ncols; c += CONV_ROWS) {
		size_t n = t->ncols - c < CONV_ROWS ? t->ncols - c : CONV_ROWS;
		FN(convert)(w->wconv, W + (t->col0 + c) * D, n * D);
		GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)n,
		     (int)D, 1, e->x, (int)D, w->wconv, (int)D, 0,
		     out + t->col0 + c, (int)ld);
	}
#endif
	w->flops += 2.0 * (double)T * (double)t->ncols * (double)D;
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

/* Causal softmax of S in place (row m over n <= m, max subtracted, zeros
 * to the end of its row block), then C_h = P v_g, causal row blocks. */
static void FN(softmax_context)(const struct FN(Engine) *e, FN(Worker) *w,
				REAL *S, const REAL *v, size_t h, REAL *C)
{
	size_t T = e->T, d = e->d, g = h / e->hpg;
	for (size_t r0 = 0; r0 < T; r0 += SCORE_BLOCK) {
		size_t r1 = r0 + SCORE_BLOCK < T ? r0 + SCORE_BLOCK : T;
		for (size_t m = r0; m < r1; m++) {
			REAL *row = S + m * T;
			REAL mx = row[0];
			for (size_t n = 1; n <= m; n++)
				if (row[n] > mx)
					mx = row[n];
			REAL sum = 0;
			for (size_t n = 0; n <= m; n++) {
				row[n] = (REAL)exp((double)(row[n] - mx));
				sum += row[n];
			}
			REAL inv = 1 / sum;
			for (size_t n = 0; n <= m; n++)
				row[n] *= inv;
			for (size_t n = m + 1; n < r1; n++)
				row[n] = 0;
		}
		GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0),
		     (int)d, (int)r1, 1, S + r0 * T, (int)T, v + g * d, (int)e->nk,
		     0, C + r0 * e->nq + h * d, (int)e->nq);
		w->flops += 2.0 * (double)(r1 - r0) * (double)r1 * (double)d;
	}
}

/* Compare head h's scores: per-head max error and its first location, the
 * error by offset, the heat bins; and, the first time, the original's
 * magnitudes. */
static void FN(score_compare)(struct FN(Engine) *e, size_t h, const REAL *Sa,
			      const REAL *Sb, bool with_ref)
{
	size_t T = e->T, B = e->B;
	double *byoff = e->byoff + h * T;
	double *heat = e->heat + h * B * B;
	double err = 0, ref = 0;
	size_t wm = 0, wn = 0;
	for (size_t i = 0; i < T; i++)
		byoff[i] = 0;
	for (size_t i = 0; i < B * B; i++)
		heat[i] = -1.0;
	for (size_t m = 0; m < T; m++) {
		const REAL *ra = Sa + m * T, *rb = Sb + m * T;
		double *hrow = heat + (m * B / T) * B;
		for (size_t n = 0; n <= m; n++) {
			double ev = fabs((double)ra[n] - (double)rb[n]);
			size_t off = m - n, bi = n * B / T;
			if (ev > err) {
				err = ev;
				wm = m;
				wn = n;
			}
			if (ev > byoff[off])
				byoff[off] = ev;
			if (ev > hrow[bi])
				hrow[bi] = ev;
		}
		if (with_ref)
			for (size_t n = 0; n <= m; n++) {
				double rv = fabs((double)ra[n]);
				if (rv > ref)
					ref = rv;
			}
	}
	e->s_err[h] = err;
	e->s_m[h] = wm;
	e->s_n[h] = wn;
	if (with_ref)
		e->s_ref[h] = ref;
}

/* The original's score magnitude by offset (over every head). */
static void FN(score_ref_offsets)(const struct FN(Engine) *e, const REAL *Sa,
				  double *byoff_ref)
{
	size_t T = e->T;
	for (size_t m = 0; m < T; m++)
		for (size_t n = 0; n <= m; n++) {
			double rv = fabs((double)Sa[m * T + n]);
			if (rv > byoff_ref[m - n])
				byoff_ref[m - n] = rv;
		}
}

/* ======================= phase O: output tiles =========================== */

/* The hot loops of the comparison, four entries at a time with GCC/clang
 * vector extensions (and an AVX2 clone picked at load time on x86-64).
 * Differences are taken in double, where the difference of two floats is
 * exact, and a NaN never wins a max: the same results as plain loops. */
#if defined(__GNUC__)
typedef REAL FN(V4) __attribute__((vector_size(4 * sizeof(REAL))));
typedef double FN(V4d) __attribute__((vector_size(32)));
typedef long long FN(V4m) __attribute__((vector_size(32)));
#define VEC4 1
#define V4_LOAD(dst, p)                                                  \
	do {                                                             \
		FN(V4) t_;                                               \
		memcpy(&t_, (p), sizeof t_);                             \
		dst = __builtin_convertvector(t_, FN(V4d));              \
	} while (0)
#define V4_ABS(v) ((FN(V4d))((FN(V4m))(v) & (FN(V4m)){INT64_MAX, INT64_MAX, \
							INT64_MAX, INT64_MAX}))
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

/* max_j |a_j - b_j| over n entries, and u_j += b_j. */
HOT_CLONES
static double FN(diff_max_add)(const REAL *a, const REAL *b, REAL *u, size_t n)
{
	double m = 0;
	size_t j = 0;
#ifdef VEC4
	FN(V4d) vm = {0, 0, 0, 0};
	for (; j + 4 <= n; j += 4) {
		FN(V4d) x, y;
		V4_LOAD(x, a + j);
		V4_LOAD(y, b + j);
		FN(V4d) e = V4_ABS(x - y);
		V4_MAX(vm, e);
		V4_ADD_TO(u + j, b + j);
	}
	for (int i = 0; i < 4; i++)
		if (vm[i] > m)
			m = vm[i];
#endif
	for (; j < n; j++) {
		double ev = fabs((double)a[j] - (double)b[j]);
		if (ev > m)
			m = ev;
		u[j] += b[j];
	}
	return m;
}

/* max_j |a_j| over n entries, and u_j += a_j. */
HOT_CLONES
static double FN(abs_max_add)(const REAL *a, REAL *u, size_t n)
{
	double m = 0;
	size_t j = 0;
#ifdef VEC4
	FN(V4d) vm = {0, 0, 0, 0};
	for (; j + 4 <= n; j += 4) {
		FN(V4d) x;
		V4_LOAD(x, a + j);
		FN(V4d) e = V4_ABS(x);
		V4_MAX(vm, e);
		V4_ADD_TO(u + j, a + j);
	}
	for (int i = 0; i < 4; i++)
		if (vm[i] > m)
			m = vm[i];
#endif
	for (; j < n; j++) {
		double rv = fabs((double)a[j]);
		if (rv > m)
			m = rv;
		u[j] += a[j];
	}
	return m;
}

/* The first j with |a_j - b_j| == target. */
static size_t FN(diff_find)(const REAL *a, const REAL *b, size_t n, double target)
{
	for (size_t j = 0; j < n; j++)
		if (fabs((double)a[j] - (double)b[j]) == target)
			return j;
	return 0;
}

/* O (nr x nc, ld ldo) = C[r0.., head h] W_o,h[c0..]^T. */
static void FN(head_tile)(const struct FN(Engine) *e, FN(Worker) *w,
			  const REAL *C, const REAL *wo, size_t h, size_t r0,
			  size_t nr, size_t c0, size_t nc, REAL *O, size_t ldo)
{
	size_t d = e->d, nq = e->nq;
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)nc, (int)d,
	     1, C + r0 * nq + h * d, (int)nq, wo + c0 * nq + h * d, (int)nq, 0,
	     O, (int)ldo);
	w->flops += 2.0 * (double)nr * (double)nc * (double)d;
}

static void FN(out_tile)(struct FN(Engine) *e, FN(Worker) *w, size_t tile)
{
	size_t T = e->T, D = e->D, H = e->H;
	size_t r0 = (tile / e->n_tiles_c) * e->tb, c0 = (tile % e->n_tiles_c) * e->dc;
	size_t nr = T - r0 < e->tb ? T - r0 : e->tb;
	size_t nc = D - c0 < e->dc ? D - c0 : e->dc;
	bool first = !e->orig_ready;
	REAL *ua = w->ua, *ub = w->ub;
	for (size_t i = 0; i < nr * nc; i++)
		ua[i] = ub[i] = 0;
	for (size_t h = 0; h < H; h++) {
		const REAL *oa;
		size_t lda;
		if (h < e->n_ocache) {
			REAL *slot = e->ocache + h * T * D + r0 * D + c0;
			if (first)
				FN(head_tile)(e, w, e->ca, e->wo_a, h, r0, nr, c0, nc, slot, D);
			oa = slot;
			lda = D;
		} else {
			FN(head_tile)(e, w, e->ca, e->wo_a, h, r0, nr, c0, nc, w->oa, nc);
			oa = w->oa;
			lda = nc;
		}
		FN(head_tile)(e, w, e->cb, e->wo_b, h, r0, nr, c0, nc, w->ob, nc);
		double err = w->h_err[h], ref = w->h_ref[h];
		size_t idx = w->h_idx[h];
		for (size_t i = 0; i < nr; i++) {
			const REAL *ra = oa + i * lda, *rb = w->ob + i * nc;
			double row_err = FN(diff_max_add)(ra, rb, ub + i * nc, nc);
			if (row_err > 0 && row_err >= err) {
				size_t at = (r0 + i) * D + c0 +
					    FN(diff_find)(ra, rb, nc, row_err);
				if (row_err > err || at < idx) {
					err = row_err;
					idx = at;
				}
			}
			if (first) {
				double rv = FN(abs_max_add)(ra, ua + i * nc, nc);
				if (rv > ref)
					ref = rv;
			}
		}
		w->h_err[h] = err;
		w->h_ref[h] = ref;
		w->h_idx[h] = idx;
	}
	/* residual: y = x + U + b_o on both sides; reference is U alone */
	const REAL *boa = e->a->bo ? e->sm_a.bo : NULL;
	const REAL *bob = e->b->bo ? e->sm_b.bo : NULL;
	for (size_t i = 0; i < nr; i++) {
		size_t t = r0 + i;
		REAL *uc = e->ua + t * D + c0;
		const REAL *uai = ua + i * nc;
		if (first)
			for (size_t j = 0; j < nc; j++)
				uc[j] = uai[j];
		const REAL *xr = e->x + t * D + c0, *ubi = ub + i * nc;
		for (size_t j = 0; j < nc; j++) {
			size_t c = c0 + j;
			REAL ya = xr[j] + uc[j] + (boa ? boa[c] : 0);
			REAL yb = xr[j] + ubi[j] + (bob ? bob[c] : 0);
			double ev = fabs((double)ya - (double)yb);
			double rv = fabs((double)uc[j]);
			size_t at = t * D + c;
			if (rv > w->r_ref)
				w->r_ref = rv;
			if (ev > w->r_err || (ev == w->r_err && ev > 0 && at < w->r_idx)) {
				w->r_err = ev;
				w->r_idx = at;
			}
		}
	}
}

/* ======================= the run ========================================= */

typedef enum {
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
	if (first || cmp)
		FN(scores)(e, w, e->qa, e->ka, h, scale, w->sa);
	FN(scores)(e, w, e->qb, e->kb, h, (REAL)layer_score_scale(e->b), w->sb);
	if (cmp)
		FN(score_compare)(e, h, w->sa, w->sb, first);
	if (first)
		FN(score_ref_offsets)(e, w->sa, w->boref);
	if (first)
		FN(softmax_context)(e, w, w->sa, e->va, h, e->ca);
	FN(softmax_context)(e, w, w->sb, e->vb, h, e->cb);
}

static void FN(worker_main)(void *ctx, size_t wi)
{
	FN(Job) *j = ctx;
	struct FN(Engine) *e = j->e;
	FN(Worker) *w = &e->w[wi];
	for (size_t t; (t = task_queue_next(&e->queue)) != (size_t)-1;) {
		switch (j->phase) {
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
			FN(out_tile)(e, w, t);
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
	double t0 = timer_now();
	RfStatus st = parallel_run(nw, FN(worker_main), &j);
	e->sec[ph] += timer_now() - t0;
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
			       const FoldChanges *c, InvReport *rep)
{
	size_t T = e->T, D = e->D, H = e->H, G = e->G, B = e->B;
	RfStatus st = RF_OK;
	e->b = b;
	e->flops = 0;
	for (int i = 0; i < ATTN_PHASE_COUNT; i++)
		e->sec[i] = 0;
	for (size_t i = 0; i < e->nworkers; i++)
		e->w[i].flops = 0;
	FN(plan_run)(e, c);
	bool first = !e->orig_ready;
	int saved = parallel_blas_single();

	/* ---- P: projections -------------------------------------------- */
	FN(small_fill)(&e->sm_b, b, e->nq, e->nk, D, e->d);
	e->n_ptask = 0;
	if (first) {
		FN(small_fill)(&e->sm_a, e->a, e->nq, e->nk, D, e->d);
		bool *t = e->s_chg;  /* scratch: all true on a first run */
		FN(plan_part)(e, 0, 0, t, H);
		FN(plan_part)(e, 0, 1, t, G);
		FN(plan_part)(e, 0, 2, t, G);
#if !REAL_IS_DOUBLE
		for (size_t h = 0; h < H; h++)
			FN(add_ptask)(e, 0, 3, h, 0);
#endif
	}
	FN(plan_part)(e, 1, 0, e->q_chg, H);
	FN(plan_part)(e, 1, 1, e->k_chg, G);
	FN(plan_part)(e, 1, 2, e->v_chg, G);
#if REAL_IS_DOUBLE
	e->wo_b = b->wo;
#else
	for (size_t h = 0; h < H; h++)
		if (e->o_chg[h])
			FN(add_ptask)(e, 1, 3, h, 0);
#endif
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
				if (e->w[k].boref[i] > m)
					m = e->w[k].boref[i];
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
			}
			w->r_err = w->r_ref = 0;
			w->r_idx = 0;
		}
		e->n_tiles_r = (T + e->tb - 1) / e->tb;
		e->n_tiles_c = (D + e->dc - 1) / e->dc;
		st = FN(phase)(e, FN(PH_OUT), e->n_tiles_r * e->n_tiles_c);
		if (st == RF_OK) {
			/* merge the workers' partials: max, then first location */
			for (size_t h = 0; h < H; h++) {
				double err = 0, ref = 0;
				size_t idx = 0;
				for (size_t i = 0; i < e->nworkers; i++) {
					FN(Worker) *w = &e->w[i];
					if (w->h_err[h] > err ||
					    (w->h_err[h] == err && err > 0 && w->h_idx[h] < idx)) {
						err = w->h_err[h];
						idx = w->h_idx[h];
					}
					if (w->h_ref[h] > ref)
						ref = w->h_ref[h];
				}
				e->h_err[h] = err;
				e->h_idx[h] = idx;
				if (first)
					e->h_ref[h] = ref;
			}
			double err = 0, ref = 0;
			size_t idx = 0;
			for (size_t i = 0; i < e->nworkers; i++) {
				FN(Worker) *w = &e->w[i];
				if (w->r_err > err || (w->r_err == err && err > 0 && w->r_idx < idx)) {
					err = w->r_err;
					idx = w->r_idx;
				}
				if (w->r_ref > ref)
					ref = w->r_ref;
			}
			e->r_err = err;
			e->r_idx = idx;
			e->r_ref = ref;
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
		rep->score_rel_err[h] = e->s_ref[h] > 0 ? e->s_err[h] / e->s_ref[h]
							: e->s_err[h];
		if (e->h_err[h] > lh->max_abs_err) {
			lh->max_abs_err = e->h_err[h];
			lh->worst_head = h;
			lh->worst_m = e->h_idx[h] / D;
			lh->worst_coord = e->h_idx[h] % D;
		}
		if (e->h_ref[h] > lh->ref_max)
			lh->ref_max = e->h_ref[h];
		rep->head_rel_err[h] = e->h_ref[h] > 0 ? e->h_err[h] / e->h_ref[h]
						       : e->h_err[h];
	}
	if (rep->heat_bins == B)
		memcpy(rep->heat, e->heat, H * B * B * sizeof(double));
	lr->max_abs_err = e->r_err;
	lr->ref_max = e->r_ref;
	lr->worst_m = e->r_idx / D;
	lr->worst_coord = e->r_idx % D;
	return RF_OK;
}
