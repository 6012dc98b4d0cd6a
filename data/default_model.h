#ifndef ROPEFOLD_DATA_DEFAULT_MODEL_H
#define ROPEFOLD_DATA_DEFAULT_MODEL_H

#include <stddef.h>

#include "core/layer.h"

/* The built-in default model is the HF folder default-model/ (config.json
 * and model.safetensors: two layers, D 64, 4 heads, 2 kv heads, head dim
 * 16, half-split RoPE, 128 token embeddings), written by data/gen_default
 * (`make default-model` regenerates it in the source tree). It is looked
 * up in datadir (the front ends pass $ROPEFOLD_DATADIR; NULL: none), then
 * the installed package data folder, then the source tree's data/
 * folder. */

/* Path of the default model folder into buf. Returns 0, or -1 with err
 * naming the places searched. */
int default_model_path(const char *datadir, char *buf, size_t len, char *err, size_t errlen);

/* Load layer 0 of the built-in default model. Returns 0, or -1 with err
 * filled. */
int default_model_load(const char *datadir, Layer *l, char *err, size_t errlen);

#endif
