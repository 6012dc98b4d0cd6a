#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/attention.h"
#include "core/clones.h"
#include "core/fold_changes.h"
#include "core/layout_perm.h"
#include "core/levels.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "core/rope.h"
#include "core/stream_store.h"
#include "core/verify_impl.h"

/* Confirmation by evaluation: the three levels of SPEC 2.2 comparing A
 * and B directly, judged at the precision's tolerance or at what the
 * stored dtype's rounding alone causes. */

/* The moved copy of rounding_noise, in chunks of NOISE_CHUNK weights, each
 * drawn from its own stream: the same numbers whatever the thread count,
 * and the draws of an 8B layer (42 M) on every core. */
#define NOISE_CHUNK ((size_t)1 << 20)

typedef struct {
	const double *src[4];
	double *dst[4];
	size_t n[4];
	double h[4];            /* quantized part: its rms bound; else 0 */
	double u;
	size_t first[5];        /* tensor i's chunks: first[i] .. first[i+1]-1 */
	TaskQueue q;
} NoiseFill;

/* w[j] = v[j] moved by r: v[j] + h r (h > 0: a quantized part's rms
 * bound) or v[j] (1 + u r), r uniform in [-1, 1) from g, eight at a time.
 * The state lives in a local copy and each branch has its own loop, so
 * that the clone keeps the lanes in registers and stores whole vectors
 * (through *g and one loop for both, every draw went through memory and
 * every weight was moved one at a time: a tenth of an 8B verify); the
 * copy is streamed past the caches, read back only by the engine's
 * packing. */
HOT_CLONES
static void noise_apply(const double *restrict v, double *restrict w, size_t n, double h,
			double u, RngLanes *g)
{
	RngLanes s = *g;
	double r[RNG_LANES];
	size_t j = 0, whole = n - n % RNG_LANES;
	if (h > 0) {
		for (; j < whole; j += RNG_LANES) {
			rng_lanes_signed(&s, r);
			double o[RNG_LANES];
			for (size_t k = 0; k < RNG_LANES; k++)
				o[k] = v[j + k] + h * r[k];
			stream_doubles(w + j, o, RNG_LANES);
		}
	} else {
		for (; j < whole; j += RNG_LANES) {
			rng_lanes_signed(&s, r);
			double o[RNG_LANES];
			for (size_t k = 0; k < RNG_LANES; k++)
				o[k] = v[j + k] * (1.0 + u * r[k]);
			stream_doubles(w + j, o, RNG_LANES);
		}
	}
	stream_fence();
	if (j < n) {
		rng_lanes_signed(&s, r);
		for (size_t k = 0; j + k < n; k++)
			w[j + k] = h > 0 ? v[j + k] + h * r[k] : v[j + k] * (1.0 + u * r[k]);
	}
	*g = s;
}

static void noise_fill(void *ctx, size_t worker)
{
	(void)worker;
	NoiseFill *f = ctx;
	for (size_t k; (k = task_queue_next(&f->q)) != (size_t)-1;) {
		int i = 0;
		while (k >= f->first[i + 1])
			i++;
		size_t lo = (k - f->first[i]) * NOISE_CHUNK, hi = lo + NOISE_CHUNK;
		if (hi > f->n[i])
			hi = f->n[i];
		RngLanes g;
		rng_lanes_seed(&g, 0x5eed, 7 + k);
		noise_apply(f->src[i] + lo, f->dst[i] + lo, hi - lo, f->h[i], f->u, &g);
	}
}

void verify_scratch_free(VerifyScratch *s)
{
	layer_free(&s->noise);
	attention_engine_free(s->engine);
	s->engine = NULL;
}

/* The relative error, level by level, that storing a's weights in a
 * dtype of unit roundoff u causes by itself: a against a copy whose every
 * weight moved by a random relative amount of at most u (deterministic).
 * A quantized part (qf[p] > 0, the Frobenius ratio of its quantization
 * bound) moves instead by a uniform amount of that part's rms bound, as
 * round-to-nearest errs. The copy lives in keep (its spare, which b
 * evaluated no longer needs, or its own). */
static RfStatus rounding_noise(const Layer *a, double u, const double *qf, AttnEngine *e,
			       FoldChanges *c, size_t T, size_t nw, VerifyScratch *keep,
			       double noise[LEVEL_COUNT])
{
	/* the small tensors copied, the four weights written moved in one
	 * pass over a's (at 8B scale a copy first was a third of the
	 * confirmation) */
	Layer *p = keep->spare ? keep->spare : &keep->noise;
	RfStatus st = layer_shell_like(p, a);
	if (st != RF_OK)
		return st;
	size_t D = a->shape.d_model, d = a->shape.head_dim;
	size_t nq = a->shape.n_heads * d, nk = a->shape.n_kv_heads * d;
	NoiseFill f = {{a->wq, a->wk, a->wv, a->wo}, {p->wq, p->wk, p->wv, p->wo},
		       {nq * D, nk * D, nk * D, D * nq}, {0}, u, {0}, {0}};
	for (int i = 0; i < 4; i++) {
		double rms = 0;
		for (size_t j = 0; qf[i] > 0 && j < f.n[i]; j++)
			rms += f.src[i][j] * f.src[i][j];
		f.h[i] = qf[i] > 0 ? qf[i] * sqrt(rms / (double)f.n[i]) : 0;
		f.first[i + 1] = f.first[i] + (f.n[i] + NOISE_CHUNK - 1) / NOISE_CHUNK;
	}
	task_queue_init(&f.q, f.first[4]);
	st = parallel_run(nw < f.first[4] ? nw : f.first[4] ? f.first[4] : 1, noise_fill, &f);
	if (st != RF_OK)
		return st;
	InvReport r;
	st = report_init(&r, T, a->shape.n_heads, a->shape.n_kv_heads, d,
			 a->rope.rotary_dim);
	if (st == RF_OK) {
		/* a's side as the engine kept it from the comparison with b */
		fold_changes_all(c);
		st = attention_engine_run(e, p, NULL, c, &r);
		for (int l = 0; st == RF_OK && l < LEVEL_COUNT; l++)
			noise[l] = r.level[l].ref_max > 0
				? r.level[l].max_abs_err / r.level[l].ref_max
				: r.level[l].max_abs_err;
		report_done(&r);
	}
	return st;
}

RfStatus verify_confirm(const Layer *a, const Layer *b, VerifyVerdict *v,
			const double *x, size_t T, Precision prec,
			AttnKernel kernel, size_t threads, double tol, VerifyScratch *keep,
			InvReport *rep)
{
	if (!threads)
		threads = parallel_default_threads();
	VerifyScratch own;
	memset(&own, 0, sizeof own);
	if (!keep)
		keep = &own;
	if (!verify_same_shape(&a->shape, &b->shape) || T == 0 || T > LAYER_MAX_SEQ)
		return RF_ERR_ARG;
	Layer conv;
	const Layer *bc = b;
	RfStatus st;
	if (b->rope.layout != a->rope.layout) {
		st = layout_convert(b, a->rope.layout, &conv);
		if (st != RF_OK)
			return st;
		bc = &conv;
	}
	st = report_init(rep, T, a->shape.n_heads, a->shape.n_kv_heads,
			 a->shape.head_dim, a->rope.rotary_dim);
	if (st != RF_OK)
		goto out;
	rep->precision = prec;
	RopeTable rope;
	st = rope_table_init(&rope, &a->rope, T);
	double noise[LEVEL_COUNT] = {0};
	if (st == RF_OK) {
		/* one engine: a's side computed once, for b and for the
		 * rounding noise; kept in keep for the next layer's buffers */
		FoldChanges c;
		bool have_c = false;
		st = fold_changes_init(&c, a->shape.n_heads, a->shape.n_kv_heads);
		have_c = st == RF_OK;
		/* a dtype coarser than float64 moves the outputs by far more
		 * than the compute precision: measured by a second run, which
		 * takes a's per-head outputs from the first (at 8B scale a
		 * quarter of the output phase's work, for 32 MB) */
		bool noisy = !(tol > 0) && (v->unit_roundoff > 0x1p-50 || v->quant_types);
		size_t cache = noisy ? a->shape.n_heads * T * a->shape.d_model *
					       (prec == PREC_F32 ? sizeof(float) : sizeof(double))
				     : 0;
		if (st == RF_OK)
			st = attention_engine_renew(&keep->engine, a, x, T, prec, &rope, threads,
						    cache, kernel);
		AttnEngine *e = keep->engine;
		if (st == RF_OK)
			st = attention_engine_run(e, bc, NULL, &c, rep);
		if (st == RF_OK && noisy)
			st = rounding_noise(a, v->unit_roundoff, v->quant_frob, e, &c, T, threads,
					    keep, noise);
		if (have_c)
			fold_changes_done(&c);
		rope_table_done(&rope);
	}
	if (st != RF_OK) {
		report_done(rep);
		goto out;
	}
	if (!(tol > 0)) {
		tol = levels_default_tol(prec);
		for (int l = 0; l < LEVEL_COUNT; l++)  /* an overflow is no noise */
			if (isfinite(noise[l]) && 4.0 * noise[l] > tol)
				tol = 4.0 * noise[l];
	}
	v->confirm_tol = tol;
	FoldConfig cfg = fold_config_default();
	cfg.permute_heads = v->heads_permuted;
	/* B may be a fold that kept QK-norm-split pairs to 0 or pi */
	cfg.qk_norm_exact = true;
	levels_judge(rep, a, &cfg, tol);
out:
	if (bc != b)
		layer_free(&conv);
	verify_scratch_free(&own);
	return st;
}
