#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/ggml_quant.h"
#include "data/quant_bound.h"

void quant_bound_blocks(StoreDtype dt, const unsigned char *bytes, const double *values,
			size_t n, QuantBound *out)
{
	memset(out, 0, sizeof *out);
	out->dtype = dt;
	out->quantized = dtype_is_block(dt);
	if (!out->quantized)
		return;
	double ss = 0, mx = 0, nn = 0, am = 0;
	ggml_quant_bound(dt, bytes, n / dtype_block(dt), &ss, &mx);
	for (size_t i = 0; i < n; i++) {
		nn += values[i] * values[i];
		if (fabs(values[i]) > am)
			am = fabs(values[i]);
	}
	out->frob = sqrt(ss);
	out->max = mx;
	out->norm = sqrt(nn);
	out->amax = am;
	out->rel_frob = out->norm > 0 ? out->frob / out->norm : (ss > 0 ? INFINITY : 0);
	double rm = am > 0 ? mx / am : (mx > 0 ? INFINITY : 0);
	out->rel = out->rel_frob > rm ? out->rel_frob : rm;
}

int quant_bound_tensor(const TensorRef *t, QuantBound *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->dtype = t->dtype;
	if (!dtype_is_block(t->dtype))
		return 0;
	unsigned char *b = malloc(t->nbytes ? t->nbytes : 1);
	double *v = malloc((t->nelem ? t->nelem : 1) * sizeof(double));
	int rc = -1;
	if (!b || !v)
		snprintf(err, errlen, "%s: tensor %s: out of memory", t->file, t->name);
	else if (!tensor_read_bytes(t, b, err, errlen) &&
		 !tensor_read(t, 0, t->nelem, v, err, errlen)) {
		quant_bound_blocks(t->dtype, b, v, t->nelem, out);
		rc = 0;
	}
	free(b);
	free(v);
	return rc;
}

/* One group's running sums: squared bounds, largest bound, squared values,
 * largest value. */
typedef struct {
	double ss, mx, nn, am;
} GroupSums;

int quant_bound_groups(const TensorRef *t, size_t ngroups, bool by_cols, double *rel,
		       char *err, size_t errlen)
{
	for (size_t g = 0; g < ngroups; g++)
		rel[g] = 0;
	if (!dtype_is_block(t->dtype))
		return 0;
	size_t rows = t->ndim == 2 ? t->shape[0] : 0, cols = t->ndim == 2 ? t->shape[1] : 0;
	size_t B = dtype_block(t->dtype);
	size_t span = ngroups ? (by_cols ? cols : rows) / ngroups : 0;
	if (!ngroups || !span || span * ngroups != (by_cols ? cols : rows) || cols % B) {
		snprintf(err, errlen, "%s: tensor %s: cannot split it into %zu groups of %s",
			 t->file, t->name, ngroups, by_cols ? "columns" : "rows");
		return -1;
	}
	unsigned char *b = malloc(t->nbytes ? t->nbytes : 1);
	double *v = malloc((t->nelem ? t->nelem : 1) * sizeof(double));
	double *h = malloc((t->nelem ? t->nelem : 1) * sizeof(double));
	GroupSums *gs = calloc(ngroups, sizeof *gs);
	int rc = -1;
	if (!b || !v || !h || !gs) {
		snprintf(err, errlen, "%s: tensor %s: out of memory", t->file, t->name);
		goto out;
	}
	if (tensor_read_bytes(t, b, err, errlen) || tensor_read(t, 0, t->nelem, v, err, errlen))
		goto out;
	/* each value's bound, then summed over the values of its group */
	ggml_quant_value_bounds(t->dtype, b, t->nelem / B, h);
	for (size_t e = 0; e < t->nelem; e++) {
		size_t g = by_cols ? (e % cols) / span : e / cols / span;
		gs[g].ss += h[e] * h[e];
		if (h[e] > gs[g].mx)
			gs[g].mx = h[e];
		gs[g].nn += v[e] * v[e];
		if (fabs(v[e]) > gs[g].am)
			gs[g].am = fabs(v[e]);
	}
	for (size_t g = 0; g < ngroups; g++) {
		double nf = sqrt(gs[g].nn), rf, rm;
		rf = nf > 0 ? sqrt(gs[g].ss) / nf : (gs[g].ss > 0 ? INFINITY : 0);
		rm = gs[g].am > 0 ? gs[g].mx / gs[g].am : (gs[g].mx > 0 ? INFINITY : 0);
		rel[g] = rf > rm ? rf : rm;
	}
	rc = 0;
out:
	free(b);
	free(v);
	free(h);
	free(gs);
	return rc;
}
