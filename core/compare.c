#include "config.h"

#include <string.h>

#include "core/compare.h"
#include "core/diagnose.h"
#include "core/fold.h"

RfStatus compare_layers(const Layer *a, const Layer *b, const VerifyOptions *vopt,
			const double *x, size_t T, Precision prec, AttnKernel kernel,
			double tol, Comparison *c)
{
	memset(c, 0, sizeof *c);
	RfStatus st = verify_layers(a, b, vopt, &c->verdict);
	if (st != RF_OK || c->verdict.why == VERIFY_WHY_SHAPE)
		return st;
	st = verify_confirm(a, b, &c->verdict, x, T, prec, kernel, tol, &c->rep);
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

void compare_done(Comparison *c)
{
	if (c->have_report)
		report_done(&c->rep);
	c->have_report = false;
	verify_verdict_free(&c->verdict);
}
