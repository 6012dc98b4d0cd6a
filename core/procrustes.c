#include "config.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/clones.h"
#include "core/procrustes.h"

/* R = U V^T from the SVD of the d x d matrix M (destroyed). */
static RfStatus polar_factor(double *M, size_t d, double *R)
{
	double *s = malloc(d * sizeof(double));
	double *U = malloc(d * d * sizeof(double));
	double *VT = malloc(d * d * sizeof(double));
	RfStatus st = RF_OK;
	if (!s || !U || !VT) {
		st = RF_ERR_NOMEM;
		goto out;
	}
	lapack_int n = (lapack_int)d;
	if (LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'A', n, n, M, n, s, U, n, VT, n)) {
		st = RF_ERR_LAPACK;
		goto out;
	}
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, U,
		    n, VT, n, 0.0, R, n);
out:
	free(s);
	free(U);
	free(VT);
	return st;
}

static bool all_finite(const double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return false;
	return true;
}

RfStatus procrustes_rotation(const double *A, size_t lda, const double *B,
			     size_t ldb, size_t d, size_t n, double *R)
{
	double *M = malloc(d * d * sizeof(double));
	if (!M)
		return RF_ERR_NOMEM;
	/* M = B A^T (d x d). */
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)d,
		    (int)n, 1.0, B, (int)ldb, A, (int)lda, 0.0, M, (int)d);
	RfStatus st = all_finite(M, d * d) ? polar_factor(M, d, R) : RF_ERR_NUMERIC;
	free(M);
	return st;
}

RfStatus procrustes_rotation_cols(const double *A, size_t lda,
				  const double *B, size_t ldb, size_t n,
				  size_t d, double *R)
{
	double *M = malloc(d * d * sizeof(double));
	if (!M)
		return RF_ERR_NOMEM;
	/* ||A R^T - B|| = ||R A^T - B^T||: M = B^T A (d x d). */
	cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d,
		    (int)n, 1.0, B, (int)ldb, A, (int)lda, 0.0, M, (int)d);
	RfStatus st = all_finite(M, d * d) ? polar_factor(M, d, R) : RF_ERR_NUMERIC;
	free(M);
	return st;
}

RfStatus procrustes_least_squares(const double *A, size_t lda,
				  const double *B, size_t ldb, size_t d,
				  size_t n, double *M)
{
	double *Gm = malloc(d * d * sizeof(double));
	lapack_int *ipiv = malloc(d * sizeof(lapack_int));
	if (!Gm || !ipiv) {
		free(Gm);
		free(ipiv);
		return RF_ERR_NOMEM;
	}
	/* Gm = A A^T (symmetric); solve Gm X = A B^T, then M = X^T. */
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)d,
		    (int)n, 1.0, A, (int)lda, A, (int)lda, 0.0, Gm, (int)d);
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)d,
		    (int)n, 1.0, A, (int)lda, B, (int)ldb, 0.0, M, (int)d);
	RfStatus st = RF_OK;
	if (!all_finite(Gm, d * d) || !all_finite(M, d * d))
		st = RF_ERR_NUMERIC;
	else if (LAPACKE_dgesv(LAPACK_ROW_MAJOR, (lapack_int)d, (lapack_int)d,
			       Gm, (lapack_int)d, ipiv, M, (lapack_int)d))
		st = RF_ERR_NUMERIC;
	if (st == RF_OK)
		for (size_t i = 0; i < d; i++)
			for (size_t j = i + 1; j < d; j++) {
				double t = M[i * d + j];
				M[i * d + j] = M[j * d + i];
				M[j * d + i] = t;
			}
	free(Gm);
	free(ipiv);
	return st;
}

/* Four independent lanes (REL_LANES) of sums and maxima per row, so that
 * the loop vectorises and pipelines; a NaN anywhere reaches the sum of
 * squares and is reported once at the end. The four lanes fill one AVX2
 * register: that clone took verify's share here from 2.7 to 2.0 CPU-s
 * on the 8B pair (the baseline's SSE2 holds two). */
void rel_diff_start(RelDiff *r)
{
	memset(r, 0, sizeof *r);
}

HOT_CLONES
void rel_diff_add(RelDiff *r, const double *X, size_t ldx, const double *Y, size_t ldy,
		  size_t rows, size_t cols)
{
	/* the lanes in a local copy, kept in registers by the loops */
	RelDiff l = *r;
	double *dnl = l.dn, *ynl = l.yn, *dml = l.dm, *yml = l.ym;
	for (size_t i = 0; i < rows; i++) {
		const double *x = X + i * ldx, *y = Y + i * ldy;
		size_t j = 0;
		for (; j + REL_LANES <= cols; j += REL_LANES)
			for (size_t k = 0; k < REL_LANES; k++)
				rel_diff_step(dnl + k, ynl + k, dml + k, yml + k, x[j + k], y[j + k]);
		for (; j < cols; j++)
			rel_diff_step(dnl, ynl, dml, yml, x[j], y[j]);
	}
	*r = l;
}

HOT_CLONES
void rel_diff_add_pair(RelDiff *r, const double *x, double a, const double *z, double b,
		       const double *y, size_t cols)
{
	/* the lanes in a local copy, kept in registers by the loops */
	RelDiff l = *r;
	double *dnl = l.dn, *ynl = l.yn, *dml = l.dm, *yml = l.ym;
	size_t j = 0;
	for (; j + REL_LANES <= cols; j += REL_LANES)
		for (size_t k = 0; k < REL_LANES; k++)
			rel_diff_step(dnl + k, ynl + k, dml + k, yml + k,
				      a * x[j + k] + b * z[j + k], y[j + k]);
	for (; j < cols; j++)
		rel_diff_step(dnl, ynl, dml, yml, a * x[j] + b * z[j], y[j]);
	*r = l;
}

double rel_diff_result(const RelDiff *r)
{
	double dn = 0, yn = 0, dm = 0, ym = 0;
	for (size_t k = 0; k < REL_LANES; k++) {
		dn += r->dn[k];
		yn += r->yn[k];
		dm = r->dm[k] > dm ? r->dm[k] : dm;
		ym = r->ym[k] > ym ? r->ym[k] : ym;
	}
	if (dn != dn)
		return INFINITY;
	if (dn == 0)
		return 0;
	if (yn == 0)
		return INFINITY;
	double fr = sqrt(dn / yn), mr = dm / ym;
	return fr > mr ? fr : mr;
}

double procrustes_rel_diff(const double *X, size_t ldx, const double *Y,
			   size_t ldy, size_t rows, size_t cols)
{
	RelDiff r;
	rel_diff_start(&r);
	rel_diff_add(&r, X, ldx, Y, ldy, rows, cols);
	return rel_diff_result(&r);
}

double procrustes_ortho_defect(const double *R, size_t d)
{
	/* G = R^T R (d x d, upper triangle) by BLAS: the triple loop it
	 * replaces read R by columns and was 13% of a whole-model undo,
	 * which checks 80 head rotations a layer */
	if (d == 0)
		return 0;
	double *G = malloc(d * d * sizeof(double));
	if (!G)
		return INFINITY;
	cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)d, 1.0, R, (int)d,
		    0.0, G, (int)d);
	double s = 0;
	for (size_t i = 0; i < d; i++) {
		double v = G[i * d + i] - 1.0;
		s += v * v;
		for (size_t j = i + 1; j < d; j++)
			s += 2.0 * G[i * d + j] * G[i * d + j];
	}
	free(G);
	return sqrt(s);
}
