#include "config.h"

#include <cblas.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/parallel.h"

#define PARALLEL_MAX 64

void task_queue_init(TaskQueue *q, size_t count)
{
	atomic_init(&q->next, 0);
	q->count = count;
}

size_t task_queue_next(TaskQueue *q)
{
	size_t t = atomic_fetch_add_explicit(&q->next, 1, memory_order_relaxed);
	return t < q->count ? t : (size_t)-1;
}

size_t parallel_default_threads(void)
{
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
	int n = openblas_get_num_threads();
#else
	int n = 1;
#endif
	if (n < 1)
		n = 1;
	if (n > PARALLEL_MAX)
		n = PARALLEL_MAX;
	return (size_t)n;
}

int parallel_blas_single(void)
{
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
	int saved = openblas_get_num_threads();
	if (saved != 1)
		openblas_set_num_threads(1);
	return saved;
#else
	return 1;
#endif
}

void parallel_blas_restore(int saved)
{
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
	if (saved > 1)
		openblas_set_num_threads(saved);
#else
	(void)saved;
#endif
}

typedef struct {
	ParallelFn fn;
	void *ctx;
	size_t worker;
} Job;

static void *job_main(void *arg)
{
	Job *j = arg;
	j->fn(j->ctx, j->worker);
	return NULL;
}

RfStatus parallel_run(size_t nworkers, ParallelFn fn, void *ctx)
{
	pthread_t tid[PARALLEL_MAX];
	Job jobs[PARALLEL_MAX];
	bool started[PARALLEL_MAX];
	if (nworkers < 1)
		nworkers = 1;
	if (nworkers > PARALLEL_MAX)
		nworkers = PARALLEL_MAX;
	for (size_t w = 1; w < nworkers; w++) {
		jobs[w] = (Job){fn, ctx, w};
		started[w] = pthread_create(&tid[w], NULL, job_main, &jobs[w]) == 0;
	}
	fn(ctx, 0);
	for (size_t w = 1; w < nworkers; w++)
		if (started[w])
			pthread_join(tid[w], NULL);
	return RF_OK;
}
