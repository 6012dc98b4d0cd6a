#ifndef ROPEFOLD_CORE_LOGITS_H
#define ROPEFOLD_CORE_LOGITS_H

#include <stddef.h>

/* What a model's logits say: the top tokens of a position, and how two
 * models' logits of the same tokens differ. Logits are T x V row-major
 * float64 (row t: the next token after position t). */

typedef struct {
	size_t id;
	double logit;
	double p;          /* softmax probability */
} LogitsTop;

/* The k largest of one row (V entries), largest first (ties: lower id
 * first), with their probabilities; k <= V. */
void logits_top(const double *z, size_t V, size_t k, LogitsTop *out);
/* The id of the largest entry (the greedy token; ties: lower id). */
size_t logits_argmax(const double *z, size_t V);

/* A and B against each other (SPEC: the model level of verify). */
typedef struct {
	double max_abs_logit_err;   /* max |a - b| */
	double max_rel_logit_err;   /* max |a - b| / max |a| */
	double max_kl;              /* max over positions of KL(softmax a || softmax b) */
	double top1_agreement;      /* share of positions with the same argmax */
	size_t first_disagreement;  /* the first such position, or (size_t)-1 */
} LogitsCompare;

/* Compare two T x V logit matrices. */
void logits_compare(const double *a, const double *b, size_t T, size_t V, LogitsCompare *out);

#endif
