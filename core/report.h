#ifndef ROPEFOLD_CORE_REPORT_H
#define ROPEFOLD_CORE_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

/* The three invariance levels of SPEC 1, weakest first. */
typedef enum {
	LEVEL_SCORE = 0,
	LEVEL_HEAD = 1,
	LEVEL_RESIDUAL = 2,
	LEVEL_COUNT = 3
} LevelId;

typedef enum { PREC_F64 = 0, PREC_F32 = 1 } Precision;

/* Where a compared value was not a finite number (bits of
 * LevelResult.overflow): the arithmetic overflowed, since the readers
 * refuse NaN and Inf weights. */
enum {
	OVERFLOW_ORIGINAL = 1u,   /* the original side's value */
	OVERFLOW_FOLDED = 2u,     /* the folded side's value */
	OVERFLOW_DIFFERENCE = 4u, /* both finite, their difference not */
};

/* One level's verdict and errors (SPEC 2.2). */
typedef struct {
	bool guaranteed;       /* the prediction rules say it must hold */
	bool holds;            /* max_rel_err <= tolerance, and no overflow */
	unsigned overflow;     /* OVERFLOW_* bits of the first non-finite
				* value (the worst location then names it;
				* the errors mean nothing); 0: all finite */
	double max_abs_err;    /* +Inf when overflow is set */
	double max_rel_err;    /* max|diff| / max|reference| */
	double ref_max;        /* max|reference| */
	double eps_units;      /* max_rel_err / machine epsilon */
	size_t worst_head;     /* query head (score, head levels) */
	size_t worst_m;        /* token (query position) */
	size_t worst_n;        /* key position (score level) */
	size_t worst_coord;    /* output coordinate (block levels) */
} LevelResult;

/* The diagnostics behind an explanation (SPEC 2.2). Norms are Frobenius. */
typedef struct {
	double ortho_defect;        /* max ||R^T R - I|| over R_q, R_k, R_v */
	char ortho_part;            /* 'q', 'k' or 'v': where the max is */
	size_t ortho_head;
	double *comm_q;             /* H: ||R_q,h Theta_1 - Theta_1 R_q,h|| */
	double *comm_k;             /* G: the same for R_k,g */
	double comm_max;            /* max of the two arrays */
	size_t npairs;              /* r/2 */
	size_t map_size;            /* npairs, plus 1 for the non-rotary block */
	double *pair_map;           /* H x map_size x map_size: commutator block
				     * norms of R_q,h (off-diagonal: pairs mixed;
				     * diagonal: a pair not a rotation) */
	double *freqs;              /* npairs */
	size_t mix_head;            /* head, pairs of the largest mixing block */
	size_t mix_i, mix_j;        /* equal: a reflection or scale in one pair */
	double mix_norm;
	size_t break_offset;        /* offset near which the commutator shows as
				     * an O(1) score change; 0 when none */
	double qk_mismatch;         /* max_h ||R_q,h - R_k,g(h)|| */
	size_t qk_mismatch_head;
	double gqa_mismatch;        /* max_h ||R_q,h - R_q,first of g(h)|| */
	size_t gqa_mismatch_head;
	double vo_mismatch;         /* max_h ||R_o,h^T R_v,g(h) - I|| */
	size_t vo_mismatch_head;
	bool qk_bias_unrotated;     /* q/k bias left behind by a rotation */
	bool v_bias_unrotated;
	double qk_norm_pair_defect; /* max |w_a - w_b| within a pair of a
				     * learned QK-norm weight */
	bool heads_permuted;        /* the fold reordered kv groups */
	double mix_eps;             /* a pair-mix fold of Q and K: its EPS;
				     * 0 for every other fold */
	size_t mix_break;           /* mix_eps > 0: the offset at which the
				     * score error is predicted to pass the
				     * tolerance (core/pair_mix.h); 0 when it
				     * saturates below it */
} Diagnostics;

/* What diagnose_explain found, in order (core/finding.h): at most this
 * many (it tells at most 22). */
#define REPORT_MAX_FINDINGS 32
typedef struct Finding Finding;

/* Everything one evaluation found. */
typedef struct {
	size_t seq, n_heads, n_kv_heads;
	Precision precision;
	double tol, eps;
	LevelResult level[LEVEL_COUNT];
	double *by_offset;        /* T: max |score error| at offset m - n */
	double *by_offset_ref;    /* T: max |score| at offset m - n */
	double *head_rel_err;     /* H: head-level relative error per head */
	double *score_rel_err;    /* H: score relative error per head */
	size_t heat_bins;         /* B = min(T, 64) */
	double *heat;             /* H x B x B: max |score error| per bin
				   * (bin rows m, columns n); -1 where masked */
	double *heat_diag;        /* H x B: max |score error| over the m = n
				   * entries of bin b alone, so the exact
				   * diagonal survives pooling; -1 when empty */
	Diagnostics diag;
	Finding *findings;        /* REPORT_MAX_FINDINGS: where and why each
				   * level breaks or holds, in the order told
				   * (tui/shared/findings_text words them) */
	size_t n_findings;
} InvReport;

/* Allocate the arrays of a report for a shape; zero the rest. */
RfStatus report_init(InvReport *r, size_t seq, size_t n_heads,
		     size_t n_kv_heads, size_t head_dim, size_t rotary_dim);
/* Release a report. */
void report_done(InvReport *r);
/* Name of a level: "score", "head", "residual". */
const char *level_name(LevelId id);
/* True when every guaranteed level holds (exit status 0). */
bool report_ok(const InvReport *r);

#endif
