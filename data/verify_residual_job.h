#ifndef ROPEFOLD_DATA_VERIFY_RESIDUAL_JOB_H
#define ROPEFOLD_DATA_VERIFY_RESIDUAL_JOB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"
#include "core/verify.h"
#include "core/verify_residual.h"
#include "data/model.h"
#include "data/residual_tensors.h"

/* verify's residual frame over two open checkpoints (core/verify_residual.h):
 * R1 from the embeddings before the layers, each layer's norms and MLP
 * checked and its attention brought into one frame for verify_layers, the
 * final norm and the head after them. Checkpoints whose tensors the
 * residual plan (data/residual_tensors.h) cannot place are not checked
 * (r.checked false): verify then judges the layers alone. */

typedef struct {
	VerifyResidual r;
	ResPlan pa, pb;
	size_t *rows;       /* nrows: the embedding (and head) rows compared */
	size_t nrows;
	double user_tol;    /* --tol (<= 0: from the dtypes) */
	pthread_mutex_t mu;  /* guards r while layers are judged in parallel */
	bool mu_init;
} VerifyResidualJob;

/* R1 from the embeddings; 0, or -1 with one line in err (a read failed). */
int verify_residual_begin(Model *ma, Model *mb, const VerifyOptions *vo,
			  VerifyResidualJob *j, char *err, size_t errlen);
/* Layer i (j->r.active only): its norms and MLP checked, then a and b
 * brought into one frame. Layers may be judged by several threads at once:
 * the lowest layer's break is kept. */
int verify_residual_layer(VerifyResidualJob *j, size_t i, Layer *a, Layer *b, char *err,
			  size_t errlen);
/* What verify_layers said about layer i's framed attention. */
void verify_residual_after_layer(VerifyResidualJob *j, size_t i, const VerifyVerdict *v);
/* The final norm and the head. */
int verify_residual_end(VerifyResidualJob *j, char *err, size_t errlen);
/* Release everything but what r holds by value (r.R is freed, set NULL). */
void verify_residual_job_free(VerifyResidualJob *j);

#endif
