#ifndef ROPEFOLD_CORE_VERIFY_IMPL_H
#define ROPEFOLD_CORE_VERIFY_IMPL_H

/* Internals shared by the files of verify (core/verify.h is the public
 * API): verify.c (the entry and the relation), verify_compare.c (one
 * comparison and the verdict it fills), verify_ctx.c (the comparison's
 * context and residual helpers), verify_heads.c (matching kv groups),
 * verify_qk.c (the Q/K side of a group), verify_vo.c (its V/O side),
 * verify_untouched.c (the tensors a fold leaves alone), verify_layout.c
 * (the broken conversions) and verify_confirm.c (the three-level
 * evaluation). */

#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"
#include "core/verify.h"

/* One comparison of a against b (b already in a's layout). */
typedef struct {
	const Layer *a, *b;
	size_t D, H, G, d, hpg, dd, dD, np;
	double tol;      /* of the tensors outside the parts (norms, b_o) */
	double tolp[VERIFY_PARTS];   /* of each part (VerifyVerdict.part_tol) */
	double *freqs;   /* np */
	double *work;    /* D x d (also d x D) */
	double *R, *R2;  /* d x d scratch */
	VerifyVerdict *v;
	double direct;   /* max plain difference of B against A (permuted),
			  * in units of the tolerance of its part */
	size_t threads;  /* workers the comparison may use (>= 1; BLAS
			  * single-threaded meanwhile when > 1) */
} VerifyCtx;

/* ---- verify_ctx.c -------------------------------------------------------- */

/* The same four sizes. */
bool verify_same_shape(const LayerShape *x, const LayerShape *y);
/* ||A - B||_F over n entries. */
double verify_frob_diff(const double *A, const double *B, size_t n);
/* A break at level, kv group and query head of B (FINDING_NONE: none),
 * in tensor with relative error err; the caller adds the numbers its code
 * quotes. */
Finding verify_finding(FindingCode code, LevelId level, size_t group,
		       size_t head, const char *tensor, double err);
/* Record the first break, of class why; later calls are ignored. */
void verify_break(VerifyVerdict *v, VerifyWhy why, const Finding *f);
/* rel diff of R A_rows against B_rows (d x D blocks), each row of R A
 * compared as it is made (c->work the scratch). */
double verify_rows_err(const VerifyCtx *c, const double *R, const double *A,
		       const double *B);
/* The same for a head's W_o column block (D x d, leading dimension H d):
 * A_cols R^T against B_cols. */
double verify_cols_err(const VerifyCtx *c, const double *R, const double *A,
		       const double *B);
/* Raise the largest plain difference of B against A to e, a relative
 * difference judged at tol. */
void verify_note_direct(VerifyCtx *c, double e, double tol);
/* The plain difference of B's block against A's (rows x cols, leading
 * dimensions lda, ldb) noted at tol, while the plain differences have not
 * yet shown B rotated (one beyond its tolerance); -1 once they have: the
 * rest need not be measured, which at 8B scale saves a pass over both
 * layers' weights. */
double verify_direct(VerifyCtx *c, const double *A, size_t lda, const double *B,
		     size_t ldb, size_t rows, size_t cols, double tol);
/* Raise the verdict's worst error under the relation to e. */
void verify_note_err(VerifyCtx *c, double e);
/* A bias R should explain (d entries): its error under R, and in *left
 * whether B kept A's bias as it was (left behind while the weights turned). */
double verify_bias_err(VerifyCtx *c, const double *R, const double *a,
		       const double *b, double tol, bool *left);
/* A block B_rows that the group's rotation does not explain: an orthogonal
 * rotation of its own, a general linear map, or nothing (at tol). Returns
 * 0, 1, 2 for those, with the fitted map in c->R2. */
int verify_classify_rows(VerifyCtx *c, const double *A, const double *B,
			 double tol, RfStatus *st);

/* ---- the jobs ------------------------------------------------------------ */

/* verify_heads.c: which of A's kv groups each of B's holds (perm: G),
 * the identity unless the Procrustes residuals confirm a move. */
RfStatus verify_match_groups(VerifyCtx *c, size_t *perm);
/* verify_groups.c: every kv group's Q/K and V/O sides (B's groups in
 * order, over c->threads workers), the verdict as the loop over them
 * would leave it; *ok false on a break. */
RfStatus verify_check_groups(VerifyCtx *c, bool *ok);
/* verify_qk.c: the Q/K side of kv group gb (A's group ga); *ok false on
 * a break (recorded in c->v). */
RfStatus verify_check_qk(VerifyCtx *c, size_t gb, size_t ga, bool *ok);
/* verify_vo.c: the V/O side of kv group gb (A's group ga). */
RfStatus verify_check_vo(VerifyCtx *c, size_t gb, size_t ga, bool *ok);
/* verify_untouched.c: tensors a fold leaves alone, equal up to the
 * tolerance (x, y: n entries, either may be NULL); false on a break. */
bool verify_check_plain(VerifyCtx *c, const double *x, const double *y,
			size_t n, const char *name, LevelId level);
/* Per-layer QK-norm weights move with their heads (perm: G). */
bool verify_check_norm_weights(VerifyCtx *c, const size_t *perm);
/* Optional tensors (biases) exist on both sides. */
bool verify_check_presence(VerifyCtx *c);
/* Every tensor equal bit for bit. */
bool verify_layers_identical(const VerifyCtx *c);
/* verify_layout.c: after a Q/K break, test the classic broken conversions
 * of b (bc: b in a's layout); a hypothesis that explains B becomes the
 * verdict's break. */
RfStatus verify_try_conversions(const Layer *a, const Layer *b,
				const Layer *bc, double tol, VerifyVerdict *v);

/* ---- verify_compare.c ---------------------------------------------------- */

/* Clear the verdict's findings (its allocations stay). */
void verify_verdict_reset(VerifyVerdict *v);
/* Allocate the recovered relation of v for a's shape (identities) and
 * a's pair frequencies. */
RfStatus verify_verdict_alloc(VerifyVerdict *v, const Layer *a);
/* Compare a against b (already in a's layout) into v (allocated). */
RfStatus verify_analyse(const Layer *a, const Layer *b, double tol,
			VerifyVerdict *v);
/* The same; finite: both layers are known to hold no NaN or Inf;
 * threads: workers for the kv groups (verify_check_groups). */
RfStatus verify_analyse_finite(const Layer *a, const Layer *b, double tol,
			       bool finite, size_t threads, VerifyVerdict *v);

#endif
