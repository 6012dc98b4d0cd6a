#include "config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/rng.h"
#include "data/ggml_quant.h"
#include "data/ggml_types.h"
#include "tests/ckpt_fixtures.h"

void fx_put(FxBuf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
}

void fx_u32(FxBuf *b, uint32_t v)
{
	unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 24)};
	fx_put(b, c, 4);
}

void fx_u64(FxBuf *b, uint64_t v)
{
	fx_u32(b, (uint32_t)v);
	fx_u32(b, (uint32_t)(v >> 32));
}

void fx_f32(FxBuf *b, float v)
{
	uint32_t u;
	memcpy(&u, &v, 4);
	fx_u32(b, u);
}

static void fx_u16(FxBuf *b, uint16_t v)
{
	unsigned char c[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
	fx_put(b, c, 2);
}

void fx_free(FxBuf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* Nearest float16 bit pattern of v (normal and subnormal range; beyond
 * it infinity, and NaN the quiet NaN). */
static uint16_t to_f16(double v)
{
	uint16_t sign = v < 0 ? 0x8000 : 0;
	double a = fabs(v);
	if (a != a)
		return 0x7e00;   /* a quiet NaN */
	if (a == 0)
		return sign;
	if (a >= 65520.0)
		return sign | 0x7c00;
	int e;
	frexp(a, &e);            /* a = m 2^e, m in [0.5, 1) */
	int E = e - 1 + 15;      /* biased exponent of 1.m form */
	if (E <= 0) {
		long m = lround(ldexp(a, 24));
		return sign | (uint16_t)m;
	}
	long m = lround(ldexp(a, 11 - e)) ;   /* 11 significant bits */
	if (m == 2048) {
		m = 1024;
		E++;
	}
	return sign | (uint16_t)(E << 10) | (uint16_t)(m & 0x3ff);
}

void fx_round_f16(double *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint16_t h = to_f16(v[i]);
		int e = (h >> 10) & 31, m = h & 0x3ff;
		double a = e ? ldexp(m | 0x400, e - 25) : ldexp(m, -24);
		v[i] = (h & 0x8000) ? -a : a;
	}
}

void fx_round_bf16(double *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float f = (float)v[i];
		uint32_t u;
		memcpy(&u, &f, 4);
		u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
		memcpy(&f, &u, 4);
		v[i] = f;
	}
}

/* A ggml block quantization's name into *q. */
static bool block_type(const char *dt, StoreDtype *q)
{
	return !dtype_parse(dt, q) && dtype_is_block(*q);
}

void fx_encode(FxBuf *b, const char *dt, const double *v, size_t n)
{
	StoreDtype gq;
	if (!strcmp(dt, "F32")) {
		for (size_t i = 0; i < n; i++)
			fx_f32(b, (float)v[i]);
	} else if (!strcmp(dt, "F64")) {
		for (size_t i = 0; i < n; i++) {
			uint64_t u;
			memcpy(&u, &v[i], 8);
			fx_u64(b, u);
		}
	} else if (!strcmp(dt, "F16")) {
		for (size_t i = 0; i < n; i++)
			fx_u16(b, to_f16(v[i]));
	} else if (!strcmp(dt, "BF16")) {
		for (size_t i = 0; i < n; i++) {
			double r = v[i];
			fx_round_bf16(&r, 1);
			float f = (float)r;
			uint32_t u;
			memcpy(&u, &f, 4);
			fx_u16(b, (uint16_t)(u >> 16));
		}
	} else if (!strcmp(dt, "Q8_0") || !strcmp(dt, "Q4_0")) {
		bool q8 = dt[1] == '8';
		for (size_t i0 = 0; i0 < n; i0 += 32) {
			double mx = 0;
			for (size_t j = 0; j < 32; j++)
				mx = fmax(mx, fabs(v[i0 + j]));
			double d = mx / (q8 ? 127.0 : 8.0);
			fx_u16(b, to_f16(d));
			unsigned char qs[32];
			for (size_t j = 0; j < 32; j++) {
				long q = d > 0 ? lround(v[i0 + j] / d) : 0;
				qs[j] = q8 ? (unsigned char)(int8_t)q : (unsigned char)(q + 8 > 15 ? 15 : q + 8);
			}
			if (q8) {
				fx_put(b, qs, 32);
			} else {
				unsigned char pk[16];
				for (size_t j = 0; j < 16; j++)
					pk[j] = (unsigned char)(qs[j] | qs[j + 16] << 4);
				fx_put(b, pk, 16);
			}
		}
	} else if (block_type(dt, &gq)) {
		/* The other ggml types: llama.cpp's reference quantizers, per
		 * block (values need not be representable). */
		size_t B = dtype_block(gq);
		for (size_t i0 = 0; i0 + B <= n; i0 += B) {
			float x[GQ_MAX_BLOCK];
			unsigned char blk[GQ_MAX_BYTES];
			for (size_t j = 0; j < B; j++)
				x[j] = (float)v[i0 + j];
			if (ggml_quant_quantize(gq, x, 1, blk))
				abort();
			fx_put(b, blk, dtype_block_bytes(gq));
		}
	}
}

static size_t nelem(const FxTensor *t)
{
	size_t n = 1;
	for (size_t i = 0; i < t->ndim; i++)
		n *= t->shape[i];
	return n;
}

void fx_safetensors(FxBuf *out, const FxTensor *t, size_t nt)
{
	FxBuf data = {0};
	json_t *hdr = json_object();
	for (size_t i = 0; i < nt; i++) {
		size_t b = data.n;
		fx_encode(&data, t[i].dtype, t[i].v, nelem(&t[i]));
		json_t *shape = json_array();
		for (size_t k = 0; k < t[i].ndim; k++)
			json_array_append_new(shape, json_integer((json_int_t)t[i].shape[k]));
		json_object_set_new(hdr, t[i].name,
				    json_pack("{s:s, s:o, s:[I, I]}", "dtype", t[i].dtype, "shape",
					      shape, "data_offsets", (json_int_t)b, (json_int_t)data.n));
	}
	char *text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(hdr);
	size_t hl = strlen(text), padded = (hl + 7) / 8 * 8;
	fx_u64(out, padded);
	fx_put(out, text, hl);
	for (size_t i = hl; i < padded; i++)
		fx_put(out, " ", 1);
	fx_put(out, data.p, data.n);
	free(text);
	fx_free(&data);
}

static void gg_str(FxBuf *b, const char *s)
{
	fx_u64(b, strlen(s));
	fx_put(b, s, strlen(s));
}

static unsigned ggml_id(const char *dt)
{
	static const struct {
		const char *n;
		unsigned id;
	} m[] = {{"F32", 0}, {"F16", 1}, {"F64", 28}, {"BF16", 30}};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		if (!strcmp(m[i].n, dt))
			return m[i].id;
	StoreDtype q;
	unsigned id;
	if (block_type(dt, &q) && ggml_type_id(q, &id))
		return id;
	return 999;
}

void fx_gguf(FxBuf *out, unsigned version, const FxKv *kv, size_t nkv, const FxTensor *t,
	     size_t nt, size_t alignment)
{
	fx_gguf_raw(out, version, kv, nkv, t, nt, alignment, NULL, 0);
}

void fx_gguf_raw(FxBuf *out, unsigned version, const FxKv *kv, size_t nkv,
		 const FxTensor *t, size_t nt, size_t alignment, const FxRaw *raw, size_t nraw)
{
	size_t al = alignment ? alignment : 32;
	fx_put(out, "GGUF", 4);
	fx_u32(out, version);
	fx_u64(out, nt);
	fx_u64(out, nkv + (alignment ? 1 : 0));
	if (alignment) {
		gg_str(out, "general.alignment");
		fx_u32(out, 4);
		fx_u32(out, (uint32_t)alignment);
	}
	for (size_t i = 0; i < nkv; i++) {
		gg_str(out, kv[i].key);
		switch (kv[i].type) {
		case 's':
			fx_u32(out, 8);
			gg_str(out, kv[i].s);
			break;
		case 'u':
			fx_u32(out, 4);
			fx_u32(out, (uint32_t)kv[i].num);
			break;
		case 'f':
			fx_u32(out, 6);
			fx_f32(out, (float)kv[i].num);
			break;
		case 'A':
			fx_u32(out, 9);
			fx_u32(out, 8);
			fx_u64(out, (uint64_t)kv[i].num);
			for (size_t k = 0; k < (size_t)kv[i].num; k++)
				gg_str(out, kv[i].s);
			break;
		case 'I':
			fx_u32(out, 9);
			fx_u32(out, 5);
			fx_u64(out, (uint64_t)kv[i].num);
			for (size_t k = 0; k < (size_t)kv[i].num; k++)
				fx_u32(out, (uint32_t)kv[i].num);
			break;
		case 'b': {
			unsigned char v = kv[i].num != 0;
			fx_u32(out, 7);
			fx_put(out, &v, 1);
			break;
		}
		case 'U': {
			size_t cnt = 1;
			for (const char *p = kv[i].s; *p; p++)
				cnt += *p == ',';
			fx_u32(out, 9);
			fx_u32(out, 4);
			fx_u64(out, cnt);
			for (const char *p = kv[i].s; *p;) {
				char *end;
				fx_u32(out, (uint32_t)strtoul(p, &end, 10));
				p = *end == ',' ? end + 1 : end;
			}
			break;
		}
		}
	}
	FxBuf data = {0};
	for (size_t i = 0; i < nt; i++) {
		while (data.n % al)
			fx_put(&data, "", 1);
		gg_str(out, t[i].name);
		fx_u32(out, (uint32_t)t[i].ndim);
		for (size_t k = t[i].ndim; k-- > 0;)
			fx_u64(out, t[i].shape[k]);
		fx_u32(out, ggml_id(t[i].dtype));
		fx_u64(out, data.n);
		size_t r = 0;
		while (r < nraw && strcmp(raw[r].name, t[i].name))
			r++;
		if (r < nraw)
			fx_put(&data, raw[r].p, raw[r].n);
		else
			fx_encode(&data, t[i].dtype, t[i].v, nelem(&t[i]));
	}
	while (out->n % al)
		fx_put(out, "", 1);
	fx_put(out, data.p, data.n);
	fx_free(&data);
}

float fx_l2c_value(size_t k)
{
	return (float)((double)((k * 2654435761u) % 2001) - 1000.0) / 1024.0f;
}

void fx_llama2c(FxBuf *out, const int32_t hdr[7])
{
	for (int i = 0; i < 7; i++)
		fx_u32(out, (uint32_t)hdr[i]);
	size_t dim = (size_t)hdr[0], hid = (size_t)hdr[1], L = (size_t)hdr[2];
	size_t H = (size_t)hdr[3], G = (size_t)hdr[4], seq = (size_t)hdr[6];
	size_t vocab = (size_t)(hdr[5] < 0 ? -hdr[5] : hdr[5]);
	size_t hd = dim / H, kv = hd * G;
	size_t n = vocab * dim + L * (dim + dim * dim + 2 * kv * dim + dim * dim + dim +
				      3 * hid * dim) + dim + seq * hd;
	if (hdr[5] < 0)
		n += vocab * dim;
	for (size_t k = 0; k < n; k++)
		fx_f32(out, fx_l2c_value(k));
}

void fx_layer(Layer *l, const LayerShape *s, bool bias, uint64_t seed)
{
	RopeSpec r = rope_spec_default(s->head_dim);
	if (layer_random(l, s, &r, bias, seed) != RF_OK)
		abort();
	size_t D = s->d_model, Hd = s->n_heads * s->head_dim, Gd = s->n_kv_heads * s->head_dim;
	double *t[] = {l->wq, l->wk, l->wv, l->wo, l->bq, l->bk, l->bv, l->bo};
	size_t n[] = {Hd * D, Gd * D, Gd * D, D * Hd, Hd, Gd, Gd, D};
	for (size_t i = 0; i < 8; i++)
		for (size_t k = 0; t[i] && k < n[i]; k++)
			t[i][k] = (float)t[i][k];
	l->attn_norm = malloc(D * sizeof(double));
	Rng rng;
	rng_seed(&rng, seed, 9);
	for (size_t k = 0; k < D; k++)
		l->attn_norm[k] = (float)(1.0 + 0.1 * rng_normal(&rng));
}

static char name_pool[256][96];
static size_t name_used;

static const char *pool_name(const char *fmt_a, size_t layer, const char *suffix)
{
	char *p = name_pool[name_used++ % 256];
	snprintf(p, 96, "%s%zu%s", fmt_a, layer, suffix);
	return p;
}

size_t fx_llama_tensors(const Layer *layers, size_t nl, const double *emb, size_t vocab,
			const char *scheme, const char *dtype, FxTensor *out)
{
	const LayerShape *s = &layers[0].shape;
	size_t D = s->d_model, Hd = s->n_heads * s->head_dim, Gd = s->n_kv_heads * s->head_dim;
	const char *pre, *sq, *sk, *sv, *so, *sn, *bq, *bk, *bv, *en;
	if (!strcmp(scheme, "gguf")) {
		pre = "blk.";
		sq = ".attn_q.weight", sk = ".attn_k.weight", sv = ".attn_v.weight";
		so = ".attn_output.weight", sn = ".attn_norm.weight";
		bq = ".attn_q.bias", bk = ".attn_k.bias", bv = ".attn_v.bias";
		en = "token_embd.weight";
	} else if (!strcmp(scheme, "meta")) {
		pre = "layers.";
		sq = ".attention.wq.weight", sk = ".attention.wk.weight", sv = ".attention.wv.weight";
		so = ".attention.wo.weight", sn = ".attention_norm.weight";
		bq = bk = bv = NULL;
		en = "tok_embeddings.weight";
	} else {
		pre = "model.layers.";
		sq = ".self_attn.q_proj.weight", sk = ".self_attn.k_proj.weight";
		sv = ".self_attn.v_proj.weight", so = ".self_attn.o_proj.weight";
		sn = ".input_layernorm.weight";
		bq = ".self_attn.q_proj.bias", bk = ".self_attn.k_proj.bias";
		bv = ".self_attn.v_proj.bias";
		en = "model.embed_tokens.weight";
	}
	size_t n = 0;
	/* Vectors stay F32 in quantized files, as llama.cpp writes them. */
	StoreDtype q;
	const char *vdt = block_type(dtype, &q) ? "F32" : dtype;
	if (emb)
		out[n++] = (FxTensor){en, dtype, 2, {vocab, D, 0, 0}, emb};
	for (size_t i = 0; i < nl; i++) {
		const Layer *l = &layers[i];
		out[n++] = (FxTensor){pool_name(pre, i, sn), vdt, 1, {D, 0, 0, 0}, l->attn_norm};
		out[n++] = (FxTensor){pool_name(pre, i, sq), dtype, 2, {Hd, D, 0, 0}, l->wq};
		out[n++] = (FxTensor){pool_name(pre, i, sk), dtype, 2, {Gd, D, 0, 0}, l->wk};
		out[n++] = (FxTensor){pool_name(pre, i, sv), dtype, 2, {Gd, D, 0, 0}, l->wv};
		out[n++] = (FxTensor){pool_name(pre, i, so), dtype, 2, {D, Hd, 0, 0}, l->wo};
		if (l->bq && bq) {
			out[n++] = (FxTensor){pool_name(pre, i, bq), vdt, 1, {Hd, 0, 0, 0}, l->bq};
			out[n++] = (FxTensor){pool_name(pre, i, bk), vdt, 1, {Gd, 0, 0, 0}, l->bk};
			out[n++] = (FxTensor){pool_name(pre, i, bv), vdt, 1, {Gd, 0, 0, 0}, l->bv};
		}
	}
	return n;
}

void fx_hf_config(char *buf, size_t len, const char *model_type, const LayerShape *s,
		  size_t layers, size_t vocab, const char *extra)
{
	snprintf(buf, len,
		 "{\"model_type\": \"%s\", \"hidden_size\": %zu, \"num_attention_heads\": %zu, "
		 "\"num_key_value_heads\": %zu, \"head_dim\": %zu, \"num_hidden_layers\": %zu, "
		 "\"vocab_size\": %zu, \"rms_norm_eps\": 1e-6%s}",
		 model_type, s->d_model, s->n_heads, s->n_kv_heads, s->head_dim, layers, vocab,
		 extra);
}

const LayerShape fx_fold_shape = {32, 4, 2, 8};

void fx_fold_layers(Layer *l, bool bias, bool bf16)
{
	const LayerShape *s = &fx_fold_shape;
	size_t D = s->d_model, Hd = s->n_heads * s->head_dim, Gd = s->n_kv_heads * s->head_dim;
	for (size_t i = 0; i < FX_FOLD_LAYERS; i++) {
		fx_layer(&l[i], s, bias, 40 + i);
		if (!bf16)
			continue;
		fx_round_bf16(l[i].wq, Hd * D);
		fx_round_bf16(l[i].wk, Gd * D);
		fx_round_bf16(l[i].wv, Gd * D);
		fx_round_bf16(l[i].wo, D * Hd);
		fx_round_bf16(l[i].attn_norm, D);
		if (bias) {
			fx_round_bf16(l[i].bq, Hd);
			fx_round_bf16(l[i].bk, Gd);
			fx_round_bf16(l[i].bv, Gd);
		}
	}
}

static void free_fold_layers(Layer *l)
{
	for (size_t i = 0; i < FX_FOLD_LAYERS; i++)
		layer_free(&l[i]);
}

void fx_fold_gguf(const char *dir, const char *name, const char *dtype, char *path,
		  size_t len)
{
	Layer l[FX_FOLD_LAYERS];
	fx_fold_layers(l, false, false);
	double emb[8 * 32];
	for (size_t i = 0; i < 8 * 32; i++)
		emb[i] = (double)((int)(i % 13) - 6) / 8.0;
	FxTensor t[32];
	size_t nt = fx_llama_tensors(l, FX_FOLD_LAYERS, emb, 8, "gguf", dtype, t);
	FxKv kv[] = {{"general.architecture", 's', "llama", 0},
		     {"llama.block_count", 'u', NULL, FX_FOLD_LAYERS},
		     {"llama.embedding_length", 'u', NULL, 32},
		     {"llama.attention.head_count", 'u', NULL, 4},
		     {"llama.attention.head_count_kv", 'u', NULL, 2}};
	FxBuf b = {0};
	fx_gguf(&b, 3, kv, 5, t, nt, 32);
	if (fx_write(dir, name, b.p, b.n))
		abort();
	fx_free(&b);
	free_fold_layers(l);
	if ((size_t)snprintf(path, len, "%s/%s", dir, name) >= len)
		abort();
}

void fx_fold_hf(const char *dir, const char *sub, const char *dtype, bool bias, char *path,
		size_t len)
{
	Layer l[FX_FOLD_LAYERS];
	fx_fold_layers(l, bias, !strcmp(dtype, "BF16"));
	FxTensor t[32];
	size_t nt = fx_llama_tensors(l, FX_FOLD_LAYERS, NULL, 0, "hf", dtype, t);
	char cfg[1024];
	if ((size_t)snprintf(path, len, "%s/%s", dir, sub) >= len)
		abort();
	mkdir(path, 0755);
	fx_hf_config(cfg, sizeof cfg, bias ? "qwen2" : "llama", &fx_fold_shape, FX_FOLD_LAYERS,
		     8, "");
	FxBuf b = {0};
	fx_safetensors(&b, t, nt);
	if (fx_write(path, "config.json", cfg, strlen(cfg)) ||
	    fx_write(path, "tokenizer.json", "{}", 2) ||
	    fx_write(path, "model.safetensors", b.p, b.n))
		abort();
	fx_free(&b);
	free_fold_layers(l);
}

int fx_write(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	if (n && fwrite(p, 1, n, f) != n) {
		fclose(f);
		return -1;
	}
	return fclose(f) ? -1 : 0;
}

char *fx_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/ropefold-test-XXXXXX", base && *base ? base : "/tmp");
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

void fx_rmtree(const char *dir)
{
	char cmd[4200];
	if (!dir || strncmp(dir, "/", 1) || !strstr(dir, "ropefold-test-"))
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}
