#ifndef ROPEFOLD_CORE_LAYER_H
#define ROPEFOLD_CORE_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Which coordinates form RoPE pair i (SPEC 1). */
typedef enum {
	ROPE_HALF = 0,        /* (i, i + r/2): HF rotate_half, GPT-NeoX */
	ROPE_INTERLEAVED = 1  /* (2i, 2i + 1): GPT-J, Meta, llama.cpp normal */
} RopeLayout;

typedef enum {
	ROPE_SCALING_NONE = 0,
	ROPE_SCALING_LINEAR,
	ROPE_SCALING_NTK,
	ROPE_SCALING_YARN,
	ROPE_SCALING_LLAMA3,
	ROPE_SCALING_LONGROPE,     /* Phi-3: per-pair divisors, short or long set by T */
	ROPE_SCALING_FREQ_FACTORS  /* GGUF rope_freqs: per-pair divisors (llama3 files) */
} RopeScalingKind;

/* The per-pair tables of longrope and rope_freqs hold at most this many
 * pairs: rotary dim 512, twice the largest of published models (Phi-3
 * longrope has 48 pairs, Llama 3.1's rope_freqs 64). */
#define ROPE_MAX_TABLE_PAIRS 256

/* A frequency scaling rule with the parameters HF's rope utilities use.
 * Zero fields take the documented defaults in rope_frequencies(). */
typedef struct {
	RopeScalingKind kind;
	double factor;             /* longrope: max / original positions, for the
				    * attention factor only; rope_freqs: 1 */
	double original_max_pos;   /* yarn (4096), llama3 (8192); longrope: the
				    * switch, long factors when T exceeds it;
				    * ntk: the length it stretches past (HF's
				    * dynamic rule), 0 = at full stretch */
	double low_freq_factor;    /* llama3 (1) */
	double high_freq_factor;   /* llama3 (4) */
	double beta_fast;          /* yarn (32) */
	double beta_slow;          /* yarn (1) */
	double attention_factor;   /* yarn, longrope cos/sin scale; 0 = the rule's
				    * default (yarn 0.1 ln(factor) + 1, longrope
				    * sqrt(1 + ln(factor) / ln(original))) */
	size_t n_pairs;            /* longrope, rope_freqs: entries of the tables */
	double factors[ROPE_MAX_TABLE_PAIRS];      /* w_i / factors[i]: rope_freqs,
						    * longrope's short_factor */
	double long_factors[ROPE_MAX_TABLE_PAIRS]; /* longrope's long_factor */
} RopeScaling;

typedef struct {
	RopeLayout layout;
	size_t rotary_dim;         /* r <= head_dim, even; 0 = no rotation */
	double theta;              /* base, e.g. 10000 */
	RopeScaling scaling;
} RopeSpec;

typedef struct {
	size_t d_model;            /* D */
	size_t n_heads;            /* H */
	size_t n_kv_heads;         /* G, divides H */
	size_t head_dim;           /* d, even */
} LayerShape;

typedef enum {
	NORM_RMS = 0,              /* x / rms(x) * w */
	NORM_LAYER = 1             /* (x - mean) / std * w + b */
} NormKind;

/* The weights of one attention layer, always held in float64.
 * Matrices are row-major [out][in], the checkpoint convention. */
typedef struct {
	LayerShape shape;
	RopeSpec rope;
	double *wq;        /* (H*d) x D */
	double *wk;        /* (G*d) x D */
	double *wv;        /* (G*d) x D */
	double *wo;        /* D x (H*d) */
	double *bq;        /* H*d, or NULL */
	double *bk;        /* G*d, or NULL */
	double *bv;        /* G*d, or NULL */
	double *bo;        /* D, or NULL */
	double *q_norm;    /* QK-norm weight on q: d (per head) or H*d, or NULL */
	double *k_norm;    /* QK-norm weight on k: d (per head) or G*d, or NULL */
	bool qk_norm_per_head;  /* true: q_norm/k_norm have d entries, shared by heads */
	double qk_norm_eps;
	double *attn_norm;      /* D: the layer's input norm weight, or NULL */
	double *attn_norm_bias; /* D: LayerNorm bias, or NULL */
	NormKind attn_norm_kind;
	double norm_eps;
	double score_scale;     /* multiplies q.k; 0 = 1/sqrt(d) */
	/* Applied by the evaluation (engine and attention_forward); a
	 * commuting fold leaves every score unchanged, so neither changes a
	 * verdict (masking or capping equal scores keeps them equal). */
	size_t sliding_window;  /* query m sees keys m - W < n <= m; 0 = all n <= m */
	double attn_softcap;    /* scores s become c tanh(s / c) before the mask
				 * (Gemma 2); 0 = none */
} Layer;

/* Which optional tensors layer_alloc() creates. */
enum {
	LAYER_WITH_QKV_BIAS = 1u << 0,
	LAYER_WITH_O_BIAS = 1u << 1,
	LAYER_WITH_QK_NORM = 1u << 2,  /* per-head QK-norm (d entries each) */
	LAYER_WITH_ATTN_NORM = 1u << 3
};

/* Largest sizes accepted anywhere; beyond them a request is refused. */
#define LAYER_MAX_DIM ((size_t)1 << 17)
#define LAYER_MAX_HEADS ((size_t)4096)
#define LAYER_MAX_HEAD_DIM ((size_t)4096)
#define LAYER_MAX_SEQ ((size_t)1 << 16)
#define LAYER_MAX_ELEMS ((size_t)1 << 31)

/* Check a shape: sizes positive and bounded, H divisible by G, d even. */
RfStatus layer_shape_check(const LayerShape *s, const char **why);
/* Check a RoPE spec against a head dim: r even and <= d, theta > 0. */
RfStatus rope_spec_check(const RopeSpec *r, size_t head_dim, const char **why);
/* The default RoPE of a shape: half-split, full rotary, theta 10000. */
RopeSpec rope_spec_default(size_t head_dim);

/* Allocate zeroed tensors for a shape; flags pick the optional ones. */
RfStatus layer_alloc(Layer *l, const LayerShape *s, unsigned flags);
/* Release every tensor and zero the struct. */
void layer_free(Layer *l);
/* Deep copy src into dst (dst is allocated here). */
RfStatus layer_copy(Layer *dst, const Layer *src);
/* dst as a copy of src's small tensors (norms, biases, settings) with
 * four weight buffers of src's sizes whose values are left to the caller:
 * dst's own when its shape is src's, else new ones. dst is zeroed or
 * holds an earlier result; on an error it is released. Buffers kept from
 * layer to layer spare the kernel zeroing fresh pages (336 MB per 8B
 * layer). */
RfStatus layer_shell_like(Layer *dst, const Layer *src);
/* A seeded random layer: weights N(0, 1/D), biases N(0, 0.1^2). */
RfStatus layer_random(Layer *l, const LayerShape *s, const RopeSpec *rope,
		      bool with_bias, uint64_t seed);
/* True when every weight and bias is finite; names the first bad tensor. */
bool layer_is_finite(const Layer *l, const char **tensor);
/* Bytes of the layer's float64 weights. */
size_t layer_bytes(const Layer *l);
/* The score scale actually used (score_scale, or 1/sqrt(d)). */
/* The first key query m sees: m - W + 1 under a sliding window W (HF's
 * Mistral and Gemma 2 masks: key n visible iff m - W < n <= m), else 0. */
size_t layer_first_key(const Layer *l, size_t m);
double layer_score_scale(const Layer *l);
/* Query heads per kv group. */
static inline size_t layer_group_size(const Layer *l)
{
	return l->shape.n_heads / l->shape.n_kv_heads;
}

/* T x D seeded N(0,1) activations. */
void layer_random_input(uint64_t seed, size_t T, size_t D, double *x);
/* Apply the layer's input norm (rows of emb, T x D) into x; with no norm
 * weight this is a plain RMS normalisation. */
void layer_input_norm(const Layer *l, const double *emb, size_t T, double *x);

#endif
