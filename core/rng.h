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
/* The next 64 random bits. */
uint64_t rng_next(Rng *rng);
/* A uniform double in [0, 1). */
double rng_uniform(Rng *rng);
/* A standard normal double (Box-Muller, no cached second value). */
double rng_normal(Rng *rng);

#endif
