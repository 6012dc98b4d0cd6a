#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/diagnose.h"
#include "core/forward.h"
#include "core/levels.h"
#include "core/mla_inv.h"
#include "core/rng.h"

/* |a - b|, a NaN difference (an overflowed side) counting as infinite. */
static double err_of(double a, double b)
{
	double e = fabs(a - b);
	return e == e ? e : INFINITY;
}

static unsigned ovf_side(double a, double b)
{
	unsigned s = (isfinite(a) ? 0 : OVERFLOW_ORIGINAL) | (isfinite(b) ? 0 : OVERFLOW_FOLDED);
	return s ? s : OVERFLOW_DIFFERENCE;
}

static double dot(const double *a, const double *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* ---- the score level ------------------------------------------------------ */

static void compare_scores(const MlaLayer *la, const MlaLayer *lb, const MlaSide *a,
			   const MlaSide *b, InvReport *rep)
{
	size_t T = a->T, H = la->shape.n_heads, dq = mla_qk_dim(&la->shape), B = rep->heat_bins;
	double sa = mla_score_scale(la), sb = mla_score_scale(lb);
	LevelResult *L = &rep->level[LEVEL_SCORE];
	for (size_t i = 0; i < H * B * B; i++)
		rep->heat[i] = -1.0;
	for (size_t h = 0; h < H; h++) {
		double herr = 0, href = 0;
		double *heat = rep->heat + h * B * B;
		for (size_t m = 0; m < T; m++)
			for (size_t n = 0; n <= m; n++) {
				size_t qi = (m * H + h) * dq, ki = (n * H + h) * dq;
				double va = sa * dot(a->q + qi, a->k + ki, dq);
				double vb = sb * dot(b->q + qi, b->k + ki, dq);
				double e = err_of(va, vb), r = fabs(va);
				size_t off = m - n;
				if (e > rep->by_offset[off])
					rep->by_offset[off] = e;
				if (r > rep->by_offset_ref[off])
					rep->by_offset_ref[off] = r;
				double *bin = heat + (m * B / T) * B + n * B / T;
				if (e > *bin)
					*bin = e;
				if (r > href)
					href = r;
				if (e > herr)
					herr = e;
				if (e > L->max_abs_err || (h == 0 && m == 0 && n == 0)) {
					L->max_abs_err = e;
					L->worst_head = h;
					L->worst_m = m;
					L->worst_n = n;
					L->overflow = isinf(e) ? ovf_side(va, vb) : 0;
				}
			}
		if (href > L->ref_max)
			L->ref_max = href;
		rep->score_rel_err[h] = href > 0 && !isinf(herr) ? herr / href : herr;
	}
}

/* ---- the head and residual levels ---------------------------------------- */

static RfStatus compare_blocks(const MlaLayer *la, const MlaLayer *lb, const MlaSide *a,
			       const MlaSide *b, InvReport *rep)
{
	size_t T = a->T, H = la->shape.n_heads, D = la->shape.d_model, dv = la->shape.v_head_dim;
	size_t ld = H * dv;
	double *oa = malloc(2 * T * D * sizeof(double));
	if (!oa)
		return RF_ERR_NOMEM;
	double *ob = oa + T * D;
	LevelResult *L = &rep->level[LEVEL_HEAD];
	for (size_t h = 0; h < H; h++) {
		/* O_h (T x D) = C_h (T x dv) W_o,h^T, on each side */
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)D, (int)dv, 1.0,
			    a->ctx + h * dv, (int)ld, la->wo + h * dv, (int)ld, 0.0, oa, (int)D);
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)D, (int)dv, 1.0,
			    b->ctx + h * dv, (int)ld, lb->wo + h * dv, (int)ld, 0.0, ob, (int)D);
		double herr = 0, href = 0;
		for (size_t i = 0; i < T * D; i++) {
			double e = err_of(oa[i], ob[i]), r = fabs(oa[i]);
			if (r > href)
				href = r;
			if (e > herr)
				herr = e;
			if (e > L->max_abs_err || (h == 0 && i == 0)) {
				L->max_abs_err = e;
				L->worst_head = h;
				L->worst_m = i / D;
				L->worst_coord = i % D;
				L->overflow = isinf(e) ? ovf_side(oa[i], ob[i]) : 0;
			}
		}
		if (href > L->ref_max)
			L->ref_max = href;
		rep->head_rel_err[h] = href > 0 && !isinf(herr) ? herr / href : herr;
	}
	free(oa);
	LevelResult *R = &rep->level[LEVEL_RESIDUAL];
	for (size_t i = 0; i < T * D; i++) {
		double e = err_of(a->y[i], b->y[i]), r = fabs(a->y[i]);
		if (r > R->ref_max)
			R->ref_max = r;
		if (e > R->max_abs_err || i == 0) {
			R->max_abs_err = e;
			R->worst_m = i / D;
			R->worst_coord = i % D;
			R->overflow = isinf(e) ? ovf_side(a->y[i], b->y[i]) : 0;
		}
	}
	return RF_OK;
}

/* ---- diagnostics ------------------------------------------------------------ */

/* ||A^T B - I|| (Frobenius) of d x d matrices. */
static double gram_defect(const double *A, const double *B, size_t d)
{
	double s = 0;
	for (size_t i = 0; i < d; i++)
		for (size_t j = 0; j < d; j++) {
			double v = 0;
			for (size_t k = 0; k < d; k++)
				v += A[k * d + i] * B[k * d + j];
			v -= i == j;
			s += v * v;
		}
	return sqrt(s);
}

static double diff_norm(const double *A, const double *B, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (A[i] - B[i]) * (A[i] - B[i]);
	return sqrt(s);
}

static void note_ortho(Diagnostics *dg, const double *R, size_t d, char part, size_t head)
{
	double v = gram_defect(R, R, d);
	if (v > dg->ortho_defect) {
		dg->ortho_defect = v;
		dg->ortho_part = part;
		dg->ortho_head = head;
	}
}

/* The rope part through diagnose_plan (a layer of head dim dr, one kv
 * head), then the nope part and V on top. */
RfStatus mla_diagnose_plan(const MlaLayer *l, const FoldConfig *cfg, const MlaPlan *p,
			   InvReport *rep)
{
	size_t H = p->n_heads, dn = p->nope, dr = p->rope, dv = p->v;
	size_t nn = dn * dn, vv = dv * dv, rr = dr * dr;
	Layer dl;
	mla_header(l, &dl);
	dl.shape.head_dim = dr;
	FoldPlan fp;
	memset(&fp, 0, sizeof fp);
	fp.n_heads = H;
	fp.n_kv_heads = 1;
	fp.head_dim = dr;
	fp.rq = p->rq_pe;
	fp.rk = p->rk_pe;
	fp.rv = calloc(rr + 1, sizeof(double));
	fp.ro = calloc(H * rr + 1, sizeof(double));
	size_t perm0 = 0;
	fp.perm = &perm0;
	RfStatus st = RF_ERR_NOMEM;
	if (fp.rv && fp.ro) {
		for (size_t i = 0; i < dr; i++)
			fp.rv[i * dr + i] = 1.0;
		for (size_t h = 0; h < H; h++)
			memcpy(fp.ro + h * rr, fp.rv, rr * sizeof(double));
		st = diagnose_plan(&dl, cfg, &fp, rep);
	}
	free(fp.rv);
	free(fp.ro);
	if (st != RF_OK)
		return st;
	Diagnostics *dg = &rep->diag;
	dg->vo_mismatch = 0;
	for (size_t h = 0; h < H; h++) {
		note_ortho(dg, p->rq_nope + h * nn, dn, 'q', h);
		note_ortho(dg, p->rk_nope + h * nn, dn, 'k', h);
		note_ortho(dg, p->rv + h * vv, dv, 'v', h);
		double qk = diff_norm(p->rq_nope + h * nn, p->rk_nope + h * nn, nn);
		double pe = diff_norm(p->rq_pe + h * rr, p->rk_pe, rr);
		qk = sqrt(qk * qk + pe * pe);
		if (qk > dg->qk_mismatch) {
			dg->qk_mismatch = qk;
			dg->qk_mismatch_head = h;
		}
		double vo = gram_defect(p->ro + h * vv, p->rv + h * vv, dv);
		if (vo > dg->vo_mismatch) {
			dg->vo_mismatch = vo;
			dg->vo_mismatch_head = h;
		}
		if (p->perm[h] != h)
			dg->heads_permuted = true;
	}
	return RF_OK;
}

/* ---- one side in float32 ------------------------------------------------------ */

/* n doubles as floats (NULL stays NULL); *bad on a failed allocation. */
static float *to_float(const double *v, size_t n, bool *bad)
{
	if (!v)
		return NULL;
	float *f = malloc((n ? n : 1) * sizeof(float));
	if (!f) {
		*bad = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		f[i] = (float)v[i];
	return f;
}

/* n floats as doubles into a fresh buffer. */
static double *to_double(const void *v, size_t n)
{
	double *d = malloc((n ? n : 1) * sizeof(double));
	for (size_t i = 0; d && i < n; i++)
		d[i] = ((const float *)v)[i];
	return d;
}

/* The side of mla_forward computed in float32 (the weights and x rounded
 * to float, the whole attention in float as core/forward's MLA does),
 * its buffers widened to double for the comparisons. */
static RfStatus mla_forward_f32(const MlaLayer *l, const double *x, size_t T, MlaSide *out)
{
	const MlaShape *s = &l->shape;
	size_t D = s->d_model, H = s->n_heads, Lq = s->q_lora_rank, Lkv = s->kv_lora_rank;
	size_t dq = mla_qk_dim(s), dr = s->qk_rope_dim, dv = s->v_head_dim;
	size_t dkv = s->qk_nope_dim + dv;
	memset(out, 0, sizeof *out);
	FwdMla m;
	memset(&m, 0, sizeof m);
	m.shape = *s;
	m.rope = l->rope;
	m.rope.rotary_dim = dr;
	m.latent_eps = l->latent_eps;
	m.score_scale = mla_score_scale(l);
	bool bad = false;
	float *w[7] = {to_float(l->q_a, Lq * D, &bad), to_float(l->q_a_norm, Lq, &bad),
		       to_float(l->q_b, H * dq * (Lq ? Lq : D), &bad),
		       to_float(l->kv_a, (Lkv + dr) * D, &bad), to_float(l->kv_a_norm, Lkv, &bad),
		       to_float(l->kv_b, H * dkv * Lkv, &bad), to_float(l->wo, D * H * dv, &bad)};
	m.q_a = w[0];
	m.q_a_norm = w[1];
	m.q_b = w[2];
	m.kv_a = w[3];
	m.kv_a_norm = w[4];
	m.kv_b = w[5];
	m.wo = w[6];
	FwdState st;
	FwdMlaTrace tr;
	memset(&tr, 0, sizeof tr);
	RfStatus rc = bad ? RF_ERR_NOMEM : fwd_state_init(&st, FWD_F32, T, D, 1);
	if (rc == RF_OK) {
		fwd_state_embed(&st, x);
		rc = fwd_mla_trace(&st, &m, &tr);
		fwd_state_done(&st);
	}
	if (rc == RF_OK) {
		out->T = T;
		out->q = to_double(tr.q, T * H * dq);
		out->k = to_double(tr.k, T * H * dq);
		out->v = to_double(tr.v, T * H * dv);
		out->ctx = to_double(tr.ctx, T * H * dv);
		out->y = to_double(tr.y, T * D);
		if (!out->q || !out->k || !out->v || !out->ctx || !out->y) {
			mla_side_done(out);
			rc = RF_ERR_NOMEM;
		}
	}
	free(tr.q);
	free(tr.k);
	free(tr.v);
	free(tr.ctx);
	free(tr.y);
	for (int i = 0; i < 7; i++)
		free(w[i]);
	return rc;
}

/* One side at the evaluation's precision. */
static RfStatus side(const MlaLayer *l, const double *x, size_t T, Precision p, MlaSide *out)
{
	return p == PREC_F32 ? mla_forward_f32(l, x, T, out) : mla_forward(l, x, T, out);
}

/* ---- the evaluation -------------------------------------------------------- */

RfStatus mla_evaluate(const MlaLayer *l, const double *x, const EvalOptions *opt,
		      const FoldConfig *cfg, InvReport *rep)
{
	memset(rep, 0, sizeof *rep);
	if ((opt->precision != PREC_F64 && opt->precision != PREC_F32) || !opt->seq)
		return RF_ERR_ARG;
	Precision prec = opt->precision;
	size_t T = opt->seq, H = l->shape.n_heads, dr = l->shape.qk_rope_dim;
	RfStatus st = report_init(rep, T, H, 1, dr, dr);
	if (st != RF_OK)
		return st;
	rep->precision = prec;
	MlaPlan plan;
	MlaLayer folded;
	MlaSide a, b;
	memset(&folded, 0, sizeof folded);
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	st = mla_plan_build(l, cfg, &plan);
	if (st != RF_OK)
		goto out_rep;
	st = mla_fold_apply(l, &plan, &folded);
	if (st == RF_OK)
		st = side(l, x, T, prec, &a);
	if (st == RF_OK)
		st = side(&folded, x, T, prec, &b);
	if (st == RF_OK) {
		compare_scores(l, &folded, &a, &b, rep);
		st = compare_blocks(l, &folded, &a, &b, rep);
	}
	if (st == RF_OK)
		st = mla_diagnose_plan(l, cfg, &plan, rep);
	if (st == RF_OK) {
		Layer hdr;
		mla_header(l, &hdr);
		levels_judge(rep, &hdr, cfg, opt->tol > 0 ? opt->tol : levels_default_tol(prec));
		diagnose_explain(&hdr, cfg, rep);
	}
	mla_side_done(&a);
	mla_side_done(&b);
	mla_free(&folded);
	mla_plan_free(&plan);
out_rep:
	if (st != RF_OK)
		report_done(rep);
	return st;
}

RfStatus mla_compare(const MlaLayer *a, const MlaLayer *b, const double *x, size_t T,
		     Precision prec, double tol, bool expect, InvReport *rep)
{
	memset(rep, 0, sizeof *rep);
	if (!T || memcmp(&a->shape, &b->shape, sizeof a->shape) ||
	    (prec != PREC_F64 && prec != PREC_F32))
		return RF_ERR_ARG;
	RfStatus st = report_init(rep, T, a->shape.n_heads, 1, a->shape.qk_rope_dim,
				  a->shape.qk_rope_dim);
	if (st != RF_OK)
		return st;
	rep->precision = prec;
	MlaSide sa, sb;
	memset(&sb, 0, sizeof sb);
	st = side(a, x, T, prec, &sa);
	if (st == RF_OK)
		st = side(b, x, T, prec, &sb);
	if (st == RF_OK) {
		compare_scores(a, b, &sa, &sb, rep);
		st = compare_blocks(a, b, &sa, &sb, rep);
	}
	mla_side_done(&sa);
	mla_side_done(&sb);
	if (st != RF_OK) {
		report_done(rep);
		return st;
	}
	/* the verdicts against tol; nothing folded, so predict by expect */
	Layer hdr;
	mla_header(a, &hdr);
	FoldConfig none = fold_config_default();
	none.rotate = 0;
	levels_judge(rep, &hdr, &none, tol > 0 ? tol : levels_default_tol(prec));
	for (int i = 0; i < LEVEL_COUNT; i++)
		rep->level[i].guaranteed = expect;
	return RF_OK;
}

RfStatus mla_rounding_noise(const MlaLayer *a, const double *x, size_t T, double u,
			    double noise[LEVEL_COUNT])
{
	MlaLayer p;
	RfStatus st = mla_copy(&p, a);
	if (st != RF_OK)
		return st;
	Rng rng;
	rng_seed(&rng, 0x5eed, 41);
	double *t[] = {p.q_a, p.q_b, p.kv_a, p.kv_b, p.wo};
	const MlaShape *s = &a->shape;
	size_t D = s->d_model, H = s->n_heads, dq = mla_qk_dim(s);
	size_t n[] = {s->q_lora_rank * D, H * dq * (s->q_lora_rank ? s->q_lora_rank : D),
		      (s->kv_lora_rank + s->qk_rope_dim) * D,
		      H * (s->qk_nope_dim + s->v_head_dim) * s->kv_lora_rank,
		      D * H * s->v_head_dim};
	for (size_t k = 0; k < 5; k++)
		for (size_t i = 0; t[k] && i < n[k]; i++)
			t[k][i] *= 1.0 + u * (2.0 * rng_uniform(&rng) - 1.0);
	InvReport rep;
	st = mla_compare(a, &p, x, T, PREC_F64, 0, false, &rep);
	if (st == RF_OK) {
		for (int i = 0; i < LEVEL_COUNT; i++)
			noise[i] = rep.level[i].max_rel_err;
		report_done(&rep);
	}
	mla_free(&p);
	return st;
}

RfStatus mla_confirm(const MlaLayer *a, const MlaLayer *b, VerifyVerdict *v, const double *x,
		     size_t T, Precision prec, double tol, InvReport *rep)
{
	memset(rep, 0, sizeof *rep);
	prec = prec == PREC_F32 ? PREC_F32 : PREC_F64;
	if (tol <= 0) {
		/* the precision's tolerance, and never below four times what the
		 * stored dtype's rounding alone moves (measured in float64) */
		double noise[LEVEL_COUNT] = {0};
		tol = levels_default_tol(prec);
		if (v->unit_roundoff > 0) {
			RfStatus st = mla_rounding_noise(a, x, T, v->unit_roundoff, noise);
			if (st != RF_OK)
				return st;
		}
		for (int l = 0; l < LEVEL_COUNT; l++)
			if (4.0 * noise[l] > tol)
				tol = 4.0 * noise[l];
	}
	RfStatus st = mla_compare(a, b, x, T, prec, tol, v->equivalent, rep);
	if (st != RF_OK)
		return st;
	/* permuted heads: each head differs, the residual block not */
	if (v->heads_permuted)
		rep->level[LEVEL_SCORE].guaranteed = rep->level[LEVEL_HEAD].guaranteed = false;
	v->confirm_tol = tol;
	return RF_OK;
}
