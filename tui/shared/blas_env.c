#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tui/shared/blas_env.h"

#ifdef HAVE_OPENBLAS_GET_CORENAME
char *openblas_get_corename(void);   /* not in Debian 12's cblas.h */
#endif

/* The kernels to ask for on this CPU, or NULL for none better than what
 * OpenBLAS chose. */
static const char *better_core(void)
{
#if defined(HAVE_OPENBLAS_GET_CORENAME) && defined(__x86_64__)
	const char *name = openblas_get_corename();
	/* Prescott is DYNAMIC_ARCH's fallback for a CPU it does not know. */
	if (!name || strcasecmp(name, "Prescott") != 0)
		return NULL;
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
		return "SkylakeX";
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return "Haswell";
#endif
	return NULL;
}

void blas_env_fix_core(char **argv)
{
	if (getenv("OPENBLAS_CORETYPE"))
		return;   /* the user's choice, or this is the run again */
	const char *core = better_core();
	if (!core || setenv("OPENBLAS_CORETYPE", core, 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	/* No /proc: go on with the kernels there are. */
	unsetenv("OPENBLAS_CORETYPE");
}
