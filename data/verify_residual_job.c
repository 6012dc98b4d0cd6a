#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "core/dtype.h"
#include "core/procrustes.h"
#include "core/residual.h"
#include "data/infile.h"
#include "data/model_tensors.h"
#include "data/quant_bound.h"
#include "data/verify_residual_job.h"

/* The embedding (and head) rows compared, evenly spaced: D + EXTRA_ROWS
 * (or all), enough to pin R1 down and bounded memory. */
#define EXTRA_ROWS 256
/* Widest down_proj input an online R4 is fitted densely on (an SVD of
 * that size); wider ones are tested by their Grams and the fast
 * Walsh-Hadamard transform. */
#define R4_MAX_COLS 4096

/* B's entry for A's entry e (in B's naming scheme, which may be another
 * format's), or NULL. */
static const ResTensor *b_entry(const VerifyResidualJob *j, const ResTensor *e)
{
	return residual_plan_match(&j->pb, e);
}

/* Which norm: 'm' before the MLP, 'a' before attention. */
static char norm_part(const TensorRef *t)
{
	const char *n = t->name;
	return strstr(n, "post_attention") || strstr(n, "ffn_norm") ? 'm' : 'a';
}

/* A writer of the attention block (checked through verify_layers). */
static bool attn_writer(const TensorRef *t)
{
	const char *n = t->name;
	return strstr(n, "o_proj") || strstr(n, "attn_output") || strstr(n, "attention.wo");
}

static double *read_all(const TensorRef *t, char *err, size_t errlen)
{
	double *v = malloc((t->nelem ? t->nelem : 1) * sizeof(double));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (tensor_read(t, 0, t->nelem, v, err, errlen)) {
		free(v);
		return NULL;
	}
	return v;
}

/* The chosen rows (nrows x D) of t. */
static double *read_rows(const VerifyResidualJob *j, const TensorRef *t, char *err,
			 size_t errlen)
{
	size_t D = j->r.D;
	double *v = malloc(j->nrows * D * sizeof(double));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < j->nrows; i++)
		if (tensor_read(t, j->rows[i] * D, D, v + i * D, err, errlen)) {
			free(v);
			return NULL;
		}
	return v;
}

/* Whether the chosen rows of t and u hold the same bytes (one dtype, rows
 * of the same width): the same rows then, decoded or not. Read a row at a
 * time into one small buffer: at 8B scale 4352 rows of 8 KB a side, where
 * decoding them is 140 MB of doubles a side. 0 (*same set), or -1 with
 * err. */
static int same_row_bytes(const VerifyResidualJob *j, const TensorRef *t, const TensorRef *u,
			  bool *same, char *err, size_t errlen)
{
	size_t V = t->nelem / j->r.D;
	*same = false;
	if (t->dtype != u->dtype || t->nbytes != u->nbytes || !V || t->nbytes % V)
		return 0;
	size_t rb = t->nbytes / V;   /* bytes of one row, blocks included */
	unsigned char *buf = malloc(2 * (rb ? rb : 1));
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = 0;
	bool eq = true;
	for (size_t i = 0; i < j->nrows && eq && rc == 0; i++) {
		size_t off = j->rows[i] * rb;
		rc = infile_read(t->src, t->offset + off, buf, rb, err, errlen) ||
		     infile_read(u->src, u->offset + off, buf + rb, rb, err, errlen) ? -1 : 0;
		eq = rc == 0 && !memcmp(buf, buf + rb, rb);
	}
	free(buf);
	*same = rc == 0 && eq;
	return rc;
}

/* The weight A's norm t fuses into its readers (D). */
static double *fused_weight(const VerifyResidualJob *j, const TensorRef *t, char *err,
			    size_t errlen)
{
	double *w = read_all(t, err, errlen);
	if (w)
		residual_fused_weight(w, j->r.D, j->pa.plus_one, w);
	return w;
}

/* The tolerance of comparing A's tensor a with B's b: --tol, or 3 units of
 * roundoff of the coarser float among them plus the quantization bound
 * (data/quant_bound.h) of each block-quantized one. */
static double ttol(const VerifyResidualJob *j, const TensorRef *a, const TensorRef *b)
{
	if (j->user_tol > 0)
		return j->user_tol;
	const TensorRef *t[2] = {a, b};
	double u = 0, q = 0;
	for (int s = 0; s < 2; s++) {
		if (dtype_is_float(t[s]->dtype)) {
			double ut = dtype_unit_roundoff(t[s]->dtype);
			u = ut > u ? ut : u;
			continue;
		}
		QuantBound qb;
		char e[256];
		q += quant_bound_tensor(t[s], &qb, e, sizeof e) ? 1.0 : qb.rel;
	}
	return 3 * u + q + 1e-12;
}

static void note_err(VerifyResidualJob *j, double e)
{
	pthread_mutex_lock(&j->mu);
	if (e > j->r.max_err || !isfinite(e))
		j->r.max_err = e;
	pthread_mutex_unlock(&j->mu);
}

/* Record a break at layer (the lowest layer's is kept; one found before
 * the layers, at the model level, stays first). */
static void rbreak(VerifyResidualJob *j, size_t layer, const Finding *f)
{
	pthread_mutex_lock(&j->mu);
	VerifyResidual *r = &j->r;
	if (r->brk.code != FIND_NONE && r->layer != VRES_MODEL && layer < r->layer)
		r->brk.code = FIND_NONE;
	verify_residual_break(r, layer, f);
	if (f->code == FIND_RES_NORM_NOT_FUSED)
		r->norms_fused = false;
	pthread_mutex_unlock(&j->mu);
}

/* B tied: whether its one tensor carries R1 twice (rotated once as the
 * embeddings and once as the head, SpinQuant's tied Llama-3.2 bug), with
 * R1 taken from layer 0's first MLP reader (W_B = W_A diag(w) R1^T: no
 * rotation rides on its rows). Then R1 goes to j->r.R and the break is
 * recorded; 1 found, 0 not, -1 error. */
static int tied_twice(VerifyResidualJob *j, const double *EA, const double *EB, char *err,
		      size_t errlen)
{
	const ResTensor *ea = NULL;
	for (size_t k = 0; k < j->pa.n && !ea; k++)
		if (j->pa.v[k].layer == 0 && j->pa.v[k].role == RES_ROLE_READER &&
		    norm_part(j->pa.v[k].norm) == 'm')
			ea = &j->pa.v[k];
	const ResTensor *eb = ea ? b_entry(j, ea) : NULL;
	if (!eb || eb->t->nelem != ea->t->nelem)
		return 0;
	size_t D = j->r.D, n = ea->t->nelem, rows = n / D, m = j->nrows * D;
	double *X = read_all(ea->t, err, errlen), *Y = X ? read_all(eb->t, err, errlen) : NULL;
	double *w = Y ? fused_weight(j, ea->norm, err, errlen) : NULL;
	double *wf = w ? fused_weight(j, j->pa.final_norm, err, errlen) : NULL;
	double *R = malloc(D * D * sizeof(double)), *P = malloc(m * sizeof(double));
	int rc = -1;
	if (!wf || !R || !P) {
		if (wf && (!R || !P))
			snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < D; c++)
			X[r * D + c] *= w[c];
	double e;
	rc = 0;
	if (verify_residual_fit(X, Y, rows, D, R, &e) != RF_OK || !(e <= ttol(j, ea->t, eb->t)))
		goto out;
	for (int fused = 0; fused < 2 && !rc; fused++) {
		memcpy(P, EA, m * sizeof(double));
		if (residual_apply(RES_ROLE_READER, R, D, 1, fused ? wf : NULL, 1.0, P, m) ||
		    residual_apply(RES_ROLE_READER, R, D, 1, NULL, 1.0, P, m))
			continue;
		double e2 = procrustes_rel_diff(P, D, EB, D, j->nrows, D);
		if (e2 <= j->r.tol) {
			memcpy(j->r.R, R, D * D * sizeof(double));
			Finding f = finding_make(FIND_RES_HEAD_TWICE);
			f.err = e2;
			snprintf(f.tensor, sizeof f.tensor, "embeddings");
			rbreak(j, VRES_MODEL, &f);
			rc = 1;
		}
	}
out:
	free(X);
	free(Y);
	free(w);
	free(wf);
	free(R);
	free(P);
	return rc;
}

int verify_residual_begin(Model *ma, Model *mb, const VerifyOptions *vo,
			  VerifyResidualJob *j, char *err, size_t errlen)
{
	memset(j, 0, sizeof *j);
	if (pthread_mutex_init(&j->mu, NULL)) {
		snprintf(err, errlen, "cannot create a mutex");
		return -1;
	}
	j->mu_init = true;
	VerifyResidual *r = &j->r;
	r->equivalent = true;
	r->layer = VRES_MODEL;
	r->brk = finding_make(FIND_NONE);
	double u = vo->unit_roundoff > 0 ? vo->unit_roundoff : 0x1p-53;
	r->tol = vo->tol > 0 ? vo->tol : 3 * u + 1e-12;
	j->user_tol = vo->tol;
	char why[512];
	if (residual_plan_build(ma, &j->pa, why, sizeof why) ||
	    residual_plan_build(mb, &j->pb, why, sizeof why))
		return 0; /* not a checkpoint the residual frame applies to */
	const TensorRef *ea = j->pa.embed, *eb = j->pb.embed;
	size_t D = j->pa.D;
	if (j->pb.D != D || ea->nelem != eb->nelem || ea->nelem % D)
		return 0;
	size_t V = ea->nelem / D;
	j->nrows = V < D + EXTRA_ROWS ? V : D + EXTRA_ROWS;
	j->rows = malloc((j->nrows ? j->nrows : 1) * sizeof *j->rows);
	r->R = malloc(D * D * sizeof(double));
	if (!j->rows || !r->R) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < j->nrows; i++)
		j->rows[i] = i * V / j->nrows;
	r->D = D;
	/* the same bytes (a fold without R1 leaves the embeddings alone): the
	 * same frame, nothing decoded */
	bool same;
	if (same_row_bytes(j, ea, eb, &same, err, errlen))
		return -1;
	if (same) {
		r->checked = true;
		r->tol = ttol(j, ea, eb);
		return 0;
	}
	double *EA = read_rows(j, ea, err, errlen);
	double *EB = EA ? read_rows(j, eb, err, errlen) : NULL;
	int rc = -1;
	if (!EB)
		goto out;
	r->checked = true;
	r->tol = ttol(j, ea, eb);
	rc = 0;
	/* the same rows within the dtypes' rounding (a dtype conversion): the
	 * same frame, without the D x D Procrustes (seconds at 8B scale) */
	if (!memcmp(EA, EB, j->nrows * D * sizeof *EA) ||
	    procrustes_rel_diff(EB, D, EA, D, j->nrows, D) <= r->tol)
		goto out; /* the same frame */
	double e;
	RfStatus st = verify_residual_fit(EA, EB, j->nrows, D, r->R, &e);
	if (st != RF_OK) {
		snprintf(err, errlen, "the embeddings: %s", rf_status_str(st));
		rc = -1;
		goto out;
	}
	int twice = j->pb.tied ? tied_twice(j, EA, EB, err, errlen) : 0;
	if (twice < 0) {
		rc = -1;
		goto out;
	}
	if (twice) {
		e = 0;
	} else if (!(e <= r->tol)) {
		Finding f = finding_make(FIND_RES_EMBED_UNEXPLAINED);
		f.err = e;
		f.tol = r->tol;
		snprintf(f.tensor, sizeof f.tensor, "embeddings");
		rbreak(j, VRES_MODEL, &f);
		goto out;
	}
	r->active = true;
	r->norms_fused = true;
	note_err(j, e);
	r->hadamard = verify_residual_is_hadamard(r->R, D, 0.05);
out:
	free(EA);
	free(EB);
	return rc;
}

/* B's norm t must be stored as one (zero for a (1 + w) norm). */
static int check_norm(VerifyResidualJob *j, size_t layer, const TensorRef *tb, char part,
		      char *err, size_t errlen)
{
	double *w = read_all(tb, err, errlen);
	if (!w)
		return -1;
	double one = residual_norm_one(j->pb.plus_one), worst = 0;
	for (size_t k = 0; k < tb->nelem; k++)
		worst = fabs(w[k] - one) > worst || isnan(w[k]) ? fabs(w[k] - one) : worst;
	free(w);
	if (!(worst <= j->r.tol)) {
		Finding f = finding_make(FIND_RES_NORM_NOT_FUSED);
		f.part = part;
		f.err = worst;
		snprintf(f.tensor, sizeof f.tensor, "%s", part == 'a' ? "attn_norm"
							   : part == 'm' ? "mlp_norm" : "final_norm");
		rbreak(j, layer, &f);
	}
	return 0;
}

/* Whether Y = X M^T (D x cols) for an orthogonal M, an online R4 left in
 * a writer: then f becomes FIND_RES_ONLINE_R4 with its error, flagged
 * when M is a Hadamard. Rows whose norms differ rule it out at once (a
 * plain broken writer costs no fit); else tried in turn: the signed Kronecker Hadamards
 * ropefold draws (fast Walsh-Hadamard transform), H_k (x) S_p for any
 * orthogonal H_k of order up to VRES_KRON_MAX (QuaRot's had_K), then the
 * dense fit up to R4_MAX_COLS, or wider the Grams (whether some M exists
 * at all). 0, or -1 with err. */
static int online_r4(const double *X, const double *Y, size_t D, size_t cols, double tol,
		     Finding *f, char *err, size_t errlen)
{
	double e4 = INFINITY, eh;
	size_t k;
	if (!(verify_residual_norm_gap(X, Y, D, cols) <= tol))
		return 0;   /* no orthogonal M keeps the rows' norms: a plain break */
	bool had = verify_residual_hadamard_cols(X, Y, D, cols, tol, &eh);
	if (had) {
		e4 = eh;
	} else if (verify_residual_kron_cols(X, Y, D, cols, tol, &k, &had, &eh)) {
		e4 = eh;
	} else if (cols <= R4_MAX_COLS) {
		double *M = malloc(cols * cols * sizeof(double));   /* cols x cols */
		if (!M) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (verify_residual_extra_cols(X, Y, D, cols, M, &e4) != RF_OK)
			e4 = INFINITY;
		had = e4 <= tol && verify_residual_is_hadamard(M, cols, 0.05);
		free(M);
	} else if (verify_residual_gram_cols(X, Y, D, cols, &e4) != RF_OK) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (e4 <= tol) {
		f->code = FIND_RES_ONLINE_R4;
		f->err = e4;
		f->flag = had;
	}
	return 0;
}

/* B's values of A's entry ea, laid out as A stores them (n values), in
 * *out; *tb one of the B tensors they come from (for its dtype). Experts
 * may be stored one tensor each on one side and stacked ([E, rows, cols],
 * GGUF's *_exps) on the other: an expert is then a slice of the stacked
 * tensor, a stacked tensor the experts one after another. 1 found, 0 B
 * has no such tensor (or not of its size), -1 error. */
static int b_values(const VerifyResidualJob *j, const ResTensor *ea, const TensorRef **tb,
		    double **out, char *err, size_t errlen)
{
	size_t n = ea->t->nelem;
	*out = NULL;
	const ResTensor *eb = residual_plan_match(&j->pb, ea);
	if (eb && eb->t->nelem == n) {
		*tb = eb->t;
		return (*out = read_all(eb->t, err, errlen)) ? 1 : -1;
	}
	if (eb)
		return 0;
	ResTensor key = *ea;
	double *v = malloc((n ? n : 1) * sizeof(double));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = 0;
	if (ea->expert != RES_NO_EXPERT) {
		/* one expert of A against its slice of B's stacked tensor */
		key.expert = RES_NO_EXPERT;
		eb = residual_plan_match(&j->pb, &key);
		if (eb && eb->t->nelem >= (ea->expert + 1) * n) {
			*tb = eb->t;
			rc = tensor_read(eb->t, ea->expert * n, n, v, err, errlen) ? -1 : 1;
		}
	} else {
		/* A stacked: B's experts 0, 1, ... one after another */
		size_t at = 0;
		for (key.expert = 0; at < n; key.expert++) {
			eb = residual_plan_match(&j->pb, &key);
			if (!eb || eb->t->nelem > n - at)
				break;
			*tb = eb->t;
			if (tensor_read(eb->t, 0, eb->t->nelem, v + at, err, errlen)) {
				rc = -1;
				break;
			}
			at += eb->t->nelem;
		}
		if (rc == 0 && key.expert > 0 && at == n)
			rc = 1;
	}
	if (rc == 1)
		*out = v;
	else
		free(v);
	return rc;
}

/* One tensor of an MLP (reader, writer or writer bias): B against A under
 * R1; a writer R1 does not explain is tried for an online R4. */
static int check_tensor(VerifyResidualJob *j, size_t layer, const ResTensor *ea,
			char *err, size_t errlen)
{
	size_t D = j->r.D, n = ea->t->nelem;
	const TensorRef *tb = NULL;
	double *B = NULL;
	int found = b_values(j, ea, &tb, &B, err, errlen);
	if (found < 0)
		return -1;
	if (!found) {
		Finding f = finding_make(ea->role == RES_ROLE_READER ? FIND_RES_READER
								     : FIND_RES_WRITER);
		f.err = INFINITY;
		f.tol = j->r.tol;
		snprintf(f.tensor, sizeof f.tensor, "%.15s", ea->t->name);
		rbreak(j, layer, &f);
		return 0;
	}
	double *A = read_all(ea->t, err, errlen);
	double *w = NULL;
	int rc = -1;
	if (!A)
		goto out;
	if (ea->role == RES_ROLE_READER && !(w = fused_weight(j, ea->norm, err, errlen)))
		goto out;
	double *X = malloc(n * sizeof(double));
	if (!X) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	memcpy(X, A, n * sizeof(double));
	RfStatus st = residual_apply(ea->role, j->r.R, D, ea->batch, w, 1.0, X, n);
	if (st != RF_OK) {
		free(X);
		snprintf(err, errlen, "%s: %s", ea->t->name, rf_status_str(st));
		goto out;
	}
	double e = procrustes_rel_diff(B, n, X, n, 1, n), tol = ttol(j, ea->t, tb);
	rc = 0;
	if (e <= tol) {
		note_err(j, e);
		free(X);
		goto out;
	}
	Finding f = finding_make(ea->role == RES_ROLE_READER ? FIND_RES_READER : FIND_RES_WRITER);
	f.err = e;
	f.tol = tol;
	/* the short name: the last two components ("down_proj.weight" -> "down_proj") */
	const char *nm = ea->t->name, *dot = strrchr(nm, '.'), *p = dot;
	while (p && p > nm && p[-1] != '.')
		p--;
	snprintf(f.tensor, sizeof f.tensor, "%.*s", dot && p ? (int)(dot - p) : 15, p ? p : nm);
	if (ea->role == RES_ROLE_WRITER && ea->batch == 1 && n % D == 0) {
		/* an online R4: R^T W_B = W_A M^T with M orthogonal (cols x cols) */
		size_t cols = n / D;
		double *Y = X;
		/* Y = R^T W_B (D x cols) */
		cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)cols, (int)D,
			    1.0, j->r.R, (int)D, B, (int)cols, 0.0, Y, (int)cols);
		if (online_r4(A, Y, D, cols, tol, &f, err, errlen)) {
			free(X);
			rc = -1;
			goto out;
		}
	}
	free(X);
	rbreak(j, layer, &f);
out:
	free(A);
	free(B);
	free(w);
	return rc;
}

int verify_residual_layer(VerifyResidualJob *j, size_t i, Layer *a, Layer *b, char *err,
			  size_t errlen)
{
	for (size_t k = 0; k < j->pa.n; k++) {
		const ResTensor *ea = &j->pa.v[k];
		if (ea->layer != i)
			continue;
		/* the MLP's tensors are found by check_tensor (experts may be
		 * stacked on one side only); every other one must be in B */
		bool mlp = (ea->role == RES_ROLE_READER && norm_part(ea->norm) == 'm') ||
			   ((ea->role == RES_ROLE_WRITER || ea->role == RES_ROLE_WRITER_BIAS) &&
			    !attn_writer(ea->t));
		const ResTensor *eb = mlp ? NULL : b_entry(j, ea);
		if (!mlp && !eb) {
			Finding f = finding_make(FIND_RES_READER);
			f.err = INFINITY;
			f.tol = j->r.tol;
			snprintf(f.tensor, sizeof f.tensor, "%.15s", ea->t->name);
			rbreak(j, i, &f);
			continue;
		}
		/* attention's own readers and writer: through verify_layers */
		int rc = 0;
		if (ea->role == RES_ROLE_NORM)
			rc = check_norm(j, i, eb->t, norm_part(ea->t), err, errlen);
		else if (mlp)
			rc = check_tensor(j, i, ea, err, errlen);
		if (rc)
			return -1;
	}
	if (a->shape.d_model != j->r.D || b->shape.d_model != j->r.D ||
	    memcmp(&a->shape, &b->shape, sizeof a->shape))
		return 0; /* verify_layers names the shapes */
	RfStatus st = verify_residual_layer_frame(a, b, j->r.R);
	if (st != RF_OK) {
		snprintf(err, errlen, "layer %zu: %s", i, rf_status_str(st));
		return -1;
	}
	return 0;
}

/* ||M - I||_F of a d x d block. */
static double off_identity(const double *M, size_t d)
{
	double s = 0;
	for (size_t r = 0; r < d; r++)
		for (size_t c = 0; c < d; c++) {
			double x = M[r * d + c] - (r == c);
			s += x * x;
		}
	return sqrt(s);
}

void verify_residual_after_layer(VerifyResidualJob *j, size_t i, const VerifyVerdict *v)
{
	const FoldPlan *p = &v->plan;
	size_t d = p->head_dim;
	bool qk = false, vo = false;
	for (size_t g = 0; p->rk && p->rv && g < p->n_kv_heads; g++) {
		qk = qk || off_identity(p->rk + g * d * d, d) > 0.1;
		vo = vo || off_identity(p->rv + g * d * d, d) > 0.1;
	}
	pthread_mutex_lock(&j->mu);
	j->r.qk_rotated |= qk;
	j->r.vo_rotated |= vo;
	pthread_mutex_unlock(&j->mu);
	if (v->equivalent)
		return;
	const Finding *b = &v->brk;
	Finding f;
	if (v->why == VERIFY_WHY_MIXES_PAIRS || v->why == VERIFY_WHY_REFLECTION) {
		f = finding_make(FIND_RES_ONLINE_R3);
		size_t g = b->group != FINDING_NONE ? b->group : 0;
		if (p->perm && g < p->n_kv_heads)
			g = p->perm[g];
		f.group = b->group != FINDING_NONE ? b->group : 0;
		f.flag = p->rk && g < p->n_kv_heads &&
			 verify_residual_is_hadamard(p->rk + g * d * d, d, 0.05);
	} else if (v->why == VERIFY_WHY_UNEXPLAINED || v->why == VERIFY_WHY_NOT_ORTHOGONAL ||
		   v->why == VERIFY_WHY_O_NOT_ABSORBING) {
		bool writer = b->tensor[0] && (strstr(b->tensor, "_o") != NULL);
		f = finding_make(writer ? FIND_RES_WRITER : FIND_RES_READER);
		f.err = b->err;
		f.tol = j->r.tol;
		snprintf(f.tensor, sizeof f.tensor, "%s", b->tensor[0] ? b->tensor : "W_q");
	} else {
		return; /* the layer's own break says it */
	}
	rbreak(j, i, &f);
}

int verify_residual_end(VerifyResidualJob *j, char *err, size_t errlen)
{
	VerifyResidual *r = &j->r;
	size_t D = r->D;
	if (check_norm(j, VRES_MODEL, j->pb.final_norm, 'f', err, errlen))
		return -1;
	/* A's head (its own tensor, or the embeddings it is tied to) */
	const TensorRef *ha = j->pa.embed, *hb = NULL;
	for (size_t k = 0; k < j->pa.n; k++)
		if (j->pa.v[k].layer == RES_MODEL_LEVEL && j->pa.v[k].role == RES_ROLE_READER)
			ha = j->pa.v[k].t;
	for (size_t k = 0; k < j->pb.n; k++)
		if (j->pb.v[k].layer == RES_MODEL_LEVEL && j->pb.v[k].role == RES_ROLE_READER)
			hb = j->pb.v[k].t;
	double *w = fused_weight(j, j->pa.final_norm, err, errlen);
	if (!w)
		return -1;
	bool w_one = true;
	for (size_t k = 0; k < D; k++)
		w_one = w_one && fabs(w[k] - 1.0) <= r->tol;
	int rc = -1;
	double *HA = NULL, *HB = NULL;
	Finding f;
	if (!hb) {
		/* B tied: its head is E_B = E_A R^T, right only when w is one */
		rc = 0;
		if (!w_one) {
			f = finding_make(FIND_RES_TIED_HEAD);
			snprintf(f.tensor, sizeof f.tensor, "head");
			rbreak(j, VRES_MODEL, &f);
		}
		goto out;
	}
	if (hb->nelem != ha->nelem || ha->nelem != j->pa.embed->nelem)
		goto mismatch;
	HA = read_rows(j, ha, err, errlen);
	HB = HA ? read_rows(j, hb, err, errlen) : NULL;
	if (!HB)
		goto out;
	rc = 0;
	size_t n = j->nrows * D;
	if (residual_apply(RES_ROLE_READER, r->R, D, 1, w, 1.0, HA, n) != RF_OK)
		goto mismatch;
	double e = procrustes_rel_diff(HB, D, HA, D, j->nrows, D), tol = ttol(j, ha, hb);
	if (e <= tol) {
		note_err(j, e);
		goto out;
	}
	/* twice: H diag(w) R^T R^T */
	double e2 = INFINITY;
	if (residual_apply(RES_ROLE_READER, r->R, D, 1, NULL, 1.0, HA, n) == RF_OK)
		e2 = procrustes_rel_diff(HB, D, HA, D, j->nrows, D);
	if (e2 <= tol) {
		f = finding_make(FIND_RES_HEAD_TWICE);
		f.err = e2;
	} else {
		f = finding_make(FIND_RES_READER);
		f.err = e;
		f.tol = tol;
	}
	snprintf(f.tensor, sizeof f.tensor, "head");
	rbreak(j, VRES_MODEL, &f);
	goto out;
mismatch:
	rc = 0;
	f = finding_make(FIND_RES_READER);
	f.err = INFINITY;
	f.tol = r->tol;
	snprintf(f.tensor, sizeof f.tensor, "head");
	rbreak(j, VRES_MODEL, &f);
out:
	free(w);
	free(HA);
	free(HB);
	return rc;
}

void verify_residual_job_free(VerifyResidualJob *j)
{
	residual_plan_free(&j->pa);
	residual_plan_free(&j->pb);
	free(j->rows);
	j->rows = NULL;
	free(j->r.R);
	j->r.R = NULL;
	if (j->mu_init)
		pthread_mutex_destroy(&j->mu);
	j->mu_init = false;
}
