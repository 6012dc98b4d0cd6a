#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "core/fwht.h"
#include "core/procrustes.h"
#include "core/verify_residual.h"

RfStatus verify_residual_fit(const double *EA, const double *EB, size_t n, size_t D,
			     double *R, double *err)
{
	RfStatus st = procrustes_rotation_cols(EA, D, EB, D, n, D, R);
	if (st != RF_OK)
		return st;
	/* P = EA R^T (n x D) */
	double *P = malloc(n * D * sizeof(double));
	if (!P)
		return RF_ERR_NOMEM;
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)D, (int)D, 1.0, EA,
		    (int)D, R, (int)D, 0.0, P, (int)D);
	*err = procrustes_rel_diff(P, D, EB, D, n, D);
	free(P);
	return RF_OK;
}

bool verify_residual_is_hadamard(const double *M, size_t d, double tol)
{
	double c = 0;
	for (size_t i = 0; i < d * d; i++)
		c = fabs(M[i]) > c ? fabs(M[i]) : c;
	if (c <= 0)
		return false;
	size_t per_row = 0;
	for (size_t i = 0; i < d; i++) {
		size_t nz = 0;
		for (size_t j = 0; j < d; j++) {
			double a = fabs(M[i * d + j]);
			if (a > tol * c && fabs(a - c) > tol * c)
				return false;
			nz += a > tol * c;
		}
		if (i == 0)
			per_row = nz;
		else if (nz != per_row)
			return false;
	}
	/* a permutation (one nonzero per row) is not a Hadamard */
	return per_row > 1;
}

RfStatus verify_residual_extra_cols(const double *X, const double *Y, size_t rows,
				    size_t cols, double *M, double *err)
{
	RfStatus st = procrustes_rotation_cols(X, cols, Y, cols, rows, cols, M);
	if (st != RF_OK)
		return st;
	/* P = X M^T (rows x cols) */
	double *P = malloc(rows * cols * sizeof(double));
	if (!P)
		return RF_ERR_NOMEM;
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)cols,
		    1.0, X, (int)cols, M, (int)cols, 0.0, P, (int)cols);
	*err = procrustes_rel_diff(P, cols, Y, cols, rows, cols);
	free(P);
	return RF_OK;
}

/* Whether P D_s = Q (rows x cols) for column signs s, relative tol; the
 * relative error left in *err. Row by row (the rows are long: Llama's
 * down_proj is 4096 x 14336), sign[] of cols scratch. */
static bool signed_cols_match(const double *P, const double *Q, size_t rows, size_t cols,
			      double tol, double *scratch, double *sign, double *err)
{
	for (size_t j = 0; j < cols; j++)
		sign[j] = 0;
	for (size_t i = 0; i < rows; i++)
		for (size_t j = 0; j < cols; j++)
			sign[j] += P[i * cols + j] * Q[i * cols + j];
	for (size_t j = 0; j < cols; j++)
		sign[j] = sign[j] < 0 ? -1.0 : 1.0;
	for (size_t i = 0; i < rows; i++)
		for (size_t j = 0; j < cols; j++)
			scratch[i * cols + j] = sign[j] * P[i * cols + j];
	double e = procrustes_rel_diff(scratch, cols, Q, cols, rows, cols);
	if (e < *err)
		*err = e;
	return e <= tol;
}

bool verify_residual_hadamard_cols(const double *X, const double *Y, size_t rows, size_t cols,
				   double tol, double *err)
{
	double worst = INFINITY;
	if (err)
		*err = worst;
	if (cols < 2 || fwht_pow2_part(cols) < 2)
		return false;
	size_t n = rows * cols;
	double *P = malloc(n * sizeof(double));       /* rows x cols */
	double *S = malloc(n * sizeof(double));       /* rows x cols */
	double *sg = malloc(cols * sizeof(double));   /* cols */
	bool found = false;
	for (int f = FWHT_INNER; P && S && sg && f <= FWHT_OUTER && !found; f++) {
		/* M = H D_s: Y H = X D_s (H symmetric, H H = I) */
		memcpy(P, Y, n * sizeof(double));
		fwht_kron_rows(P, rows, cols, (FwhtForm)f);
		found = signed_cols_match(X, P, rows, cols, tol, S, sg, &worst);
		/* M = D_s H: Y = X H D_s */
		memcpy(P, X, n * sizeof(double));
		fwht_kron_rows(P, rows, cols, (FwhtForm)f);
		found = signed_cols_match(P, Y, rows, cols, tol, S, sg, &worst) || found;
	}
	free(P);
	free(S);
	free(sg);
	if (err)
		*err = worst;
	return found;
}

double verify_residual_norm_gap(const double *X, const double *Y, size_t rows, size_t cols)
{
	double gap = 0, nx = 0, ny = 0;
	for (size_t r = 0; r < rows; r++) {
		double x = cblas_ddot((int)cols, X + r * cols, 1, X + r * cols, 1);
		double y = cblas_ddot((int)cols, Y + r * cols, 1, Y + r * cols, 1);
		gap += (sqrt(y) - sqrt(x)) * (sqrt(y) - sqrt(x));
		nx += x;
		ny += y;
	}
	double n = nx > ny ? nx : ny;
	if (gap != gap)
		return INFINITY;
	return n > 0 ? sqrt(gap / n) : (gap > 0 ? INFINITY : 0);
}

/* One factorisation: Z = Y with S_p undone ((rows * p) x k samples of A's
 * coordinates, Zt), X alike (Xt); A from Zt A = Xt. */
static bool kron_fit(const double *X, const double *Y, size_t rows, size_t cols, size_t p,
		     FwhtForm f, double tol, double *Zt, double *Xt, double *R, bool *had,
		     double *err)
{
	size_t k = cols / p, n = rows * cols;
	/* A (x) S_p = (I (x) S_p)(A (x) I_p): Y (I (x) S_p) (A (x) I_p) = X, and
	 * S_p (x) A = (S_p (x) I)(I_p (x) A) */
	memcpy(Xt, Y, n * sizeof(double));
	fwht_blocks(Xt, rows, cols, p, f);
	/* rows (r, b) of k coordinates c: inner index c * p + b, outer b * k + c */
	for (size_t r = 0; r < rows; r++)
		for (size_t b = 0; b < p; b++)
			for (size_t c = 0; c < k; c++) {
				size_t i = f == FWHT_INNER ? c * p + b : b * k + c;
				Zt[(r * p + b) * k + c] = Xt[r * cols + i];
			}
	for (size_t r = 0; r < rows; r++)
		for (size_t b = 0; b < p; b++)
			for (size_t c = 0; c < k; c++) {
				size_t i = f == FWHT_INNER ? c * p + b : b * k + c;
				Xt[(r * p + b) * k + c] = X[r * cols + i];
			}
	/* R with Zt R^T = Xt: A = R^T */
	if (procrustes_rotation_cols(Zt, k, Xt, k, rows * p, k, R) != RF_OK)
		return false;
	double *P = malloc(n * sizeof(double));   /* (rows * p) x k */
	if (!P)
		return false;
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(rows * p), (int)k, (int)k, 1.0,
		    Zt, (int)k, R, (int)k, 0.0, P, (int)k);
	double e = procrustes_rel_diff(P, k, Xt, k, rows * p, k);
	free(P);
	if (e < *err)
		*err = e;
	if (!(e <= tol))
		return false;
	*err = e;
	*had = verify_residual_is_hadamard(R, k, 0.05);
	return true;
}

bool verify_residual_kron_cols(const double *X, const double *Y, size_t rows, size_t cols,
			       double tol, size_t *k, bool *hadamard, double *err)
{
	*err = INFINITY;
	*hadamard = false;
	*k = 0;
	size_t n = rows * cols;
	double *Zt = malloc(n * sizeof(double));   /* (rows * p) x k, any p */
	double *Xt = malloc(n * sizeof(double));   /* the same */
	double *R = malloc(VRES_KRON_MAX * VRES_KRON_MAX * sizeof(double));   /* k x k */
	bool found = false;
	for (size_t p = fwht_pow2_part(cols); Zt && Xt && R && p >= 2 && !found; p /= 2) {
		size_t kk = cols / p;
		if (kk < 2 || kk > VRES_KRON_MAX)
			continue;
		for (int f = FWHT_INNER; f <= FWHT_OUTER && !found; f++)
			if (kron_fit(X, Y, rows, cols, p, (FwhtForm)f, tol, Zt, Xt, R, hadamard,
				     err)) {
				found = true;
				*k = kk;
			}
	}
	free(Zt);
	free(Xt);
	free(R);
	return found;
}

RfStatus verify_residual_gram_cols(const double *X, const double *Y, size_t rows, size_t cols,
				   double *err)
{
	double *G = malloc(2 * rows * rows * sizeof(double));   /* two rows x rows */
	if (!G)
		return RF_ERR_NOMEM;
	cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)rows, (int)cols, 1.0, X,
		    (int)cols, 0.0, G, (int)rows);
	cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)rows, (int)cols, 1.0, Y,
		    (int)cols, 0.0, G + rows * rows, (int)rows);
	double d = 0, g = 0;
	for (size_t i = 0; i < rows; i++)
		for (size_t j = i; j < rows; j++) {
			double x = G[i * rows + j], y = G[rows * rows + i * rows + j];
			double w = i == j ? 1.0 : 2.0;   /* the lower half, by symmetry */
			d += w * (x - y) * (x - y);
			g += w * x * x;
		}
	free(G);
	/* Y = X (M^T) with a relative error e moves the Gram by about 2 e */
	*err = g > 0 ? sqrt(d / g) / 2 : (d > 0 ? INFINITY : 0);
	return RF_OK;
}

/* W (rows x D) becomes W R (in place, scratch rows x D). */
static void right_mul(double *W, size_t rows, size_t D, const double *R, double *scratch)
{
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)D, (int)D, 1.0, W,
		    (int)D, R, (int)D, 0.0, scratch, (int)D);
	memcpy(W, scratch, rows * D * sizeof(double));
}

RfStatus verify_residual_layer_frame(Layer *a, Layer *b, const double *R)
{
	const LayerShape *s = &b->shape;
	size_t D = s->d_model, H = s->n_heads * s->head_dim, G = s->n_kv_heads * s->head_dim;
	size_t big = H > G ? H : G;
	double *scratch = malloc(big * D * sizeof(double)); /* big x D */
	if (!scratch)
		return RF_ERR_NOMEM;
	if (a->attn_norm) {
		const LayerShape *sa = &a->shape;
		size_t ha = sa->n_heads * sa->head_dim, ga = sa->n_kv_heads * sa->head_dim;
		for (size_t r = 0; r < ha; r++)
			for (size_t j = 0; j < D; j++)
				a->wq[r * D + j] *= a->attn_norm[j];
		for (size_t r = 0; r < ga; r++)
			for (size_t j = 0; j < D; j++) {
				a->wk[r * D + j] *= a->attn_norm[j];
				a->wv[r * D + j] *= a->attn_norm[j];
			}
		for (size_t j = 0; j < D; j++)
			a->attn_norm[j] = 1.0;
	}
	right_mul(b->wq, H, D, R, scratch);
	right_mul(b->wk, G, D, R, scratch);
	right_mul(b->wv, G, D, R, scratch);
	/* W_o (D x H) becomes R^T W_o */
	cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)H, (int)D, 1.0, R,
		    (int)D, b->wo, (int)H, 0.0, scratch, (int)H);
	memcpy(b->wo, scratch, D * H * sizeof(double));
	if (b->bo) {
		cblas_dgemv(CblasRowMajor, CblasTrans, (int)D, (int)D, 1.0, R, (int)D, b->bo, 1,
			    0.0, scratch, 1);
		memcpy(b->bo, scratch, D * sizeof(double));
	}
	if (b->attn_norm)
		for (size_t j = 0; j < D; j++)
			b->attn_norm[j] = 1.0;
	free(scratch);
	return RF_OK;
}

void verify_residual_break(VerifyResidual *r, size_t layer, const Finding *f)
{
	if (r->brk.code != FIND_NONE)
		return;
	r->brk = *f;
	r->layer = layer;
	r->equivalent = false;
}
