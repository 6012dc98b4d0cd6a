#ifndef ROPEFOLD_CORE_DIAGNOSE_H
#define ROPEFOLD_CORE_DIAGNOSE_H

#include "core/fold.h"
#include "core/layer.h"
#include "core/report.h"

/* Fill rep->diag from the matrices a plan applies: orthogonality defect,
 * commutators per head and frequency pair, Q/K, GQA and V/O mismatches,
 * biases left behind, QK-norm weights split within pairs. */
RfStatus diagnose_plan(const Layer *l, const FoldConfig *cfg,
		       const FoldPlan *plan, InvReport *rep);

/* The same, with the per-rotation products spread over threads workers
 * (the results do not depend on threads). */
RfStatus diagnose_plan_threads(const Layer *l, const FoldConfig *cfg,
			       const FoldPlan *plan, size_t threads,
			       InvReport *rep);

/* Fill rep->findings: where and why each level breaks (or holds against
 * the prediction), from verdicts and diagnostics, in the order they are
 * told (tui/shared/findings_text words them). */
void diagnose_explain(const Layer *l, const FoldConfig *cfg, InvReport *rep);

#endif
