#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/commutant.h"
#include "core/mla_verify.h"
#include "core/procrustes.h"
#include "core/rope.h"
#include "core/rows_rotate.h"

/* A break of code at level on tensor, the first one kept. */
static void brk(VerifyVerdict *v, VerifyWhy why, FindingCode code, LevelId level, size_t group,
		size_t head, const char *tensor, double err)
{
	if (v->why != VERIFY_WHY_NONE)
		return;
	Finding f = finding_make(code);
	f.level = level;
	f.group = group;
	f.head = head;
	snprintf(f.tensor, sizeof f.tensor, "%s", tensor);
	f.err = err;
	f.tol = v->tol;
	v->why = why;
	v->brk = f;
	v->equivalent = false;
}

/* out (d x n) = R (d x d) in (d x n, ld). */
static void turn(const double *R, const double *in, size_t ld, size_t d, size_t n, double *out)
{
	if (d && n)
		rows_rotate(R, d, in, ld, n, out, n);
}

/* ||R A - B|| relative to B (rows d x n of leading dimension ld). */
static double fit_err(const double *R, const double *A, const double *B, size_t ld, size_t d,
		      size_t n, double *scr)
{
	if (!d || !n)
		return 0;
	turn(R, A, ld, d, n, scr);
	return procrustes_rel_diff(scr, n, B, ld, d, n);
}

static double dist_identity(const double *R, size_t d)
{
	double s = 0;
	for (size_t i = 0; i < d; i++)
		for (size_t j = 0; j < d; j++) {
			double e = R[i * d + j] - (i == j);
			s += e * e;
		}
	return sqrt(s);
}

static double diff(const double *A, const double *B, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (A[i] - B[i]) * (A[i] - B[i]);
	return sqrt(s);
}

/* a's and b's copies of a tensor a fold leaves alone. */
static bool untouched(VerifyVerdict *v, const double *a, const double *b, size_t rows,
		      size_t cols, const char *name)
{
	if (!rows || !cols || !a)
		return true;
	double e = procrustes_rel_diff(b, cols, a, cols, rows, cols);
	if (e > v->max_err)
		v->max_err = e;
	if (e <= v->tol)
		return true;
	brk(v, VERIFY_WHY_UNEXPLAINED, FIND_UNTOUCHED_DIFFERS, LEVEL_SCORE, FINDING_NONE,
	    FINDING_NONE, name, e);
	return false;
}

static bool same_shape(const MlaLayer *a, const MlaLayer *b)
{
	return !memcmp(&a->shape, &b->shape, sizeof a->shape) &&
	       rope_spec_equal(&a->rope, &b->rope) && a->rope.layout == b->rope.layout &&
	       !a->attn_norm == !b->attn_norm && mla_score_scale(a) == mla_score_scale(b);
}

/* The rope rotation P from k_pe's rows; false on a break. */
static RfStatus check_kpe(const MlaLayer *a, const MlaLayer *b, VerifyVerdict *v, double *P,
			  double *scr, MlaPlan *rec, bool *ok)
{
	const MlaShape *s = &a->shape;
	size_t D = s->d_model, dr = s->qk_rope_dim, Lkv = s->kv_lora_rank;
	const double *ak = a->kv_a + Lkv * D, *bk = b->kv_a + Lkv * D;
	*ok = false;
	RfStatus st = procrustes_rotation(ak, D, bk, D, dr, D, P);
	if (st != RF_OK)
		return st;
	if (rec) {
		/* every head's q_pe takes it until a head shows otherwise */
		memcpy(rec->rk_pe, P, dr * dr * sizeof(double));
		for (size_t h = 0; h < s->n_heads; h++)
			memcpy(rec->rq_pe + h * dr * dr, P, dr * dr * sizeof(double));
	}
	double e = fit_err(P, ak, bk, D, dr, D, scr);
	if (e > v->max_err)
		v->max_err = e;
	if (e > v->tol) {
		brk(v, VERIFY_WHY_UNEXPLAINED, FIND_K_UNEXPLAINED, LEVEL_SCORE, 0, 0, "kv_a k_pe", e);
		return RF_OK;
	}
	/* it must commute with RoPE: its nearest commuting rotation explains
	 * the rows as well */
	RopeSpec rope = a->rope;
	rope.rotary_dim = dr;
	double *Pc = scr + dr * D;
	commutant_project(P, &rope, v->freqs, dr, Pc);
	double ec = fit_err(Pc, ak, bk, D, dr, D, scr);
	if (ec > v->tol) {
		CommutantInfo ci;
		st = commutant_analyse(P, &rope, v->freqs, dr, 10.0 * v->tol + 1e-9, &ci);
		if (st != RF_OK)
			return st;
		v->comm = ci;
		bool refl = ci.n_mixed == 0 && ci.n_reflect > 0;
		brk(v, refl ? VERIFY_WHY_REFLECTION : VERIFY_WHY_MIXES_PAIRS,
		    refl ? FIND_K_REFLECTS : FIND_K_MIXES_PAIRS, LEVEL_SCORE, 0, 0, "kv_a k_pe", ec);
		return RF_OK;
	}
	v->commuting[0] = true;
	commutant_angles(P, &rope, dr, v->angles);
	v->rotated = v->rotated || dist_identity(P, dr) > v->tol;
	*ok = true;
	return RF_OK;
}

/* Head h: q_pe turned by P, q_nope and k_nope by one A_h, v by B_h that
 * o_proj absorbs. */
static RfStatus check_head(const MlaLayer *a, const MlaLayer *b, size_t ha, size_t h,
			   const double *P, VerifyVerdict *v, double *R, double *R2, double *scr,
			   MlaPlan *rec, bool *ok)
{
	const MlaShape *s = &a->shape;
	size_t D = s->d_model, H = s->n_heads, dn = s->qk_nope_dim, dr = s->qk_rope_dim;
	size_t dv = s->v_head_dim, dq = dn + dr, Lkv = s->kv_lora_rank;
	size_t qin = s->q_lora_rank ? s->q_lora_rank : D;
	const double *aq = a->q_b + ha * dq * qin, *bq = b->q_b + h * dq * qin;
	const double *akv = a->kv_b + ha * (dn + dv) * Lkv, *bkv = b->kv_b + h * (dn + dv) * Lkv;
	RfStatus st;
	double e;
	*ok = false;
	/* q_pe: the layer's one P */
	e = fit_err(P, aq + dn * qin, bq + dn * qin, qin, dr, qin, scr);
	if (e > v->max_err)
		v->max_err = e;
	if (e > v->tol) {
		if ((st = procrustes_rotation(aq + dn * qin, qin, bq + dn * qin, qin, dr, qin, R)))
			return st;
		double e2 = fit_err(R, aq + dn * qin, bq + dn * qin, qin, dr, qin, scr);
		if (rec)
			memcpy(rec->rq_pe + h * dr * dr, R, dr * dr * sizeof(double));
		if (e2 <= v->tol && h == 0) {
			/* head 0 sets the group's rotation: P is K's alone */
			brk(v, VERIFY_WHY_QK_DIFFER, FIND_QK_DIFFER, LEVEL_SCORE, 0, h, "q_b q_pe", e);
			v->brk.norm = diff(R, P, dr * dr);
		} else if (e2 <= v->tol) {
			/* head 0 matched k_pe's P: this head carries its own */
			brk(v, VERIFY_WHY_GQA_DIFFER, FIND_Q_GROUP_DIFFERS, LEVEL_SCORE, 0, h,
			    "q_b q_pe", e);
			v->brk.other_head = 0;
			v->brk.norm = diff(R, P, dr * dr);
		} else {
			brk(v, VERIFY_WHY_UNEXPLAINED, FIND_Q_UNEXPLAINED, LEVEL_SCORE, 0, h,
			    "q_b q_pe", e2);
		}
		return RF_OK;
	}
	if (dn) {
		/* q_nope: A_h */
		if ((st = procrustes_rotation(aq, qin, bq, qin, dn, qin, R)))
			return st;
		e = fit_err(R, aq, bq, qin, dn, qin, scr);
		if (e > v->max_err)
			v->max_err = e;
		if (rec) {
			memcpy(rec->rq_nope + h * dn * dn, R, dn * dn * sizeof(double));
			memcpy(rec->rk_nope + h * dn * dn, R, dn * dn * sizeof(double));
		}
		if (e > v->tol) {
			brk(v, VERIFY_WHY_UNEXPLAINED, FIND_Q_UNEXPLAINED, LEVEL_SCORE, h, h,
			    "q_b q_nope", e);
			return RF_OK;
		}
		/* k_nope: the same A_h */
		e = fit_err(R, akv, bkv, Lkv, dn, Lkv, scr);
		if (e > v->max_err)
			v->max_err = e;
		if (e > v->tol) {
			if ((st = procrustes_rotation(akv, Lkv, bkv, Lkv, dn, Lkv, R2)))
				return st;
			double e2 = fit_err(R2, akv, bkv, Lkv, dn, Lkv, scr);
			if (rec)
				memcpy(rec->rk_nope + h * dn * dn, R2, dn * dn * sizeof(double));
			if (e2 <= v->tol) {
				brk(v, VERIFY_WHY_QK_DIFFER, FIND_QK_DIFFER, LEVEL_SCORE, h, h,
				    "kv_b k_nope", e);
				v->brk.norm = diff(R, R2, dn * dn);
			} else {
				brk(v, VERIFY_WHY_UNEXPLAINED, FIND_K_UNEXPLAINED, LEVEL_SCORE, h, h,
				    "kv_b k_nope", e2);
			}
			return RF_OK;
		}
		v->rotated = v->rotated || dist_identity(R, dn) > v->tol;
	}
	/* v: B_h, absorbed by o_proj's block h */
	if ((st = procrustes_rotation(akv + dn * Lkv, Lkv, bkv + dn * Lkv, Lkv, dv, Lkv, R)))
		return st;
	e = fit_err(R, akv + dn * Lkv, bkv + dn * Lkv, Lkv, dv, Lkv, scr);
	if (e > v->max_err)
		v->max_err = e;
	if (rec) {
		/* o_proj's block is judged against this B_h: the plan's ro too */
		memcpy(rec->rv + h * dv * dv, R, dv * dv * sizeof(double));
		memcpy(rec->ro + h * dv * dv, R, dv * dv * sizeof(double));
	}
	if (e > v->tol) {
		brk(v, VERIFY_WHY_UNEXPLAINED, FIND_V_UNEXPLAINED, LEVEL_HEAD, h, h, "kv_b v", e);
		return RF_OK;
	}
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)D, (int)dv, (int)dv, 1.0,
		    a->wo + ha * dv, (int)(H * dv), R, (int)dv, 0.0, scr, (int)dv);
	e = procrustes_rel_diff(scr, dv, b->wo + h * dv, H * dv, D, dv);
	if (e > v->max_err)
		v->max_err = e;
	if (e > v->tol) {
		brk(v, VERIFY_WHY_O_NOT_ABSORBING, FIND_O_UNEXPLAINED, LEVEL_HEAD, h, h, "o_proj", e);
		return RF_OK;
	}
	v->rotated = v->rotated || dist_identity(R, dv) > v->tol;
	*ok = true;
	return RF_OK;
}

/* What a fold leaves of head h: the column norms of its q rows (nope and
 * pe parts apart), of its k_nope and v rows, and the row norms of its
 * o_proj block (left or right orthogonal factors keep them). sig holds
 * 2 qin + 2 Lkv + D entries. */
static void head_signature(const MlaLayer *l, size_t h, double *sig)
{
	const MlaShape *s = &l->shape;
	size_t D = s->d_model, H = s->n_heads, dn = s->qk_nope_dim, dr = s->qk_rope_dim;
	size_t dv = s->v_head_dim, Lkv = s->kv_lora_rank;
	size_t qin = s->q_lora_rank ? s->q_lora_rank : D;
	const double *q = l->q_b + h * (dn + dr) * qin, *kv = l->kv_b + h * (dn + dv) * Lkv;
	struct { const double *m; size_t rows, cols; } part[4] = {
		{q, dn, qin}, {q + dn * qin, dr, qin}, {kv, dn, Lkv}, {kv + dn * Lkv, dv, Lkv}};
	size_t k = 0;
	for (int p = 0; p < 4; p++)
		for (size_t j = 0; j < part[p].cols; j++) {
			double t = 0;
			for (size_t i = 0; i < part[p].rows; i++)
				t += part[p].m[i * part[p].cols + j] * part[p].m[i * part[p].cols + j];
			sig[k++] = sqrt(t);
		}
	for (size_t r = 0; r < D; r++) {
		double t = 0;
		for (size_t j = 0; j < dv; j++)
			t += l->wo[r * H * dv + h * dv + j] * l->wo[r * H * dv + h * dv + j];
		sig[k++] = sqrt(t);
	}
}

/* Which head of a each head of b is (perm[h]), matched by signature; the
 * identity when the match is not one to one. */
static RfStatus match_heads(const MlaLayer *a, const MlaLayer *b, size_t *perm)
{
	const MlaShape *s = &a->shape;
	size_t H = s->n_heads, qin = s->q_lora_rank ? s->q_lora_rank : s->d_model;
	size_t n = 2 * qin + 2 * s->kv_lora_rank + s->d_model;
	double *sa = malloc(2 * H * n * sizeof(double));
	bool *used = calloc(H, sizeof(bool));
	if (!sa || !used) {
		free(sa);
		free(used);
		return RF_ERR_NOMEM;
	}
	double *sb = sa + H * n;
	for (size_t h = 0; h < H; h++) {
		head_signature(a, h, sa + h * n);
		head_signature(b, h, sb + h * n);
	}
	bool bijective = true;
	for (size_t h = 0; h < H; h++) {
		/* B's head h against A's same head first: the usual case */
		double best = diff(sb + h * n, sa + h * n, n);
		perm[h] = h;
		for (size_t g = 0; g < H; g++) {
			double d = diff(sb + h * n, sa + g * n, n);
			if (d < best) {
				best = d;
				perm[h] = g;
			}
		}
		bijective = bijective && !used[perm[h]];
		used[perm[h]] = true;
	}
	if (!bijective)
		for (size_t h = 0; h < H; h++)
			perm[h] = h;
	free(sa);
	free(used);
	return RF_OK;
}

RfStatus mla_verify_layers(const MlaLayer *a, const MlaLayer *b, const VerifyOptions *opt,
			   VerifyVerdict *v)
{
	return mla_verify_recover(a, b, opt, v, NULL);
}

RfStatus mla_verify_recover(const MlaLayer *a, const MlaLayer *b, const VerifyOptions *opt,
			    VerifyVerdict *v, MlaPlan *rec)
{
	memset(v, 0, sizeof *v);
	if (rec) {
		/* the identity until a fit says otherwise */
		FoldConfig none = fold_config_default();
		none.rotate = 0;
		RfStatus st = mla_plan_build(a, &none, rec);
		if (st != RF_OK)
			return st;
	}
	v->unit_roundoff = opt->unit_roundoff;
	v->quant_types = opt->quant_types;   /* the words of the relation */
	v->tol = opt->tol > 0 ? opt->tol : 3.0 * opt->unit_roundoff + 1e-12;
	v->equivalent = true;
	Layer ha, hb;
	mla_header(a, &ha);
	mla_header(b, &hb);
	v->shape_a = ha.shape;
	v->shape_b = hb.shape;
	v->rope_a = ha.rope;
	v->rope_b = hb.rope;
	const MlaShape *s = &a->shape;
	size_t np = s->qk_rope_dim / 2;
	v->npairs = np;
	v->plan.n_heads = s->n_heads;
	v->plan.n_kv_heads = 1;
	v->plan.head_dim = s->qk_rope_dim;
	size_t H0 = s->n_heads;
	v->plan.perm = calloc(H0, sizeof(size_t));
	v->commuting = calloc(H0, sizeof(bool));
	v->angles = calloc(H0 * np + 1, sizeof(double));
	v->freqs = calloc(np + 1, sizeof(double));
	if (!v->plan.perm || !v->commuting || !v->angles || !v->freqs)
		return RF_ERR_NOMEM;
	/* heads in order until match_heads finds otherwise (a break before
	 * it is no permutation) */
	for (size_t h = 0; h < H0; h++)
		v->plan.perm[h] = h;
	if (!same_shape(a, b) || !a->q_a != !b->q_a) {
		brk(v, VERIFY_WHY_SHAPE, FIND_SHAPES_DIFFER, LEVEL_SCORE, FINDING_NONE, FINDING_NONE,
		    "", 0);
		v->relation = VERIFY_REL_NONE;
		return RF_OK;
	}
	RopeSpec rope = a->rope;
	rope.rotary_dim = s->qk_rope_dim;
	RfStatus st = rope_frequencies(&rope, v->freqs);
	if (st != RF_OK)
		return st;
	size_t D = s->d_model, H = s->n_heads, Lq = s->q_lora_rank, Lkv = s->kv_lora_rank;
	size_t dm = s->qk_nope_dim > s->v_head_dim ? s->qk_nope_dim : s->v_head_dim;
	if (s->qk_rope_dim > dm)
		dm = s->qk_rope_dim;
	size_t wide = D > Lkv ? D : Lkv;
	if (Lq > wide)
		wide = Lq;
	/* P (dr x dr), two d x d fits, scratch for d x wide products (twice) */
	double *P = malloc((3 * dm * dm + 2 * dm * wide + D * dm) * sizeof(double));
	if (!P)
		return RF_ERR_NOMEM;
	double *R = P + dm * dm, *R2 = R + dm * dm, *scr = R2 + dm * dm;
	bool ok = untouched(v, a->q_a, b->q_a, Lq, D, "q_a_proj") &&
		  untouched(v, a->q_a_norm, b->q_a_norm, 1, Lq, "q_a_layernorm") &&
		  untouched(v, a->kv_a, b->kv_a, Lkv, D, "kv_a latent") &&
		  untouched(v, a->kv_a_norm, b->kv_a_norm, 1, Lkv, "kv_a_layernorm") &&
		  untouched(v, a->attn_norm, b->attn_norm, 1, D, "input_layernorm");
	if (ok)
		st = check_kpe(a, b, v, P, scr, rec, &ok);
	if (ok && st == RF_OK)
		st = match_heads(a, b, v->plan.perm);
	for (size_t h = 0; h < H && ok && st == RF_OK; h++)
		st = check_head(a, b, v->plan.perm[h], h, P, v, R, R2, scr, rec, &ok);
	free(P);
	if (st != RF_OK)
		return st;
	if (rec)
		memcpy(rec->perm, v->plan.perm, H * sizeof(size_t));
	/* heads of B reordered against A's (each with its q rows, k_nope/v
	 * rows and o_proj block): the residual block is unchanged, not the
	 * heads; the verdict then lists one entry per head, each with the
	 * layer's one rope rotation */
	for (size_t h = 0; h < H; h++)
		if (v->plan.perm[h] != h)
			v->heads_permuted = true;
	if (v->heads_permuted) {
		v->plan.n_kv_heads = H;
		for (size_t h = 1; h < H; h++) {
			v->commuting[h] = v->commuting[0];
			memcpy(v->angles + h * np, v->angles, np * sizeof(double));
		}
	}
	/* bit for bit: every tensor (sizes as mla_alloc made them) */
	bool same = true;
	const double *ta[] = {a->q_a, a->q_a_norm, a->q_b, a->kv_a, a->kv_a_norm, a->kv_b, a->wo,
			      a->attn_norm};
	const double *tb[] = {b->q_a, b->q_a_norm, b->q_b, b->kv_a, b->kv_a_norm, b->kv_b, b->wo,
			      b->attn_norm};
	size_t dq = mla_qk_dim(s), qin = Lq ? Lq : D;
	size_t n[] = {Lq * D, Lq, H * dq * qin, (Lkv + s->qk_rope_dim) * D, Lkv,
		      H * (s->qk_nope_dim + s->v_head_dim) * Lkv, D * H * s->v_head_dim, D};
	for (size_t i = 0; i < 8 && same; i++)
		same = !ta[i] || !memcmp(ta[i], tb[i], n[i] * sizeof(double));
	if (same && v->equivalent)
		v->max_err = 0;
	v->rounded = v->max_err > 0;
	if (!v->equivalent)
		v->relation = VERIFY_REL_NONE;
	else if (v->max_err == 0)
		v->relation = VERIFY_REL_IDENTICAL;
	else if (v->heads_permuted)
		v->relation = VERIFY_REL_HEADS_PERMUTED;
	else
		v->relation = v->rotated ? VERIFY_REL_COMMUTING_FOLD : VERIFY_REL_ROUNDING;
	return RF_OK;
}
