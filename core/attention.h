#ifndef ROPEFOLD_CORE_ATTENTION_H
#define ROPEFOLD_CORE_ATTENTION_H

#include <stddef.h>

#include "core/layer.h"
#include "core/report.h"
#include "core/rope.h"
#include "core/status.h"

/* Evaluate the layers a (original) and b (folded) on the same input x
 * (T x D) in the given precision, one query head at a time, and fill the
 * error fields of the report: each level's max_abs_err, ref_max and worst
 * location, the score error by offset, per head, and the heatmap bins.
 * Verdicts and predictions are levels.c's job. */
RfStatus attention_compare(const Layer *a, const Layer *b, const double *x,
			   size_t T, Precision prec, const RopeTable *rope,
			   InvReport *rep);

/* One side alone: y = x + concat_h(C_h) W_o^T + b_o (T x D), and, when
 * scores is not NULL, head h's raw scores (T x T, zero above the
 * diagonal). float64 only: for tests and the reference path. */
RfStatus attention_forward(const Layer *l, const double *x, size_t T,
			   const RopeTable *rope, double *y, size_t h,
			   double *scores);

#endif
