#ifndef ROPEFOLD_TESTS_CKPT_FIXTURES_H
#define ROPEFOLD_TESTS_CKPT_FIXTURES_H

/* Writers of small checkpoints in every supported format, for the reader
 * tests and the fuzz seed corpus. Everything is built in memory. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/layer.h"

typedef struct {
	unsigned char *p;
	size_t n, cap;
} FxBuf;

/* Append bytes / little-endian integers / floats. */
void fx_put(FxBuf *b, const void *p, size_t n);
void fx_u32(FxBuf *b, uint32_t v);
void fx_u64(FxBuf *b, uint64_t v);
void fx_f32(FxBuf *b, float v);
void fx_free(FxBuf *b);

/* One tensor to write: values must be representable in dtype (F64, F32,
 * F16, BF16; Q8_0/Q4_0: blocks of 32 whose max |v| is 127 (resp. 8) times
 * a power-of-two scale); ggml's other block types are quantized as
 * llama.cpp's reference quantizers do (GGUF only). */
typedef struct {
	const char *name;
	const char *dtype;
	size_t ndim;
	size_t shape[4];          /* row-major, outermost first */
	const double *v;
} FxTensor;

/* Stored bytes to write for the tensor of that name instead of its
 * values' encoding (GGUF: crafted blocks). */
typedef struct {
	const char *name;
	const unsigned char *p;
	size_t n;
} FxRaw;

/* Encode n values in a dtype. */
void fx_encode(FxBuf *b, const char *dtype, const double *v, size_t n);
/* safetensors: header with the tensors in order, padded to 8 bytes. */
void fx_safetensors(FxBuf *out, const FxTensor *t, size_t nt);

/* GGUF metadata entry: type 's' string, 'u' uint32, 'f' float32, 'A' array
 * of num copies of the string s, 'I' array of num int32 all equal to num,
 * 'b' bool num, 'U' array of the uint32 values listed in s ("1,0,1"). */
typedef struct {
	const char *key;
	char type;
	const char *s;
	double num;
} FxKv;
/* GGUF version 2 or 3 with the given alignment (0: none written, 32). */
void fx_gguf(FxBuf *out, unsigned version, const FxKv *kv, size_t nkv,
	     const FxTensor *t, size_t nt, size_t alignment);
/* The same with the stored bytes of some tensors given (raw[0..nraw)). */
void fx_gguf_raw(FxBuf *out, unsigned version, const FxKv *kv, size_t nkv,
		 const FxTensor *t, size_t nt, size_t alignment, const FxRaw *raw, size_t nraw);

/* A llama2.c .bin: the header hdr[7] then every float of the legacy
 * layout with value fx_l2c_value(k) for float number k. */
void fx_llama2c(FxBuf *out, const int32_t hdr[7]);
float fx_l2c_value(size_t k);

/* A seeded layer with float32-representable weights and an input norm
 * (the reference the readers must reproduce). */
void fx_layer(Layer *l, const LayerShape *s, bool bias, uint64_t seed);
/* Round every value to bf16 (so BF16 files hold them exactly). */
void fx_round_bf16(double *v, size_t n);
/* Round every value to the nearest float16. */
void fx_round_f16(double *v, size_t n);

/* The tensors of a Llama-style layer stack in HF names (model.layers.N.*),
 * GGUF names (blk.N.*) or Meta names (layers.N.*), with token embeddings
 * emb (vocab x D). Returns the count; names live in a static pool. */
size_t fx_llama_tensors(const Layer *layers, size_t nl, const double *emb, size_t vocab,
			const char *scheme, const char *dtype, FxTensor *out);

/* An HF config.json for a Llama shape. extra is spliced in before the
 * closing brace (may be "" or ", \"rope_scaling\": {...}"). */
void fx_hf_config(char *buf, size_t len, const char *model_type, const LayerShape *s,
		  size_t layers, size_t vocab, const char *extra);

/* The layer stacks the fold and writer tests write: FX_FOLD_LAYERS layers
 * of fx_fold_shape (D 32, 4 heads, 2 kv heads, head dim 8), seeded 40 +
 * i; bf16: every weight and the input norm rounded to bf16. */
#define FX_FOLD_LAYERS 2
extern const LayerShape fx_fold_shape;
void fx_fold_layers(Layer *l, bool bias, bool bf16);
/* Those layers as a GGUF file dir/name (llama, 8 token embeddings), or an
 * HF folder dir/sub (config.json, tokenizer.json, model.safetensors; with
 * bias a Qwen2), in dtype; the checkpoint's path into path. */
void fx_fold_gguf(const char *dir, const char *name, const char *dtype, char *path,
		  size_t len);
void fx_fold_hf(const char *dir, const char *sub, const char *dtype, bool bias, char *path,
		size_t len);

/* Write a buffer / string to dir/name; returns 0. */
int fx_write(const char *dir, const char *name, const void *p, size_t n);
/* A fresh temporary folder (caller removes it with fx_rmtree). */
char *fx_tmpdir(void);
void fx_rmtree(const char *dir);

#endif
