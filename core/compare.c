#include "config.h"

#include <string.h>

#include "core/compare.h"
#include "core/diagnose.h"
#include "core/fold.h"
#include "core/mla_inv.h"
#include "core/mla_verify.h"

RfStatus compare_layers(const Layer *a, const Layer *b, const VerifyOptions *vopt,
			const double *x, size_t T, Precision prec, AttnKernel kernel,
			double tol, Comparison *c)
{
	memset(c, 0, sizeof *c);
	RfStatus st = verify_layers(a, b, vopt, &c->verdict);
	if (st != RF_OK || c->verdict.why == VERIFY_WHY_SHAPE)
		return st;
	st = verify_confirm(a, b, &c->verdict, x, T, prec, kernel, 0, tol, NULL, &c->rep);
	if (st != RF_OK)
		return st;
	c->have_report = true;
	/* The recovered plan, in A's indexing, explains B: its diagnostics
	 * say which pairs it mixes, whether it is orthogonal, ... */
	FoldConfig cfg = fold_config_default();
	cfg.permute_heads = c->verdict.heads_permuted;
	st = diagnose_plan(a, &cfg, &c->verdict.plan, &c->rep);
	return st;
}

RfStatus compare_mla_layers(const MlaLayer *a, const MlaLayer *b, const VerifyOptions *vopt,
			    const double *x, size_t T, Precision prec, double tol, Comparison *c)
{
	memset(c, 0, sizeof *c);
	MlaPlan rec;
	memset(&rec, 0, sizeof rec);
	RfStatus st = mla_verify_recover(a, b, vopt, &c->verdict, &rec);
	if (st == RF_OK && c->verdict.why != VERIFY_WHY_SHAPE) {
		st = mla_confirm(a, b, &c->verdict, x, T, prec, tol, &c->rep);
		c->have_report = st == RF_OK;
	}
	if (st == RF_OK && c->have_report) {
		/* what verify recovered explains B as a fold explains its
		 * layer: P's commutators per pair, the nope and V mismatches */
		FoldConfig cfg = fold_config_default();
		cfg.permute_heads = c->verdict.heads_permuted;
		st = mla_diagnose_plan(a, &cfg, &rec, &c->rep);
	}
	mla_plan_free(&rec);
	return st;
}

void compare_done(Comparison *c)
{
	if (c->have_report)
		report_done(&c->rep);
	c->have_report = false;
	verify_verdict_free(&c->verdict);
}
