#ifndef ROPEFOLD_CORE_RNG_H
#define ROPEFOLD_CORE_RNG_H

#include <stdint.h>

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
/* A standard normal double (Box-Muller, no cached second value). */
double rng_normal(Rng *rng);

#endif
