#include "config.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fold.h"
#include "core/pair_mix.h"
#include "core/rng.h"
#include "core/rope.h"
#include "core/rows_rotate.h"

static const char *const assumption_names[ASSUME_COUNT] = {
	"orthogonal", "commutes", "shared-qk", "per-head",
	"gqa-consistent", "v-same", "bias",
};

const char *fold_assumption_name(unsigned index)
{
	return index < ASSUME_COUNT ? assumption_names[index] : NULL;
}

unsigned fold_assumption_parse(const char *name)
{
	for (unsigned i = 0; i < ASSUME_COUNT; i++)
		if (!strcmp(name, assumption_names[i]))
			return 1u << i;
	return 0;
}

int fold_drop_parse(const char *list, unsigned *bits, const char **bad)
{
	char tok[64];
	*bits = 0;
	if (!strcmp(list, "none") || !*list)
		return 0;
	const char *p = list;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || n >= sizeof tok) {
			if (bad)
				*bad = p;
			return -1;
		}
		memcpy(tok, p, n);
		tok[n] = 0;
		unsigned b = fold_assumption_parse(tok);
		if (!b) {
			if (bad)
				*bad = p;
			return -1;
		}
		*bits |= b;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

int fold_rotate_parse(const char *s, unsigned *bits)
{
	*bits = 0;
	if (!strcmp(s, "none"))
		return 0;
	if (!*s)
		return -1;
	for (const char *p = s; *p; p++) {
		unsigned b;
		switch (*p) {
		case 'q': case 'Q': b = PART_Q; break;
		case 'k': case 'K': b = PART_K; break;
		case 'v': case 'V': b = PART_V; break;
		case 'o': case 'O': b = PART_O; break;
		default: return -1;
		}
		if (*bits & b)
			return -1;
		*bits |= b;
	}
	return 0;
}

void fold_rotate_format(unsigned bits, char *buf, size_t len)
{
	char tmp[5];
	size_t n = 0;
	if (bits & PART_Q) tmp[n++] = 'q';
	if (bits & PART_K) tmp[n++] = 'k';
	if (bits & PART_V) tmp[n++] = 'v';
	if (bits & PART_O) tmp[n++] = 'o';
	tmp[n] = 0;
	if (len)
		snprintf(buf, len, "%s", n ? tmp : "none");
}

FoldConfig fold_config_default(void)
{
	FoldConfig c;
	memset(&c, 0, sizeof c);
	c.rotate = PART_ALL;
	c.kind = ROT_HAAR;
	c.seed = 1;
	c.mix_eps = PAIR_MIX_EPS_DEFAULT;
	return c;
}

void fold_plan_free(FoldPlan *plan)
{
	free(plan->rq);
	free(plan->rk);
	free(plan->rv);
	free(plan->ro);
	free(plan->perm);
	memset(plan, 0, sizeof *plan);
}

static void set_identity(double *R, size_t d)
{
	memset(R, 0, d * d * sizeof(double));
	for (size_t i = 0; i < d; i++)
		R[i * d + i] = 1.0;
}

/* One draw of a Q/K rotation: commuting when the hypothesis holds,
 * otherwise the configured kind; scaled when orthogonality is dropped.
 * pin (r/2 pair flags, then a flag for the non-rotary block), when given,
 * holds those pairs of a commuting draw to 0 or pi (qk_norm_exact). */
static RfStatus draw_qk(const Layer *l, const FoldConfig *cfg, Rng *rng,
			const unsigned char *pin, double *R)
{
	RopeSpec rope = l->rope;
	if (cfg->layout_set)
		rope.layout = cfg->layout;
	RotKind kind = (cfg->dropped & ASSUME_COMMUTES) ? cfg->kind : ROT_COMMUTING;
	RfStatus st = rotation_make_eps(kind, &rope, l->shape.head_dim, cfg->mix_eps, rng, R);
	if (st == RF_OK && pin && kind == ROT_COMMUTING)
		rotation_pin_pairs(rope.layout, rope.rotary_dim, l->shape.head_dim, pin,
				   pin[rope.rotary_dim / 2], R);
	if (st == RF_OK && (cfg->dropped & ASSUME_ORTHOGONAL))
		rotation_scale_pairs(&rope, l->shape.head_dim, rng, R);
	return st;
}

/* ---- QK-norm pins ---------------------------------------------------------
 * A learned QK-norm multiplies q (k) by diag(w) after R, so the fold is
 * exact only when R commutes with diag(w): a commuting rotation does on a
 * pair whose two weights are equal, and otherwise only at angle 0 or pi;
 * a block on the non-rotary coordinates does when w is constant there,
 * and otherwise a diagonal of signs still does. */

bool fold_norm_pins(const double *w, RopeLayout layout, size_t r, size_t d,
		    unsigned char *pin)
{
	size_t np = r / 2;
	bool any = false;
	for (size_t i = 0; i < np; i++) {
		size_t a, b;
		rope_pair_coords(layout, r, i, &a, &b);
		if (w[a] != w[b]) {
			any = true;
			if (pin)
				pin[i] = 1;
		}
	}
	for (size_t j = r + 1; j < d; j++)
		if (w[j] != w[r]) {
			any = true;
			if (pin)
				pin[np] = 1;
		}
	return any;
}

/* The pins of every kv group (G x (r/2 + 1), one row per group), from the
 * q-norm weights of its query heads and the k-norm weight of the group;
 * the union over groups when one R serves the whole layer. Returns NULL
 * when nothing needs pinning (*st RF_OK) or on failure (*st set). */
static unsigned char *qk_norm_pins(const Layer *l, const FoldConfig *cfg,
				   RfStatus *st)
{
	*st = RF_OK;
	if (!cfg->qk_norm_exact || (cfg->dropped & ASSUME_COMMUTES) ||
	    !(cfg->rotate & (PART_Q | PART_K)) || (!l->q_norm && !l->k_norm))
		return NULL;
	size_t G = l->shape.n_kv_heads, hpg = layer_group_size(l);
	size_t d = l->shape.head_dim, r = l->rope.rotary_dim, n = r / 2 + 1;
	RopeLayout layout = cfg->layout_set ? cfg->layout : l->rope.layout;
	unsigned char *pins = calloc(G * n, 1);
	if (!pins) {
		*st = RF_ERR_NOMEM;
		return NULL;
	}
	bool any = false;
	for (size_t g = 0; g < G; g++) {
		unsigned char *p = pins + g * n;
		for (size_t j = 0; l->q_norm && j < hpg; j++)
			fold_norm_pins(l->q_norm + (l->qk_norm_per_head ? 0 : (g * hpg + j) * d),
				   layout, r, d, p);
		if (l->k_norm)
			fold_norm_pins(l->k_norm + (l->qk_norm_per_head ? 0 : g * d), layout, r,
				   d, p);
		for (size_t i = 0; i < n; i++)
			any = any || p[i];
	}
	if (!any) {
		free(pins);
		return NULL;
	}
	if (cfg->dropped & ASSUME_PER_HEAD) {
		for (size_t g = 1; g < G; g++)
			for (size_t i = 0; i < n; i++)
				pins[i] |= pins[g * n + i];
		for (size_t g = 1; g < G; g++)
			memcpy(pins + g * n, pins, n);
	}
	return pins;
}

/* What the pins hold, for the plan: distinct pairs, and any tail. */
static void count_pins(const unsigned char *pins, size_t G, size_t np,
		       FoldPlan *plan)
{
	plan->qk_norm_pinned = 0;
	plan->qk_norm_tail_pinned = false;
	if (!pins)
		return;
	for (size_t i = 0; i <= np; i++) {
		bool on = false;
		for (size_t g = 0; g < G; g++)
			on = on || pins[g * (np + 1) + i];
		if (i < np)
			plan->qk_norm_pinned += on;
		else
			plan->qk_norm_tail_pinned = on;
	}
}

/* An independent V rotation: Haar, or a randomised Hadamard when asked
 * (V needs no commutation). */
static RfStatus draw_v(const Layer *l, const FoldConfig *cfg, Rng *rng,
		       double *R)
{
	RopeSpec flat = l->rope;
	flat.rotary_dim = 0;   /* a Hadamard of V ignores the RoPE pairs */
	RfStatus st = cfg->v_hadamard ? rotation_make(ROT_HADAMARD, &flat, l->shape.head_dim, rng, R)
				      : rotation_haar(l->shape.head_dim, rng, R);
	if (st == RF_OK && (cfg->dropped & ASSUME_ORTHOGONAL))
		rotation_scale_pairs(&l->rope, l->shape.head_dim, rng, R);
	return st;
}

/* Draw the raw rotations: rq per query head, rk and rv per kv group.
 * Separate generator streams keep, say, R_q unchanged when v-same flips. */
static RfStatus draw_all(const Layer *l, const FoldConfig *cfg,
			 const unsigned char *pins, double *rq, double *rk,
			 double *rv)
{
	size_t H = l->shape.n_heads, G = l->shape.n_kv_heads;
	size_t d = l->shape.head_dim, dd = d * d, hpg = H / G;
	size_t np1 = l->rope.rotary_dim / 2 + 1;
	bool per_head = !(cfg->dropped & ASSUME_PER_HEAD);
	bool gqa = !(cfg->dropped & ASSUME_GQA_CONSISTENT);
	Rng rq_rng, rk_rng, rv_rng;
	rng_seed(&rq_rng, cfg->seed, 11);
	rng_seed(&rk_rng, cfg->seed, 12);
	rng_seed(&rv_rng, cfg->seed, 13);
	RfStatus st = RF_OK;

	/* Q: one R per group (or one per layer), extra draws per query head
	 * when the GQA consistency is dropped. */
	for (size_t g = 0; g < G && st == RF_OK; g++) {
		double *first = rq + g * hpg * dd;
		const unsigned char *pin = pins ? pins + g * np1 : NULL;
		if (per_head || g == 0)
			st = draw_qk(l, cfg, &rq_rng, pin, first);
		else
			memcpy(first, rq, dd * sizeof(double));
		for (size_t j = 1; j < hpg && st == RF_OK; j++) {
			double *Rh = first + j * dd;
			if (gqa)
				memcpy(Rh, first, dd * sizeof(double));
			else
				st = draw_qk(l, cfg, &rq_rng, pin, Rh);
		}
	}
	/* K: the group's first query head's R, or an independent draw. */
	for (size_t g = 0; g < G && st == RF_OK; g++) {
		double *Rk = rk + g * dd;
		if (!(cfg->dropped & ASSUME_SHARED_QK))
			memcpy(Rk, rq + g * hpg * dd, dd * sizeof(double));
		else if (per_head || g == 0)
			st = draw_qk(l, cfg, &rk_rng, pins ? pins + g * np1 : NULL, Rk);
		else
			memcpy(Rk, rk, dd * sizeof(double));
	}
	/* V: the group's Q rotation, or an independent Haar draw. */
	for (size_t g = 0; g < G && st == RF_OK; g++) {
		double *Rv = rv + g * dd;
		if (!(cfg->dropped & ASSUME_V_SAME))
			memcpy(Rv, rq + g * hpg * dd, dd * sizeof(double));
		else if (per_head || g == 0)
			st = draw_v(l, cfg, &rv_rng, Rv);
		else
			memcpy(Rv, rv, dd * sizeof(double));
	}
	return st;
}

RfStatus fold_plan_build(const Layer *l, const FoldConfig *cfg, FoldPlan *plan)
{
	size_t H = l->shape.n_heads, G = l->shape.n_kv_heads;
	size_t d = l->shape.head_dim, dd = d * d, hpg = H / G;
	memset(plan, 0, sizeof *plan);
	plan->n_heads = H;
	plan->n_kv_heads = G;
	plan->head_dim = d;
	plan->rotate_bias = !(cfg->dropped & ASSUME_BIAS);
	plan->rq = malloc(H * dd * sizeof(double));
	plan->rk = malloc(G * dd * sizeof(double));
	plan->rv = malloc(G * dd * sizeof(double));
	plan->ro = malloc(H * dd * sizeof(double));
	plan->perm = malloc(G * sizeof(size_t));
	if (!plan->rq || !plan->rk || !plan->rv || !plan->ro || !plan->perm) {
		fold_plan_free(plan);
		return RF_ERR_NOMEM;
	}
	RfStatus st;
	unsigned char *pins = qk_norm_pins(l, cfg, &st);
	if (st == RF_OK)
		st = draw_all(l, cfg, pins, plan->rq, plan->rk, plan->rv);
	count_pins(pins, G, l->rope.rotary_dim / 2, plan);
	free(pins);
	if (st != RF_OK) {
		fold_plan_free(plan);
		return st;
	}
	/* O absorbs the rotation V carries or would carry. */
	for (size_t h = 0; h < H; h++)
		memcpy(plan->ro + h * dd, plan->rv + (h / hpg) * dd,
		       dd * sizeof(double));
	if (!(cfg->rotate & PART_Q))
		for (size_t h = 0; h < H; h++)
			set_identity(plan->rq + h * dd, d);
	if (!(cfg->rotate & PART_K))
		for (size_t g = 0; g < G; g++)
			set_identity(plan->rk + g * dd, d);
	if (!(cfg->rotate & PART_V))
		for (size_t g = 0; g < G; g++)
			set_identity(plan->rv + g * dd, d);
	if (!(cfg->rotate & PART_O))
		for (size_t h = 0; h < H; h++)
			set_identity(plan->ro + h * dd, d);
	/* permute-heads: folded group g is original group g+1 (cyclic). */
	for (size_t g = 0; g < G; g++)
		plan->perm[g] = cfg->permute_heads ? (g + 1) % G : g;
	return RF_OK;
}

/* rows_out (d x D) = R (d x d) rows_in (d x D). */
static void rotate_rows(const double *R, const double *in, double *out,
			size_t d, size_t D)
{
	rows_rotate(R, d, in, D, D, out, D);
}

void fold_bias(const double *R, const double *in, double *out, size_t d,
	       bool rotate)
{
	if (rotate)
		cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)d, 1.0, R,
			    (int)d, in, 1, 0.0, out, 1);
	else
		memcpy(out, in, d * sizeof(double));
}

RfStatus fold_apply(const Layer *src, const FoldPlan *plan, Layer *dst)
{
	memset(dst, 0, sizeof *dst);
	return fold_apply_into(src, plan, dst);
}

RfStatus fold_apply_into(const Layer *src, const FoldPlan *plan, Layer *dst)
{
	size_t D = src->shape.d_model, H = src->shape.n_heads;
	size_t G = src->shape.n_kv_heads, d = src->shape.head_dim;
	size_t dd = d * d, hpg = H / G, dD = d * D;
	RfStatus st = layer_shell_like(dst, src);
	if (st != RF_OK)
		return st;
	for (size_t g = 0; g < G; g++) {
		size_t og = plan->perm[g];
		rotate_rows(plan->rk + og * dd, src->wk + og * dD, dst->wk + g * dD, d, D);
		rotate_rows(plan->rv + og * dd, src->wv + og * dD, dst->wv + g * dD, d, D);
		if (src->bk)
			fold_bias(plan->rk + og * dd, src->bk + og * d, dst->bk + g * d, d,
				  plan->rotate_bias);
		if (src->bv)
			fold_bias(plan->rv + og * dd, src->bv + og * d, dst->bv + g * d, d,
				  plan->rotate_bias);
		for (size_t j = 0; j < hpg; j++) {
			size_t h = g * hpg + j, oh = og * hpg + j;
			rotate_rows(plan->rq + oh * dd, src->wq + oh * dD, dst->wq + h * dD, d, D);
			if (src->bq)
				fold_bias(plan->rq + oh * dd, src->bq + oh * d, dst->bq + h * d,
					  d, plan->rotate_bias);
			/* W_o,h' = W_o,oh ro^T: D x d times (d x d)^T. */
			cols_rotate(plan->ro + oh * dd, d, src->wo + oh * d, H * d, D,
				    dst->wo + h * d, H * d);
		}
	}
	/* Per-layer QK-norm weights over all heads move with their heads. */
	if (!src->qk_norm_per_head) {
		if (src->q_norm)
			for (size_t h = 0; h < H; h++)
				memcpy(dst->q_norm + h * d,
				       src->q_norm + (plan->perm[h / hpg] * hpg + h % hpg) * d,
				       d * sizeof(double));
		if (src->k_norm)
			for (size_t g = 0; g < G; g++)
				memcpy(dst->k_norm + g * d, src->k_norm + plan->perm[g] * d,
				       d * sizeof(double));
	}
	return RF_OK;
}
