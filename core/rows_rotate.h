#ifndef ROPEFOLD_CORE_ROWS_ROTATE_H
#define ROPEFOLD_CORE_ROWS_ROTATE_H

#include <stddef.h>

/* out (d x n, leading dimension ldo) = R (d x d, row-major) in (d x n,
 * leading dimension ldi): the product fold and verify take of every
 * head's weight rows. A rotation that commutes with RoPE is 2 x 2 blocks
 * on the pairs, two nonzeros a row: for an R whose rows have at most four,
 * each output row is that many scaled input rows added, which reads the
 * block once instead of multiplying by its zeros (d = 128: 64 times fewer
 * flops, and memory-bound); any other R goes to BLAS. The same values up
 * to the last bit of the sums' rounding. */
void rows_rotate(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		 double *out, size_t ldo);
/* The columns' turn: out (n x d, leading dimension ldo) = in (n x d,
 * leading dimension ldi) R^T, as W_o's head block absorbs R (each output
 * column the sum of R's row's few nonzeros times their input columns, or
 * BLAS). */
void cols_rotate(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		 double *out, size_t ldo);

/* The same products handed over as they are made, never stored whole:
 * sink gets rows [first, first + m) of the product, each of cols values,
 * at block (leading dimension ld), in row order. scratch holds d x n
 * (rows_rotate_each) or n x d (cols_rotate_each) doubles; the sums use a
 * row or a few of it, so what the sink reads is still in cache (verify
 * compares R A against B so, and the product's round trip through memory
 * goes). The rows are rows_rotate's and cols_rotate's to the bit. */
typedef void (*RowsSink)(void *ctx, size_t first, size_t m, size_t cols, const double *block,
			 size_t ld);
void rows_rotate_each(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		      double *scratch, RowsSink sink, void *ctx);
void cols_rotate_each(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		      double *scratch, RowsSink sink, void *ctx);

#endif
