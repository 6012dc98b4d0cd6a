#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/attention.h"
#include "core/diagnose.h"
#include "core/inv.h"
#include "core/levels.h"
#include "core/rope.h"

struct InvSession {
	const Layer *orig;
	const double *x;
	EvalOptions opt;
	RopeTable rope;
	Layer folded;
	FoldPlan plan;
	bool have_fold;
};

RfStatus inv_session_new(const Layer *l, const double *x,
			 const EvalOptions *opt, InvSession **out)
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
	RfStatus st = rope_table_init(&s->rope, &l->rope, opt->seq);
	if (st != RF_OK) {
		free(s);
		return st;
	}
	*out = s;
	return RF_OK;
}

static void drop_fold(InvSession *s)
{
	if (s->have_fold) {
		layer_free(&s->folded);
		fold_plan_free(&s->plan);
		s->have_fold = false;
	}
}

RfStatus inv_session_evaluate(InvSession *s, const FoldConfig *cfg,
			      InvReport *rep)
{
	const Layer *l = s->orig;
	RfStatus st = report_init(rep, s->opt.seq, l->shape.n_heads,
				  l->shape.n_kv_heads, l->shape.head_dim,
				  l->rope.rotary_dim);
	if (st != RF_OK)
		return st;
	rep->precision = s->opt.precision;
	drop_fold(s);
	st = fold_plan_build(l, cfg, &s->plan);
	if (st != RF_OK)
		goto fail;
	st = fold_apply(l, &s->plan, &s->folded);
	if (st != RF_OK) {
		fold_plan_free(&s->plan);
		goto fail;
	}
	s->have_fold = true;
	st = attention_compare(l, &s->folded, s->x, s->opt.seq,
			       s->opt.precision, &s->rope, rep);
	if (st != RF_OK)
		goto fail;
	st = diagnose_plan(l, cfg, &s->plan, rep);
	if (st != RF_OK)
		goto fail;
	levels_judge(rep, l, cfg, s->opt.tol);
	diagnose_explain(l, cfg, rep);
	return RF_OK;
fail:
	report_done(rep);
	return st;
}

const Layer *inv_session_folded(const InvSession *s)
{
	return s->have_fold ? &s->folded : NULL;
}

const FoldPlan *inv_session_plan(const InvSession *s)
{
	return s->have_fold ? &s->plan : NULL;
}

void inv_session_free(InvSession *s)
{
	if (!s)
		return;
	drop_fold(s);
	rope_table_done(&s->rope);
	free(s);
}

RfStatus inv_evaluate(const Layer *l, const double *x, const EvalOptions *opt,
		      const FoldConfig *cfg, InvReport *rep)
{
	InvSession *s;
	RfStatus st = inv_session_new(l, x, opt, &s);
	if (st != RF_OK)
		return st;
	st = inv_session_evaluate(s, cfg, rep);
	inv_session_free(s);
	return st;
}
