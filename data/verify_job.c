#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "core/mla_inv.h"
#include "core/mla_verify.h"
#include "data/layer_range.h"
#include "data/layer_tolerance.h"
#include "data/mla_model.h"
#include "data/mla_pair.h"
#include "data/verify_job.h"
#include "data/verify_residual_job.h"

/* One layer in flight, on every core: A's and B's layer read side by side,
 * then its kv groups decided over the cores (core/verify_groups.c), then
 * the confirmation's evaluation and rounding noise, each over the cores.
 * A layer of each side in float64 is the memory (0.67 GB at 8B scale, a
 * worker per layer in flight held twice that and paid again for the fresh
 * pages), and the buffers are kept from layer to layer. BLAS runs
 * single-threaded meanwhile: every worker owns a core, and no idle BLAS
 * thread spins. */

typedef struct {
	const VerifyJob *j;
	Model *ma, *mb;
	size_t lo, hi;
	size_t threads;                /* workers: as many as BLAS would use */
	int blas;                      /* BLAS's own thread count, saved */
	const VerifyOptions *vo;
	const LayerTolerance *tol;     /* each layer's tolerances */
	const double *x;               /* seq x D confirmation input, or NULL */
	VerifyOutcome *out;
	VerifyResidualJob *rj;         /* the residual frame (rj->r.active: R1) */
	char *err;
	size_t errlen;
} LayerRun;

/* The layers and the confirmation's buffers, kept from layer to layer
 * (the confirmation's noise copy is made in b's). */
typedef struct {
	Layer a, b;
	VerifyScratch keep;
} LayerBuffers;

/* Layer i of A (task 0) and of B (task 1), read at once. */
typedef struct {
	LayerRun *r;
	LayerBuffers *w;
	size_t i;
	TaskQueue q;
	int rc[2];
	char err[2][1024];
} PairRead;

static void pair_read(void *ctx, size_t worker)
{
	(void)worker;
	PairRead *p = ctx;
	for (size_t t; (t = task_queue_next(&p->q)) != (size_t)-1;)
		p->rc[t] = model_reload_layer(t ? p->r->mb : p->r->ma, p->i, t ? &p->w->b : &p->w->a,
					      p->err[t], sizeof p->err[t]);
}

/* Decide layer i of both (and confirm it when asked) into v and rep
 * (*have_rep when filled); 0, or -1 with one line in err. */
static int decide(LayerRun *r, LayerBuffers *w, size_t i, VerifyVerdict *v, InvReport *rep,
		  bool *have_rep, char *err, size_t errlen)
{
	const VerifyJob *j = r->j;
	PairRead pr = {.r = r, .w = w, .i = i};
	task_queue_init(&pr.q, 2);
	parallel_run(r->threads < 2 ? 1 : 2, pair_read, &pr);
	for (int t = 0; t < 2; t++)
		if (pr.rc[t]) {   /* A's error first, as a loop would meet them */
			snprintf(err, errlen, "%s", pr.err[t]);
			return -1;
		}
	/* a residual rotation: this layer's MLP judged, its attention brought
	 * into one frame, by D x D products over the MLP's matrices that
	 * BLAS spreads over its own threads */
	if (r->rj->r.active) {
		parallel_blas_restore(r->blas);
		int bad = verify_residual_layer(r->rj, i, &w->a, &w->b, err, errlen);
		parallel_blas_single();
		if (bad)
			return -1;
	}
	VerifyOptions lo = *r->vo;
	lo.threads = r->threads;
	double *qg = NULL;   /* lo.quant_group's storage */
	if (layer_tolerance_layer(r->tol, i, &lo, &qg, err, errlen)) {
		free(qg);
		return -1;
	}
	RfStatus st = verify_layers(&w->a, &w->b, &lo, v);
	free(qg);
	lo.quant_group = NULL;
	if (st == RF_OK && r->rj->r.active)
		verify_residual_after_layer(r->rj, i, v);
	if (st == RF_OK && j->confirm && v->why != VERIFY_WHY_SHAPE) {
		/* B is reloaded for the next layer: the noise copy may take
		 * its buffers */
		w->keep.spare = &w->b;
		st = verify_confirm(&w->a, &w->b, v, r->x, j->seq, j->precision, j->kernel,
				    r->threads, 0, &w->keep, rep);
		*have_rep = st == RF_OK;
	}
	if (st == RF_ERR_NUMERIC) {
		/* the readers refuse NaN and Inf: products overflowed */
		snprintf(err, errlen, "layer %zu: the weights are too large to compare: their "
			 "products overflow float64", i);
		return -1;
	}
	if (st != RF_OK) {
		snprintf(err, errlen, "layer %zu: %s", i, rf_status_str(st));
		return -1;
	}
	return 0;
}

/* Layers lo..hi decided and reported in order; 0, 1 when the caller
 * stopped, -1 on an error (in err). */
static int run_layers(LayerRun *r)
{
	LayerBuffers w;
	memset(&w, 0, sizeof w);
	r->threads = parallel_default_threads();
	r->blas = parallel_blas_single();
	int rc = 0;
	for (size_t i = r->lo; i <= r->hi && rc == 0; i++) {
		VerifyVerdict v;
		InvReport rep;
		bool have_rep = false;
		memset(&v, 0, sizeof v);
		if (decide(r, &w, i, &v, &rep, &have_rep, r->err, r->errlen)) {
			rc = -1;
		} else {
			VerifyOutcome *out = r->out;
			out->compared++;
			if (!v.equivalent && out->equivalent) {
				out->equivalent = false;
				out->first_break = i;
			}
			VerifyLayerResult res = {i, i - r->lo + 1, r->hi - r->lo + 1, &w.a, &v,
						 have_rep ? &rep : NULL};
			if (r->j->layer_done && r->j->layer_done(r->j->ctx, &res))
				rc = 1;
		}
		if (have_rep)
			report_done(&rep);
		verify_verdict_free(&v);
	}
	parallel_blas_restore(r->blas);
	layer_free(&w.a);
	layer_free(&w.b);
	verify_scratch_free(&w.keep);
	return rc;
}

/* Decide and report MLA layer i of both (core/mla_verify.h), one layer at a
 * time; 1 when the caller stops, -1 on an error. The result's
 * layer is A's header. The confirmation compares both layers' attention
 * on x at the job's precision (float64, or float32 as the forward pass
 * computes MLA), at four times the error the stored dtype's rounding alone
 * causes or the precision's tolerance if larger (core/mla_inv.h:
 * mla_confirm, as compare mode confirms it). */
static int one_mla_layer(const VerifyJob *j, Model *ma, Model *mb, size_t i, size_t done,
			 size_t total, const double *x, VerifyOutcome *out, char *err,
			 size_t errlen)
{
	VerifyVerdict v;
	Layer hdr;
	if (!model_mla(ma) || !model_mla(mb)) {
		/* two valid checkpoints, one MLA and one not: not a fold */
		mla_pair_shape_verdict(model_info(ma), model_info(mb), j->tol, &v, &hdr);
		out->compared++;
		if (out->equivalent) {
			out->equivalent = false;
			out->first_break = i;
		}
		VerifyLayerResult r = {i, done, total, &hdr, &v, NULL};
		return j->layer_done && j->layer_done(j->ctx, &r) ? 1 : 0;
	}
	VerifyOptions vo;
	if (mla_pair_options(ma, mb, i, j->tol, &vo, err, errlen))
		return -1;
	MlaLayer a, b;
	if (model_load_mla_layer(ma, i, &a, err, errlen))
		return -1;
	if (model_load_mla_layer(mb, i, &b, err, errlen)) {
		mla_free(&a);
		return -1;
	}
	InvReport rep;
	bool have_rep = false;
	RfStatus st = mla_verify_layers(&a, &b, &vo, &v);
	if (st == RF_OK && j->confirm && x && v.why != VERIFY_WHY_SHAPE) {
		st = mla_confirm(&a, &b, &v, x, j->seq, j->precision, 0, &rep);
		have_rep = st == RF_OK;
	}
	int rc = 0;
	if (st != RF_OK) {
		snprintf(err, errlen, "layer %zu: %s", i, rf_status_str(st));
		rc = -1;
	} else {
		out->compared++;
		if (!v.equivalent && out->equivalent) {
			out->equivalent = false;
			out->first_break = i;
		}
		mla_header(&a, &hdr);
		VerifyLayerResult r = {i, done, total, &hdr, &v, have_rep ? &rep : NULL};
		rc = j->layer_done && j->layer_done(j->ctx, &r) ? 1 : 0;
	}
	if (have_rep)
		report_done(&rep);
	verify_verdict_free(&v);
	mla_free(&a);
	mla_free(&b);
	return rc;
}

int verify_job_run(const VerifyJob *j, VerifyOutcome *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->equivalent = true;
	out->first_break = SIZE_MAX;
	Model *ma = NULL, *mb = NULL;
	LayerTolerance tl = {{NULL, NULL}, {NULL, NULL}};
	double *x = NULL;
	int rc = -1;
	VerifyResidualJob rj;
	memset(&rj, 0, sizeof rj);
	if (model_open(j->a, &ma, err, errlen) || model_open(j->b, &mb, err, errlen))
		goto out;
	const ModelInfo *ia = model_info(ma), *ib = model_info(mb);
	if (j->opened)
		j->opened(j->ctx, ia, ib);
	out->layers_a = ia->n_layers;
	out->layers_b = ib->n_layers;
	bool chosen = j->layers && strcmp(j->layers, "all") != 0;
	if (ia->n_layers != ib->n_layers && !chosen) {
		/* two valid checkpoints, one not a fold of the other */
		out->layer_counts_differ = true;
		out->equivalent = false;
		rc = 0;
		goto out;
	}
	size_t lo, hi;
	size_t common = ia->n_layers < ib->n_layers ? ia->n_layers : ib->n_layers;
	if (layer_range_parse(j->layers_flag, j->layers, common, &lo, &hi, err, errlen))
		goto out;
	/* the floats' roundoff when no tensor of a layer is a float (each
	 * layer's own dtypes decide, part by part: data/layer_tolerance.h);
	 * model_reload_layer refuses NaN and Inf */
	VerifyOptions vo = {.unit_roundoff = 0x1p-53, .tol = j->tol, .finite = true};
	layer_tolerance_open(&tl, j->a, ma, j->b, mb);
	if (j->confirm) {
		size_t D = ia->shape.d_model;
		x = malloc((j->seq ? j->seq : 1) * D * sizeof(double));
		if (!x) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		layer_random_input(j->seed, j->seq, D, x);
	}
	if (model_mla(ma) || model_mla(mb)) {
		/* DeepSeek MLA: at the coarser stored dtype's roundoff
		 * (data/mla_pair.h) */
		rc = 0;
		for (size_t i = lo; i <= hi && rc == 0; i++)
			rc = one_mla_layer(j, ma, mb, i, i - lo + 1, hi - lo + 1, x, out, err,
					   errlen);
		rc = rc < 0 ? -1 : 0;
		goto out;
	}
	if (verify_residual_begin(ma, mb, &vo, &rj, err, errlen))
		goto out;
	LayerRun lr = {.j = j, .ma = ma, .mb = mb, .lo = lo, .hi = hi, .vo = &vo, .tol = &tl, .x = x,
		       .out = out, .rj = &rj, .err = err, .errlen = errlen};
	rc = run_layers(&lr);
	if (rc == 0 && rj.r.active && verify_residual_end(&rj, err, errlen))
		rc = -1;
	rc = rc < 0 ? -1 : 0;
	out->residual = rj.r;
	out->residual.R = NULL;
	if (!rj.r.equivalent)
		out->equivalent = false;
out:
	verify_residual_job_free(&rj);
	layer_tolerance_done(&tl);
	free(x);
	if (ma)
		model_close(ma);
	if (mb)
		model_close(mb);
	return rc;
}
