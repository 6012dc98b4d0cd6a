#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/attention.h"
#include "core/diagnose.h"
#include "core/fold_changes.h"
#include "core/levels.h"
#include "core/parallel.h"
#include "core/rope.h"
#include "core/session.h"
#include "core/timer.h"

/* The original side's per-head outputs are cached when they fit in this
 * many times the layer's float64 weights (a Llama-3-8B layer at T = 512
 * needs 1.6x), and then the folded side's attention probabilities too
 * (0.2x more there); otherwise as many heads' outputs as fit. With the
 * layer, the input, the projections and contexts of both sides, the
 * session's peak stays near three times the layer. */
#define INV_OUTPUT_CACHE_FACTOR 1.8

struct InvSession {
	const Layer *orig;
	const double *x;
	EvalOptions opt;
	RopeTable rope;
	Layer folded;         /* built only when asked for (inv_session_folded) */
	bool folded_alloc;
	bool folded_current;  /* folded holds the last evaluation's fold */
	FoldPlan plan;        /* of the last evaluation */
	bool have_fold;       /* plan and folded are valid */
	FoldChanges changes;
	AttnEngine *engine;
	double flops;
	double sec[INV_PHASE_COUNT];  /* of the last evaluation */
};

static RfStatus session_new(const Layer *l, const double *x,
			    const EvalOptions *opt, size_t cache_bytes,
			    InvSession **out)
{
	*out = NULL;
	if (opt->seq == 0 || opt->seq > LAYER_MAX_SEQ)
		return RF_ERR_ARG;
	if (layer_shape_check(&l->shape, NULL) != RF_OK ||
	    rope_spec_check(&l->rope, l->shape.head_dim, NULL) != RF_OK)
		return RF_ERR_ARG;
	InvSession *s = calloc(1, sizeof *s);
	if (!s)
		return RF_ERR_NOMEM;
	s->orig = l;
	s->x = x;
	s->opt = *opt;
	if (!(s->opt.tol > 0))
		s->opt.tol = levels_default_tol(opt->precision);
	if (!s->opt.threads)
		s->opt.threads = parallel_default_threads();
	RfStatus st = rope_table_init(&s->rope, &l->rope, opt->seq);
	if (st == RF_OK)
		st = fold_changes_init(&s->changes, l->shape.n_heads,
				       l->shape.n_kv_heads);
	if (st == RF_OK)
		st = attention_engine_new(l, x, opt->seq, opt->precision, &s->rope,
					  s->opt.threads, cache_bytes,
					  s->opt.kernel, &s->engine);
	if (st != RF_OK) {
		inv_session_free(s);
		return st;
	}
	*out = s;
	return RF_OK;
}

RfStatus inv_session_new(const Layer *l, const double *x,
			 const EvalOptions *opt, InvSession **out)
{
	return session_new(l, x, opt,
			   (size_t)(INV_OUTPUT_CACHE_FACTOR * (double)layer_bytes(l)),
			   out);
}

void inv_session_reset(InvSession *s)
{
	if (s->have_fold) {
		fold_plan_free(&s->plan);
		s->have_fold = false;
	}
	s->folded_current = false;
	attention_engine_reset(s->engine);
}

static RfStatus session_evaluate(InvSession *s, const FoldConfig *cfg,
				 InvReport *rep);

RfStatus inv_session_evaluate(InvSession *s, const FoldConfig *cfg,
			      InvReport *rep)
{
	/* BLAS single-threaded for the whole evaluation, the rotations and
	 * diagnostics included: its own threads would otherwise spin on the
	 * cores our workers use. */
	int saved = parallel_blas_single();
	RfStatus st = session_evaluate(s, cfg, rep);
	parallel_blas_restore(saved);
	return st;
}

static RfStatus session_evaluate(InvSession *s, const FoldConfig *cfg,
				 InvReport *rep)
{
	const Layer *l = s->orig;
	RfStatus st = report_init(rep, s->opt.seq, l->shape.n_heads,
				  l->shape.n_kv_heads, l->shape.head_dim,
				  l->rope.rotary_dim);
	if (st != RF_OK)
		return st;
	rep->precision = s->opt.precision;
	s->flops = 0;
	for (int i = 0; i < INV_PHASE_COUNT; i++)
		s->sec[i] = 0;
	double t0 = timer_now(), t1;
	FoldPlan plan;
	st = fold_plan_build(l, cfg, &plan);
	if (st != RF_OK)
		goto fail;
	/* Only the blocks whose rotations changed are folded again and
	 * re-evaluated; the engine folds them head by head as it goes. */
	fold_changes_diff(&s->changes, l, &plan, s->have_fold ? &s->plan : NULL);
	if (s->have_fold)
		fold_plan_free(&s->plan);
	s->plan = plan;
	s->have_fold = true;
	s->folded_current = false;
	t1 = timer_now();
	st = attention_engine_run(s->engine, l, &s->plan, &s->changes, rep);
	if (st != RF_OK) {
		fold_plan_free(&s->plan);
		s->have_fold = false;
		goto fail;
	}
	s->flops += attention_engine_flops(s->engine);
	double es[ATTN_PHASE_COUNT];
	attention_engine_seconds(s->engine, es);
	s->sec[INV_PHASE_FOLD] = t1 - t0 + es[ATTN_PHASE_FOLD];
	s->sec[INV_PHASE_PROJ] = es[ATTN_PHASE_PROJ];
	s->sec[INV_PHASE_POST] = es[ATTN_PHASE_POST];
	s->sec[INV_PHASE_HEADS] = es[ATTN_PHASE_HEADS];
	s->sec[INV_PHASE_OUT] = es[ATTN_PHASE_OUT];
	double t2 = timer_now();
	st = diagnose_plan_threads(l, cfg, &s->plan, s->opt.threads, rep);
	if (st != RF_OK)
		goto fail;
	levels_judge(rep, l, cfg, s->opt.tol);
	diagnose_explain(l, cfg, rep);
	double t3 = timer_now();
	s->sec[INV_PHASE_DIAG] = t3 - t2;
	double known = 0;
	for (int i = 0; i < INV_PHASE_OTHER; i++)
		known += s->sec[i];
	s->sec[INV_PHASE_OTHER] = t3 - t0 - known;
	return RF_OK;
fail:
	/* Start over cleanly next time. */
	attention_engine_reset(s->engine);
	report_done(rep);
	return st;
}

const Layer *inv_session_folded(InvSession *s)
{
	if (!s->have_fold)
		return NULL;
	if (s->folded_current)
		return &s->folded;
	if (!s->folded_alloc) {
		if (refold_layer_alloc(&s->folded, s->orig) != RF_OK)
			return NULL;
		s->folded_alloc = true;
	}
	FoldChanges all;
	if (fold_changes_init(&all, s->orig->shape.n_heads,
			      s->orig->shape.n_kv_heads) != RF_OK)
		return NULL;
	RfStatus st = refold_apply(s->orig, &s->plan, &all, &s->folded,
				   s->opt.threads);
	fold_changes_done(&all);
	if (st != RF_OK)
		return NULL;
	s->folded_current = true;
	return &s->folded;
}

const FoldPlan *inv_session_plan(const InvSession *s)
{
	return s->have_fold ? &s->plan : NULL;
}

double inv_session_flops(const InvSession *s)
{
	return s->flops;
}

const char *inv_phase_name(InvPhase p)
{
	static const char *const names[INV_PHASE_COUNT] = {
		"fold", "proj", "rope", "scores", "out", "diag", "other",
	};
	return (unsigned)p < INV_PHASE_COUNT ? names[p] : "?";
}

void inv_session_phase_seconds(const InvSession *s, double sec[INV_PHASE_COUNT])
{
	for (int i = 0; i < INV_PHASE_COUNT; i++)
		sec[i] = s->sec[i];
}

double inv_session_bytes_quadratic(const LayerShape *s, size_t T,
				   Precision prec, size_t threads)
{
	double R = prec == PREC_F32 ? 4.0 : 8.0, t = (double)T;
	if (!threads)
		threads = parallel_default_threads();
	(void)s;
	/* both sides' scores of one head per worker */
	return (double)threads * 2.0 * t * t * R;
}

double inv_session_bytes(const LayerShape *s, size_t T, Precision prec,
			 size_t threads)
{
	double R = prec == PREC_F32 ? 4.0 : 8.0, t = (double)T;
	double D = (double)s->d_model, H = (double)s->n_heads;
	double G = (double)s->n_kv_heads, d = (double)s->head_dim;
	double layer = (2.0 * H * d * D + 2.0 * G * d * D) * 8.0;
	double nq = H * d, nk = G * d;
	/* the original, the output caches, a folded copy if asked for, and
	 * float copies of the weights in float32 */
	double weights = layer * (1.0 + INV_OUTPUT_CACHE_FACTOR + 1.0) +
			 (prec == PREC_F32 ? layer : 0.0);
	/* q, k, v and contexts of both sides, x and the update */
	double acts = t * (2.0 * (nq + 2.0 * nk) + 2.0 * nq + 3.0 * D) * R;
	return weights + acts + inv_session_bytes_quadratic(s, T, prec, threads);
}

size_t inv_session_threads(const InvSession *s)
{
	return s->opt.threads;
}

void inv_session_free(InvSession *s)
{
	if (!s)
		return;
	if (s->have_fold)
		fold_plan_free(&s->plan);
	if (s->folded_alloc)
		refold_layer_free(&s->folded);
	attention_engine_free(s->engine);
	fold_changes_done(&s->changes);
	rope_table_done(&s->rope);
	free(s);
}

RfStatus inv_evaluate(const Layer *l, const double *x, const EvalOptions *opt,
		      const FoldConfig *cfg, InvReport *rep)
{
	InvSession *s;
	/* One evaluation: nothing to reuse, so no output cache. */
	RfStatus st = session_new(l, x, opt, 0, &s);
	if (st != RF_OK)
		return st;
	st = inv_session_evaluate(s, cfg, rep);
	inv_session_free(s);
	return st;
}
