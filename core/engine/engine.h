#ifndef ROPEFOLD_CORE_ENGINE_ENGINE_H
#define ROPEFOLD_CORE_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/attention.h"

/* The evaluation engine behind core/attention.h's AttnEngine, built once
 * per compute precision: engine_f64.c and engine_f32.c each compile the
 * phases (template.h) with REAL set to their type and export one table of
 * entry points. attention.c picks the table of the precision asked for;
 * nothing outside core/engine/ sees REAL. */

/* Blocking shared with attention.c (the flop count follows the causal
 * row blocks). */
#define SCORE_BLOCK 128   /* causal row block of scores and contexts */

/* One precision's engine; impl is that precision's private state. */
typedef struct {
	/* Buffers for comparing a on x (T x D); fused: the per-head outputs
	 * by the fused AVX-512 kernel (the caller checked the CPU has it).
	 * prev, an engine of this table about to be closed, or NULL: its
	 * big buffers of the same sizes are taken over instead of mapped
	 * afresh. */
	RfStatus (*open)(const Layer *a, const double *x, size_t T,
			 const RopeTable *rope, size_t threads,
			 size_t cache_bytes, bool fused, void *prev, void **impl);
	/* One comparison, as attention_engine_run(). */
	RfStatus (*run)(void *impl, const Layer *src, const FoldPlan *plan,
			const FoldChanges *c, InvReport *rep);
	/* Forget the cached results. */
	void (*reset)(void *impl);
	/* Flops and phase seconds of the last run. */
	double (*flops)(const void *impl);
	void (*seconds)(const void *impl, double sec[ATTN_PHASE_COUNT]);
	/* Release everything (impl NULL: nothing). */
	void (*close)(void *impl);
} EngineOps;

extern const EngineOps engine_ops_f64;
extern const EngineOps engine_ops_f32;

#endif
