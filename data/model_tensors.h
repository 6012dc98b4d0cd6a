#ifndef ROPEFOLD_DATA_MODEL_TENSORS_H
#define ROPEFOLD_DATA_MODEL_TENSORS_H

#include <stddef.h>

#include "core/layer.h"
#include "data/families.h"
#include "data/model.h"
#include "data/tensor.h"

/* Where a layer's attention tensors live, and how the values of a loaded
 * Layer map back onto their stored layout: what the writers need to put a
 * folded layer back into the file it came from.
 *
 * The readers never move rows: Q/K rows stay in the order the file holds
 * them (a GGUF from HF's converter is interleaved, and the reader reports
 * the interleaved RoPE layout), so a fold computed in the reported layout
 * is stored back row for row. The only mapping is the fused QKV split,
 * undone by model_tensor_pack(). */

/* The attention tensors of one layer a fold rewrites or reads. */
typedef enum {
	ATT_Q = 0, ATT_K, ATT_V, ATT_QKV, ATT_O,
	ATT_BQ, ATT_BK, ATT_BV, ATT_BQKV, ATT_BO,
	ATT_COUNT
} AttnTensor;

typedef struct {
	const TensorRef *t[ATT_COUNT];   /* NULL when the layer has none */
	QkvKind qkv_kind;                /* how q, k, v are stored */
	const TensorRef *q_norm, *k_norm;  /* QK-norm weights, or NULL */
	bool qk_norm_all_heads;          /* q_norm H*d, k_norm G*d (OLMo2):
					  * they move when a fold reorders the
					  * kv groups; per head (d, Qwen3) not */
} LayerTensorRefs;

/* The reader's tensor table, resolved family and the path it was opened
 * from (defined in model.c). */
const TensorTable *model_tensor_table(const Model *m);
const Family *model_family(const Model *m);
const char *model_path(const Model *m);

/* The attention tensors of layer i (model_open found and shape-checked
 * those of every layer; a missing one is named in err all the same). */
int model_layer_tensors(const Model *m, size_t i, LayerTensorRefs *out, char *err,
			size_t errlen);

/* True when a fold changes tensor a (q/k/v weights and biases, W_o; b_o
 * and the norms stay). */
bool model_tensor_folded(AttnTensor a);

/* The stored values of tensor a of layer l in the file's layout (the
 * inverse of what model_load_layer did), nelem doubles into out:
 * fused [q; k; v] rows, GPT-NeoX per head [q_h; k_h; v_h]. Returns -1 when
 * the layer lacks the tensor. */
int model_tensor_pack(const Layer *l, QkvKind kind, AttnTensor a, double *out);

/* The stored values of a QK-norm weight over all heads, t (q_norm: H*d,
 * hpg = H/G; k_norm: G*d, hpg = 1), with its heads in the order a fold
 * with kv-group permutation perm (G entries, FoldPlan's: folded group g
 * holds original group perm[g]) gives them: out (t->nelem) slot
 * (g*hpg + j) = stored slot (perm[g]*hpg + j), head_dim values each. The
 * values are read as the file stores them (w - 1 for a Gemma-style "+1"
 * norm included), so the reorder is exact in any convention. */
int model_norm_permute(const TensorRef *t, size_t hpg, size_t head_dim, size_t n_groups,
		       const size_t *perm, double *out, char *err, size_t errlen);

/* Short names: "W_q", "W_qkv", "b_k", ... */
const char *model_tensor_label(AttnTensor a);

#endif
