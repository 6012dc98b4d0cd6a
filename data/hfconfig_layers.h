#ifndef ROPEFOLD_DATA_HFCONFIG_LAYERS_H
#define ROPEFOLD_DATA_HFCONFIG_LAYERS_H

#include <jansson.h>

#include "data/hfconfig_keys.h"
#include "data/reader.h"

/* The per-layer kinds of an HF config c (hp->arch and hp->n_layers read
 * already): which layers slide and by how much (layer_types, or the
 * family's rule from sliding_window, use_sliding_window,
 * max_window_layers, sliding_window_pattern), Gemma 2's soft-caps, and
 * the mixture-of-experts keys (num_local_experts / num_experts,
 * num_experts_per_tok, norm_topk_prob, moe_intermediate_size,
 * shared_expert_intermediate_size, decoder_sparse_step, mlp_only_layers)
 * with the sparse layers they give. Defaults are those of HF's config
 * classes. Returns 0, or -1 with err naming the file and key. */
int hfconfig_read_layers(json_t *c, const HfKeys *k, Hparams *hp);

#endif
