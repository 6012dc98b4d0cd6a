#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/layout_perm.h"
#include "core/rope.h"

void layout_perm_rows(RopeLayout from, RopeLayout to, size_t n_blocks,
		      size_t block_dim, size_t rotary_dim, size_t *src)
{
	size_t r = rotary_dim < block_dim ? rotary_dim : block_dim;
	for (size_t b = 0; b < n_blocks; b++) {
		size_t *s = src + b * block_dim, base = b * block_dim;
		for (size_t i = 0; i < block_dim; i++)
			s[i] = base + i;
		for (size_t i = 0; i < r / 2; i++) {
			size_t fa, fb, ta, tb;
			rope_pair_coords(from, r, i, &fa, &fb);
			rope_pair_coords(to, r, i, &ta, &tb);
			s[ta] = base + fa;
			s[tb] = base + fb;
		}
	}
}

void layout_perm_apply(const size_t *src, size_t rows, size_t cols,
		       const double *in, double *out)
{
	for (size_t r = 0; r < rows; r++)
		memcpy(out + r * cols, in + src[r] * cols, cols * sizeof(double));
}

void layout_perm_invert(const size_t *src, size_t n, size_t *inv)
{
	for (size_t r = 0; r < n; r++)
		inv[src[r]] = r;
}

/* Permute the rows of a (rows x cols) tensor in place through a scratch
 * copy; a NULL tensor is left alone. */
static RfStatus permute_inplace(const size_t *src, size_t rows, size_t cols,
				double *t)
{
	if (!t)
		return RF_OK;
	double *tmp = malloc(rows * cols * sizeof(double));
	if (!tmp)
		return RF_ERR_NOMEM;
	layout_perm_apply(src, rows, cols, t, tmp);
	memcpy(t, tmp, rows * cols * sizeof(double));
	free(tmp);
	return RF_OK;
}

RfStatus layout_convert(const Layer *src, RopeLayout to, Layer *dst)
{
	size_t D = src->shape.d_model, H = src->shape.n_heads;
	size_t G = src->shape.n_kv_heads, d = src->shape.head_dim;
	RfStatus st = layer_copy(dst, src);
	if (st != RF_OK)
		return st;
	size_t *pq = malloc(H * d * sizeof(size_t));
	size_t *pk = malloc(G * d * sizeof(size_t));
	if (!pq || !pk) {
		st = RF_ERR_NOMEM;
		goto out;
	}
	RopeLayout from = src->rope.layout;
	size_t r = src->rope.rotary_dim;
	layout_perm_rows(from, to, H, d, r, pq);
	layout_perm_rows(from, to, G, d, r, pk);
	st = permute_inplace(pq, H * d, D, dst->wq);
	if (st == RF_OK)
		st = permute_inplace(pk, G * d, D, dst->wk);
	if (st == RF_OK)
		st = permute_inplace(pq, H * d, 1, dst->bq);
	if (st == RF_OK)
		st = permute_inplace(pk, G * d, 1, dst->bk);
	/* QK-norm weights index head coordinates: they move with the rows
	 * (per-head weights once, per-layer weights per head). */
	if (st == RF_OK)
		st = permute_inplace(pq, src->qk_norm_per_head ? d : H * d, 1,
				     dst->q_norm);
	if (st == RF_OK)
		st = permute_inplace(pk, src->qk_norm_per_head ? d : G * d, 1,
				     dst->k_norm);
	dst->rope.layout = to;
out:
	free(pq);
	free(pk);
	if (st != RF_OK)
		layer_free(dst);
	return st;
}

RfStatus layout_convert_k_wrong_heads(const Layer *src, RopeLayout from,
				      Layer *dst)
{
	size_t D = src->shape.d_model, H = src->shape.n_heads;
	size_t G = src->shape.n_kv_heads, d = src->shape.head_dim;
	size_t rows = G * d;
	if (rows % H || (rows / H) % 2)
		return RF_ERR_ARG;
	size_t blk = rows / H;
	RfStatus st = layer_copy(dst, src);
	if (st != RF_OK)
		return st;
	size_t *pk = malloc(rows * sizeof(size_t));
	if (!pk) {
		layer_free(dst);
		return RF_ERR_NOMEM;
	}
	RopeLayout to = from == ROPE_HALF ? ROPE_INTERLEAVED : ROPE_HALF;
	/* llama.cpp permutes whole blocks, rotary or not. */
	layout_perm_rows(from, to, H, blk, blk, pk);
	st = permute_inplace(pk, rows, D, dst->wk);
	if (st == RF_OK)
		st = permute_inplace(pk, rows, 1, dst->bk);
	free(pk);
	if (st != RF_OK)
		layer_free(dst);
	return st;
}
