/* Writes the teacher-forced logits ropefold's whole-model forward pass
 * gives a checkpoint, T x V raw little-endian float64 (row-major), for
 * tests/mla_forward_check.py: `ropefold logits --out` stores float32, too
 * coarse to hold a float64 pass to 1e-10.
 *
 *     mla_forward_dump PATH f64|f32 IDS OUT
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/model.h"
#include "data/model_weights.h"

int main(int argc, char **argv)
{
	if (argc != 5 || (strcmp(argv[2], "f64") && strcmp(argv[2], "f32"))) {
		fprintf(stderr, "usage: mla_forward_dump PATH f64|f32 IDS OUT\n");
		return 2;
	}
	size_t ids[4096], T = 0;
	for (char *p = argv[3]; *p && T < 4096; T++) {
		ids[T] = strtoul(p, &p, 10);
		if (*p == ',')
			p++;
	}
	char err[1024];
	Model *m;
	if (model_open(argv[1], &m, err, sizeof err)) {
		fprintf(stderr, "mla_forward_dump: %s\n", err);
		return 2;
	}
	ModelForwardOpts o;
	memset(&o, 0, sizeof o);
	o.prec = strcmp(argv[2], "f32") ? FWD_F64 : FWD_F32;
	o.nthreads = 1;
	void *z;
	size_t V;
	if (model_forward(m, &o, ids, T, &z, &V, err, sizeof err)) {
		fprintf(stderr, "mla_forward_dump: %s\n", err);
		model_close(m);
		return 2;
	}
	FILE *f = fopen(argv[4], "wb");
	int rc = f ? 0 : 2;
	for (size_t i = 0; f && i < T * V; i++) {
		double v = o.prec == FWD_F32 ? ((float *)z)[i] : ((double *)z)[i];
		uint64_t u;
		memcpy(&u, &v, 8);
		unsigned char b[8];
		for (int k = 0; k < 8; k++)
			b[k] = (unsigned char)(u >> (8 * k));
		if (fwrite(b, 1, 8, f) != 8)
			rc = 2;
	}
	if (!f || fclose(f))
		rc = 2;
	if (rc)
		fprintf(stderr, "mla_forward_dump: %s: cannot write\n", argv[4]);
	free(z);
	model_close(m);
	return rc;
}
