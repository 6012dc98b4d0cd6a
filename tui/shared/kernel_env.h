#ifndef ROPEFOLD_TUI_SHARED_KERNEL_ENV_H
#define ROPEFOLD_TUI_SHARED_KERNEL_ENV_H

#include "core/attention.h"

/* The output kernel every evaluating front end asks core for (check,
 * bench, the explorer's worker, verify's confirming evaluation):
 * ROPEFOLD_KERNEL=blas asks for library GEMMs on every CPU (the tests
 * compare the two paths), anything else or nothing for the fused AVX-512
 * kernel where the CPU has it. */
AttnKernel kernel_env(void);

#endif
