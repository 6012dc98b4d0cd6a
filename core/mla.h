#ifndef ROPEFOLD_CORE_MLA_H
#define ROPEFOLD_CORE_MLA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/layer.h"
#include "core/status.h"

/* Multi-head latent attention (DeepSeek-V2/V3), as DeepSeek's modelling
 * code defines it. For a row x (D):
 *
 *   q      = q_b (rmsnorm(q_a x) * q_a_norm)     or q_proj x      H x (dn+dr)
 *   [c; kp]= kv_a x                              c: Lkv, kp: dr (one head)
 *   kv     = kv_b (rmsnorm(c) * kv_a_norm)       H x (dn+dv)
 *   q_h    = [q_nope_h (dn); q_pe_h (dr)],  kv_h = [k_nope_h (dn); v_h (dv)]
 *   s_h(m, n) = scale (q_nope_h . k_nope_h + (Theta_m q_pe_h) . (Theta_n kp))
 *   y      = W_o concat_h(softmax(s_h) v_h)
 *
 * The RoPE key kp is one head shared by every query head, so the rope
 * part has a single kv group; the nope part has one per head and RoPE
 * does not act on it (SPEC 4.3). */

typedef struct {
	size_t d_model;       /* D */
	size_t n_heads;       /* H */
	size_t q_lora_rank;   /* Lq: q through a latent of this rank; 0 = q_proj */
	size_t kv_lora_rank;  /* Lkv */
	size_t qk_nope_dim;   /* dn: per-head q/k coordinates RoPE leaves alone */
	size_t qk_rope_dim;   /* dr: per-head q and shared k coordinates RoPE turns */
	size_t v_head_dim;    /* dv */
} MlaShape;

/* One MLA layer in float64; matrices row-major [out][in]. */
typedef struct {
	MlaShape shape;
	RopeSpec rope;        /* of the rope part: rotary_dim = dr, pairs in
			       * its layout (the checkpoints store them
			       * interleaved) */
	double *q_a;          /* Lq x D, or NULL with q_proj */
	double *q_a_norm;     /* Lq, or NULL with q_proj */
	double *q_b;          /* H*(dn+dr) x Lq; q_proj: H*(dn+dr) x D; per
			       * head rows [nope (dn); pe (dr)] */
	double *kv_a;         /* (Lkv + dr) x D: rows [latent c; k_pe] */
	double *kv_a_norm;    /* Lkv */
	double *kv_b;         /* H*(dn+dv) x Lkv: per head rows [k_nope; v] */
	double *wo;           /* D x (H*dv) */
	double *attn_norm;    /* D: the layer's input norm weight, or NULL */
	double norm_eps;      /* of the input RMSNorm */
	double latent_eps;    /* of q_a_layernorm and kv_a_layernorm: 1e-6 in
			       * DeepSeek's code (its RMSNorm default, whatever
			       * rms_norm_eps says), the file's RMS eps in
			       * llama.cpp */
	double score_scale;   /* multiplies q.k; 0 = 1/sqrt(dn+dr) */
} MlaLayer;

/* Check a shape: positive and bounded sizes, dr even (Lq may be 0). */
RfStatus mla_shape_check(const MlaShape *s, const char **why);
/* Per-head q/k width dn + dr. */
static inline size_t mla_qk_dim(const MlaShape *s)
{
	return s->qk_nope_dim + s->qk_rope_dim;
}
/* Allocate zeroed tensors (latent norms set to 1); with_attn_norm adds a
 * D-entry input norm. */
RfStatus mla_alloc(MlaLayer *l, const MlaShape *s, bool with_attn_norm);
/* Release every tensor and zero the struct. */
void mla_free(MlaLayer *l);
/* Deep copy (dst allocated here). */
RfStatus mla_copy(MlaLayer *dst, const MlaLayer *src);
/* A seeded random layer: projections N(0, 1/fan_in), latent norm weights
 * N(1, 0.1^2) (so they are not the identity), rope as given. */
RfStatus mla_random(MlaLayer *l, const MlaShape *s, const RopeSpec *rope,
		    uint64_t seed);
/* True when every tensor is finite; names the first bad one. */
bool mla_is_finite(const MlaLayer *l, const char **tensor);
/* The score scale used (score_scale, or 1/sqrt(dn+dr)). */
double mla_score_scale(const MlaLayer *l);
/* DeepSeek's yarn_get_mscale: 0.1 m ln(s) + 1 for s > 1, else 1. */
double mla_yarn_mscale(double scale, double mscale);

/* A layer header without weights that the reports, the predictions and
 * the explanation read: D, H, one kv head (the shared k_pe), head dim
 * dn + dr of which dr rotary, no biases, no QK-norm. */
void mla_header(const MlaLayer *l, Layer *hdr);

/* One side's attention, for tests and the evaluation: the q and k that
 * meet in the scores (RoPE applied), the values and the attention update.
 * Buffers are allocated by mla_forward and released by mla_side_done. */
typedef struct {
	size_t T;
	double *q;     /* T x H x (dn+dr): per head [q_nope; Theta q_pe] */
	double *k;     /* T x H x (dn+dr): per head [k_nope; Theta k_pe] */
	double *v;     /* T x H x dv */
	double *ctx;   /* T x (H*dv): softmax(s_h) v_h, heads side by side */
	double *y;     /* T x D: ctx W_o^T, the attention update */
} MlaSide;

/* Evaluate the layer on x (T x D, row-major) with causal softmax. */
RfStatus mla_forward(const MlaLayer *l, const double *x, size_t T, MlaSide *out);
/* Release a side. */
void mla_side_done(MlaSide *s);

#endif
