#ifndef ROPEFOLD_DATA_READER_H
#define ROPEFOLD_DATA_READER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"
#include "core/moe_route.h"
#include "data/infile.h"
#include "data/model.h"
#include "data/tensor.h"

/* What a file says about the model, before the family rules apply.
 * Zero means "not stated"; families.c fills the defaults. */
typedef struct {
	char arch[64];             /* GGUF general.architecture, config model_type */
	bool arch_known;           /* a family whose conventions the reader knows;
				    * else they are assumed (ModelInfo.note) */
	char source[64];           /* where these came from: "config.json", "GGUF metadata" */
	size_t n_layers;
	size_t d_model;
	size_t n_heads;
	size_t n_kv_heads;
	size_t head_dim;           /* explicit head dim (Gemma, GGUF key_length) */
	size_t vocab;
	size_t rotary_dim;         /* explicit (GGUF rope.dimension_count) */
	double partial_rotary;     /* fraction of head_dim (Phi-3, NeoX rotary_pct) */
	double theta;              /* 0: 10000 */
	double theta_local;        /* Gemma 3 sliding-window layers, 0 = none */
	size_t sliding_pattern;    /* Gemma 3: layer i global when (i+1) % n == 0 */
	bool layout_set;           /* the format fixes the layout */
	RopeLayout layout;
	RopeScaling scaling;
	char scaling_table[64];    /* where longrope's or rope_freqs' table came
				    * from, for messages: "rope_scaling.short_factor" */
	size_t max_pos;            /* max_position_embeddings, 0 = not stated */
	size_t mrope_section[3];   /* Qwen2-VL M-RoPE pairs per (t, h, w), or 0s */
	double norm_eps;
	double qk_norm_eps;
	double query_pre_attn_scalar;  /* Gemma 2/3 score scale, 0 = none */
	bool norm_plus_one;        /* stored norm weight w means 1 + w (HF Gemma) */
	bool embed_scale_sqrt_d;   /* embeddings times sqrt(D) (Gemma) */
	/* Per-layer kinds, resolved by the reader with the format's rules
	 * (HF's config classes, llama.cpp's loader). */
	size_t sliding_window;     /* tokens of the sliding layers, 0 = none */
	unsigned char *layer_bits; /* n_layers entries of HP_LAYER_*, or NULL when
				    * no layer slides nor is sparse; owned by
				    * the model (freed in model_close) */
	double attn_softcap;       /* Gemma 2 scores c tanh(s / c), 0 = none */
	double final_softcap;      /* Gemma 2 logits likewise, 0 = none */
	/* Mixture of experts (Mixtral, Qwen2/Qwen3-MoE): 0 experts = dense. */
	size_t n_experts;
	size_t experts_per_tok;
	bool norm_topk_prob;       /* renormalise the top-k router weights */
	size_t moe_ff;             /* each expert's intermediate size, 0 = unstated */
	size_t shared_expert_ff;   /* Qwen2-MoE shared expert, 0 = none */
	size_t sparse_step;        /* Qwen-MoE decoder_sparse_step, 0 = 1 */
	/* DeepSeek-V2/V3 multi-head latent attention (0 = not stated):
	 * config.json's keys, GGUF deepseek2.attention.* (data/mla_model.c) */
	size_t q_lora_rank, kv_lora_rank, qk_nope_dim, qk_rope_dim, v_head_dim;
	size_t mla_key_len;        /* GGUF attention.key_length_mla (dn + dr) */
	size_t mla_value_len;      /* GGUF attention.value_length_mla (dv) */
	double mla_mscale;         /* rope_scaling.mscale, 0 = not given */
	double mla_mscale_all_dim; /* rope_scaling.mscale_all_dim, 0 = not given */
	double yarn_log_mul;       /* GGUF rope.scaling.yarn_log_multiplier */
	bool mla_rope_half;        /* HF rope_interleave false: the rope part
				    * is stored half-split (HF's V3 code) */
	/* DeepSeek's experts (data/mla_moe.c): n_experts, experts_per_tok,
	 * norm_topk_prob and moe_ff above, and */
	size_t mla_dense_layers;   /* first_k_dense_replace,
				    * leading_dense_block_count */
	size_t mla_moe_freq;       /* moe_layer_freq, 0 = 1 */
	size_t mla_shared_experts; /* n_shared_experts, expert_shared_count */
	MoeRoute mla_route;        /* scoring, top-k method, groups, scale */
	bool mla_groups_default;   /* n_group or topk_group are
				    * DeepseekV3Config's defaults (8, 4):
				    * config.json states not both */
} Hparams;

/* Layer counts beyond this are refused (families.c); per-layer tables
 * are never allocated past it. */
#define HP_MAX_LAYERS ((size_t)100000)

/* The bits of Hparams.layer_bits. */
enum {
	HP_LAYER_SLIDING = 1u << 0,   /* of the sliding kind: attends within
				       * sliding_window (if any); Gemma 3's
				       * local RoPE */
	HP_LAYER_SPARSE = 1u << 1     /* experts instead of a dense MLP */
};

/* One checkpoint format, ncdu dir_output style. model.c calls, per file:
 *
 *   1. sniff(head, nhead, size) do the first nhead bytes of a file of size
 *                                bytes look like the format?
 *   2. parse(file, tt, hp, err)  read the header of one file (infile_read:
 *                                headers are read into the heap, never
 *                                mapped): append its tensors to tt (every
 *                                byte range checked against the file size,
 *                                no name twice in tt) and fill what the file
 *                                says about the model into hp; a present key
 *                                with a bad value is an error, never a
 *                                default.
 *   3. verify(file, tt, err)     optional: whole-file consistency, once the
 *                                family and every layer's tensors were
 *                                found (safetensors: the tensors tile the
 *                                data buffer exactly).
 *
 * Sharded checkpoints call parse once per shard on the same table. After
 * the last parse, model.c resolves the family (families.c) from tt and hp
 * and checks every layer's attention tensors (names and shapes); tensors
 * are read and converted to double only when a layer is loaded
 * (tensor_read, through the tensor's file). Readers keep no state of their
 * own: everything lives in the open file, tt and hp, so there is nothing
 * to close. */
/* How many first bytes sniff is given (fewer when the file is shorter). */
#define READER_SNIFF_BYTES 4096

typedef struct {
	const char *name;
	ModelFormat format;
	bool (*sniff)(const unsigned char *head, size_t nhead, size_t size);
	int (*parse)(const InFile *f, TensorTable *tt, Hparams *hp,
		     char *err, size_t errlen);
	int (*verify)(const InFile *f, const TensorTable *tt, char *err, size_t errlen);
} ReaderOps;

extern const ReaderOps reader_safetensors;
extern const ReaderOps reader_gguf;
extern const ReaderOps reader_llama2c;

#endif
