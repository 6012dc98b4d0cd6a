#include "config.h"

#include <math.h>
#include <string.h>

#include "core/layout_perm.h"
#include "core/verify_impl.h"

/* The entry of verify: the names, the shape check, B brought into A's
 * layout, one comparison (verify_compare.c), the broken-conversion search
 * when it breaks (verify_layout.c), and the relation that results. */

/* ======================= names ========================================= */

const char *verify_relation_name(VerifyRelation r)
{
	static const char *n[] = {
		"identical", "rounding", "commuting fold", "heads permuted",
		"layout conversion", "not equivalent",
	};
	return (unsigned)r <= VERIFY_REL_NONE ? n[r] : "?";
}

const char *verify_why_name(VerifyWhy w)
{
	static const char *n[] = {
		"none", "shape", "mixes-pairs", "reflection", "not-orthogonal",
		"qk-differ", "gqa-differ", "bias", "qk-norm", "o-not-absorbing",
		"conversion-missed-k", "conversion-missed-qk",
		"conversion-k-query-heads", "conversion-unlabelled", "unexplained",
	};
	return (unsigned)w <= VERIFY_WHY_UNEXPLAINED ? n[w] : "?";
}

const char *verify_within_name(VerifyWithin w)
{
	static const char *n[VERIFY_WITHIN_COUNT] = {
		"holds", "within dtype rounding", "within quantization", "breaks",
	};
	return (unsigned)w < VERIFY_WITHIN_COUNT ? n[w] : "?";
}

VerifyWithin verify_verdict_within(const VerifyVerdict *v)
{
	/* verify_layers' default tolerance at float64's unit roundoff */
	const double exact = 3.0 * 0x1p-53 + 1e-12;
	if (!v->equivalent)
		return VERIFY_WITHIN_BREAKS;
	if (v->max_err > v->tol)
		return VERIFY_WITHIN_QUANT;   /* only a part's quantization bound admits it */
	return v->max_err > exact ? VERIFY_WITHIN_ROUNDING : VERIFY_WITHIN_EXACT;
}

/* ======================= the entry ===================================== */

static bool same_rope_params(const RopeSpec *x, const RopeSpec *y)
{
	return x->rotary_dim == y->rotary_dim && x->theta == y->theta &&
	       x->scaling.kind == y->scaling.kind &&
	       x->scaling.factor == y->scaling.factor &&
	       x->scaling.original_max_pos == y->scaling.original_max_pos &&
	       x->scaling.low_freq_factor == y->scaling.low_freq_factor &&
	       x->scaling.high_freq_factor == y->scaling.high_freq_factor &&
	       x->scaling.beta_fast == y->scaling.beta_fast &&
	       x->scaling.beta_slow == y->scaling.beta_slow &&
	       x->scaling.attention_factor == y->scaling.attention_factor;
}

/* The relation, most specific first (the words are findings_text's). */
static void settle_relation(VerifyVerdict *v)
{
	if (v->equivalent && v->layout_converted)
		v->relation = VERIFY_REL_LAYOUT;
}

RfStatus verify_layers(const Layer *a, const Layer *b,
		       const VerifyOptions *opt, VerifyVerdict *v)
{
	memset(v, 0, sizeof *v);
	verify_verdict_reset(v);
	double u = opt && opt->unit_roundoff > 0 ? opt->unit_roundoff : 0x1p-53;
	v->tol = opt && opt->tol > 0 ? opt->tol : 3.0 * u + 1e-12;
	v->unit_roundoff = u;
	for (int p = 0; p < VERIFY_PARTS; p++) {
		/* W_q is explained by the rotation recovered from W_k, W_o by
		 * the one from W_v: their errors carry over */
		static const int from[VERIFY_PARTS] = {VERIFY_K, -1, -1, VERIFY_V};
		double q = opt ? opt->quant[p] + (from[p] >= 0 ? opt->quant[from[p]] : 0) : 0;
		/* a tolerance given is taken as it is */
		v->part_tol[p] = q > 0 && !(opt->tol > 0) ? v->tol + q : v->tol;
		v->quant_frob[p] = opt ? opt->quant_frob[p] : 0;
	}
	v->quant_types = opt ? opt->quant_types : 0;
	/* per kv group bounds, unless a tolerance was given */
	const double *qg = opt && !(opt->tol > 0) ? opt->quant_group : NULL;
	v->shape_a = a->shape;
	v->shape_b = b->shape;
	v->rope_a = a->rope;
	v->rope_b = b->rope;
	if (layer_shape_check(&a->shape, NULL) != RF_OK ||
	    rope_spec_check(&a->rope, a->shape.head_dim, NULL) != RF_OK)
		return RF_ERR_ARG;
	if (!verify_same_shape(&a->shape, &b->shape) ||
	    !same_rope_params(&a->rope, &b->rope)) {
		Finding f = verify_finding(FIND_SHAPES_DIFFER, LEVEL_SCORE,
					   FINDING_NONE, FINDING_NONE, "", INFINITY);
		verify_break(v, VERIFY_WHY_SHAPE, &f);
		return RF_OK;
	}
	RfStatus st = verify_verdict_alloc(v, a);
	if (st != RF_OK)
		return st;
	Layer conv;
	const Layer *bc = b;
	memset(&conv, 0, sizeof conv);
	if (b->rope.layout != a->rope.layout) {
		st = layout_convert(b, a->rope.layout, &conv);
		if (st != RF_OK)
			return st;
		bc = &conv;
	}
	v->quant_group = qg;
	st = verify_analyse_finite(a, bc, v->tol, opt && opt->finite, opt ? opt->threads : 1, v);
	v->layout_converted = bc != b;
	if (st == RF_OK && !v->equivalent && v->brk.level == LEVEL_SCORE &&
	    v->why != VERIFY_WHY_SHAPE)
		st = verify_try_conversions(a, b, bc, v->tol, v);
	v->quant_group = NULL;
	if (bc != b)
		layer_free(&conv);
	if (st == RF_OK)
		settle_relation(v);
	return st;
}
