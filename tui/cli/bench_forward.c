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

/* The median of n timed runs of layer fl (after a warm-up) on x into
 * out->seconds: 0, or -1 (out of memory, or the layer refused). */
static int time_layer(const FwdLayer *fl, const double *x, size_t T, size_t D, bool f32,
		      size_t n, BenchForward *out)
{
	double *t = calloc(n + 1, sizeof *t);
	FwdState st;
	int rc = -1;
	memset(&st, 0, sizeof st);
	if (!t || fwd_state_init(&st, f32 ? FWD_F32 : FWD_F64, T, D, parallel_default_threads()))
		goto done;
	for (size_t i = 0; i <= n; i++) {   /* run 0: the warm-up */
		fwd_state_embed(&st, x);
		double t0 = timer_now();
		if (fwd_layer_apply(&st, fl) != RF_OK)
			goto done;
		t[i] = timer_now() - t0;
	}
	qsort(t + 1, n, sizeof *t, cmp_double);
	out->seconds = n % 2 ? t[1 + n / 2] : 0.5 * (t[n / 2] + t[1 + n / 2]);
	rc = 0;
done:
	free(t);
	fwd_state_done(&st);
	return rc;
}

/* The layer's norms (unit) and seeded SwiGLU MLP of width F into fl, from
 * buf[0..4] (allocated here; NULL entries on failure). */
static void mlp_part(FwdLayer *fl, size_t D, size_t F, bool f32, Rng *r, void **buf)
{
	buf[0] = weights(NULL, D, 0, f32, r);
	buf[1] = weights(NULL, D, 0, f32, r);
	buf[2] = weights(NULL, F * D, D, f32, r);
	buf[3] = weights(NULL, F * D, D, f32, r);
	buf[4] = weights(NULL, D * F, F, f32, r);
	fl->block = FWD_BLOCK_PRE;
	fl->attn_norm = (FwdNorm){buf[0], NULL, NORM_RMS, 1e-5};
	fl->ffn_norm = (FwdNorm){buf[1], NULL, NORM_RMS, 1e-5};
	fl->act = FWD_ACT_SILU;
	fl->mlp = (FwdMlp){F, buf[2], buf[3], buf[4], NULL, NULL, NULL};
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
	void *buf[9] = {
		weights(l->wq, Hd * D, 0, f32, &r), weights(l->wk, Gd * D, 0, f32, &r),
		weights(l->wv, Gd * D, 0, f32, &r), weights(l->wo, D * Hd, 0, f32, &r)};
	FwdLayer fl;
	memset(&fl, 0, sizeof fl);
	mlp_part(&fl, D, F, f32, &r, buf + 4);
	int rc = -1;
	for (int k = 0; k < 9; k++)
		if (!buf[k])
			goto done;
	fl.shape = *s;
	fl.rope = l->rope;
	fl.score_scale = l->score_scale;
	fl.wq = buf[0];
	fl.wk = buf[1];
	fl.wv = buf[2];
	fl.wo = buf[3];
	if (time_layer(&fl, x, T, D, f32, n, out))
		goto done;
	out->ff = F;
	double Td = (double)T;
	out->gflop = (2 * Td * (double)D * (double)(Hd + 2 * Gd) + 2 * Td * (double)Hd * (double)D +
		      4 * Td * Td * (double)d * (double)H + 6 * Td * (double)D * (double)F) * 1e-9;
	rc = 0;
done:
	for (int k = 0; k < 9; k++)
		free(buf[k]);
	return rc;
}

int bench_forward_mla(const MlaLayer *l, const double *x, size_t T, bool f32, size_t n,
		      BenchForward *out)
{
	const MlaShape *s = &l->shape;
	size_t D = s->d_model, H = s->n_heads, Lq = s->q_lora_rank, Lkv = s->kv_lora_rank;
	size_t dq = mla_qk_dim(s), dr = s->qk_rope_dim, dv = s->v_head_dim;
	size_t dkv = s->qk_nope_dim + dv, F = 7 * D / 2;
	memset(out, 0, sizeof *out);
	Rng r;
	rng_seed(&r, 7, 0xbe7cu);
	/* the layer's own MLA weights in the precision, then the MLP's */
	void *buf[12] = {
		Lq ? weights(l->q_a, Lq * D, 0, f32, &r) : NULL,
		Lq ? weights(l->q_a_norm, Lq, 0, f32, &r) : NULL,
		weights(l->q_b, H * dq * (Lq ? Lq : D), 0, f32, &r),
		weights(l->kv_a, (Lkv + dr) * D, 0, f32, &r),
		weights(l->kv_a_norm, Lkv, 0, f32, &r),
		weights(l->kv_b, H * dkv * Lkv, 0, f32, &r),
		weights(l->wo, D * H * dv, 0, f32, &r)};
	FwdLayer fl;
	memset(&fl, 0, sizeof fl);
	mlp_part(&fl, D, F, f32, &r, buf + 7);
	int rc = -1;
	for (int k = Lq ? 0 : 2; k < 12; k++)
		if (!buf[k])
			goto done;
	FwdMla m = {*s, l->rope, buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6],
		    l->latent_eps, l->score_scale};
	Layer hdr;   /* the header the forward pass runs MLA under */
	mla_header(l, &hdr);
	fl.shape = hdr.shape;
	fl.rope = l->rope;
	fl.mla = &m;
	if (time_layer(&fl, x, T, D, f32, n, out))
		goto done;
	out->ff = F;
	double Td = (double)T, q = Lq ? (double)(D * Lq + Lq * H * dq) : (double)(D * H * dq);
	out->gflop = (2 * Td * (q + (double)(D * (Lkv + dr)) + (double)(Lkv * H * dkv) +
			       (double)(H * dv * D)) +
		      2 * Td * Td * (double)H * (double)(dq + dv) + 6 * Td * (double)D * (double)F) *
		     1e-9;
	rc = 0;
done:
	for (int k = 0; k < 12; k++)
		free(buf[k]);
	return rc;
}
