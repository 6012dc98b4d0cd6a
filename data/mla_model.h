#ifndef ROPEFOLD_DATA_MLA_MODEL_H
#define ROPEFOLD_DATA_MLA_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/mla.h"
#include "data/families.h"
#include "data/hfconfig_keys.h"
#include "data/model.h"
#include "data/reader.h"
#include "data/tensor.h"

/* DeepSeek-V2/V3 checkpoints (multi-head latent attention): HF
 * DeepseekV2/V3 folders and GGUF `deepseek2`, as their own code reads them.
 * model.c opens the files as usual; when their tensors are MLA's
 * (mla_model_detect) it resolves the family here instead of families.c,
 * and a layer is read with model_load_mla_layer() (model_load_layer()
 * refuses it). Rows are never moved: both formats store the rope part
 * interleaved (DeepSeek's HF code permutes q_pe and k_pe to half-split
 * before rotate_half, which is RoPE on pairs (2i, 2i+1) as stored;
 * llama.cpp's deepseek2 is a NORM-rope arch and its converter does not
 * permute), so the layout reported is interleaved for both; an HF config
 * with rope_interleave false (HF's DeepseekV3 option) stores it half-split. */

/* The tensors of one MLA layer. */
typedef enum {
	MLA_T_Q_A = 0,     /* q_a_proj / attn_q_a, Lq x D (with a q latent) */
	MLA_T_Q_A_NORM,    /* q_a_layernorm / attn_q_a_norm, Lq */
	MLA_T_Q_B,         /* q_b_proj / attn_q_b, H*(dn+dr) x Lq; or q_proj / attn_q */
	MLA_T_KV_A,        /* kv_a_proj_with_mqa / attn_kv_a_mqa, (Lkv+dr) x D */
	MLA_T_KV_A_NORM,   /* kv_a_layernorm / attn_kv_a_norm, Lkv */
	MLA_T_KV_B,        /* kv_b_proj / attn_kv_b, H*(dn+dv) x Lkv; GGUF:
			    * absent when split (below) */
	MLA_T_O,           /* o_proj / attn_output, D x (H*dv) */
	MLA_T_NORM,        /* input_layernorm / attn_norm, D (optional) */
	MLA_T_K_B,         /* GGUF attn_k_b, H x Lkv x dn (data/mla_split.h) */
	MLA_T_V_B,         /* GGUF attn_v_b, H x dv x Lkv; both or neither */
	MLA_T_COUNT
} MlaTensorId;

typedef struct {
	const TensorRef *t[MLA_T_COUNT];   /* NULL where the layer has none */
} MlaLayerTensors;

/* How a layer stores kv_b_proj: as one tensor (HF, GGUF attn_kv_b), split
 * as llama.cpp's newer conversions write it (attn_k_b and attn_v_b), or
 * both (the conversions that kept attn_kv_b beside the split pair). */
typedef enum {
	MLA_KV_B_WHOLE = 0,
	MLA_KV_B_SPLIT,
	MLA_KV_B_BOTH
} MlaKvBLayout;

/* The layout of a layer's tensors. */
MlaKvBLayout mla_kv_b_layout(const MlaLayerTensors *lt);
/* Its name, for info: "kv_b", "k_b+v_b", "kv_b+k_b+v_b". */
const char *mla_kv_b_layout_name(MlaKvBLayout l);
/* The tensors a fold rewrites in a layer of these tensors, into ids (at
 * most MLA_REWRITTEN_MAX): q_b (q_proj), kv_a, o, and kv_b in each form
 * stored. Returns their count. */
#define MLA_REWRITTEN_MAX 6
size_t mla_rewritten(const MlaLayerTensors *lt, MlaTensorId *ids);
/* The coarsest unit roundoff among the tensors a fold rewrites (the
 * stored dtypes of q_b, kv_a, kv_b in each form and o; a block type's half
 * step); their block types into *quant (bit 1u << StoreDtype). */
double mla_rewritten_roundoff(const MlaLayerTensors *lt, unsigned *quant);
/* Tensor id's values of layer l in its stored order, into buf (sized for
 * any of them: mla_values_max) or straight from l: the pointer to use. */
const double *mla_values(const MlaLayer *l, MlaTensorId id, double *buf);
/* The element count mla_values' buf needs. */
size_t mla_values_max(const MlaShape *s);

/* A resolved MLA checkpoint. */
typedef struct {
	const char *scheme;       /* "hf" or "gguf" */
	char prefix[128];         /* before the layers word: "model.", "" */
	const char *layers;       /* "layers." or "blk." */
	const char *const *suffix;  /* MLA_T_COUNT suffixes (q_proj's below) */
	const char *q_proj;       /* the suffix of q without a latent */
	size_t n_layers;
	MlaShape shape;
	RopeSpec rope;            /* of the rope part (rotary_dim = dr) */
	double score_scale;       /* softmax scale, yarn mscale included */
	double norm_eps;          /* of the input norm */
	double latent_eps;        /* of the latent norms (core/mla.h) */
	bool mla_keys;            /* GGUF key_length_mla / value_length_mla
				   * gave the heads' widths */
	/* the experts (data/mla_moe.c): layer i is sparse when n_experts,
	 * i >= dense_layers and i % moe_freq == 0 */
	size_t n_experts;         /* routed experts, 0 = every MLP dense */
	size_t experts_per_tok;
	size_t dense_layers;
	size_t moe_freq;
	size_t shared_experts;    /* n_shared_experts (one MLP of that many) */
	MoeRoute route;
	bool groups_default;      /* route's groups are DeepseekV3Config's
				   * defaults, not config.json's */
} MlaFamily;

/* True when the tensors are MLA's (kv_a_proj_with_mqa, attn_kv_a_mqa). */
bool mla_model_detect(const TensorTable *tt);

/* The MLA keys of a config.json object c (q_lora_rank, kv_lora_rank,
 * qk_nope_head_dim, qk_rope_head_dim, v_head_dim, rope_scaling's mscale
 * and mscale_all_dim) into hp: 0, or -1 with err (a present key with a bad
 * value). */
int mla_hfconfig_read(json_t *c, const HfKeys *k, Hparams *hp);

/* Resolve an MLA checkpoint: its scheme, dims (from hp, checked against
 * every layer's tensors), RoPE and softmax scale, into fam; and the
 * standard family std as far as the embeddings, output head and layer
 * kinds need it. where names the checkpoint. 0, or -1 with one line in err
 * (a DeepSeek checkpoint of an unknown shape lists what was found). */
int mla_family_resolve(const TensorTable *tt, const Hparams *hp, const char *where,
		       MlaFamily *fam, Family *std, char *err, size_t errlen);

/* The tensors of layer i (every one checked when the model opened). */
int mla_layer_tensors(const TensorTable *tt, const MlaFamily *fam, size_t i,
		      MlaLayerTensors *out, char *err, size_t errlen);

/* Read layer i into out (allocated here; mla_free it). */
int mla_read_layer(const TensorTable *tt, const MlaFamily *fam, const char *where, size_t i,
		   MlaLayer *out, char *err, size_t errlen);

/* ---- DeepSeek's experts (data/mla_moe.c) ---------------------------------- */

/* The expert keys of a DeepSeek config.json (n_routed_experts,
 * num_experts_per_tok, n_shared_experts, moe_intermediate_size,
 * first_k_dense_replace, moe_layer_freq, norm_topk_prob,
 * routed_scaling_factor, topk_method, n_group, topk_group, scoring_func)
 * into hp, with DeepseekV2Config's or DeepseekV3Config's defaults by
 * model_type: 0, or -1 with err. */
int mla_moe_hfconfig_read(json_t *c, const HfKeys *k, Hparams *hp);
/* The experts of hp into f (0; the router is checked by mla_moe_check). */
int mla_moe_resolve(const Hparams *hp, const char *where, MlaFamily *f, char *err,
		    size_t errlen);
/* Whether the router's settings fit its experts: 0, or -1 with err. */
int mla_moe_check(const MlaFamily *f, const char *where, char *err, size_t errlen);
/* Whether layer i has experts. */
bool mla_layer_sparse(const MlaFamily *f, size_t i);
/* What info shows of the experts of L layers (ModelInfo.moe). */
void mla_moe_info(const MlaFamily *f, const Hparams *hp, size_t L, ModelMoe *out);

/* ---- defined in model.c ---------------------------------------------------- */

/* Whether an open checkpoint is MLA, and its family (NULL when not). */
const MlaFamily *model_mla(const Model *m);
/* Read MLA layer i of an open checkpoint (allocated here; mla_free it). */
int model_load_mla_layer(Model *m, size_t i, MlaLayer *out, char *err, size_t errlen);

#endif
