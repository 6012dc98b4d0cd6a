#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/model_tensors.h"

const char *model_tensor_label(AttnTensor a)
{
	static const char *names[ATT_COUNT] = {"W_q", "W_k", "W_v", "W_qkv", "W_o",
					       "b_q", "b_k", "b_v", "b_qkv", "b_o"};
	return a < ATT_COUNT ? names[a] : "?";
}

bool model_tensor_folded(AttnTensor a)
{
	return a != ATT_BO && a < ATT_COUNT;
}

int model_layer_tensors(const Model *m, size_t i, LayerTensorRefs *out, char *err,
			size_t errlen)
{
	const Family *f = model_family(m);
	const TensorTable *tt = model_tensor_table(m);
	const FamilyNames *fn = f->names;
	const char *suffix[ATT_COUNT] = {fn->q, fn->k, fn->v, fn->qkv, fn->o,
					 fn->bq, fn->bk, fn->bv, fn->bqkv, fn->bo};
	bool fused = f->qkv_kind != QKV_SPLIT;
	memset(out, 0, sizeof *out);
	out->qkv_kind = f->qkv_kind;
	if (i >= f->n_layers) {
		snprintf(err, errlen, "%s: layer %zu: the model has %zu layers", model_path(m), i,
			 f->n_layers);
		return -1;
	}
	for (int a = 0; a < ATT_COUNT; a++) {
		bool is_fused = a == ATT_QKV || a == ATT_BQKV;
		bool is_split = a == ATT_Q || a == ATT_K || a == ATT_V || a == ATT_BQ ||
				a == ATT_BK || a == ATT_BV;
		if ((fused && is_split) || (!fused && is_fused))
			continue;
		char nm[320];
		family_tensor_name(f, i, suffix[a], nm, sizeof nm);
		if (nm[0])
			out->t[a] = tensor_table_find(tt, nm);
		/* model_open checked every layer; this only guards misuse. */
		bool required = a == ATT_O || (fused ? a == ATT_QKV
						     : a == ATT_Q || a == ATT_K || a == ATT_V);
		if (required && !out->t[a]) {
			snprintf(err, errlen, "%s: layer %zu: tensor %s is missing", model_path(m), i,
				 nm);
			return -1;
		}
	}
	char nm[320];
	family_tensor_name(f, i, fn->q_norm, nm, sizeof nm);
	out->q_norm = nm[0] ? tensor_table_find(tt, nm) : NULL;
	family_tensor_name(f, i, fn->k_norm, nm, sizeof nm);
	out->k_norm = nm[0] ? tensor_table_find(tt, nm) : NULL;
	/* model_open's test: per head when q_norm has head_dim entries. */
	out->qk_norm_all_heads = out->q_norm && out->k_norm &&
				 out->q_norm->nelem != f->shape.head_dim;
	return 0;
}

int model_norm_permute(const TensorRef *t, size_t hpg, size_t head_dim, size_t n_groups,
		       const size_t *perm, double *out, char *err, size_t errlen)
{
	size_t slot = hpg * head_dim;
	if (!slot || t->nelem / slot != n_groups || t->nelem % slot) {
		snprintf(err, errlen, "%s: tensor %s: %zu values are not %zu kv groups of %zu",
			 t->file, t->name, t->nelem, n_groups, slot);
		return -1;
	}
	double *v = malloc(t->nelem * sizeof(double));
	if (!v) {
		snprintf(err, errlen, "%s: out of memory", t->name);
		return -1;
	}
	if (tensor_read(t, 0, t->nelem, v, err, errlen)) {
		free(v);
		return -1;
	}
	for (size_t g = 0; g < n_groups; g++) {
		if (perm[g] >= n_groups) {
			snprintf(err, errlen, "%s: group %zu comes from group %zu of %zu", t->name, g,
				 perm[g], n_groups);
			free(v);
			return -1;
		}
		memcpy(out + g * slot, v + perm[g] * slot, slot * sizeof(double));
	}
	free(v);
	return 0;
}

/* Rows [q; k; v] (QKV_FUSED) or per head [q_h; k_h; v_h] of cols each. */
static void pack_fused(QkvKind kind, const LayerShape *s, size_t cols, const double *q,
		       const double *k, const double *v, double *out)
{
	size_t d = s->head_dim, Hd = s->n_heads * d, Gd = s->n_kv_heads * d;
	if (kind == QKV_FUSED_PER_HEAD) {
		const double *src[3] = {q, k, v};
		for (size_t h = 0; h < s->n_heads; h++)
			for (size_t j = 0; j < 3; j++)
				memcpy(out + (h * 3 + j) * d * cols, src[j] + h * d * cols,
				       d * cols * sizeof(double));
		return;
	}
	memcpy(out, q, Hd * cols * sizeof(double));
	memcpy(out + Hd * cols, k, Gd * cols * sizeof(double));
	memcpy(out + (Hd + Gd) * cols, v, Gd * cols * sizeof(double));
}

int model_tensor_pack(const Layer *l, QkvKind kind, AttnTensor a, double *out)
{
	const LayerShape *s = &l->shape;
	size_t D = s->d_model, Hd = s->n_heads * s->head_dim, Gd = s->n_kv_heads * s->head_dim;
	const double *src = NULL;
	size_t n = 0;
	switch (a) {
	case ATT_Q: src = l->wq; n = Hd * D; break;
	case ATT_K: src = l->wk; n = Gd * D; break;
	case ATT_V: src = l->wv; n = Gd * D; break;
	case ATT_O: src = l->wo; n = D * Hd; break;
	case ATT_BQ: src = l->bq; n = Hd; break;
	case ATT_BK: src = l->bk; n = Gd; break;
	case ATT_BV: src = l->bv; n = Gd; break;
	case ATT_BO: src = l->bo; n = D; break;
	case ATT_QKV:
		pack_fused(kind, s, D, l->wq, l->wk, l->wv, out);
		return 0;
	case ATT_BQKV:
		if (!l->bq || !l->bk || !l->bv)
			return -1;
		pack_fused(kind, s, 1, l->bq, l->bk, l->bv, out);
		return 0;
	case ATT_COUNT:
		break;
	}
	if (!src)
		return -1;
	memcpy(out, src, n * sizeof(double));
	return 0;
}
