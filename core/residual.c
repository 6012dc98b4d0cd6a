#include "config.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/residual.h"
#include "core/rng.h"
#include "core/rope.h"
#include "core/rotation.h"

static const char *const kind_names[RES_KIND_COUNT] = {"none", "hadamard", "haar"};
static const char *const role_names[RES_ROLE_COUNT] = {
	"keep", "embed", "reader", "writer", "writer-bias", "norm",
};

const char *residual_kind_name(ResKind kind)
{
	return (unsigned)kind < RES_KIND_COUNT ? kind_names[kind] : "?";
}

int residual_kind_parse(const char *s, ResKind *out)
{
	for (int i = 0; i < RES_KIND_COUNT; i++)
		if (!strcmp(s, kind_names[i])) {
			*out = (ResKind)i;
			return 0;
		}
	return -1;
}

const char *residual_role_name(ResRole role)
{
	return (unsigned)role < RES_ROLE_COUNT ? role_names[role] : "?";
}

/* The stream of R1's draws, apart from every per-layer stream. */
enum { RES_STREAM = 0x5231 };

RfStatus residual_rotation(ResKind kind, size_t D, uint64_t seed, double *R)
{
	if (!D)
		return RF_ERR_ARG;
	Rng rng;
	rng_seed(&rng, seed, RES_STREAM);
	RopeSpec none;
	memset(&none, 0, sizeof none);   /* rotary_dim 0: no pairs to respect */
	switch (kind) {
	case RES_NONE:
		memset(R, 0, D * D * sizeof(double));
		for (size_t i = 0; i < D; i++)
			R[i * D + i] = 1.0;
		return RF_OK;
	case RES_HADAMARD:
		return rotation_make(ROT_HADAMARD, &none, D, &rng, R);
	case RES_HAAR:
		return rotation_haar(D, &rng, R);
	default:
		return RF_ERR_ARG;
	}
}

void residual_fused_weight(const double *stored, size_t D, bool plus_one, double *w)
{
	for (size_t i = 0; i < D; i++)
		w[i] = plus_one ? 1.0 + stored[i] : stored[i];
}

double residual_norm_one(bool plus_one)
{
	return plus_one ? 0.0 : 1.0;
}

/* v (rows x D) = v S A, S = diag(scale) (or I), A = R^T (transpose) or R. */
static RfStatus right_mul(const double *R, size_t D, const double *scale, bool transpose,
			  bool divide, double *v, size_t rows)
{
	double *tmp = malloc(rows * D * sizeof(double));   /* rows x D */
	if (!tmp)
		return RF_ERR_NOMEM;
	if (scale && !divide)
		for (size_t r = 0; r < rows; r++)
			for (size_t j = 0; j < D; j++)
				v[r * D + j] *= scale[j];
	cblas_dgemm(CblasRowMajor, CblasNoTrans, transpose ? CblasTrans : CblasNoTrans,
		    (int)rows, (int)D, (int)D, 1.0, v, (int)D, R, (int)D, 0.0, tmp, (int)D);
	memcpy(v, tmp, rows * D * sizeof(double));
	free(tmp);
	if (scale && divide)
		for (size_t r = 0; r < rows; r++)
			for (size_t j = 0; j < D; j++)
				v[r * D + j] /= scale[j];
	return RF_OK;
}

/* Each of batch blocks (D x cols) of v becomes A block, A = R or R^T. */
static RfStatus left_mul(const double *R, size_t D, bool transpose, double *v, size_t batch,
			 size_t cols)
{
	double *tmp = malloc(D * cols * sizeof(double));   /* D x cols */
	if (!tmp)
		return RF_ERR_NOMEM;
	for (size_t b = 0; b < batch; b++) {
		double *blk = v + b * D * cols;
		cblas_dgemm(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, CblasNoTrans,
			    (int)D, (int)cols, (int)D, 1.0, R, (int)D, blk, (int)cols, 0.0, tmp,
			    (int)cols);
		memcpy(blk, tmp, D * cols * sizeof(double));
	}
	free(tmp);
	return RF_OK;
}

static RfStatus apply(ResRole role, const double *R, size_t D, size_t batch, const double *w,
		      double norm_one, bool inverse, double *v, size_t n)
{
	if (!D || n % D || !batch)
		return RF_ERR_ARG;
	switch (role) {
	case RES_ROLE_KEEP:
		return RF_OK;
	case RES_ROLE_EMBED:
		return right_mul(R, D, NULL, !inverse, false, v, n / D);
	case RES_ROLE_READER:
		if (w && inverse)
			for (size_t j = 0; j < D; j++)
				if (w[j] == 0)
					return RF_ERR_NUMERIC;
		return right_mul(R, D, w, !inverse, inverse, v, n / D);
	case RES_ROLE_WRITER:
		if (n % (D * batch))
			return RF_ERR_ARG;
		return left_mul(R, D, inverse, v, batch, n / (D * batch));
	case RES_ROLE_WRITER_BIAS:
		return n == D ? left_mul(R, D, inverse, v, 1, 1) : RF_ERR_ARG;
	case RES_ROLE_NORM:
		if (n != D || (inverse && !w))
			return RF_ERR_ARG;
		for (size_t i = 0; i < D; i++)
			v[i] = inverse ? w[i] : norm_one;
		return RF_OK;
	default:
		return RF_ERR_ARG;
	}
}

RfStatus residual_apply(ResRole role, const double *R, size_t D, size_t batch,
			const double *w, double norm_one, double *v, size_t n)
{
	return apply(role, R, D, batch, w, norm_one, false, v, n);
}

RfStatus residual_unapply(ResRole role, const double *R, size_t D, size_t batch,
			  const double *w, double *v, size_t n)
{
	return apply(role, R, D, batch, w, 0, true, v, n);
}
