#ifndef ROPEFOLD_DATA_WORKLOAD_H
#define ROPEFOLD_DATA_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/fold.h"
#include "core/layer.h"
#include "core/mla.h"
#include "core/report.h"
#include "core/rope.h"

/* The layer and input an evaluation runs on (check, bench, the explorer):
 * a seeded random layer, or one layer of a checkpoint, with N(0,1) rows
 * or the checkpoint's token embeddings through the layer's input norm.
 * Messages name the flag whose value is at fault (--layer, --seq, ...). */

/* What to build. */
typedef struct {
	const char *model_path;   /* a checkpoint, or NULL: a random layer */
	bool default_model;       /* model_path is the built-in default (the
				   * source then reads "default") */
	size_t layer;             /* of the checkpoint */
	LayerShape shape;         /* of a random layer */
	bool with_bias;           /* a random layer's q/k/v/o biases */
	RopeOverride rope;        /* a random layer's RoPE; the given fields
				   * override a checkpoint's */
	size_t seq;               /* T (with tokens: their count) */
	uint64_t seed;            /* of the layer, the input and the token ids */
	bool embed;               /* token embeddings, not N(0,1) rows */
	const char *tokens;       /* embed: "1,5,9", or NULL for seeded ids */
	Precision precision;      /* of the evaluation (its memory estimate) */
	bool mla;                 /* the random layer is MLA, of mla_shape */
	MlaShape mla_shape;
	/* Called once the checkpoint is open, before its layer is read (a
	 * test stops the process there); NULL for none. */
	void (*opened)(void *ctx);
	void *ctx;
} WorkloadSpec;

/* What an evaluation runs on. */
typedef struct {
	Layer layer;          /* with is_mla: mla's header only (mla_header:
			       * shape and RoPE, no weights) */
	bool is_mla;          /* multi-head latent attention: evaluate mla
			       * (core/mla_inv.h), not layer */
	MlaLayer mla;
	double *x;            /* seq x D */
	size_t seq;
	char source[512];     /* "random", "default" or the path */
	size_t layer_index;
	bool default_model;
	char note[1024];      /* the checkpoint's ModelInfo.note, "" when none */
	/* --rope on a checkpoint: its runtime's layout stays the layer's, and
	 * the fold is built for this one (a wrong one shows as a break) */
	bool fold_layout_set;
	RopeLayout fold_layout;
	size_t mrope_section[3];  /* the checkpoint's M-RoPE pairs per (t, h, w)
				   * section (Qwen2-VL), all 0 when none */
	char r1_refusal[400];     /* why R1 does not apply to the checkpoint's
				   * family (data/residual_tensors.h), "" when
				   * it does or the layer is random */
} Workload;

/* Build the workload spec describes. Returns 0, or -1 with one line in
 * err naming the flag or file at fault (nothing to release then). */
int workload_build(const WorkloadSpec *spec, Workload *w, char *err, size_t errlen);
/* Release a workload. */
void workload_done(Workload *w);
/* Point cfg at the layout a --rope override on a checkpoint asked for. */
void workload_fold_config(const Workload *w, FoldConfig *cfg);

/* The given rotary dim against a checkpoint's head dim (source names it):
 * -1 with one line in err when it exceeds it. */
int workload_check_rope(const RopeOverride *rope, size_t head_dim, const char *source,
			char *err, size_t errlen);

#endif
