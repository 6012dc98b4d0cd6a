#ifndef ROPEFOLD_CORE_PROCRUSTES_H
#define ROPEFOLD_CORE_PROCRUSTES_H

#include <math.h>
#include <stddef.h>

#include "core/status.h"

/* Orthogonal Procrustes: the orthogonal R (d x d) minimising
 * ||R A - B||_F for A, B of d rows and n columns (row-major, leading
 * dimensions lda, ldb): R = U V^T from the SVD B A^T = U S V^T. */
RfStatus procrustes_rotation(const double *A, size_t lda, const double *B,
			     size_t ldb, size_t d, size_t n, double *R);

/* Least squares: the general M (d x d) minimising ||M A - B||_F, i.e.
 * M = B A^T (A A^T)^-1 (RF_ERR_NUMERIC when A A^T is singular). */
RfStatus procrustes_least_squares(const double *A, size_t lda,
				  const double *B, size_t ldb, size_t d,
				  size_t n, double *M);

/* The same fits for column blocks: R minimising ||A R^T - B|| for A, B of
 * n rows and d columns (W_o column blocks). */
RfStatus procrustes_rotation_cols(const double *A, size_t lda,
				  const double *B, size_t ldb, size_t n,
				  size_t d, double *R);

/* Relative difference of X (rows x cols, ldx) against reference Y (ldy):
 * the larger of ||X - Y||_F / ||Y||_F and max|X - Y| / max|Y|. Zero when
 * equal; huge when Y is zero and X is not. */
double procrustes_rel_diff(const double *X, size_t ldx, const double *Y,
			   size_t ldy, size_t rows, size_t cols);

/* The same over rows given a block at a time (a product made row by row
 * and compared while in cache, never stored whole): start, add the
 * blocks in row order, then the result, the very value procrustes_rel_diff
 * gives on all the rows at once. */
#define REL_LANES 4
typedef struct {
	double dn[REL_LANES], yn[REL_LANES], dm[REL_LANES], ym[REL_LANES];
} RelDiff;
/* One value x against its reference y into lane sums dn, yn and maxima
 * dm, ym: the step every RelDiff loop takes. */
static inline void rel_diff_step(double *dn, double *yn, double *dm, double *ym, double x,
				 double y)
{
	double e = x - y, ae = fabs(e), ay = fabs(y);
	*dn += e * e;
	*yn += y * y;
	*dm = ae > *dm ? ae : *dm;
	*ym = ay > *ym ? ay : *ym;
}
void rel_diff_start(RelDiff *r);
void rel_diff_add(RelDiff *r, const double *X, size_t ldx, const double *Y, size_t ldy,
		  size_t rows, size_t cols);
double rel_diff_result(const RelDiff *r);
/* One row a x + b z (cols values; x, z, y rows of cols) compared with y,
 * added to r exactly as rel_diff_add adds that row made first: the row of
 * a rotation by pairs (two nonzeros) is never stored. */
void rel_diff_add_pair(RelDiff *r, const double *x, double a, const double *z, double b,
		       const double *y, size_t cols);

/* ||R^T R - I||_F of a d x d matrix. */
double procrustes_ortho_defect(const double *R, size_t d);

#endif
