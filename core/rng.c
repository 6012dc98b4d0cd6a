#include "config.h"

#include <math.h>

#include "core/rng.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void rng_seed(Rng *rng, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
	for (int i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&x);
}

double rng_normal(Rng *rng)
{
	double u1 = 1.0 - rng_uniform(rng); /* (0, 1]: log is finite */
	double u2 = rng_uniform(rng);
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void rng_lanes_seed(RngLanes *r, uint64_t seed, uint64_t stream)
{
	for (size_t k = 0; k < RNG_LANES; k++) {
		Rng one;
		rng_seed(&one, seed, stream * RNG_LANES + k);
		for (int w = 0; w < 4; w++)
			r->s[w][k] = one.s[w];
	}
}
