#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/commutant.h"
#include "core/procrustes.h"
#include "core/rope.h"
#include "core/verify_impl.h"

/* The Q/K side of one kv group: R_k recovered from W_k must be orthogonal,
 * commute with RoPE in A's layout, and explain W_q of every query head of
 * the group, the q/k biases and a learned QK-norm weight. */

/* Name pair group i: "pair 3 (w = 0.1)" or "the non-rotary block". */
static void pair_name(const VerifyCtx *c, size_t i, char *buf, size_t len)
{
	if (i >= c->np)
		snprintf(buf, len, "the non-rotary block");
	else
		snprintf(buf, len, "pair %zu (w = %.3g)", i, c->freqs[i]);
}

/* R (orthogonal, explains W_k) does not commute: say how. */
static RfStatus explain_noncommuting(VerifyCtx *c, const double *R, size_t gb,
				     size_t ga, double err)
{
	VerifyVerdict *v = c->v;
	CommutantInfo ci;
	double thr = 10.0 * c->tol + 1e-9;
	RfStatus st = commutant_analyse(R, &c->a->rope, c->freqs, c->d, thr, &ci);
	if (st != RF_OK)
		return st;
	/* Would it commute in the other layout? */
	RopeSpec other = c->a->rope;
	other.layout = other.layout == ROPE_HALF ? ROPE_INTERLEAVED : ROPE_HALF;
	commutant_project(R, &other, c->freqs, c->d, c->R2);
	double e_other = verify_rows_err(c, c->R2, c->a->wk + ga * c->dD,
					 c->b->wk + gb * c->dD);
	char heads[48], tail[160] = "";
	verify_heads_of(c, gb, heads, sizeof heads);
	if (e_other <= c->tol && c->np > 1)
		snprintf(tail, sizeof tail,
			 "; it would commute in the %s layout: a rotation "
			 "written for the other layout",
			 rope_layout_name(other.layout));
	v->comm = ci;
	if (ci.n_mixed == 0 && ci.n_reflect > 0) {
		char p0[48];
		pair_name(c, ci.reflect[0], p0, sizeof p0);
		verify_break(v, VERIFY_WHY_REFLECTION, LEVEL_SCORE, gb, gb * c->hpg,
			  "W_k", err,
			  "kv group %zu (%s): the Q/K rotation recovered from W_k "
			  "is a reflection inside %s%s (%zu pair%s in all): it "
			  "conjugates Theta_p to Theta_-p, so scores change",
			  gb, heads, p0, "", ci.n_reflect_total,
			  ci.n_reflect_total == 1 ? "" : "s");
		return RF_OK;
	}
	char list[320] = "";
	size_t len = 0;
	for (size_t k = 0; k < ci.n_mixed && len + 64 < sizeof list; k++) {
		char p0[48], p1[48];
		pair_name(c, ci.mixed[k][0], p0, sizeof p0);
		pair_name(c, ci.mixed[k][1], p1, sizeof p1);
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%s with %s",
					k ? "; " : "", p0, p1);
	}
	if (ci.n_mixed_total > ci.n_mixed)
		snprintf(list + len, sizeof list - len, "; and %zu more",
			 ci.n_mixed_total - ci.n_mixed);
	verify_break(v, VERIFY_WHY_MIXES_PAIRS, LEVEL_SCORE, gb, gb * c->hpg, "W_k",
		  err,
		  "kv group %zu (%s): the Q/K rotation recovered from W_k does "
		  "not commute with RoPE in the %s layout: it mixes frequency "
		  "pairs (%s)%s%s, so scores change with the offset m - n%s",
		  gb, heads, rope_layout_name(c->a->rope.layout),
		  ci.n_mixed ? list : "below the listing threshold",
		  ci.n_reflect ? " and reflects inside pairs" : "", "", tail);
	return RF_OK;
}

/* The Q/K side of kv group gb (A's group ga). False on a break. */
RfStatus verify_check_qk(VerifyCtx *c, size_t gb, size_t ga, bool *ok)
{
	VerifyVerdict *v = c->v;
	const Layer *a = c->a, *b = c->b;
	size_t d = c->d, dd = c->dd, dD = c->dD;
	const double *ak = a->wk + ga * dD, *bk = b->wk + gb * dD;
	char heads[48];
	verify_heads_of(c, gb, heads, sizeof heads);
	*ok = false;
	verify_note_direct(c, procrustes_rel_diff(ak, c->D, bk, c->D, d, c->D));
	RfStatus st = procrustes_rotation(ak, c->D, bk, c->D, d, c->D, c->R);
	if (st != RF_OK)
		return st;
	double ek = verify_rows_err(c, c->R, ak, bk);
	if (ek > c->tol) {
		int kind = verify_classify_rows(c, ak, bk, &st);
		if (st != RF_OK)
			return st;
		if (kind == 1)
			verify_break(v, VERIFY_WHY_NOT_ORTHOGONAL, LEVEL_SCORE, gb,
				  gb * c->hpg, "W_k", ek,
				  "kv group %zu (%s): W_k is a linear map of A's "
				  "but not an orthogonal one (||M^T M - I|| = %.3g): "
				  "scores are rescaled",
				  gb, heads, procrustes_ortho_defect(c->R2, d));
		else
			verify_break(v, VERIFY_WHY_UNEXPLAINED, LEVEL_SCORE, gb,
				  gb * c->hpg, "W_k", ek,
				  "kv group %zu (%s): W_k differs from A's in a way "
				  "no rotation explains (relative residual %.3g, "
				  "tolerance %.3g)", gb, heads, ek, c->tol);
		return RF_OK;
	}
	/* The nearest commuting rotation must explain W_k just as well. */
	double *Rk = v->plan.rk + ga * dd;
	commutant_project(c->R, &a->rope, c->freqs, d, Rk);
	double ec = verify_rows_err(c, Rk, ak, bk);
	if (ec > c->tol) {
		memcpy(Rk, c->R, dd * sizeof(double));
		v->commuting[ga] = false;
		return explain_noncommuting(c, c->R, gb, ga, ec);
	}
	verify_note_err(c, ec);
	v->commuting[ga] = true;
	commutant_angles(Rk, &a->rope, d, v->angles + ga * c->np);
	if (a->bk) {
		bool left;
		double e = verify_bias_err(c, Rk, a->bk + ga * d, b->bk + gb * d, &left);
		if (e > c->tol) {
			verify_break(v, left ? VERIFY_WHY_BIAS : VERIFY_WHY_UNEXPLAINED,
				  LEVEL_SCORE, gb, gb * c->hpg, "b_k", e,
				  left ? "kv group %zu (%s): b_k was left as it was "
					 "while W_k was rotated"
				       : "kv group %zu (%s): b_k differs in a way the "
					 "group's rotation does not explain",
				  gb, heads);
			return RF_OK;
		}
		verify_note_err(c, e);
	}
	bool first_ok = false;
	for (size_t j = 0; j < c->hpg; j++) {
		size_t ha = ga * c->hpg + j, hb = gb * c->hpg + j;
		const double *aq = a->wq + ha * dD, *bq = b->wq + hb * dD;
		verify_note_direct(c, procrustes_rel_diff(aq, c->D, bq, c->D, d, c->D));
		double eq = verify_rows_err(c, Rk, aq, bq);
		memcpy(v->plan.rq + ha * dd, Rk, dd * sizeof(double));
		if (eq > c->tol) {
			int kind = verify_classify_rows(c, aq, bq, &st);
			if (st != RF_OK)
				return st;
			memcpy(v->plan.rq + ha * dd, c->R2, dd * sizeof(double));
			double gap = verify_frob_diff(c->R2, Rk, dd);
			if (kind == 0 && j > 0 && first_ok)
				verify_break(v, VERIFY_WHY_GQA_DIFFER, LEVEL_SCORE, gb, hb,
					  "W_q", eq,
					  "query head %zu: W_q is rotated by a different "
					  "rotation than query head %zu of the same kv group "
					  "%zu (||R_q,h - R_g|| = %.3g): under GQA the heads of "
					  "a group share k and must share R_g",
					  hb, gb * c->hpg, gb, gap);
			else if (kind == 0)
				verify_break(v, VERIFY_WHY_QK_DIFFER, LEVEL_SCORE, gb, hb,
					  "W_q", eq,
					  "query head %zu: Q and K are folded differently: "
					  "W_q is rotated by an orthogonal R_q that is not "
					  "kv group %zu's R_k (||R_q - R_k|| = %.3g)",
					  hb, gb, gap);
			else if (kind == 1)
				verify_break(v, VERIFY_WHY_NOT_ORTHOGONAL, LEVEL_SCORE, gb, hb,
					  "W_q", eq,
					  "query head %zu: W_q is a linear map of A's but "
					  "not an orthogonal rotation shared with K "
					  "(||M^T M - I|| = %.3g)",
					  hb, procrustes_ortho_defect(c->R2, d));
			else
				verify_break(v, VERIFY_WHY_UNEXPLAINED, LEVEL_SCORE, gb, hb,
					  "W_q", eq,
					  "query head %zu: W_q differs from A's in a way no "
					  "rotation explains (relative residual %.3g, "
					  "tolerance %.3g)", hb, eq, c->tol);
			return RF_OK;
		}
		if (j == 0)
			first_ok = true;
		verify_note_err(c, eq);
		if (a->bq) {
			const double *qa = a->bq + ha * d, *qb = b->bq + hb * d;
			bool left;
			double e = verify_bias_err(c, Rk, qa, qb, &left);
			if (e > c->tol) {
				verify_break(v, left ? VERIFY_WHY_BIAS : VERIFY_WHY_UNEXPLAINED,
					  LEVEL_SCORE, gb, hb, "b_q", e,
					  left
						  ? "query head %zu: b_q was left as it was "
						    "while W_q was rotated"
						  : "query head %zu: b_q differs in a way the "
						    "group's rotation does not explain",
					  hb);
				return RF_OK;
			}
			verify_note_err(c, e);
		}
	}
	/* A learned QK-norm weight must commute with the rotation. */
	const double *wn[2] = {a->q_norm, a->k_norm};
	for (int t = 0; t < 2; t++) {
		if (!wn[t])
			continue;
		size_t off = a->qk_norm_per_head ? 0 : (t ? ga : ga * c->hpg) * d;
		const double *w = wn[t] + off;
		double num = 0, den = 0;
		for (size_t i = 0; i < d; i++) {
			den += w[i] * w[i];
			for (size_t k = 0; k < d; k++) {
				double e = (w[i] - w[k]) * Rk[i * d + k];
				num += e * e;
			}
		}
		double e = den > 0 ? sqrt(num / den) : sqrt(num);
		if (e > c->tol) {
			verify_break(v, VERIFY_WHY_QK_NORM, LEVEL_SCORE, gb, gb * c->hpg,
				  t ? "k_norm" : "q_norm", e,
				  "kv group %zu (%s): the learned %s-norm weight differs "
				  "within a RoPE pair, and the group's rotation does not "
				  "commute with it (only angles 0 and pi do)",
				  gb, heads, t ? "k" : "q");
			return RF_OK;
		}
	}
	*ok = true;
	return RF_OK;
}
