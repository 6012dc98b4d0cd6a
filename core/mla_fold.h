#ifndef ROPEFOLD_CORE_MLA_FOLD_H
#define ROPEFOLD_CORE_MLA_FOLD_H

#include <stddef.h>

#include "core/fold.h"
#include "core/mla.h"
#include "core/status.h"

/* The fold of an MLA layer (SPEC 4.3). Per query head h:
 *   q_nope_h -> A_h q_nope_h   and  k_nope_h -> A_h k_nope_h  (any orthogonal
 *                               A_h: RoPE does not act there)
 *   q_pe_h   -> P q_pe_h       and  k_pe -> P k_pe            (one commuting P:
 *                               k_pe is one head shared by every query head)
 *   v_h      -> B_h v_h        and  o_proj block h -> W_o,h B_h^T
 * folded into q_b_proj's (or q_proj's) rows, kv_a_proj_with_mqa's k_pe
 * rows, kv_b_proj's rows and o_proj's columns. The latents, their norms and
 * q_a_proj are untouched.
 *
 * What FoldConfig's toggles mean here (derived from the score
 * q_nope.k_nope + q_pe^T Theta_(n-m) k_pe):
 *   orthogonal dropped  every rotation scaled per pair: breaks both parts
 *   commutes dropped    P of --kind: breaks the rope part only (A_h need
 *                       not commute: RoPE does not act on nope)
 *   shared-qk dropped   K draws its own A'_h and P': breaks both parts,
 *                       since q_nope_h and k_nope_h meet in one dot product
 *   per-head dropped    one A for every head: valid (P is one already)
 *   gqa-consistent      each query head its own P_h, k_pe takes head 0's:
 *     dropped           breaks the rope part when H > 1 (all heads are one
 *                       kv group there); on nope every head is its own
 *                       group already, so nothing changes
 *   v-same              B_h = A_h when dv = dn, else a draw; dropped: an
 *                       independent Haar B_h (valid either way)
 *   bias                MLA layers have none: no effect
 *   permute_heads       folded head h is original head h+1 (cyclic), its
 *                       q rows, k_nope/v rows and o_proj block with it */
typedef struct {
	size_t n_heads, nope, rope, v;
	double *rq_nope;   /* H x dn x dn */
	double *rk_nope;   /* H x dn x dn */
	double *rq_pe;     /* H x dr x dr */
	double *rk_pe;     /* dr x dr: the one k_pe */
	double *rv;        /* H x dv x dv */
	double *ro;        /* H x dv x dv: o_proj block h becomes W_o,h ro_h^T */
	size_t *perm;      /* H: folded head h holds original head perm[h] */
} MlaPlan;

/* Draw the rotations of a configuration for an MLA layer. */
RfStatus mla_plan_build(const MlaLayer *l, const FoldConfig *cfg, MlaPlan *plan);
/* Release a plan. */
void mla_plan_free(MlaPlan *plan);
/* dst = src with the plan folded in (dst allocated here). */
RfStatus mla_fold_apply(const MlaLayer *src, const MlaPlan *plan, MlaLayer *dst);
/* The plan that undoes p (inv allocated here): mla_fold_apply of the
 * folded layer with it gives the original back up to roundoff; rotations
 * inverted (transposed when orthogonal), the head permutation inverted.
 * RF_ERR_NUMERIC for a singular rotation, RF_ERR_ARG for a bad perm. */
RfStatus mla_plan_inverse(const MlaPlan *p, MlaPlan *inv);

#endif
