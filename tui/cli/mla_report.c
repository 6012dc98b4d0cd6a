#include "config.h"

#include "tui/cli/mla_report.h"

json_t *mla_dims_json(const MlaShape *s, double softmax_scale)
{
	json_t *o = json_object();
	json_object_set_new(o, "kv_lora_rank", json_integer((json_int_t)s->kv_lora_rank));
	json_object_set_new(o, "q_lora_rank", s->q_lora_rank
			    ? json_integer((json_int_t)s->q_lora_rank) : json_null());
	json_object_set_new(o, "qk_nope_head_dim", json_integer((json_int_t)s->qk_nope_dim));
	json_object_set_new(o, "qk_rope_head_dim", json_integer((json_int_t)s->qk_rope_dim));
	json_object_set_new(o, "v_head_dim", json_integer((json_int_t)s->v_head_dim));
	json_object_set_new(o, "softmax_scale", json_real(softmax_scale));
	return o;
}

void mla_dims_text(FILE *f, const char *label, const MlaShape *s, double softmax_scale)
{
	char q[64];
	if (s->q_lora_rank)
		snprintf(q, sizeof q, "q_lora_rank %zu", s->q_lora_rank);
	else
		snprintf(q, sizeof q, "q_proj (no q latent)");
	fprintf(f, "%sDeepSeek MLA: kv_lora_rank %zu, %s, qk_nope_head_dim %zu, "
		"qk_rope_head_dim %zu (one RoPE key shared by all heads), v_head_dim %zu, "
		"softmax scale %.6g\n", label, s->kv_lora_rank, q, s->qk_nope_dim, s->qk_rope_dim,
		s->v_head_dim, softmax_scale);
}
