#ifndef ROPEFOLD_CORE_LAYOUT_PERM_H
#define ROPEFOLD_CORE_LAYOUT_PERM_H

#include <stddef.h>

#include "core/layer.h"
#include "core/status.h"

/* The Q/K row permutation of a format conversion (SPEC 1): in every block
 * of block_dim rows, pair i of the `from` layout (coordinates of
 * rope_pair_coords over rotary_dim) moves to pair i of the `to` layout;
 * rows >= rotary_dim stay. Fills src (n_blocks * block_dim): row r of the
 * converted tensor is row src[r] of the original. from == to is the
 * identity. HF-to-GGUF (llama.cpp's permute) is half -> interleaved. */
void layout_perm_rows(RopeLayout from, RopeLayout to, size_t n_blocks,
		      size_t block_dim, size_t rotary_dim, size_t *src);

/* out (rows x cols) = rows of in (rows x cols) picked by src. */
void layout_perm_apply(const size_t *src, size_t rows, size_t cols,
		       const double *in, double *out);

/* dst = src converted to layout `to`: Q rows (H heads) and K rows (G
 * heads), their biases and per-layer QK-norm weights permuted, the RoPE
 * layout relabelled; V and O untouched. The same model, exactly. */
RfStatus layout_convert(const Layer *src, RopeLayout to, Layer *dst);

/* The classic GQA mistake: K permuted as if it had H heads, i.e.
 * llama.cpp's permute(w_k, n_head) with n_head = H instead of G. dst is
 * src with only K's rows (and bias) moved that way from layout `from` to
 * the other one; the RoPE label is left alone. RF_ERR_ARG when the rows of
 * K do not split into H even blocks. */
RfStatus layout_convert_k_wrong_heads(const Layer *src, RopeLayout from,
				      Layer *dst);

/* The inverse of a row selection: inv[src[r]] = r. */
void layout_perm_invert(const size_t *src, size_t n, size_t *inv);

#endif
