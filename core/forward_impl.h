/* The decoder layer, written once for float64 and float32: included by
 * core/forward_f64.c and core/forward_f32.c with
 *   R        the element type (double or float)
 *   SUF(n)   n with the precision's suffix
 *   GEMM     cblas_dgemm or cblas_sgemm
 *   ROPE_ROWS rope_apply_rows or rope_apply_rows_f
 * Reductions (norms, softmax sums) accumulate in double in both. */

/* ---- small pieces -------------------------------------------------------- */

/* One product of linear, its rows of W split over threads: part w of
 * parts takes a block of W's rows (a multiple of 16, the kernels' width)
 * and writes those columns of y. */
typedef struct {
	const R *x, *W;
	R *y;
	size_t ldx, T, K, N, ldy, parts;
} SUF(LinearJob);

static void SUF(linear_part)(void *ctx, size_t w)
{
	SUF(LinearJob) *j = ctx;
	size_t per = (j->N / j->parts + 15) / 16 * 16, lo = w * per;
	if (lo >= j->N)
		return;
	size_t n = j->N - lo < per ? j->N - lo : per;
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->T, (int)n, (int)j->K, 1, j->x,
	     (int)j->ldx, j->W + lo * j->K, (int)j->K, 0, j->y + lo, (int)j->ldy);
}

/* Products from this many multiply-adds on are split over the threads. */
#define LINEAR_SPLIT_MIN ((size_t)1 << 24)

/* y (T x N) = x (T x K, ld ldx) W^T (W: N x K) + b (N, or NULL).
 *
 * A big product runs as one single-threaded GEMM per thread on a block
 * of W's rows rather than as OpenBLAS's own threaded one: OpenBLAS's
 * threads spin (sched_yield) for a while after each call, and in the
 * whole-model pass, where the next layer is read on a thread of its own,
 * they took that thread's core whenever the pass waited for it (8B,
 * T = 64: system time 7.5-11 s before, 3.3-4.9 s after). The sums of each
 * output are the same, so are the values. Inside a region already single-threaded
 * (parallel_blas_single) parallel_default_threads is 1: no split. */
static void SUF(linear)(const R *x, size_t ldx, size_t T, size_t K, const R *W, size_t N,
			const R *b, R *y, size_t ldy)
{
	size_t nt = parallel_default_threads();
	if (nt > 1 && N >= 16 * nt && T * N * K >= LINEAR_SPLIT_MIN) {
		SUF(LinearJob) j = {x, W, y, ldx, T, K, N, ldy, nt};
		int saved = parallel_blas_single();
		parallel_run(nt, SUF(linear_part), &j);
		parallel_blas_restore(saved);
	} else {
		GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)N, (int)K, 1, x,
		     (int)ldx, W, (int)K, 0, y, (int)ldy);
	}
	if (b)
		for (size_t t = 0; t < T; t++)
			for (size_t j = 0; j < N; j++)
				y[t * ldy + j] += b[j];
}

/* n rows of width w, each normalised on its own: out may be in. */
static void SUF(norm_rows)(const R *in, R *out, size_t n, size_t w, const R *weight,
			   const R *bias, NormKind kind, double eps)
{
	for (size_t t = 0; t < n; t++) {
		const R *x = in + t * w;
		R *y = out + t * w;
		double mean = 0, ss = 0;
		if (kind == NORM_LAYER) {
			for (size_t j = 0; j < w; j++)
				mean += x[j];
			mean /= (double)w;
		}
		for (size_t j = 0; j < w; j++) {
			double c = x[j] - mean;
			ss += c * c;
		}
		R inv = (R)(1.0 / sqrt(ss / (double)w + eps));
		for (size_t j = 0; j < w; j++) {
			R v = (R)(x[j] - (R)mean) * inv;
			if (weight)
				v *= weight[j];
			if (bias)
				v += bias[j];
			y[j] = v;
		}
	}
}

static void SUF(apply_norm)(const FwdNorm *nm, R *x, size_t T, size_t D)
{
	if (nm->w)
		SUF(norm_rows)(x, x, T, D, nm->w, nm->b, nm->kind, nm->eps);
}

static R SUF(act)(FwdAct a, R x)
{
	double v = x;
	switch (a) {
	case FWD_ACT_SILU: return (R)(v / (1.0 + exp(-v)));
	case FWD_ACT_GELU_TANH:
		return (R)(0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))));
	case FWD_ACT_GELU_ERF: return (R)(0.5 * v * (1.0 + erf(v * 0.7071067811865476)));
	case FWD_ACT_RELU: return v > 0 ? x : 0;
	}
	return x;
}

/* ---- DeepSeek's multi-head latent attention -------------------------------- */

#include "core/forward_mla_impl.h"

/* ---- attention ------------------------------------------------------------ */

typedef struct {
	const FwdLayer *l;
	size_t T;
	const R *q, *k, *v;     /* T x H*d, T x G*d, T x G*d */
	R *ctx;                 /* T x H*d */
	R *scores;              /* nworkers x T x T */
	double scale;
	TaskQueue heads;
} SUF(AttnJob);

static void SUF(attn_head)(void *arg, size_t worker)
{
	SUF(AttnJob) *j = arg;
	const LayerShape *s = &j->l->shape;
	size_t T = j->T, d = s->head_dim, H = s->n_heads, G = s->n_kv_heads;
	size_t Hd = H * d, Gd = G * d, W = j->l->window;
	double cap = j->l->attn_softcap;
	R *S = j->scores + worker * T * T;   /* T x T, row m: query m */
	size_t h;
	while ((h = task_queue_next(&j->heads)) != (size_t)-1) {
		size_t g = h / (H / G);
		GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)d,
		     (R)j->scale, j->q + h * d, (int)Hd, j->k + g * d, (int)Gd, 0, S, (int)T);
		for (size_t m = 0; m < T; m++) {
			R *row = S + m * T;
			size_t lo = W && m + 1 > W ? m + 1 - W : 0;
			double mx = -INFINITY;
			for (size_t n = lo; n <= m; n++) {
				if (cap > 0)
					row[n] = (R)(cap * tanh(row[n] / cap));
				if (row[n] > mx)
					mx = row[n];
			}
			double sum = 0;
			for (size_t n = lo; n <= m; n++) {
				R e = (R)exp(row[n] - mx);
				row[n] = e;
				sum += e;
			}
			R inv = (R)(1.0 / sum);
			for (size_t n = 0; n < T; n++)
				row[n] = n >= lo && n <= m ? row[n] * inv : 0;
		}
		GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)d, (int)T, 1, S,
		     (int)T, j->v + g * d, (int)Gd, 0, j->ctx + h * d, (int)Hd);
	}
}

/* out (T x D) = attention of the normed input a (T x D). */
static RfStatus SUF(attention)(FwdState *st, const FwdLayer *l, const R *a, R *out)
{
	const LayerShape *s = &l->shape;
	size_t T = st->T, D = st->D, d = s->head_dim, H = s->n_heads, G = s->n_kv_heads;
	size_t Hd = H * d, Gd = G * d;
	size_t nw = st->nthreads ? st->nthreads : 1;
	if (nw > H)
		nw = H;
	R *q = malloc(T * Hd * sizeof(R)), *k = malloc(T * Gd * sizeof(R));
	R *v = malloc(T * Gd * sizeof(R)), *ctx = malloc(T * Hd * sizeof(R));
	R *sc = malloc(nw * T * T * sizeof(R));
	RfStatus rc = RF_ERR_NOMEM;
	if (!q || !k || !v || !ctx || !sc)
		goto out;
	SUF(linear)(a, D, T, D, l->wq, Hd, l->bq, q, Hd);
	SUF(linear)(a, D, T, D, l->wk, Gd, l->bk, k, Gd);
	SUF(linear)(a, D, T, D, l->wv, Gd, l->bv, v, Gd);
	if (l->q_norm) {
		size_t wq = l->qk_norm_per_head ? d : Hd, wk = l->qk_norm_per_head ? d : Gd;
		SUF(norm_rows)(q, q, T * Hd / wq, wq, l->q_norm, NULL, NORM_RMS, l->qk_norm_eps);
		SUF(norm_rows)(k, k, T * Gd / wk, wk, l->k_norm, NULL, NORM_RMS, l->qk_norm_eps);
	}
	if (l->rope.rotary_dim) {
		if (!st->have_rope || !rope_spec_equal(&st->rope_spec, &l->rope)) {
			if (st->have_rope)
				rope_table_done(&st->rope);
			st->have_rope = false;
			rc = rope_table_init(&st->rope, &l->rope, T);
			if (rc != RF_OK)
				goto out;
			st->rope_spec = l->rope;
			st->have_rope = true;
		}
		ROPE_ROWS(&st->rope, T, H, d, q, Hd);
		ROPE_ROWS(&st->rope, T, G, d, k, Gd);
	}
	SUF(AttnJob) job = {.l = l, .T = T, .q = q, .k = k, .v = v, .ctx = ctx, .scores = sc,
			    .scale = l->score_scale > 0 ? l->score_scale : 1.0 / sqrt((double)d)};
	task_queue_init(&job.heads, H);
	int saved = parallel_blas_single();
	rc = parallel_run(nw, SUF(attn_head), &job);
	parallel_blas_restore(saved);
	if (rc != RF_OK)
		goto out;
	SUF(linear)(ctx, Hd, T, Hd, l->wo, D, l->bo, out, D);
out:
	free(q);
	free(k);
	free(v);
	free(ctx);
	free(sc);
	return rc;
}

/* ---- MLP and experts ------------------------------------------------------ */

/* Part q of the MLP: p's own matrix m, or the one parts gives. */
static const R *SUF(part)(const FwdParts *parts, FwdPart q, const void *m)
{
	return parts ? parts->need(parts->ctx, q) : m;
}

static void SUF(part_done)(const FwdParts *parts, FwdPart q)
{
	if (parts)
		parts->done(parts->ctx, q);
}

/* out (n x D) = down(act(gate a) * up a), or down(act(up a)), of a
 * (n x D); h is n x 2F scratch. The matrices come from parts when it is
 * given. */
static RfStatus SUF(mlp_rows)(const FwdMlp *p, const FwdParts *parts, FwdAct act, const R *a,
			      size_t n, size_t D, R *h, R *out)
{
	size_t F = p->ff;
	R *u = h, *gt = h + n * F;
	const R *w = SUF(part)(parts, FWD_PART_UP, p->up);
	if (!w)
		return RF_ERR_SOURCE;
	SUF(linear)(a, D, n, D, w, F, p->b_up, u, F);
	SUF(part_done)(parts, FWD_PART_UP);
	if (parts ? parts->gated : p->gate != NULL) {
		if (!(w = SUF(part)(parts, FWD_PART_GATE, p->gate)))
			return RF_ERR_SOURCE;
		SUF(linear)(a, D, n, D, w, F, p->b_gate, gt, F);
		SUF(part_done)(parts, FWD_PART_GATE);
		for (size_t i = 0; i < n * F; i++)
			u[i] = SUF(act)(act, gt[i]) * u[i];
	} else {
		for (size_t i = 0; i < n * F; i++)
			u[i] = SUF(act)(act, u[i]);
	}
	if (!(w = SUF(part)(parts, FWD_PART_DOWN, p->down)))
		return RF_ERR_SOURCE;
	SUF(linear)(u, F, n, F, w, D, p->b_down, out, D);
	SUF(part_done)(parts, FWD_PART_DOWN);
	return RF_OK;
}

/* DeepSeek's router (core/moe_route.h) on the T x E logits: wsel (T x E)
 * the chosen experts' weights, sel (T x E) which are chosen. */
static RfStatus SUF(route_deepseek)(const FwdMoe *moe, const R *logit, size_t T, double *wsel,
				    unsigned char *sel)
{
	size_t E = moe->n_experts, K = moe->top_k;
	const R *b = moe->score_bias;
	/* z, bias (E each), the router's scratch (2 E + E: groups <= E), ids
	 * and weights (K each) */
	double *buf = malloc((5 * E + K) * sizeof(double));
	size_t *ids = malloc(K * sizeof(size_t));
	if (!buf || !ids) {
		free(buf);
		free(ids);
		return RF_ERR_NOMEM;
	}
	double *z = buf, *bias = buf + E, *scr = buf + 2 * E, *w = buf + 5 * E;
	for (size_t e = 0; e < E; e++)
		bias[e] = b ? b[e] : 0.0;
	for (size_t t = 0; t < T; t++) {
		for (size_t e = 0; e < E; e++)
			z[e] = logit[t * E + e];
		moe_route_token(moe->route, z, b ? bias : NULL, E, K, ids, w, scr);
		for (size_t k = 0; k < K; k++) {
			sel[t * E + ids[k]] = 1;
			wsel[t * E + ids[k]] = (double)(R)w[k];
		}
	}
	free(buf);
	free(ids);
	return RF_OK;
}

/* n values of st's MLP scratch (grown, never shrunk), or NULL. */
static R *SUF(mlp_scratch)(FwdState *st, size_t n)
{
	if (st->mlp_h_bytes < n * sizeof(R)) {
		free(st->mlp_h);
		st->mlp_h = malloc(n * sizeof(R));
		st->mlp_h_bytes = st->mlp_h ? n * sizeof(R) : 0;
	}
	return st->mlp_h;
}

static RfStatus SUF(mlp)(FwdState *st, const FwdLayer *l, const R *a, R *out)
{
	size_t T = st->T, D = st->D;
	const FwdMoe *moe = &l->moe;
	if (!moe->n_experts) {
		R *h = SUF(mlp_scratch)(st, 2 * T * l->mlp.ff);
		if (!h)
			return RF_ERR_NOMEM;
		return SUF(mlp_rows)(&l->mlp, l->parts, l->act, a, T, D, h, out);
	}
	size_t E = moe->n_experts, K = moe->top_k, Fmax = 0;
	for (size_t e = 0; e < E; e++)
		if (moe->experts[e].ff > Fmax)
			Fmax = moe->experts[e].ff;
	if (moe->shared && moe->shared->ff > Fmax)
		Fmax = moe->shared->ff;
	R *logit = malloc(T * E * sizeof(R));
	double *wsel = calloc(T * E, sizeof(double));   /* T x E: a token's weight for expert e */
	R *rows = malloc(T * D * sizeof(R)), *y = malloc(T * D * sizeof(R));
	R *h = SUF(mlp_scratch)(st, 2 * T * Fmax);
	size_t *idx = malloc(T * sizeof(size_t));
	unsigned char *sel = calloc(T * E, 1);          /* T x E: expert e chosen for token t */
	RfStatus rc = RF_ERR_NOMEM;
	if (!logit || !wsel || !rows || !y || !h || !idx || !sel)
		goto out;
	SUF(linear)(a, D, T, D, moe->router, E, NULL, logit, E);
	if (moe->route) {
		rc = SUF(route_deepseek)(moe, logit, T, wsel, sel);
		if (rc != RF_OK)
			goto out;
	}
	for (size_t t = 0; t < T && !moe->route; t++) {
		R *z = logit + t * E;
		double mx = -INFINITY, sum = 0;
		for (size_t e = 0; e < E; e++)
			mx = z[e] > mx ? z[e] : mx;
		for (size_t e = 0; e < E; e++)
			sum += exp(z[e] - mx);
		double *w = wsel + t * E, ksum = 0;
		for (size_t k = 0; k < K && k < E; k++) {
			size_t best = E;
			for (size_t e = 0; e < E; e++)
				if (!sel[t * E + e] && (best == E || z[e] > z[best]))
					best = e;
			sel[t * E + best] = 1;
			w[best] = (double)(R)(exp(z[best] - mx) / sum);
			ksum += w[best];
		}
		if (moe->norm_topk && ksum > 0)
			for (size_t e = 0; e < E; e++)
				w[e] /= ksum;
	}
	memset(out, 0, T * D * sizeof(R));
	for (size_t e = 0; e < E; e++) {
		size_t n = 0;
		for (size_t t = 0; t < T; t++)
			if (sel[t * E + e]) {
				memcpy(rows + n * D, a + t * D, D * sizeof(R));
				idx[n++] = t;
			}
		if (!n)
			continue;
		SUF(mlp_rows)(&moe->experts[e], NULL, l->act, rows, n, D, h, y);
		for (size_t i = 0; i < n; i++) {
			R w = (R)wsel[idx[i] * E + e];
			for (size_t j = 0; j < D; j++)
				out[idx[i] * D + j] += w * y[i * D + j];
		}
	}
	if (moe->shared) {
		SUF(mlp_rows)(moe->shared, NULL, l->act, a, T, D, h, y);
		for (size_t t = 0; t < T; t++) {
			R gate = 1;
			if (moe->shared_gate) {
				const R *sg = moe->shared_gate;
				double z = 0;
				for (size_t j = 0; j < D; j++)
					z += (double)a[t * D + j] * sg[j];
				gate = (R)(1.0 / (1.0 + exp(-z)));
			}
			for (size_t j = 0; j < D; j++)
				out[t * D + j] += gate * y[t * D + j];
		}
	}
	rc = RF_OK;
out:
	free(logit);
	free(wsel);
	free(rows);
	free(y);
	free(idx);
	free(sel);
	return rc;
}

/* ---- the layer -------------------------------------------------------------- */

static RfStatus SUF(layer)(FwdState *st, const FwdLayer *l)
{
	size_t T = st->T, D = st->D, n = T * D;
	R *x = st->x;
	R *a = malloc(n * sizeof(R)), *att = malloc(n * sizeof(R)), *m = malloc(n * sizeof(R));
	RfStatus rc = RF_ERR_NOMEM;
	if (!a || !att || !m)
		goto out;
	memcpy(a, x, n * sizeof(R));
	SUF(apply_norm)(&l->attn_norm, a, T, D);
	rc = l->mla ? SUF(mla_attention)(st, l->mla, a, att, NULL) : SUF(attention)(st, l, a, att);
	if (rc != RF_OK)
		goto out;
	SUF(apply_norm)(&l->post_attn_norm, att, T, D);
	if (l->block != FWD_BLOCK_PARALLEL)
		for (size_t i = 0; i < n; i++)
			x[i] += att[i];
	memcpy(a, x, n * sizeof(R));
	SUF(apply_norm)(&l->ffn_norm, a, T, D);
	if ((rc = SUF(mlp)(st, l, a, m)) != RF_OK)
		goto out;
	SUF(apply_norm)(&l->post_ffn_norm, m, T, D);
	for (size_t i = 0; i < n; i++)
		x[i] += l->block == FWD_BLOCK_PARALLEL ? att[i] + m[i] : m[i];
out:
	free(a);
	free(att);
	free(m);
	return rc;
}

static void SUF(head)(const FwdState *st, const R *rows, size_t n, double cap, R *out,
		      size_t col, size_t V)
{
	size_t T = st->T, D = st->D;
	SUF(linear)(st->x, D, T, D, rows, n, NULL, out + col, V);
	if (cap > 0)
		for (size_t t = 0; t < T; t++)
			for (size_t j = 0; j < n; j++)
				out[t * V + col + j] = (R)(cap * tanh(out[t * V + col + j] / cap));
}
