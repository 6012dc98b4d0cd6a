#ifndef ROPEFOLD_CORE_FWHT_H
#define ROPEFOLD_CORE_FWHT_H

#include <stdbool.h>
#include <stddef.h>

/* The fast Walsh-Hadamard transform: a normalised Sylvester Hadamard S_p
 * (S[i][j] = (-1)^popcount(i & j) / sqrt(p), p a power of two; symmetric,
 * S S = I) applied in p log p operations instead of a p x p product. It
 * applies the Hadamards ropefold draws (core/rotation.c, core/residual.c:
 * Sylvester on the largest power of two p dividing n, Kronecker with the
 * identity on the odd rest m = n / p) to rows of width n (QuaRot's
 * online R4 at Llama widths: 14336 = 7 * 2048, 11008 = 43 * 256), which a
 * dense n x n matrix would make too large to build. */

/* Which side of the Kronecker product the Sylvester factor sits on. */
typedef enum {
	FWHT_INNER = 0,   /* I_m (x) S_p: S_p on each contiguous block of p */
	FWHT_OUTER        /* S_p (x) I_m: S_p across the m interleaved strides */
} FwhtForm;


/* The power of two dividing n (its largest). */
size_t fwht_pow2_part(size_t n);

/* v[0], v[stride], ..., v[(p - 1) * stride] become S_p times them (p a
 * power of two). */
void fwht_strided(double *v, size_t p, size_t stride);

/* Every row of X (rows x n, row-major) becomes row H, H the Kronecker
 * Hadamard of form f for n (H symmetric, so also H times the row). */
void fwht_kron_rows(double *X, size_t rows, size_t n, FwhtForm f);

/* The same with the Sylvester factor of p (a power of two dividing n), the
 * identity of n / p: I (x) S_p (inner) or S_p (x) I (outer). */
void fwht_blocks(double *X, size_t rows, size_t n, size_t p, FwhtForm f);

#endif
