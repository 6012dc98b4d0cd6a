#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/fold_residual.h"

struct FoldResidual {
	ResPlan plan;
	ResKind kind;
	uint64_t seed;
	double *R;               /* D x D, row-major */
	const Sidecar *undo;     /* the undone sidecar (its norms), or NULL */
	double *w, *stored;      /* D each: scratch for a norm's weights */
};

int fold_residual_new(const Model *m, ResKind kind, uint64_t seed, const Sidecar *undo,
		      FoldResidual **out, char *err, size_t errlen)
{
	*out = NULL;
	FoldResidual *fr = calloc(1, sizeof *fr);
	if (!fr) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fr->kind = kind;
	fr->seed = seed;
	fr->undo = undo;
	if (residual_plan_build(m, &fr->plan, err, errlen)) {
		free(fr);
		return -1;
	}
	size_t D = fr->plan.D;
	fr->R = malloc(D * D * sizeof(double));
	fr->w = malloc(D * sizeof(double));
	fr->stored = malloc(D * sizeof(double));
	if (!fr->R || !fr->w || !fr->stored) {
		snprintf(err, errlen, "out of memory");
		fold_residual_free(fr);
		return -1;
	}
	RfStatus st = residual_rotation(kind, D, seed, fr->R);
	if (st != RF_OK) {
		snprintf(err, errlen, "--residual %s: %s", residual_kind_name(kind),
			 rf_status_str(st));
		fold_residual_free(fr);
		return -1;
	}
	*out = fr;
	return 0;
}

void fold_residual_free(FoldResidual *fr)
{
	if (!fr)
		return;
	residual_plan_free(&fr->plan);
	free(fr->R);
	free(fr->w);
	free(fr->stored);
	free(fr);
}

const ResPlan *fold_residual_plan(const FoldResidual *fr)
{
	return &fr->plan;
}

ResKind fold_residual_kind(const FoldResidual *fr)
{
	return fr->kind;
}

uint64_t fold_residual_seed(const FoldResidual *fr)
{
	return fr->seed;
}

/* The stored values of norm t before any fold: from the checkpoint (a
 * fold), from the sidecar (an undo) into fr->stored. */
static int norm_stored(FoldResidual *fr, const TensorRef *t, char *err, size_t errlen)
{
	size_t D = fr->plan.D;
	if (!fr->undo)
		return tensor_read(t, 0, D, fr->stored, err, errlen);
	if (sidecar_norm_values(fr->undo, t->name, fr->stored, D)) {
		snprintf(err, errlen, "the sidecar records no %zu values of norm %s, which the "
			 "fold fused", D, t->name);
		return -1;
	}
	return 0;
}

int fold_residual_transform(FoldResidual *fr, const ResTensor *e, double *v, char *err,
			    size_t errlen)
{
	size_t D = fr->plan.D;
	const double *w = NULL;
	if (e->role == RES_ROLE_READER || (e->role == RES_ROLE_NORM && fr->undo)) {
		const TensorRef *nt = e->role == RES_ROLE_NORM ? e->t : e->norm;
		if (norm_stored(fr, nt, err, errlen))
			return -1;
		if (e->role == RES_ROLE_READER) {
			residual_fused_weight(fr->stored, D, fr->plan.plus_one, fr->w);
			w = fr->w;
		} else {
			w = fr->stored;
		}
	}
	RfStatus st = fr->undo ? residual_unapply(e->role, fr->R, D, e->batch, w, v, e->t->nelem)
			       : residual_apply(e->role, fr->R, D, e->batch, w,
						residual_norm_one(fr->plan.plus_one), v,
						e->t->nelem);
	if (st != RF_OK) {
		snprintf(err, errlen, "%s: tensor %s: %s%s", e->t->file, e->t->name,
			 rf_status_str(st), st == RF_ERR_NUMERIC ? " (a fused norm weight of 0 "
			 "cannot be divided out)" : "");
		return -1;
	}
	return 0;
}

int fold_residual_values(FoldResidual *fr, const ResTensor *e, double **v, char *err,
			 size_t errlen)
{
	*v = malloc(e->t->nelem * sizeof(double));
	if (!*v) {
		snprintf(err, errlen, "%s: out of memory", e->t->name);
		return -1;
	}
	if (tensor_read(e->t, 0, e->t->nelem, *v, err, errlen) ||
	    fold_residual_transform(fr, e, *v, err, errlen)) {
		free(*v);
		*v = NULL;
		return -1;
	}
	return 0;
}
