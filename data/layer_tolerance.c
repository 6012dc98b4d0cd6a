#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dtype.h"
#include "data/checksum.h"
#include "data/layer_tolerance.h"
#include "data/model_tensors.h"
#include "data/quant_bound.h"

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

void layer_tolerance_open(LayerTolerance *t, const char *a, Model *ma, const char *b,
			  Model *mb)
{
	t->m[0] = ma;
	t->m[1] = mb;
	t->sc[0] = fold_sidecar(a, ma);
	t->sc[1] = fold_sidecar(b, mb);
}

void layer_tolerance_done(LayerTolerance *t)
{
	sidecar_free(t->sc[0]);
	sidecar_free(t->sc[1]);
	t->sc[0] = t->sc[1] = NULL;
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

/* Part p's bound per kv group of tensor t (G groups of rows, W_o's of
 * columns) into qg (G), plus carried (a fold's input's, per tensor); a
 * tensor that does not split so (a fused QKV) takes its whole bound rel
 * in every group. */
static void group_bounds(const TensorRef *t, int p, size_t G, bool fused, double rel,
			 double carried, double *qg)
{
	char err[256];
	if (fused || quant_bound_groups(t, G, p == VERIFY_O, qg, err, sizeof err))
		for (size_t g = 0; g < G; g++)
			qg[g] = rel;
	for (size_t g = 0; g < G; g++)
		qg[g] += carried;
}

/* Part by part: the coarser float's roundoff for the layer, and each
 * part's quantization bound, A's and B's added; a side that is a fold of
 * a quantized model (its sidecar records the bound of its input's
 * quantization) adds that bound too, unless the other side is quantized
 * itself (then most likely the fold's input, whose bound is counted). */
int layer_tolerance_layer(const LayerTolerance *tl, size_t i, VerifyOptions *vo, double **qgp,
			  char *err, size_t errlen)
{
	LayerTensorRefs lt[2];
	double u = 0;
	size_t G = model_info(tl->m[0])->shape.n_kv_heads;
	/* [(p * 2 + s) * G + g]: side s's bound of part p over kv group g */
	double *qg = calloc(VERIFY_PARTS * 2 * (G ? G : 1), sizeof *qg);
	bool any_block = false;
	*qgp = qg;
	if (!qg) {
		snprintf(err, errlen, "layer %zu: out of memory", i);
		return -1;
	}
	for (int p = 0; p < VERIFY_PARTS; p++)
		vo->quant[p] = vo->quant_frob[p] = 0;
	vo->quant_types = 0;
	vo->quant_group = NULL;
	for (int s = 0; s < 2; s++)
		if (model_layer_tensors(tl->m[s], i, &lt[s], err, errlen))
			return -1;
	for (int s = 0; s < 2; s++) {
		for (int p = 0; p < VERIFY_PARTS; p++) {
			const TensorRef *t = part_tensor(&lt[s], p);
			const TensorRef *other = part_tensor(&lt[1 - s], p);
			QuantBound qb;
			if (!t)
				continue;
			double cr = 0, cf = 0;
			StoreDtype cd = STORE_F32;
			if (other && dtype_is_float(other->dtype))
				carried_bound(tl->sc[s], i, t, &cr, &cf, &cd);
			if (cr > 0) {
				vo->quant[p] += cr;
				vo->quant_frob[p] += cf;
				vo->quant_types |= 1u << cd;
			}
			double *q = qg + (size_t)(p * 2 + s) * G;
			if (dtype_is_float(t->dtype)) {
				double ut = dtype_unit_roundoff(t->dtype);
				u = ut > u ? ut : u;
				for (size_t g = 0; g < G; g++)
					q[g] = cr;
				continue;
			}
			if (quant_bound_tensor(t, &qb, err, errlen))
				return -1;
			vo->quant[p] += qb.rel;
			vo->quant_frob[p] += qb.rel_frob;
			vo->quant_types |= 1u << t->dtype;
			any_block = true;
			group_bounds(t, p, G, t == lt[s].t[ATT_QKV], qb.rel, cr, q);
		}
	}
	/* no float tensor in the layer: float64's roundoff */
	vo->unit_roundoff = u > 0 ? u : 0x1p-53;
	/* per kv group only where a part is block-quantized */
	vo->quant_group = any_block && G ? qg : NULL;
	return 0;
}
