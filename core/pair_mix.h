#ifndef ROPEFOLD_CORE_PAIR_MIX_H
#define ROPEFOLD_CORE_PAIR_MIX_H

#include <stddef.h>

#include "core/rope.h"

/* The rotation kind pair-mix:EPS breaks "commutes" gradually: a commuting
 * rotation C times a mixing M(EPS) that turns frequency pair 2k into pair
 * 2k+1 by the angle EPS (the a coordinates of the two pairs by a plane
 * rotation, the b coordinates by the same one). On the pair of complex
 * coordinates (z_i, z_j) of such a block, Theta_p is diag(e^(i w_i p),
 * e^(i w_j p)) and M a real rotation U, so [Theta_p, C M] = C [Theta_p, U]
 * has spectral norm
 *     2 |sin EPS| |sin((w_i - w_j) p / 2)|,
 * zero at p = 0, close to EPS |w_i - w_j| p while that is small, and at
 * most 2 |sin EPS|: the score error grows with the offset, then
 * saturates. */

/* The default EPS of a bare "pair-mix" (radians). */
#define PAIR_MIX_EPS_DEFAULT 1e-3

/* Right-multiply R (d x d, row-major) by M(eps): the columns of pair 2k
 * and pair 2k+1 (k = 0, 1, ... while 2k+1 < r/2) turn into each other by
 * eps. Coordinates >= rotary_dim and an odd last pair are left alone. */
void pair_mix_apply(RopeLayout layout, size_t rotary_dim, size_t head_dim,
		    double eps, double *R);

/* The spectral norm of [Theta_p, C M(eps)] at offset p, from the formula
 * above, maximised over the mixed blocks (freqs: np pair frequencies). */
double pair_mix_growth(const double *freqs, size_t np, double eps, double p);

/* The first offset p >= 1 at which pair_mix_growth exceeds tol: where the
 * score error is predicted to pass the tolerance. 0 when it never does
 * (2 |sin eps| <= tol: it saturates below the tolerance). */
size_t pair_mix_break_offset(const double *freqs, size_t np, double eps, double tol);

#endif
