#ifndef ROPEFOLD_TUI_EXPLORER_WORKER_H
#define ROPEFOLD_TUI_EXPLORER_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"
#include "core/report.h"
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
	bool family_assumed;  /* a family ropefold does not know: its RoPE
			       * layout and conventions were assumed */
} LayerInfo;

/* One finished evaluation, handed from the worker to the screen. */
typedef struct {
	unsigned long gen;    /* the request it answers */
	TuiSettings settings; /* what was asked */
	int status;           /* 0, or 2 with err filled (nothing changed) */
	char err[512];
	InvReport rep;        /* status 0 only */
	LayerInfo info;
	double seconds;       /* build + evaluation time */
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
