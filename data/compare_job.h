#ifndef ROPEFOLD_DATA_COMPARE_JOB_H
#define ROPEFOLD_DATA_COMPARE_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include "core/compare.h"
#include "core/dtype.h"
#include "core/layer.h"
#include "core/report.h"
#include "core/verify.h"

/* Compare mode over two checkpoints on disk (core/compare.h): one layer of
 * A against the same layer of B, judged at verify's tolerances (the
 * stored dtypes' rounding and quantization bounds, per part and kv group:
 * data/layer_tolerance.h), on an input the caller built for A (`check
 * --against`, the explorer's :against); and the scan of every layer that the explorer's
 * layers view lists. Nothing is printed. */

/* What to compare. */
typedef struct {
	const char *a, *b;      /* the checkpoints */
	size_t layer;           /* of both */
	const double *x;        /* seq x D of A: the input */
	size_t seq;
	Precision precision;    /* of the evaluation */
	double tol;             /* of the levels; <= 0: verify_confirm's default */
	AttnKernel kernel;      /* of the evaluation (0: the fused kernel where the
				 * CPU has it) */
	const Layer *layer_a;   /* A's layer as the caller read it from a (the
				 * explorer's workload: not read twice), or NULL:
				 * read here. Standard layers only; not changed */
} CompareJob;

/* What one run found. */
typedef struct {
	Comparison cmp;         /* the verdict and the levels */
	StoreDtype dtype_a, dtype_b;
	size_t layers_a, layers_b;
	bool residual_frame;    /* B is A under a residual rotation R1 (verify's
				 * residual frame): the layers were brought into
				 * A's frame before they were compared */
} CompareOutcome;

/* Run the job: 0 (out filled; compare_outcome_done it), or -1 with one
 * line in err naming the file or layer at fault (nothing to release). */
int compare_job_run(const CompareJob *job, CompareOutcome *out, char *err, size_t errlen);
/* Release an outcome. */
void compare_outcome_done(CompareOutcome *out);

/* Two checkpoints held open for compare mode, with what every evaluation
 * of the pair shares found once: the models, their fold sidecars (the
 * tolerances) and verify's residual frame (R1 from the embeddings, found
 * at the first standard layer run). compare_job_run opens one per call;
 * the explorer keeps one while A and B stay. Call sequence:
 * compare_pair_open, compare_pair_run any number of times (one thread at
 * a time), compare_pair_close. */
typedef struct ComparePair ComparePair;

/* Open checkpoints a and b: 0 (*p set), or -1 with one line in err. */
int compare_pair_open(const char *a, const char *b, ComparePair **p, char *err,
		      size_t errlen);
/* Whether p holds a and b as they are on disk now (same paths, and
 * neither replaced since it was opened). */
bool compare_pair_is(const ComparePair *p, const char *a, const char *b);
/* The job on p (its a and b are p's): as compare_job_run. */
int compare_pair_run(ComparePair *p, const CompareJob *j, CompareOutcome *out, char *err,
		     size_t errlen);
/* Close p (NULL is fine). */
void compare_pair_close(ComparePair *p);

/* One layer of the scan: its verdict, kept small. */
typedef struct {
	size_t layer;
	bool equivalent;
	VerifyRelation relation;
	VerifyWhy why;
	LevelId level;          /* of the break */
	size_t group, head;     /* of the break (FINDING_NONE: none) */
	char tensor[16];        /* of the break ("W_k", ...) */
	double max_err;         /* under the relation */
	VerifyWithin within;    /* what its tolerance had to allow for */
	size_t n_groups;        /* G, at most COMPARE_MAX_GROUPS are kept */
	bool commuting[64];     /* per kv group of A: R_k commutes with RoPE */
	size_t perm[64];        /* B's group g holds A's perm[g] */
} CompareLayerRow;

#define COMPARE_MAX_GROUPS 64

/* Every layer both have, decided from the weights alone (no evaluation).
 * *rows (allocated here, free() it) gets *n rows. 0, or -1 with one line
 * in err. */
int compare_scan_run(const char *a, const char *b, CompareLayerRow **rows, size_t *n,
		     char *err, size_t errlen);

#endif
