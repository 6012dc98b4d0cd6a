#ifndef ROPEFOLD_CORE_PARALLEL_H
#define ROPEFOLD_CORE_PARALLEL_H

#include <stdatomic.h>
#include <stddef.h>

#include "core/status.h"

/* Work spread over a few threads for the per-head and per-tile loops of an
 * evaluation. The threads live only for one parallel_run() call (there is
 * no global pool), so a session may be used from any one thread at a time.
 * Inside a run every BLAS call is single-threaded: each worker owns a core
 * instead of OpenBLAS's own threads competing with ours. */

/* A body run by every worker; worker is 0 .. nworkers-1 (0 is the caller). */
typedef void (*ParallelFn)(void *ctx, size_t worker);

/* Tasks handed out one by one to whichever worker asks first. */
typedef struct {
	atomic_size_t next;
	size_t count;
} TaskQueue;

/* Reset a queue to hand out tasks 0 .. count-1. */
void task_queue_init(TaskQueue *q, size_t count);
/* The next task, or (size_t)-1 when none is left. */
size_t task_queue_next(TaskQueue *q);

/* The number of workers to use: OpenBLAS's thread count (which honours
 * OPENBLAS_NUM_THREADS), at least 1 and at most 64. */
size_t parallel_default_threads(void);

/* Run fn on nworkers workers and wait for all of them. When a thread
 * cannot be started, its share runs on the workers that did start (the
 * bodies take work from a TaskQueue), so the result is the same. */
RfStatus parallel_run(size_t nworkers, ParallelFn fn, void *ctx);

/* Make BLAS single-threaded; returns the previous thread count for
 * parallel_blas_restore(). */
int parallel_blas_single(void);
/* Restore BLAS's thread count saved by parallel_blas_single(). */
void parallel_blas_restore(int saved);

#endif
