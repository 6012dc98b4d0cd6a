#ifndef ROPEFOLD_DATA_FAMILIES_H
#define ROPEFOLD_DATA_FAMILIES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"
#include "data/reader.h"

/* How the q, k and v projections are stored. */
typedef enum {
	QKV_SPLIT = 0,        /* three tensors */
	QKV_FUSED,            /* one tensor, rows [q (H*d); k (G*d); v (G*d)] */
	QKV_FUSED_PER_HEAD    /* GPT-NeoX: per head h rows [q_h; k_h; v_h], d each */
} QkvKind;

/* The tensor names of one naming scheme: prefix + layers + N + suffix. */
typedef struct {
	const char *name;         /* "hf", "hf-fused", "gpt-neox", "gguf", "meta" */
	const char *layers;       /* "layers." or "blk." */
	const char *q, *k, *v, *qkv, *o;
	const char *bq, *bk, *bv, *bqkv, *bo;
	const char *q_norm, *k_norm;
	const char *attn_norm, *attn_norm_bias;
	const char *embed;        /* after the prefix */
	QkvKind qkv_kind;
	NormKind norm_kind;
	bool interleaved;         /* the scheme implies interleaved RoPE (Meta) */
} FamilyNames;

/* A resolved family: names, shape and RoPE of the checkpoint. */
typedef struct {
	const FamilyNames *names;
	char prefix[128];         /* before the layers word: "model.", "" */
	size_t n_layers;
	LayerShape shape;
	RopeSpec rope;            /* of a global layer */
	double theta_local;       /* Gemma 3 sliding layers (0 = none) */
	const unsigned char *layer_bits;  /* hp's HP_LAYER_* per layer, or NULL */
	size_t sliding_window;    /* of the sliding layers, 0 = none */
	double attn_softcap;      /* Gemma 2, 0 = none */
	double score_scale;       /* 0 = 1/sqrt(d) */
	double norm_eps, qk_norm_eps;
	bool norm_plus_one;
	bool embed_scale_sqrt_d;
	NormKind norm_kind;
	QkvKind qkv_kind;         /* as stored in this file */
} Family;

/* Find the naming scheme from the tensor names and combine it with hp into
 * fam. where names the checkpoint in messages. Returns 0 or -1 with err. */
int family_resolve(const TensorTable *tt, const Hparams *hp, const char *where,
		   Family *fam, char *err, size_t errlen);
/* The full name of a per-layer tensor (suffix from fam->names), "" when the
 * scheme has no such tensor. */
void family_tensor_name(const Family *fam, size_t layer, const char *suffix,
			char *buf, size_t len);
/* The RoPE of layer i (Gemma 3 uses a local base on sliding layers). */
RopeSpec family_layer_rope(const Family *fam, size_t i);
/* Whether layer i is of the sliding kind, and the window it attends in
 * (0 = every earlier key). */
bool family_layer_sliding(const Family *fam, size_t i);
size_t family_layer_window(const Family *fam, size_t i);
/* Whether layer i has experts instead of a dense MLP. */
bool family_layer_sparse(const Family *fam, size_t i);
/* The router tensor suffix of a sparse layer of this scheme (found in tt
 * for layer i), or NULL. */
const char *family_router_suffix(const Family *fam, const TensorTable *tt, size_t i);

#endif
