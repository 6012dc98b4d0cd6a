#ifndef ROPEFOLD_CORE_FOLD_H
#define ROPEFOLD_CORE_FOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/frame.h"
#include "core/layer.h"
#include "core/rotation.h"
#include "core/status.h"

/* The parts of the block a fold rotates (SPEC 2.1). */
enum {
	PART_Q = 1u << 0,
	PART_K = 1u << 1,
	PART_V = 1u << 2,
	PART_O = 1u << 3,
	PART_ALL = 0xfu
};

/* The theorem's assumptions; a set bit in FoldConfig.dropped drops one. */
typedef enum {
	ASSUME_ORTHOGONAL = 1u << 0,
	ASSUME_COMMUTES = 1u << 1,
	ASSUME_SHARED_QK = 1u << 2,
	ASSUME_PER_HEAD = 1u << 3,
	ASSUME_GQA_CONSISTENT = 1u << 4,
	ASSUME_V_SAME = 1u << 5,
	ASSUME_BIAS = 1u << 6
} Assumption;

#define ASSUME_COUNT 7

typedef struct {
	unsigned rotate;      /* PART_* bits */
	unsigned dropped;     /* Assumption bits */
	RotKind kind;         /* R_q, R_k kind when commutes is dropped */
	bool permute_heads;   /* also rotate the kv groups' order */
	uint64_t seed;        /* draws of every rotation */
	bool layout_set;      /* build R_q, R_k for `layout` rather than for
			       * the layer's own RoPE layout (a checkpoint
			       * whose layout the user overrides: the fold is
			       * then built for the wrong layout) */
	RopeLayout layout;
	bool qk_norm_exact;   /* hold R_q, R_k to angle 0 or pi on every pair
			       * where the layer's learned QK-norm weight
			       * differs (and to sign flips on a non-rotary
			       * block where it varies): the only commuting
			       * rotations the norm commutes with, so the fold
			       * stays exact (SPEC 1). Off: arbitrary angles,
			       * what the theorem alone predicts (check, tui) */
	bool v_hadamard;      /* R_v drawn as a randomised Hadamard (Kronecker
			       * construction for a head dim that is not a
			       * power of two), not Haar: fold --vo hadamard */
	double mix_eps;       /* kind pair-mix: the mixing angle EPS (radians) */
	/* Shown beside the fold, never written by it (core/frame.h): R1 on
	 * the layer's residual block, norm fused or not, and R3 after RoPE,
	 * online or folded (check, the explorer) */
	FrameR1 r1;
	FrameR3 r3;
} FoldConfig;

/* The default: rotate Q K V O, every assumption held, Haar kind. */
FoldConfig fold_config_default(void);

/* What a fold does to each head: the matrices actually applied, identity
 * where a part is not rotated. */
typedef struct {
	size_t n_heads, n_kv_heads, head_dim;
	double *rq;      /* H x d x d: query head h rows become rq_h W_q,h */
	double *rk;      /* G x d x d: kv head g rows of W_k become rk_g W_k,g */
	double *rv;      /* G x d x d: kv head g rows of W_v become rv_g W_v,g */
	double *ro;      /* H x d x d: O column block h becomes W_o,h ro_h^T */
	size_t *perm;    /* G: folded group g holds original group perm[g] */
	bool rotate_bias;
	size_t qk_norm_pinned;     /* qk_norm_exact: RoPE pairs (distinct pair
				    * indices) held to 0 or pi in some group */
	bool qk_norm_tail_pinned;  /* qk_norm_exact: some group's non-rotary
				    * block held to sign flips */
} FoldPlan;

/* Draw the rotations of a configuration for a layer. */
RfStatus fold_plan_build(const Layer *l, const FoldConfig *cfg, FoldPlan *plan);
/* Release a plan. */
void fold_plan_free(FoldPlan *plan);

/* out (d) = R in when rotate, else a copy of in: one bias vector as a
 * fold treats it (the engine, refold and fold_apply all go through it). */
void fold_bias(const double *R, const double *in, double *out, size_t d,
	       bool rotate);

/* Whether one head's QK-norm weight w (d entries) keeps a commuting
 * rotation from commuting with diag(w): w differs within a RoPE pair (of
 * rotary dim r, in layout), or varies over the non-rotary coordinates.
 * When pin is not NULL (r/2 + 1 flags) the offending pairs, and the
 * non-rotary block at index r/2, are also ORed into it. */
bool fold_norm_pins(const double *w, RopeLayout layout, size_t r, size_t d,
		    unsigned char *pin);
/* dst = src with the plan folded in (dst is allocated here). */
RfStatus fold_apply(const Layer *src, const FoldPlan *plan, Layer *dst);
/* The same into a dst that is zeroed or holds an earlier result: its four
 * weight buffers are kept when src's have their sizes (a whole-model fold
 * reuses them from layer to layer; a fresh 336 MB per 8B layer, copied
 * from src before being overwritten, was a sixth of the fold). On an
 * error dst is released. */
RfStatus fold_apply_into(const Layer *src, const FoldPlan *plan, Layer *dst);

/* Assumption names: "orthogonal", "commutes", ... (NULL past the end). */
const char *fold_assumption_name(unsigned index);
/* The bit of a name, or 0 when unknown. */
unsigned fold_assumption_parse(const char *name);
/* Parse a comma-separated list of names into bits (0 on success; *bad
 * points at the first unknown name). "none" is the empty list. */
int fold_drop_parse(const char *list, unsigned *bits, const char **bad);
/* Parse "qkvo", "qk", "none", ... into PART_* bits (0 on success). */
int fold_rotate_parse(const char *s, unsigned *bits);
/* Format PART_* bits as "qkvo" letters, or "none". */
void fold_rotate_format(unsigned bits, char *buf, size_t len);

#endif
