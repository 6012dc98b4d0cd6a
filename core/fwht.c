#include "config.h"

#include <math.h>

#include "core/fwht.h"

size_t fwht_pow2_part(size_t n)
{
	size_t p = 1;
	while (n && n % (2 * p) == 0)
		p *= 2;
	return p;
}

void fwht_strided(double *v, size_t p, size_t stride)
{
	/* butterflies on pairs (i, i + h): (a, b) -> (a + b, a - b) */
	for (size_t h = 1; h < p; h *= 2)
		for (size_t i = 0; i < p; i += 2 * h)
			for (size_t k = i; k < i + h; k++) {
				double a = v[k * stride], b = v[(k + h) * stride];
				v[k * stride] = a + b;
				v[(k + h) * stride] = a - b;
			}
	double c = 1.0 / sqrt((double)p);
	for (size_t k = 0; k < p; k++)
		v[k * stride] *= c;
}

void fwht_blocks(double *X, size_t rows, size_t n, size_t p, FwhtForm f)
{
	size_t m = n / p;
	for (size_t r = 0; r < rows; r++) {
		double *row = X + r * n;
		for (size_t c = 0; c < m; c++) {
			if (f == FWHT_INNER)   /* index c * p + a */
				fwht_strided(row + c * p, p, 1);
			else                   /* index a * m + c */
				fwht_strided(row + c, p, m);
		}
	}
}

void fwht_kron_rows(double *X, size_t rows, size_t n, FwhtForm f)
{
	fwht_blocks(X, rows, n, fwht_pow2_part(n), f);
}
