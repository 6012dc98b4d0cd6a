#ifndef ROPEFOLD_DATA_SIDECAR_H
#define ROPEFOLD_DATA_SIDECAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/fold.h"
#include "core/layer.h"
#include "core/mla_fold.h"

/* The small JSON written beside a folded checkpoint: what was folded and
 * how, so that the fold can be reproduced or undone (`fold --undo`).
 *
 *   {"tool": "ropefold", "version": "0.1", "kind": "fold" | "undo",
 *    "input": PATH, "output": PATH, "format": "gguf", "undo_of": PATH|null,
 *    "seed": N, "dtype": "keep"|"f32", "checksum": "siphash-2-4",
 *    "fold": {"rotate": "qkvo", "drop": [...], "kind": "haar",
 *             "permute_heads": false, "v_kind": "hadamard" (--vo hadamard
 *             only)},
 *    "shape": {"d_model", "n_heads", "n_kv_heads", "head_dim"},
 *    "rope": {"layout": "half"|"interleaved", "rotary_dim": r},
 *    "layers": [{"layer": i, "seed": s, "rotate_bias": true,
 *                "permutation": [perm of kv groups],
 *                "rotations": {"q": [H], "k": [G], "v": [G], "o": [H]},
 *                "tensors": [{"name", "dtype_in", "dtype_out",
 *                             "checksum_in", "checksum_out",
 *                             "quant_bound_in", "quant_bound_in_frob"}],
 *                "max_rel_rounding": x, "checksum": C}, ...]}
 *
 * Each rotation is {"angles": [r/2 pair angles], "tail": [[...]]} when it
 * commutes with RoPE (tail: the (d-r) x (d-r) block on the non-rotary
 * coordinates, absent when r = d), else {"matrix": [[d x d]]}. The plan
 * arrays follow FoldPlan: folded kv group g holds original group
 * permutation[g]; q/o rotations are per original query head.
 *
 * checksum_in and checksum_out (data/checksum.h, 16 hex digits) are of a
 * rewritten tensor's stored bytes in the input and as written to the
 * output: an undo checks the folded file against checksum_out before it
 * starts and its result against checksum_in. A layer's "checksum" C is of
 * its layer, seed, rotate_bias, permutation and rotations as the JSON
 * holds them (every number by its bits), so that a sidecar whose
 * rotations were edited is refused when it loads. A sidecar without the
 * "checksum" key was written by an older ropefold: it loads, and
 * sidecar_has_checksums() says that nothing can be checked.
 *
 * quant_bound_in and quant_bound_in_frob (only for a tensor whose dtype_in
 * is a block quantization) are the relative bounds of its input's
 * quantization (data/quant_bound.h: QuantBound's rel and rel_frob): the
 * folded values carry that error, which verify of the folded file against
 * the weights before quantization tolerates. */

typedef struct Sidecar Sidecar;

/* What the head of a sidecar records. */
typedef struct {
	const char *version;
	const char *input, *output, *format;
	const char *undo_of;        /* the sidecar undone, or NULL */
	const char *dtype;          /* "keep", "f32" */
	uint64_t seed;
	const FoldConfig *fold;
	LayerShape shape;
	RopeSpec rope;
} SidecarHead;

/* Start a sidecar (NULL when out of memory). */
Sidecar *sidecar_new(const SidecarHead *h);
/* Append MLA layer i folded with plan, drawn by cfg (its seed the
 * layer's): the entry records cfg and the plan's checksum, not the
 * rotations, which mla_plan_build draws again from them:
 *   {"layer": i, "seed": s, "attention": "mla",
 *    "mla": {"rotate", "drop", "kind", "permute_heads",
 *            "layout": name (the fold built for a layout given) | null,
 *            "plan": checksum of the plan's numbers by their bits},
 *    "tensors": [...], "max_rel_rounding": x, "checksum": C}
 * C covers layer, seed, attention and mla. */
int sidecar_add_mla_layer(Sidecar *s, size_t layer, uint64_t seed, const FoldConfig *cfg,
			  const MlaPlan *plan);
/* The checksum of an MLA plan: its sizes, permutation and every number. */
uint64_t sidecar_mla_plan_sum(const MlaPlan *plan);
/* Whether the k-th recorded layer is an MLA fold. */
bool sidecar_layer_is_mla(const Sidecar *s, size_t k);
/* The configuration (seed included) that drew the k-th layer's MLA fold,
 * its layer index and its plan's checksum; -1 with one line in err for a
 * layer that is not an MLA fold or records only its seed. */
int sidecar_mla_config(const Sidecar *s, size_t k, size_t *layer, FoldConfig *cfg,
		       uint64_t *plan_sum, char *err, size_t errlen);
/* Append layer i folded with plan (rotations described under rope). */
int sidecar_add_layer(Sidecar *s, size_t layer, uint64_t seed, const FoldPlan *plan,
		      const RopeSpec *rope, double max_rel_rounding);
/* What the sidecar records of one rewritten tensor. */
typedef struct {
	const char *name;
	const char *dtype_in, *dtype_out;   /* "F32", "BF16", ... */
	uint64_t sum_in, sum_out;           /* checksums of the stored bytes */
	double quant_in, quant_in_frob;     /* dtype_in's quantization bound,
					     * relative (0: none recorded) */
} SidecarTensor;

/* Record a rewritten tensor of the last layer added. */
int sidecar_add_tensor(Sidecar *s, const SidecarTensor *t);
/* Set max_rel_rounding of the last layer added. */
void sidecar_set_rounding(Sidecar *s, double max_rel_rounding);
/* The JSON text (free it). */
char *sidecar_dump(const Sidecar *s);
/* Release. */
void sidecar_free(Sidecar *s);

/* Read a sidecar and check it against a model's shape (rotations are
 * rebuilt in the RoPE layout and rotary dim the sidecar records). Refused:
 * a path that cannot be opened or is not a regular file, JSON that is not
 * a ropefold sidecar, no layers, a tensor entry without its names or
 * (when the sidecar has checksums) without both checksums. */
int sidecar_load(const char *path, const LayerShape *shape, Sidecar **out, char *err,
		 size_t errlen);
/* Layers recorded (at least one once loaded). */
size_t sidecar_layer_count(const Sidecar *s);
/* True when the sidecar records checksums (written by this version). */
bool sidecar_has_checksums(const Sidecar *s);
/* Tensors recorded for the k-th layer, and the i-th of them (its checksums
 * 0 when the sidecar has none). */
size_t sidecar_tensor_count(const Sidecar *s, size_t k);
void sidecar_tensor_get(const Sidecar *s, size_t k, size_t i, SidecarTensor *out);
/* The entry for tensor name in the k-th layer: 0, or -1 when not recorded. */
int sidecar_tensor_find(const Sidecar *s, size_t k, const char *name, SidecarTensor *out);
/* The seed recorded for the k-th layer: false when none is. */
bool sidecar_layer_seed_of(const Sidecar *s, size_t k, uint64_t *seed);
/* The layer index the k-th entry records: false when it records none. */
bool sidecar_layer_index(const Sidecar *s, size_t k, size_t *layer);
/* The plan of the k-th recorded layer (its layer index in *layer). */
int sidecar_layer_plan(const Sidecar *s, size_t k, size_t *layer, FoldPlan *plan,
		       char *err, size_t errlen);
/* dtype_in recorded for tensor name in the k-th layer, or NULL. */
const char *sidecar_tensor_dtype_in(const Sidecar *s, size_t k, const char *name);
/* The recorded seed, fold configuration and format. */
uint64_t sidecar_seed(const Sidecar *s);
const char *sidecar_format(const Sidecar *s);

/* A distinct seed per layer, derived from the base seed (63 bits). */
uint64_t sidecar_layer_seed(uint64_t base, size_t layer);

/* ---- the residual frame (fold --residual) ----------------------------------
 * "residual": {"kind": "hadamard"|"haar", "seed": N, "d_model": D,
 *              "norm_plus_one": b, "untied": b, "vo": "hadamard"|"haar"|null,
 *              "norms": [{"name", "values": [D, as stored before]}],
 *              "tensors": [model-level tensors, as a layer's],
 *              "checksum": C}     (of everything but "tensors": an edited
 *                                  entry is refused when it loads)
 * R1 is drawn again from kind, seed and D (core/residual.h); the norms
 * record the weights fused into their readers, which the undo divides out
 * and stores back. Each layer's MLP tensors, norms and b_o are recorded in
 * the layer's own "tensors". */
typedef struct {
	const char *kind;           /* core's residual_kind_name */
	uint64_t seed;
	size_t d_model;
	bool plus_one;
	bool untied;
	const char *vo;             /* --vo's kind, or NULL */
} SidecarResidual;

/* Record the residual rotation (once, before its norms and tensors). */
int sidecar_set_residual(Sidecar *s, const SidecarResidual *r);
/* Record the stored values (n) of a norm fused into its readers. */
int sidecar_add_norm(Sidecar *s, const char *name, const double *v, size_t n);
/* Record a rewritten model-level tensor (embeddings, final norm, head). */
int sidecar_add_model_tensor(Sidecar *s, const SidecarTensor *t);
/* The residual rotation recorded: false when the sidecar has none (or it
 * is malformed: *bad is then set). Strings borrowed from s. */
bool sidecar_residual(const Sidecar *s, SidecarResidual *out, bool *bad);
/* The recorded values of norm name into v (n): 0, or -1 when not recorded
 * with n finite values. */
int sidecar_norm_values(const Sidecar *s, const char *name, double *v, size_t n);
/* Model-level tensors recorded, the i-th, and the one named. */
size_t sidecar_model_tensor_count(const Sidecar *s);
void sidecar_model_tensor_get(const Sidecar *s, size_t i, SidecarTensor *out);
int sidecar_model_tensor_find(const Sidecar *s, const char *name, SidecarTensor *out);

#endif
