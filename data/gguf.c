#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/ggml_types.h"
#include "data/reader.h"

/* GGUF v2/v3: "GGUF", u32 version, u64 tensor count, u64 metadata count,
 * the metadata key/values, the tensor infos (name, n_dims, dims ne0 first,
 * ggml type, offset), padding to general.alignment, then the data. */

enum {
	GV_U8 = 0, GV_I8, GV_U16, GV_I16, GV_U32, GV_I32, GV_F32, GV_BOOL,
	GV_STRING, GV_ARRAY, GV_U64, GV_I64, GV_F64, GV_NTYPES
};

/* Counts beyond these are refused before any loop runs over them. */
#define GGUF_MAX_TENSORS ((uint64_t)1 << 20)
#define GGUF_MAX_KV ((uint64_t)1 << 20)
#define GGUF_MAX_NAME ((uint64_t)1 << 16)
#define GGUF_MAX_DEPTH 3
/* Headers (metadata and tensor infos) beyond this are refused as absurd:
 * real ones, tokenizer included, are a few MB (llama.cpp too reads all of
 * the metadata into memory). */
#define GGUF_MAX_HEADER ((size_t)256 << 20)

/* A bounds-checked cursor over the file's header, read on demand into h
 * (shared by copies of a cursor). Positions are absolute; a pointer into
 * h->p is valid only until the next read, so entries keep offsets. */
typedef struct {
	const InFile *f;
	InHead *h;
	size_t n, pos;      /* n: the file size */
	const char *file;
	char *err;
	size_t errlen;
	int failed;
} Cur;

static void cur_fail(Cur *c, const char *what)
{
	if (!c->failed)
		snprintf(c->err, c->errlen, "%s: offset %zu: %s", c->file, c->pos, what);
	c->failed = 1;
}

static bool cur_need(Cur *c, size_t k)
{
	if (c->failed)
		return false;
	if (k > c->n - c->pos) {
		cur_fail(c, "truncated (runs past the end of the file)");
		return false;
	}
	if (c->pos + k > GGUF_MAX_HEADER) {
		cur_fail(c, "header runs past 256 MiB: absurd");
		return false;
	}
	if (infile_head_need(c->f, c->h, c->pos + k, c->err, c->errlen)) {
		c->failed = 1;
		return false;
	}
	return true;
}

/* The header bytes at absolute offset at (read already). */
static const unsigned char *cur_at(const Cur *c, size_t at)
{
	return c->h->p + at;
}

static uint64_t cur_uint(Cur *c, size_t k)
{
	if (!cur_need(c, k))
		return 0;
	uint64_t v = 0;
	for (size_t i = k; i-- > 0;)
		v = v << 8 | cur_at(c, c->pos)[i];
	c->pos += k;
	return v;
}

/* A GGUF string: u64 length, bytes, read. Returns a pointer valid until
 * the next read (its offset is the returned pointer minus cur_at(c, 0)). */
static const char *cur_str(Cur *c, size_t *len, uint64_t maxlen)
{
	size_t at = c->pos;
	uint64_t l = cur_uint(c, 8);
	if (c->failed)
		return NULL;
	if (l > maxlen || l > c->n - c->pos) {
		c->pos = at;
		cur_fail(c, "string length past the end of the file or absurd");
		return NULL;
	}
	if (!cur_need(c, (size_t)l))
		return NULL;
	const char *s = (const char *)cur_at(c, c->pos);
	c->pos += (size_t)l;
	*len = (size_t)l;
	return s;
}

/* Well-formed UTF-8 without NUL bytes: what GGUF promises for strings,
 * and what names need to be printed, compared as C strings and written
 * into JSON reports. Overlong forms and surrogates are refused. */
static bool gguf_text_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		size_t k;
		unsigned min;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, min = 0x80, c &= 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, min = 0x800, c &= 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, min = 0x10000, c &= 0x07;
		else
			return false;
		if (k > n - i - 1)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			c = c << 6 | (p[i + j] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static const size_t gv_size[GV_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* One metadata value as the families need it. */
typedef struct {
	size_t key_at;      /* offset of the key's bytes */
	size_t keylen;
	size_t kat;         /* offset of the entry (its key's length) */
	unsigned type;
	size_t at;          /* offset of the value */
	unsigned arr_type;  /* arrays: element type and count */
	uint64_t arr_n;
} Kv;

/* Skip one value of type t, checking every length. */
static void skip_value(Cur *c, unsigned t, int depth)
{
	if (t >= GV_NTYPES) {
		cur_fail(c, "unknown metadata value type");
		return;
	}
	if (t == GV_STRING) {
		size_t l;
		cur_str(c, &l, UINT64_MAX);
		return;
	}
	if (t != GV_ARRAY) {
		if (cur_need(c, gv_size[t]))
			c->pos += gv_size[t];
		return;
	}
	if (depth >= GGUF_MAX_DEPTH) {
		cur_fail(c, "arrays nested too deep");
		return;
	}
	unsigned et = (unsigned)cur_uint(c, 4);
	uint64_t n = cur_uint(c, 8);
	if (c->failed)
		return;
	if (et >= GV_NTYPES) {
		c->pos -= 12;
		cur_fail(c, "unknown array element type");
		return;
	}
	/* Every element takes at least one byte (strings 8): a count the rest
	 * of the file cannot hold is refused before looping. */
	size_t minsz = et == GV_STRING || et == GV_ARRAY ? 8 : gv_size[et];
	if (n > (c->n - c->pos) / minsz) {
		c->pos -= 8;
		cur_fail(c, "array count past the end of the file");
		return;
	}
	if (et != GV_STRING && et != GV_ARRAY) {
		c->pos += (size_t)n * minsz;
		return;
	}
	for (uint64_t i = 0; i < n && !c->failed; i++)
		skip_value(c, et, depth + 1);
}

static bool gguf_sniff(const unsigned char *p, size_t n, size_t size)
{
	(void)size;
	return n >= 4 && !memcmp(p, "GGUF", 4);
}

/* The key of k, valid until the next read. */
static const char *kv_key(const Cur *c, const Kv *k)
{
	return (const char *)cur_at(c, k->key_at);
}

static const Kv *kv_find(const Cur *c, const Kv *kv, size_t nkv, const char *arch,
			 const char *suffix)
{
	char key[160];
	if (arch)
		snprintf(key, sizeof key, "%s.%s", arch, suffix);
	else
		snprintf(key, sizeof key, "%s", suffix);
	size_t kl = strlen(key);
	for (size_t i = 0; i < nkv; i++)
		if (kv[i].keylen == kl && !memcmp(kv_key(c, &kv[i]), key, kl))
			return &kv[i];
	return NULL;
}

/* A scalar value as double; arrays give their first element. False when
 * the value is not a number (string, bool, empty array); the number may
 * still be NaN or infinite. */
static bool kv_number(const Cur *c, const Kv *k, double *out)
{
	unsigned t = k->type;
	size_t at = k->at;
	if (t == GV_ARRAY) {
		if (k->arr_n == 0)
			return false;
		t = k->arr_type;
		at += 12;
	}
	if (t >= GV_NTYPES || t == GV_STRING || t == GV_ARRAY || t == GV_BOOL)
		return false;
	Cur r = *c;
	r.pos = at;
	uint64_t u = cur_uint(&r, gv_size[t]);
	if (r.failed)
		return false;
	switch (t) {
	case GV_I8: *out = (int8_t)u; break;
	case GV_I16: *out = (int16_t)u; break;
	case GV_I32: *out = (int32_t)u; break;
	case GV_I64: *out = (double)(int64_t)u; break;
	case GV_F32: {
		uint32_t b = (uint32_t)u;
		float f;
		memcpy(&f, &b, sizeof f);
		*out = f;
		break;
	}
	case GV_F64: memcpy(out, &u, sizeof *out); break;
	default: *out = (double)u; break;
	}
	return true;
}

static const char *gv_name(unsigned t)
{
	static const char *names[GV_NTYPES] = {"uint8", "int8", "uint16", "int16", "uint32",
					       "int32", "float32", "bool", "string", "array",
					       "uint64", "int64", "float64"};
	return t < GV_NTYPES ? names[t] : "unknown";
}

/* "FILE: offset N: metadata KEY: bad value ..." for the entry k. */
static int kv_bad(const Cur *c, const Kv *k, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int kv_bad(const Cur *c, const Kv *k, char *err, size_t errlen, const char *fmt, ...)
{
	char why[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: offset %zu: metadata %.*s: bad value %s", c->file, k->kat,
		 (int)k->keylen, kv_key(c, k), why);
	return -1;
}

/* A string value into buf (well-formed UTF-8, no NUL, fits); -1 with err
 * otherwise. */
static int kv_string(const Cur *c, const Kv *k, char *buf, size_t len, char *err,
		     size_t errlen)
{
	if (k->type != GV_STRING)
		return kv_bad(c, k, err, errlen, "type %s (must be a string)", gv_name(k->type));
	Cur r = *c;
	r.pos = k->at;
	size_t l;
	const char *s = cur_str(&r, &l, UINT64_MAX);
	if (!s || !gguf_text_ok(s, l))
		return kv_bad(c, k, err, errlen, "(not UTF-8 text, or a NUL byte in it)");
	if (l >= len)
		return kv_bad(c, k, err, errlen, "(%zu bytes, at most %zu)", l, len - 1);
	memcpy(buf, s, l);
	buf[l] = '\0';
	return 0;
}

/* A positive finite number from arch.suffix: 0 and *out untouched when
 * absent, -1 with err when present but not such a number. */
static int kv_positive(const Cur *c, const Kv *kv, size_t nkv, const char *arch,
		       const char *suffix, double *out, char *err, size_t errlen)
{
	const Kv *k = kv_find(c, kv, nkv, arch, suffix);
	double v;
	if (!k)
		return 0;
	if (!kv_number(c, k, &v))
		return kv_bad(c, k, err, errlen, "type %s (must be a number)", gv_name(k->type));
	if (!isfinite(v) || v <= 0)
		return kv_bad(c, k, err, errlen, "%g (must be a positive finite number)", v);
	*out = v;
	return 0;
}

/* A count from arch.suffix: 0 and *out = 0 when absent, -1 when present
 * but not a positive whole number. */
static int kv_size(const Cur *c, const Kv *kv, size_t nkv, const char *arch,
		   const char *suffix, size_t *out, char *err, size_t errlen)
{
	const Kv *k = kv_find(c, kv, nkv, arch, suffix);
	double v;
	*out = 0;
	if (!k)
		return 0;
	if (!kv_number(c, k, &v))
		return kv_bad(c, k, err, errlen, "type %s (must be a count)", gv_name(k->type));
	if (!isfinite(v) || v < 1 || v > 1e12 || v != floor(v))
		return kv_bad(c, k, err, errlen, "%g (must be a positive whole number)", v);
	*out = (size_t)v;
	return 0;
}

/* A count that may be 0 (none: a dense model's expert_count, Gemma 3's
 * sliding_window): as kv_size otherwise. */
static int kv_count(const Cur *c, const Kv *kv, size_t nkv, const char *arch,
		    const char *suffix, size_t *out, char *err, size_t errlen)
{
	const Kv *k = kv_find(c, kv, nkv, arch, suffix);
	double v;
	*out = 0;
	if (!k)
		return 0;
	if (!kv_number(c, k, &v))
		return kv_bad(c, k, err, errlen, "type %s (must be a count)", gv_name(k->type));
	if (!isfinite(v) || v < 0 || v > 1e12 || v != floor(v))
		return kv_bad(c, k, err, errlen, "%g (must be a whole number)", v);
	*out = (size_t)v;
	return 0;
}

/* A bool from arch.suffix: 0 and *out untouched when absent. */
static int kv_bool(const Cur *c, const Kv *kv, size_t nkv, const char *arch,
		   const char *suffix, bool *out, char *err, size_t errlen)
{
	const Kv *k = kv_find(c, kv, nkv, arch, suffix);
	if (!k)
		return 0;
	if (k->type != GV_BOOL)
		return kv_bad(c, k, err, errlen, "type %s (must be a bool)", gv_name(k->type));
	Cur r = *c;
	r.pos = k->at;
	*out = cur_uint(&r, 1) != 0;
	return r.failed ? -1 : 0;
}

/* Element i of an array of integers or bools, as a whole number; -1 with
 * err when the array holds anything else. */
static int kv_array_whole(const Cur *c, const Kv *k, uint64_t i, uint64_t *out, char *err,
			  size_t errlen)
{
	unsigned t = k->arr_type;
	bool ok = t == GV_BOOL || t == GV_U8 || t == GV_I8 || t == GV_U16 || t == GV_I16 ||
		  t == GV_U32 || t == GV_I32 || t == GV_U64 || t == GV_I64;
	if (!ok)
		return kv_bad(c, k, err, errlen, "array of %s (must be integers)", gv_name(t));
	Cur r = *c;
	r.pos = k->at + 12 + (size_t)i * gv_size[t];
	uint64_t u = cur_uint(&r, gv_size[t]);
	if (r.failed)
		return -1;
	bool neg = (t == GV_I8 && (int8_t)u < 0) || (t == GV_I16 && (int16_t)u < 0) ||
		   (t == GV_I32 && (int32_t)u < 0) || (t == GV_I64 && (int64_t)u < 0);
	if (neg)
		return kv_bad(c, k, err, errlen, "(entry %llu is negative)", (unsigned long long)i);
	*out = u;
	return 0;
}

/* llama.cpp's rope type per architecture: these are NEOX (half-split);
 * the rest (llama and kin) are NORM (interleaved). */
static bool arch_is_neox(const char *arch)
{
	static const char *neox[] = {
		"falcon", "grok", "dbrx", "bert", "nomic-bert", "jina-bert-v2", "stablelm",
		"bitnet", "qwen", "qwen2", "qwen2moe", "qwen2vl", "qwen3", "qwen3moe", "olmo2",
		"olmoe", "phi2", "phi3", "phimoe", "plamo", "codeshell", "orion", "gemma",
		"gemma2", "gemma3", "starcoder2", "openelm", "gptneox", "exaone", "minicpm3",
		"nemotron", "granitehybrid", "hunyuan-moe", "ernie4_5", "smallthinker",
	};
	for (size_t i = 0; i < sizeof neox / sizeof neox[0]; i++)
		if (!strcmp(arch, neox[i]))
			return true;
	return false;
}

/* The NORM (interleaved) architectures of llama.cpp's rope type list: with
 * the NEOX ones above, the archs whose layout is known rather than
 * assumed. */
static bool arch_is_norm(const char *arch)
{
	static const char *norm[] = {
		"llama", "llama4", "mllama", "deci", "baichuan", "starcoder", "plamo", "orion",
		"internlm2", "minicpm", "xverse", "command-r", "cohere2", "olmo", "arctic",
		"deepseek", "deepseek2", "plm", "chatglm", "granite", "granitemoe", "chameleon",
		"solar", "bailingmoe", "smollm3", "arcee",
	};
	for (size_t i = 0; i < sizeof norm / sizeof norm[0]; i++)
		if (!strcmp(arch, norm[i]))
			return true;
	return false;
}

/* The rope scaling keys: type (string), factor, original context length,
 * and the older scale_linear. A present key with a wrong type or a
 * non-positive value is an error, not a silent default. */
static int read_scaling(const Cur *c, const Kv *kv, size_t nkv, const char *ar, Hparams *hp,
			char *err, size_t errlen)
{
	const Kv *k;
	char ty[64] = "";
	double factor = 0, orig = 0, lin = 0;
	if ((k = kv_find(c, kv, nkv, ar, "rope.scaling.type")) &&
	    kv_string(c, k, ty, sizeof ty, err, errlen))
		return -1;
	if (kv_positive(c, kv, nkv, ar, "rope.scaling.factor", &factor, err, errlen) ||
	    kv_positive(c, kv, nkv, ar, "rope.scaling.original_context_length", &orig, err,
			errlen) ||
	    kv_positive(c, kv, nkv, ar, "rope.scale_linear", &lin, err, errlen))
		return -1;
	if (lin > 0 && lin != 1.0) {
		snprintf(ty, sizeof ty, "linear");
		factor = lin;
	}
	if (!strcmp(ty, "longrope")) {
		hp->scaling.original_max_pos = orig;
		/* a mark for read_rope_tables: the factors must follow */
		snprintf(hp->scaling_table, sizeof hp->scaling_table, "rope.scaling.type");
	}
	if (ty[0] && strcmp(ty, "none") && strcmp(ty, "longrope") && factor > 0 && factor != 1.0) {
		if (!strcmp(ty, "linear")) {
			hp->scaling.kind = ROPE_SCALING_LINEAR;
		} else if (!strcmp(ty, "yarn")) {
			hp->scaling.kind = ROPE_SCALING_YARN;
			if (kv_positive(c, kv, nkv, ar, "rope.scaling.yarn_beta_fast",
					&hp->scaling.beta_fast, err, errlen) ||
			    kv_positive(c, kv, nkv, ar, "rope.scaling.yarn_beta_slow",
					&hp->scaling.beta_slow, err, errlen))
				return -1;
		} else if (!strcmp(ty, "longrope")) {
			/* the factors are tensors: read_rope_tables */
		} else {
			k = kv_find(c, kv, nkv, ar, "rope.scaling.type");
			snprintf(err, errlen, "%s: offset %zu: metadata %s.rope.scaling.type '%s' is "
				 "not supported (linear, yarn, longrope)", c->file, k ? k->kat : 0, ar, ty);
			return -1;
		}
		hp->scaling.factor = factor;
		hp->scaling.original_max_pos = orig;
	}
	return 0;
}

/* hp->layer_bits, allocated zeroed for hp->n_layers layers. */
static unsigned char *layer_bits(Hparams *hp, const char *file, char *err, size_t errlen)
{
	if (hp->n_layers > HP_MAX_LAYERS)
		snprintf(err, errlen, "%s: metadata %s.block_count: bad value %zu (at most %zu layers)",
			 file, hp->arch, hp->n_layers, HP_MAX_LAYERS);
	else if (!hp->layer_bits && !(hp->layer_bits = calloc(hp->n_layers, 1)))
		snprintf(err, errlen, "%s: out of memory", file);
	return hp->n_layers > HP_MAX_LAYERS ? NULL : hp->layer_bits;
}

/* Which layers slide: arch.attention.sliding_window_pattern, a period n
 * (layer l slides when l % n < n - 1; 0: every layer) or one entry per
 * layer (nonzero: slides), else llama.cpp's period for the arch. */
static int read_window_pattern(const Cur *c, const Kv *kv, size_t nkv, const char *ar,
			       size_t period, Hparams *hp, char *err, size_t errlen)
{
	const Kv *k = kv_find(c, kv, nkv, ar, "attention.sliding_window_pattern");
	unsigned char *bits = layer_bits(hp, c->file, err, errlen);
	size_t L = hp->n_layers;
	if (!bits)
		return -1;
	if (k && k->type == GV_ARRAY) {
		if (k->arr_n != L)
			return kv_bad(c, k, err, errlen, "(%llu entries, but block_count is %zu)",
				      (unsigned long long)k->arr_n, L);
		for (size_t l = 0; l < L; l++) {
			uint64_t v;
			if (kv_array_whole(c, k, l, &v, err, errlen))
				return -1;
			if (v)
				bits[l] |= HP_LAYER_SLIDING;
		}
		return 0;
	}
	if (k) {
		double v;
		if (!kv_number(c, k, &v) || !(v >= 0) || v > 1e6 || v != floor(v))
			return kv_bad(c, k, err, errlen, "(must be a period or one entry per layer)");
		period = (size_t)v;
	}
	for (size_t l = 0; l < L; l++)
		if (!period || l % period < period - 1)
			bits[l] |= HP_LAYER_SLIDING;
	return 0;
}

/* What llama.cpp's loader reads beyond the shape, per architecture:
 * Gemma 2's window (default 4096, every other layer from layer 0) and
 * soft-caps (defaults 50 and 30); Gemma 3's window (none when absent),
 * layer period (6), local base rope.freq_base_swa (10000) and final
 * soft-cap; both Gemmas' score scale, 1/sqrt(D/H) for the 27B shapes (46
 * and 62 layers) and 1/sqrt(head_dim) otherwise; Qwen2-VL's
 * rope.dimension_sections; the experts of any MoE arch. */
static int read_family_keys(const Cur *c, const Kv *kv, size_t nkv, Hparams *hp, char *err,
			    size_t errlen)
{
	const char *ar = hp->arch;
	bool g2 = !strcmp(ar, "gemma2"), g3 = !strcmp(ar, "gemma3");
	if (g2 || g3) {
		size_t w = 0;
		const Kv *wk = kv_find(c, kv, nkv, ar, "attention.sliding_window");
		if (kv_count(c, kv, nkv, ar, "attention.sliding_window", &w, err, errlen))
			return -1;
		hp->sliding_window = wk ? w : g2 ? 4096 : 0;
		if (g2) {
			hp->attn_softcap = 50.0;
			hp->final_softcap = 30.0;
		}
		if (kv_positive(c, kv, nkv, ar, "attn_logit_softcapping", &hp->attn_softcap, err,
				errlen) ||
		    kv_positive(c, kv, nkv, ar, "final_logit_softcapping", &hp->final_softcap, err,
				errlen))
			return -1;
		if (g3) {
			hp->theta_local = 10000.0;
			if (kv_positive(c, kv, nkv, ar, "rope.freq_base_swa", &hp->theta_local, err,
					errlen))
				return -1;
		}
		if (hp->sliding_window &&
		    read_window_pattern(c, kv, nkv, ar, g2 ? 2 : 6, hp, err, errlen))
			return -1;
		if (!(hp->query_pre_attn_scalar > 0) && hp->n_layers == (g2 ? 46u : 62u) &&
		    hp->n_heads && hp->d_model % hp->n_heads == 0)
			hp->query_pre_attn_scalar = (double)(hp->d_model / hp->n_heads);
	}
	const Kv *k = kv_find(c, kv, nkv, ar, "rope.dimension_sections");
	if (k) {
		uint64_t v[4] = {0, 0, 0, 0};
		if (k->type != GV_ARRAY || (k->arr_n != 3 && k->arr_n != 4))
			return kv_bad(c, k, err, errlen, "(must be an array of 3 or 4 section sizes)");
		for (uint64_t i = 0; i < k->arr_n; i++)
			if (kv_array_whole(c, k, i, &v[i], err, errlen))
				return -1;
		if (v[3] || !v[0] || !v[1] || !v[2] || v[0] + v[1] + v[2] > LAYER_MAX_HEAD_DIM)
			return kv_bad(c, k, err, errlen, "[%llu, %llu, %llu, %llu] (must be three "
				      "positive temporal, height, width sections)",
				      (unsigned long long)v[0], (unsigned long long)v[1],
				      (unsigned long long)v[2], (unsigned long long)v[3]);
		for (int i = 0; i < 3; i++)
			hp->mrope_section[i] = (size_t)v[i];
	}
	if (kv_count(c, kv, nkv, ar, "expert_count", &hp->n_experts, err, errlen) ||
	    kv_count(c, kv, nkv, ar, "expert_used_count", &hp->experts_per_tok, err, errlen) ||
	    kv_size(c, kv, nkv, ar, "expert_feed_forward_length", &hp->moe_ff, err, errlen) ||
	    kv_size(c, kv, nkv, ar, "expert_shared_feed_forward_length", &hp->shared_expert_ff,
		    err, errlen))
		return -1;
	if (hp->n_experts) {
		/* llama.cpp's build_moe_ffn normalises for Mixtral (arch llama)
		 * and Qwen3-MoE, not for Qwen2-MoE, unless the file says */
		hp->norm_topk_prob = strcmp(ar, "qwen2moe") != 0;
		if (kv_bool(c, kv, nkv, ar, "expert_weights_norm", &hp->norm_topk_prob, err, errlen))
			return -1;
		k = kv_find(c, kv, nkv, ar, "expert_used_count");
		if (!hp->experts_per_tok || hp->experts_per_tok > hp->n_experts) {
			if (k)
				return kv_bad(c, k, err, errlen, "%zu (must be from 1 to expert_count %zu)",
					      hp->experts_per_tok, hp->n_experts);
			snprintf(err, errlen, "%s: metadata %s.expert_used_count missing (%s.expert_count "
				 "is %zu)", c->file, ar, ar, hp->n_experts);
			return -1;
		}
	}
	return 0;
}

/* A per-pair factor tensor (F32 or F16, one dimension) into out; its
 * count is checked against the rotary dim in families.c. */
static int read_factor_tensor(const TensorRef *t, double *out, size_t *n, char *err,
			      size_t errlen)
{
	if (t->ndim != 1 || t->nelem > ROPE_MAX_TABLE_PAIRS ||
	    (t->dtype != STORE_F32 && t->dtype != STORE_F16)) {
		char got[96];
		tensor_shape_str(t, got, sizeof got);
		snprintf(err, errlen, "%s: tensor %s: shape %s of %s (must be one F32 row of at "
			 "most %d per-pair factors)", t->file, t->name, got, t->dtype_name,
			 ROPE_MAX_TABLE_PAIRS);
		return -1;
	}
	if (tensor_read(t, 0, t->nelem, out, err, errlen))
		return -1;
	for (size_t i = 0; i < t->nelem; i++) {
		if (!(out[i] > 0) || !isfinite(out[i])) {
			snprintf(err, errlen, "%s: tensor %s: entry %zu is %g (factors must be "
				 "positive)", t->file, t->name, i, out[i]);
			return -1;
		}
	}
	*n = t->nelem;
	return 0;
}

/* The RoPE factor tensors, applied as llama.cpp applies them: ggml
 * divides pair i's angle by factor i. rope_freqs.weight (Llama 3.1
 * conversions, every layer) is the llama3 rule written out;
 * rope_factors_short/long.weight (Phi-3 longrope) switch as HF does, at
 * T > rope.scaling.original_context_length (llama.cpp switches on its
 * context size instead), with rope.scaling.attn_factor on cos and sin. */
static int read_rope_tables(const Cur *c, const Kv *kv, size_t nkv, const TensorTable *tt,
			    Hparams *hp, char *err, size_t errlen)
{
	RopeScaling *s = &hp->scaling;
	const TensorRef *ff = tensor_table_find(tt, "rope_freqs.weight");
	const TensorRef *sh = tensor_table_find(tt, "rope_factors_short.weight");
	const TensorRef *lo = tensor_table_find(tt, "rope_factors_long.weight");
	if (ff) {
		if (s->kind != ROPE_SCALING_NONE) {
			snprintf(err, errlen, "%s: tensor rope_freqs.weight and a %s rope scaling: "
				 "ropefold applies one rule", c->file,
				 s->kind == ROPE_SCALING_LINEAR ? "linear" : "yarn");
			return -1;
		}
		if (read_factor_tensor(ff, s->factors, &s->n_pairs, err, errlen))
			return -1;
		s->kind = ROPE_SCALING_FREQ_FACTORS;
		s->factor = 1.0;
		snprintf(hp->scaling_table, sizeof hp->scaling_table, "tensor rope_freqs.weight");
		return 0;
	}
	if (!sh && !lo) {
		if (!strcmp(hp->scaling_table, "rope.scaling.type")) {
			snprintf(err, errlen, "%s: metadata %s.rope.scaling.type 'longrope' without the "
				 "tensors rope_factors_short.weight and rope_factors_long.weight", c->file,
				 hp->arch);
			return -1;
		}
		return 0;
	}
	if (!sh || !lo || s->kind != ROPE_SCALING_NONE) {
		snprintf(err, errlen, "%s: tensor %s without %s, or with a %s rope scaling",
			 c->file, sh ? sh->name : lo->name,
			 sh ? "rope_factors_long.weight" : "rope_factors_short.weight",
			 s->kind == ROPE_SCALING_NONE ? "(no)" : "linear or yarn");
		return -1;
	}
	size_t nl;
	if (read_factor_tensor(sh, s->factors, &s->n_pairs, err, errlen) ||
	    read_factor_tensor(lo, s->long_factors, &nl, err, errlen))
		return -1;
	if (nl != s->n_pairs) {
		snprintf(err, errlen, "%s: tensor %s: %zu factors, but %s has %zu", c->file, lo->name,
			 nl, sh->name, s->n_pairs);
		return -1;
	}
	double orig = s->original_max_pos, af = 0;
	if (!(orig > 0) && kv_positive(c, kv, nkv, hp->arch, "rope.scaling.original_context_length",
				       &orig, err, errlen))
		return -1;
	if (!(orig > 0)) {
		snprintf(err, errlen, "%s: longrope factor tensors, but metadata "
			 "%s.rope.scaling.original_context_length missing", c->file, hp->arch);
		return -1;
	}
	if (kv_positive(c, kv, nkv, hp->arch, "rope.scaling.attn_factor", &af, err, errlen))
		return -1;
	s->kind = ROPE_SCALING_LONGROPE;
	s->original_max_pos = orig;
	s->factor = 1.0;
	s->attention_factor = af > 0 ? af : 1.0;
	snprintf(hp->scaling_table, sizeof hp->scaling_table, "tensor %s", sh->name);
	return 0;
}

/* The sparse layers of an MoE arch: those with a router,
 * blk.N.ffn_gate_inp.weight (llama.cpp's dense leading layers have
 * none). */
static int read_sparse_layers(const TensorTable *tt, Hparams *hp, char *err, size_t errlen)
{
	if (!hp->n_experts)
		return 0;
	unsigned char *bits = layer_bits(hp, hp->source, err, errlen);
	if (!bits)
		return -1;
	for (size_t l = 0; l < hp->n_layers; l++) {
		char nm[64];
		snprintf(nm, sizeof nm, "blk.%zu.ffn_gate_inp.weight", l);
		if (tensor_table_find(tt, nm))
			bits[l] |= HP_LAYER_SPARSE;
	}
	return 0;
}

/* llama.cpp's deepseek2 experts: the dense leading layers, shared experts,
 * the weights' scale and norm (default off), the gating function (1
 * softmax, 2 sigmoid; absent: softmax, as V2 files have none) and the
 * expert groups of newer files (groups ranked by their two best). */
static int gguf_deepseek2_moe(const Cur *c, const Kv *kv, size_t nkv, Hparams *hp,
			      char *err, size_t errlen)
{
	const char *ar = hp->arch;
	size_t gating = 0, groups = 0, used = 0;
	MoeRoute *r = &hp->mla_route;
	memset(r, 0, sizeof *r);
	r->scale = 1.0;
	hp->norm_topk_prob = false;
	if (kv_count(c, kv, nkv, ar, "leading_dense_block_count", &hp->mla_dense_layers, err,
		     errlen) ||
	    kv_count(c, kv, nkv, ar, "expert_shared_count", &hp->mla_shared_experts, err,
		     errlen) ||
	    kv_positive(c, kv, nkv, ar, "expert_weights_scale", &r->scale, err, errlen) ||
	    kv_bool(c, kv, nkv, ar, "expert_weights_norm", &hp->norm_topk_prob, err, errlen) ||
	    kv_count(c, kv, nkv, ar, "expert_gating_func", &gating, err, errlen) ||
	    kv_count(c, kv, nkv, ar, "expert_group_count", &groups, err, errlen) ||
	    kv_count(c, kv, nkv, ar, "expert_group_used_count", &used, err, errlen))
		return -1;
	if (gating > 2)
		return kv_bad(c, kv_find(c, kv, nkv, ar, "expert_gating_func"), err, errlen,
			      "%zu (must be 1, softmax, or 2, sigmoid)", gating);
	r->score = gating == 2 ? MOE_SCORE_SIGMOID : MOE_SCORE_SOFTMAX;
	r->norm_topk = hp->norm_topk_prob;
	if (groups > 1) {
		r->method = MOE_TOPK_GROUP_TOP2;
		r->n_group = groups;
		r->topk_group = used;
	}
	hp->mla_moe_freq = 1;
	return 0;
}

static int read_hparams(const Cur *c, const Kv *kv, size_t nkv, Hparams *hp, char *err,
			size_t errlen)
{
	const Kv *a = kv_find(c, kv, nkv, NULL, "general.architecture");
	if (!a) {
		snprintf(err, errlen, "%s: metadata general.architecture missing", c->file);
		return -1;
	}
	if (kv_string(c, a, hp->arch, sizeof hp->arch, err, errlen))
		return -1;
	if (!hp->arch[0])
		return kv_bad(c, a, err, errlen, "'' (an empty architecture name)");
	const char *ar = hp->arch;
	snprintf(hp->source, sizeof hp->source, "GGUF metadata");
	struct {
		const char *suffix;
		size_t *out;
	} sizes[] = {
		{"block_count", &hp->n_layers},
		{"embedding_length", &hp->d_model},
		{"attention.head_count", &hp->n_heads},
		{"attention.head_count_kv", &hp->n_kv_heads},
		{"attention.key_length", &hp->head_dim},
		{"rope.dimension_count", &hp->rotary_dim},
		{"vocab_size", &hp->vocab},
	};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		if (kv_size(c, kv, nkv, ar, sizes[i].suffix, sizes[i].out, err, errlen))
			return -1;
	const char *need[] = {"block_count", "embedding_length", "attention.head_count"};
	size_t *needv[] = {&hp->n_layers, &hp->d_model, &hp->n_heads};
	for (size_t i = 0; i < 3; i++) {
		if (!*needv[i]) {
			snprintf(err, errlen, "%s: metadata %s.%s missing", c->file, ar, need[i]);
			return -1;
		}
	}
	hp->theta = 10000.0;  /* llama.cpp's default when freq_base is absent */
	if (kv_positive(c, kv, nkv, ar, "rope.freq_base", &hp->theta, err, errlen) ||
	    kv_positive(c, kv, nkv, ar, "attention.layer_norm_rms_epsilon", &hp->norm_eps, err,
			errlen))
		return -1;
	double eps = 0;
	if (kv_positive(c, kv, nkv, ar, "attention.layer_norm_epsilon", &eps, err, errlen))
		return -1;
	if (!(hp->norm_eps > 0))
		hp->norm_eps = eps;
	hp->qk_norm_eps = hp->norm_eps;
	if (read_scaling(c, kv, nkv, ar, hp, err, errlen) ||
	    kv_positive(c, kv, nkv, ar, "attention.query_pre_attn_scalar",
			&hp->query_pre_attn_scalar, err, errlen))
		return -1;
	if (read_family_keys(c, kv, nkv, hp, err, errlen))
		return -1;
	/* DeepSeek-V2/V3 multi-head latent attention (data/mla_model.c) */
	if (!strcmp(ar, "deepseek2") &&
	    (kv_count(c, kv, nkv, ar, "attention.q_lora_rank", &hp->q_lora_rank, err, errlen) ||
	     kv_size(c, kv, nkv, ar, "attention.kv_lora_rank", &hp->kv_lora_rank, err, errlen) ||
	     kv_size(c, kv, nkv, ar, "attention.value_length", &hp->v_head_dim, err, errlen) ||
	     kv_size(c, kv, nkv, ar, "attention.key_length_mla", &hp->mla_key_len, err, errlen) ||
	     kv_size(c, kv, nkv, ar, "attention.value_length_mla", &hp->mla_value_len, err,
		     errlen) ||
	     kv_positive(c, kv, nkv, ar, "rope.scaling.yarn_log_multiplier", &hp->yarn_log_mul,
			 err, errlen) ||
	     gguf_deepseek2_moe(c, kv, nkv, hp, err, errlen)))
		return -1;
	hp->layout_set = true;
	hp->layout = arch_is_neox(ar) ? ROPE_HALF : ROPE_INTERLEAVED;
	hp->arch_known = arch_is_neox(ar) || arch_is_norm(ar);
	if (!strncmp(ar, "gemma", 5))
		hp->embed_scale_sqrt_d = true;  /* norms are stored as 1 + w already */
	return 0;
}

/* A key for sorting: its bytes (in the header read so far) and entry. */
typedef struct {
	const char *key;
	size_t keylen, kat;
} KeyRef;

static int kv_cmp(const void *pa, const void *pb)
{
	const KeyRef *a = pa, *b = pb;
	size_t n = a->keylen < b->keylen ? a->keylen : b->keylen;
	int d = memcmp(a->key, b->key, n);
	if (d)
		return d;
	if (a->keylen != b->keylen)
		return a->keylen < b->keylen ? -1 : 1;
	return a->kat < b->kat ? -1 : a->kat > b->kat;
}

/* Every metadata key once: a repeated key (which one would llama.cpp
 * use?) is refused at the offset of its second entry. */
static int kv_check_unique(const Cur *c, const Kv *kv, size_t nkv)
{
	if (nkv < 2)
		return 0;
	KeyRef *s = malloc(nkv * sizeof *s);
	if (!s) {
		snprintf(c->err, c->errlen, "%s: out of memory", c->file);
		return -1;
	}
	for (size_t i = 0; i < nkv; i++)
		s[i] = (KeyRef){kv_key(c, &kv[i]), kv[i].keylen, kv[i].kat};
	qsort(s, nkv, sizeof *s, kv_cmp);
	int rc = 0;
	for (size_t i = 1; i < nkv && !rc; i++) {
		if (s[i].keylen == s[i - 1].keylen && !memcmp(s[i].key, s[i - 1].key, s[i].keylen)) {
			snprintf(c->err, c->errlen, "%s: offset %zu: duplicate key %.*s (first at "
				 "offset %zu)", c->file, s[i].kat, (int)s[i].keylen, s[i].key,
				 s[i - 1].kat);
			rc = -1;
		}
	}
	free(s);
	return rc;
}

static int ref_cmp(const void *pa, const void *pb)
{
	const TensorRef *a = *(const TensorRef *const *)pa, *b = *(const TensorRef *const *)pb;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	return a->nbytes < b->nbytes ? -1 : a->nbytes > b->nbytes;
}

/* No two tensors of tt->v[first..] share a byte (a fold would rewrite
 * one through the other). Gaps are fine: alignment padding. */
static int gguf_check_overlap(const InFile *f, const TensorTable *tt, size_t first,
			      char *err, size_t errlen)
{
	size_t n = tt->n - first;
	if (n < 2)
		return 0;
	const TensorRef **s = malloc(n * sizeof *s);
	if (!s) {
		snprintf(err, errlen, "%s: out of memory", f->path);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		s[i] = &tt->v[first + i];
	qsort(s, n, sizeof *s, ref_cmp);
	int rc = 0;
	for (size_t i = 1; i < n && !rc; i++) {
		if (s[i]->offset < s[i - 1]->offset + s[i - 1]->nbytes) {
			snprintf(err, errlen, "%s: tensors %s and %s overlap (data at offsets %zu "
				 "and %zu, %zu and %zu bytes)", f->path, s[i - 1]->name, s[i]->name,
				 s[i - 1]->offset, s[i]->offset, s[i - 1]->nbytes, s[i]->nbytes);
			rc = -1;
		}
	}
	free(s);
	return rc;
}

#define FAIL(msg)                          \
	do {                               \
		cur_fail(&c, msg);         \
		goto fail;                 \
	} while (0)

static int gguf_parse(const InFile *f, TensorTable *tt, Hparams *hp, char *err,
		      size_t errlen)
{
	InHead head = {0};
	Cur c = {f, &head, f->n, 0, f->path, err, errlen, 0};
	Kv *kv = NULL;
	size_t first = tt->n;
	if (f->n < 4 || !cur_need(&c, 4) || memcmp(cur_at(&c, 0), "GGUF", 4)) {
		if (!c.failed)
			snprintf(err, errlen, "%s: offset 0: bad magic (not GGUF)", f->path);
		goto fail_quiet;
	}
	c.pos = 4;
	uint32_t version = (uint32_t)cur_uint(&c, 4);
	if (!c.failed && version != 2 && version != 3) {
		c.pos = 4;
		FAIL("unsupported GGUF version (2 and 3 are read)");
	}
	size_t at_counts = c.pos;
	uint64_t ntensors = cur_uint(&c, 8);
	uint64_t nkv = cur_uint(&c, 8);
	if (c.failed)
		goto fail;
	if (ntensors > GGUF_MAX_TENSORS || ntensors > (f->n - c.pos) / 24) {
		c.pos = at_counts;
		FAIL("tensor count absurd or past the end of the file");
	}
	if (nkv > GGUF_MAX_KV || nkv > (f->n - c.pos) / 13) {
		c.pos = at_counts + 8;
		FAIL("metadata count absurd or past the end of the file");
	}
	kv = calloc(nkv ? (size_t)nkv : 1, sizeof *kv);
	if (!kv)
		FAIL("out of memory");
	size_t alignment = 32;
	for (size_t i = 0; i < nkv; i++) {
		kv[i].kat = c.pos;
		const char *key = cur_str(&c, &kv[i].keylen, GGUF_MAX_NAME);
		if (!c.failed && !gguf_text_ok(key, kv[i].keylen)) {
			c.pos = kv[i].kat;
			FAIL("metadata key is not UTF-8 text or holds a NUL byte");
		}
		kv[i].key_at = c.pos - kv[i].keylen;
		kv[i].type = (unsigned)cur_uint(&c, 4);
		kv[i].at = c.pos;
		if (c.failed)
			goto fail;
		if (kv[i].type == GV_ARRAY && cur_need(&c, 12)) {
			Cur r = c;
			kv[i].arr_type = (unsigned)cur_uint(&r, 4);
			kv[i].arr_n = cur_uint(&r, 8);
		}
		skip_value(&c, kv[i].type, 0);
		if (c.failed)
			goto fail;
		if (kv[i].keylen == 17 && !memcmp(kv_key(&c, &kv[i]), "general.alignment", 17)) {
			double v;
			if (!kv_number(&c, &kv[i], &v) || !(v >= 1 && v <= 65536) || v != floor(v) ||
			    ((size_t)v & ((size_t)v - 1))) {
				c.pos = kv[i].kat;
				FAIL("general.alignment must be a power of two up to 65536");
			}
			alignment = (size_t)v;
		}
	}
	if (kv_check_unique(&c, kv, (size_t)nkv))
		goto fail_quiet;
	for (size_t i = 0; i < ntensors; i++) {
		size_t at = c.pos, nl;
		const char *nm = cur_str(&c, &nl, GGUF_MAX_NAME);
		if (!c.failed && !gguf_text_ok(nm, nl)) {
			c.pos = at;
			FAIL("tensor name is not UTF-8 text or holds a NUL byte");
		}
		size_t name_at = at + 8;  /* nm moves when the reads below grow the header */
		uint32_t nd = (uint32_t)cur_uint(&c, 4);
		if (c.failed)
			goto fail;
		if (nd == 0 || nd > TENSOR_MAX_DIMS) {
			c.pos -= 4;
			FAIL("tensor with 0 or more than 4 dimensions");
		}
		size_t ne[TENSOR_MAX_DIMS], nelem = 1;
		for (uint32_t j = 0; j < nd; j++) {
			uint64_t d = cur_uint(&c, 8);
			if (c.failed)
				goto fail;
			if (d == 0 || d > (uint64_t)1 << 40 || !size_mul(nelem, (size_t)d, &nelem)) {
				c.pos -= 8;
				FAIL("tensor dimension zero, absurd or overflowing");
			}
			ne[j] = (size_t)d;
		}
		unsigned ty = (unsigned)cur_uint(&c, 4);
		uint64_t off = cur_uint(&c, 8);
		if (c.failed)
			goto fail;
		GgmlType gt;
		size_t nbytes;
		if (!ggml_type_of(ty, &gt)) {
			char why[80];
			snprintf(why, sizeof why, "unknown tensor type %u (not a ggml type "
				 "ropefold knows)", ty);
			c.pos -= 12;
			FAIL(why);
		}
		if (ne[0] % gt.block) {
			char why[160];
			snprintf(why, sizeof why, "tensor %.*s: row length %zu not a multiple of "
				 "%s's block of %zu", (int)(nl < 80 ? nl : 80),
				 (const char *)cur_at(&c, name_at), ne[0], gt.name, gt.block);
			c.pos = at;
			FAIL(why);
		}
		if (!size_mul(nelem / gt.block, gt.block_bytes, &nbytes)) {
			c.pos = at;
			FAIL("tensor size overflows");
		}
		TensorRef *t = tensor_table_add(tt, (const char *)cur_at(&c, name_at), nl);
		if (!t)
			FAIL("out of memory");
		if (tensor_table_find(tt, t->name) != t) {
			/* The find returns the first entry of that name. */
			snprintf(err, errlen, "%s: offset %zu: duplicate tensor %s", f->path, at,
				 t->name);
			goto fail_quiet;
		}
		t->dtype = gt.dtype;
		snprintf(t->dtype_name, sizeof t->dtype_name, "%s", gt.name);
		t->ndim = nd;
		for (uint32_t j = 0; j < nd; j++)
			t->shape[j] = ne[nd - 1 - j];   /* ne0 is the innermost */
		t->nelem = nelem;
		t->nbytes = nbytes;
		t->offset = (size_t)(off > SIZE_MAX ? SIZE_MAX : off);
		t->file = f->path;
		t->src = f;
		if (off % alignment) {
			snprintf(err, errlen, "%s: tensor %s: data offset %llu not a multiple of "
				 "the alignment %zu", f->path, t->name, (unsigned long long)off,
				 alignment);
			goto fail_quiet;
		}
	}
	size_t data_start = c.pos;
	if (data_start % alignment)
		data_start += alignment - data_start % alignment;
	if (data_start > f->n && ntensors) {
		FAIL("data section starts past the end of the file");
	}
	for (size_t i = first; i < tt->n; i++) {
		TensorRef *t = &tt->v[i];
		size_t abs, end;
		if (!size_add(data_start, t->offset, &abs) || !size_add(abs, t->nbytes, &end) ||
		    end > f->n) {
			snprintf(err, errlen, "%s: tensor %s: data at offset %zu + %zu bytes runs past "
				 "the end of the file (%zu bytes)", f->path, t->name, t->offset,
				 t->nbytes, f->n);
			goto fail_quiet;
		}
		t->offset = abs;
	}
	if (gguf_check_overlap(f, tt, first, err, errlen))
		goto fail_quiet;
	if (read_hparams(&c, kv, (size_t)nkv, hp, err, errlen) ||
	    read_rope_tables(&c, kv, (size_t)nkv, tt, hp, err, errlen) ||
	    read_sparse_layers(tt, hp, err, errlen))
		goto fail_quiet;
	free(kv);
	infile_head_free(&head);
	return 0;
fail:
	(void)0;
fail_quiet:
	free(kv);
	infile_head_free(&head);
	return -1;
}

const ReaderOps reader_gguf = {
	.name = "gguf",
	.format = MODEL_FMT_GGUF,
	.sniff = gguf_sniff,
	.parse = gguf_parse,
};
