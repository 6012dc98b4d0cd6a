#include "config.h"

#include <math.h>
#include <string.h>

#include "core/commutant.h"
#include "core/procrustes.h"
#include "core/verify_impl.h"

/* The Q/K side of one kv group: R_k recovered from W_k must be orthogonal,
 * commute with RoPE in A's layout, and explain W_q of every query head of
 * the group, the q/k biases and a learned QK-norm weight. */

/* R (orthogonal, explains W_k) does not commute: record how (the pairs
 * it mixes or reflects go to v->comm). */
static RfStatus explain_noncommuting(VerifyCtx *c, const double *R, size_t gb,
				     size_t ga, double err)
{
	VerifyVerdict *v = c->v;
	CommutantInfo ci;
	/* the recovered R carries the quantization error of W_k (tolp - tol) */
	double thr = 10.0 * c->tol + 2.0 * (c->tolp[VERIFY_K] - c->tol) + 1e-9;
	RfStatus st = commutant_analyse(R, &c->a->rope, c->freqs, c->d, thr, &ci);
	if (st != RF_OK)
		return st;
	/* Would it commute in the other layout? */
	RopeSpec other = c->a->rope;
	other.layout = other.layout == ROPE_HALF ? ROPE_INTERLEAVED : ROPE_HALF;
	commutant_project(R, &other, c->freqs, c->d, c->R2);
	double e_other = verify_rows_err(c, c->R2, c->a->wk + ga * c->dD,
					 c->b->wk + gb * c->dD);
	v->comm = ci;
	if (ci.n_mixed == 0 && ci.n_reflect > 0) {
		Finding f = verify_finding(FIND_K_REFLECTS, LEVEL_SCORE, gb,
					   gb * c->hpg, "W_k", err);
		verify_break(v, VERIFY_WHY_REFLECTION, &f);
		return RF_OK;
	}
	Finding f = verify_finding(FIND_K_MIXES_PAIRS, LEVEL_SCORE, gb, gb * c->hpg,
				   "W_k", err);
	f.flag = e_other <= c->tolp[VERIFY_K] && c->np > 1;
	verify_break(v, VERIFY_WHY_MIXES_PAIRS, &f);
	return RF_OK;
}

/* The Q/K side of kv group gb (A's group ga). False on a break. */
RfStatus verify_check_qk(VerifyCtx *c, size_t gb, size_t ga, bool *ok)
{
	VerifyVerdict *v = c->v;
	const Layer *a = c->a, *b = c->b;
	size_t d = c->d, dd = c->dd, dD = c->dD;
	const double *ak = a->wk + ga * dD, *bk = b->wk + gb * dD;
	*ok = false;
	verify_direct(c, ak, c->D, bk, c->D, d, c->D, c->tolp[VERIFY_K]);
	RfStatus st = procrustes_rotation(ak, c->D, bk, c->D, d, c->D, c->R);
	if (st != RF_OK)
		return st;
	/* The nearest commuting rotation is tried first: when it explains
	 * W_k, R's own residual (a d x d x D product per group) is not
	 * needed, and at 8B scale that is one product in fourteen. */
	commutant_project(c->R, &a->rope, c->freqs, d, c->R2);
	double ec = verify_rows_err(c, c->R2, ak, bk);
	double ek = ec <= c->tolp[VERIFY_K] ? ec : verify_rows_err(c, c->R, ak, bk);
	if (ek > c->tolp[VERIFY_K]) {
		int kind = verify_classify_rows(c, ak, bk, c->tolp[VERIFY_K], &st);
		if (st != RF_OK)
			return st;
		bool linear = kind == 1;
		Finding f = verify_finding(linear ? FIND_K_NOT_ORTHOGONAL
						  : FIND_K_UNEXPLAINED,
					   LEVEL_SCORE, gb, gb * c->hpg, "W_k", ek);
		f.tol = c->tolp[VERIFY_K];
		if (linear)
			f.norm = procrustes_ortho_defect(c->R2, d);
		verify_break(v, linear ? VERIFY_WHY_NOT_ORTHOGONAL
				       : VERIFY_WHY_UNEXPLAINED, &f);
		return RF_OK;
	}
	/* R explains W_k: the nearest commuting rotation must as well. */
	double *Rk = v->plan.rk + ga * dd;
	memcpy(Rk, c->R2, dd * sizeof(double));
	if (ec > c->tolp[VERIFY_K]) {
		memcpy(Rk, c->R, dd * sizeof(double));
		v->commuting[ga] = false;
		return explain_noncommuting(c, c->R, gb, ga, ec);
	}
	verify_note_err(c, ec);
	v->commuting[ga] = true;
	commutant_angles(Rk, &a->rope, d, v->angles + ga * c->np);
	if (a->bk) {
		bool left;
		double e = verify_bias_err(c, Rk, a->bk + ga * d, b->bk + gb * d,
					   c->tolp[VERIFY_K], &left);
		if (e > c->tolp[VERIFY_K]) {
			Finding f = verify_finding(left ? FIND_BK_LEFT
							: FIND_BK_UNEXPLAINED,
						   LEVEL_SCORE, gb, gb * c->hpg,
						   "b_k", e);
			verify_break(v, left ? VERIFY_WHY_BIAS : VERIFY_WHY_UNEXPLAINED,
				     &f);
			return RF_OK;
		}
		verify_note_err(c, e);
	}
	bool first_ok = false;
	for (size_t j = 0; j < c->hpg; j++) {
		size_t ha = ga * c->hpg + j, hb = gb * c->hpg + j;
		const double *aq = a->wq + ha * dD, *bq = b->wq + hb * dD;
		verify_direct(c, aq, c->D, bq, c->D, d, c->D, c->tolp[VERIFY_Q]);
		double eq = verify_rows_err(c, Rk, aq, bq);
		memcpy(v->plan.rq + ha * dd, Rk, dd * sizeof(double));
		if (eq > c->tolp[VERIFY_Q]) {
			int kind = verify_classify_rows(c, aq, bq, c->tolp[VERIFY_Q], &st);
			if (st != RF_OK)
				return st;
			memcpy(v->plan.rq + ha * dd, c->R2, dd * sizeof(double));
			/* an orthogonal R_q of its own: apart from the
			 * group's first head (GQA) or from K */
			bool gqa = kind == 0 && j > 0 && first_ok;
			static const FindingCode code[] = {
				FIND_QK_DIFFER, FIND_Q_NOT_ORTHOGONAL, FIND_Q_UNEXPLAINED};
			static const VerifyWhy why[] = {
				VERIFY_WHY_QK_DIFFER, VERIFY_WHY_NOT_ORTHOGONAL,
				VERIFY_WHY_UNEXPLAINED};
			Finding f = verify_finding(gqa ? FIND_Q_GROUP_DIFFERS : code[kind],
						   LEVEL_SCORE, gb, hb, "W_q", eq);
			f.tol = c->tolp[VERIFY_Q];
			f.other_head = gb * c->hpg;
			f.norm = kind == 1 ? procrustes_ortho_defect(c->R2, d)
					   : verify_frob_diff(c->R2, Rk, dd);
			verify_break(v, gqa ? VERIFY_WHY_GQA_DIFFER : why[kind], &f);
			return RF_OK;
		}
		if (j == 0)
			first_ok = true;
		verify_note_err(c, eq);
		if (a->bq) {
			const double *qa = a->bq + ha * d, *qb = b->bq + hb * d;
			bool left;
			double e = verify_bias_err(c, Rk, qa, qb, c->tolp[VERIFY_Q], &left);
			if (e > c->tolp[VERIFY_Q]) {
				Finding f = verify_finding(left ? FIND_BQ_LEFT
								: FIND_BQ_UNEXPLAINED,
							   LEVEL_SCORE, gb, hb, "b_q", e);
				verify_break(v, left ? VERIFY_WHY_BIAS
						     : VERIFY_WHY_UNEXPLAINED, &f);
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
		if (e > c->tolp[VERIFY_K]) {
			Finding f = verify_finding(FIND_QK_NORM_BLOCKS, LEVEL_SCORE, gb,
						   gb * c->hpg, t ? "k_norm" : "q_norm",
						   e);
			f.part = t ? 'k' : 'q';
			verify_break(v, VERIFY_WHY_QK_NORM, &f);
			return RF_OK;
		}
	}
	*ok = true;
	return RF_OK;
}
