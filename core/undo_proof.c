#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/undo_proof.h"

/* A copy of a plan with every rotation entry replaced by its magnitude:
 * folding a non-negative layer with it gives |R| x, the bound on how a
 * fold spreads errors x. */
static RfStatus plan_abs(const FoldPlan *p, FoldPlan *out)
{
	size_t H = p->n_heads, G = p->n_kv_heads, dd = p->head_dim * p->head_dim;
	*out = *p;
	out->rq = malloc(H * dd * sizeof(double));
	out->rk = malloc(G * dd * sizeof(double));
	out->rv = malloc(G * dd * sizeof(double));
	out->ro = malloc(H * dd * sizeof(double));
	out->perm = malloc(G * sizeof(size_t));
	if (!out->rq || !out->rk || !out->rv || !out->ro || !out->perm) {
		fold_plan_free(out);
		return RF_ERR_NOMEM;
	}
	for (size_t i = 0; i < H * dd; i++) {
		out->rq[i] = fabs(p->rq[i]);
		out->ro[i] = fabs(p->ro[i]);
	}
	for (size_t i = 0; i < G * dd; i++) {
		out->rk[i] = fabs(p->rk[i]);
		out->rv[i] = fabs(p->rv[i]);
	}
	memcpy(out->perm, p->perm, G * sizeof(size_t));
	return RF_OK;
}

/* The rewritten arrays of a layer (UndoArray order, NULL when absent)
 * and their lengths. */
static void folded_arrays(const Layer *l, double *arr[UNDO_ARRAYS], size_t len[UNDO_ARRAYS])
{
	const LayerShape *s = &l->shape;
	size_t D = s->d_model, Hd = s->n_heads * s->head_dim, Gd = s->n_kv_heads * s->head_dim;
	double *a[UNDO_ARRAYS] = {l->wq, l->wk, l->wv, l->wo, l->bq, l->bk, l->bv};
	size_t n[UNDO_ARRAYS] = {Hd * D, Gd * D, Gd * D, D * Hd, Hd, Gd, Gd};
	for (int i = 0; i < UNDO_ARRAYS; i++) {
		arr[i] = a[i];
		len[i] = a[i] ? n[i] : 0;
	}
}

/* Whether rounding v to t provably stores the one value of t within b. */
static bool rounds_home(StoreDtype t, double v, double b)
{
	double g = v, up, dn;
	dtype_round(t, &g, 1);
	double bj = b * (1 + 1e-6), dx = v - g;
	dtype_gaps(t, g, &up, &dn);
	return isfinite(g) && isfinite(bj) && fabs(dx) <= bj && up - dx > bj && dn + dx > bj;
}

RfStatus undo_proof_exact(const Layer *folded, const Layer *restored, const FoldPlan *fwd,
			  const FoldPlan *inv, const UndoStorage *storage, bool *exact)
{
	*exact = false;
	double *arr[UNDO_ARRAYS], *farr[UNDO_ARRAYS];
	size_t len[UNDO_ARRAYS];
	/* the coarsest folded dtype bounds the folded values' rounding */
	StoreDtype tout = STORE_F64;
	folded_arrays(folded, arr, len);
	for (int i = 0; i < UNDO_ARRAYS; i++) {
		if (!arr[i])
			continue;
		if (!dtype_is_float(storage->folded[i]) || !dtype_is_float(storage->restored[i]))
			return RF_OK;
		if (dtype_unit_roundoff(storage->folded[i]) > dtype_unit_roundoff(tout))
			tout = storage->folded[i];
	}
	FoldPlan absf, absi;
	Layer vabs, rv, e, bound;
	memset(&absf, 0, sizeof absf);
	memset(&absi, 0, sizeof absi);
	memset(&vabs, 0, sizeof vabs);
	memset(&rv, 0, sizeof rv);
	memset(&e, 0, sizeof e);
	memset(&bound, 0, sizeof bound);
	RfStatus st = RF_ERR_NOMEM;
	/* (each layer copy is freed once used: at most two live at a time) */
	if (plan_abs(fwd, &absf) || plan_abs(inv, &absi) || layer_copy(&vabs, restored) != RF_OK)
		goto out;
	folded_arrays(&vabs, arr, len);
	for (int i = 0; i < UNDO_ARRAYS; i++)
		for (size_t j = 0; j < len[i]; j++)
			arr[i][j] = fabs(arr[i][j]);
	/* |R| |v|: what the fold's float64 products summed (|o| ~ |v|) */
	if (fold_apply(&vabs, &absf, &rv) != RF_OK)
		goto out;
	layer_free(&vabs);
	if (layer_copy(&e, folded) != RF_OK)
		goto out;
	/* a dot product of d terms is off by d u of its absolute terms; twice
	 * that, and twice |R| |v| for |R| |o| */
	double gam = 2.0 * (double)(folded->shape.head_dim + 2) * ldexp(1.0, -53);
	folded_arrays(&e, arr, len);
	folded_arrays(&rv, farr, len);
	for (int i = 0; i < UNDO_ARRAYS; i++)
		for (size_t j = 0; j < len[i]; j++) {
			double f = arr[i][j], up, dn;
			dtype_gaps(tout, f, &up, &dn);
			arr[i][j] = (up > dn ? up : dn) / 2 + gam * (2 * farr[i][j] + fabs(f));
		}
	layer_free(&rv);
	if (fold_apply(&e, &absi, &bound) != RF_OK)
		goto out;
	layer_free(&e);
	double *varr[UNDO_ARRAYS];
	folded_arrays(restored, varr, len);
	folded_arrays(&bound, arr, len);
	bool ok = true;
	for (int i = 0; i < UNDO_ARRAYS && ok; i++)
		for (size_t j = 0; j < len[i] && ok; j++)
			ok = rounds_home(storage->restored[i], varr[i][j], arr[i][j]);
	*exact = ok;
	st = RF_OK;
out:
	fold_plan_free(&absf);
	fold_plan_free(&absi);
	layer_free(&vabs);
	layer_free(&rv);
	layer_free(&e);
	layer_free(&bound);
	return st;
}
