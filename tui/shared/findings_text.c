#include "config.h"

#include <stdio.h>

#include "core/dtype.h"
#include "core/rope.h"
#include "tui/shared/findings_text.h"

/* ======================= verify: the relation ============================ */

void findings_verify_relation(const VerifyVerdict *v, char *buf, size_t len)
{
	size_t n = 0;
	double u = v->unit_roundoff;
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
		n += (size_t)snprintf(buf + n, len - n, "equal up to %s rounding",
				      dtype_name_of_roundoff(u));
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
	if (v->rounded && v->relation != VERIFY_REL_ROUNDING && n < len)
		n += (size_t)snprintf(buf + n, len - n, ", up to %s rounding",
				      dtype_name_of_roundoff(u));
	if (v->vo_not_orthogonal && n < len)
		snprintf(buf + n, len - n, " (V/O by an invertible, non-orthogonal map)");
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
		snprintf(buf, len, "%s", finding_code_name(f->code));
		break;
	}
}
