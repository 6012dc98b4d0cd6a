#ifndef ROPEFOLD_CORE_COMPARE_H
#define ROPEFOLD_CORE_COMPARE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/attention.h"
#include "core/layer.h"
#include "core/mla.h"
#include "core/report.h"
#include "core/status.h"
#include "core/verify.h"

/* Comparing two checkpoints' layers (SPEC 2.3 compare mode, `check
 * --against`, the explorer's :against): A's layer evaluated against B's
 * stored layer rather than against a fold of A. The verdict is verify's
 * (the rotations, head permutation and layout conversion recovered from
 * the weights); the three levels are verify_confirm's evaluation of A
 * against B on the input; the diagnostics are those of the recovered
 * rotations, so the commutator map and the rotation view show what B
 * did to A. */

/* What compare_layers() found. */
typedef struct {
	VerifyVerdict verdict;   /* always filled (verify_verdict_free it) */
	bool have_report;        /* false when the shapes or RoPE settings
				  * differ: nothing to evaluate */
	InvReport rep;           /* have_report: the three levels */
} Comparison;

/* Compare layer b against layer a on input x (T x D, row-major) in
 * precision prec with the engine's output kernel; vopt as verify_layers
 * takes it; tol of the levels as verify_confirm takes it (<= 0: its
 * default). c is filled here; release it with compare_done, also after an
 * error. */
RfStatus compare_layers(const Layer *a, const Layer *b, const VerifyOptions *vopt,
			const double *x, size_t T, Precision prec, AttnKernel kernel,
			double tol, Comparison *c);
/* The same of two DeepSeek MLA layers (core/mla_verify.h,
 * core/mla_inv.h): verify's MLA verdict on the weights, its confirmation
 * on x (T x D) at prec and tol (<= 0: verify's, raised to what the stored
 * dtypes' rounding at vopt->unit_roundoff moves), the levels on MLA's
 * header (one kv group: the shared k_pe), and the diagnostics of the
 * rotations verify recovered (the rope part's commuting P, per head the
 * nope A_h and V B_h). Release c with compare_done, also after an error. */
RfStatus compare_mla_layers(const MlaLayer *a, const MlaLayer *b, const VerifyOptions *vopt,
			    const double *x, size_t T, Precision prec, double tol, Comparison *c);
/* Release a comparison. */
void compare_done(Comparison *c);

#endif
