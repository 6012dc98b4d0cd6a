#ifndef ROPEFOLD_CORE_FRAME_H
#define ROPEFOLD_CORE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/layer.h"
#include "core/status.h"

/* Two rotations of QuaRot/SpinQuant shown on one layer: why R1 needs
 * norm fusion, and why R3 cannot be folded (SPEC 4.2).
 *
 * R1 rotates the residual stream: x -> R1 x, R1 a randomised Hadamard of
 * width D (core/residual.h, Kronecker with the identity when D is not a
 * power of two). The pre-attention block out = x + Attn(RMSNorm_w(x)),
 * RMSNorm_w(x) = w * x / rms(x), is rotated as the fold writes it: readers
 * W_q, W_k, W_v -> W diag(w) R1^T with the norm's weight set to 1 (fused),
 * writer W_o -> R1 W_o, b_o -> R1 b_o; R1^T out'(R1 x) = out(x) to
 * rounding. Unfused (readers W R1^T, the norm kept as w * R1 x / rms)
 * leaves diag(w) R1 where R1 diag(w) should be: rms(R1 x) = rms(x)
 * commutes with R1, diag(w) does not unless every w_i is equal.
 *
 * R3 is a Hadamard on every head's q and k after RoPE: online (applied at
 * run time) it leaves every score equal, (H q) . (H k) = q . k; folded
 * into W_q, W_k (before RoPE, the only place a weight can hold it) the
 * score at offset p becomes q^T H^T Theta_p H k, not q^T Theta_p k, since
 * H does not commute with Theta_p: exact at p = 0 (Theta_0 = I), growing
 * with p. R3 must stay online.
 *
 * Always evaluated in float64; data only (tui/shared/findings_frame.c
 * words it). */

typedef enum {
	FRAME_R1_NONE = 0,
	FRAME_R1_FUSED,       /* norm weight folded into the readers, set to 1 */
	FRAME_R1_UNFUSED,     /* readers W R1^T, the norm keeps w */
	FRAME_R1_COUNT
} FrameR1;

typedef enum {
	FRAME_R3_NONE = 0,
	FRAME_R3_ONLINE,      /* H applied to q and k after RoPE */
	FRAME_R3_FOLDED,      /* H folded into W_q, W_k rows (before RoPE) */
	FRAME_R3_COUNT
} FrameR3;

/* What the R1 setting found. */
typedef struct {
	FrameR1 mode;
	bool guaranteed;      /* fused, or every w_i equal (diag(w) = cI) */
	bool holds;           /* max_rel_err <= tol */
	bool w_drawn;         /* the layer has no RMSNorm weight: w drawn for
			       * the demonstration (frame_r1_weight) */
	bool w_equal;         /* every w_i the same: unfused holds too */
	double w_min, w_max;
	double max_abs_err;   /* max |R1^T out'(R1 x) - out(x)| */
	double max_rel_err;   /* over max |Attn(RMSNorm(x))|, the update, so
			       * the residual add cannot hide a break */
	double ref_max;
	size_t worst_token, worst_coord;
	double commutator;    /* ||diag(w) R1 - R1 diag(w)||_F */
	double w_norm;        /* ||diag(w)||_F, its scale */
} FrameR1Result;

/* What the R3 setting found, at the score level (V and O are untouched,
 * so equal scores give equal outputs). */
typedef struct {
	FrameR3 mode;
	bool guaranteed;      /* online */
	bool holds;
	double max_abs_err;   /* max |score' - score| over heads, n <= m */
	double max_rel_err;   /* over max |score| */
	double ref_max;
	size_t worst_head, worst_m, worst_n;
	size_t seq;
	double *by_offset;    /* seq: max |score' - score| at offset m - n,
			       * over max |score| */
	size_t break_offset;  /* the first offset past tol; 0 when none */
	double commutator;    /* max over kv groups of ||H Theta_1 - Theta_1 H||_F */
	bool qk_norm;         /* the layer's QK-norm sits between W_q, W_k and
			       * RoPE: folded, H must pass it too (its weight
			       * does not commute with H), so even offset 0
			       * breaks */
	size_t head_dim;
} FrameR3Result;

/* Both settings and what they found (mode NONE: not evaluated). */
typedef struct {
	FrameR1Result r1;
	FrameR3Result r3;
	double tol;           /* what both were judged at */
} FrameReport;

/* The norm weight of the demonstration (D): the layer's RMSNorm weight,
 * or, when it has none, w_i = 1 + U(-1/2, 1/2) drawn from seed. */
void frame_r1_weight(const Layer *l, uint64_t seed, double *w, bool *drawn);
/* R1 (D x D, row-major): the randomised Hadamard of core/residual. */
RfStatus frame_r1_rotation(size_t D, uint64_t seed, double *R);
/* The per-group Hadamard of R3 (G x d x d, row-major): R_k of a fold of
 * Q and K by kind hadamard (core/fold.h); query head h takes group h/(H/G)'s. */
RfStatus frame_r3_rotations(const Layer *l, uint64_t seed, double *Hk);

/* Evaluate R1's setting on l with input rows x (T x D) as the residual
 * stream, w its norm weight (D; NULL: frame_r1_weight), judged at tol.
 * RMS norms only (a LayerNorm layer: RF_ERR_ARG). */
RfStatus frame_r1_evaluate(const Layer *l, const double *w, const double *x, size_t T,
			   FrameR1 mode, uint64_t seed, double tol, FrameR1Result *out);
/* Evaluate R3's setting on l with attention input x (T x D); out->by_offset
 * is allocated here (frame_report_done releases it). */
RfStatus frame_r3_evaluate(const Layer *l, const double *x, size_t T, FrameR3 mode,
			   uint64_t seed, double tol, FrameR3Result *out);
/* Both (a mode NONE is skipped); rep is initialised here. */
RfStatus frame_evaluate(const Layer *l, const double *x, size_t T, FrameR1 r1, FrameR3 r3,
			uint64_t seed, double tol, FrameReport *rep);
/* A deep copy of src into dst (dst's arrays are allocated here). */
RfStatus frame_report_copy(FrameReport *dst, const FrameReport *src);
/* True unless a guaranteed setting breaks (a bug: exit 1). */
bool frame_report_ok(const FrameReport *rep);
/* Release a report's arrays. */
void frame_report_done(FrameReport *rep);

/* The widest D the R1 demonstration draws a dense R1 for. */
#define FRAME_R1_MAX_DIM ((size_t)8192)

/* Names ("none", "fused", "unfused"; "none", "online", "folded") and
 * parsers (0 on success). */
const char *frame_r1_name(FrameR1 m);
int frame_r1_parse(const char *s, FrameR1 *out);
const char *frame_r3_name(FrameR3 m);
int frame_r3_parse(const char *s, FrameR3 *out);

#endif
