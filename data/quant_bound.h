#ifndef ROPEFOLD_DATA_QUANT_BOUND_H
#define ROPEFOLD_DATA_QUANT_BOUND_H

#include <stdbool.h>
#include <stddef.h>

#include "core/dtype.h"
#include "data/tensor.h"

/* How far a stored tensor may be from the weights it was quantized from,
 * derived from its format and its own stored scales (SPEC 4.4): each
 * value's bound is ggml_quant_bound's (half a step of its sub-block's grid,
 * a whole step where the quantizers clamp), summed over the tensor. verify
 * tolerates a block-quantized tensor at this bound, fold reports the error
 * it adds against it. A float tensor has no quantization error (its
 * rounding is the dtype's unit roundoff). */
typedef struct {
	StoreDtype dtype;
	bool quantized;        /* a block quantization (else every bound is 0) */
	double frob;           /* sqrt(sum of the squared bounds): ||x - w||_F <= frob */
	double max;            /* the largest single bound: max |x - w| <= max */
	double norm;           /* ||w||_F of the stored values */
	double amax;           /* max |w| */
	double rel;            /* max(frob / norm, max / amax): relative, in the
				* measure verify compares tensors by */
	double rel_frob;       /* frob / norm */
} QuantBound;

/* The bound of tensor t (reads its stored bytes). 0, or -1 with one line
 * in err. */
int quant_bound_tensor(const TensorRef *t, QuantBound *out, char *err, size_t errlen);
/* The same of n stored values of type dt held in memory (bytes: their
 * blocks; values: the n values they decode to). */
void quant_bound_blocks(StoreDtype dt, const unsigned char *bytes, const double *values,
			size_t n, QuantBound *out);
/* The bound of tensor t (2-D, block-quantized) per group: its rows (or,
 * by_cols, its columns) split into ngroups equal runs, each group's
 * relative bound (rel above) over its own values, into rel (ngroups; 0
 * for a float tensor), from each value's own bound. verify judges each kv group at its own blocks' steps, so that
 * one group's large steps do not loosen another's. 0, or -1 with one line
 * in err. */
int quant_bound_groups(const TensorRef *t, size_t ngroups, bool by_cols, double *rel,
		       char *err, size_t errlen);

#endif
