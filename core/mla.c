#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mla.h"
#include "core/rng.h"

/* ---- shape and lifecycle ---------------------------------------------------- */

RfStatus mla_shape_check(const MlaShape *s, const char **why)
{
	const size_t *need[] = {&s->d_model, &s->n_heads, &s->kv_lora_rank, &s->qk_rope_dim,
				&s->v_head_dim};
	static const char *names[] = {"d_model", "n_heads", "kv_lora_rank", "qk_rope_head_dim",
				      "v_head_dim"};
	for (size_t i = 0; i < 5; i++)
		if (*need[i] == 0) {
			*why = names[i];
			return RF_ERR_ARG;
		}
	if (s->d_model > LAYER_MAX_DIM || s->q_lora_rank > LAYER_MAX_DIM ||
	    s->kv_lora_rank > LAYER_MAX_DIM) {
		*why = "a width past the largest accepted";
		return RF_ERR_ARG;
	}
	if (s->n_heads > LAYER_MAX_HEADS) {
		*why = "n_heads";
		return RF_ERR_ARG;
	}
	if (s->qk_nope_dim > LAYER_MAX_HEAD_DIM || s->qk_rope_dim > LAYER_MAX_HEAD_DIM ||
	    s->v_head_dim > LAYER_MAX_HEAD_DIM) {
		*why = "a head dim past the largest accepted";
		return RF_ERR_ARG;
	}
	if (s->qk_rope_dim % 2) {
		*why = "qk_rope_head_dim must be even";
		return RF_ERR_ARG;
	}
	size_t dq = mla_qk_dim(s), H = s->n_heads, D = s->d_model;
	size_t qin = s->q_lora_rank ? s->q_lora_rank : D;
	if ((double)H * (double)dq * (double)qin > (double)LAYER_MAX_ELEMS ||
	    (double)H * (double)(s->qk_nope_dim + s->v_head_dim) * (double)s->kv_lora_rank >
		    (double)LAYER_MAX_ELEMS ||
	    (double)D * (double)(H * s->v_head_dim) > (double)LAYER_MAX_ELEMS) {
		*why = "a tensor past the largest accepted";
		return RF_ERR_ARG;
	}
	return RF_OK;
}

/* Element counts of the tensors, in the order of mla_tensors(). */
#define MLA_NT 8
static void counts(const MlaShape *s, bool attn_norm, size_t n[MLA_NT])
{
	size_t D = s->d_model, H = s->n_heads, Lq = s->q_lora_rank, Lkv = s->kv_lora_rank;
	size_t dq = mla_qk_dim(s);
	n[0] = Lq * D;
	n[1] = Lq;
	n[2] = H * dq * (Lq ? Lq : D);
	n[3] = (Lkv + s->qk_rope_dim) * D;
	n[4] = Lkv;
	n[5] = H * (s->qk_nope_dim + s->v_head_dim) * Lkv;
	n[6] = D * H * s->v_head_dim;
	n[7] = attn_norm ? D : 0;
}

static void tensors(MlaLayer *l, double **t[MLA_NT])
{
	t[0] = &l->q_a;
	t[1] = &l->q_a_norm;
	t[2] = &l->q_b;
	t[3] = &l->kv_a;
	t[4] = &l->kv_a_norm;
	t[5] = &l->kv_b;
	t[6] = &l->wo;
	t[7] = &l->attn_norm;
}

static const char *tensor_names[MLA_NT] = {"q_a_proj", "q_a_layernorm", "q_b_proj",
					   "kv_a_proj_with_mqa", "kv_a_layernorm", "kv_b_proj",
					   "o_proj", "input_layernorm"};

RfStatus mla_alloc(MlaLayer *l, const MlaShape *s, bool with_attn_norm)
{
	memset(l, 0, sizeof *l);
	const char *why;
	if (mla_shape_check(s, &why) != RF_OK)
		return RF_ERR_ARG;
	l->shape = *s;
	l->rope = rope_spec_default(s->qk_rope_dim);
	l->norm_eps = 1e-6;
	l->latent_eps = 1e-6;
	size_t n[MLA_NT];
	double **t[MLA_NT];
	counts(s, with_attn_norm, n);
	tensors(l, t);
	for (size_t i = 0; i < MLA_NT; i++) {
		if (!n[i])
			continue;
		*t[i] = calloc(n[i], sizeof(double));
		if (!*t[i]) {
			mla_free(l);
			return RF_ERR_NOMEM;
		}
	}
	for (size_t i = 0; i < s->q_lora_rank; i++)
		l->q_a_norm[i] = 1.0;
	for (size_t i = 0; i < s->kv_lora_rank; i++)
		l->kv_a_norm[i] = 1.0;
	if (l->attn_norm)
		for (size_t i = 0; i < s->d_model; i++)
			l->attn_norm[i] = 1.0;
	return RF_OK;
}

void mla_free(MlaLayer *l)
{
	double **t[MLA_NT];
	tensors(l, t);
	for (size_t i = 0; i < MLA_NT; i++)
		free(*t[i]);
	memset(l, 0, sizeof *l);
}

RfStatus mla_copy(MlaLayer *dst, const MlaLayer *src)
{
	RfStatus st = mla_alloc(dst, &src->shape, src->attn_norm != NULL);
	if (st != RF_OK)
		return st;
	size_t n[MLA_NT];
	double **td[MLA_NT], **ts[MLA_NT];
	counts(&src->shape, src->attn_norm != NULL, n);
	tensors(dst, td);
	tensors((MlaLayer *)src, ts);
	for (size_t i = 0; i < MLA_NT; i++)
		if (n[i])
			memcpy(*td[i], *ts[i], n[i] * sizeof(double));
	dst->rope = src->rope;
	dst->norm_eps = src->norm_eps;
	dst->latent_eps = src->latent_eps;
	dst->score_scale = src->score_scale;
	return RF_OK;
}

static void fill_normal(Rng *rng, double *v, size_t n, double mean, double sd)
{
	for (size_t i = 0; i < n; i++)
		v[i] = mean + sd * rng_normal(rng);
}

RfStatus mla_random(MlaLayer *l, const MlaShape *s, const RopeSpec *rope, uint64_t seed)
{
	RfStatus st = mla_alloc(l, s, false);
	if (st != RF_OK)
		return st;
	if (rope)
		l->rope = *rope;
	l->rope.rotary_dim = s->qk_rope_dim;
	size_t D = s->d_model, H = s->n_heads, Lq = s->q_lora_rank, Lkv = s->kv_lora_rank;
	size_t dq = mla_qk_dim(s);
	Rng rng;
	rng_seed(&rng, seed, 21);
	if (Lq) {
		fill_normal(&rng, l->q_a, Lq * D, 0, 1.0 / sqrt((double)D));
		fill_normal(&rng, l->q_a_norm, Lq, 1.0, 0.1);
		fill_normal(&rng, l->q_b, H * dq * Lq, 0, 1.0 / sqrt((double)Lq));
	} else {
		fill_normal(&rng, l->q_b, H * dq * D, 0, 1.0 / sqrt((double)D));
	}
	fill_normal(&rng, l->kv_a, (Lkv + s->qk_rope_dim) * D, 0, 1.0 / sqrt((double)D));
	fill_normal(&rng, l->kv_a_norm, Lkv, 1.0, 0.1);
	fill_normal(&rng, l->kv_b, H * (s->qk_nope_dim + s->v_head_dim) * Lkv, 0,
		    1.0 / sqrt((double)Lkv));
	fill_normal(&rng, l->wo, D * H * s->v_head_dim, 0, 1.0 / sqrt((double)(H * s->v_head_dim)));
	return RF_OK;
}

bool mla_is_finite(const MlaLayer *l, const char **tensor)
{
	size_t n[MLA_NT];
	double **t[MLA_NT];
	counts(&l->shape, l->attn_norm != NULL, n);
	tensors((MlaLayer *)l, t);
	for (size_t i = 0; i < MLA_NT; i++)
		for (size_t j = 0; j < n[i]; j++)
			if (!isfinite((*t[i])[j])) {
				*tensor = tensor_names[i];
				return false;
			}
	return true;
}

double mla_score_scale(const MlaLayer *l)
{
	return l->score_scale > 0 ? l->score_scale
				  : 1.0 / sqrt((double)mla_qk_dim(&l->shape));
}

double mla_yarn_mscale(double scale, double mscale)
{
	return scale <= 1 ? 1.0 : 0.1 * mscale * log(scale) + 1.0;
}

void mla_header(const MlaLayer *l, Layer *hdr)
{
	memset(hdr, 0, sizeof *hdr);
	hdr->shape.d_model = l->shape.d_model;
	hdr->shape.n_heads = l->shape.n_heads;
	hdr->shape.n_kv_heads = 1;
	hdr->shape.head_dim = mla_qk_dim(&l->shape);
	hdr->rope = l->rope;
	hdr->rope.rotary_dim = l->shape.qk_rope_dim;
	hdr->norm_eps = l->norm_eps;
	hdr->score_scale = mla_score_scale(l);
}
