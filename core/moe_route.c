#include "config.h"

#include <math.h>

#include "core/moe_route.h"

RfStatus moe_route_check(const MoeRoute *r, size_t E, size_t top_k, const char **why)
{
	size_t G = r->n_group ? r->n_group : 1;
	*why = NULL;
	if (!E || !top_k || top_k > E)
		*why = "top_k must be from 1 to the number of experts";
	else if (r->method != MOE_TOPK_GREEDY && E % G)
		*why = "n_group must divide the number of experts";
	else if (r->method != MOE_TOPK_GREEDY && (!r->topk_group || r->topk_group > G))
		*why = "topk_group must be from 1 to n_group";
	else if (r->method != MOE_TOPK_GREEDY && r->topk_group * (E / G) < top_k)
		*why = "the kept groups hold fewer experts than top_k";
	else if (r->method == MOE_TOPK_GROUP_TOP2 && E / G < 2)
		*why = "noaux_tc needs two experts per group";
	return *why ? RF_ERR_ARG : RF_OK;
}

void moe_route_token(const MoeRoute *r, const double *z, const double *bias, size_t E,
		     size_t top_k, size_t *ids, double *w, double *scratch)
{
	double *s = scratch, *c = scratch + E, *gs = scratch + 2 * E;
	/* scores s (E), choice scores c (E); masked experts get -inf */
	if (r->score == MOE_SCORE_SOFTMAX) {
		double mx = -INFINITY, sum = 0;
		for (size_t e = 0; e < E; e++)
			mx = z[e] > mx ? z[e] : mx;
		for (size_t e = 0; e < E; e++)
			sum += s[e] = exp(z[e] - mx);
		for (size_t e = 0; e < E; e++)
			s[e] /= sum;
	} else {
		for (size_t e = 0; e < E; e++)
			s[e] = 1.0 / (1.0 + exp(-z[e]));
	}
	for (size_t e = 0; e < E; e++)
		c[e] = s[e] + (bias ? bias[e] : 0.0);
	if (r->method != MOE_TOPK_GREEDY && r->n_group > 1) {
		size_t G = r->n_group, per = E / G;
		/* gs (G): each group's score */
		for (size_t g = 0; g < G; g++) {
			double b1 = -INFINITY, b2 = -INFINITY;
			for (size_t e = g * per; e < (g + 1) * per; e++) {
				if (c[e] > b1) {
					b2 = b1;
					b1 = c[e];
				} else if (c[e] > b2) {
					b2 = c[e];
				}
			}
			gs[g] = r->method == MOE_TOPK_GROUP_MAX ? b1 : b1 + b2;
		}
		/* keep the topk_group best groups: mask the others one by one
		 * from the worst (ties: the higher group goes first) */
		for (size_t drop = 0; drop < G - r->topk_group; drop++) {
			size_t worst = G;
			for (size_t g = 0; g < G; g++)
				if (gs[g] != INFINITY && (worst == G || gs[g] <= gs[worst]))
					worst = g;
			gs[worst] = INFINITY;
			for (size_t e = worst * per; e < (worst + 1) * per; e++)
				c[e] = -INFINITY;
		}
	}
	double sum = 0;
	for (size_t k = 0; k < top_k; k++) {
		size_t best = E;
		for (size_t e = 0; e < E; e++)
			if (c[e] != -INFINITY && (best == E || c[e] > c[best]))
				best = e;
		if (best == E)
			best = 0;     /* unreachable once moe_route_check passed */
		ids[k] = best;
		w[k] = s[best];
		sum += w[k];
		c[best] = -INFINITY;
	}
	bool norm = r->norm_topk && top_k > 1;
	double scale = r->scale > 0 ? r->scale : 1.0;
	for (size_t k = 0; k < top_k; k++) {
		if (norm)
			w[k] /= sum + 1e-20;
		if (!norm || !r->scale_if_not_norm)
			w[k] *= scale;
	}
}
