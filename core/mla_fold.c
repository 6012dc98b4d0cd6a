#include "config.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/fold_inverse.h"
#include "core/mla_fold.h"
#include "core/rng.h"
#include "core/rotation.h"
#include "core/rows_rotate.h"

void mla_plan_free(MlaPlan *p)
{
	free(p->rq_nope);
	free(p->rk_nope);
	free(p->rq_pe);
	free(p->rk_pe);
	free(p->rv);
	free(p->ro);
	free(p->perm);
	memset(p, 0, sizeof *p);
}

static void set_identity(double *R, size_t d)
{
	memset(R, 0, d * d * sizeof(double));
	for (size_t i = 0; i < d; i++)
		R[i * d + i] = 1.0;
}

/* A Haar orthogonal n x n (n may be 0), scaled per pair when orthogonal is
 * dropped. */
static RfStatus draw_free(size_t n, Rng *rng, bool scale, double *R)
{
	if (!n)
		return RF_OK;
	RfStatus st = rotation_haar(n, rng, R);
	if (st == RF_OK && scale) {
		RopeSpec none = rope_spec_default(n);
		none.rotary_dim = 0;
		rotation_scale_pairs(&none, n, rng, R);
	}
	return st;
}

/* P for the rope part: commuting, or of kind when commutes is dropped. */
static RfStatus draw_pe(const RopeSpec *rope, const FoldConfig *cfg, size_t dr, Rng *rng,
			double *R)
{
	RotKind kind = (cfg->dropped & ASSUME_COMMUTES) ? cfg->kind : ROT_COMMUTING;
	RfStatus st = rotation_make(kind, rope, dr, rng, R);
	if (st == RF_OK && (cfg->dropped & ASSUME_ORTHOGONAL))
		rotation_scale_pairs(rope, dr, rng, R);
	return st;
}

RfStatus mla_plan_build(const MlaLayer *l, const FoldConfig *cfg, MlaPlan *p)
{
	const MlaShape *s = &l->shape;
	size_t H = s->n_heads, dn = s->qk_nope_dim, dr = s->qk_rope_dim, dv = s->v_head_dim;
	size_t nn = dn * dn, rr = dr * dr, vv = dv * dv;
	memset(p, 0, sizeof *p);
	p->n_heads = H;
	p->nope = dn;
	p->rope = dr;
	p->v = dv;
	p->rq_nope = malloc((H * nn + 1) * sizeof(double));
	p->rk_nope = malloc((H * nn + 1) * sizeof(double));
	p->rq_pe = malloc(H * rr * sizeof(double));
	p->rk_pe = malloc(rr * sizeof(double));
	p->rv = malloc(H * vv * sizeof(double));
	p->ro = malloc(H * vv * sizeof(double));
	p->perm = malloc(H * sizeof(size_t));
	if (!p->rq_nope || !p->rk_nope || !p->rq_pe || !p->rk_pe || !p->rv || !p->ro ||
	    !p->perm) {
		mla_plan_free(p);
		return RF_ERR_NOMEM;
	}
	unsigned drop = cfg->dropped;
	bool scale = drop & ASSUME_ORTHOGONAL;
	bool per_head = !(drop & ASSUME_PER_HEAD);
	RopeSpec rope = l->rope;
	rope.rotary_dim = dr;
	if (cfg->layout_set)
		rope.layout = cfg->layout;
	Rng rq, rk, rv;
	rng_seed(&rq, cfg->seed, 31);
	rng_seed(&rk, cfg->seed, 32);
	rng_seed(&rv, cfg->seed, 33);
	RfStatus st = RF_OK;
	/* Q: A_h (one for all heads when per-head is dropped), P (per head
	 * when gqa-consistent is dropped: the heads of one kv group apart) */
	for (size_t h = 0; h < H && st == RF_OK; h++) {
		if (h == 0 || per_head)
			st = draw_free(dn, &rq, scale, p->rq_nope + h * nn);
		else
			memcpy(p->rq_nope + h * nn, p->rq_nope, nn * sizeof(double));
		if (st == RF_OK && (h == 0 || (drop & ASSUME_GQA_CONSISTENT)))
			st = draw_pe(&rope, cfg, dr, &rq, p->rq_pe + h * rr);
		else if (st == RF_OK)
			memcpy(p->rq_pe + h * rr, p->rq_pe, rr * sizeof(double));
	}
	/* K: Q's (k_pe takes head 0's), or draws of its own */
	if (st == RF_OK && (drop & ASSUME_SHARED_QK)) {
		for (size_t h = 0; h < H && st == RF_OK; h++) {
			if (h == 0 || per_head)
				st = draw_free(dn, &rk, scale, p->rk_nope + h * nn);
			else
				memcpy(p->rk_nope + h * nn, p->rk_nope, nn * sizeof(double));
		}
		if (st == RF_OK)
			st = draw_pe(&rope, cfg, dr, &rk, p->rk_pe);
	} else if (st == RF_OK) {
		memcpy(p->rk_nope, p->rq_nope, H * nn * sizeof(double));
		memcpy(p->rk_pe, p->rq_pe, rr * sizeof(double));
	}
	/* V: the nope rotation when the widths agree and v-same holds */
	bool v_same = !(drop & ASSUME_V_SAME) && dv == dn;
	for (size_t h = 0; h < H && st == RF_OK; h++) {
		if (v_same)
			memcpy(p->rv + h * vv, p->rq_nope + h * nn, vv * sizeof(double));
		else if (h == 0 || per_head)
			st = draw_free(dv, &rv, scale, p->rv + h * vv);
		else
			memcpy(p->rv + h * vv, p->rv, vv * sizeof(double));
	}
	if (st != RF_OK) {
		mla_plan_free(p);
		return st;
	}
	memcpy(p->ro, p->rv, H * vv * sizeof(double));
	if (!(cfg->rotate & PART_Q))
		for (size_t h = 0; h < H; h++) {
			set_identity(p->rq_nope + h * nn, dn);
			set_identity(p->rq_pe + h * rr, dr);
		}
	if (!(cfg->rotate & PART_K)) {
		for (size_t h = 0; h < H; h++)
			set_identity(p->rk_nope + h * nn, dn);
		set_identity(p->rk_pe, dr);
	}
	if (!(cfg->rotate & PART_V))
		for (size_t h = 0; h < H; h++)
			set_identity(p->rv + h * vv, dv);
	if (!(cfg->rotate & PART_O))
		for (size_t h = 0; h < H; h++)
			set_identity(p->ro + h * vv, dv);
	for (size_t h = 0; h < H; h++)
		p->perm[h] = cfg->permute_heads ? (h + 1) % H : h;
	return RF_OK;
}

/* out (d x n, leading dimension ld) = R (d x d) in (d x n, ld); n may be 0. */
static void rotate_rows(const double *R, const double *in, double *out, size_t d, size_t n,
			size_t ld)
{
	if (!d || !n)
		return;
	rows_rotate(R, d, in, ld, n, out, ld);
}

RfStatus mla_fold_apply(const MlaLayer *src, const MlaPlan *p, MlaLayer *dst)
{
	RfStatus st = mla_copy(dst, src);
	if (st != RF_OK)
		return st;
	const MlaShape *s = &src->shape;
	size_t D = s->d_model, H = s->n_heads, dn = s->qk_nope_dim, dr = s->qk_rope_dim;
	size_t dv = s->v_head_dim, dq = dn + dr, dkv = dn + dv, Lkv = s->kv_lora_rank;
	size_t qin = s->q_lora_rank ? s->q_lora_rank : D;
	size_t nn = dn * dn, rr = dr * dr, vv = dv * dv;
	for (size_t h = 0; h < H; h++) {
		size_t o = p->perm[h];
		/* q rows of head h: [A_h q_nope; P_h q_pe] of head perm[h] */
		const double *qs = src->q_b + o * dq * qin;
		double *qd = dst->q_b + h * dq * qin;
		rotate_rows(p->rq_nope + h * nn, qs, qd, dn, qin, qin);
		rotate_rows(p->rq_pe + h * rr, qs + dn * qin, qd + dn * qin, dr, qin, qin);
		/* kv_b rows of head h: [A'_h k_nope; B_h v] */
		const double *ks = src->kv_b + o * dkv * Lkv;
		double *kd = dst->kv_b + h * dkv * Lkv;
		rotate_rows(p->rk_nope + h * nn, ks, kd, dn, Lkv, Lkv);
		rotate_rows(p->rv + h * vv, ks + dn * Lkv, kd + dn * Lkv, dv, Lkv, Lkv);
		/* o_proj columns of head h: W_o,perm[h] ro_h^T */
		if (dv)
			cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)D, (int)dv,
				    (int)dv, 1.0, src->wo + o * dv, (int)(H * dv), p->ro + h * vv,
				    (int)dv, 0.0, dst->wo + h * dv, (int)(H * dv));
	}
	/* the shared k_pe rows of kv_a_proj_with_mqa */
	rotate_rows(p->rk_pe, src->kv_a + Lkv * D, dst->kv_a + Lkv * D, dr, D, D);
	return RF_OK;
}

/* Folded head h is R_h times original head perm[h]: the inverse reads the
 * folded layer, so its head perm[h] comes from folded head h, undone by
 * R_h^-1 (and o_proj's block by ro_h^-1, since W_o,h ro_h^T ro_h^-T). */
RfStatus mla_plan_inverse(const MlaPlan *p, MlaPlan *inv)
{
	size_t H = p->n_heads, dn = p->nope, dr = p->rope, dv = p->v;
	size_t nn = dn * dn, rr = dr * dr, vv = dv * dv;
	memset(inv, 0, sizeof *inv);
	inv->n_heads = H;
	inv->nope = dn;
	inv->rope = dr;
	inv->v = dv;
	inv->rq_nope = malloc((H * nn + 1) * sizeof(double));
	inv->rk_nope = malloc((H * nn + 1) * sizeof(double));
	inv->rq_pe = malloc((H * rr + 1) * sizeof(double));
	inv->rk_pe = malloc((rr + 1) * sizeof(double));
	inv->rv = malloc((H * vv + 1) * sizeof(double));
	inv->ro = malloc((H * vv + 1) * sizeof(double));
	inv->perm = malloc((H + 1) * sizeof(size_t));
	if (!inv->rq_nope || !inv->rk_nope || !inv->rq_pe || !inv->rk_pe || !inv->rv ||
	    !inv->ro || !inv->perm) {
		mla_plan_free(inv);
		return RF_ERR_NOMEM;
	}
	RfStatus st = fold_invert_matrix(p->rk_pe, dr, inv->rk_pe);
	for (size_t h = 0; h < H && st == RF_OK; h++) {
		size_t o = p->perm[h];
		if (o >= H) {
			st = RF_ERR_ARG;
			break;
		}
		inv->perm[o] = h;
		st = fold_invert_matrix(p->rq_nope + h * nn, dn, inv->rq_nope + o * nn);
		if (st == RF_OK)
			st = fold_invert_matrix(p->rq_pe + h * rr, dr, inv->rq_pe + o * rr);
		if (st == RF_OK)
			st = fold_invert_matrix(p->rk_nope + h * nn, dn, inv->rk_nope + o * nn);
		if (st == RF_OK)
			st = fold_invert_matrix(p->rv + h * vv, dv, inv->rv + o * vv);
		if (st == RF_OK)
			st = fold_invert_matrix(p->ro + h * vv, dv, inv->ro + o * vv);
	}
	if (st != RF_OK)
		mla_plan_free(inv);
	return st;
}
