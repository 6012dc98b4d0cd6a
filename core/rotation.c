#include "config.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fwht.h"
#include "core/pair_mix.h"
#include "core/rope.h"
#include "core/rotation.h"

static const char *const kind_names[ROT_KIND_COUNT] = {
	"commuting", "haar", "hadamard", "pair-swap", "pair-reflect",
	"layout-mismatch", "pair-mix",
};

const char *rotation_kind_name(RotKind kind)
{
	return (unsigned)kind < ROT_KIND_COUNT ? kind_names[kind] : "?";
}

int rotation_kind_parse(const char *s, RotKind *out)
{
	for (int k = 0; k < ROT_KIND_COUNT; k++) {
		if (!strcmp(s, kind_names[k])) {
			*out = (RotKind)k;
			return 0;
		}
	}
	return -1;
}

int rotation_kind_parse_eps(const char *s, RotKind *out, double *eps)
{
	const char *colon = strchr(s, ':');
	if (!colon)
		return rotation_kind_parse(s, out);
	size_t n = (size_t)(colon - s);
	if (n != strlen(kind_names[ROT_PAIR_MIX]) || strncmp(s, kind_names[ROT_PAIR_MIX], n))
		return -1;
	const char *v = colon + 1;
	/* a plain decimal: digits, one point, an exponent; no hex, inf, nan */
	if (!*v || strspn(v, "0123456789.eE+-") != strlen(v) || !strchr("0123456789.", *v))
		return -1;
	char *end;
	double x = strtod(v, &end);
	if (*end || !(x >= ROT_MIX_EPS_MIN) || !(x <= ROT_MIX_EPS_MAX))
		return -1;
	*out = ROT_PAIR_MIX;
	*eps = x;
	return 0;
}

void rotation_kind_format(RotKind kind, double eps, char *buf, size_t len)
{
	if (kind == ROT_PAIR_MIX)
		snprintf(buf, len, "%s:%g", kind_names[kind], eps);
	else
		snprintf(buf, len, "%s", rotation_kind_name(kind));
}

RfStatus rotation_haar(size_t n, Rng *rng, double *Q)
{
	if (n == 0)
		return RF_OK;
	double *tau = malloc(n * sizeof(double));
	double *diag = malloc(n * sizeof(double));
	if (!tau || !diag) {
		free(tau);
		free(diag);
		return RF_ERR_NOMEM;
	}
	for (size_t i = 0; i < n * n; i++)
		Q[i] = rng_normal(rng);
	lapack_int N = (lapack_int)n;
	lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, N, N, Q, N, tau);
	if (info == 0) {
		for (size_t i = 0; i < n; i++)
			diag[i] = Q[i * n + i];
		info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, N, N, N, Q, N, tau);
	}
	/* Multiply column j by sign(R_jj) so the distribution is Haar. */
	if (info == 0)
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < n; j++)
				if (diag[j] < 0)
					Q[i * n + j] = -Q[i * n + j];
	free(tau);
	free(diag);
	return info == 0 ? RF_OK : RF_ERR_LAPACK;
}

void rotation_commuting(RopeLayout layout, size_t rotary_dim, size_t head_dim,
			const double *angles, double *R)
{
	rope_pair_rotation(layout, rotary_dim, head_dim, 1.0, angles, R);
}

/* A Haar block on the non-rotary coordinates r..d-1. */
static RfStatus haar_tail(size_t r, size_t d, Rng *rng, double *R)
{
	size_t m = d - r;
	if (m == 0)
		return RF_OK;
	double *B = malloc(m * m * sizeof(double));
	if (!B)
		return RF_ERR_NOMEM;
	RfStatus st = rotation_haar(m, rng, B);
	for (size_t i = 0; st == RF_OK && i < m; i++)
		for (size_t j = 0; j < m; j++)
			R[(r + i) * d + r + j] = B[i * m + j];
	free(B);
	return st;
}

static RfStatus make_commuting(RopeLayout layout, size_t r, size_t d,
			       Rng *rng, double *R)
{
	size_t np = r / 2;
	double *ang = malloc((np ? np : 1) * sizeof(double));
	if (!ang)
		return RF_ERR_NOMEM;
	for (size_t i = 0; i < np; i++)
		ang[i] = 2.0 * M_PI * rng_uniform(rng) - M_PI;
	rotation_commuting(layout, r, d, ang, R);
	free(ang);
	return haar_tail(r, d, rng, R);
}

/* Sylvester Hadamard of the largest power of two dividing d, Kronecker
 * with the identity on the rest, times random signs on the columns. */
static void make_hadamard(size_t d, Rng *rng, double *R)
{
	size_t p = fwht_pow2_part(d);
	size_t m = d / p;
	double s = 1.0 / sqrt((double)p);
	memset(R, 0, d * d * sizeof(double));
	for (size_t i = 0; i < p; i++)
		for (size_t j = 0; j < p; j++) {
			double h = (__builtin_popcountll(i & j) & 1) ? -s : s;
			for (size_t k = 0; k < m; k++)
				R[(i * m + k) * d + j * m + k] = h;
		}
	for (size_t j = 0; j < d; j++)
		if (rng_next(rng) & 1)
			for (size_t i = 0; i < d; i++)
				R[i * d + j] = -R[i * d + j];
}

/* Swap frequency pairs (0,1), (2,3), ...: a permutation that moves each
 * pair's coordinates onto a pair of another frequency. */
static void make_pair_swap(RopeLayout layout, size_t r, size_t d, double *R)
{
	size_t np = r / 2;
	memset(R, 0, d * d * sizeof(double));
	for (size_t i = r; i < d; i++)
		R[i * d + i] = 1.0;
	for (size_t i = 0; i < np; i++) {
		size_t j = (i % 2 == 0) ? (i + 1 < np ? i + 1 : i) : i - 1;
		size_t a, b, a2, b2;
		rope_pair_coords(layout, r, i, &a, &b);
		rope_pair_coords(layout, r, j, &a2, &b2);
		R[a2 * d + a] = 1.0;
		R[b2 * d + b] = 1.0;
	}
}

/* [[c, s], [s, -c]] in every pair: a reflection, det -1. */
static void make_pair_reflect(RopeLayout layout, size_t r, size_t d, Rng *rng,
			      double *R)
{
	memset(R, 0, d * d * sizeof(double));
	for (size_t i = r; i < d; i++)
		R[i * d + i] = 1.0;
	for (size_t i = 0; i < r / 2; i++) {
		size_t a, b;
		rope_pair_coords(layout, r, i, &a, &b);
		double ang = 2.0 * M_PI * rng_uniform(rng);
		double c = cos(ang), s = sin(ang);
		R[a * d + a] = c;
		R[a * d + b] = s;
		R[b * d + a] = s;
		R[b * d + b] = -c;
	}
}

RfStatus rotation_make(RotKind kind, const RopeSpec *rope, size_t head_dim,
		       Rng *rng, double *R)
{
	return rotation_make_eps(kind, rope, head_dim, PAIR_MIX_EPS_DEFAULT, rng, R);
}

RfStatus rotation_make_eps(RotKind kind, const RopeSpec *rope, size_t head_dim,
			   double eps, Rng *rng, double *R)
{
	size_t d = head_dim, r = rope->rotary_dim;
	if (r > d || r % 2)
		return RF_ERR_ARG;
	switch (kind) {
	case ROT_COMMUTING:
		return make_commuting(rope->layout, r, d, rng, R);
	case ROT_LAYOUT_MISMATCH: {
		RopeLayout other = rope->layout == ROPE_HALF ? ROPE_INTERLEAVED
							     : ROPE_HALF;
		return make_commuting(other, r, d, rng, R);
	}
	case ROT_PAIR_MIX: {
		RfStatus st = make_commuting(rope->layout, r, d, rng, R);
		if (st == RF_OK)
			pair_mix_apply(rope->layout, r, d, eps, R);
		return st;
	}
	case ROT_HAAR:
		return rotation_haar(d, rng, R);
	case ROT_HADAMARD:
		make_hadamard(d, rng, R);
		return RF_OK;
	case ROT_PAIR_SWAP:
		make_pair_swap(rope->layout, r, d, R);
		return RF_OK;
	case ROT_PAIR_REFLECT:
		make_pair_reflect(rope->layout, r, d, rng, R);
		return RF_OK;
	default:
		return RF_ERR_ARG;
	}
}

void rotation_pin_pairs(RopeLayout layout, size_t rotary_dim, size_t head_dim,
			const unsigned char *pinned, bool pin_tail, double *R)
{
	size_t d = head_dim, r = rotary_dim;
	for (size_t i = 0; pinned && i < r / 2; i++) {
		if (!pinned[i])
			continue;
		size_t a, b;
		rope_pair_coords(layout, r, i, &a, &b);
		/* [[c, -s], [s, c]] becomes sign(c) I: written, not computed
		 * from cos(pi), so the block is exactly +-1 and 0. */
		double v = R[a * d + a] < 0 ? -1.0 : 1.0;
		R[a * d + a] = v;
		R[b * d + b] = v;
		R[a * d + b] = 0.0;
		R[b * d + a] = 0.0;
	}
	if (!pin_tail)
		return;
	for (size_t i = r; i < d; i++) {
		double v = R[i * d + i] < 0 ? -1.0 : 1.0;
		for (size_t j = r; j < d; j++)
			R[i * d + j] = 0.0;
		R[i * d + i] = v;
	}
}

/* A scale in [0.5, 0.8] or [1.25, 2]: far enough from 1 to show. */
static double draw_scale(Rng *rng)
{
	double u = rng_uniform(rng);
	return (rng_next(rng) & 1) ? 0.5 + 0.3 * u : 1.25 + 0.75 * u;
}

void rotation_scale_pairs(const RopeSpec *rope, size_t head_dim, Rng *rng,
			  double *R)
{
	size_t d = head_dim, r = rope->rotary_dim;
	for (size_t i = 0; i < r / 2; i++) {
		size_t a, b;
		rope_pair_coords(rope->layout, r, i, &a, &b);
		double s = draw_scale(rng);
		for (size_t j = 0; j < d; j++) {
			R[a * d + j] *= s;
			R[b * d + j] *= s;
		}
	}
	for (size_t i = r; i < d; i += 2) {
		double s = draw_scale(rng);
		for (size_t k = i; k < i + 2 && k < d; k++)
			for (size_t j = 0; j < d; j++)
				R[k * d + j] *= s;
	}
}

double rotation_pair_angle(const double *R, RopeLayout layout,
			   size_t rotary_dim, size_t head_dim, size_t i)
{
	size_t a, b;
	rope_pair_coords(layout, rotary_dim, i, &a, &b);
	return atan2(R[b * head_dim + a], R[a * head_dim + a]);
}
