#include "config.h"

#include <math.h>
#include <strings.h>

#include "core/dtype.h"

/* Significand bits (with the implicit one), min and max normal exponent. */
static const struct {
	const char *name;
	int prec, emin, emax;
} dtypes[] = {
	[STORE_F64] = {"f64", 53, -1022, 1023},
	[STORE_F32] = {"f32", 24, -126, 127},
	[STORE_F16] = {"f16", 11, -14, 15},
	[STORE_BF16] = {"bf16", 8, -126, 127},
};

double dtype_unit_roundoff(StoreDtype t)
{
	return ldexp(1.0, -dtypes[t].prec);
}

const char *dtype_name(StoreDtype t)
{
	return (unsigned)t <= STORE_BF16 ? dtypes[t].name : "?";
}

const char *dtype_name_of_roundoff(double u)
{
	int best = STORE_F64;
	double bd = INFINITY;
	for (int t = STORE_F64; t <= STORE_BF16; t++) {
		double dist = fabs(log2(u > 0 ? u : 1e-300) + dtypes[t].prec);
		if (dist < bd) {
			bd = dist;
			best = t;
		}
	}
	return dtypes[best].name;
}

int dtype_parse(const char *s, StoreDtype *out)
{
	for (int t = STORE_F64; t <= STORE_BF16; t++)
		if (!strcasecmp(s, dtypes[t].name)) {
			*out = (StoreDtype)t;
			return 0;
		}
	return -1;
}

void dtype_round(StoreDtype t, double *v, size_t n)
{
	if (t == STORE_F64)
		return;
	int p = dtypes[t].prec, emin = dtypes[t].emin, emax = dtypes[t].emax;
	/* Largest finite value: (2 - 2^(1-p)) 2^emax. */
	double maxv = ldexp(2.0 - ldexp(1.0, 1 - p), emax);
	for (size_t i = 0; i < n; i++) {
		double x = v[i];
		if (x == 0.0 || !isfinite(x))
			continue;
		int e = ilogb(x);
		if (e < emin)
			e = emin;  /* subnormal: fixed quantum 2^(emin - p + 1) */
		/* x / quantum is exact in double; rint rounds ties to even. */
		double q = rint(ldexp(x, p - 1 - e));
		double r = ldexp(q, e - (p - 1));
		if (fabs(r) > maxv)
			r = copysign(INFINITY, x);
		v[i] = r;
	}
}
