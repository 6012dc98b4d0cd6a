#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/commutant.h"
#include "core/rope.h"
#include "core/rotation.h"

/* Frequencies this close count as one (pairs that may mix). */
static bool same_freq(const double *freqs, size_t np, size_t i, size_t j)
{
	if (i == j)
		return true;
	if (i >= np || j >= np)
		return false;
	double a = freqs[i], b = freqs[j];
	return fabs(a - b) <= 1e-12 * (fabs(a) > fabs(b) ? fabs(a) : fabs(b));
}

/* Does the frequency of pair i occur in another pair too? */
static bool freq_shared(const double *freqs, size_t np, size_t i)
{
	for (size_t j = 0; j < np; j++)
		if (j != i && same_freq(freqs, np, i, j))
			return true;
	return false;
}

void commutant_project(const double *R, const RopeSpec *rope,
		       const double *freqs, size_t d, double *P)
{
	size_t r = rope->rotary_dim, np = r / 2;
	for (size_t i = 0; i < d; i++)
		for (size_t j = 0; j < d; j++) {
			size_t gi = rope_coord_pair(rope->layout, rope->rotary_dim, i);
			size_t gj = rope_coord_pair(rope->layout, rope->rotary_dim, j);
			P[i * d + j] = same_freq(freqs, np, gi, gj) ? R[i * d + j] : 0.0;
		}
	/* Pair blocks (also across pairs of one frequency): keep the complex
	 * linear part [[a, -b], [b, a]]; a lone pair's becomes a rotation. */
	for (size_t i = 0; i < np; i++)
		for (size_t j = 0; j < np; j++) {
			if (!same_freq(freqs, np, i, j))
				continue;
			size_t ia, ib, ja, jb;
			rope_pair_coords(rope->layout, r, i, &ia, &ib);
			rope_pair_coords(rope->layout, r, j, &ja, &jb);
			double a = 0.5 * (R[ia * d + ja] + R[ib * d + jb]);
			double b = 0.5 * (R[ib * d + ja] - R[ia * d + jb]);
			if (i == j && !freq_shared(freqs, np, i)) {
				double m = hypot(a, b);
				if (m > 0) {
					a /= m;
					b /= m;
				} else {
					a = 1.0;
				}
			}
			P[ia * d + ja] = a;
			P[ia * d + jb] = -b;
			P[ib * d + ja] = b;
			P[ib * d + jb] = a;
		}
}

RfStatus commutant_analyse(const double *R, const RopeSpec *rope,
			   const double *freqs, size_t d, double thr,
			   CommutantInfo *ci)
{
	size_t r = rope->rotary_dim, np = r / 2, ng = np + (d > r ? 1 : 0);
	memset(ci, 0, sizeof *ci);
	double *bn = calloc(ng * ng, sizeof(double));  /* ng x ng squared norms */
	if (!bn)
		return RF_ERR_NOMEM;
	for (size_t i = 0; i < d; i++)
		for (size_t j = 0; j < d; j++) {
			size_t a = rope_coord_pair(rope->layout, rope->rotary_dim, i);
			size_t b = rope_coord_pair(rope->layout, rope->rotary_dim, j);
			bn[a * ng + b] += R[i * d + j] * R[i * d + j];
		}
	double s = 0;
	/* Block norms across groups, both directions together. */
	for (size_t gi = 0; gi < ng; gi++)
		for (size_t gj = gi + 1; gj < ng; gj++) {
			if (same_freq(freqs, np, gi, gj))
				continue;
			double n2 = bn[gi * ng + gj] + bn[gj * ng + gi];
			s += n2;
			double nb = sqrt(n2);
			if (nb <= thr)
				continue;
			ci->n_mixed_total++;
			/* Insert sorted, keep the largest few. */
			size_t k;
			if (ci->n_mixed < COMMUTANT_MAX_LISTED)
				k = ci->n_mixed++;
			else if (nb > ci->mixed_norm[COMMUTANT_MAX_LISTED - 1])
				k = COMMUTANT_MAX_LISTED - 1;
			else
				continue;
			while (k > 0 && ci->mixed_norm[k - 1] < nb) {
				ci->mixed[k][0] = ci->mixed[k - 1][0];
				ci->mixed[k][1] = ci->mixed[k - 1][1];
				ci->mixed_norm[k] = ci->mixed_norm[k - 1];
				k--;
			}
			ci->mixed[k][0] = gi;
			ci->mixed[k][1] = gj;
			ci->mixed_norm[k] = nb;
		}
	free(bn);
	/* Diagonal pair blocks: the anti-linear part [[c, s], [s, -c]]. */
	for (size_t i = 0; i < np; i++) {
		size_t a, b;
		rope_pair_coords(rope->layout, r, i, &a, &b);
		double c = 0.5 * (R[a * d + a] - R[b * d + b]);
		double sn = 0.5 * (R[a * d + b] + R[b * d + a]);
		double ca = 0.5 * (R[a * d + a] + R[b * d + b]);
		double sa = 0.5 * (R[b * d + a] - R[a * d + b]);
		double anti = sqrt(2.0 * (c * c + sn * sn));
		double lin = sqrt(2.0 * (ca * ca + sa * sa));
		s += anti * anti;
		if (anti > thr && anti > lin) {
			ci->n_reflect_total++;
			if (ci->n_reflect < COMMUTANT_MAX_LISTED)
				ci->reflect[ci->n_reflect++] = i;
		}
	}
	ci->defect = sqrt(s);
	return RF_OK;
}

void commutant_angles(const double *R, const RopeSpec *rope, size_t d,
		      double *angles)
{
	for (size_t i = 0; i < rope->rotary_dim / 2; i++)
		angles[i] = rotation_pair_angle(R, rope->layout, rope->rotary_dim,
						d, i);
}

void commutant_build(const RopeSpec *rope, size_t d, const double *angles,
		     const double *tail, double *R)
{
	size_t r = rope->rotary_dim, m = d - r;
	rotation_commuting(rope->layout, r, d, angles, R);
	if (tail)
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < m; j++)
				R[(r + i) * d + r + j] = tail[i * m + j];
}
