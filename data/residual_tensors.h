#ifndef ROPEFOLD_DATA_RESIDUAL_TENSORS_H
#define ROPEFOLD_DATA_RESIDUAL_TENSORS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/residual.h"
#include "data/model.h"
#include "data/tensor.h"

/* Which tensor of a checkpoint sits on which side of the residual stream
 * (core/residual.h), found from the tensor names of its naming scheme;
 * what a residual rotation (R1) rewrites. A checkpoint it does not apply
 * to is refused with the reason: post-norms (OLMo2, Gemma 2/3 sandwich
 * norms), LayerNorm (GPT-NeoX), a tensor whose side it cannot tell. */

#define RES_MODEL_LEVEL ((size_t)-1)

/* One tensor of the plan. */
typedef struct {
	const TensorRef *t;
	ResRole role;
	const TensorRef *norm;    /* reader: the norm whose weight it fuses */
	size_t layer;             /* RES_MODEL_LEVEL: embeddings, final norm, head */
	size_t batch;             /* writer: blocks of D rows (experts stacked) */
	const TensorRef *src;     /* where its values are read, when not t
				   * itself: an untied head's, the embeddings */
	const char *part;         /* what it is in every naming scheme ("q",
				   * "down", "mlp_norm", "head", ...) */
	size_t expert;            /* its expert's index, or RES_NO_EXPERT */
} ResTensor;

#define RES_NO_EXPERT ((size_t)-1)

typedef struct {
	ResTensor *v;             /* every tensor on the stream, file order */
	size_t n;
	size_t D;                 /* width of the stream */
	bool plus_one;            /* norms apply (1 + w) (Gemma) */
	bool tied;                /* no head tensor: the head is the embedding */
	const TensorRef *embed;   /* the token embeddings */
	const TensorRef *final_norm;
} ResPlan;

/* Why a rotation of m's residual stream does not apply to its family (a
 * sentence naming it, into buf), or NULL when it does. */
const char *residual_family_refusal(const Model *m, char *buf, size_t len);

/* The plan of an open model. 0, or -1 with one line in err (the reason
 * the rotation does not apply). */
int residual_plan_build(const Model *m, ResPlan *out, char *err, size_t errlen);
/* The entry of p that is e's tensor in p's own naming scheme (the same
 * layer, part and expert: an HF checkpoint's against its GGUF), or NULL. */
const ResTensor *residual_plan_match(const ResPlan *p, const ResTensor *e);
/* The plan's entry for tensor t, or NULL. */
const ResTensor *residual_plan_find(const ResPlan *p, const TensorRef *t);
/* Release. */
void residual_plan_free(ResPlan *p);

#endif
