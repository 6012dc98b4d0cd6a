#include "config.h"

#include "tests/testutil.h"

#include "core/session.h"
#include "tests/layer_fixtures.h"

void lf_layer(const LayerCase *c, uint64_t seed, Layer *l)
{
	LayerShape s = {c->D, c->H, c->G, c->d};
	RopeSpec r = rope_spec_default(c->d);
	r.layout = c->layout;
	r.rotary_dim = c->r;
	assert_int_equal(layer_random(l, &s, &r, c->bias, seed), RF_OK);
}

double *lf_input(const LayerCase *c, uint64_t seed)
{
	double *x = malloc(c->T * c->D * sizeof(double));
	assert_non_null(x);
	layer_random_input(seed, c->T, c->D, x);
	return x;
}

void lf_qk_norm(Layer *l, bool per_head)
{
	size_t d = l->shape.head_dim;
	size_t nq = per_head ? d : l->shape.n_heads * d;
	size_t nk = per_head ? d : l->shape.n_kv_heads * d;
	l->q_norm = malloc(nq * sizeof(double));
	l->k_norm = malloc(nk * sizeof(double));
	assert_true(l->q_norm && l->k_norm);
	for (size_t i = 0; i < nq; i++)
		l->q_norm[i] = 1.0;
	for (size_t i = 0; i < nk; i++)
		l->k_norm[i] = 1.0;
	l->qk_norm_per_head = per_head;
	l->qk_norm_eps = 1e-6;
}

FoldConfig lf_config(unsigned rotate, unsigned dropped)
{
	FoldConfig c = fold_config_default();
	c.rotate = rotate;
	c.dropped = dropped;
	return c;
}

void lf_fold(const Layer *a, const FoldConfig *cfg, Layer *b, FoldPlan *plan)
{
	FoldPlan p;
	assert_int_equal(fold_plan_build(a, cfg, &p), RF_OK);
	assert_int_equal(fold_apply(a, &p, b), RF_OK);
	if (plan)
		*plan = p;
	else
		fold_plan_free(&p);
}

void lf_setup(const LayerCase *c, uint64_t seed, LfSetup *f)
{
	lf_layer(c, seed, &f->l);
	f->x = lf_input(c, seed);
	assert_int_equal(rope_table_init(&f->rope, &f->l.rope, c->T), RF_OK);
}

void lf_setup_done(LfSetup *f)
{
	rope_table_done(&f->rope);
	free(f->x);
	layer_free(&f->l);
}

void lf_report(const LayerCase *c, InvReport *rep)
{
	assert_int_equal(report_init(rep, c->T, c->H, c->G, c->d, c->r), RF_OK);
}

void lf_evaluate_layer(const Layer *l, const LayerCase *c, uint64_t seed,
		       const FoldConfig *cfg, double tol, InvReport *rep)
{
	double *x = lf_input(c, seed);
	EvalOptions eo = {.seq = c->T, .precision = c->prec, .tol = tol};
	assert_int_equal(inv_evaluate(l, x, &eo, cfg, rep), RF_OK);
	free(x);
}

void lf_evaluate(const LayerCase *c, uint64_t seed, const FoldConfig *cfg,
		 double tol, InvReport *rep)
{
	Layer l;
	lf_layer(c, seed, &l);
	lf_evaluate_layer(&l, c, seed, cfg, tol, rep);
	layer_free(&l);
}
