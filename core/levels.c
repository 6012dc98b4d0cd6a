#include "config.h"

#include <float.h>
#include <math.h>

#include "core/levels.h"

/* Whether any head of a norm weight w (n = heads x d) keeps the layer's
 * commuting rotations from commuting with it (fold_norm_pins). */
static bool splits(const double *w, size_t n, const Layer *l)
{
	size_t d = l->shape.head_dim;
	if (!w)
		return false;
	for (size_t base = 0; base + d <= n; base += d)
		if (fold_norm_pins(w + base, l->rope.layout, l->rope.rotary_dim, d, NULL))
			return true;
	return false;
}

bool levels_qk_norm_splits_pairs(const Layer *l)
{
	size_t d = l->shape.head_dim;
	size_t nq = l->qk_norm_per_head ? d : l->shape.n_heads * d;
	size_t nk = l->qk_norm_per_head ? d : l->shape.n_kv_heads * d;
	return splits(l->q_norm, nq, l) || splits(l->k_norm, nk, l);
}

void levels_predict(const Layer *l, const FoldConfig *cfg,
		    bool guaranteed[LEVEL_COUNT])
{
	unsigned rot = cfg->rotate, drop = cfg->dropped;
	bool rq = rot & PART_Q, rk = rot & PART_K;
	bool rv = rot & PART_V, ro = rot & PART_O;
	bool qk_bias = l->bq || l->bk;
	bool S = (rq == rk);
	if (S && rq) {
		S = !(drop & ASSUME_ORTHOGONAL) && !(drop & ASSUME_COMMUTES) &&
		    !(drop & ASSUME_SHARED_QK) &&
		    (!(drop & ASSUME_GQA_CONSISTENT) ||
		     l->shape.n_heads == l->shape.n_kv_heads) &&
		    (!(drop & ASSUME_BIAS) || !qk_bias) &&
		    (cfg->qk_norm_exact || !levels_qk_norm_splits_pairs(l)) &&
		    /* R_q, R_k built for the other layout commute with the
		     * wrong pairs */
		    (!cfg->layout_set || cfg->layout == l->rope.layout);
	}
	bool VO = (rv == ro);
	if (VO && rv)
		VO = !(drop & ASSUME_ORTHOGONAL) &&
		     (!(drop & ASSUME_BIAS) || !l->bv);
	guaranteed[LEVEL_SCORE] = S && !cfg->permute_heads;
	guaranteed[LEVEL_HEAD] = guaranteed[LEVEL_SCORE] && VO;
	guaranteed[LEVEL_RESIDUAL] = S && VO;
}

double levels_default_tol(Precision prec)
{
	return prec == PREC_F32 ? 1e-3 : 1e-9;
}

void levels_judge(InvReport *rep, const Layer *l, const FoldConfig *cfg,
		  double tol)
{
	bool g[LEVEL_COUNT];
	levels_predict(l, cfg, g);
	rep->tol = tol;
	rep->eps = rep->precision == PREC_F32 ? FLT_EPSILON : DBL_EPSILON;
	for (int i = 0; i < LEVEL_COUNT; i++) {
		LevelResult *L = &rep->level[i];
		L->guaranteed = g[i];
		if (isinf(L->max_abs_err) && !L->overflow)
			L->overflow = OVERFLOW_DIFFERENCE;
		if (L->overflow) {
			/* not a size of error: a verdict of its own */
			L->max_abs_err = L->max_rel_err = L->eps_units = INFINITY;
			L->holds = false;
			continue;
		}
		L->max_rel_err = L->ref_max > 0 ? L->max_abs_err / L->ref_max
						: L->max_abs_err;
		L->eps_units = L->max_rel_err / rep->eps;
		L->holds = L->max_rel_err <= tol && isfinite(L->max_rel_err);
	}
}
