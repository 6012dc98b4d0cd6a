#include "config.h"

#include <string.h>

#include "core/rope.h"
#include "tui/cli/info_family.h"

static bool in_set(const ModelLayerKind *k, InfoLayerSet set)
{
	switch (set) {
	case INFO_SLIDING: return k->sliding;
	case INFO_FULL: return !k->sliding;
	case INFO_SPARSE: return k->sparse;
	case INFO_DENSE: return !k->sparse;
	}
	return false;
}

void info_layer_ranges(const Model *m, InfoLayerSet set, char *buf, size_t len)
{
	size_t L = model_info(m)->n_layers, k = 0;
	buf[0] = '\0';
	ModelLayerKind lk;
	for (size_t i = 0; i < L;) {
		model_layer_kind(m, i, &lk);
		if (!in_set(&lk, set)) {
			i++;
			continue;
		}
		size_t j = i;
		while (j + 1 < L && !model_layer_kind(m, j + 1, &lk) && in_set(&lk, set))
			j++;
		char one[48];
		if (j == i)
			snprintf(one, sizeof one, "%s%zu", k ? ", " : "", i);
		else
			snprintf(one, sizeof one, "%s%zu-%zu", k ? ", " : "", i, j);
		if (k + strlen(one) + 4 >= len) {
			snprintf(buf + k, len - k, ", ...");
			return;
		}
		k += (size_t)snprintf(buf + k, len - k, "%s", one);
		i = j + 1;
	}
	if (!k)
		snprintf(buf, len, "none");
}

/* min and max of n factors. */
static void factor_range(const double *v, size_t n, double *lo, double *hi)
{
	*lo = *hi = n ? v[0] : 0;
	for (size_t i = 1; i < n; i++) {
		*lo = v[i] < *lo ? v[i] : *lo;
		*hi = v[i] > *hi ? v[i] : *hi;
	}
}

static void text_rope_tables(FILE *f, const ModelInfo *in)
{
	const RopeScaling *s = &in->rope.scaling;
	double lo, hi, lo2, hi2;
	factor_range(s->factors, s->n_pairs, &lo, &hi);
	if (s->kind == ROPE_SCALING_LONGROPE) {
		factor_range(s->long_factors, s->n_pairs, &lo2, &hi2);
		fprintf(f, "longrope    %zu short factors [%g .. %g] while T <= %g, long [%g .. %g] "
			"past it; attention factor %.6g on cos and sin (%s)\n", s->n_pairs, lo, hi,
			s->original_max_pos, lo2, hi2, rope_attention_factor(&in->rope),
			in->rope_table);
		fprintf(f, "            check and the explorer use the factors of their --seq T, "
			"as HF does for a pass of T positions\n");
	} else if (s->kind == ROPE_SCALING_NTK && s->original_max_pos > 0) {
		fprintf(f, "dynamic     the NTK base grows only for T > %g (HF's dynamic rule); check "
			"and the explorer follow their --seq T\n", s->original_max_pos);
	} else if (s->kind == ROPE_SCALING_FREQ_FACTORS) {
		fprintf(f, "rope_freqs  %zu per-pair divisors [%g .. %g] of the frequencies (%s), "
			"as llama.cpp applies them\n", s->n_pairs, lo, hi, in->rope_table);
	}
}

static void text_layers(FILE *f, const Model *m, const ModelInfo *in)
{
	char sl[256], fu[256];
	if (in->n_sliding) {
		info_layer_ranges(m, INFO_SLIDING, sl, sizeof sl);
		info_layer_ranges(m, INFO_FULL, fu, sizeof fu);
		fprintf(f, "attention   sliding %s; full %s\n", sl, fu);
		if (in->theta_local > 0)
			fprintf(f, "rope local  theta %g, no scaling, on the sliding layers (the rope "
				"line holds for the full ones)\n", in->theta_local);
		if (in->sliding_window)
			fprintf(f, "window      %zu tokens on the sliding layers (check and verify "
				"mask them: query m sees keys m - W < n <= m)\n", in->sliding_window);
		else
			fprintf(f, "window      none given: the sliding layers attend to every earlier "
				"token\n");
	}
	if (in->attn_softcap > 0 || in->final_softcap > 0) {
		char a[32] = "none", b[32] = "none";
		if (in->attn_softcap > 0)
			snprintf(a, sizeof a, "%g", in->attn_softcap);
		if (in->final_softcap > 0)
			snprintf(b, sizeof b, "%g", in->final_softcap);
		fprintf(f, "softcap     scores %s, final logits %s (c tanh(x / c); a commuting fold "
			"leaves every score equal, so capped scores stay equal too)\n", a, b);
	}
}

static void text_mrope(FILE *f, const ModelInfo *in)
{
	const size_t *s = in->mrope_section;
	if (!s[0])
		return;
	fprintf(f, "mrope       sections t %zu, h %zu, w %zu: pairs 0-%zu, %zu-%zu, %zu-%zu; "
		"text tokens give all three one position (plain RoPE), and a commuting rotation "
		"(one angle per pair) commutes in every section\n", s[0], s[1], s[2], s[0] - 1, s[0],
		s[0] + s[1] - 1, s[0] + s[1], s[0] + s[1] + s[2] - 1);
}

static void text_experts(FILE *f, const Model *m, const ModelInfo *in)
{
	const ModelMoe *e = &in->moe;
	if (!e->n_experts)
		return;
	char sp[256], de[256], ff[48] = "", sh[48] = "";
	info_layer_ranges(m, INFO_SPARSE, sp, sizeof sp);
	info_layer_ranges(m, INFO_DENSE, de, sizeof de);
	if (e->expert_ff)
		snprintf(ff, sizeof ff, ", expert ff %zu", e->expert_ff);
	if (e->shared_expert_ff)
		snprintf(sh, sizeof sh, ", shared expert ff %zu", e->shared_expert_ff);
	fprintf(f, "experts     %zu, top %zu (%s)%s%s; sparse layers %s, dense %s\n",
		e->n_experts, e->experts_per_tok, e->norm_topk_prob ? "renormalised" :
		"not renormalised", ff, sh, sp, de);
}

void info_family_text(FILE *f, const Model *m)
{
	const ModelInfo *in = model_info(m);
	text_rope_tables(f, in);
	text_layers(f, m, in);
	text_mrope(f, in);
	text_experts(f, m, in);
}

/* ---- JSON --------------------------------------------------------------- */

static json_t *positive_or_null(double v)
{
	return v > 0 ? json_real(v) : json_null();
}

static json_t *numbers(const double *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_real(v[i]));
	return a;
}

static void json_rope(json_t *rope, const ModelInfo *in)
{
	const RopeScaling *s = &in->rope.scaling;
	json_object_set_new(rope, "attention_factor", json_real(rope_attention_factor(&in->rope)));
	json_object_set_new(rope, "local_theta", positive_or_null(in->theta_local));
	json_t *lr = json_null(), *ff = json_null(), *ms = json_null();
	if (s->kind == ROPE_SCALING_LONGROPE)
		lr = json_pack("{s:o, s:o, s:f, s:s}", "short_factor",
			       numbers(s->factors, s->n_pairs), "long_factor",
			       numbers(s->long_factors, s->n_pairs),
			       "original_max_position_embeddings", s->original_max_pos, "source",
			       in->rope_table);
	if (s->kind == ROPE_SCALING_FREQ_FACTORS)
		ff = numbers(s->factors, s->n_pairs);
	if (in->mrope_section[0])
		ms = json_pack("[I, I, I]", (json_int_t)in->mrope_section[0],
			       (json_int_t)in->mrope_section[1], (json_int_t)in->mrope_section[2]);
	json_object_set_new(rope, "longrope", lr);
	json_object_set_new(rope, "rope_freqs", ff);
	json_object_set_new(rope, "mrope_section", ms);
}

static json_t *json_moe(const Model *m, const ModelInfo *in)
{
	const ModelMoe *e = &in->moe;
	if (!e->n_experts)
		return json_null();
	json_t *sparse = json_array();
	ModelLayerKind k;
	for (size_t i = 0; i < in->n_layers; i++)
		if (!model_layer_kind(m, i, &k) && k.sparse)
			json_array_append_new(sparse, json_integer((json_int_t)i));
	json_t *o = json_pack("{s:I, s:I, s:b, s:I, s:I, s:o, s:s}", "experts",
			      (json_int_t)e->n_experts, "experts_per_tok",
			      (json_int_t)e->experts_per_tok, "norm_topk_prob", e->norm_topk_prob,
			      "decoder_sparse_step", (json_int_t)e->sparse_step, "sparse_count",
			      (json_int_t)e->n_sparse, "sparse_layers", sparse, "router", e->router);
	json_object_set_new(o, "expert_intermediate_size",
			    e->expert_ff ? json_integer((json_int_t)e->expert_ff) : json_null());
	json_object_set_new(o, "shared_expert_intermediate_size",
			    e->shared_expert_ff ? json_integer((json_int_t)e->shared_expert_ff)
						: json_null());
	return o;
}

void info_family_json(json_t *doc, const Model *m)
{
	const ModelInfo *in = model_info(m);
	json_t *rope = json_object_get(doc, "rope");
	if (rope)
		json_rope(rope, in);
	json_t *types = json_array();
	ModelLayerKind k;
	for (size_t i = 0; i < in->n_layers; i++) {
		model_layer_kind(m, i, &k);
		json_array_append_new(types, json_string(k.sliding ? "sliding_attention"
								     : "full_attention"));
	}
	json_object_set_new(doc, "layer_types", types);
	json_object_set_new(doc, "sliding_window", in->sliding_window
				    ? json_integer((json_int_t)in->sliding_window) : json_null());
	json_object_set_new(doc, "attn_logit_softcapping", positive_or_null(in->attn_softcap));
	json_object_set_new(doc, "final_logit_softcapping", positive_or_null(in->final_softcap));
	json_object_set_new(doc, "moe", json_moe(m, in));
}
