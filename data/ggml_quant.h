#ifndef ROPEFOLD_DATA_GGML_QUANT_H
#define ROPEFOLD_DATA_GGML_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

/* ggml's block quantizations as GGUF stores them: the block layouts, the
 * dequantization ggml defines (ggml-common.h's block structs, ggml-quants.c's
 * dequantize_row_*), the quantizers llama.cpp's quantize tool runs without an
 * importance matrix (quantize_row_*_ref), and the rounding cell of every
 * stored value (what a tolerance can be derived from). Pure functions on
 * bytes: no I/O. Every weight is computed in float with ggml's operations in
 * ggml's order, one rounding per operation (this file is compiled as ISO C,
 * where GCC contracts no a*b+c into a fused multiply-add, and every product
 * that a sum follows is its own statement), so that the float equals ggml's
 * result bit for bit; widening it to double is exact. */

/* The types are core/dtype's block types (every StoreDtype that is not a
 * float: dtype_is_float false, STORE_UNSUPPORTED excluded), whose names,
 * block sizes and block bytes core/dtype.c holds; their GGUF ids are in
 * data/ggml_types.c. Every function below takes one of them. */

/* The largest block of any type: elements (the K-quants') and bytes
 * (Q8_K's). */
#define GQ_MAX_BLOCK 256
#define GQ_MAX_BYTES 292

/* NULL when every scale of the block is finite, else the name of the
 * first that is NaN or infinite ("d", "m", "dmin"), as ggml's
 * ggml_validate_row_data refuses them: such a block holds no numbers. */
const char *ggml_quant_bad_scale(StoreDtype q, const unsigned char *block);

/* nblocks stored blocks to nblocks * block floats, ggml's values exactly. */
void ggml_quant_dequantize(StoreDtype q, const unsigned char *blocks, size_t nblocks,
			   float *out);

/* Quantize nblocks * block finite floats into nblocks stored blocks as
 * llama.cpp's quantize does without an importance matrix (the _ref
 * quantizers; IQ4_NL: quantize_iq4_nl's search). Returns 0, or -1 when an
 * input is NaN, infinite or beyond the largest value the type stores, or a
 * block's scale overflows f16: nothing sensible to store. */
int ggml_quant_quantize(StoreDtype q, const float *x, size_t nblocks, unsigned char *out);

/* The rounding cell of each of the nblocks * block stored values v: the
 * inputs x with v - below <= x <= v + above are those the format's
 * round-to-nearest on the block's stored grid maps to v (an end of the
 * grid is open: below or above is INFINITY there, since inputs beyond it
 * are clipped to it), widened by what the reference quantizers add (see
 * the derivation per type in ggml_quant.c; for a K-quant sub-block whose
 * scale is 0 the cell is an estimate). The tests hold the inputs of
 * ggml_quant_quantize to their cells. */
void ggml_quant_cells(StoreDtype q, const unsigned char *blocks, size_t nblocks, double *below,
		      double *above);

/* The largest spacing between neighbouring values of the stored grids of
 * nblocks blocks (the step; round-to-nearest errs by half of it). */
double ggml_quant_max_step(StoreDtype q, const unsigned char *blocks, size_t nblocks);

/* The format's bound on each stored value's distance from the input it
 * stands for (half a step of its sub-block's grid, a whole step at the
 * grid's ends where the quantizers clamp, plus the f16 rounding of an f32
 * scale: the derivation is in ggml_quant.c), over nblocks blocks: the sum
 * of the squares is added to *sum_sq, the largest raises *max. */
void ggml_quant_bound(StoreDtype q, const unsigned char *blocks, size_t nblocks,
		      double *sum_sq, double *max);
/* The same bound of each value, into h (nblocks x the block's values). */
void ggml_quant_value_bounds(StoreDtype q, const unsigned char *blocks, size_t nblocks,
			     double *h);

/* IEEE half to float (exact), and float to the nearest half (ties to
 * even, overflow to infinity, NaN to a quiet NaN): ggml's conversions. */
float ggml_quant_f16_to_f32(uint16_t h);
uint16_t ggml_quant_f32_to_f16(float f);

#endif
