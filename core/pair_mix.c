#include "config.h"

#include <math.h>

#include "core/pair_mix.h"

void pair_mix_apply(RopeLayout layout, size_t rotary_dim, size_t head_dim,
		    double eps, double *R)
{
	size_t d = head_dim, np = rotary_dim / 2;
	double c = cos(eps), s = sin(eps);
	for (size_t i = 0; i + 1 < np; i += 2) {
		size_t a[2], b[2];
		rope_pair_coords(layout, rotary_dim, i, &a[0], &b[0]);
		rope_pair_coords(layout, rotary_dim, i + 1, &a[1], &b[1]);
		/* M: col x_i -> c e_xi + s e_xj, col x_j -> -s e_xi + c e_xj for
		 * x = a, b; R M mixes R's columns the same way. */
		for (int t = 0; t < 2; t++) {
			size_t u = t ? b[0] : a[0], v = t ? b[1] : a[1];
			for (size_t r = 0; r < d; r++) {
				double ru = R[r * d + u], rv = R[r * d + v];
				R[r * d + u] = c * ru + s * rv;
				R[r * d + v] = -s * ru + c * rv;
			}
		}
	}
}

/* The block of pairs (i, i+1) at offset p. */
static double block_growth(double wi, double wj, double eps, double p)
{
	return 2.0 * fabs(sin(eps)) * fabs(sin((wi - wj) * p / 2.0));
}

double pair_mix_growth(const double *freqs, size_t np, double eps, double p)
{
	double g = 0;
	for (size_t i = 0; i + 1 < np; i += 2) {
		double v = block_growth(freqs[i], freqs[i + 1], eps, p);
		if (v > g)
			g = v;
	}
	return g;
}

size_t pair_mix_break_offset(const double *freqs, size_t np, double eps, double tol)
{
	double amp = 2.0 * fabs(sin(eps));
	if (!(amp > tol))
		return 0;
	double x = tol > 0 ? asin(tol / amp) : 0;   /* needs |sin(dw p / 2)| > sin x */
	size_t best = 0;
	for (size_t i = 0; i + 1 < np; i += 2) {
		double dw = fabs(freqs[i] - freqs[i + 1]);
		if (!(dw > 0))
			continue;
		/* the first crossing is past 2 x / dw; when a step of dw / 2
		 * is wider than the window (x near pi / 2) the integers may
		 * jump it, and a later period's window holds the first one:
		 * look on, over at most 1e5 offsets */
		double p0 = floor(2.0 * x / dw) + 1.0;
		double limit = p0 + 1e5;
		if (p0 > 1e15)
			continue;
		for (double p = p0; p <= limit && p <= 1e15; p += 1.0)
			if (block_growth(freqs[i], freqs[i + 1], eps, p) > tol) {
				if (!best || (size_t)p < best)
					best = (size_t)p;
				break;
			}
	}
	return best;
}
