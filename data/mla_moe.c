#include "config.h"

#include <stdio.h>
#include <string.h>

#include "data/mla_model.h"

/* DeepSeek's experts as config.json states them (DeepseekV2Config,
 * DeepseekV3Config) and as llama.cpp's deepseek2 metadata does (read in
 * data/gguf.c): which layers are sparse and how the router chooses. */

/* A string key among names (absent: *out untouched): its index, or -1
 * with err listing them. */
static int one_of(const HfKeys *k, json_t *c, const char *key, const char *const *names,
		  size_t n, size_t *out)
{
	json_t *v = json_object_get(c, key);
	if (!v || json_is_null(v))
		return 0;
	const char *s = json_string_value(v);
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	char list[200] = "";
	for (size_t i = 0; i < n; i++)
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
			 names[i]);
	snprintf(k->err, k->errlen, "%s: %s%s: bad value %s (must be one of %s)", k->path,
		 k->prefix, key, s ? s : hfkey_type_name(v), list);
	return -1;
}

int mla_moe_hfconfig_read(json_t *c, const HfKeys *k, Hparams *hp)
{
	static const char *const methods[] = {"greedy", "group_limited_greedy", "noaux_tc"};
	static const char *const scorings[] = {"softmax", "sigmoid"};
	bool v3 = !strcmp(hp->arch, "deepseek_v3");
	size_t E = 0, method = v3 ? 2 : 0, scoring = v3 ? 1 : 0, freq = 1;
	size_t dense = v3 ? 3 : 0, groups = v3 ? 8 : 1, kept = v3 ? 4 : 1;
	double scale = v3 ? 2.5 : 1.0;
	bool norm = v3;
	if (hfkey_whole(k, c, "n_routed_experts", 0, 1u << 20, &E) < 0)
		return -1;
	if (!E)
		return 0;
	size_t topk = 0, shared = 0;
	int rc = hfkey_whole(k, c, "num_experts_per_tok", 1, E, &topk);
	if (rc < 0)
		return -1;
	if (rc != HFKEY_SET) {
		snprintf(k->err, k->errlen, "%s: n_routed_experts is %zu but num_experts_per_tok is "
			 "missing", k->path, E);
		return -1;
	}
	if (hfkey_whole(k, c, "n_shared_experts", 0, 1u << 20, &shared) < 0 ||
	    hfkey_whole(k, c, "moe_intermediate_size", 1, (size_t)1 << 40, &hp->moe_ff) < 0 ||
	    hfkey_whole(k, c, "first_k_dense_replace", 0, HP_MAX_LAYERS, &dense) < 0 ||
	    hfkey_whole(k, c, "moe_layer_freq", 1, HP_MAX_LAYERS, &freq) < 0 ||
	    hfkey_bool(k, c, "norm_topk_prob", &norm) < 0 ||
	    hfkey_number(k, c, "routed_scaling_factor", NUM_POSITIVE, &scale) < 0 ||
	    hfkey_whole(k, c, "n_group", 1, E, &groups) < 0 ||
	    hfkey_whole(k, c, "topk_group", 1, E, &kept) < 0 ||
	    one_of(k, c, "topk_method", methods, 3, &method) ||
	    one_of(k, c, "scoring_func", scorings, 2, &scoring))
		return -1;
	json_t *ng = json_object_get(c, "n_group"), *tg = json_object_get(c, "topk_group");
	hp->mla_groups_default = v3 && (!ng || json_is_null(ng) || !tg || json_is_null(tg));
	hp->n_experts = E;
	hp->experts_per_tok = topk;
	hp->norm_topk_prob = norm;
	hp->shared_expert_ff = shared * hp->moe_ff;
	hp->mla_dense_layers = dense;
	hp->mla_moe_freq = freq;
	hp->mla_shared_experts = shared;
	MoeRoute *r = &hp->mla_route;
	memset(r, 0, sizeof *r);
	r->score = scoring ? MOE_SCORE_SIGMOID : MOE_SCORE_SOFTMAX;
	r->method = method == 0 ? MOE_TOPK_GREEDY : method == 1 ? MOE_TOPK_GROUP_MAX
								: MOE_TOPK_GROUP_TOP2;
	r->n_group = r->method == MOE_TOPK_GREEDY ? 1 : groups;
	r->topk_group = r->method == MOE_TOPK_GREEDY ? 1 : kept;
	r->norm_topk = norm;
	r->scale = scale;
	/* DeepSeek's V2 code scales only the weights it does not renormalise;
	 * its V3 code scales them always */
	r->scale_if_not_norm = !v3;
	return 0;
}

int mla_moe_resolve(const Hparams *hp, const char *where, MlaFamily *f, char *err,
		    size_t errlen)
{
	f->n_experts = hp->n_experts;
	if (!f->n_experts)
		return 0;
	f->experts_per_tok = hp->experts_per_tok;
	f->dense_layers = hp->mla_dense_layers;
	f->moe_freq = hp->mla_moe_freq ? hp->mla_moe_freq : 1;
	f->shared_experts = hp->mla_shared_experts;
	f->route = hp->mla_route;
	f->groups_default = hp->mla_groups_default;
	/* the router is checked by the forward pass only (mla_moe_check):
	 * attention alone needs none of it */
	(void)where;
	(void)err;
	(void)errlen;
	return 0;
}

int mla_moe_check(const MlaFamily *f, const char *where, char *err, size_t errlen)
{
	const char *why;
	if (f->n_experts &&
	    moe_route_check(&f->route, f->n_experts, f->experts_per_tok, &why) != RF_OK) {
		/* HF's DeepseekV3 router views the choice scores as [n_group,
		 * E / n_group] and sums each group's top two, whatever E is:
		 * with its config's defaults on few experts it cannot run
		 * either (a view or topk error), so the file must state them */
		snprintf(err, errlen, "%s: DeepSeek's router (%zu experts, top %zu, %zu groups, %zu "
			 "kept): %s%s", where, f->n_experts, f->experts_per_tok, f->route.n_group,
			 f->route.topk_group, why, f->groups_default
			 ? "; n_group and topk_group are DeepseekV3Config's defaults (config.json "
			   "states not both), on which HF's DeepseekV3 router cannot route these "
			   "experts either: set them in config.json (1 and 1: no group limit)"
			 : "");
		return -1;
	}
	return 0;
}

bool mla_layer_sparse(const MlaFamily *f, size_t i)
{
	return f->n_experts && i >= f->dense_layers && i % (f->moe_freq ? f->moe_freq : 1) == 0;
}

void mla_moe_info(const MlaFamily *f, const Hparams *hp, size_t L, ModelMoe *out)
{
	memset(out, 0, sizeof *out);
	if (!f->n_experts)
		return;
	bool gguf = !strcmp(f->scheme, "gguf");
	out->n_experts = f->n_experts;
	out->experts_per_tok = f->experts_per_tok;
	out->norm_topk_prob = f->route.norm_topk;
	out->expert_ff = hp->moe_ff;
	out->shared_expert_ff = hp->shared_expert_ff ? hp->shared_expert_ff
						     : f->shared_experts * hp->moe_ff;
	out->sparse_step = f->moe_freq;
	for (size_t i = 0; i < L; i++)
		out->n_sparse += mla_layer_sparse(f, i);
	snprintf(out->router, sizeof out->router, "%s",
		 gguf ? ".ffn_gate_inp.weight" : ".mlp.gate.weight");
}
