#include "config.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "data/hfconfig.h"
#include "data/mla_model.h"
#include "data/hfconfig_keys.h"
#include "data/hfconfig_layers.h"
#include "data/jsonfile.h"

/* A positive integer key, or 0 when absent or null. -1 when malformed. */
static int get_size(json_t *c, const char *key, size_t *out)
{
	json_t *j = json_object_get(c, key);
	*out = 0;
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_integer(j) || json_integer_value(j) <= 0 ||
	    json_integer_value(j) > (json_int_t)1 << 40)
		return -1;
	*out = (size_t)json_integer_value(j);
	return 0;
}

/* Qwen2-VL's M-RoPE sections: three counts of pairs (temporal, height,
 * width), read whatever the rule's type ("mrope", or "default" as newer
 * configs write it). */
static int read_mrope(json_t *rs, const HfKeys *k, Hparams *hp)
{
	size_t sec[3], n = 0;
	int rc = hfkey_wholes(k, rs, "mrope_section", 3, 1, LAYER_MAX_HEAD_DIM / 2, sec, &n);
	if (rc < 0)
		return -1;
	if (rc == HFKEY_SET && n != 3) {
		snprintf(k->err, k->errlen, "%s: rope_scaling.mrope_section: %zu entries (must be "
			 "three: temporal, height, width)", k->path, n);
		return -1;
	}
	if (rc == HFKEY_SET)
		memcpy(hp->mrope_section, sec, sizeof sec);
	return 0;
}

/* Phi-3's longrope (HF _compute_longrope_parameters): short_factor and
 * long_factor, one divisor per rotary pair (their count is checked
 * against the rotary dim in families.c); the switch at
 * original_max_position_embeddings (the top-level key, as Phi3Config
 * holds it, else rope_scaling's, else max_position_embeddings); the
 * attention factor's factor is max / original when the top-level key is
 * there, else rope_scaling.factor. */
static int read_longrope(json_t *c, json_t *rs, const HfKeys *k, Hparams *hp)
{
	RopeScaling *s = &hp->scaling;
	static const char *keys[2] = {"short_factor", "long_factor"};
	double *outs[2] = {s->factors, s->long_factors};
	size_t n[2] = {0, 0};
	for (int i = 0; i < 2; i++) {
		int rc = hfkey_numbers(k, rs, keys[i], ROPE_MAX_TABLE_PAIRS, outs[i], &n[i]);
		if (rc < 0)
			return -1;
		if (rc != HFKEY_SET || n[i] == 0) {
			snprintf(k->err, k->errlen, "%s: rope_scaling.%s: %s (longrope needs one "
				 "factor per rotary pair)", k->path, keys[i],
				 rc == HFKEY_SET ? "empty" : "missing");
			return -1;
		}
	}
	if (n[1] != n[0]) {
		snprintf(k->err, k->errlen, "%s: rope_scaling.long_factor: %zu entries, but "
			 "short_factor has %zu", k->path, n[1], n[0]);
		return -1;
	}
	s->n_pairs = n[0];
	snprintf(hp->scaling_table, sizeof hp->scaling_table, "rope_scaling.short_factor");
	HfKeys top = *k;
	top.prefix = "";
	double orig = 0;
	int rc = hfkey_number(&top, c, "original_max_position_embeddings", NUM_POSITIVE, &orig);
	if (rc < 0)
		return -1;
	bool top_orig = rc == HFKEY_SET;
	if (!top_orig)
		orig = s->original_max_pos;    /* rope_scaling's own, read already */
	double maxpos = (double)hp->max_pos;
	if (!(orig > 0))
		orig = maxpos;
	if (!(orig > 0)) {
		snprintf(k->err, k->errlen, "%s: longrope needs original_max_position_embeddings or "
			 "max_position_embeddings", k->path);
		return -1;
	}
	s->original_max_pos = orig;
	if (top_orig && maxpos > 0)
		s->factor = maxpos / orig;
	if (!(s->factor > 0) && s->attention_factor > 0)
		s->factor = 1.0;     /* unused: the attention factor is given */
	if (!(s->factor > 0)) {
		snprintf(k->err, k->errlen, "%s: rope_scaling: longrope needs a factor, an "
			 "attention_factor or original_max_position_embeddings", k->path);
		return -1;
	}
	return 0;
}

static int read_scaling(json_t *c, json_t *rs, const char *path, Hparams *hp, char *err,
			size_t errlen)
{
	RopeScaling *s = &hp->scaling;
	HfKeys k = {path, "rope_scaling.", err, errlen};
	if (!rs || json_is_null(rs))
		return 0;
	if (!json_is_object(rs)) {
		snprintf(err, errlen, "%s: rope_scaling is not an object", path);
		return -1;
	}
	if (read_mrope(rs, &k, hp))
		return -1;
	json_t *t = json_object_get(rs, "rope_type");
	if (!json_is_string(t))
		t = json_object_get(rs, "type");
	if (!json_is_string(t)) {
		snprintf(err, errlen, "%s: rope_scaling has no type", path);
		return -1;
	}
	const char *ty = json_string_value(t);
	/* "mrope" is the default rule on M-RoPE positions (Qwen2VLConfig);
	 * "su" is longrope's old name (Phi3Config renames it). */
	if (!strcmp(ty, "default") || !strcmp(ty, "mrope"))
		return 0;
	if (!strcmp(ty, "linear"))
		s->kind = ROPE_SCALING_LINEAR;
	else if (!strcmp(ty, "dynamic"))
		s->kind = ROPE_SCALING_NTK;
	else if (!strcmp(ty, "yarn"))
		s->kind = ROPE_SCALING_YARN;
	else if (!strcmp(ty, "llama3"))
		s->kind = ROPE_SCALING_LLAMA3;
	else if (!strcmp(ty, "longrope") || !strcmp(ty, "su"))
		s->kind = ROPE_SCALING_LONGROPE;
	else {
		snprintf(err, errlen, "%s: rope_scaling type '%.40s' is not supported "
			 "(linear, dynamic, yarn, llama3, longrope)", path, ty);
		return -1;
	}
	static const char *keys[] = {"factor", "original_max_position_embeddings",
				     "low_freq_factor", "high_freq_factor", "beta_fast",
				     "beta_slow", "attention_factor"};
	double *outs[] = {&s->factor, &s->original_max_pos, &s->low_freq_factor,
			  &s->high_freq_factor, &s->beta_fast, &s->beta_slow,
			  &s->attention_factor};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (hfkey_number(&k, rs, keys[i], NUM_POSITIVE, outs[i]) < 0)
			return -1;
	if (s->kind == ROPE_SCALING_LONGROPE)
		return read_longrope(c, rs, &k, hp);
	/* dynamic stretches past max_position_embeddings (HF's
	 * _compute_dynamic_ntk_parameters ignores rope_scaling's original) */
	if (s->kind == ROPE_SCALING_NTK)
		s->original_max_pos = (double)hp->max_pos;
	if (!(s->factor > 0)) {
		snprintf(err, errlen, "%s: rope_scaling needs a positive numeric factor", path);
		return -1;
	}
	/* llama3 blends between the two wavelengths old/low and old/high
	 * (defaults 1 and 4): HF requires high > low. */
	double lf = s->low_freq_factor > 0 ? s->low_freq_factor : 1.0;
	double hf = s->high_freq_factor > 0 ? s->high_freq_factor : 4.0;
	if (s->kind == ROPE_SCALING_LLAMA3 && !(hf > lf)) {
		snprintf(err, errlen, "%s: rope_scaling.high_freq_factor: bad value %g (must exceed "
			 "low_freq_factor %g)", path, hf, lf);
		return -1;
	}
	return 0;
}

/* The model_type values whose conventions ropefold knows: HF's
 * rotate_half RoPE, the tensor names families.c finds, RMSNorm or
 * LayerNorm as stored (Gemma's 1 + w below). Any other model_type is read
 * the same way, and model.c notes what was assumed. */
static bool known_model_type(const char *t)
{
	static const char *known[] = {
		"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
		"qwen2_vl", "qwen2_vl_text", "qwen2_5_vl", "qwen2_5_vl_text", "olmo", "olmo2",
		"gemma", "gemma2", "gemma3", "gemma3_text", "phi3", "gpt_neox",
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (!strcmp(t, known[i]))
			return true;
	return false;
}

static int hfconfig_from_json(json_t *root, const char *path, Hparams *hp, char *err,
			      size_t errlen)
{
	int rc = -1;
	json_t *c = root;
	if (!json_is_object(c)) {
		snprintf(err, errlen, "%s: not a JSON object", path);
		goto out;
	}
	/* Multimodal wrappers (Gemma 3) keep the language model in text_config. */
	json_t *tc = json_object_get(c, "text_config");
	if (json_is_object(tc) && json_object_get(tc, "hidden_size"))
		c = tc;
	snprintf(hp->source, sizeof hp->source, "config.json");
	json_t *mt = json_object_get(c, "model_type");
	if (!json_is_string(mt))
		mt = json_object_get(root, "model_type");
	if (json_is_string(mt))
		snprintf(hp->arch, sizeof hp->arch, "%s", json_string_value(mt));
	hp->arch_known = known_model_type(hp->arch);

	static const char *required[] = {"hidden_size", "num_attention_heads",
					 "num_hidden_layers"};
	size_t *req_out[] = {&hp->d_model, &hp->n_heads, &hp->n_layers};
	for (size_t i = 0; i < 3; i++) {
		if (get_size(c, required[i], req_out[i]) || !*req_out[i]) {
			snprintf(err, errlen, "%s: missing or bad key '%s'", path, required[i]);
			goto out;
		}
	}
	static const char *optional[] = {"num_key_value_heads", "head_dim", "vocab_size",
					 "sliding_window_pattern"};
	size_t *opt_out[] = {&hp->n_kv_heads, &hp->head_dim, &hp->vocab, &hp->sliding_pattern};
	for (size_t i = 0; i < 4; i++) {
		if (get_size(c, optional[i], opt_out[i])) {
			snprintf(err, errlen, "%s: bad value of key '%s'", path, optional[i]);
			goto out;
		}
	}
	/* Every one of these, when present, must hold a sensible number:
	 * 0 below means absent, and the family defaults apply. */
	static const struct {
		const char *key;
		NumRule rule;
	} nums[] = {
		{"rope_theta", NUM_POSITIVE},           {"rotary_emb_base", NUM_POSITIVE},
		{"partial_rotary_factor", NUM_FRACTION}, {"rotary_pct", NUM_FRACTION},
		{"rms_norm_eps", NUM_POSITIVE},         {"layer_norm_eps", NUM_POSITIVE},
		{"layer_norm_epsilon", NUM_POSITIVE},   {"query_pre_attn_scalar", NUM_POSITIVE},
		{"rope_local_base_freq", NUM_POSITIVE},
	};
	double v[9] = {0};
	HfKeys keys = {path, "", err, errlen};
	for (size_t i = 0; i < 9; i++)
		if (hfkey_number(&keys, c, nums[i].key, nums[i].rule, &v[i]) < 0)
			goto out;
	if (hfkey_whole(&keys, c, "max_position_embeddings", 1, (size_t)1 << 40,
			&hp->max_pos) < 0)
		goto out;
	hp->theta = v[0] > 0 ? v[0] : v[1];
	hp->partial_rotary = v[2] > 0 ? v[2] : v[3];
	hp->norm_eps = v[4] > 0 ? v[4] : v[5] > 0 ? v[5] : v[6];
	hp->qk_norm_eps = hp->norm_eps;
	hp->query_pre_attn_scalar = v[7];
	/* Gemma2Config's and Gemma3TextConfig's default */
	if (!(v[7] > 0) && (!strcmp(hp->arch, "gemma2") || !strncmp(hp->arch, "gemma3", 6)) &&
	    !json_object_get(c, "query_pre_attn_scalar"))
		hp->query_pre_attn_scalar = 256;
	hp->theta_local = v[8];
	if (read_scaling(c, json_object_get(c, "rope_scaling"), path, hp, err, errlen) ||
	    hfconfig_read_layers(c, &keys, hp) || mla_hfconfig_read(c, &keys, hp))
		goto out;
	/* HF applies rotate_half in every family: pairs (i, i + r/2). */
	hp->layout_set = true;
	hp->layout = ROPE_HALF;
	if (!strncmp(hp->arch, "gemma", 5)) {
		hp->norm_plus_one = true;
		hp->embed_scale_sqrt_d = true;
	}
	rc = 0;
out:
	return rc;
}

int hfconfig_read(const char *path, Hparams *hp, char *err, size_t errlen)
{
	json_t *root;
	if (jsonfile_load(path, JSONFILE_CONFIG_MAX, JSON_REJECT_DUPLICATES, &root, err, errlen))
		return -1;
	int rc = hfconfig_from_json(root, path, hp, err, errlen);
	json_decref(root);
	return rc;
}

int hfconfig_read_string(const char *text, size_t len, const char *name, Hparams *hp,
			 char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		snprintf(err, errlen, "%s: line %d: not valid JSON: %s", name, je.line, je.text);
		return -1;
	}
	int rc = hfconfig_from_json(root, name, hp, err, errlen);
	json_decref(root);
	return rc;
}
