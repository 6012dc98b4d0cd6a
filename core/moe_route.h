#ifndef ROPEFOLD_CORE_MOE_ROUTE_H
#define ROPEFOLD_CORE_MOE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

/* DeepSeek's router (DeepSeek-V2/V3 MoEGate, as DeepSeek's modelling code
 * and llama.cpp's deepseek2 graph compute it). For one token's E router
 * logits z:
 *
 *   s      = softmax(z)  (V2)             or sigmoid(z)  (V3)
 *   c      = s                            or s + e_score_correction_bias
 *   groups = E / n_group experts each, in order; a group's score is its
 *            best c (V2 group_limited_greedy) or the sum of its two best
 *            (V3 noaux_tc); the topk_group best groups are kept (greedy:
 *            every group)
 *   ids    = the top_k largest c among the kept experts (ties: lower id)
 *   w_i    = s_ids[i] (never the bias), then
 *            renormalised to sum 1 when norm_topk and top_k > 1, and
 *            times scale: always (V3, llama.cpp), or only when not
 *            renormalised (DeepSeek's V2 code). */

typedef enum {
	MOE_SCORE_SOFTMAX = 0,
	MOE_SCORE_SIGMOID
} MoeScore;

typedef enum {
	MOE_TOPK_GREEDY = 0,       /* every group: plain top-k */
	MOE_TOPK_GROUP_MAX,        /* V2 group_limited_greedy: groups by their best */
	MOE_TOPK_GROUP_TOP2        /* V3 noaux_tc: groups by the sum of their two best */
} MoeTopk;

typedef struct {
	MoeScore score;
	MoeTopk method;
	size_t n_group;            /* 0 or 1: one group */
	size_t topk_group;         /* groups kept (method != GREEDY) */
	bool norm_topk;            /* renormalise the k weights (k > 1) */
	double scale;              /* routed_scaling_factor, 0 = 1 */
	bool scale_if_not_norm;    /* DeepSeek's V2 code: scale only without the
				    * renormalisation */
} MoeRoute;

/* Check the settings for E experts and top_k: groups dividing E, at least
 * top_k experts in the kept groups, two per group for GROUP_TOP2. */
RfStatus moe_route_check(const MoeRoute *r, size_t E, size_t top_k, const char **why);
/* Route one token: z (E logits), bias (E, or NULL), into ids (top_k expert
 * ids) and w (top_k weights); scratch holds 2 E + n_group doubles. */
void moe_route_token(const MoeRoute *r, const double *z, const double *bias, size_t E,
		     size_t top_k, size_t *ids, double *w, double *scratch);

#endif
