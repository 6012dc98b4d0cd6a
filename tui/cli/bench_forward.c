#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/forward.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "core/timer.h"
#include "tui/cli/bench_forward.h"

/* n values in the precision: src converted (src != NULL), else
 * N(0, 1/fan_in) draws, or all ones (fan_in == 0). */
static void *weights(const double *src, size_t n, size_t fan_in, bool f32, Rng *r)
{
	void *v = malloc((n ? n : 1) * (f32 ? sizeof(float) : sizeof(double)));
	if (!v)
		return NULL;
	double s = fan_in ? 1.0 / sqrt((double)fan_in) : 0;
	for (size_t i = 0; i < n; i++) {
		double x = src ? src[i] : fan_in ? rng_normal(r) * s : 1.0;
		if (f32)
			((float *)v)[i] = (float)x;
		else
			((double *)v)[i] = x;
	}
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int bench_forward(const Layer *l, const double *x, size_t T, bool f32, size_t n,
		  BenchForward *out)
{
	const LayerShape *s = &l->shape;
	size_t D = s->d_model, d = s->head_dim, H = s->n_heads, G = s->n_kv_heads;
	size_t Hd = H * d, Gd = G * d, F = 7 * D / 2;
	memset(out, 0, sizeof *out);
	Rng r;
	rng_seed(&r, 7, 0xbe7cu);
	void *buf[10] = {
		weights(l->wq, Hd * D, 0, f32, &r), weights(l->wk, Gd * D, 0, f32, &r),
		weights(l->wv, Gd * D, 0, f32, &r), weights(l->wo, D * Hd, 0, f32, &r),
		weights(NULL, D, 0, f32, &r),       weights(NULL, D, 0, f32, &r),
		weights(NULL, F * D, D, f32, &r),   weights(NULL, F * D, D, f32, &r),
		weights(NULL, D * F, F, f32, &r),   NULL};
	double *t = calloc(n + 1, sizeof *t);
	FwdState st;
	int rc = -1;
	memset(&st, 0, sizeof st);
	for (int k = 0; k < 9; k++)
		if (!buf[k])
			goto done;
	if (!t || fwd_state_init(&st, f32 ? FWD_F32 : FWD_F64, T, D, parallel_default_threads()))
		goto done;
	FwdLayer fl;
	memset(&fl, 0, sizeof fl);
	fl.shape = *s;
	fl.rope = l->rope;
	fl.score_scale = l->score_scale;
	fl.wq = buf[0];
	fl.wk = buf[1];
	fl.wv = buf[2];
	fl.wo = buf[3];
	fl.block = FWD_BLOCK_PRE;
	fl.attn_norm = (FwdNorm){buf[4], NULL, NORM_RMS, 1e-5};
	fl.ffn_norm = (FwdNorm){buf[5], NULL, NORM_RMS, 1e-5};
	fl.act = FWD_ACT_SILU;
	fl.mlp = (FwdMlp){F, buf[6], buf[7], buf[8], NULL, NULL, NULL};
	for (size_t i = 0; i <= n; i++) {   /* run 0: the warm-up */
		fwd_state_embed(&st, x);
		double t0 = timer_now();
		if (fwd_layer_apply(&st, &fl) != RF_OK)
			goto done;
		t[i] = timer_now() - t0;
	}
	qsort(t + 1, n, sizeof *t, cmp_double);
	out->ff = F;
	out->seconds = n % 2 ? t[1 + n / 2] : 0.5 * (t[n / 2] + t[1 + n / 2]);
	double Td = (double)T;
	out->gflop = (2 * Td * (double)D * (double)(Hd + 2 * Gd) + 2 * Td * (double)Hd * (double)D +
		      4 * Td * Td * (double)d * (double)H + 6 * Td * (double)D * (double)F) * 1e-9;
	rc = 0;
done:
	for (int k = 0; k < 9; k++)
		free(buf[k]);
	free(t);
	fwd_state_done(&st);
	return rc;
}
