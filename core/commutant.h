#ifndef ROPEFOLD_CORE_COMMUTANT_H
#define ROPEFOLD_CORE_COMMUTANT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"
#include "core/status.h"

#define COMMUTANT_MAX_LISTED 8

/* How a d x d matrix departs from the orthogonal commutant of RoPE
 * (SPEC 1: an SO(2) rotation per frequency pair, pairs of one frequency
 * may mix, anything on the non-rotary coordinates). Group indices are
 * pair indices, npairs standing for the non-rotary block. */
typedef struct {
	double defect;              /* ||R - projection||_F */
	size_t n_mixed;             /* pairs of groups mixed, largest first */
	size_t mixed[COMMUTANT_MAX_LISTED][2];
	double mixed_norm[COMMUTANT_MAX_LISTED];
	size_t n_mixed_total;       /* all mixed pairs above the threshold */
	size_t n_reflect;           /* pairs holding a reflection (det -1) */
	size_t reflect[COMMUTANT_MAX_LISTED];
	size_t n_reflect_total;
} CommutantInfo;

/* The nearest commuting orthogonal matrix to R, in layout rope->layout:
 * blocks across different frequencies zeroed, each pair's 2x2 block
 * replaced by the rotation nearest to it, the non-rotary block kept.
 * freqs holds the r/2 frequencies of rope. */
void commutant_project(const double *R, const RopeSpec *rope,
		       const double *freqs, size_t d, double *P);

/* Which pairs R mixes and where it reflects; blocks whose norm is at most
 * thr are ignored. */
RfStatus commutant_analyse(const double *R, const RopeSpec *rope,
			   const double *freqs, size_t d, double thr,
			   CommutantInfo *ci);

/* Angle of each pair of a commuting rotation (r/2 of them), in radians
 * (-pi, pi]. */
void commutant_angles(const double *R, const RopeSpec *rope, size_t d,
		      double *angles);

/* Rebuild a commuting rotation from pair angles and the non-rotary block
 * (tail: (d-r) x (d-r), or NULL for the identity there). */
void commutant_build(const RopeSpec *rope, size_t d, const double *angles,
		     const double *tail, double *R);

#endif
