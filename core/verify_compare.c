#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rope.h"
#include "core/verify_impl.h"

/* One comparison of A against B (already in A's layout): the verdict it
 * fills, and the checks in their order, tensor by tensor and group by
 * group (the checks themselves live in verify_heads.c, verify_qk.c,
 * verify_vo.c and verify_untouched.c). */

static void set_identity(double *R, size_t d)
{
	memset(R, 0, d * d * sizeof(double));
	for (size_t i = 0; i < d; i++)
		R[i * d + i] = 1.0;
}

void verify_verdict_reset(VerifyVerdict *v)
{
	v->equivalent = false;
	v->relation = VERIFY_REL_NONE;
	v->rotated = v->heads_permuted = v->rounded = false;
	v->vo_not_orthogonal = false;
	v->max_err = 0;
	v->why = VERIFY_WHY_NONE;
	v->brk = finding_make(FIND_NONE);
	memset(&v->comm, 0, sizeof v->comm);
}

RfStatus verify_verdict_alloc(VerifyVerdict *v, const Layer *a)
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
	v->freqs = calloc(np ? np : 1, sizeof(double));
	if (!p->rq || !p->rk || !p->rv || !p->ro || !p->perm || !v->commuting ||
	    !v->angles || !v->freqs)
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
	return rope_frequencies(&a->rope, v->freqs);
}

void verify_verdict_free(VerifyVerdict *v)
{
	fold_plan_free(&v->plan);
	free(v->commuting);
	free(v->angles);
	free(v->freqs);
	v->commuting = NULL;
	v->angles = NULL;
	v->freqs = NULL;
}

RfStatus verify_analyse(const Layer *a, const Layer *b, double tol,
			VerifyVerdict *v)
{
	return verify_analyse_finite(a, b, tol, false, 1, v);
}

/* Compare a against b (already in a's layout) into v (allocated). */
RfStatus verify_analyse_finite(const Layer *a, const Layer *b, double tol,
			       bool finite, size_t threads, VerifyVerdict *v)
{
	VerifyCtx c;
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
	c.threads = threads < 1 ? 1 : threads;
	for (int p = 0; p < VERIFY_PARTS; p++)
		c.tolp[p] = v->part_tol[p] > 0 ? v->part_tol[p] : tol;
	c.v = v;
	verify_verdict_reset(v);
	if (verify_layers_identical(&c)) {
		v->equivalent = true;
		v->relation = VERIFY_REL_IDENTICAL;
		return RF_OK;
	}
	c.freqs = v->freqs;
	c.work = malloc(c.dD * sizeof(double));
	c.R = malloc(c.dd * sizeof(double));
	c.R2 = malloc(c.dd * sizeof(double));
	RfStatus st = RF_ERR_NOMEM;
	if (!c.work || !c.R || !c.R2)
		goto out;
	st = RF_OK;
	const char *bad;
	if (!finite && (!layer_is_finite(a, &bad) || !layer_is_finite(b, &bad))) {
		Finding f = verify_finding(FIND_NOT_FINITE, LEVEL_SCORE, FINDING_NONE,
					   FINDING_NONE, "", INFINITY);
		f.what = bad;
		verify_break(v, VERIFY_WHY_UNEXPLAINED, &f);
		goto out;
	}
	if (!verify_check_presence(&c))
		goto out;
	st = verify_match_groups(&c, v->plan.perm);
	if (st != RF_OK)
		goto out;
	for (size_t g = 0; g < c.G; g++)
		if (v->plan.perm[g] != g)
			v->heads_permuted = true;
	if (!verify_check_plain(&c, a->attn_norm, b->attn_norm, c.D,
				"attn_norm", LEVEL_SCORE) ||
	    !verify_check_plain(&c, a->attn_norm_bias, b->attn_norm_bias, c.D,
				"attn_norm_bias", LEVEL_SCORE) ||
	    !verify_check_norm_weights(&c, v->plan.perm))
		goto out;
	bool ok;
	st = verify_check_groups(&c, &ok);
	if (st != RF_OK || !ok)
		goto out;
	if (!verify_check_plain(&c, a->bo, b->bo, c.D, "b_o", LEVEL_RESIDUAL))
		goto out;
	if (a->score_scale != b->score_scale) {
		Finding f = verify_finding(FIND_SCORE_SCALES_DIFFER, LEVEL_SCORE,
					   FINDING_NONE, FINDING_NONE, "", INFINITY);
		f.value[0] = layer_score_scale(a);
		f.value[1] = layer_score_scale(b);
		verify_break(v, VERIFY_WHY_SHAPE, &f);
		goto out;
	}
	v->equivalent = true;
	v->rotated = c.direct > 1;
	v->rounded = !v->rotated && c.direct > 0;
	if (v->rotated)
		v->relation = VERIFY_REL_COMMUTING_FOLD;
	else
		v->relation = VERIFY_REL_ROUNDING;
	if (v->heads_permuted)
		v->relation = VERIFY_REL_HEADS_PERMUTED;
out:
	free(c.work);
	free(c.R);
	free(c.R2);
	return st;
}
