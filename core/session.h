#ifndef ROPEFOLD_CORE_SESSION_H
#define ROPEFOLD_CORE_SESSION_H

#include <stddef.h>

#include "core/attention.h"
#include "core/fold.h"
#include "core/layer.h"
#include "core/report.h"
#include "core/status.h"

/* What an evaluation compares on. */
typedef struct {
	size_t seq;           /* T */
	Precision precision;
	double tol;           /* <= 0: levels_default_tol(precision) */
	size_t threads;       /* worker threads; 0: parallel_default_threads() */
	AttnKernel kernel;    /* of the per-head outputs; 0: the fused kernel
			       * where the CPU has it */
} EvalOptions;

/* An evaluation session over one original layer and one input: it keeps
 * what a toggle does not change, so the TUI re-evaluates cheaply.
 * Call sequence: inv_session_new, then inv_session_evaluate any number of
 * times with any FoldConfig, then inv_session_free. The layer and x must
 * outlive the session. A session holds no global state: use it from one
 * thread at a time (any thread; evaluations start their own workers). */
typedef struct InvSession InvSession;

/* Start a session on layer l with input x (opt->seq x D, row-major). */
RfStatus inv_session_new(const Layer *l, const double *x,
			 const EvalOptions *opt, InvSession **out);
/* Fold by cfg, evaluate both sides, compare, diagnose, explain. rep is
 * initialised here; release it with report_done(). */
RfStatus inv_session_evaluate(InvSession *s, const FoldConfig *cfg,
			      InvReport *rep);
/* The folded layer of the last evaluation (NULL before one, or when out
 * of memory). Evaluations never build it (they fold head by head into
 * scratch): it is built here on first use after an evaluation, in float64,
 * and stays allocated until the session ends. Valid until the next
 * evaluation. */
const Layer *inv_session_folded(InvSession *s);
/* The plan of the last evaluation (NULL before one). */
const FoldPlan *inv_session_plan(const InvSession *s);
/* End a session. */
void inv_session_free(InvSession *s);
/* Forget every cached result, so the next evaluation starts cold (the
 * buffers stay allocated). */
void inv_session_reset(InvSession *s);
/* Floating-point operations of the last evaluation's matrix products
 * (folding and both sides' attention, 2mnk each). */
double inv_session_flops(const InvSession *s);
/* The parts of an evaluation, timed apart (wall clock). */
typedef enum {
	INV_PHASE_FOLD,     /* rotations drawn, weights folded */
	INV_PHASE_PROJ,     /* q, k, v projections of both sides */
	INV_PHASE_POST,     /* bias, QK-norm, RoPE */
	INV_PHASE_HEADS,    /* scores and their comparison, softmax, contexts */
	INV_PHASE_OUT,      /* per-head outputs and their comparison, residual */
	INV_PHASE_DIAG,     /* diagnostics, verdicts, explanation */
	INV_PHASE_OTHER,    /* the rest: setup, merges, the report */
	INV_PHASE_COUNT
} InvPhase;
/* A short name of a phase ("fold", "proj", ...). */
const char *inv_phase_name(InvPhase p);
/* Seconds of each phase of the last evaluation; they sum to its time. */
void inv_session_phase_seconds(const InvSession *s, double sec[INV_PHASE_COUNT]);
/* The worker threads a session's evaluations use. */
size_t inv_session_threads(const InvSession *s);

/* About how many bytes a session on this shape and T holds at its peak
 * (the original layer, the caches, the projections and every worker's
 * T x T scores, and a lazily built folded layer), so a front end can
 * refuse a request the machine cannot hold before it starts. */
double inv_session_bytes(const LayerShape *s, size_t T, Precision prec,
			 size_t threads);
/* The T x T share of inv_session_bytes(): what grows with T squared. */
double inv_session_bytes_quadratic(const LayerShape *s, size_t T,
				   Precision prec, size_t threads);

/* One-shot evaluation: a session for a single configuration. */
RfStatus inv_evaluate(const Layer *l, const double *x, const EvalOptions *opt,
		      const FoldConfig *cfg, InvReport *rep);

#endif
