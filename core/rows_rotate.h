#ifndef ROPEFOLD_CORE_ROWS_ROTATE_H
#define ROPEFOLD_CORE_ROWS_ROTATE_H

#include <stddef.h>

#include "core/procrustes.h"

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

/* The residual of R in against B (d x n, leading dimension ldb) added to
 * acc, the very sums rel_diff_add takes of rows_rotate's product against
 * B: a row of two nonzeros (a commuting rotation's) is made and compared
 * in one pass and never stored (at 8B scale a third faster than storing
 * each row and reading it back); any other goes through scratch (d x n
 * doubles). verify's residuals are these. */
void rows_rotate_diff(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		      const double *B, size_t ldb, double *scratch, RelDiff *acc);
/* The same for the columns: the residual of cols_rotate's in R^T (n x d)
 * against B (n x d, ld ldb), to the bit (a commuting rotation's pair
 * loops compare as they go when d % 8 == 0; scratch: n x d doubles for
 * BLAS, 32 x d else). */
void cols_rotate_diff(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		      const double *B, size_t ldb, double *scratch, RelDiff *acc);

#endif
