#include "config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/rng.h"
#include "data/families.h"
#include "data/jsonfile.h"
#include "data/model_tensors.h"
#include "data/mla_model.h"
#include "data/model_weights.h"
#include "data/path.h"

/* ---- the families' decoders ------------------------------------------------ */

/* What a family's decoder is, beyond its attention (data/families.c). */
typedef struct {
	const char *arch;        /* config model_type or GGUF general.architecture */
	const char *family;      /* the name the forward pass reports */
	FwdBlock block;
	FwdAct act;
} ArchPlan;

static const ArchPlan arch_plans[] = {
	{"llama", "llama", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"mistral", "mistral", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"qwen2", "qwen2", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"qwen2_vl", "qwen2_vl", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"qwen2vl", "qwen2_vl", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"qwen3", "qwen3", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"mixtral", "mixtral", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"qwen2_moe", "qwen2_moe", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"qwen2moe", "qwen2_moe", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"qwen3_moe", "qwen3_moe", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"qwen3moe", "qwen3_moe", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"olmo2", "olmo2", FWD_BLOCK_POST, FWD_ACT_SILU},
	{"gemma", "gemma", FWD_BLOCK_PRE, FWD_ACT_GELU_TANH},
	{"gemma2", "gemma2", FWD_BLOCK_SANDWICH, FWD_ACT_GELU_TANH},
	{"gemma3", "gemma3", FWD_BLOCK_SANDWICH, FWD_ACT_GELU_TANH},
	{"gemma3_text", "gemma3", FWD_BLOCK_SANDWICH, FWD_ACT_GELU_TANH},
	{"phi3", "phi3", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"gpt_neox", "gpt_neox", FWD_BLOCK_PARALLEL, FWD_ACT_GELU_ERF},
	{"gptneox", "gpt_neox", FWD_BLOCK_PARALLEL, FWD_ACT_GELU_ERF},
	{"deepseek_v2", "deepseek_v2", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"deepseek_v3", "deepseek_v3", FWD_BLOCK_PRE, FWD_ACT_SILU},
	{"deepseek2", "deepseek2", FWD_BLOCK_PRE, FWD_ACT_SILU},
};

/* The tensor names of the MLP, the norms around it and the final norm, per
 * naming scheme (data/families.c's). */
typedef struct {
	const char *scheme;
	const char *pre_ffn_norm;     /* before the MLP in a PRE/PARALLEL block */
	const char *post_attn_norm;   /* on attention's output (POST, SANDWICH) */
	const char *sandwich_ffn_norm;/* before the MLP in a SANDWICH block */
	const char *post_ffn_norm;    /* on the MLP's output */
	const char *gate, *up, *down, *gate_up;
	const char *final_norm;       /* after the prefix */
	/* experts: one tensor per expert (printf with the expert), or fused */
	const char *e_gate, *e_up, *e_down;
	bool e_fused;                 /* [E, F, D] tensors */
	const char *sh_gate, *sh_up, *sh_down, *sh_inp;
} MlpNames;

static const MlpNames mlp_names[] = {
	{"hf", ".post_attention_layernorm", ".post_attention_layernorm",
	 ".pre_feedforward_layernorm", ".post_feedforward_layernorm", ".mlp.gate_proj",
	 ".mlp.up_proj", ".mlp.down_proj", NULL, "norm", ".mlp.experts.%zu.gate_proj",
	 ".mlp.experts.%zu.up_proj", ".mlp.experts.%zu.down_proj", false,
	 ".mlp.shared_expert.gate_proj", ".mlp.shared_expert.up_proj",
	 ".mlp.shared_expert.down_proj", ".mlp.shared_expert_gate"},
	{"hf-fused", ".post_attention_layernorm", NULL, NULL, NULL, NULL, NULL, ".mlp.down_proj",
	 ".mlp.gate_up_proj", "norm", NULL, NULL, NULL, false, NULL, NULL, NULL, NULL},
	{"gpt-neox", ".post_attention_layernorm", NULL, NULL, NULL, NULL, ".mlp.dense_h_to_4h",
	 ".mlp.dense_4h_to_h", NULL, "final_layer_norm", NULL, NULL, NULL, false, NULL, NULL,
	 NULL, NULL},
	{"gguf", ".ffn_norm", ".post_attention_norm", ".ffn_norm", ".post_ffw_norm", ".ffn_gate",
	 ".ffn_up", ".ffn_down", NULL, "output_norm", ".ffn_gate_exps", ".ffn_up_exps",
	 ".ffn_down_exps", true, ".ffn_gate_shexp", ".ffn_up_shexp", ".ffn_down_shexp",
	 ".ffn_gate_inp_shexp"},
	{"meta", ".ffn_norm", NULL, NULL, NULL, ".feed_forward.w1", ".feed_forward.w3",
	 ".feed_forward.w2", NULL, "norm", NULL, NULL, NULL, false, NULL, NULL, NULL, NULL},
};

/* Mixtral's per-expert names in HF files. */
static const char *const mixtral_experts[3] = {".block_sparse_moe.experts.%zu.w1",
					       ".block_sparse_moe.experts.%zu.w3",
					       ".block_sparse_moe.experts.%zu.w2"};
/* ... and in GGUF files of older converters (before the [E, F, D]
 * ffn_*_exps tensors): one tensor per expert, blk.N.ffn_gate.E.weight. */
static const char *const gguf_split_experts[3] = {".ffn_gate.%zu", ".ffn_up.%zu",
						  ".ffn_down.%zu"};

struct ModelWeights {
	Model *m;
	FwdPrecision prec;
	const Family *fam;
	const ModelInfo *info;
	const TensorTable *tt;
	const MlpNames *nm;
	const ArchPlan *plan;
	FwdAct act;
	FwdBlock block;
	const TensorRef *embed, *head;
	bool embed_round;        /* sqrt(D) rounded to the embedding's dtype (HF) */
	size_t D, vocab;
	double final_softcap;
	Layer attn;              /* the current layer's attention, float64 */
	void **pool;             /* the converted buffers: the current layer's are
				  * the first npool; all nslots are reused by the
				  * next layer (fresh memory costs page faults) */
	size_t *pool_bytes;      /* nslots: the size of each */
	size_t npool, nslots, cappool;
	FwdMlp *experts;         /* n_experts */
	FwdMlp shared;
	const MlaFamily *mla;    /* DeepSeek MLA (data/model_weights_mla.c), or NULL */
	MlaLayer mla_layer;      /* the current layer's attention, float64 */
	FwdMla fmla;             /* and in the compute precision */
	RopeOverride rope;       /* put over each layer's RoPE (nothing given: none) */
	double perturb;          /* every weight times (1 + perturb r), r uniform in
				  * [-1, 1]; 0 = as stored */
	Rng rng;
	bool defer;              /* a dense layer's MLP matrices left unread */
	struct {
		const TensorRef *t;  /* NULL: none */
		size_t first, n;
	} part[3];               /* the last layer's, in FwdPart order */
};

/* ---- the rounding what-if ------------------------------------------------------ */

static void perturb_d(ModelWeights *w, double *v, size_t n)
{
	for (size_t i = 0; w->perturb > 0 && v && i < n; i++)
		v[i] *= 1.0 + w->perturb * (2.0 * rng_uniform(&w->rng) - 1.0);
}

/* n values of the compute precision at v. */
static void perturb_p(ModelWeights *w, void *v, size_t n)
{
	if (w->perturb <= 0 || !v)
		return;
	if (w->prec == FWD_F64) {
		perturb_d(w, v, n);
		return;
	}
	float *f = v;
	for (size_t i = 0; i < n; i++)
		f[i] = (float)(f[i] * (1.0 + w->perturb * (2.0 * rng_uniform(&w->rng) - 1.0)));
}

void model_weights_set_perturb(ModelWeights *w, double u, uint64_t seed)
{
	w->perturb = u;
	rng_seed(&w->rng, seed, 0x5eedu);
}

/* ---- buffers ------------------------------------------------------------------ */

/* The current layer's buffers are given back for the next one to reuse
 * (the float64 attention Layer keeps its buffers: model_reload_layer
 * refills them, so no layer after the first touches fresh pages). */
static void pool_clear(ModelWeights *w)
{
	w->npool = 0;
	mla_free(&w->mla_layer);
}

static void *pool_alloc(ModelWeights *w, size_t nelem)
{
	size_t bytes = (nelem ? nelem : 1) * fwd_elem_size(w->prec);
	if (w->npool < w->nslots && w->pool_bytes[w->npool] >= bytes)
		return w->pool[w->npool++];
	if (w->npool == w->nslots) {
		if (w->nslots == w->cappool) {
			size_t cap = w->cappool ? 2 * w->cappool : 64;
			void **p = realloc(w->pool, cap * sizeof *p);
			if (p)
				w->pool = p;
			size_t *b = p ? realloc(w->pool_bytes, cap * sizeof *b) : NULL;
			if (!b)
				return NULL;
			w->pool_bytes = b;
			w->cappool = cap;
		}
		w->pool[w->nslots] = NULL;
		w->pool_bytes[w->nslots++] = 0;
	}
	free(w->pool[w->npool]);
	void *v = malloc(bytes);
	w->pool[w->npool] = v;
	w->pool_bytes[w->npool] = v ? bytes : 0;
	if (v)
		w->npool++;
	return v;
}

/* A float64 array of the layer as the compute precision sees it: itself,
 * or a float copy. */
static const void *as_prec(ModelWeights *w, const double *v, size_t n, bool *nomem)
{
	if (!v || w->prec == FWD_F64)
		return v;
	float *f = pool_alloc(w, n);
	if (!f) {
		*nomem = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		f[i] = (float)v[i];
	return f;
}

/* Elements [first, first + n) of t in the compute precision into out, as
 * stored. */
static int read_stored(const ModelWeights *w, const TensorRef *t, size_t first, size_t n,
		       void *out, char *err, size_t errlen)
{
	return w->prec == FWD_F32 ? tensor_read_float(t, first, n, out, err, errlen)
				  : tensor_read(t, first, n, out, err, errlen);
}

/* The same, with the rounding what-if. */
static int read_prec(ModelWeights *w, const TensorRef *t, size_t first, size_t n,
		     void *out, char *err, size_t errlen)
{
	int rc = read_stored(w, t, first, n, out, err, errlen);
	if (!rc)
		perturb_p(w, out, n);
	return rc;
}

/* suffix with its "%zu" (if any) replaced by e, into buf. */
static void expand(const char *suffix, size_t e, char *buf, size_t len)
{
	const char *p = strstr(suffix, "%zu");
	if (!p)
		snprintf(buf, len, "%s", suffix);
	else
		snprintf(buf, len, "%.*s%zu%s", (int)(p - suffix), suffix, e, p + 3);
}

/* The tensor name + ".weight"/".bias" of layer i (suffix may hold %zu for
 * the expert e). */
static const TensorRef *find_t(const ModelWeights *w, size_t i, const char *suffix, size_t e,
			       const char *kind)
{
	if (!suffix)
		return NULL;
	char s[160], nm[400];
	expand(suffix, e, s, sizeof s);
	strncat(s, kind, sizeof s - strlen(s) - 1);
	family_tensor_name(w->fam, i, s, nm, sizeof nm);
	return tensor_table_find(w->tt, nm);
}

/* Read a whole tensor of nelem elements (checked) into a pool buffer. */
static int load_t(ModelWeights *w, const TensorRef *t, size_t nelem, const void **out,
		  char *err, size_t errlen)
{
	if (t->nelem != nelem) {
		char got[96];
		tensor_shape_str(t, got, sizeof got);
		snprintf(err, errlen, "%s: tensor %s: shape %s, but the model's shape needs %zu "
			 "elements", t->file, t->name, got, nelem);
		return -1;
	}
	void *v = pool_alloc(w, nelem);
	if (!v) {
		snprintf(err, errlen, "%s: tensor %s: out of memory", t->file, t->name);
		return -1;
	}
	if (read_prec(w, t, 0, nelem, v, err, errlen))
		return -1;
	*out = v;
	return 0;
}

static int missing(const ModelWeights *w, size_t i, const char *suffix, size_t e, char *err,
		   size_t errlen)
{
	char s[160], nm[400];
	expand(suffix, e, s, sizeof s);
	strncat(s, ".weight", sizeof s - strlen(s) - 1);
	family_tensor_name(w->fam, i, s, nm, sizeof nm);
	snprintf(err, errlen, "%s: layer %zu: tensor %s is missing (the %s forward pass needs it)",
		 model_path(w->m), i, nm, w->plan->family);
	return -1;
}

/* ---- open ------------------------------------------------------------------ */

/* The few config.json keys only the forward pass reads: the activation and
 * GPT-NeoX's residual style, and tie_word_embeddings (-1 = not stated). */
static void read_config_extras(ModelWeights *w, int *tied)
{
	*tied = -1;
	if (w->info->format != MODEL_FMT_SAFETENSORS)
		return;
	const char *p = model_path(w->m);
	char dir[4096], cfg[4200];
	struct stat st;
	if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(dir, sizeof dir, "%s", p);
	else
		path_dirname(p, dir, sizeof dir);
	snprintf(cfg, sizeof cfg, "%s/config.json", dir);
	json_t *root;
	char e[256];
	if (jsonfile_load(cfg, JSONFILE_CONFIG_MAX, 0, &root, e, sizeof e))
		return;
	json_t *tc = json_object_get(root, "text_config");
	const char *key = !strncmp(w->plan->family, "gemma", 5) ? "hidden_activation" : "hidden_act";
	json_t *a = json_object_get(root, key);
	if (!a && json_is_object(tc))
		a = json_object_get(tc, key);
	if (json_is_string(a)) {
		const char *s = json_string_value(a);
		static const struct {
			const char *name;
			FwdAct act;
		} acts[] = {{"silu", FWD_ACT_SILU}, {"swish", FWD_ACT_SILU},
			    {"gelu", FWD_ACT_GELU_ERF}, {"gelu_pytorch_tanh", FWD_ACT_GELU_TANH},
			    {"gelu_new", FWD_ACT_GELU_TANH}, {"gelu_fast", FWD_ACT_GELU_TANH},
			    {"relu", FWD_ACT_RELU}};
		for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++)
			if (!strcmp(s, acts[k].name))
				w->act = acts[k].act;
	}
	json_t *par = json_object_get(root, "use_parallel_residual");
	if (w->block == FWD_BLOCK_PARALLEL && json_is_false(par))
		w->block = FWD_BLOCK_PRE;
	json_t *tie = json_object_get(root, "tie_word_embeddings");
	if (!tie && json_is_object(tc))
		tie = json_object_get(tc, "tie_word_embeddings");
	if (json_is_boolean(tie))
		*tied = json_is_true(tie);
	json_decref(root);
}

/* The output classifier beside the layers' parent, or NULL (tied). */
static const TensorRef *find_head(const ModelWeights *w)
{
	static const struct {
		const char *scheme, *name;
	} heads[] = {{"gguf", "output.weight"}, {"meta", "output.weight"},
		     {"hf", "lm_head.weight"}, {"hf-fused", "lm_head.weight"},
		     {"gpt-neox", "embed_out.weight"}};
	const char *pre = w->fam->prefix;
	size_t n = strlen(pre);
	if (n && pre[n - 1] == '.')
		n--;
	while (n && pre[n - 1] != '.')
		n--;
	for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
		if (strcmp(heads[i].scheme, w->fam->names->name))
			continue;
		char nm[320];
		snprintf(nm, sizeof nm, "%.*s%s", (int)n, pre, heads[i].name);
		return tensor_table_find(w->tt, nm);
	}
	return NULL;
}

int model_weights_open(Model *m, FwdPrecision prec, ModelWeights **out, char *err,
		       size_t errlen)
{
	*out = NULL;
	const ModelInfo *info = model_info(m);
	const ArchPlan *plan = NULL;
	for (size_t k = 0; k < sizeof arch_plans / sizeof arch_plans[0] && !plan; k++)
		if (!strcmp(info->arch, arch_plans[k].arch))
			plan = &arch_plans[k];
	if (model_mla(m) && !plan) {
		snprintf(err, errlen, "%s: the forward pass of DeepSeek's multi-head latent attention "
			 "(MLA) reads families deepseek_v2, deepseek_v3 and GGUF deepseek2, not '%s'",
			 model_path(m), info->arch);
		return -1;
	}
	if (model_mla(m) && mla_moe_check(model_mla(m), model_path(m), err, errlen))
		return -1;
	if (!plan) {
		snprintf(err, errlen, "%s: the forward pass of family '%s' is not implemented (known: "
			 "llama, mistral, mixtral, qwen2, qwen2_vl, qwen3, qwen2_moe, qwen3_moe, olmo2, "
			 "gemma, gemma2, gemma3, phi3, gpt_neox, deepseek_v2, deepseek_v3, deepseek2, "
			 "llama2.c)", model_path(m), info->arch);
		return -1;
	}
	ModelWeights *w = calloc(1, sizeof *w);
	if (!w) {
		snprintf(err, errlen, "%s: out of memory", model_path(m));
		return -1;
	}
	w->m = m;
	w->prec = prec;
	w->info = info;
	w->fam = model_family(m);
	w->tt = model_tensor_table(m);
	w->plan = plan;
	w->mla = model_mla(m);
	w->act = plan->act;
	w->block = plan->block;
	w->D = info->shape.d_model;
	w->final_softcap = info->final_softcap;
	for (size_t k = 0; k < sizeof mlp_names / sizeof mlp_names[0]; k++)
		if (!strcmp(mlp_names[k].scheme, w->fam->names->name))
			w->nm = &mlp_names[k];
	/* GPT-NeoX's gelu is the exact erf form in HF and the tanh form in
	 * llama.cpp: each file as its own runtime computes it */
	if (info->format == MODEL_FMT_GGUF && w->act == FWD_ACT_GELU_ERF)
		w->act = FWD_ACT_GELU_TANH;
	int tied;
	read_config_extras(w, &tied);
	char nm[320];
	snprintf(nm, sizeof nm, "%s%s", w->fam->prefix, w->fam->names->embed);
	w->embed = tensor_table_find(w->tt, nm);
	w->head = tied == 1 ? NULL : find_head(w);
	if (!w->head && tied == 0 && w->embed) {
		snprintf(err, errlen, "%s: config.json says tie_word_embeddings false, but the output "
			 "head (%s) is missing", model_path(m),
			 !strcmp(w->fam->names->name, "gpt-neox") ? "embed_out.weight" : "lm_head.weight");
		free(w);
		return -1;
	}
	if (!w->head)
		w->head = w->embed;
	if (!w->nm || !w->embed || !w->head) {
		snprintf(err, errlen, "%s: no token embeddings (%s): the forward pass needs them",
			 model_path(m), nm);
		free(w);
		return -1;
	}
	w->vocab = w->head->shape[0];
	w->embed_round = info->format == MODEL_FMT_SAFETENSORS;
	if (info->moe.n_experts && info->moe.n_sparse && !info->moe.experts_per_tok) {
		snprintf(err, errlen, "%s: %zu experts but no experts per token", model_path(m),
			 info->moe.n_experts);
		free(w);
		return -1;
	}
	*out = w;
	return 0;
}

size_t model_weights_vocab(const ModelWeights *w)
{
	return w->vocab;
}

const char *model_weights_family(const ModelWeights *w)
{
	return w->plan->family;
}

double model_weights_final_softcap(const ModelWeights *w)
{
	return w->final_softcap;
}

/* sqrt(D) as HF's Gemma applies it: a constant of the hidden dtype, here
 * the embedding's stored one; llama.cpp (GGUF) uses the exact root. */
static double embed_scale(const ModelWeights *w)
{
	double s = sqrt((double)w->D);
	if (!w->embed_round)
		return s;
	if (dtype_is_float(w->embed->dtype))
		dtype_round(w->embed->dtype, &s, 1);
	return s;
}

int model_weights_embed(ModelWeights *w, const size_t *tokens, size_t n, double *out,
			char *err, size_t errlen)
{
	const TensorRef *e = w->embed;
	size_t D = w->D;
	double scale = w->fam->embed_scale_sqrt_d ? embed_scale(w) : 1.0;
	for (size_t t = 0; t < n; t++) {
		if (tokens[t] >= e->shape[0]) {
			snprintf(err, errlen, "%s: token id %zu (position %zu) is out of range (vocab "
				 "%zu)", model_path(w->m), tokens[t], t, e->shape[0]);
			return -1;
		}
		if (tensor_read(e, tokens[t] * D, D, out + t * D, err, errlen))
			return -1;
		perturb_d(w, out + t * D, D);
		for (size_t j = 0; j < D; j++)
			out[t * D + j] *= scale;
	}
	return 0;
}

/* ---- one layer ------------------------------------------------------------ */

/* A norm of layer i (suffix without ".weight"), or none when absent. */
static int load_norm(ModelWeights *w, size_t i, const char *suffix, FwdNorm *out, char *err,
		     size_t errlen)
{
	memset(out, 0, sizeof *out);
	const TensorRef *t = find_t(w, i, suffix, 0, ".weight");
	if (!t)
		return 0;
	const TensorRef *b = find_t(w, i, suffix, 0, ".bias");
	out->kind = b ? NORM_LAYER : w->fam->norm_kind;
	out->eps = w->fam->norm_eps;
	if (load_t(w, t, w->D, &out->w, err, errlen) || (b && load_t(w, b, w->D, &out->b, err, errlen)))
		return -1;
	if (w->fam->norm_plus_one) {
		/* HF Gemma's (1 + w) */
		if (w->prec == FWD_F32)
			for (size_t j = 0; j < w->D; j++)
				((float *)out->w)[j] += 1.0f;
		else
			for (size_t j = 0; j < w->D; j++)
				((double *)out->w)[j] += 1.0;
	}
	return 0;
}

/* Elements [first, first + n) of t as MLP matrix q into *dst: read into
 * the pool or, deferring, recorded for model_weights_read_part (*dst
 * NULL). */
static int mlp_matrix(ModelWeights *w, bool defer, FwdPart q, const TensorRef *t, size_t first,
		      size_t n, const void **dst, char *err, size_t errlen)
{
	*dst = NULL;
	if (defer) {
		w->part[q].t = t;
		w->part[q].first = first;
		w->part[q].n = n;
		return 0;
	}
	void *v = pool_alloc(w, n);
	if (!v) {
		snprintf(err, errlen, "%s: out of memory", t->file);
		return -1;
	}
	if (read_prec(w, t, first, n, v, err, errlen))
		return -1;
	*dst = v;
	return 0;
}

/* An MLP (one expert, or dense) of layer i from its gate/up/down names;
 * fused gate_up rows [gate; up]; experts e of fused [E, F, D] tensors.
 * defer: its three matrices recorded, not read. */
static int load_mlp(ModelWeights *w, size_t i, const char *gate, const char *up,
		    const char *down, const char *gate_up, bool fused, size_t e, bool defer,
		    FwdMlp *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	size_t D = w->D;
	const TensorRef *tg = find_t(w, i, gate, e, ".weight");
	const TensorRef *tu = find_t(w, i, up, e, ".weight");
	const TensorRef *td = find_t(w, i, down, e, ".weight");
	const TensorRef *tgu = find_t(w, i, gate_up, e, ".weight");
	if (!tgu && gate && !tg && tu && !fused && tu->ndim == 2 && tu->shape[0] % 2 == 0 &&
	    !strcmp(w->plan->family, "phi3")) {
		/* llama.cpp's Phi-3: ffn_up holds HF's gate_up_proj, rows [gate; up] */
		tgu = tu;
	}
	if (!td)
		return missing(w, i, down, e, err, errlen);
	if (tgu) {
		if (tgu->ndim != 2 || tgu->shape[1] != D || tgu->shape[0] % 2) {
			snprintf(err, errlen, "%s: tensor %s: not [2 F, %zu]", tgu->file, tgu->name, D);
			return -1;
		}
		p->ff = tgu->shape[0] / 2;
		size_t n = p->ff * D;
		if (mlp_matrix(w, defer, FWD_PART_GATE, tgu, 0, n, &p->gate, err, errlen) ||
		    mlp_matrix(w, defer, FWD_PART_UP, tgu, n, n, &p->up, err, errlen))
			return -1;
	} else {
		if (!tu)
			return missing(w, i, up, e, err, errlen);
		if (gate && !tg)
			return missing(w, i, gate, e, err, errlen);
		size_t rows = fused ? tu->shape[1] : tu->shape[0];
		size_t cols = fused ? tu->shape[2] : tu->shape[1];
		if (tu->ndim != (fused ? 3u : 2u) || cols != D) {
			char got[96];
			tensor_shape_str(tu, got, sizeof got);
			snprintf(err, errlen, "%s: tensor %s: shape %s, not [F, %zu]", tu->file, tu->name,
				 got, D);
			return -1;
		}
		p->ff = rows;
		size_t n = p->ff * D, first = fused ? e * n : 0;
		const TensorRef *ts[2] = {tg, tu};
		const void **dst[2] = {&p->gate, &p->up};
		const FwdPart q[2] = {FWD_PART_GATE, FWD_PART_UP};
		for (int k = 0; k < 2; k++) {
			if (!ts[k])
				continue;
			if (ts[k]->nelem < first + n) {
				snprintf(err, errlen, "%s: tensor %s: %zu elements, not %zu", ts[k]->file,
					 ts[k]->name, ts[k]->nelem, first + n);
				return -1;
			}
			if (mlp_matrix(w, defer, q[k], ts[k], first, n, dst[k], err, errlen))
				return -1;
		}
	}
	size_t n = p->ff * D, first = fused ? e * n : 0;
	if (td->nelem < first + n || (!fused && td->nelem != n)) {
		snprintf(err, errlen, "%s: tensor %s: %zu elements, not %zu x %zu", td->file, td->name,
			 td->nelem, D, p->ff);
		return -1;
	}
	if (mlp_matrix(w, defer, FWD_PART_DOWN, td, first, n, &p->down, err, errlen))
		return -1;
	const TensorRef *bu = find_t(w, i, up, e, ".bias"), *bd = find_t(w, i, down, e, ".bias");
	const TensorRef *bg = find_t(w, i, gate, e, ".bias");
	if ((bg && !fused && load_t(w, bg, p->ff, &p->b_gate, err, errlen)) ||
	    (bu && !fused && load_t(w, bu, p->ff, &p->b_up, err, errlen)) ||
	    (bd && !fused && load_t(w, bd, D, &p->b_down, err, errlen)))
		return -1;
	return 0;
}

/* The experts of a sparse layer, its router and shared expert. */
static int load_moe(ModelWeights *w, size_t i, FwdMoe *moe, char *err, size_t errlen)
{
	const ModelMoe *mi = &w->info->moe;
	const MlpNames *nm = w->nm;
	size_t E = mi->n_experts;
	moe->n_experts = E;
	moe->top_k = mi->experts_per_tok;
	moe->norm_topk = mi->norm_topk_prob;
	if (!strcmp(w->plan->family, "mixtral") && strcmp(nm->scheme, "gguf"))
		moe->norm_topk = true;
	const char *rs = family_router_suffix(w->fam, w->tt, i);
	char nmr[400];
	family_tensor_name(w->fam, i, rs ? rs : ".mlp.gate.weight", nmr, sizeof nmr);
	const TensorRef *router = tensor_table_find(w->tt, nmr);
	if (!router) {
		snprintf(err, errlen, "%s: layer %zu: router %s is missing", model_path(w->m), i, nmr);
		return -1;
	}
	if (load_t(w, router, E * w->D, &moe->router, err, errlen))
		return -1;
	if (!w->experts && !(w->experts = calloc(E, sizeof *w->experts))) {
		snprintf(err, errlen, "%s: out of memory", model_path(w->m));
		return -1;
	}
	const char *g = nm->e_gate, *u = nm->e_up, *d = nm->e_down;
	bool fused = nm->e_fused;
	if (!nm->e_fused && find_t(w, i, mixtral_experts[0], 0, ".weight")) {
		g = mixtral_experts[0];
		u = mixtral_experts[1];
		d = mixtral_experts[2];
	}
	if (fused && !find_t(w, i, g, 0, ".weight") &&
	    find_t(w, i, gguf_split_experts[0], 0, ".weight")) {
		g = gguf_split_experts[0];
		u = gguf_split_experts[1];
		d = gguf_split_experts[2];
		fused = false;
	}
	if (!g) {
		snprintf(err, errlen, "%s: layer %zu: experts in a '%s' file are not read by the "
			 "forward pass", model_path(w->m), i, nm->scheme);
		return -1;
	}
	for (size_t e = 0; e < E; e++)
		if (load_mlp(w, i, g, u, d, NULL, fused, e, false, &w->experts[e], err, errlen))
			return -1;
	moe->experts = w->experts;
	moe->shared = NULL;
	moe->shared_gate = NULL;
	if (nm->sh_up && find_t(w, i, nm->sh_up, 0, ".weight")) {
		if (load_mlp(w, i, nm->sh_gate, nm->sh_up, nm->sh_down, NULL, false, 0, false, &w->shared,
			     err, errlen))
			return -1;
		moe->shared = &w->shared;
		const TensorRef *sg = find_t(w, i, nm->sh_inp, 0, ".weight");
		if (sg && load_t(w, sg, w->D, &moe->shared_gate, err, errlen))
			return -1;
	}
	return 0;
}

static int mla_weights_layer(ModelWeights *w, size_t i, FwdLayer *out, char *err,
			     size_t errlen);

void model_weights_set_rope(ModelWeights *w, const RopeOverride *o)
{
	w->rope = *o;
}

/* Pool buffers for model_load_layer_float. */
static float *pool_floats(void *ctx, size_t n)
{
	return pool_alloc(ctx, n);
}

/* Layer i's attention into out: float32 straight from the file, or
 * float64 through w->attn (its buffers reused layer after layer); the
 * rounding what-if on the weights as stored. */
static int attn_layer(ModelWeights *w, size_t i, FwdLayer *out, char *err, size_t errlen)
{
	Layer *a = &w->attn;
	LayerFloats f;
	bool f32 = w->prec == FWD_F32;
	if (f32 ? model_load_layer_float(w->m, i, a, &f, pool_floats, w, err, errlen)
		: model_reload_layer(w->m, i, a, err, errlen))
		return -1;
	const LayerShape *s = &a->shape;
	size_t D = s->d_model, Hd = s->n_heads * s->head_dim, Gd = s->n_kv_heads * s->head_dim;
	bool per_head = f32 ? f.qk_norm_per_head : a->qk_norm_per_head;
	size_t qn = per_head ? s->head_dim : Hd, kn = per_head ? s->head_dim : Gd;
	out->shape = *s;
	out->rope = a->rope;
	rope_override_apply(&w->rope, &out->rope);
	const char *why;
	if (rope_spec_check(&out->rope, s->head_dim, &why) != RF_OK) {
		snprintf(err, errlen, "%s: layer %zu: RoPE: %s", model_path(w->m), i, why);
		return -1;
	}
	out->window = a->sliding_window;
	out->attn_softcap = a->attn_softcap;
	out->score_scale = a->score_scale;
	out->qk_norm_per_head = per_head;
	out->qk_norm_eps = a->qk_norm_eps;
	out->attn_norm.kind = a->attn_norm_kind;
	out->attn_norm.eps = a->norm_eps;
	/* each weight from its precision's source, moved by the what-if in
	 * one order for both */
#define PICK(x) (f32 ? (void *)f.x : (void *)a->x)
	const struct {
		void *v;
		size_t n;
		const void **to;
	} t[] = {{PICK(wq), Hd * D, &out->wq}, {PICK(wk), Gd * D, &out->wk},
		 {PICK(wv), Gd * D, &out->wv}, {PICK(wo), D * Hd, &out->wo},
		 {PICK(bq), Hd, &out->bq},     {PICK(bk), Gd, &out->bk},
		 {PICK(bv), Gd, &out->bv},     {PICK(bo), D, &out->bo},
		 {PICK(q_norm), qn, &out->q_norm}, {PICK(k_norm), kn, &out->k_norm},
		 {PICK(attn_norm), D, &out->attn_norm.w},
		 {PICK(attn_norm_bias), D, &out->attn_norm.b}};
#undef PICK
	for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
		perturb_p(w, t[k].v, t[k].n);
		*t[k].to = t[k].v;
	}
	return 0;
}

void model_weights_defer_mlp(ModelWeights *w, bool on)
{
	w->defer = on;
}

size_t model_weights_part_size(const ModelWeights *w, FwdPart p)
{
	return w->part[p].t ? w->part[p].n : 0;
}

int model_weights_read_part(const ModelWeights *w, FwdPart p, void *buf, char *err,
			    size_t errlen)
{
	const TensorRef *t = w->part[p].t;
	size_t first = w->part[p].first, n = w->part[p].n;
	if (!t) {
		snprintf(err, errlen, "%s: no MLP matrix %d left to read", model_path(w->m), (int)p);
		return -1;
	}
	return read_stored(w, t, first, n, buf, err, errlen);
}

int model_weights_layer(ModelWeights *w, size_t i, FwdLayer *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	memset(w->part, 0, sizeof w->part);
	pool_clear(w);
	if (w->mla)
		return mla_weights_layer(w, i, out, err, errlen);
	if (attn_layer(w, i, out, err, errlen))
		return -1;
	out->block = w->block;
	out->act = w->act;
	const MlpNames *nm = w->nm;
	int rc = 0;
	switch (w->block) {
	case FWD_BLOCK_PRE:
	case FWD_BLOCK_PARALLEL:
		rc = load_norm(w, i, nm->pre_ffn_norm, &out->ffn_norm, err, errlen);
		break;
	case FWD_BLOCK_POST:
		rc = load_norm(w, i, nm->post_attn_norm, &out->post_attn_norm, err, errlen) ||
		     load_norm(w, i, nm->post_ffn_norm, &out->post_ffn_norm, err, errlen);
		break;
	case FWD_BLOCK_SANDWICH:
		rc = load_norm(w, i, nm->post_attn_norm, &out->post_attn_norm, err, errlen) ||
		     load_norm(w, i, nm->sandwich_ffn_norm, &out->ffn_norm, err, errlen) ||
		     load_norm(w, i, nm->post_ffn_norm, &out->post_ffn_norm, err, errlen);
		break;
	}
	if (rc)
		return -1;
	if (w->block == FWD_BLOCK_POST && (!out->post_attn_norm.w || !out->post_ffn_norm.w))
		return missing(w, i, out->post_attn_norm.w ? nm->post_ffn_norm : nm->post_attn_norm, 0,
			       err, errlen);
	if (w->block == FWD_BLOCK_SANDWICH && (!out->post_attn_norm.w || !out->post_ffn_norm.w ||
					       !out->ffn_norm.w))
		return missing(w, i, !out->post_attn_norm.w ? nm->post_attn_norm
				     : !out->ffn_norm.w ? nm->sandwich_ffn_norm : nm->post_ffn_norm,
			       0, err, errlen);
	if (w->block != FWD_BLOCK_POST && w->block != FWD_BLOCK_SANDWICH && !out->ffn_norm.w)
		return missing(w, i, nm->pre_ffn_norm, 0, err, errlen);
	if (family_layer_sparse(w->fam, i))
		return load_moe(w, i, &out->moe, err, errlen);
	/* GPT-NeoX's MLP has no gate: down(act(up x)) */
	const char *gate = !strcmp(w->plan->family, "gpt_neox") ? NULL : nm->gate;
	return load_mlp(w, i, gate, nm->up, nm->down, nm->gate_up, false, 0,
			w->defer && w->perturb <= 0, &out->mlp, err, errlen);
}

int model_weights_final_norm(ModelWeights *w, FwdNorm *out, char *err, size_t errlen)
{
	pool_clear(w);
	memset(out, 0, sizeof *out);
	char nm[320], nb[320];
	snprintf(nm, sizeof nm, "%s%s.weight", w->fam->prefix, w->nm->final_norm);
	snprintf(nb, sizeof nb, "%s%s.bias", w->fam->prefix, w->nm->final_norm);
	const TensorRef *t = tensor_table_find(w->tt, nm), *b = tensor_table_find(w->tt, nb);
	if (!t) {
		snprintf(err, errlen, "%s: tensor %s (the final norm) is missing", model_path(w->m), nm);
		return -1;
	}
	out->kind = b ? NORM_LAYER : w->fam->norm_kind;
	out->eps = w->fam->norm_eps;
	if (load_t(w, t, w->D, &out->w, err, errlen) || (b && load_t(w, b, w->D, &out->b, err, errlen)))
		return -1;
	if (w->fam->norm_plus_one) {
		if (w->prec == FWD_F32)
			for (size_t j = 0; j < w->D; j++)
				((float *)out->w)[j] += 1.0f;
		else
			for (size_t j = 0; j < w->D; j++)
				((double *)out->w)[j] += 1.0;
	}
	return 0;
}

int model_weights_head(ModelWeights *w, size_t first, size_t n, void *rows, char *err,
		       size_t errlen)
{
	return read_prec(w, w->head, first * w->D, n * w->D, rows, err, errlen);
}

void model_weights_close(ModelWeights *w)
{
	if (!w)
		return;
	pool_clear(w);
	layer_free(&w->attn);
	for (size_t i = 0; i < w->nslots; i++)
		free(w->pool[i]);
	free(w->pool);
	free(w->pool_bytes);
	free(w->experts);
	free(w);
}

/* ---- DeepSeek's multi-head latent attention and experts --------------------- */

/* The routed experts, router (and V3's score bias) and the shared experts
 * of sparse layer i (HF mlp.gate, mlp.experts.N, mlp.shared_experts;
 * GGUF ffn_gate_inp, exp_probs_b, ffn_*_exps, ffn_*_shexp). */
static int mla_weights_moe(ModelWeights *w, size_t i, FwdMoe *moe, char *err, size_t errlen)
{
	const MlaFamily *f = w->mla;
	const MlpNames *nm = w->nm;
	bool gguf = !strcmp(nm->scheme, "gguf");
	size_t E = f->n_experts;
	moe->n_experts = E;
	moe->top_k = f->experts_per_tok;
	moe->norm_topk = f->route.norm_topk;
	moe->route = &f->route;
	const char *rs = gguf ? ".ffn_gate_inp" : ".mlp.gate";
	const TensorRef *router = find_t(w, i, rs, 0, ".weight");
	if (!router)
		return missing(w, i, rs, 0, err, errlen);
	if (load_t(w, router, E * w->D, &moe->router, err, errlen))
		return -1;
	const TensorRef *bias = gguf ? find_t(w, i, ".exp_probs_b", 0, ".bias")
				     : find_t(w, i, ".mlp.gate", 0, ".e_score_correction_bias");
	if (bias && load_t(w, bias, E, &moe->score_bias, err, errlen))
		return -1;
	if (!w->experts && !(w->experts = calloc(E, sizeof *w->experts))) {
		snprintf(err, errlen, "%s: out of memory", model_path(w->m));
		return -1;
	}
	for (size_t e = 0; e < E; e++)
		if (load_mlp(w, i, nm->e_gate, nm->e_up, nm->e_down, NULL, nm->e_fused, e, false,
			     &w->experts[e], err, errlen))
			return -1;
	moe->experts = w->experts;
	static const char *const hf_shared[3] = {".mlp.shared_experts.gate_proj",
						 ".mlp.shared_experts.up_proj",
						 ".mlp.shared_experts.down_proj"};
	const char *sg = gguf ? nm->sh_gate : hf_shared[0], *su = gguf ? nm->sh_up : hf_shared[1];
	const char *sd = gguf ? nm->sh_down : hf_shared[2];
	if (f->shared_experts || find_t(w, i, su, 0, ".weight")) {
		if (load_mlp(w, i, sg, su, sd, NULL, false, 0, false, &w->shared, err, errlen))
			return -1;
		moe->shared = &w->shared;
	}
	return 0;
}

/* Layer i of an MLA checkpoint: its attention read by data/mla_model.c
 * (float64, moved by the rounding what-if, then converted), the norm
 * before the MLP, and the dense MLP or the experts. */
static int mla_weights_layer(ModelWeights *w, size_t i, FwdLayer *out, char *err,
			     size_t errlen)
{
	MlaLayer *a = &w->mla_layer;
	if (model_load_mla_layer(w->m, i, a, err, errlen))
		return -1;
	const MlaShape *s = &a->shape;
	size_t D = s->d_model, H = s->n_heads, Lq = s->q_lora_rank, Lkv = s->kv_lora_rank;
	size_t dq = mla_qk_dim(s), dr = s->qk_rope_dim, dkv = s->qk_nope_dim + s->v_head_dim;
	double *t[8] = {a->q_a, a->q_a_norm, a->q_b, a->kv_a, a->kv_a_norm, a->kv_b, a->wo,
			a->attn_norm};
	size_t n[8] = {Lq * D, Lq, H * dq * (Lq ? Lq : D), (Lkv + dr) * D, Lkv, H * dkv * Lkv,
		       D * H * s->v_head_dim, D};
	const void **dst[8];
	FwdMla *fm = &w->fmla;
	memset(fm, 0, sizeof *fm);
	dst[0] = &fm->q_a;
	dst[1] = &fm->q_a_norm;
	dst[2] = &fm->q_b;
	dst[3] = &fm->kv_a;
	dst[4] = &fm->kv_a_norm;
	dst[5] = &fm->kv_b;
	dst[6] = &fm->wo;
	dst[7] = &out->attn_norm.w;
	bool nomem = false;
	for (int k = 0; k < 8; k++) {
		perturb_d(w, t[k], n[k]);
		*dst[k] = as_prec(w, t[k], n[k], &nomem);
	}
	if (nomem) {
		snprintf(err, errlen, "%s: layer %zu: out of memory", model_path(w->m), i);
		return -1;
	}
	fm->shape = *s;
	fm->rope = a->rope;
	rope_override_apply(&w->rope, &fm->rope);
	const char *why;
	if (fm->rope.rotary_dim != dr) {
		snprintf(err, errlen, "%s: layer %zu: MLA turns the whole rope part "
			 "(qk_rope_head_dim %zu): --rotary-dim %zu does not apply", model_path(w->m), i,
			 dr, fm->rope.rotary_dim);
		return -1;
	}
	if (rope_spec_check(&fm->rope, dr, &why) != RF_OK) {
		snprintf(err, errlen, "%s: layer %zu: RoPE of the rope part: %s", model_path(w->m), i,
			 why);
		return -1;
	}
	fm->latent_eps = a->latent_eps;
	fm->score_scale = a->score_scale;
	out->mla = fm;
	mla_header(a, &w->attn);
	out->shape = w->attn.shape;
	memset(&w->attn, 0, sizeof w->attn);
	out->rope = fm->rope;
	out->attn_norm.kind = NORM_RMS;
	out->attn_norm.eps = a->norm_eps;
	out->block = FWD_BLOCK_PRE;
	out->act = w->act;
	const MlpNames *nm = w->nm;
	if (load_norm(w, i, nm->pre_ffn_norm, &out->ffn_norm, err, errlen))
		return -1;
	if (!out->ffn_norm.w)
		return missing(w, i, nm->pre_ffn_norm, 0, err, errlen);
	if (mla_layer_sparse(w->mla, i))
		return mla_weights_moe(w, i, &out->moe, err, errlen);
	return load_mlp(w, i, nm->gate, nm->up, nm->down, NULL, false, 0, false, &out->mlp, err,
			errlen);
}
