#ifndef ROPEFOLD_CORE_RNG_H
#define ROPEFOLD_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* xoshiro256** seeded through splitmix64: the same seed gives the same
 * layers, inputs and rotations on every machine. */
typedef struct {
	uint64_t s[4];
} Rng;

/* Seed a generator; stream separates independent uses of one seed. */
void rng_seed(Rng *rng, uint64_t seed, uint64_t stream);
/* The next 64 random bits. Inline, as is rng_uniform: a loop drawing
 * one per weight (verify's rounding noise, 42 M draws per 8B layer) then
 * keeps the state in registers, a quarter faster than calls. */
static inline uint64_t rng_next(Rng *rng)
{
	uint64_t *s = rng->s;
	uint64_t x = s[1] * 5;
	uint64_t result = ((x << 7) | (x >> 57)) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return result;
}

/* A uniform double in [0, 1). */
static inline double rng_uniform(Rng *rng)
{
	return (double)(rng_next(rng) >> 11) * 0x1.0p-53;
}
/* Eight xoshiro256** streams side by side, for bulk draws: the state is
 * kept word by word across the lanes, so one step of all eight is a loop
 * over lanes the vectorizer takes (the multiplications by 5 and 9 are
 * shifts and adds), eight draws for about the price of one. */
enum { RNG_LANES = 8 };
typedef struct {
	uint64_t s[4][RNG_LANES];   /* word w of lane k at s[w][k] */
} RngLanes;

/* Lane k gets rng_seed(seed, stream * RNG_LANES + k)'s state. */
void rng_lanes_seed(RngLanes *r, uint64_t seed, uint64_t stream);
/* RNG_LANES uniform doubles in [-1, 1), lane k's into out[k]: the top 52
 * bits of its next draw as 2 m - 3, m in [1, 2) (exact). Inline, so that
 * the caller's loop keeps the state in registers and its HOT_CLONES
 * clone vectorizes it. */
static inline void rng_lanes_signed(RngLanes *r, double out[RNG_LANES])
{
	uint64_t *s0 = r->s[0], *s1 = r->s[1], *s2 = r->s[2], *s3 = r->s[3];
	for (size_t k = 0; k < RNG_LANES; k++) {
		uint64_t x = s1[k] * 5;
		uint64_t res = ((x << 7) | (x >> 57)) * 9;
		uint64_t t = s1[k] << 17;
		s2[k] ^= s0[k];
		s3[k] ^= s1[k];
		s1[k] ^= s2[k];
		s0[k] ^= s3[k];
		s2[k] ^= t;
		s3[k] = (s3[k] << 45) | (s3[k] >> 19);
		uint64_t m = (res >> 12) | 0x3ff0000000000000ULL;
		double f;
		memcpy(&f, &m, sizeof f);
		out[k] = 2.0 * f - 3.0;
	}
}

/* A standard normal double (Box-Muller, no cached second value). */
double rng_normal(Rng *rng);

#endif
