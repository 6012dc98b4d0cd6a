#include "config.h"

#include <math.h>
#include <string.h>

#include "core/procrustes.h"
#include "core/verify_impl.h"

/* The tensors a fold leaves alone (input norms, QK-norm weights, b_o) and
 * the optional tensors both sides must have; bit equality of two layers
 * (their score scales included: the same weights under another scale
 * compute other scores). */

/* Tensors a fold leaves alone: equal up to the tolerance. */
bool verify_check_plain(VerifyCtx *c, const double *x, const double *y,
			size_t n, const char *name, LevelId level)
{
	if (!x && !y)
		return true;
	double e = (x && y) ? procrustes_rel_diff(y, n, x, n, 1, n) : INFINITY;
	verify_note_direct(c, e, c->tol);
	if (e <= c->tol) {
		verify_note_err(c, e);
		return true;
	}
	Finding f = verify_finding((x && y) ? FIND_UNTOUCHED_DIFFERS : FIND_ONE_SIDED,
				   level, FINDING_NONE, FINDING_NONE, name, e);
	verify_break(c->v, VERIFY_WHY_UNEXPLAINED, &f);
	return false;
}

/* Per-layer QK-norm weights move with their heads. */
bool verify_check_norm_weights(VerifyCtx *c, const size_t *perm)
{
	const Layer *a = c->a, *b = c->b;
	size_t d = c->d;
	if (!a->q_norm != !b->q_norm || !a->k_norm != !b->k_norm) {
		const char *name = !a->q_norm != !b->q_norm ? "q_norm" : "k_norm";
		Finding f = verify_finding(FIND_ONE_SIDED, LEVEL_SCORE, FINDING_NONE,
					   FINDING_NONE, name, INFINITY);
		verify_break(c->v, VERIFY_WHY_UNEXPLAINED, &f);
		return false;
	}
	if (a->qk_norm_per_head != b->qk_norm_per_head) {
		Finding f = verify_finding(FIND_NORM_KINDS_DIFFER, LEVEL_SCORE,
					   FINDING_NONE, FINDING_NONE, "q_norm",
					   INFINITY);
		verify_break(c->v, VERIFY_WHY_UNEXPLAINED, &f);
		return false;
	}
	if (a->qk_norm_per_head)
		return verify_check_plain(c, a->q_norm, b->q_norm, d, "q_norm",
					  LEVEL_SCORE) &&
		       verify_check_plain(c, a->k_norm, b->k_norm, d, "k_norm",
					  LEVEL_SCORE);
	for (size_t gb = 0; gb < c->G; gb++) {
		size_t ga = perm[gb];
		if (a->k_norm &&
		    !verify_check_plain(c, a->k_norm + ga * d, b->k_norm + gb * d, d,
					"k_norm", LEVEL_SCORE))
			return false;
		for (size_t j = 0; j < c->hpg && a->q_norm; j++)
			if (!verify_check_plain(c, a->q_norm + (ga * c->hpg + j) * d,
						b->q_norm + (gb * c->hpg + j) * d, d,
						"q_norm", LEVEL_SCORE))
				return false;
	}
	return true;
}

/* Optional tensors must exist on both sides. */
bool verify_check_presence(VerifyCtx *c)
{
	const Layer *a = c->a, *b = c->b;
	struct { const double *x, *y; const char *name; LevelId lv; } t[] = {
		{a->bq, b->bq, "b_q", LEVEL_SCORE}, {a->bk, b->bk, "b_k", LEVEL_SCORE},
		{a->bv, b->bv, "b_v", LEVEL_HEAD}, {a->bo, b->bo, "b_o", LEVEL_RESIDUAL},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!t[i].x != !t[i].y) {
			Finding f = verify_finding(FIND_ONE_SIDED, t[i].lv, FINDING_NONE,
						   FINDING_NONE, t[i].name, INFINITY);
			verify_break(c->v, VERIFY_WHY_UNEXPLAINED, &f);
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

bool verify_layers_identical(const VerifyCtx *c)
{
	const Layer *a = c->a, *b = c->b;
	size_t D = c->D, H = c->H, G = c->G, d = c->d;
	size_t nq = a->qk_norm_per_head ? d : H * d;
	size_t nk = a->qk_norm_per_head ? d : G * d;
	return a->score_scale == b->score_scale &&
	       bits_equal(a->wq, b->wq, H * d * D) &&
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
