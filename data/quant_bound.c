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
