#include "config.h"

#include "tests/testutil.h"

#include "core/dtype.h"
#include "data/model.h"
#include "tests/ckpt_fixtures.h"

/* GGUF reader: v2/v3, metadata of every kind, alignment, F32/F16/BF16/
 * Q8_0/Q4_0, llama.cpp's rope type per architecture, bad input. */

static const LayerShape SHAPE = {32, 4, 2, 8};
enum { VOCAB = 40, NL = 2 };

static Layer ref[NL];
static double emb[VOCAB * 32];

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < NL; i++)
		fx_layer(&ref[i], &SHAPE, true, 31 + i);
	for (size_t i = 0; i < VOCAB * 32; i++)
		emb[i] = (float)(0.01 * (double)((i * 13) % 97) - 0.4);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < NL; i++)
		layer_free(&ref[i]);
	return 0;
}

/* Metadata of a small llama-like model of arch a. */
static size_t base_kv(FxKv *kv, const char *a, char keys[][64])
{
	size_t n = 0;
	kv[n++] = (FxKv){"general.architecture", 's', a, 0};
	const char *suf[] = {"block_count", "embedding_length", "attention.head_count",
			     "attention.head_count_kv", "rope.dimension_count"};
	double val[] = {NL, 32, 4, 2, 8};
	for (size_t i = 0; i < 5; i++) {
		snprintf(keys[i], 64, "%s.%s", a, suf[i]);
		kv[n++] = (FxKv){keys[i], 'u', NULL, val[i]};
	}
	kv[n++] = (FxKv){"tokenizer.ggml.tokens", 'A', "tok", 3};
	return n;
}

static Model *open_mem(const FxBuf *b)
{
	Model *m = NULL;
	char err[512] = "";
	if (model_open_memory(b->p, b->n, NULL, "test.gguf", &m, err, sizeof err))
		fail_msg("model_open_memory: %s", err);
	return m;
}

static void mem_fails(const void *p, size_t n, const char *want)
{
	Model *m = NULL;
	char err[512] = "";
	if (model_open_memory(p, n, NULL, "test.gguf", &m, err, sizeof err) == 0) {
		model_close(m);
		fail_msg("accepted a bad GGUF (wanted '%s')", want);
	}
	if (want && !strstr(err, want))
		fail_msg("error '%s' does not mention '%s'", err, want);
	assert_null(strchr(err, '\n'));
}

static void assert_layer_equal(const Layer *a, const Layer *b)
{
	assert_true(tu_max_diff(a->wq, b->wq, 32 * 32) == 0);
	assert_true(tu_max_diff(a->wk, b->wk, 16 * 32) == 0);
	assert_true(tu_max_diff(a->wv, b->wv, 16 * 32) == 0);
	assert_true(tu_max_diff(a->wo, b->wo, 32 * 32) == 0);
	assert_true(tu_max_diff(a->attn_norm, b->attn_norm, 32) == 0);
}

static void test_llama_v3(void **state)
{
	(void)state;
	FxKv kv[16];
	char keys[8][64];
	size_t nkv = base_kv(kv, "llama", keys);
	FxTensor t[64];
	size_t nt = fx_llama_tensors(ref, NL, emb, VOCAB, "gguf", "F32", t);
	/* llama carries no biases: drop them from the list. */
	size_t k = 0;
	for (size_t i = 0; i < nt; i++)
		if (!strstr(t[i].name, ".bias"))
			t[k++] = t[i];
	FxBuf b = {0};
	fx_gguf(&b, 3, kv, nkv, t, k, 0);
	Model *m = open_mem(&b);
	const ModelInfo *in = model_info(m);
	assert_int_equal(in->format, MODEL_FMT_GGUF);
	assert_string_equal(in->arch, "llama");
	assert_int_equal(in->rope.layout, ROPE_INTERLEAVED);
	assert_close(in->rope.theta, 10000, 0);   /* no freq_base: llama.cpp default */
	assert_int_equal(in->n_layers, NL);
	assert_int_equal(in->shape.n_kv_heads, 2);
	assert_int_equal(in->vocab, VOCAB);
	assert_false(in->biases);
	assert_string_equal(in->tensor_o, "blk.0.attn_output.weight");
	assert_string_equal(in->note, "");
	for (size_t i = 0; i < NL; i++) {
		Layer l;
		char err[256];
		assert_int_equal(model_load_layer(m, i, &l, err, sizeof err), 0);
		assert_layer_equal(&l, &ref[i]);
		assert_int_equal(l.rope.layout, ROPE_INTERLEAVED);
		layer_free(&l);
	}
	size_t tok[2] = {3, 39};
	double e[64];
	char err[256];
	assert_int_equal(model_load_embeddings(m, tok, 2, e, err, sizeof err), 0);
	assert_true(tu_max_diff(e + 32, emb + 39 * 32, 32) == 0);
	model_close(m);

	/* Every strict prefix is rejected cleanly (truncation anywhere). */
	for (size_t n = 0; n < b.n; n += (n < 600 ? 1 : 97)) {
		unsigned char *cp = malloc(n ? n : 1);
		memcpy(cp, b.p, n);
		mem_fails(cp, n, NULL);
		free(cp);
	}
	fx_free(&b);
}

/* v2, alignment 64, arch qwen2 (NEOX: half-split) with q/k/v biases and a
 * freq_base; scaling keys; explicit key_length. */
static void test_qwen2_v2(void **state)
{
	(void)state;
	FxKv kv[20];
	char keys[8][64];
	size_t nkv = base_kv(kv, "qwen2", keys);
	kv[nkv++] = (FxKv){"qwen2.rope.freq_base", 'f', NULL, 1000000.0};
	kv[nkv++] = (FxKv){"qwen2.rope.scaling.type", 's', "yarn", 0};
	kv[nkv++] = (FxKv){"qwen2.rope.scaling.factor", 'f', NULL, 4.0};
	kv[nkv++] = (FxKv){"qwen2.rope.scaling.original_context_length", 'u', NULL, 32768};
	kv[nkv++] = (FxKv){"qwen2.attention.key_length", 'u', NULL, 8};
	kv[nkv++] = (FxKv){"qwen2.attention.layer_norm_rms_epsilon", 'f', NULL, 0.0009765625};
	FxTensor t[64];
	size_t nt = fx_llama_tensors(ref, NL, emb, VOCAB, "gguf", "F32", t);
	FxBuf b = {0};
	fx_gguf(&b, 2, kv, nkv, t, nt, 64);
	Model *m = open_mem(&b);
	const ModelInfo *in = model_info(m);
	assert_int_equal(in->rope.layout, ROPE_HALF);
	assert_close(in->rope.theta, 1e6, 0);
	assert_int_equal(in->rope.scaling.kind, ROPE_SCALING_YARN);
	assert_close(in->rope.scaling.factor, 4, 0);
	assert_close(in->rope.scaling.original_max_pos, 32768, 0);
	assert_true(in->biases);
	Layer l;
	char err[256];
	assert_int_equal(model_load_layer(m, 1, &l, err, sizeof err), 0);
	assert_layer_equal(&l, &ref[1]);
	assert_true(tu_max_diff(l.bq, ref[1].bq, 32) == 0);
	assert_true(tu_max_diff(l.bv, ref[1].bv, 16) == 0);
	assert_close(l.norm_eps, 0.0009765625, 0);
	layer_free(&l);
	model_close(m);
	fx_free(&b);
}

/* Quantized and half-precision tensors convert exactly; fused attn_qkv. */
static void test_dtypes_fused(void **state)
{
	(void)state;
	static double wq[32 * 32], wk[16 * 32], wv[16 * 32], wo[32 * 32], qkv[64 * 32];
	/* Q8_0: each block of 32 holds ints in [-127, 127] (one of them 127)
	 * times a power-of-two scale: exactly representable. */
	double *m8[] = {wq, wk, wv, wo};
	size_t n8[] = {32 * 32, 16 * 32, 16 * 32, 32 * 32};
	for (size_t k = 0; k < 4; k++)
		for (size_t i = 0; i < n8[k]; i++)
			m8[k][i] = ldexp((double)(i % 32 == 5 ? 127 : (long)((i * 7 + k) % 255) - 127),
					 -9 - (int)(i / 32 % 3));
	const char *dts[] = {"Q8_0", "Q4_0", "F16", "BF16", "F64"};
	for (size_t d = 0; d < 5; d++) {
		static double q[32 * 32], kk[16 * 32], v[16 * 32], o[32 * 32], nrm[32];
		memcpy(q, wq, sizeof q);
		memcpy(kk, wk, sizeof kk);
		memcpy(v, wv, sizeof v);
		memcpy(o, wo, sizeof o);
		if (d == 1) {
			/* Q4_0: ints in [-8, 7], one -8 per block. */
			double *mm[] = {q, kk, v, o};
			for (size_t k = 0; k < 4; k++)
				for (size_t i = 0; i < n8[k]; i++)
					mm[k][i] = ldexp((double)(i % 32 == 3 ? -8 : (long)((i * 5 + k) % 16) - 8), -4);
		}
		for (size_t i = 0; i < 32; i++)
			nrm[i] = 1.0 + ldexp((double)i, -6);
		memcpy(qkv, q, sizeof q);
		memcpy(qkv + 32 * 32, kk, sizeof kk);
		memcpy(qkv + 48 * 32, v, sizeof v);
		FxTensor t[3] = {
			{"blk.0.attn_norm.weight", "F32", 1, {32, 0, 0, 0}, nrm},
			{"blk.0.attn_qkv.weight", dts[d], 2, {64, 32, 0, 0}, qkv},
			{"blk.0.attn_output.weight", dts[d], 2, {32, 32, 0, 0}, o},
		};
		FxKv kv[16];
		char keys[8][64];
		size_t nkv = base_kv(kv, "phi3", keys);
		kv[1].num = 1;                 /* block_count */
		kv[5].num = 4;                 /* partial rotary: 4 of 8 */
		FxBuf b = {0};
		fx_gguf(&b, 3, kv, nkv, t, 3, 0);
		Model *m = open_mem(&b);
		const ModelInfo *in = model_info(m);
		assert_string_equal(dtype_name(in->dtype), dts[d]);
		assert_true(in->fused_qkv);
		assert_int_equal(in->rope.rotary_dim, 4);
		assert_int_equal(in->rope.layout, ROPE_HALF);
		Layer l;
		char err[256];
		if (model_load_layer(m, 0, &l, err, sizeof err))
			fail_msg("%s: %s", dts[d], err);
		if (tu_max_diff(l.wq, q, 32 * 32) != 0 || tu_max_diff(l.wk, kk, 16 * 32) != 0 ||
		    tu_max_diff(l.wv, v, 16 * 32) != 0 || tu_max_diff(l.wo, o, 32 * 32) != 0)
			fail_msg("%s: weights not reproduced exactly", dts[d]);
		layer_free(&l);
		model_close(m);
		fx_free(&b);
	}
}

/* A GGUF header by hand: magic, version, counts, then the caller's bytes. */
static void hdr(FxBuf *b, uint32_t version, uint64_t nt, uint64_t nkv)
{
	fx_put(b, "GGUF", 4);
	fx_u32(b, version);
	fx_u64(b, nt);
	fx_u64(b, nkv);
}

static void kstr(FxBuf *b, const char *s)
{
	fx_u64(b, strlen(s));
	fx_put(b, s, strlen(s));
}

static void test_bad_input(void **state)
{
	(void)state;
	FxBuf b = {0};
	mem_fails("", 0, "empty");
	mem_fails("GGUX\3\0\0\0", 8, NULL);
	fx_put(&b, "GGUF", 4);
	mem_fails(b.p, b.n, "truncated");
	fx_free(&b);
	hdr(&b, 1, 0, 0);
	mem_fails(b.p, b.n, "version");
	fx_free(&b);
	hdr(&b, 3, (uint64_t)1 << 60, 0);
	mem_fails(b.p, b.n, "offset 8: tensor count");
	fx_free(&b);
	hdr(&b, 3, 0, (uint64_t)1 << 62);
	mem_fails(b.p, b.n, "offset 16: metadata count");
	fx_free(&b);
	hdr(&b, 3, 0, 1);
	fx_u64(&b, (uint64_t)1 << 50);   /* key length */
	fx_put(&b, "abcdefgh", 8);
	mem_fails(b.p, b.n, "offset 24: string length");
	fx_free(&b);
	hdr(&b, 3, 0, 1);
	kstr(&b, "general.architecture");
	fx_u32(&b, 8);
	fx_u64(&b, 0xffffffffffffull);   /* value string length */
	mem_fails(b.p, b.n, "string length");
	fx_free(&b);
	hdr(&b, 3, 0, 1);
	kstr(&b, "tokenizer.ggml.tokens");
	fx_u32(&b, 9);
	fx_u32(&b, 8);
	fx_u64(&b, (uint64_t)1 << 40);   /* array count */
	for (int i = 0; i < 4; i++)
		kstr(&b, "x");
	mem_fails(b.p, b.n, "array count");
	fx_free(&b);
	hdr(&b, 3, 0, 1);
	kstr(&b, "x");
	fx_u32(&b, 77);                  /* value type */
	fx_u32(&b, 0);
	mem_fails(b.p, b.n, "unknown metadata value type");
	fx_free(&b);
	/* No general.architecture. */
	hdr(&b, 3, 0, 1);
	kstr(&b, "general.name");
	fx_u32(&b, 8);
	kstr(&b, "x");
	mem_fails(b.p, b.n, "general.architecture missing");
	fx_free(&b);

	/* Tensor infos: unknown type, data past the end, misaligned offset,
	 * zero dimension. */
	FxKv kv[16];
	char keys[8][64];
	size_t nkv = base_kv(kv, "llama", keys);
	FxTensor t[64];
	size_t nt = fx_llama_tensors(ref, NL, emb, VOCAB, "gguf", "F32", t);
	fx_gguf(&b, 3, kv, nkv, t, nt, 0);
	/* Find the first tensor info (token_embd.weight) to patch it. */
	size_t at = 0;
	for (size_t i = 0; i + 17 < b.n; i++)
		if (!memcmp(b.p + i, "token_embd.weight", 17)) {
			at = i + 17;
			break;
		}
	assert_int_not_equal(at, 0);
	size_t type_at = at + 4 + 16, off_at = type_at + 4;
	FxBuf c = {0};
	fx_put(&c, b.p, b.n);
	c.p[type_at] = 99;
	mem_fails(c.p, c.n, "unknown tensor type");
	memcpy(c.p, b.p, b.n);
	c.p[off_at + 5] = 1;             /* offset + 2^40 */
	mem_fails(c.p, c.n, "tensor token_embd.weight: data at offset");
	memcpy(c.p, b.p, b.n);
	c.p[off_at] = 4;
	mem_fails(c.p, c.n, "not a multiple of the alignment");
	memcpy(c.p, b.p, b.n);
	memset(c.p + at + 4, 0, 8);      /* ne0 = 0 */
	mem_fails(c.p, c.n, "dimension zero");
	memcpy(c.p, b.p, b.n);
	c.p[at] = 9;                     /* n_dims */
	mem_fails(c.p, c.n, "dimensions");
	fx_free(&c);
	fx_free(&b);

	/* Shape disagreeing with the metadata. */
	kv[4].num = 4;                   /* head_count_kv 4: k would be 32 x 32 */
	fx_gguf(&b, 3, kv, nkv, t, nt, 0);
	mem_fails(b.p, b.n, "blk.0.attn_k.weight: shape [16, 32], but GGUF metadata gives [32, 32]");
	fx_free(&b);
}

/* The llama fixture (no biases) with extra metadata kv[base..nkv). */
static void llama_gguf(FxBuf *b, const FxKv *kv, size_t nkv, const FxTensor *t, size_t nt)
{
	memset(b, 0, sizeof *b);
	fx_gguf(b, 3, kv, nkv, t, nt, 0);
}

static size_t llama_tensors(FxTensor *t)
{
	size_t nt = fx_llama_tensors(ref, NL, emb, VOCAB, "gguf", "F32", t), k = 0;
	for (size_t i = 0; i < nt; i++)
		if (!strstr(t[i].name, ".bias"))
			t[k++] = t[i];
	return k;
}

/* Offset of the length prefix of the first string s in the buffer. */
static size_t str_at(const FxBuf *b, const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 8; i + n <= b->n; i++)
		if (!memcmp(b->p + i, s, n) && b->p[i - 8] == n)
			return i - 8;
	fail_msg("'%s' not in the file", s);
	return 0;
}

/* A metadata key present with a wrong type or a bad value is an error
 * naming the key and the offset of its entry, never a silent default. */
static void test_metadata_values(void **state)
{
	(void)state;
	FxTensor t[64];
	size_t nt = llama_tensors(t);
	static const struct {
		FxKv kv;
		const char *want;
	} bad[] = {
		{{"llama.rope.freq_base", 'f', NULL, NAN}, "llama.rope.freq_base: bad value nan"},
		{{"llama.rope.freq_base", 'f', NULL, INFINITY}, "llama.rope.freq_base: bad value inf"},
		{{"llama.rope.freq_base", 'f', NULL, -1e4}, "llama.rope.freq_base: bad value -10000"},
		{{"llama.rope.freq_base", 'f', NULL, 0}, "llama.rope.freq_base: bad value 0"},
		{{"llama.rope.freq_base", 's', "10000", 0},
		 "llama.rope.freq_base: bad value type string (must be a number)"},
		{{"llama.rope.scaling.factor", 'f', NULL, -2}, "llama.rope.scaling.factor: bad value -2"},
		{{"llama.rope.scale_linear", 'f', NULL, 0}, "llama.rope.scale_linear: bad value 0"},
		{{"llama.rope.scale_linear", 'f', NULL, -3}, "llama.rope.scale_linear: bad value -3"},
		{{"llama.rope.scaling.type", 'u', NULL, 5},
		 "llama.rope.scaling.type: bad value type uint32 (must be a string)"},
		{{"llama.attention.key_length", 'u', NULL, 0}, "llama.attention.key_length: bad value 0"},
		{{"llama.attention.layer_norm_rms_epsilon", 'f', NULL, NAN},
		 "llama.attention.layer_norm_rms_epsilon: bad value nan"},
		{{"llama.attention.layer_norm_rms_epsilon", 'f', NULL, -1e-5},
		 "llama.attention.layer_norm_rms_epsilon: bad value -1e-05"},
		{{"llama.attention.layer_norm_epsilon", 'f', NULL, 0},
		 "llama.attention.layer_norm_epsilon: bad value 0"},
		{{"llama.vocab_size", 'f', NULL, 40.5}, "llama.vocab_size: bad value 40.5"},
		{{"llama.rope.scaling.original_context_length", 'f', NULL, -1},
		 "llama.rope.scaling.original_context_length: bad value -1"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		FxKv kv[16];
		char keys[8][64];
		size_t nkv = base_kv(kv, "llama", keys);
		kv[nkv++] = bad[i].kv;
		FxBuf b;
		llama_gguf(&b, kv, nkv, t, nt);
		char want[256];
		snprintf(want, sizeof want, "test.gguf: offset %zu: metadata %s", str_at(&b, bad[i].kv.key),
			 bad[i].want);
		mem_fails(b.p, b.n, want);
		fx_free(&b);
	}
	/* rope.dimension_count 0 (the fixture states 8). */
	FxKv kv[16];
	char keys[8][64];
	size_t nkv = base_kv(kv, "llama", keys);
	kv[5].num = 0;
	FxBuf b;
	llama_gguf(&b, kv, nkv, t, nt);
	mem_fails(b.p, b.n, "metadata llama.rope.dimension_count: bad value 0");
	fx_free(&b);
	/* Good values are taken, absent ones keep the defaults. */
	nkv = base_kv(kv, "llama", keys);
	kv[nkv++] = (FxKv){"llama.rope.scale_linear", 'f', NULL, 2};
	kv[nkv++] = (FxKv){"llama.attention.layer_norm_epsilon", 'f', NULL, 0.25};
	llama_gguf(&b, kv, nkv, t, nt);
	Model *m = open_mem(&b);
	assert_int_equal(model_info(m)->rope.scaling.kind, ROPE_SCALING_LINEAR);
	assert_close(model_info(m)->rope.scaling.factor, 2, 0);
	assert_close(model_info(m)->rope.theta, 10000, 0);
	Layer l;
	char err[256];
	assert_int_equal(model_load_layer(m, 0, &l, err, sizeof err), 0);
	assert_close(l.norm_eps, 0.25, 0);
	layer_free(&l);
	model_close(m);
	fx_free(&b);
}

/* A key or a tensor name twice is refused (which one would count?), with
 * the offset of the second entry. */
static void test_duplicates(void **state)
{
	(void)state;
	FxTensor t[64];
	size_t nt = llama_tensors(t);
	const char *keys2[] = {"general.architecture", "llama.block_count"};
	for (size_t i = 0; i < 2; i++) {
		FxKv kv[16];
		char keys[8][64];
		size_t nkv = base_kv(kv, "llama", keys);
		kv[nkv++] = (FxKv){"general.name", 's', "x", 0};
		kv[nkv++] = i ? (FxKv){keys2[i], 'u', NULL, 9} : (FxKv){keys2[i], 's', "qwen3", 0};
		FxBuf b;
		llama_gguf(&b, kv, nkv, t, nt);
		size_t first = str_at(&b, keys2[i]), second = 0;
		for (size_t k = b.n - 8; k > first; k--)
			if (!memcmp(b.p + k, keys2[i], strlen(keys2[i]))) {
				second = k - 8;
				break;
			}
		char want[256];
		snprintf(want, sizeof want, "test.gguf: offset %zu: duplicate key %s (first at offset %zu)",
			 second, keys2[i], first);
		mem_fails(b.p, b.n, want);
		fx_free(&b);
	}
	FxKv kv[16];
	char keys[8][64];
	size_t nkv = base_kv(kv, "llama", keys);
	t[nt] = t[2];
	FxBuf b;
	llama_gguf(&b, kv, nkv, t, nt + 1);
	char want[256];
	size_t at = 0;
	for (size_t k = b.n - 8; k > 0 && !at; k--)
		if (!memcmp(b.p + k, t[2].name, strlen(t[2].name)) && b.p[k - 8] == strlen(t[2].name))
			at = k - 8;
	snprintf(want, sizeof want, "test.gguf: offset %zu: duplicate tensor %s", at, t[2].name);
	mem_fails(b.p, b.n, want);
	fx_free(&b);
}

/* Names must be UTF-8 without NUL bytes (they are printed, compared as C
 * strings and written into JSON reports): so the tensor names, the keys
 * and the architecture. Such a file is refused by info and info --json
 * alike. */
static void test_names(void **state)
{
	(void)state;
	FxTensor t[64];
	size_t nt = llama_tensors(t);
	FxKv kv[16];
	char keys[8][64];
	size_t nkv = base_kv(kv, "llama", keys);
	t[nt] = (FxTensor){"junk.\xff\xfe", "F32", 1, {4, 0, 0, 0}, emb};
	FxBuf b;
	llama_gguf(&b, kv, nkv, t, nt + 1);
	char want[256];
	snprintf(want, sizeof want, "offset %zu: tensor name is not UTF-8 text or holds a NUL byte",
		 str_at(&b, "junk.\xff\xfe"));
	mem_fails(b.p, b.n, want);
	fx_free(&b);
	/* A NUL inside a name: "junk.Z" with Z zeroed (it once read as "junk."). */
	t[nt] = (FxTensor){"blk.0.attn_q.weightZ", "F32", 1, {4, 0, 0, 0}, emb};
	llama_gguf(&b, kv, nkv, t, nt + 1);
	size_t at = str_at(&b, "blk.0.attn_q.weightZ");
	b.p[at + 8 + 19] = 0;
	snprintf(want, sizeof want, "offset %zu: tensor name is not UTF-8 text or holds a NUL byte", at);
	mem_fails(b.p, b.n, want);
	fx_free(&b);
	/* Keys, and the architecture value. */
	kv[nkv] = (FxKv){"general.\xc0\xafname", 's', "x", 0};   /* overlong '/' */
	llama_gguf(&b, kv, nkv + 1, t, nt);
	mem_fails(b.p, b.n, "metadata key is not UTF-8 text or holds a NUL byte");
	fx_free(&b);
	kv[0].s = "llamaZ";
	llama_gguf(&b, kv, nkv, t, nt);
	at = str_at(&b, "general.architecture");
	b.p[at + 8 + 20 + 4 + 8 + 5] = 0;
	snprintf(want, sizeof want, "offset %zu: metadata general.architecture: bad value (not UTF-8",
		 at);
	mem_fails(b.p, b.n, want);
	fx_free(&b);
	/* Well-formed multi-byte UTF-8 is fine. */
	kv[0].s = "llama";
	t[nt] = (FxTensor){"junk.\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "F32", 1, {32, 0, 0, 0}, emb};
	llama_gguf(&b, kv, nkv, t, nt + 1);
	model_close(open_mem(&b));
	fx_free(&b);
}

/* A later layer's missing tensor is refused when the file opens, naming
 * the file and the tensor; two tensors sharing bytes are refused too. */
static void test_layers_and_overlap(void **state)
{
	(void)state;
	FxTensor t[64], u[64];
	size_t nt = llama_tensors(t), k = 0;
	for (size_t i = 0; i < nt; i++)
		if (strcmp(t[i].name, "blk.1.attn_v.weight"))
			u[k++] = t[i];
	FxKv kv[16];
	char keys[8][64];
	size_t nkv = base_kv(kv, "llama", keys);
	FxBuf b;
	llama_gguf(&b, kv, nkv, u, k);
	mem_fails(b.p, b.n, "test.gguf: layer 1: tensor blk.1.attn_v.weight is missing");
	fx_free(&b);
	/* blk.0.attn_k.weight's offset set to blk.0.attn_q.weight's. */
	llama_gguf(&b, kv, nkv, t, nt);
	size_t q = str_at(&b, "blk.0.attn_q.weight") + 8 + 19 + 4 + 16 + 4;
	size_t kk = str_at(&b, "blk.0.attn_k.weight") + 8 + 19 + 4 + 16 + 4;
	memcpy(b.p + kk, b.p + q, 8);
	mem_fails(b.p, b.n, "tensors blk.0.attn_k.weight and blk.0.attn_q.weight overlap");
	fx_free(&b);
}

/* {arch}.vocab_size and an untied output.weight against token_embd
 * (llama.cpp: token_embd {n_embd, n_vocab}, output {n_embd, n_vocab}); an
 * architecture llama.cpp does not list is read as NORM, with a note. */
static void test_vocab_and_arch(void **state)
{
	(void)state;
	FxKv kv[16];
	char keys[8][64];
	FxTensor t[64];
	size_t nt = fx_llama_tensors(ref, NL, emb, VOCAB, "gguf", "F32", t), k = 0;
	for (size_t i = 0; i < nt; i++)
		if (!strstr(t[i].name, ".bias"))
			t[k++] = t[i];
	size_t nkv = base_kv(kv, "llama", keys);
	kv[nkv++] = (FxKv){"llama.vocab_size", 'u', NULL, VOCAB + 1};
	FxBuf b = {0};
	fx_gguf(&b, 3, kv, nkv, t, k, 0);
	mem_fails(b.p, b.n, "test.gguf: tensor token_embd.weight: 40 rows, but GGUF metadata "
			    "gives vocab_size 41");
	fx_free(&b);
	double *out = calloc((VOCAB + 1) * 32, sizeof(double));
	t[k] = (FxTensor){"output.weight", "F32", 2, {VOCAB + 1, 32, 0, 0}, out};
	fx_gguf(&b, 3, kv, nkv - 1, t, k + 1, 0);
	mem_fails(b.p, b.n, "tensor output.weight: 41 rows, but the embeddings token_embd.weight "
			    "have 40");
	fx_free(&b);
	t[k].shape[0] = VOCAB;
	fx_gguf(&b, 3, kv, nkv - 1, t, k + 1, 0);
	model_close(open_mem(&b));
	fx_free(&b);
	free(out);

	nkv = base_kv(kv, "zzz", keys);
	fx_gguf(&b, 3, kv, nkv, t, k, 0);
	Model *m = open_mem(&b);
	const char *note = model_info(m)->note;
	assert_non_null(strstr(note, "test.gguf: GGUF metadata: general.architecture 'zzz' is not "
				     "a family ropefold knows"));
	assert_non_null(strstr(note, "RoPE pairs interleaved (llama.cpp's NORM type)"));
	assert_int_equal(model_info(m)->rope.layout, ROPE_INTERLEAVED);
	model_close(m);
	fx_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_llama_v3),
		cmocka_unit_test(test_qwen2_v2),
		cmocka_unit_test(test_dtypes_fused),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_metadata_values),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_layers_and_overlap),
		cmocka_unit_test(test_vocab_and_arch),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
