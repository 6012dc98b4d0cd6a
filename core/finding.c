#include "config.h"

#include <string.h>

#include "core/finding.h"

Finding finding_make(FindingCode code)
{
	Finding f;
	memset(&f, 0, sizeof f);
	f.code = code;
	f.group = f.head = f.other_head = FINDING_NONE;
	f.pair_i = f.pair_j = FINDING_NONE;
	return f;
}

static const char *const names[FIND_CODE_COUNT] = {
	[FIND_NONE] = "none",
	[FIND_NOTHING_ROTATED] = "nothing-rotated",
	[FIND_EXACT_REWRITE] = "exact-rewrite",
	[FIND_HOLDS_WITHIN_TOL] = "holds-within-tol",
	[FIND_VERDICTS] = "verdicts",
	[FIND_OVERFLOW] = "overflow",
	[FIND_OVERFLOW_ALSO] = "overflow-also",
	[FIND_OVERFLOW_UNCONFIRMED] = "overflow-unconfirmed",
	[FIND_SCORES_WORST] = "scores-worst",
	[FIND_DIAGONAL_SURVIVES] = "diagonal-survives",
	[FIND_ONE_SIDE_ROTATED] = "one-side-rotated",
	[FIND_FOLD_LAYOUT] = "fold-layout",
	[FIND_R_NOT_ORTHOGONAL] = "r-not-orthogonal",
	[FIND_QK_ROTATED_APART] = "qk-rotated-apart",
	[FIND_GROUP_ROTATED_APART] = "group-rotated-apart",
	[FIND_PAIR_NOT_ROTATION] = "pair-not-rotation",
	[FIND_PAIRS_MIXED] = "pairs-mixed",
	[FIND_QK_BIAS_UNROTATED] = "qk-bias-unrotated",
	[FIND_QK_NORM_SPLITS_PAIR] = "qk-norm-splits-pair",
	[FIND_HEADS_PERMUTED] = "heads-permuted",
	[FIND_HEADS_WORST] = "heads-worst",
	[FIND_V_WITHOUT_O] = "v-without-o",
	[FIND_O_WITHOUT_V] = "o-without-v",
	[FIND_VO_NOT_INVERSE] = "vo-not-inverse",
	[FIND_V_BIAS_UNROTATED] = "v-bias-unrotated",
	[FIND_SLOW_MIXING] = "slow-mixing",
	[FIND_GUARANTEE_BROKEN] = "guarantee-broken",
	[FIND_HOLDS_UNGUARANTEED] = "holds-unguaranteed",
	[FIND_MASKED_SCORES] = "masked-scores",
	[FIND_SHAPES_DIFFER] = "shapes-differ",
	[FIND_SCORE_SCALES_DIFFER] = "score-scales-differ",
	[FIND_NOT_FINITE] = "not-finite",
	[FIND_ONE_SIDED] = "one-sided",
	[FIND_NORM_KINDS_DIFFER] = "norm-kinds-differ",
	[FIND_UNTOUCHED_DIFFERS] = "untouched-differs",
	[FIND_K_REFLECTS] = "k-reflects",
	[FIND_K_MIXES_PAIRS] = "k-mixes-pairs",
	[FIND_K_NOT_ORTHOGONAL] = "k-not-orthogonal",
	[FIND_K_UNEXPLAINED] = "k-unexplained",
	[FIND_BK_LEFT] = "bk-left",
	[FIND_BK_UNEXPLAINED] = "bk-unexplained",
	[FIND_Q_GROUP_DIFFERS] = "q-group-differs",
	[FIND_QK_DIFFER] = "qk-differ",
	[FIND_Q_NOT_ORTHOGONAL] = "q-not-orthogonal",
	[FIND_Q_UNEXPLAINED] = "q-unexplained",
	[FIND_BQ_LEFT] = "bq-left",
	[FIND_BQ_UNEXPLAINED] = "bq-unexplained",
	[FIND_QK_NORM_BLOCKS] = "qk-norm-blocks",
	[FIND_V_UNEXPLAINED] = "v-unexplained",
	[FIND_BV_LEFT] = "bv-left",
	[FIND_BV_UNEXPLAINED] = "bv-unexplained",
	[FIND_O_UNCHANGED] = "o-unchanged",
	[FIND_O_OTHER_ROTATION] = "o-other-rotation",
	[FIND_O_UNEXPLAINED] = "o-unexplained",
	[FIND_CONV_MISSED_K] = "conversion-missed-k",
	[FIND_CONV_K_QUERY_HEADS] = "conversion-k-query-heads",
	[FIND_CONV_MISSED_QK] = "conversion-missed-qk",
	[FIND_CONV_UNLABELLED] = "conversion-unlabelled",
	[FIND_RES_EMBED_UNEXPLAINED] = "residual-embeddings-unexplained",
	[FIND_RES_NORM_NOT_FUSED] = "residual-norm-not-fused",
	[FIND_RES_HEAD_TWICE] = "residual-head-rotated-twice",
	[FIND_RES_TIED_HEAD] = "residual-tied-head",
	[FIND_RES_READER] = "residual-reader-unexplained",
	[FIND_RES_WRITER] = "residual-writer-unexplained",
	[FIND_RES_ONLINE_R4] = "residual-online-r4",
	[FIND_RES_ONLINE_R3] = "residual-online-r3",
};

const char *finding_code_name(FindingCode code)
{
	return (unsigned)code < FIND_CODE_COUNT && names[code] ? names[code] : "?";
}
