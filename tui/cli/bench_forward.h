#ifndef ROPEFOLD_TUI_CLI_BENCH_FORWARD_H
#define ROPEFOLD_TUI_CLI_BENCH_FORWARD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"
#include "core/mla.h"

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

/* The same with DeepSeek's MLA attention of l (core/forward's MLA) in place
 * of the standard one; the gflop count's attention part is MLA's: q (through
 * its latent or q_proj), kv_a, kv_b, the T x T scores and contexts of every
 * head (dn + dr and dv wide), o. 0, or -1 out of memory or on a bad layer. */
int bench_forward_mla(const MlaLayer *l, const double *x, size_t T, bool f32, size_t n,
		      BenchForward *out);

#endif
