#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/levels.h"
#include "core/mla_inv.h"
#include "core/mla_verify.h"
#include "data/layer_range.h"
#include "data/mla_model.h"
#include "data/verify_job.h"

/* Decide layer i of both (and confirm it when asked); 1 when the caller
 * stops, -1 on an error. */
/* The same for DeepSeek MLA checkpoints (core/mla_verify.h); the result's
 * layer is A's header. The confirmation compares both layers' attention
 * on x in float64 at four times the error the stored dtype's rounding
 * alone causes (core/mla_inv.h). */
static int one_mla_layer(const VerifyJob *j, Model *ma, Model *mb, size_t i, size_t done,
			 size_t total, const VerifyOptions *vo, const double *x,
			 VerifyOutcome *out, char *err, size_t errlen)
{
	if (!model_mla(ma) || !model_mla(mb)) {
		/* two valid checkpoints, one MLA and one not: not a fold */
		const ModelInfo *ia = model_info(ma), *ib = model_info(mb);
		VerifyVerdict v;
		memset(&v, 0, sizeof v);
		v.relation = VERIFY_REL_NONE;
		v.why = VERIFY_WHY_SHAPE;
		v.brk = finding_make(FIND_SHAPES_DIFFER);
		v.shape_a = ia->shape;
		v.shape_b = ib->shape;
		v.rope_a = ia->rope;
		v.rope_b = ib->rope;
		v.tol = vo->tol;
		v.unit_roundoff = vo->unit_roundoff;
		Layer hdr;
		memset(&hdr, 0, sizeof hdr);
		hdr.shape = ia->shape;
		hdr.rope = ia->rope;
		out->compared++;
		if (out->equivalent) {
			out->equivalent = false;
			out->first_break = i;
		}
		VerifyLayerResult r = {i, done, total, &hdr, &v, NULL};
		return j->layer_done && j->layer_done(j->ctx, &r) ? 1 : 0;
	}
	MlaLayer a, b;
	if (model_load_mla_layer(ma, i, &a, err, errlen))
		return -1;
	if (model_load_mla_layer(mb, i, &b, err, errlen)) {
		mla_free(&a);
		return -1;
	}
	VerifyVerdict v;
	InvReport rep;
	bool have_rep = false;
	RfStatus st = mla_verify_layers(&a, &b, vo, &v);
	if (st == RF_OK && j->confirm && x && v.why != VERIFY_WHY_SHAPE) {
		double noise[LEVEL_COUNT] = {0}, tol = levels_default_tol(PREC_F64);
		if (vo->unit_roundoff > 0)
			st = mla_rounding_noise(&a, x, j->seq, vo->unit_roundoff, noise);
		for (int l = 0; l < LEVEL_COUNT; l++)
			if (4.0 * noise[l] > tol)
				tol = 4.0 * noise[l];
		if (st == RF_OK)
			st = mla_compare(&a, &b, x, j->seq, tol, v.equivalent, &rep);
		have_rep = st == RF_OK;
		/* permuted heads: each head differs, the residual block not */
		if (have_rep && v.heads_permuted)
			rep.level[LEVEL_SCORE].guaranteed = rep.level[LEVEL_HEAD].guaranteed = false;
		v.confirm_tol = tol;
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
		Layer hdr;
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

static int one_layer(const VerifyJob *j, Model *ma, Model *mb, size_t i, size_t done,
		     size_t total, const VerifyOptions *vo, const double *x,
		     VerifyOutcome *out, char *err, size_t errlen)
{
	if (model_mla(ma) || model_mla(mb))
		return one_mla_layer(j, ma, mb, i, done, total, vo, x, out, err, errlen);
	Layer a, b;
	if (model_load_layer(ma, i, &a, err, errlen))
		return -1;
	if (model_load_layer(mb, i, &b, err, errlen)) {
		layer_free(&a);
		return -1;
	}
	VerifyVerdict v;
	InvReport rep;
	bool have_rep = false;
	RfStatus st = verify_layers(&a, &b, vo, &v);
	if (st == RF_OK && j->confirm && v.why != VERIFY_WHY_SHAPE) {
		st = verify_confirm(&a, &b, &v, x, j->seq, j->precision, 0, &rep);
		have_rep = st == RF_OK;
	}
	int rc = 0;
	if (st == RF_ERR_NUMERIC) {
		/* the readers refuse NaN and Inf: products overflowed */
		snprintf(err, errlen, "layer %zu: the weights are too large to compare: their "
			 "products overflow float64", i);
		rc = -1;
	} else if (st != RF_OK) {
		snprintf(err, errlen, "layer %zu: %s", i, rf_status_str(st));
		rc = -1;
	} else {
		out->compared++;
		if (!v.equivalent && out->equivalent) {
			out->equivalent = false;
			out->first_break = i;
		}
		VerifyLayerResult r = {i, done, total, &a, &v, have_rep ? &rep : NULL};
		rc = j->layer_done && j->layer_done(j->ctx, &r) ? 1 : 0;
	}
	if (have_rep)
		report_done(&rep);
	verify_verdict_free(&v);
	layer_free(&a);
	layer_free(&b);
	return rc;
}

int verify_job_run(const VerifyJob *j, VerifyOutcome *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->equivalent = true;
	out->first_break = SIZE_MAX;
	Model *ma = NULL, *mb = NULL;
	double *x = NULL;
	int rc = -1;
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
	double ua = dtype_unit_roundoff(ia->dtype), ub = dtype_unit_roundoff(ib->dtype);
	VerifyOptions vo = {ua > ub ? ua : ub, j->tol};
	if (j->confirm) {
		size_t D = ia->shape.d_model;
		x = malloc((j->seq ? j->seq : 1) * D * sizeof(double));
		if (!x) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		layer_random_input(j->seed, j->seq, D, x);
	}
	rc = 0;
	for (size_t i = lo; i <= hi && rc == 0; i++)
		rc = one_layer(j, ma, mb, i, i - lo + 1, hi - lo + 1, &vo, x, out, err, errlen);
	rc = rc < 0 ? -1 : 0;
out:
	free(x);
	if (ma)
		model_close(ma);
	if (mb)
		model_close(mb);
	return rc;
}
