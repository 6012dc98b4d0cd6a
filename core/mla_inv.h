#ifndef ROPEFOLD_CORE_MLA_INV_H
#define ROPEFOLD_CORE_MLA_INV_H

#include "core/fold.h"
#include "core/inv.h"
#include "core/mla.h"
#include "core/mla_fold.h"
#include "core/report.h"
#include "core/status.h"

/* The three invariance levels of an MLA layer (SPEC 2.2, 4.3): fold by
 * cfg, evaluate both sides on x (opt->seq x D) in float64, compare the
 * scores s_h(m, n) of every query head, each head's projected output and
 * the attention update, and fill rep as inv_evaluate does (initialised
 * here; report_done it). Predictions are levels_predict's on the layer's
 * header (mla_header: one kv group, the shared k_pe), the diagnostics
 * those of the rope part (commutators per frequency pair, as
 * diagnose_plan computes them) with the Q/K, orthogonality and V/O
 * mismatches of the nope part and V added, and the explanation
 * diagnose_explain's. opt->precision must be PREC_F64 (RF_ERR_ARG). */
RfStatus mla_evaluate(const MlaLayer *l, const double *x, const EvalOptions *opt,
		      const FoldConfig *cfg, InvReport *rep);

#endif
