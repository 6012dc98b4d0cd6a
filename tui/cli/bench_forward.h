#ifndef ROPEFOLD_TUI_CLI_BENCH_FORWARD_H
#define ROPEFOLD_TUI_CLI_BENCH_FORWARD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"

/* One decoder layer of the whole-model forward pass (core/forward), timed
 * on the bench's layer with a seeded SwiGLU MLP of width 3.5 D (Llama 3
 * 8B's 14336 for D = 4096) and unit norms. */
typedef struct {
	size_t ff;          /* the MLP width */
	double seconds;     /* median of the runs */
	double gflop;       /* the products as performed, 2mnk each */
} BenchForward;

/* Time n runs (after a warm-up) on x (T x D). 0, or -1 out of memory. */
int bench_forward(const Layer *l, const double *x, size_t T, bool f32, size_t n,
		  BenchForward *out);

#endif
