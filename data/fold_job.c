#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/fold.h"
#include "core/fold_inverse.h"
#include "core/mla_fold.h"
#include "core/parallel.h"
#include "core/undo_proof.h"
#include "data/checksum.h"
#include "data/checksum_ahead.h"
#include "data/fold_job.h"
#include "data/fold_residual.h"
#include "data/layer_range.h"
#include "data/mla_model.h"
#include "data/model.h"
#include "data/model_tensors.h"
#include "data/quant_bound.h"
#include "data/sidecar.h"
#include "data/workload.h"
#include "data/writer.h"

/* Everything one run needs. */
typedef struct {
	const FoldJob *j;
	Model *m;
	Writer *w;
	Sidecar *undo;        /* the sidecar undone, or NULL */
	Sidecar *record;      /* the sidecar written */
	size_t *layers;       /* the layers to rewrite, in order */
	size_t nlayers;
	size_t *undo_index;   /* per layer: its entry in the undone sidecar */
	double *rel;          /* per layer: max relative rounding error */
	uint64_t *seeds;      /* per layer: drawn, or (undo) as recorded */
	bool *exact;          /* undo, per layer: provably bit for bit */
	bool *seed_known;     /* undo, per layer: the sidecar records a seed */
	bool all_exact;       /* undo: every layer provably bit for bit */
	bool stale_removed;   /* undo: an old OUT.fold.json was removed */
	double max_rel, unit;
	size_t qk_pairs;      /* RoPE pairs held to 0 or pi for a QK-norm,
			       * summed over layers (j->fold.qk_norm_exact) */
	size_t qk_layers;     /* layers with such pairs or a held tail */
	bool qk_tail;         /* some non-rotary block held to sign flips */
	size_t quant_f16;     /* block-quantized tensors stored as F16 (the default) */
	unsigned quant_in;    /* bit 1u << t: block types of the rotated tensors' input */
	StoreDtype quant_out; /* the block type they were quantized to (STORE_COUNT: none) */
	unsigned quant_outs;  /* bit 1u << t: every block type quantized to */
	double quant_added;   /* worst ||stored - rotated||_F / ||rotated||_F of those */
	double quant_own;     /* worst relative bound of the input's own quantization */
	bool checked;         /* undo: the sidecar has checksums, so it was
			       * checked against the folded file and "bit for
			       * bit" is proven by them */
	FoldResidual *res;    /* the residual rotation (fold --residual, or an
			       * undo of one), or NULL */
	size_t res_tensors;   /* tensors it rewrote beyond attention's fold */
	size_t res_norms;     /* norms fused (or restored) */
	bool untied;          /* the head was untied (by this fold, or the undone one) */
	Layer in;             /* the layer being folded, and its fold: */
	Layer folded;         /* their buffers are reused from layer to layer */
	double *vals;         /* one folded tensor's values packed for the
			       * writer (nvals), reused likewise: fresh pages
			       * cost more than the rounding */
	size_t nvals;
	ChecksumAhead *ahead; /* the rewritten attention tensors' input
			       * checksums, computed on a thread of their own */
	char err[1024];
} FoldRun;

/* A float dtype's name (the sidecar's dtype_in) into *dt: -1 for any
 * other name, which a fold never records. */
static int parse_float(const char *name, StoreDtype *dt)
{
	return dtype_parse(name, dt) || !dtype_is_float(*dt) ? -1 : 0;
}

/* The dtype tensor t of the k-th layer is stored in: an undo's is the one
 * it had before the fold (a block quantization is quantized again: its
 * blocks cannot be recovered from rotated values, so that undo is not bit
 * for bit), else --dtype's, else its own; a block-quantized tensor's
 * rotated values are no longer on its grid and go to F16 unless --dtype
 * asks for a quantization. */
static int out_dtype(FoldRun *r, size_t k, const TensorRef *t, StoreDtype *dt)
{
	if (r->undo) {
		const char *in = sidecar_tensor_dtype_in(r->undo, r->undo_index[k], t->name);
		if (in && !dtype_parse(in, dt) && (dtype_is_float(*dt) || dtype_is_block(*dt)))
			return 0;
	}
	if (r->j->store_set) {
		*dt = r->j->store;
		return 0;
	}
	*dt = dtype_is_float(t->dtype) ? t->dtype : STORE_F16;
	return 0;
}

/* Whether the k-th layer's QK-norm weight t (over all heads) is rewritten:
 * it moves with its heads when the fold reorders the kv groups, and an
 * undo moves it back when the fold recorded it (a sidecar that does not
 * name it left it in place). It keeps its own dtype: nothing rounds it. */
static bool norm_moves(const FoldRun *r, size_t k, const LayerTensorRefs *lt,
		       const TensorRef *t, StoreDtype *dt)
{
	if (!t || !lt->qk_norm_all_heads)
		return false;
	const char *in = NULL;
	if (r->undo) {
		in = sidecar_tensor_dtype_in(r->undo, r->undo_index[k], t->name);
		if (!in)
			return false;
	} else if (!r->j->fold.permute_heads || model_info(r->m)->shape.n_kv_heads < 2) {
		return false;
	}
	if (!in || parse_float(in, dt))
		*dt = t->dtype;
	return true;
}

/* A tensor the k-th layer rewrites, and the dtype it is stored in. */
typedef struct {
	const TensorRef *t;
	StoreDtype dt;
	int q_norm;           /* -1 attention tensor, 0 q_norm, 1 k_norm */
} Rewrite;

enum { MAX_REWRITES = ATT_COUNT + 2 };

/* The tensors the k-th layer rewrites: the folded attention tensors, and
 * the QK-norm weights that move with their heads. */
static int layer_rewrites(FoldRun *r, size_t k, const LayerTensorRefs *lt, Rewrite *out,
			  size_t *n)
{
	*n = 0;
	for (int a = 0; a < ATT_COUNT; a++) {
		if (!lt->t[a] || !model_tensor_folded((AttnTensor)a))
			continue;
		out[*n] = (Rewrite){lt->t[a], STORE_F32, -1};
		if (out_dtype(r, k, lt->t[a], &out[*n].dt))
			return -1;
		++*n;
	}
	for (int q = 0; q < 2; q++) {
		const TensorRef *t = q ? lt->k_norm : lt->q_norm;
		StoreDtype dt;
		if (!norm_moves(r, k, lt, t, &dt))
			continue;
		if (!dtype_is_float(dt)) {
			snprintf(r->err, sizeof r->err, "%s: tensor %s is %s: its heads cannot be "
				 "reordered in a block quantization", t->file, t->name, t->dtype_name);
			return -1;
		}
		out[(*n)++] = (Rewrite){t, dt, q};
	}
	return 0;
}

/* ---- the residual rotation beyond attention's tensors --------------------- */

/* Whether t is among the n rewrites of a layer (attention's fold). */
static bool in_rewrites(const Rewrite *rw, size_t n, const TensorRef *t)
{
	for (size_t i = 0; i < n; i++)
		if (rw[i].t == t)
			return true;
	return false;
}

/* Whether plan entry e is one the residual pass itself writes for the
 * k-th layer (k SIZE_MAX: the model level), not attention's fold. */
static bool res_owns(const ResTensor *e, const FoldRun *r, size_t k, const Rewrite *rw,
		     size_t n)
{
	size_t li = k == SIZE_MAX ? RES_MODEL_LEVEL : r->layers[k];
	return e->layer == li && !in_rewrites(rw, n, e->t);
}

/* The dtype plan entry e is stored in: a norm keeps its own (1 and 0 are
 * exact in any), the rest as a fold stores any rotated tensor; an undo
 * stores each back in the dtype recorded. k SIZE_MAX: model level. */
static int res_dtype(FoldRun *r, size_t k, const ResTensor *e, StoreDtype *dt)
{
	const TensorRef *t = e->t;
	if (r->undo && k == SIZE_MAX) {
		SidecarTensor st;
		if (!sidecar_model_tensor_find(r->undo, t->name, &st) && !parse_float(st.dtype_in, dt))
			return 0;
	}
	if (e->role == RES_ROLE_NORM || k == SIZE_MAX) {
		if (e->role != RES_ROLE_NORM && r->j->store_set && !r->undo) {
			*dt = r->j->store;
			return 0;
		}
		*dt = t->dtype;
		if (dtype_is_float(t->dtype))
			return 0;
		snprintf(r->err, sizeof r->err, "%s: tensor %s is %s: the residual rotation cannot "
			 "re-store it in a block quantization; use --dtype f32", t->file, t->name,
			 t->dtype_name);
		return -1;
	}
	return out_dtype(r, k, t, dt);
}

/* Mark what the residual pass writes at the k-th layer (SIZE_MAX: model
 * level) beyond the n rewrites of attention's fold. */
static int res_mark(FoldRun *r, size_t k, const Rewrite *rw, size_t n)
{
	const ResPlan *p = fold_residual_plan(r->res);
	for (size_t i = 0; i < p->n; i++) {
		const ResTensor *e = &p->v[i];
		StoreDtype dt;
		if (!res_owns(e, r, k, rw, n))
			continue;
		if (res_dtype(r, k, e, &dt) || writer_replace(r->w, e->t, dt, r->err, sizeof r->err))
			return -1;
		double u = dtype_unit_roundoff(dt);
		if (e->role != RES_ROLE_NORM && u > r->unit)
			r->unit = u;
	}
	return 0;
}

/* ---- DeepSeek MLA: q_b_proj (q_proj), kv_a_proj_with_mqa, kv_b_proj (in
 * each form the layer stores it: data/mla_split.h) and o_proj change
 * (core/mla_fold.h); the latents' norms and q_a_proj stay ---- */

static int mla_tensors(FoldRun *r, size_t k, MlaLayerTensors *lt)
{
	char e[700];
	if (mla_layer_tensors(model_tensor_table(r->m), model_mla(r->m), r->layers[k], lt, e,
			      sizeof e)) {
		snprintf(r->err, sizeof r->err, "%s: %s", r->j->model_path, e);
		return -1;
	}
	return 0;
}

/* The layer index the undone sidecar's k-th entry records: for an MLA
 * checkpoint, 0 once each entry is an MLA fold this ropefold can draw
 * again (else -1 with the message); 1 for a standard checkpoint (an MLA
 * entry there is refused). */
static int mla_undo_layer_index(FoldRun *r, size_t k, size_t *li)
{
	FoldConfig cfg;
	uint64_t sum;
	char e[512];
	bool mla = sidecar_layer_is_mla(r->undo, k);
	if (!model_mla(r->m) && !mla)
		return 1;
	if (!model_mla(r->m)) {
		snprintf(r->err, sizeof r->err, "%s: layers[%zu] records an MLA fold; %s is not "
			 "DeepSeek MLA", r->j->undo, k, r->j->model_path);
		return -1;
	}
	if (!mla) {
		snprintf(r->err, sizeof r->err, "%s: layers[%zu] records a fold of standard "
			 "attention; %s is DeepSeek MLA", r->j->undo, k, r->j->model_path);
		return -1;
	}
	if (sidecar_mla_config(r->undo, k, li, &cfg, &sum, e, sizeof e)) {
		snprintf(r->err, sizeof r->err, "%s: %s", r->j->undo, e);
		return -1;
	}
	return 0;
}

static int mla_mark_tensors(FoldRun *r)
{
	for (size_t k = 0; k < r->nlayers; k++) {
		MlaLayerTensors lt;
		MlaTensorId ids[MLA_REWRITTEN_MAX];
		if (mla_tensors(r, k, &lt))
			return -1;
		size_t n = mla_rewritten(&lt, ids);
		for (size_t i = 0; i < n; i++) {
			const TensorRef *t = lt.t[ids[i]];
			StoreDtype dt;
			if (out_dtype(r, k, t, &dt) || writer_replace(r->w, t, dt, r->err, sizeof r->err))
				return -1;
			double u = dtype_unit_roundoff(dt);
			if (u > r->unit)
				r->unit = u;
		}
	}
	return 0;
}

/* Mark every tensor a fold changes in the chosen layers. */
static int mark_tensors(FoldRun *r)
{
	r->unit = 0;
	if (model_mla(r->m))
		return mla_mark_tensors(r);
	for (size_t k = 0; k < r->nlayers; k++) {
		LayerTensorRefs lt;
		Rewrite rw[MAX_REWRITES];
		size_t n;
		if (model_layer_tensors(r->m, r->layers[k], &lt, r->err, sizeof r->err) ||
		    layer_rewrites(r, k, &lt, rw, &n))
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (writer_replace(r->w, rw[i].t, rw[i].dt, r->err, sizeof r->err))
				return -1;
			if (rw[i].q_norm < 0 && dtype_is_block(rw[i].t->dtype)) {
				r->quant_in |= 1u << rw[i].t->dtype;
				r->quant_f16 += rw[i].dt == STORE_F16 && !r->j->store_set;
			}
			if (rw[i].q_norm < 0 && dtype_is_block(rw[i].dt)) {
				r->quant_out = rw[i].dt;
				r->quant_outs |= 1u << rw[i].dt;
			}
			double u = dtype_unit_roundoff(rw[i].dt);
			if (rw[i].q_norm < 0 && u > r->unit)
				r->unit = u;
		}
		if (r->res && res_mark(r, k, rw, n))
			return -1;
	}
	return r->res ? res_mark(r, SIZE_MAX, NULL, 0) : 0;
}

/* ---- undo: does the sidecar describe the folded file? ----------------------- */

/* The k-th layer's rewritten tensors against what the sidecar recorded:
 * each recorded, each holding the bytes the fold wrote (checksum_out),
 * and nothing recorded that the layer does not have. */
/* Whether tensor t holds the bytes a sidecar recorded as written (st):
 * -1 with the message when not. li: its layer, SIZE_MAX model level. */
static int check_written(FoldRun *r, const TensorRef *t, const SidecarTensor *st, size_t li)
{
	uint64_t h;
	char got[17], want[17], where[48] = "";
	if (checksum_ahead_get(r->ahead, t, &h, r->err, sizeof r->err))
		return -1;
	if (h == st->sum_out)
		return 0;
	checksum_format(h, got);
	checksum_format(st->sum_out, want);
	if (li != SIZE_MAX)
		snprintf(where, sizeof where, " (layer %zu)", li);
	snprintf(r->err, sizeof r->err, "%s: tensor %s%s is not what %s recorded (checksum %s, "
		 "recorded %s): the sidecar belongs to another file", t->file, t->name, where,
		 r->j->undo, got, want);
	return -1;
}

/* Whether the residual pass writes a tensor of that name at the k-th
 * layer (SIZE_MAX: model level) beyond the n rewrites. */
static bool res_writes(const FoldRun *r, size_t k, const Rewrite *rw, size_t n,
		       const char *name)
{
	const ResPlan *p = r->res ? fold_residual_plan(r->res) : NULL;
	for (size_t i = 0; p && i < p->n; i++)
		if (res_owns(&p->v[i], r, k, rw, n) && !strcmp(p->v[i].t->name, name))
			return true;
	return false;
}

/* The residual pass's tensors of the k-th layer (SIZE_MAX: the model
 * level) against the sidecar: each recorded, each as written. */
static int check_undo_res(FoldRun *r, size_t k, const Rewrite *rw, size_t n)
{
	const ResPlan *p = r->res ? fold_residual_plan(r->res) : NULL;
	size_t li = k == SIZE_MAX ? SIZE_MAX : r->layers[k];
	for (size_t i = 0; p && i < p->n; i++) {
		const ResTensor *e = &p->v[i];
		SidecarTensor st;
		if (!res_owns(e, r, k, rw, n))
			continue;
		int miss = k == SIZE_MAX ? sidecar_model_tensor_find(r->undo, e->t->name, &st)
					 : sidecar_tensor_find(r->undo, r->undo_index[k], e->t->name, &st);
		if (miss) {
			snprintf(r->err, sizeof r->err, "%s: records no tensor %s, which the residual "
				 "rotation rewrites; not the sidecar of %s", r->j->undo, e->t->name,
				 r->j->model_path);
			return -1;
		}
		if (check_written(r, e->t, &st, li))
			return -1;
	}
	for (size_t j = 0; k == SIZE_MAX && j < sidecar_model_tensor_count(r->undo); j++) {
		SidecarTensor st;
		sidecar_model_tensor_get(r->undo, j, &st);
		if (!res_writes(r, k, NULL, 0, st.name)) {
			snprintf(r->err, sizeof r->err, "%s: records tensor %s, which %s does not "
				 "rewrite; not its sidecar", r->j->undo, st.name, r->j->model_path);
			return -1;
		}
	}
	return 0;
}

/* An MLA layer's rewritten tensors against the sidecar: each
 * recorded and as written, nothing else recorded. */
static int mla_check_undo_layer(FoldRun *r, size_t k)
{
	MlaLayerTensors lt;
	MlaTensorId ids[MLA_REWRITTEN_MAX];
	size_t li = r->layers[k], idx = r->undo_index[k];
	if (mla_tensors(r, k, &lt))
		return -1;
	size_t n = mla_rewritten(&lt, ids);
	for (size_t i = 0; i < n; i++) {
		const TensorRef *t = lt.t[ids[i]];
		SidecarTensor st;
		if (sidecar_tensor_find(r->undo, idx, t->name, &st)) {
			snprintf(r->err, sizeof r->err, "%s: layer %zu: records no tensor %s, which "
				 "the fold rewrites; not the sidecar of %s", r->j->undo, li, t->name,
				 r->j->model_path);
			return -1;
		}
		if (check_written(r, t, &st, li))
			return -1;
	}
	for (size_t j = 0; j < sidecar_tensor_count(r->undo, idx); j++) {
		SidecarTensor st;
		bool found = false;
		sidecar_tensor_get(r->undo, idx, j, &st);
		for (size_t i = 0; i < n && !found; i++)
			found = !strcmp(lt.t[ids[i]]->name, st.name);
		if (!found) {
			snprintf(r->err, sizeof r->err, "%s: layer %zu: records tensor %s, which %s "
				 "does not rewrite there; not its sidecar", r->j->undo, li, st.name,
				 r->j->model_path);
			return -1;
		}
	}
	return 0;
}

static int check_undo_layer(FoldRun *r, size_t k)
{
	if (model_mla(r->m))
		return mla_check_undo_layer(r, k);
	LayerTensorRefs lt;
	Rewrite rw[MAX_REWRITES];
	size_t n, li = r->layers[k], idx = r->undo_index[k];
	if (model_layer_tensors(r->m, li, &lt, r->err, sizeof r->err) ||
	    layer_rewrites(r, k, &lt, rw, &n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		SidecarTensor st;
		if (sidecar_tensor_find(r->undo, idx, rw[i].t->name, &st)) {
			snprintf(r->err, sizeof r->err, "%s: layer %zu: records no tensor %s, which "
				 "the fold rewrites; not the sidecar of %s", r->j->undo, li,
				 rw[i].t->name, r->j->model_path);
			return -1;
		}
		if (check_written(r, rw[i].t, &st, li))
			return -1;
	}
	if (check_undo_res(r, k, rw, n))
		return -1;
	for (size_t j = 0; j < sidecar_tensor_count(r->undo, idx); j++) {
		SidecarTensor st;
		bool found = false;
		sidecar_tensor_get(r->undo, idx, j, &st);
		for (size_t i = 0; i < n && !found; i++)
			found = !strcmp(rw[i].t->name, st.name);
		found = found || res_writes(r, k, rw, n, st.name);
		if (!found) {
			snprintf(r->err, sizeof r->err, "%s: layer %zu: records tensor %s, which %s "
				 "does not rewrite there; not its sidecar", r->j->undo, li, st.name,
				 r->j->model_path);
			return -1;
		}
	}
	return 0;
}

/* The stored checksums a run reads of the tensors its layers rewrite
 * (layer_rewrites'), started on a thread of their own in the order they
 * are asked for: each step-th one, from the step-th. A fold records them
 * all (step 1); an undo's check below reads them before anything is
 * written, and on one thread that was an eighth of an 8B undo, so the
 * helper takes every other one (step 2) while the check reads the rest.
 * A tensor not listed (the residual rotation's, MLA's, a layer whose
 * tensors are not found, which the run reports) is read when asked, as
 * it is without the thread. */
static void start_checksums(FoldRun *r, size_t step)
{
	if (model_mla(r->m))
		return;
	const TensorRef **t = malloc((r->nlayers * MAX_REWRITES + 1) * sizeof *t);
	if (!t)
		return;
	/* layer_rewrites words a refusal in r->err: the run says it later,
	 * or (a plain fold's norms) checks the same again */
	char keep[sizeof r->err];
	memcpy(keep, r->err, sizeof keep);
	size_t n = 0, seen = 0;
	for (size_t k = 0; k < r->nlayers; k++) {
		LayerTensorRefs lt;
		Rewrite rw[MAX_REWRITES];
		size_t nrw;
		char err[256];
		if (model_layer_tensors(r->m, r->layers[k], &lt, err, sizeof err) ||
		    layer_rewrites(r, k, &lt, rw, &nrw))
			continue;
		for (size_t i = 0; i < nrw; i++)
			if (rw[i].t->src && ++seen % step == 0)
				t[n++] = rw[i].t;
	}
	memcpy(r->err, keep, sizeof keep);
	r->ahead = checksum_ahead_start(t, n);
	free(t);
}

/* Refuse a sidecar that does not describe the folded checkpoint (older
 * sidecars without checksums cannot be checked: r->checked says so). */
static int check_undo_input(FoldRun *r)
{
	r->checked = sidecar_has_checksums(r->undo);
	if (r->checked)
		start_checksums(r, 2);
	int rc = 0;
	for (size_t k = 0; r->checked && k < r->nlayers && !rc; k++)
		rc = check_undo_layer(r, k);
	if (!rc && r->checked && r->res)
		rc = check_undo_res(r, SIZE_MAX, NULL, 0);
	checksum_ahead_free(r->ahead);   /* an undo reads no input checksum after */
	r->ahead = NULL;
	return rc;
}

/* Elements a model-level tensor is rotated and stored by at once (whole
 * rows): the embeddings and the head need not be held whole. */
#define RES_PART_ELEMS ((size_t)1 << 21)

/* Store model-level plan entry e a part of whole rows at a time: read,
 * rotate, store; wr: the worst part's rounding, the checksum of all. */
static int put_rows(FoldRun *r, const ResTensor *e, WriterRounding *wr)
{
	size_t D = fold_residual_plan(r->res)->D, n = e->t->nelem;
	size_t part = RES_PART_ELEMS / D ? RES_PART_ELEMS / D * D : D;
	double *v = malloc((part < n ? part : n) * sizeof(double));
	if (!v) {
		snprintf(r->err, sizeof r->err, "%s: out of memory", e->t->name);
		return -1;
	}
	memset(wr, 0, sizeof *wr);
	int rc = 0;
	for (size_t first = 0; first < n && !rc; first += part) {
		size_t m = n - first < part ? n - first : part;
		WriterRounding pr;
		rc = tensor_read(e->src ? e->src : e->t, first, m, v, r->err, sizeof r->err) ||
		     fold_residual_transform_part(r->res, e, v, m, r->err, sizeof r->err) ||
		     writer_put_part(r->w, e->t, first, m, v, &pr, r->err, sizeof r->err);
		if (!rc) {
			/* the relative figure of the worst part is kept together */
			if (pr.max_abs > 0 && (wr->max_abs == 0 || pr.max_abs_err / pr.max_abs >
								   wr->max_abs_err / wr->max_abs)) {
				wr->max_abs_err = pr.max_abs_err;
				wr->max_abs = pr.max_abs;
			}
			wr->checksum = pr.checksum;
		}
	}
	free(v);
	return rc ? -1 : 0;
}

/* Store values (t->nelem) as tensor t of the k-th layer (SIZE_MAX: a
 * model-level tensor of the residual rotation), in dtype dt: the values
 * given (v) or, for a model-level plan entry stored by rows (rows), read
 * and rotated part by part. A fold records it in the sidecar with the
 * checksums of its stored bytes before and after (and qb, the bound of
 * its input's quantization, or NULL); an undo compares the bytes it wrote
 * with those the sidecar recorded of the original (*same stays true while
 * they agree). */
static int store_values(FoldRun *r, size_t k, const TensorRef *t, StoreDtype dt,
			const double *v, const QuantBound *qb, const ResTensor *rows,
			WriterRounding *wr, bool *same);

static int store_tensor(FoldRun *r, size_t k, const TensorRef *t, StoreDtype dt,
			const double *v, const QuantBound *qb, WriterRounding *wr, bool *same)
{
	return store_values(r, k, t, dt, v, qb, NULL, wr, same);
}

static int store_values(FoldRun *r, size_t k, const TensorRef *t, StoreDtype dt,
			const double *v, const QuantBound *qb, const ResTensor *rows,
			WriterRounding *wr, bool *same)
{
	uint64_t before = 0;
	bool model = k == SIZE_MAX;   /* a model-level tensor (residual rotation) */
	/* an added tensor (an untied head) has no stored bytes before */
	if (!r->undo && t->src && checksum_ahead_get(r->ahead, t, &before, r->err, sizeof r->err))
		return -1;
	if (rows ? put_rows(r, rows, wr) : writer_put(r->w, t, v, wr, r->err, sizeof r->err))
		return -1;
	if (r->undo) {
		SidecarTensor st;
		int miss = model ? sidecar_model_tensor_find(r->undo, t->name, &st)
				 : sidecar_tensor_find(r->undo, r->undo_index[k], t->name, &st);
		*same = *same && !miss && st.sum_in == wr->checksum;
		return 0;
	}
	SidecarTensor rec = {t->name, t->dtype_name, dtype_name(dt), before,
			     wr->checksum, qb ? qb->rel : 0, qb ? qb->rel_frob : 0};
	if (model ? sidecar_add_model_tensor(r->record, &rec) : sidecar_add_tensor(r->record, &rec)) {
		snprintf(r->err, sizeof r->err, "%s: tensor %s: cannot record it", r->j->out,
			 t->name);
		return -1;
	}
	return 0;
}

/* Store the k-th layer's QK-norm weights over all heads in the order plan
 * gives the heads (core's fold_apply moves them so in memory). */
static int put_norms(FoldRun *r, size_t k, const LayerTensorRefs *lt, const FoldPlan *plan,
		     bool *same)
{
	const LayerShape *s = &model_info(r->m)->shape;
	for (int q = 0; q < 2; q++) {
		const TensorRef *t = q ? lt->k_norm : lt->q_norm;
		StoreDtype dt;
		WriterRounding wr;
		if (!norm_moves(r, k, lt, t, &dt))
			continue;
		double *v = malloc(t->nelem * sizeof(double));
		if (!v) {
			snprintf(r->err, sizeof r->err, "%s: out of memory", t->name);
			return -1;
		}
		int bad = model_norm_permute(t, q ? 1 : s->n_heads / s->n_kv_heads, s->head_dim,
					     s->n_kv_heads, plan->perm, v, r->err, sizeof r->err) ||
			  store_tensor(r, k, t, dt, v, NULL, &wr, same);
		free(v);
		if (bad)
			return -1;
	}
	return 0;
}

/* Store what the residual pass owns at the k-th layer (SIZE_MAX: model
 * level): read, rotate (or rotate back), store; a fold records each
 * norm's stored values before it sets them to 1. *rel grows to the worst
 * relative rounding. */
static int res_store(FoldRun *r, size_t k, const Rewrite *rw, size_t n, bool *same,
		     double *rel)
{
	const ResPlan *p = fold_residual_plan(r->res);
	for (size_t i = 0; i < p->n; i++) {
		const ResTensor *e = &p->v[i];
		StoreDtype dt;
		WriterRounding wr;
		double *v;
		if (!res_owns(e, r, k, rw, n))
			continue;
		if (e->role == RES_ROLE_NORM && !r->undo) {
			double *orig = malloc(e->t->nelem * sizeof(double));
			int bad = !orig ||
				  tensor_read(e->t, 0, e->t->nelem, orig, r->err, sizeof r->err) ||
				  sidecar_add_norm(r->record, e->t->name, orig, e->t->nelem);
			free(orig);
			if (bad) {
				if (!orig)
					snprintf(r->err, sizeof r->err, "%s: out of memory", e->t->name);
				return -1;
			}
		}
		if (res_dtype(r, k, e, &dt))
			return -1;
		/* a block quantization is stored whole */
		bool by_rows = k == SIZE_MAX && fold_residual_by_rows(e) && dtype_is_float(dt);
		v = NULL;
		if (!by_rows && fold_residual_values(r->res, e, &v, r->err, sizeof r->err))
			return -1;
		int bad = store_values(r, k, e->t, dt, v, NULL, by_rows ? e : NULL, &wr, same);
		free(v);
		if (bad)
			return -1;
		r->res_tensors++;
		r->res_norms += e->role == RES_ROLE_NORM;
		double er = wr.max_abs > 0 ? wr.max_abs_err / wr.max_abs : 0;
		if (e->role != RES_ROLE_NORM && er > *rel)
			*rel = er;
	}
	return 0;
}

/* The plan of the k-th layer: drawn, or the inverse of the recorded one. */
static int layer_plan(FoldRun *r, size_t k, const Layer *a, FoldPlan *plan)
{
	if (r->undo) {
		FoldPlan p;
		size_t li;
		if (sidecar_layer_plan(r->undo, r->undo_index[k], &li, &p, r->err, sizeof r->err))
			return -1;
		RfStatus st = fold_inverse_plan(&p, plan);
		fold_plan_free(&p);
		if (st != RF_OK) {
			snprintf(r->err, sizeof r->err, "%s: layer %zu: cannot invert the recorded "
				 "rotations: %s", r->j->undo, li, rf_status_str(st));
			return -1;
		}
		return 0;
	}
	FoldConfig cfg = r->j->fold;
	cfg.seed = r->seeds[k] = r->j->seed_as_is ? r->j->fold.seed
						  : sidecar_layer_seed(r->j->seed, r->layers[k]);
	RfStatus st = fold_plan_build(a, &cfg, plan);
	if (st != RF_OK) {
		snprintf(r->err, sizeof r->err, "%s: layer %zu: %s", r->j->model_path, r->layers[k],
			 rf_status_str(st));
		return -1;
	}
	r->qk_pairs += plan->qk_norm_pinned;
	r->qk_layers += plan->qk_norm_pinned || plan->qk_norm_tail_pinned;
	r->qk_tail = r->qk_tail || plan->qk_norm_tail_pinned;
	return 0;
}

/* ---- undo: is the restored checkpoint provably the original? ------------- */

/* The tensor holding rewritten array i (core/undo_proof.h) of a layer. */
static const TensorRef *array_tensor(const LayerTensorRefs *lt, UndoArray i)
{
	static const AttnTensor split[UNDO_ARRAYS] = {ATT_Q, ATT_K, ATT_V, ATT_O,
						      ATT_BQ, ATT_BK, ATT_BV};
	static const AttnTensor fused[UNDO_ARRAYS] = {ATT_QKV, ATT_QKV, ATT_QKV, ATT_O,
						      ATT_BQKV, ATT_BQKV, ATT_BQKV};
	return lt->t[split[i]] ? lt->t[split[i]] : lt->t[fused[i]];
}

/* Whether the undo of the k-th layer provably gives back, bit for bit, the
 * values stored before the fold (core/undo_proof.h): a is the folded
 * layer, b the undo's values before rounding, inv the undo's plan. A
 * tensor stored back in a dtype other than the one the sidecar recorded
 * for it is not proven. Returns -1 on no memory. */
static int undo_exact(FoldRun *r, size_t k, const Layer *a, const Layer *b,
		      const FoldPlan *inv, const LayerTensorRefs *lt, bool *exact)
{
	UndoStorage us;
	for (int i = 0; i < UNDO_ARRAYS; i++) {
		const TensorRef *tr = array_tensor(lt, (UndoArray)i);
		StoreDtype dt, want;
		const char *in = tr ? sidecar_tensor_dtype_in(r->undo, r->undo_index[k], tr->name)
				    : NULL;
		us.folded[i] = tr ? tr->dtype : STORE_UNSUPPORTED;
		us.restored[i] = tr && !out_dtype(r, k, tr, &dt) && in && !parse_float(in, &want) &&
					 want == dt ? dt : STORE_UNSUPPORTED;
	}
	FoldPlan fwd;
	size_t li;
	if (sidecar_layer_plan(r->undo, r->undo_index[k], &li, &fwd, r->err, sizeof r->err))
		return -1;
	RfStatus st = undo_proof_exact(a, b, &fwd, inv, &us, exact);
	fold_plan_free(&fwd);
	if (st != RF_OK) {
		snprintf(r->err, sizeof r->err, "layer %zu: out of memory", r->layers[k]);
		return -1;
	}
	return 0;
}

/* What storing a rotated tensor in dt did against the quantization of
 * the input: the error a requantization added (relative, Frobenius) and
 * qb, the bound of the input's own quantization (data/quant_bound.h). */
static void note_quantization(FoldRun *r, const QuantBound *qb, StoreDtype dt,
			      const WriterRounding *wr)
{
	if (dtype_is_block(dt)) {
		double e = wr->frob > 0 ? wr->frob_err / wr->frob : 0;
		if (e > r->quant_added)
			r->quant_added = e;
	}
	if (qb->rel_frob > r->quant_own)
		r->quant_own = qb->rel_frob;
}

/* Load, fold and store the k-th layer. */
/* Fold MLA layer k: the plan drawn from its seed, the four rewritten
 * tensors stored (their values are row for row the file's). */
/* The k-th layer's worst relative rounding rel, recorded in the sidecar's
 * current layer, the per-layer summary and the run's maximum (the MLA and
 * the standard layer fold end alike). */
static void layer_rounding_done(FoldRun *r, size_t k, double rel)
{
	sidecar_set_rounding(r->record, rel);
	r->rel[k] = rel;
	if (rel > r->max_rel)
		r->max_rel = rel;
}

/* The plan that undoes the k-th layer's recorded MLA fold: drawn again
 * from the recorded configuration (l: the folded layer, whose shape and
 * RoPE the draw reads), held to the recorded checksum, inverted. */
static int mla_undo_plan(FoldRun *r, size_t k, const MlaLayer *l, MlaPlan *inv)
{
	FoldConfig cfg;
	uint64_t want;
	size_t li;
	MlaPlan fwd;
	char e[512];
	if (sidecar_mla_config(r->undo, r->undo_index[k], &li, &cfg, &want, e, sizeof e)) {
		snprintf(r->err, sizeof r->err, "%s: %s", r->j->undo, e);
		return -1;
	}
	RfStatus st = mla_plan_build(l, &cfg, &fwd);
	if (st == RF_OK && sidecar_mla_plan_sum(&fwd) != want) {
		mla_plan_free(&fwd);
		snprintf(r->err, sizeof r->err, "%s: layer %zu: the rotations drawn again from seed "
			 "%llu are not the ones the fold applied (their checksum differs: another "
			 "ropefold or LAPACK drew them); cannot undo", r->j->undo, li,
			 (unsigned long long)cfg.seed);
		return -1;
	}
	if (st == RF_OK) {
		st = mla_plan_inverse(&fwd, inv);
		mla_plan_free(&fwd);
	}
	if (st != RF_OK) {
		snprintf(r->err, sizeof r->err, "%s: layer %zu: cannot invert the recorded "
			 "rotations: %s", r->j->undo, li, rf_status_str(st));
		return -1;
	}
	return 0;
}

/* The plan of the k-th MLA layer drawn from its seed (cfg filled with what
 * drew it, for the sidecar). */
static int mla_fold_plan(FoldRun *r, size_t k, const MlaLayer *a, FoldConfig *cfg,
			 MlaPlan *plan)
{
	size_t i = r->layers[k];
	*cfg = r->j->fold;
	cfg->seed = r->seeds[k] = r->j->seed_as_is ? r->j->fold.seed
						   : sidecar_layer_seed(r->j->seed, i);
	if (r->j->rope.layout) {
		/* the fold built for the given layout (the file's is interleaved) */
		cfg->layout_set = true;
		cfg->layout = r->j->rope.spec.layout;
	}
	RfStatus st = mla_plan_build(a, cfg, plan);
	if (st != RF_OK) {
		snprintf(r->err, sizeof r->err, "%s: layer %zu: %s", r->j->model_path, i,
			 rf_status_str(st));
		return -1;
	}
	if (sidecar_add_mla_layer(r->record, i, r->seeds[k], cfg, plan) != 0) {
		snprintf(r->err, sizeof r->err, "%s: layer %zu: cannot record the fold", r->j->out, i);
		return -1;
	}
	return 0;
}

/* Fold (or undo) MLA layer k: the plan drawn from its seed (an undo: the
 * inverse of the recorded one), the rewritten tensors stored (their
 * values are row for row the file's); an undo is bit for bit when every
 * tensor's checksum is the original's. */
static int mla_fold_layer(FoldRun *r, size_t k)
{
	size_t i = r->layers[k];
	MlaLayer a, b;
	MlaPlan plan;
	MlaLayerTensors lt;
	FoldConfig cfg;
	double *split = NULL;
	memset(&b, 0, sizeof b);
	memset(&plan, 0, sizeof plan);
	if (model_load_mla_layer(r->m, i, &a, r->err, sizeof r->err))
		return -1;
	int rc = -1;
	if (r->undo ? mla_undo_plan(r, k, &a, &plan) : mla_fold_plan(r, k, &a, &cfg, &plan))
		goto out;
	RfStatus st = mla_fold_apply(&a, &plan, &b);
	if (st != RF_OK) {
		snprintf(r->err, sizeof r->err, "%s: layer %zu: %s", r->j->model_path, i,
			 rf_status_str(st));
		goto out;
	}
	if (mla_tensors(r, k, &lt))
		goto out;
	MlaTensorId ids[MLA_REWRITTEN_MAX];
	size_t n = mla_rewritten(&lt, ids);
	/* the split kv_b's tensors cut from the folded kv_b (per head, k_b
	 * transposed), so each form stores the same rotated rows */
	split = malloc(mla_values_max(&b.shape) * sizeof *split);
	if (!split) {
		snprintf(r->err, sizeof r->err, "%s: layer %zu: out of memory", r->j->model_path, i);
		goto out;
	}
	double rel = 0;
	bool same = true;   /* undo: every tensor written is the original's */
	for (size_t t = 0; t < n; t++) {
		const TensorRef *tr = lt.t[ids[t]];
		const double *vals = mla_values(&b, ids[t], split);
		WriterRounding wr;
		StoreDtype dt;
		if (out_dtype(r, k, tr, &dt) || store_tensor(r, k, tr, dt, vals, NULL, &wr, &same))
			goto out;
		double e = wr.max_abs > 0 ? wr.max_abs_err / wr.max_abs : 0;
		if (e > rel)
			rel = e;
	}
	if (r->undo) {
		r->exact[k] = r->checked && same;
		r->all_exact = r->all_exact && r->exact[k];
	}
	layer_rounding_done(r, k, rel);
	rc = 0;
out:
	free(split);
	mla_plan_free(&plan);
	mla_free(&a);
	mla_free(&b);
	return rc;
}

static int fold_layer(FoldRun *r, size_t k)
{
	size_t i = r->layers[k];
	if (model_mla(r->m))
		return mla_fold_layer(r, k);
	Layer *b = &r->folded;
	FoldPlan plan;
	LayerTensorRefs lt;
	memset(&plan, 0, sizeof plan);
	if (model_reload_layer(r->m, i, &r->in, r->err, sizeof r->err))
		return -1;
	Layer a = r->in;   /* a view: r->in keeps the buffers */
	int rc = -1;
	if (!r->undo)
		rope_override_apply(&r->j->rope, &a.rope);
	if (layer_plan(r, k, &a, &plan) ||
	    model_layer_tensors(r->m, i, &lt, r->err, sizeof r->err))
		goto out;
	RfStatus st = fold_apply_into(&a, &plan, b);
	if (st != RF_OK) {
		snprintf(r->err, sizeof r->err, "%s: layer %zu: %s", r->j->model_path, i,
			 rf_status_str(st));
		goto out;
	}
	if (sidecar_add_layer(r->record, i, r->seeds[k], &plan, &a.rope, 0) != 0) {
		snprintf(r->err, sizeof r->err, "%s: layer %zu: cannot record the rotations",
			 r->j->out, i);
		goto out;
	}
	double rel = 0;
	bool same = true;   /* undo: every tensor written is the original's */
	for (int t = 0; t < ATT_COUNT; t++) {
		const TensorRef *tr = lt.t[t];
		if (!tr || !model_tensor_folded((AttnTensor)t))
			continue;
		if (tr->nelem > r->nvals) {
			free(r->vals);
			r->nvals = 0;
			if (!(r->vals = malloc(tr->nelem * sizeof(double)))) {
				snprintf(r->err, sizeof r->err, "%s: out of memory", tr->name);
				goto out;
			}
			r->nvals = tr->nelem;
		}
		double *v = r->vals;
		WriterRounding wr;
		StoreDtype dt;
		/* a block-quantized input's bound: recorded, and reported */
		QuantBound qb;
		const ResTensor *re = r->res ? residual_plan_find(fold_residual_plan(r->res), tr)
					      : NULL;
		int bad = model_tensor_pack(b, lt.qkv_kind, (AttnTensor)t, v) ||
			  (re && fold_residual_transform(r->res, re, v, r->err, sizeof r->err)) ||
			  out_dtype(r, k, tr, &dt) ||
			  (!r->undo && quant_bound_tensor(tr, &qb, r->err, sizeof r->err)) ||
			  store_tensor(r, k, tr, dt, v, !r->undo && qb.quantized ? &qb : NULL,
				       &wr, &same);
		if (bad)
			goto out;
		double e = wr.max_abs > 0 ? wr.max_abs_err / wr.max_abs : 0;
		if (e > rel)
			rel = e;
		if (!r->undo && (dtype_is_block(dt) || qb.quantized))
			note_quantization(r, &qb, dt, &wr);
	}
	if (put_norms(r, k, &lt, &plan, &same))
		goto out;
	if (r->res) {
		Rewrite rw[MAX_REWRITES];
		size_t nrw;
		if (layer_rewrites(r, k, &lt, rw, &nrw) || res_store(r, k, rw, nrw, &same, &rel))
			goto out;
	}
	if (r->undo && r->checked) {
		r->exact[k] = same;   /* proven either way by the checksums */
		r->all_exact = r->all_exact && same;
	} else if (r->undo) {
		if (undo_exact(r, k, &a, b, &plan, &lt, &r->exact[k]))
			goto out;
		r->all_exact = r->all_exact && r->exact[k];
	}
	layer_rounding_done(r, k, rel);
	rc = 0;
out:
	fold_plan_free(&plan);
	return rc;
}

/* The seed the undone sidecar records for each layer (for the report). */
static void undo_seeds(FoldRun *r)
{
	for (size_t k = 0; k < r->nlayers; k++)
		r->seed_known[k] = sidecar_layer_seed_of(r->undo, r->undo_index[k], &r->seeds[k]);
}

/* The layers to rewrite: --layers, or those the undone sidecar records. */
static int choose_layers(FoldRun *r)
{
	const ModelInfo *in = model_info(r->m);
	if (r->undo) {
		size_t n = sidecar_layer_count(r->undo);
		r->layers = calloc(n ? n : 1, sizeof *r->layers);
		r->undo_index = calloc(n ? n : 1, sizeof *r->undo_index);
		if (!r->layers || !r->undo_index)
			goto nomem;
		for (size_t k = 0; k < n; k++) {
			FoldPlan p;
			size_t li;
			if (mla_undo_layer_index(r, k, &li) < 0)
				return -1;
			if (!model_mla(r->m) && sidecar_layer_plan(r->undo, k, &li, &p, r->err,
								   sizeof r->err))
				return -1;
			if (!model_mla(r->m))
				fold_plan_free(&p);
			if (li >= in->n_layers) {
				snprintf(r->err, sizeof r->err, "%s: layer %zu: the checkpoint has %zu "
					 "layers", r->j->undo, li, in->n_layers);
				return -1;
			}
			for (size_t j = 0; j < r->nlayers; j++) {
				if (r->layers[j] == li) {
					snprintf(r->err, sizeof r->err, "%s: layer %zu recorded twice",
						 r->j->undo, li);
					return -1;
				}
			}
			r->undo_index[r->nlayers] = k;
			r->layers[r->nlayers++] = li;
		}
	} else {
		size_t lo, hi;
		if (layer_range_parse(r->j->layers_flag, r->j->layers, in->n_layers, &lo, &hi, r->err,
				     sizeof r->err))
			return -1;
		r->layers = calloc(hi - lo + 1, sizeof *r->layers);
		if (!r->layers)
			goto nomem;
		for (size_t i = lo; i <= hi; i++)
			r->layers[r->nlayers++] = i;
	}
	r->rel = calloc(r->nlayers ? r->nlayers : 1, sizeof *r->rel);
	r->seeds = calloc(r->nlayers ? r->nlayers : 1, sizeof *r->seeds);
	r->exact = calloc(r->nlayers ? r->nlayers : 1, sizeof *r->exact);
	r->seed_known = calloc(r->nlayers ? r->nlayers : 1, sizeof *r->seed_known);
	if (!r->rel || !r->seeds || !r->exact || !r->seed_known)
		goto nomem;
	if (r->undo)
		undo_seeds(r);
	r->all_exact = r->undo != NULL;
	return 0;
nomem:
	snprintf(r->err, sizeof r->err, "out of memory");
	return -1;
}

static void fold_run_done(FoldRun *r)
{
	checksum_ahead_free(r->ahead);   /* before the model its tensors are in */
	writer_free(r->w);
	fold_residual_free(r->res);
	layer_free(&r->in);
	layer_free(&r->folded);
	free(r->vals);
	sidecar_free(r->undo);
	sidecar_free(r->record);
	if (r->m)
		model_close(r->m);
	free(r->layers);
	free(r->undo_index);
	free(r->rel);
	free(r->seeds);
	free(r->exact);
	free(r->seed_known);
}

/* An undo written over an earlier OUT (--force) leaves no sidecar of that
 * OUT beside it: OUT is now the original. (A folder OUT is replaced whole;
 * the sidecar given to --undo itself is left alone.) */
static void remove_stale_sidecar(FoldRun *r)
{
	const char *sc = writer_sidecar_path(r->w);
	struct stat a, b;
	if (stat(sc, &a) != 0 || !S_ISREG(a.st_mode))
		return;
	if (stat(r->j->undo, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return;
	r->stale_removed = unlink(sc) == 0;
}

/* The sidecar to undo: loaded for this checkpoint's shape and format. */
static int load_undo(FoldRun *r)
{
	const ModelInfo *in = model_info(r->m);
	if (sidecar_load(r->j->undo, &in->shape, &r->undo, r->err, sizeof r->err))
		return -1;
	const char *f = sidecar_format(r->undo), *g = model_format_name(in->format);
	if (strcmp(f, "?") && strcmp(f, g)) {
		snprintf(r->err, sizeof r->err, "%s: records a fold of a %s checkpoint; %s is %s",
			 r->j->undo, f, r->j->model_path, g);
		return -1;
	}
	return 0;
}

/* The residual rotation of the run: the job's (a fold), or the one the
 * undone sidecar records; it rewrites the whole stream, so every layer. */
static int open_residual(FoldRun *r)
{
	const FoldJob *j = r->j;
	const ModelInfo *in = model_info(r->m);
	ResKind kind = j->residual;
	uint64_t seed = j->seed;
	if (r->undo) {
		SidecarResidual sr;
		bool bad;
		if (!sidecar_residual(r->undo, &sr, &bad)) {
			if (!bad)
				return 0;
			snprintf(r->err, sizeof r->err, "%s: its residual entry is malformed",
				 j->undo);
			return -1;
		}
		if (residual_kind_parse(sr.kind, &kind) || kind == RES_NONE ||
		    sr.d_model != in->shape.d_model) {
			snprintf(r->err, sizeof r->err, "%s: records a residual rotation (%s, D %zu) "
				 "this ropefold cannot undo on %s (D %zu)", j->undo, sr.kind,
				 sr.d_model, j->model_path, in->shape.d_model);
			return -1;
		}
		if (!sidecar_has_checksums(r->undo)) {
			/* every sidecar of a residual fold has them: this one was edited */
			snprintf(r->err, sizeof r->err, "%s: records a residual rotation but no "
				 "checksums; not a sidecar this ropefold wrote", j->undo);
			return -1;
		}
		seed = sr.seed;
		r->untied = sr.untied;
	} else if (kind == RES_NONE) {
		return 0;
	}
	if (fold_residual_new(r->m, kind, seed, r->undo, &r->res, r->err, sizeof r->err))
		return -1;
	if (r->nlayers != in->n_layers) {
		snprintf(r->err, sizeof r->err, "%s: --residual rotates the whole residual stream, so "
			 "every layer: not with %s", r->undo ? j->undo : j->model_path,
			 r->undo ? "a sidecar of some layers only" : j->layers_flag ? j->layers_flag
										    : "--layers");
		return -1;
	}
	return 0;
}

/* A tied head cannot stay tied under R1 (it takes the final norm, the
 * embeddings do not): untied in the output where the format allows. */
static int untie_head(FoldRun *r)
{
	if (!r->res || r->undo)
		return 0;
	const ResPlan *p = fold_residual_plan(r->res);
	StoreDtype dt = r->j->store_set ? r->j->store : p->embed ? p->embed->dtype : STORE_F32;
	if (p->tied && !dtype_is_float(dt)) {
		snprintf(r->err, sizeof r->err, "%s: tensor %s is %s: an untied head cannot be "
			 "stored in a block quantization; use --dtype f32", p->embed->file,
			 p->embed->name, p->embed->dtype_name);
		return -1;
	}
	if (fold_residual_untie(r->res, r->w, model_info(r->m)->format, dt, r->err,
				sizeof r->err))
		return -1;
	r->untied = fold_residual_untied(r->res);
	return 0;
}

/* The writer, with the caller's hook before publishing. */
static int open_writer(FoldRun *r)
{
	const FoldJob *j = r->j;
	WriterOptions wo = {j->force, !j->undo, j->undo, j->replace_hint,
			    j->hooks.before_publish, j->hooks.publish_ctx};
	return writer_new(r->m, j->model_path, j->out, &wo, &r->w, r->err, sizeof r->err);
}

static int run(FoldRun *r)
{
	const FoldJob *j = r->j;
	const FoldHooks *hk = &j->hooks;
	if (model_open(j->model_path, &r->m, r->err, sizeof r->err))
		return -1;
	const ModelInfo *in = model_info(r->m);
	if (hk->opened)
		hk->opened(hk->ctx, in);
	if (!j->undo && workload_check_rope(&j->rope, in->shape.head_dim, j->model_path, r->err,
					    sizeof r->err))
		return -1;
	if (model_mla(r->m) && !j->undo && j->rope.rotary_dim) {
		snprintf(r->err, sizeof r->err,
			 "--rotary-dim: %s is DeepSeek MLA, whose rope part is qk_rope_head_dim wide",
			 j->model_path);
		return -1;
	}
	if (j->undo && load_undo(r))
		return -1;
	if (choose_layers(r) || open_residual(r) || open_writer(r) || untie_head(r) ||
	    mark_tensors(r) ||
	    (r->undo && check_undo_input(r)))
		return -1;
	SidecarHead h = {PACKAGE_VERSION, j->model_path, j->out,
			 model_format_name(in->format), j->undo,
			 j->store_set ? dtype_lower_name(j->store) : "keep",
			 j->seed, &j->fold, in->shape, in->rope};
	if (!j->undo)
		rope_override_apply(&j->rope, &h.rope);
	if (!(r->record = sidecar_new(&h))) {
		snprintf(r->err, sizeof r->err, "out of memory");
		return -1;
	}
	if (r->res && !r->undo) {
		SidecarResidual sr = {residual_kind_name(j->residual), j->seed, in->shape.d_model,
				      fold_residual_plan(r->res)->plus_one,
				      fold_residual_untied(r->res), j->vo};
		if (sidecar_set_residual(r->record, &sr)) {
			snprintf(r->err, sizeof r->err, "out of memory");
			return -1;
		}
	}
	if (writer_start(r->w, r->err, sizeof r->err))
		return -1;
	if (hk->started)
		hk->started(hk->ctx);
	/* The untouched bytes are being copied on a thread of their own
	 * meanwhile: BLAS threads beside it would only spin for a core
	 * (sched_yield was 5% of a whole-model fold on two cores). */
	if (!r->undo)
		start_checksums(r, 1);
	int blas = parallel_blas_single();
	for (size_t k = 0; k < r->nlayers; k++) {
		if (fold_layer(r, k) ||
		    (hk->layer_done &&
		     hk->layer_done(hk->ctx, k + 1, r->nlayers, r->err, sizeof r->err))) {
			parallel_blas_restore(blas);
			return -1;
		}
	}
	parallel_blas_restore(blas);
	if (r->res) {
		bool same = true;
		double rel = 0;
		if (res_store(r, SIZE_MAX, NULL, 0, &same, &rel))
			return -1;
		if (rel > r->max_rel)
			r->max_rel = rel;
		if (r->undo)
			r->all_exact = r->all_exact && same && r->checked;
	}
	/* An undo's output is the original checkpoint: no sidecar, which
	 * would describe the inverse fold and invite an undo of the undo. */
	char *text = r->undo ? NULL : sidecar_dump(r->record);
	if (!r->undo && !text) {
		snprintf(r->err, sizeof r->err, "out of memory");
		return -1;
	}
	int rc = writer_commit(r->w, text, r->err, sizeof r->err);
	free(text);
	if (!rc && r->undo)
		remove_stale_sidecar(r);
	return rc;
}

/* What the run did, as far as it got. */
static int fill_outcome(const FoldRun *r, FoldOutcome *res)
{
	memset(res, 0, sizeof *res);
	res->undo = r->j->undo != NULL;
	res->format = r->m ? model_info(r->m)->format : MODEL_FMT_SAFETENSORS;
	res->layers = calloc(r->nlayers ? r->nlayers : 1, sizeof *res->layers);
	if (!res->layers)
		return -1;
	res->nlayers = r->nlayers;
	for (size_t k = 0; k < r->nlayers; k++)
		res->layers[k] = (FoldLayerOutcome){r->layers[k], r->seeds[k],
						    r->seed_known[k], r->rel[k], r->exact[k]};
	res->max_rel_rounding = r->max_rel;
	res->unit_roundoff = r->unit;
	res->bit_for_bit = r->all_exact;
	res->checksums = r->checked;
	res->qk_norm_pinned = r->qk_pairs;
	res->qk_norm_layers = r->qk_layers;
	res->qk_norm_tail = r->qk_tail;
	if (r->w) {
		res->stale_removed = writer_stale_removed(r->w);
		snprintf(res->sidecar, sizeof res->sidecar, "%s", writer_sidecar_path(r->w));
	}
	res->sidecar_removed = r->stale_removed;
	res->residual = r->res ? fold_residual_kind(r->res) : RES_NONE;
	res->residual_tensors = r->res_tensors;
	res->fused_norms = r->res_norms;
	res->untied = r->untied;
	res->quant_as_f16 = r->quant_f16;
	res->quant_types_in = r->quant_in;
	res->quant_out = r->quant_out;
	res->quant_types_out = r->quant_outs;
	res->quant_added_rel = r->quant_added;
	res->quant_own_rel = r->quant_own;
	return 0;
}

int fold_job_run(const FoldJob *job, FoldOutcome *out, char *err, size_t errlen)
{
	FoldRun r;
	memset(&r, 0, sizeof r);
	r.j = job;
	r.quant_out = STORE_COUNT;
	int rc = 0;
	if (!job->model_path || !job->out) {
		snprintf(r.err, sizeof r.err, "a checkpoint and an output path are needed");
		rc = -1;
	} else {
		rc = run(&r);
	}
	if (fill_outcome(&r, out) && !rc) {
		snprintf(r.err, sizeof r.err, "out of memory");
		rc = -1;
	}
	if (rc)
		snprintf(err, errlen, "%s", r.err);
	fold_run_done(&r);
	return rc;
}

void fold_outcome_done(FoldOutcome *out)
{
	free(out->layers);
	out->layers = NULL;
	out->nlayers = 0;
}
