#ifndef ROPEFOLD_DATA_VERIFY_JOB_H
#define ROPEFOLD_DATA_VERIFY_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/layer.h"
#include "core/report.h"
#include "core/verify.h"
#include "core/verify_residual.h"
#include "data/model.h"

/* Deciding, layer by layer, whether checkpoint B is an exact fold of A
 * (core/verify.h), as one call over two open checkpoints: the layer
 * counts and the chosen layers checked, each layer of both loaded,
 * decided at the coarser stored dtype's roundoff and, when asked,
 * confirmed by the three-level evaluation. `ropefold verify` prints each
 * layer as it comes; the explorer's :verify stops at the first break. */

/* One layer decided, as the caller sees it (everything borrowed for the
 * length of the call). */
typedef struct {
	size_t layer;                  /* its index */
	size_t done, total;            /* layers decided (this one too) of those chosen */
	const Layer *a;                /* A's layer */
	const VerifyVerdict *verdict;
	const InvReport *report;       /* the confirming evaluation, or NULL */
} VerifyLayerResult;

/* What to compare. */
typedef struct {
	const char *a, *b;             /* the checkpoints */
	const char *layers;            /* "all", "N", "N..M" (NULL: all) */
	const char *layers_flag;       /* the flag it came from (NULL: --layers) */
	double tol;                    /* of the weight checks; <= 0: the default */
	bool confirm;                  /* confirm each layer by evaluation */
	Precision precision;           /* of that evaluation */
	size_t seq;                    /* its input: seq x D seeded N(0,1) rows */
	uint64_t seed;
	void *ctx;
	/* Both checkpoints are open (NULL for none). */
	void (*opened)(void *ctx, const ModelInfo *a, const ModelInfo *b);
	/* Each layer decided, in order (NULL for none): 0 goes on, 1 stops. */
	int (*layer_done)(void *ctx, const VerifyLayerResult *r);
	AttnKernel kernel;             /* of the confirming evaluation (0: the
				        * fused kernel where the CPU has it) */
} VerifyJob;

/* What was compared. */
typedef struct {
	bool layer_counts_differ;      /* no layers chosen and A and B have different
				        * counts: nothing compared, not equivalent */
	size_t layers_a, layers_b;
	size_t compared;               /* layers decided */
	bool equivalent;               /* every layer decided is equivalent */
	size_t first_break;            /* the first that is not (SIZE_MAX: none) */
	VerifyResidual residual;       /* the residual frame (R1): residual.R is
				        * NULL once the run returns */
} VerifyOutcome;

/* Run the job. 0 (out filled, also when a layer_done stopped it or the
 * layer counts differ), or -1 with one line in err (a checkpoint that
 * cannot be read, a bad layer range, an evaluation that failed). */
int verify_job_run(const VerifyJob *job, VerifyOutcome *out, char *err, size_t errlen);

#endif
