#ifndef ROPEFOLD_CORE_ATTENTION_H
#define ROPEFOLD_CORE_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>

#include "core/fold.h"
#include "core/fold_changes.h"
#include "core/layer.h"
#include "core/report.h"
#include "core/rope.h"
#include "core/status.h"

/* How an engine computes the per-head outputs O_h = C_h W_o,h^T and
 * their comparison. The choice is the caller's (a front end may read it
 * from the environment); the results agree to rounding. */
typedef enum {
	ATTN_KERNEL_AUTO = 0,  /* the fused AVX-512 kernel where the CPU has
				* it (attention_kernel_fused()), else BLAS */
	ATTN_KERNEL_BLAS       /* library GEMMs, on every CPU */
} AttnKernel;

/* Evaluate the layers a (original) and b (folded) on the same input x
 * (T x D) in the given precision, one query head at a time, and fill the
 * error fields of the report: each level's max_abs_err, ref_max and worst
 * location, the score error by offset, per head, and the heatmap bins.
 * Verdicts and predictions are levels.c's job. */
RfStatus attention_compare(const Layer *a, const Layer *b, const double *x,
			   size_t T, Precision prec, const RopeTable *rope,
			   InvReport *rep);
/* attention_compare() with the output kernel chosen. */
RfStatus attention_compare_kernel(const Layer *a, const Layer *b,
				  const double *x, size_t T, Precision prec,
				  const RopeTable *rope, AttnKernel kernel,
				  InvReport *rep);

/* One side alone: y = x + concat_h(C_h) W_o^T + b_o (T x D), and, when
 * scores is not NULL, head h's raw scores (T x T, zero above the
 * diagonal). float64 only: for tests and the reference path. */
RfStatus attention_forward(const Layer *l, const double *x, size_t T,
			   const RopeTable *rope, double *y, size_t h,
			   double *scores);

/* attention_forward's q (T x H*d) and k (T x G*d) before the scores:
 * projected, biased, QK-normed and turned by RoPE (row t at position t). */
RfStatus attention_forward_qk(const Layer *l, const double *x, size_t T,
			      const RopeTable *rope, double *q, double *k);

/* The engine behind attention_compare, for repeated comparisons of one
 * original layer a on one input x against its folds, which change a
 * little at a time (the TUI's toggles). The folded side is src (usually a
 * itself) with a FoldPlan's rotations folded in by the engine, head by
 * head into small scratch blocks, so no folded copy of the layer is ever
 * built. It keeps the original side's projections, contexts, attention
 * update and, within cache_bytes, its per-head outputs O_h; and the
 * folded side's per-head results of the heads a run's FoldChanges leave
 * untouched. Buffers are allocated once here. a, x and rope must outlive
 * the engine; use from one thread at a time (it starts and joins its own
 * worker threads inside a run). */
typedef struct AttnEngine AttnEngine;

/* Start an engine; threads 0 means parallel_default_threads(); kernel:
 * how the per-head outputs are computed. The engine itself lives in
 * core/engine/ (template.h walks through a run). */
RfStatus attention_engine_new(const Layer *a, const double *x, size_t T,
			      Precision prec, const RopeTable *rope,
			      size_t threads, size_t cache_bytes,
			      AttnKernel kernel, AttnEngine **out);
/* The same in place of *e (NULL: none), which is ended: an engine of the
 * same precision hands over its big buffers of the same sizes (at 8B
 * scale a float32 engine's weight copies are 336 MB a layer, whose first
 * touch a VM charges again each time). Only *e's buffers are used, not
 * its layer, input or RoPE table, which may be gone. *e is NULL after a
 * failure. */
RfStatus attention_engine_renew(AttnEngine **e, const Layer *a, const double *x, size_t T,
				Precision prec, const RopeTable *rope, size_t threads,
				size_t cache_bytes, AttnKernel kernel);
/* Compare a with src folded by plan (plan NULL: src as it is), in the
 * engine's precision (float32 folds in float32), recomputing what c
 * flags (the first run, and the first after a reset, recompute
 * everything). Fills the error fields of rep as attention_compare()
 * does. src must have a's shape. */
RfStatus attention_engine_run(AttnEngine *e, const Layer *src,
			      const FoldPlan *plan, const FoldChanges *c,
			      InvReport *rep);
/* Forget every cached result (keeps the buffers). */
void attention_engine_reset(AttnEngine *e);
/* Floating-point operations (2mnk per matrix product, the folding
 * included) of the last run. */
double attention_engine_flops(const AttnEngine *e);
/* The parts of a run, timed apart. */
typedef enum {
	ATTN_PHASE_FOLD,    /* folding (and float: converting) the weights */
	ATTN_PHASE_PROJ,    /* q, k, v projections of both sides */
	ATTN_PHASE_POST,    /* bias, QK-norm, RoPE */
	ATTN_PHASE_HEADS,   /* scores, their comparison, softmax, contexts */
	ATTN_PHASE_OUT,     /* per-head outputs, their comparison, residual */
	ATTN_PHASE_COUNT
} AttnPhase;
/* Wall-clock seconds of each part of the last run. */
void attention_engine_seconds(const AttnEngine *e, double sec[ATTN_PHASE_COUNT]);
/* The worker threads an engine uses. */
size_t attention_engine_threads(const AttnEngine *e);
/* End an engine. */
void attention_engine_free(AttnEngine *e);

/* Whether this CPU runs the fused AVX-512 output kernel, which engines
 * of ATTN_KERNEL_AUTO then use. */
bool attention_kernel_fused(void);

/* The products of one full fold and comparison of a layer shape at T
 * tokens (what a first run performs), in floating-point operations. */
double attention_cold_flops(const LayerShape *s, size_t T);

#endif
