#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>

#include "core/layer.h"
#include "core/rng.h"

RfStatus layer_shape_check(const LayerShape *s, const char **why)
{
	const char *w = NULL;
	if (s->d_model == 0 || s->d_model > LAYER_MAX_DIM)
		w = "d-model must be between 1 and 131072";
	else if (s->n_heads == 0 || s->n_heads > LAYER_MAX_HEADS)
		w = "heads must be between 1 and 4096";
	else if (s->n_kv_heads == 0 || s->n_kv_heads > s->n_heads)
		w = "kv-heads must be between 1 and heads";
	else if (s->n_heads % s->n_kv_heads != 0)
		w = "heads must be divisible by kv-heads";
	else if (s->head_dim < 2 || s->head_dim > LAYER_MAX_HEAD_DIM)
		w = "head-dim must be between 2 and 4096";
	else if (s->head_dim % 2 != 0)
		w = "head-dim must be even";
	else if ((double)s->n_heads * (double)s->head_dim * (double)s->d_model >
		 (double)LAYER_MAX_ELEMS)
		w = "layer too large (heads * head-dim * d-model above 2^31)";
	if (why)
		*why = w;
	return w ? RF_ERR_ARG : RF_OK;
}

/* The per-pair tables of longrope and rope_freqs: one positive finite
 * divisor per pair of the rotary dim, and longrope's switch point. */
static const char *rope_tables_check(const RopeScaling *s, size_t rotary_dim)
{
	bool lr = s->kind == ROPE_SCALING_LONGROPE;
	if (!lr && s->kind != ROPE_SCALING_FREQ_FACTORS)
		return NULL;
	if (s->n_pairs != rotary_dim / 2 || s->n_pairs > ROPE_MAX_TABLE_PAIRS)
		return "the rope-scaling table must have one factor per pair of the rotary dim";
	for (size_t i = 0; i < s->n_pairs; i++)
		if (!(s->factors[i] > 0.0) || !isfinite(s->factors[i]) ||
		    (lr && (!(s->long_factors[i] > 0.0) || !isfinite(s->long_factors[i]))))
			return "rope-scaling table factors must be positive numbers";
	if (lr && (!(s->original_max_pos >= 1.0) || !isfinite(s->original_max_pos)))
		return "longrope needs its original context length";
	return NULL;
}

RfStatus rope_spec_check(const RopeSpec *r, size_t head_dim, const char **why)
{
	const char *w = NULL;
	if (r->rotary_dim > head_dim)
		w = "rotary-dim must not exceed head-dim";
	else if (r->rotary_dim % 2 != 0)
		w = "rotary-dim must be even";
	else if (!(r->theta > 0.0) || !isfinite(r->theta) || r->theta > 1e12)
		w = "rope-theta must be a positive number up to 1e12";
	else if (r->scaling.kind != ROPE_SCALING_NONE &&
		 (!(r->scaling.factor > 0.0) || !isfinite(r->scaling.factor)))
		w = "rope-scaling factor must be a positive number";
	else
		w = rope_tables_check(&r->scaling, r->rotary_dim);
	if (why)
		*why = w;
	return w ? RF_ERR_ARG : RF_OK;
}

RopeSpec rope_spec_default(size_t head_dim)
{
	RopeSpec r;
	memset(&r, 0, sizeof r);
	r.layout = ROPE_HALF;
	r.rotary_dim = head_dim;
	r.theta = 10000.0;
	return r;
}

/* n zeroed doubles. Big weight matrices are read in strided blocks by
 * the engine, so they are advised onto huge pages (fewer TLB misses, and
 * a cheaper first touch); calloc'ed big blocks are fresh mappings, not
 * yet touched, so the advice takes effect when they are filled. */
static double *zalloc(size_t n)
{
	double *p = calloc(n ? n : 1, sizeof(double));
#ifdef MADV_HUGEPAGE
	const uintptr_t huge = (uintptr_t)1 << 21;
	size_t bytes = n * sizeof(double);
	if (p && bytes >= 2 * huge) {
		uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1);
		uintptr_t hi = ((uintptr_t)p + bytes) & ~(huge - 1);
		if (hi > lo)
			madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
	}
#endif
	return p;
}

RfStatus layer_alloc(Layer *l, const LayerShape *s, unsigned flags)
{
	size_t D = s->d_model, H = s->n_heads, G = s->n_kv_heads, d = s->head_dim;
	memset(l, 0, sizeof *l);
	if (layer_shape_check(s, NULL) != RF_OK)
		return RF_ERR_ARG;
	l->shape = *s;
	l->rope = rope_spec_default(d);
	l->norm_eps = 1e-5;
	l->qk_norm_eps = 1e-6;
	l->wq = zalloc(H * d * D);
	l->wk = zalloc(G * d * D);
	l->wv = zalloc(G * d * D);
	l->wo = zalloc(D * H * d);
	int bad = !l->wq || !l->wk || !l->wv || !l->wo;
	if (flags & LAYER_WITH_QKV_BIAS) {
		l->bq = zalloc(H * d);
		l->bk = zalloc(G * d);
		l->bv = zalloc(G * d);
		bad |= !l->bq || !l->bk || !l->bv;
	}
	if (flags & LAYER_WITH_O_BIAS) {
		l->bo = zalloc(D);
		bad |= !l->bo;
	}
	if (flags & LAYER_WITH_QK_NORM) {
		l->q_norm = zalloc(d);
		l->k_norm = zalloc(d);
		l->qk_norm_per_head = true;
		bad |= !l->q_norm || !l->k_norm;
	}
	if (flags & LAYER_WITH_ATTN_NORM) {
		l->attn_norm = zalloc(D);
		bad |= !l->attn_norm;
	}
	if (bad) {
		layer_free(l);
		return RF_ERR_NOMEM;
	}
	return RF_OK;
}

void layer_free(Layer *l)
{
	free(l->wq);
	free(l->wk);
	free(l->wv);
	free(l->wo);
	free(l->bq);
	free(l->bk);
	free(l->bv);
	free(l->bo);
	free(l->q_norm);
	free(l->k_norm);
	free(l->attn_norm);
	free(l->attn_norm_bias);
	memset(l, 0, sizeof *l);
}

static int dup_into(double **dst, const double *src, size_t n)
{
	if (!src) {
		*dst = NULL;
		return 0;
	}
	*dst = malloc(n * sizeof(double));
	if (!*dst)
		return 1;
	memcpy(*dst, src, n * sizeof(double));
	return 0;
}

/* Lengths of the optional QK-norm vectors. */
static void qk_norm_lengths(const Layer *l, size_t *nq, size_t *nk)
{
	size_t d = l->shape.head_dim;
	*nq = l->qk_norm_per_head ? d : l->shape.n_heads * d;
	*nk = l->qk_norm_per_head ? d : l->shape.n_kv_heads * d;
}

RfStatus layer_copy(Layer *dst, const Layer *src)
{
	size_t D = src->shape.d_model, H = src->shape.n_heads;
	size_t G = src->shape.n_kv_heads, d = src->shape.head_dim;
	size_t nq, nk;
	qk_norm_lengths(src, &nq, &nk);
	*dst = *src;
	int bad = 0;
	bad |= dup_into(&dst->wq, src->wq, H * d * D);
	bad |= dup_into(&dst->wk, src->wk, G * d * D);
	bad |= dup_into(&dst->wv, src->wv, G * d * D);
	bad |= dup_into(&dst->wo, src->wo, D * H * d);
	bad |= dup_into(&dst->bq, src->bq, H * d);
	bad |= dup_into(&dst->bk, src->bk, G * d);
	bad |= dup_into(&dst->bv, src->bv, G * d);
	bad |= dup_into(&dst->bo, src->bo, D);
	bad |= dup_into(&dst->q_norm, src->q_norm, nq);
	bad |= dup_into(&dst->k_norm, src->k_norm, nk);
	bad |= dup_into(&dst->attn_norm, src->attn_norm, D);
	bad |= dup_into(&dst->attn_norm_bias, src->attn_norm_bias, D);
	if (bad) {
		layer_free(dst);
		return RF_ERR_NOMEM;
	}
	return RF_OK;
}

RfStatus layer_shell_like(Layer *dst, const Layer *src)
{
	size_t D = src->shape.d_model, nq = src->shape.n_heads * src->shape.head_dim;
	size_t nk = src->shape.n_kv_heads * src->shape.head_dim;
	bool fits = dst->wq && dst->shape.d_model == src->shape.d_model &&
		    dst->shape.n_heads == src->shape.n_heads &&
		    dst->shape.n_kv_heads == src->shape.n_kv_heads &&
		    dst->shape.head_dim == src->shape.head_dim;
	double *w[4] = {dst->wq, dst->wk, dst->wv, dst->wo};
	size_t n[4] = {nq * D, nk * D, nk * D, D * nq};
	if (!fits) {
		for (int i = 0; i < 4; i++) {
			free(w[i]);
			w[i] = NULL;
		}
	}
	dst->wq = dst->wk = dst->wv = dst->wo = NULL;
	layer_free(dst);
	Layer shell = *src;
	shell.wq = shell.wk = shell.wv = shell.wo = NULL;
	RfStatus st = layer_copy(dst, &shell);
	for (int i = 0; st == RF_OK && i < 4; i++)
		if (!w[i] && !(w[i] = malloc((n[i] ? n[i] : 1) * sizeof(double))))
			st = RF_ERR_NOMEM;
	if (st != RF_OK) {
		for (int i = 0; i < 4; i++)
			free(w[i]);
		layer_free(dst);
		return st;
	}
	dst->wq = w[0];
	dst->wk = w[1];
	dst->wv = w[2];
	dst->wo = w[3];
	return RF_OK;
}

static void fill_normal(Rng *rng, double *v, size_t n, double scale)
{
	for (size_t i = 0; i < n; i++)
		v[i] = scale * rng_normal(rng);
}

RfStatus layer_random(Layer *l, const LayerShape *s, const RopeSpec *rope,
		      bool with_bias, uint64_t seed)
{
	unsigned flags = with_bias ? LAYER_WITH_QKV_BIAS | LAYER_WITH_O_BIAS : 0;
	RfStatus st = layer_alloc(l, s, flags);
	if (st != RF_OK)
		return st;
	if (rope)
		l->rope = *rope;
	size_t D = s->d_model, H = s->n_heads, G = s->n_kv_heads, d = s->head_dim;
	double w = 1.0 / sqrt((double)D);
	Rng rng;
	rng_seed(&rng, seed, 1);
	fill_normal(&rng, l->wq, H * d * D, w);
	fill_normal(&rng, l->wk, G * d * D, w);
	fill_normal(&rng, l->wv, G * d * D, w);
	fill_normal(&rng, l->wo, D * H * d, 1.0 / sqrt((double)(H * d)));
	if (with_bias) {
		fill_normal(&rng, l->bq, H * d, 0.1);
		fill_normal(&rng, l->bk, G * d, 0.1);
		fill_normal(&rng, l->bv, G * d, 0.1);
		fill_normal(&rng, l->bo, D, 0.1);
	}
	return RF_OK;
}

enum { FINITE_BLOCK = 4096 };

/* Nonzero when one of m values at v is NaN or Inf: a value is non-finite
 * exactly when its 11 exponent bits are all ones. Branch-free, so that a
 * whole block (a constant trip count, vectorized at -O2) costs a fraction
 * of the early exit per value it replaces (that scan was 5-6% of a
 * whole-model fold or verify). */
static uint64_t nonfinite_in(const double *v, size_t m)
{
	/* the exponent e is 0..2047, so e + 1 reaches bit 11 only at 2047:
	 * shifts, adds and ORs, no compare, which the vectorizer takes */
	uint64_t any = 0;
	for (size_t i = 0; i < m; i++) {
		uint64_t b;
		memcpy(&b, v + i, sizeof b);
		any |= ((b >> 52) & 0x7ff) + 1;
	}
	return any >> 11 & 1;
}

static uint64_t nonfinite_in_block(const double *v)
{
	return nonfinite_in(v, FINITE_BLOCK);
}

/* Whether v[0..n) holds no NaN or Inf, stopping after the first block
 * that has one. */
static bool all_finite(const double *v, size_t n)
{
	if (!v)
		return true;
	size_t first = 0;
	for (; first + FINITE_BLOCK <= n; first += FINITE_BLOCK)
		if (nonfinite_in_block(v + first))
			return false;
	return !nonfinite_in(v + first, n - first);
}

bool layer_is_finite(const Layer *l, const char **tensor)
{
	size_t D = l->shape.d_model, H = l->shape.n_heads;
	size_t G = l->shape.n_kv_heads, d = l->shape.head_dim;
	size_t nq, nk;
	qk_norm_lengths(l, &nq, &nk);
	struct {
		const char *name;
		const double *v;
		size_t n;
	} t[] = {
		{"q weight", l->wq, H * d * D}, {"k weight", l->wk, G * d * D},
		{"v weight", l->wv, G * d * D}, {"o weight", l->wo, D * H * d},
		{"q bias", l->bq, H * d},       {"k bias", l->bk, G * d},
		{"v bias", l->bv, G * d},       {"o bias", l->bo, D},
		{"q norm", l->q_norm, nq},      {"k norm", l->k_norm, nk},
		{"input norm", l->attn_norm, D},
		{"input norm bias", l->attn_norm_bias, D},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (!all_finite(t[i].v, t[i].n)) {
			if (tensor)
				*tensor = t[i].name;
			return false;
		}
	}
	return true;
}

size_t layer_bytes(const Layer *l)
{
	size_t D = l->shape.d_model, H = l->shape.n_heads;
	size_t G = l->shape.n_kv_heads, d = l->shape.head_dim;
	return (2 * H * d * D + 2 * G * d * D) * sizeof(double);
}

size_t layer_first_key(const Layer *l, size_t m)
{
	size_t W = l->sliding_window;
	return W && m >= W ? m - W + 1 : 0;
}

double layer_score_scale(const Layer *l)
{
	if (l->score_scale > 0.0)
		return l->score_scale;
	return 1.0 / sqrt((double)l->shape.head_dim);
}

void layer_random_input(uint64_t seed, size_t T, size_t D, double *x)
{
	Rng rng;
	rng_seed(&rng, seed, 2);
	fill_normal(&rng, x, T * D, 1.0);
}

void layer_input_norm(const Layer *l, const double *emb, size_t T, double *x)
{
	size_t D = l->shape.d_model;
	for (size_t t = 0; t < T; t++) {
		const double *e = emb + t * D;
		double *o = x + t * D;
		double mean = 0.0, ss = 0.0;
		if (l->attn_norm_kind == NORM_LAYER) {
			for (size_t i = 0; i < D; i++)
				mean += e[i];
			mean /= (double)D;
		}
		for (size_t i = 0; i < D; i++)
			ss += (e[i] - mean) * (e[i] - mean);
		double inv = 1.0 / sqrt(ss / (double)D + l->norm_eps);
		for (size_t i = 0; i < D; i++) {
			double v = (e[i] - mean) * inv;
			if (l->attn_norm)
				v *= l->attn_norm[i];
			if (l->attn_norm_bias)
				v += l->attn_norm_bias[i];
			o[i] = v;
		}
	}
}
