#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "data/fold_residual.h"

struct FoldResidual {
	ResPlan plan;
	ResKind kind;
	uint64_t seed;
	double *R;               /* D x D, row-major */
	const Sidecar *undo;     /* the undone sidecar (its norms), or NULL */
	double *w, *stored;      /* D each: scratch for a norm's weights */
	bool untied;             /* a head was added */
};

int fold_residual_new(const Model *m, ResKind kind, uint64_t seed, const Sidecar *undo,
		      FoldResidual **out, char *err, size_t errlen)
{
	*out = NULL;
	FoldResidual *fr = calloc(1, sizeof *fr);
	if (!fr) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fr->kind = kind;
	fr->seed = seed;
	fr->undo = undo;
	if (residual_plan_build(m, &fr->plan, err, errlen)) {
		free(fr);
		return -1;
	}
	size_t D = fr->plan.D;
	fr->R = malloc(D * D * sizeof(double));
	fr->w = malloc(D * sizeof(double));
	fr->stored = malloc(D * sizeof(double));
	if (!fr->R || !fr->w || !fr->stored) {
		snprintf(err, errlen, "out of memory");
		fold_residual_free(fr);
		return -1;
	}
	RfStatus st = residual_rotation(kind, D, seed, fr->R);
	if (st != RF_OK) {
		snprintf(err, errlen, "--residual %s: %s", residual_kind_name(kind),
			 rf_status_str(st));
		fold_residual_free(fr);
		return -1;
	}
	*out = fr;
	return 0;
}

void fold_residual_free(FoldResidual *fr)
{
	if (!fr)
		return;
	residual_plan_free(&fr->plan);
	free(fr->R);
	free(fr->w);
	free(fr->stored);
	free(fr);
}

const ResPlan *fold_residual_plan(const FoldResidual *fr)
{
	return &fr->plan;
}

ResKind fold_residual_kind(const FoldResidual *fr)
{
	return fr->kind;
}

uint64_t fold_residual_seed(const FoldResidual *fr)
{
	return fr->seed;
}

/* The stored values of norm t before any fold: from the checkpoint (a
 * fold), from the sidecar (an undo) into fr->stored. */
static int norm_stored(FoldResidual *fr, const TensorRef *t, char *err, size_t errlen)
{
	size_t D = fr->plan.D;
	if (!fr->undo)
		return tensor_read(t, 0, D, fr->stored, err, errlen);
	if (sidecar_norm_values(fr->undo, t->name, fr->stored, D)) {
		snprintf(err, errlen, "the sidecar records no %zu values of norm %s, which the "
			 "fold fused", D, t->name);
		return -1;
	}
	return 0;
}

bool fold_residual_by_rows(const ResTensor *e)
{
	return e->role == RES_ROLE_EMBED || e->role == RES_ROLE_READER;
}

int fold_residual_transform(FoldResidual *fr, const ResTensor *e, double *v, char *err,
			    size_t errlen)
{
	return fold_residual_transform_part(fr, e, v, e->t->nelem, err, errlen);
}

int fold_residual_transform_part(FoldResidual *fr, const ResTensor *e, double *v, size_t n,
				 char *err, size_t errlen)
{
	size_t D = fr->plan.D;
	const double *w = NULL;
	if (e->role == RES_ROLE_READER || (e->role == RES_ROLE_NORM && fr->undo)) {
		const TensorRef *nt = e->role == RES_ROLE_NORM ? e->t : e->norm;
		if (norm_stored(fr, nt, err, errlen))
			return -1;
		if (e->role == RES_ROLE_READER) {
			residual_fused_weight(fr->stored, D, fr->plan.plus_one, fr->w);
			w = fr->w;
		} else {
			w = fr->stored;
		}
	}
	if (n != e->t->nelem && !fold_residual_by_rows(e)) {
		snprintf(err, errlen, "%s: tensor %s: cannot be rotated in parts", e->t->file,
			 e->t->name);
		return -1;
	}
	RfStatus st = fr->undo ? residual_unapply(e->role, fr->R, D, e->batch, w, v, n)
			       : residual_apply(e->role, fr->R, D, e->batch, w,
						residual_norm_one(fr->plan.plus_one), v, n);
	if (st != RF_OK) {
		snprintf(err, errlen, "%s: tensor %s: %s%s", e->t->file, e->t->name,
			 rf_status_str(st), st == RF_ERR_NUMERIC ? " (a fused norm weight of 0 "
			 "cannot be divided out)" : "");
		return -1;
	}
	return 0;
}

int fold_residual_values(FoldResidual *fr, const ResTensor *e, double **v, char *err,
			 size_t errlen)
{
	*v = malloc(e->t->nelem * sizeof(double));
	if (!*v) {
		snprintf(err, errlen, "%s: out of memory", e->t->name);
		return -1;
	}
	if (tensor_read(e->src ? e->src : e->t, 0, e->t->nelem, *v, err, errlen) ||
	    fold_residual_transform(fr, e, *v, err, errlen)) {
		free(*v);
		*v = NULL;
		return -1;
	}
	return 0;
}

/* ---- untying a tied head --------------------------------------------------- */

/* config.json with tie_word_embeddings false (also in a nested
 * text_config that states it). */
static int untie_config(Writer *w, char *err, size_t errlen)
{
	const char *src = writer_aux_src(w, "config.json");
	if (!src) {
		snprintf(err, errlen, "--residual: the head must be untied, and there is no "
			 "config.json to say so");
		return -1;
	}
	json_error_t je;
	json_t *root = json_load_file(src, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(err, errlen, "%s: line %d: %s", src, je.line, je.text);
		return -1;
	}
	json_object_set_new(root, "tie_word_embeddings", json_false());
	json_t *tc = json_object_get(root, "text_config");
	if (json_is_object(tc) && json_object_get(tc, "tie_word_embeddings"))
		json_object_set_new(tc, "tie_word_embeddings", json_false());
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
	json_decref(root);
	char *nl = text ? malloc(strlen(text) + 2) : NULL;
	if (!nl) {
		free(text);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sprintf(nl, "%s\n", text);
	free(text);
	int rc = writer_set_aux_text(w, "config.json", nl, err, errlen);
	free(nl);
	return rc;
}

/* A sharded folder's index: the new head in the embeddings' shard. */
static int untie_index(Writer *w, const char *embed, const char *head, char *err,
		       size_t errlen)
{
	const char *src = writer_aux_src(w, "model.safetensors.index.json");
	if (!src)
		return 0;
	json_error_t je;
	json_t *root = json_load_file(src, JSON_REJECT_DUPLICATES, &je);
	json_t *map = json_object_get(root, "weight_map");
	json_t *shard = json_object_get(map, embed);
	if (!json_is_object(map) || !json_is_string(shard)) {
		json_decref(root);
		snprintf(err, errlen, "%s: no weight_map entry for %s", src, embed);
		return -1;
	}
	json_object_set_new(map, head, json_string(json_string_value(shard)));
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = writer_set_aux_text(w, "model.safetensors.index.json", text, err, errlen);
	free(text);
	return rc;
}

int fold_residual_untie(FoldResidual *fr, Writer *w, ModelFormat format, StoreDtype dtype,
			char *err, size_t errlen)
{
	ResPlan *p = &fr->plan;
	if (!p->tied)
		return 0;
	const TensorRef *e = p->embed, *head;
	const char *name = format == MODEL_FMT_SAFETENSORS ? "lm_head.weight" : "output.weight";
	if (writer_add_tensor(w, e, name, format == MODEL_FMT_LLAMA2C ? STORE_F32 : dtype, &head,
			      err, errlen))
		return -1;
	if (format == MODEL_FMT_LLAMA2C) {
		/* header: 7 int32, vocab_size the 6th; negative = own classifier */
		int32_t v = -(int32_t)e->shape[0];
		unsigned char b[4];
		for (int i = 0; i < 4; i++)
			b[i] = (unsigned char)((uint32_t)v >> (8 * i));
		if (writer_patch(w, e, 20, b, 4, err, errlen))
			return -1;
	} else if (format == MODEL_FMT_SAFETENSORS &&
		   (untie_config(w, err, errlen) || untie_index(w, e->name, name, err, errlen))) {
		return -1;
	}
	ResTensor *nv = realloc(p->v, (p->n + 1) * sizeof *nv);
	if (!nv) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->v = nv;
	p->v[p->n++] = (ResTensor){head, RES_ROLE_READER, p->final_norm, RES_MODEL_LEVEL, 1, e,
				    "head", RES_NO_EXPERT};
	p->tied = false;
	fr->untied = true;
	return 0;
}

bool fold_residual_untied(const FoldResidual *fr)
{
	return fr->untied;
}
