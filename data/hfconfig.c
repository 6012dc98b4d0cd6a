#include "config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data/hfconfig.h"

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

/* A number key (integer or real), or 0 when absent. -1 when malformed. */
static int get_num(json_t *c, const char *key, double *out)
{
	json_t *j = json_object_get(c, key);
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_number(j) || !isfinite(json_number_value(j)))
		return -1;
	*out = json_number_value(j);
	return 0;
}

static int read_scaling(json_t *rs, const char *path, Hparams *hp, char *err,
			size_t errlen)
{
	RopeScaling *s = &hp->scaling;
	if (!rs || json_is_null(rs))
		return 0;
	if (!json_is_object(rs)) {
		snprintf(err, errlen, "%s: rope_scaling is not an object", path);
		return -1;
	}
	json_t *t = json_object_get(rs, "rope_type");
	if (!json_is_string(t))
		t = json_object_get(rs, "type");
	if (!json_is_string(t)) {
		snprintf(err, errlen, "%s: rope_scaling has no type", path);
		return -1;
	}
	const char *ty = json_string_value(t);
	if (!strcmp(ty, "default"))
		return 0;
	if (!strcmp(ty, "linear"))
		s->kind = ROPE_SCALING_LINEAR;
	else if (!strcmp(ty, "dynamic"))
		s->kind = ROPE_SCALING_NTK;
	else if (!strcmp(ty, "yarn"))
		s->kind = ROPE_SCALING_YARN;
	else if (!strcmp(ty, "llama3"))
		s->kind = ROPE_SCALING_LLAMA3;
	else {
		snprintf(err, errlen, "%s: rope_scaling type '%.40s' is not supported "
			 "(linear, dynamic, yarn, llama3)", path, ty);
		return -1;
	}
	int bad = get_num(rs, "factor", &s->factor);
	bad |= get_num(rs, "original_max_position_embeddings", &s->original_max_pos);
	bad |= get_num(rs, "low_freq_factor", &s->low_freq_factor);
	bad |= get_num(rs, "high_freq_factor", &s->high_freq_factor);
	bad |= get_num(rs, "beta_fast", &s->beta_fast);
	bad |= get_num(rs, "beta_slow", &s->beta_slow);
	bad |= get_num(rs, "attention_factor", &s->attention_factor);
	if (bad || !(s->factor > 0)) {
		snprintf(err, errlen, "%s: rope_scaling needs a positive numeric factor", path);
		return -1;
	}
	return 0;
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
	static const char *nums[] = {"rope_theta", "rotary_emb_base", "partial_rotary_factor",
				     "rotary_pct", "rms_norm_eps", "layer_norm_eps",
				     "layer_norm_epsilon", "query_pre_attn_scalar",
				     "rope_local_base_freq"};
	double v[9] = {0};
	for (size_t i = 0; i < 9; i++) {
		if (get_num(c, nums[i], &v[i])) {
			snprintf(err, errlen, "%s: bad value of key '%s'", path, nums[i]);
			goto out;
		}
	}
	hp->theta = v[0] > 0 ? v[0] : v[1];
	hp->partial_rotary = v[2] > 0 ? v[2] : v[3];
	hp->norm_eps = v[4] > 0 ? v[4] : v[5] > 0 ? v[5] : v[6];
	hp->qk_norm_eps = hp->norm_eps;
	hp->query_pre_attn_scalar = v[7];
	hp->theta_local = v[8];
	if (hp->partial_rotary < 0 || hp->partial_rotary > 1) {
		snprintf(err, errlen, "%s: partial rotary fraction %g is not in (0, 1]", path,
			 hp->partial_rotary);
		goto out;
	}
	if (read_scaling(json_object_get(c, "rope_scaling"), path, hp, err, errlen))
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
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		snprintf(err, errlen, "%s: line %d: not valid JSON: %s", path, je.line, je.text);
		return -1;
	}
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
