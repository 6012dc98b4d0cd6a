#ifndef ROPEFOLD_DATA_MODEL_H
#define ROPEFOLD_DATA_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/dtype.h"
#include "core/layer.h"
#include "core/mla.h"
#include "data/dtype_mix.h"

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

/* A mixture of experts in place of the dense MLP (Mixtral, Qwen2-MoE,
 * Qwen3-MoE), as the config or the GGUF metadata states it: read for the
 * whole-model forward pass; attention is as in a dense model. */
typedef struct {
	size_t n_experts;         /* 0: a dense model */
	size_t experts_per_tok;   /* the router's top k */
	bool norm_topk_prob;      /* the k weights renormalised to sum 1 */
	size_t expert_ff;         /* an expert's intermediate size, 0 = unstated */
	size_t shared_expert_ff;  /* Qwen2-MoE's shared expert, 0 = none */
	size_t sparse_step;       /* decoder_sparse_step (1 when unstated) */
	size_t n_sparse;          /* layers with experts (the rest dense) */
	char router[64];          /* per-layer router tensor suffix:
				   * ".mlp.gate.weight", ".ffn_gate_inp.weight" */
} ModelMoe;

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
	DtypeMix dtypes;          /* of every tensor of the checkpoint */
	DtypeMix attn_dtypes[4];  /* of W_q, W_k, W_v, W_o of every layer (a
				   * fused W_qkv is counted under W_q) */
	char tensor_q[160];       /* attention tensor names of layer 0 */
	char tensor_k[160];
	char tensor_v[160];
	char tensor_o[160];
	bool fused_qkv;
	char note[1024];          /* "" or one line: the model family is not one
				   * ropefold knows, and what was assumed */
	/* What the family adds (zero when it adds nothing); per layer in
	 * model_layer_kind(). */
	double theta_local;       /* RoPE base of the sliding layers, no
				   * scaling (Gemma 3); 0 = as rope */
	size_t sliding_window;    /* tokens of the sliding layers, 0 = none */
	size_t n_sliding;         /* layers of the sliding kind */
	double attn_softcap;      /* scores c tanh(s / c) (Gemma 2), 0 = none */
	double final_softcap;     /* logits likewise, 0 = none */
	size_t mrope_section[3];  /* M-RoPE pairs per (t, h, w) (Qwen2-VL) */
	char rope_table[64];      /* where longrope's or rope_freqs' factors
				   * came from, "" without */
	ModelMoe moe;
	/* DeepSeek multi-head latent attention (data/mla_model.h): shape
	 * then holds D, H, one kv head (the shared k_pe) and head dim
	 * dn + dr, rope the rope part's; layers are read with
	 * model_load_mla_layer */
	bool mla;
	MlaShape mla_shape;
	double mla_score_scale;   /* softmax scale, yarn mscale included */
	int mla_kv_b;             /* how kv_b is stored (MlaKvBLayout) */
} ModelInfo;

/* What one layer is beyond its weights. */
typedef struct {
	RopeSpec rope;            /* its RoPE (longrope: both factor sets) */
	bool sliding;             /* of the sliding kind (local, Gemma 3) */
	size_t sliding_window;    /* keys it sees back, 0 = every earlier one */
	double attn_softcap;      /* 0 = none */
	bool sparse;              /* experts instead of a dense MLP */
} ModelLayerKind;

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
/* What layer i is beyond its weights (i < n_layers, else -1). */
int model_layer_kind(const Model *m, size_t i, ModelLayerKind *out);
/* Read layer i into a float64 Layer (allocated here; layer_free it). */
int model_load_layer(Model *m, size_t i, Layer *out, char *err, size_t errlen);
/* The same into a Layer a model_load_layer of this model filled before
 * (or zeroed): its weight buffers are reused when the layers hold the same
 * tensors, so a loop over the layers touches no fresh pages; on failure
 * *l is released. */
int model_reload_layer(Model *m, size_t i, Layer *l, char *err, size_t errlen);

/* Layer i's attention weights in float32, for the float32 forward pass,
 * each in a Layer's shape (NULL where the Layer's is NULL). */
typedef struct {
	float *wq, *wk, *wv, *wo, *bq, *bk, *bv, *bo, *q_norm, *k_norm, *attn_norm, *attn_norm_bias;
	bool qk_norm_per_head;
} LayerFloats;
/* Layer i read straight to float32 (no float64 copy): *hdr gets what
 * model_load_layer gives but the weights (its pointers NULL), *out the
 * weights, in buffers alloc(ctx, n) gives (n floats, the caller's to keep
 * and release). NaN or Inf is refused with model_load_layer's words. */
int model_load_layer_float(Model *m, size_t i, Layer *hdr, LayerFloats *out,
			   float *(*alloc)(void *ctx, size_t n), void *ctx, char *err, size_t errlen);
/* Token embeddings of n token ids into out (n x D, row-major). */
int model_load_embeddings(Model *m, const size_t *tokens, size_t n,
			  double *out, char *err, size_t errlen);
/* Close the files and release. */
void model_close(Model *m);
/* "safetensors", "gguf", "llama2c". */
const char *model_format_name(ModelFormat f);

#endif
