#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/commutant.h"
#include "core/rotation_desc.h"

void rotation_desc_free(RotationDesc *desc)
{
	free(desc->angles);
	free(desc->tail);
	free(desc->matrix);
	memset(desc, 0, sizeof *desc);
}

void rotation_rebuild(const RotationDesc *desc, const RopeSpec *rope, size_t d, double *R)
{
	if (desc->commuting)
		commutant_build(rope, d, desc->angles, desc->tail, R);
	else
		memcpy(R, desc->matrix, d * d * sizeof(double));
}

RfStatus rotation_describe(const double *R, const RopeSpec *rope, size_t d, double tol,
			   RotationDesc *out)
{
	size_t r = rope->rotary_dim, np = r / 2, m = d - r;
	memset(out, 0, sizeof *out);
	out->angles = calloc(np ? np : 1, sizeof(double));
	out->tail = m ? malloc(m * m * sizeof(double)) : NULL;
	double *Rb = malloc(d * d * sizeof(double));
	if (!out->angles || (m && !out->tail) || !Rb) {
		free(Rb);
		rotation_desc_free(out);
		return RF_ERR_NOMEM;
	}
	commutant_angles(R, rope, d, out->angles);
	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < m; j++)
			out->tail[i * m + j] = R[(r + i) * d + r + j];
	out->commuting = true;
	commutant_build(rope, d, out->angles, out->tail, Rb);
	for (size_t i = 0; i < d * d; i++)
		if (!(fabs(Rb[i] - R[i]) <= tol))
			out->commuting = false;
	free(Rb);
	if (out->commuting)
		return RF_OK;
	free(out->angles);
	free(out->tail);
	out->angles = out->tail = NULL;
	out->matrix = malloc(d * d * sizeof(double));
	if (!out->matrix)
		return RF_ERR_NOMEM;
	memcpy(out->matrix, R, d * d * sizeof(double));
	return RF_OK;
}
