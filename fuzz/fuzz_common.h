#ifndef ROPEFOLD_FUZZ_FUZZ_COMMON_H
#define ROPEFOLD_FUZZ_FUZZ_COMMON_H

/* The body every reader's fuzz target runs: open the bytes as a checkpoint
 * (config_json for safetensors), then read up to four layers and a few
 * token embeddings, so that every byte range the reader accepted is also
 * converted. AddressSanitizer turns any read out of bounds into a crash. */

#include <stdint.h>
#include <stdlib.h>

#include "data/mla_model.h"
#include "data/model.h"

/* Read what an open model holds, as check and fold would. */
static inline void fuzz_read_model(Model *m)
{
	char err[512];
	const ModelInfo *in = model_info(m);
	for (size_t i = 0; i < in->n_layers && i < 4; i++) {
		Layer l;
		MlaLayer ml;
		if (model_mla(m)) {
			if (model_load_mla_layer(m, i, &ml, err, sizeof err) == 0)
				mla_free(&ml);
		} else if (model_load_layer(m, i, &l, err, sizeof err) == 0) {
			layer_free(&l);
		}
	}
	if (in->vocab) {
		size_t tok[3] = {0, in->vocab / 2, in->vocab - 1};
		double *e = malloc(3 * in->shape.d_model * sizeof(double));
		if (e)
			model_load_embeddings(m, tok, 3, e, err, sizeof err);
		free(e);
	}
}

static inline void fuzz_one(const uint8_t *data, size_t size, const char *config_json)
{
	Model *m;
	char err[512];
	if (model_open_memory(data, size, config_json, "fuzz", &m, err, sizeof err))
		return;
	fuzz_read_model(m);
	model_close(m);
}

#endif
