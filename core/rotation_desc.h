#ifndef ROPEFOLD_CORE_ROTATION_DESC_H
#define ROPEFOLD_CORE_ROTATION_DESC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"
#include "core/status.h"

/* A rotation as a sidecar records it: one that commutes with RoPE as its
 * pair angles plus the block on the non-rotary coordinates, any other as
 * the full matrix. */
typedef struct {
	bool commuting;
	double *angles;  /* r/2 (commuting) */
	double *tail;    /* (d-r) x (d-r) (commuting, d > r), else NULL */
	double *matrix;  /* d x d (not commuting), else NULL */
} RotationDesc;

/* Describe R (d x d) under rope: commuting when R equals the rotation its
 * pair angles and non-rotary block rebuild, to within tol (max entry). */
RfStatus rotation_describe(const double *R, const RopeSpec *rope, size_t d, double tol,
			   RotationDesc *out);
/* Rebuild R (d x d) from a description. */
void rotation_rebuild(const RotationDesc *desc, const RopeSpec *rope, size_t d, double *R);
/* Release a description. */
void rotation_desc_free(RotationDesc *desc);

#endif
