#include "config.h"

#include <cblas.h>
#include <string.h>

#include "core/procrustes.h"
#include "core/verify_impl.h"

/* The V/O side of one kv group: R_v recovered from W_v (any invertible map
 * will do, V needs no commutation) must explain b_v, and the column block
 * of W_o of each query head of the group must absorb its inverse. */

RfStatus verify_check_vo(VerifyCtx *c, size_t gb, size_t ga, bool *ok)
{
	VerifyVerdict *v = c->v;
	const Layer *a = c->a, *b = c->b;
	size_t d = c->d, dd = c->dd, dD = c->dD, D = c->D, Hd = c->H * d;
	const double *av = a->wv + ga * dD, *bv = b->wv + gb * dD;
	double *Rv = v->plan.rv + ga * dd;
	*ok = false;
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
			cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)D,
				    (int)d, (int)d, 1.0, ao, (int)Hd, Rv, (int)d, 0.0,
				    c->work, (int)d);
			eo = procrustes_rel_diff(c->work, d, bo, Hd, D, d);
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
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)D, (int)d,
			    (int)d, 1.0, ao, (int)Hd, c->R2, (int)d, 0.0, c->work,
			    (int)d);
		/* O absorbs some rotation: another one, or none at all */
		bool other = procrustes_rel_diff(c->work, d, bo, Hd, D, d) <= c->tolp[VERIFY_O];
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
