#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/attention.h"
#include "core/fold.h"
#include "core/frame.h"
#include "core/residual.h"
#include "core/rng.h"
#include "core/rope.h"

static const char *const r1_names[FRAME_R1_COUNT] = {"none", "fused", "unfused"};
static const char *const r3_names[FRAME_R3_COUNT] = {"none", "online", "folded"};

const char *frame_r1_name(FrameR1 m)
{
	return (unsigned)m < FRAME_R1_COUNT ? r1_names[m] : "?";
}

const char *frame_r3_name(FrameR3 m)
{
	return (unsigned)m < FRAME_R3_COUNT ? r3_names[m] : "?";
}

int frame_r1_parse(const char *s, FrameR1 *out)
{
	for (int i = 0; i < FRAME_R1_COUNT; i++)
		if (!strcmp(s, r1_names[i])) {
			*out = (FrameR1)i;
			return 0;
		}
	return -1;
}

int frame_r3_parse(const char *s, FrameR3 *out)
{
	for (int i = 0; i < FRAME_R3_COUNT; i++)
		if (!strcmp(s, r3_names[i])) {
			*out = (FrameR3)i;
			return 0;
		}
	return -1;
}

/* The stream of the drawn norm weight, apart from every other draw. */
enum { FRAME_W_STREAM = 0x5731 };

void frame_r1_weight(const Layer *l, uint64_t seed, double *w, bool *drawn)
{
	size_t D = l->shape.d_model;
	*drawn = !l->attn_norm;
	if (l->attn_norm) {
		memcpy(w, l->attn_norm, D * sizeof(double));
		return;
	}
	Rng rng;
	rng_seed(&rng, seed, FRAME_W_STREAM);
	for (size_t i = 0; i < D; i++)
		w[i] = 0.5 + rng_uniform(&rng);
}

RfStatus frame_r1_rotation(size_t D, uint64_t seed, double *R)
{
	return residual_rotation(RES_HADAMARD, D, seed, R);
}

/* ======================================================================
 * R1: the residual stream
 * ====================================================================== */

/* out (T x D) = x + Attn(RMSNorm(x)) of l, and the update u alone
 * (u = out - x); n is T x D scratch. */
static RfStatus block(const Layer *l, const double *x, size_t T, const RopeTable *rt, double *n,
		      double *out, double *u)
{
	size_t TD = T * l->shape.d_model;
	layer_input_norm(l, x, T, n);
	RfStatus st = attention_forward(l, n, T, rt, out, 0, NULL);
	if (st != RF_OK)
		return st;
	for (size_t i = 0; i < TD; i++) {
		u[i] = out[i] - n[i];
		out[i] = x[i] + u[i];
	}
	return RF_OK;
}

/* l's readers, writer and norm under R1 (D x D), w fused or not. */
static RfStatus rotate_layer(Layer *b, const double *R, const double *w, bool fused)
{
	size_t D = b->shape.d_model, nq = b->shape.n_heads * b->shape.head_dim;
	size_t nk = b->shape.n_kv_heads * b->shape.head_dim;
	const double *fw = fused ? w : NULL;
	RfStatus st = residual_apply(RES_ROLE_READER, R, D, 1, fw, 1.0, b->wq, nq * D);
	if (st == RF_OK)
		st = residual_apply(RES_ROLE_READER, R, D, 1, fw, 1.0, b->wk, nk * D);
	if (st == RF_OK)
		st = residual_apply(RES_ROLE_READER, R, D, 1, fw, 1.0, b->wv, nk * D);
	if (st == RF_OK)
		st = residual_apply(RES_ROLE_WRITER, R, D, 1, NULL, 1.0, b->wo, D * nq);
	if (st == RF_OK && b->bo)
		st = residual_apply(RES_ROLE_WRITER_BIAS, R, D, 1, NULL, 1.0, b->bo, D);
	if (st == RF_OK && fused)
		st = residual_apply(RES_ROLE_NORM, R, D, 1, NULL, 1.0, b->attn_norm, D);
	return st;
}

static void r1_weight_stats(const double *w, const double *R, size_t D, FrameR1Result *out)
{
	double mn = w[0], mx = w[0], ss = 0, cc = 0;
	for (size_t i = 0; i < D; i++) {
		mn = w[i] < mn ? w[i] : mn;
		mx = w[i] > mx ? w[i] : mx;
		ss += w[i] * w[i];
		/* (diag(w) R - R diag(w))_ij = (w_i - w_j) R_ij */
		for (size_t j = 0; j < D; j++) {
			double c = (w[i] - w[j]) * R[i * D + j];
			cc += c * c;
		}
	}
	out->w_min = mn;
	out->w_max = mx;
	out->w_equal = mn == mx;
	out->w_norm = sqrt(ss);
	out->commutator = sqrt(cc);
}

RfStatus frame_r1_evaluate(const Layer *l, const double *w_in, const double *x, size_t T,
			   FrameR1 mode, uint64_t seed, double tol, FrameR1Result *out)
{
	memset(out, 0, sizeof *out);
	out->mode = mode;
	if (mode == FRAME_R1_NONE)
		return RF_OK;
	size_t D = l->shape.d_model, TD = T * D;
	if ((unsigned)mode >= FRAME_R1_COUNT || l->attn_norm_kind != NORM_RMS ||
	    D > FRAME_R1_MAX_DIM || !T)
		return RF_ERR_ARG;
	/* w (D), R (D x D), then six T x D buffers: the stream x R1^T, the
	 * normed input, both sides' outputs and updates */
	double *w = malloc(D * sizeof(double));
	double *R = malloc(D * D * sizeof(double));
	double *buf = malloc(6 * TD * sizeof(double));
	Layer a, b;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	RopeTable rt;
	memset(&rt, 0, sizeof rt);
	RfStatus st = w && R && buf ? RF_OK : RF_ERR_NOMEM;
	double *xr = buf, *n = xr + TD, *y = n + TD, *u = y + TD, *yr = u + TD, *ur = yr + TD;
	if (st == RF_OK) {
		if (w_in) {
			memcpy(w, w_in, D * sizeof(double));
		} else {
			frame_r1_weight(l, seed, w, &out->w_drawn);
		}
		st = frame_r1_rotation(D, seed, R);
	}
	if (st == RF_OK)
		st = rope_table_init(&rt, &l->rope, T);
	/* a: the layer with w as its norm weight; b: a rotated */
	if (st == RF_OK)
		st = layer_copy(&a, l);
	if (st == RF_OK && !a.attn_norm && !(a.attn_norm = malloc(D * sizeof(double))))
		st = RF_ERR_NOMEM;
	if (st == RF_OK) {
		memcpy(a.attn_norm, w, D * sizeof(double));
		st = layer_copy(&b, &a);
	}
	if (st == RF_OK)
		st = rotate_layer(&b, R, w, mode == FRAME_R1_FUSED);
	if (st == RF_OK)
		st = block(&a, x, T, &rt, n, y, u);
	if (st == RF_OK) {
		/* rows are tokens: x -> R1 x is X R1^T */
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)D, (int)D, 1.0,
			    x, (int)D, R, (int)D, 0.0, xr, (int)D);
		st = block(&b, xr, T, &rt, n, yr, ur);
	}
	if (st == RF_OK) {
		/* back in x's frame: R1^T out' is out' R1 row by row (into n) */
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)D, (int)D, 1.0,
			    yr, (int)D, R, (int)D, 0.0, n, (int)D);
		double worst = 0, ref = 0;
		for (size_t i = 0; i < TD; i++) {
			double e = fabs(n[i] - y[i]);
			if (e > worst || !isfinite(e)) {
				worst = e;
				out->worst_token = i / D;
				out->worst_coord = i % D;
			}
			ref = fabs(u[i]) > ref ? fabs(u[i]) : ref;
		}
		out->max_abs_err = worst;
		out->ref_max = ref;
		out->max_rel_err = ref > 0 ? worst / ref : worst;
		r1_weight_stats(w, R, D, out);
		out->guaranteed = mode == FRAME_R1_FUSED || out->w_equal;
		out->holds = isfinite(out->max_rel_err) && out->max_rel_err <= tol;
	}
	layer_free(&a);
	layer_free(&b);
	rope_table_done(&rt);
	free(buf);
	free(R);
	free(w);
	return st;
}

/* ======================================================================
 * R3: a Hadamard on q and k after RoPE
 * ====================================================================== */

/* R3's rotations as a plan: a fold of Q and K by kind hadamard (R_q of
 * head h = R_k of its group), nothing on V and O. */
static RfStatus r3_plan(const Layer *l, uint64_t seed, FoldPlan *plan)
{
	FoldConfig cfg = fold_config_default();
	cfg.rotate = PART_Q | PART_K;
	cfg.dropped = ASSUME_COMMUTES;
	cfg.kind = ROT_HADAMARD;
	cfg.seed = seed;
	return fold_plan_build(l, &cfg, plan);
}

RfStatus frame_r3_rotations(const Layer *l, uint64_t seed, double *Hk)
{
	FoldPlan plan;
	RfStatus st = r3_plan(l, seed, &plan);
	if (st != RF_OK)
		return st;
	size_t d = l->shape.head_dim;
	memcpy(Hk, plan.rk, l->shape.n_kv_heads * d * d * sizeof(double));
	fold_plan_free(&plan);
	return RF_OK;
}

/* Each head block (T x d, leading dimension ld) of v becomes its rows
 * times R^T: R applied to every position's head vector (into tmp). */
static void heads_apply(double *v, size_t T, size_t nheads, size_t d, size_t ld,
			const double *Rs, size_t per, double *tmp)
{
	for (size_t h = 0; h < nheads; h++) {
		const double *R = Rs + (h / per) * d * d;
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)d, (int)d, 1.0,
			    v + h * d, (int)ld, R, (int)d, 0.0, tmp, (int)d);
		for (size_t t = 0; t < T; t++)
			memcpy(v + t * ld + h * d, tmp + t * d, d * sizeof(double));
	}
}

/* max over kv groups of ||R Theta_1 - Theta_1 R||_F (work: 2 d x d). */
static double r3_commutator(const Layer *l, const RopeTable *rt, const double *Rk, double *work)
{
	size_t d = l->shape.head_dim, dd = d * d;
	double *th = work, *c = work + dd, best = 0;
	rope_theta_matrix(rt->freqs, l->rope.layout, l->rope.rotary_dim, d, 1.0, th);
	for (size_t g = 0; g < l->shape.n_kv_heads; g++) {
		const double *R = Rk + g * dd;
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)d, (int)d, 1.0,
			    R, (int)d, th, (int)d, 0.0, c, (int)d);
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)d, (int)d, -1.0,
			    th, (int)d, R, (int)d, 1.0, c, (int)d);
		double s = 0;
		for (size_t i = 0; i < dd; i++)
			s += c[i] * c[i];
		best = sqrt(s) > best ? sqrt(s) : best;
	}
	return best;
}

/* Compare both sides' scores head by head (S: 2 T x T scratch). */
static void r3_compare(const Layer *l, const double *q0, const double *k0, const double *q1,
		       const double *k1, size_t T, double *S, FrameR3Result *out)
{
	size_t H = l->shape.n_heads, d = l->shape.head_dim, hpg = H / l->shape.n_kv_heads;
	size_t nq = H * d, nk = l->shape.n_kv_heads * d;
	double scale = layer_score_scale(l), worst = 0, ref = 0;
	double *S0 = S, *S1 = S + T * T;
	for (size_t h = 0; h < H; h++) {
		size_t g = h / hpg;
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)d, scale,
			    q0 + h * d, (int)nq, k0 + g * d, (int)nk, 0.0, S0, (int)T);
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)d, scale,
			    q1 + h * d, (int)nq, k1 + g * d, (int)nk, 0.0, S1, (int)T);
		for (size_t m = 0; m < T; m++)
			for (size_t n = 0; n <= m; n++) {
				double e = fabs(S1[m * T + n] - S0[m * T + n]);
				ref = fabs(S0[m * T + n]) > ref ? fabs(S0[m * T + n]) : ref;
				if (e > out->by_offset[m - n] || !isfinite(e))
					out->by_offset[m - n] = e;
				if (e > worst || !isfinite(e)) {
					worst = e;
					out->worst_head = h;
					out->worst_m = m;
					out->worst_n = n;
				}
			}
	}
	out->max_abs_err = worst;
	out->ref_max = ref;
	out->max_rel_err = ref > 0 ? worst / ref : worst;
	for (size_t p = 0; p < T && ref > 0; p++)
		out->by_offset[p] /= ref;
}

RfStatus frame_r3_evaluate(const Layer *l, const double *x, size_t T, FrameR3 mode,
			   uint64_t seed, double tol, FrameR3Result *out)
{
	memset(out, 0, sizeof *out);
	out->mode = mode;
	if (mode == FRAME_R3_NONE)
		return RF_OK;
	if ((unsigned)mode >= FRAME_R3_COUNT || !T)
		return RF_ERR_ARG;
	size_t H = l->shape.n_heads, G = l->shape.n_kv_heads, d = l->shape.head_dim;
	size_t nq = H * d, nk = G * d, hpg = H / G;
	out->seq = T;
	out->head_dim = d;
	out->qk_norm = l->q_norm || l->k_norm;
	out->by_offset = calloc(T, sizeof(double));
	/* q0, q1 (T x nq), k0, k1 (T x nk), two T x T score blocks, and
	 * T x d + 2 d x d scratch */
	size_t nbuf = 2 * T * nq + 2 * T * nk + 2 * T * T + T * d + 2 * d * d;
	double *buf = malloc(nbuf * sizeof(double));
	FoldPlan plan;
	memset(&plan, 0, sizeof plan);
	Layer f;
	memset(&f, 0, sizeof f);
	RopeTable rt;
	memset(&rt, 0, sizeof rt);
	RfStatus st = out->by_offset && buf ? RF_OK : RF_ERR_NOMEM;
	double *q0 = buf, *q1 = q0 + T * nq, *k0 = q1 + T * nq, *k1 = k0 + T * nk;
	double *S = k1 + T * nk, *tmp = S + 2 * T * T, *work = tmp + T * d;
	if (st == RF_OK)
		st = r3_plan(l, seed, &plan);
	if (st == RF_OK)
		st = rope_table_init(&rt, &l->rope, T);
	if (st == RF_OK)
		st = attention_forward_qk(l, x, T, &rt, q0, k0);
	if (st == RF_OK && mode == FRAME_R3_ONLINE) {
		/* at run time: H on every q and k after RoPE */
		memcpy(q1, q0, T * nq * sizeof(double));
		memcpy(k1, k0, T * nk * sizeof(double));
		heads_apply(q1, T, H, d, nq, plan.rk, hpg, tmp);
		heads_apply(k1, T, G, d, nk, plan.rk, 1, tmp);
	} else if (st == RF_OK) {
		/* in the weights: H W_q,h and H W_k,g, before RoPE */
		st = fold_apply(l, &plan, &f);
		if (st == RF_OK)
			st = attention_forward_qk(&f, x, T, &rt, q1, k1);
	}
	if (st == RF_OK) {
		r3_compare(l, q0, k0, q1, k1, T, S, out);
		out->commutator = r3_commutator(l, &rt, plan.rk, work);
		out->guaranteed = mode == FRAME_R3_ONLINE;
		out->holds = isfinite(out->max_rel_err) && out->max_rel_err <= tol;
		for (size_t p = 1; p < T && !out->break_offset; p++)
			if (!(out->by_offset[p] <= tol))
				out->break_offset = p;
	}
	layer_free(&f);
	fold_plan_free(&plan);
	rope_table_done(&rt);
	free(buf);
	if (st != RF_OK) {
		free(out->by_offset);
		out->by_offset = NULL;
	}
	return st;
}

RfStatus frame_evaluate(const Layer *l, const double *x, size_t T, FrameR1 r1, FrameR3 r3,
			uint64_t seed, double tol, FrameReport *rep)
{
	memset(rep, 0, sizeof *rep);
	rep->tol = tol;
	RfStatus st = frame_r1_evaluate(l, NULL, x, T, r1, seed, tol, &rep->r1);
	if (st == RF_OK)
		st = frame_r3_evaluate(l, x, T, r3, seed, tol, &rep->r3);
	return st;
}

RfStatus frame_report_copy(FrameReport *dst, const FrameReport *src)
{
	*dst = *src;
	dst->r3.by_offset = NULL;
	if (!src->r3.by_offset)
		return RF_OK;
	dst->r3.by_offset = malloc(src->r3.seq * sizeof(double));
	if (!dst->r3.by_offset)
		return RF_ERR_NOMEM;
	memcpy(dst->r3.by_offset, src->r3.by_offset, src->r3.seq * sizeof(double));
	return RF_OK;
}

bool frame_report_ok(const FrameReport *rep)
{
	return !(rep->r1.mode && rep->r1.guaranteed && !rep->r1.holds) &&
	       !(rep->r3.mode && rep->r3.guaranteed && !rep->r3.holds);
}

void frame_report_done(FrameReport *rep)
{
	free(rep->r3.by_offset);
	rep->r3.by_offset = NULL;
}
