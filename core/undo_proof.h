#ifndef ROPEFOLD_CORE_UNDO_PROOF_H
#define ROPEFOLD_CORE_UNDO_PROOF_H

#include <stdbool.h>

#include "core/dtype.h"
#include "core/fold.h"
#include "core/layer.h"
#include "core/status.h"

/* Whether undoing a stored fold gives back, bit for bit, the values the
 * checkpoint held before the fold: a floating-point certificate, per
 * element, that rounding the undo's float64 result to the original's
 * dtype can only land on the original value.
 *
 * The folded values f are the original o rotated (f = R o in float64) and
 * rounded to the folded dtype; the undo computes v = R^-1 f in float64 and
 * rounds it to o's dtype. Each f is off by at most half its spacing plus
 * the fold's float64 error, so |v - o| <= B = |R^-1| (that error) + the
 * undo's float64 error, elementwise (a dot product of d terms is off by
 * d u of its absolute terms). Where [v - B, v + B] holds a single value of
 * o's dtype, that value is o, and rounding v stores it. A value too close
 * to zero for its spacing to outgrow B (the rotation spreads a head's
 * errors over its coordinates) leaves the layer unproven, though it
 * usually comes back exact; a fold kept in the original's own dtype never
 * proves out. */

/* The arrays of a layer a fold rewrites (b_o and the norms stay). */
typedef enum {
	UNDO_WQ = 0, UNDO_WK, UNDO_WV, UNDO_WO, UNDO_BQ, UNDO_BK, UNDO_BV,
	UNDO_ARRAYS
} UndoArray;

/* The storage of each rewritten array, in the file undone (folded) and
 * in the file the undo writes (restored, the original's dtype). An array
 * the layer lacks is not looked at; a type that is not a float type
 * leaves the layer unproven. */
typedef struct {
	StoreDtype folded[UNDO_ARRAYS];
	StoreDtype restored[UNDO_ARRAYS];
} UndoStorage;

/* *exact = whether rounding `restored` (the undo's float64 values, before
 * rounding: fold_apply(folded, inv)) to the restored dtypes provably
 * stores the original values. folded is the layer as read from the folded
 * file, fwd the plan the fold applied, inv the undo's plan. RF_OK, or
 * RF_ERR_NOMEM (at most two extra layer copies live at a time). */
RfStatus undo_proof_exact(const Layer *folded, const Layer *restored, const FoldPlan *fwd,
			  const FoldPlan *inv, const UndoStorage *storage, bool *exact);

#endif
