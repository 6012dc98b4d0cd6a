#ifndef ROPEFOLD_DATA_FOLD_RESIDUAL_H
#define ROPEFOLD_DATA_FOLD_RESIDUAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/residual.h"
#include "data/model.h"
#include "data/residual_tensors.h"
#include "data/sidecar.h"
#include "data/tensor.h"
#include "data/writer.h"

/* The residual rotation of one fold or undo run (data/fold_job.c): R1,
 * the plan of which tensor takes which side, and the norm weights the
 * readers fuse (read from the checkpoint by a fold; from the sidecar by
 * an undo, whose checkpoint holds the norms at 1). */

typedef struct FoldResidual FoldResidual;

/* A fold's: kind and seed as given (undo NULL), or an undo's: as undo
 * records. 0, or -1 with one line in err (the reason R1 does not apply). */
int fold_residual_new(const Model *m, ResKind kind, uint64_t seed, const Sidecar *undo,
		      FoldResidual **out, char *err, size_t errlen);
void fold_residual_free(FoldResidual *fr);
/* The plan. */
const ResPlan *fold_residual_plan(const FoldResidual *fr);
/* The kind and seed of R1. */
ResKind fold_residual_kind(const FoldResidual *fr);
uint64_t fold_residual_seed(const FoldResidual *fr);
/* Apply R1 (fold) or its inverse (undo) to the values of plan entry e,
 * v (e->t->nelem doubles) in the tensor's stored layout. */
int fold_residual_transform(FoldResidual *fr, const ResTensor *e, double *v, char *err,
			    size_t errlen);
/* Whether e's rows of D may be rotated a part at a time (embeddings and
 * readers), and the same for n values (whole rows) of it. */
bool fold_residual_by_rows(const ResTensor *e);
int fold_residual_transform_part(FoldResidual *fr, const ResTensor *e, double *v, size_t n,
				 char *err, size_t errlen);
/* Untie a tied head (the head takes the final norm, the embeddings do
 * not): a new head tensor in w, of the embeddings' values and shape, as
 * dtype: safetensors' lm_head.weight with tie_word_embeddings false in
 * config.json; llama2.c's output.weight after the RoPE tables, with the
 * header's vocab size negative; GGUF's output.weight (a new tensor info).
 * A no-op when the head is not tied. */
int fold_residual_untie(FoldResidual *fr, Writer *w, ModelFormat format, StoreDtype dtype,
			char *err, size_t errlen);
/* Whether fold_residual_untie added a head. */
bool fold_residual_untied(const FoldResidual *fr);
/* The stored values of e's tensor read and transformed: *v allocated. */
int fold_residual_values(FoldResidual *fr, const ResTensor *e, double **v, char *err,
			 size_t errlen);

#endif
