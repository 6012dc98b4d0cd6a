#ifndef ROPEFOLD_TUI_EXPLORER_WORKER_H
#define ROPEFOLD_TUI_EXPLORER_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/frame.h"
#include "core/layer.h"
#include "core/mla.h"
#include "core/report.h"
#include "core/verify.h"
#include "data/compare_job.h"
#include "tui/shared/findings_text.h"
#include "tui/explorer/commands.h"

/* What the views show about the layer an evaluation ran on (a copy: the
 * worker keeps the weights to itself). */
typedef struct {
	LayerShape shape;
	RopeSpec rope;
	bool qkv_bias, o_bias, qk_norm, attn_norm;
	double score_scale;
	size_t sliding_window;  /* applied to the scores; 0 = none */
	double attn_softcap;    /* likewise (c tanh(s / c)); 0 = none */
	size_t bytes;         /* float64 weights */
	size_t seq;
	char source[512];     /* "default", "random" or the path */
	size_t layer_index;
	char dtype[24];       /* the stored dtype of its attention weights
			       * ("F32", "BF16", ...; "" for a random layer) */
	bool family_assumed;  /* a family ropefold does not know: its RoPE
			       * layout and conventions were assumed */
	bool mla;             /* DeepSeek multi-head latent attention: shape is
			       * its header, mla_shape its dims */
	MlaShape mla_shape;
} LayerInfo;

/* What compare mode found (on: B's stored layer took the fold's place):
 * verify's relation in words and the rotations it recovered, for the
 * toggle panel, and every layer's verdict, for the layers view. */
typedef struct {
	bool on;
	char against[1024];       /* B */
	bool equivalent;
	VerifyRelation relation;
	VerifyWhy why;
	char words[1024];         /* the relation, or why it is none */
	bool layout_converted, heads_permuted, rotated;
	size_t brk_group;         /* the first break's kv group (FINDING_NONE: layer-wide) */
	char brk_tensor[16];      /* and its tensor ("W_k", ...) */
	double max_err, tol;      /* of the weight checks */
	VerifyWithin within;      /* what the tolerance had to allow for (verify's) */
	char tol_words[FINDINGS_TOLERANCE_MAX];  /* the tolerance, with any
						  * quantization bounds */
	char dtype_a[8], dtype_b[8];
	size_t groups, npairs;
	bool *commuting;          /* groups: R_k of A's group g commutes */
	double *angles;           /* groups x npairs: its pair angles (radians) */
	size_t *perm;             /* groups: B's group g holds A's perm[g] */
	CompareLayerRow *rows;    /* nrows: every layer, decided from the weights */
	size_t nrows;
	char scan_err[512];       /* why there are no rows ("" when there are) */
} CompareInfo;

/* One finished evaluation, handed from the worker to the screen. */
typedef struct {
	unsigned long gen;    /* the request it answers */
	TuiSettings settings; /* what was asked */
	int status;           /* 0, or 2 with err filled (nothing changed) */
	char err[512];
	InvReport rep;        /* status 0 only */
	FrameReport frame;    /* R1 and R3 beside the fold (modes none: off) */
	LayerInfo info;
	double seconds;       /* build + evaluation time */
	/* The rotations applied (compare mode: recovered), in the original's
	 * head order, for the rotation view; NULL when out of memory:
	 * rq H x d x d, rk and rv G x d x d, each d x d row-major. */
	double *rq, *rk, *rv;
	CompareInfo cmp;
} EvalResult;

/* Evaluates off the input thread: the screen submits settings, the worker
 * rebuilds what changed (workload, session) and evaluates, always taking
 * the newest request; finished results wake the loop through a pipe.
 * Call sequence: worker_new, then worker_submit / worker_take any number
 * of times (poll worker_fd for readability), then worker_free. */
typedef struct Worker Worker;

/* Start the thread. Returns NULL when a thread or pipe cannot be made. */
Worker *worker_new(void);
/* The file descriptor that becomes readable when a result is ready. */
int worker_fd(const Worker *w);
/* Ask for an evaluation of settings (replaces any request not started). */
void worker_submit(Worker *w, const TuiSettings *s, unsigned long gen);
/* The newest finished result, or NULL (older ones are dropped). Release
 * it with worker_result_free. */
EvalResult *worker_take(Worker *w);
/* True while a request is queued or running. */
bool worker_busy(Worker *w);
/* Release a result. */
void worker_result_free(EvalResult *r);
/* Stop the thread (waiting at most a couple of seconds for a running
 * evaluation) and release everything. */
void worker_free(Worker *w);

#endif
