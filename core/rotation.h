#ifndef ROPEFOLD_CORE_ROTATION_H
#define ROPEFOLD_CORE_ROTATION_H

#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"
#include "core/rng.h"
#include "core/status.h"

/* The rotation kinds of SPEC 2.1. */
typedef enum {
	ROT_COMMUTING = 0,    /* one SO(2) angle per pair, Haar on non-rotary */
	ROT_HAAR,             /* Haar-random orthogonal (QR, sign-corrected) */
	ROT_HADAMARD,         /* normalised Hadamard times random signs */
	ROT_PAIR_SWAP,        /* swaps neighbouring frequency pairs */
	ROT_PAIR_REFLECT,     /* a reflection inside every pair (det -1) */
	ROT_LAYOUT_MISMATCH,  /* commuting, but built for the other layout */
	ROT_PAIR_MIX,         /* commuting, then neighbouring pairs mixed by a
			       * small angle EPS (core/pair_mix.h) */
	ROT_KIND_COUNT
} RotKind;

/* Fill R (d x d, row-major) with a rotation of the given kind for a head
 * of dim d under the RoPE spec. */
RfStatus rotation_make(RotKind kind, const RopeSpec *rope, size_t head_dim,
		       Rng *rng, double *R);

/* The same with the strength of a kind that has one (ROT_PAIR_MIX: the
 * mixing angle eps; rotation_make uses PAIR_MIX_EPS_DEFAULT). */
RfStatus rotation_make_eps(RotKind kind, const RopeSpec *rope, size_t head_dim,
			   double eps, Rng *rng, double *R);

/* A d x d Haar-random orthogonal matrix. */
RfStatus rotation_haar(size_t n, Rng *rng, double *Q);

/* The commuting rotation with the given angles (one per pair) in a layout;
 * coordinates >= rotary_dim get the identity. */
void rotation_commuting(RopeLayout layout, size_t rotary_dim, size_t head_dim,
			const double *angles, double *R);

/* Hold pair i of a commuting rotation R (d x d) to angle 0 or pi, the one
 * nearer its own angle, for every i with pinned[i] set (pinned: r/2 flags),
 * and when pin_tail its non-rotary block to the diagonal of signs of that
 * block's diagonal. What is left commutes with any diagonal weight whose
 * pinned pairs (and non-rotary coordinates) differ: a learned QK-norm. */
void rotation_pin_pairs(RopeLayout layout, size_t rotary_dim, size_t head_dim,
			const unsigned char *pinned, bool pin_tail, double *R);

/* Left-multiply R by a positive scale per pair (and per coordinate pair of
 * the non-rotary block), drawn away from 1: still commuting, no longer
 * orthogonal. */
void rotation_scale_pairs(const RopeSpec *rope, size_t head_dim, Rng *rng,
			  double *R);

/* The angle of pair i of a commuting rotation R (atan2 of its block). */
double rotation_pair_angle(const double *R, RopeLayout layout,
			   size_t rotary_dim, size_t head_dim, size_t i);

/* Name of a kind, and the parser (0 on success). */
const char *rotation_kind_name(RotKind kind);
int rotation_kind_parse(const char *s, RotKind *out);
/* Parse a kind with its strength, "pair-mix:1e-3" (EPS a plain decimal,
 * 0 < EPS <= 1 radian; a bare "pair-mix" leaves *eps as it was); other
 * kinds take no ":EPS". 0 on success. */
int rotation_kind_parse_eps(const char *s, RotKind *out, double *eps);
/* Format a kind as it parses back: "haar", "pair-mix:0.001". */
void rotation_kind_format(RotKind kind, double eps, char *buf, size_t len);
/* The bounds of a pair-mix EPS. */
#define ROT_MIX_EPS_MIN 1e-300
#define ROT_MIX_EPS_MAX 1.0

#endif
