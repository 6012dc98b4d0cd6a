#include "config.h"

#include <cblas.h>
#include <stdbool.h>

#include "core/rows_rotate.h"

/* Nonzeros a row of R may have for the sums. */
enum { ROWS_SPARSE = 4 };

/* Each row's nonzeros (column and value) into col and val (d x
 * ROWS_SPARSE) and their count into cnt (d); false when a row has more. */
static bool sparse_rows(const double *R, size_t d, size_t *col, double *val, size_t *cnt)
{
	for (size_t i = 0; i < d; i++) {
		size_t c = 0;
		for (size_t j = 0; j < d; j++) {
			double r = R[i * d + j];
			if (r == 0)
				continue;
			if (c == ROWS_SPARSE)
				return false;
			col[i * ROWS_SPARSE + c] = j;
			val[i * ROWS_SPARSE + c] = r;
			c++;
		}
		cnt[i] = c;
	}
	return true;
}

/* o[0..n) = the sum of v[k] a[k][0..n) over k < m. */
static void scaled_sum(const double *const *a, const double *v, size_t m, size_t n, double *o)
{
	switch (m) {
	case 0:
		for (size_t c = 0; c < n; c++)
			o[c] = 0;
		return;
	case 1:
		for (size_t c = 0; c < n; c++)
			o[c] = v[0] * a[0][c];
		return;
	case 2:
		for (size_t c = 0; c < n; c++)
			o[c] = v[0] * a[0][c] + v[1] * a[1][c];
		return;
	default:
		for (size_t c = 0; c < n; c++) {
			double s = v[0] * a[0][c];
			for (size_t k = 1; k < m; k++)
				s += v[k] * a[k][c];
			o[c] = s;
		}
		return;
	}
}

/* d is a head dim (at most a few hundred): the tables fit the stack */
enum { D_MAX = 512 };

void rows_rotate(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		 double *out, size_t ldo)
{
	size_t col[D_MAX * ROWS_SPARSE], cnt[D_MAX];
	double val[D_MAX * ROWS_SPARSE];
	if (d > D_MAX || !sparse_rows(R, d, col, val, cnt)) {
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)n, (int)d,
			    1.0, R, (int)d, in, (int)ldi, 0.0, out, (int)ldo);
		return;
	}
	for (size_t i = 0; i < d; i++) {
		const double *a[ROWS_SPARSE];
		for (size_t k = 0; k < cnt[i]; k++)
			a[k] = in + col[i * ROWS_SPARSE + k] * ldi;
		scaled_sum(a, val + i * ROWS_SPARSE, cnt[i], n, out + i * ldo);
	}
}

void cols_rotate(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		 double *out, size_t ldo)
{
	size_t col[D_MAX * ROWS_SPARSE], cnt[D_MAX];
	double val[D_MAX * ROWS_SPARSE];
	if (d > D_MAX || !sparse_rows(R, d, col, val, cnt)) {
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)d, (int)d,
			    1.0, in, (int)ldi, R, (int)d, 0.0, out, (int)ldo);
		return;
	}
	/* out[r][j] = the sum over R's row j's nonzeros of R[j][k] in[r][k] */
	for (size_t r = 0; r < n; r++) {
		const double *x = in + r * ldi;
		double *o = out + r * ldo;
		for (size_t j = 0; j < d; j++) {
			const size_t *c = col + j * ROWS_SPARSE;
			const double *v = val + j * ROWS_SPARSE;
			double s = 0;
			if (cnt[j])
				s = v[0] * x[c[0]];
			for (size_t k = 1; k < cnt[j]; k++)
				s += v[k] * x[c[k]];
			o[j] = s;
		}
	}
}
