#include "config.h"

#include <stdio.h>
#include <string.h>

#include "data/reader.h"

/* llama2.c legacy .bin (run.c): seven int32 (dim, hidden_dim, n_layers,
 * n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means an
 * untied classifier at the end), then float32 arrays in this order:
 * token_embedding [vocab][dim]; rms_att [L][dim]; wq [L][dim][dim];
 * wk [L][kv_dim][dim]; wv [L][kv_dim][dim]; wo [L][dim][dim];
 * rms_ffn [L][dim]; w1 [L][hidden][dim]; w2 [L][dim][hidden];
 * w3 [L][hidden][dim]; rms_final [dim]; freq_cis_real [seq][hd/2];
 * freq_cis_imag [seq][hd/2]; wcls [vocab][dim] when untied.
 * The tensors get Meta's names (layers.N.attention.wq.weight, ...). */

#define L2C_HEADER 28
#define L2C_MAX ((int32_t)1 << 24)

static int32_t ld_i32(const unsigned char *p)
{
	uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		     (uint32_t)p[3] << 24;
	int32_t v;
	memcpy(&v, &u, sizeof v);
	return v;
}

/* Any file that is neither GGUF nor safetensors is tried as llama2.c; the
 * header checks in parse decide. */
static bool l2c_sniff(const unsigned char *p, size_t n, size_t size)
{
	(void)p;
	(void)n;
	return size >= 1;
}

/* Add one float32 tensor of shape [a][b] (b == 0: 1-D of length a). */
static int add_f32(const InFile *f, TensorTable *tt, size_t *pos, const char *name,
		   size_t a, size_t b, char *err, size_t errlen)
{
	size_t nelem = a, nbytes, end;
	if ((b && !size_mul(a, b, &nelem)) || !size_mul(nelem, 4, &nbytes) ||
	    !size_add(*pos, nbytes, &end) || end > f->n) {
		snprintf(err, errlen, "%s: tensor %s: %zu floats at offset %zu run past the end "
			 "of the file (%zu bytes): truncated or wrong header", f->path, name,
			 nelem, *pos, f->n);
		return -1;
	}
	TensorRef *t = tensor_table_add(tt, name, strlen(name));
	if (!t) {
		snprintf(err, errlen, "%s: out of memory", f->path);
		return -1;
	}
	t->dtype = STORE_F32;
	snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtype_name(STORE_F32));
	t->ndim = b ? 2 : 1;
	t->shape[0] = a;
	t->shape[1] = b;
	t->nelem = nelem;
	t->nbytes = nbytes;
	t->offset = *pos;
	t->src = f;
	t->file = f->path;
	*pos = end;
	return 0;
}

static int l2c_parse(const InFile *f, TensorTable *tt, Hparams *hp, char *err,
		     size_t errlen)
{
	static const char *names[7] = {"dim", "hidden_dim", "n_layers", "n_heads",
				       "n_kv_heads", "vocab_size", "seq_len"};
	int32_t h[7];
	unsigned char hdr[L2C_HEADER];
	if (f->n < L2C_HEADER) {
		snprintf(err, errlen, "%s: %zu bytes: not GGUF or safetensors, and too short for "
			 "a llama2.c header (28 bytes)", f->path, f->n);
		return -1;
	}
	if (infile_read(f, 0, hdr, L2C_HEADER, err, errlen))
		return -1;
	for (int i = 0; i < 7; i++) {
		h[i] = ld_i32(hdr + 4 * i);
		int32_t v = i == 5 && h[i] < 0 && h[i] != INT32_MIN ? -h[i] : h[i];
		if (v <= 0 || v > L2C_MAX) {
			snprintf(err, errlen, "%s: offset %d: llama2.c header %s = %d is not a "
				 "positive size up to %d (or the file is not a checkpoint)", f->path,
				 4 * i, names[i], (int)h[i], (int)L2C_MAX);
			return -1;
		}
	}
	size_t dim = (size_t)h[0], hidden = (size_t)h[1], L = (size_t)h[2];
	size_t H = (size_t)h[3], G = (size_t)h[4], seq = (size_t)h[6];
	bool untied = h[5] < 0;
	size_t vocab = (size_t)(untied ? -h[5] : h[5]);
	if (dim % H || H % G || G > H) {
		snprintf(err, errlen, "%s: offset 12: llama2.c header: n_heads %zu must divide dim "
			 "%zu and be divisible by n_kv_heads %zu", f->path, H, dim, G);
		return -1;
	}
	size_t hd = dim / H, kv_dim = hd * G;
	if (hd % 2) {
		snprintf(err, errlen, "%s: offset 12: llama2.c header: head dim %zu is odd",
			 f->path, hd);
		return -1;
	}
	size_t pos = L2C_HEADER;
	char nm[96];
	if (add_f32(f, tt, &pos, "tok_embeddings.weight", vocab, dim, err, errlen))
		return -1;
	static const struct {
		const char *suffix;
		int rows, cols;  /* 0 dim, 1 kv_dim, 2 hidden, -1 none */
	} per_layer[] = {
		{"attention_norm.weight", 0, -1}, {"attention.wq.weight", 0, 0},
		{"attention.wk.weight", 1, 0},    {"attention.wv.weight", 1, 0},
		{"attention.wo.weight", 0, 0},    {"ffn_norm.weight", 0, -1},
		{"feed_forward.w1.weight", 2, 0}, {"feed_forward.w2.weight", 0, 2},
		{"feed_forward.w3.weight", 2, 0},
	};
	size_t sz[3] = {dim, kv_dim, hidden};
	for (size_t k = 0; k < sizeof per_layer / sizeof per_layer[0]; k++) {
		for (size_t l = 0; l < L; l++) {
			snprintf(nm, sizeof nm, "layers.%zu.%s", l, per_layer[k].suffix);
			size_t b = per_layer[k].cols < 0 ? 0 : sz[per_layer[k].cols];
			if (add_f32(f, tt, &pos, nm, sz[per_layer[k].rows], b, err, errlen))
				return -1;
		}
	}
	if (add_f32(f, tt, &pos, "norm.weight", dim, 0, err, errlen) ||
	    add_f32(f, tt, &pos, "freq_cis_real", seq, hd / 2, err, errlen) ||
	    add_f32(f, tt, &pos, "freq_cis_imag", seq, hd / 2, err, errlen))
		return -1;
	if (untied && add_f32(f, tt, &pos, "output.weight", vocab, dim, err, errlen))
		return -1;
	if (pos != f->n) {
		snprintf(err, errlen, "%s: offset %zu: %zu bytes after the last tensor: the "
			 "llama2.c header does not describe this file", f->path, pos, f->n - pos);
		return -1;
	}
	snprintf(hp->arch, sizeof hp->arch, "llama");
	hp->arch_known = true;
	snprintf(hp->source, sizeof hp->source, "llama2.c header");
	hp->d_model = dim;
	hp->n_layers = L;
	hp->n_heads = H;
	hp->n_kv_heads = G;
	hp->vocab = vocab;
	hp->theta = 10000.0;
	hp->norm_eps = 1e-5;
	/* run.c rotates pairs (2i, 2i+1) with theta 10000. */
	hp->layout_set = true;
	hp->layout = ROPE_INTERLEAVED;
	return 0;
}

const ReaderOps reader_llama2c = {
	.name = "llama2c",
	.format = MODEL_FMT_LLAMA2C,
	.sniff = l2c_sniff,
	.parse = l2c_parse,
};
