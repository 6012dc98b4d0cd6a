#ifndef ROPEFOLD_CORE_CLONES_H
#define ROPEFOLD_CORE_CLONES_H

/* HOT_CLONES before a hot loop's function: GCC compiles it twice, for
 * x86-64's baseline and for AVX2, and picks the clone at load time by the
 * CPU (function multiversioning through an ifunc, hence GCC on Linux).
 * The baseline lacks the 64-bit compares and wide registers the loops'
 * vectorization needs; the results are the same either way (no FMA
 * contraction in either). Elsewhere it is nothing, and the plain loops
 * run. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HOT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HOT_CLONES
#endif

#endif
