#ifndef ROPEFOLD_CORE_MLA_VERIFY_H
#define ROPEFOLD_CORE_MLA_VERIFY_H

#include "core/mla.h"
#include "core/mla_fold.h"
#include "core/status.h"
#include "core/verify.h"

/* Whether MLA layer b is an exact fold of MLA layer a (core/mla_fold.h),
 * as a VerifyVerdict that the verify front ends print like any other, on
 * the layer's header shape (one kv group: the shared k_pe; its pair angles
 * are the rope rotation's). By orthogonal Procrustes: the one rope
 * rotation P from k_pe's rows of kv_a_proj_with_mqa, which must commute
 * with RoPE and turn every head's q_pe rows; per head the nope rotation A_h
 * from q's nope rows, which must turn the head's k_nope rows of kv_b_proj
 * too; the V rotation B_h from the v rows, which o_proj's column block
 * must absorb. The latents, their norms and q_a_proj must be unchanged.
 * B's heads may be a permutation of A's (matched by what a fold leaves of
 * each: column norms of its q and kv_b rows, row norms of its o_proj
 * block; plan.perm then has one entry per head). Everything is judged at
 * opt's tolerance relative to each block's own norm. Release v with
 * verify_verdict_free. */
RfStatus mla_verify_layers(const MlaLayer *a, const MlaLayer *b, const VerifyOptions *opt,
			   VerifyVerdict *v);
/* mla_verify_layers, keeping the rotations it recovered as the plan that
 * folds a into b (rec, built here; mla_plan_free it, also after an
 * error): P in rk_pe and every head's rq_pe (a head whose q_pe P does not
 * fit: its own fit), per head of b A_h in rq_nope and rk_nope (k_nope's
 * own fit where A_h does not turn it), B_h in rv and ro, the head match in
 * perm; the identity past the first break. Compare mode draws these. */
RfStatus mla_verify_recover(const MlaLayer *a, const MlaLayer *b, const VerifyOptions *opt,
			    VerifyVerdict *v, MlaPlan *rec);

#endif
