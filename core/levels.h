#ifndef ROPEFOLD_CORE_LEVELS_H
#define ROPEFOLD_CORE_LEVELS_H

#include <stdbool.h>

#include "core/fold.h"
#include "core/layer.h"
#include "core/report.h"

/* The prediction rules of SPEC 2.2, exactly as written: which levels the
 * theorem guarantees for this layer and fold configuration. A QK-norm
 * weight that differs within a pair does not count against a config with
 * qk_norm_exact: its fold keeps to the angles that commute with it. */
void levels_predict(const Layer *l, const FoldConfig *cfg,
		    bool guaranteed[LEVEL_COUNT]);

/* True when a learned QK-norm weight differs within some RoPE pair. */
bool levels_qk_norm_splits_pairs(const Layer *l);

/* The default tolerance of a precision: 1e-9 (f64), 1e-3 (f32). */
double levels_default_tol(Precision prec);

/* Turn the raw errors in rep into relative errors, epsilon units and
 * verdicts against tol, and set the predictions. A level whose values
 * overflowed (an infinite error) neither holds nor breaks: overflow is
 * set, holds false, and its errors +Inf. */
void levels_judge(InvReport *rep, const Layer *l, const FoldConfig *cfg,
		  double tol);

#endif
