#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/attention.h"
#include "core/dtype.h"
#include "core/layout_perm.h"
#include "core/levels.h"
#include "core/procrustes.h"
#include "core/rng.h"
#include "core/rope.h"
#include "core/verify.h"

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

/* ======================= context and helpers ============================ */

/* One comparison of a against b (b already in a's layout). */
typedef struct {
	const Layer *a, *b;
	size_t D, H, G, d, hpg, dd, dD, np;
	double tol;
	double *freqs;   /* np */
	double *work;    /* D x d (also d x D) */
	double *R, *R2;  /* d x d scratch */
	VerifyVerdict *v;
	double direct;   /* max plain difference of B against A (permuted) */
} Ctx;

static void set_identity(double *R, size_t d)
{
	memset(R, 0, d * d * sizeof(double));
	for (size_t i = 0; i < d; i++)
		R[i * d + i] = 1.0;
}

static double frob_diff(const double *A, const double *B, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (A[i] - B[i]) * (A[i] - B[i]);
	return sqrt(s);
}

/* Record the first break; later calls are ignored. */
static void set_break(VerifyVerdict *v, VerifyWhy why, LevelId level,
		      size_t group, size_t head, const char *tensor, double err,
		      const char *fmt, ...)
{
	if (v->why != VERIFY_WHY_NONE)
		return;
	v->why = why;
	v->level = level;
	v->group = group;
	v->head = head;
	v->err = err;
	snprintf(v->tensor, sizeof v->tensor, "%s", tensor);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->why_text, sizeof v->why_text, fmt, ap);
	va_end(ap);
}

/* X = R A (d x D rows, A with leading dimension lda) into c->work. */
static void rows_times(const Ctx *c, const double *R, const double *A)
{
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->d,
		    (int)c->D, (int)c->d, 1.0, R, (int)c->d, A, (int)c->D, 0.0,
		    c->work, (int)c->D);
}

/* rel diff of R A_rows against B_rows (d x D blocks). */
static double rows_err(const Ctx *c, const double *R, const double *A,
		       const double *B)
{
	rows_times(c, R, A);
	return procrustes_rel_diff(c->work, c->D, B, c->D, c->d, c->D);
}

/* rel diff of R a against b for d-vectors. */
static double vec_err(const Ctx *c, const double *R, const double *a,
		      const double *b)
{
	double *y = c->work;
	cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)c->d, (int)c->d, 1.0, R,
		    (int)c->d, a, 1, 0.0, y, 1);
	return procrustes_rel_diff(y, c->d, b, c->d, 1, c->d);
}

static void note_direct(Ctx *c, double e)
{
	if (e > c->direct)
		c->direct = e;
}

/* A bias R should explain (d entries): its error under R, and in *left
 * whether B kept A's bias as it was (left behind while the weights turned). */
static double bias_err(Ctx *c, const double *R, const double *a,
		       const double *b, bool *left)
{
	double plain = procrustes_rel_diff(a, c->d, b, c->d, 1, c->d);
	note_direct(c, plain);
	*left = plain <= c->tol;
	return vec_err(c, R, a, b);
}

static void note_err(Ctx *c, double e)
{
	if (e > c->v->max_err)
		c->v->max_err = e;
}

/* "query heads 2-3" or "query head 2". */
static void heads_of(const Ctx *c, size_t g, char *buf, size_t len)
{
	if (c->hpg == 1)
		snprintf(buf, len, "query head %zu", g);
	else
		snprintf(buf, len, "query heads %zu-%zu", g * c->hpg,
			 g * c->hpg + c->hpg - 1);
}

/* ======================= head permutation =============================== */

/* Singular values of W_k,g and W_v,g of every group (G x 2d): an
 * orthogonal rotation of the rows keeps them. */
static RfStatus group_signatures(const Ctx *c, const Layer *l, double *sig)
{
	for (size_t g = 0; g < c->G; g++) {
		double *s = sig + g * 2 * c->d;
		RfStatus st = procrustes_singular_values(l->wk + g * c->dD, c->D,
							 c->d, c->D, s);
		if (st == RF_OK)
			st = procrustes_singular_values(l->wv + g * c->dD, c->D,
							c->d, c->D, s + c->d);
		if (st != RF_OK)
			return st;
	}
	return RF_OK;
}

/* Greedy matching of B's groups to A's by signature, confirmed by the
 * Procrustes residuals of W_k and W_v; the identity when unconfirmed. */
static RfStatus match_groups(Ctx *c, size_t *perm)
{
	size_t G = c->G, n = 2 * c->d;
	for (size_t g = 0; g < G; g++)
		perm[g] = g;
	if (G == 1)
		return RF_OK;
	double *sa = malloc(G * n * sizeof(double));
	double *sb = malloc(G * n * sizeof(double));
	double *cost = malloc(G * G * sizeof(double));
	bool *used_a = calloc(G, sizeof(bool)), *used_b = calloc(G, sizeof(bool));
	RfStatus st = RF_ERR_NOMEM;
	if (!sa || !sb || !cost || !used_a || !used_b)
		goto out;
	st = group_signatures(c, c->a, sa);
	if (st == RF_OK)
		st = group_signatures(c, c->b, sb);
	if (st != RF_OK)
		goto out;
	for (size_t gb = 0; gb < G; gb++)
		for (size_t ga = 0; ga < G; ga++)
			cost[gb * G + ga] = frob_diff(sb + gb * n, sa + ga * n, n);
	for (size_t round = 0; round < G; round++) {
		size_t bi = 0, bj = 0;
		double best = INFINITY;
		for (size_t gb = 0; gb < G; gb++)
			for (size_t ga = 0; ga < G; ga++) {
				double e = cost[gb * G + ga];
				/* ties go to the identity */
				if (!used_b[gb] && !used_a[ga] &&
				    (e < best || (e == best && ga == gb))) {
					best = e;
					bi = gb;
					bj = ga;
				}
			}
		used_b[bi] = used_a[bj] = true;
		perm[bi] = bj;
	}
	/* Confirm every moved group by its residuals. */
	for (size_t gb = 0; gb < G && st == RF_OK; gb++) {
		size_t ga = perm[gb];
		if (ga == gb)
			continue;
		double ek = INFINITY, ev = INFINITY;
		st = procrustes_rotation(c->a->wk + ga * c->dD, c->D,
					 c->b->wk + gb * c->dD, c->D, c->d, c->D, c->R);
		if (st == RF_OK)
			ek = rows_err(c, c->R, c->a->wk + ga * c->dD,
				      c->b->wk + gb * c->dD);
		if (st == RF_OK)
			st = procrustes_rotation(c->a->wv + ga * c->dD, c->D,
						 c->b->wv + gb * c->dD, c->D, c->d,
						 c->D, c->R);
		if (st == RF_OK)
			ev = rows_err(c, c->R, c->a->wv + ga * c->dD,
				      c->b->wv + gb * c->dD);
		if (st == RF_OK && (ek > c->tol || ev > c->tol)) {
			for (size_t g = 0; g < G; g++)
				perm[g] = g;
			break;
		}
	}
out:
	free(sa);
	free(sb);
	free(cost);
	free(used_a);
	free(used_b);
	return st;
}

/* ======================= Q/K of one group =============================== */

/* Name pair group i: "pair 3 (w = 0.1)" or "the non-rotary block". */
static void pair_name(const Ctx *c, size_t i, char *buf, size_t len)
{
	if (i >= c->np)
		snprintf(buf, len, "the non-rotary block");
	else
		snprintf(buf, len, "pair %zu (w = %.3g)", i, c->freqs[i]);
}

/* R (orthogonal, explains W_k) does not commute: say how. */
static RfStatus explain_noncommuting(Ctx *c, const double *R, size_t gb,
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
	double e_other = rows_err(c, c->R2, c->a->wk + ga * c->dD,
				  c->b->wk + gb * c->dD);
	char heads[48], tail[160] = "";
	heads_of(c, gb, heads, sizeof heads);
	if (e_other <= c->tol && c->np > 1)
		snprintf(tail, sizeof tail,
			 "; it would commute in the %s layout: a rotation "
			 "written for the other layout",
			 rope_layout_name(other.layout));
	v->comm = ci;
	if (ci.n_mixed == 0 && ci.n_reflect > 0) {
		char p0[48];
		pair_name(c, ci.reflect[0], p0, sizeof p0);
		set_break(v, VERIFY_WHY_REFLECTION, LEVEL_SCORE, gb, gb * c->hpg,
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
	set_break(v, VERIFY_WHY_MIXES_PAIRS, LEVEL_SCORE, gb, gb * c->hpg, "W_k",
		  err,
		  "kv group %zu (%s): the Q/K rotation recovered from W_k does "
		  "not commute with RoPE in the %s layout: it mixes frequency "
		  "pairs (%s)%s%s, so scores change with the offset m - n%s",
		  gb, heads, rope_layout_name(c->a->rope.layout),
		  ci.n_mixed ? list : "below the listing threshold",
		  ci.n_reflect ? " and reflects inside pairs" : "", "", tail);
	return RF_OK;
}

/* A block B_rows that Rk does not explain: an orthogonal rotation of its
 * own, a general linear map, or nothing. Returns 0, 1, 2 for those, with
 * the fitted map in c->R2. */
static int classify_rows(Ctx *c, const double *A, const double *B,
			 RfStatus *st)
{
	*st = procrustes_rotation(A, c->D, B, c->D, c->d, c->D, c->R2);
	if (*st == RF_OK && rows_err(c, c->R2, A, B) <= c->tol)
		return 0;
	*st = procrustes_least_squares(A, c->D, B, c->D, c->d, c->D, c->R2);
	if (*st == RF_ERR_NUMERIC) {
		*st = RF_OK;
		return 2;
	}
	if (*st == RF_OK && rows_err(c, c->R2, A, B) <= c->tol)
		return 1;
	return 2;
}

/* The Q/K side of kv group gb (A's group ga). False on a break. */
static RfStatus check_qk(Ctx *c, size_t gb, size_t ga, bool *ok)
{
	VerifyVerdict *v = c->v;
	const Layer *a = c->a, *b = c->b;
	size_t d = c->d, dd = c->dd, dD = c->dD;
	const double *ak = a->wk + ga * dD, *bk = b->wk + gb * dD;
	char heads[48];
	heads_of(c, gb, heads, sizeof heads);
	*ok = false;
	note_direct(c, procrustes_rel_diff(ak, c->D, bk, c->D, d, c->D));
	RfStatus st = procrustes_rotation(ak, c->D, bk, c->D, d, c->D, c->R);
	if (st != RF_OK)
		return st;
	double ek = rows_err(c, c->R, ak, bk);
	if (ek > c->tol) {
		int kind = classify_rows(c, ak, bk, &st);
		if (st != RF_OK)
			return st;
		if (kind == 1)
			set_break(v, VERIFY_WHY_NOT_ORTHOGONAL, LEVEL_SCORE, gb,
				  gb * c->hpg, "W_k", ek,
				  "kv group %zu (%s): W_k is a linear map of A's "
				  "but not an orthogonal one (||M^T M - I|| = %.3g): "
				  "scores are rescaled",
				  gb, heads, procrustes_ortho_defect(c->R2, d));
		else
			set_break(v, VERIFY_WHY_UNEXPLAINED, LEVEL_SCORE, gb,
				  gb * c->hpg, "W_k", ek,
				  "kv group %zu (%s): W_k differs from A's in a way "
				  "no rotation explains (relative residual %.3g, "
				  "tolerance %.3g)", gb, heads, ek, c->tol);
		return RF_OK;
	}
	/* The nearest commuting rotation must explain W_k just as well. */
	double *Rk = v->plan.rk + ga * dd;
	commutant_project(c->R, &a->rope, c->freqs, d, Rk);
	double ec = rows_err(c, Rk, ak, bk);
	if (ec > c->tol) {
		memcpy(Rk, c->R, dd * sizeof(double));
		v->commuting[ga] = false;
		return explain_noncommuting(c, c->R, gb, ga, ec);
	}
	note_err(c, ec);
	v->commuting[ga] = true;
	commutant_angles(Rk, &a->rope, d, v->angles + ga * c->np);
	if (a->bk) {
		bool left;
		double e = bias_err(c, Rk, a->bk + ga * d, b->bk + gb * d, &left);
		if (e > c->tol) {
			set_break(v, left ? VERIFY_WHY_BIAS : VERIFY_WHY_UNEXPLAINED,
				  LEVEL_SCORE, gb, gb * c->hpg, "b_k", e,
				  left ? "kv group %zu (%s): b_k was left as it was "
					 "while W_k was rotated"
				       : "kv group %zu (%s): b_k differs in a way the "
					 "group's rotation does not explain",
				  gb, heads);
			return RF_OK;
		}
		note_err(c, e);
	}
	bool first_ok = false;
	for (size_t j = 0; j < c->hpg; j++) {
		size_t ha = ga * c->hpg + j, hb = gb * c->hpg + j;
		const double *aq = a->wq + ha * dD, *bq = b->wq + hb * dD;
		note_direct(c, procrustes_rel_diff(aq, c->D, bq, c->D, d, c->D));
		double eq = rows_err(c, Rk, aq, bq);
		memcpy(v->plan.rq + ha * dd, Rk, dd * sizeof(double));
		if (eq > c->tol) {
			int kind = classify_rows(c, aq, bq, &st);
			if (st != RF_OK)
				return st;
			memcpy(v->plan.rq + ha * dd, c->R2, dd * sizeof(double));
			double gap = frob_diff(c->R2, Rk, dd);
			if (kind == 0 && j > 0 && first_ok)
				set_break(v, VERIFY_WHY_GQA_DIFFER, LEVEL_SCORE, gb, hb,
					  "W_q", eq,
					  "query head %zu: W_q is rotated by a different "
					  "rotation than query head %zu of the same kv group "
					  "%zu (||R_q,h - R_g|| = %.3g): under GQA the heads of "
					  "a group share k and must share R_g",
					  hb, gb * c->hpg, gb, gap);
			else if (kind == 0)
				set_break(v, VERIFY_WHY_QK_DIFFER, LEVEL_SCORE, gb, hb,
					  "W_q", eq,
					  "query head %zu: Q and K are folded differently: "
					  "W_q is rotated by an orthogonal R_q that is not "
					  "kv group %zu's R_k (||R_q - R_k|| = %.3g)",
					  hb, gb, gap);
			else if (kind == 1)
				set_break(v, VERIFY_WHY_NOT_ORTHOGONAL, LEVEL_SCORE, gb, hb,
					  "W_q", eq,
					  "query head %zu: W_q is a linear map of A's but "
					  "not an orthogonal rotation shared with K "
					  "(||M^T M - I|| = %.3g)",
					  hb, procrustes_ortho_defect(c->R2, d));
			else
				set_break(v, VERIFY_WHY_UNEXPLAINED, LEVEL_SCORE, gb, hb,
					  "W_q", eq,
					  "query head %zu: W_q differs from A's in a way no "
					  "rotation explains (relative residual %.3g, "
					  "tolerance %.3g)", hb, eq, c->tol);
			return RF_OK;
		}
		if (j == 0)
			first_ok = true;
		note_err(c, eq);
		if (a->bq) {
			const double *qa = a->bq + ha * d, *qb = b->bq + hb * d;
			bool left;
			double e = bias_err(c, Rk, qa, qb, &left);
			if (e > c->tol) {
				set_break(v, left ? VERIFY_WHY_BIAS : VERIFY_WHY_UNEXPLAINED,
					  LEVEL_SCORE, gb, hb, "b_q", e,
					  left
						  ? "query head %zu: b_q was left as it was "
						    "while W_q was rotated"
						  : "query head %zu: b_q differs in a way the "
						    "group's rotation does not explain",
					  hb);
				return RF_OK;
			}
			note_err(c, e);
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
			set_break(v, VERIFY_WHY_QK_NORM, LEVEL_SCORE, gb, gb * c->hpg,
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

/* ======================= V/O of one group =============================== */

static RfStatus check_vo(Ctx *c, size_t gb, size_t ga, bool *ok)
{
	VerifyVerdict *v = c->v;
	const Layer *a = c->a, *b = c->b;
	size_t d = c->d, dd = c->dd, dD = c->dD, D = c->D, Hd = c->H * d;
	const double *av = a->wv + ga * dD, *bv = b->wv + gb * dD;
	double *Rv = v->plan.rv + ga * dd;
	char heads[48];
	heads_of(c, gb, heads, sizeof heads);
	*ok = false;
	note_direct(c, procrustes_rel_diff(av, D, bv, D, d, D));
	RfStatus st = procrustes_rotation(av, D, bv, D, d, D, Rv);
	if (st != RF_OK)
		return st;
	bool orth = true;
	double ev = rows_err(c, Rv, av, bv);
	if (ev > c->tol) {
		int kind = classify_rows(c, av, bv, &st);
		if (st != RF_OK)
			return st;
		if (kind != 1) {
			set_break(v, VERIFY_WHY_UNEXPLAINED, LEVEL_HEAD, gb, gb * c->hpg,
				  "W_v", ev,
				  "kv group %zu (%s): W_v differs from A's in a way no "
				  "rotation explains (relative residual %.3g, tolerance "
				  "%.3g)", gb, heads, ev, c->tol);
			return RF_OK;
		}
		/* Any invertible map works for V if W_o absorbs its inverse. */
		memcpy(Rv, c->R2, dd * sizeof(double));
		orth = false;
		ev = rows_err(c, Rv, av, bv);
	}
	note_err(c, ev);
	if (a->bv) {
		const double *va = a->bv + ga * d, *vb = b->bv + gb * d;
		bool left;
		double e = bias_err(c, Rv, va, vb, &left);
		if (e > c->tol) {
			set_break(v, left ? VERIFY_WHY_BIAS : VERIFY_WHY_UNEXPLAINED,
				  LEVEL_HEAD, gb, gb * c->hpg, "b_v", e,
				  left
					  ? "kv group %zu (%s): b_v was left as it was while "
					    "W_v was rotated"
					  : "kv group %zu (%s): b_v differs in a way the "
					    "group's V rotation does not explain",
				  gb, heads);
			return RF_OK;
		}
		note_err(c, e);
	}
	for (size_t j = 0; j < c->hpg; j++) {
		size_t ha = ga * c->hpg + j, hb = gb * c->hpg + j;
		const double *ao = a->wo + ha * d, *bo = b->wo + hb * d;
		double eo, plain = procrustes_rel_diff(ao, Hd, bo, Hd, D, d);
		note_direct(c, plain);
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
		if (eo <= c->tol) {
			note_err(c, eo);
			continue;
		}
		if (plain <= c->tol) {
			set_break(v, VERIFY_WHY_O_NOT_ABSORBING, LEVEL_HEAD, gb, hb, "W_o",
				  eo,
				  "query head %zu: O does not absorb V's rotation: the "
				  "column block of W_o is unchanged while W_v of kv "
				  "group %zu is rotated", hb, gb);
			return RF_OK;
		}
		st = procrustes_rotation_cols(ao, Hd, bo, Hd, D, d, c->R2);
		if (st != RF_OK)
			return st;
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)D, (int)d,
			    (int)d, 1.0, ao, (int)Hd, c->R2, (int)d, 0.0, c->work,
			    (int)d);
		if (procrustes_rel_diff(c->work, d, bo, Hd, D, d) <= c->tol)
			set_break(v, VERIFY_WHY_O_NOT_ABSORBING, LEVEL_HEAD, gb, hb, "W_o",
				  eo,
				  "query head %zu: O does not absorb V's rotation: its "
				  "column block of W_o absorbs a different rotation "
				  "(||R_o - R_v|| = %.3g)%s", hb, frob_diff(c->R2, Rv, dd),
				  orth ? "" : " (V's map is not orthogonal)");
		else
			set_break(v, VERIFY_WHY_UNEXPLAINED, LEVEL_HEAD, gb, hb, "W_o", eo,
				  "query head %zu: its column block of W_o differs from "
				  "A's in a way no rotation explains (relative residual "
				  "%.3g, tolerance %.3g)", hb, eo, c->tol);
		return RF_OK;
	}
	if (!orth)
		v->vo_not_orthogonal = true;
	*ok = true;
	return RF_OK;
}

/* ======================= layer-wide tensors ============================= */

/* Tensors a fold leaves alone: equal up to the tolerance. */
static bool check_plain(Ctx *c, const double *x, const double *y, size_t n,
			const char *name, LevelId level)
{
	if (!x && !y)
		return true;
	double e = (x && y) ? procrustes_rel_diff(y, n, x, n, 1, n) : INFINITY;
	note_direct(c, e);
	if (e <= c->tol) {
		note_err(c, e);
		return true;
	}
	set_break(c->v, VERIFY_WHY_UNEXPLAINED, level, SIZE_MAX, SIZE_MAX, name, e,
		  (x && y) ? "%s differs from A's (relative difference %.3g); a "
			     "fold leaves it alone"
			   : "%s is present in only one of the two layers%.0f",
		  name, (x && y) ? e : 0.0);
	return false;
}

/* Per-layer QK-norm weights move with their heads. */
static bool check_norm_weights(Ctx *c, const size_t *perm)
{
	const Layer *a = c->a, *b = c->b;
	size_t d = c->d;
	if (!a->q_norm != !b->q_norm || !a->k_norm != !b->k_norm) {
		const char *name = !a->q_norm != !b->q_norm ? "q_norm" : "k_norm";
		set_break(c->v, VERIFY_WHY_UNEXPLAINED, LEVEL_SCORE, SIZE_MAX,
			  SIZE_MAX, name, INFINITY,
			  "%s is present in only one of the two layers", name);
		return false;
	}
	if (a->qk_norm_per_head != b->qk_norm_per_head) {
		set_break(c->v, VERIFY_WHY_UNEXPLAINED, LEVEL_SCORE, SIZE_MAX,
			  SIZE_MAX, "q_norm", INFINITY,
			  "QK-norm weights are per head in one layer and per "
			  "layer in the other");
		return false;
	}
	if (a->qk_norm_per_head)
		return check_plain(c, a->q_norm, b->q_norm, d, "q_norm", LEVEL_SCORE) &&
		       check_plain(c, a->k_norm, b->k_norm, d, "k_norm", LEVEL_SCORE);
	for (size_t gb = 0; gb < c->G; gb++) {
		size_t ga = perm[gb];
		if (a->k_norm && !check_plain(c, a->k_norm + ga * d, b->k_norm + gb * d,
					      d, "k_norm", LEVEL_SCORE))
			return false;
		for (size_t j = 0; j < c->hpg && a->q_norm; j++)
			if (!check_plain(c, a->q_norm + (ga * c->hpg + j) * d,
					 b->q_norm + (gb * c->hpg + j) * d, d,
					 "q_norm", LEVEL_SCORE))
				return false;
	}
	return true;
}

/* Optional tensors must exist on both sides. */
static bool check_presence(Ctx *c)
{
	const Layer *a = c->a, *b = c->b;
	struct { const double *x, *y; const char *name; LevelId lv; } t[] = {
		{a->bq, b->bq, "b_q", LEVEL_SCORE}, {a->bk, b->bk, "b_k", LEVEL_SCORE},
		{a->bv, b->bv, "b_v", LEVEL_HEAD}, {a->bo, b->bo, "b_o", LEVEL_RESIDUAL},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!t[i].x != !t[i].y) {
			set_break(c->v, VERIFY_WHY_UNEXPLAINED, t[i].lv, SIZE_MAX,
				  SIZE_MAX, t[i].name, INFINITY,
				  "%s is present in only one of the two layers",
				  t[i].name);
			return false;
		}
	return true;
}

static bool bits_equal(const double *x, const double *y, size_t n)
{
	if (!x || !y)
		return x == y;
	return memcmp(x, y, n * sizeof(double)) == 0;
}

static bool layers_identical(const Ctx *c)
{
	const Layer *a = c->a, *b = c->b;
	size_t D = c->D, H = c->H, G = c->G, d = c->d;
	size_t nq = a->qk_norm_per_head ? d : H * d;
	size_t nk = a->qk_norm_per_head ? d : G * d;
	return bits_equal(a->wq, b->wq, H * d * D) &&
	       bits_equal(a->wk, b->wk, G * d * D) &&
	       bits_equal(a->wv, b->wv, G * d * D) &&
	       bits_equal(a->wo, b->wo, D * H * d) &&
	       bits_equal(a->bq, b->bq, H * d) && bits_equal(a->bk, b->bk, G * d) &&
	       bits_equal(a->bv, b->bv, G * d) && bits_equal(a->bo, b->bo, D) &&
	       bits_equal(a->q_norm, b->q_norm, nq) &&
	       bits_equal(a->k_norm, b->k_norm, nk) &&
	       bits_equal(a->attn_norm, b->attn_norm, D) &&
	       bits_equal(a->attn_norm_bias, b->attn_norm_bias, D);
}

/* ======================= one comparison ================================= */

static void verdict_reset(VerifyVerdict *v)
{
	v->equivalent = false;
	v->relation = VERIFY_REL_NONE;
	v->rotated = v->heads_permuted = v->rounded = false;
	v->vo_not_orthogonal = false;
	v->relation_text[0] = 0;
	v->max_err = 0;
	v->why = VERIFY_WHY_NONE;
	v->level = LEVEL_SCORE;
	v->group = v->head = SIZE_MAX;
	v->tensor[0] = 0;
	v->err = 0;
	memset(&v->comm, 0, sizeof v->comm);
	v->why_text[0] = 0;
}

static RfStatus verdict_alloc(VerifyVerdict *v, const Layer *a)
{
	size_t H = a->shape.n_heads, G = a->shape.n_kv_heads;
	size_t d = a->shape.head_dim, dd = d * d, np = a->rope.rotary_dim / 2;
	FoldPlan *p = &v->plan;
	p->n_heads = H;
	p->n_kv_heads = G;
	p->head_dim = d;
	p->rotate_bias = true;
	p->rq = malloc(H * dd * sizeof(double));
	p->rk = malloc(G * dd * sizeof(double));
	p->rv = malloc(G * dd * sizeof(double));
	p->ro = malloc(H * dd * sizeof(double));
	p->perm = malloc(G * sizeof(size_t));
	v->npairs = np;
	v->commuting = calloc(G, sizeof(bool));
	v->angles = calloc(G * (np ? np : 1), sizeof(double));
	if (!p->rq || !p->rk || !p->rv || !p->ro || !p->perm || !v->commuting ||
	    !v->angles)
		return RF_ERR_NOMEM;
	for (size_t h = 0; h < H; h++) {
		set_identity(p->rq + h * dd, d);
		set_identity(p->ro + h * dd, d);
	}
	for (size_t g = 0; g < G; g++) {
		set_identity(p->rk + g * dd, d);
		set_identity(p->rv + g * dd, d);
		p->perm[g] = g;
	}
	return RF_OK;
}

void verify_verdict_free(VerifyVerdict *v)
{
	fold_plan_free(&v->plan);
	free(v->commuting);
	free(v->angles);
	v->commuting = NULL;
	v->angles = NULL;
}

/* Compare a against b (already in a's layout) into v (allocated). */
static RfStatus analyse(const Layer *a, const Layer *b, double tol,
			VerifyVerdict *v)
{
	Ctx c;
	memset(&c, 0, sizeof c);
	c.a = a;
	c.b = b;
	c.D = a->shape.d_model;
	c.H = a->shape.n_heads;
	c.G = a->shape.n_kv_heads;
	c.d = a->shape.head_dim;
	c.hpg = c.H / c.G;
	c.dd = c.d * c.d;
	c.dD = c.d * c.D;
	c.np = a->rope.rotary_dim / 2;
	c.tol = tol;
	c.v = v;
	verdict_reset(v);
	if (layers_identical(&c)) {
		v->equivalent = true;
		v->relation = VERIFY_REL_IDENTICAL;
		return RF_OK;
	}
	c.freqs = calloc(c.np ? c.np : 1, sizeof(double));
	c.work = malloc(c.dD * sizeof(double));
	c.R = malloc(c.dd * sizeof(double));
	c.R2 = malloc(c.dd * sizeof(double));
	RfStatus st = RF_ERR_NOMEM;
	if (!c.freqs || !c.work || !c.R || !c.R2)
		goto out;
	st = rope_frequencies(&a->rope, c.freqs);
	if (st != RF_OK)
		goto out;
	const char *bad;
	if (!layer_is_finite(a, &bad) || !layer_is_finite(b, &bad)) {
		set_break(v, VERIFY_WHY_UNEXPLAINED, LEVEL_SCORE, SIZE_MAX, SIZE_MAX,
			  "", INFINITY, "the %s holds a value that is not finite", bad);
		goto out;
	}
	if (!check_presence(&c))
		goto out;
	st = match_groups(&c, v->plan.perm);
	if (st != RF_OK)
		goto out;
	for (size_t g = 0; g < c.G; g++)
		if (v->plan.perm[g] != g)
			v->heads_permuted = true;
	if (!check_plain(&c, a->attn_norm, b->attn_norm, c.D, "attn_norm",
			 LEVEL_SCORE) ||
	    !check_plain(&c, a->attn_norm_bias, b->attn_norm_bias, c.D,
			 "attn_norm_bias", LEVEL_SCORE) ||
	    !check_norm_weights(&c, v->plan.perm))
		goto out;
	for (size_t gb = 0; gb < c.G; gb++) {
		bool ok;
		size_t ga = v->plan.perm[gb];
		st = check_qk(&c, gb, ga, &ok);
		if (st != RF_OK || !ok)
			goto out;
		st = check_vo(&c, gb, ga, &ok);
		if (st != RF_OK || !ok)
			goto out;
	}
	if (!check_plain(&c, a->bo, b->bo, c.D, "b_o", LEVEL_RESIDUAL))
		goto out;
	if (a->score_scale != b->score_scale) {
		set_break(v, VERIFY_WHY_SHAPE, LEVEL_SCORE, SIZE_MAX, SIZE_MAX,
			  "", INFINITY, "the score scales differ (%g and %g)",
			  layer_score_scale(a), layer_score_scale(b));
		goto out;
	}
	v->equivalent = true;
	v->rotated = c.direct > tol;
	v->rounded = !v->rotated && c.direct > 0;
	if (v->rotated)
		v->relation = VERIFY_REL_COMMUTING_FOLD;
	else
		v->relation = VERIFY_REL_ROUNDING;
	if (v->heads_permuted)
		v->relation = VERIFY_REL_HEADS_PERMUTED;
out:
	free(c.freqs);
	free(c.work);
	free(c.R);
	free(c.R2);
	return st;
}

/* ======================= layouts, candidates, words ===================== */

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

static bool same_shape(const LayerShape *x, const LayerShape *y)
{
	return x->d_model == y->d_model && x->n_heads == y->n_heads &&
	       x->n_kv_heads == y->n_kv_heads && x->head_dim == y->head_dim;
}

/* Try a hypothesis about a broken conversion: cand (in a's layout) is
 * what B would be had the conversion been done right. When it explains
 * B, the verdict becomes that named break. */
static RfStatus try_candidate(const Layer *a, const Layer *cand, double tol,
			      VerifyVerdict *v, VerifyWhy why, const char *text)
{
	VerifyVerdict t;
	memset(&t, 0, sizeof t);
	RfStatus st = verdict_alloc(&t, a);
	if (st == RF_OK)
		st = analyse(a, cand, tol, &t);
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
		v->why = VERIFY_WHY_NONE;
		set_break(v, why, LEVEL_SCORE, 0, 0, "W_k", v->err, "%s", text);
		v->equivalent = false;
		v->relation = VERIFY_REL_NONE;
		v->heads_permuted = t.heads_permuted;
	}
	verify_verdict_free(&t);
	return st;
}

/* After a Q/K break, test the classic broken conversions. */
static RfStatus try_conversions(const Layer *a, const Layer *b, const Layer *bc,
				double tol, VerifyVerdict *v)
{
	RfStatus st = RF_OK;
	Layer cand;
	char text[512];
	const char *la = rope_layout_name(a->rope.layout);
	const char *lb = rope_layout_name(b->rope.layout);
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
		snprintf(text, sizeof text,
			 "a layout conversion (%s -> %s) that missed K: Q's rows "
			 "are permuted between the layouts but K's are not, so "
			 "every key is paired with the wrong frequencies", la, lb);
		st = try_candidate(a, &cand, tol, v, VERIFY_WHY_CONV_MISSED_K, text);
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
				snprintf(text, sizeof text,
					 "a layout conversion (%s -> %s) that permuted K "
					 "with the query head count (%zu) instead of the "
					 "kv head count (%zu): K's rows moved in blocks of "
					 "%zu, not %zu",
					 la, lb, b->shape.n_heads, b->shape.n_kv_heads,
					 b->shape.n_kv_heads * b->shape.head_dim /
						 b->shape.n_heads,
					 b->shape.head_dim);
				st = try_candidate(a, &cand, tol, v,
						   VERIFY_WHY_CONV_K_HEADS, text);
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
		snprintf(text, sizeof text,
			 "the RoPE layout changed (%s -> %s) but the Q/K rows were "
			 "not permuted by the conversion", la, lb);
		st = try_candidate(a, &cand, tol, v, VERIFY_WHY_CONV_MISSED_QK, text);
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
	snprintf(text, sizeof text,
		 "Q/K rows are permuted as by a layout conversion (%s -> %s) "
		 "but the RoPE layout is still %s",
		 la, rope_layout_name(other), lb);
	st = try_candidate(a, &cand, tol, v, VERIFY_WHY_CONV_UNLABELLED, text);
	layer_free(&cand);
	return st;
}

/* The relation in plain words. */
static void describe(const Layer *a, const Layer *b, double u, VerifyVerdict *v)
{
	char *buf = v->relation_text;
	size_t len = sizeof v->relation_text, n = 0;
	if (!v->equivalent) {
		snprintf(buf, len, "not equivalent");
		return;
	}
	if (v->layout_converted) {
		v->relation = VERIFY_REL_LAYOUT;
		n += (size_t)snprintf(buf + n, len - n,
				      "same model up to the layout conversion (%s -> %s)",
				      rope_layout_name(a->rope.layout),
				      rope_layout_name(b->rope.layout));
		if (v->rotated)
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
				      n ? " with heads permuted as [" :
					  "heads permuted as [");
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
		snprintf(buf + n, len - n,
			 " (V/O by an invertible, non-orthogonal map)");
}

RfStatus verify_layers(const Layer *a, const Layer *b,
		       const VerifyOptions *opt, VerifyVerdict *v)
{
	memset(v, 0, sizeof *v);
	verdict_reset(v);
	double u = opt && opt->unit_roundoff > 0 ? opt->unit_roundoff : 0x1p-53;
	v->tol = opt && opt->tol > 0 ? opt->tol : 3.0 * u + 1e-12;
	v->unit_roundoff = u;
	if (layer_shape_check(&a->shape, NULL) != RF_OK ||
	    rope_spec_check(&a->rope, a->shape.head_dim, NULL) != RF_OK)
		return RF_ERR_ARG;
	if (!same_shape(&a->shape, &b->shape) ||
	    !same_rope_params(&a->rope, &b->rope)) {
		set_break(v, VERIFY_WHY_SHAPE, LEVEL_SCORE, SIZE_MAX, SIZE_MAX, "",
			  INFINITY,
			  "the layers differ in shape or RoPE settings (D %zu/%zu, "
			  "heads %zu/%zu, kv heads %zu/%zu, head dim %zu/%zu, "
			  "rotary dim %zu/%zu, theta %g/%g)",
			  a->shape.d_model, b->shape.d_model, a->shape.n_heads,
			  b->shape.n_heads, a->shape.n_kv_heads, b->shape.n_kv_heads,
			  a->shape.head_dim, b->shape.head_dim, a->rope.rotary_dim,
			  b->rope.rotary_dim, a->rope.theta, b->rope.theta);
		snprintf(v->relation_text, sizeof v->relation_text, "not equivalent");
		return RF_OK;
	}
	RfStatus st = verdict_alloc(v, a);
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
	st = analyse(a, bc, v->tol, v);
	v->layout_converted = bc != b;
	if (st == RF_OK && !v->equivalent && v->level == LEVEL_SCORE &&
	    v->why != VERIFY_WHY_SHAPE)
		st = try_conversions(a, b, bc, v->tol, v);
	if (bc != b)
		layer_free(&conv);
	if (st == RF_OK)
		describe(a, b, u, v);
	return st;
}

/* ======================= the three levels =============================== */

/* The relative error, level by level, that storing a's weights in a
 * dtype of unit roundoff u causes by itself: a against a copy whose every
 * weight moved by a random relative amount of at most u (deterministic). */
static RfStatus rounding_noise(const Layer *a, double u, const double *x,
			       size_t T, Precision prec, const RopeTable *rope,
			       double noise[LEVEL_COUNT])
{
	Layer p;
	RfStatus st = layer_copy(&p, a);
	if (st != RF_OK)
		return st;
	size_t D = a->shape.d_model, d = a->shape.head_dim;
	size_t nq = a->shape.n_heads * d, nk = a->shape.n_kv_heads * d;
	double *w[4] = {p.wq, p.wk, p.wv, p.wo};
	size_t n[4] = {nq * D, nk * D, nk * D, D * nq};
	Rng rng;
	rng_seed(&rng, 0x5eed, 7);
	for (int i = 0; i < 4; i++)
		for (size_t j = 0; j < n[i]; j++)
			w[i][j] *= 1.0 + u * (2.0 * rng_uniform(&rng) - 1.0);
	InvReport r;
	st = report_init(&r, T, a->shape.n_heads, a->shape.n_kv_heads, d,
			 a->rope.rotary_dim);
	if (st == RF_OK) {
		st = attention_compare(a, &p, x, T, prec, rope, &r);
		for (int l = 0; st == RF_OK && l < LEVEL_COUNT; l++)
			noise[l] = r.level[l].ref_max > 0
				? r.level[l].max_abs_err / r.level[l].ref_max
				: r.level[l].max_abs_err;
		report_done(&r);
	}
	layer_free(&p);
	return st;
}

RfStatus verify_confirm(const Layer *a, const Layer *b, VerifyVerdict *v,
			const double *x, size_t T, Precision prec, double tol,
			InvReport *rep)
{
	if (!same_shape(&a->shape, &b->shape) || T == 0 || T > LAYER_MAX_SEQ)
		return RF_ERR_ARG;
	Layer conv;
	const Layer *bc = b;
	RfStatus st;
	if (b->rope.layout != a->rope.layout) {
		st = layout_convert(b, a->rope.layout, &conv);
		if (st != RF_OK)
			return st;
		bc = &conv;
	}
	st = report_init(rep, T, a->shape.n_heads, a->shape.n_kv_heads,
			 a->shape.head_dim, a->rope.rotary_dim);
	if (st != RF_OK)
		goto out;
	rep->precision = prec;
	RopeTable rope;
	st = rope_table_init(&rope, &a->rope, T);
	double noise[LEVEL_COUNT] = {0};
	if (st == RF_OK) {
		st = attention_compare(a, bc, x, T, prec, &rope, rep);
		/* a dtype coarser than float64 moves the outputs by far more
		 * than the compute precision: measure by how much */
		if (st == RF_OK && !(tol > 0) && v->unit_roundoff > 0x1p-50)
			st = rounding_noise(a, v->unit_roundoff, x, T, prec, &rope,
					    noise);
		rope_table_done(&rope);
	}
	if (st != RF_OK) {
		report_done(rep);
		goto out;
	}
	if (!(tol > 0)) {
		tol = levels_default_tol(prec);
		for (int l = 0; l < LEVEL_COUNT; l++)  /* an overflow is no noise */
			if (isfinite(noise[l]) && 4.0 * noise[l] > tol)
				tol = 4.0 * noise[l];
	}
	v->confirm_tol = tol;
	FoldConfig cfg = fold_config_default();
	cfg.permute_heads = v->heads_permuted;
	/* B may be a fold that kept QK-norm-split pairs to 0 or pi */
	cfg.qk_norm_exact = true;
	levels_judge(rep, a, &cfg, tol);
out:
	if (bc != b)
		layer_free(&conv);
	return st;
}
