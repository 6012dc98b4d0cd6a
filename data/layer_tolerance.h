#ifndef ROPEFOLD_DATA_LAYER_TOLERANCE_H
#define ROPEFOLD_DATA_LAYER_TOLERANCE_H

#include <stddef.h>

#include "core/verify.h"
#include "data/model.h"
#include "data/sidecar.h"

/* The tolerance a layer of A and the same layer of B are judged at, from
 * the stored dtypes of their tensors (SPEC 4.4): the coarser float's unit
 * roundoff, each part's block-quantization bound (data/quant_bound.h), A's
 * and B's added, per tensor and per kv group, and the bound a fold's
 * sidecar records for a side that is a fold of a quantized model. verify
 * (data/verify_job.c) and compare mode (data/compare_job.c) both judge
 * with it, so that they reach the same verdict on the same pair.
 *
 * Call sequence: layer_tolerance_open once for the pair, then
 * layer_tolerance_layer for each layer (any order, any thread: it only
 * reads), then layer_tolerance_done. */

/* What the pair's derivation needs beyond the models: their fold
 * sidecars. */
typedef struct {
	Model *m[2];            /* A, B (borrowed) */
	Sidecar *sc[2];         /* A's and B's fold sidecars, or NULL */
} LayerTolerance;

/* Set t up for the checkpoints at paths a and b, open as ma and mb: a
 * sidecar (path.fold.json, or fold.json in a folder) that loads for the
 * model's shape is kept; none, or one that does not load, is no error. */
void layer_tolerance_open(LayerTolerance *t, const char *a, Model *ma, const char *b,
			  Model *mb);
/* Release what open kept. */
void layer_tolerance_done(LayerTolerance *t);

/* Layer i's tolerances into vo (its unit_roundoff, quant, quant_frob,
 * quant_types and quant_group; tol and finite untouched): a layer none of
 * whose tensors is a float keeps float64's roundoff. *qg (allocated here,
 * free() it once verify_layers has returned, also after an error) holds
 * the per kv group bounds vo->quant_group points to. 0, or -1 with one
 * line in err naming the layer or tensor. */
int layer_tolerance_layer(const LayerTolerance *t, size_t i, VerifyOptions *vo, double **qg,
			  char *err, size_t errlen);

#endif
