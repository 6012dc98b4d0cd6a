#include "config.h"

#include <cblas.h>
#include <string.h>

#include "core/procrustes.h"
#include "core/verify_impl.h"

/* The V/O side of one kv group: R_v recovered from W_v (any invertible map
 * will do, V needs no commutation) must explain b_v, and the column block
 * of W_o of each query head of the group must absorb its inverse; the
 * group's Q/K rotation is tried as R_v first. */

/* Whether R, the group's Q/K rotation, explains the V/O side as well:
 * W_v and b_v turned by it and every query head's W_o block absorbing it,
 * each within its tolerance, the worst error into *worst. A fold that
 * keeps v-same carries exactly that R, whose pair structure makes these
 * products sums (rows_rotate, cols_rotate: at 8B scale the Procrustes fit
 * and its dense products were half of verify's GEMM time). The plain
 * differences are noted as the fit's path notes them; nothing else is
 * recorded, and on false the fit decides. */
static bool vo_by(VerifyCtx *c, const double *R, size_t gb, size_t ga, double *worst)
{
	const Layer *a = c->a, *b = c->b;
	size_t d = c->d, dD = c->dD, D = c->D, Hd = c->H * d;
	const double *av = a->wv + ga * dD, *bv = b->wv + gb * dD;
	verify_direct(c, av, D, bv, D, d, D, c->tolp[VERIFY_V]);
	double e = verify_rows_err(c, R, av, bv);
	if (!(e <= c->tolp[VERIFY_V]))
		return false;
	*worst = e;
	if (a->bv) {
		bool left;
		e = verify_bias_err(c, R, a->bv + ga * d, b->bv + gb * d, c->tolp[VERIFY_V], &left);
		if (!(e <= c->tolp[VERIFY_V]))
			return false;
		*worst = e > *worst ? e : *worst;
	}
	for (size_t j = 0; j < c->hpg; j++) {
		const double *ao = a->wo + (ga * c->hpg + j) * d, *bo = b->wo + (gb * c->hpg + j) * d;
		verify_direct(c, ao, Hd, bo, Hd, D, d, c->tolp[VERIFY_O]);
		e = verify_cols_err(c, R, ao, bo);
		if (!(e <= c->tolp[VERIFY_O]))
			return false;
		*worst = e > *worst ? e : *worst;
	}
	return true;
}

RfStatus verify_check_vo(VerifyCtx *c, size_t gb, size_t ga, bool *ok)
{
	VerifyVerdict *v = c->v;
	const Layer *a = c->a, *b = c->b;
	size_t d = c->d, dd = c->dd, dD = c->dD, D = c->D, Hd = c->H * d;
	const double *av = a->wv + ga * dD, *bv = b->wv + gb * dD;
	double *Rv = v->plan.rv + ga * dd;
	*ok = false;
	double worst;
	if (v->commuting[ga] && vo_by(c, v->plan.rk + ga * dd, gb, ga, &worst)) {
		memcpy(Rv, v->plan.rk + ga * dd, dd * sizeof(double));
		for (size_t j = 0; j < c->hpg; j++)
			memcpy(v->plan.ro + (ga * c->hpg + j) * dd, Rv, dd * sizeof(double));
		verify_note_err(c, worst);
		*ok = true;
		return RF_OK;
	}
	verify_direct(c, av, D, bv, D, d, D, c->tolp[VERIFY_V]);
	RfStatus st = procrustes_rotation(av, D, bv, D, d, D, Rv);
	if (st != RF_OK)
		return st;
	bool orth = true;
	double ev = verify_rows_err(c, Rv, av, bv);
	if (ev > c->tolp[VERIFY_V]) {
		int kind = verify_classify_rows(c, av, bv, c->tolp[VERIFY_V], &st);
		if (st != RF_OK)
			return st;
		if (kind != 1) {
			Finding f = verify_finding(FIND_V_UNEXPLAINED, LEVEL_HEAD, gb,
						   gb * c->hpg, "W_v", ev);
			f.tol = c->tolp[VERIFY_V];
			verify_break(v, VERIFY_WHY_UNEXPLAINED, &f);
			return RF_OK;
		}
		/* Any invertible map works for V if W_o absorbs its inverse. */
		memcpy(Rv, c->R2, dd * sizeof(double));
		orth = false;
		ev = verify_rows_err(c, Rv, av, bv);
	}
	verify_note_err(c, ev);
	if (a->bv) {
		const double *va = a->bv + ga * d, *vb = b->bv + gb * d;
		bool left;
		double e = verify_bias_err(c, Rv, va, vb, c->tolp[VERIFY_V], &left);
		if (e > c->tolp[VERIFY_V]) {
			Finding f = verify_finding(left ? FIND_BV_LEFT
							: FIND_BV_UNEXPLAINED,
						   LEVEL_HEAD, gb, gb * c->hpg, "b_v", e);
			verify_break(v, left ? VERIFY_WHY_BIAS : VERIFY_WHY_UNEXPLAINED,
				     &f);
			return RF_OK;
		}
		verify_note_err(c, e);
	}
	for (size_t j = 0; j < c->hpg; j++) {
		size_t ha = ga * c->hpg + j, hb = gb * c->hpg + j;
		const double *ao = a->wo + ha * d, *bo = b->wo + hb * d;
		/* the plain difference, when still wanted (else measured
		 * below, should O break) */
		double eo, plain = verify_direct(c, ao, Hd, bo, Hd, D, d, c->tolp[VERIFY_O]);
		memcpy(v->plan.ro + ha * dd, Rv, dd * sizeof(double));
		if (orth) {
			/* B_o,h == A_o,h R_v^T (D x d). */
			eo = verify_cols_err(c, Rv, ao, bo);
		} else {
			/* B_o,h M == A_o,h: O holds M's inverse. */
			cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)D,
				    (int)d, (int)d, 1.0, bo, (int)Hd, Rv, (int)d, 0.0,
				    c->work, (int)d);
			eo = procrustes_rel_diff(c->work, d, ao, Hd, D, d);
		}
		if (eo <= c->tolp[VERIFY_O]) {
			verify_note_err(c, eo);
			continue;
		}
		if (plain < 0)
			plain = procrustes_rel_diff(ao, Hd, bo, Hd, D, d);
		if (plain <= c->tolp[VERIFY_O]) {
			Finding f = verify_finding(FIND_O_UNCHANGED, LEVEL_HEAD, gb, hb,
						   "W_o", eo);
			verify_break(v, VERIFY_WHY_O_NOT_ABSORBING, &f);
			return RF_OK;
		}
		st = procrustes_rotation_cols(ao, Hd, bo, Hd, D, d, c->R2);
		if (st != RF_OK)
			return st;
		/* O absorbs some rotation: another one, or none at all */
		bool other = verify_cols_err(c, c->R2, ao, bo) <= c->tolp[VERIFY_O];
		Finding f = verify_finding(other ? FIND_O_OTHER_ROTATION
						 : FIND_O_UNEXPLAINED,
					   LEVEL_HEAD, gb, hb, "W_o", eo);
		f.tol = c->tolp[VERIFY_O];
		if (other) {
			f.norm = verify_frob_diff(c->R2, Rv, dd);
			f.flag = !orth;
		}
		verify_break(v, other ? VERIFY_WHY_O_NOT_ABSORBING
				      : VERIFY_WHY_UNEXPLAINED, &f);
		return RF_OK;
	}
	if (!orth)
		v->vo_not_orthogonal = true;
	*ok = true;
	return RF_OK;
}
