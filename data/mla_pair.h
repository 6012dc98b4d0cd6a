#ifndef ROPEFOLD_DATA_MLA_PAIR_H
#define ROPEFOLD_DATA_MLA_PAIR_H

#include <stddef.h>

#include "core/layer.h"
#include "core/verify.h"
#include "data/model.h"

/* A pair of checkpoints of which one at least is DeepSeek MLA
 * (model_mla), as verify (data/verify_job.c) and compare mode
 * (data/compare_job.c) both judge it, so that they reach the same verdict
 * on the same layer. */

/* The options layer i of MLA models ma and mb is judged at (vo: tol as
 * given, finite): the coarser of the two models' stored dtypes' unit
 * roundoff and of the rewritten tensors' of both layers (a split kv_b may
 * be stored finer or coarser than kv_a; block types add their half step
 * and set quant_types). 0, or -1 with one line in err. */
int mla_pair_options(Model *ma, Model *mb, size_t i, double tol, VerifyOptions *vo, char *err,
		     size_t errlen);

/* The verdict on two valid checkpoints, one MLA and one not: not a fold,
 * their shapes differ (v filled, at tol and the coarser stored dtype's
 * roundoff: verify_verdict_free it; hdr A's shape and RoPE, no weights). */
void mla_pair_shape_verdict(const ModelInfo *ia, const ModelInfo *ib, double tol,
			    VerifyVerdict *v, Layer *hdr);

#endif
