#include "config.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/commutant.h"
#include "core/plan_ops.h"
#include "core/procrustes.h"

RfStatus plan_identity(size_t n_heads, size_t n_kv_heads, size_t head_dim,
		       FoldPlan *p)
{
	size_t H = n_heads, G = n_kv_heads, d = head_dim, dd = d * d;
	memset(p, 0, sizeof *p);
	p->n_heads = H;
	p->n_kv_heads = G;
	p->head_dim = d;
	p->rotate_bias = true;
	p->rq = calloc(H * dd, sizeof(double));
	p->rk = calloc(G * dd, sizeof(double));
	p->rv = calloc(G * dd, sizeof(double));
	p->ro = calloc(H * dd, sizeof(double));
	p->perm = malloc(G * sizeof(size_t));
	if (!p->rq || !p->rk || !p->rv || !p->ro || !p->perm) {
		fold_plan_free(p);
		return RF_ERR_NOMEM;
	}
	for (size_t i = 0; i < d; i++) {
		for (size_t h = 0; h < H; h++) {
			p->rq[h * dd + i * d + i] = 1.0;
			p->ro[h * dd + i * d + i] = 1.0;
		}
		for (size_t g = 0; g < G; g++) {
			p->rk[g * dd + i * d + i] = 1.0;
			p->rv[g * dd + i * d + i] = 1.0;
		}
	}
	for (size_t g = 0; g < G; g++)
		p->perm[g] = g;
	return RF_OK;
}

/* out = R^-1: the transpose when R is orthogonal, else through LU. */
static RfStatus invert(const double *R, size_t d, double *out)
{
	for (size_t i = 0; i < d; i++)
		for (size_t j = 0; j < d; j++)
			out[i * d + j] = R[j * d + i];
	if (procrustes_ortho_defect(R, d) <= 1e-12 * (double)d)
		return RF_OK;
	memcpy(out, R, d * d * sizeof(double));
	lapack_int *ipiv = malloc(d * sizeof(lapack_int));
	if (!ipiv)
		return RF_ERR_NOMEM;
	lapack_int n = (lapack_int)d;
	lapack_int info = LAPACKE_dgetrf(LAPACK_ROW_MAJOR, n, n, out, n, ipiv);
	if (info == 0)
		info = LAPACKE_dgetri(LAPACK_ROW_MAJOR, n, out, n, ipiv);
	free(ipiv);
	return info == 0 ? RF_OK : RF_ERR_NUMERIC;
}

RfStatus plan_inverse(const FoldPlan *p, FoldPlan *inv)
{
	size_t H = p->n_heads, G = p->n_kv_heads, d = p->head_dim, dd = d * d;
	size_t hpg = H / G;
	RfStatus st = plan_identity(H, G, d, inv);
	if (st != RF_OK)
		return st;
	inv->rotate_bias = p->rotate_bias;
	/* The folded layer's group g holds the original group perm[g]; the
	 * inverse plan reads the folded layer, so its group perm[g] comes
	 * from folded group g, undone by the inverse of that group's maps. */
	for (size_t g = 0; g < G && st == RF_OK; g++) {
		size_t og = p->perm[g];
		inv->perm[og] = g;
		st = invert(p->rk + og * dd, d, inv->rk + g * dd);
		if (st == RF_OK)
			st = invert(p->rv + og * dd, d, inv->rv + g * dd);
		for (size_t j = 0; j < hpg && st == RF_OK; j++) {
			size_t oh = og * hpg + j, h = g * hpg + j;
			st = invert(p->rq + oh * dd, d, inv->rq + h * dd);
			if (st == RF_OK)
				st = invert(p->ro + oh * dd, d, inv->ro + h * dd);
		}
	}
	if (st != RF_OK)
		fold_plan_free(inv);
	return st;
}

void plan_desc_free(RotationDesc *desc)
{
	free(desc->angles);
	free(desc->tail);
	free(desc->matrix);
	memset(desc, 0, sizeof *desc);
}

void plan_build_rotation(const RotationDesc *desc, const RopeSpec *rope,
			 size_t d, double *R)
{
	if (desc->commuting)
		commutant_build(rope, d, desc->angles, desc->tail, R);
	else
		memcpy(R, desc->matrix, d * d * sizeof(double));
}

RfStatus plan_describe_rotation(const double *R, const RopeSpec *rope,
				size_t d, double tol, RotationDesc *out)
{
	size_t r = rope->rotary_dim, np = r / 2, m = d - r;
	memset(out, 0, sizeof *out);
	out->angles = calloc(np ? np : 1, sizeof(double));
	out->tail = m ? malloc(m * m * sizeof(double)) : NULL;
	double *Rb = malloc(d * d * sizeof(double));
	if (!out->angles || (m && !out->tail) || !Rb) {
		free(Rb);
		plan_desc_free(out);
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
