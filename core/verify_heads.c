#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/parallel.h"
#include "core/procrustes.h"
#include "core/verify_impl.h"

/* Head matching: a fold may reorder kv groups (with their query heads),
 * so B's groups are matched to A's before anything is compared. */

/* The column norms of a d x D block (row-major, leading dimension D) into
 * s (D): a rotation of the rows keeps each column's length. */
static void column_norms(const double *W, size_t d, size_t D, double *s)
{
	for (size_t j = 0; j < D; j++)
		s[j] = 0;
	for (size_t i = 0; i < d; i++) {
		const double *w = W + i * D;
		for (size_t j = 0; j < D; j++)
			s[j] += w[j] * w[j];
	}
	for (size_t j = 0; j < D; j++)
		s[j] = sqrt(s[j]);
}

/* The column norms of W_k,g and W_v,g of every group (G x 2D), which any
 * orthogonal R_g keeps: one pass over the weights, where the singular
 * values they replace cost a d x d x D Gram matrix per block (a quarter
 * of verify's products at 8B scale) and tell the groups apart no better. */
static void group_signatures(const VerifyCtx *c, const Layer *l, double *sig)
{
	for (size_t g = 0; g < c->G; g++) {
		double *s = sig + g * 2 * c->D;
		column_norms(l->wk + g * c->dD, c->d, c->D, s);
		column_norms(l->wv + g * c->dD, c->d, c->D, s + c->D);
	}
}

/* A's signatures (task 0) and B's (task 1), side by side. */
typedef struct {
	const VerifyCtx *c;
	double *sig[2];
	TaskQueue q;
} Signatures;

static void signatures_one(void *ctx, size_t worker)
{
	(void)worker;
	Signatures *s = ctx;
	for (size_t t; (t = task_queue_next(&s->q)) != (size_t)-1;)
		group_signatures(s->c, t ? s->c->b : s->c->a, s->sig[t]);
}

/* Greedy matching of B's groups to A's by signature, confirmed by the
 * Procrustes residuals of W_k and W_v; the identity when unconfirmed. */
RfStatus verify_match_groups(VerifyCtx *c, size_t *perm)
{
	size_t G = c->G, n = 2 * c->D;
	for (size_t g = 0; g < G; g++)
		perm[g] = g;
	if (G == 1)
		return RF_OK;
	double *sa = malloc(G * n * sizeof(double));
	double *sb = malloc(G * n * sizeof(double));
	double *cost = malloc(G * G * sizeof(double));
	bool *used_a = calloc(G, sizeof(bool)), *used_b = calloc(G, sizeof(bool));
	RfStatus st = RF_ERR_NOMEM;
	if (!sa || !sb || !cost || !used_a || !used_b)
		goto out;
	Signatures sg = {c, {sa, sb}, {0}};
	task_queue_init(&sg.q, 2);
	st = parallel_run(c->threads < 2 ? 1 : 2, signatures_one, &sg);
	for (size_t gb = 0; gb < G; gb++)
		for (size_t ga = 0; ga < G; ga++)
			cost[gb * G + ga] =
				verify_frob_diff(sb + gb * n, sa + ga * n, n);
	for (size_t round = 0; round < G; round++) {
		size_t bi = 0, bj = 0;
		double best = INFINITY;
		for (size_t gb = 0; gb < G; gb++)
			for (size_t ga = 0; ga < G; ga++) {
				double e = cost[gb * G + ga];
				/* ties go to the identity */
				if (!used_b[gb] && !used_a[ga] &&
				    (e < best || (e == best && ga == gb))) {
					best = e;
					bi = gb;
					bj = ga;
				}
			}
		used_b[bi] = used_a[bj] = true;
		perm[bi] = bj;
	}
	/* Confirm every moved group by its residuals. */
	for (size_t gb = 0; gb < G && st == RF_OK; gb++) {
		size_t ga = perm[gb];
		if (ga == gb)
			continue;
		double ek = INFINITY, ev = INFINITY;
		st = procrustes_rotation(c->a->wk + ga * c->dD, c->D,
					 c->b->wk + gb * c->dD, c->D, c->d, c->D, c->R);
		if (st == RF_OK)
			ek = verify_rows_err(c, c->R, c->a->wk + ga * c->dD,
					     c->b->wk + gb * c->dD);
		if (st == RF_OK)
			st = procrustes_rotation(c->a->wv + ga * c->dD, c->D,
						 c->b->wv + gb * c->dD, c->D, c->d,
						 c->D, c->R);
		if (st == RF_OK)
			ev = verify_rows_err(c, c->R, c->a->wv + ga * c->dD,
					     c->b->wv + gb * c->dD);
		if (st == RF_OK && (ek > c->tolp[VERIFY_K] || ev > c->tolp[VERIFY_V])) {
			for (size_t g = 0; g < G; g++)
				perm[g] = g;
			break;
		}
	}
out:
	free(sa);
	free(sb);
	free(cost);
	free(used_a);
	free(used_b);
	return st;
}
