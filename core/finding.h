#ifndef ROPEFOLD_CORE_FINDING_H
#define ROPEFOLD_CORE_FINDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/layer.h"
#include "core/report.h"

/* Findings are data: what check's diagnosis (diagnose_explain, into
 * InvReport.findings, in the order they are told) and verify's weight
 * checks (VerifyVerdict.brk) found, each a code plus the numbers it is
 * about. core/ records them and
 * never words them; tui/shared/findings_text turns them into sentences, for
 * the CLI's text and JSON and the explorer alike, so rewording never
 * touches the math and a test asserts on the code. */

/* An index a finding does not have (a layer-wide break has no group). */
#define FINDING_NONE SIZE_MAX
/* The pair index of the non-rotary coordinates (a partial rotary head). */
#define FINDING_NON_ROTARY (SIZE_MAX - 1)

/* What was found. Beside each code, the fields its words quote; a verify
 * break also has level, group, head (B's), tensor and err (see
 * VerifyVerdict.brk), and reads the verdict's shapes, layouts, pair
 * frequencies and CommutantInfo. */
typedef enum {
	FIND_NONE = 0,

	/* ---- check: the verdicts ------------------------------------------- */
	FIND_NOTHING_ROTATED,      /* every level holds: nothing was rotated */
	FIND_EXACT_REWRITE,        /* every level holds to roundoff: err, eps
				    * (the worst of the three levels) */
	FIND_HOLDS_WITHIN_TOL,     /* every level holds, not to roundoff: tol,
				    * err, eps */
	FIND_VERDICTS,             /* levels: those that hold; overflows: those
				    * that overflow (the rest break) */
	FIND_OVERFLOW,             /* level (the weakest that overflows) and its
				    * place head, m, n, coord; side; precision */
	FIND_OVERFLOW_ALSO,        /* overflows: the stronger levels that do too */
	FIND_OVERFLOW_UNCONFIRMED, /* precision; flag: a guaranteed level
				    * overflows */
	/* ---- check: why the scores break ------------------------------------ */
	FIND_SCORES_WORST,         /* head, m, n, offset: the worst score */
	FIND_DIAGONAL_SURVIVES,    /* m = n holds, off it the offset matters */
	FIND_ONE_SIDE_ROTATED,     /* part 'Q' or 'K': the only one rotated */
	FIND_FOLD_LAYOUT,          /* layout[0]: the fold's, layout[1]: the layer's */
	FIND_R_NOT_ORTHOGONAL,     /* part 'q' or 'k', head (group for k), norm:
				    * ||R^T R - I|| */
	FIND_QK_ROTATED_APART,     /* head, norm: ||R_q - R_k|| */
	FIND_GROUP_ROTATED_APART,  /* head: its group's heads carry different R */
	FIND_PAIR_NOT_ROTATION,    /* head, pair_i: R_q reflects or scales there */
	FIND_PAIRS_MIXED,          /* head, pair_i, pair_j: R_q mixes them */
	FIND_QK_BIAS_UNROTATED,
	FIND_QK_NORM_SPLITS_PAIR,  /* norm: max |w_a - w_b| within a pair */
	/* ---- check: the blocks ---------------------------------------------- */
	FIND_HEADS_PERMUTED,       /* flag: the residual still holds */
	FIND_HEADS_WORST,          /* head, m, coord: the worst head output */
	FIND_V_WITHOUT_O,          /* V rotated, O not */
	FIND_O_WITHOUT_V,          /* O rotated, V not */
	FIND_VO_NOT_INVERSE,       /* head, norm: ||R_o^T R_v - I|| */
	FIND_V_BIAS_UNROTATED,
	/* ---- check: against the prediction ---------------------------------- */
	FIND_SLOW_MIXING,          /* seq, offset: R mixes pairs, too slowly to
				    * show at this T; the break would appear
				    * near offset */
	FIND_GUARANTEE_BROKEN,     /* levels: guaranteed ones that break; err
				    * (the largest), tol */
	FIND_HOLDS_UNGUARANTEED,   /* level, seq */
	FIND_MASKED_SCORES,        /* the scores hold under the layer's sliding
				    * window value[0] (0 = none) and soft-cap
				    * value[1] (0 = none); seq */

	/* ---- verify: layer-wide -------------------------------------------- */
	FIND_SHAPES_DIFFER,        /* shapes or RoPE settings differ */
	FIND_SCORE_SCALES_DIFFER,  /* value[0] (A), value[1] (B) */
	FIND_NOT_FINITE,           /* what: the tensor, as layer_is_finite names it */
	FIND_ONE_SIDED,            /* tensor is in only one of the two layers */
	FIND_NORM_KINDS_DIFFER,    /* QK-norm per head in one, per layer in the other */
	FIND_UNTOUCHED_DIFFERS,    /* tensor, err: one a fold leaves alone */

	/* ---- verify: the Q/K side of group `group` -------------------------- */
	FIND_K_REFLECTS,           /* R_k reflects inside a pair (comm.reflect) */
	FIND_K_MIXES_PAIRS,        /* R_k mixes pairs (comm.mixed); flag: it
				    * would commute in the other layout */
	FIND_K_NOT_ORTHOGONAL,     /* norm: ||M^T M - I|| of the linear map */
	FIND_K_UNEXPLAINED,        /* err, tol */
	FIND_BK_LEFT,              /* b_k kept while W_k turned */
	FIND_BK_UNEXPLAINED,
	FIND_Q_GROUP_DIFFERS,      /* head, other_head (the group's first), norm:
				    * ||R_q,h - R_g|| */
	FIND_QK_DIFFER,            /* head, norm: ||R_q - R_k|| */
	FIND_Q_NOT_ORTHOGONAL,     /* head, norm: ||M^T M - I|| */
	FIND_Q_UNEXPLAINED,        /* head, err, tol */
	FIND_BQ_LEFT,              /* head */
	FIND_BQ_UNEXPLAINED,       /* head */
	FIND_QK_NORM_BLOCKS,       /* part 'q' or 'k': its learned norm weight
				    * differs within a pair */

	/* ---- verify: the V/O side of group `group` -------------------------- */
	FIND_V_UNEXPLAINED,        /* err, tol */
	FIND_BV_LEFT,
	FIND_BV_UNEXPLAINED,
	FIND_O_UNCHANGED,          /* head: W_o's block kept while W_v turned */
	FIND_O_OTHER_ROTATION,     /* head, norm: ||R_o - R_v||; flag: V's map
				    * is not orthogonal */
	FIND_O_UNEXPLAINED,        /* head, err, tol */

	/* ---- verify: a broken layout conversion (A's and B's layouts) ------- */
	FIND_CONV_MISSED_K,        /* Q's rows permuted, K's not */
	FIND_CONV_K_QUERY_HEADS,   /* K permuted with H instead of G */
	FIND_CONV_MISSED_QK,       /* the layout changed, the rows did not */
	FIND_CONV_UNLABELLED,      /* the rows moved, the label did not */

	/* ---- verify: the residual frame (core/verify_residual.h; the layer
	 * is VerifyResidual.layer) --------------------------------------- */
	FIND_RES_EMBED_UNEXPLAINED, /* err, tol: no orthogonal R1 explains E_B */
	FIND_RES_NORM_NOT_FUSED,    /* part 'a' (attention), 'm' (MLP), 'f'
				     * (final): B's norm weight is not one; err:
				     * max |w_B - 1| */
	FIND_RES_HEAD_TWICE,        /* err: the head carries R1 twice (a tied
				     * head rotated as embeddings and head) */
	FIND_RES_TIED_HEAD,         /* B ties its head to the rotated embeddings,
				     * so the final norm cannot be fused */
	FIND_RES_READER,            /* tensor, err, tol: a reader R1 does not
				     * explain */
	FIND_RES_WRITER,            /* tensor, err, tol: a writer R1 does not
				     * explain */
	FIND_RES_ONLINE_R4,         /* tensor, err; flag: the extra rotation of
				     * down_proj's input columns is a Hadamard */
	FIND_RES_ONLINE_R3,         /* group; flag: the non-commuting Q/K
				     * rotation is a Hadamard */

	FIND_CODE_COUNT
} FindingCode;

/* One finding: the code and its numbers; fields a code does not use are
 * zero, indices FINDING_NONE. */
typedef struct Finding Finding;
struct Finding {
	FindingCode code;
	LevelId level;           /* the level it is about */
	size_t group;            /* kv group */
	size_t head;             /* query head */
	size_t other_head;       /* the query head it is compared with */
	char tensor[16];         /* "W_q", "W_k", "b_k", "W_v", "W_o", ... ("") */
	const char *what;        /* a static name (FIND_NOT_FINITE) */
	double err;              /* a relative error */
	double tol;              /* the tolerance err was judged at */
	double norm;             /* a defect or a gap, Frobenius */
	double value[2];         /* a quantity of A and of B */
	char part;               /* a part of the fold: 'q', 'k', ... */
	bool flag;               /* a yes/no the words depend on (per code) */
	/* check's: */
	unsigned levels;         /* a set of levels, bit 1u << LevelId */
	unsigned overflows;      /* a set of levels that overflow */
	size_t m, n, coord;      /* query token, key token, output coordinate */
	size_t offset;           /* a relative offset m - n */
	size_t pair_i, pair_j;   /* frequency pairs (or FINDING_NON_ROTARY) */
	size_t seq;              /* T, the tokens compared */
	double eps;              /* err in units of machine epsilon */
	unsigned side;           /* OVERFLOW_* bits: which side overflowed */
	Precision precision;     /* of the evaluation */
	RopeLayout layout[2];    /* two RoPE layouts (per code) */
};

/* A finding of code with everything else zero and no indices
 * (group, head, other_head, pair_i, pair_j FINDING_NONE). */
Finding finding_make(FindingCode code);
/* Short machine names: "shapes-differ", ... (tests, messages). */
const char *finding_code_name(FindingCode code);

#endif
