#include "config.h"

/* Writes what ropefold reads: every tensor of a checkpoint that converts,
 * as raw little-endian float64 (tensor_read) into OUTDIR/NAME.f64, for
 * tests/quant.sh to hold against tests/reference_quant.py. Each tensor is
 * also read in pieces of 77 elements (so that blocks are split at every
 * offset) and into float (tensor_read_float); the program fails when a
 * piece or the float differs from the whole read.
 *
 *   dump_tensor MODEL OUTDIR
 *
 * Exit 0, 1 when the reads disagree, 2 when MODEL does not open or read. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/model.h"
#include "data/model_tensors.h"

static int dump_one(const TensorRef *t, const char *dir)
{
	char err[512];
	size_t n = t->nelem;
	double *v = malloc(n * sizeof *v), *p = malloc(n * sizeof *p);
	float *f = malloc(n * sizeof *f);
	int rc = 0;
	if (!v || !p || !f) {
		fprintf(stderr, "dump_tensor: out of memory\n");
		rc = 2;
		goto out;
	}
	if (tensor_read(t, 0, n, v, err, sizeof err) || tensor_read_float(t, 0, n, f, err, sizeof err)) {
		fprintf(stderr, "dump_tensor: %s\n", err);
		rc = 2;
		goto out;
	}
	for (size_t at = 0; at < n; at += 77) {
		size_t m = n - at < 77 ? n - at : 77;
		if (tensor_read(t, at, m, p + at, err, sizeof err)) {
			fprintf(stderr, "dump_tensor: %s\n", err);
			rc = 2;
			goto out;
		}
	}
	if (memcmp(v, p, n * sizeof *v)) {
		fprintf(stderr, "dump_tensor: %s: read in pieces differs from the whole\n", t->name);
		rc = 1;
	}
	for (size_t i = 0; i < n && !rc; i++)
		if ((double)f[i] != v[i] && !(f[i] != f[i] && v[i] != v[i])) {
			fprintf(stderr, "dump_tensor: %s: float read differs at %zu\n", t->name, i);
			rc = 1;
		}
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.f64", dir, t->name);
	FILE *o = fopen(path, "wb");
	if (!o || fwrite(v, sizeof *v, n, o) != n) {
		fprintf(stderr, "dump_tensor: cannot write %s\n", path);
		rc = 2;
	}
	if (o)
		fclose(o);
out:
	free(v);
	free(p);
	free(f);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: dump_tensor MODEL OUTDIR\n");
		return 2;
	}
	Model *m;
	char err[512];
	if (model_open(argv[1], &m, err, sizeof err)) {
		fprintf(stderr, "dump_tensor: %s\n", err);
		return 2;
	}
	const TensorTable *tt = model_tensor_table(m);
	int rc = 0;
	for (size_t i = 0; i < tt->n && rc != 2; i++)
		if (tt->v[i].dtype != STORE_UNSUPPORTED) {
			int r = dump_one(&tt->v[i], argv[2]);
			rc = r > rc ? r : rc;
		}
	model_close(m);
	return rc;
}
