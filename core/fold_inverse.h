#ifndef ROPEFOLD_CORE_FOLD_INVERSE_H
#define ROPEFOLD_CORE_FOLD_INVERSE_H

#include <stddef.h>

#include "core/fold.h"
#include "core/status.h"

/* Undoing a fold: the plan whose fold_apply takes a folded layer back. */

/* The plan that undoes p: fold_apply(fold_apply(A, p), inverse) == A up
 * to roundoff. Rotations are transposed (inverted when not orthogonal)
 * and the group permutation inverted. Bit for bit only when the folded
 * weights were kept at a precision well above the original's (e.g. a
 * bf16 original folded into f32, then rounded back to bf16: see
 * core/undo_proof.h). */
RfStatus fold_inverse_plan(const FoldPlan *p, FoldPlan *inv);

/* out (d x d) = R^-1: the transpose when R is orthogonal, else through
 * LU (RF_ERR_NUMERIC when singular). */
RfStatus fold_invert_matrix(const double *R, size_t d, double *out);

/* A plan with every rotation the identity and no permutation. */
RfStatus fold_identity_plan(size_t n_heads, size_t n_kv_heads, size_t head_dim,
			    FoldPlan *p);

#endif
