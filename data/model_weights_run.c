#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "core/rng.h"
#include "data/model_tensors.h"
#include "data/model_weights.h"

/* Head rows converted per block: 4096 rows of an 8B model's D = 4096 are
 * 64 MB in float32, a small part of one layer. */
#define HEAD_BLOCK_ROWS ((size_t)4096)

int model_forward(Model *m, const ModelForwardOpts *o, const size_t *tokens, size_t T,
		  void **logits, size_t *vocab, char *err, size_t errlen)
{
	*logits = NULL;
	*vocab = 0;
	const ModelInfo *info = model_info(m);
	size_t D = info->shape.d_model, L = info->n_layers;
	if (!T || T > LAYER_MAX_SEQ) {
		snprintf(err, errlen, "%s: %zu tokens: the forward pass takes 1 to %zu",
			 model_path(m), T, (size_t)LAYER_MAX_SEQ);
		return -1;
	}
	ModelWeights *w;
	if (model_weights_open(m, o->prec, &w, err, errlen))
		return -1;
	if (o->rope)
		model_weights_set_rope(w, o->rope);
	if (o->perturb > 0)
		model_weights_set_perturb(w, o->perturb, o->perturb_seed);
	size_t V = model_weights_vocab(w), es = fwd_elem_size(o->prec);
	size_t nt = o->nthreads ? o->nthreads : parallel_default_threads();
	FwdState st;
	double *emb = malloc(T * D * sizeof(double));
	void *out = malloc(T * V * es);
	void *rows = NULL;
	int rc = -1;
	memset(&st, 0, sizeof st);
	if (!emb || !out || fwd_state_init(&st, o->prec, T, D, nt) != RF_OK) {
		snprintf(err, errlen, "%s: out of memory for %zu tokens", model_path(m), T);
		goto done;
	}
	if (model_weights_embed(w, tokens, T, emb, err, errlen))
		goto done;
	fwd_state_embed(&st, emb);
	for (size_t i = 0; i < L; i++) {
		FwdLayer fl;
		if (model_weights_layer(w, i, &fl, err, errlen))
			goto done;
		RfStatus s = fwd_layer_apply(&st, &fl);
		if (s != RF_OK) {
			snprintf(err, errlen, "%s: layer %zu: %s", model_path(m), i, rf_status_str(s));
			goto done;
		}
		if (o->progress)
			o->progress(o->progress_ctx, i + 1, L);
	}
	FwdNorm fn;
	if (model_weights_final_norm(w, &fn, err, errlen))
		goto done;
	fwd_final_norm(&st, &fn);
	size_t blk = V < HEAD_BLOCK_ROWS ? V : HEAD_BLOCK_ROWS;
	if (!(rows = malloc(blk * D * es))) {
		snprintf(err, errlen, "%s: out of memory", model_path(m));
		goto done;
	}
	double cap = model_weights_final_softcap(w);
	for (size_t first = 0; first < V; first += blk) {
		size_t n = V - first < blk ? V - first : blk;
		if (model_weights_head(w, first, n, rows, err, errlen))
			goto done;
		fwd_head_rows(&st, rows, n, cap, out, first, V);
	}
	*logits = out;
	*vocab = V;
	out = NULL;
	rc = 0;
done:
	free(rows);
	free(out);
	free(emb);
	fwd_state_done(&st);
	model_weights_close(w);
	return rc;
}

void model_random_tokens(uint64_t seed, size_t V, size_t n, size_t *ids)
{
	Rng r;
	rng_seed(&r, seed, 0x70c3u);
	for (size_t t = 0; t < n; t++)
		ids[t] = (size_t)(rng_next(&r) % V);
}
