#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>

#include "core/procrustes.h"
#include "core/rows_rotate.h"
#include "core/verify_impl.h"

/* The helpers every file of verify uses: the shape test, the residuals of
 * one comparison, and recording its first break. */

bool verify_same_shape(const LayerShape *x, const LayerShape *y)
{
	return x->d_model == y->d_model && x->n_heads == y->n_heads &&
	       x->n_kv_heads == y->n_kv_heads && x->head_dim == y->head_dim;
}

double verify_frob_diff(const double *A, const double *B, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (A[i] - B[i]) * (A[i] - B[i]);
	return sqrt(s);
}

Finding verify_finding(FindingCode code, LevelId level, size_t group,
		       size_t head, const char *tensor, double err)
{
	Finding f = finding_make(code);
	f.level = level;
	f.group = group;
	f.head = head;
	snprintf(f.tensor, sizeof f.tensor, "%s", tensor);
	f.err = err;
	return f;
}

void verify_break(VerifyVerdict *v, VerifyWhy why, const Finding *f)
{
	if (v->why != VERIFY_WHY_NONE)
		return;
	v->why = why;
	v->brk = *f;
}

double verify_rows_err(const VerifyCtx *c, const double *R, const double *A,
		       const double *B)
{
	RelDiff acc;
	rel_diff_start(&acc);
	rows_rotate_diff(R, c->d, A, c->D, c->D, B, c->D, c->work, &acc);
	return rel_diff_result(&acc);
}

double verify_cols_err(const VerifyCtx *c, const double *R, const double *A,
		       const double *B)
{
	size_t Hd = c->H * c->d;
	RelDiff acc;
	rel_diff_start(&acc);
	cols_rotate_diff(R, c->d, A, Hd, c->D, B, Hd, c->work, &acc);
	return rel_diff_result(&acc);
}

/* rel diff of R a against b for d-vectors. */
static double vec_err(const VerifyCtx *c, const double *R, const double *a,
		      const double *b)
{
	double *y = c->work;
	cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)c->d, (int)c->d, 1.0, R,
		    (int)c->d, a, 1, 0.0, y, 1);
	return procrustes_rel_diff(y, c->d, b, c->d, 1, c->d);
}

void verify_note_direct(VerifyCtx *c, double e, double tol)
{
	if (e / tol > c->direct)
		c->direct = e / tol;
}

double verify_direct(VerifyCtx *c, const double *A, size_t lda, const double *B,
		     size_t ldb, size_t rows, size_t cols, double tol)
{
	if (c->direct > 1)
		return -1;
	double e = procrustes_rel_diff(A, lda, B, ldb, rows, cols);
	verify_note_direct(c, e, tol);
	return e;
}

double verify_bias_err(VerifyCtx *c, const double *R, const double *a,
		       const double *b, double tol, bool *left)
{
	double plain = procrustes_rel_diff(a, c->d, b, c->d, 1, c->d);
	verify_note_direct(c, plain, tol);
	*left = plain <= tol;
	return vec_err(c, R, a, b);
}

void verify_note_err(VerifyCtx *c, double e)
{
	if (e > c->v->max_err)
		c->v->max_err = e;
}

int verify_classify_rows(VerifyCtx *c, const double *A, const double *B,
			 double tol, RfStatus *st)
{
	*st = procrustes_rotation(A, c->D, B, c->D, c->d, c->D, c->R2);
	if (*st == RF_OK && verify_rows_err(c, c->R2, A, B) <= tol)
		return 0;
	*st = procrustes_least_squares(A, c->D, B, c->D, c->d, c->D, c->R2);
	if (*st == RF_ERR_NUMERIC) {
		*st = RF_OK;
		return 2;
	}
	if (*st == RF_OK && verify_rows_err(c, c->R2, A, B) <= tol)
		return 1;
	return 2;
}
