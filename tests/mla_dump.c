/* Prints, as one JSON object, an input x (T x D, seeded N(0,1) rows) and
 * the attention update y = o_proj(MLA(x)) that ropefold computes for one
 * layer of a DeepSeek MLA checkpoint, for tests/mla_reference.py:
 *
 *     mla_dump PATH LAYER T SEED
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/mla.h"
#include "data/mla_model.h"
#include "data/model.h"

static void print_array(const char *key, const double *v, size_t n)
{
	printf("\"%s\": [", key);
	for (size_t i = 0; i < n; i++)
		printf("%s%.17g", i ? ", " : "", v[i]);
	printf("]");
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: mla_dump PATH LAYER T SEED\n");
		return 2;
	}
	char err[1024];
	Model *m;
	if (model_open(argv[1], &m, err, sizeof err)) {
		fprintf(stderr, "mla_dump: %s\n", err);
		return 2;
	}
	MlaLayer l;
	size_t layer = strtoul(argv[2], NULL, 10), T = strtoul(argv[3], NULL, 10);
	if (model_load_mla_layer(m, layer, &l, err, sizeof err)) {
		fprintf(stderr, "mla_dump: %s\n", err);
		model_close(m);
		return 2;
	}
	size_t D = l.shape.d_model;
	double *x = malloc(T * D * sizeof(double));
	MlaSide s;
	if (!x || mla_forward(&l, (layer_random_input(strtoull(argv[4], NULL, 10), T, D, x), x),
			      T, &s) != RF_OK) {
		fprintf(stderr, "mla_dump: evaluation failed\n");
		return 2;
	}
	printf("{\"T\": %zu, \"D\": %zu, ", T, D);
	print_array("x", x, T * D);
	printf(", ");
	print_array("y", s.y, T * D);
	printf("}\n");
	mla_side_done(&s);
	mla_free(&l);
	free(x);
	model_close(m);
	return 0;
}
