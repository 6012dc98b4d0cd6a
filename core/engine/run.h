#ifndef ROPEFOLD_CORE_ENGINE_RUN_H
#define ROPEFOLD_CORE_ENGINE_RUN_H

/* ======================= the run ========================================= */

typedef enum {
	PH_CONV = ATTN_PHASE_FOLD,  /* float: counted with the fold */
	PH_PROJ = ATTN_PHASE_PROJ,
	PH_POST = ATTN_PHASE_POST,
	PH_HEADS = ATTN_PHASE_HEADS,
	PH_OUT = ATTN_PHASE_OUT
} Phase;

typedef struct {
	Engine *e;
	Phase phase;
} Job;

static void worker_main(void *ctx, size_t wi)
{
	Job *j = ctx;
	Engine *e = j->e;
	Worker *w = &e->w[wi];
	for (size_t t; (t = task_queue_next(&e->queue)) != (size_t)-1;) {
		switch (j->phase) {
		case PH_CONV: {
			const ConvTask *c = &e->ctask[t];
			convert(c->dst, c->src, c->n);
			break;
		}
		case PH_PROJ:
			proj_task(e, w, &e->ptask[t]);
			break;
		case PH_POST: {
			size_t r0 = t * POST_ROWS;
			size_t r1 = r0 + POST_ROWS < e->T ? r0 + POST_ROWS : e->T;
			post_rows(e, r0, r1);
			break;
		}
		case PH_HEADS:
			head_task(e, w, e->heads[t]);
			break;
		case PH_OUT:
			e->out_block(e, w, t);
			break;
		}
	}
}

static RfStatus run_phase(Engine *e, Phase ph, size_t ntasks)
{
	if (ntasks == 0)
		return RF_OK;
	Job j = {e, ph};
	task_queue_init(&e->queue, ntasks);
	size_t nw = e->nworkers < ntasks ? e->nworkers : ntasks;
	for (size_t i = 0; i < e->nworkers; i++)
		e->w[i].fold_sec = 0;
	double t0 = timer_now();
	RfStatus st = parallel_run(nw, worker_main, &j);
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
static void plan_run(Engine *e, const FoldChanges *c)
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

/* One run: what changed decides what is recomputed (plan_run), then the
 * phases in order, each planned by its own file and run on the workers,
 * the workers' results merged, and the report filled. */
static RfStatus engine_run(Engine *e, const Layer *b,
			   const FoldPlan *plan, const FoldChanges *c,
			   InvReport *rep)
{
	size_t T = e->T;
	RfStatus st;
	e->b = b;
	e->plan = plan;
	e->flops = 0;
	for (int i = 0; i < ATTN_PHASE_COUNT; i++)
		e->sec[i] = 0;
	for (size_t i = 0; i < e->nworkers; i++)
		e->w[i].flops = 0;
	plan_run(e, c);
	bool first = !e->orig_ready;
	int saved = parallel_blas_single();

	/* ---- C: the weights in the compute precision ---------------------- */
	st = plan_conversion(e, first);
	if (st == RF_OK)
		st = run_phase(e, PH_CONV, e->n_ctask);

	/* ---- P: projections, then bias, QK-norm and RoPE ------------------ */
	bool any_post = plan_projections(e, first);
	if (st == RF_OK)
		st = run_phase(e, PH_PROJ, e->n_ptask);
	if (st == RF_OK && any_post)
		st = run_phase(e, PH_POST, (T + POST_ROWS - 1) / POST_ROWS);

	/* ---- S: scores and contexts, per head ----------------------------- */
	bool any_ctx = plan_heads(e, first);
	if (st == RF_OK)
		st = run_phase(e, PH_HEADS, e->n_heads_run);
	if (st == RF_OK && first)
		merge_score_ref(e);

	/* ---- O: outputs and their comparison, per coordinate block -------- */
	bool any_o = any_ctx || first;
	for (size_t h = 0; h < e->H; h++)
		any_o |= e->o_chg[h];
	if (st == RF_OK && any_o) {
		merge_clear_outputs(e);
		e->n_cblocks = (e->D + e->nc - 1) / e->nc;
		st = run_phase(e, PH_OUT, e->n_cblocks);
		if (st == RF_OK)
			merge_outputs(e, first);
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
	report_fill(e, rep);
	return RF_OK;
}

/* ======================= the entry points (engine.h) ===================== */

static RfStatus ops_open(const Layer *a, const double *x, size_t T,
			 const RopeTable *rope, size_t threads,
			 size_t cache_bytes, bool fused, void *prev, void **impl)
{
	Engine *e;
	RfStatus st = engine_new(a, x, T, rope, threads, cache_bytes, fused, prev, &e);
	*impl = NULL;
	if (st != RF_OK)
		return st;
	e->out_block = out_block_gemm;
#ifdef FUSED_KERNEL
	if (e->fused)
		e->out_block = out_block_fused;
#endif
	*impl = e;
	return RF_OK;
}

static RfStatus ops_run(void *impl, const Layer *src, const FoldPlan *plan,
			const FoldChanges *c, InvReport *rep)
{
	return engine_run(impl, src, plan, c, rep);
}

static void ops_reset(void *impl)
{
	Engine *e = impl;
	e->orig_ready = e->results_valid = false;
}

static double ops_flops(const void *impl)
{
	const Engine *e = impl;
	return e->flops;
}

static void ops_seconds(const void *impl, double sec[ATTN_PHASE_COUNT])
{
	const Engine *e = impl;
	for (int i = 0; i < ATTN_PHASE_COUNT; i++)
		sec[i] = e->sec[i];
}

static void ops_close(void *impl)
{
	engine_free(impl);
}

const EngineOps ENGINE_OPS = {
	.open = ops_open,
	.run = ops_run,
	.reset = ops_reset,
	.flops = ops_flops,
	.seconds = ops_seconds,
	.close = ops_close,
};

#endif
