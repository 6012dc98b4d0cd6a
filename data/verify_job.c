#include "config.h"

#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "data/checksum.h"
#include "data/layer_range.h"
#include "data/model_tensors.h"
#include "data/quant_bound.h"
#include "data/sidecar.h"
#include "data/verify_job.h"

/* The tensor holding part p (core/verify.h's VerifyPart) of a layer. */
static const TensorRef *part_tensor(const LayerTensorRefs *lt, int p)
{
	static const AttnTensor split[VERIFY_PARTS] = {ATT_Q, ATT_K, ATT_V, ATT_O};
	return lt->t[split[p]] ? lt->t[split[p]] : p < VERIFY_O ? lt->t[ATT_QKV] : NULL;
}

/* The sidecar a fold wrote beside checkpoint path (path.fold.json, or
 * fold.json inside a folder), when there is one that loads for m's shape;
 * else NULL. */
static Sidecar *fold_sidecar(const char *path, const Model *m)
{
	char sc[4200];
	struct stat st;
	bool dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
	snprintf(sc, sizeof sc, dir ? "%s/fold.json" : "%s.fold.json", path);
	Sidecar *s = NULL;
	char err[256];
	if (stat(sc, &st) != 0 || !S_ISREG(st.st_mode) ||
	    sidecar_load(sc, &model_info(m)->shape, &s, err, sizeof err))
		return NULL;
	return s;
}

/* The quantization a fold's rotated tensor t (of layer i) carries from its
 * input, as the sidecar sc recorded it: 0 when sc records none, or t's
 * bytes are not those the fold wrote (a sidecar of another file). */
static void carried_bound(const Sidecar *sc, size_t i, const TensorRef *t, double *rel,
			 double *frob, StoreDtype *dt)
{
	*rel = *frob = 0;
	for (size_t k = 0; sc && k < sidecar_layer_count(sc); k++) {
		size_t li;
		SidecarTensor rec;
		char err[256];
		uint64_t h;
		if (!sidecar_layer_index(sc, k, &li) || li != i ||
		    sidecar_tensor_find(sc, k, t->name, &rec) || !(rec.quant_in > 0) ||
		    dtype_parse(rec.dtype_in, dt) || !dtype_is_block(*dt))
			continue;
		if (checksum_tensor(t, &h, err, sizeof err) || h != rec.sum_out)
			return;
		*rel = rec.quant_in;
		*frob = rec.quant_in_frob;
		return;
	}
}

/* Layer i's tolerances from the stored dtypes of A's and B's tensors, part
 * by part: the coarser float's roundoff for the layer, and each part's
 * quantization bound (data/quant_bound.h), A's and B's added; a side that
 * is a fold of a quantized model (its sidecar records the bound of its
 * input's quantization) adds that bound too. */
static int layer_tolerances(Model *ma, Model *mb, Sidecar *const sc[2], size_t i,
			    VerifyOptions *vo, char *err, size_t errlen)
{
	Model *m[2] = {ma, mb};
	LayerTensorRefs lt[2];
	double u = 0;
	for (int s = 0; s < 2; s++)
		if (model_layer_tensors(m[s], i, &lt[s], err, errlen))
			return -1;
	for (int s = 0; s < 2; s++) {
		for (int p = 0; p < VERIFY_PARTS; p++) {
			const TensorRef *t = part_tensor(&lt[s], p);
			const TensorRef *other = part_tensor(&lt[1 - s], p);
			QuantBound qb;
			if (!t)
				continue;
			/* a fold's carried quantization, unless the other side is
			 * quantized itself (then most likely the fold's input,
			 * whose bound is counted) */
			double cr = 0, cf = 0;
			StoreDtype cd = STORE_F32;
			if (other && dtype_is_float(other->dtype))
				carried_bound(sc[s], i, t, &cr, &cf, &cd);
			if (cr > 0) {
				vo->quant[p] += cr;
				vo->quant_frob[p] += cf;
				vo->quant_types |= 1u << cd;
			}
			if (dtype_is_float(t->dtype)) {
				double ut = dtype_unit_roundoff(t->dtype);
				u = ut > u ? ut : u;
				continue;
			}
			if (quant_bound_tensor(t, &qb, err, errlen))
				return -1;
			vo->quant[p] += qb.rel;
			vo->quant_frob[p] += qb.rel_frob;
			vo->quant_types |= 1u << t->dtype;
		}
	}
	vo->unit_roundoff = u;
	return 0;
}

/* Decide layer i of both (and confirm it when asked); 1 when the caller
 * stops, -1 on an error. */
static int one_layer(const VerifyJob *j, Model *ma, Model *mb, Sidecar *const sc[2],
		     size_t i, size_t done,
		     size_t total, const VerifyOptions *vo, const double *x,
		     VerifyOutcome *out, char *err, size_t errlen)
{
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
	VerifyOptions lo = *vo;
	if (layer_tolerances(ma, mb, sc, i, &lo, err, errlen)) {
		layer_free(&a);
		layer_free(&b);
		return -1;
	}
	if (!(lo.unit_roundoff > 0))
		lo.unit_roundoff = vo->unit_roundoff;
	RfStatus st = verify_layers(&a, &b, &lo, &v);
	if (st == RF_OK && j->confirm && v.why != VERIFY_WHY_SHAPE) {
		st = verify_confirm(&a, &b, &v, x, j->seq, j->precision, j->kernel, 0,
				    &rep);
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
	Sidecar *sc[2] = {NULL, NULL};
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
	/* the floats' roundoff when no tensor of a layer is a float (each
	 * layer's own dtypes decide, part by part: layer_tolerances) */
	VerifyOptions vo = {0x1p-53, j->tol, {0}, {0}, 0};
	sc[0] = fold_sidecar(j->a, ma);
	sc[1] = fold_sidecar(j->b, mb);
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
		rc = one_layer(j, ma, mb, sc, i, i - lo + 1, hi - lo + 1, &vo, x, out, err,
			       errlen);
	rc = rc < 0 ? -1 : 0;
out:
	sidecar_free(sc[0]);
	sidecar_free(sc[1]);
	free(x);
	if (ma)
		model_close(ma);
	if (mb)
		model_close(mb);
	return rc;
}
