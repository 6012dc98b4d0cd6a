#ifndef ROPEFOLD_CORE_VERIFY_H
#define ROPEFOLD_CORE_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/attention.h"
#include "core/commutant.h"
#include "core/finding.h"
#include "core/fold.h"
#include "core/layer.h"
#include "core/report.h"
#include "core/status.h"

/* Deciding whether layer B is an exact fold of layer A (SPEC 2, `verify`):
 * per kv group, orthogonal Procrustes recovers R_k from W_k and R_v from
 * W_v; R_k must commute with RoPE in A's layout and explain W_q of every
 * query head of the group and the q/k biases; R_v must explain W_v (and
 * b_v) and the column blocks of W_o. kv groups (with their query heads)
 * may be permuted, and B may be in the other RoPE layout (a format
 * conversion moved its Q/K rows). Everything is judged up to the rounding
 * of the stored dtype, relative to each tensor block's own norm. */

/* How B relates to A, most specific first. */
typedef enum {
	VERIFY_REL_IDENTICAL = 0,   /* bit for bit */
	VERIFY_REL_ROUNDING,        /* equal up to the dtype's rounding */
	VERIFY_REL_COMMUTING_FOLD,  /* rotations folded in */
	VERIFY_REL_HEADS_PERMUTED,  /* kv groups reordered (maybe rotated) */
	VERIFY_REL_LAYOUT,          /* the layout conversion (maybe more) */
	VERIFY_REL_NONE             /* not equivalent */
} VerifyRelation;

/* Why B is not equivalent (the first break). */
typedef enum {
	VERIFY_WHY_NONE = 0,
	VERIFY_WHY_SHAPE,           /* shapes or RoPE settings differ */
	VERIFY_WHY_MIXES_PAIRS,     /* the Q/K rotation mixes frequency pairs */
	VERIFY_WHY_REFLECTION,      /* a reflection inside a pair */
	VERIFY_WHY_NOT_ORTHOGONAL,  /* a linear map, but not orthogonal */
	VERIFY_WHY_QK_DIFFER,       /* Q and K folded differently */
	VERIFY_WHY_GQA_DIFFER,      /* query heads of one group folded apart */
	VERIFY_WHY_BIAS,            /* a bias left behind by its weights */
	VERIFY_WHY_QK_NORM,         /* a QK-norm weight the rotation breaks */
	VERIFY_WHY_O_NOT_ABSORBING, /* W_o does not absorb V's rotation */
	VERIFY_WHY_CONV_MISSED_K,   /* layout conversion left K unpermuted */
	VERIFY_WHY_CONV_MISSED_QK,  /* layout changed, rows not permuted */
	VERIFY_WHY_CONV_K_HEADS,    /* K permuted with H instead of G */
	VERIFY_WHY_CONV_UNLABELLED, /* rows permuted, RoPE layout unchanged */
	VERIFY_WHY_UNEXPLAINED      /* a difference no rotation explains */
} VerifyWhy;

/* The parts of a layer, each judged at the tolerance of its own stored
 * dtypes (a quantized GGUF mixes them: Q4_K_M keeps some W_v at Q6_K):
 * W_q with b_q, W_k with b_k and the QK-norm test, W_v with b_v, W_o. */
typedef enum { VERIFY_Q = 0, VERIFY_K, VERIFY_V, VERIFY_O, VERIFY_PARTS } VerifyPart;

/* What verify_layers() is told. */
typedef struct {
	double unit_roundoff;  /* of the coarser stored float dtype of A and B:
				* 2^-8 bf16, 2^-11 f16, 2^-24 f32, 2^-53 f64;
				* 0 = f64 */
	double tol;            /* relative tolerance; <= 0: 3u + 1e-12 (plus
				* quant below, part by part) */
	/* A block quantization's error per part: the relative bound (in the
	 * measure the checks compare by, max of the Frobenius and the
	 * largest-entry ratio) of A's and B's quantization added up, 0 where
	 * neither side is quantized (data/quant_bound.h derives it from the
	 * formats and the stored scales). W_q's checks also take W_k's (the
	 * rotation that explains W_q is recovered from W_k), W_o's W_v's. */
	double quant[VERIFY_PARTS];
	double quant_frob[VERIFY_PARTS];  /* its Frobenius ratio alone */
	unsigned quant_types;  /* bit 1u << t for each block type t (StoreDtype)
				* A or B stores the layer's attention weights in */
	/* The same bounds per kv group, or NULL (quant alone): at
	 * [(p * 2 + s) * G + g] side s's (0 A, 1 B) bound of part p over the
	 * rows (W_o: the columns) of its own kv group g, from that group's
	 * blocks. Each group's checks are judged at A's and B's bounds of
	 * the groups compared (W_q adding W_k's, W_o W_v's), so one group's
	 * large steps loosen no other; quant stays the printed figure. */
	const double *quant_group;
	bool finite;           /* the caller has checked that every value of
				* both layers is finite (a reader that refuses
				* NaN and Inf): not scanned again */
	size_t threads;        /* workers deciding the kv groups at once (0 or
				* 1: the calling thread alone); the caller
				* makes BLAS single-threaded meanwhile
				* (parallel_blas_single). The verdict is the
				* same for any count. */
} VerifyOptions;

/* The verdict on one layer: data only (tui/shared/findings_text words the
 * relation and the break). */
typedef struct {
	bool equivalent;
	VerifyRelation relation;
	bool rotated;            /* some recovered R is not the identity */
	bool heads_permuted;
	bool layout_converted;   /* B is in the other RoPE layout */
	bool rounded;            /* equal only up to the tolerance */
	bool vo_not_orthogonal;  /* V/O explained by an invertible map */
	double tol;              /* of the weight checks */
	double unit_roundoff;    /* of the coarser stored dtype */
	double part_tol[VERIFY_PARTS];    /* of each part's checks (tol plus its
					   * quantization bound) */
	double quant_frob[VERIFY_PARTS];  /* VerifyOptions' */
	unsigned quant_types;    /* VerifyOptions': 0 when nothing is quantized */
	const double *quant_group;  /* VerifyOptions' while verify_layers runs
				     * (borrowed; NULL after it returns) */
	double confirm_tol;      /* of verify_confirm's levels (set there) */
	double max_err;          /* worst relative error under the relation */

	/* What was compared (the words of the relation and of a break quote
	 * them). */
	LayerShape shape_a, shape_b;
	RopeSpec rope_a, rope_b;

	/* The first break (why != NONE): its class, and what exactly with
	 * the numbers: brk.level (score for Q/K, head for V/O, residual for
	 * b_o), brk.group (kv group of B, FINDING_NONE: layer-wide),
	 * brk.head (query head of B, FINDING_NONE: none), brk.tensor
	 * ("W_q", "W_k", "b_k", ...), brk.err (relative error there). */
	VerifyWhy why;
	Finding brk;
	CommutantInfo comm;      /* for MIXES_PAIRS / REFLECTION */

	/* Recovered relation (A indexing, like FoldPlan): fold_apply(A, plan)
	 * reproduces B (after the layout conversion, when there is one).
	 * rk/rv are always filled; rq/ro per query head. */
	FoldPlan plan;
	size_t npairs;
	bool *commuting;         /* G: R_k of A's group g commutes with RoPE */
	double *angles;          /* G x npairs: pair angles of R_k (A groups) */
	double *freqs;           /* npairs: A's RoPE frequencies (names pairs) */
} VerifyVerdict;

/* Decide whether b is an exact fold of a and fill v (release it with
 * verify_verdict_free, also after an error). */
RfStatus verify_layers(const Layer *a, const Layer *b,
		       const VerifyOptions *opt, VerifyVerdict *v);
/* Release a verdict. */
void verify_verdict_free(VerifyVerdict *v);

/* What verify_confirm may keep between the layers of one run: the
 * rounding noise's moved copy of A (layer_shell_like's). A fresh 336 MB
 * copy per 8B layer was a quarter of verify's time, in the kernel zeroing
 * its new pages. Zero it before the first call; release it with
 * verify_scratch_free. spare, when set, is the caller's b, which it
 * reloads before using it again: once b is evaluated the copy is made in
 * its buffers instead, and noise is never allocated (a third of the
 * memory of a worker of a whole-model verify). engine is the last
 * call's evaluation engine, whose buffers the next call takes over (a
 * float32 engine's weight copies: 336 MB a layer at 8B scale); it is not
 * run again, as its layer may be gone. */
typedef struct {
	Layer noise;
	Layer *spare;
	AttnEngine *engine;
} VerifyScratch;

void verify_scratch_free(VerifyScratch *s);

/* The three-level evaluation of SPEC 2.2 comparing a and b directly on
 * input x (T x D): b is first brought into a's RoPE layout (an exact row
 * permutation) when the verdict found a conversion; the levels are judged
 * at tol (<= 0: the precision's default, or, when the stored dtype is
 * coarser than float64, four times the error its rounding alone causes:
 * a against a with every weight moved by up to the unit roundoff); the
 * tolerance used goes to v->confirm_tol. The head level is not expected
 * to hold when heads are permuted. kernel: the engine's output kernel;
 * threads: its workers and the rounding noise's (0: as many as BLAS
 * has). keep: buffers kept from call to call (NULL: allocated and
 * released here). rep is initialised here (report_done it). */
RfStatus verify_confirm(const Layer *a, const Layer *b, VerifyVerdict *v,
			const double *x, size_t T, Precision prec,
			AttnKernel kernel, size_t threads, double tol, VerifyScratch *keep,
			InvReport *rep);

/* What the verdict's tolerance had to allow for, weakest first (SPEC 4.4:
 * "equal" is judged up to the stored dtype's rounding and each block's
 * quantization step): verify and compare mode report it per layer. */
typedef enum {
	VERIFY_WITHIN_EXACT = 0,    /* within float64's roundoff: holds exactly */
	VERIFY_WITHIN_ROUNDING,     /* needs the stored float dtype's rounding */
	VERIFY_WITHIN_QUANT,        /* needs the quantization bound on top */
	VERIFY_WITHIN_BREAKS,       /* not equivalent */
	VERIFY_WITHIN_COUNT
} VerifyWithin;

/* Which of those v is: its worst error against float64's default
 * tolerance, against the float tolerance v->tol, and the verdict. */
VerifyWithin verify_verdict_within(const VerifyVerdict *v);

/* Short names: "identical", "commuting fold", ... and "mixes-pairs", ...,
 * and "holds", "within dtype rounding", "within quantization", "breaks". */
const char *verify_relation_name(VerifyRelation r);
const char *verify_why_name(VerifyWhy w);
const char *verify_within_name(VerifyWithin w);

#endif
