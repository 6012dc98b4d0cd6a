#ifndef ROPEFOLD_DATA_MODEL_H
#define ROPEFOLD_DATA_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/dtype.h"
#include "core/layer.h"

/* An open checkpoint of any supported format, read lazily with pread on
 * its open files: opening reads only headers; model_load_layer() reads
 * one layer.
 *
 * Call sequence: model_open, then model_info and any number of
 * model_load_layer / model_load_embeddings, then model_close. Every
 * function that can fail returns 0, or -1 with one line in err naming the
 * file and the offset or tensor at fault (no trailing newline). */

typedef enum {
	MODEL_FMT_SAFETENSORS = 0,   /* single file or HF folder (sharded too) */
	MODEL_FMT_GGUF = 1,
	MODEL_FMT_LLAMA2C = 2
} ModelFormat;

/* What a checkpoint holds (ropefold info). */
typedef struct {
	ModelFormat format;
	char arch[64];            /* family: "llama", "qwen2", "qwen3", "gemma", ... */
	size_t n_layers;
	LayerShape shape;
	RopeSpec rope;            /* as the model's own runtime applies it */
	size_t vocab;             /* 0 when there are no token embeddings */
	bool biases;              /* q/k/v biases */
	bool o_bias;
	bool qk_norm;
	StoreDtype dtype;         /* of the attention weights (every layer's
				   * converts: model_open checked them) */
	char tensor_q[160];       /* attention tensor names of layer 0 */
	char tensor_k[160];
	char tensor_v[160];
	char tensor_o[160];
	bool fused_qkv;
	char note[1024];          /* "" or one line: the model family is not one
				   * ropefold knows, and what was assumed */
} ModelInfo;

typedef struct Model Model;

/* Open a checkpoint file or folder (format detected from its content). */
int model_open(const char *path, Model **out, char *err, size_t errlen);
/* Open a checkpoint held in memory (p stays alive until model_close): GGUF
 * or llama2.c, or safetensors with the text of its config.json. name is
 * used in messages. For tests and fuzzing. */
int model_open_memory(const void *p, size_t n, const char *config_json, const char *name,
		      Model **out, char *err, size_t errlen);
/* What the checkpoint holds. */
const ModelInfo *model_info(const Model *m);
/* Read layer i into a float64 Layer (allocated here; layer_free it). */
int model_load_layer(Model *m, size_t i, Layer *out, char *err, size_t errlen);
/* Token embeddings of n token ids into out (n x D, row-major). */
int model_load_embeddings(Model *m, const size_t *tokens, size_t n,
			  double *out, char *err, size_t errlen);
/* Close the files and release. */
void model_close(Model *m);
/* "safetensors", "gguf", "llama2c". */
const char *model_format_name(ModelFormat f);

#endif
