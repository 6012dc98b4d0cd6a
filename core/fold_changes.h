#ifndef ROPEFOLD_CORE_FOLD_CHANGES_H
#define ROPEFOLD_CORE_FOLD_CHANGES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/fold.h"
#include "core/layer.h"
#include "core/status.h"

/* Folding into a persistent layer, block by block: a toggle that changes
 * only some rotations refolds only the blocks they touch. The result is
 * the layer fold_apply() builds, without copying the whole layer. */

/* Which blocks of the folded layer differ from the previous fold, indexed
 * by the folded layer's heads. */
typedef struct {
	size_t n_heads, n_kv_heads;
	bool *q;      /* H: rows (and bias, QK-norm slice) of query head h */
	bool *k;      /* G: rows of kv head g of W_k */
	bool *v;      /* G: rows of kv head g of W_v */
	bool *o;      /* H: column block h of W_o */
	bool any;
} FoldChanges;

/* Allocate the flags for a shape, all set (everything changed). */
RfStatus fold_changes_init(FoldChanges *c, size_t n_heads, size_t n_kv_heads);
/* Release the flags. */
void fold_changes_done(FoldChanges *c);
/* Set every flag. */
void fold_changes_all(FoldChanges *c);
/* Flag the blocks where plan differs from prev (prev NULL: all). */
void fold_changes_diff(FoldChanges *c, const Layer *src, const FoldPlan *plan,
		       const FoldPlan *prev);

/* Allocate dst with src's shape and tensors in session memory, copying
 * the tensors a fold never changes (b_o, norms). Release with
 * refold_layer_free(). */
RfStatus refold_layer_alloc(Layer *dst, const Layer *src);
/* Release a layer of refold_layer_alloc(). */
void refold_layer_free(Layer *dst);

/* Fold the flagged blocks of src by plan into dst, on nworkers threads. */
RfStatus refold_apply(const Layer *src, const FoldPlan *plan,
		      const FoldChanges *c, Layer *dst, size_t nworkers);

/* Floating-point operations of refolding the flagged blocks. */
double refold_flops(const Layer *src, const FoldChanges *c);

#endif
