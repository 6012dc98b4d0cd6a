#ifndef ROPEFOLD_CORE_PLAN_OPS_H
#define ROPEFOLD_CORE_PLAN_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/fold.h"
#include "core/layer.h"
#include "core/status.h"

/* The plan that undoes p: fold_apply(fold_apply(A, p), inverse) == A up
 * to roundoff. Rotations are transposed (inverted when not orthogonal)
 * and the group permutation inverted. Bit for bit only when the folded
 * weights were kept at a precision well above the original's (e.g. a
 * bf16 original folded into f32, then rounded back to bf16). */
RfStatus plan_inverse(const FoldPlan *p, FoldPlan *inv);

/* A plan with every rotation the identity and no permutation. */
RfStatus plan_identity(size_t n_heads, size_t n_kv_heads, size_t head_dim,
		       FoldPlan *p);

/* A rotation as a sidecar records it: commuting ones as pair angles plus
 * the non-rotary block, others as the full matrix. */
typedef struct {
	bool commuting;
	double *angles;  /* r/2 (commuting) */
	double *tail;    /* (d-r) x (d-r) (commuting, d > r), else NULL */
	double *matrix;  /* d x d (not commuting), else NULL */
} RotationDesc;

/* Describe R (d x d) under rope: commuting when R equals the rotation its
 * pair angles and non-rotary block rebuild, to within tol (max entry). */
RfStatus plan_describe_rotation(const double *R, const RopeSpec *rope,
				size_t d, double tol, RotationDesc *out);
/* Rebuild R (d x d) from a description. */
void plan_build_rotation(const RotationDesc *desc, const RopeSpec *rope,
			 size_t d, double *R);
/* Release a description. */
void plan_desc_free(RotationDesc *desc);

#endif
