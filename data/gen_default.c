#include "config.h"

/* Writes the built-in default model: OUTDIR/config.json and
 * OUTDIR/model.safetensors, an HF Llama-style checkpoint of two attention
 * layers (D 64, 4 heads, 2 kv heads, head dim 16, half-split RoPE, theta
 * 10000) with token embeddings (vocab 128) and input norm weights, all
 * float32, from fixed seeds. Regenerate with `make default-model`, which
 * runs `data/gen_default $(srcdir)/data/default-model`. */

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/layer.h"
#include "core/rng.h"

enum { D = 64, H = 4, G = 2, HD = 16, VOCAB = 128, LAYERS = 2 };

typedef struct {
	char name[96];
	size_t rows, cols;     /* cols 0: a vector */
	float *v;
} Tensor;

static Tensor tensors[2 + 5 * LAYERS];
static size_t ntensors;

static Tensor *add(const char *name, size_t rows, size_t cols)
{
	Tensor *t = &tensors[ntensors++];
	snprintf(t->name, sizeof t->name, "%s", name);
	t->rows = rows;
	t->cols = cols;
	t->v = calloc(rows * (cols ? cols : 1), sizeof(float));
	if (!t->v) {
		fprintf(stderr, "gen_default: out of memory\n");
		exit(1);
	}
	return t;
}

static void put(Tensor *t, const double *src)
{
	for (size_t i = 0; i < t->rows * (t->cols ? t->cols : 1); i++)
		t->v[i] = (float)src[i];
}

static int write_safetensors(const char *path)
{
	json_t *hdr = json_object();
	size_t off = 0;
	for (size_t i = 0; i < ntensors; i++) {
		Tensor *t = &tensors[i];
		size_t n = t->rows * (t->cols ? t->cols : 1) * 4;
		json_t *shape = t->cols ? json_pack("[I, I]", (json_int_t)t->rows, (json_int_t)t->cols)
					: json_pack("[I]", (json_int_t)t->rows);
		json_object_set_new(hdr, t->name,
				    json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape,
					      "data_offsets", (json_int_t)off, (json_int_t)(off + n)));
		off += n;
	}
	char *text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(hdr);
	size_t hl = strlen(text), padded = (hl + 7) / 8 * 8;
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		free(text);
		return -1;
	}
	unsigned char len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)(padded >> (8 * i));
	fwrite(len8, 1, 8, f);
	fwrite(text, 1, hl, f);
	for (size_t i = hl; i < padded; i++)
		fputc(' ', f);
	free(text);
	for (size_t i = 0; i < ntensors; i++) {
		Tensor *t = &tensors[i];
		size_t n = t->rows * (t->cols ? t->cols : 1);
		for (size_t j = 0; j < n; j++) {
			uint32_t u;
			memcpy(&u, &t->v[j], 4);
			unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8),
					      (unsigned char)(u >> 16), (unsigned char)(u >> 24)};
			fwrite(b, 1, 4, f);
		}
	}
	return fclose(f) == 0 ? 0 : -1;
}

static int write_config(const char *path)
{
	json_t *c = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b, s:s}",
			      "architectures", "LlamaForCausalLM", "model_type", "llama",
			      "hidden_size", D, "num_attention_heads", H, "num_key_value_heads", G,
			      "head_dim", HD, "num_hidden_layers", LAYERS, "vocab_size", VOCAB,
			      "rope_theta", 10000.0, "rms_norm_eps", 1e-5, "tie_word_embeddings", 1,
			      "torch_dtype", "float32");
	int rc = json_dump_file(c, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(c);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_default OUTDIR\n");
		return 2;
	}
	mkdir(argv[1], 0777);
	LayerShape s = {D, H, G, HD};
	RopeSpec r = rope_spec_default(HD);
	Rng rng;
	double emb[VOCAB * D], norm[D];
	rng_seed(&rng, 20240601, 7);
	for (size_t i = 0; i < VOCAB * D; i++)
		emb[i] = 0.5 * rng_normal(&rng);
	put(add("model.embed_tokens.weight", VOCAB, D), emb);
	for (size_t l = 0; l < LAYERS; l++) {
		Layer ly;
		char nm[96];
		if (layer_random(&ly, &s, &r, false, 1000 + l) != RF_OK)
			return 1;
		for (size_t i = 0; i < D; i++)
			norm[i] = 1.0 + 0.1 * rng_normal(&rng);
		snprintf(nm, sizeof nm, "model.layers.%zu.input_layernorm.weight", l);
		put(add(nm, D, 0), norm);
		snprintf(nm, sizeof nm, "model.layers.%zu.self_attn.q_proj.weight", l);
		put(add(nm, H * HD, D), ly.wq);
		snprintf(nm, sizeof nm, "model.layers.%zu.self_attn.k_proj.weight", l);
		put(add(nm, G * HD, D), ly.wk);
		snprintf(nm, sizeof nm, "model.layers.%zu.self_attn.v_proj.weight", l);
		put(add(nm, G * HD, D), ly.wv);
		snprintf(nm, sizeof nm, "model.layers.%zu.self_attn.o_proj.weight", l);
		put(add(nm, D, H * HD), ly.wo);
		layer_free(&ly);
	}
	for (size_t i = 0; i < D; i++)
		norm[i] = 1.0;
	put(add("model.norm.weight", D, 0), norm);
	char path[4096];
	snprintf(path, sizeof path, "%s/model.safetensors", argv[1]);
	if (write_safetensors(path))
		return 1;
	snprintf(path, sizeof path, "%s/config.json", argv[1]);
	if (write_config(path)) {
		perror(path);
		return 1;
	}
	for (size_t i = 0; i < ntensors; i++)
		free(tensors[i].v);
	return 0;
}
