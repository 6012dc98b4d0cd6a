#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/families.h"
#include "data/model_tensors.h"
#include "data/residual_tensors.h"

/* Which norm a reader reads. */
typedef enum { NONE = 0, ATTN, MLP, FINAL } NormGroup;

/* A name (per-layer suffix after "layers.N.", or a model-level name after
 * the scheme's prefix) and its side; '*' matches an expert index. */
typedef struct {
	const char *pat;
	ResRole role;
	NormGroup group;   /* readers: the norm they read; norms: which one */
	const char *part;  /* the same tensor in every scheme (NULL: kept) */
} Rule;

/* Per layer, every scheme (HF, GGUF, Meta/llama2.c). */
static const Rule layer_rules[] = {
	/* the norms before attention and before the MLP */
	{"input_layernorm.weight", RES_ROLE_NORM, ATTN, "attn_norm"},
	{"attn_norm.weight", RES_ROLE_NORM, ATTN, "attn_norm"},
	{"attention_norm.weight", RES_ROLE_NORM, ATTN, "attn_norm"},
	{"post_attention_layernorm.weight", RES_ROLE_NORM, MLP, "mlp_norm"},
	{"ffn_norm.weight", RES_ROLE_NORM, MLP, "mlp_norm"},
	/* attention reads the normed stream */
	{"self_attn.q_proj.weight", RES_ROLE_READER, ATTN, "q"},
	{"self_attn.k_proj.weight", RES_ROLE_READER, ATTN, "k"},
	{"self_attn.v_proj.weight", RES_ROLE_READER, ATTN, "v"},
	{"self_attn.qkv_proj.weight", RES_ROLE_READER, ATTN, "qkv"},
	{"self_attn.q_a_proj.weight", RES_ROLE_READER, ATTN, "q_a"},
	{"self_attn.kv_a_proj_with_mqa.weight", RES_ROLE_READER, ATTN, "kv_a"},
	{"attn_q.weight", RES_ROLE_READER, ATTN, "q"},
	{"attn_k.weight", RES_ROLE_READER, ATTN, "k"},
	{"attn_v.weight", RES_ROLE_READER, ATTN, "v"},
	{"attn_qkv.weight", RES_ROLE_READER, ATTN, "qkv"},
	{"attn_q_a.weight", RES_ROLE_READER, ATTN, "q_a"},
	{"attn_kv_a_mqa.weight", RES_ROLE_READER, ATTN, "kv_a"},
	{"attention.wq.weight", RES_ROLE_READER, ATTN, "q"},
	{"attention.wk.weight", RES_ROLE_READER, ATTN, "k"},
	{"attention.wv.weight", RES_ROLE_READER, ATTN, "v"},
	/* inside attention: off the stream */
	{"self_attn.q_proj.bias", RES_ROLE_KEEP, NONE, NULL},
	{"self_attn.k_proj.bias", RES_ROLE_KEEP, NONE, NULL},
	{"self_attn.v_proj.bias", RES_ROLE_KEEP, NONE, NULL},
	{"self_attn.qkv_proj.bias", RES_ROLE_KEEP, NONE, NULL},
	{"self_attn.q_norm.weight", RES_ROLE_KEEP, NONE, NULL},
	{"self_attn.k_norm.weight", RES_ROLE_KEEP, NONE, NULL},
	{"self_attn.q_a_layernorm.weight", RES_ROLE_KEEP, NONE, NULL},
	{"self_attn.kv_a_layernorm.weight", RES_ROLE_KEEP, NONE, NULL},
	{"self_attn.q_b_proj.weight", RES_ROLE_KEEP, NONE, NULL},
	{"self_attn.kv_b_proj.weight", RES_ROLE_KEEP, NONE, NULL},
	{"attn_q.bias", RES_ROLE_KEEP, NONE, NULL},
	{"attn_k.bias", RES_ROLE_KEEP, NONE, NULL},
	{"attn_v.bias", RES_ROLE_KEEP, NONE, NULL},
	{"attn_qkv.bias", RES_ROLE_KEEP, NONE, NULL},
	{"attn_q_norm.weight", RES_ROLE_KEEP, NONE, NULL},
	{"attn_k_norm.weight", RES_ROLE_KEEP, NONE, NULL},
	{"attn_q_a_norm.weight", RES_ROLE_KEEP, NONE, NULL},
	{"attn_kv_a_norm.weight", RES_ROLE_KEEP, NONE, NULL},
	{"attn_q_b.weight", RES_ROLE_KEEP, NONE, NULL},
	{"attn_kv_b.weight", RES_ROLE_KEEP, NONE, NULL},
	{"attn_k_b.weight", RES_ROLE_KEEP, NONE, NULL},
	{"attn_v_b.weight", RES_ROLE_KEEP, NONE, NULL},
	{"attention.q_norm.weight", RES_ROLE_KEEP, NONE, NULL},
	{"attention.k_norm.weight", RES_ROLE_KEEP, NONE, NULL},
	/* attention writes the stream */
	{"self_attn.o_proj.weight", RES_ROLE_WRITER, NONE, "o"},
	{"self_attn.o_proj.bias", RES_ROLE_WRITER_BIAS, NONE, "o_bias"},
	{"attn_output.weight", RES_ROLE_WRITER, NONE, "o"},
	{"attn_output.bias", RES_ROLE_WRITER_BIAS, NONE, "o_bias"},
	{"attention.wo.weight", RES_ROLE_WRITER, NONE, "o"},
	/* the MLP (dense, experts, shared experts, routers) */
	{"mlp.gate_proj.weight", RES_ROLE_READER, MLP, "gate"},
	{"mlp.up_proj.weight", RES_ROLE_READER, MLP, "up"},
	{"mlp.gate_up_proj.weight", RES_ROLE_READER, MLP, "gate_up"},
	{"mlp.gate_proj.bias", RES_ROLE_KEEP, NONE, NULL},
	{"mlp.up_proj.bias", RES_ROLE_KEEP, NONE, NULL},
	{"mlp.down_proj.weight", RES_ROLE_WRITER, NONE, "down"},
	{"mlp.down_proj.bias", RES_ROLE_WRITER_BIAS, NONE, "down_bias"},
	{"mlp.gate.weight", RES_ROLE_READER, MLP, "router"},
	{"mlp.gate.e_score_correction_bias", RES_ROLE_KEEP, NONE, NULL},
	{"mlp.experts.*.gate_proj.weight", RES_ROLE_READER, MLP, "exp_gate"},
	{"mlp.experts.*.up_proj.weight", RES_ROLE_READER, MLP, "exp_up"},
	{"mlp.experts.*.down_proj.weight", RES_ROLE_WRITER, NONE, "exp_down"},
	{"mlp.shared_expert.gate_proj.weight", RES_ROLE_READER, MLP, "sh_gate"},
	{"mlp.shared_expert.up_proj.weight", RES_ROLE_READER, MLP, "sh_up"},
	{"mlp.shared_expert.down_proj.weight", RES_ROLE_WRITER, NONE, "sh_down"},
	{"mlp.shared_expert_gate.weight", RES_ROLE_READER, MLP, "sh_router"},
	{"mlp.shared_experts.gate_proj.weight", RES_ROLE_READER, MLP, "sh_gate"},
	{"mlp.shared_experts.up_proj.weight", RES_ROLE_READER, MLP, "sh_up"},
	{"mlp.shared_experts.down_proj.weight", RES_ROLE_WRITER, NONE, "sh_down"},
	{"block_sparse_moe.gate.weight", RES_ROLE_READER, MLP, "router"},
	{"block_sparse_moe.experts.*.w1.weight", RES_ROLE_READER, MLP, "exp_gate"},
	{"block_sparse_moe.experts.*.w3.weight", RES_ROLE_READER, MLP, "exp_up"},
	{"block_sparse_moe.experts.*.w2.weight", RES_ROLE_WRITER, NONE, "exp_down"},
	{"ffn_gate.weight", RES_ROLE_READER, MLP, "gate"},
	{"ffn_up.weight", RES_ROLE_READER, MLP, "up"},
	{"ffn_down.weight", RES_ROLE_WRITER, NONE, "down"},
	{"ffn_down.bias", RES_ROLE_WRITER_BIAS, NONE, "down_bias"},
	{"ffn_gate_inp.weight", RES_ROLE_READER, MLP, "router"},
	{"ffn_gate_exps.weight", RES_ROLE_READER, MLP, "exp_gate"},
	{"ffn_up_exps.weight", RES_ROLE_READER, MLP, "exp_up"},
	{"ffn_down_exps.weight", RES_ROLE_WRITER, NONE, "exp_down"},
	{"ffn_gate_inp_shexp.weight", RES_ROLE_READER, MLP, "sh_router"},
	{"ffn_gate_shexp.weight", RES_ROLE_READER, MLP, "sh_gate"},
	{"ffn_up_shexp.weight", RES_ROLE_READER, MLP, "sh_up"},
	{"ffn_down_shexp.weight", RES_ROLE_WRITER, NONE, "sh_down"},
	{"exp_probs_b.bias", RES_ROLE_KEEP, NONE, NULL},
	{"feed_forward.w1.weight", RES_ROLE_READER, MLP, "gate"},
	{"feed_forward.w3.weight", RES_ROLE_READER, MLP, "up"},
	{"feed_forward.w2.weight", RES_ROLE_WRITER, NONE, "down"},
};

/* Model level, after the scheme's prefix (or the whole name). */
static const Rule model_rules[] = {
	{"embed_tokens.weight", RES_ROLE_EMBED, NONE, "embed"},
	{"token_embd.weight", RES_ROLE_EMBED, NONE, "embed"},
	{"tok_embeddings.weight", RES_ROLE_EMBED, NONE, "embed"},
	{"norm.weight", RES_ROLE_NORM, FINAL, "final_norm"},
	{"output_norm.weight", RES_ROLE_NORM, FINAL, "final_norm"},
	{"lm_head.weight", RES_ROLE_READER, FINAL, "head"},
	{"output.weight", RES_ROLE_READER, FINAL, "head"},
	{"freq_cis_real", RES_ROLE_KEEP, NONE, NULL},
	{"freq_cis_imag", RES_ROLE_KEEP, NONE, NULL},
	{"rope_freqs.weight", RES_ROLE_KEEP, NONE, NULL},
	{"rope_factors_long.weight", RES_ROLE_KEEP, NONE, NULL},
	{"rope_factors_short.weight", RES_ROLE_KEEP, NONE, NULL},
};

/* Whether s matches pat ('*': one or more digits, their value in *index
 * when index is not NULL). */
static bool match(const char *pat, const char *s, size_t *index)
{
	while (*pat) {
		if (*pat == '*') {
			if (!isdigit((unsigned char)*s))
				return false;
			if (index)
				*index = (size_t)strtoull(s, NULL, 10);
			while (isdigit((unsigned char)*s))
				s++;
			pat++;
			continue;
		}
		if (*pat++ != *s++)
			return false;
	}
	return !*s;
}

static const Rule *find_rule(const Rule *rules, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (match(rules[i].pat, s, NULL))
			return &rules[i];
	return NULL;
}

const char *residual_family_refusal(const Model *m, char *buf, size_t len)
{
	const ModelInfo *in = model_info(m);
	const Family *f = model_family(m);
	const char *a = in->arch;
	if (!strncmp(a, "olmo2", 5)) {
		snprintf(buf, len, "OLMo2 normalises each sublayer's output (a learned norm after "
			 "attention and the MLP, before the add), which does not commute with a "
			 "rotation of the residual stream");
		return buf;
	}
	if (!strcmp(a, "gemma2") || !strncmp(a, "gemma3", 6)) {
		snprintf(buf, len, "%s has sandwich norms (a learned norm after each sublayer, "
			 "before the add), which do not commute with a rotation of the residual "
			 "stream", a);
		return buf;
	}
	if (f->norm_kind != NORM_RMS) {
		snprintf(buf, len, "%s normalises with LayerNorm, whose mean subtraction does not "
			 "commute with a rotation of the residual stream (SliceGPT's mean-centering "
			 "of the weights would be needed first)", a[0] ? a : "the model");
		return buf;
	}
	return NULL;
}

/* Families the rotation does not apply to, and why. */
static int refuse_family(const Model *m, char *err, size_t errlen)
{
	char why[400];
	if (!residual_family_refusal(m, why, sizeof why))
		return 0;
	snprintf(err, errlen, "%s: --residual: %s", model_path(m), why);
	return -1;
}

/* Layer index and suffix of a per-layer name: true when name is
 * PREFIX LAYERS N "." suffix. */
static bool layer_name(const Family *f, const char *name, size_t *layer, const char **suffix)
{
	size_t np = strlen(f->prefix), nl = strlen(f->names->layers);
	if (strncmp(name, f->prefix, np) || strncmp(name + np, f->names->layers, nl))
		return false;
	const char *s = name + np + nl;
	if (!isdigit((unsigned char)*s))
		return false;
	char *e;
	unsigned long long v = strtoull(s, &e, 10);
	if (*e != '.')
		return false;
	*layer = (size_t)v;
	*suffix = e + 1;
	return true;
}

/* The per-layer norms, found first: a reader names its own. */
typedef struct {
	const TensorRef *attn, *mlp;
} LayerNorms;

static int add(ResPlan *p, const ResTensor *e)
{
	ResTensor *nv = realloc(p->v, (p->n + 1) * sizeof *nv);
	if (!nv)
		return -1;
	p->v = nv;
	p->v[p->n++] = *e;
	return 0;
}

/* Check t's shape against its role. */
static int check_shape(const ResPlan *p, ResTensor *e, char *err, size_t errlen)
{
	const TensorRef *t = e->t;
	size_t D = p->D, last = t->ndim ? t->shape[t->ndim - 1] : 0;
	bool ok = true;
	e->batch = 1;
	switch (e->role) {
	case RES_ROLE_EMBED:
		ok = t->ndim >= 2 && last == D;
		break;
	case RES_ROLE_READER:
		/* one row may be stored as a vector of D (llama.cpp's
		 * ffn_gate_inp_shexp, Qwen2-MoE's shared-expert gate) */
		ok = (t->ndim >= 2 || t->ndim == 1) && last == D;
		break;
	case RES_ROLE_WRITER:
		ok = t->ndim >= 2 && t->shape[t->ndim - 2] == D;
		for (size_t i = 0; ok && i + 2 < t->ndim; i++)
			e->batch *= t->shape[i];
		break;
	case RES_ROLE_WRITER_BIAS:
	case RES_ROLE_NORM:
		ok = t->nelem == D;
		break;
	default:
		break;
	}
	if (!ok) {
		char sh[64];
		tensor_shape_str(t, sh, sizeof sh);
		snprintf(err, errlen, "%s: tensor %s %s: not the shape a %s of a stream of width "
			 "%zu has", t->file, t->name, sh, residual_role_name(e->role), D);
		return -1;
	}
	return 0;
}

int residual_plan_build(const Model *m, ResPlan *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	if (refuse_family(m, err, errlen))
		return -1;
	const ModelInfo *in = model_info(m);
	const Family *f = model_family(m);
	const TensorTable *tt = model_tensor_table(m);
	p->D = in->shape.d_model;
	p->plus_one = f->norm_plus_one;
	LayerNorms *ln = calloc(in->n_layers ? in->n_layers : 1, sizeof *ln);
	if (!ln)
		goto nomem;
	/* pass 0: the norms; pass 1: everything */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < tt->n; i++) {
			const TensorRef *t = &tt->v[i];
			size_t layer = RES_MODEL_LEVEL;
			const char *suf;
			const Rule *r;
			if (layer_name(f, t->name, &layer, &suf)) {
				r = find_rule(layer_rules, sizeof layer_rules / sizeof *layer_rules,
					      suf);
				if (r && layer >= in->n_layers)
					r = NULL;
			} else {
				size_t np = strlen(f->prefix);
				suf = strncmp(t->name, f->prefix, np) ? t->name : t->name + np;
				r = find_rule(model_rules, sizeof model_rules / sizeof *model_rules,
					      suf);
				if (!r)
					r = find_rule(model_rules,
						      sizeof model_rules / sizeof *model_rules,
						      t->name);
			}
			if (!r) {
				snprintf(err, errlen, "%s: --residual: tensor %s: not one whose side "
					 "of the residual stream is known (it may read or write the "
					 "stream); refusing rather than guessing", t->file, t->name);
				goto fail;
			}
			if (r->role == RES_ROLE_KEEP)
				continue;
			if (pass == 0) {
				if (r->role != RES_ROLE_NORM)
					continue;
				const TensorRef **slot = r->group == FINAL ? &p->final_norm
						       : r->group == ATTN ? &ln[layer].attn
									  : &ln[layer].mlp;
				if (*slot) {
					snprintf(err, errlen, "%s: --residual: tensors %s and %s both "
						 "look like the same norm", t->file, (*slot)->name,
						 t->name);
					goto fail;
				}
				*slot = t;
				continue;
			}
			ResTensor e = {t, r->role, NULL, layer, 1, NULL, r->part, RES_NO_EXPERT};
			match(r->pat, suf, &e.expert);
			if (r->role == RES_ROLE_READER) {
				e.norm = r->group == FINAL ? p->final_norm
				       : r->group == ATTN ? ln[layer].attn : ln[layer].mlp;
				if (!e.norm) {
					snprintf(err, errlen, "%s: --residual: tensor %s reads a norm "
						 "the checkpoint does not have (a norm after the "
						 "sublayer, or none)", t->file, t->name);
					goto fail;
				}
			}
			if (r->role == RES_ROLE_EMBED)
				p->embed = t;
			if (check_shape(p, &e, err, errlen))
				goto fail;
			if (add(p, &e))
				goto nomem;
		}
	}
	free(ln);
	ln = NULL;
	if (!p->embed || !p->final_norm) {
		snprintf(err, errlen, "%s: --residual: no %s found", model_path(m),
			 !p->embed ? "token embeddings" : "final norm");
		goto fail;
	}
	p->tied = true;
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].layer == RES_MODEL_LEVEL && p->v[i].role == RES_ROLE_READER)
			p->tied = false;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	free(ln);
	residual_plan_free(p);
	return -1;
}

const ResTensor *residual_plan_match(const ResPlan *p, const ResTensor *e)
{
	for (size_t i = 0; i < p->n; i++) {
		const ResTensor *c = &p->v[i];
		if (c->layer == e->layer && c->expert == e->expert && c->part && e->part &&
		    !strcmp(c->part, e->part))
			return c;
	}
	return NULL;
}

const ResTensor *residual_plan_find(const ResPlan *p, const TensorRef *t)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].t == t)
			return &p->v[i];
	return NULL;
}

void residual_plan_free(ResPlan *p)
{
	free(p->v);
	memset(p, 0, sizeof *p);
}
