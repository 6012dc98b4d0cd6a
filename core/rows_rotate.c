#include "config.h"

#include <cblas.h>
#include <stdbool.h>
#include <string.h>

#include "core/clones.h"
#include "core/rows_rotate.h"

/* Nonzeros a row of R may have for the sums; d is a head dim (at most a
 * few hundred), so the table fits the stack. */
enum { ROWS_SPARSE = 4, D_MAX = 512 };

/* R's nonzeros, row by row: row i's cnt[i] columns and values. */
typedef struct {
	size_t col[D_MAX][ROWS_SPARSE], cnt[D_MAX];
	double val[D_MAX][ROWS_SPARSE];
} SparseRows;

/* R (d x d) into s; false when d is beyond D_MAX or a row has more than
 * ROWS_SPARSE nonzeros (then BLAS multiplies). */
static bool sparse_rows(const double *R, size_t d, SparseRows *s)
{
	if (d > D_MAX)
		return false;
	for (size_t i = 0; i < d; i++) {
		size_t c = 0;
		for (size_t j = 0; j < d; j++) {
			double r = R[i * d + j];
			if (r == 0)
				continue;
			if (c == ROWS_SPARSE)
				return false;
			s->col[i][c] = j;
			s->val[i][c] = r;
			c++;
		}
		s->cnt[i] = c;
	}
	return true;
}

/* The loops below go eight values at a time, a constant trip count the
 * vectorizer takes at -O2, with an AVX2 clone (core/clones.h); scalar
 * code made the sums half of what they replaced at 8B scale. */
enum { ROW_CHUNK = 8 };

/* o[0..n) = x[0..n) y + z[0..n) w: two scaled rows added. */
HOT_CLONES
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

/* Row i of R in (in: d x n, leading dimension ldi) into o[0..n), by s. */
static void sparse_row(const SparseRows *s, size_t i, const double *in, size_t ldi, size_t n,
		       double *o)
{
	const double *a[ROWS_SPARSE];
	for (size_t k = 0; k < s->cnt[i]; k++)
		a[k] = in + s->col[i][k] * ldi;
	scaled_sum(a, s->val[i], s->cnt[i], n, o);
}

void rows_rotate(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		 double *out, size_t ldo)
{
	SparseRows s;
	if (!sparse_rows(R, d, &s)) {
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)n, (int)d,
			    1.0, R, (int)d, in, (int)ldi, 0.0, out, (int)ldo);
		return;
	}
	for (size_t i = 0; i < d; i++)
		sparse_row(&s, i, in, ldi, n, out + i * ldo);
}

void rows_rotate_diff(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		      const double *B, size_t ldb, double *scratch, RelDiff *acc)
{
	SparseRows s;
	if (!sparse_rows(R, d, &s)) {
		rows_rotate(R, d, in, ldi, n, scratch, n);
		rel_diff_add(acc, scratch, n, B, ldb, d, n);
		return;
	}
	for (size_t i = 0; i < d; i++) {
		if (s.cnt[i] == 2) {
			rel_diff_add_pair(acc, in + s.col[i][0] * ldi, s.val[i][0],
					  in + s.col[i][1] * ldi, s.val[i][1], B + i * ldb, n);
			continue;
		}
		sparse_row(&s, i, in, ldi, n, scratch);
		rel_diff_add(acc, scratch, n, B + i * ldb, ldb, 1, n);
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
HOT_CLONES
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

/* How cols_rotate turns by an R: BLAS, the pair loops (dg, off in the
 * half or interleaved layout) or the general sums over s. */
typedef struct {
	enum { COLS_BLAS, COLS_PAIRS, COLS_SUMS } how;
	SparseRows s;
	double dg[D_MAX], off[D_MAX];
	bool half;
} ColsPlan;

/* The pair loops suit an R whose every row j holds nonzeros only at j and
 * at j's partner in one layout's pairing (a rotation commuting with
 * RoPE): out[r][j] = R[j][j] in[r][j] + R[j][p(j)] in[r][p(j)], loops over
 * contiguous coordinates that vectorize, where the general sums gather. */
static void cols_plan(const double *R, size_t d, ColsPlan *p)
{
	p->how = COLS_BLAS;
	if (!sparse_rows(R, d, &p->s))
		return;
	p->how = COLS_SUMS;
	if (d % 2)
		return;
	bool half = true;
	for (int pass = 0; pass < 2; pass++, half = false) {
		bool fits = true;
		for (size_t j = 0; j < d && fits; j++) {
			size_t q = partner(j, d, half);
			p->dg[j] = p->off[j] = 0;
			for (size_t k = 0; k < p->s.cnt[j] && fits; k++) {
				size_t c = p->s.col[j][k];
				if (c == j)
					p->dg[j] = p->s.val[j][k];
				else if (c == q)
					p->off[j] = p->s.val[j][k];
				else
					fits = false;
			}
		}
		if (fits) {
			p->how = COLS_PAIRS;
			p->half = half;
			return;
		}
	}
}

/* Rows [0, n) of in R^T into out by plan p. */
static void cols_apply(const ColsPlan *p, const double *R, size_t d, const double *in,
		       size_t ldi, size_t n, double *out, size_t ldo)
{
	if (p->how == COLS_BLAS) {
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)d, (int)d,
			    1.0, in, (int)ldi, R, (int)d, 0.0, out, (int)ldo);
		return;
	}
	if (p->how == COLS_PAIRS) {
		pairs_cols_apply(p->dg, p->off, d, p->half, in, ldi, n, out, ldo);
		return;
	}
	/* out[r][j] = the sum over R's row j's nonzeros of R[j][k] in[r][k] */
	const SparseRows *s = &p->s;
	for (size_t r = 0; r < n; r++) {
		const double *x = in + r * ldi;
		double *o = out + r * ldo;
		for (size_t j = 0; j < d; j++) {
			double sum = 0;
			if (s->cnt[j])
				sum = s->val[j][0] * x[s->col[j][0]];
			for (size_t k = 1; k < s->cnt[j]; k++)
				sum += s->val[j][k] * x[s->col[j][k]];
			o[j] = sum;
		}
	}
}

void cols_rotate(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		 double *out, size_t ldo)
{
	ColsPlan p;
	cols_plan(R, d, &p);
	cols_apply(&p, R, d, in, ldi, n, out, ldo);
}

/* The pair loops' rows [0, n) compared with B's (ld ldb) into acc, lane
 * by lane as rel_diff_add takes each row of d (d % 8 == 0: in the half
 * layout each half is whole chunks of the lanes, so chunk j's values
 * come from x[j..] and x[j+-h..] alike). */
HOT_CLONES
static void pairs_cols_diff(const double *dg, const double *off, size_t d, bool half,
			    const double *in, size_t ldi, size_t n, const double *B, size_t ldb,
			    RelDiff *acc)
{
	/* the lanes in a local copy, kept in registers by the loops */
	RelDiff l = *acc;
	double *dnl = l.dn, *ynl = l.yn, *dml = l.dm, *yml = l.ym;
	size_t h = d / 2;
	for (size_t r = 0; r < n; r++) {
		const double *x = in + r * ldi, *y = B + r * ldb;
		if (half) {
			/* the first half's partners are h on, the second's h back */
			for (size_t j = 0; j < d; j += REL_LANES) {
				const double *xs = j < h ? x + h : x - h;
				for (size_t k = 0; k < REL_LANES; k++)
					rel_diff_step(dnl + k, ynl + k, dml + k, yml + k,
						      dg[j + k] * x[j + k] + off[j + k] * xs[j + k],
						      y[j + k]);
			}
		} else {
			for (size_t j = 0; j < d; j += REL_LANES)
				for (size_t k = 0; k < REL_LANES; k++)
					rel_diff_step(dnl + k, ynl + k, dml + k, yml + k,
						      dg[j + k] * x[j + k] +
							      off[j + k] * x[(j + k) ^ 1],
						      y[j + k]);
		}
	}
	*acc = l;
}

void cols_rotate_diff(const double *R, size_t d, const double *in, size_t ldi, size_t n,
		      const double *B, size_t ldb, double *scratch, RelDiff *acc)
{
	ColsPlan p;
	cols_plan(R, d, &p);
	if (p.how == COLS_PAIRS && d % 8 == 0) {
		pairs_cols_diff(p.dg, p.off, d, p.half, in, ldi, n, B, ldb, acc);
		return;
	}
	if (p.how == COLS_BLAS) {
		cols_apply(&p, R, d, in, ldi, n, scratch, d);
		rel_diff_add(acc, scratch, d, B, ldb, n, d);
		return;
	}
	enum { BLOCK = 32 };
	for (size_t r = 0; r < n; r += BLOCK) {
		size_t m = n - r < BLOCK ? n - r : BLOCK;
		cols_apply(&p, R, d, in + r * ldi, ldi, m, scratch, d);
		rel_diff_add(acc, scratch, d, B + r * ldb, ldb, m, d);
	}
}
