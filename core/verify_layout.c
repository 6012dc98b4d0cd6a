#include "config.h"

#include <string.h>

#include "core/layout_perm.h"
#include "core/verify_impl.h"

/* The layout-conversion search: when B's Q/K break, try the classic broken
 * format conversions (K left unpermuted, K permuted with the query head
 * count, rows not permuted, rows permuted but the label kept) and name the
 * one that explains B. */

/* Try a hypothesis about a broken conversion: cand (in a's layout) is
 * what B would be had the conversion been done right. When it explains
 * B, the verdict becomes that named break. */
static RfStatus try_candidate(const Layer *a, const Layer *cand, double tol,
			      VerifyVerdict *v, VerifyWhy why, FindingCode code)
{
	VerifyVerdict t;
	memset(&t, 0, sizeof t);
	memcpy(t.part_tol, v->part_tol, sizeof t.part_tol);
	RfStatus st = verify_verdict_alloc(&t, a);
	if (st == RF_OK)
		st = verify_analyse(a, cand, tol, &t);
	if (st == RF_OK && t.equivalent) {
		/* Keep the recovered relation of the hypothesis. */
		FoldPlan keep = v->plan;
		bool *kc = v->commuting;
		double *ka = v->angles;
		v->plan = t.plan;
		v->commuting = t.commuting;
		v->angles = t.angles;
		t.plan = keep;
		t.commuting = kc;
		t.angles = ka;
		Finding f = verify_finding(code, LEVEL_SCORE, 0, 0, "W_k", v->brk.err);
		v->why = VERIFY_WHY_NONE;
		verify_break(v, why, &f);
		v->equivalent = false;
		v->relation = VERIFY_REL_NONE;
		v->heads_permuted = t.heads_permuted;
	}
	verify_verdict_free(&t);
	return st;
}

/* After a Q/K break, test the classic broken conversions. */
RfStatus verify_try_conversions(const Layer *a, const Layer *b,
				const Layer *bc, double tol, VerifyVerdict *v)
{
	RfStatus st = RF_OK;
	Layer cand;
	if (b->rope.layout != a->rope.layout) {
		/* K left as it was (Q converted). */
		st = layer_copy(&cand, bc);
		if (st != RF_OK)
			return st;
		memcpy(cand.wk, b->wk, b->shape.n_kv_heads * b->shape.head_dim *
				       b->shape.d_model * sizeof(double));
		if (b->bk)
			memcpy(cand.bk, b->bk, b->shape.n_kv_heads *
					       b->shape.head_dim * sizeof(double));
		st = try_candidate(a, &cand, tol, v, VERIFY_WHY_CONV_MISSED_K,
				   FIND_CONV_MISSED_K);
		layer_free(&cand);
		if (st != RF_OK || v->why == VERIFY_WHY_CONV_MISSED_K)
			return st;
		/* K permuted with the query head count. */
		Layer kw;
		if (b->shape.n_heads != b->shape.n_kv_heads &&
		    layout_convert_k_wrong_heads(b, b->rope.layout, &kw) == RF_OK) {
			st = layer_copy(&cand, bc);
			if (st == RF_OK) {
				memcpy(cand.wk, kw.wk, b->shape.n_kv_heads *
						       b->shape.head_dim *
						       b->shape.d_model * sizeof(double));
				if (b->bk)
					memcpy(cand.bk, kw.bk, b->shape.n_kv_heads *
							       b->shape.head_dim *
							       sizeof(double));
				st = try_candidate(a, &cand, tol, v,
						   VERIFY_WHY_CONV_K_HEADS,
						   FIND_CONV_K_QUERY_HEADS);
				layer_free(&cand);
			}
			layer_free(&kw);
			if (st != RF_OK || v->why == VERIFY_WHY_CONV_K_HEADS)
				return st;
		}
		/* Neither Q nor K permuted: b as stored, in a's layout. */
		st = layer_copy(&cand, b);
		if (st != RF_OK)
			return st;
		cand.rope.layout = a->rope.layout;
		st = try_candidate(a, &cand, tol, v, VERIFY_WHY_CONV_MISSED_QK,
				   FIND_CONV_MISSED_QK);
		layer_free(&cand);
		return st;
	}
	/* Same label: were the rows moved to the other layout regardless? */
	Layer relabel;
	st = layer_copy(&relabel, b);
	if (st != RF_OK)
		return st;
	RopeLayout other = a->rope.layout == ROPE_HALF ? ROPE_INTERLEAVED
						       : ROPE_HALF;
	relabel.rope.layout = other;
	st = layout_convert(&relabel, a->rope.layout, &cand);
	layer_free(&relabel);
	if (st != RF_OK)
		return st;
	st = try_candidate(a, &cand, tol, v, VERIFY_WHY_CONV_UNLABELLED,
			   FIND_CONV_UNLABELLED);
	layer_free(&cand);
	return st;
}
