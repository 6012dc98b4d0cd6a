#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/rope.h"
#include "data/mla_model.h"
#include "data/mla_split.h"

/* ---- names ---------------------------------------------------------------- */

static const char *const hf_suffix[MLA_T_COUNT] = {
	".self_attn.q_a_proj.weight", ".self_attn.q_a_layernorm.weight",
	".self_attn.q_b_proj.weight", ".self_attn.kv_a_proj_with_mqa.weight",
	".self_attn.kv_a_layernorm.weight", ".self_attn.kv_b_proj.weight",
	".self_attn.o_proj.weight", ".input_layernorm.weight", NULL, NULL,
};
static const char *const gguf_suffix[MLA_T_COUNT] = {
	".attn_q_a.weight", ".attn_q_a_norm.weight", ".attn_q_b.weight",
	".attn_kv_a_mqa.weight", ".attn_kv_a_norm.weight", ".attn_kv_b.weight",
	".attn_output.weight", ".attn_norm.weight", ".attn_k_b.weight", ".attn_v_b.weight",
};

/* What families.c and model.c read of a standard scheme: the embeddings and
 * the output head (found by scheme name), the input norm. */
static const FamilyNames hf_names = {
	"hf", "layers.", NULL, NULL, NULL, NULL, ".self_attn.o_proj.weight", NULL, NULL, NULL,
	NULL, NULL, NULL, NULL, ".input_layernorm.weight", NULL, "embed_tokens.weight",
	QKV_SPLIT, NORM_RMS, false};
static const FamilyNames gguf_names = {
	"gguf", "blk.", NULL, NULL, NULL, NULL, ".attn_output.weight", NULL, NULL, NULL, NULL,
	NULL, NULL, NULL, ".attn_norm.weight", NULL, "token_embd.weight", QKV_SPLIT, NORM_RMS,
	false};

static bool ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && !memcmp(s + n - m, suf, m);
}

bool mla_model_detect(const TensorTable *tt)
{
	for (size_t i = 0; i < tt->n; i++)
		if (ends_with(tt->v[i].name, "kv_a_proj_with_mqa.weight") ||
		    ends_with(tt->v[i].name, "attn_kv_a_mqa.weight"))
			return true;
	return false;
}

/* ---- config.json ------------------------------------------------------------ */

/* A number >= 0 under key of obj (absent or null: *out untouched). */
static int nonneg(const HfKeys *k, json_t *obj, const char *key, double *out)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	if (!v || json_is_null(v))
		return 0;
	double x = json_number_value(v);
	if (!json_is_number(v) || !isfinite(x) || x < 0) {
		snprintf(k->err, k->errlen, "%s: %s%s: bad value (must be a number of at least 0)",
			 k->path, k->prefix, key);
		return -1;
	}
	*out = x;
	return 0;
}

int mla_hfconfig_read(json_t *c, const HfKeys *k, Hparams *hp)
{
	static const char *keys[] = {"q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
				     "qk_rope_head_dim", "v_head_dim"};
	size_t *out[] = {&hp->q_lora_rank, &hp->kv_lora_rank, &hp->qk_nope_dim,
			 &hp->qk_rope_dim, &hp->v_head_dim};
	for (size_t i = 0; i < 5; i++)
		if (hfkey_whole(k, c, keys[i], 1, LAYER_MAX_DIM, out[i]) < 0)
			return -1;
	if (!hp->kv_lora_rank)
		return 0;
	if (mla_moe_hfconfig_read(c, k, hp))
		return -1;
	/* HF's DeepseekV3: rope_interleave (default true) permutes the stored
	 * rope coordinates to half-split before rotate_half; false applies
	 * rotate_half to them as stored */
	bool inter = true;
	if (hfkey_bool(k, c, "rope_interleave", &inter) < 0)
		return -1;
	hp->mla_rope_half = !inter;
	json_t *rs = json_object_get(c, "rope_scaling");
	if (!json_is_object(rs))
		return 0;
	HfKeys kr = *k;
	kr.prefix = "rope_scaling.";
	if (nonneg(&kr, rs, "mscale", &hp->mla_mscale) ||
	    nonneg(&kr, rs, "mscale_all_dim", &hp->mla_mscale_all_dim))
		return -1;
	return 0;
}

/* ---- resolving ----------------------------------------------------------------- */

/* The full name of tensor id of layer i. */
static void name_of(const MlaFamily *f, size_t i, const char *suffix, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%zu%s", f->prefix, f->layers, i, suffix);
}

/* "found: a, b, ..." of the layer-0 tensors, for messages. */
static void list_layer0(const TensorTable *tt, const MlaFamily *f, char *buf, size_t len)
{
	char want[200];
	snprintf(want, sizeof want, "%s%s0.", f->prefix, f->layers);
	size_t k = (size_t)snprintf(buf, len, "layer 0 holds");
	size_t shown = 0, wl = strlen(want);
	for (size_t i = 0; i < tt->n && k < len; i++) {
		const char *nm = tt->v[i].name;
		if (strncmp(nm, want, wl))
			continue;
		if (shown++ == 10) {
			snprintf(buf + k, len - k, ", ...");
			return;
		}
		char shp[64];
		tensor_shape_str(&tt->v[i], shp, sizeof shp);
		k += (size_t)snprintf(buf + k, len - k, "%s %s %s", shown > 1 ? "," : "", nm + wl,
				      shp);
	}
	if (!shown && k < len)
		snprintf(buf + k, len - k, " nothing under %s", want);
}

/* Whether t is [a], [a, b] or [a, b, c] (trailing zeros: fewer dims). */
static bool shape_is(const TensorRef *t, size_t a, size_t b, size_t c)
{
	size_t want[3] = {a, b, c}, nd = c ? 3 : b ? 2 : 1;
	if (t->ndim != nd)
		return false;
	for (size_t i = 0; i < nd; i++)
		if (t->shape[i] != want[i])
			return false;
	return true;
}

/* kv_b in one of its forms (MlaKvBLayout): attn_kv_b, or attn_k_b with
 * attn_v_b, or all three; one of the pair alone is refused. */
static int mla_kv_b_tensors(const MlaFamily *f, size_t i, const MlaLayerTensors *lt, char *err,
			    size_t errlen)
{
	const TensorRef *kb = lt->t[MLA_T_K_B], *vb = lt->t[MLA_T_V_B];
	char nm[320];
	if (!kb != !vb) {
		name_of(f, i, f->suffix[kb ? MLA_T_V_B : MLA_T_K_B], nm, sizeof nm);
		snprintf(err, errlen, "layer %zu: tensor %s is missing beside %s (llama.cpp's "
			 "split kv_b is the pair attn_k_b and attn_v_b)", i, nm,
			 (kb ? kb : vb)->name);
		return -1;
	}
	if (!lt->t[MLA_T_KV_B] && !kb) {
		name_of(f, i, f->suffix[MLA_T_KV_B], nm, sizeof nm);
		snprintf(err, errlen, "layer %zu: tensor %s is missing%s", i, nm,
			 f->suffix[MLA_T_K_B] ? " (nor the split attn_k_b and attn_v_b)" : "");
		return -1;
	}
	return 0;
}

MlaKvBLayout mla_kv_b_layout(const MlaLayerTensors *lt)
{
	if (!lt->t[MLA_T_K_B])
		return MLA_KV_B_WHOLE;
	return lt->t[MLA_T_KV_B] ? MLA_KV_B_BOTH : MLA_KV_B_SPLIT;
}

const char *mla_kv_b_layout_name(MlaKvBLayout l)
{
	static const char *const names[] = {"kv_b", "k_b+v_b", "kv_b+k_b+v_b"};
	return names[l];
}

size_t mla_rewritten(const MlaLayerTensors *lt, MlaTensorId *ids)
{
	static const MlaTensorId all[] = {MLA_T_Q_B, MLA_T_KV_A, MLA_T_KV_B, MLA_T_K_B,
					  MLA_T_V_B, MLA_T_O};
	size_t n = 0;
	for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
		if (lt->t[all[k]])
			ids[n++] = all[k];
	return n;
}

double mla_rewritten_roundoff(const MlaLayerTensors *lt, unsigned *quant)
{
	MlaTensorId ids[MLA_REWRITTEN_MAX];
	size_t n = mla_rewritten(lt, ids);
	double u = 0;
	for (size_t k = 0; k < n; k++) {
		StoreDtype t = lt->t[ids[k]]->dtype;
		u = fmax(u, dtype_unit_roundoff(t));
		if (dtype_is_block(t))
			*quant |= 1u << t;
	}
	return u;
}

size_t mla_values_max(const MlaShape *s)
{
	size_t L = s->kv_lora_rank, dn = s->qk_nope_dim, dv = s->v_head_dim;
	return s->n_heads * L * (dn > dv ? dn : dv);
}

const double *mla_values(const MlaLayer *l, MlaTensorId id, double *buf)
{
	switch (id) {
	case MLA_T_Q_A: return l->q_a;
	case MLA_T_Q_A_NORM: return l->q_a_norm;
	case MLA_T_Q_B: return l->q_b;
	case MLA_T_KV_A: return l->kv_a;
	case MLA_T_KV_A_NORM: return l->kv_a_norm;
	case MLA_T_KV_B: return l->kv_b;
	case MLA_T_O: return l->wo;
	case MLA_T_NORM: return l->attn_norm;
	case MLA_T_K_B:
		mla_split_k_b(&l->shape, l->kv_b, buf);
		return buf;
	case MLA_T_V_B:
		mla_split_v_b(&l->shape, l->kv_b, buf);
		return buf;
	case MLA_T_COUNT: break;
	}
	return NULL;
}

int mla_layer_tensors(const TensorTable *tt, const MlaFamily *f, size_t i, MlaLayerTensors *lt,
		      char *err, size_t errlen)
{
	const MlaShape *s = &f->shape;
	size_t D = s->d_model, H = s->n_heads, Lq = s->q_lora_rank, Lkv = s->kv_lora_rank;
	size_t dq = mla_qk_dim(s), dr = s->qk_rope_dim;
	memset(lt, 0, sizeof *lt);
	if (i >= f->n_layers) {
		snprintf(err, errlen, "layer %zu: the model has %zu layers (0..%zu)", i, f->n_layers,
			 f->n_layers - 1);
		return -1;
	}
	char nm[320];
	for (int id = 0; id < MLA_T_COUNT; id++) {
		const char *suf = f->suffix[id];
		if (id == MLA_T_Q_B && !Lq)
			suf = f->q_proj;
		if (((id == MLA_T_Q_A || id == MLA_T_Q_A_NORM) && !Lq) || !suf)
			continue;
		name_of(f, i, suf, nm, sizeof nm);
		lt->t[id] = tensor_table_find(tt, nm);
		/* optional: the input norm; kv_b in one of its forms (below) */
		if (!lt->t[id] && id != MLA_T_NORM && id != MLA_T_KV_B && id != MLA_T_K_B &&
		    id != MLA_T_V_B) {
			snprintf(err, errlen, "layer %zu: tensor %s is missing (%s)", i, nm,
				 Lq ? "q_lora_rank is set: q goes through q_a_proj and q_b_proj"
				    : "no q_lora_rank: q is one q_proj");
			return -1;
		}
	}
	if (mla_kv_b_tensors(f, i, lt, err, errlen))
		return -1;
	size_t dn = s->qk_nope_dim, dv = s->v_head_dim;
	struct {
		int id;
		size_t a, b, c;
	} want[] = {
		{MLA_T_Q_A, Lq, D, 0}, {MLA_T_Q_A_NORM, Lq, 0, 0},
		{MLA_T_Q_B, H * dq, Lq ? Lq : D, 0}, {MLA_T_KV_A, Lkv + dr, D, 0},
		{MLA_T_KV_A_NORM, Lkv, 0, 0}, {MLA_T_KV_B, H * (dn + dv), Lkv, 0},
		{MLA_T_O, D, H * dv, 0}, {MLA_T_NORM, D, 0, 0},
		{MLA_T_K_B, H, Lkv, dn}, {MLA_T_V_B, H, dv, Lkv},
	};
	for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
		const TensorRef *t = lt->t[want[k].id];
		if (!t)
			continue;
		if (!shape_is(t, want[k].a, want[k].b, want[k].c)) {
			char got[96], exp[64];
			tensor_shape_str(t, got, sizeof got);
			if (want[k].c)
				snprintf(exp, sizeof exp, "[%zu, %zu, %zu]", want[k].a, want[k].b,
					 want[k].c);
			else if (want[k].b)
				snprintf(exp, sizeof exp, "[%zu, %zu]", want[k].a, want[k].b);
			else
				snprintf(exp, sizeof exp, "[%zu]", want[k].a);
			/* a split kv_b without the _mla keys: its key_length and
			 * value_length were taken as the heads' widths */
			bool hint = lt->t[MLA_T_K_B] && !f->mla_keys;
			snprintf(err, errlen, "tensor %s: shape %s, but the MLA dims (D %zu, H %zu, "
				 "q_lora_rank %zu, kv_lora_rank %zu, qk_nope_head_dim %zu, "
				 "qk_rope_head_dim %zu, v_head_dim %zu) give %s%s", t->name, got, D, H,
				 Lq, Lkv, s->qk_nope_dim, dr, s->v_head_dim, exp,
				 hint ? " (a split kv_b without attention.key_length_mla and "
					"value_length_mla: key_length and value_length were read as "
					"the heads' widths, not the cached latent's)" : "");
			return -1;
		}
		if (t->dtype == STORE_UNSUPPORTED) {
			snprintf(err, errlen, "tensor %s: dtype %s is not supported", t->name,
				 t->dtype_name);
			return -1;
		}
	}
	return 0;
}

/* The dims the file states, checked for presence: -1 naming the first
 * missing one. */
static int dims_of(const Hparams *hp, bool gguf, MlaShape *s, const char **missing)
{
	memset(s, 0, sizeof *s);
	s->d_model = hp->d_model;
	s->n_heads = hp->n_heads;
	s->q_lora_rank = hp->q_lora_rank;
	s->kv_lora_rank = hp->kv_lora_rank;
	s->v_head_dim = hp->v_head_dim;
	if (gguf) {
		/* key_length = dn + dr, value_length = dv, rope.dimension_count
		 * = dr; llama.cpp's MLA conversions instead give the per-head
		 * widths as key_length_mla and value_length_mla (key_length and
		 * value_length are then the cached latent's: Lkv + dr, Lkv) */
		bool mla = hp->mla_key_len || hp->mla_value_len;
		size_t dq = mla ? hp->mla_key_len : hp->head_dim;
		s->v_head_dim = mla ? hp->mla_value_len : hp->v_head_dim;
		s->qk_rope_dim = hp->rotary_dim;
		if (!hp->kv_lora_rank)
			*missing = "deepseek2.attention.kv_lora_rank";
		else if (!dq)
			*missing = mla ? "deepseek2.attention.key_length_mla (beside value_length_mla)"
				       : "deepseek2.attention.key_length";
		else if (!hp->rotary_dim || hp->rotary_dim > dq)
			*missing = mla ? "deepseek2.rope.dimension_count (at most key_length_mla)"
				       : "deepseek2.rope.dimension_count (at most key_length)";
		else if (!s->v_head_dim)
			*missing = mla ? "deepseek2.attention.value_length_mla (beside key_length_mla)"
				       : "deepseek2.attention.value_length";
		else
			*missing = NULL;
		if (!*missing)
			s->qk_nope_dim = dq - hp->rotary_dim;
	} else {
		s->qk_nope_dim = hp->qk_nope_dim;
		s->qk_rope_dim = hp->qk_rope_dim;
		*missing = !hp->kv_lora_rank ? "kv_lora_rank"
			   : !hp->qk_nope_dim ? "qk_nope_head_dim"
			   : !hp->qk_rope_dim ? "qk_rope_head_dim"
			   : !hp->v_head_dim ? "v_head_dim" : NULL;
	}
	return *missing ? -1 : 0;
}

/* Find the scheme and prefix from layer 0's kv_a tensor. */
static bool find_scheme(const TensorTable *tt, MlaFamily *f)
{
	struct {
		const char *scheme, *layers;
		const char *const *suffix;
		const char *q_proj;
	} sch[] = {{"hf", "layers.", hf_suffix, ".self_attn.q_proj.weight"},
		   {"gguf", "blk.", gguf_suffix, ".attn_q.weight"}};
	for (size_t k = 0; k < 2; k++) {
		char want[160];
		snprintf(want, sizeof want, "%s0%s", sch[k].layers, sch[k].suffix[MLA_T_KV_A]);
		size_t wl = strlen(want), best = SIZE_MAX;
		for (size_t i = 0; i < tt->n; i++) {
			const char *nm = tt->v[i].name;
			size_t n = strlen(nm);
			if (n < wl || strcmp(nm + n - wl, want))
				continue;
			size_t pl = n - wl;
			if ((pl && nm[pl - 1] != '.') || pl >= sizeof f->prefix || pl >= best)
				continue;
			best = pl;
			memcpy(f->prefix, nm, pl);
			f->prefix[pl] = 0;
		}
		if (best != SIZE_MAX) {
			f->scheme = sch[k].scheme;
			f->layers = sch[k].layers;
			f->suffix = sch[k].suffix;
			f->q_proj = sch[k].q_proj;
			return true;
		}
	}
	return false;
}

int mla_family_resolve(const TensorTable *tt, const Hparams *hp, const char *where,
		       MlaFamily *f, Family *std, char *err, size_t errlen)
{
	memset(f, 0, sizeof *f);
	memset(std, 0, sizeof *std);
	bool gguf = !strcmp(hp->source, "GGUF metadata");
	char found[900];
	if (!find_scheme(tt, f)) {
		snprintf(err, errlen, "%s: DeepSeek multi-head latent attention (arch '%s'), but no "
			 "layer-0 kv_a_proj_with_mqa or attn_kv_a_mqa tensor names the layers",
			 where, hp->arch[0] ? hp->arch : "?");
		return -1;
	}
	const char *missing;
	f->mla_keys = gguf && (hp->mla_key_len || hp->mla_value_len);
	if (dims_of(hp, gguf, &f->shape, &missing)) {
		list_layer0(tt, f, found, sizeof found);
		snprintf(err, errlen, "%s: DeepSeek multi-head latent attention: %s %s is missing; "
			 "%s", where, gguf ? "metadata" : "config.json key", missing, found);
		return -1;
	}
	const char *why;
	if (mla_shape_check(&f->shape, &why) != RF_OK) {
		snprintf(err, errlen, "%s: DeepSeek MLA dims refused: %s", where, why);
		return -1;
	}
	f->n_layers = hp->n_layers;
	if (!f->n_layers || f->n_layers > HP_MAX_LAYERS) {
		snprintf(err, errlen, "%s: %zu layers", where, f->n_layers);
		return -1;
	}
	/* RoPE of the rope part: interleaved as stored, unless HF's
	 * rope_interleave is false (see the header) */
	RopeSpec *r = &f->rope;
	*r = rope_spec_default(f->shape.qk_rope_dim);
	r->layout = hp->mla_rope_half ? ROPE_HALF : ROPE_INTERLEAVED;
	r->theta = hp->theta > 0 ? hp->theta : 10000.0;
	r->scaling = hp->scaling;
	double dq = (double)mla_qk_dim(&f->shape);
	f->score_scale = 1.0 / sqrt(dq);
	double fac = r->scaling.factor;
	if (r->scaling.kind == ROPE_SCALING_YARN && fac > 1) {
		if (gguf) {
			/* llama.cpp: kq_scale = mscale^2 / sqrt(dq) with mscale
			 * 1 + yarn_log_multiplier ln(factor); cos and sin unscaled */
			double ms = 1.0 + hp->yarn_log_mul * log(fac);
			f->score_scale *= ms * ms;
			r->scaling.attention_factor = 1.0;
		} else {
			/* DeepSeek's modelling code: cos and sin times
			 * mscale(f, mscale) / mscale(f, mscale_all_dim) (defaults
			 * 1 and 0), the softmax scale times mscale(f,
			 * mscale_all_dim)^2 when mscale_all_dim is given */
			double m = hp->mla_mscale > 0 ? hp->mla_mscale : 1.0;
			double all = hp->mla_mscale_all_dim;
			r->scaling.attention_factor = mla_yarn_mscale(fac, m) / mla_yarn_mscale(fac, all);
			if (all > 0) {
				double ms = mla_yarn_mscale(fac, all);
				f->score_scale *= ms * ms;
			}
		}
	}
	if (rope_spec_check(r, f->shape.qk_rope_dim, &why) != RF_OK) {
		snprintf(err, errlen, "%s: the rope part's RoPE: %s", where, why);
		return -1;
	}
	f->norm_eps = hp->norm_eps > 0 ? hp->norm_eps : 1e-6;
	/* DeepSeek's code builds the latent RMSNorms with their default eps;
	 * llama.cpp's deepseek2 graph gives them the file's */
	f->latent_eps = gguf ? f->norm_eps : 1e-6;
	if (mla_moe_resolve(hp, where, f, err, errlen))
		return -1;
	/* every layer's tensors now, as model.c does for other families */
	for (size_t i = 0; i < f->n_layers; i++) {
		MlaLayerTensors lt;
		char e[600];
		if (mla_layer_tensors(tt, f, i, &lt, e, sizeof e)) {
			list_layer0(tt, f, found, sizeof found);
			snprintf(err, errlen, "%s: DeepSeek MLA: %s; %s", where, e, found);
			return -1;
		}
	}
	std->names = gguf ? &gguf_names : &hf_names;
	snprintf(std->prefix, sizeof std->prefix, "%s", f->prefix);
	std->n_layers = f->n_layers;
	std->shape.d_model = f->shape.d_model;
	std->shape.n_heads = f->shape.n_heads;
	std->shape.n_kv_heads = 1;
	std->shape.head_dim = mla_qk_dim(&f->shape);
	std->rope = f->rope;
	std->score_scale = f->score_scale;
	std->norm_eps = f->norm_eps;
	std->norm_kind = NORM_RMS;
	std->layer_bits = hp->layer_bits;
	return 0;
}

/* kv_b of a layer stored split (attn_k_b, attn_v_b) into l->kv_b; when
 * attn_kv_b was stored too (already read into l->kv_b), the pair must
 * hold its values, up to both tensors' rounding (a converter that quantized
 * them apart), or the file is refused: a fold could not keep both. */
static int read_split_kv_b(const MlaLayerTensors *lt, MlaLayer *l, char *err, size_t errlen)
{
	const TensorRef *kb = lt->t[MLA_T_K_B], *vb = lt->t[MLA_T_V_B], *kv = lt->t[MLA_T_KV_B];
	size_t nkv = kv ? kv->nelem : 0;
	/* k: H x Lkv x dn, v: H x dv x Lkv as stored; m: the pair merged,
	 * to hold against attn_kv_b (only when it is stored too) */
	double *k = malloc(kb->nelem * sizeof *k), *v = malloc(vb->nelem * sizeof *v);
	double *m = kv ? malloc(nkv * sizeof *m) : NULL;
	int rc = -1;
	if (!k || !v || (kv && !m)) {
		snprintf(err, errlen, "%s: tensor %s: out of memory", kb->file, kb->name);
		goto out;
	}
	if (tensor_read(kb, 0, kb->nelem, k, err, errlen) ||
	    tensor_read(vb, 0, vb->nelem, v, err, errlen))
		goto out;
	mla_merge_kv_b(&l->shape, k, v, kv ? m : l->kv_b);
	if (kv) {
		double mx = 0, worst = 0;
		size_t at = 0;
		for (size_t e = 0; e < nkv; e++) {
			double d = fabs(m[e] - l->kv_b[e]);
			mx = fmax(mx, fabs(l->kv_b[e]));
			if (d > worst) {
				worst = d;
				at = e;
			}
		}
		double u = dtype_unit_roundoff(kv->dtype) + dtype_unit_roundoff(kb->dtype) +
			   dtype_unit_roundoff(vb->dtype);
		if (worst > 2 * u * mx) {
			size_t row = at / l->shape.kv_lora_rank, dkv = l->shape.qk_nope_dim +
				     l->shape.v_head_dim;
			snprintf(err, errlen, "%s: tensor %s: row %zu (head %zu) differs from %s and "
				 "%s by %.3g (max |value| %.3g): the split pair is not this kv_b",
				 kv->file, kv->name, row, row / dkv, kb->name, vb->name, worst, mx);
			goto out;
		}
	}
	rc = 0;
out:
	free(k);
	free(v);
	free(m);
	return rc;
}

int mla_read_layer(const TensorTable *tt, const MlaFamily *f, const char *where, size_t i,
		   MlaLayer *out, char *err, size_t errlen)
{
	MlaLayerTensors lt;
	char e[600];
	memset(out, 0, sizeof *out);
	if (mla_layer_tensors(tt, f, i, &lt, e, sizeof e)) {
		snprintf(err, errlen, "%s: %s", where, e);
		return -1;
	}
	if (mla_alloc(out, &f->shape, lt.t[MLA_T_NORM] != NULL) != RF_OK) {
		snprintf(err, errlen, "%s: layer %zu: out of memory", where, i);
		return -1;
	}
	out->rope = f->rope;
	out->norm_eps = f->norm_eps;
	out->latent_eps = f->latent_eps;
	out->score_scale = f->score_scale;
	double *dst[MLA_T_NORM + 1] = {out->q_a, out->q_a_norm, out->q_b, out->kv_a,
				       out->kv_a_norm, out->kv_b, out->wo, out->attn_norm};
	for (int id = 0; id <= MLA_T_NORM; id++) {
		const TensorRef *t = lt.t[id];
		if (t && tensor_read(t, 0, t->nelem, dst[id], err, errlen)) {
			mla_free(out);
			return -1;
		}
	}
	if (lt.t[MLA_T_K_B] && read_split_kv_b(&lt, out, err, errlen)) {
		mla_free(out);
		return -1;
	}
	const char *bad;
	if (!mla_is_finite(out, &bad)) {
		snprintf(err, errlen, "%s: layer %zu: NaN or Inf in the %s", where, i, bad);
		mla_free(out);
		return -1;
	}
	return 0;
}
