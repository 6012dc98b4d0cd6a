#ifndef ROPEFOLD_CORE_VERIFY_RESIDUAL_H
#define ROPEFOLD_CORE_VERIFY_RESIDUAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/finding.h"
#include "core/layer.h"
#include "core/status.h"

/* Recognising a residual-frame rewrite (core/residual.h) in verify A B:
 * R1 is recovered by orthogonal Procrustes on the embeddings (E_B ~ E_A
 * R1^T), then every tensor on the stream must follow its role under R1
 * with A's norm weights fused into their readers and B's norms set to one.
 * What is left per layer (R2 on V/O, the commuting Q/K rotations) is
 * judged by verify_layers on the layers brought back into one frame
 * (verify_residual_layer_frame). Data only: tui/shared/findings_text words
 * it. */

/* The model-level verdict. */
typedef struct {
	bool checked;        /* both checkpoints have embeddings to compare */
	bool active;         /* a residual rotation R1 (not the identity) explains
			      * the embeddings */
	bool hadamard;       /* R1 is a (randomised) Hadamard: every entry 0 or
			      * +-c for one c, the same count per row */
	bool norms_fused;    /* B's norm weights are all one, A's fused */
	bool vo_rotated;     /* some layer's V/O carries a rotation (R2) */
	bool qk_rotated;     /* some layer's Q/K carries a commuting rotation */
	bool equivalent;     /* no break found on the stream */
	size_t D;
	double *R;           /* D x D: R1 (owned while the job runs) */
	double tol;          /* relative tolerance of the checks */
	double max_err;      /* worst relative error under R1 */
	size_t layer;        /* where brk is (VRES_MODEL: model level) */
	Finding brk;         /* the first break (code FIND_NONE: none) */
} VerifyResidual;

#define VRES_MODEL ((size_t)-1)

/* R (D x D) minimising ||EA R^T - EB|| for n rows of D (row-major), and
 * the relative error left. */
RfStatus verify_residual_fit(const double *EA, const double *EB, size_t n, size_t D,
			     double *R, double *err);

/* Whether the d x d orthogonal M is a (signed, maybe Kronecker with the
 * identity) Hadamard: every entry is 0 or +-c for one c up to tol, every
 * row with the same number of nonzeros. */
bool verify_residual_is_hadamard(const double *M, size_t d, double tol);

/* The orthogonal M (cols x cols) minimising ||X M^T - Y|| for X, Y of
 * rows x cols, and the error left: an extra rotation of a writer's input
 * columns (an online R4 on down_proj). */
RfStatus verify_residual_extra_cols(const double *X, const double *Y, size_t rows,
				    size_t cols, double *M, double *err);

/* Whether Y = X M^T for M a signed Hadamard of cols (Sylvester on the
 * power of two dividing cols, Kronecker with the identity on either side,
 * core/fwht.h; the random signs on either side of it) up to tol, the
 * smallest relative error of the forms tried in *err (NULL: not wanted):
 * what decides the kind when rows < cols leave M itself underdetermined.
 * Applied by the fast Walsh-Hadamard transform (rows * cols * log cols),
 * so any width is tried (Llama's 14336 and 11008). */
bool verify_residual_hadamard_cols(const double *X, const double *Y, size_t rows, size_t cols,
				   double tol, double *err);

/* A lower bound on ||Y - X M^T||_F / ||X||_F over every orthogonal M
 * (X, Y rows x cols): M keeps each row's norm, so the rows' norm gaps
 * (sqrt of the sum of (||Y_r|| - ||X_r||)^2) cannot be fitted away. Above
 * the tolerance no online R4 is worth looking for. */
double verify_residual_norm_gap(const double *X, const double *Y, size_t rows, size_t cols);

/* Whether Y = X M^T for M = A (x) S_p or S_p (x) A, S_p the Sylvester
 * Hadamard of a power of two p dividing cols and A any k x k orthogonal
 * (k = cols / p, 2 <= k <= VRES_KRON_MAX): QuaRot's and SpinQuant's online
 * Hadamards of widths that are not powers of two (had_28 (x) S_512 at
 * 14336, had_172 (x) S_64 at 11008), whose H_k ropefold does not draw. S_p
 * is undone by the fast transform, A fitted by Procrustes on the rows x p
 * samples of its k coordinates; on success *k is its order, *hadamard
 * whether A is a Hadamard (verify_residual_is_hadamard), *err the
 * relative error left (else the smallest tried). */
bool verify_residual_kron_cols(const double *X, const double *Y, size_t rows, size_t cols,
			       double tol, size_t *k, bool *hadamard, double *err);

#define VRES_KRON_MAX 256

/* Whether some orthogonal M (cols x cols) gives Y = X M^T, for rows <=
 * cols (X, Y rows x cols): exactly when X X^T = Y Y^T. *err is half the
 * relative difference of the two Grams (about the relative error of Y
 * against X M^T): the test of an online R4 on a writer too wide for
 * verify_residual_extra_cols' cols x cols fit. */
RfStatus verify_residual_gram_cols(const double *X, const double *Y, size_t rows, size_t cols,
				   double *err);

/* Bring a and b into one frame for verify_layers: a's attention norm
 * fused into W_q, W_k, W_v (then one); b's readers turned back by R
 * (W R), its writer by R^T (R^T W_o, R^T b_o), its norm weight one. */
RfStatus verify_residual_layer_frame(Layer *a, Layer *b, const double *R);

/* Record the first break (the rest are dropped). */
void verify_residual_break(VerifyResidual *r, size_t layer, const Finding *f);

#endif
