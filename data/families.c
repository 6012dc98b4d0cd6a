#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data/families.h"

/* The naming schemes, most specific first. */
static const FamilyNames schemes[] = {
	{"gguf", "blk.", ".attn_q.weight", ".attn_k.weight", ".attn_v.weight",
	 ".attn_qkv.weight", ".attn_output.weight", ".attn_q.bias", ".attn_k.bias",
	 ".attn_v.bias", ".attn_qkv.bias", ".attn_output.bias", ".attn_q_norm.weight",
	 ".attn_k_norm.weight", ".attn_norm.weight", ".attn_norm.bias", "token_embd.weight",
	 QKV_SPLIT, NORM_RMS, false},
	{"hf-fused", "layers.", NULL, NULL, NULL, ".self_attn.qkv_proj.weight",
	 ".self_attn.o_proj.weight", NULL, NULL, NULL, ".self_attn.qkv_proj.bias",
	 ".self_attn.o_proj.bias", NULL, NULL, ".input_layernorm.weight", NULL,
	 "embed_tokens.weight", QKV_FUSED, NORM_RMS, false},
	{"gpt-neox", "layers.", NULL, NULL, NULL, ".attention.query_key_value.weight",
	 ".attention.dense.weight", NULL, NULL, NULL, ".attention.query_key_value.bias",
	 ".attention.dense.bias", NULL, NULL, ".input_layernorm.weight",
	 ".input_layernorm.bias", "embed_in.weight", QKV_FUSED_PER_HEAD, NORM_LAYER, false},
	{"hf", "layers.", ".self_attn.q_proj.weight", ".self_attn.k_proj.weight",
	 ".self_attn.v_proj.weight", NULL, ".self_attn.o_proj.weight", ".self_attn.q_proj.bias",
	 ".self_attn.k_proj.bias", ".self_attn.v_proj.bias", NULL, ".self_attn.o_proj.bias",
	 ".self_attn.q_norm.weight", ".self_attn.k_norm.weight", ".input_layernorm.weight",
	 NULL, "embed_tokens.weight", QKV_SPLIT, NORM_RMS, false},
	{"meta", "layers.", ".attention.wq.weight", ".attention.wk.weight",
	 ".attention.wv.weight", NULL, ".attention.wo.weight", NULL, NULL, NULL, NULL, NULL,
	 ".attention.q_norm.weight", ".attention.k_norm.weight", ".attention_norm.weight",
	 NULL, "tok_embeddings.weight", QKV_SPLIT, NORM_RMS, true},
};

static bool ends_with(const char *s, size_t n, const char *suf, size_t m)
{
	return n >= m && !memcmp(s + n - m, suf, m);
}

/* The prefix of the layer-0 tensor of a scheme: "model." for
 * "model.layers.0.self_attn.q_proj.weight". Vision towers are skipped and
 * the shortest prefix wins. */
static bool find_prefix_of(const TensorTable *tt, const FamilyNames *fn,
			   const char *suffix, char *prefix, size_t len)
{
	char want[160];
	snprintf(want, sizeof want, "%s0%s", fn->layers, suffix);
	size_t wl = strlen(want), best = SIZE_MAX;
	for (size_t i = 0; i < tt->n; i++) {
		const char *nm = tt->v[i].name;
		size_t n = strlen(nm);
		if (!ends_with(nm, n, want, wl))
			continue;
		size_t pl = n - wl;
		if (pl && nm[pl - 1] != '.')
			continue;
		if (strstr(nm, "vision") || strstr(nm, "visual") || strstr(nm, "audio"))
			continue;
		if (pl < best && pl < len) {
			best = pl;
			memcpy(prefix, nm, pl);
			prefix[pl] = '\0';
		}
	}
	return best != SIZE_MAX;
}

/* Split q/k/v first, then the fused tensor; sets *fused. */
static bool find_prefix(const TensorTable *tt, const FamilyNames *fn, char *prefix,
			size_t len, bool *fused)
{
	*fused = false;
	if (fn->q && find_prefix_of(tt, fn, fn->q, prefix, len))
		return true;
	*fused = true;
	return fn->qkv && find_prefix_of(tt, fn, fn->qkv, prefix, len);
}

void family_tensor_name(const Family *fam, size_t layer, const char *suffix, char *buf,
			size_t len)
{
	if (!suffix)
		buf[0] = '\0';
	else
		snprintf(buf, len, "%s%s%zu%s", fam->prefix, fam->names->layers, layer, suffix);
}

bool family_layer_sliding(const Family *fam, size_t i)
{
	return fam->layer_bits && i < fam->n_layers && (fam->layer_bits[i] & HP_LAYER_SLIDING);
}

size_t family_layer_window(const Family *fam, size_t i)
{
	return family_layer_sliding(fam, i) ? fam->sliding_window : 0;
}

bool family_layer_sparse(const Family *fam, size_t i)
{
	return fam->layer_bits && i < fam->n_layers && (fam->layer_bits[i] & HP_LAYER_SPARSE);
}

RopeSpec family_layer_rope(const Family *fam, size_t i)
{
	RopeSpec r = fam->rope;
	if (fam->theta_local > 0 && family_layer_sliding(fam, i)) {
		r.theta = fam->theta_local;
		memset(&r.scaling, 0, sizeof r.scaling);
	}
	return r;
}

const char *family_router_suffix(const Family *fam, const TensorTable *tt, size_t i)
{
	/* Qwen-MoE's mlp.gate, Mixtral's block_sparse_moe.gate, llama.cpp's */
	static const char *hf[] = {".mlp.gate.weight", ".block_sparse_moe.gate.weight"};
	static const char *gguf[] = {".ffn_gate_inp.weight"};
	bool g = !strcmp(fam->names->name, "gguf");
	const char **cand = g ? gguf : hf;
	size_t n = g ? 1 : 2;
	for (size_t k = 0; k < n; k++) {
		char nm[320];
		family_tensor_name(fam, i, cand[k], nm, sizeof nm);
		if (tensor_table_find(tt, nm))
			return cand[k];
	}
	return NULL;
}

/* The router of every sparse layer, [experts, D]: a config that says a
 * layer has experts must come with them. */
static int check_routers(const TensorTable *tt, const Hparams *hp, const char *where,
			 const Family *fam, char *err, size_t errlen)
{
	const char *suffix = NULL;
	for (size_t i = 0; i < fam->n_layers; i++) {
		if (!family_layer_sparse(fam, i))
			continue;
		const char *s = suffix ? suffix : family_router_suffix(fam, tt, i);
		char nm[320];
		family_tensor_name(fam, i, s ? s : ".mlp.gate.weight", nm, sizeof nm);
		const TensorRef *t = s ? tensor_table_find(tt, nm) : NULL;
		if (!t) {
			snprintf(err, errlen, "%s: layer %zu: %s gives %zu experts, but the router %s is "
				 "missing", where, i, hp->source, hp->n_experts, nm);
			return -1;
		}
		if (t->ndim != 2 || t->shape[0] != hp->n_experts || t->shape[1] != fam->shape.d_model) {
			char got[96];
			tensor_shape_str(t, got, sizeof got);
			snprintf(err, errlen, "%s: tensor %s: shape %s, but %s gives [%zu, %zu] (experts, "
				 "D)", t->file, t->name, got, hp->source, hp->n_experts,
				 fam->shape.d_model);
			return -1;
		}
		suffix = s;
	}
	return 0;
}

/* "found: a, b, c (N tensors)" for the unknown-family message. */
static void list_found(const TensorTable *tt, char *buf, size_t len)
{
	size_t k = (size_t)snprintf(buf, len, "found %zu tensors", tt->n);
	for (size_t i = 0; i < tt->n && i < 6 && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "%s%.60s", i ? ", " : ": ", tt->v[i].name);
	if (tt->n > 6 && k < len)
		snprintf(buf + k, len - k, ", ...");
}

static bool fam_gguf(const Hparams *hp)
{
	return !strcmp(hp->source, "GGUF metadata");
}

int family_resolve(const TensorTable *tt, const Hparams *hp, const char *where,
		   Family *fam, char *err, size_t errlen)
{
	memset(fam, 0, sizeof *fam);
	bool fused = false;
	/* DeepSeek MLA checkpoints never get here: model.c hands them to
	 * data/mla_model.c */
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0] && !fam->names; i++)
		if (find_prefix(tt, &schemes[i], fam->prefix, sizeof fam->prefix, &fused))
			fam->names = &schemes[i];
	if (!fam->names) {
		char found[400];
		list_found(tt, found, sizeof found);
		snprintf(err, errlen, "%s: unknown model family (arch '%s'): no layer-0 attention "
			 "tensors of a known naming scheme; %s", where, hp->arch[0] ? hp->arch : "?",
			 found);
		return -1;
	}
	LayerShape *s = &fam->shape;
	s->d_model = hp->d_model;
	s->n_heads = hp->n_heads;
	s->n_kv_heads = hp->n_kv_heads ? hp->n_kv_heads : hp->n_heads;
	s->head_dim = hp->head_dim;
	if (!s->head_dim && s->n_heads) {
		if (s->d_model % s->n_heads) {
			snprintf(err, errlen, "%s: %s: hidden size %zu is not divisible by %zu heads "
				 "and no head dim is given", where, hp->source, s->d_model, s->n_heads);
			return -1;
		}
		s->head_dim = s->d_model / s->n_heads;
	}
	const char *why;
	if (layer_shape_check(s, &why) != RF_OK) {
		snprintf(err, errlen, "%s: %s: D %zu, %zu heads, %zu kv heads, head dim %zu: %s",
			 where, hp->source, s->d_model, s->n_heads, s->n_kv_heads, s->head_dim, why);
		return -1;
	}
	if (hp->n_layers == 0 || hp->n_layers > HP_MAX_LAYERS) {
		snprintf(err, errlen, "%s: %s: bad layer count %zu", where, hp->source, hp->n_layers);
		return -1;
	}
	fam->n_layers = hp->n_layers;
	RopeSpec *r = &fam->rope;
	*r = rope_spec_default(s->head_dim);
	r->layout = hp->layout_set ? hp->layout : ROPE_HALF;
	if (fam->names->interleaved)
		r->layout = ROPE_INTERLEAVED;
	r->theta = hp->theta > 0 ? hp->theta : 10000.0;
	if (hp->rotary_dim)
		r->rotary_dim = hp->rotary_dim;
	else if (hp->partial_rotary > 0)
		r->rotary_dim = (size_t)((double)s->head_dim * hp->partial_rotary) & ~(size_t)1;
	r->scaling = hp->scaling;
	bool table = r->scaling.kind == ROPE_SCALING_LONGROPE ||
		     r->scaling.kind == ROPE_SCALING_FREQ_FACTORS;
	if (table && r->scaling.n_pairs != r->rotary_dim / 2) {
		snprintf(err, errlen, "%s: %s: %s: %zu factors, but rotary dim %zu has %zu pairs",
			 where, hp->source, hp->scaling_table, r->scaling.n_pairs, r->rotary_dim,
			 r->rotary_dim / 2);
		return -1;
	}
	size_t msum = hp->mrope_section[0] + hp->mrope_section[1] + hp->mrope_section[2];
	if (msum && msum != r->rotary_dim / 2) {
		snprintf(err, errlen, "%s: %s: %s [%zu, %zu, %zu] sums to %zu pairs, but rotary dim "
			 "%zu has %zu", where, hp->source, fam_gguf(hp) ? "rope.dimension_sections"
			 : "rope_scaling.mrope_section", hp->mrope_section[0], hp->mrope_section[1],
			 hp->mrope_section[2], msum, r->rotary_dim, r->rotary_dim / 2);
		return -1;
	}
	if (rope_spec_check(r, s->head_dim, &why) != RF_OK) {
		snprintf(err, errlen, "%s: %s: rotary dim %zu, theta %g: %s", where, hp->source,
			 r->rotary_dim, r->theta, why);
		return -1;
	}
	fam->theta_local = hp->theta_local;
	fam->layer_bits = hp->layer_bits;
	fam->sliding_window = hp->sliding_window;
	fam->attn_softcap = hp->attn_softcap;
	fam->score_scale = hp->query_pre_attn_scalar > 0 ? 1.0 / sqrt(hp->query_pre_attn_scalar)
							 : 0.0;
	fam->norm_eps = hp->norm_eps > 0 ? hp->norm_eps : 1e-5;
	fam->qk_norm_eps = hp->qk_norm_eps > 0 ? hp->qk_norm_eps : 1e-6;
	fam->norm_plus_one = hp->norm_plus_one;
	fam->embed_scale_sqrt_d = hp->embed_scale_sqrt_d;
	fam->norm_kind = fam->names->norm_kind;
	fam->qkv_kind = !fused ? QKV_SPLIT
		      : fam->names->qkv_kind == QKV_SPLIT ? QKV_FUSED : fam->names->qkv_kind;
	char nm[256];
	family_tensor_name(fam, 0, fam->names->attn_norm_bias, nm, sizeof nm);
	if (nm[0] && tensor_table_find(tt, nm))
		fam->norm_kind = NORM_LAYER;
	if (fam->qkv_kind == QKV_FUSED_PER_HEAD && s->n_kv_heads != s->n_heads) {
		snprintf(err, errlen, "%s: %s: GPT-NeoX fused query_key_value needs as many kv heads "
			 "as heads (%zu vs %zu)", where, hp->source, s->n_kv_heads, s->n_heads);
		return -1;
	}
	return check_routers(tt, hp, where, fam, err, errlen);
}
