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

/* The loops below go eight values at a time, a constant trip count the
 * vectorizer takes at -O2, and have an AVX2 clone chosen at load time
 * where the CPU has it (GCC's function multiversioning); scalar code
 * made the sums half of what they replaced at 8B scale. */
enum { ROW_CHUNK = 8 };
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define ROWS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ROWS_CLONES
#endif

/* o[0..n) = x[0..n) y + z[0..n) w: two scaled rows added. */
ROWS_CLONES
static void two_rows(const double *x, double y, const double *z, double w, size_t n, double *o)
{
	size_t c = 0;
	for (; c + ROW_CHUNK <= n; c += ROW_CHUNK)
		for (size_t k = 0; k < ROW_CHUNK; k++)
			o[c + k] = y * x[c + k] + w * z[c + k];
	for (; c < n; c++)
		o[c] = y * x[c] + w * z[c];
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
		two_rows(a[0], v[0], a[1], v[1], n, o);
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

/* The partner of coordinate j in RoPE's pairing: j + d/2 mod d (the half
 * layout) or j ^ 1 (interleaved). */
static size_t partner(size_t j, size_t d, bool half)
{
	return half ? (j + d / 2) % d : j ^ 1;
}

/* o[j] = dg[j] x[j] + off[j] x[j + s] for j < m (one half of a row). */
static inline void pair_half(const double *dg, const double *off, const double *x,
			     const double *xs, size_t m, double *o)
{
	size_t j = 0;
	for (; j + ROW_CHUNK <= m; j += ROW_CHUNK)
		for (size_t k = 0; k < ROW_CHUNK; k++)
			o[j + k] = dg[j + k] * x[j + k] + off[j + k] * xs[j + k];
	for (; j < m; j++)
		o[j] = dg[j] * x[j] + off[j] * xs[j];
}

/* The pair loops of pairs_cols over every row r < n. */
ROWS_CLONES
static void pairs_cols_apply(const double *dg, const double *off, size_t d, bool half,
			     const double *in, size_t ldi, size_t n, double *out, size_t ldo)
{
	size_t h = d / 2;
	for (size_t r = 0; r < n; r++) {
		const double *x = in + r * ldi;
		double *o = out + r * ldo;
		if (half) {
			pair_half(dg, off, x, x + h, h, o);
			pair_half(dg + h, off + h, x + h, x, h, o + h);
		} else {
			for (size_t j = 0; j < d; j += 2) {
				o[j] = dg[j] * x[j] + off[j] * x[j + 1];
				o[j + 1] = dg[j + 1] * x[j + 1] + off[j + 1] * x[j];
			}
		}
	}
}

/* cols_rotate for an R whose every row j holds nonzeros only at j and at
 * j's partner in one layout's pairing (a rotation commuting with RoPE):
 * out[r][j] = R[j][j] in[r][j] + R[j][p(j)] in[r][p(j)], loops over
 * contiguous coordinates that vectorize, where the general sums gather.
 * False (nothing written) for any other R. */
static bool pairs_cols(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		       double *out, size_t ldo)
{
	double dg[D_MAX], off[D_MAX];
	bool half = true;
	for (int pass = 0; pass < 2; pass++, half = false) {
		bool fits = true;
		for (size_t j = 0; j < d && fits; j++) {
			size_t p = partner(j, d, half);
			for (size_t k = 0; k < d && fits; k++)
				fits = R[j * d + k] == 0 || k == j || k == p;
			dg[j] = R[j * d + j];
			off[j] = R[j * d + p];
		}
		if (!fits)
			continue;
		pairs_cols_apply(dg, off, d, half, in, ldi, n, out, ldo);
		return true;
	}
	return false;
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
	if (d % 2 == 0 && pairs_cols(R, d, in, ldi, n, out, ldo))
		return;
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
