#include "config.h"

#include <math.h>
#include <stdio.h>
#include <strings.h>

#include "core/dtype.h"

/* Every fact about a storage type, once. prec is the significand bits
 * with the implicit one (a float's unit roundoff is 2^-prec; a block
 * quantization's prec gives the step verify tolerates for it), emin and
 * emax the exponents of the smallest and largest normal float. */
static const struct {
	const char *name, *lower;
	bool is_float;
	size_t block, block_bytes;
	int prec, emin, emax;
} dtypes[STORE_COUNT] = {
	[STORE_F64] = {"F64", "f64", true, 1, 8, 53, -1022, 1023},
	[STORE_F32] = {"F32", "f32", true, 1, 4, 24, -126, 127},
	[STORE_F16] = {"F16", "f16", true, 1, 2, 11, -14, 15},
	[STORE_BF16] = {"BF16", "bf16", true, 1, 2, 8, -126, 127},
	/* ggml-common.h's block structs: elements and bytes per block */
	[STORE_Q4_0] = {"Q4_0", "q4_0", false, 32, 18, 8, 0, 0},
	[STORE_Q4_1] = {"Q4_1", "q4_1", false, 32, 20, 8, 0, 0},
	[STORE_Q5_0] = {"Q5_0", "q5_0", false, 32, 22, 8, 0, 0},
	[STORE_Q5_1] = {"Q5_1", "q5_1", false, 32, 24, 8, 0, 0},
	[STORE_Q8_0] = {"Q8_0", "q8_0", false, 32, 34, 8, 0, 0},
	[STORE_Q2_K] = {"Q2_K", "q2_k", false, 256, 84, 8, 0, 0},
	[STORE_Q3_K] = {"Q3_K", "q3_k", false, 256, 110, 8, 0, 0},
	[STORE_Q4_K] = {"Q4_K", "q4_k", false, 256, 144, 8, 0, 0},
	[STORE_Q5_K] = {"Q5_K", "q5_k", false, 256, 176, 8, 0, 0},
	[STORE_Q6_K] = {"Q6_K", "q6_k", false, 256, 210, 8, 0, 0},
	[STORE_Q8_K] = {"Q8_K", "q8_k", false, 256, 292, 8, 0, 0},
	[STORE_IQ4_NL] = {"IQ4_NL", "iq4_nl", false, 32, 18, 8, 0, 0},
	[STORE_IQ4_XS] = {"IQ4_XS", "iq4_xs", false, 256, 136, 8, 0, 0},
};

static bool known(StoreDtype t)
{
	return (unsigned)t < STORE_COUNT;
}

const char *dtype_name(StoreDtype t)
{
	return known(t) ? dtypes[t].name : "?";
}

const char *dtype_lower_name(StoreDtype t)
{
	return known(t) ? dtypes[t].lower : "?";
}

int dtype_parse(const char *s, StoreDtype *out)
{
	for (int t = 0; t < STORE_COUNT; t++)
		if (!strcasecmp(s, dtypes[t].name)) {
			*out = (StoreDtype)t;
			return 0;
		}
	return -1;
}

void dtype_list(char *buf, size_t len, bool floats_only)
{
	size_t k = 0;
	if (len)
		buf[0] = '\0';
	for (int t = 0; t < STORE_COUNT && k < len; t++) {
		if (floats_only && !dtypes[t].is_float)
			continue;
		int n = snprintf(buf + k, len - k, "%s%s", k ? ", " : "", dtypes[t].name);
		k += n > 0 ? (size_t)n : 0;
	}
}

bool dtype_is_float(StoreDtype t)
{
	return known(t) && dtypes[t].is_float;
}

bool dtype_is_block(StoreDtype t)
{
	return known(t) && !dtypes[t].is_float;
}

size_t dtype_block(StoreDtype t)
{
	return known(t) ? dtypes[t].block : 0;
}

size_t dtype_block_bytes(StoreDtype t)
{
	return known(t) ? dtypes[t].block_bytes : 0;
}

bool dtype_bytes(StoreDtype t, size_t n, size_t *bytes)
{
	if (!known(t) || n % dtypes[t].block)
		return false;
	return !__builtin_mul_overflow(n / dtypes[t].block, dtypes[t].block_bytes, bytes);
}

double dtype_unit_roundoff(StoreDtype t)
{
	/* a type ropefold cannot read: the coarsest step it tolerates */
	return ldexp(1.0, -(known(t) ? dtypes[t].prec : dtypes[STORE_BF16].prec));
}

const char *dtype_name_of_roundoff(double u)
{
	int best = STORE_F64;
	double bd = INFINITY;
	for (int t = 0; t < STORE_COUNT; t++) {
		if (!dtypes[t].is_float)
			continue;
		double dist = fabs(log2(u > 0 ? u : 1e-300) + dtypes[t].prec);
		if (dist < bd) {
			bd = dist;
			best = t;
		}
	}
	return dtypes[best].lower;
}

void dtype_round(StoreDtype t, double *v, size_t n)
{
	if (!dtype_is_float(t) || t == STORE_F64)
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

void dtype_gaps(StoreDtype t, double g, double *up, double *dn)
{
	StoreDtype f = dtype_is_float(t) ? t : STORE_F64;
	int p = dtypes[f].prec, emin = dtypes[f].emin;
	double a = fabs(g);
	if (a == 0) {
		*up = *dn = ldexp(1.0, emin - p + 1);
		return;
	}
	int e = ilogb(a);
	if (e < emin)
		e = emin;
	double away = ldexp(1.0, e - p + 1);
	double toward = a == ldexp(1.0, e) && e > emin ? away / 2 : away;
	*up = g > 0 ? away : toward;
	*dn = g > 0 ? toward : away;
}
