#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/families.h"
#include "data/hfconfig.h"
#include "data/jsonfile.h"
#include "data/mla_model.h"
#include "data/model.h"
#include "data/model_tensors.h"
#include "data/path.h"
#include "data/reader.h"

struct Model {
	char path[4096];
	ModelFormat format;       /* of the reader that parsed the files */
	InFile **files;           /* every open file (shards); each allocated on
				   * its own, as tensors point at them */
	size_t nfiles;
	TensorTable tt;
	Hparams hp;
	Family fam;
	ModelInfo info;
	const TensorRef *embed;   /* token embeddings, or NULL */
	bool is_mla;              /* DeepSeek MLA: mla, not fam's attention */
	MlaFamily mla;
};

/* The tensors of one layer, found and shape-checked but not yet read. */
typedef struct {
	const TensorRef *q, *k, *v, *qkv, *o;
	const TensorRef *bq, *bk, *bv, *bqkv, *bo;
	const TensorRef *q_norm, *k_norm, *norm, *norm_bias;
} LayerTensors;

const char *model_format_name(ModelFormat f)
{
	switch (f) {
	case MODEL_FMT_SAFETENSORS: return "safetensors";
	case MODEL_FMT_GGUF: return "gguf";
	case MODEL_FMT_LLAMA2C: return "llama2c";
	}
	return "?";
}

/* ---- files ---------------------------------------------------------------- */

static int add_file(Model *m, const char *path, char *err, size_t errlen)
{
	InFile **v = realloc(m->files, (m->nfiles + 1) * sizeof *v);
	if (!v) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	m->files = v;
	InFile *f = malloc(sizeof *f);
	if (!f) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	if (infile_open(f, path, err, errlen)) {
		free(f);
		return -1;
	}
	m->files[m->nfiles++] = f;
	return 0;
}

/* The last file added. */
static const InFile *last_file(const Model *m)
{
	return m->files[m->nfiles - 1];
}

/* Something is at p: a file, a FIFO, a symlink (even a dangling one or a
 * loop). What it is, and whether it will do, is for infile_open_fd to say:
 * an index or a config.json that is a FIFO is refused, never skipped. */
static bool exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

/* Open and parse every shard a model.safetensors.index.json names. */
static int open_index(Model *m, const char *dir, const char *index, char *err,
		      size_t errlen)
{
	json_t *root;
	if (jsonfile_load(index, JSONFILE_INDEX_MAX, JSON_REJECT_DUPLICATES, &root, err, errlen))
		return -1;
	int rc = -1;
	json_t *wm = json_object_get(root, "weight_map");
	if (!json_is_object(wm) || json_object_size(wm) == 0) {
		snprintf(err, errlen, "%s: no weight_map", index);
		goto out;
	}
	const char *key;
	json_t *val;
	/* Each shard once, in order of first mention. */
	json_object_foreach(wm, key, val) {
		if (!json_is_string(val)) {
			snprintf(err, errlen, "%s: weight_map entry %s is not a file name", index, key);
			goto out;
		}
		const char *shard = json_string_value(val);
		if (!shard[0] || shard[0] == '/' || strstr(shard, "..")) {
			snprintf(err, errlen, "%s: weight_map entry %s: refusing shard path '%s'",
				 index, key, shard);
			goto out;
		}
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, shard);
		bool seen = false;
		for (size_t i = 0; i < m->nfiles && !seen; i++)
			seen = !strcmp(m->files[i]->path, path);
		if (seen)
			continue;
		if (add_file(m, path, err, errlen) ||
		    reader_safetensors.parse(last_file(m), &m->tt, &m->hp, err, errlen))
			goto out;
	}
	/* The index and the shards must agree both ways: every listed tensor
	 * in the shard the index names, every tensor of a shard listed. */
	json_object_foreach(wm, key, val) {
		const TensorRef *t = tensor_table_find(&m->tt, key);
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, json_string_value(val));
		if (!t) {
			snprintf(err, errlen, "%s: tensor %s is listed in weight_map but not in shard %s",
				 index, key, json_string_value(val));
			goto out;
		}
		if (strcmp(t->file, path)) {
			snprintf(err, errlen, "%s: tensor %s is listed in weight_map under shard %s, "
				 "but it is in %s", index, key, json_string_value(val), t->file);
			goto out;
		}
	}
	for (size_t i = 0; i < m->tt.n; i++) {
		if (!json_object_get(wm, m->tt.v[i].name)) {
			snprintf(err, errlen, "%s: tensor %s of shard %s is not listed in weight_map",
				 index, m->tt.v[i].name, m->tt.v[i].file);
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An HF folder: the index if there is one, else model.safetensors, else
 * every *.safetensors file in name order. */
static int open_folder(Model *m, const char *dir, char *err, size_t errlen)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
	if (exists(p))
		return open_index(m, dir, p, err, errlen);
	snprintf(p, sizeof p, "%s/model.safetensors", dir);
	if (exists(p))
		return add_file(m, p, err, errlen) ||
		       reader_safetensors.parse(last_file(m), &m->tt, &m->hp, err, errlen) ? -1 : 0;
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t n = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!path_has_suffix(e->d_name, ".safetensors"))
			continue;
		char **v = realloc(names, (n + 1) * sizeof *v);
		if (!v || !(v[n] = strdup(e->d_name))) {
			names = v ? v : names;
			rc = -1;
			snprintf(err, errlen, "%s: out of memory", dir);
			break;
		}
		names = v;
		n++;
	}
	closedir(d);
	if (!rc && n == 0) {
		snprintf(err, errlen, "%s: no model.safetensors, index or *.safetensors file in "
			 "this folder", dir);
		rc = -1;
	}
	if (!rc)
		qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n && !rc; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, names[i]);
		rc = add_file(m, p, err, errlen) ||
		     reader_safetensors.parse(last_file(m), &m->tt, &m->hp, err, errlen) ? -1 : 0;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* ---- per-layer tensors --------------------------------------------------------- */

/* Check t against shape [a] (b == 0) or [a, b]. */
static int check_shape(const Model *m, const TensorRef *t, size_t a, size_t b, char *err,
		       size_t errlen)
{
	bool ok = b ? (t->ndim == 2 && t->shape[0] == a && t->shape[1] == b)
		    : (t->ndim == 1 && t->shape[0] == a);
	if (!ok) {
		char got[96];
		tensor_shape_str(t, got, sizeof got);
		if (b)
			snprintf(err, errlen, "%s: tensor %s: shape %s, but %s gives [%zu, %zu]",
				 t->file, t->name, got, m->hp.source, a, b);
		else
			snprintf(err, errlen, "%s: tensor %s: shape %s, but %s gives [%zu]", t->file,
				 t->name, got, m->hp.source, a);
		return -1;
	}
	if (t->dtype == STORE_UNSUPPORTED) {
		char known[192];
		dtype_list(known, sizeof known, false);
		snprintf(err, errlen, "%s: tensor %s: dtype %s is not supported (%s)", t->file,
			 t->name, t->dtype_name, known);
		return -1;
	}
	return 0;
}

/* Find the tensor of a suffix in layer i; required ones must exist. */
static int find_tensor(const Model *m, size_t i, const char *suffix, bool required,
		       const TensorRef **out, char *err, size_t errlen)
{
	char nm[320];
	*out = NULL;
	family_tensor_name(&m->fam, i, suffix, nm, sizeof nm);
	if (nm[0])
		*out = tensor_table_find(&m->tt, nm);
	if (!*out && required) {
		snprintf(err, errlen, "%s: layer %zu: tensor %s is missing", m->path, i, nm);
		return -1;
	}
	return 0;
}

static int layer_tensors(const Model *m, size_t i, LayerTensors *lt, char *err,
			 size_t errlen)
{
	const FamilyNames *fn = m->fam.names;
	const LayerShape *s = &m->fam.shape;
	size_t D = s->d_model, H = s->n_heads, G = s->n_kv_heads, d = s->head_dim;
	size_t Hd = H * d, Gd = G * d;
	memset(lt, 0, sizeof *lt);
	if (i >= m->fam.n_layers) {
		snprintf(err, errlen, "%s: layer %zu: the model has %zu layers (0..%zu)", m->path, i,
			 m->fam.n_layers, m->fam.n_layers - 1);
		return -1;
	}
	bool fused = m->fam.qkv_kind != QKV_SPLIT;
	int bad = 0;
	if (fused) {
		bad |= find_tensor(m, i, fn->qkv, true, &lt->qkv, err, errlen);
		bad = bad || find_tensor(m, i, fn->bqkv, false, &lt->bqkv, err, errlen);
	} else {
		bad |= find_tensor(m, i, fn->q, true, &lt->q, err, errlen);
		bad = bad || find_tensor(m, i, fn->k, true, &lt->k, err, errlen);
		bad = bad || find_tensor(m, i, fn->v, true, &lt->v, err, errlen);
		bad = bad || find_tensor(m, i, fn->bq, false, &lt->bq, err, errlen);
		bad = bad || find_tensor(m, i, fn->bk, false, &lt->bk, err, errlen);
		bad = bad || find_tensor(m, i, fn->bv, false, &lt->bv, err, errlen);
	}
	bad = bad || find_tensor(m, i, fn->o, true, &lt->o, err, errlen);
	bad = bad || find_tensor(m, i, fn->bo, false, &lt->bo, err, errlen);
	bad = bad || find_tensor(m, i, fn->q_norm, false, &lt->q_norm, err, errlen);
	bad = bad || find_tensor(m, i, fn->k_norm, false, &lt->k_norm, err, errlen);
	bad = bad || find_tensor(m, i, fn->attn_norm, false, &lt->norm, err, errlen);
	bad = bad || find_tensor(m, i, fn->attn_norm_bias, false, &lt->norm_bias, err, errlen);
	if (bad)
		return -1;
	if (fused) {
		size_t rows = m->fam.qkv_kind == QKV_FUSED_PER_HEAD ? 3 * Hd : Hd + 2 * Gd;
		if (check_shape(m, lt->qkv, rows, D, err, errlen) ||
		    (lt->bqkv && check_shape(m, lt->bqkv, rows, 0, err, errlen)))
			return -1;
	} else if (check_shape(m, lt->q, Hd, D, err, errlen) ||
		   check_shape(m, lt->k, Gd, D, err, errlen) ||
		   check_shape(m, lt->v, Gd, D, err, errlen) ||
		   (lt->bq && check_shape(m, lt->bq, Hd, 0, err, errlen)) ||
		   (lt->bk && check_shape(m, lt->bk, Gd, 0, err, errlen)) ||
		   (lt->bv && check_shape(m, lt->bv, Gd, 0, err, errlen))) {
		return -1;
	}
	if (check_shape(m, lt->o, D, Hd, err, errlen) ||
	    (lt->bo && check_shape(m, lt->bo, D, 0, err, errlen)) ||
	    (lt->norm && check_shape(m, lt->norm, D, 0, err, errlen)) ||
	    (lt->norm_bias && check_shape(m, lt->norm_bias, D, 0, err, errlen)))
		return -1;
	if (!lt->q_norm != !lt->k_norm) {
		snprintf(err, errlen, "%s: layer %zu: QK-norm on only one of q and k", m->path, i);
		return -1;
	}
	if (lt->q_norm) {
		/* Per head (Qwen3: d entries) or over all heads (OLMo2: H*d). */
		bool per_head = lt->q_norm->ndim == 1 && lt->q_norm->shape[0] == d;
		if (check_shape(m, lt->q_norm, per_head ? d : Hd, 0, err, errlen) ||
		    check_shape(m, lt->k_norm, per_head ? d : Gd, 0, err, errlen))
			return -1;
	}
	return 0;
}

/* ---- open ------------------------------------------------------------------- */

/* What the family adds: local RoPE, windows, soft-caps, M-RoPE, experts. */
static void fill_family_info(const Model *m, ModelInfo *in)
{
	const Family *f = &m->fam;
	const Hparams *hp = &m->hp;
	in->sliding_window = f->sliding_window;
	for (size_t i = 0; i < f->n_layers; i++) {
		in->n_sliding += family_layer_sliding(f, i);
		in->moe.n_sparse += family_layer_sparse(f, i);
	}
	in->theta_local = in->n_sliding ? f->theta_local : 0;
	in->attn_softcap = f->attn_softcap;
	in->final_softcap = hp->final_softcap;
	memcpy(in->mrope_section, hp->mrope_section, sizeof in->mrope_section);
	snprintf(in->rope_table, sizeof in->rope_table, "%s", hp->scaling_table);
	ModelMoe *moe = &in->moe;
	moe->n_experts = hp->n_experts;
	moe->experts_per_tok = hp->experts_per_tok;
	moe->norm_topk_prob = hp->norm_topk_prob;
	moe->expert_ff = hp->moe_ff;
	moe->shared_expert_ff = hp->shared_expert_ff;
	moe->sparse_step = hp->sparse_step ? hp->sparse_step : 1;
	for (size_t i = 0; i < f->n_layers && !moe->router[0]; i++) {
		const char *r = family_layer_sparse(f, i) ? family_router_suffix(f, &m->tt, i) : NULL;
		if (r)
			snprintf(moe->router, sizeof moe->router, "%s", r);
	}
}

static void fill_info(Model *m, const LayerTensors *lt)
{
	ModelInfo *in = &m->info;
	const Family *f = &m->fam;
	memset(in, 0, sizeof *in);
	snprintf(in->arch, sizeof in->arch, "%s", m->hp.arch[0] ? m->hp.arch : f->names->name);
	in->n_layers = f->n_layers;
	in->shape = f->shape;
	in->rope = f->rope;
	in->vocab = m->embed ? m->embed->shape[0] : 0;
	in->biases = lt->bq || lt->bk || lt->bv || lt->bqkv;
	in->o_bias = lt->bo != NULL;
	in->qk_norm = lt->q_norm != NULL;
	in->fused_qkv = lt->qkv != NULL;
	const TensorRef *q = lt->qkv ? lt->qkv : lt->q;
	in->dtype = q->dtype;
	snprintf(in->tensor_q, sizeof in->tensor_q, "%s", q->name);
	snprintf(in->tensor_k, sizeof in->tensor_k, "%s", lt->qkv ? lt->qkv->name : lt->k->name);
	snprintf(in->tensor_v, sizeof in->tensor_v, "%s", lt->qkv ? lt->qkv->name : lt->v->name);
	snprintf(in->tensor_o, sizeof in->tensor_o, "%s", lt->o->name);
	fill_family_info(m, in);
}

/* The dtype mixture: of every tensor, and of the attention weights of
 * every layer (found and checked already). */
static void count_dtypes(Model *m)
{
	ModelInfo *in = &m->info;
	for (size_t i = 0; i < m->tt.n; i++)
		dtype_mix_add(&in->dtypes, m->tt.v[i].dtype_name);
	for (size_t i = 0; i < m->fam.n_layers; i++) {
		LayerTensors lt;
		char err[8];
		if (layer_tensors(m, i, &lt, err, sizeof err))
			continue;
		const TensorRef *w[4] = {lt.qkv ? lt.qkv : lt.q, lt.k, lt.v, lt.o};
		for (int k = 0; k < 4; k++)
			if (w[k])
				dtype_mix_add(&in->attn_dtypes[k], w[k]->dtype_name);
	}
}

/* An unknown family is read with the conventions of the scheme its
 * tensor names follow: say which, in one line (info.note). */
static void note_assumptions(Model *m)
{
	const Hparams *hp = &m->hp;
	ModelInfo *in = &m->info;
	if (hp->arch_known)
		return;
	char what[128];
	bool gguf = m->format == MODEL_FMT_GGUF;
	if (hp->arch[0])
		snprintf(what, sizeof what, "%s '%s' is not a family ropefold knows",
			 gguf ? "general.architecture" : "model_type", hp->arch);
	else
		snprintf(what, sizeof what, "no model_type");
	snprintf(in->note, sizeof in->note, "%.200s: %s: %s; assumed: tensor names as in the '%s' "
		 "scheme (%s), RoPE pairs %s (%s), theta %g%s, no Gemma-style norm offset or "
		 "embedding scale: results hold only if these are its own", m->path, hp->source,
		 what, m->fam.names->name, in->tensor_q,
		 in->rope.layout == ROPE_HALF ? "half-split" : "interleaved",
		 gguf ? "llama.cpp's NORM type" : "HF rotate_half", in->rope.theta,
		 hp->theta > 0 ? "" : " (not given)");
}

/* The output classifier when it is not tied to the embeddings: beside the
 * layers' parent ("lm_head.weight" for "model.layers.", "output.weight"
 * in GGUF and Meta files, "embed_out.weight" for GPT-NeoX), or NULL. */
static const TensorRef *find_lm_head(const Model *m)
{
	static const struct {
		const char *scheme, *name;
	} heads[] = {{"gguf", "output.weight"}, {"meta", "output.weight"},
		     {"hf", "lm_head.weight"}, {"hf-fused", "lm_head.weight"},
		     {"gpt-neox", "embed_out.weight"}};
	const char *pre = m->fam.prefix;
	size_t n = strlen(pre);
	/* the parent of "a.model.": "a." */
	if (n && pre[n - 1] == '.')
		n--;
	while (n && pre[n - 1] != '.')
		n--;
	for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
		if (strcmp(heads[i].scheme, m->fam.names->name))
			continue;
		char nm[320];
		snprintf(nm, sizeof nm, "%.*s%s", (int)n, pre, heads[i].name);
		return tensor_table_find(&m->tt, nm);
	}
	return NULL;
}

/* The token embeddings (read: a convertible dtype) and an untied
 * classifier (never read: any dtype, a GGUF's is often Q6_K) against the
 * stated vocabulary: rows = vocab_size, columns = D. */
static int check_vocab(const Model *m, char *err, size_t errlen)
{
	const TensorRef *e = m->embed, *head = find_lm_head(m);
	size_t D = m->fam.shape.d_model, vocab = m->hp.vocab;
	const TensorRef *ts[2] = {e, head};
	for (int k = 0; k < 2; k++) {
		const TensorRef *t = ts[k];
		if (!t)
			continue;
		if (vocab && t->ndim == 2 && t->shape[0] != vocab) {
			snprintf(err, errlen, "%s: tensor %s: %zu rows, but %s gives vocab_size %zu",
				 t->file, t->name, t->shape[0], m->hp.source, vocab);
			return -1;
		}
		if (t->ndim != 2 || t->shape[1] != D) {
			char got[96];
			tensor_shape_str(t, got, sizeof got);
			snprintf(err, errlen, "%s: tensor %s: shape %s, but %s gives [vocab, %zu]",
				 t->file, t->name, got, m->hp.source, D);
			return -1;
		}
	}
	if (e && check_shape(m, e, e->shape[0], D, err, errlen))
		return -1;
	if (e && head && head->shape[0] != e->shape[0]) {
		snprintf(err, errlen, "%s: tensor %s: %zu rows, but the embeddings %s have %zu",
			 head->file, head->name, head->shape[0], e->name, e->shape[0]);
		return -1;
	}
	return 0;
}

/* An MLA checkpoint (data/mla_model.c): its family, every layer's
 * tensors, the embeddings and the info. */
static int model_finish_mla(Model *m, char *err, size_t errlen)
{
	if (mla_family_resolve(&m->tt, &m->hp, m->path, &m->mla, &m->fam, err, errlen))
		return -1;
	m->is_mla = true;
	char nm[320];
	snprintf(nm, sizeof nm, "%s%s", m->fam.prefix, m->fam.names->embed);
	m->embed = tensor_table_find(&m->tt, nm);
	if (check_vocab(m, err, errlen))
		return -1;
	ModelInfo *in = &m->info;
	memset(in, 0, sizeof *in);
	snprintf(in->arch, sizeof in->arch, "%s", m->hp.arch[0] ? m->hp.arch : "deepseek");
	in->n_layers = m->fam.n_layers;
	in->shape = m->fam.shape;
	in->rope = m->fam.rope;
	in->vocab = m->embed ? m->embed->shape[0] : 0;
	in->mla = true;
	in->mla_shape = m->mla.shape;
	in->mla_score_scale = m->mla.score_scale;
	mla_moe_info(&m->mla, &m->hp, in->n_layers, &in->moe);
	MlaLayerTensors lt;
	if (mla_layer_tensors(&m->tt, &m->mla, 0, &lt, err, errlen))
		return -1;
	in->dtype = lt.t[MLA_T_KV_A]->dtype;
	snprintf(in->tensor_q, sizeof in->tensor_q, "%s", lt.t[MLA_T_Q_B]->name);
	snprintf(in->tensor_k, sizeof in->tensor_k, "%s", lt.t[MLA_T_KV_A]->name);
	in->mla_kv_b = mla_kv_b_layout(&lt);
	const TensorRef *v0 = lt.t[MLA_T_KV_B] ? lt.t[MLA_T_KV_B] : lt.t[MLA_T_V_B];
	snprintf(in->tensor_v, sizeof in->tensor_v, "%s", v0->name);
	snprintf(in->tensor_o, sizeof in->tensor_o, "%s", lt.t[MLA_T_O]->name);
	for (size_t i = 0; i < m->tt.n; i++)
		dtype_mix_add(&in->dtypes, m->tt.v[i].dtype_name);
	for (size_t i = 0; i < m->fam.n_layers; i++) {
		if (mla_layer_tensors(&m->tt, &m->mla, i, &lt, err, errlen))
			return -1;
		/* q, k, v, o: kv_b (in every form stored) counts as v */
		const TensorRef *w[6] = {lt.t[MLA_T_Q_B], lt.t[MLA_T_KV_A], lt.t[MLA_T_KV_B],
					 lt.t[MLA_T_O], lt.t[MLA_T_K_B], lt.t[MLA_T_V_B]};
		for (int k = 0; k < 6; k++)
			if (w[k])
				dtype_mix_add(&in->attn_dtypes[k < 4 ? k : 2], w[k]->dtype_name);
	}
	return 0;
}

/* Resolve the family of the parsed files (already in m) and check it. */
static int model_finish(Model *m, char *err, size_t errlen)
{
	if (mla_model_detect(&m->tt))
		return model_finish_mla(m, err, errlen);
	if (family_resolve(&m->tt, &m->hp, m->path, &m->fam, err, errlen))
		return -1;
	/* Every layer's attention tensors, found and shape-checked now (names
	 * and header shapes only, nothing is read), so that info, check and
	 * fold refuse a checkpoint missing a tensor in any layer alike. */
	LayerTensors lt, li;
	if (layer_tensors(m, 0, &lt, err, errlen))
		return -1;
	for (size_t i = 1; i < m->fam.n_layers; i++)
		if (layer_tensors(m, i, &li, err, errlen))
			return -1;
	char nm[320];
	snprintf(nm, sizeof nm, "%s%s", m->fam.prefix, m->fam.names->embed);
	m->embed = tensor_table_find(&m->tt, nm);
	if (check_vocab(m, err, errlen))
		return -1;
	fill_info(m, &lt);
	count_dtypes(m);
	note_assumptions(m);
	return 0;
}

/* The whole-file checks of the reader that parsed the files. */
static int verify_files(const Model *m, char *err, size_t errlen)
{
	const ReaderOps *ops[] = {&reader_safetensors, &reader_gguf, &reader_llama2c};
	for (size_t k = 0; k < 3; k++) {
		if (ops[k]->format != m->format || !ops[k]->verify)
			continue;
		for (size_t i = 0; i < m->nfiles; i++)
			if (ops[k]->verify(m->files[i], &m->tt, err, errlen))
				return -1;
	}
	return 0;
}

static int open_file(Model *m, const char *path, char *err, size_t errlen)
{
	char dir[4096];
	path_dirname(path, dir, sizeof dir);
	if (path_has_suffix(path, ".json")) {
		/* A shard index given directly. */
		char cfg[4200];
		snprintf(cfg, sizeof cfg, "%s/config.json", dir);
		m->format = MODEL_FMT_SAFETENSORS;
		if (hfconfig_read(cfg, &m->hp, err, errlen))
			return -1;
		return open_index(m, dir, path, err, errlen);
	}
	if (add_file(m, path, err, errlen))
		return -1;
	const InFile *f = m->files[0];
	unsigned char head[READER_SNIFF_BYTES];
	size_t nhead = f->n < sizeof head ? f->n : sizeof head;
	if (infile_read(f, 0, head, nhead, err, errlen))
		return -1;
	/* The content decides; a file named *.safetensors that is not GGUF is
	 * read as safetensors even when its header is broken, so that the
	 * message is about its header and not about llama2.c. */
	const ReaderOps *r = &reader_llama2c;
	if (reader_gguf.sniff(head, nhead, f->n))
		r = &reader_gguf;
	else if (reader_safetensors.sniff(head, nhead, f->n) ||
		 path_has_suffix(path, ".safetensors"))
		r = &reader_safetensors;
	m->format = r->format;
	/* The header first, so that a broken file is named as such. */
	if (r->parse(f, &m->tt, &m->hp, err, errlen))
		return -1;
	if (r == &reader_safetensors) {
		char cfg[4200];
		snprintf(cfg, sizeof cfg, "%s/config.json", dir);
		if (!exists(cfg)) {
			snprintf(err, errlen, "%s: no config.json beside this safetensors file (the "
				 "head counts come from it)", path);
			return -1;
		}
		if (hfconfig_read(cfg, &m->hp, err, errlen))
			return -1;
	}
	return 0;
}

int model_open(const char *path, Model **out, char *err, size_t errlen)
{
	*out = NULL;
	Model *m = calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	snprintf(m->path, sizeof m->path, "%s", path);
	struct stat st;
	int rc;
	if (stat(path, &st) != 0) {
		infile_why(path, errno, err, errlen);
		rc = -1;
	} else if (S_ISDIR(st.st_mode)) {
		char cfg[4200];
		snprintf(cfg, sizeof cfg, "%s/config.json", path);
		m->format = MODEL_FMT_SAFETENSORS;
		if (!exists(cfg)) {
			snprintf(err, errlen, "%s: folder without config.json", path);
			rc = -1;
		} else {
			rc = hfconfig_read(cfg, &m->hp, err, errlen) ||
			     open_folder(m, path, err, errlen) ? -1 : 0;
		}
	} else {
		rc = open_file(m, path, err, errlen);
	}
	if (!rc && m->nfiles) {
		/* The format of the reader that parsed the files, not a second
		 * guess from their first bytes. */
		rc = model_finish(m, err, errlen) || verify_files(m, err, errlen) ? -1 : 0;
		m->info.format = m->format;
	}
	if (rc) {
		model_close(m);
		return -1;
	}
	*out = m;
	return 0;
}

int model_open_memory(const void *p, size_t n, const char *config_json, const char *name,
		      Model **out, char *err, size_t errlen)
{
	*out = NULL;
	Model *m = calloc(1, sizeof *m);
	InFile **files = calloc(1, sizeof *files);
	InFile *f = calloc(1, sizeof *f);
	if (!m || !files || !f || infile_wrap(f, name, p, n)) {
		free(m);
		free(files);
		free(f);
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	snprintf(m->path, sizeof m->path, "%s", name);
	files[0] = f;
	m->files = files;
	m->nfiles = 1;
	if (n == 0) {
		snprintf(err, errlen, "%s: empty file", name);
		model_close(m);
		return -1;
	}
	/* As model_open: GGUF by its magic; with a config.json the bytes are
	 * safetensors (as a file of that name would be), else llama2.c. */
	unsigned char head[READER_SNIFF_BYTES];
	size_t nhead = n < sizeof head ? n : sizeof head;
	infile_read(f, 0, head, nhead, err, errlen);   /* memory: cannot fail */
	const ReaderOps *r = &reader_llama2c;
	if (reader_gguf.sniff(head, nhead, n))
		r = &reader_gguf;
	else if (config_json || reader_safetensors.sniff(head, nhead, n))
		r = &reader_safetensors;
	if (r == &reader_safetensors &&
	    (!config_json ||
	     hfconfig_read_string(config_json, strlen(config_json), "config.json", &m->hp, err,
				  errlen))) {
		if (!config_json)
			snprintf(err, errlen, "%s: safetensors needs a config.json", name);
		model_close(m);
		return -1;
	}
	m->format = r->format;
	if (r->parse(f, &m->tt, &m->hp, err, errlen) || model_finish(m, err, errlen) ||
	    verify_files(m, err, errlen)) {
		model_close(m);
		return -1;
	}
	m->info.format = r->format;
	*out = m;
	return 0;
}

const ModelInfo *model_info(const Model *m)
{
	return &m->info;
}

const TensorTable *model_tensor_table(const Model *m)
{
	return &m->tt;
}

const Family *model_family(const Model *m)
{
	return &m->fam;
}

const char *model_path(const Model *m)
{
	return m->path;
}

void model_close(Model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nfiles; i++) {
		infile_close(m->files[i]);
		free(m->files[i]);
	}
	free(m->files);
	tensor_table_free(&m->tt);
	free(m->hp.layer_bits);
	free(m);
}

/* ---- loading --------------------------------------------------------------- */

/* Where load_tensors puts a layer's attention: in float64 or in float32,
 * each buffer in a Layer's shape. The big ones are the caller's; the small
 * norm tensors get theirs from alloc (float32: the caller's to keep) or
 * malloc (float64: the Layer's). */
typedef struct {
	bool f32;
	void *wq, *wk, *wv, *wo, *bq, *bk, *bv, *bo, *attn_norm;
	void *attn_norm_bias, *q_norm, *k_norm;   /* set by the load, or NULL */
	bool qk_norm_per_head;
	float *(*alloc)(void *ctx, size_t n);
	void *ctx;
} AttnDst;

/* Convert elements [first, first + n) of t into out + at elements of the
 * destination's precision; a failure names t, and *fin is made false when
 * a value is NaN or Inf. */
static int read_range(const TensorRef *t, size_t first, size_t n, const AttnDst *b, void *out,
		      size_t at, bool *fin, char *err, size_t errlen)
{
	if (b->f32)
		return tensor_read_float_scan(t, first, n, (float *)out + at, fin, err, errlen);
	return tensor_read_scan(t, first, n, (double *)out + at, fin, err, errlen);
}

static void *alloc_read(const TensorRef *t, const AttnDst *b, bool *fin, char *err,
			size_t errlen)
{
	void *v = b->f32 ? (void *)b->alloc(b->ctx, t->nelem) : malloc(t->nelem * sizeof(double));
	if (!v) {
		snprintf(err, errlen, "%s: tensor %s: out of memory", t->file, t->name);
		return NULL;
	}
	if (read_range(t, 0, t->nelem, b, v, 0, fin, err, errlen)) {
		if (!b->f32)
			free(v);
		return NULL;
	}
	return v;
}

/* GPT-NeoX: split per-head [q_h; k_h; v_h] rows (each d x cols) into q, k, v. */
static int read_per_head(const TensorRef *t, size_t H, size_t d, size_t cols, const AttnDst *b,
			 void *q, void *k, void *v, bool *fin, char *err, size_t errlen)
{
	void *dst[3] = {q, k, v};
	for (size_t h = 0; h < H; h++)
		for (size_t j = 0; j < 3; j++)
			if (read_range(t, (h * 3 + j) * d * cols, d * cols, b, dst[j], h * d * cols,
				       fin, err, errlen))
				return -1;
	return 0;
}

/* n values at v plus one, in b's precision. */
static void add_one(const AttnDst *b, void *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		if (b->f32)
			((float *)v)[i] += 1.0f;
		else
			((double *)v)[i] += 1.0;
	}
}

/* *fin: false when a value read is NaN or Inf. On failure the small
 * tensors read so far stay in b for the caller to release. */
static int load_tensors(const Model *m, const LayerTensors *lt, const LayerShape *s, AttnDst *b,
			bool *fin, char *err, size_t errlen)
{
	size_t D = s->d_model, Hd = s->n_heads * s->head_dim, Gd = s->n_kv_heads * s->head_dim;
	if (m->fam.qkv_kind == QKV_FUSED_PER_HEAD) {
		if (read_per_head(lt->qkv, s->n_heads, s->head_dim, D, b, b->wq, b->wk, b->wv, fin,
				  err, errlen) ||
		    (lt->bqkv && read_per_head(lt->bqkv, s->n_heads, s->head_dim, 1, b, b->bq, b->bk,
					       b->bv, fin, err, errlen)))
			return -1;
	} else if (lt->qkv) {
		if (read_range(lt->qkv, 0, Hd * D, b, b->wq, 0, fin, err, errlen) ||
		    read_range(lt->qkv, Hd * D, Gd * D, b, b->wk, 0, fin, err, errlen) ||
		    read_range(lt->qkv, (Hd + Gd) * D, Gd * D, b, b->wv, 0, fin, err, errlen))
			return -1;
		if (lt->bqkv && (read_range(lt->bqkv, 0, Hd, b, b->bq, 0, fin, err, errlen) ||
				 read_range(lt->bqkv, Hd, Gd, b, b->bk, 0, fin, err, errlen) ||
				 read_range(lt->bqkv, Hd + Gd, Gd, b, b->bv, 0, fin, err, errlen)))
			return -1;
	} else {
		if (read_range(lt->q, 0, Hd * D, b, b->wq, 0, fin, err, errlen) ||
		    read_range(lt->k, 0, Gd * D, b, b->wk, 0, fin, err, errlen) ||
		    read_range(lt->v, 0, Gd * D, b, b->wv, 0, fin, err, errlen) ||
		    (lt->bq && read_range(lt->bq, 0, Hd, b, b->bq, 0, fin, err, errlen)) ||
		    (lt->bk && read_range(lt->bk, 0, Gd, b, b->bk, 0, fin, err, errlen)) ||
		    (lt->bv && read_range(lt->bv, 0, Gd, b, b->bv, 0, fin, err, errlen)))
			return -1;
	}
	if (read_range(lt->o, 0, D * Hd, b, b->wo, 0, fin, err, errlen) ||
	    (lt->bo && read_range(lt->bo, 0, D, b, b->bo, 0, fin, err, errlen)) ||
	    (lt->norm && read_range(lt->norm, 0, D, b, b->attn_norm, 0, fin, err, errlen)))
		return -1;
	if (lt->norm_bias && !(b->attn_norm_bias = alloc_read(lt->norm_bias, b, fin, err, errlen)))
		return -1;
	if (lt->q_norm) {
		b->qk_norm_per_head = lt->q_norm->nelem == s->head_dim;
		if (!(b->q_norm = alloc_read(lt->q_norm, b, fin, err, errlen)) ||
		    !(b->k_norm = alloc_read(lt->k_norm, b, fin, err, errlen)))
			return -1;
	}
	if (m->fam.norm_plus_one) {
		/* Gemma's RMSNorm multiplies by (1 + w): keep the effective weight. */
		add_one(b, b->attn_norm, D);
		add_one(b, b->q_norm, lt->q_norm ? lt->q_norm->nelem : 0);
		add_one(b, b->k_norm, lt->k_norm ? lt->k_norm->nelem : 0);
	}
	return 0;
}

int model_layer_kind(const Model *m, size_t i, ModelLayerKind *out)
{
	memset(out, 0, sizeof *out);
	if (i >= m->fam.n_layers)
		return -1;
	out->rope = family_layer_rope(&m->fam, i);
	out->sliding = family_layer_sliding(&m->fam, i);
	out->sliding_window = family_layer_window(&m->fam, i);
	out->attn_softcap = m->fam.attn_softcap;
	out->sparse = m->is_mla ? mla_layer_sparse(&m->mla, i) : family_layer_sparse(&m->fam, i);
	return 0;
}

const MlaFamily *model_mla(const Model *m)
{
	return m->is_mla ? &m->mla : NULL;
}

int model_load_mla_layer(Model *m, size_t i, MlaLayer *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (!m->is_mla) {
		snprintf(err, errlen, "%s: not a multi-head latent attention model", m->path);
		return -1;
	}
	return mla_read_layer(&m->tt, &m->mla, m->path, i, out, err, errlen);
}

/* Whether l's buffers are those layer_alloc gives shape s with flags. */
static bool layer_fits(const Layer *l, const LayerShape *s, unsigned flags)
{
	return l->wq && l->shape.d_model == s->d_model && l->shape.n_heads == s->n_heads &&
	       l->shape.n_kv_heads == s->n_kv_heads && l->shape.head_dim == s->head_dim &&
	       !l->bq == !(flags & LAYER_WITH_QKV_BIAS) && !l->bo == !(flags & LAYER_WITH_O_BIAS) &&
	       !l->attn_norm == !(flags & LAYER_WITH_ATTN_NORM);
}

/* l as layer_alloc(s, flags) leaves it, its big buffers kept (their values
 * are all overwritten by load_tensors); the small tensors read with
 * alloc_read are released. */
static void layer_reset(Layer *l)
{
	Layer k = *l;
	free(l->attn_norm_bias);
	free(l->q_norm);
	free(l->k_norm);
	memset(l, 0, sizeof *l);
	l->shape = k.shape;
	l->rope = rope_spec_default(k.shape.head_dim);
	l->norm_eps = 1e-5;
	l->qk_norm_eps = 1e-6;
	l->wq = k.wq;
	l->wk = k.wk;
	l->wv = k.wv;
	l->wo = k.wo;
	l->bq = k.bq;
	l->bk = k.bk;
	l->bv = k.bv;
	l->bo = k.bo;
	l->attn_norm = k.attn_norm;
}

/* The optional tensors lt has, as layer_alloc's flags. */
static unsigned layer_flags(const LayerTensors *lt)
{
	unsigned flags = 0;
	if (lt->bq || lt->bk || lt->bv || lt->bqkv)
		flags |= LAYER_WITH_QKV_BIAS;
	if (lt->bo)
		flags |= LAYER_WITH_O_BIAS;
	if (lt->norm)
		flags |= LAYER_WITH_ATTN_NORM;
	return flags;
}

/* Layer i's settings, all but its shape and weights, into l. */
static void layer_header(const Model *m, size_t i, Layer *l)
{
	l->rope = family_layer_rope(&m->fam, i);
	l->sliding_window = family_layer_window(&m->fam, i);
	l->attn_softcap = m->fam.attn_softcap;
	l->score_scale = m->fam.score_scale;
	l->norm_eps = m->fam.norm_eps;
	l->qk_norm_eps = m->fam.qk_norm_eps;
	l->attn_norm_kind = m->fam.norm_kind;
}

static int load_layer(Model *m, size_t i, Layer *out, bool reuse, char *err, size_t errlen)
{
	LayerTensors lt;
	if (m->is_mla) {
		if (reuse)
			layer_free(out);
		snprintf(err, errlen, "%s: layer %zu is DeepSeek multi-head latent attention "
			 "(MLA), which this mode does not read yet", m->path, i);
		return -1;
	}
	if (layer_tensors(m, i, &lt, err, errlen)) {
		if (reuse)
			layer_free(out);
		return -1;
	}
	unsigned flags = layer_flags(&lt);
	if (reuse && layer_fits(out, &m->fam.shape, flags)) {
		layer_reset(out);
	} else {
		if (reuse)
			layer_free(out);
		if (layer_alloc(out, &m->fam.shape, flags) != RF_OK) {
			snprintf(err, errlen, "%s: layer %zu: out of memory", m->path, i);
			return -1;
		}
	}
	layer_header(m, i, out);
	bool finite = true;   /* told by the reads, which see every value */
	AttnDst b = {false, out->wq, out->wk, out->wv, out->wo, out->bq, out->bk, out->bv, out->bo,
		     out->attn_norm, NULL, NULL, NULL, false, NULL, NULL};
	int rc = load_tensors(m, &lt, &out->shape, &b, &finite, err, errlen);
	out->attn_norm_bias = b.attn_norm_bias;
	out->q_norm = b.q_norm;
	out->k_norm = b.k_norm;
	out->qk_norm_per_head = b.qk_norm_per_head;
	if (rc) {
		layer_free(out);
		return -1;
	}
	const char *bad;
	if (!finite && !layer_is_finite(out, &bad)) {
		snprintf(err, errlen, "%s: layer %zu: NaN or Inf in the %s", m->path, i, bad);
		layer_free(out);
		return -1;
	}
	return 0;
}

int model_load_layer(Model *m, size_t i, Layer *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	return load_layer(m, i, out, false, err, errlen);
}

int model_reload_layer(Model *m, size_t i, Layer *l, char *err, size_t errlen)
{
	return load_layer(m, i, l, true, err, errlen);
}

int model_load_layer_float(Model *m, size_t i, Layer *hdr, LayerFloats *out,
			   float *(*alloc)(void *ctx, size_t n), void *ctx, char *err, size_t errlen)
{
	memset(hdr, 0, sizeof *hdr);
	memset(out, 0, sizeof *out);
	if (m->is_mla)
		return load_layer(m, i, hdr, false, err, errlen);   /* its refusal */
	LayerTensors lt;
	if (layer_tensors(m, i, &lt, err, errlen))
		return -1;
	const LayerShape *s = &m->fam.shape;
	size_t D = s->d_model, Hd = s->n_heads * s->head_dim, Gd = s->n_kv_heads * s->head_dim;
	hdr->shape = *s;
	layer_header(m, i, hdr);
	unsigned flags = layer_flags(&lt);
	AttnDst b = {true, alloc(ctx, Hd * D), alloc(ctx, Gd * D), alloc(ctx, Gd * D),
		     alloc(ctx, D * Hd), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
		     false, alloc, ctx};
	bool nomem = !b.wq || !b.wk || !b.wv || !b.wo;
	if (flags & LAYER_WITH_QKV_BIAS) {
		b.bq = alloc(ctx, Hd);
		b.bk = alloc(ctx, Gd);
		b.bv = alloc(ctx, Gd);
		nomem |= !b.bq || !b.bk || !b.bv;
	}
	if (flags & LAYER_WITH_O_BIAS)
		nomem |= !(b.bo = alloc(ctx, D));
	if (flags & LAYER_WITH_ATTN_NORM)
		nomem |= !(b.attn_norm = alloc(ctx, D));
	if (nomem) {
		snprintf(err, errlen, "%s: layer %zu: out of memory", m->path, i);
		return -1;
	}
	bool finite = true;
	if (load_tensors(m, &lt, s, &b, &finite, err, errlen))
		return -1;
	if (!finite) {
		/* rare: the float64 load names the tensor, as every mode does */
		Layer l;
		if (model_load_layer(m, i, &l, err, errlen))
			return -1;
		layer_free(&l);
		snprintf(err, errlen, "%s: layer %zu: an attention weight is past float32's range",
			 m->path, i);
		return -1;
	}
	*out = (LayerFloats){b.wq, b.wk, b.wv, b.wo, b.bq, b.bk, b.bv, b.bo, b.q_norm, b.k_norm,
			     b.attn_norm, b.attn_norm_bias, b.qk_norm_per_head};
	return 0;
}

int model_load_embeddings(Model *m, const size_t *tokens, size_t n, double *out, char *err,
			  size_t errlen)
{
	const TensorRef *e = m->embed;
	size_t D = m->fam.shape.d_model;
	if (!e) {
		snprintf(err, errlen, "%s: no token embeddings (%s%s)", m->path, m->fam.prefix,
			 m->fam.names->embed);
		return -1;
	}
	double scale = m->fam.embed_scale_sqrt_d ? sqrt((double)D) : 1.0;
	for (size_t t = 0; t < n; t++) {
		if (tokens[t] >= e->shape[0]) {
			snprintf(err, errlen, "%s: token id %zu is out of range (vocab %zu)", m->path,
				 tokens[t], e->shape[0]);
			return -1;
		}
		if (tensor_read(e, tokens[t] * D, D, out + t * D, err, errlen))
			return -1;
		for (size_t j = 0; j < D; j++) {
			if (!isfinite(out[t * D + j])) {
				snprintf(err, errlen, "%s: tensor %s: NaN or Inf in row %zu", e->file,
					 e->name, tokens[t]);
				return -1;
			}
			out[t * D + j] *= scale;
		}
	}
	return 0;
}
