#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/hfconfig_layers.h"

/* Which layers slide when the config writes no layer_types: the rule of
 * the family's HF config class (its layer_types default); a model_type
 * not listed is read as Mistral is. */
typedef enum {
	SLIDE_NEVER = 0,   /* no sliding window in the family's code */
	SLIDE_ALL,         /* Mistral, Mixtral, Phi-3: every layer, if a window */
	SLIDE_QWEN,        /* use_sliding_window and layer >= max_window_layers */
	SLIDE_PATTERN      /* Gemma 2/3: layer l slides unless (l + 1) % n == 0 */
} SlideRule;

static const struct {
	const char *model_type;
	SlideRule rule;
	size_t pattern;        /* SLIDE_PATTERN's n unless sliding_window_pattern */
	size_t window;         /* the class default of sliding_window, 0 = none */
} families[] = {
	{"llama", SLIDE_NEVER, 0, 0},        {"gemma", SLIDE_NEVER, 0, 0},
	{"olmo", SLIDE_NEVER, 0, 0},         {"olmo2", SLIDE_NEVER, 0, 0},
	{"gpt_neox", SLIDE_NEVER, 0, 0},
	{"mistral", SLIDE_ALL, 0, 0},        {"mixtral", SLIDE_ALL, 0, 0},
	{"phi3", SLIDE_ALL, 0, 0},           {"qwen2", SLIDE_QWEN, 0, 0},
	{"qwen2_moe", SLIDE_QWEN, 0, 0},     {"qwen3", SLIDE_QWEN, 0, 0},
	{"qwen3_moe", SLIDE_QWEN, 0, 0},     {"qwen2_vl", SLIDE_QWEN, 0, 0},
	{"qwen2_vl_text", SLIDE_QWEN, 0, 0}, {"qwen2_5_vl", SLIDE_QWEN, 0, 0},
	{"qwen2_5_vl_text", SLIDE_QWEN, 0, 0},
	{"gemma2", SLIDE_PATTERN, 2, 4096},  {"gemma3", SLIDE_PATTERN, 6, 4096},
	{"gemma3_text", SLIDE_PATTERN, 6, 4096},
};

/* Qwen2Config's max_window_layers when the config has none. */
#define QWEN_MAX_WINDOW_LAYERS 28

/* The layer_types list: one "sliding_attention" or "full_attention" per
 * layer into bits. HFKEY_* or -1. */
static int read_layer_types(json_t *c, const HfKeys *k, size_t L, unsigned char *bits)
{
	json_t *a = json_object_get(c, "layer_types");
	if (!a || json_is_null(a))
		return a ? HFKEY_NULL : HFKEY_ABSENT;
	if (!json_is_array(a)) {
		snprintf(k->err, k->errlen, "%s: layer_types: bad value of type %s (must be an array "
			 "of strings)", k->path, hfkey_type_name(a));
		return -1;
	}
	if (json_array_size(a) != L) {
		snprintf(k->err, k->errlen, "%s: layer_types: %zu entries, but num_hidden_layers is "
			 "%zu", k->path, json_array_size(a), L);
		return -1;
	}
	size_t i;
	json_t *e;
	json_array_foreach(a, i, e) {
		const char *t = json_is_string(e) ? json_string_value(e) : NULL;
		if (t && !strcmp(t, "sliding_attention")) {
			bits[i] |= HP_LAYER_SLIDING;
		} else if (!t || strcmp(t, "full_attention")) {
			if (t)
				snprintf(k->err, k->errlen, "%s: layer_types[%zu]: '%.40s' is not a layer "
					 "type ropefold knows (sliding_attention, full_attention)", k->path,
					 i, t);
			else
				snprintf(k->err, k->errlen, "%s: layer_types[%zu]: bad value of type %s "
					 "(must be a string)", k->path, i, hfkey_type_name(e));
			return -1;
		}
	}
	return HFKEY_SET;
}

/* The window and which layers use it. */
static int read_windows(json_t *c, const HfKeys *k, Hparams *hp, unsigned char *bits)
{
	size_t L = hp->n_layers, fi = sizeof families / sizeof families[0];
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
		if (!strcmp(hp->arch, families[i].model_type))
			fi = i;
	SlideRule rule = fi < sizeof families / sizeof families[0] ? families[fi].rule
								    : SLIDE_ALL;
	size_t window = 0, max_window = QWEN_MAX_WINDOW_LAYERS;
	bool use = false;
	int rc = hfkey_whole(k, c, "sliding_window", 0, (size_t)1 << 40, &window);
	if (rc < 0 || hfkey_bool(k, c, "use_sliding_window", &use) < 0 ||
	    hfkey_whole(k, c, "max_window_layers", 0, (size_t)1 << 40, &max_window) < 0)
		return -1;
	if (rc == HFKEY_ABSENT && rule == SLIDE_PATTERN)
		window = families[fi].window;
	if (rule == SLIDE_QWEN && !use)
		window = 0;     /* Qwen2Config: sliding_window only with use_sliding_window */
	/* sliding_window_pattern is read (and checked) by hfconfig.c */
	size_t pattern = hp->sliding_pattern ? hp->sliding_pattern
			 : rule == SLIDE_PATTERN ? families[fi].pattern : 0;
	int lt = read_layer_types(c, k, L, bits);
	if (lt < 0)
		return -1;
	if (lt != HFKEY_SET) {
		for (size_t l = 0; l < L; l++) {
			bool slide = (rule == SLIDE_ALL && window) ||
				     (rule == SLIDE_QWEN && use && l >= max_window) ||
				     (rule == SLIDE_PATTERN && pattern && (l + 1) % pattern);
			if (slide)
				bits[l] |= HP_LAYER_SLIDING;
		}
	}
	/* A layer of the sliding kind without a window attends fully, as HF's
	 * masks do with sliding_window None (Gemma 3's local RoPE still
	 * follows the kind). */
	hp->sliding_window = window;
	return 0;
}

/* attn_logit_softcapping and final_logit_softcapping: Gemma2Config's 50
 * and 30 when absent, none when null (Gemma 3's class default). */
static int read_softcaps(json_t *c, const HfKeys *k, Hparams *hp)
{
	bool gemma2 = !strcmp(hp->arch, "gemma2");
	static const char *keys[2] = {"attn_logit_softcapping", "final_logit_softcapping"};
	double *outs[2] = {&hp->attn_softcap, &hp->final_softcap};
	const double gemma2_defaults[2] = {50.0, 30.0};
	for (int i = 0; i < 2; i++) {
		int rc = hfkey_number(k, c, keys[i], NUM_POSITIVE, outs[i]);
		if (rc < 0)
			return -1;
		if (rc == HFKEY_ABSENT && gemma2)
			*outs[i] = gemma2_defaults[i];
	}
	return 0;
}

/* The experts: how many, how many per token, the router's normalisation,
 * the shared expert, and which layers are sparse (Mixtral: every layer;
 * Qwen-MoE: those not in mlp_only_layers with (l + 1) % step == 0). */
static int read_experts(json_t *c, const HfKeys *k, Hparams *hp, unsigned char *bits)
{
	size_t L = hp->n_layers, E = 0;
	bool mixtral = !strcmp(hp->arch, "mixtral");
	const char *ekey = json_object_get(c, "num_local_experts") ? "num_local_experts"
								   : "num_experts";
	if (hfkey_whole(k, c, ekey, 0, 1u << 20, &E) < 0)
		return -1;
	if (!E)
		return 0;
	size_t topk = 0, step = 1;
	int rc = hfkey_whole(k, c, "num_experts_per_tok", 1, E, &topk);
	if (rc < 0)
		return -1;
	if (rc != HFKEY_SET) {
		snprintf(k->err, k->errlen, "%s: %s is %zu but num_experts_per_tok is missing",
			 k->path, ekey, E);
		return -1;
	}
	hp->n_experts = E;
	hp->experts_per_tok = topk;
	hp->norm_topk_prob = mixtral;   /* Mixtral always renormalises */
	if ((!mixtral && hfkey_bool(k, c, "norm_topk_prob", &hp->norm_topk_prob) < 0) ||
	    hfkey_whole(k, c, "moe_intermediate_size", 1, (size_t)1 << 40, &hp->moe_ff) < 0 ||
	    hfkey_whole(k, c, "shared_expert_intermediate_size", 0, (size_t)1 << 40,
			&hp->shared_expert_ff) < 0 ||
	    hfkey_whole(k, c, "decoder_sparse_step", 1, (size_t)1 << 20, &step) < 0)
		return -1;
	if (mixtral && hfkey_whole(k, c, "intermediate_size", 1, (size_t)1 << 40, &hp->moe_ff) < 0)
		return -1;
	hp->sparse_step = step;
	size_t *dense = malloc((L ? L : 1) * sizeof *dense);
	if (!dense) {
		snprintf(k->err, k->errlen, "%s: out of memory", k->path);
		return -1;
	}
	size_t n = 0;
	rc = hfkey_wholes(k, c, "mlp_only_layers", L, 0, L - 1, dense, &n);
	if (rc < 0) {
		free(dense);
		return -1;
	}
	for (size_t l = 0; l < L; l++)
		if ((l + 1) % step == 0)
			bits[l] |= HP_LAYER_SPARSE;
	for (size_t i = 0; i < n; i++)
		bits[dense[i]] &= (unsigned char)~HP_LAYER_SPARSE;
	free(dense);
	return 0;
}

int hfconfig_read_layers(json_t *c, const HfKeys *k, Hparams *hp)
{
	size_t L = hp->n_layers;
	if (L > HP_MAX_LAYERS)
		return 0;     /* families.c refuses the count */
	unsigned char *bits = calloc(L ? L : 1, 1);
	if (!bits) {
		snprintf(k->err, k->errlen, "%s: out of memory", k->path);
		return -1;
	}
	if (read_windows(c, k, hp, bits) || read_softcaps(c, k, hp) ||
	    read_experts(c, k, hp, bits)) {
		free(bits);
		return -1;
	}
	bool any = false;
	for (size_t l = 0; l < L && !any; l++)
		any = bits[l] != 0;
	free(hp->layer_bits);
	hp->layer_bits = any ? bits : NULL;
	if (!any)
		free(bits);
	return 0;
}
