#ifndef ROPEFOLD_CORE_MLA_INV_H
#define ROPEFOLD_CORE_MLA_INV_H

#include "core/fold.h"
#include "core/session.h"
#include "core/mla.h"
#include "core/mla_fold.h"
#include "core/report.h"
#include "core/status.h"
#include "core/verify.h"

/* The three invariance levels of an MLA layer (SPEC 2.2, 4.3): fold by
 * cfg, evaluate both sides on x (opt->seq x D) in float64, compare the
 * scores s_h(m, n) of every query head, each head's projected output and
 * the attention update, and fill rep as inv_evaluate does (initialised
 * here; report_done it). Predictions are levels_predict's on the layer's
 * header (mla_header: one kv group, the shared k_pe), the diagnostics
 * those of the rope part (commutators per frequency pair, as
 * diagnose_plan computes them) with the Q/K, orthogonality and V/O
 * mismatches of the nope part and V added, and the explanation
 * diagnose_explain's. opt->precision PREC_F64 (core/mla_attention.c) or
 * PREC_F32 (each side in float, as core/forward's MLA computes it). */
RfStatus mla_evaluate(const MlaLayer *l, const double *x, const EvalOptions *opt,
		      const FoldConfig *cfg, InvReport *rep);

/* Layer a against layer b directly on x (seq x D): both evaluated at
 * prec (PREC_F64, or PREC_F32 as core/forward's MLA computes it), the
 * three levels compared as mla_evaluate does and judged at tol (<= 0:
 * prec's default), every level expected to hold when expect is set
 * (verify's confirmation of a fold it found). rep is initialised here. */
RfStatus mla_compare(const MlaLayer *a, const MlaLayer *b, const double *x, size_t seq,
		     Precision prec, double tol, bool expect, InvReport *rep);

/* verify's confirmation of its verdict v on MLA layers a and b:
 * mla_compare on x (seq x D) at prec, every level expected to hold when v
 * is equivalent (the score and head levels not when heads are permuted:
 * each head differs, the residual block not), at tol, or (tol <= 0) the
 * precision's default raised to four times the levels' error that
 * rounding at v->unit_roundoff alone causes. Sets v->confirm_tol; rep is
 * initialised here. */
RfStatus mla_confirm(const MlaLayer *a, const MlaLayer *b, VerifyVerdict *v, const double *x,
		     size_t seq, Precision prec, double tol, InvReport *rep);
/* The diagnostics of plan on l into rep (report_init'ed for l's header):
 * the rope part's commutators per frequency pair as diagnose_plan computes
 * them, with the nope part's and V's orthogonality, Q/K and V/O mismatches
 * on top; mla_evaluate's, and compare mode's on the rotations verify
 * recovered. */
RfStatus mla_diagnose_plan(const MlaLayer *l, const FoldConfig *cfg, const MlaPlan *plan,
			   InvReport *rep);

/* The levels' errors that rounding alone causes: a against a copy of a
 * with every weight moved by up to u relative (seeded, reproducible),
 * into noise[LEVEL_COUNT] (relative errors). */
RfStatus mla_rounding_noise(const MlaLayer *a, const double *x, size_t seq, double u,
			    double noise[LEVEL_COUNT]);

#endif
