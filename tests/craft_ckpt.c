#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/ckpt_fixtures.h"

/* Crafted checkpoints for the shell tests, from the fixtures' writers:
 *   craft_ckpt DIR DTYPE QMAX KMAX
 * writes DIR/config.json and DIR/model.safetensors, a one-layer Llama
 * (D 64, 4 heads, 2 kv heads, head dim 16) whose q and k projections are
 * scaled so that their largest |weight| is QMAX and KMAX (0: as seeded),
 * every weight stored in DTYPE (F32 or F64). Exit 0, or 2 on bad usage. */

#define VOCAB 16

static void scale_to(double *w, size_t n, double target)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		m = fabs(w[i]) > m ? fabs(w[i]) : m;
	if (!(target > 0) || !(m > 0))
		return;
	for (size_t i = 0; i < n; i++)
		w[i] = w[i] / m * target;
}

int main(int argc, char **argv)
{
	char *end1, *end2;
	if (argc != 5 || (strcmp(argv[2], "F32") && strcmp(argv[2], "F64"))) {
		fprintf(stderr, "usage: craft_ckpt DIR F32|F64 QMAX KMAX\n");
		return 2;
	}
	double qmax = strtod(argv[3], &end1), kmax = strtod(argv[4], &end2);
	if (*end1 || *end2) {
		fprintf(stderr, "craft_ckpt: QMAX and KMAX are numbers\n");
		return 2;
	}
	LayerShape s = {64, 4, 2, 16};
	Layer l;
	fx_layer(&l, &s, false, 5);
	scale_to(l.wq, s.n_heads * s.head_dim * s.d_model, qmax);
	scale_to(l.wk, s.n_kv_heads * s.head_dim * s.d_model, kmax);
	double emb[VOCAB * 64];
	for (size_t i = 0; i < VOCAB * 64; i++)
		emb[i] = (float)(0.01 * (double)((i * 37) % 101) - 0.5);
	FxTensor t[16];
	size_t nt = fx_llama_tensors(&l, 1, emb, VOCAB, "hf", argv[2], t);
	FxBuf b = {0};
	fx_safetensors(&b, t, nt);
	char cfg[1024];
	fx_hf_config(cfg, sizeof cfg, "llama", &s, 1, VOCAB, "");
	mkdir(argv[1], 0777);
	int rc = fx_write(argv[1], "model.safetensors", b.p, b.n) ||
		 fx_write(argv[1], "config.json", cfg, strlen(cfg));
	fx_free(&b);
	layer_free(&l);
	if (rc)
		fprintf(stderr, "craft_ckpt: cannot write into %s\n", argv[1]);
	return rc ? 1 : 0;
}
