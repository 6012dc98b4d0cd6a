#ifndef ROPEFOLD_CORE_RNG_H
#define ROPEFOLD_CORE_RNG_H

#include <stddef.h>
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
/* n uniform doubles in [0, 1), the ones n calls of rng_uniform give, in
 * one loop that keeps the state in registers (the rounding noise draws
 * 42 M of them per 8B layer). */
void rng_uniform_fill(Rng *rng, double *out, size_t n);
/* A standard normal double (Box-Muller, no cached second value). */
double rng_normal(Rng *rng);

#endif
