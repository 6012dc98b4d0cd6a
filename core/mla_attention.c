#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mla.h"
#include "core/rope.h"

/* One side of an MLA layer, as DeepSeek's modelling code evaluates it (the
 * formulas in core/mla.h), in float64 with plain loops for the scores. */

/* ---- one side ------------------------------------------------------------- */

/* out (T x N) = in (T x K) W^T, W being N x K. */
static void linear(const double *in, const double *W, size_t T, size_t K, size_t N,
		   double *out)
{
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)N, (int)K, 1.0, in,
		    (int)K, W, (int)K, 0.0, out, (int)N);
}

/* RMSNorm of each of T rows of n entries (leading dimension ld), in place. */
static void rmsnorm_rows(double *x, size_t T, size_t n, size_t ld, const double *w, double eps)
{
	for (size_t t = 0; t < T; t++) {
		double *r = x + t * ld, ss = 0;
		for (size_t i = 0; i < n; i++)
			ss += r[i] * r[i];
		double inv = 1.0 / sqrt(ss / (double)n + eps);
		for (size_t i = 0; i < n; i++)
			r[i] = r[i] * inv * (w ? w[i] : 1.0);
	}
}

void mla_side_done(MlaSide *s)
{
	free(s->q);
	free(s->k);
	free(s->v);
	free(s->ctx);
	free(s->y);
	memset(s, 0, sizeof *s);
}

RfStatus mla_forward(const MlaLayer *l, const double *x, size_t T, MlaSide *out)
{
	const MlaShape *s = &l->shape;
	size_t D = s->d_model, H = s->n_heads, Lq = s->q_lora_rank, Lkv = s->kv_lora_rank;
	size_t dn = s->qk_nope_dim, dr = s->qk_rope_dim, dv = s->v_head_dim;
	size_t dq = dn + dr, dkv = dn + dv, la = Lkv + dr;
	memset(out, 0, sizeof *out);
	out->T = T;
	out->q = malloc(T * H * dq * sizeof(double));
	out->k = malloc(T * H * dq * sizeof(double));
	out->v = malloc(T * H * dv * sizeof(double));
	out->ctx = malloc(T * H * dv * sizeof(double));
	out->y = malloc(T * D * sizeof(double));
	/* scratch: the q latent (T x Lq), [c; k_pe] (T x la), kv (T x H*dkv),
	 * the pe parts for RoPE (T x H x dr and T x dr), one score row (T) */
	size_t nscr = T * Lq + T * la + T * H * dkv + T * H * dr + T * dr + T;
	double *scr = malloc(nscr * sizeof(double));
	RopeTable rt;
	memset(&rt, 0, sizeof rt);
	RfStatus st = RF_ERR_NOMEM;
	if (!out->q || !out->k || !out->v || !out->ctx || !out->y || !scr)
		goto fail;
	RopeSpec rope = l->rope;
	rope.rotary_dim = dr;
	st = rope_table_init(&rt, &rope, T);
	if (st != RF_OK)
		goto fail;
	double *qa = scr, *ca = qa + T * Lq, *kv = ca + T * la, *qpe = kv + T * H * dkv;
	double *kpe = qpe + T * H * dr, *row = kpe + T * dr;

	/* q (T x H*dq) */
	if (Lq) {
		linear(x, l->q_a, T, D, Lq, qa);
		rmsnorm_rows(qa, T, Lq, Lq, l->q_a_norm, l->latent_eps);
		linear(qa, l->q_b, T, Lq, H * dq, out->q);
	} else {
		linear(x, l->q_b, T, D, H * dq, out->q);
	}
	/* [c; k_pe] (T x la), the latent normed */
	linear(x, l->kv_a, T, D, la, ca);
	rmsnorm_rows(ca, T, Lkv, la, l->kv_a_norm, l->latent_eps);
	/* kv (T x H*dkv) from the normed latent, packed T x Lkv */
	double *lat = malloc((T * Lkv + 1) * sizeof(double));
	if (!lat) {
		st = RF_ERR_NOMEM;
		goto fail;
	}
	for (size_t t = 0; t < T; t++)
		memcpy(lat + t * Lkv, ca + t * la, Lkv * sizeof(double));
	linear(lat, l->kv_b, T, Lkv, H * dkv, kv);
	free(lat);
	/* RoPE on the pe parts */
	for (size_t t = 0; t < T; t++) {
		for (size_t h = 0; h < H; h++)
			memcpy(qpe + (t * H + h) * dr, out->q + (t * H + h) * dq + dn,
			       dr * sizeof(double));
		memcpy(kpe + t * dr, ca + t * la + Lkv, dr * sizeof(double));
	}
	rope_apply_rows(&rt, T, H, dr, qpe, H * dr);
	rope_apply_rows(&rt, T, 1, dr, kpe, dr);
	for (size_t t = 0; t < T; t++)
		for (size_t h = 0; h < H; h++) {
			double *q = out->q + (t * H + h) * dq, *k = out->k + (t * H + h) * dq;
			const double *kvh = kv + (t * H + h) * dkv;
			memcpy(q + dn, qpe + (t * H + h) * dr, dr * sizeof(double));
			memcpy(k, kvh, dn * sizeof(double));
			memcpy(k + dn, kpe + t * dr, dr * sizeof(double));
			memcpy(out->v + (t * H + h) * dv, kvh + dn, dv * sizeof(double));
		}
	/* causal softmax(scale q.k) v per head */
	double sc = mla_score_scale(l);
	for (size_t h = 0; h < H; h++)
		for (size_t m = 0; m < T; m++) {
			const double *q = out->q + (m * H + h) * dq;
			double mx = -INFINITY, sum = 0;
			for (size_t n = 0; n <= m; n++) {
				const double *k = out->k + (n * H + h) * dq;
				double dot = 0;
				for (size_t i = 0; i < dq; i++)
					dot += q[i] * k[i];
				row[n] = sc * dot;
				if (row[n] > mx)
					mx = row[n];
			}
			for (size_t n = 0; n <= m; n++) {
				row[n] = exp(row[n] - mx);
				sum += row[n];
			}
			double *c = out->ctx + m * H * dv + h * dv;
			for (size_t i = 0; i < dv; i++)
				c[i] = 0;
			for (size_t n = 0; n <= m; n++) {
				const double *v = out->v + (n * H + h) * dv;
				double p = row[n] / sum;
				for (size_t i = 0; i < dv; i++)
					c[i] += p * v[i];
			}
		}
	linear(out->ctx, l->wo, T, H * dv, D, out->y);
	rope_table_done(&rt);
	free(scr);
	return RF_OK;
fail:
	rope_table_done(&rt);
	free(scr);
	mla_side_done(out);
	return st;
}
