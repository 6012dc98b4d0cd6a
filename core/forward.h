#ifndef ROPEFOLD_CORE_FORWARD_H
#define ROPEFOLD_CORE_FORWARD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"
#include "core/mla.h"
#include "core/moe_route.h"
#include "core/rope.h"
#include "core/status.h"

/* The whole decoder, one layer at a time: the caller holds the hidden
 * states of a teacher-forced pass (T x D), gives each layer's weights in
 * turn (converted from the checkpoint just before), and at the end the
 * final norm and the output head in row blocks. Nothing here reads a file
 * or keeps a layer past its call, so memory stays near one layer.
 *
 * Call sequence: fwd_state_init, fwd_state_embed, fwd_layer_apply for
 * every layer in order, fwd_final_norm, fwd_head_rows for every block of
 * head rows, fwd_state_done.
 *
 * Every weight pointer is float * or double * by the layer's (and the
 * state's) precision; matrices are row-major [out][in] as checkpoints
 * store them. */

typedef enum {
	FWD_F64 = 0,
	FWD_F32 = 1
} FwdPrecision;

/* The MLP's nonlinearity. */
typedef enum {
	FWD_ACT_SILU = 0,      /* x sigmoid(x) (SwiGLU when gated) */
	FWD_ACT_GELU_TANH,     /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
	FWD_ACT_GELU_ERF,      /* 0.5 x (1 + erf(x / sqrt 2)) */
	FWD_ACT_RELU
} FwdAct;

/* Where the norms and residual adds of a decoder layer sit. */
typedef enum {
	FWD_BLOCK_PRE = 0,     /* h = x + attn(n1 x); y = h + mlp(n2 h) (Llama) */
	FWD_BLOCK_POST,        /* h = x + n1(attn(x)); y = h + n2(mlp(h)) (OLMo2) */
	FWD_BLOCK_SANDWICH,    /* h = x + p1(attn(n1 x)); y = h + p2(mlp(n2 h)) (Gemma 2/3) */
	FWD_BLOCK_PARALLEL     /* y = x + attn(n1 x) + mlp(n2 x) (GPT-NeoX) */
} FwdBlock;

/* A norm: RMSNorm or LayerNorm, weight (already the effective one, Gemma's
 * 1 + w included) and optional bias, D entries each. */
typedef struct {
	const void *w;         /* D, or NULL: no norm at this place */
	const void *b;         /* D, or NULL */
	NormKind kind;
	double eps;
} FwdNorm;

/* One expert or dense MLP: down(act(gate x) * up x), or down(act(up x))
 * without a gate. */
typedef struct {
	size_t ff;             /* F */
	const void *gate;      /* F x D, or NULL (plain MLP) */
	const void *up;        /* F x D */
	const void *down;      /* D x F */
	const void *b_gate;    /* F, or NULL */
	const void *b_up;      /* F, or NULL */
	const void *b_down;    /* D, or NULL */
} FwdMlp;

/* A mixture of experts in place of the dense MLP (Mixtral, Qwen-MoE). */
typedef struct {
	size_t n_experts;      /* E; 0 = dense */
	size_t top_k;
	bool norm_topk;        /* the k weights renormalised to sum 1 */
	const void *router;    /* E x D */
	const FwdMlp *experts; /* E */
	const FwdMlp *shared;  /* Qwen2-MoE's shared expert, DeepSeek's shared
				* experts (one MLP), or NULL */
	const void *shared_gate;  /* 1 x D: sigmoid(shared_gate x) scales it, or NULL */
	const MoeRoute *route; /* DeepSeek's router (core/moe_route.h), or NULL:
				* softmax top-k (Mixtral, Qwen-MoE) */
	const void *score_bias;   /* E: DeepSeek-V3's e_score_correction_bias, or NULL */
} FwdMoe;

/* DeepSeek's multi-head latent attention in place of wq..wo (the formulas
 * in core/mla.h); weights of the state's precision, row-major [out][in]. */
typedef struct {
	MlaShape shape;
	RopeSpec rope;          /* of the rope part: rotary_dim = dr */
	const void *q_a;        /* Lq x D, or NULL (q_b is q_proj) */
	const void *q_a_norm;   /* Lq, or NULL */
	const void *q_b;        /* H*(dn+dr) x Lq, or H*(dn+dr) x D */
	const void *kv_a;       /* (Lkv + dr) x D: rows [latent; k_pe] */
	const void *kv_a_norm;  /* Lkv */
	const void *kv_b;       /* H*(dn+dv) x Lkv: per head rows [k_nope; v] */
	const void *wo;         /* D x (H*dv) */
	double latent_eps;      /* of q_a_norm and kv_a_norm */
	double score_scale;     /* 0 = 1/sqrt(dn+dr) */
} FwdMla;

/* A dense MLP's matrices may arrive one at a time: the whole-model pass
 * reads the next while the current one multiplies, so memory holds two
 * matrices in turn rather than two whole layers. need gives part p's
 * weights once read (NULL: the read failed, and the layer stops with
 * RF_ERR_SOURCE); done says the pass is through with them. The parts are
 * asked for in the order up, gate (when gated), down. */
typedef enum { FWD_PART_UP, FWD_PART_GATE, FWD_PART_DOWN } FwdPart;
typedef struct {
	const void *(*need)(void *ctx, FwdPart p);
	void (*done)(void *ctx, FwdPart p);
	void *ctx;
	bool gated;             /* a gate matrix comes between up and down */
} FwdParts;

/* One decoder layer's weights and settings. */
typedef struct {
	LayerShape shape;
	RopeSpec rope;
	size_t window;          /* query m sees keys m - W < n <= m; 0 = all n <= m */
	double attn_softcap;    /* c tanh(s / c) on the scores, 0 = none */
	double score_scale;     /* 0 = 1/sqrt(d) */
	const void *wq, *wk, *wv, *wo;   /* (H*d) x D, (G*d) x D, (G*d) x D, D x (H*d) */
	const void *bq, *bk, *bv, *bo;   /* H*d, G*d, G*d, D, or NULL */
	const void *q_norm, *k_norm;     /* d (per head) or H*d / G*d, or NULL */
	bool qk_norm_per_head;
	double qk_norm_eps;
	FwdBlock block;
	FwdNorm attn_norm;      /* before attention (PRE, SANDWICH, PARALLEL) */
	FwdNorm post_attn_norm; /* on attention's output (POST, SANDWICH) */
	FwdNorm ffn_norm;       /* before the MLP (PRE, SANDWICH, PARALLEL) */
	FwdNorm post_ffn_norm;  /* on the MLP's output (POST, SANDWICH) */
	FwdAct act;
	FwdMlp mlp;             /* the dense MLP (when moe.n_experts is 0) */
	const FwdParts *parts;  /* or NULL; else mlp's gate, up and down are NULL
				 * and come through it */
	FwdMoe moe;
	const FwdMla *mla;      /* DeepSeek MLA instead of wq..wo, rope, q/k norms
				 * and window, or NULL */
} FwdLayer;

/* The hidden states of one pass and the buffers reused by every layer. */
typedef struct {
	FwdPrecision prec;
	size_t T, D;
	size_t nthreads;
	void *x;                /* T x D hidden states */
	RopeTable rope;         /* the last layer's cos/sin tables, kept while the
				 * next layer's RoPE is the same (rope_spec_equal) */
	RopeSpec rope_spec;
	bool have_rope;
	void *mlp_h;            /* the MLP's hidden activations (2 T F values),
				 * kept from layer to layer: at 8B scale they pass
				 * malloc's mmap threshold, and a fresh mapping
				 * each layer is pages zeroed again */
	size_t mlp_h_bytes;
} FwdState;

/* Buffers for T positions of width D; nthreads workers for the heads. */
RfStatus fwd_state_init(FwdState *s, FwdPrecision prec, size_t T, size_t D, size_t nthreads);
/* Set the hidden states to emb (T x D float64, the scaled embeddings). */
void fwd_state_embed(FwdState *s, const double *emb);
/* Run one decoder layer on the hidden states. */
RfStatus fwd_layer_apply(FwdState *s, const FwdLayer *l);
/* Apply the final norm in place (n.w NULL: none). */
RfStatus fwd_final_norm(FwdState *s, const FwdNorm *n);
/* Logits of head rows [0, n) (rows: n x D, of the state's precision) into
 * out columns [col, col + n) of a T x V row-major matrix of the state's
 * precision (ld V); softcap > 0 applies c tanh(z / c). */
void fwd_head_rows(const FwdState *s, const void *rows, size_t n, double softcap,
		   void *out, size_t col, size_t V);
/* Release the buffers. */
void fwd_state_done(FwdState *s);

/* What one MLA attention computed, for the evaluation (core/mla_inv.c):
 * buffers of the state's precision, allocated here, free()d by the caller. */
typedef struct {
	void *q, *k;            /* T x H x (dn+dr): per head [nope; Theta pe] */
	void *v;                /* T x H x dv */
	void *ctx;              /* T x (H*dv) */
	void *y;                /* T x D: the attention update */
} FwdMlaTrace;

/* The MLA attention of the state's hidden states (no input norm), every
 * intermediate kept; the hidden states are left alone. */
RfStatus fwd_mla_trace(FwdState *s, const FwdMla *m, FwdMlaTrace *out);
/* Bytes of one element in a precision. */
size_t fwd_elem_size(FwdPrecision p);

#endif
