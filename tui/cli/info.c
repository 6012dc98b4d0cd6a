#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/rope.h"
#include "data/mla_model.h"
#include "data/model.h"
#include "tui/cli/info.h"
#include "tui/cli/mla_report.h"
#include "tui/cli/info_family.h"
#include "tui/shared/options.h"

static void info_help(void)
{
	printf("usage: ropefold info PATH [--json]\n\n"
	       "What a checkpoint holds: format, architecture, layers, heads, kv heads,\n"
	       "head dim, the RoPE layout its runtime applies (HF safetensors: half-split;\n"
	       "llama2.c: interleaved; GGUF: llama.cpp's rope type of the architecture),\n"
	       "theta, rotary dim, scaling, biases, QK-norm, dtype (of layer 0's W_q),\n"
	       "the dtype mixture (tensors per dtype, of the whole file and of every\n"
	       "layer's attention weights: a quantized GGUF keeps some at other types)\n"
	       "and the attention tensor names of layer 0. PATH is a .safetensors file\n"
	       "(with config.json beside it), an HF folder (sharded too), a .gguf file\n"
	       "or a llama2.c .bin.\n"
	       "Exit 0, or 2 when PATH is not a readable checkpoint.\n\n");
	opts_print_help(stdout, OPT_JSON);
}

/* {"Q4_K": 190, "Q6_K": 33, ...}, most tensors first. */
static json_t *mix_json(const DtypeMix *m)
{
	json_t *o = json_object();
	for (size_t i = 0; i < m->n; i++)
		json_object_set_new(o, m->v[i].name, json_integer((json_int_t)m->v[i].count));
	return o;
}

/* The attention weights' mixture by role: q, k, v, o (fused: qkv, o). */
static json_t *attn_mix_json(const ModelInfo *in)
{
	json_t *o = json_object();
	if (in->fused_qkv) {
		json_object_set_new(o, "qkv", mix_json(&in->attn_dtypes[0]));
	} else {
		json_object_set_new(o, "q", mix_json(&in->attn_dtypes[0]));
		json_object_set_new(o, "k", mix_json(&in->attn_dtypes[1]));
		json_object_set_new(o, "v", mix_json(&in->attn_dtypes[2]));
	}
	json_object_set_new(o, "o", mix_json(&in->attn_dtypes[3]));
	return o;
}

static json_t *info_json(const ModelInfo *in)
{
	char scaling[64];
	rope_scaling_format(&in->rope.scaling, scaling, sizeof scaling);
	json_t *rope = json_pack("{s:s, s:f, s:I, s:s}", "layout",
				 rope_layout_name(in->rope.layout), "theta", in->rope.theta,
				 "rotary_dim", (json_int_t)in->rope.rotary_dim, "scaling", scaling);
	json_t *tensors = json_pack("{s:s, s:s, s:s, s:s}", "q", in->tensor_q, "k",
				    in->tensor_k, "v", in->tensor_v, "o", in->tensor_o);
	json_t *doc = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:s, s:o, s:o, s:b, "
			 "s:b, s:b, s:b, s:o}",
			 "format", model_format_name(in->format), "arch", in->arch, "layers",
			 (json_int_t)in->n_layers, "d_model", (json_int_t)in->shape.d_model,
			 "heads", (json_int_t)in->shape.n_heads, "kv_heads",
			 (json_int_t)in->shape.n_kv_heads, "head_dim",
			 (json_int_t)in->shape.head_dim, "vocab", (json_int_t)in->vocab, "rope",
			 rope, "dtype", dtype_name(in->dtype), "dtypes", mix_json(&in->dtypes),
			 "attention_dtypes", attn_mix_json(in), "biases", in->biases, "o_bias", in->o_bias,
			 "qk_norm", in->qk_norm, "fused_qkv", in->fused_qkv, "tensors", tensors);
	/* DeepSeek MLA: its dims under their HF names (null without MLA) */
	json_t *mla = in->mla ? mla_dims_json(&in->mla_shape, in->mla_score_scale) : json_null();
	if (in->mla)
		json_object_set_new(mla, "kv_b", json_string(mla_kv_b_layout_name(in->mla_kv_b)));
	json_object_set_new(doc, "mla", mla);
	return doc;
}

static void info_text(const char *path, const ModelInfo *in)
{
	char scaling[64];
	rope_scaling_format(&in->rope.scaling, scaling, sizeof scaling);
	size_t H = in->shape.n_heads, G = in->shape.n_kv_heads;
	printf("file        %s\n", path);
	printf("format      %s\n", model_format_name(in->format));
	printf("arch        %s\n", in->arch);
	printf("layers      %zu\n", in->n_layers);
	printf("d_model     %zu\n", in->shape.d_model);
	printf("heads       %zu query, %zu kv (%s)\n", H, G,
	       G == H ? "MHA" : G == 1 ? "MQA" : "GQA");
	printf("head_dim    %zu\n", in->shape.head_dim);
	if (in->mla)
		mla_dims_text(stdout, "mla         ", &in->mla_shape, in->mla_score_scale);
	if (in->mla && in->mla_kv_b != MLA_KV_B_WHOLE)
		printf("mla kv_b    split as llama.cpp writes it: attn_k_b (per head, k_nope rows "
		       "transposed) and attn_v_b%s\n",
		       in->mla_kv_b == MLA_KV_B_BOTH ? ", beside attn_kv_b" : "");
	printf("rope        %s, theta %g, rotary dim %zu%s, scaling %s\n",
	       rope_layout_name(in->rope.layout), in->rope.theta, in->rope.rotary_dim,
	       in->rope.rotary_dim < in->shape.head_dim ? " (partial)" : "", scaling);
	printf("dtype       %s\n", dtype_name(in->dtype));
	char mix[4][256], all[512];
	dtype_mix_format(&in->dtypes, all, sizeof all);
	printf("dtypes      %s (%zu tensors)\n", all, in->dtypes.total);
	for (int k = 0; k < 4; k++)
		dtype_mix_format(&in->attn_dtypes[k], mix[k], sizeof mix[k]);
	if (in->fused_qkv)
		printf("            attention qkv %s; o %s\n", mix[0], mix[3]);
	else
		printf("            attention q %s; k %s; v %s; o %s\n", mix[0], mix[1], mix[2],
		       mix[3]);
	printf("biases      q/k/v %s, o %s\n", in->biases ? "yes" : "no", in->o_bias ? "yes" : "no");
	printf("qk_norm     %s\n", in->qk_norm ? "yes" : "no");
	if (in->vocab)
		printf("vocab       %zu (token embeddings present)\n", in->vocab);
	else
		printf("vocab       none (no token embeddings)\n");
	if (in->fused_qkv) {
		printf("tensors     qkv %s\n", in->tensor_q);
	} else {
		printf("tensors     q %s\n", in->tensor_q);
		printf("            k %s\n", in->tensor_k);
		printf("            v %s\n", in->tensor_v);
	}
	printf("            o %s\n", in->tensor_o);
}

int cli_info(int argc, char **argv)
{
	RunOptions o;
	char err[512];
	opts_defaults(&o);
	if (opts_parse(argc, argv, OPT_JSON, &o, err, sizeof err)) {
		fprintf(stderr, "ropefold info: %s\n", err);
		return 2;
	}
	if (o.help) {
		info_help();
		return 0;
	}
	if (o.n_positional != 1) {
		fprintf(stderr, "ropefold info: %s\n", o.n_positional ? "give one checkpoint PATH"
								    : "missing checkpoint PATH");
		return 2;
	}
	const char *path = o.positional[0];
	Model *m;
	if (model_open(path, &m, err, sizeof err)) {
		fprintf(stderr, "ropefold info: %s\n", err);
		return 2;
	}
	const ModelInfo *in = model_info(m);
	cli_model_note("info", in->note);
	if (o.json) {
		json_t *doc = info_json(in);
		if (!doc) {
			fprintf(stderr, "ropefold info: %s: names in the file are not valid UTF-8\n",
				path);
			model_close(m);
			return 2;
		}
		json_object_set_new(doc, "path", json_string(path));
		info_family_json(doc, m);
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		info_text(path, in);
		info_family_text(stdout, m);
	}
	model_close(m);
	return 0;
}

void cli_model_note(const char *mode, const char *note)
{
	if (note[0])
		fprintf(stderr, "ropefold %s: note: %s\n", mode, note);
}
