#ifndef ROPEFOLD_CORE_ENGINE_TEMPLATE_H
#define ROPEFOLD_CORE_ENGINE_TEMPLATE_H

/* The evaluation engine, written once for both precisions: engine_f64.c
 * and engine_f32.c each define ENGINE_F64 and include this file, so each
 * precision is its own translation unit and the phases below use plain
 * names (Engine, Worker, scores(), ...) and the type REAL (real.h).
 *
 * One run compares the original layer a with its fold: the layer src
 * (usually a itself) with a FoldPlan's rotations folded in, head by head,
 * into small scratch blocks, so the folded side is evaluated from folded
 * weights as a runtime would, without a second copy of the layer. The
 * files, in the order a run goes through them:
 *
 *   state.h      the engine's buffers and per-worker scratch (shapes)
 *   buffers.h    allocating and releasing them
 *   project.h    C  float only, cold runs: a's weights converted once.
 *                P  projections q, k, v of both sides. The original's as a
 *                   few wide GEMMs x W^T; the folded side's per chunk of
 *                   heads: W'_h = R_h W_h into the worker's scratch, then
 *                   x W'^T. Then bias, QK-norm and RoPE, row blocks.
 *   vec.h        the vector helpers of the comparison loops
 *   heads.h      S  per query head, on one worker: scores of both sides
 *                   (causal row blocks only), the score comparison, the
 *                   fused mask + softmax, and the contexts C_h = P v_g.
 *   outputs.h    O  per block of model coordinates (all tokens), on one
 *                   worker, head after head: the folded block
 *                   W'_o,h^T = R_o,h W_o,h^T of those coordinates, both
 *                   sides' O_h = C_h W_o,h^T, compared while in cache and
 *                   summed into the attention update U = sum_h O_h (in
 *                   head order, whatever the threads), then the residual
 *                   y = x + U + b_o compared. U is not a second output
 *                   projection: it is the sum the head level computes.
 *                   Two kernels behind one function pointer: library
 *                   GEMMs, or outputs_fused.h's AVX-512 kernel.
 *   merge.h      the workers' partial results merged into the engine's
 *   report.h     the engine's per-head results into the InvReport
 *   run.h        what a run recomputes, the phases on the workers, and
 *                the entry points this unit exports (engine.h)
 *
 * What does not change across runs is kept: the original side's
 * projections, contexts, U and (as memory allows) every O_h; and the
 * folded side's projections, contexts and per-head results of the heads a
 * toggle did not touch. */

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "core/attention.h"
#include "core/engine/engine.h"
#include "core/engine/real.h"
#include "core/parallel.h"
#include "core/timer.h"
#include "core/workspace.h"

#include "core/engine/state.h"
#include "core/engine/outputs_fused.h"
#include "core/engine/buffers.h"
#include "core/engine/project.h"
#include "core/engine/vec.h"
#include "core/engine/heads.h"
#include "core/engine/outputs.h"
#include "core/engine/merge.h"
#include "core/engine/report.h"
#include "core/engine/run.h"

#endif
