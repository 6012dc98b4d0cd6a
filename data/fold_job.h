#ifndef ROPEFOLD_DATA_FOLD_JOB_H
#define ROPEFOLD_DATA_FOLD_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/fold.h"
#include "core/residual.h"
#include "core/rope.h"
#include "data/model.h"

/* Writing a folded checkpoint, or undoing one, as one call: open the
 * checkpoint, choose the layers (the job's, or those the undone sidecar
 * records), open the writer and mark the tensors a fold rewrites, check
 * that an undone sidecar describes the folded file, then per layer load,
 * fold (or undo) and store, the undo's identity checked by checksums or
 * proven by core/undo_proof; last the sidecar and the commit. `ropefold
 * fold`, the explorer's :export and the tests all run it; nothing is
 * printed. Every error is one line naming the file, tensor or flag at
 * fault, and nothing is left half-written (data/writer.h). */

/* What the caller sees of a run as it goes; every member may be NULL. */
typedef struct {
	void *ctx;
	/* The checkpoint is open (its info, and its note for the user). */
	void (*opened)(void *ctx, const ModelInfo *info);
	/* Every byte is copied into the temporaries; no layer is read yet. */
	void (*started)(void *ctx);
	/* done of total layers are stored: -1 (with one line in err) stops
	 * the run (progress, and the test suite's injected failures). */
	int (*layer_done)(void *ctx, size_t done, size_t total, char *err, size_t errlen);
	/* Every temporary is complete, nothing is published yet: -1 (with one
	 * line in err) fails the commit (data/writer.h, for tests). */
	int (*before_publish)(void *ctx, char *err, size_t errlen);
	void *publish_ctx;          /* before_publish's own context */
} FoldHooks;

/* What to write. */
typedef struct {
	const char *model_path;     /* the checkpoint read (the folded one, to undo) */
	const char *out;            /* the checkpoint written */
	FoldConfig fold;            /* the fold (an undo reads it from the sidecar) */
	uint64_t seed;              /* layer i draws from sidecar_layer_seed(seed, i) */
	bool seed_as_is;            /* every layer draws from fold.seed itself (the
				     * explorer's rotations, exactly as shown) */
	RopeOverride rope;          /* RoPE fields given: the fold is built for them */
	const char *layers;         /* "all", "N" or "N..M" (NULL: all) */
	const char *layers_flag;    /* the flag it came from, for messages (NULL: --layers) */
	bool store_set;             /* store rotated tensors as store, not their own
				     * (a block-quantized one's own is F16) */
	StoreDtype store;           /* a float type, or a block quantization
				     * (GGUF only; the rotated values quantized) */
	const char *undo;           /* a sidecar whose fold to undo, or NULL */
	bool force;                 /* replace an existing output */
	const char *replace_hint;   /* how the caller asks for force, for the message
				     * refusing an existing output, or NULL */
	FoldHooks hooks;
	ResKind residual;           /* R1 of the whole residual stream, drawn from
				     * seed, with the norms fused (core/residual.h);
				     * RES_NONE: none. Every layer is rewritten. */
	const char *vo;             /* --vo as given (fold.v_hadamard and the V/O
				     * parts say what it does), for the record, or NULL */
} FoldJob;

/* One layer written. */
typedef struct {
	size_t layer;               /* index in the checkpoint */
	uint64_t seed;              /* drawn, or (undo) as the sidecar records it */
	bool seed_known;            /* undo: the sidecar records a seed */
	double max_rel_rounding;    /* fold: worst relative rounding of its tensors */
	bool bit_for_bit;           /* undo: provably the values stored before the fold */
} FoldLayerOutcome;

/* What a run did (filled as far as it got; fold_outcome_done releases it). */
typedef struct {
	bool undo;
	ModelFormat format;
	FoldLayerOutcome *layers;
	size_t nlayers;
	double max_rel_rounding;    /* fold: over every layer */
	double unit_roundoff;       /* of the coarsest dtype rotated tensors are stored in */
	bool bit_for_bit;           /* undo: every layer */
	bool checksums;             /* undo: the sidecar records checksums, so the folded
				     * file was checked against it and bit_for_bit is
				     * decided by them (else by the rounding bound) */
	size_t qk_norm_pinned;      /* RoPE pairs held to 0 or pi for a learned QK-norm
				     * (fold.qk_norm_exact), summed over layers */
	size_t qk_norm_layers;      /* layers with such pairs or a held tail */
	bool qk_norm_tail;          /* some non-rotary block held to sign flips */
	size_t stale_removed;       /* temporaries of runs that died, removed */
	char sidecar[4200];         /* where OUT's sidecar goes (written by a fold) */
	bool sidecar_removed;       /* undo: OUT's old sidecar (above) was removed */
	ResKind residual;           /* the residual rotation written or undone */
	size_t residual_tensors;    /* tensors it rewrote beyond attention's fold */
	size_t fused_norms;         /* norms fused into their readers (or restored) */
	bool untied;                /* the fold untied the head (an undo leaves it
				     * untied: a copy of the embeddings) */
	/* Block-quantized input (a fold): the rotated values are off the
	 * blocks' grids. */
	size_t quant_as_f16;        /* such tensors stored as F16 (no --dtype) */
	unsigned quant_types_in;    /* bit 1u << t: their block types */
	StoreDtype quant_out;       /* --dtype's block type they were quantized
				     * to, STORE_COUNT for none */
	unsigned quant_types_out;   /* bit 1u << t: every block type quantized to
				     * (an undo: the originals' types) */
	double quant_added_rel;     /* worst relative (Frobenius) error that
				     * quantizing them added */
	double quant_own_rel;       /* worst relative (Frobenius) bound of the
				     * input's own quantization of them */
} FoldOutcome;

/* Run the job. 0, or -1 with one line in err. out is filled either way. */
int fold_job_run(const FoldJob *job, FoldOutcome *out, char *err, size_t errlen);
/* Release an outcome. */
void fold_outcome_done(FoldOutcome *out);

#endif
