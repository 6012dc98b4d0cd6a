#ifndef ROPEFOLD_CORE_ROPE_H
#define ROPEFOLD_CORE_ROPE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"
#include "core/status.h"

/* Coordinates (a, b) of RoPE pair i in a head of rotary dim r:
 * interleaved (2i, 2i+1), half-split (i, i + r/2). */
void rope_pair_coords(RopeLayout layout, size_t rotary_dim, size_t i,
		      size_t *a, size_t *b);

/* The r/2 angular frequencies w_i = theta^(-2i/r), after the scaling rule
 * (HF transformers' rope utilities: linear, NTK-aware, YaRN, llama3,
 * longrope; llama.cpp's rope_freqs divisors), for a pass over positions
 * 0..seq-1: longrope divides by long_factors when seq exceeds its
 * original length (HF switches on max(position_ids) + 1), else by the
 * short ones; ntk with a trained length stretches only past it. */
RfStatus rope_frequencies_at(const RopeSpec *spec, size_t seq, double *freqs);
/* The same at no particular length: longrope's short factors (HF's
 * inv_freq before a longer pass). */
RfStatus rope_frequencies(const RopeSpec *spec, double *freqs);
/* True when a pass of seq positions takes longrope's long factors. */
bool rope_uses_long_factors(const RopeSpec *spec, size_t seq);

/* The factor YaRN and longrope apply to cos and sin (1 for other rules):
 * the rotated coordinates only, so q.k of them by its square. */
double rope_attention_factor(const RopeSpec *spec);

/* cos/sin of p * w_i for positions 0..seq-1, built once per evaluation. */
typedef struct {
	size_t seq;
	size_t npairs;
	RopeLayout layout;
	size_t rotary_dim;
	double *freqs;   /* npairs */
	double *cos;     /* seq x npairs, already times the attention factor */
	double *sin;     /* seq x npairs */
	float *cos_f;    /* float copies for float32 evaluation */
	float *sin_f;
} RopeTable;

/* Build the tables for positions 0..seq-1 (frequencies as
 * rope_frequencies_at(spec, seq)). */
RfStatus rope_table_init(RopeTable *t, const RopeSpec *spec, size_t seq);
/* Release the tables. */
void rope_table_done(RopeTable *t);

/* Rotate every head of every row in place: x is T x (nheads*head_dim) with
 * leading dimension ld; row t is at position t. */
void rope_apply_rows(const RopeTable *t, size_t T, size_t nheads,
		     size_t head_dim, double *x, size_t ld);
/* The same in float. */
void rope_apply_rows_f(const RopeTable *t, size_t T, size_t nheads,
		       size_t head_dim, float *x, size_t ld);

/* The pair index of coordinate c (rope_pair_coords inverted), or r/2 for
 * a coordinate past the rotary dim. */
size_t rope_coord_pair(RopeLayout layout, size_t rotary_dim, size_t c);

/* The d x d block rotation (row-major) turning pair i by scale * angles[i]
 * and leaving coordinates past the rotary dim alone. */
void rope_pair_rotation(RopeLayout layout, size_t rotary_dim, size_t head_dim,
			double scale, const double *angles, double *out);

/* The d x d matrix Theta_p (row-major) for real position p. */
void rope_theta_matrix(const double *freqs, RopeLayout layout,
		       size_t rotary_dim, size_t head_dim, double p,
		       double *out);

/* Name of a layout ("half" or "interleaved"), and its parser (0 on success). */
const char *rope_layout_name(RopeLayout layout);
int rope_layout_parse(const char *s, RopeLayout *out);

/* The range of a scaling factor F, every rule alike: F >= 1, as HF's
 * rope utilities require (F = 1 changes nothing; below 1 the rules have
 * no published meaning, and NTK's base F^(r/(r-2)) theta can underflow to
 * 0, which makes every frequency infinite); at most 1e6, a million times
 * the trained context (published models use 2 to 64), so that NTK's
 * stretched base stays finite for every theta up to 1e12. */
#define ROPE_SCALING_FACTOR_MIN 1.0
#define ROPE_SCALING_FACTOR_MAX 1e6

/* Parse "none", "linear:F", "ntk:F", "yarn:F", "llama3:F", F a decimal
 * number in [ROPE_SCALING_FACTOR_MIN, ROPE_SCALING_FACTOR_MAX]: 0 on
 * success, -1 when s is not of that form, -2 when only F is bad. */
int rope_scaling_parse(const char *s, RopeScaling *out);
/* Format a scaling rule as the parser reads it; the table rules, which
 * come only from checkpoints, by name: "longrope", "rope_freqs". */
void rope_scaling_format(const RopeScaling *s, char *buf, size_t len);

/* True when two specs give the same frequencies at every length (tables
 * included). */
bool rope_spec_equal(const RopeSpec *x, const RopeSpec *y);

/* RoPE settings a user gives: the whole spec of a random layer, and over a
 * checkpoint's own spec only the fields that were given. */
typedef struct {
	RopeSpec spec;
	bool layout, rotary_dim, theta, scaling;   /* which fields were given */
} RopeOverride;

/* Put the given fields of o onto rope. */
void rope_override_apply(const RopeOverride *o, RopeSpec *rope);

#endif
