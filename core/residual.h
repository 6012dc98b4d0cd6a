#ifndef ROPEFOLD_CORE_RESIDUAL_H
#define ROPEFOLD_CORE_RESIDUAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* The residual frame (QuaRot/SpinQuant's R1): one orthogonal R (D x D)
 * turns the whole residual stream x into R x. For a pre-norm RMSNorm
 * decoder, RMSNorm(x) = w * x / rms(x); once w is fused into the input
 * columns of the linears that read the normed stream (W diag(w)) and the
 * norm's weight is set to 1, rms(R x) = rms(x) and the normalisation
 * commutes with R. Each tensor on the stream then takes R on one side
 * (its role):
 *   embeddings  E R^T        (V x D: rows are tokens)
 *   readers     W diag(w) R^T (out x D: q, k, v, gate, up, router, head)
 *   writers     R W          (D x in: o, down; per expert when batched)
 *   writer bias R b          (D)
 *   norms       set to 1     (or 0 for a (1 + w) norm)
 * and every other tensor is left as it is. */

/* How R is drawn. */
typedef enum {
	RES_NONE = 0,       /* no residual rotation */
	RES_HADAMARD,       /* random signs times a normalised Hadamard
			     * (Sylvester on the power of two dividing D,
			     * Kronecker with the identity on the rest) */
	RES_HAAR,           /* Haar-random orthogonal */
	RES_KIND_COUNT
} ResKind;

/* The side of the residual stream a tensor sits on. */
typedef enum {
	RES_ROLE_KEEP = 0,      /* not on the stream: untouched */
	RES_ROLE_EMBED,         /* rows of D: E R^T */
	RES_ROLE_READER,        /* rows of D: W diag(w) R^T */
	RES_ROLE_WRITER,        /* blocks of D rows: R W */
	RES_ROLE_WRITER_BIAS,   /* D: R b */
	RES_ROLE_NORM,          /* the norm's weight, fused into its readers */
	RES_ROLE_COUNT
} ResRole;

/* Fill R (D x D, row-major) with a rotation of the kind, drawn from seed. */
RfStatus residual_rotation(ResKind kind, size_t D, uint64_t seed, double *R);

/* Apply role's side of R to v (n values in the tensor's row-major layout:
 * rows of D for embed/reader, blocks of D x (n / (D * batch)) for a
 * writer, batch of them; D for a bias). w (D, or NULL for none) is the
 * norm weight a reader fuses. A norm's values become norm_one. */
RfStatus residual_apply(ResRole role, const double *R, size_t D, size_t batch,
			const double *w, double norm_one, double *v, size_t n);
/* The inverse: v from what residual_apply gave (a reader divides by w,
 * whose entries must be nonzero; a norm's values are restored from w). */
RfStatus residual_unapply(ResRole role, const double *R, size_t D, size_t batch,
			  const double *w, double *v, size_t n);

/* The weight a norm fuses into its readers: stored, or 1 + stored for a
 * (1 + w) norm (Gemma); and the value it is stored as afterwards. */
void residual_fused_weight(const double *stored, size_t D, bool plus_one, double *w);
double residual_norm_one(bool plus_one);

/* Names ("none", "hadamard", "haar") and the parser (0 on success). */
const char *residual_kind_name(ResKind kind);
int residual_kind_parse(const char *s, ResKind *out);
/* Role names for records ("embed", "reader", ...). */
const char *residual_role_name(ResRole role);

#endif
