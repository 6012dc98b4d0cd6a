#ifndef ROPEFOLD_CORE_ENGINE_BUFFERS_H
#define ROPEFOLD_CORE_ENGINE_BUFFERS_H

/* ======================= buffers ======================================= */

/* Every buffer of an engine is allocated once, in engine_new, and kept
 * for the engine's life (state.h gives their shapes); a worker's scratch
 * is one arena that each phase carves its own way. */

static void *zalloc(size_t n, size_t size, bool *ok)
{
	void *p = ws_calloc(n * size > 0 ? n * size : 1);
	if (!p)
		*ok = false;
	return p;
}

/* Byte sizes of the engine's buffers, so free can unmap what alloc mapped. */
static size_t proj_bytes(const Engine *e, size_t cols)
{
	return e->T * cols * sizeof(REAL);
}

/* Entries of a worker's arena: the largest of the phases' carvings. */
static size_t arena_entries(const Engine *e)
{
	size_t T = e->T, D = e->D, d = e->d, nc = e->nc, tb = e->tb;
	size_t proj = e->fold_heads * d * D + d * d;
	size_t heads = 2 * T * T + (e->fused ? T * d : 0);
	size_t out = d * nc + 2 * tb * nc + 2 * T * nc + d * d;
#ifdef FUSED_KERNEL
	if (e->fused) {
		size_t k = 3 * d * FUSED_SUB + 2 * T * nc + d * d +
			   fused_rows(d) * d;
		out = out > k ? out : k;
	}
#endif
	size_t n = proj > heads ? proj : heads;
	return n > out ? n : out;
}

static void engine_free(Engine *e)
{
	if (!e)
		return;
	size_t T = e->T, D = e->D, H = e->H;
	ws_free(e->x_own, T * D * sizeof(REAL));
	for (int i = 0; i < 4; i++) {
		ws_free(e->wa_own[i], e->wsize[i] * sizeof(REAL));
		ws_free(e->ws_own[i], e->wsize[i] * sizeof(REAL));
	}
	Small *sm[2] = {&e->sm_a, &e->sm_b};
	for (int s = 0; s < 2; s++) {
		ws_free(sm[s]->bq, e->nq * sizeof(REAL));
		ws_free(sm[s]->bk, e->nk * sizeof(REAL));
		ws_free(sm[s]->bv, e->nk * sizeof(REAL));
		ws_free(sm[s]->bo, D * sizeof(REAL));
		ws_free(sm[s]->qn, e->nq * sizeof(REAL));
		ws_free(sm[s]->kn, e->nk * sizeof(REAL));
	}
	free(e->small64);
	ws_free(e->qa, proj_bytes(e, e->nq));
	ws_free(e->ka, proj_bytes(e, e->nk));
	ws_free(e->va, proj_bytes(e, e->nk));
	ws_free(e->qb, proj_bytes(e, e->nq));
	ws_free(e->kb, proj_bytes(e, e->nk));
	ws_free(e->vb, proj_bytes(e, e->nk));
	ws_free(e->ca, proj_bytes(e, e->nq));
	ws_free(e->cb, proj_bytes(e, e->nq));
	ws_free(e->cpa, H * e->cp_rows * e->d * sizeof(REAL));
	ws_free(e->cpb, H * e->cp_rows * e->d * sizeof(REAL));
	ws_free(e->ua, T * D * sizeof(REAL));
	ws_free(e->ocache, e->n_ocache * T * D * sizeof(REAL));
	ws_free(e->pcache, H * T * T * sizeof(REAL));
	if (e->w) {
		for (size_t i = 0; i < e->nworkers; i++) {
			Worker *w = &e->w[i];
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
static size_t pick_nc(size_t D, size_t nworkers)
{
	size_t nc = D < OUT_NC ? D : OUT_NC;
	while (nc > 64 && (D + nc - 1) / nc < 2 * nworkers)
		nc /= 2;
	return nc;
}

/* prev's buffer *slot of have entries, taken over (prev's slot emptied)
 * when it holds n, else NULL. Only buffers whose old values are all
 * overwritten before they are read are taken: the float copies (a's by
 * the first run's conversion, the other side's by each run's), the
 * output cache (by the first run) and the workers' arenas (each phase
 * writes its carving before reading it). */
static REAL *take_copy(Engine *prev, REAL **slot, size_t n, size_t have)
{
	if (!prev || !*slot || have != n)
		return NULL;
	REAL *p = *slot;
	*slot = NULL;
	return p;
}

static RfStatus engine_new(const Layer *a, const double *x64, size_t T,
			   const RopeTable *rope, size_t nworkers,
			   size_t ocache_bytes, bool fused, Engine *prev, Engine **out)
{
	Engine *e = calloc(1, sizeof *e);
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
	e->nc = pick_nc(D, e->nworkers);
	e->fold_heads = FOLD_COLS / d ? FOLD_COLS / d : 1;
	size_t nq = e->nq, nk = e->nk;
	e->wsize[0] = nq * D;
	e->wsize[1] = e->wsize[2] = nk * D;
	e->wsize[3] = D * nq;
#if REAL_IS_DOUBLE
	/* a float64 engine reads a's weights in place */
	e->x = x64;
	e->wa[0] = a->wq; e->wa[1] = a->wk; e->wa[2] = a->wv; e->wa[3] = a->wo;
#else
	e->x_own = zalloc(T * D, sizeof(REAL), &ok);
	if (ok)
		for (size_t i = 0; i < T * D; i++)
			e->x_own[i] = (REAL)x64[i];
	e->x = e->x_own;
	for (int i = 0; i < 4; i++) {
		/* at 8B scale a layer's copies are 336 MB: reused, not mapped
		 * and touched afresh for every layer of a verify */
		e->wa_own[i] = prev ? take_copy(prev, &prev->wa_own[i], e->wsize[i], prev->wsize[i])
				    : NULL;
		if (!e->wa_own[i])
			e->wa_own[i] = zalloc(e->wsize[i], sizeof(REAL), &ok);
		e->wa[i] = e->wa_own[i];
		if (prev)
			e->ws_own[i] = take_copy(prev, &prev->ws_own[i], e->wsize[i], prev->wsize[i]);
	}
#endif
	Small *sm[2] = {&e->sm_a, &e->sm_b};
	for (int s = 0; s < 2; s++) {
		sm[s]->bq = zalloc(nq, sizeof(REAL), &ok);
		sm[s]->bk = zalloc(nk, sizeof(REAL), &ok);
		sm[s]->bv = zalloc(nk, sizeof(REAL), &ok);
		sm[s]->bo = zalloc(D, sizeof(REAL), &ok);
		sm[s]->qn = zalloc(nq, sizeof(REAL), &ok);
		sm[s]->kn = zalloc(nk, sizeof(REAL), &ok);
	}
	e->small64 = calloc(2 * nq + 3 * nk, sizeof(double));
	if (!e->small64)
		ok = false;
	e->qa = zalloc(T, nq * sizeof(REAL), &ok);
	e->ka = zalloc(T, nk * sizeof(REAL), &ok);
	e->va = zalloc(T, nk * sizeof(REAL), &ok);
	e->qb = zalloc(T, nq * sizeof(REAL), &ok);
	e->kb = zalloc(T, nk * sizeof(REAL), &ok);
	e->vb = zalloc(T, nk * sizeof(REAL), &ok);
	(void)fused;
#ifdef FUSED_KERNEL
	e->fused = fused;
	if (e->fused) {
		/* the kernel reads the contexts packed, and only so */
		e->cp_rows = fused_rows(T);
		e->cpa = zalloc(H * e->cp_rows, d * sizeof(REAL), &ok);
		e->cpb = zalloc(H * e->cp_rows, d * sizeof(REAL), &ok);
	}
#endif
	if (!e->fused) {
		e->ca = zalloc(T, nq * sizeof(REAL), &ok);
		e->cb = zalloc(T, nq * sizeof(REAL), &ok);
	}
	e->ua = zalloc(T * D, sizeof(REAL), &ok);
	/* As many heads' O_h as the budget holds. */
	size_t per_head = T * D * sizeof(REAL);
	e->n_ocache = per_head ? ocache_bytes / per_head : 0;
	if (e->n_ocache > H)
		e->n_ocache = H;
	if (e->n_ocache) {
		/* at 8B scale 32 MB, which verify renews every layer */
		if (prev)
			e->ocache = take_copy(prev, &prev->ocache, e->n_ocache * T * D,
					      prev->n_ocache * prev->T * prev->D);
		if (!e->ocache)
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
	e->w = calloc(e->nworkers, sizeof(Worker));
	if (!e->w)
		ok = false;
	size_t arena = arena_entries(e);
	for (size_t i = 0; ok && i < e->nworkers; i++) {
		Worker *w = &e->w[i];
		Worker *pw = prev && i < prev->nworkers ? &prev->w[i] : NULL;
		w->arena = pw ? take_copy(prev, &pw->arena, arena, pw->arena_n) : NULL;
		if (!w->arena)
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
	e->byoff = zalloc(H * T, sizeof(double), &ok);
	e->byoff_ref = calloc(T, sizeof(double));
	e->heat = zalloc(H * e->B * e->B, sizeof(double), &ok);
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
	e->ptask = calloc(e->max_ptask, sizeof(ProjTask));
	/* conversion tasks: chunks of the 4 weights of both layers */
	e->max_ctask = 2 * (4 + (nq * D + 2 * nk * D + D * nq) / CONV_CHUNK) + 8;
	e->ctask = calloc(e->max_ctask, sizeof(ConvTask));
	if (!e->s_err || !e->s_ref || !e->s_m || !e->s_n || !e->s_ovf ||
	    !e->byoff_ref || !e->h_err || !e->h_ref || !e->h_idx || !e->h_ovf ||
	    !e->q_chg || !e->o_chg ||
	    !e->s_chg || !e->c_chg || !e->k_chg || !e->v_chg || !e->heads ||
	    !e->ptask || !e->ctask)
		ok = false;
	if (!ok) {
		engine_free(e);
		return RF_ERR_NOMEM;
	}
	*out = e;
	return RF_OK;
}

#endif
