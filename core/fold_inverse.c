#include "config.h"

#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

#include "core/fold_inverse.h"
#include "core/procrustes.h"

RfStatus fold_identity_plan(size_t n_heads, size_t n_kv_heads, size_t head_dim,
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

RfStatus fold_invert_matrix(const double *R, size_t d, double *out)
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

RfStatus fold_inverse_plan(const FoldPlan *p, FoldPlan *inv)
{
	size_t H = p->n_heads, G = p->n_kv_heads, d = p->head_dim, dd = d * d;
	size_t hpg = H / G;
	RfStatus st = fold_identity_plan(H, G, d, inv);
	if (st != RF_OK)
		return st;
	inv->rotate_bias = p->rotate_bias;
	/* The folded layer's group g holds the original group perm[g]; the
	 * inverse plan reads the folded layer, so its group perm[g] comes
	 * from folded group g, undone by the inverse of that group's maps. */
	for (size_t g = 0; g < G && st == RF_OK; g++) {
		size_t og = p->perm[g];
		inv->perm[og] = g;
		st = fold_invert_matrix(p->rk + og * dd, d, inv->rk + g * dd);
		if (st == RF_OK)
			st = fold_invert_matrix(p->rv + og * dd, d, inv->rv + g * dd);
		for (size_t j = 0; j < hpg && st == RF_OK; j++) {
			size_t oh = og * hpg + j, h = g * hpg + j;
			st = fold_invert_matrix(p->rq + oh * dd, d, inv->rq + h * dd);
			if (st == RF_OK)
				st = fold_invert_matrix(p->ro + oh * dd, d, inv->ro + h * dd);
		}
	}
	if (st != RF_OK)
		fold_plan_free(inv);
	return st;
}
