#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "core/dtype.h"
#include "core/rope.h"
#include "tui/shared/findings_text.h"

/* ======================= check: the explanation ========================= */

/* A growing sentence in buf (len bytes), clamped at the end. */
typedef struct {
	char *buf;
	size_t len, cap;
} Text;

static void add(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(Text *t, const char *fmt, ...)
{
	va_list ap;
	if (t->len + 1 >= t->cap)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n < t->cap - t->len ? (size_t)n : t->cap - t->len - 1;
}

static const char *verdict(const Finding *f, LevelId id)
{
	unsigned bit = 1u << id;
	return f->overflows & bit ? "overflows" : f->levels & bit ? "holds" : "breaks";
}

/* "pair 3" or "the non-rotary block". */
static void group_name(size_t i, char *buf, size_t len)
{
	if (i == FINDING_NON_ROTARY)
		snprintf(buf, len, "the non-rotary block");
	else
		snprintf(buf, len, "pair %zu", i);
}

/* Where a level's first overflow is. */
static void overflow_place(const Finding *f, char *buf, size_t n)
{
	if (f->level == LEVEL_SCORE)
		snprintf(buf, n, "head %zu, (m, n) = (%zu, %zu)", f->head, f->m, f->n);
	else if (f->level == LEVEL_HEAD)
		snprintf(buf, n, "head %zu, token %zu, coordinate %zu", f->head, f->m,
			 f->coord);
	else
		snprintf(buf, n, "token %zu, coordinate %zu", f->m, f->coord);
}

static const char *overflow_side(unsigned bits)
{
	if ((bits & OVERFLOW_ORIGINAL) && (bits & OVERFLOW_FOLDED))
		return "on both sides";
	if (bits & OVERFLOW_ORIGINAL)
		return "on the original side";
	if (bits & OVERFLOW_FOLDED)
		return "on the folded side";
	return "in the difference of the two sides";
}

void findings_sentence(const Finding *f, char *buf, size_t len)
{
	static const char *const subject[LEVEL_COUNT] = {
		"The scores overflow", "The head outputs overflow", "The residual overflows"};
	static const char *const follows[LEVEL_COUNT] = {
		"the scores", "the head outputs", "the residual"};
	Text t = {buf, 0, len};
	char a[96], b[32];
	bool f32 = f->precision == PREC_F32;
	if (!len)
		return;
	buf[0] = 0;
	switch (f->code) {
	case FIND_NOTHING_ROTATED:
		add(&t, "Nothing is rotated: the folded layer is the original.");
		break;
	case FIND_EXACT_REWRITE:
		if (f->flag)
			add(&t, "All three levels hold: the fold is an exact rewrite (max "
				"relative error %.2g, %.1f eps).", f->err, f->eps);
		else
			add(&t, "All three levels hold to roundoff at this input (max relative "
				"error %.2g, %.1f eps), though the theorem does not promise it.",
			    f->err, f->eps);
		break;
	case FIND_HOLDS_WITHIN_TOL:
		add(&t, "All three levels hold within the tolerance %.2g, but not to "
			"roundoff (max relative error %.2g, %.3g eps): equal only up to "
			"that tolerance.", f->tol, f->err, f->eps);
		break;
	case FIND_VERDICTS:
		add(&t, "Score %s, head %s, residual %s.", verdict(f, LEVEL_SCORE),
		    verdict(f, LEVEL_HEAD), verdict(f, LEVEL_RESIDUAL));
		break;
	case FIND_OVERFLOW:
		/* the way out first: the explorer shows two lines of this */
		overflow_place(f, a, sizeof a);
		add(&t, "%s %s at %s (%s): %s.",
		    (unsigned)f->level < LEVEL_COUNT ? subject[f->level] : "?",
		    f32 ? "float32" : "float64", a, overflow_side(f->side),
		    f32 ? "use --precision f64" : "the layer's values are too large for float64");
		break;
	case FIND_OVERFLOW_ALSO: {
		int more = 0;
		for (int i = 0; i < LEVEL_COUNT; i++)
			if (f->overflows & (1u << i))
				add(&t, "%s %s", more++ ? " and" : i == LEVEL_RESIDUAL ? "So does" : "So do",
				    follows[i]);
		add(&t, ".");
		break;
	}
	case FIND_OVERFLOW_UNCONFIRMED:
		if (f32)
			add(&t, "Float32 cannot hold these values, so %s.",
			    f->flag ? "what the theorem guarantees cannot be confirmed here"
				    : "this comparison shows nothing");
		else
			add(&t, "%s.", f->flag ? "What the theorem guarantees cannot be confirmed here"
					       : "This comparison shows nothing");
		break;
	case FIND_SCORES_WORST:
		add(&t, "Scores break worst at head %zu, (m, n) = (%zu, %zu), offset %zu.",
		    f->head, f->m, f->n, f->offset);
		break;
	case FIND_DIAGONAL_SURVIVES:
		add(&t, "The diagonal m = n survives (Theta_0 = I); off it the error depends "
			"on the offset m - n.");
		break;
	case FIND_ONE_SIDE_ROTATED:
		add(&t, "Only %c is rotated, so q.k sees R instead of R^T R = I.", f->part);
		break;
	case FIND_FOLD_LAYOUT:
		add(&t, "The fold was built for the %s layout, but this layer's RoPE pairs "
			"are %s (what its runtime applies): in these pairs the rotation "
			"mixes frequencies.", rope_layout_name(f->layout[0]),
		    rope_layout_name(f->layout[1]));
		break;
	case FIND_R_NOT_ORTHOGONAL:
		add(&t, "R_%c of head %zu is not orthogonal (||R^T R - I|| = %.3g).", f->part,
		    f->head, f->norm);
		break;
	case FIND_QK_ROTATED_APART:
		add(&t, "Q and K are rotated differently (||R_q - R_k|| = %.3g at head %zu).",
		    f->norm, f->head);
		break;
	case FIND_GROUP_ROTATED_APART:
		add(&t, "Query heads of one kv group carry different rotations (head %zu), "
			"but they share one k.", f->head);
		break;
	case FIND_PAIR_NOT_ROTATION:
		group_name(f->pair_i, a, sizeof a);
		add(&t, "R_q of head %zu does not commute with RoPE: inside %s it is not a "
			"rotation (a reflection or a scale), so Theta_p turns into Theta_-p "
			"there.", f->head, a);
		break;
	case FIND_PAIRS_MIXED:
		group_name(f->pair_i, a, sizeof a);
		group_name(f->pair_j, b, sizeof b);
		add(&t, "R_q of head %zu does not commute with RoPE: it mixes %s and %s, "
			"which turn at different frequencies.", f->head, a, b);
		break;
	case FIND_QK_BIAS_UNROTATED:
		add(&t, "The q/k biases were left unrotated while their weights turned.");
		break;
	case FIND_QK_NORM_SPLITS_PAIR:
		add(&t, "The learned QK-norm weight differs within a RoPE pair (by %.3g), so "
			"the norm does not commute with the rotation.", f->norm);
		break;
	case FIND_HEADS_PERMUTED:
		add(&t, "The fold permuted the kv groups (with their query heads): "
			"head-by-head comparisons differ%s.",
		    f->flag ? ", but the residual block sums over heads and does not" : "");
		break;
	case FIND_HEADS_WORST:
		add(&t, "Head outputs break worst at head %zu, token %zu, coordinate %zu.",
		    f->head, f->m, f->coord);
		break;
	case FIND_V_WITHOUT_O:
		add(&t, "V is rotated but O does not absorb R_v^T.");
		break;
	case FIND_O_WITHOUT_V:
		add(&t, "O absorbs R_v^T although V was not rotated.");
		break;
	case FIND_VO_NOT_INVERSE:
		add(&t, "O's R_v^T does not undo R_v (||R_o^T R_v - I|| = %.3g at head %zu): "
			"R_v is not orthogonal.", f->norm, f->head);
		break;
	case FIND_V_BIAS_UNROTATED:
		add(&t, "The v bias was left unrotated.");
		break;
	case FIND_SLOW_MIXING:
		if (f->seq <= 1)
			add(&t, "R mixes frequencies, but at T = %zu the only offset is 0, where "
				"RoPE turns nothing, so no score can change: hypothesis fails; the "
				"break would appear near offset %zu.", f->seq, f->offset);
		else
			add(&t, "R mixes frequencies, but too slowly to show at T = %zu: "
				"hypothesis fails; the break would appear near offset %zu.",
			    f->seq, f->offset);
		break;
	case FIND_GUARANTEE_BROKEN: {
		/* "the score level, but it breaks", "the score, head levels, but
		 * they break" */
		char names[64] = "";
		size_t n = 0, count = 0;
		for (int i = 0; i < LEVEL_COUNT; i++)
			if (f->levels & (1u << i)) {
				n += (size_t)snprintf(names + n, sizeof names - n, "%s%s",
						      n ? ", " : "", level_name((LevelId)i));
				count++;
			}
		add(&t, "BUG: the theorem guarantees the %s level%s, but %s (relative error "
			"up to %.3g > tolerance %.3g): the inputs or the tool are wrong.",
		    names, count > 1 ? "s" : "", count > 1 ? "they break" : "it breaks", f->err,
		    f->tol);
		break;
	}
	case FIND_HOLDS_UNGUARANTEED:
		add(&t, "The %s level holds although the theorem does not guarantee it%s.",
		    level_name(f->level), f->seq == 1 ? " (T = 1: only offset 0 is compared)" : "");
		break;
	case FIND_MASKED_SCORES: {
		char w[80] = "", c[48] = "";
		if (f->value[0] > 0)
			snprintf(w, sizeof w, "sliding window of %.0f tokens%s", f->value[0],
				 f->value[0] >= (double)f->seq ? " (not shorter than T here)" : "");
		if (f->value[1] > 0)
			snprintf(c, sizeof c, "%sscore soft-cap %g", *w ? " and the " : "",
				 f->value[1]);
		add(&t, "The layer's %s%s act%s on the scores, which the fold leaves equal: "
			"masked or capped equal scores stay equal, so the theorem still holds.",
		    w, c, *w && *c ? "" : "s");
		break;
	}
	default:
		add(&t, "%s", finding_code_name(f->code));
		break;
	}
}

void findings_explain(const InvReport *rep, char *buf, size_t len)
{
	Text t = {buf, 0, len};
	char s[FINDINGS_EXPLAIN_MAX];
	if (!len)
		return;
	buf[0] = 0;
	for (size_t i = 0; rep->findings && i < rep->n_findings; i++) {
		findings_sentence(&rep->findings[i], s, sizeof s);
		add(&t, "%s%s", i ? " " : "", s);
	}
}

/* ======================= verify: the relation ============================ */

/* "bf16 rounding", or "Q4_K/Q6_K quantization" when a part of either side
 * is block-quantized (its types in ggml's order). */
static void rounding_words(const VerifyVerdict *v, char *buf, size_t len)
{
	if (!v->quant_types) {
		snprintf(buf, len, "%s rounding", dtype_name_of_roundoff(v->unit_roundoff));
		return;
	}
	size_t n = 0;
	buf[0] = 0;
	for (int t = 0; t < STORE_COUNT && n < len; t++)
		if (v->quant_types & (1u << t))
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "/" : "",
					      dtype_name((StoreDtype)t));
	if (n < len)
		snprintf(buf + n, len - n, " quantization");
}

void findings_verify_relation(const VerifyVerdict *v, char *buf, size_t len)
{
	char rw[160];
	rounding_words(v, rw, sizeof rw);
	size_t n = 0;
	if (!len)
		return;
	buf[0] = 0;
	if (!v->equivalent) {
		snprintf(buf, len, "not equivalent");
		return;
	}
	if (v->layout_converted) {
		n += (size_t)snprintf(buf + n, len - n,
				      "same model up to the layout conversion (%s -> %s)",
				      rope_layout_name(v->rope_a.layout),
				      rope_layout_name(v->rope_b.layout));
		if (v->rotated && n < len)
			n += (size_t)snprintf(buf + n, len - n,
					      ", combined with a commuting fold");
	} else if (v->rotated) {
		n += (size_t)snprintf(buf + n, len - n, "commuting fold");
	} else if (v->relation == VERIFY_REL_IDENTICAL) {
		n += (size_t)snprintf(buf + n, len - n, "identical");
	} else if (!v->heads_permuted) {
		n += (size_t)snprintf(buf + n, len - n, "equal up to %s", rw);
	}
	if (v->heads_permuted && n < len) {
		n += (size_t)snprintf(buf + n, len - n, "%s",
				      n ? " with heads permuted as [" : "heads permuted as [");
		/* room for one more index and the bracket, or stop */
		for (size_t g = 0; g < v->plan.n_kv_heads && n + 24 < len; g++)
			n += (size_t)snprintf(buf + n, len - n, "%s%zu", g ? " " : "",
					      v->plan.perm[g]);
		if (n < len)
			n += (size_t)snprintf(buf + n, len - n, "]");
	}
	if ((v->rounded || (v->quant_types && v->rotated)) &&
	    v->relation != VERIFY_REL_ROUNDING && n < len)
		n += (size_t)snprintf(buf + n, len - n, ", up to %s", rw);
	if (v->vo_not_orthogonal && n < len)
		snprintf(buf + n, len - n, " (V/O by an invertible, non-orthogonal map)");
}

void findings_verify_tolerance(const VerifyVerdict *v, char *buf, size_t len)
{
	bool plus = false;
	for (int k = 0; k < VERIFY_PARTS; k++)
		plus |= v->part_tol[k] > v->tol;
	if (!plus)
		snprintf(buf, len, "tolerance %.3g", v->tol);
	else
		snprintf(buf, len, "tolerance %.3g plus the quantization bound: W_q %.3g, "
			 "W_k %.3g, W_v %.3g, W_o %.3g", v->tol, v->part_tol[VERIFY_Q] - v->tol,
			 v->part_tol[VERIFY_K] - v->tol, v->part_tol[VERIFY_V] - v->tol,
			 v->part_tol[VERIFY_O] - v->tol);
}

/* ======================= verify: the first break ========================= */

/* "query heads 2-3" or "query head 2": the query heads of kv group g. */
static void heads_of(const VerifyVerdict *v, size_t g, char *buf, size_t len)
{
	size_t G = v->shape_a.n_kv_heads;
	size_t hpg = G ? v->shape_a.n_heads / G : 1;
	if (hpg == 1)
		snprintf(buf, len, "query head %zu", g);
	else
		snprintf(buf, len, "query heads %zu-%zu", g * hpg, g * hpg + hpg - 1);
}

/* Pair group i: "pair 3 (w = 0.1)" or "the non-rotary block" (i = npairs). */
static void pair_name(const VerifyVerdict *v, size_t i, char *buf, size_t len)
{
	if (i >= v->npairs || !v->freqs)
		snprintf(buf, len, "the non-rotary block");
	else
		snprintf(buf, len, "pair %zu (w = %.3g)", i, v->freqs[i]);
}

/* The pairs R_k mixes, "pair 0 (w = 1) with pair 1 (w = 0.1); ...", as
 * many as fit in the list (320 bytes). */
static void mixed_list(const VerifyVerdict *v, char list[320])
{
	const CommutantInfo *ci = &v->comm;
	size_t len = 0, cap = 320;
	list[0] = 0;
	for (size_t k = 0; k < ci->n_mixed && len + 64 < cap; k++) {
		char p0[48], p1[48];
		pair_name(v, ci->mixed[k][0], p0, sizeof p0);
		pair_name(v, ci->mixed[k][1], p1, sizeof p1);
		len += (size_t)snprintf(list + len, cap - len, "%s%s with %s",
					k ? "; " : "", p0, p1);
	}
	if (ci->n_mixed_total > ci->n_mixed)
		snprintf(list + len, cap - len, "; and %zu more",
			 ci->n_mixed_total - ci->n_mixed);
}

static const char *other_layout(RopeLayout l)
{
	return rope_layout_name(l == ROPE_HALF ? ROPE_INTERLEAVED : ROPE_HALF);
}

void findings_verify_why(const VerifyVerdict *v, char *buf, size_t len)
{
	const Finding *f = &v->brk;
	const LayerShape *sa = &v->shape_a, *sb = &v->shape_b;
	const char *la = rope_layout_name(v->rope_a.layout);
	const char *lb = rope_layout_name(v->rope_b.layout);
	char heads[48], p0[48], list[320];
	if (!len)
		return;
	buf[0] = 0;
	if (v->why == VERIFY_WHY_NONE)
		return;
	heads_of(v, f->group, heads, sizeof heads);
	switch (f->code) {
	case FIND_SHAPES_DIFFER:
		snprintf(buf, len,
			 "the layers differ in shape or RoPE settings (D %zu/%zu, "
			 "heads %zu/%zu, kv heads %zu/%zu, head dim %zu/%zu, "
			 "rotary dim %zu/%zu, theta %g/%g)",
			 sa->d_model, sb->d_model, sa->n_heads, sb->n_heads,
			 sa->n_kv_heads, sb->n_kv_heads, sa->head_dim, sb->head_dim,
			 v->rope_a.rotary_dim, v->rope_b.rotary_dim, v->rope_a.theta,
			 v->rope_b.theta);
		break;
	case FIND_SCORE_SCALES_DIFFER:
		snprintf(buf, len, "the score scales differ (%g and %g)", f->value[0],
			 f->value[1]);
		break;
	case FIND_NOT_FINITE:
		snprintf(buf, len, "the %s holds a value that is not finite",
			 f->what ? f->what : "layer");
		break;
	case FIND_ONE_SIDED:
		snprintf(buf, len, "%s is present in only one of the two layers",
			 f->tensor);
		break;
	case FIND_NORM_KINDS_DIFFER:
		snprintf(buf, len, "QK-norm weights are per head in one layer and per "
				   "layer in the other");
		break;
	case FIND_UNTOUCHED_DIFFERS:
		snprintf(buf, len, "%s differs from A's (relative difference %.3g); a "
				   "fold leaves it alone", f->tensor, f->err);
		break;
	case FIND_K_REFLECTS:
		pair_name(v, v->comm.reflect[0], p0, sizeof p0);
		snprintf(buf, len,
			 "kv group %zu (%s): the Q/K rotation recovered from W_k is a "
			 "reflection inside %s (%zu pair%s in all): it conjugates "
			 "Theta_p to Theta_-p, so scores change",
			 f->group, heads, p0, v->comm.n_reflect_total,
			 v->comm.n_reflect_total == 1 ? "" : "s");
		break;
	case FIND_K_MIXES_PAIRS: {
		char tail[160] = "";
		mixed_list(v, list);
		if (f->flag)
			snprintf(tail, sizeof tail,
				 "; it would commute in the %s layout: a rotation "
				 "written for the other layout",
				 other_layout(v->rope_a.layout));
		snprintf(buf, len,
			 "kv group %zu (%s): the Q/K rotation recovered from W_k does "
			 "not commute with RoPE in the %s layout: it mixes frequency "
			 "pairs (%s)%s, so scores change with the offset m - n%s",
			 f->group, heads, la,
			 v->comm.n_mixed ? list : "below the listing threshold",
			 v->comm.n_reflect ? " and reflects inside pairs" : "", tail);
		break;
	}
	case FIND_K_NOT_ORTHOGONAL:
		snprintf(buf, len,
			 "kv group %zu (%s): W_k is a linear map of A's but not an "
			 "orthogonal one (||M^T M - I|| = %.3g): scores are rescaled",
			 f->group, heads, f->norm);
		break;
	case FIND_K_UNEXPLAINED:
		snprintf(buf, len,
			 "kv group %zu (%s): W_k differs from A's in a way no rotation "
			 "explains (relative residual %.3g, tolerance %.3g)",
			 f->group, heads, f->err, f->tol);
		break;
	case FIND_BK_LEFT:
		snprintf(buf, len, "kv group %zu (%s): b_k was left as it was while W_k "
				   "was rotated", f->group, heads);
		break;
	case FIND_BK_UNEXPLAINED:
		snprintf(buf, len, "kv group %zu (%s): b_k differs in a way the group's "
				   "rotation does not explain", f->group, heads);
		break;
	case FIND_Q_GROUP_DIFFERS:
		snprintf(buf, len,
			 "query head %zu: W_q is rotated by a different rotation than "
			 "query head %zu of the same kv group %zu (||R_q,h - R_g|| = "
			 "%.3g): under GQA the heads of a group share k and must share "
			 "R_g", f->head, f->other_head, f->group, f->norm);
		break;
	case FIND_QK_DIFFER:
		snprintf(buf, len,
			 "query head %zu: Q and K are folded differently: W_q is "
			 "rotated by an orthogonal R_q that is not kv group %zu's R_k "
			 "(||R_q - R_k|| = %.3g)", f->head, f->group, f->norm);
		break;
	case FIND_Q_NOT_ORTHOGONAL:
		snprintf(buf, len,
			 "query head %zu: W_q is a linear map of A's but not an "
			 "orthogonal rotation shared with K (||M^T M - I|| = %.3g)",
			 f->head, f->norm);
		break;
	case FIND_Q_UNEXPLAINED:
		snprintf(buf, len,
			 "query head %zu: W_q differs from A's in a way no rotation "
			 "explains (relative residual %.3g, tolerance %.3g)",
			 f->head, f->err, f->tol);
		break;
	case FIND_BQ_LEFT:
		snprintf(buf, len, "query head %zu: b_q was left as it was while W_q "
				   "was rotated", f->head);
		break;
	case FIND_BQ_UNEXPLAINED:
		snprintf(buf, len, "query head %zu: b_q differs in a way the group's "
				   "rotation does not explain", f->head);
		break;
	case FIND_QK_NORM_BLOCKS:
		snprintf(buf, len,
			 "kv group %zu (%s): the learned %c-norm weight differs within "
			 "a RoPE pair, and the group's rotation does not commute with "
			 "it (only angles 0 and pi do)", f->group, heads, f->part);
		break;
	case FIND_V_UNEXPLAINED:
		snprintf(buf, len,
			 "kv group %zu (%s): W_v differs from A's in a way no rotation "
			 "explains (relative residual %.3g, tolerance %.3g)",
			 f->group, heads, f->err, f->tol);
		break;
	case FIND_BV_LEFT:
		snprintf(buf, len, "kv group %zu (%s): b_v was left as it was while W_v "
				   "was rotated", f->group, heads);
		break;
	case FIND_BV_UNEXPLAINED:
		snprintf(buf, len, "kv group %zu (%s): b_v differs in a way the group's "
				   "V rotation does not explain", f->group, heads);
		break;
	case FIND_O_UNCHANGED:
		snprintf(buf, len,
			 "query head %zu: O does not absorb V's rotation: the column "
			 "block of W_o is unchanged while W_v of kv group %zu is "
			 "rotated", f->head, f->group);
		break;
	case FIND_O_OTHER_ROTATION:
		snprintf(buf, len,
			 "query head %zu: O does not absorb V's rotation: its column "
			 "block of W_o absorbs a different rotation (||R_o - R_v|| = "
			 "%.3g)%s", f->head, f->norm,
			 f->flag ? " (V's map is not orthogonal)" : "");
		break;
	case FIND_O_UNEXPLAINED:
		snprintf(buf, len,
			 "query head %zu: its column block of W_o differs from A's in "
			 "a way no rotation explains (relative residual %.3g, "
			 "tolerance %.3g)", f->head, f->err, f->tol);
		break;
	case FIND_CONV_MISSED_K:
		snprintf(buf, len,
			 "a layout conversion (%s -> %s) that missed K: Q's rows are "
			 "permuted between the layouts but K's are not, so every key "
			 "is paired with the wrong frequencies", la, lb);
		break;
	case FIND_CONV_K_QUERY_HEADS:
		snprintf(buf, len,
			 "a layout conversion (%s -> %s) that permuted K with the query "
			 "head count (%zu) instead of the kv head count (%zu): K's rows "
			 "moved in blocks of %zu, not %zu",
			 la, lb, sb->n_heads, sb->n_kv_heads,
			 sb->n_heads ? sb->n_kv_heads * sb->head_dim / sb->n_heads : 0,
			 sb->head_dim);
		break;
	case FIND_CONV_MISSED_QK:
		snprintf(buf, len,
			 "the RoPE layout changed (%s -> %s) but the Q/K rows were not "
			 "permuted by the conversion", la, lb);
		break;
	case FIND_CONV_UNLABELLED:
		snprintf(buf, len,
			 "Q/K rows are permuted as by a layout conversion (%s -> %s) "
			 "but the RoPE layout is still %s",
			 la, other_layout(v->rope_a.layout), lb);
		break;
	default:
		if (!findings_residual_sentence(f, buf, len))
			snprintf(buf, len, "%s", finding_code_name(f->code));
		break;
	}
}

/* ---- verify: the residual frame (R1) ------------------------------------- */

static const char *norm_name(char part)
{
	return part == 'a' ? "the attention input norm"
	       : part == 'm' ? "the MLP input norm"
			     : "the final norm";
}

bool findings_residual_sentence(const Finding *f, char *buf, size_t len)
{
	switch (f->code) {
	case FIND_RES_EMBED_UNEXPLAINED:
		snprintf(buf, len, "the embeddings differ in a way no orthogonal rotation of the "
			 "residual stream explains (relative residual %.3g, tolerance %.3g)",
			 f->err, f->tol);
		break;
	case FIND_RES_NORM_NOT_FUSED:
		snprintf(buf, len, "norm weights not fused before R1: %s of B is not one "
			 "(max |w - 1| = %.3g), and a learned norm weight does not commute with a "
			 "rotation of the residual stream", norm_name(f->part), f->err);
		break;
	case FIND_RES_HEAD_TWICE:
		snprintf(buf, len, "the head is rotated twice (it carries R1^2, as when tied "
			 "embeddings are rotated once as embeddings and once as the head; "
			 "relative residual under R1^2 %.3g)", f->err);
		break;
	case FIND_RES_TIED_HEAD:
		snprintf(buf, len, "B ties the head to the rotated embeddings, so the final "
			 "norm's weight cannot be fused into the head (relative residual %.3g); "
			 "the head must be untied", f->err);
		break;
	case FIND_RES_READER:
		snprintf(buf, len, "%s reads the residual stream but R1 (with the norm "
			 "fused) does not explain it (relative residual %.3g, tolerance %.3g)",
			 f->tensor, f->err, f->tol);
		break;
	case FIND_RES_WRITER:
		snprintf(buf, len, "%s writes the residual stream but R1 does not explain it "
			 "(relative residual %.3g, tolerance %.3g)", f->tensor, f->err, f->tol);
		break;
	case FIND_RES_ONLINE_R4:
		snprintf(buf, len, "%s's input columns carry an extra orthogonal matrix (%s) "
			 "that no weight absorbs: an online R4 must run before it (relative "
			 "residual after it %.3g)", f->tensor,
			 f->flag ? "a Hadamard" : "not a Hadamard", f->err);
		break;
	case FIND_RES_ONLINE_R3:
		snprintf(buf, len, "Q/K of kv group %zu carry a rotation (%s) that does not "
			 "commute with RoPE: it needs an online R3 after RoPE, or it is a bug",
			 f->group, f->flag ? "a Hadamard" : "not a Hadamard");
		break;
	default:
		return false;
	}
	return true;
}
