#ifndef ROPEFOLD_TESTS_LAYER_FIXTURES_H
#define ROPEFOLD_TESTS_LAYER_FIXTURES_H

/* The setup the math tests share: a seeded random layer of a case, its
 * input, a fold of it, an evaluation. Every helper fails the test on an
 * error status. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/fold.h"
#include "core/layer.h"
#include "core/report.h"
#include "core/rope.h"

/* One layer configuration under test. */
typedef struct {
	size_t D, H, G, d, r, T;  /* d_model, heads, kv heads, head dim, rotary
				   * dim, tokens */
	RopeLayout layout;
	bool bias;                /* q, k, v and o biases */
	Precision prec;
} LayerCase;

/* A seeded random layer of the case (theta 10000, no scaling). */
void lf_layer(const LayerCase *c, uint64_t seed, Layer *l);
/* c->T x c->D seeded N(0,1) rows (malloc'd: free them). */
double *lf_input(const LayerCase *c, uint64_t seed);
/* Per-head (d entries) or per-layer (H*d, G*d) QK-norm weights of 1 on l,
 * to be changed by the caller. */
void lf_qk_norm(Layer *l, bool per_head);
/* The default fold with these parts rotated and assumptions dropped. */
FoldConfig lf_config(unsigned rotate, unsigned dropped);
/* b = a folded by cfg (allocated here); the plan goes to plan when it is
 * not NULL (fold_plan_free it), else it is released. */
void lf_fold(const Layer *a, const FoldConfig *cfg, Layer *b, FoldPlan *plan);
/* What the engine tests start from: a case's layer and input, and the
 * layer's RoPE table for the case's T. */
typedef struct {
	Layer l;
	double *x;           /* T x D */
	RopeTable rope;      /* T positions of l's RoPE */
} LfSetup;

/* The layer and input of seed, and the table. */
void lf_setup(const LayerCase *c, uint64_t seed, LfSetup *f);
/* Release them. */
void lf_setup_done(LfSetup *f);
/* An empty report of the case's shape at its T (report_done it). */
void lf_report(const LayerCase *c, InvReport *rep);

/* Evaluate cfg on l with the case's input of seed, T and precision, at
 * tol (<= 0: the precision's default). */
void lf_evaluate_layer(const Layer *l, const LayerCase *c, uint64_t seed,
		       const FoldConfig *cfg, double tol, InvReport *rep);
/* The same on a fresh layer of the case drawn from seed. */
void lf_evaluate(const LayerCase *c, uint64_t seed, const FoldConfig *cfg,
		 double tol, InvReport *rep);

#endif
